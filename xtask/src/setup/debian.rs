//! The Debian side of `setup`: a private apt state in the cache, and the
//! kernel image, headers, 9p modules and busybox downloaded with it.

use super::Kernel;
use crate::matrix::Suite;
use crate::target::Target;
use crate::util::{cache_dir, capture, publish_dir, run, scratch_beside, step, write_if_changed};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private apt state in the cache, one per Debian suite (its main
/// component only: `-security` lags for some arches, e.g. bookworm's mipsel).
/// The host's dpkg is never touched.
pub(crate) struct Apt {
    dir: PathBuf,
    conf: PathBuf,
}

impl Apt {
    pub(crate) fn new(suite: &Suite) -> Result<Apt> {
        let dir = cache_dir()?.join("apt").join(suite.name);
        for sub in [
            "lists/partial",
            "archives/partial",
            "sources.list.d",
            "preferences.d",
        ] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let d = dir.display();
        let mirror = debian_mirror();
        let arches = suite.arches.join(",");
        let suite_name = suite.name;
        write_if_changed(
            &dir.join("sources.list"),
            format!(
                "deb [arch={arches} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
                 {mirror} {suite_name} main\n"
            )
            .as_bytes(),
        )?;
        if !dir.join("status").exists() {
            fs::write(dir.join("status"), "")?;
        }
        let arch_list: String = suite.arches.iter().map(|a| format!("\"{a}\"; ")).collect();
        let conf = dir.join("apt.conf");
        write_if_changed(
            &conf,
            format!(
                "Dir::State \"{d}\";\n\
                 Dir::State::Lists \"{d}/lists\";\n\
                 Dir::State::status \"{d}/status\";\n\
                 Dir::Cache \"{d}\";\n\
                 Dir::Cache::Archives \"{d}/archives\";\n\
                 Dir::Etc::sourcelist \"{d}/sources.list\";\n\
                 Dir::Etc::sourceparts \"{d}/sources.list.d\";\n\
                 Dir::Etc::preferences \"{d}/preferences\";\n\
                 Dir::Etc::preferencesparts \"{d}/preferences.d\";\n\
                 APT::Architectures {{ {arch_list}}};\n\
                 APT::Sandbox::User \"root\";\n\
                 Acquire::Languages \"none\";\n\
                 Acquire::IndexTargets::deb::DEP-11::DefaultEnabled \"false\";\n\
                 Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled \"false\";\n\
                 Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled \"false\";\n"
            )
            .as_bytes(),
        )?;
        Ok(Apt { dir, conf })
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("APT_CONFIG", &self.conf);
        // Keep the binary package cache: without it every apt-cache call
        // parses all the lists again (6 s for sid's four arches, 1 s with
        // it). An option, because the host's apt.conf.d is read after
        // APT_CONFIG, and Debian's container images turn the cache off there.
        c.arg("-o").arg(format!(
            "Dir::Cache::pkgcache={}",
            self.dir.join("pkgcache.bin").display()
        ));
        c
    }

    fn has_lists(&self) -> bool {
        fs::read_dir(self.dir.join("lists"))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
            })
            .unwrap_or(false)
    }

    /// Names, sizes and mtimes of the package lists: changes with every update
    /// that changed them.
    fn lists_stamp(&self) -> String {
        let mut files: Vec<String> = fs::read_dir(self.dir.join("lists"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let m = e.metadata().ok()?;
                        let t = m
                            .modified()
                            .ok()?
                            .duration_since(std::time::UNIX_EPOCH)
                            .ok()?;
                        Some(format!(
                            "{}:{}:{}",
                            e.file_name().to_string_lossy(),
                            m.len(),
                            t.as_nanos()
                        ))
                    })
                    .filter(|s| s.contains("_Packages"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        crate::util::Fnv::new()
            .add(files.join(" ").as_bytes())
            .hex()
    }

    fn update(&self) -> Result<()> {
        step("updating the private apt package lists");
        // Another xtask may hold apt's lock on the lists: retry a little.
        let mut last = None;
        for _ in 0..10 {
            match capture(self.cmd("apt-get").args(["update", "-q"])) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_secs(3));
                }
            }
        }
        Err(last.unwrap()).context("apt-get update (private state) failed")
    }

    /// Names a package depends on (first alternative of each Depends line).
    pub(crate) fn depends(&self, pkg: &str) -> Result<Vec<String>> {
        let out = capture(self.cmd("apt-cache").args(["depends", pkg]))?;
        Ok(out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends:"))
            .map(|d| {
                let d = d.trim().trim_start_matches('<').trim_end_matches('>');
                d.split(':').next().unwrap_or(d).to_string()
            })
            .collect())
    }

    /// Candidate version of `pkg` (with `:arch`).
    fn candidate(&self, pkg: &str) -> Result<String> {
        let out = capture(self.cmd("apt-cache").args(["policy", pkg]))?;
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(|v| v.trim().to_string())
            .find(|v| v != "(none)")
            .with_context(|| format!("no candidate version of {pkg} in the private apt state"))
    }

    /// Download `pkg:arch=version` specs into `dir`.
    pub(crate) fn download(&self, dir: &Path, specs: &[String]) -> Result<()> {
        fs::create_dir_all(dir)?;
        run(self
            .cmd("apt-get")
            .args(["download", "-q"])
            .args(specs)
            .current_dir(dir))
    }
}

