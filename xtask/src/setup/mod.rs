//! `setup`: host packages, rust-src, and the Debian kernel, headers and busybox
//! for a guest arch, downloaded with a private apt state into the cache.

mod debian;
mod host;

pub use debian::kernel;
pub(crate) use debian::{debian_mirror, extract_debs, path_safe, Apt};
pub use host::{ensure_packages, host_packages, rust_components, rust_src};

use crate::target::Target;
use anyhow::Result;
use std::path::PathBuf;

/// A downloaded and extracted guest kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Kernel release (`uname -r`), e.g. `6.1.0-50-amd64`.
    pub release: String,
    /// Debian package version, e.g. `6.1.176-1`.
    pub version: String,
    /// Extracted root in the cache.
    pub root: PathBuf,
    /// Bootable kernel image.
    pub image: PathBuf,
    /// Kernel headers for out-of-tree module builds.
    pub headers: PathBuf,
    /// Modules to load for the 9p share, dependencies first.
    pub modules: Vec<PathBuf>,
    /// The static busybox for this arch.
    pub busybox: PathBuf,
    /// Debian version of busybox-static (part of the initramfs key).
    pub busybox_version: String,
}

/// Everything `setup` does for one arch; each step is skipped when done already.
pub fn setup(t: &Target) -> Result<Kernel> {
    host_packages(t)?;
    if t.rust.build_std {
        rust_src()?;
    }
    if let Some(sk) = &t.source_kernel {
        return crate::debug_kernel::kernel(t, sk);
    }
    kernel(t)
}
