//! `test`, `demo` and `sizes`.

use crate::cross;
use crate::guest::{self, binary_stem, Payload, Work};
use crate::kmod;
use crate::matrix::{self, Cell, CellResult};
use crate::setup::{self, Kernel};
use crate::target::{Arch, Target};
use crate::util::{capture, capture_raw, cargo, run, step, workspace_root};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
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

/// The `kbus` command-line tool: staged in every guest's share, where
/// `guest-tests/tests/cli.rs` finds it next to itself; run once as
/// `kbus --version` (proving it starts in the guest).
const CLI_PACKAGE: &str = "kbus-cli";
const CLI_BIN: &str = "kbus";
/// Profile of the CLI that `cargo xtask sizes` measures.
const CLI_SIZE_PROFILE: &str = "cli";

/// The arch whose cell also runs a scripted `cargo xtask shell` session.
const SHELL_CHECK_ARCH: Arch = Arch::Armv7;

/// Bare-metal target of the no_std proof.
const NO_STD_TARGET: &str = "thumbv7em-none-eabihf";

/// The steps of `test` and their outcomes; the guest lanes record into it
/// at once.
struct Report {
    results: Mutex<Vec<(String, bool, Duration)>>,
}

/// Held while printing a block that must not be split by another lane's
/// output (a guest's console with its verdicts, a step's result).
static OUTPUT: Mutex<()> = Mutex::new(());

impl Report {
    /// Run one step, time it and record the outcome.
    fn step(&self, name: impl Into<String>, f: impl FnOnce() -> Result<()>) -> bool {
        let start = Instant::now();
        let r = f();
        self.record(name, start, r)
    }

    fn record(&self, name: impl Into<String>, start: Instant, r: Result<()>) -> bool {
        let name = name.into();
        let d = start.elapsed();
        let _out = lock(&OUTPUT);
        let ok = match r {
            Ok(()) => true,
            Err(e) => {
                eprintln!("xtask: FAILED {name}: {e:#}");
                false
            }
        };
        eprintln!(
            "xtask: [{}] {name} ({:.1}s)",
            if ok { "pass" } else { "FAIL" },
            d.as_secs_f64()
        );
        lock(&self.results).push((name, ok, d));
        ok
    }
}

