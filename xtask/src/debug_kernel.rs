//! The debug kernel: Debian's `linux-source-*` at the version of a base
//! target's Debian kernel, configured with a fragment on top of
//! `make allnoconfig` (qemu/debug-kernel.config: KASAN, lockdep, kmemleak,
//! UBSAN, fault injection) and built with the host's gcc.
//!
//! Cached in `$KBUS_CACHE/debug-kernel/<version>-<recipe hash>/`:
//! `linux/` is the build tree (object files removed; `make -C linux M=...`
//! builds out-of-tree modules against it), `linux/arch/x86/boot/bzImage` the
//! image, `release` the kernel release. A cold build works in
//! `debug-kernel/.<key>.build/`, which a later run resumes (make is
//! incremental) if the build was interrupted.

use crate::setup::{self, extract_debs, path_safe, Apt, Kernel};
use crate::target::{SourceKernelSpec, Target};
use crate::util::{cache_dir, capture, publish_dir, run, step, workspace_root, Fnv};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bump when the build steps below change what ends up in the cache.
const RECIPE_VERSION: &str = "1";

/// The debug kernel for `t` (built once, then cached).
pub fn kernel(t: &Target, sk: &SourceKernelSpec) -> Result<Kernel> {
    let base_t = sk.base_arch()?.spec()?;
    if base_t.source_kernel.is_some() {
        bail!(
            "[source_kernel] base = {}: must be a Debian-kernel target",
            sk.base
        );
    }
    // The base target's Debian kernel gives the version (and the busybox).
    let base = setup::kernel(&base_t)?;
    let frag_path = workspace_root().join(&sk.config);
    let frag = fs::read_to_string(&frag_path)
        .with_context(|| format!("reading {}", frag_path.display()))?;
    let key = Fnv::new()
        .add(RECIPE_VERSION.as_bytes())
        .add(sk.package.as_bytes())
        .add(base.version.as_bytes())
        .add(t.kbuild.arch.as_bytes())
        .add(frag.as_bytes())
        .hex();
    let name = format!("{}-{key}", path_safe(&base.version));
    let dest = cache_dir()?.join("debug-kernel").join(&name);
    if !dest.join(".complete").exists() {
        build(t, sk, &base.version, &frag_path, &frag, &dest)?;
    }
    let release = fs::read_to_string(dest.join("release"))
        .context("cached debug kernel lacks `release`")?
        .trim()
        .to_string();
    let tree = dest.join("linux");
    Ok(Kernel {
        image: tree.join(&t.debian.kernel_image),
        headers: tree,
        release,
        version: base.version,
        root: dest,
        // virtio-pci and 9p are built in.
        modules: Vec::new(),
        busybox: base.busybox,
        busybox_version: base.busybox_version,
    })
}

/// `make -C tree ARCH=...`, under `flock lock` when given.
fn make(tree: &Path, t: &Target, lock: Option<&Path>) -> Command {
    let mut c = match lock {
        Some(l) => {
            let mut c = Command::new("flock");
            c.arg(l).arg("make");
            c
        }
        None => Command::new("make"),
    };
    c.arg("-C")
        .arg(tree)
        .arg(format!("ARCH={}", t.kbuild.arch))
        .arg("--no-print-directory");
    if !t.kbuild.cross_compile.is_empty() {
        c.arg(format!("CROSS_COMPILE={}", t.kbuild.cross_compile));
    }
    c
}

/// The `CONFIG_*` lines of the fragment that `.config` lacks: a symbol whose
/// dependencies are missing is dropped silently by kconfig.
fn missing_config(frag: &str, config: &str) -> Vec<String> {
    let have: std::collections::BTreeSet<&str> = config.lines().map(str::trim).collect();
    let mut missing = Vec::new();
    for line in frag.lines().map(str::trim) {
        if line.starts_with("CONFIG_") {
            if !have.contains(line) {
                missing.push(line.to_string());
            }
        } else if let Some(sym) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            let set = format!("{sym}=");
            if config.lines().any(|l| l.starts_with(&set)) {
                missing.push(line.to_string());
            }
        }
    }
    missing
}

