//! Small helpers: running commands, paths, hashing, copying.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root (parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory for this workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("target"),
    }
}

/// The cache folder outside the repo: `$KBUS_CACHE` or `~/.cache/kbus`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("KBUS_CACHE") {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME").context("neither KBUS_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("kbus"))
}

/// The cargo running xtask (`$CARGO`, else `cargo` on PATH), in the
/// workspace root and with [`build_dir`] as its target dir: the start of
/// every cargo command the rig runs, host and guest builds alike.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", build_dir());
    c
}

/// Cargo's target dir for the builds the rig runs (host checks, guest and
/// cross builds): `$CARGO_TARGET_DIR` if set, else
/// `<cache>/cargo-target/<toolchain>`. Outside the clone, a fresh clone
/// (every CI run) rebuilds only the workspace's own crates, not the
/// standard library for six targets, Zenoh and the other dependencies;
/// cargo names a workspace crate's artifacts by its path inside the
/// workspace, so clones at different paths share them. Keyed by the
/// toolchain (`rustc -V`): the first build with a new one removes the
/// other toolchains' folders.
pub fn build_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
            return PathBuf::from(d);
        }
        match cache_dir() {
            Ok(cache) => toolchain_build_dir(&cache.join("cargo-target")),
            Err(_) => target_dir(),
        }
    })
    .clone()
}

/// `parent/<toolchain>`, made on first use, with the other toolchains'
/// folders under `parent` removed then.
fn toolchain_build_dir(parent: &Path) -> PathBuf {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let key = toolchain_key(&version);
    let dir = parent.join(&key);
    if !dir.exists() {
        if let Ok(entries) = fs::read_dir(parent) {
            // Never our own: a concurrent first run may have made it since.
            for e in entries.flatten().filter(|e| e.file_name() != key.as_str()) {
                step(format!(
                    "removing {} (another toolchain's builds)",
                    e.path().display()
                ));
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    dir
}

/// A folder name for the toolchain that `rustc -V` printed, e.g.
/// `1.95.0-59807616e` for `rustc 1.95.0 (59807616e 2026-04-14)`.
fn toolchain_key(version: &str) -> String {
    let words: Vec<&str> = version
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        ["rustc", release, hash, ..] => format!("{release}-{hash}"),
        ["rustc", release] => release.to_string(),
        _ => "unknown-toolchain".to_string(),
    }
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || ".-_".contains(c) {
            c
        } else {
            '_'
        }
    })
    .collect()
}

/// Print a step header in cargo's style (`    Building kbus.ko for …`), so
/// the log shows what the rig is doing, one short line per step. Commands
/// (`$ …`) are `Running` and shortened unless `KBUS_VERBOSE` is set.
pub fn step(msg: impl AsRef<str>) {
    let (verb, rest) = step_parts(msg.as_ref());
    let color = rustix::termios::isatty(std::io::stderr());
    if color {
        eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {rest}");
    } else {
        eprintln!("{verb:>12} {rest}");
    }
}

/// The verb (first word, capitalized) and the rest of a step message.
fn step_parts(msg: &str) -> (String, String) {
    if let Some(cmd) = msg.strip_prefix("$ ") {
        const MAX: usize = 150;
        let cmd = if cmd.chars().count() > MAX && std::env::var_os("KBUS_VERBOSE").is_none() {
            let short: String = cmd.chars().take(MAX).collect();
            format!("{short}… (KBUS_VERBOSE=1 shows all)")
        } else {
            cmd.to_string()
        };
        return ("Running".into(), cmd);
    }
    let (first, rest) = msg.split_once(' ').unwrap_or((msg, ""));
    let mut verb: String = first.chars().take(1).flat_map(char::to_uppercase).collect();
    verb.extend(first.chars().skip(1));
    (verb, rest.to_string())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command with inherited stdio; fail on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = describe(cmd);
    step(format!("$ {desc}"));
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start `{desc}`"))?;
    if !status.success() {
        bail!("`{desc}` failed: {status}");
    }
    Ok(())
}

/// Run a command and capture its output; fail (showing stderr) on a non-zero exit.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let out = capture_raw(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a command and capture its output, whatever its exit status.
pub fn capture_raw(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))
}

/// Is `prog` on PATH?
pub fn have_program(prog: impl AsRef<OsStr>) -> bool {
    let prog = prog.as_ref();
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// FNV-1a, 64 bit: a stable hash for cache keys (std's hasher may change).
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        self
    }
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Write `contents` to `path` only if it differs (keeps mtimes, so make stays
/// incremental).
/// Returns true if the file was written.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> Result<bool> {
    if let Ok(old) = fs::read(path) {
        if old == contents {
            return Ok(false);
        }
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    // Write and rename, so a concurrent reader never sees a half-written file.
    let tmp = scratch_beside(path);
    fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(true)
}

/// Atomically publish a fully built directory `tmp` as `dest`. If another process
/// published `dest` first, ours is thrown away.
pub fn publish_dir(tmp: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => {
            Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
        }
    }
}

/// A unique scratch path next to `dest` (same file system, for `rename`).
pub fn scratch_beside(dest: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

/// Hard-link `src` to `dst`, or copy it when that is impossible.
pub fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    let _ = fs::remove_file(dst);
    if fs::hard_link(src, dst).is_err() {
        fs::copy(src, dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

/// Are we root? (effective user id 0)
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// An exclusive `flock` on a lock file, released on drop (or when the
/// process dies): serializes xtasks that create the same cached thing.
pub struct FileLock(#[allow(dead_code)] fs::File);

impl FileLock {
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(FileLock(f))
    }
}

#[cfg(test)]
mod tests {
    use super::{step_parts, toolchain_key};

    #[test]
    fn toolchains_name_their_build_folders() {
        assert_eq!(
            toolchain_key("rustc 1.95.0 (59807616e 2026-04-14)\n"),
            "1.95.0-59807616e"
        );
        assert_eq!(
            toolchain_key("rustc 1.97.0-nightly (0a1b2c3d4 2026-11-30)"),
            "1.97.0-nightly-0a1b2c3d4"
        );
        assert_eq!(toolchain_key("rustc 1.95.0"), "1.95.0");
        assert_eq!(toolchain_key(""), "unknown-toolchain");
        assert_eq!(toolchain_key("rustc ../x (y)"), ".._x-y");
    }

    #[test]
    fn steps_read_like_cargo() {
        assert_eq!(
            step_parts("building kbus.ko for x86_64"),
            ("Building".into(), "kbus.ko for x86_64".into())
        );
        assert_eq!(
            step_parts("$ make -C x"),
            ("Running".into(), "make -C x".into())
        );
        assert_eq!(step_parts("x"), ("X".into(), String::new()));
    }
}
