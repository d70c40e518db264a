//! Arch descriptions, read from `targets/<arch>.toml`.

use crate::matrix::Suite;
use crate::util::workspace_root;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::fmt;

/// A guest architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// 64-bit x86 (QEMU pc, Debian amd64 kernel)
    #[value(name = "x86_64")]
    X86_64,
    /// 32-bit ARM hard-float (QEMU virt, Debian armmp kernel)
    #[value(name = "armv7")]
    Armv7,
    /// 32-bit little-endian MIPS (QEMU malta, Debian 4kc-malta kernel)
    #[value(name = "mipsel")]
    Mipsel,
    /// 64-bit ARM (QEMU virt, Debian arm64 kernel)
    #[value(name = "arm64")]
    Arm64,
    /// 64-bit big-endian IBM Z (QEMU s390-ccw-virtio, Debian s390x kernel)
    #[value(name = "s390x")]
    S390x,
    /// 32-bit x86 user space on the 64-bit x86_64 kernel (compat syscalls)
    #[value(name = "i686")]
    I686,
    /// 32-bit ARM user space on the 64-bit arm64 kernel (compat syscalls)
    #[value(name = "armv7-on-arm64")]
    Armv7OnArm64,
    /// x86_64 on a debug kernel built from Debian's linux-source (KASAN,
    /// lockdep, kmemleak, UBSAN, fault injection), with the fault tests
    #[value(name = "x86_64-debug")]
    X86_64Debug,
}

impl Arch {
    /// Every user-space target (`cargo xtask sizes`).
    pub const ALL: [Arch; 7] = [
        Arch::X86_64,
        Arch::Armv7,
        Arch::Mipsel,
        Arch::Arm64,
        Arch::S390x,
        Arch::I686,
        Arch::Armv7OnArm64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Armv7 => "armv7",
            Arch::Mipsel => "mipsel",
            Arch::Arm64 => "arm64",
            Arch::S390x => "s390x",
            Arch::I686 => "i686",
            Arch::Armv7OnArm64 => "armv7-on-arm64",
            Arch::X86_64Debug => "x86_64-debug",
        }
    }

    /// Parse an arch name as on the command line.
    pub fn from_name(name: &str) -> Result<Arch> {
        <Arch as clap::ValueEnum>::from_str(name, false)
            .map_err(|e| anyhow::anyhow!("unknown arch {name:?}: {e}"))
    }

    /// Load `targets/<arch>.toml` with its default Debian suite.
    pub fn spec(self) -> Result<Target> {
        let (text, raw) = self.raw()?;
        let mut hash = crate::util::Fnv::new();
        hash.add(text.as_bytes());
        let mut t = match raw.kernel_from.as_deref() {
            None => raw.complete(self)?,
            Some(base) => {
                // A user-space-only target: the kernel, QEMU and guest
                // sections are those of the arch that owns the kernel.
                let base_arch = Arch::from_name(base)?;
                let (base_text, base_raw) = base_arch.raw()?;
                if base_raw.kernel_from.is_some() {
                    bail!(
                        "{}: kernel_from = {base:?} is itself a user-space-only target",
                        self
                    );
                }
                hash.add(base_text.as_bytes());
                let mut t = base_raw.complete(base_arch)?;
                t.rust = raw.rust;
                t.host.packages.extend(raw.host.packages);
                t
            }
        };
        t.arch = self;
        t.source_hash = hash.hex();
        Ok(t)
    }

    fn raw(self) -> Result<(String, RawTarget)> {
        let path = workspace_root()
            .join("targets")
            .join(format!("{}.toml", self.name()));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let raw: RawTarget =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok((text, raw))
    }
}

/// `targets/<arch>.toml` as written: a user-space-only target names the
/// arch whose kernel it runs on (`kernel_from`) and has only `[rust]` and
/// `[host]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default)]
    kernel_from: Option<String>,
    rust: RustSpec,
    debian: Option<DebianSpec>,
    kbuild: Option<KbuildSpec>,
    qemu: Option<QemuSpec>,
    guest: Option<GuestSpec>,
    host: HostSpec,
    #[serde(default)]
    source_kernel: Option<SourceKernelSpec>,
}