fn build(
    t: &Target,
    sk: &SourceKernelSpec,
    version: &str,
    frag_path: &Path,
    frag: &str,
    dest: &Path,
) -> Result<()> {
    let name = dest.file_name().context("dest name")?.to_string_lossy();
    let work = dest.with_file_name(format!(".{name}.build"));
    fs::create_dir_all(&work)?;
    let _guard = BuildLock::take(&work.with_extension("owner"))?;
    if dest.join(".complete").exists() {
        return Ok(()); // another xtask built it while we waited
    }
    // One build at a time per key (flock(1) frees it if we die).
    let lock = work.join("lock");
    let tree = work.join("linux");
    let start = Instant::now();
    if !work.join(".extracted").exists() {
        step(format!(
            "fetching {} {version} for the {} debug kernel",
            sk.package, t.arch
        ));
        let _ = fs::remove_dir_all(&tree);
        let debs = work.join("debs");
        let root = work.join("deb-root");
        let _ = fs::remove_dir_all(&debs);
        let _ = fs::remove_dir_all(&root);
        Apt::new(t.suite)?.download(&debs, &[format!("{}={version}", sk.package)])?;
        extract_debs(&debs, &root)?;
        let tarball = fs::read_dir(root.join("usr/src"))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
            .context("no .tar.xz in the linux-source package")?;
        let unpack = work.join("unpack");
        let _ = fs::remove_dir_all(&unpack);
        fs::create_dir_all(&unpack)?;
        step("unpacking the kernel source");
        run(Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&unpack))?;
        let top = fs::read_dir(&unpack)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("Makefile").is_file())
            .context("the source tarball has no top folder with a Makefile")?;
        fs::rename(&top, &tree)?;
        fs::remove_dir_all(&unpack)?;
        fs::remove_dir_all(&debs)?;
        fs::remove_dir_all(&root)?;
        fs::write(work.join(".extracted"), format!("{version}\n"))?;
    }

    step(format!(
        "configuring the debug kernel: allnoconfig + {}",
        frag_path.display()
    ));
    run(make(&tree, t, Some(&lock))
        .arg("-s")
        .arg(format!("KCONFIG_ALLCONFIG={}", frag_path.display()))
        .arg("allnoconfig"))?;
    run(make(&tree, t, Some(&lock)).args(["-s", "olddefconfig"]))?;
    let config = fs::read_to_string(tree.join(".config"))?;
    let missing = missing_config(frag, &config);
    if !missing.is_empty() {
        bail!(
            "{} asks for settings kconfig dropped (missing dependencies?):\n    {}",
            frag_path.display(),
            missing.join("\n    ")
        );
    }

    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let log = work.join("build.log");
    step(format!(
        "building the debug kernel ({} {version}, make -j{jobs}; a cold build takes \
         ~13 min on 2 cores; log: {})",
        sk.package,
        log.display()
    ));
    let logf = fs::File::create(&log)?;
    let mut cmd = make(&tree, t, Some(&lock));
    cmd.arg(format!("-j{jobs}"))
        .args(["bzImage", "modules"])
        .stdin(Stdio::null())
        .stdout(logf);
    step(format!("$ {cmd:?}"));
    let status = cmd.status().context("cannot start make")?;
    if !status.success() {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        for l in tail.iter().rev() {
            eprintln!("    {l}");
        }
        bail!(
            "the debug kernel build failed ({status}); log: {}",
            log.display()
        );
    }
    let release = capture(make(&tree, t, None).args(["-s", "kernelrelease"]))?;
    step(format!(
        "debug kernel {} built in {:.0} s",
        release.trim(),
        start.elapsed().as_secs_f64()
    ));
    for f in [
        "Module.symvers",
        &t.debian.kernel_image,
        "scripts/mod/modpost",
    ] {
        if !tree.join(f).is_file() {
            bail!("the debug kernel build left no {f}");
        }
    }
    // Object files are not needed for out-of-tree modules: drop them.
    remove_objects(&tree)?;

    let out = work.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)?;
    fs::rename(&tree, out.join("linux"))?;
    fs::write(out.join("release"), release)?;
    fs::write(out.join("config"), &config)?;
    fs::write(
        out.join(".complete"),
        format!("{version} {:.0}s\n", start.elapsed().as_secs_f64()),
    )?;
    publish_dir(&out, dest)?;
    let _ = fs::remove_dir_all(&work);
    prune_others(dest);
    Ok(())
}

/// A new build replaces the older ones (1.6 GB each): remove every other
/// finished build in `debug-kernel/` (builds in progress start with a dot).
fn prune_others(dest: &Path) {
    let (Some(dir), Some(keep)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        if name != keep
            && !name.to_string_lossy().starts_with('.')
            && e.path().join(".complete").exists()
        {
            step(format!(
                "removing the older debug kernel {}",
                e.path().display()
            ));
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Remove `*.o`, `*.a` and the intermediate vmlinux links under `dir`.
fn remove_objects(dir: &Path) -> Result<()> {
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            let ty = e.file_type()?;
            let name = e.file_name().to_string_lossy().into_owned();
            if ty.is_dir() {
                stack.push(e.path());
            } else if ty.is_file()
                && (name.ends_with(".o")
                    || name.ends_with(".a")
                    || name.starts_with(".tmp_vmlinux"))
            {
                fs::remove_file(e.path())?;
            }
        }
    }
    Ok(())
}

/// One builder per work folder: a folder created atomically, holding the
/// owner's pid; taken over when that process is gone.
struct BuildLock(PathBuf);

impl BuildLock {
    fn take(path: &Path) -> Result<BuildLock> {
        let mut said = false;
        loop {
            match fs::create_dir(path) {
                Ok(()) => {
                    fs::write(path.join("pid"), std::process::id().to_string())?;
                    return Ok(BuildLock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = fs::read_to_string(path.join("pid")).unwrap_or_default();
                    let pid = pid.trim();
                    if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                        let _ = fs::remove_dir_all(path);
                        continue;
                    }
                    if !said {
                        step(format!(
                            "waiting for xtask {pid} to finish building the debug kernel"
                        ));
                        said = true;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
