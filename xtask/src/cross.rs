//! Cargo builds for the guests: static binaries for each arch's Rust target
//! in `guest/` of the build dir ([`util::build_dir`], under the cache), cross
//! arches with `-Zbuild-std` and the Debian cross gcc.

use crate::target::Target;
use crate::util::{self, step, workspace_root};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The separate target dir of all guest and cross builds.
pub fn guest_target_dir() -> PathBuf {
    util::build_dir().join("guest")
}

/// `cargo <sub> --target <t> --target-dir <build dir>/guest` with the arch's linker,
/// rustflags and, when needed, `-Zbuild-std`.
pub fn cargo(t: &Target, sub: &str) -> Command {
    cargo_with(t, sub, "std,panic_abort", &[])
}

/// [`cargo`] with the crates `-Zbuild-std` builds and extra rustflags.
fn cargo_with(t: &Target, sub: &str, build_std: &str, extra_rustflags: &[&str]) -> Command {
    let mut c = util::cargo();
    c.arg(sub)
        .args(["--target", &t.rust.target])
        .arg("--target-dir")
        .arg(guest_target_dir())
        // Same value for every build in the guest target dir, so nothing is rebuilt
        // just because it changed.
        .env("RUSTC_BOOTSTRAP", "1")
        // Guests run under TCG emulation, where unoptimised code is slow
        // (the property tests took minutes on mipsel); opt-level 1 keeps
        // debug assertions and overflow checks.
        .env("CARGO_PROFILE_DEV_OPT_LEVEL", "1")
        // Panics in a guest still name file and line; full debuginfo for
        // six targets' std and ~40 test binaries cost minutes of a cold run
        // (and MBs over 9p) for nothing the rig reads.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        // These would override the per-target rustflags below.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if t.rust.build_std {
        c.arg(format!("-Zbuild-std={build_std}"));
    }
    let key = t.rust.target.to_uppercase().replace(['-', '.'], "_");
    if !t.rust.linker.is_empty() {
        c.env(format!("CARGO_TARGET_{key}_LINKER"), &t.rust.linker);
    }
    let mut flags = t.rust.rustflags.clone();
    flags.extend(extra_rustflags.iter().map(|f| f.to_string()));
    c.env(format!("CARGO_TARGET_{key}_RUSTFLAGS"), flags.join(" "));
    c
}

/// Run a cargo command with `--message-format=json-render-diagnostics` and
/// return the executables it produced (`only_tests`: test harness binaries
/// only). Diagnostics go to the terminal as usual.
pub fn executables(mut c: Command, only_tests: bool) -> Result<Vec<PathBuf>> {
    c.arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    step(format!("$ {c:?}"));
    let mut child = c.spawn().context("cannot start cargo")?;
    let out = child.stdout.take().context("cargo stdout")?;
    let mut exes = Vec::new();
    for line in BufReader::new(out).lines() {
        if let Some(exe) = artifact_executable(&line?, only_tests) {
            exes.push(exe);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build for the guest failed: {status}");
    }
    Ok(exes)
}

/// The executable of a cargo `compiler-artifact` JSON message (`only_tests`:
/// only when its `profile.test` is true); None for any other line.
fn artifact_executable(line: &str, only_tests: bool) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let exe = msg.get("executable")?.as_str()?;
    if only_tests && msg.pointer("/profile/test").and_then(|t| t.as_bool()) != Some(true) {
        return None;
    }
    Some(PathBuf::from(exe))
}

/// Build the guest test binaries of `kbus-guest-tests` for `t`.
pub fn guest_tests(t: &Target) -> Result<Vec<PathBuf>> {
    step(format!("building the guest tests for {}", t.arch));
    let mut c = cargo(t, "test");
    c.args(["--no-run", "-p", "kbus-guest-tests"]);
    let mut exes = executables(c, true)?;
    if exes.is_empty() {
        bail!("kbus-guest-tests produced no test binaries for {}", t.arch);
    }
    // The crates' own tests too: on the 32-bit guests they check the 72-byte
    // native layout and the 32-bit and MIPS ioctl request code tables, which
    // the x86_64 host never compiles.
    let mut c = cargo(t, "test");
    c.args(["--no-run", "-p", "kbus-rustix", "--lib", "-p", "kbus-wire"]);
    for name in portable_tests("kbus-wire")? {
        c.args(["--test", &name]);
    }
    exes.extend(executables(c, true)?);
    Ok(exes)
}

/// Build the `kbus-bridge` binary for `t`, optimised (profile `bridge`):
/// its bench compares it with plain Zenoh, built the same way.
pub fn bridge(t: &Target, zenoh: bool) -> Result<PathBuf> {
    let what = if zenoh { "" } else { " (Limpet only)" };
    step(format!("building kbus-bridge{what} for {}", t.arch));
    let mut c = cargo(t, "build");
    c.args([
        "-p",
        "kbus-bridge",
        "--bin",
        "kbus-bridge",
        "--profile",
        "bridge",
    ]);
    if !zenoh {
        c.arg("--no-default-features");
    }
    let exes = executables(c, false)?;
    exes.into_iter()
        .find(|e| e.file_name().is_some_and(|n| n == "kbus-bridge"))
        .context("cargo built no kbus-bridge executable")
}

