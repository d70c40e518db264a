//! Raw syscalls with arbitrary user pointers, and a small arena of pages
//! with holes. This is the only `unsafe` code of the test.
#![allow(unsafe_code)]

use core::ffi::c_void;
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::mm::{mmap_anonymous, mprotect, MapFlags, MprotectFlags, ProtFlags};

struct RawIoctl {
    opcode: Opcode,
    arg: usize,
}

// SAFETY: the opcode and argument are arbitrary on purpose; the call is
// safe for *this* process because the kernel validates the pointer: a
// KBUS ioctl reads or writes at most 16 bytes at `arg` with
// access_ok/copy_{from,to}_user, so a bad address gives EFAULT and is
// never touched, and every good address we pass is either in the test's
// own arena (raw memory no Rust reference points to) or a scratch buffer
// of at least 64 bytes that the caller owns and does not borrow during
// the call. `IS_MUTATING` is true because the kernel may write there.
unsafe impl Ioctl for RawIoctl {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg as *mut c_void
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// `ioctl(fd, opcode, arg)` with a hand-made opcode and any argument
/// value. `arg` must be a bad address, an arena address, or point to a
/// scratch buffer of at least 64 bytes not borrowed during the call.
pub fn ioctl(fd: BorrowedFd<'_>, opcode: Opcode, arg: usize) -> Result<i32, Errno> {
    // SAFETY: see the `Ioctl` impl above; the kernel checks `arg`.
    unsafe { rustix::ioctl::ioctl(fd, RawIoctl { opcode, arg }) }
}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `write(fd, addr, len)` with any address: the kernel only reads from
/// it (copy_from_user), and a bad range gives EFAULT.
pub fn write(fd: BorrowedFd<'_>, addr: usize, len: usize) -> Result<usize, Errno> {
    // SAFETY: write(2) never writes to user memory; the kernel validates
    // the source range itself.
    let r = unsafe { libc::write(fd.as_raw_fd(), addr as *const c_void, len) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// `read(fd, addr, len)`: `addr` must be a bad address, an arena
/// address, or a buffer of at least `len` bytes owned by the caller and
/// not borrowed during the call.
pub fn read(fd: BorrowedFd<'_>, addr: usize, len: usize) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `len` bytes at `addr` with
    // copy_to_user (bad ranges give EFAULT); good ranges are memory no
    // Rust reference points to during the call (see above).
    let r = unsafe { libc::read(fd.as_raw_fd(), addr as *mut c_void, len) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// Four pages: read/write, PROT_NONE, read-only, PROT_NONE. Never
/// unmapped (a pending pointy message may point into it until its
/// Ksock closes), and only ever accessed through raw pointers.
pub struct Arena {
    base: usize,
    pub page: usize,
}

impl Arena {
    pub fn new() -> Arena {
        let page = rustix::param::page_size();
        // SAFETY: a fresh private anonymous mapping that nothing else
        // refers to; mprotect changes only pages of it.
        unsafe {
            let base = mmap_anonymous(
                core::ptr::null_mut(),
                4 * page,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
            .expect("mmap")
            .cast::<u8>();
            mprotect(base.add(page).cast(), page, MprotectFlags::empty()).expect("mprotect");
            mprotect(base.add(2 * page).cast(), page, MprotectFlags::READ).expect("mprotect");
            mprotect(base.add(3 * page).cast(), page, MprotectFlags::empty()).expect("mprotect");
            Arena {
                base: base as usize,
                page,
            }
        }
    }

    /// The first PROT_NONE page (right after the read/write page).
    pub fn hole(&self) -> usize {
        self.base + self.page
    }

    /// Copy `bytes[..len - past]` to the end of the read/write page and
    /// return the address of `bytes[0]`: the last `past` bytes of the
    /// range are in the hole (0 = ends exactly at the page end).
    pub fn place_rw(&self, bytes: &[u8], past: usize) -> usize {
        let n = bytes.len() - past.min(bytes.len());
        assert!(n <= self.page);
        let start = self.hole() - n;
        // SAFETY: [start, start + n) lies in the arena's read/write
        // page, which only raw pointers ever access.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, n) };
        start
    }

    /// Copy `n` bytes at `start` (inside the read/write page) out.
    pub fn read_rw(&self, start: usize, n: usize) -> Vec<u8> {
        assert!(start >= self.base && start + n <= self.hole());
        let mut v = vec![0u8; n];
        // SAFETY: the range lies in the arena's read/write page (checked
        // above), which only raw pointers ever access.
        unsafe { core::ptr::copy_nonoverlapping(start as *const u8, v.as_mut_ptr(), n) };
        v
    }

    /// Put `bytes` at the end of the read-only page; return its address.
    pub fn place_ro(&self, bytes: &[u8]) -> usize {
        assert!(bytes.len() <= self.page);
        let page = self.base + 2 * self.page;
        let start = page + self.page - bytes.len();
        // SAFETY: the arena's third page, made writable only for the
        // copy; only raw pointers ever access it.
        unsafe {
            mprotect(
                page as *mut c_void,
                self.page,
                MprotectFlags::READ | MprotectFlags::WRITE,
            )
            .expect("mprotect");
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, bytes.len());
            mprotect(page as *mut c_void, self.page, MprotectFlags::READ).expect("mprotect");
        }
        start
    }
}
