//! `test`, `demo` and `sizes`.

use crate::cross;
use crate::guest::{self, Payload, Work};
use crate::kmod;
use crate::setup::{self, Kernel};
use crate::target::{Arch, Target};
use crate::util::{capture, capture_raw, cargo, run, step};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The package and example names the rig builds for the guests.
const EXAMPLES_PACKAGE: &str = "kbus-rustix";
const EXAMPLES_DIR: &str = "kbus-rustix";
const DEMO: &str = "demo";
const FIRMWARE: &str = "firmware";
const FIRMWARE_PROFILE: &str = "firmware";
/// kbus-rustix's API examples run in every guest, with their cargo arguments.
const API_EXAMPLES: &[(&str, &[&str])] = &[
    ("readme", &[]),
    ("listener", &[]),
    ("replier", &[]),
    ("async_requester", &["--features", "tokio"]),
];

/// Bare-metal target of the no_std proof.
const NO_STD_TARGET: &str = "thumbv7em-none-eabihf";

struct Report {
    results: Vec<(String, bool, Duration)>,
}

impl Report {
    /// Run one step, time it and record the outcome.
    fn step(&mut self, name: impl Into<String>, f: impl FnOnce() -> Result<()>) -> bool {
        let start = Instant::now();
        let r = f();
        self.record(name, start, r)
    }

    fn record(&mut self, name: impl Into<String>, start: Instant, r: Result<()>) -> bool {
        let name = name.into();
        let ok = match r {
            Ok(()) => true,
            Err(e) => {
                eprintln!("xtask: FAILED {name}: {e:#}");
                false
            }
        };
        let d = start.elapsed();
        eprintln!(
            "xtask: [{}] {name} ({:.1}s)",
            if ok { "pass" } else { "FAIL" },
            d.as_secs_f64()
        );
        self.results.push((name, ok, d));
        ok
    }
}