/// `cargo xtask test`: host checks once, then each cell's builds, its
/// guests booting as soon as it is built, `jobs` guests at a time. Prints
/// `N passed, N failed` last; Ok(false) when anything failed.
pub fn test(cells: &[Cell], guest_only: bool, module: Option<&Path>, jobs: usize) -> Result<bool> {
    let all = Instant::now();
    let r = Report {
        results: Mutex::new(Vec::new()),
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
        r.step(
            "kbus-bridge without Zenoh: clippy -D warnings, tests",
            || {
                run(cargo()
                    .args(["clippy", "-p", "kbus-bridge", "--no-default-features"])
                    .args(["--all-targets", "--", "-D", "warnings"]))?;
                run(cargo().args(["test", "-p", "kbus-bridge", "--no-default-features"]))
            },
        );
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
    let table = if jobs <= 1 {
        cells_in_turn(&r, cells, module)
    } else {
        cells_side_by_side(&r, cells, module, jobs)
    };

    eprintln!("\nxtask: summary ({:.0}s)", all.elapsed().as_secs_f64());
    let results = into_inner(r.results);
    for (name, ok, d) in &results {
        eprintln!(
            "  {} {name} ({:.1}s)",
            if *ok { "pass" } else { "FAIL" },
            d.as_secs_f64()
        );
    }
    eprintln!("\nxtask: matrix\n{}", matrix::table(&table));
    let passed = results.iter().filter(|x| x.1).count();
    let failed = results.len() - passed;
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// The default of `test --jobs`: one guest per CPU, at most one per cell.
pub fn default_jobs(cells: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.min(cells).max(1)
}

/// With `--module` and no `--arch`/`--kernel`: the cells of `cells` whose
/// kernel the module was built for (its vermagic's release), said aloud.
pub fn cells_for_module(cells: &[Cell], ko: &Path) -> Result<Vec<Cell>> {
    let release = kmod::module_release(ko)?;
    let mut picked = Vec::new();
    for cell in cells {
        let t = cell.arch.spec()?.with_suite(cell.suite);
        if t.source_kernel.is_some() {
            continue; // a kernel we build ourselves: never a vendor's
        }
        let k = setup::setup(&t)?;
        if k.release == release {
            picked.push(*cell);
        }
    }
    if picked.is_empty() {
        bail!(
            "{} is for kernel {release}, which no cell of the matrix boots; \
             pick one with --arch A --kernel SUITE (it will then fail the vermagic check clearly)",
            ko.display()
        );
    }
    let names: Vec<String> = picked.iter().map(Cell::name).collect();
    step(format!(
        "--module {} (for {release}): testing the cells with that kernel: {}",
        ko.display(),
        names.join(", ")
    ));
    Ok(picked)
}

/// A cell whose kernel, kbus.ko and guest binaries are built: all that is
/// left is to boot it.
struct ReadyCell {
    name: String,
    t: Target,
    k: Kernel,
    ko: PathBuf,
    bins: Vec<Payload>,
    row: CellResult,
}

/// What [`prepare_cell`] made of a cell.
enum Prepared {
    /// Boxed: a [`Target`] is large.
    Ready(Box<ReadyCell>),
    /// A build failed: the cell's finished row.
    Failed(CellResult),
}

/// One matrix cell's builds: its kernel and kbus.ko (W=1), checkpatch on
/// the debug kernel's cell, and the guest binaries.
fn prepare_cell(r: &Report, cell: &Cell, module: Option<&Path>) -> Prepared {
    let name = cell.name();
    let mut row = CellResult {
        cell: name.clone(),
        kernel: "-".into(),
        user_bits: 0,
        passed: 0,
        failed: 0,
        differs: Vec::new(),
        build_secs: 0.0,
        boot_to_result: None,
        guest_secs: 0.0,
        error: None,
    };
    let s = Instant::now();
    let prepared = cell
        .arch
        .spec()
        .map(|t| t.with_suite(cell.suite))
        .and_then(|t| {
            row.user_bits = t.user_bits();
            if let Some(ko) = module {
                // Somebody else's kbus.ko: it must be for this kernel.
                let (t, k) = prepare_target(t)?;
                kmod::check_vermagic(ko, &k.release)?;
                Ok((t, k, ko.to_path_buf()))
            } else if cell.kdir {
                let (t, k) = prepare_target(t)?;
                let (ko, release) = kmod::build_kdir(&t, &k.headers)?;
                kmod::check_vermagic(&ko, &k.release)?;
                step(format!(
                    "{name}: kbus.ko built from --kdir alone, for {release}"
                ));
                Ok((t, k, ko))
            } else {
                prepare_with_kmod(t)
            }
        });
    let (t, k, ko) = match prepared {
        Ok(p) => {
            r.record(format!("{name}: setup + kmod (W=1)"), s, Ok(()));
            p
        }
        Err(e) => {
            row.error = Some(format!("setup or kmod failed: {e:#}"));
            row.failed = 1;
            r.record(format!("{name}: setup + kmod (W=1)"), s, Err(e));
            r.record(
                format!("{name}: guest tests"),
                Instant::now(),
                Err(anyhow::anyhow!("not run: no kernel module")),
            );
            row.build_secs = s.elapsed().as_secs_f64();
            return Prepared::Failed(row);
        }
    };
    row.kernel = k.release.clone();
    if cell.arch == Arch::X86_64Debug {
        // Debian's headers lack scripts/; the debug kernel's tree has them.
        r.step("kmod: checkpatch --strict", || kmod::checkpatch(&k.headers));
    }
    let bins = match guest_binaries(&t, cell.bridge) {
        Ok(bins) => bins,
        Err(e) => {
            row.error = Some(format!("guest builds failed: {e:#}"));
            row.failed = 1;
            r.record(format!("{name}: guest tests"), Instant::now(), Err(e));
            row.build_secs = s.elapsed().as_secs_f64();
            return Prepared::Failed(row);
        }
    };
    row.build_secs = s.elapsed().as_secs_f64();
    Prepared::Ready(Box::new(ReadyCell {
        name,
        t,
        k,
        ko,
        bins,
        row,
    }))
}

/// `test --jobs 1`: each cell's builds, then its guests, one cell after
/// another, the consoles streamed live.
fn cells_in_turn(r: &Report, cells: &[Cell], module: Option<&Path>) -> Vec<CellResult> {
    let console = guest::Console::Stream;
    cells
        .iter()
        .map(|cell| match prepare_cell(r, cell, module) {
            Prepared::Ready(c) => run_cell(r, *c, console, module.is_some()),
            Prepared::Failed(row) => row,
        })
        .collect()
}

/// `test --jobs N`: one thread builds the cells, one after another, at the
/// lowest CPU priority, and `jobs` lanes boot each cell's guests as soon as
/// it is built. A TCG guest keeps about one core busy; the builds get what
/// the guests leave, so the guests' timing checks see hardly any build
/// load. Each console is printed whole, with its verdicts, when its guest
/// is done. The rows come back in the order of `cells`.
fn cells_side_by_side(
    r: &Report,
    cells: &[Cell],
    module: Option<&Path>,
    jobs: usize,
) -> Vec<CellResult> {
    // (index in `cells`, the cell)
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(usize, ReadyCell)>();
    let ready_rx = Mutex::new(ready_rx);
    let rows = Mutex::new(Vec::<(usize, CellResult)>::new());
    let vendor_module = module.is_some();
    step(format!(
        "{} cells: building them in turn (at nice 19), booting {jobs} guests at a time (--jobs); \
         each console is printed when its guest is done",
        cells.len()
    ));
    std::thread::scope(|scope| {
        let rows = &rows;
        scope.spawn(move || {
            build_at_low_priority();
            for index in build_order(cells) {
                match prepare_cell(r, &cells[index], module) {
                    Prepared::Ready(c) => {
                        if ready_tx.send((index, *c)).is_err() {
                            break;
                        }
                    }
                    Prepared::Failed(row) => lock(rows).push((index, row)),
                }
            }
        });
        for _ in 0..jobs {
            scope.spawn(|| loop {
                // Holding the lock while waiting only queues the other lanes.
                let Ok((index, cell)) = lock(&ready_rx).recv() else {
                    break;
                };
                let row = run_cell(r, cell, guest::Console::Keep, vendor_module);
                lock(rows).push((index, row));
            });
        }
    });
    let mut rows = into_inner(rows);
    rows.sort_by_key(|(index, _)| *index);
    rows.into_iter().map(|(_, row)| row).collect()
}

/// `m`'s guard, even if a lane panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `m`'s value, even if a lane panicked while holding it.
fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Indices of `cells` in the order to build them: the first cell, then the
/// debug kernel's (its guest takes four times any other's, so it should
/// start early; its user space is the first cell's x86_64 one), then the
/// rest as given.
fn build_order(cells: &[Cell]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&i| match (i, cells[i].arch) {
        (0, _) => 0,
        (_, Arch::X86_64Debug) => 1,
        _ => 2,
    });
    order
}

/// Lower the calling thread's CPU priority to the least (nice 19). Linux
/// keeps niceness per thread, and the processes a thread starts inherit
/// it: the builds get it, while the QEMUs that the lanes start keep theirs.
fn build_at_low_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), 19) {
        eprintln!("xtask: NOTE: the builds run at normal priority (setpriority: {e})");
    }
}

