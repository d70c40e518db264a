//! `bench`: the guest benches (send and read through kbus.ko) and, with
//! `--host`, the host benches of kbus-wire.

use crate::cross;
use crate::guest::{self, Payload, Work};
use crate::kmod;
use crate::setup;
use crate::target::Arch;
use crate::tasks::cargo;
use crate::util::{run, step};
use anyhow::{bail, Result};
use std::time::Duration;

const PACKAGE: &str = "kbus-benches";
/// The bench target that needs `/dev/kbus0` (`benches/benches/ksock.rs`).
const GUEST_BENCH: &str = "ksock";
/// The host bench target (`benches/benches/wire.rs`).
const HOST_BENCH: &str = "wire";

/// Criterion options unless the caller gives them: short runs (the guest
/// is emulated, so only the ratios to the in-run baselines mean anything),
/// fewer bootstrap resamples (only the confidence intervals depend on them;
/// they cost seconds per bench under emulation), no plots.
const DEFAULTS: [(&str, Option<&str>); 4] = [
    ("--warm-up-time", Some("1")),
    ("--measurement-time", Some("3")),
    ("--nresamples", Some("10000")),
    ("--noplot", None),
];

/// How much longer than the arch's usual boot timeout a bench run may take.
const EXTRA_TIMEOUT: Duration = Duration::from_secs(900);

/// The defaults not overridden by `extra`, then `extra`. Criterion only
/// measures when given `--bench`: `cargo bench` adds it on the host, the
/// guest run needs it first.
fn criterion_args(extra: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, value) in DEFAULTS {
        if !extra
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            args.push(flag.to_string());
            args.extend(value.map(str::to_string));
        }
    }
    args.extend(extra.iter().filter(|a| *a != "--bench").cloned());
    args
}

/// `cargo xtask bench --host`: kbus-wire parse/emit with memcpy baselines.
pub fn host(extra: &[String]) -> Result<()> {
    run(cargo()
        .args(["bench", "-p", PACKAGE, "--bench", HOST_BENCH, "--"])
        .args(criterion_args(extra)))
}

/// `cargo xtask bench --arch A`: build the guest bench statically, run it in
/// one boot (console streamed), then print its summary again. Ok(false) if
/// the run failed or printed no summary.
pub fn guest(arch: Arch, extra: &[String]) -> Result<bool> {
    let t = arch.spec()?;
    let k = setup::setup(&t)?;
    guest::check_qemu(&t)?;
    let ko = kmod::build(&t, &k)?;
    let exe = cross::bench(&t, PACKAGE, GUEST_BENCH)?;
    let mut args = vec!["--bench".to_string()];
    args.extend(criterion_args(extra));
    let work = Work::Bins(vec![Payload::new(exe, args)]);
    let timeout = Duration::from_secs(t.qemu.timeout_secs) + EXTRA_TIMEOUT;
    let o = guest::run_work(&t, &k, Some(&ko), 3, &work, timeout)?;
    if o.bench.is_empty() {
        if o.success() {
            bail!("the {GUEST_BENCH} bench printed no summary (filtered everything out?)");
        }
        bail!("the {arch} bench run failed: {}", o.describe());
    }
    step(format!(
        "bench summary: {arch} guest, kernel {} (QEMU TCG emulation: read the ratios, not the ns)",
        k.release
    ));
    for line in &o.bench {
        println!("  {line}");
    }
    if !o.success() {
        eprintln!("xtask: the {arch} bench run failed: {}", o.describe());
    }
    Ok(o.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_options_win() {
        let a = criterion_args(&["--measurement-time=10".into(), "announce".into()]);
        assert_eq!(
            a,
            [
                "--warm-up-time",
                "1",
                "--nresamples",
                "10000",
                "--noplot",
                "--measurement-time=10",
                "announce"
            ]
        );
    }
}
