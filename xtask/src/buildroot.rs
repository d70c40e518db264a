//! Build roots: a minimal Debian of another suite, in the cache, in which
//! kbuild runs with the compiler that suite's kernel headers expect.
//!
//! Each suite's headers call their own gcc (`.kernelvariables`: bullseye
//! gcc-10, trixie gcc-14, sid gcc-16), and their kbuild tools link to that
//! suite's libc. Installing those on the host would drag a newer libc in, so
//! each suite gets `debootstrap --variant=minbase` with that gcc, make,
//! libc6-dev, perl and kbuild's libraries, cached in
//! `$KBUS_CACHE/buildroot/<suite>-<RECIPE>/`. make runs in it through
//! `chroot`, in a private mount namespace (`unshare --mount`) where the cache
//! and the target dir are bind-mounted at their own paths: nothing is
//! mounted on the host, and the mounts vanish with the process.

use crate::matrix::Suite;
use crate::setup::{self, Apt, Kernel};
use crate::target::Target;
use crate::util::{cache_dir, capture_raw, publish_dir, run, scratch_beside, step, target_dir};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bump when the recipe changes: a new key, a fresh root.
const RECIPE: &str = "r1";

/// The Debian release the host runs (`VERSION_CODENAME`), if it says.
fn host_suite() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// The gcc the headers call: `gcc-N` from their `.kernelvariables`.
fn headers_gcc(headers: &Path) -> Result<String> {
    let path = headers.join(".kernelvariables");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("CC") else {
            continue;
        };
        if let Some(pos) = rest.find("gcc-") {
            let ver: String = rest[pos + 4..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !ver.is_empty() {
                return Ok(format!("gcc-{ver}"));
            }
        }
    }
    bail!("{} names no gcc-N for CC", path.display())
}

/// The program and leading arguments that run `make` for `t`'s kernel `k`:
/// `["make"]` when the host is that suite, else make in the suite's build
/// root. The caller appends make's own arguments.
pub fn make_prefix(t: &Target, k: &Kernel) -> Result<Vec<String>> {
    if t.source_kernel.is_some() || host_suite().as_deref() == Some(t.suite.name) {
        return Ok(vec!["make".into()]);
    }
    let gcc = headers_gcc(&k.headers)?;
    // perl: W=1 runs scripts/kernel-doc.
    let mut pkgs: Vec<String> = ["make", "libc6-dev", "perl"].map(String::from).to_vec();
    pkgs.push(gcc.clone());
    let triple = t.kbuild.cross_compile.trim_end_matches('-');
    if !triple.is_empty() {
        pkgs.push(format!("{gcc}-{triple}"));
    }
    pkgs.extend(kbuild_libraries(t, k)?);
    // Kernels with BTF for modules run pahole on them, and kbuild warns
    // (a warning fails our build) unless it is the kernel's own version,
    // which is the suite's.
    let config = fs::read_to_string(k.headers.join(".config")).unwrap_or_default();
    if config
        .lines()
        .any(|l| l == "CONFIG_DEBUG_INFO_BTF_MODULES=y")
    {
        pkgs.push("dwarves".into());
    }
    let root = ensure_root(t.suite, &pkgs)?;
    let binds = [cache_dir()?, target_dir()];
    let script = "set -e; R=\"$KBUS_BUILDROOT\"; IFS=:; \
                  for p in $KBUS_BINDS; do mkdir -p \"$R$p\"; mount --bind \"$p\" \"$R$p\"; done; \
                  unset IFS; mount -t proc proc \"$R/proc\"; exec chroot \"$R\" make \"$@\"";
    let binds: Vec<String> = binds.iter().map(|p| p.display().to_string()).collect();
    Ok(vec![
        "env".into(),
        format!("KBUS_BUILDROOT={}", root.display()),
        format!("KBUS_BINDS={}", binds.join(":")),
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
    ])
}

