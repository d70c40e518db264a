//! The raw KBUS ioctl layer: request codes, argument structures and the only
//! `unsafe` code of this crate.
//!
//! Every KBUS ioctl takes a pointer argument whose *nominal* size in the
//! request code is `size_of::<*const u8>()` whatever the real argument type
//! (spec §3.9), so the codes differ between 32- and 64-bit ABIs and between
//! the generic and MIPS encodings. They are built here with rustix's const
//! [`opcode`] functions, which know each architecture's direction bits and
//! size field; nothing is hard-coded.
//!
//! All integer arguments are a single `u32` at `*arg` (spec §3.10).
//!
//! Every ioctl is restarted when it fails with EINTR ([`restarting`]).

#![allow(unsafe_code)]

use core::ffi::c_void;
use core::marker::PhantomData;

use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use rustix::ioctl::{self, opcode, Getter, Ioctl, IoctlOutput, NoArg, Opcode, Setter, Updater};

/// The nominal argument type of every sized KBUS ioctl (spec §3.9).
type NominalArg = *const u8;

/// ioctl magic ("type") byte.
pub const MAGIC: u8 = b'k';

/// Highest KBUS ioctl number (`KBUS_IOC_MAXNR`).
pub const MAX_NR: u8 = 18;

/// `KBUS_IOC_RESET` (1, no argument): does nothing.
pub const RESET: Opcode = opcode::none(MAGIC, 1);
/// `KBUS_IOC_BIND` (2, W): `kbus_bind_request`.
pub const BIND: Opcode = opcode::write::<NominalArg>(MAGIC, 2);
/// `KBUS_IOC_UNBIND` (3, W): `kbus_bind_request`.
pub const UNBIND: Opcode = opcode::write::<NominalArg>(MAGIC, 3);
/// `KBUS_IOC_KSOCKID` (4, R): `u32`.
pub const KSOCKID: Opcode = opcode::read::<NominalArg>(MAGIC, 4);
/// `KBUS_IOC_REPLIER` (5, RW): `kbus_bind_query`; returns 1 if found.
pub const REPLIER: Opcode = opcode::read_write::<NominalArg>(MAGIC, 5);
/// `KBUS_IOC_NEXTMSG` (6, R): `u32` length; returns 1 if a message was popped.
pub const NEXTMSG: Opcode = opcode::read::<NominalArg>(MAGIC, 6);
/// `KBUS_IOC_LENLEFT` (7, R): `u32`.
pub const LENLEFT: Opcode = opcode::read::<NominalArg>(MAGIC, 7);
/// `KBUS_IOC_SEND` (8, R): `kbus_msg_id`, written on success and on EAGAIN.
pub const SEND: Opcode = opcode::read::<NominalArg>(MAGIC, 8);
/// `KBUS_IOC_DISCARD` (9, no argument).
pub const DISCARD: Opcode = opcode::none(MAGIC, 9);
/// `KBUS_IOC_LASTSENT` (10, R): `kbus_msg_id`.
pub const LASTSENT: Opcode = opcode::read::<NominalArg>(MAGIC, 10);
/// `KBUS_IOC_MAXMSGS` (11, RW): `u32`, 0 = just ask.
pub const MAXMSGS: Opcode = opcode::read_write::<NominalArg>(MAGIC, 11);
/// `KBUS_IOC_NUMMSGS` (12, R): `u32`.
pub const NUMMSGS: Opcode = opcode::read::<NominalArg>(MAGIC, 12);
/// `KBUS_IOC_UNREPLIEDTO` (13, R): `u32`.
pub const UNREPLIEDTO: Opcode = opcode::read::<NominalArg>(MAGIC, 13);
/// `KBUS_IOC_MSGONLYONCE` (14, RW): `u32` 0/1/0xFFFFFFFF, previous value back.
pub const MSGONLYONCE: Opcode = opcode::read_write::<NominalArg>(MAGIC, 14);
/// `KBUS_IOC_VERBOSE` (15, RW): as MSGONLYONCE, device-wide.
pub const VERBOSE: Opcode = opcode::read_write::<NominalArg>(MAGIC, 15);
/// `KBUS_IOC_NEWDEVICE` (16, R): `u32` new device number.
pub const NEWDEVICE: Opcode = opcode::read::<NominalArg>(MAGIC, 16);
/// `KBUS_IOC_REPORTREPLIERBINDS` (17, RW): as MSGONLYONCE, device-wide.
pub const REPORTREPLIERBINDS: Opcode = opcode::read_write::<NominalArg>(MAGIC, 17);
/// `KBUS_IOC_MAXMSGSIZE` (18, RW): `u32`, 0 = current, 1 = absolute maximum.
pub const MAXMSGSIZE: Opcode = opcode::read_write::<NominalArg>(MAGIC, 18);