/// The Debian mirror the host uses (`KBUS_DEBIAN_MIRROR` overrides).
pub(crate) fn debian_mirror() -> String {
    if let Ok(m) = std::env::var("KBUS_DEBIAN_MIRROR") {
        return m;
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(rd.flatten().map(|e| e.path()));
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for word in line.split_whitespace() {
                let w = word.trim_end_matches('/');
                if (w.starts_with("http://") || w.starts_with("https://")) && w.ends_with("/debian")
                {
                    return w.to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// What the lookup in the package lists says is current.
struct Lookup {
    image_pkg: String,
    release: String,
    version: String,
    busybox_version: String,
}

/// [`lookup_uncached`], memoized per arch until the package lists change
/// (apt-cache takes most of a second per call).
fn lookup(apt: &Apt, t: &Target) -> Result<Lookup> {
    let stamp = apt.lists_stamp() + &t.debian.kernel_meta;
    let memo = apt.dir.join(format!("lookup-{}", t.kernel_arch));
    if let Ok(text) = fs::read_to_string(&memo) {
        let f: Vec<&str> = text.lines().collect();
        if f.len() == 5 && f[0] == stamp {
            return Ok(Lookup {
                image_pkg: f[1].into(),
                release: f[2].into(),
                version: f[3].into(),
                busybox_version: f[4].into(),
            });
        }
    }
    let lk = lookup_uncached(apt, t)?;
    let text = format!(
        "{stamp}\n{}\n{}\n{}\n{}\n",
        lk.image_pkg, lk.release, lk.version, lk.busybox_version
    );
    let tmp = scratch_beside(&memo);
    fs::write(&tmp, text)?;
    fs::rename(&tmp, &memo)?;
    Ok(lk)
}

fn lookup_uncached(apt: &Apt, t: &Target) -> Result<Lookup> {
    let arch = &t.debian.arch;
    let suite = t.suite;
    let meta = format!("{}:{arch}", t.debian.kernel_meta);
    let moved_on = || {
        format!(
            "Debian {} no longer provides {meta}: change the `{}` line of SUITES in \
             xtask/src/matrix.rs (its kernel series or its arches)",
            suite.name, suite.name
        )
    };
    let image_pkg = apt
        .depends(&meta)
        .ok()
        .and_then(|d| d.into_iter().find(|d| d.starts_with("linux-image-")))
        .with_context(moved_on)?;
    let release = image_pkg
        .trim_start_matches("linux-image-")
        .trim_end_matches("-unsigned")
        .to_string();
    if !suite.ships(&release) {
        bail!(
            "Debian {} now ships kernel {release}, not the {} series the matrix expects: \
             update the `{}` line of SUITES in xtask/src/matrix.rs",
            suite.name,
            suite.kernel,
            suite.name
        );
    }
    let version = apt.candidate(&format!("{image_pkg}:{arch}"))?;
    let busybox_version = apt.candidate(&format!("busybox-static:{arch}"))?;
    Ok(Lookup {
        image_pkg,
        release,
        version,
        busybox_version,
    })
}

/// Debian versions may contain `:` (epochs); keep paths simple.
pub(crate) fn path_safe(v: &str) -> String {
    v.replace([':', '/'], "_")
}

/// The kernel image, headers and 9p modules of `t`'s arch, cached in
/// `$KBUS_CACHE/kernel/<arch>/<release>_<version>/`.
pub fn kernel(t: &Target) -> Result<Kernel> {
    if !t.suite.has_arch(&t.debian.arch) {
        bail!(
            "Debian {} has no {} kernel for {} (SUITES in xtask/src/matrix.rs lists each \
             suite's arches)",
            t.suite.name,
            t.debian.arch,
            t.kernel_arch
        );
    }
    let apt = Apt::new(t.suite)?;
    let mut updated = false;
    if !apt.has_lists() {
        apt.update()?;
        updated = true;
    }
    let mut lk = lookup(&apt, t)?;
    if !kernel_dir(t, &lk)?.join(".complete").exists() || !busybox_path(t, &lk)?.exists() {
        if !updated {
            // Not cached yet: make sure we fetch what Debian has today.
            apt.update()?;
            lk = lookup(&apt, t)?;
        }
        fetch_kernel(&apt, t, &lk)?;
        fetch_busybox(&apt, t, &lk)?;
    }
    load_kernel(t, &lk)
}

fn kernel_dir(t: &Target, lk: &Lookup) -> Result<PathBuf> {
    Ok(cache_dir()?
        .join("kernel")
        .join(t.kernel_arch.name())
        .join(format!("{}_{}", lk.release, path_safe(&lk.version))))
}

fn busybox_path(t: &Target, lk: &Lookup) -> Result<PathBuf> {
    Ok(cache_dir()?
        .join("busybox")
        .join(t.kernel_arch.name())
        .join(path_safe(&lk.busybox_version))
        .join("busybox"))
}

fn load_kernel(t: &Target, lk: &Lookup) -> Result<Kernel> {
    let root = kernel_dir(t, lk)?;
    let list = fs::read_to_string(root.join("rig-modules/load-order"))
        .context("cached kernel lacks rig-modules/load-order")?;
    let modules = list
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| root.join("rig-modules").join(l))
        .collect();
    Ok(Kernel {
        image: root.join(t.debian.kernel_image.replace("{release}", &lk.release)),
        headers: root
            .join("usr/src")
            .join(format!("linux-headers-{}", lk.release)),
        release: lk.release.clone(),
        version: lk.version.clone(),
        root,
        modules,
        busybox: busybox_path(t, lk)?,
        busybox_version: lk.busybox_version.clone(),
    })
}

pub(crate) fn extract_debs(debs: &Path, root: &Path) -> Result<()> {
    let mut n = 0;
    for e in fs::read_dir(debs)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "deb") {
            run(Command::new("dpkg-deb").arg("-x").arg(&p).arg(root))?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("no .deb downloaded into {}", debs.display());
    }
    Ok(())
}

fn fetch_kernel(apt: &Apt, t: &Target, lk: &Lookup) -> Result<()> {
    let dest = kernel_dir(t, lk)?;
    if dest.join(".complete").exists() {
        return Ok(());
    }
    step(format!(
        "fetching Debian kernel {} ({}) for {}",
        lk.release, lk.version, t.kernel_arch
    ));
    let arch = &t.debian.arch;
    let headers_pkg = format!("linux-headers-{}", lk.release);
    let mut specs = vec![
        format!("{}:{arch}={}", lk.image_pkg, lk.version),
        format!("{headers_pkg}:{arch}={}", lk.version),
    ];
    // Since Debian's 6.16-era packaging (sid), the image package is a shell
    // whose kernel, modules and base are packages of their own, named with
    // the release.
    for dep in apt.depends(&format!("{}:{arch}", lk.image_pkg))? {
        if dep.starts_with("linux-") && dep.contains(&lk.release) {
            specs.push(format!("{dep}:{arch}={}", lk.version));
        }
    }
    // The common headers (arch all) and kbuild; kbuild's tools run on the
    // host, so it is always the host's (amd64) build.
    for dep in apt.depends(&format!("{headers_pkg}:{arch}"))? {
        if dep.starts_with("linux-headers-") {
            specs.push(format!("{dep}={}", lk.version));
        } else if dep.starts_with("linux-kbuild-") {
            specs.push(format!("{dep}:amd64"));
        }
    }

    let scratch = scratch_beside(&dest);
    let debs = scratch.join("debs");
    let root = scratch.join("root");
    apt.download(&debs, &specs)?;
    extract_debs(&debs, &root)?;

    // The arch headers' Makefile includes the common tree by absolute path.
    let hdr = root.join("usr/src").join(&headers_pkg);
    let mk = hdr.join("Makefile");
    let text = fs::read_to_string(&mk).with_context(|| format!("reading {}", mk.display()))?;
    let fixed = text.replace("/usr/src/", &format!("{}/usr/src/", dest.display()));
    fs::write(&mk, fixed)?;

    // Since trixie (merged /usr) modules are in usr/lib/modules; the host's
    // depmod and modprobe look in lib/modules.
    let merged = root.join("usr/lib/modules");
    if merged.is_dir() && !root.join("lib/modules").exists() {
        fs::create_dir_all(root.join("lib"))?;
        fs::rename(&merged, root.join("lib/modules"))?;
    }
    // sid's linux-binary-* puts the image in the modules folder: move it to
    // where the target file says images are.
    let image = root.join(t.debian.kernel_image.replace("{release}", &lk.release));
    let in_modules = root.join("lib/modules").join(&lk.release).join("vmlinuz");
    if !image.exists() && in_modules.is_file() {
        fs::create_dir_all(image.parent().context("image path")?)?;
        fs::rename(&in_modules, &image)?;
    }
    if !image.exists() {
        bail!(
            "the {} packages of {} hold no kernel image at {}",
            lk.release,
            t.suite.name,
            t.debian.kernel_image
        );
    }
    // Resolve the 9p modules (dependencies first) and keep only those.
    run(Command::new("depmod").arg("-b").arg(&root).arg(&lk.release))?;
    let mut order: Vec<PathBuf> = Vec::new();
    for m in &t.guest.modules {
        let out = capture(Command::new("modprobe").arg("-d").arg(&root).args([
            "-S",
            &lk.release,
            "--show-depends",
            m,
        ]))?;
        for line in out.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("insmod") {
                continue; // "builtin x"
            }
            let Some(p) = w.next() else { continue };
            let p = Path::new(p);
            let p = match p.strip_prefix(&root) {
                Ok(rel) => root.join(rel),
                Err(_) => root.join(p.strip_prefix("/").unwrap_or(p)),
            };
            if !order.contains(&p) {
                order.push(p);
            }
        }
    }
    let keep = root.join("rig-modules");
    fs::create_dir_all(&keep)?;
    let mut names = String::new();
    for p in &order {
        let name = p.file_name().context("module path")?;
        fs::copy(p, keep.join(name)).with_context(|| format!("copying {}", p.display()))?;
        names.push_str(&name.to_string_lossy());
        names.push('\n');
    }
    fs::write(keep.join("load-order"), names)?;
    fs::remove_dir_all(root.join("lib/modules"))?;
    fs::remove_dir_all(&debs)?;

    fs::write(root.join(".complete"), format!("{}\n", lk.version))?;
    publish_dir(&root, &dest)?;
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}

fn fetch_busybox(apt: &Apt, t: &Target, lk: &Lookup) -> Result<()> {
    let dest = busybox_path(t, lk)?;
    if dest.exists() {
        return Ok(());
    }
    let dir = dest.parent().context("busybox path")?;
    let scratch = scratch_beside(dir);
    let debs = scratch.join("debs");
    let root = scratch.join("root");
    apt.download(
        &debs,
        &[format!(
            "busybox-static:{}={}",
            t.debian.arch, lk.busybox_version
        )],
    )?;
    extract_debs(&debs, &root)?;
    let out = scratch.join("out");
    fs::create_dir_all(&out)?;
    // bin/ until bookworm, usr/bin/ since (merged /usr).
    let found = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
        .context("busybox-static has no bin/busybox or usr/bin/busybox")?;
    fs::rename(found, out.join("busybox"))?;
    publish_dir(&out, dir)?;
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}
