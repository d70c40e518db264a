//! The guest: initramfs image (cached), 9p staging share, and booting QEMU.

mod initramfs;
mod qemu;
mod share;

pub use initramfs::initramfs;
pub use qemu::{binary_stem, boot, check_qemu, run_work, Console, Outcome, RunOptions};
pub use share::{stage, Payload, Work};
