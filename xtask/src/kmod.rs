//! `kmod`: build `kmod/kbus.ko` out of tree against the Debian headers.
//!
//! The sources are mirrored into `target/kmod/<arch>/` (only changed files are
//! rewritten, so make stays incremental) and built there, keeping `kmod/` clean.

use crate::setup::Kernel;
use crate::target::Target;
use crate::util::{step, target_dir, workspace_root, write_if_changed};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Files of `kmod/` that are sources (everything else is build output).
fn is_source(name: &str) -> bool {
    name == "Makefile"
        || name == "Kbuild"
        || (name.ends_with(".c") && !name.ends_with(".mod.c"))
        || name.ends_with(".h")
}

fn mirror(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst)?;
    for e in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ty = e.file_type()?;
        if ty.is_dir() && !name.starts_with('.') {
            mirror(&e.path(), &dst.join(&name))?;
        } else if ty.is_file() && is_source(&name) {
            write_if_changed(&dst.join(&name), &fs::read(e.path())?)?;
        }
    }
    // Drop sources deleted from kmod/ (and their objects).
    for e in fs::read_dir(dst)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_file() && is_source(&name) && !src.join(&name).exists() {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Build kbus.ko for `t`'s arch from `kmod/` (or `$KBUS_KMOD_SRC`); returns
/// its path. Any compiler warning fails the build.
pub fn build(t: &Target, k: &Kernel) -> Result<PathBuf> {
    // KBUS_KMOD_SRC: build another module tree (for trying the rig itself).
    let src = std::env::var_os("KBUS_KMOD_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("kmod"));
    build_tree(t, k, &src)
}

/// Build kbus.ko for `t`'s arch from the module source tree `src` (e.g. a
/// `git archive` of another revision for `cargo xtask bench --ab`); returns
/// its path. Any compiler warning fails the build.
pub fn build_tree(t: &Target, k: &Kernel, src: &Path) -> Result<PathBuf> {
    // make runs on the host, or in the suite's build root (its own gcc).
    let make = crate::buildroot::make_prefix(t, k)?;
    let place = if make.len() > 1 {
        format!(" (in the {} build root)", t.suite.name)
    } else {
        String::new()
    };
    build_in(t, &k.headers, &k.release, &make, &place, src)
}

/// Build kbus.ko from `kmod/` against a kernel build or headers directory
/// `kdir` alone (a vendor tree: nothing but the directory is known), with
/// the host's make and `t`'s `ARCH`/`CROSS_COMPILE`; returns its path and
/// the kernel release the tree says it is for.
pub fn build_kdir(t: &Target, kdir: &Path) -> Result<(PathBuf, String)> {
    let release = kdir_release(kdir)?;
    let ko = build_in(
        t,
        kdir,
        &release,
        &["make".to_string()],
        &format!(" (--kdir {})", kdir.display()),
        &workspace_root().join("kmod"),
    )?;
    Ok((ko, release))
}

/// The release a kernel tree builds modules for (`UTS_RELEASE`).
pub fn kdir_release(kdir: &Path) -> Result<String> {
    let uts = kdir.join("include/generated/utsrelease.h");
    let text = fs::read_to_string(&uts).with_context(|| {
        format!(
            "{} is not a prepared kernel build or headers tree (no {})",
            kdir.display(),
            uts.display()
        )
    })?;
    text.split('"')
        .nth(1)
        .map(str::to_string)
        .with_context(|| format!("no UTS_RELEASE in {}", uts.display()))
}

/// A module's `vermagic` string.
fn vermagic(ko: &Path) -> Result<String> {
    let out = Command::new("modinfo")
        .args(["-F", "vermagic"])
        .arg(ko)
        .stdin(Stdio::null())
        .output()
        .context("cannot start modinfo")?;
    let vermagic = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || vermagic.is_empty() {
        bail!("{} has no vermagic: not a kernel module?", ko.display());
    }
    Ok(vermagic)
}

/// The kernel release a module was built for (first word of its vermagic).
pub fn module_release(ko: &Path) -> Result<String> {
    Ok(vermagic(ko)?
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string())
}

/// The `vermagic` of a built module must start with the kernel's release,
/// or insmod refuses it with a terse "Exec format error".
pub fn check_vermagic(ko: &Path, release: &str) -> Result<()> {
    let vermagic = vermagic(ko)?;
    let module_release = vermagic.split_whitespace().next().unwrap_or("");
    if module_release != release {
        bail!(
            "{} was built for kernel {module_release} (vermagic \"{vermagic}\"), \
             but the guest boots {release}: the kernel would refuse it",
            ko.display()
        );
    }
    Ok(())
}

fn build_in(
    t: &Target,
    headers: &Path,
    release: &str,
    make: &[String],
    place: &str,
    src: &Path,
) -> Result<PathBuf> {
    if !src.is_dir() {
        bail!("{} does not exist", src.display());
    }
    // Another tree gets its own mirror, so that builds of two trees (an A/B
    // bench, a stable copy beside a work in progress) never mix objects.
    let default = workspace_root().join("kmod");
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    // One mirror per kernel (a compat cell shares its 64-bit arch's).
    let kernel = format!("{}-{release}", t.kernel_arch.name());
    let dir = if same(src, &default) {
        target_dir().join("kmod").join(kernel)
    } else {
        target_dir()
            .join("kmod")
            .join(format!("{kernel}-{}", tree_tag(src)))
    };
    mirror(src, &dir)?;

    // Several xtasks may build the same arch at once (a cargo runner and a
    // kmod edit loop): flock(1) (util-linux, always on Debian) serializes
    // the mirror and make, and frees the lock if we die.
    let lock = dir.with_extension("lock");
    let mut cmd = Command::new("flock");
    cmd.arg(&lock)
        .args(make)
        .arg("-C")
        .arg(headers)
        .arg(format!("M={}", dir.display()))
        .arg(format!("ARCH={}", t.kbuild.arch))
        .arg("W=1")
        .arg("--no-print-directory")
        .arg("-j2")
        .arg("modules");
    if !t.kbuild.cross_compile.is_empty() {
        cmd.arg(format!("CROSS_COMPILE={}", t.kbuild.cross_compile));
    }
    step(format!(
        "building kbus.ko for {} against {release} headers{place}",
        t.kernel_arch
    ));
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("cannot start make")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Point diagnostics at kmod/, not at the mirror.
    let mirror_prefix = format!("{}/", dir.display());
    let src_prefix = format!("{}/", src.display());
    eprint!(
        "{}{}",
        stdout.replace(&mirror_prefix, &src_prefix),
        stderr.replace(&mirror_prefix, &src_prefix)
    );
    let warnings = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("warning:"))
        .count();
    if !out.status.success() || warnings > 0 {
        // Force a full rebuild next time, so the diagnostics are shown again.
        clean_objects(&dir)?;
        if !out.status.success() {
            bail!("kmod build for {} failed ({})", t.arch, out.status);
        }
        bail!(
            "kmod build for {} has {warnings} warning(s); warnings are errors",
            t.arch
        );
    }
    let ko = dir.join("kbus.ko");
    if !ko.is_file() {
        bail!("make succeeded but {} is missing", ko.display());
    }
    Ok(ko)
}

/// A short, stable name for a module source tree (FNV-1a of its path).
fn tree_tag(src: &Path) -> String {
    let path = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.to_string_lossy().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn clean_objects(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_file() && !is_source(&name) {
            fs::remove_file(e.path())?;
        } else if e.file_type()?.is_dir() {
            clean_objects(&e.path())?;
        }
    }
    Ok(())
}

/// The one header that may name kernel versions.
const COMPAT_HEADER: &str = "kbus_compat.h";

/// checkpatch.pl --strict on `files` with `extra` options; the number of findings.
fn run_checkpatch(script: &Path, files: &[PathBuf], extra: &[&str]) -> Result<usize> {
    let out = Command::new("perl")
        .arg(script)
        .args(["--no-tree", "--strict", "--terse", "--show-types"])
        .args(extra)
        .arg("-f")
        .args(files)
        .stdin(Stdio::null())
        .output()
        .context("cannot start perl")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let findings = text
        .lines()
        .filter(|l| !l.starts_with("total:") && !l.trim().is_empty())
        .count();
    if findings > 0 || !out.status.success() {
        eprint!("{text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(if out.status.success() {
        findings
    } else {
        findings.max(1)
    })
}

/// Run the kernel's `scripts/checkpatch.pl --strict` of the source tree
/// `tree` over `kmod/`'s C files; any finding fails.
pub fn checkpatch(tree: &Path) -> Result<()> {
    let script = tree.join("scripts/checkpatch.pl");
    if !script.is_file() {
        bail!("{} is missing (not a kernel source tree)", script.display());
    }
    let src = workspace_root().join("kmod");
    let mut files: Vec<PathBuf> = fs::read_dir(&src)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| is_source(n) && n != "Makefile" && n != "Kbuild")
        })
        .collect();
    files.sort();
    step(format!(
        "checkpatch --strict on {} files of kmod/",
        files.len()
    ));
    // Kernel-version checks live in one header (the rule, and
    // checkpatch's own dislike of LINUX_VERSION_CODE): anywhere else they
    // fail; there, checkpatch's two warnings about them are expected.
    let (compat, rest): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|p| p.file_name().is_some_and(|n| n == COMPAT_HEADER));
    for p in &rest {
        if fs::read_to_string(p)?.contains("LINUX_VERSION_CODE") {
            bail!(
                "{} names LINUX_VERSION_CODE: kernel-version differences belong in kmod/{COMPAT_HEADER}",
                p.display()
            );
        }
    }
    let mut findings = run_checkpatch(&script, &rest, &[])?;
    if !compat.is_empty() {
        findings += run_checkpatch(
            &script,
            &compat,
            &["--ignore", "LINUX_VERSION_CODE,CONSTANT_COMPARISON"],
        )?;
    }
    if findings > 0 {
        bail!("checkpatch: {findings} finding(s) in kmod/");
    }
    Ok(())
}