/// Integration tests of `krate` that read the repository's files at run
/// time and so run on the host only.
const HOST_ONLY_TESTS: &[&str] = &["fuzz_seeds"];

/// The integration tests of `krate` (`<krate>/tests/*.rs`) that can run in a
/// guest: all but [`HOST_ONLY_TESTS`].
fn portable_tests(krate: &str) -> Result<Vec<String>> {
    let dir = workspace_root().join(krate).join("tests");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if !HOST_ONLY_TESTS.contains(&stem) {
                    names.push(stem.to_owned());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Build one example of `package` for `t` with `profile`.
pub fn example(t: &Target, package: &str, name: &str, profile: &str) -> Result<PathBuf> {
    example_with(t, package, name, profile, &[])
}

/// [`example`] with extra cargo arguments (e.g. `--features tokio`).
pub fn example_with(
    t: &Target,
    package: &str,
    name: &str,
    profile: &str,
    extra: &[&str],
) -> Result<PathBuf> {
    step(format!("building example {name} for {}", t.arch));
    let mut c = cargo(t, "build");
    c.args(["-p", package, "--example", name, "--profile", profile]);
    c.args(extra);
    let exes = executables(c, false)?;
    exes.into_iter()
        .find(|e| e.file_name().is_some_and(|n| n == name))
        .with_context(|| format!("cargo built no executable for example {name}"))
}

/// Build the binary `name` of `package` for `t` with `profile` (e.g. the
/// `kbus` CLI of `kbus-cli`).
pub fn bin(t: &Target, package: &str, name: &str, profile: &str) -> Result<PathBuf> {
    step(format!("building binary {name} for {}", t.arch));
    let mut c = cargo(t, "build");
    c.args(["-p", package, "--bin", name, "--profile", profile]);
    let exes = executables(c, false)?;
    exes.into_iter()
        .find(|e| e.file_name().is_some_and(|n| n == name))
        .with_context(|| format!("cargo built no executable for binary {name}"))
}

/// Build one bench target of `package` for `t` (`cargo bench --no-run`,
/// profile `bench`); its executable is `deps/<name>-<hash>`.
pub fn bench(t: &Target, package: &str, name: &str) -> Result<PathBuf> {
    step(format!("building bench {name} for {}", t.arch));
    let mut c = cargo(t, "bench");
    c.args(["--no-run", "-p", package, "--bench", name]);
    let exes = executables(c, false)?;
    let prefix = format!("{}-", name.replace('-', "_"));
    exes.into_iter()
        .find(|e| {
            e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .with_context(|| format!("cargo built no executable for bench {name}"))
}

/// Build the `no_std` firmware example of kbus-rustix for `t` with profile
/// `firmware`: default features off (no std, no alloc, so rustix makes raw
/// system calls only), no C start files (the example has its own `_start`),
/// static relocation model.
pub fn firmware(t: &Target, package: &str, name: &str, profile: &str) -> Result<PathBuf> {
    step(format!("building the {name} example for {}", t.arch));
    let mut c = cargo_with(
        t,
        "build",
        "core,panic_abort",
        &[
            "-C",
            "relocation-model=static",
            "-C",
            "link-arg=-nostartfiles",
        ],
    );
    c.args(["-p", package, "--example", name, "--profile", profile])
        .arg("--no-default-features");
    let exes = executables(c, false)?;
    exes.into_iter()
        .find(|e| e.file_name().is_some_and(|n| n == name))
        .with_context(|| format!("cargo built no executable for example {name}"))
}

/// Does `package` (a workspace folder) have example `name` (file or folder)?
pub fn has_example(dir: &str, name: &str) -> bool {
    let ex = workspace_root().join(dir).join("examples");
    ex.join(format!("{name}.rs")).is_file() || ex.join(name).join("main.rs").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let l = r#"{"reason":"compiler-artifact","profile":{"opt_level":"0","test":true},"executable":"/a/b\"c\\d","fresh":true}"#;
        assert_eq!(
            artifact_executable(l, true).unwrap(),
            PathBuf::from("/a/b\"c\\d")
        );
        let l = r#"{"reason":"compiler-artifact","target":{"test":true},"profile":{"test":false},"executable":"/x"}"#;
        assert_eq!(artifact_executable(l, true), None);
        assert_eq!(artifact_executable(l, false), Some(PathBuf::from("/x")));
        let l = r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":null}"#;
        assert_eq!(artifact_executable(l, false), None);
        let l = r#"{"reason":"build-script-executed","executable":"/y"}"#;
        assert_eq!(artifact_executable(l, false), None);
        assert_eq!(artifact_executable("not json", false), None);
    }
}