/// One ready cell's guests: the scripted shell (in [`SHELL_CHECK_ARCH`]'s
/// cell), then the whole suite in one boot.
fn run_cell(
    r: &Report,
    cell: ReadyCell,
    console: guest::Console,
    vendor_module: bool,
) -> CellResult {
    let ReadyCell {
        name,
        t,
        k,
        ko,
        bins,
        mut row,
        ..
    } = cell;
    let s = Instant::now();
    if t.arch == SHELL_CHECK_ARCH && !vendor_module {
        let s = Instant::now();
        let res = scripted_shell(&t, &k, &ko, console);
        r.record(
            format!("{name}: cargo xtask shell, scripted (kbus listen & + kbus send)"),
            s,
            res,
        );
    }
    let suite = Instant::now();
    let res = guest_suite(&t, &k, &ko, bins, &mut row, vendor_module, console);
    row.guest_secs = s.elapsed().as_secs_f64();
    if let Err(e) = &res {
        row.error = Some(format!("{e:#}"));
    }
    r.record(format!("{name}: guest tests"), suite, res);
    row
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
pub fn is_bridge_test(exe: &Path) -> bool {
    let stem = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    stem.and_then(|s| s.rsplit_once('-').map(|(name, _)| name.to_string()))
        .is_some_and(|name| name == BRIDGE_TEST)
}

/// Does `t` boot the cell that runs the bridge test by default
/// ([`matrix::BRIDGE_CELL`])? The bridge bench boots it too.
pub fn runs_bridge(t: &Target) -> bool {
    (t.arch, t.suite.name) == matrix::BRIDGE_CELL
}

/// The bridge test's arguments that pick its Limpet-only test.
const LIMPET_TESTS: [&str; 2] = ["--exact", "limpet_server_and_client"];

/// The suite of the cell that runs the bridge test by default.
pub const BRIDGE_SUITE: &str = matrix::BRIDGE_CELL.1;

/// Why kbus-bridge cannot be built with Zenoh for `arch`, if it cannot
/// (it is then built Limpet-only).
pub fn zenoh_unbuildable(arch: Arch) -> Option<&'static str> {
    (arch == Arch::Mipsel).then_some(
        "zenoh 1.10 does not build for 32-bit MIPS: its dependency stabby-abi \
         needs AtomicU64/AtomicI64, which the target lacks",
    )
}

