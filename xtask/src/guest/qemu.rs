//! Booting QEMU, reading the console, and the outcome of a run.

use super::initramfs::{initramfs, kernel_cmdline};
use super::share::{stage, Share, Work};
use crate::setup::Kernel;
use crate::target::Target;
use crate::util::step;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a boot produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The payload's exit status (`KBUS-RIG-EXIT`).
    pub exit: Option<i32>,
    /// Per-binary results in batch mode (`KBUS-RIG-STEP`).
    pub steps: Vec<(String, i32)>,
    /// rmmod and dmesg checks passed (`KBUS-RIG-CHECKS: ok`).
    pub checks_ok: Option<bool>,
    /// A guest setup error (`KBUS-RIG-ERROR`).
    pub error: Option<String>,
    /// The payload's `KBUS-BENCH: ` lines (prefix removed): the summary of
    /// the guest benches, printed again by `cargo xtask bench`.
    pub bench: Vec<String>,
    /// Kernel panic, oops or BUG seen on the console.
    pub kernel_trouble: Vec<String>,
    pub timed_out: bool,
    /// Failed tests of the libtest binaries: (binary, test name), from the
    /// `test NAME ... FAILED` lines between a step's begin and end.
    pub failed_tests: Vec<(String, String)>,
    /// The step running now (`KBUS-RIG-STEP-BEGIN`).
    current_step: Option<String>,
    pub boot_to_result: Option<Duration>,
    pub total: Duration,
    /// The console, with [`Console::Keep`] (empty with [`Console::Stream`]).
    pub console: Vec<u8>,
}

/// Where a guest's console goes while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Console {
    /// To our standard output as it comes (someone may be watching, or
    /// typing into the guest's shell).
    #[default]
    Stream,
    /// Into [`Outcome::console`], for a caller that boots several guests at
    /// once and prints each console whole when its guest is done.
    Keep,
}

/// The optional parts of [`run_work`].
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// Copy what the guest wrote into `/mnt/host/out/` here afterwards.
    pub out: Option<&'a Path>,
    pub console: Console,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit == Some(0)
            && self.checks_ok == Some(true)
            && self.error.is_none()
            && self.kernel_trouble.is_empty()
            && !self.timed_out
    }

    /// The steps that failed, each as `binary::test` for each of its failed
    /// tests, or as `binary` where it named none (a crash, or not a test
    /// harness): what a reader of the summary alone needs to know.
    pub fn failed_steps(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for (step, _) in self.steps.iter().filter(|(_, rc)| *rc != 0) {
            let stem = binary_stem(step);
            let tests = self.failed_tests_of(step);
            if tests.is_empty() {
                failed.push(stem.to_string());
            }
            failed.extend(tests.iter().map(|test| format!("{stem}::{test}")));
        }
        failed
    }

    /// The tests that step (binary) `step` reported FAILED.
    pub fn failed_tests_of(&self, step: &str) -> Vec<&str> {
        self.failed_tests
            .iter()
            .filter(|(s, _)| s == step)
            .map(|(_, test)| test.as_str())
            .collect()
    }

    /// A one-line verdict.
    pub fn describe(&self) -> String {
        let mut why = Vec::new();
        if let Some(e) = &self.error {
            why.push(format!("guest setup failed: {e}"));
        }
        if self.timed_out {
            why.push("timed out".to_string());
        }
        if !self.kernel_trouble.is_empty() {
            let shown: Vec<&str> = self
                .kernel_trouble
                .iter()
                .take(3)
                .map(String::as_str)
                .collect();
            why.push(format!("kernel trouble: {}", shown.join(" | ")));
        }
        match self.exit {
            Some(0) => {}
            Some(rc) => why.push(format!("payload exited with {rc}")),
            None => why.push("no result line from the guest".to_string()),
        }
        let failed = self.failed_steps();
        if !failed.is_empty() {
            why.push(format!("failed: {}", failed.join(", ")));
        }
        match self.checks_ok {
            Some(true) => {}
            Some(false) => why.push("post-run checks failed (rmmod or dmesg)".to_string()),
            None if self.exit.is_some() => why.push("post-run checks did not finish".to_string()),
            None => {}
        }
        if why.is_empty() {
            "ok".to_string()
        } else {
            why.join("; ")
        }
    }
}

/// `name` of a cargo test binary `name-<hash>`.
pub fn binary_stem(exe: &str) -> &str {
    exe.rsplit_once('-').map_or(exe, |(stem, _)| stem)
}

/// Prefix of the summary lines a guest bench prints (see `benches/benches/ksock.rs`).
const BENCH_TAG: &str = "KBUS-BENCH: ";

/// Console patterns that mean the kernel is in trouble.
const TROUBLE: [&str; 6] = [
    "Kernel panic",
    "Oops",
    "BUG:",
    "kernel BUG",
    "general protection",
    "Call Trace",
];