/// All request codes with their KBUS names, in ioctl-number order.
pub const ALL: [(&str, Opcode); 18] = [
    ("RESET", RESET),
    ("BIND", BIND),
    ("UNBIND", UNBIND),
    ("KSOCKID", KSOCKID),
    ("REPLIER", REPLIER),
    ("NEXTMSG", NEXTMSG),
    ("LENLEFT", LENLEFT),
    ("SEND", SEND),
    ("DISCARD", DISCARD),
    ("LASTSENT", LASTSENT),
    ("MAXMSGS", MAXMSGS),
    ("NUMMSGS", NUMMSGS),
    ("UNREPLIEDTO", UNREPLIEDTO),
    ("MSGONLYONCE", MSGONLYONCE),
    ("VERBOSE", VERBOSE),
    ("NEWDEVICE", NEWDEVICE),
    ("REPORTREPLIERBINDS", REPORTREPLIERBINDS),
    ("MAXMSGSIZE", MAXMSGSIZE),
];

/// `struct kbus_bind_request` (BIND/UNBIND) and, with `is_replier` read as
/// `return_id`, `struct kbus_bind_query` (REPLIER): natural C layout, 16
/// bytes on 64-bit ABIs, 12 on 32-bit ones (spec §3.2).
#[repr(C)]
#[derive(Debug)]
struct BindStruct<'a> {
    is_replier_or_return_id: u32,
    name_len: u32,
    name: *const u8,
    _name: PhantomData<&'a [u8]>,
}

impl<'a> BindStruct<'a> {
    fn new(first: u32, name: &'a [u8]) -> Self {
        BindStruct {
            is_replier_or_return_id: first,
            // Lengths beyond u32 saturate; the module refuses anything over
            // 1000 bytes before it looks at the name.
            name_len: u32::try_from(name.len()).unwrap_or(u32::MAX),
            name: name.as_ptr(),
            _name: PhantomData,
        }
    }
}

/// Like rustix's [`Updater`], but also hands back the ioctl's non-negative
/// return value (REPLIER and NEXTMSG return 1 when they found something).
struct CountingUpdater<'a, const OPCODE: Opcode, T> {
    value: &'a mut T,
}

