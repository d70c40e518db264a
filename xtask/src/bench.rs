//! `bench`: the guest benches (send and read through kbus.ko), with `--ab`
//! the A/B workloads of two kbus.ko builds in one boot, with `--bridge` the
//! kbus-bridge bench against plain Zenoh, and with `--host` the host
//! benches of kbus-wire.

use crate::cross;
use crate::guest::{self, Payload, Work};
use crate::kmod;
use crate::target::Target;
use crate::tasks::{self, prepare_target, prepare_with_kmod};
use crate::util::{
    capture, cargo, link_or_copy, run, scratch_beside, step, target_dir, workspace_root,
};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PACKAGE: &str = "kbus-benches";
/// The bench target that needs `/dev/kbus0` (`benches/benches/ksock.rs`).
const GUEST_BENCH: &str = "ksock";
/// The A/B workloads (`benches/benches/ab.rs`), several processes each.
const AB_BENCH: &str = "ab";
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
pub fn guest(t: Target, extra: &[String]) -> Result<bool> {
    let (t, k, ko) = prepare_with_kmod(t)?;
    let arch = t.cell();
    let exe = cross::bench(&t, PACKAGE, GUEST_BENCH)?;
    let mut args = vec!["--bench".to_string()];
    args.extend(criterion_args(extra));
    let work = Work::Bins(vec![Payload::new(exe, args)]);
    let timeout = Duration::from_secs(t.qemu.timeout_secs) + EXTRA_TIMEOUT;
    let o = guest::run_work(
        &t,
        &k,
        Some(&ko),
        3,
        &work,
        timeout,
        guest::RunOptions::default(),
    )?;
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

/// What `cargo xtask bench --ab` compares.
pub struct AbOptions {
    /// Module A: kmod/ of this git revision.
    pub rev: String,
    /// Module B's source tree (default: the working tree's kmod/).
    pub b_src: Option<PathBuf>,
    /// A B rounds.
    pub rounds: u32,
    /// vCPUs of the guest (default: the target's).
    pub smp: Option<u32>,
}

/// `kmod/` of git revision `rev`, exported once into
/// `target/kmod-rev/<commit>/kmod` (a commit never changes, so neither does
/// the export). Returns the tree and the abbreviated commit.
fn export_rev(rev: &str) -> Result<(PathBuf, String)> {
    let root = workspace_root();
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.current_dir(&root).args(args);
        c
    };
    let commit = capture(&mut git(&[
        "rev-parse",
        "--verify",
        &format!("{rev}^{{commit}}"),
    ]))
    .with_context(|| format!("{rev:?} is not a git revision"))?
    .trim()
    .to_string();
    let short = capture(&mut git(&["rev-parse", "--short", &commit]))?
        .trim()
        .to_string();
    let dest = target_dir().join("kmod-rev").join(&commit);
    let tree = dest.join("kmod");
    if tree.is_dir() {
        return Ok((tree, short));
    }
    step(format!(
        "exporting kmod/ of {rev} ({short}) into {}",
        dest.display()
    ));
    fs::create_dir_all(dest.parent().context("kmod-rev dir")?)?;
    let tmp = scratch_beside(&dest);
    fs::create_dir_all(&tmp)?;
    let tar = archive_kmod(&root, &commit, &tmp);
    if let Err(e) = tar {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if !tmp.join("kmod").is_dir() {
        let _ = fs::remove_dir_all(&tmp);
        bail!("revision {rev} has no kmod/ folder");
    }
    if fs::rename(&tmp, &dest).is_err() {
        // Another run exported it meanwhile.
        let _ = fs::remove_dir_all(&tmp);
    }
    Ok((tree, short))
}

/// `git archive <commit> kmod | tar -x -C <into>`.
fn archive_kmod(root: &Path, commit: &str, into: &Path) -> Result<()> {
    run(Command::new("sh").current_dir(root).args([
        "-c",
        "git archive \"$1\" kmod | tar -x -C \"$2\"",
        "sh",
        commit,
        &into.to_string_lossy(),
    ]))
}

/// `cargo xtask bench --ab REV`: kbus.ko from `kmod/` of REV (A) and from
/// the working tree (B, or `--b-src`), both in one boot's share; the guest
/// program swaps them between rounds (A B A B …) and prints the per-round
/// B/A ratios, which are printed again at the end. Ok(false) if the run
/// failed or printed no summary.
pub fn ab(mut t: Target, o: &AbOptions, extra: &[String]) -> Result<bool> {
    if let Some(n) = o.smp {
        if n == 0 {
            bail!("--smp needs at least 1 vCPU");
        }
        t.qemu.smp = n;
    }
    let (t, k) = prepare_target(t)?;
    let arch = t.cell();
    let (a_src, a_commit) = export_rev(&o.rev)?;
    let a = kmod::build_tree(&t, &k, &a_src)?;
    let default_b = workspace_root().join("kmod");
    let b_src = o.b_src.clone().unwrap_or(default_b);
    let b = kmod::build_tree(&t, &k, &b_src)?;
    let exe = cross::bench(&t, PACKAGE, AB_BENCH)?;
    let b_label = match &o.b_src {
        Some(p) => p.display().to_string(),
        None => "working tree kmod/".to_string(),
    };
    let mut args: Vec<String> = vec![
        "--a".into(),
        "/mnt/host/kbus-a.ko".into(),
        "--b".into(),
        "/mnt/host/kbus-b.ko".into(),
        "--a-label".into(),
        if a_commit.starts_with(&o.rev) {
            a_commit.clone()
        } else {
            format!("{} ({a_commit})", o.rev)
        },
        "--b-label".into(),
        b_label,
        "--rounds".into(),
        o.rounds.to_string(),
    ];
    args.extend(extra.iter().cloned());
    let work = Work::Bins(vec![Payload::new(exe, args)]);
    let img = guest::initramfs(&t, &k)?;
    // The init loads kbus.ko (B) first; the program swaps in the others.
    let share = guest::stage(&t, Some(&b), 1, &work)?;
    link_or_copy(&a, &share.dir.join("kbus-a.ko"))?;
    link_or_copy(&b, &share.dir.join("kbus-b.ko"))?;
    let timeout = Duration::from_secs(t.qemu.timeout_secs) + EXTRA_TIMEOUT;
    let out = guest::boot(&t, &k, &img, &share, timeout, guest::Console::Stream)?;
    eprintln!(
        "xtask: {arch}: {} vCPU(s), total {:.1}s: {}",
        t.qemu.smp,
        out.total.as_secs_f64(),
        out.describe()
    );
    if out.bench.is_empty() {
        bail!("the {arch} A/B run printed no summary: {}", out.describe());
    }
    step(format!(
        "A/B summary: {arch} guest, {} vCPU(s), kernel {} (QEMU TCG emulation: read the ratios, not the msgs/s)",
        t.qemu.smp, k.release
    ));
    for line in &out.bench {
        println!("  {line}");
    }
    if !out.success() {
        eprintln!("xtask: the {arch} A/B run failed: {}", out.describe());
    }
    Ok(out.success())
}

/// The bridge bench's test function in `guest-tests/tests/bridge.rs`.
const BRIDGE_BENCH_TEST: &str = "bench_one_hop_against_plain_zenoh";

/// `cargo xtask bench --bridge`: the bridge bench (issue 12) `rounds` times
/// in one x86_64 boot: 64-byte Announcements and Request→Reply round trips
/// across one kbus-bridge hop over Zenoh, each against two plain Zenoh
/// processes measured in the same round, with the CPU time and context
/// switches per Announcement of each process. Ok(false) if a round failed.
pub fn bridge(t: Target, rounds: u32) -> Result<bool> {
    if !tasks::runs_bridge(&t) {
        bail!(
            "the bridge bench runs in the x86_64@{} guest only (kbus-bridge with Zenoh is built for it), not {}",
            tasks::BRIDGE_SUITE,
            t.cell()
        );
    }
    let rounds = rounds.max(1);
    let (t, k, ko) = prepare_with_kmod(t)?;
    let arch = t.cell();
    let test = cross::guest_tests(&t)?
        .into_iter()
        .find(|e| tasks::is_bridge_test(e))
        .context("no bridge test among the guest tests")?;
    // Staged as `bin/kbus-bridge`, next to the test that spawns it.
    let mut bins = vec![Payload::new(
        cross::bridge(&t, true)?,
        vec!["--version".into()],
    )];
    for _ in 0..rounds {
        let args = [
            BRIDGE_BENCH_TEST,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ];
        bins.push(Payload::new(test.clone(), args.map(String::from).to_vec()));
    }
    let timeout = Duration::from_secs(t.qemu.timeout_secs) + EXTRA_TIMEOUT;
    let o = guest::run_work(
        &t,
        &k,
        Some(&ko),
        3,
        &Work::Bins(bins),
        timeout,
        guest::RunOptions::default(),
    )?;
    if o.bench.is_empty() {
        bail!("the bridge bench printed no summary: {}", o.describe());
    }
    step(format!(
        "bridge bench: {arch} guest, {} vCPUs, kernel {}, {rounds} round(s) (QEMU TCG emulation: read the ratios)",
        t.qemu.smp, k.release
    ));
    for line in &o.bench {
        println!("  {line}");
    }
    if !o.success() {
        eprintln!("xtask: the bridge bench run failed: {}", o.describe());
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