impl RawTarget {
    /// The target of an arch that owns its kernel: every section present.
    fn complete(self, arch: Arch) -> Result<Target> {
        let missing = |s: &str| anyhow::anyhow!("targets/{arch}.toml has no [{s}] section");
        let debian = self.debian.ok_or_else(|| missing("debian"))?;
        let suite = Suite::by_name(&debian.suite)?;
        Ok(Target {
            arch,
            kernel_arch: arch,
            suite,
            source_hash: String::new(),
            rust: self.rust,
            debian,
            kbuild: self.kbuild.ok_or_else(|| missing("kbuild"))?,
            qemu: self.qemu.ok_or_else(|| missing("qemu"))?,
            guest: self.guest.ok_or_else(|| missing("guest"))?,
            host: self.host,
            source_kernel: self.source_kernel,
        })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug)]
pub struct Target {
    /// The user-space target (what `--arch` names).
    pub arch: Arch,
    /// The arch whose Debian kernel boots: `arch` itself, or for a 32-bit
    /// user space on a 64-bit kernel, the 64-bit arch (cache keys use it).
    pub kernel_arch: Arch,
    /// The Debian suite the kernel and its headers come from.
    pub suite: &'static Suite,
    /// Hash of the toml text (part of cache keys).
    pub source_hash: String,
    pub rust: RustSpec,
    pub debian: DebianSpec,
    pub kbuild: KbuildSpec,
    pub qemu: QemuSpec,
    pub guest: GuestSpec,
    pub host: HostSpec,
    /// A kernel built from a Debian source package instead of Debian's image.
    pub source_kernel: Option<SourceKernelSpec>,
}

/// `[source_kernel]`: build the guest kernel from Debian's `linux-source-*`
/// at the version of `base`'s Debian kernel, configured from a fragment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceKernelSpec {
    /// The arch (targets/<base>.toml) whose Debian kernel version and
    /// busybox this kernel follows.
    pub base: String,
    /// The Debian source package, e.g. `linux-source-6.1`.
    pub package: String,
    /// Config fragment (relative to the workspace) applied on top of
    /// `make allnoconfig` with KCONFIG_ALLCONFIG.
    pub config: String,
}

impl SourceKernelSpec {
    pub fn base_arch(&self) -> Result<Arch> {
        <Arch as clap::ValueEnum>::from_str(&self.base, false)
            .map_err(|e| anyhow::anyhow!("[source_kernel] base = {:?}: {e}", self.base))
    }
}

impl Target {
    /// This target with its kernel from another Debian suite.
    pub fn with_suite(mut self, suite: &'static Suite) -> Target {
        self.suite = suite;
        self
    }

    /// Pointer width of the user space, in bits.
    pub fn user_bits(&self) -> u32 {
        let t = &self.rust.target;
        if t.starts_with("x86_64") || t.starts_with("aarch64") || t.starts_with("s390x") {
            64
        } else {
            32
        }
    }

    /// "arch on suite" for messages and the result table.
    pub fn cell(&self) -> String {
        format!("{}@{}", self.arch, self.suite.name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustSpec {
    pub target: String,
    pub build_std: bool,
    pub linker: String,
    pub rustflags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSpec {
    pub arch: String,
    /// The default Debian suite of the kernel (a name in `matrix::SUITES`).
    pub suite: String,
    pub kernel_meta: String,
    pub kernel_image: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbuildSpec {
    pub arch: String,
    pub cross_compile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    pub binary: String,
    pub machine: String,
    pub cpu: String,
    pub memory_mb: u32,
    pub smp: u32,
    pub console: String,
    pub extra_args: Vec<String>,
    pub ninep_device: String,
    pub timeout_secs: u64,
    /// Appended to the kernel command line of qemu/cmdline.
    #[serde(default)]
    pub extra_cmdline: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSpec {
    pub modules: Vec<String>,
    pub ninep_options: String,
    /// The guest init checks kmemleak after `rmmod kbus` (debug kernel only).
    #[serde(default)]
    pub kmemleak_check: bool,
    /// Also run the guest tests that need the debug kernel's fault injection
    /// (`guest-tests/tests/faults.rs`); the other targets never run them.
    #[serde(default)]
    pub fault_tests: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub packages: Vec<String>,
}