/// Build the guest tests, examples and tools for `t`: the suite of one boot
/// (with the kbus-bridge test and binary if `bridge`).
fn guest_binaries(t: &Target, bridge: bool) -> Result<Vec<Payload>> {
    let mut bins: Vec<Payload> = cross::guest_tests(t)?
        .into_iter()
        .filter(|exe| t.guest.fault_tests || !is_fault_test(exe))
        .filter(|exe| bridge || !is_bridge_test(exe))
        .map(|exe| {
            let mut args = vec!["--test-threads=1".to_string()];
            if is_bridge_test(&exe) && zenoh_unbuildable(t.arch).is_some() {
                args.extend(LIMPET_TESTS.map(String::from));
            }
            Payload::new(exe, args)
        })
        .collect();
    if bridge {
        let zenoh = zenoh_unbuildable(t.arch);
        if let Some(why) = zenoh {
            eprintln!(
                "xtask: NOTE: {}: only the Limpet test of guest-tests/tests/{BRIDGE_TEST}.rs \
                 runs in this cell, with kbus-bridge built without Zenoh: {why}",
                t.cell()
            );
        }
        // Staged as `bin/kbus-bridge`, next to the bridge test that spawns it.
        let exe = cross::bridge(t, zenoh.is_none())?;
        bins.insert(0, Payload::new(exe, vec!["--version".into()]));
    } else {
        let (arch, suite) = matrix::BRIDGE_CELL;
        eprintln!(
            "xtask: NOTE: {}: guest-tests/tests/{BRIDGE_TEST}.rs does NOT run in this cell \
             (kbus-bridge with Zenoh is tested in {arch}@{suite}; `cargo xtask test --bridge` \
             runs it in every selected cell)",
            t.cell()
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
    let cli = cross::bin(t, CLI_PACKAGE, CLI_BIN, "dev")?;
    check_static(t, &cli)?;
    bins.push(Payload::new(cli, vec!["--version".into()]));
    Ok(bins)
}

/// Run `bins` in one boot of `t` and judge each binary (with
/// `vendor_module`, failures of tests tagged in spec-tags.toml are
/// differences, not failures). A kept console is printed here, whole, with
/// the verdicts.
fn guest_suite(
    t: &Target,
    k: &setup::Kernel,
    ko: &Path,
    bins: Vec<Payload>,
    row: &mut CellResult,
    vendor_module: bool,
    console: guest::Console,
) -> Result<()> {
    let names: Vec<String> = bins.iter().map(|b| b.name.clone()).collect();
    let timeout = Duration::from_secs(t.qemu.timeout_secs);
    let opts = guest::RunOptions {
        console,
        ..Default::default()
    };
    let o = guest::run_work(t, k, Some(ko), 3, &Work::Bins(bins), timeout, opts)?;
    let mut verdicts = Vec::new();
    row.boot_to_result = o.boot_to_result.map(|d| d.as_secs_f64());
    row.passed = o.steps.iter().filter(|(_, rc)| *rc == 0).count();
    let tags = SpecTags::load()?;
    let mut real_failures = names.len() - row.passed;
    for (name, rc) in &o.steps {
        let verdict = if *rc == 0 {
            "ok".to_string()
        } else {
            // Which of its failed tests are documented differences?
            match tags.all_tagged(name, &o.failed_tests_of(name)) {
                Some(sections) if vendor_module => {
                    real_failures -= 1;
                    row.differs
                        .push(format!("{}: {sections}", binary_stem(name)));
                    format!("differs ({})", tag_label(&sections))
                }
                Some(sections) => {
                    format!("FAILED ({}: our module must pass it)", tag_label(&sections))
                }
                None => "FAILED".to_string(),
            }
        };
        verdicts.push(format!("xtask:   {}: {name}: {verdict}", t.cell()));
    }
    row.failed = real_failures;
    // A binary that never reported (guest died) is a failure too.
    for n in names
        .iter()
        .filter(|n| !o.steps.iter().any(|(s, _)| s == *n))
    {
        verdicts.push(format!(
            "xtask:   {}: {n}: did not run to the end",
            t.cell()
        ));
    }
    print_console(t, &o, &verdicts);
    let only_differences = vendor_module
        && real_failures == 0
        && o.exit.is_some()
        && o.checks_ok == Some(true)
        && o.kernel_trouble.is_empty()
        && !o.timed_out
        && o.error.is_none();
    if !o.success() && !only_differences {
        bail!("{}", o.describe());
    }
    Ok(())
}

/// A kept console of `t`'s guest (if any), then `lines`, in one block.
fn print_console(t: &Target, o: &guest::Outcome, lines: &[String]) {
    use std::io::Write;
    let _out = lock(&OUTPUT);
    if !o.console.is_empty() {
        eprintln!("xtask: ---- console of the {} guest ----", t.cell());
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&o.console);
        let _ = stdout.flush();
        eprintln!("xtask: ---- end of the {} console ----", t.cell());
    }
    for l in lines {
        eprintln!("{l}");
    }
}

/// `guest-tests/spec-tags.toml`: guest tests of behaviours the spec leaves
/// open or this project chose (§12–§14), by binary or `binary::test`.
struct SpecTags(std::collections::BTreeMap<String, String>);

impl SpecTags {
    fn load() -> Result<SpecTags> {
        let path = workspace_root().join("guest-tests/spec-tags.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let map = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(SpecTags(map))
    }

    /// The sections of the failed tests of binary `exe` if every one is
    /// tagged (and at least one failed test is known); None otherwise.
    fn all_tagged(&self, exe: &str, failed: &[&str]) -> Option<String> {
        let stem = binary_stem(exe);
        if let Some(section) = self.0.get(stem) {
            return Some(section.clone());
        }
        if failed.is_empty() {
            return None;
        }
        let mut sections: Vec<&str> = Vec::new();
        for test in failed {
            let section = self.0.get(&format!("{stem}::{test}"))?;
            if !sections.contains(&section.as_str()) {
                sections.push(section);
            }
        }
        Some(sections.join(", "))
    }
}

/// A spec-tags value as the verdict shows it: "spec §14.1", or a tag that
/// names no section (this module's own features) as it is.
fn tag_label(sections: &str) -> String {
    if sections.starts_with('§') {
        format!("spec {sections}")
    } else {
        sections.to_string()
    }
}

/// The target with its Debian kernel set up and QEMU checked: what every
/// boot needs first.
pub fn prepare_target(t: Target) -> Result<(Target, Kernel)> {
    let k = setup::setup(&t)?;
    guest::check_qemu(&t)?;
    Ok((t, k))
}

/// [`prepare_target`], then kbus.ko built from `kmod/` (W=1); also gives its path.
pub fn prepare_with_kmod(t: Target) -> Result<(Target, Kernel, PathBuf)> {
    let (t, k) = prepare_target(t)?;
    let ko = kmod::build(&t, &k)?;
    kmod::check_vermagic(&ko, &k.release)?;
    Ok((t, k, ko))
}

/// `cargo xtask shell`: a guest with kbus.ko loaded and an interactive shell
/// on the console, with the `kbus` CLI (once the workspace has it), the guest
/// test binaries and the API examples in `PATH`. Standard input is the
/// console: a terminal, or a script (`cargo xtask shell < script.sh`).
pub fn shell(t: Target, devices: u32) -> Result<bool> {
    let (t, k, ko) = prepare_with_kmod(t)?;
    let mut tools = vec![Payload::new(
        cross::bin(&t, CLI_PACKAGE, CLI_BIN, "dev")?,
        Vec::new(),
    )];
    for (name, extra) in API_EXAMPLES {
        let exe = cross::example_with(&t, EXAMPLES_PACKAGE, name, "dev", extra)?;
        tools.push(Payload::new(exe, Vec::new()));
    }
    for exe in cross::guest_tests(&t)? {
        tools.push(Payload::new(exe, Vec::new()));
    }
    // A shell has no deadline: it ends when the user exits.
    let timeout = Duration::from_secs(7 * 24 * 3600);
    let o = guest::run_work(
        &t,
        &k,
        Some(&ko),
        devices,
        &Work::Interactive {
            tools,
            script: None,
        },
        timeout,
        guest::RunOptions::default(),
    )?;
    Ok(o.success())
}

/// The scripted `cargo xtask shell` session of the test run: a Listener in
/// the background (`kbus listen &`), then `kbus send` from the same shell;
/// what the Listener printed must be the message sent.
const SHELL_SCRIPT: &str =
    "kbus listen --count 1 --timeout 20 '$.Shell.Check' > out/listen.txt &\n\
sleep 2\n\
kbus send '$.Shell.Check' hello-from-the-shell\n\
wait\n\
cat out/listen.txt\n\
grep -q hello-from-the-shell out/listen.txt; exit $?\n";

/// Run [`SHELL_SCRIPT`] in `cargo xtask shell`'s guest; fails unless the
/// session exits 0 and the Listener's line reached the host.
fn scripted_shell(t: &Target, k: &Kernel, ko: &Path, console: guest::Console) -> Result<()> {
    let tools = vec![Payload::new(
        cross::bin(t, CLI_PACKAGE, CLI_BIN, "dev")?,
        Vec::new(),
    )];
    let out = crate::util::target_dir().join("rig").join("shell-check");
    let _ = std::fs::remove_dir_all(&out);
    let work = Work::Interactive {
        tools,
        script: Some(SHELL_SCRIPT.to_string()),
    };
    let opts = guest::RunOptions {
        out: Some(&out),
        console,
    };
    let o = guest::run_work(t, k, Some(ko), 3, &work, Duration::from_secs(120), opts)?;
    print_console(t, &o, &[]);
    if !o.success() {
        bail!("scripted shell session: {}", o.describe());
    }
    let got = std::fs::read_to_string(out.join("listen.txt")).unwrap_or_default();
    if !got.contains("hello-from-the-shell") {
        bail!("kbus listen in the shell printed {got:?}, not the message kbus send sent");
    }
    Ok(())
}

/// `cargo xtask demo`: the README's main job, the demo example in the x86_64 guest.
pub fn demo() -> Result<bool> {
    let (t, k) = prepare_target(Arch::X86_64.spec()?)?;
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
        guest::RunOptions::default(),
    )?;
    Ok(o.success())
}

/// `cargo xtask sizes`: build the firmware example and the `kbus` CLI per arch
/// and print their sizes.
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
        rows.push(size_row(&t, "firmware example", exe)?);
        let cli = cross::bin(&t, CLI_PACKAGE, CLI_BIN, CLI_SIZE_PROFILE)?;
        check_static(&t, &cli)?;
        rows.push(size_row(&t, "kbus CLI (static glibc)", cli)?);
    }
    println!(
        "{:<24} {:<32} {:>8} {:>8} {:>8} {:>8}",
        "program", "target", "text", "data", "bss", "file"
    );
    for (what, target, text, data, bss, file, _) in &rows {
        println!("{what:<24} {target:<32} {text:>8} {data:>8} {bss:>8} {file:>8}");
    }
    for (.., exe) in &rows {
        println!("  {}", exe.display());
    }
    Ok(())
}

