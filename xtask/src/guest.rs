//! The guest: initramfs image (cached), 9p staging share, and booting QEMU.

use crate::setup::Kernel;
use crate::target::Target;
use crate::util::{cache_dir, link_or_copy, scratch_beside, step, target_dir, workspace_root, Fnv};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bump when the image layout made by this file changes.
const RECIPE_VERSION: &str = "1";

// ---------------------------------------------------------------- initramfs

/// A minimal `newc` cpio writer (the format the kernel unpacks).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime: fixed, so the image is reproducible
            u32::try_from(data.len()).expect("initramfs file under 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("short name"),
            0, // check
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | mode, (0, 0), data);
    }

    fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, (major, minor), &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        // Pad to 512 bytes like cpio(1) does.
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

fn recipe_file(name: &str) -> Result<String> {
    let p = workspace_root().join("qemu").join(name);
    fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
}

/// The kernel command line from `qemu/cmdline` (comment lines dropped).
pub fn kernel_cmdline(t: &Target) -> Result<String> {
    let text = recipe_file("cmdline")?;
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut line = line.join(" ").replace("{console}", &t.qemu.console);
    if !t.qemu.extra_cmdline.is_empty() {
        line.push(' ');
        line.push_str(&t.qemu.extra_cmdline);
    }
    Ok(line)
}

/// The initramfs for `t`/`k`, built once and cached in
/// `$KBUS_CACHE/initramfs/<arch>/<release>_<version>-<recipe hash>.cpio`.
pub fn initramfs(t: &Target, k: &Kernel) -> Result<PathBuf> {
    let init = recipe_file("init")?;
    let conf = format!(
        "# Written by cargo xtask from targets/{}.toml\nRIG_9P_OPTIONS='{}'\n",
        t.arch, t.guest.ninep_options
    );
    let mut h = Fnv::new();
    h.add(RECIPE_VERSION.as_bytes())
        .add(init.as_bytes())
        .add(conf.as_bytes())
        .add(k.busybox_version.as_bytes());
    for m in &k.modules {
        h.add(m.to_string_lossy().as_bytes());
    }
    let path = cache_dir()?
        .join("initramfs")
        .join(t.arch.name())
        .join(format!(
            "{}_{}-{}.cpio",
            k.release,
            k.version.replace([':', '/'], "_"),
            h.hex()
        ));
    if path.exists() {
        return Ok(path);
    }
    step(format!("building the {} initramfs", t.arch));
    let mut c = Cpio::new();
    for d in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "mnt",
        "proc",
        "root",
        "sys",
        "tmp",
    ] {
        c.dir(d);
    }
    c.char_dev("dev/console", 5, 1);
    c.char_dev("dev/null", 1, 3);
    c.file("init", 0o755, init.as_bytes());
    c.file("etc/rig.conf", 0o644, conf.as_bytes());
    let bb = fs::read(&k.busybox).with_context(|| format!("reading {}", k.busybox.display()))?;
    c.file("bin/busybox", 0o755, &bb);
    let mut order = String::new();
    for m in &k.modules {
        let name = m.file_name().context("module name")?.to_string_lossy();
        let data = fs::read(m).with_context(|| format!("reading {}", m.display()))?;
        c.file(&format!("lib/modules/{name}"), 0o644, &data);
        order.push_str(&name);
        order.push('\n');
    }
    c.file("lib/modules/load-order", 0o644, order.as_bytes());
    let bytes = c.finish();

    let dir = path.parent().context("initramfs dir")?;
    fs::create_dir_all(dir)?;
    let tmp = scratch_beside(&path);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

// ---------------------------------------------------------------- payload

/// A host binary to run in the guest.
#[derive(Clone, Debug)]
pub struct Payload {
    /// Name used in the share and in the result lines.
    pub name: String,
    pub path: PathBuf,
    pub args: Vec<String>,
}

