//! Host side of `setup`: Debian packages on the host, rust-src and rustup components.

use crate::target::Target;
use crate::util::{capture, capture_raw, have_program, is_root, run, step};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Host packages every arch needs: make and kmod (depmod/modprobe) for the
/// kernel module, the archive keyring for the private apt state, and the shared
/// libraries the (amd64) kbuild tools link to.
const COMMON_PACKAGES: [&str; 6] = [
    "make",
    "kmod",
    "debian-archive-keyring",
    "libelf1",
    "libssl3",
    "gcc",
];

/// Install missing Debian packages on the host (or print the command when not root).
pub fn host_packages(t: &Target) -> Result<()> {
    let mut wanted: Vec<&str> = COMMON_PACKAGES.to_vec();
    wanted.extend(t.host.packages.iter().map(String::as_str));
    ensure_packages(&wanted)
}

/// Install `pkgs` with apt-get when any is missing.
pub fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    let out = capture_raw(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"])
            .args(pkgs),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let installed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            (it.next()? == "ii").then_some(name)
        })
        .collect();
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let cmd_text = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!("missing host packages; as root run:\n    {cmd_text}");
    }
    step(format!(
        "installing missing host packages: {}",
        missing.join(" ")
    ));
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        // Maybe the host's package lists are stale or absent.
        run(Command::new("apt-get").arg("update"))?;
        install().with_context(|| format!("`{cmd_text}` failed"))?;
    }
    Ok(())
}

/// Make sure the standard library sources are there for `-Zbuild-std`.
pub fn rust_src() -> Result<()> {
    let sysroot = capture(Command::new("rustc").args(["--print", "sysroot"]))?;
    let src = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library");
    if src.is_dir() {
        return Ok(());
    }
    if !have_program("rustup") {
        bail!(
            "rust-src is missing ({} not found) and rustup is not available to add it",
            src.display()
        );
    }
    run(Command::new("rustup").args(["component", "add", "rust-src"]))
}

/// Make sure rustup components (clippy, rustfmt) are installed.
pub fn rust_components(components: &[&str]) -> Result<()> {
    if !have_program("rustup") {
        // Without rustup the toolchain is what it is; cargo will say what's missing.
        return Ok(());
    }
    let installed = capture(Command::new("rustup").args(["component", "list", "--installed"]))?;
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| {
            !installed
                .lines()
                .any(|l| l.starts_with(&format!("{c}-")) || l == *c)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run(Command::new("rustup")
        .args(["component", "add"])
        .args(&missing))
}