// SAFETY: `as_ptr` returns a pointer to a live, exclusively borrowed `T` for
// the whole call, and `IS_MUTATING` is true because the kernel writes
// through the pointer. Whether `OPCODE` stays within `size_of::<T>()` bytes
// is the obligation of each (unsafe) `ioctl::ioctl` call site: REPLIER and
// NEXTMSG above, which do (spec §3.11).
unsafe impl<const OPCODE: Opcode, T> Ioctl for CountingUpdater<'_, OPCODE, T> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        (self.value as *mut T).cast()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Runs `ioctl` again for as long as it fails with EINTR.
///
/// The module takes its device lock before doing anything else and answers
/// a wait interrupted by a signal with ERESTARTSYS (spec §3.10 step 3),
/// which reaches user space as EINTR when the handler lacks `SA_RESTART`.
/// Nothing has happened at that point, so repeating the call is exact. It
/// matters most for SEND: a pointy message left unsent would keep pointers
/// to memory the caller is about to reuse.
fn restarting<T>(mut ioctl: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match ioctl() {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// An ioctl that takes no argument.
///
/// # Safety
///
/// `OPCODE` must be an ioctl that neither reads nor writes through its
/// argument.
unsafe fn no_arg<const OPCODE: Opcode>(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: the caller guarantees that `OPCODE` does not touch `arg`.
    restarting(|| unsafe { ioctl::ioctl(fd, NoArg::<OPCODE>::new()) })
}

/// An ioctl that writes one `u32` to `*arg` and reads nothing.
///
/// # Safety
///
/// `OPCODE` must write at most 4 bytes to `*arg` (one `u32`) and must not
/// read it in a way that matters.
unsafe fn get_u32<const OPCODE: Opcode>(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: `Getter` provides a 4-byte, 4-aligned buffer alive for the
    // call; the caller guarantees that `OPCODE` writes no more than that.
    restarting(|| unsafe { ioctl::ioctl(fd, Getter::<OPCODE, u32>::new()) })
}

/// An ioctl that reads one `u32` from `*arg` and writes one back.
///
/// # Safety
///
/// `OPCODE` must read and write at most 4 bytes at `*arg` (one `u32`).
unsafe fn update_u32<const OPCODE: Opcode>(fd: BorrowedFd<'_>, value: u32) -> Result<u32, Errno> {
    let mut value = value;
    // SAFETY: `value` is a `u32` on our stack, exclusively borrowed for the
    // call; the caller guarantees that `OPCODE` touches no more than it.
    restarting(|| unsafe { ioctl::ioctl(fd, Updater::<OPCODE, u32>::new(&mut value)) })?;
    Ok(value)
}

/// RESET: does nothing.
pub fn reset(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: RESET (1, no direction) takes no argument (spec §3.10).
    unsafe { no_arg::<RESET>(fd) }
}

/// DISCARD the in-progress or pending message.
pub fn discard(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: DISCARD (9, no direction) takes no argument (spec §3.10).
    unsafe { no_arg::<DISCARD>(fd) }
}

/// KSOCKID: this Ksock's id.
pub fn ksock_id(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: KSOCKID writes exactly one `u32` to `*arg` (spec §3.10).
    unsafe { get_u32::<KSOCKID>(fd) }
}

/// LENLEFT: bytes of the current read message not yet read.
pub fn len_left(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: LENLEFT writes exactly one `u32` to `*arg` (spec §3.10).
    unsafe { get_u32::<LENLEFT>(fd) }
}

/// NUMMSGS: messages queued.
pub fn num_msgs(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: NUMMSGS writes exactly one `u32` to `*arg` (spec §3.10).
    unsafe { get_u32::<NUMMSGS>(fd) }
}

/// UNREPLIEDTO: Requests this Ksock still has to answer.
pub fn unreplied_to(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: UNREPLIEDTO writes exactly one `u32` to `*arg` (spec §3.10).
    unsafe { get_u32::<UNREPLIEDTO>(fd) }
}

/// NEWDEVICE: create a device, return its number.
pub fn new_device(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: NEWDEVICE writes exactly one `u32` to `*arg` (spec §3.10).
    unsafe { get_u32::<NEWDEVICE>(fd) }
}

/// MAXMSGS: 0 asks, else sets; returns the resulting limit.
pub fn max_msgs(fd: BorrowedFd<'_>, value: u32) -> Result<u32, Errno> {
    // SAFETY: MAXMSGS reads one `u32` from `*arg` and writes one back.
    unsafe { update_u32::<MAXMSGS>(fd, value) }
}

/// MSGONLYONCE: 0/1/0xFFFFFFFF; returns the previous state.
pub fn msg_only_once(fd: BorrowedFd<'_>, value: u32) -> Result<u32, Errno> {
    // SAFETY: MSGONLYONCE reads one `u32` from `*arg` and writes one back.
    unsafe { update_u32::<MSGONLYONCE>(fd, value) }
}

/// VERBOSE: 0/1/0xFFFFFFFF; returns the previous state.
pub fn verbose(fd: BorrowedFd<'_>, value: u32) -> Result<u32, Errno> {
    // SAFETY: VERBOSE reads one `u32` from `*arg` and writes one back.
    unsafe { update_u32::<VERBOSE>(fd, value) }
}

/// REPORTREPLIERBINDS: 0/1/0xFFFFFFFF; returns the previous state.
pub fn report_replier_binds(fd: BorrowedFd<'_>, value: u32) -> Result<u32, Errno> {
    // SAFETY: REPORTREPLIERBINDS reads one `u32` from `*arg` and writes one
    // back.
    unsafe { update_u32::<REPORTREPLIERBINDS>(fd, value) }
}

/// MAXMSGSIZE: 0 asks, 1 asks the absolute maximum, else sets.
pub fn max_msg_size(fd: BorrowedFd<'_>, value: u32) -> Result<u32, Errno> {
    // SAFETY: MAXMSGSIZE reads one `u32` from `*arg` and writes one back.
    unsafe { update_u32::<MAXMSGSIZE>(fd, value) }
}

/// LASTSENT: the id of the last message this Ksock tried to send.
pub fn last_sent(fd: BorrowedFd<'_>) -> Result<[u32; 2], Errno> {
    // SAFETY: LASTSENT writes one `kbus_msg_id` (two `u32`s, 8 bytes) to
    // `*arg`, which is exactly the `[u32; 2]` buffer `Getter` provides.
    restarting(|| unsafe { ioctl::ioctl(fd, Getter::<LASTSENT, [u32; 2]>::new()) })
}

/// SEND. `id` receives the message id on success **and on EAGAIN** (spec
/// §5.2), which is why the caller owns the buffer.
pub fn send(fd: BorrowedFd<'_>, id: &mut [u32; 2]) -> Result<(), Errno> {
    // SAFETY: SEND writes one `kbus_msg_id` (8 bytes) to `*arg`; `id` is an
    // exclusively borrowed 8-byte buffer alive for the whole call. If the
    // in-progress message is a pointy one, the module also *reads* its
    // name/data pointers (copy_from_user; a bad address is EFAULT) and
    // never writes through them, so even a hand-written header with stale
    // or wild pointers cannot touch our memory: at worst it sends the
    // wrong bytes. `send_pointy` below keeps them valid for safe callers.
    restarting(|| unsafe { ioctl::ioctl(fd, Updater::<SEND, [u32; 2]>::new(&mut *id)) })
}

/// BIND `{is_replier, name_len, name}`.
pub fn bind(fd: BorrowedFd<'_>, is_replier: u32, name: &[u8]) -> Result<(), Errno> {
    restarting(|| {
        let arg = BindStruct::new(is_replier, name);
        // SAFETY: BIND reads one `kbus_bind_request` from `*arg` and then
        // `name_len` bytes from `name`, writing nothing. `arg` (owned by
        // `Setter` for the call) has the C layout of that struct, and its
        // `name` pointer borrows `name`, which outlives the call;
        // `name_len` never exceeds `name.len()` (it saturates at `u32::MAX`
        // only for slices the module refuses by length first).
        unsafe { ioctl::ioctl(fd, Setter::<BIND, BindStruct<'_>>::new(arg)) }
    })
}

/// UNBIND `{is_replier, name_len, name}`.
pub fn unbind(fd: BorrowedFd<'_>, is_replier: u32, name: &[u8]) -> Result<(), Errno> {
    restarting(|| {
        let arg = BindStruct::new(is_replier, name);
        // SAFETY: UNBIND reads the same `kbus_bind_request` as BIND, and the
        // `name_len` name bytes, and writes nothing; `arg` and `name` are
        // valid for the call as in `bind`.
        unsafe { ioctl::ioctl(fd, Setter::<UNBIND, BindStruct<'_>>::new(arg)) }
    })
}

/// REPLIER: the Ksock id bound as Replier to exactly `name`, if any.
pub fn find_replier(fd: BorrowedFd<'_>, name: &[u8]) -> Result<Option<u32>, Errno> {
    let mut arg = BindStruct::new(0, name);
    // SAFETY: REPLIER reads one `kbus_bind_query` from `*arg`, then
    // `name_len` bytes from `name`, and writes the struct back; `arg` is an
    // exclusively borrowed struct with that C layout and `name` borrows
    // `name` for the whole call.
    let found = restarting(|| unsafe {
        ioctl::ioctl(
            fd,
            CountingUpdater::<REPLIER, BindStruct<'_>> { value: &mut arg },
        )
    })?;
    Ok((found != 0 && arg.is_replier_or_return_id != 0).then_some(arg.is_replier_or_return_id))
}

/// NEXTMSG: `Some(length)` if a message was popped.
pub fn next_msg(fd: BorrowedFd<'_>) -> Result<Option<u32>, Errno> {
    let mut len = 0u32;
    // SAFETY: NEXTMSG writes one `u32` to `*arg`; `len` is an exclusively
    // borrowed `u32` on our stack for the whole call.
    let popped = restarting(|| unsafe {
        ioctl::ioctl(fd, CountingUpdater::<NEXTMSG, u32> { value: &mut len })
    })?;
    Ok((popped != 0).then_some(len))
}

/// `write()`, repeated while the module reports an interrupted lock wait:
/// EAGAIN (spec §5.1 step 1, which happens before any byte is taken; KBUS
/// gives EAGAIN for nothing else on `write`) or EINTR.
pub fn write(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::write(fd, bytes) {
            Err(Errno::INTR | Errno::AGAIN) => continue,
            r => return r,
        }
    }
}

/// `read()`, repeated while the module reports an interrupted lock wait
/// (EAGAIN, spec §6.2, before anything is copied; or EINTR).
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(Errno::INTR | Errno::AGAIN) => continue,
            r => return r,
        }
    }
}

/// Write a pointy header (exactly `H` bytes whose name/data pointers point
/// into memory borrowed by `'a`) and SEND it.
///
/// The module copies the pointed-to bytes during SEND (spec §3.5, §5.2
/// step 4): `name_len` bytes from `name` (this project's module; the
/// original also read the byte after the name) and `data_len` from `data`.
/// The `'a` borrow ties those pointers to live memory until this function
/// returns, i.e. until after SEND. If SEND fails with EAGAIN the module has
/// already copied them (step 4 precedes delivery), so later retries do not
/// touch our memory; every other SEND failure discards the message, and an
/// interrupted SEND (EINTR) is restarted rather than left pending.
pub fn send_pointy<'a>(
    fd: BorrowedFd<'_>,
    header: &kbus_wire::PointyHeader<'a>,
    id: &mut [u32; 2],
) -> Result<(), (crate::Op, Errno)> {
    let bytes = header.as_bytes();
    let written = write(fd, bytes).map_err(|e| (crate::Op::Write, e))?;
    if written != bytes.len() {
        // The module always consumes every byte it accepts; a short write
        // would leave half a header behind. Throw it away.
        let _ = discard(fd);
        return Err((crate::Op::Write, Errno::IO));
    }
    send(fd, id).map_err(|e| (crate::Op::Send, e))
}

/// Register a Ksock with the current tokio reactor (feature `tokio`).
#[cfg(feature = "tokio")]
pub fn register_async(
    ksock: crate::Ksock,
) -> Result<tokio::io::unix::AsyncFd<crate::Ksock>, std::io::Error> {
    use tokio::io::{unix::AsyncFd, Interest};
    // SAFETY: a `Ksock` owns its file descriptor (an `OwnedFd`), which is
    // open from `Ksock::open` until the `Ksock` is dropped; nothing reachable
    // through `&Ksock` closes or replaces it (`close` and the conversion into
    // `OwnedFd` consume the Ksock, which the `AsyncFd` owns), so `as_raw_fd`
    // returns the same open descriptor for the `AsyncFd`'s whole life.
    unsafe { AsyncFd::register_with_interest(ksock, Interest::READABLE | Interest::WRITABLE) }
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec §3.9 table, column for this target.
    #[cfg(all(
        target_pointer_width = "64",
        not(any(
            target_arch = "mips64",
            target_arch = "mips64r6",
            target_arch = "powerpc64",
            target_arch = "sparc64"
        ))
    ))]
    const EXPECTED: [u32; 18] = [
        0x00006B01, 0x40086B02, 0x40086B03, 0x80086B04, 0xC0086B05, 0x80086B06, 0x80086B07,
        0x80086B08, 0x00006B09, 0x80086B0A, 0xC0086B0B, 0x80086B0C, 0x80086B0D, 0xC0086B0E,
        0xC0086B0F, 0x80086B10, 0xC0086B11, 0xC0086B12,
    ];

    #[cfg(all(
        target_pointer_width = "32",
        not(any(
            target_arch = "mips",
            target_arch = "mips32r6",
            target_arch = "powerpc",
            target_arch = "sparc"
        ))
    ))]
    const EXPECTED: [u32; 18] = [
        0x00006B01, 0x40046B02, 0x40046B03, 0x80046B04, 0xC0046B05, 0x80046B06, 0x80046B07,
        0x80046B08, 0x00006B09, 0x80046B0A, 0xC0046B0B, 0x80046B0C, 0x80046B0D, 0xC0046B0E,
        0xC0046B0F, 0x80046B10, 0xC0046B11, 0xC0046B12,
    ];

    #[cfg(all(
        target_pointer_width = "32",
        any(target_arch = "mips", target_arch = "mips32r6")
    ))]
    const EXPECTED: [u32; 18] = [
        0x20006B01, 0x80046B02, 0x80046B03, 0x40046B04, 0xC0046B05, 0x40046B06, 0x40046B07,
        0x40046B08, 0x20006B09, 0x40046B0A, 0xC0046B0B, 0x40046B0C, 0x40046B0D, 0xC0046B0E,
        0xC0046B0F, 0x40046B10, 0xC0046B11, 0xC0046B12,
    ];

    #[cfg(all(
        target_pointer_width = "64",
        any(target_arch = "mips64", target_arch = "mips64r6")
    ))]
    const EXPECTED: [u32; 18] = [
        0x20006B01, 0x80086B02, 0x80086B03, 0x40086B04, 0xC0086B05, 0x40086B06, 0x40086B07,
        0x40086B08, 0x20006B09, 0x40086B0A, 0xC0086B0B, 0x40086B0C, 0x40086B0D, 0xC0086B0E,
        0xC0086B0F, 0x40086B10, 0xC0086B11, 0xC0086B12,
    ];

    #[test]
    fn request_codes_match_spec_table() {
        for (i, ((name, code), want)) in ALL.iter().zip(EXPECTED).enumerate() {
            assert_eq!(
                u64::from(*code),
                u64::from(want),
                "KBUS_IOC_{name} (nr {})",
                i + 1
            );
            assert_eq!((*code & 0xff) as usize, i + 1, "{name}: number");
            assert_eq!(((*code >> 8) & 0xff) as u8, MAGIC, "{name}: magic");
        }
        assert_eq!(ALL.len(), usize::from(MAX_NR));
    }

    #[test]
    fn bind_struct_has_the_c_layout() {
        let ptr = core::mem::size_of::<*const u8>();
        assert_eq!(core::mem::size_of::<BindStruct<'_>>(), 8 + ptr);
        assert_eq!(core::mem::offset_of!(BindStruct<'_>, name_len), 4);
        assert_eq!(core::mem::offset_of!(BindStruct<'_>, name), 8);
    }
}