/// One row of `sizes`: what, target, text, data, bss, file size, path.
type SizeRow = (&'static str, String, u64, u64, u64, u64, PathBuf);

fn size_row(t: &Target, what: &'static str, exe: PathBuf) -> Result<SizeRow> {
    let (text, data, bss) = elf_sizes(t, &exe)?;
    let file = std::fs::metadata(&exe)?.len();
    Ok((what, t.rust.target.clone(), text, data, bss, file, exe))
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

/// The arch's `readelf` with `flags` on `exe`: its output.
fn readelf(t: &Target, flags: &str, exe: &Path) -> Result<String> {
    let out = capture_raw(Command::new(binutil(t, "readelf")).arg(flags).arg(exe))?;
    if !out.status.success() {
        bail!("readelf failed on {}", exe.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A std program (the CLI) must be static: no interpreter and no shared
/// library needed (a static-pie keeps a DYNAMIC section for its own
/// relocations). std links glibc, statically here.
fn check_static(t: &Target, exe: &Path) -> Result<()> {
    let text = readelf(t, "-ldW", exe)?;
    if text.contains("INTERP") || text.contains("(NEEDED)") {
        bail!(
            "{} is dynamically linked (an INTERP header or NEEDED libraries)",
            exe.display()
        );
    }
    step(format!("{}: static", exe.display()));
    Ok(())
}

/// The firmware must be static and carry no C library: no interpreter, no
/// dynamic section, none of glibc's tell-tale strings.
fn check_no_libc(t: &Target, exe: &Path) -> Result<()> {
    let hdrs = readelf(t, "-lW", exe)?;
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