/// Boot `t`'s guest with the share and stream its console until it powers off.
pub fn boot(
    t: &Target,
    k: &Kernel,
    initramfs: &Path,
    share: &Share,
    timeout: Duration,
    console: Console,
) -> Result<Outcome> {
    let q = &t.qemu;
    let mut cmd = Command::new(&q.binary);
    cmd.args(["-M", &q.machine]);
    if !q.cpu.is_empty() {
        cmd.args(["-cpu", &q.cpu]);
    }
    cmd.args(["-accel", "tcg"])
        .args(["-m", &q.memory_mb.to_string()])
        .args(["-smp", &q.smp.to_string()])
        .arg("-kernel")
        .arg(&k.image)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", &kernel_cmdline(t)?])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-nic", "none"])
        .arg("-fsdev")
        .arg(format!(
            "local,id=share,path={},security_model=none",
            share.dir.display()
        ))
        .args([
            "-device",
            &format!("{},fsdev=share,mount_tag=host", q.ninep_device),
        ])
        .args(&q.extra_args);
    // An interactive shell: the project tree too, and the user's terminal
    // (or a script piped in) on the guest console.
    let interactive = share.project.is_some();
    if let Some(project) = &share.project {
        cmd.arg("-fsdev")
            .arg(format!(
                "local,id=project,path={},security_model=none",
                project.display()
            ))
            .args([
                "-device",
                &format!("{},fsdev=project,mount_tag=project", q.ninep_device),
            ]);
    }
    // A terminal goes straight to QEMU (which puts it in raw mode). A script
    // is held back until the guest's shell is about to read (the console
    // would drop what arrives earlier), then fed in.
    let script =
        share.script.is_some() || (interactive && !rustix::termios::isatty(std::io::stdin()));
    cmd.stdin(if script {
        Stdio::piped()
    } else if interactive {
        Stdio::inherit()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    step(format!(
        "booting the {} guest ({}, timeout {}s)",
        t.arch,
        k.release,
        timeout.as_secs()
    ));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", q.binary))?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let mut script_in = child.stdin.take();
    // The console goes to the terminal as it comes (a shell prompt has no
    // newline); complete lines are parsed for the rig's result lines.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut r = stdout;
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut r, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut o = Outcome::default();
    let deadline = start + timeout;
    // After the final checks line, QEMU gets a moment to power off.
    let mut finish_by: Option<Instant> = None;
    let stdout = std::io::stdout();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let now = Instant::now();
        let until = finish_by.map_or(deadline, |f| f.min(deadline));
        if now >= until {
            if finish_by.is_none() {
                o.timed_out = true;
            }
            break;
        }
        match rx.recv_timeout(until - now) {
            Ok(chunk) => {
                if console == Console::Keep {
                    o.console.extend_from_slice(&chunk);
                } else {
                    let mut out = stdout.lock();
                    let _ = out.write_all(&chunk);
                    let _ = out.flush();
                }
                pending.extend_from_slice(&chunk);
                while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line);
                    if line.contains(SHELL_READY) {
                        if let Some(input) = script_in.take() {
                            feed_script(input, share.script.clone());
                        }
                    }
                    parse_line(line.trim_end_matches(['\n', '\r']), &mut o, start);
                }
                if o.checks_ok.is_some() || o.error.is_some() {
                    finish_by.get_or_insert(Instant::now() + Duration::from_secs(15));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // QEMU normally exited by itself; otherwise end it (our own child, by pid).
    if child.try_wait()?.is_none() {
        if o.timed_out {
            eprintln!(
                "xtask: the {} guest did not finish within {}s; stopping QEMU",
                t.arch,
                timeout.as_secs()
            );
        }
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = reader.join();
    o.total = start.elapsed();
    Ok(o)
}

/// What the interactive shell prints just before it reads its input.
const SHELL_READY: &str = "KBUS-SHELL-READY";

/// Copy `text`, or else our standard input, to QEMU's console.
fn feed_script(mut input: std::process::ChildStdin, text: Option<String>) {
    std::thread::spawn(move || {
        // The shell starts a moment after its banner.
        std::thread::sleep(Duration::from_millis(500));
        let _ = match text {
            Some(t) => input.write_all(t.as_bytes()),
            None => std::io::copy(&mut std::io::stdin().lock(), &mut input).map(drop),
        };
    });
}

fn parse_line(line: &str, o: &mut Outcome, start: Instant) {
    if let Some(rest) = line.split("KBUS-RIG-EXIT: ").nth(1) {
        o.exit = Some(rest.trim().parse().unwrap_or(-1));
        o.boot_to_result = Some(start.elapsed());
    } else if let Some(rest) = line.split("KBUS-RIG-STEP-BEGIN: ").nth(1) {
        o.current_step = Some(rest.trim().to_string());
    } else if let (Some(test), Some(step)) = (
        line.strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED")),
        &o.current_step,
    ) {
        o.failed_tests.push((step.clone(), test.trim().to_string()));
    } else if let Some(rest) = line.split("KBUS-RIG-STEP: ").nth(1) {
        let mut w = rest.split_whitespace();
        if let (Some(name), Some(rc)) = (w.next(), w.next()) {
            o.steps.push((name.to_string(), rc.parse().unwrap_or(-1)));
        }
    } else if let Some(rest) = line.split("KBUS-RIG-CHECKS: ").nth(1) {
        o.checks_ok = Some(rest.trim() == "ok");
    } else if let Some(rest) = line.split("KBUS-RIG-ERROR: ").nth(1) {
        o.error = Some(rest.trim().to_string());
    } else if let Some(rest) = line.split(BENCH_TAG).nth(1) {
        o.bench.push(rest.trim_end().to_string());
    } else if TROUBLE.iter().any(|p| line.contains(p)) {
        o.kernel_trouble.push(line.trim().to_string());
    }
}

/// Boot once and run `work`; prints the verdict and timings. See
/// [`RunOptions`] for the rest.
pub fn run_work(
    t: &Target,
    k: &Kernel,
    ko: Option<&Path>,
    devices: u32,
    work: &Work,
    timeout: Duration,
    opts: RunOptions,
) -> Result<Outcome> {
    let img = initramfs(t, k)?;
    let share = stage(t, ko, devices, work)?;
    std::fs::create_dir_all(share.dir.join("out"))?;
    let o = boot(t, k, &img, &share, timeout, opts.console)?;
    if let Some(out) = opts.out {
        std::fs::create_dir_all(out)?;
        let mut n = 0;
        for e in std::fs::read_dir(share.dir.join("out"))? {
            let e = e?;
            if e.file_type()?.is_file() {
                std::fs::copy(e.path(), out.join(e.file_name()))?;
                n += 1;
            }
        }
        step(format!(
            "{n} file(s) from the guest's /mnt/host/out in {}",
            out.display()
        ));
    }
    match o.boot_to_result {
        Some(d) => eprintln!(
            "xtask: {}: boot to result {:.1}s, total {:.1}s: {}",
            t.arch,
            d.as_secs_f64(),
            o.total.as_secs_f64(),
            o.describe()
        ),
        None => eprintln!(
            "xtask: {}: no result after {:.1}s: {}",
            t.arch,
            o.total.as_secs_f64(),
            o.describe()
        ),
    }
    Ok(o)
}

/// Fail unless the guest tools this needs exist.
pub fn check_qemu(t: &Target) -> Result<()> {
    if !crate::util::have_program(&t.qemu.binary) {
        bail!(
            "{} not found (cargo xtask setup --arch {} installs it)",
            t.qemu.binary,
            t.arch
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines() {
        let mut o = Outcome::default();
        let start = Instant::now();
        parse_line("[    1.0] KBUS-RIG-STEP: demo 0", &mut o, start);
        parse_line("KBUS-RIG-STEP: t2 x", &mut o, start);
        parse_line("KBUS-RIG-CHECKS: ok", &mut o, start);
        parse_line("KBUS-RIG-ERROR: no kbus.ko \r", &mut o, start);
        parse_line("KBUS-BENCH: send 123 ns  ", &mut o, start);
        parse_line("just console noise", &mut o, start);
        parse_line("KBUS-RIG-STEP-BEGIN: abuse_close-0123", &mut o, start);
        parse_line("test closing_is_linear ... FAILED", &mut o, start);
        parse_line("test other ... ok", &mut o, start);
        assert_eq!(
            o.failed_tests,
            [(
                "abuse_close-0123".to_string(),
                "closing_is_linear".to_string()
            )]
        );
        parse_line("KBUS-RIG-STEP: abuse_close-0123 101", &mut o, start);
        parse_line("KBUS-RIG-EXIT: 3", &mut o, start);
        assert_eq!(
            o.steps,
            [
                ("demo".into(), 0),
                ("t2".into(), -1),
                ("abuse_close-0123".into(), 101)
            ]
        );
        assert_eq!(o.failed_steps(), ["t2", "abuse_close::closing_is_linear"]);
        assert!(o
            .describe()
            .contains("failed: t2, abuse_close::closing_is_linear"));
        assert_eq!(o.checks_ok, Some(true));
        assert_eq!(o.error.as_deref(), Some("no kbus.ko"));
        assert_eq!(o.bench, ["send 123 ns"]);
        assert!(o.kernel_trouble.is_empty());
        assert_eq!(o.exit, Some(3));
        assert!(o.boot_to_result.is_some());
        parse_line(&format!(" {} at x ", TROUBLE[0]), &mut o, start);
        assert_eq!(o.kernel_trouble.len(), 1);
    }
}
