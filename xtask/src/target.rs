//! Arch descriptions, read from `targets/<arch>.toml`.

use crate::util::workspace_root;
use anyhow::{Context, Result};
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
    /// x86_64 on a debug kernel built from Debian's linux-source (KASAN,
    /// lockdep, kmemleak, UBSAN, fault injection), with the fault tests
    #[value(name = "x86_64-debug")]
    X86_64Debug,
}

impl Arch {
    /// The three CPU architectures (one Debian kernel each).
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Armv7, Arch::Mipsel];
    /// What `cargo xtask test` runs by default: the three arches, then the
    /// x86_64 suite again on the debug kernel (last: it is the slowest).
    pub const TEST: [Arch; 4] = [Arch::X86_64, Arch::Armv7, Arch::Mipsel, Arch::X86_64Debug];

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Armv7 => "armv7",
            Arch::Mipsel => "mipsel",
            Arch::X86_64Debug => "x86_64-debug",
        }
    }

    /// Load `targets/<arch>.toml`.
    pub fn spec(self) -> Result<Target> {
        let path = workspace_root()
            .join("targets")
            .join(format!("{}.toml", self.name()));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut t: Target =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        t.arch = self;
        t.source_hash = crate::util::Fnv::new().add(text.as_bytes()).hex();
        Ok(t)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(skip, default = "default_arch")]
    pub arch: Arch,
    /// Hash of the toml text (part of cache keys).
    #[serde(skip)]
    pub source_hash: String,
    pub rust: RustSpec,
    pub debian: DebianSpec,
    pub kbuild: KbuildSpec,
    pub qemu: QemuSpec,
    pub guest: GuestSpec,
    pub host: HostSpec,
    /// A kernel built from a Debian source package instead of Debian's image.
    #[serde(default)]
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

fn default_arch() -> Arch {
    Arch::X86_64
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