impl Payload {
    pub fn new(path: PathBuf, args: Vec<String>) -> Payload {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "payload".into());
        Payload { name, path, args }
    }
}

/// What the guest runs: binaries (one boot, in order) or a shell command.
pub enum Work {
    Bins(Vec<Payload>),
    Shell(String),
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A staging folder shared into the guest with 9p; removed on drop.
pub struct Share {
    pub dir: PathBuf,
}

impl Drop for Share {
    fn drop(&mut self) {
        if std::env::var_os("KBUS_KEEP_SHARE").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Remove share folders left by runs that were killed (their pid is gone).
/// Names are `.share.tmp-<pid>-<nanos>` (see `scratch_beside`).
fn remove_stale_shares(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".share.tmp-") else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Stage kbus.ko, the binaries and the run script in a fresh share folder.
pub fn stage(t: &Target, ko: Option<&Path>, devices: u32, work: &Work) -> Result<Share> {
    let base = target_dir().join("rig").join(t.arch.name());
    fs::create_dir_all(&base)?;
    remove_stale_shares(&base);
    let share = Share {
        dir: scratch_beside(&base.join("share")),
    };
    fs::create_dir_all(share.dir.join("bin"))?;
    let mut env = format!("KBUS_DEVICES={devices}\n");
    // The guest init checks kmemleak after rmmod (debug kernel).
    env.push_str(if t.guest.kmemleak_check {
        "RIG_KMEMLEAK=1\n"
    } else {
        "RIG_KMEMLEAK=\n"
    });
    if let Some(ko) = ko {
        link_or_copy(ko, &share.dir.join("kbus.ko"))?;
        env.push_str("RIG_KO=kbus.ko\n");
    } else {
        env.push_str("RIG_KO=\n");
    }
    fs::write(share.dir.join("rig.env"), env)?;

    let mut script = String::from("# Written by cargo xtask\ncd /mnt/host\n");
    match work {
        Work::Shell(cmd) => {
            script.push_str(cmd);
            script.push('\n');
        }
        Work::Bins(bins) if bins.len() == 1 => {
            let b = &bins[0];
            link_or_copy(&b.path, &share.dir.join("bin").join(&b.name))?;
            script.push_str(&format!("./bin/{}", sh_quote(&b.name)));
            for a in &b.args {
                script.push(' ');
                script.push_str(&sh_quote(a));
            }
            script.push('\n');
        }
        Work::Bins(bins) => {
            script.push_str("failed=0\n");
            let mut used = std::collections::BTreeSet::new();
            for b in bins {
                let mut name = b.name.clone();
                let mut n = 1;
                while !used.insert(name.clone()) {
                    n += 1;
                    name = format!("{}.{n}", b.name);
                }
                link_or_copy(&b.path, &share.dir.join("bin").join(&name))?;
                let args: String = b.args.iter().map(|a| format!(" {}", sh_quote(a))).collect();
                script.push_str(&format!(
                    "echo 'KBUS-RIG-STEP-BEGIN: {name}'\n\
                     ./bin/{q}{args}\n\
                     rc=$?\n\
                     echo \"KBUS-RIG-STEP: {name} $rc\"\n\
                     [ $rc -eq 0 ] || failed=$((failed + 1))\n",
                    q = sh_quote(&name),
                ));
            }
            script.push_str("exit $failed\n");
        }
    }
    fs::write(share.dir.join("run.sh"), script)?;
    Ok(share)
}

// ---------------------------------------------------------------- boot

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
    pub boot_to_result: Option<Duration>,
    pub total: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit == Some(0)
            && self.checks_ok == Some(true)
            && self.error.is_none()
            && self.kernel_trouble.is_empty()
            && !self.timed_out
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
        .args(&q.extra_args)
        .stdin(Stdio::null())
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
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    if tx.send(line).is_err() {
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
            Ok(line) => {
                {
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                parse_line(&line, &mut o, start);
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

fn parse_line(line: &str, o: &mut Outcome, start: Instant) {
    if let Some(rest) = line.split("KBUS-RIG-EXIT: ").nth(1) {
        o.exit = Some(rest.trim().parse().unwrap_or(-1));
        o.boot_to_result = Some(start.elapsed());
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

/// Boot once and run `work`; prints the verdict and timings.
pub fn run_work(
    t: &Target,
    k: &Kernel,
    ko: Option<&Path>,
    devices: u32,
    work: &Work,
    timeout: Duration,
) -> Result<Outcome> {
    let img = initramfs(t, k)?;
    let share = stage(t, ko, devices, work)?;
    let o = boot(t, k, &img, &share, timeout)?;
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

    /// One parsed `newc` entry: the 13 header fields, the name and the data.
    struct Entry {
        fields: [u32; 13],
        name: String,
        data: Vec<u8>,
    }

    /// Parse a whole `newc` archive, checking the magic and the 4-byte
    /// alignment of every name and data section.
    fn parse(mut buf: &[u8]) -> Vec<Entry> {
        let total = buf.len();
        let mut entries = Vec::new();
        loop {
            assert_eq!((total - buf.len()) % 4, 0, "header not aligned");
            assert_eq!(&buf[..6], b"070701");
            let mut fields = [0u32; 13];
            for (i, f) in fields.iter_mut().enumerate() {
                let hex = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).unwrap();
                assert!(hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                *f = u32::from_str_radix(hex, 16).unwrap();
            }
            let namesize = fields[11] as usize;
            let name_end = 110 + namesize;
            assert_eq!(buf[name_end - 1], 0, "name not NUL-terminated");
            let name = std::str::from_utf8(&buf[110..name_end - 1])
                .unwrap()
                .to_owned();
            let data_start = name_end.next_multiple_of(4);
            assert!(buf[name_end..data_start].iter().all(|&b| b == 0));
            let filesize = fields[6] as usize;
            let data_end = data_start + filesize;
            let data = buf[data_start..data_end].to_vec();
            let next = data_end.next_multiple_of(4);
            assert!(buf[data_end..next].iter().all(|&b| b == 0));
            buf = &buf[next..];
            let done = name == "TRAILER!!!";
            entries.push(Entry { fields, name, data });
            if done {
                // Only zero padding after the trailer.
                assert!(buf.iter().all(|&b| b == 0));
                return entries;
            }
        }
    }

    #[test]
    fn cpio_newc() {
        let mut c = Cpio::new();
        c.dir("dev");
        c.char_dev("dev/console", 5, 1);
        c.file("init", 0o755, b"#!/bin/sh\necho hi\n");
        c.file("e", 0o644, b"");
        let out = c.finish();
        assert_eq!(out.len() % 512, 0);

        let e = parse(&out);
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "e", "TRAILER!!!"]);
        for (i, e) in e.iter().enumerate() {
            // ino counts up from 1; uid, gid, mtime, devmajor/minor, check are 0;
            // nlink 1; namesize includes the NUL.
            assert_eq!(e.fields[0], i as u32 + 1);
            assert_eq!(e.fields[2..6], [0, 0, 1, 0]);
            assert_eq!(e.fields[7..9], [0, 0]);
            assert_eq!(e.fields[11] as usize, e.name.len() + 1);
            assert_eq!(e.fields[12], 0);
            assert_eq!(e.fields[6] as usize, e.data.len());
        }
        assert_eq!(e[0].fields[1], 0o040_755);
        assert_eq!(e[1].fields[1], 0o020_600);
        assert_eq!(e[1].fields[9..11], [5, 1]);
        assert_eq!(e[2].fields[1], 0o100_755);
        assert_eq!(e[2].data, b"#!/bin/sh\necho hi\n");
        assert_eq!(e[3].fields[1], 0o100_644);
        assert!(e[3].data.is_empty());
        assert_eq!(e[4].fields[1], 0);
        assert_eq!(e[4].fields[9..11], [0, 0]);
    }
}