/// The shared libraries kbuild's host tools (objtool, modpost, sign-file)
/// need: the library dependencies of the suite's `linux-kbuild-*`.
fn kbuild_libraries(t: &Target, k: &Kernel) -> Result<Vec<String>> {
    let apt = Apt::new(t.suite)?;
    let headers_pkg = format!("linux-headers-{}:{}", k.release, t.debian.arch);
    let kbuild = apt
        .depends(&headers_pkg)?
        .into_iter()
        .find(|d| d.starts_with("linux-kbuild-"))
        .with_context(|| format!("{headers_pkg} depends on no linux-kbuild-*"))?;
    Ok(apt
        .depends(&format!("{kbuild}:amd64"))?
        .into_iter()
        .filter(|d| d.starts_with("lib"))
        .collect())
}

/// The suite's build root with `pkgs` installed (created or completed).
fn ensure_root(suite: &Suite, pkgs: &[String]) -> Result<PathBuf> {
    setup::ensure_packages(&["debootstrap"])?;
    let dest = cache_dir()?
        .join("buildroot")
        .join(format!("{}-{RECIPE}", suite.name));
    fs::create_dir_all(dest.parent().context("buildroot dir")?)?;
    // One xtask at a time creates or completes a root.
    let lock = dest.with_extension("lock");
    let _guard = crate::util::FileLock::acquire(&lock)?;
    if !dest.join(".complete").exists() {
        create_root(suite, &dest, pkgs)?;
    }
    let missing = missing_in_root(&dest, pkgs)?;
    if !missing.is_empty() {
        step(format!(
            "installing {} into the {} build root",
            missing.join(" "),
            suite.name
        ));
        let mut c = Command::new("chroot");
        c.arg(&dest)
            .args(["apt-get", "install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive");
        if run(&mut c).is_err() {
            run(Command::new("chroot")
                .arg(&dest)
                .args(["apt-get", "update", "-q"]))?;
            run(&mut c).with_context(|| {
                format!(
                    "installing {} in the {} build root failed: does Debian {} still ship them?",
                    missing.join(" "),
                    suite.name,
                    suite.name
                )
            })?;
        }
    }
    Ok(dest)
}

fn create_root(suite: &Suite, dest: &Path, pkgs: &[String]) -> Result<()> {
    let scratch = scratch_beside(dest);
    let include = pkgs.to_vec();
    step(format!(
        "creating the {} build root (debootstrap minbase + {})",
        suite.name,
        include.join(" ")
    ));
    let mirror = setup::debian_mirror();
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "--arch=amd64"])
        .arg(format!("--include={}", include.join(",")))
        .arg(suite.name)
        .arg(&scratch)
        .arg(&mirror))
    .with_context(|| format!("debootstrap of Debian {} failed", suite.name))?;
    // apt in the root (for later additions) needs the host's resolver.
    for f in ["/etc/resolv.conf", "/etc/hosts"] {
        if Path::new(f).exists() {
            let _ = fs::copy(f, scratch.join(f.trim_start_matches('/')));
        }
    }
    // Keep the root small: the downloaded .debs are not needed again.
    let _ = run(Command::new("chroot")
        .arg(&scratch)
        .args(["apt-get", "clean"]));
    fs::write(
        scratch.join(".complete"),
        format!("{}\n", include.join(" ")),
    )?;
    publish_dir(&scratch, dest)
}

fn missing_in_root(root: &Path, pkgs: &[String]) -> Result<Vec<String>> {
    let out = capture_raw(
        Command::new("chroot")
            .arg(root)
            .args([
                "dpkg-query",
                "-W",
                "-f",
                "${Package} ${db:Status-Abbrev}\\n",
            ])
            .args(pkgs),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(pkgs
        .iter()
        .filter(|p| {
            !text.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(p.as_str()) && w.next() == Some("ii")
            })
        })
        .cloned()
        .collect())
}