/// `cargo xtask test`: host checks once, then kmod and guest tests per arch.
/// Prints `N passed, N failed` last; Ok(false) when anything failed.
pub fn test(arches: &[Arch], guest_only: bool) -> Result<bool> {
    let all = Instant::now();
    let mut r = Report {
        results: Vec::new(),
    };
    if !guest_only {
        setup::rust_components(&["clippy", "rustfmt"])?;
        r.step("host tests", || {
            run(cargo().args(["test", "--workspace", "--exclude", "kbus-guest-tests"]))
        });
        r.step("clippy -D warnings", || {
            run(cargo()
                .args(["clippy", "--workspace", "--all-targets", "--"])
                .args(["-D", "warnings"]))
        });
        r.step("cargo fmt --check", || {
            run(cargo().args(["fmt", "--all", "--check"]))
        });
        r.step("rustdoc -D warnings", || {
            run(cargo()
                .args(["doc", "--workspace", "--no-deps", "--exclude", "xtask"])
                .env("RUSTDOCFLAGS", "-D warnings"))
        });
        r.step(format!("no_std kbus-wire ({NO_STD_TARGET})"), || {
            no_std_proof(&[])?;
            no_std_proof(&["--features", "defmt"])
        });
    }
    for &arch in arches {
        let s = Instant::now();
        let prepared = prepare_with_kmod(arch);
        let (t, k, ko) = match prepared {
            Ok(p) => {
                r.record(format!("{arch}: setup + kmod (W=1)"), s, Ok(()));
                p
            }
            Err(e) => {
                r.record(format!("{arch}: setup + kmod (W=1)"), s, Err(e));
                r.record(
                    format!("{arch}: guest tests"),
                    Instant::now(),
                    Err(anyhow::anyhow!("not run: no kernel module")),
                );
                continue;
            }
        };
        if arch == Arch::X86_64Debug {
            // Debian's headers lack scripts/; the debug kernel's tree has them.
            r.step("kmod: checkpatch --strict", || kmod::checkpatch(&k.headers));
        }
        let s = Instant::now();
        let res = guest_suite(&t, &k, &ko);
        r.record(format!("{arch}: guest tests"), s, res);
    }

    eprintln!("\nxtask: summary ({:.0}s)", all.elapsed().as_secs_f64());
    for (name, ok, d) in &r.results {
        eprintln!(
            "  {} {name} ({:.1}s)",
            if *ok { "pass" } else { "FAIL" },
            d.as_secs_f64()
        );
    }
    let passed = r.results.iter().filter(|x| x.1).count();
    let failed = r.results.len() - passed;
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// kbus-wire builds for a bare-metal target with only `core` (with `extra`
/// cargo arguments, e.g. a feature).
fn no_std_proof(extra: &[&str]) -> Result<()> {
    setup::rust_src()?;
    run(cargo()
        .args(["build", "-p", "kbus-wire", "--no-default-features"])
        .args(extra)
        .args(["--target", NO_STD_TARGET, "-Zbuild-std=core"])
        .arg("--target-dir")
        .arg(cross::guest_target_dir())
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTFLAGS"))
}

/// Guest test binaries (`guest-tests/tests/<name>.rs`) that need the debug
/// kernel's fault injection: only targets with `fault_tests = true` run them
/// (they fail loudly anywhere else).
const FAULT_TESTS: &[&str] = &["faults"];

/// Is `exe` (cargo's `<name>-<hash>`) one of [`FAULT_TESTS`]?
fn is_fault_test(exe: &Path) -> bool {
    let stem = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    stem.and_then(|s| s.rsplit_once('-').map(|(name, _)| name.to_string()))
        .is_some_and(|name| FAULT_TESTS.contains(&name.as_str()))
}

/// The guest test of kbus-bridge (issue 12); it spawns the `kbus-bridge`
/// binary staged next to it.
const BRIDGE_TEST: &str = "bridge";

/// Is `exe` (cargo's `<name>-<hash>`) the [`BRIDGE_TEST`]?
fn is_bridge_test(exe: &Path) -> bool {
    let stem = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    stem.and_then(|s| s.rsplit_once('-').map(|(name, _)| name.to_string()))
        .is_some_and(|name| name == BRIDGE_TEST)
}

/// kbus-bridge (Zenoh) is cross-built for x86_64 guests only for now.
fn runs_bridge(t: &Target) -> bool {
    t.rust.target.starts_with("x86_64-")
}

/// Build the guest tests and examples for `t` and run them all in one boot.
fn guest_suite(t: &Target, k: &setup::Kernel, ko: &Path) -> Result<()> {
    let mut bins: Vec<Payload> = cross::guest_tests(t)?
        .into_iter()
        .filter(|exe| t.guest.fault_tests || !is_fault_test(exe))
        .filter(|exe| runs_bridge(t) || !is_bridge_test(exe))
        .map(|exe| Payload::new(exe, vec!["--test-threads=1".into()]))
        .collect();
    if runs_bridge(t) {
        // Staged as `bin/kbus-bridge`, next to the bridge test that spawns it.
        let exe = cross::bridge(t)?;
        bins.insert(0, Payload::new(exe, vec!["--version".into()]));
    } else {
        eprintln!(
            "xtask: NOTE: {}: guest-tests/tests/{BRIDGE_TEST}.rs does NOT run on this arch \
             (kbus-bridge with Zenoh is cross-built for x86_64 guests only)",
            t.arch
        );
    }
    if t.guest.fault_tests {
        // The debug kernel's run must include them: never pass without.
        let n = bins.iter().filter(|b| is_fault_test(&b.path)).count();
        if n != FAULT_TESTS.len() {
            bail!(
                "{}: expected the fault tests {FAULT_TESTS:?} among the guest tests, found {n}",
                t.arch
            );
        }
    }
    if cross::has_example(EXAMPLES_DIR, DEMO) {
        let exe = cross::example(t, EXAMPLES_PACKAGE, DEMO, "dev")?;
        bins.push(Payload::new(exe, Vec::new()));
    }
    // The API examples of issue 10; each must exist.
    for (name, extra) in API_EXAMPLES {
        let exe = cross::example_with(t, EXAMPLES_PACKAGE, name, "dev", extra)?;
        bins.push(Payload::new(exe, Vec::new()));
    }
    if cross::has_example(EXAMPLES_DIR, FIRMWARE) {
        let exe = cross::firmware(t, EXAMPLES_PACKAGE, FIRMWARE, FIRMWARE_PROFILE)?;
        check_no_libc(t, &exe)?;
        bins.push(Payload::new(exe, Vec::new()));
    }
    let names: Vec<String> = bins.iter().map(|b| b.name.clone()).collect();
    let timeout = Duration::from_secs(t.qemu.timeout_secs);
    let o = guest::run_work(t, k, Some(ko), 3, &Work::Bins(bins), timeout)?;
    for (name, rc) in &o.steps {
        eprintln!(
            "xtask:   {}: {name}: {}",
            t.arch,
            if *rc == 0 { "ok" } else { "FAILED" }
        );
    }
    // A binary that never reported (guest died) is a failure too.
    for n in names
        .iter()
        .filter(|n| !o.steps.iter().any(|(s, _)| s == *n))
    {
        eprintln!("xtask:   {}: {n}: did not run to the end", t.arch);
    }
    if !o.success() {
        bail!("{}", o.describe());
    }
    Ok(())
}

/// `arch`'s target with its Debian kernel set up and QEMU checked: what every
/// boot needs first.
pub fn prepare(arch: Arch) -> Result<(Target, Kernel)> {
    prepare_target(arch.spec()?)
}

/// [`prepare`] for a target already loaded (and possibly adjusted).
pub fn prepare_target(t: Target) -> Result<(Target, Kernel)> {
    let k = setup::setup(&t)?;
    guest::check_qemu(&t)?;
    Ok((t, k))
}

/// [`prepare`], then kbus.ko built from `kmod/` (W=1); also gives its path.
pub fn prepare_with_kmod(arch: Arch) -> Result<(Target, Kernel, PathBuf)> {
    let (t, k) = prepare(arch)?;
    let ko = kmod::build(&t, &k)?;
    Ok((t, k, ko))
}

/// `cargo xtask demo`: the README's main job, the demo example in the x86_64 guest.
pub fn demo() -> Result<bool> {
    let (t, k) = prepare(Arch::X86_64)?;
    if !cross::has_example(EXAMPLES_DIR, DEMO) {
        bail!("{EXAMPLES_DIR}/examples/{DEMO}.rs does not exist yet");
    }
    let ko = kmod::build(&t, &k)?;
    let exe = cross::example(&t, EXAMPLES_PACKAGE, DEMO, "dev")?;
    let timeout = Duration::from_secs(t.qemu.timeout_secs);
    let o = guest::run_work(
        &t,
        &k,
        Some(&ko),
        3,
        &Work::Bins(vec![Payload::new(exe, Vec::new())]),
        timeout,
    )?;
    Ok(o.success())
}

/// `cargo xtask sizes`: build the firmware example per arch and print its sizes.
pub fn sizes(arches: &[Arch]) -> Result<()> {
    if !cross::has_example(EXAMPLES_DIR, FIRMWARE) {
        bail!(
            "{EXAMPLES_DIR}/examples/{FIRMWARE}.rs (or {FIRMWARE}/main.rs) does not exist yet: \
             nothing to measure"
        );
    }
    let mut rows = Vec::new();
    for &arch in arches {
        let t = arch.spec()?;
        setup::host_packages(&t)?;
        if t.rust.build_std {
            setup::rust_src()?;
        }
        let exe = cross::firmware(&t, EXAMPLES_PACKAGE, FIRMWARE, FIRMWARE_PROFILE)?;
        check_no_libc(&t, &exe)?;
        let (text, data, bss) = elf_sizes(&t, &exe)?;
        let file = std::fs::metadata(&exe)?.len();
        rows.push((t.rust.target.clone(), text, data, bss, file, exe));
    }
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8}",
        "firmware example", "text", "data", "bss", "file"
    );
    for (target, text, data, bss, file, _) in &rows {
        println!("{target:<32} {text:>8} {data:>8} {bss:>8} {file:>8}");
    }
    for (.., exe) in &rows {
        println!("  {}", exe.display());
    }
    Ok(())
}

/// The arch's binutils tool (`size`, `readelf`): cross prefix, or the host's.
fn binutil(t: &Target, tool: &str) -> PathBuf {
    PathBuf::from(format!("{}{tool}", t.kbuild.cross_compile))
}

/// text, data, bss from Berkeley `size`.
fn elf_sizes(t: &Target, exe: &Path) -> Result<(u64, u64, u64)> {
    let out = capture(Command::new(binutil(t, "size")).arg(exe))?;
    let line = out.lines().nth(1).context("size printed nothing")?;
    let n: Vec<u64> = line
        .split_whitespace()
        .take(3)
        .map(|w| w.parse().context("size output"))
        .collect::<Result<_>>()?;
    Ok((n[0], n[1], n[2]))
}

/// The firmware must be static and carry no C library: no interpreter, no
/// dynamic section, none of glibc's tell-tale strings.
fn check_no_libc(t: &Target, exe: &Path) -> Result<()> {
    let out = capture_raw(Command::new(binutil(t, "readelf")).args(["-lW"]).arg(exe))?;
    let hdrs = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("readelf failed on {}", exe.display());
    }
    if hdrs.contains("INTERP") || hdrs.contains("DYNAMIC") {
        bail!(
            "{} is dynamically linked (program headers name INTERP/DYNAMIC)",
            exe.display()
        );
    }
    let bytes = std::fs::read(exe)?;
    for marker in [
        "GNU C Library",
        "kernel too old",
        "__libc_start_main",
        "GLIBC_",
    ] {
        if bytes.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            bail!(
                "{} contains `{marker}`: a C library was linked in",
                exe.display()
            );
        }
    }
    step(format!("{}: static, no libc", exe.display()));
    Ok(())
}
