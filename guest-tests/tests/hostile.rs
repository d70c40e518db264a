//! Hostile input: a seeded, bounded random-operation fuzzer against
//! `/dev/kbus0..2` (spec §3.10–3.11, §5.1, §5.2, §6). Bad input always gets
//! a clear error and loses nothing; the module never oopses, leaks, or
//! corrupts another Ksock's state.
//!
//! Several Ksocks of this process (and two child processes: this binary run
//! again with `--exact hostile_child`, one ending with `exit()` with its
//! Ksocks open, one SIGKILLed at a random point) do random things:
//! `write()`s of valid messages with one field mutated, truncated or
//! extended, random bytes, huge `name_len`/`data_len`, bad guards, pointy
//! headers with wild name/data pointers (NULL, 0x1, kernel-half,
//! non-canonical, a PROT_NONE page, read-only memory, buffers that straddle
//! into a PROT_NONE page), the `write()` buffer itself bad; ioctls with every
//! `nr` 0..=20, the right or a wrong direction/size/type, NULL and bad
//! argument pointers; reads of random sizes into good and bad buffers;
//! BIND/UNBIND of random names, raw `is_replier` values and lengths; SEND,
//! DISCARD, NEXTMSG and poll at random points; Replies to Requests received;
//! closes and reopens.
//!
//! Checked throughout:
//! * every failure is an errno the spec lists for that operation (table
//!   [`allowed`]); a bad pointer always gives a failure; a good call never
//!   gives EFAULT; return values are in range;
//! * a small model per Ksock: `write()` on a read-only Ksock is EBADF,
//!   during sending state EALREADY and never otherwise; SEND with nothing
//!   written is ENOMSG; KSOCKID, LENLEFT, LASTSENT, MAXMSGS and MSGONLYONCE
//!   report what the model says; read sizes add up; every message read
//!   whole is well formed; ids of sends ascend per device; Ksocks' bindings
//!   in `/proc/kbus/bindings` are exactly those the model expects;
//! * a bystander Listener and Replier on each device, on names the fuzzer
//!   never sends to or binds exactly, keep working exactly: every few steps
//!   an Announcement and a Request/Reply between them arrive intact, ids
//!   ascending, NUMMSGS and UNREPLIEDTO as expected;
//! * at the end, with everything closed, no bindings, no open Ksocks and no
//!   set-aside entries remain on devices 0..2. (The rig then fails the run if
//!   `rmmod` fails or dmesg shows a WARN/BUG/oops, and the module WARNs at
//!   unload if a message or queue item leaked.)
//!
//! Seeds: the default is fixed. `KBUS_FUZZ_SEED=<n>[,<n>...]` in the
//! environment, or as an extra command-line argument (the guest rig passes
//! arguments, not environment), runs other seeds, e.g.
//! `cargo xtask run <this binary> --exact hostile_fuzz KBUS_FUZZ_SEED=7,8`.
//! `KBUS_FUZZ_STEPS=<n>` changes the number of steps of this process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kbus_guest_tests::*;
use kbus_wire::name::validate_message_name;
use rustix::fd::AsFd;
use rustix::ioctl::{opcode, Direction, Opcode};

const DEFAULT_SEED: u64 = 0x4B42_5553_F022_0001;
/// Steps of this process: about 7 s under TCG on x86_64; the armv7 and
/// mipsel guests are about 7 and 25 times slower, so they do fewer.
const PARENT_STEPS: u64 = if cfg!(target_arch = "x86_64") {
    20_000
} else if cfg!(target_arch = "arm") {
    6_000
} else {
    2_500
};
const CHILD_STEPS: u64 = PARENT_STEPS * 2 / 5;
/// Bystander check every this many steps.
const CHECK_EVERY: u64 = 40;
/// Binding model check every this many steps.
const BINDINGS_EVERY: u64 = 150;
const DEVICES: [u32; 3] = [0, 1, 2];
/// Environment of a child process: its seed.
const CHILD_ENV: &str = "KBUS_HOSTILE_CHILD";

const PTR: usize = std::mem::size_of::<usize>();
const H: usize = if PTR == 8 { 88 } else { 72 };
const NAME_PTR_OFF: usize = if PTR == 8 { 64 } else { 60 };
const DATA_PTR_OFF: usize = NAME_PTR_OFF + PTR;
const END_GUARD_OFF: usize = DATA_PTR_OFF + PTR;
const START: u32 = kbus_wire::START_GUARD;
const END: u32 = kbus_wire::END_GUARD;
const DEF_MAX_MSG_SIZE: u32 = 409_600;

/// Bystander names: three bytes, so no fuzz name (all start `$.F` and are
/// at least four bytes long) becomes one by a single mutation, and a
/// bystander message fits the smallest MAXMSGSIZE (100) on both ABIs.
const BY_ANN: &str = "$.Y";
const BY_REQ: &str = "$.Z";

/// Names the fuzzer sends to.
const SEND_NAMES: [&str; 8] = [
    "$.Fa",
    "$.F.a",
    "$.F.b",
    "$.F.a.b",
    "$.F.Req",
    "$.F.1.2.3",
    "$.Fz",
    "$.F.a.c",
];
/// Extra names it binds to (wildcards included; `$.*` and `$.%` also match
/// the bystander names, which only adds Listener copies or lower-ranked
/// Repliers).
const BIND_NAMES: [&str; 9] = [
    "$.F.*",
    "$.F.%",
    "$.*",
    "$.%",
    "$.F.a.*",
    "$.KBUS.ReplierBindEvent",
    "$.KBUS.*",
    "$.KBUS.Replier.%",
    "$.F.a.%",
];

// ---- the only unsafe code ------------------------------------------------

mod raw {
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

        unsafe fn output_from_ptr(
            out: IoctlOutput,
            _: *mut c_void,
        ) -> rustix::io::Result<IoctlOutput> {
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
                mprotect(base.add(3 * page).cast(), page, MprotectFlags::empty())
                    .expect("mprotect");
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
}

use raw::Arena;

// ---- pointers --------------------------------------------------------------

/// Where an argument, buffer, name or data pointer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ptr {
    /// A good buffer.
    Good,
    /// A good buffer ending exactly at the end of a page before a hole.
    PageEnd,
    /// Readable, not writable memory.
    ReadOnly,
    Null,
    One,
    /// An address in the kernel half (fails access_ok).
    Kernel,
    /// 64-bit: non-canonical; 32-bit: the top page.
    NonCanonical,
    /// The start of a PROT_NONE page.
    Hole,
    /// Starts in good memory, its last bytes in a PROT_NONE page.
    Straddle,
}

impl Ptr {
    fn good(self) -> bool {
        matches!(self, Ptr::Good | Ptr::PageEnd)
    }
    fn readable(self) -> bool {
        self.good() || self == Ptr::ReadOnly
    }
    /// Fails access_ok (the VFS or the ioctl dispatcher refuses it before
    /// the module looks at anything).
    fn kernel_half(self) -> bool {
        matches!(self, Ptr::Kernel | Ptr::NonCanonical)
    }
}

const KERNEL_ADDR: usize = if PTR == 8 {
    0xffff_8880_0000_1000_u64 as usize
} else {
    0xc000_1000
};
const NONCANON_ADDR: usize = if PTR == 8 {
    0x8000_0000_0000_0000_u64 as usize
} else {
    0xffff_f000
};

// ---- the spec's errno table -----------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum K {
    Reset,
    Bind,
    Unbind,
    KsockId,
    Replier,
    NextMsg,
    LenLeft,
    Send,
    Discard,
    LastSent,
    MaxMsgs,
    NumMsgs,
    UnrepliedTo,
    MsgOnlyOnce,
    Verbose,
    NewDevice,
    Report,
    MaxMsgSize,
}

/// (nr, direction, op) of every KBUS ioctl (spec §3.9); the nominal size
/// is always `sizeof(char *)`.
const IOCTLS: [(u8, Direction, K); 18] = [
    (1, Direction::None, K::Reset),
    (2, Direction::Write, K::Bind),
    (3, Direction::Write, K::Unbind),
    (4, Direction::Read, K::KsockId),
    (5, Direction::ReadWrite, K::Replier),
    (6, Direction::Read, K::NextMsg),
    (7, Direction::Read, K::LenLeft),
    (8, Direction::Read, K::Send),
    (9, Direction::None, K::Discard),
    (10, Direction::Read, K::LastSent),
    (11, Direction::ReadWrite, K::MaxMsgs),
    (12, Direction::Read, K::NumMsgs),
    (13, Direction::Read, K::UnrepliedTo),
    (14, Direction::ReadWrite, K::MsgOnlyOnce),
    (15, Direction::ReadWrite, K::Verbose),
    (16, Direction::Read, K::NewDevice),
    (17, Direction::ReadWrite, K::Report),
    (18, Direction::ReadWrite, K::MaxMsgSize),
];

fn code(nr: u8, dir: Direction) -> Opcode {
    opcode::from_components(dir, b'k', nr, if dir == Direction::None { 0 } else { PTR })
}

fn exact(k: K) -> Opcode {
    let (nr, dir, _) = IOCTLS.iter().find(|e| e.2 == k).copied().unwrap();
    code(nr, dir)
}

fn which_ioctl(cmd: Opcode) -> Option<K> {
    IOCTLS.iter().find(|e| code(e.0, e.1) == cmd).map(|e| e.2)
}

/// The errnos the spec lists for each operation (§3.10–3.11, §5.1, §5.2,
/// §6.2, plus the VFS's EBADF for writing a read-only file).
fn allowed(op: &str) -> &'static [Errno] {
    use Errno as E;
    match op {
        "write" => &[
            E::INVAL,
            E::NAMETOOLONG,
            E::MSGSIZE,
            E::BADMSG,
            E::ALREADY,
            E::FAULT,
            E::BADF,
        ],
        "read" => &[E::FAULT],
        "poll" => &[],
        "RESET" | "DISCARD" => &[],
        "BIND" => &[
            E::FAULT,
            E::BADMSG,
            E::NAMETOOLONG,
            E::ADDRINUSE,
            E::AGAIN,
            E::NOMEM,
        ],
        "UNBIND" => &[E::FAULT, E::BADMSG, E::NAMETOOLONG, E::INVAL, E::AGAIN],
        "REPLIER" => &[E::FAULT, E::NAMETOOLONG],
        "KSOCKID" | "NEXTMSG" | "LENLEFT" | "LASTSENT" | "MAXMSGS" | "NUMMSGS" | "UNREPLIEDTO" => {
            &[E::FAULT]
        }
        "SEND" => &[
            E::NOMSG,
            E::INVAL,
            E::BADMSG,
            E::FAULT,
            E::NOMEM,
            E::NOLCK,
            E::ADDRNOTAVAIL,
            E::CONNREFUSED,
            E::PIPE,
            E::BUSY,
            E::AGAIN,
        ],
        "MSGONLYONCE" | "VERBOSE" | "MAXMSGSIZE" => &[E::FAULT, E::INVAL],
        "NEWDEVICE" => &[E::FAULT, E::INVAL, E::NOMEM],
        "REPORTREPLIERBINDS" => &[E::FAULT, E::INVAL, E::BUSY],
        // A code that is not exactly one of the table's (spec §3.10).
        "bad ioctl" => &[E::NOTTY, E::FAULT],
        other => panic!("no errno table for {other}"),
    }
}

fn op_name(k: K) -> &'static str {
    match k {
        K::Reset => "RESET",
        K::Bind => "BIND",
        K::Unbind => "UNBIND",
        K::KsockId => "KSOCKID",
        K::Replier => "REPLIER",
        K::NextMsg => "NEXTMSG",
        K::LenLeft => "LENLEFT",
        K::Send => "SEND",
        K::Discard => "DISCARD",
        K::LastSent => "LASTSENT",
        K::MaxMsgs => "MAXMSGS",
        K::NumMsgs => "NUMMSGS",
        K::UnrepliedTo => "UNREPLIEDTO",
        K::MsgOnlyOnce => "MSGONLYONCE",
        K::Verbose => "VERBOSE",
        K::NewDevice => "NEWDEVICE",
        K::Report => "REPORTREPLIERBINDS",
        K::MaxMsgSize => "MAXMSGSIZE",
    }
}

fn en(e: Errno) -> String {
    kbus_rustix::errno_name(e).to_string()
}

// ---- messages --------------------------------------------------------------

/// (must fail, may fault) for a name pointer of `kind` holding `have`
/// bytes when the module copies `len` of them (only lengths 1..=1000 are
/// copied; the name ends right before a hole for PageEnd and ReadOnly).
fn name_faults(kind: Ptr, len: u32, have: usize) -> (bool, bool) {
    if !(1..=1000).contains(&len) {
        return (false, false);
    }
    match kind {
        _ if !kind.readable() => (true, true),
        Ptr::PageEnd | Ptr::ReadOnly if len as usize > have => (true, true),
        _ if len as usize > have => (false, true),
        _ => (false, false),
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn set_ptr(b: &mut [u8], off: usize, v: usize) {
    b[off..off + PTR].copy_from_slice(&v.to_ne_bytes());
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn entire(name_len: usize, data_len: usize) -> usize {
    H + pad4(name_len + 1) + pad4(data_len) + 4
}

/// Header fields of a message to write.
#[derive(Clone, Debug, Default)]
struct Hdr {
    id: (u32, u32),
    in_reply_to: (u32, u32),
    to: u32,
    from: u32,
    orig_from: (u32, u32),
    final_to: (u32, u32),
    extra: u32,
    flags: u32,
}

fn header(h: &Hdr, name_len: u32, data_len: u32, name: usize, data: usize) -> Vec<u8> {
    let mut b = vec![0u8; H];
    set_u32(&mut b, 0, START);
    set_u32(&mut b, 4, h.id.0);
    set_u32(&mut b, 8, h.id.1);
    set_u32(&mut b, 12, h.in_reply_to.0);
    set_u32(&mut b, 16, h.in_reply_to.1);
    set_u32(&mut b, 20, h.to);
    set_u32(&mut b, 24, h.from);
    set_u32(&mut b, 28, h.orig_from.0);
    set_u32(&mut b, 32, h.orig_from.1);
    set_u32(&mut b, 36, h.final_to.0);
    set_u32(&mut b, 40, h.final_to.1);
    set_u32(&mut b, 44, h.extra);
    set_u32(&mut b, 48, h.flags);
    set_u32(&mut b, 52, name_len);
    set_u32(&mut b, 56, data_len);
    set_ptr(&mut b, NAME_PTR_OFF, name);
    set_ptr(&mut b, DATA_PTR_OFF, data);
    set_u32(&mut b, END_GUARD_OFF, END);
    b
}

fn entire_bytes(h: &Hdr, name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = header(h, name.len() as u32, data.len() as u32, 0, 0);
    b.extend_from_slice(name);
    b.resize(H + pad4(name.len() + 1), 0);
    b.extend_from_slice(data);
    b.resize(H + pad4(name.len() + 1) + pad4(data.len()), 0);
    b.extend_from_slice(&END.to_ne_bytes());
    b
}

/// A message read whole: check everything KBUS promises about it (§6.4).
fn check_received(b: &[u8], total: usize) -> Result<(), String> {
    if b.len() != total || total < H + 8 || total % 4 != 0 {
        return Err(format!("{} bytes, NEXTMSG said {total}", b.len()));
    }
    let name_len = u32_at(b, 52) as usize;
    let data_len = u32_at(b, 56) as usize;
    let checks = [
        (u32_at(b, 0) == START, "start guard"),
        (u32_at(b, END_GUARD_OFF) == END, "header end guard"),
        ((1..=1000).contains(&name_len), "name_len 1..=1000"),
        (entire(name_len, data_len) == total, "ENTIRE() = length"),
        (
            b[NAME_PTR_OFF..END_GUARD_OFF].iter().all(|&x| x == 0),
            "NULL pointers",
        ),
        (u32_at(b, 44) == 0, "extra 0"),
        (u32_at(b, total - 4) == END, "final guard"),
    ];
    for (good, what) in checks {
        if !good {
            return Err(format!("bad {what}: {:02x?}", &b[..H.min(b.len())]));
        }
    }
    let name = &b[H..H + name_len];
    if validate_message_name(name).is_err() {
        return Err(format!("invalid name {:?}", String::from_utf8_lossy(name)));
    }
    if b[H + name_len..H + pad4(name_len + 1)]
        .iter()
        .any(|&x| x != 0)
    {
        return Err("name padding not zero".into());
    }
    let flags = u32_at(b, 48);
    if flags & 4 != 0 && !name.starts_with(b"$.KBUS.") {
        return Err(format!(
            "SYNTHETIC set on a user message (flags {flags:#x})"
        ));
    }
    if flags & 2 != 0 && flags & 1 == 0 {
        return Err(format!(
            "WANT_YOU_TO_REPLY without WANT_A_REPLY ({flags:#x})"
        ));
    }
    Ok(())
}

/// A non-zero generator state from any seed (splitmix64), so that
/// neighbouring seeds give unrelated runs.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

// ---- one Ksock of the fuzzer ----------------------------------------------

/// What we know of a Ksock's outgoing message (spec §5.1, §5.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// Nothing in progress and not sending: SEND must say ENOMSG.
    Idle,
    /// Sending state (a SEND said EAGAIN): `write()` must say EALREADY.
    Sending,
    /// Something written (complete or not), not sending.
    Writing,
    /// Not known (an EFAULT may or may not have discarded it).
    Unknown,
}

/// The current read message as far as we know it.
struct Reading {
    total: usize,
    left: usize,
    bytes: Vec<u8>,
    /// All bytes so far went to good buffers, so `bytes` is the message.
    intact: bool,
}

struct Slot {
    k: Ksock,
    dev: u32,
    id: u32,
    writable: bool,
    out: Out,
    reading: Option<Reading>,
    /// None: not known.
    max_messages: Option<u32>,
    only_once: Option<bool>,
    last_sent: Option<(u32, u32)>,
    /// (raw is_replier, name) of its bindings, oldest first.
    bindings: Vec<(u32, Vec<u8>)>,
}

impl Slot {
    fn open(dev: u32, writable: bool) -> Slot {
        let k = if writable { open_rw(dev) } else { open_ro(dev) };
        let id = ok(k.ksock_id(), "KSOCKID");
        Slot {
            k,
            dev,
            id,
            writable,
            out: Out::Idle,
            reading: None,
            max_messages: Some(100),
            only_once: Some(false),
            last_sent: Some((0, 0)),
            bindings: Vec::new(),
        }
    }
}

/// A Request we received with WANT_YOU_TO_REPLY: (device, id, from, name).
type Pending = (u32, (u32, u32), u32, Vec<u8>);

struct Fuzzer {
    who: String,
    seed: u64,
    rng: Rng,
    arena: Arena,
    slots: Vec<Slot>,
    /// Name and data buffers of pointy messages: kept until every Ksock is
    /// closed, as a pending message may point into them.
    keep: Vec<Box<[u8]>>,
    scratch: Box<[u8; 64]>,
    /// A PageEnd ioctl argument (address, length) to copy back to `scratch`.
    page_end_arg: Option<(usize, usize)>,
    /// Requests to answer (any Ksock of the device may, spec §6.6).
    to_answer: Vec<Pending>,
    /// Ids seen in fuzz messages (for in_reply_to values).
    seen_ids: Vec<(u32, u32)>,
    /// Last serial number a local send returned, per device.
    last_serial: BTreeMap<u32, u32>,
    newdevice_budget: u32,
    trace: Vec<String>,
    step: u64,
    /// (op, outcome) → count, for the summary.
    tally: BTreeMap<(String, String), u64>,
}

impl Fuzzer {
    fn new(who: &str, seed: u64, nslots: usize) -> Fuzzer {
        let mut rng = Rng(mix(seed));
        let slots = (0..nslots)
            .map(|i| Slot::open(DEVICES[i % 3], rng.percent(90)))
            .collect();
        Fuzzer {
            who: who.to_string(),
            seed,
            rng,
            arena: Arena::new(),
            slots,
            keep: Vec::new(),
            scratch: Box::new([0; 64]),
            page_end_arg: None,
            to_answer: Vec::new(),
            seen_ids: Vec::new(),
            last_serial: BTreeMap::new(),
            newdevice_budget: 1,
            trace: Vec::new(),
            step: 0,
            tally: BTreeMap::new(),
        }
    }

    fn note(&mut self, what: String) {
        if self.trace.len() >= 40 {
            self.trace.remove(0);
        }
        self.trace.push(format!("step {}: {what}", self.step));
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let mut s = format!(
            "\n{} (seed {:#x}, step {}): {what}\nlast operations:\n",
            self.who, self.seed, self.step
        );
        for t in &self.trace {
            let _ = writeln!(s, "  {t}");
        }
        panic!("{s}");
    }

    fn tally(&mut self, op: &str, r: &Result<usize, Errno>) {
        let outcome = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => en(*e),
        };
        *self.tally.entry((op.to_string(), outcome)).or_default() += 1;
    }

    /// Check a result against the spec's table; `bad` = some pointer the
    /// operation must use was bad, so it must fail; EFAULT is allowed only
    /// if `may_fault`.
    #[track_caller]
    fn judge(
        &mut self,
        op: &str,
        args: &str,
        r: &Result<usize, Errno>,
        must_fail: bool,
        may_fault: bool,
    ) {
        self.tally(op, r);
        match r {
            Ok(v) if must_fail => self.fail(&format!(
                "{op} {args}: succeeded ({v}) with a bad pointer; expected an error"
            )),
            Ok(_) => {}
            Err(e) => {
                if !allowed(op).contains(e) {
                    self.fail(&format!(
                        "{op} {args}: unexpected errno {} (allowed: {})",
                        en(*e),
                        allowed(op)
                            .iter()
                            .map(|&e| en(e))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                if *e == Errno::FAULT && !may_fault {
                    self.fail(&format!("{op} {args}: EFAULT with only good pointers"));
                }
            }
        }
    }

    // ---- random pieces ----

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.below(xs.len() as u64) as usize]
    }

    fn ptr_kind(&mut self, good_percent: u64) -> Ptr {
        if self.rng.percent(good_percent) {
            return if self.rng.percent(85) {
                Ptr::Good
            } else {
                Ptr::PageEnd
            };
        }
        self.pick(&[
            Ptr::ReadOnly,
            Ptr::Null,
            Ptr::One,
            Ptr::Kernel,
            Ptr::NonCanonical,
            Ptr::Hole,
            Ptr::Straddle,
        ])
    }

    /// What `place` really does for `len` bytes: the arena's pages hold at
    /// most a page, so longer PageEnd buffers are Good and longer ReadOnly
    /// ones become a kernel address.
    fn fit(&self, kind: Ptr, len: usize) -> Ptr {
        match kind {
            Ptr::PageEnd if len > self.arena.page => Ptr::Good,
            Ptr::ReadOnly if len > self.arena.page => Ptr::Kernel,
            k => k,
        }
    }

    /// An address with `bytes` at it, as `kind` says. Good buffers are
    /// kept in `self.keep` (they must live until their Ksock closes).
    fn place(&mut self, kind: Ptr, bytes: &[u8]) -> usize {
        let page = self.arena.page;
        match kind {
            Ptr::Good => {
                let b: Box<[u8]> = bytes.into();
                let a = b.as_ptr() as usize;
                self.keep.push(b);
                a
            }
            Ptr::PageEnd if bytes.len() <= page => self.arena.place_rw(bytes, 0),
            Ptr::PageEnd => self.place(Ptr::Good, bytes),
            Ptr::ReadOnly if bytes.len() <= page => self.arena.place_ro(bytes),
            Ptr::ReadOnly => KERNEL_ADDR,
            Ptr::Null => 0,
            Ptr::One => 1,
            Ptr::Kernel => KERNEL_ADDR,
            Ptr::NonCanonical => NONCANON_ADDR,
            Ptr::Hole => self.arena.hole(),
            Ptr::Straddle => {
                let n = bytes.len().min(page);
                let past = 1 + self.rng.below(n.max(1) as u64) as usize;
                self.arena.place_rw(&bytes[..n], past.min(n))
            }
        }
    }

    fn send_name(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => {
                // A long valid name: "$.F" then letters.
                let n = self.pick(&[4usize, 999, 1000, 500]);
                let mut v = b"$.F".to_vec();
                v.resize(n, b'x');
                v
            }
            1 => self
                .pick(&[
                    &b"$.F*"[..],
                    b"$.F.*",
                    b"$.F..a",
                    b"$.F.",
                    b"$.Fa b",
                    b"$.F\xc0\xff",
                    b"$.F\x80",
                    b"$.Fa\0",
                ])
                .to_vec(),
            _ => self.pick(&SEND_NAMES).as_bytes().to_vec(),
        }
    }

    fn bind_name(&mut self) -> Vec<u8> {
        let mut v = match self.rng.below(10) {
            0..=3 => self.pick(&SEND_NAMES).as_bytes().to_vec(),
            4..=6 => self.pick(&BIND_NAMES).as_bytes().to_vec(),
            7 => self.send_name(),
            8 => {
                let n = self.rng.below(12) as usize;
                (0..n).map(|_| self.rng.next() as u8).collect()
            }
            _ => {
                let mut v = self.pick(&SEND_NAMES).as_bytes().to_vec();
                let i = self.rng.below(v.len() as u64) as usize;
                v[i] = self.pick(&[b'.', b'*', b'%', b'$', 0, 0xc5, b' ', b'F']);
                v
            }
        };
        // Never exactly a bystander name.
        if v == BY_ANN.as_bytes() || v == BY_REQ.as_bytes() {
            v = b"$.F.a".to_vec();
        }
        v
    }

    fn data(&mut self) -> Vec<u8> {
        let n = match self.rng.below(200) {
            0..=39 => 0,
            40..=139 => self.rng.below(17),
            140..=189 => self.rng.below(300),
            190..=198 => self.rng.below(5000),
            _ => 100_000 + self.rng.below(309_000),
        } as usize;
        let x = self.rng.next() as u8;
        (0..n).map(|i| x.wrapping_add(i as u8)).collect()
    }

    fn random_id(&mut self) -> (u32, u32) {
        match self.rng.below(10) {
            0..=6 => (0, 0),
            7 | 8 if !self.seen_ids.is_empty() => self.pick(&self.seen_ids.clone()),
            _ => (self.rng.next() as u32, self.rng.next() as u32),
        }
    }

    fn hdr(&mut self) -> Hdr {
        let mut flags = 0u32;
        for (bit, pct) in [
            (1, 25),
            (8, 15),
            (0x100, 10),
            (0x200, 10),
            (4, 5),
            (2, 5),
            (0x8000_0000, 5),
        ] {
            if self.rng.percent(pct) {
                flags |= bit;
            }
        }
        let id = if self.rng.percent(10) {
            (1 + self.rng.below(1000) as u32, self.rng.next() as u32)
        } else {
            (
                0,
                if self.rng.percent(10) {
                    self.rng.next() as u32
                } else {
                    0
                },
            )
        };
        let to = match self.rng.below(10) {
            0..=6 => 0,
            7 => self.rng.below(20) as u32,
            _ => self.rng.next() as u32,
        };
        Hdr {
            id,
            in_reply_to: self.random_id(),
            to,
            from: self.rng.next() as u32,
            orig_from: (self.rng.below(3) as u32, self.rng.below(3) as u32),
            final_to: (0, self.rng.below(3) as u32),
            extra: if self.rng.percent(10) {
                self.rng.next() as u32
            } else {
                0
            },
            flags,
        }
    }

    // ---- operations ----

    fn slot_index(&mut self) -> usize {
        self.rng.below(self.slots.len() as u64) as usize
    }

    /// Write `bytes` in 1..4 chunks, some from bad buffers.
    fn write_chunks(&mut self, i: usize, bytes: &[u8], what: &str) {
        let chunks = 1 + self.rng.below(4) as usize;
        let mut cuts: Vec<usize> = (1..chunks)
            .map(|_| self.rng.below(bytes.len() as u64 + 1) as usize)
            .collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for w in cuts.windows(2) {
            let part = &bytes[w[0]..w[1]];
            let kind = self.ptr_kind(92);
            let kind = self.fit(kind, part.len());
            let kind = if kind == Ptr::Straddle && part.len() < 2 {
                Ptr::Good
            } else {
                kind
            };
            let addr = self.place(kind, part);
            let args = format!("{what}, {} bytes at {kind:?}", part.len());
            self.note(format!("write ksock {} ({args})", self.slots[i].id));
            let r = raw::write(self.slots[i].k.as_fd(), addr, part.len());
            self.after_write(i, &args, kind, part.len(), r);
            if r.is_err() && self.rng.percent(60) {
                return;
            }
        }
    }

    fn after_write(
        &mut self,
        i: usize,
        args: &str,
        kind: Ptr,
        len: usize,
        r: Result<usize, Errno>,
    ) {
        let s = &self.slots[i];
        let (writable, out) = (s.writable, s.out);
        let bad = !kind.readable() && len > 0;
        // The module either fails before reaching bad bytes or faults on
        // them, except on padding bytes, which it skips without reading
        // (at most 4 in a row): so a wholly bad buffer of more than 4 bytes
        // must fail; a straddling one may end in skipped padding.
        let must = bad && kind != Ptr::Straddle && len > 4;
        self.judge("write", args, &r, must, bad || (len == 0 && !kind.good()));
        match r {
            Ok(n) if n != len => self.fail(&format!("write {args}: returned {n}, not {len}")),
            Err(Errno::BADF) if writable => {
                self.fail(&format!("write {args}: EBADF on a read/write Ksock"))
            }
            Err(e) if !writable && e != Errno::BADF => self.fail(&format!(
                "write {args}: {} on a read-only Ksock (expected EBADF)",
                en(e)
            )),
            Err(Errno::ALREADY) if out != Out::Sending && out != Out::Unknown => self.fail(
                &format!("write {args}: EALREADY, but the Ksock is not sending ({out:?})"),
            ),
            Err(e)
                if out == Out::Sending
                    && e != Errno::ALREADY
                    && !(e == Errno::FAULT && kind.kernel_half()) =>
            {
                self.fail(&format!(
                    "write {args}: {} in sending state (expected EALREADY)",
                    en(e)
                ))
            }
            Ok(_) if out == Out::Sending => {
                self.fail(&format!("write {args}: succeeded in sending state"))
            }
            _ => {}
        }
        let s = &mut self.slots[i];
        s.out = match r {
            _ if !writable => out,
            Ok(_) if out == Out::Unknown => Out::Unknown,
            Ok(_) => Out::Writing,
            Err(Errno::ALREADY) => Out::Sending,
            Err(Errno::FAULT) => Out::Unknown,
            Err(_) => Out::Idle,
        };
    }

    /// A message, valid or with one thing wrong, entire or pointy.
    fn op_write_message(&mut self) {
        let i = self.slot_index();
        let mut h = self.hdr();
        let name = self.send_name();
        let data = self.data();
        let pointy = self.rng.percent(30);
        let mut what = format!(
            "{} {:?} data {} flags {:#x} irt {:?} to {}",
            if pointy { "pointy" } else { "entire" },
            String::from_utf8_lossy(&name[..name.len().min(20)]),
            data.len(),
            h.flags,
            h.in_reply_to,
            h.to
        );
        if self.rng.percent(3) {
            h.flags |= 0x300;
        }
        let mut bytes = if pointy {
            let nk = self.ptr_kind(85);
            let dk = if data.is_empty() {
                Ptr::Null
            } else {
                let k = self.ptr_kind(85);
                self.fit(k, data.len())
            };
            let np = self.place(nk, &name);
            let dp = if data.is_empty() {
                0
            } else {
                self.place(dk, &data)
            };
            let _ = write!(what, " name at {nk:?} data at {dk:?}");
            header(&h, name.len() as u32, data.len() as u32, np, dp)
        } else {
            entire_bytes(&h, &name, &data)
        };
        if self.rng.percent(30) {
            let m = self.mutate(&mut bytes);
            let _ = write!(what, " mutated: {m}");
        }
        self.write_chunks(i, &bytes, &what);
        if self.rng.percent(80) {
            self.op_send_on(i);
        }
    }

    fn mutate(&mut self, b: &mut Vec<u8>) -> String {
        let len = b.len();
        match self.rng.below(10) {
            0 => {
                let off = 4 * self.rng.below((H / 4) as u64) as usize;
                let rnd = self.rng.next() as u32;
                let v = self.pick(&[
                    0,
                    1,
                    3,
                    0xFFFF_FFFF,
                    1000,
                    1001,
                    0x7FFF_FFFF,
                    0x8000_0000,
                    rnd,
                ]);
                set_u32(b, off, v);
                format!("u32 at {off} = {v:#x}")
            }
            1 => {
                let off = self.rng.below(len as u64) as usize;
                let v = self.rng.next() as u8;
                b[off] = v;
                format!("byte {off} = {v:#x}")
            }
            2 => {
                let n = self.rng.below(len as u64) as usize;
                b.truncate(n);
                format!("truncated to {n}")
            }
            3 => {
                let n = 1 + self.rng.below(8) as usize;
                for _ in 0..n {
                    b.push(self.rng.next() as u8);
                }
                format!("{n} bytes appended")
            }
            4 => {
                let v = self.pick(&[
                    0,
                    1001,
                    0xFFFF_FFFF,
                    1000,
                    u32_at(b, 52).wrapping_add(1),
                    u32_at(b, 52).wrapping_sub(1),
                ]);
                set_u32(b, 52, v);
                format!("name_len = {v:#x}")
            }
            5 => {
                let v = self.pick(&[
                    0xFFFF_FFFF,
                    0x7FFF_FFFF,
                    409_500,
                    u32_at(b, 56).wrapping_add(1),
                    u32_at(b, 56).wrapping_sub(1),
                    0,
                ]);
                set_u32(b, 56, v);
                format!("data_len = {v:#x}")
            }
            6 => {
                let off = self.pick(&[0, END_GUARD_OFF, len - 4]);
                set_u32(
                    b,
                    off,
                    self.pick(&[START, END, 0]) ^ (self.rng.below(2) as u32),
                );
                format!("guard at {off} broken")
            }
            7 | 8 => {
                let kind = self.pick(&[
                    Ptr::Null,
                    Ptr::One,
                    Ptr::Kernel,
                    Ptr::NonCanonical,
                    Ptr::Hole,
                    Ptr::Straddle,
                    Ptr::ReadOnly,
                ]);
                let off = self.pick(&[NAME_PTR_OFF, DATA_PTR_OFF]);
                let filler = vec![b'F'; 16];
                let addr = self.place(kind, &filler);
                set_ptr(b, off, addr);
                format!("pointer at {off} = {kind:?} {addr:#x}")
            }
            _ => {
                let mut more = entire_bytes(&Hdr::default(), b"$.F.a", b"x");
                b.append(&mut more);
                "a second message appended".into()
            }
        }
    }

    fn op_write_garbage(&mut self) {
        let i = self.slot_index();
        let n = self.pick(&[0usize, 1, 3, 4, H - 1, H, H + 1, 200, 5000]);
        let mut b: Vec<u8> = (0..n).map(|_| self.rng.next() as u8).collect();
        if n >= H && self.rng.percent(50) {
            set_u32(&mut b, 0, START);
            set_u32(&mut b, END_GUARD_OFF, END);
        }
        self.write_chunks(i, &b, "random bytes");
    }

    /// A raw ioctl: returns the result and the scratch buffer's contents.
    fn ioctl(&mut self, i: usize, cmd: Opcode, arg: usize) -> Result<usize, Errno> {
        let r = raw::ioctl(self.slots[i].k.as_fd(), cmd, arg).map(|v| v as usize);
        if let Some((a, n)) = self.page_end_arg.take() {
            if a == arg {
                let v = self.arena.read_rw(a, n);
                self.scratch[..n].copy_from_slice(&v);
            }
        }
        r
    }

    /// Put `bytes` in the scratch buffer (Good), or elsewhere as `kind`
    /// says. After the next ioctl the scratch buffer holds what the kernel
    /// wrote for both good kinds (PageEnd is copied back from the arena).
    fn arg(&mut self, kind: Ptr, bytes: &[u8]) -> usize {
        self.scratch.fill(0xAA);
        self.page_end_arg = None;
        match kind {
            Ptr::Good => {
                self.scratch[..bytes.len()].copy_from_slice(bytes);
                self.scratch.as_mut_ptr() as usize
            }
            Ptr::PageEnd => {
                let a = self.arena.place_rw(bytes, 0);
                self.page_end_arg = Some((a, bytes.len()));
                a
            }
            _ => self.place(kind, bytes),
        }
    }

    fn op_send_on(&mut self, i: usize) {
        let kind = self.ptr_kind(90);
        self.send_with(i, kind);
    }

    fn send_with(&mut self, i: usize, kind: Ptr) {
        let arg = self.arg(kind, &[0; 8]);
        let (id, out, dev) = (self.slots[i].id, self.slots[i].out, self.slots[i].dev);
        self.note(format!("SEND ksock {id} arg {kind:?} ({out:?})"));
        let r = self.ioctl(i, exact(K::Send), arg);
        let args = format!("on ksock {id} (arg {kind:?}, state {out:?})");
        self.judge(
            "SEND",
            &args,
            &r,
            !kind.good(),
            !kind.good() || out != Out::Sending,
        );
        if let Ok(v) = r {
            if v != 0 {
                self.fail(&format!("SEND {args}: returned {v}"));
            }
        }
        if kind.kernel_half() {
            return; // refused before the module saw it
        }
        match (out, r) {
            (Out::Idle, Err(Errno::NOMSG)) => {}
            (Out::Idle, r) => self.fail(&format!(
                "SEND {args}: nothing written, expected ENOMSG, got {r:?}"
            )),
            (Out::Sending, Err(e)) if [Errno::NOMSG, Errno::INVAL, Errno::BADMSG].contains(&e) => {
                self.fail(&format!("SEND {args}: {} for a pending message", en(e)))
            }
            (Out::Writing, Err(Errno::NOMSG)) => {
                self.fail(&format!("SEND {args}: ENOMSG after a write"))
            }
            _ => {}
        }
        let got = if kind.good() {
            Some((u32_at(&self.scratch[..], 0), u32_at(&self.scratch[..], 4)))
        } else {
            None
        };
        let s = &mut self.slots[i];
        s.out = match r {
            Err(Errno::AGAIN) => Out::Sending,
            Err(Errno::FAULT) => Out::Unknown,
            _ => Out::Idle,
        };
        match r {
            Ok(_) | Err(Errno::AGAIN) => s.last_sent = got,
            Err(Errno::NOMSG | Errno::INVAL | Errno::BADMSG | Errno::NOLCK) => {}
            Err(_) => s.last_sent = None,
        }
        if let (Ok(_), Some(id)) = (r, got) {
            if id.0 == 0 && out == Out::Writing {
                let last = self.last_serial.entry(dev).or_insert(0);
                if id.1 <= *last {
                    let l = *last;
                    self.fail(&format!(
                        "SEND {args}: id [0:{}] not above the last one [0:{l}]",
                        id.1
                    ));
                }
                *last = id.1;
            }
            if self.seen_ids.len() < 64 {
                self.seen_ids.push(id);
            }
        }
    }

    fn op_send(&mut self) {
        let i = self.slot_index();
        self.op_send_on(i);
    }

    fn op_discard(&mut self) {
        let i = self.slot_index();
        self.note(format!("DISCARD ksock {}", self.slots[i].id));
        let arg = self.rng.next() as usize;
        let r = self.ioctl(i, exact(K::Discard), arg);
        self.judge("DISCARD", "", &r, false, false);
        if r != Ok(0) {
            self.fail(&format!("DISCARD returned {r:?}"));
        }
        self.slots[i].out = Out::Idle;
    }

    fn op_poll(&mut self) {
        let i = self.slot_index();
        self.note(format!("poll ksock {}", self.slots[i].id));
        let r = self.slots[i].k.poll(Ready::BOTH, Some(Duration::ZERO));
        let got = match r {
            Ok(g) => g,
            Err(e) => self.fail(&format!("poll: {e}")),
        };
        *self.tally.entry(("poll".into(), "ok".into())).or_default() += 1;
        if !self.slots[i].writable {
            if got.writable {
                self.fail("poll: a read-only Ksock is writable");
            }
            return;
        }
        let s = &mut self.slots[i];
        s.out = match (got.writable, s.out) {
            // A pending send was retried and finished, one way or another.
            (true, Out::Sending) => Out::Idle,
            (true, out) => out,
            (false, _) => Out::Sending,
        };
    }

    /// NEXTMSG and/or reads of random sizes into good and bad buffers.
    fn op_read(&mut self) {
        let i = self.slot_index();
        if self.slots[i].reading.is_none() || self.rng.percent(30) {
            let kind = self.ptr_kind(90);
            self.nextmsg(i, kind);
        }
        for _ in 0..1 + self.rng.below(3) {
            self.read_some(i);
        }
    }

    fn nextmsg(&mut self, i: usize, kind: Ptr) {
        let arg = self.arg(kind, &[0; 4]);
        let id = self.slots[i].id;
        self.note(format!("NEXTMSG ksock {id} arg {kind:?}"));
        let r = self.ioctl(i, exact(K::NextMsg), arg);
        let args = format!("on ksock {id} (arg {kind:?})");
        self.judge("NEXTMSG", &args, &r, !kind.good(), !kind.good());
        if kind.kernel_half() {
            return;
        }
        let len = u32_at(&self.scratch[..], 0) as usize;
        match r {
            Ok(0) if kind.good() && len != 0 => {
                self.fail(&format!("NEXTMSG {args}: returned 0 with length {len}"))
            }
            Ok(0) => self.slots[i].reading = None,
            Ok(1) => {
                if len < H + 8 || len % 4 != 0 {
                    self.fail(&format!("NEXTMSG {args}: length {len}"));
                }
                self.slots[i].reading = Some(Reading {
                    total: len,
                    left: len,
                    bytes: Vec::new(),
                    intact: true,
                });
            }
            Ok(v) => self.fail(&format!("NEXTMSG {args}: returned {v}")),
            Err(_) => {
                // The old message is dropped; a new one popped (or not)
                // and its length lost: LENLEFT tells.
                self.slots[i].reading = None;
                self.resync(i);
            }
        }
    }

    fn lenleft(&mut self, i: usize) -> usize {
        let arg = self.arg(Ptr::Good, &[0; 4]);
        let r = self.ioctl(i, exact(K::LenLeft), arg);
        self.judge("LENLEFT", "", &r, false, false);
        u32_at(&self.scratch[..], 0) as usize
    }

    /// After an EFAULT, learn the read position from LENLEFT.
    fn resync(&mut self, i: usize) {
        let left = self.lenleft(i);
        let new = match self.slots[i].reading.take() {
            _ if left == 0 => None,
            Some(rd) if left > rd.left => self.fail(&format!(
                "LENLEFT {left} after a failed read, {} before",
                rd.left
            )),
            Some(rd) => Some(Reading {
                left,
                intact: false,
                ..rd
            }),
            None => Some(Reading {
                total: left,
                left,
                bytes: Vec::new(),
                intact: false,
            }),
        };
        self.slots[i].reading = new;
    }

    fn read_some(&mut self, i: usize) {
        let left = self.slots[i].reading.as_ref().map_or(0, |r| r.left);
        let n = self.pick(&[0usize, 1, 3, 4, H, 256, 4096, left, left + 8, 500_000]);
        let kind = self.ptr_kind(85);
        let mut buf = vec![0u8; if kind.good() { n } else { 0 }];
        let addr = match kind {
            Ptr::Good => buf.as_mut_ptr() as usize,
            Ptr::PageEnd if n <= self.arena.page => self.arena.place_rw(&vec![0; n], 0),
            Ptr::PageEnd => {
                buf = vec![0u8; n];
                buf.as_mut_ptr() as usize
            }
            k => self.place(k, &vec![0u8; n.min(64)]),
        };
        let kind = if kind == Ptr::PageEnd && n > self.arena.page {
            Ptr::Good
        } else {
            kind
        };
        let id = self.slots[i].id;
        self.note(format!(
            "read ksock {id} {n} bytes at {kind:?} (left {left})"
        ));
        let r = raw::read(self.slots[i].k.as_fd(), addr, n);
        let args = format!("of {n} bytes at {kind:?} on ksock {id} (left {left})");
        let bad = !kind.good();
        // Straddle: good up to the hole, so only a longer copy must fail.
        let room = if kind == Ptr::Straddle {
            self.arena.hole() - addr
        } else {
            0
        };
        // Spec 14.7: a read that faults after copying some bytes returns
        // the count copied (the arch's copy may stop a little short of the
        // hole); one that copies nothing fails with EFAULT.
        let want = n.min(left);
        let faults = bad && want > room;
        self.judge("read", &args, &r, faults && room == 0, bad);
        match r {
            Ok(got) => {
                if faults && (got == 0 || got > room) {
                    self.fail(&format!(
                        "read {args}: returned {got}, expected a partial count of 1..={room}"
                    ));
                } else if !faults && got != want {
                    self.fail(&format!("read {args}: returned {got}, expected {want}"));
                }
                if got == 0 {
                    return;
                }
                let bytes: Vec<u8> = if kind != Ptr::Good {
                    // PageEnd or a Straddle that did not reach the hole:
                    // the bytes are in the arena's read/write page.
                    self.arena.read_rw(addr, got)
                } else {
                    buf[..got].to_vec()
                };
                let dev = self.slots[i].dev;
                let mut rd = self.slots[i].reading.take().unwrap();
                rd.left -= got;
                rd.bytes.extend_from_slice(&bytes);
                if rd.left > 0 {
                    self.slots[i].reading = Some(rd);
                } else if rd.intact {
                    if let Err(e) = check_received(&rd.bytes, rd.total) {
                        self.fail(&format!("message read on ksock {id}: {e}"));
                    }
                    self.received(dev, &rd.bytes);
                }
            }
            Err(_) => self.resync(i),
        }
        // LENLEFT agrees with the model.
        if let Some(left) = self.slots[i].reading.as_ref().map(|r| r.left) {
            let l = self.lenleft(i);
            if l != left {
                self.fail(&format!("LENLEFT {l}, expected {left}"));
            }
        }
    }

    fn received(&mut self, dev: u32, b: &[u8]) {
        let name_len = u32_at(b, 52) as usize;
        let name = &b[H..H + name_len];
        if !name.starts_with(b"$.F") {
            return;
        }
        let id = (u32_at(b, 4), u32_at(b, 8));
        if self.seen_ids.len() < 64 {
            self.seen_ids.push(id);
        }
        if u32_at(b, 48) & 2 != 0 && self.to_answer.len() < 16 {
            self.to_answer.push((dev, id, u32_at(b, 24), name.to_vec()));
        }
    }

    /// Reply to a Request received (from any Ksock of its device).
    fn op_reply(&mut self) {
        if self.to_answer.is_empty() {
            return self.op_read();
        }
        let j = self.rng.below(self.to_answer.len() as u64) as usize;
        let (dev, id, from, name) = self.to_answer.swap_remove(j);
        let Some(i) =
            (0..self.slots.len()).find(|&i| self.slots[i].dev == dev && self.slots[i].writable)
        else {
            return;
        };
        if self.slots[i].out == Out::Sending {
            return;
        }
        let h = Hdr {
            in_reply_to: id,
            to: from,
            flags: if self.rng.percent(20) { 0x100 } else { 0 },
            ..Hdr::default()
        };
        let data = self.data();
        let bytes = entire_bytes(&h, &name, &data);
        if self.slots[i].out != Out::Idle {
            self.op_discard_on(i);
        }
        self.write_chunks(i, &bytes, &format!("Reply to {id:?} of {from}"));
        self.send_with(i, Ptr::Good);
    }

    fn op_discard_on(&mut self, i: usize) {
        let r = self.ioctl(i, exact(K::Discard), 0);
        self.judge("DISCARD", "", &r, false, false);
        self.slots[i].out = Out::Idle;
    }

    fn op_bind(&mut self, unbind: bool) {
        let i = self.slot_index();
        let name = if unbind && !self.slots[i].bindings.is_empty() && self.rng.percent(60) {
            let b = &self.slots[i].bindings;
            let (raw, name) = b[self.rng.below(b.len() as u64) as usize].clone();
            return self.bind_call(i, unbind, raw, name);
        } else {
            self.bind_name()
        };
        let raw = self.pick(&[0, 0, 1, 1, 2, 0xFFFF_FFFF]);
        self.bind_call(i, unbind, raw, name);
    }

    fn bind_struct(&mut self, first: u32, name: &[u8]) -> (Vec<u8>, String, Ptr, u32) {
        let nk = self.ptr_kind(85);
        let np = self.place(nk, name);
        let len = match self.rng.below(12) {
            0 => 0,
            1 => 1001,
            2 => 0xFFFF_FFFF,
            3 => name.len() as u32 + 1,
            _ => name.len() as u32,
        };
        let mut s = vec![0u8; 8 + PTR];
        set_u32(&mut s, 0, first);
        set_u32(&mut s, 4, len);
        set_ptr(&mut s, 8, np);
        let desc = format!(
            "{first:#x} {:?} len {len} at {nk:?}",
            String::from_utf8_lossy(&name[..name.len().min(30)])
        );
        (s, desc, nk, len)
    }

    fn bind_call(&mut self, i: usize, unbind: bool, raw: u32, name: Vec<u8>) {
        let (st, desc, nk, len) = self.bind_struct(raw, &name);
        let kind = self.ptr_kind(90);
        let arg = self.arg(kind, &st);
        let op = if unbind { K::Unbind } else { K::Bind };
        let id = self.slots[i].id;
        let args = format!("ksock {id} {desc}, struct at {kind:?}");
        self.note(format!("{} {args}", op_name(op)));
        let r = self.ioctl(i, exact(op), arg);
        self.after_bind(i, op, &args, r, kind, nk, len, raw, &name);
    }

    #[allow(clippy::too_many_arguments)]
    fn after_bind(
        &mut self,
        i: usize,
        op: K,
        args: &str,
        r: Result<usize, Errno>,
        kind: Ptr,
        nk: Ptr,
        len: u32,
        raw: u32,
        name: &[u8],
    ) {
        let (name_must, name_may) = name_faults(nk, len, name.len());
        let must_fail = !kind.readable() || name_must;
        self.judge(op_name(op), args, &r, must_fail, !kind.good() || name_may);
        if let Ok(v) = r {
            if v != 0 {
                self.fail(&format!("{} {args}: returned {v}", op_name(op)));
            }
            if len as usize != name.len() {
                // Bound (len + 1) bytes: the name is followed by whatever
                // came next; we cannot model it, so unbind it again below.
                return self.fail_soft_unknown(i);
            }
            let s = &mut self.slots[i];
            if op == K::Bind {
                s.bindings.push((raw, name.to_vec()));
            } else if let Some(j) = s.bindings.iter().rposition(|(r, n)| *r == raw && n == name) {
                s.bindings.remove(j);
            } else {
                self.fail(&format!(
                    "UNBIND {args}: succeeded, but that was never bound"
                ));
            }
        }
    }

    /// A BIND of `len + 1` bytes succeeded: the extra byte came from memory
    /// after the name, which we do not model; close and reopen the Ksock.
    fn fail_soft_unknown(&mut self, i: usize) {
        self.reopen(i);
    }

    fn reopen(&mut self, i: usize) {
        let dev = self.pick(&DEVICES);
        let writable = self.rng.percent(90);
        let old = self.slots[i].id;
        self.slots[i] = Slot::open(dev, writable);
        let s = &self.slots[i];
        self.note(format!(
            "closed ksock {old}, opened ksock {} on {dev} ({})",
            s.id,
            if writable { "rw" } else { "ro" }
        ));
    }

    fn op_close(&mut self) {
        let i = self.slot_index();
        self.reopen(i);
    }

    /// Any nr 0..=20, the right or a wrong direction/size/type, any argument.
    fn op_ioctl(&mut self) {
        let i = self.slot_index();
        let nr = if self.rng.percent(3) {
            0xFF
        } else {
            self.rng.below(21) as u8
        };
        let cmd = match self.rng.below(10) {
            0..=5 => IOCTLS
                .iter()
                .find(|e| e.0 == nr)
                .map_or_else(|| code(nr, Direction::ReadWrite), |e| code(e.0, e.1)),
            6 | 7 => {
                let dir = self.pick(&[
                    Direction::None,
                    Direction::Read,
                    Direction::Write,
                    Direction::ReadWrite,
                ]);
                let size = self.pick(&[0usize, 1, 2, 4, 8, 12, 16, 0x1FFF]);
                opcode::from_components(dir, b'k', nr, size)
            }
            8 => {
                let ty = self.pick(&[b'j', b'l', b'K', 0xA5]);
                opcode::from_components(Direction::ReadWrite, ty, nr, PTR)
            }
            _ => {
                (self.rng.next() as Opcode & !0xFFFF)
                    | (u32::from(b'k') << 8) as Opcode
                    | Opcode::from(nr)
            }
        };
        let Some(op) = which_ioctl(cmd) else {
            return self.bad_ioctl(i, cmd);
        };
        match op {
            K::Bind | K::Unbind => {
                let name = self.bind_name();
                let raw = self.pick(&[0, 1, 2]);
                self.bind_call(i, op == K::Unbind, raw, name)
            }
            K::Send => self.op_send_on(i),
            K::Discard => self.op_discard(),
            K::NextMsg => {
                let kind = self.ptr_kind(85);
                self.nextmsg(i, kind)
            }
            _ => self.simple_ioctl(i, op),
        }
    }

    fn bad_ioctl(&mut self, i: usize, cmd: Opcode) {
        let kind = self.ptr_kind(50);
        let arg = self.arg(kind, &[0; 16]);
        let args = format!("code {cmd:#010x} arg {kind:?}");
        self.note(format!("ioctl ksock {} {args}", self.slots[i].id));
        let r = self.ioctl(i, cmd, arg);
        self.judge("bad ioctl", &args, &r, true, kind.kernel_half());
        // Spec §3.10: type/nr first, then access_ok, then the exact code.
        let rw_bits = opcode::from_components(Direction::ReadWrite, 0, 0, 0);
        let (ty, nr) = ((cmd >> 8) & 0xFF, cmd & 0xFF);
        let want = if ty != Opcode::from(b'k') || nr > 18 {
            Errno::NOTTY
        } else if cmd & rw_bits != 0 && kind.kernel_half() {
            Errno::FAULT
        } else {
            Errno::NOTTY
        };
        if r != Err(want) {
            self.fail(&format!("ioctl {args}: {r:?}, expected {}", en(want)));
        }
    }

    /// The u32-argument ioctls and REPLIER.
    fn simple_ioctl(&mut self, i: usize, op: K) {
        let mut kind = self.ptr_kind(85);
        let rnd = self.rng.next() as u32;
        let val: u32 = match op {
            K::MaxMsgs => self.pick(&[0, 1, 2, 3, 5, 100, 1000, rnd & 0xFFF]),
            K::MsgOnlyOnce | K::Verbose | K::Report => {
                self.pick(&[0, 1, 0xFFFF_FFFF, 0xFFFF_FFFF, 2, 0xFFFF_FFFE, rnd])
            }
            // Mostly back to the default, so that most messages fit.
            K::MaxMsgSize if self.rng.percent(50) => DEF_MAX_MSG_SIZE,
            K::MaxMsgSize => self.pick(&[0, 1, 2, 99, 100, 101, 1000, DEF_MAX_MSG_SIZE + 1, rnd]),
            _ => rnd,
        };
        if op == K::NewDevice {
            if self.newdevice_budget == 0 {
                kind = Ptr::Kernel; // refused before anything happens
            } else if !kind.kernel_half() {
                self.newdevice_budget -= 1;
            }
        }
        let (bytes, desc, nk, len, name) = if op == K::Replier {
            let name = self.bind_name();
            let (s, d, nk, len) = self.bind_struct(val, &name);
            (s, d, nk, len, name)
        } else {
            let mut v = val.to_ne_bytes().to_vec();
            if op == K::LastSent {
                v.extend_from_slice(&[0; 4]); // a kbus_msg_id
            }
            (v, format!("{val:#x}"), Ptr::Good, 0, Vec::new())
        };
        let arg = self.arg(kind, &bytes);
        let id = self.slots[i].id;
        let name_s = op_name(op);
        let args = format!("ksock {id} {desc} at {kind:?}");
        self.note(format!("{name_s} {args}"));
        let r = self.ioctl(i, exact(op), arg);
        let no_arg = matches!(op, K::Reset);
        let (name_must, name_may) = if op == K::Replier {
            name_faults(nk, len, name.len())
        } else {
            (false, false)
        };
        let must_fail = !no_arg && !kind.good() || name_must;
        let may_fault = !no_arg && !kind.good() || name_may;
        self.judge(name_s, &args, &r, must_fail, may_fault);
        let Ok(ret) = r else {
            // A setting may have changed before the result failed to copy.
            if r == Err(Errno::FAULT) {
                match op {
                    K::MaxMsgs => self.slots[i].max_messages = None,
                    K::MsgOnlyOnce => self.slots[i].only_once = None,
                    _ => {}
                }
            }
            return;
        };
        let out = u32_at(&self.scratch[..], 0);
        let expect_ret = usize::from(op == K::Replier && out != 0);
        if ret != expect_ret {
            self.fail(&format!(
                "{name_s} {args}: returned {ret}, expected {expect_ret}"
            ));
        }
        let last_word = u32_at(&self.scratch[..], 4);
        let s = &mut self.slots[i];
        let mismatch = |what: String| -> Option<String> { Some(what) };
        let problem = match op {
            K::KsockId if out != s.id => mismatch(format!("id {out}, expected {}", s.id)),
            K::LenLeft => {
                let left = s.reading.as_ref().map_or(0, |r| r.left) as u32;
                (out != left).then(|| format!("{out} left, expected {left}"))
            }
            K::LastSent => {
                let got = (out, last_word);
                match s.last_sent {
                    Some(want) if want != got => mismatch(format!("{got:?}, expected {want:?}")),
                    _ => {
                        s.last_sent = Some(got);
                        None
                    }
                }
            }
            K::MaxMsgs => {
                if val != 0 {
                    s.max_messages = Some(val);
                }
                match s.max_messages {
                    Some(m) if m != out => mismatch(format!("limit {out}, expected {m}")),
                    _ => {
                        s.max_messages = Some(out);
                        None
                    }
                }
            }
            K::MsgOnlyOnce => {
                let prev = s.only_once;
                if val <= 1 {
                    s.only_once = Some(val == 1);
                }
                match prev {
                    Some(p) if u32::from(p) != out => {
                        mismatch(format!("previous {out}, expected {}", u32::from(p)))
                    }
                    _ if out > 1 => mismatch(format!("previous {out}")),
                    _ => None,
                }
            }
            K::Verbose | K::Report => (out > 1).then(|| format!("previous {out}")),
            K::MaxMsgSize => match val {
                0 => (!(100..=DEF_MAX_MSG_SIZE).contains(&out)).then(|| format!("current {out}")),
                1 => (out != DEF_MAX_MSG_SIZE).then(|| format!("absolute {out}")),
                v => (out != v).then(|| format!("set {v}, got {out}")),
            },
            K::NewDevice => (!(3..=255).contains(&out)).then(|| format!("device {out}")),
            _ => None,
        };
        if let Some(p) = problem {
            self.fail(&format!("{name_s} {args}: {p}"));
        }
    }

    /// A queue limit, MSGONLYONCE or REPORTREPLIERBINDS setting (small
    /// queue limits make full queues, EBUSY, ENOLCK and sending state).
    fn op_setting(&mut self) {
        let i = self.slot_index();
        let op = self.pick(&[
            K::MaxMsgs,
            K::MaxMsgs,
            K::MaxMsgs,
            K::MsgOnlyOnce,
            K::Report,
            K::MaxMsgSize,
        ]);
        self.simple_ioctl(i, op);
    }

    /// One random operation.
    fn step(&mut self) {
        self.step += 1;
        match self.rng.below(100) {
            0..=23 => self.op_write_message(),
            24..=26 => self.op_write_garbage(),
            27..=31 => self.op_send(),
            32..=33 => self.op_discard(),
            34..=51 => self.op_read(),
            52..=60 => self.op_bind(false),
            61..=64 => self.op_bind(true),
            65..=78 => self.op_ioctl(),
            79..=83 => self.op_setting(),
            84..=91 => self.op_reply(),
            92..=98 => self.op_poll(),
            _ => self.op_close(),
        }
    }

    /// `/proc/kbus/bindings` lists exactly the bindings the model expects
    /// for every Ksock of this process on devices 0..2 (`extra` adds the
    /// bystanders').
    fn check_bindings(&self, extra: &[(u32, u32, u32, &str)]) {
        let pid = my_tid();
        let mut want: Vec<(u32, u32, bool, Vec<u8>)> = Vec::new();
        for s in &self.slots {
            for (r, n) in &s.bindings {
                want.push((s.dev, s.id, *r != 0, n.clone()));
            }
        }
        for (dev, id, r, n) in extra {
            want.push((*dev, *id, *r != 0, n.as_bytes().to_vec()));
        }
        want.sort();
        let mut got = proc_bindings(|p| p == pid);
        got.sort();
        if got != want {
            let show = |v: &[(u32, u32, bool, Vec<u8>)]| {
                v.iter()
                    .map(|(d, i, r, n)| {
                        format!(
                            "{d}:{i}:{}:{}",
                            if *r { 'R' } else { 'L' },
                            String::from_utf8_lossy(n)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            self.fail(&format!(
                "/proc/kbus/bindings for pid {pid}:\n  got  {}\n  want {}",
                show(&got),
                show(&want)
            ));
        }
    }

    fn summary(&self) -> String {
        let mut s = String::new();
        let mut last = "";
        for ((op, outcome), n) in &self.tally {
            if op != last {
                let _ = write!(s, "\n  {op}:");
                last = op;
            }
            let _ = write!(s, " {outcome} {n}");
        }
        s
    }
}

/// This thread's kernel pid (TID): what the module records for a Ksock's
/// opener (spec §2.3); libtest runs each test on a thread of its own.
fn my_tid() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let tid = link.file_name().expect("TID").to_str().expect("UTF-8");
    tid.parse().expect("a number")
}

/// Bindings on devices 0..2 of openers `pid_ok` accepts:
/// (device, ksock id, replier, name).
fn proc_bindings(pid_ok: impl Fn(u64) -> bool) -> Vec<(u32, u32, bool, Vec<u8>)> {
    let text = std::fs::read("/proc/kbus/bindings").expect("/proc/kbus/bindings");
    let mut v = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        // "%3u: %8u %8lu  %c  %.*s"
        let head = String::from_utf8_lossy(&line[..line.len().min(26)]).to_string();
        let mut it = head.split_whitespace();
        let dev: u32 = it.next().unwrap().trim_end_matches(':').parse().unwrap();
        let id: u32 = it.next().unwrap().parse().unwrap();
        let pid: u64 = it.next().unwrap().parse().unwrap();
        let r = it.next().unwrap() == "R";
        if dev > 2 || !pid_ok(pid) {
            continue;
        }
        v.push((dev, id, r, line[27..].to_vec()));
    }
    v
}

// ---- the bystanders ---------------------------------------------------------

struct Bystander {
    dev: u32,
    l: Ksock,
    r: Ksock,
    l_id: u32,
    r_id: u32,
    last: u32,
    round: u32,
    data_len: usize,
}

impl Bystander {
    fn new(dev: u32) -> Bystander {
        let l = open_rw(dev);
        let r = open_rw(dev);
        bind(&l, BY_ANN, Role::Listener);
        bind(&r, BY_REQ, Role::Replier);
        let (l_id, r_id) = (ok(l.ksock_id(), "id"), ok(r.ksock_id(), "id"));
        // The largest data that keeps a message within 100 bytes.
        let data_len = (100 - H - 4 - 4) / 4 * 4;
        Bystander {
            dev,
            l,
            r,
            l_id,
            r_id,
            last: 0,
            round: 0,
            data_len,
        }
    }

    fn data(&self, tag: u8) -> Vec<u8> {
        (0..self.data_len)
            .map(|i| tag ^ (self.round as u8).wrapping_add(i as u8))
            .collect()
    }

    /// An Announcement R→L and a Request/Reply L→R→L, all exactly right.
    fn check(&mut self, f: &Fuzzer) {
        self.round += 1;
        let what = format!("bystanders on device {} (round {})", self.dev, self.round);
        let counts = |f: &Fuzzer, k: &Ksock, want: (u32, u32), when: &str| {
            let got = (
                ok(k.num_messages(), "NUMMSGS"),
                ok(k.num_unreplied_to(), "UNREPLIEDTO"),
            );
            if got != want {
                f.fail(&format!(
                    "{what}: {k} {when}: NUMMSGS/UNREPLIEDTO {got:?}, expected {want:?}"
                ));
            }
        };
        counts(f, &self.l, (0, 0), "before");
        counts(f, &self.r, (0, 0), "before");
        for k in [&self.l, &self.r] {
            if ok(k.max_messages(), "MAXMSGS") != 100
                || ok(k.query_want_messages_once(), "MSGONLYONCE")
            {
                f.fail(&format!("{what}: {k}'s settings changed"));
            }
        }
        let ann_data = self.data(0x11);
        let a = match self
            .r
            .send_msg(&MessageRepr::announcement(BY_ANN, &ann_data))
        {
            Ok(id) => id,
            Err(e) => f.fail(&format!("{what}: Announcement: {e}")),
        };
        counts(f, &self.l, (1, 0), "after the Announcement");
        let m = recv(&self.l, &what);
        if (
            m.name().to_str().unwrap(),
            m.data(),
            m.id(),
            m.from(),
            m.flags().bits(),
        ) != (BY_ANN, &ann_data[..], a, self.r_id, 0)
        {
            f.fail(&format!(
                "{what}: Announcement {a} from {} arrived as {m}",
                self.r_id
            ));
        }
        let req_data = self.data(0x22);
        let q = match self.l.send_msg(&MessageRepr::request(BY_REQ, &req_data)) {
            Ok(id) => id,
            Err(e) => f.fail(&format!("{what}: Request: {e}")),
        };
        counts(f, &self.r, (1, 0), "after the Request");
        let m = recv(&self.r, &what);
        if (m.name().to_str().unwrap(), m.data(), m.id(), m.from())
            != (BY_REQ, &req_data[..], q, self.l_id)
            || !m.wants_us_to_reply()
        {
            f.fail(&format!("{what}: Request {q} arrived as {m}"));
        }
        counts(f, &self.r, (0, 1), "after popping the Request");
        let rep_data = self.data(0x33);
        let reply = MessageRepr::reply_to(&m, &rep_data).unwrap();
        let p = match self.r.send_msg(&reply) {
            Ok(id) => id,
            Err(e) => f.fail(&format!("{what}: Reply: {e}")),
        };
        counts(f, &self.r, (0, 0), "after replying");
        counts(f, &self.l, (1, 0), "after the Reply");
        let m = recv(&self.l, &what);
        if (
            m.name().to_str().unwrap(),
            m.data(),
            m.id(),
            m.in_reply_to(),
            m.from(),
        ) != (BY_REQ, &rep_data[..], p, q, self.r_id)
        {
            f.fail(&format!("{what}: Reply {p} arrived as {m}"));
        }
        counts(f, &self.l, (0, 0), "after");
        for id in [a, q, p] {
            if id.network_id != 0 || id.serial_num <= self.last {
                f.fail(&format!("{what}: id {id} not above [0:{}]", self.last));
            }
            self.last = id.serial_num;
        }
    }
}

// ---- running it -----------------------------------------------------------

fn seeds() -> Vec<u64> {
    let from_args =
        std::env::args().find_map(|a| a.strip_prefix("KBUS_FUZZ_SEED=").map(str::to_string));
    let text = from_args.or_else(|| std::env::var("KBUS_FUZZ_SEED").ok());
    match text {
        None => vec![DEFAULT_SEED],
        Some(t) => t
            .split(',')
            .map(|s| {
                let s = s.trim();
                let v = match s.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => s.parse(),
                };
                v.unwrap_or_else(|_| panic!("bad KBUS_FUZZ_SEED value {s:?}"))
            })
            .collect(),
    }
}

fn steps(default: u64) -> u64 {
    let from_args =
        std::env::args().find_map(|a| a.strip_prefix("KBUS_FUZZ_STEPS=").map(str::to_string));
    from_args
        .or_else(|| std::env::var("KBUS_FUZZ_STEPS").ok())
        .map_or(default, |s| s.parse().expect("KBUS_FUZZ_STEPS"))
}

fn say(s: &str) {
    // Straight to fd 2, so it is shown even when libtest captures output.
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

fn spawn_child(seed: u64, steps: u64, end: &str) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "hostile_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, seed.to_string())
        .env("KBUS_FUZZ_STEPS", steps.to_string())
        .env("KBUS_HOSTILE_END", end)
        .spawn()
        .expect("spawning a child process")
}

/// The child processes; killed if the parent fails, so that none is left
/// holding the module.
struct Children(Vec<(Child, bool)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (c, _) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn device_settings(dev: u32) -> (bool, bool, u32) {
    let k = open_ro(dev);
    let s = (
        ok(k.query_report_replier_binds(), "REPORTREPLIERBINDS"),
        ok(k.query_kernel_module_verbose(), "VERBOSE"),
        ok(k.max_message_size(), "MAXMSGSIZE"),
    );
    drop(k);
    s
}

fn restore_settings(dev: u32) {
    let k = open_ro(dev);
    ok(k.report_replier_binds(false), "REPORTREPLIERBINDS");
    ok(k.kernel_module_verbose(false), "VERBOSE");
    ok(k.set_max_message_size(DEF_MAX_MSG_SIZE), "MAXMSGSIZE");
    // Draining anything REPORTREPLIERBINDS may have queued is not needed:
    // closing drops it.
}

fn run_seed(seed: u64) {
    let started = Instant::now();
    let n = steps(PARENT_STEPS);
    say(&format!(
        "hostile: seed {seed:#x} ({seed}), {n} steps, {} children; rerun with KBUS_FUZZ_SEED={seed}",
        2
    ));
    for dev in DEVICES {
        let s = device_settings(dev);
        assert_eq!(
            s,
            (false, false, DEF_MAX_MSG_SIZE),
            "device {dev} settings before the run"
        );
    }
    let mut bystanders: Vec<Bystander> = DEVICES.iter().map(|&d| Bystander::new(d)).collect();
    let mut f = Fuzzer::new("hostile parent", seed, 6);
    let mut children = Children(vec![
        (spawn_child(seed ^ 0x1111, CHILD_STEPS, "exit"), false),
        (spawn_child(seed ^ 0x2222, CHILD_STEPS * 10, "drop"), true),
    ]);
    let kill_at = 1 + f.rng.below(n);
    let by_bindings = |b: &[Bystander]| -> Vec<(u32, u32, u32, &'static str)> {
        b.iter()
            .flat_map(|b| [(b.dev, b.l_id, 0, BY_ANN), (b.dev, b.r_id, 1, BY_REQ)])
            .collect()
    };
    while f.step < n {
        f.step();
        if f.step % CHECK_EVERY == 0 {
            f.note("bystander check".into());
            for b in &mut bystanders {
                b.check(&f);
            }
        }
        if f.step % BINDINGS_EVERY == 0 {
            f.check_bindings(&by_bindings(&bystanders));
        }
        if f.step == kill_at {
            for (c, kill) in &mut children.0 {
                if *kill {
                    let _ = c.kill();
                }
            }
        }
    }
    let parent_time = started.elapsed();
    // The children end by themselves (one by exit(), one was killed).
    let deadline = Instant::now() + Duration::from_secs(120);
    for (c, killed) in &mut children.0 {
        let status = loop {
            if let Some(s) = c.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                f.fail("a child process did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !*killed && !status.success() {
            f.fail(&format!(
                "child process failed: {status} (its output is above)"
            ));
        }
        if *killed && !status.success() {
            use std::os::unix::process::ExitStatusExt;
            if status.signal() != Some(9) {
                f.fail(&format!(
                    "killed child process ended with {status} (its output is above)"
                ));
            }
        }
    }
    for b in &mut bystanders {
        b.check(&f);
    }
    f.check_bindings(&by_bindings(&bystanders));
    // Nobody else's bindings are left (the children are gone).
    let others = proc_bindings(|p| p != my_tid());
    if !others.is_empty() {
        f.fail(&format!(
            "bindings of other processes left on devices 0..2: {others:?}"
        ));
    }
    let summary = f.summary();
    let Fuzzer { slots, keep, .. } = f;
    drop(slots);
    drop(keep);
    let mine = proc_bindings(|_| true);
    let want: Vec<_> = by_bindings(&bystanders)
        .into_iter()
        .map(|(d, i, r, n)| (d, i, r != 0, n.as_bytes().to_vec()))
        .collect();
    let mut mine_sorted = mine.clone();
    mine_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        mine_sorted, want_sorted,
        "seed {seed:#x}: only the bystanders' bindings are left after the fuzz Ksocks closed"
    );
    drop(bystanders);
    for dev in DEVICES {
        restore_settings(dev);
    }
    assert!(
        proc_bindings(|_| true).is_empty(),
        "seed {seed:#x}: bindings left: {:?}",
        proc_bindings(|_| true)
    );
    let stats = read_stats();
    let mut dev_now = None;
    for line in stats.lines() {
        if let Some(rest) = line.strip_prefix("dev ") {
            let d: u32 = rest.split(':').next().unwrap().trim().parse().unwrap();
            dev_now = Some(d);
            if d <= 2 {
                assert!(
                    line.contains("unsent unbindings 0") && !line.contains("tragic"),
                    "seed {seed:#x}: set-aside entries left: {line}"
                );
            }
        } else if dev_now.is_some_and(|d| d <= 2) && line.trim_start().starts_with("ksock ") {
            panic!(
                "seed {seed:#x}: a Ksock is still open on device {}: {line}\n{stats}",
                dev_now.unwrap()
            );
        }
    }
    say(&format!(
        "hostile: seed {seed:#x} passed: {n} steps in {:.1} s (all done in {:.1} s); outcomes:{summary}",
        parent_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
}

#[test]
fn hostile_fuzz() {
    for seed in seeds() {
        run_seed(seed);
    }
}

/// A child process: the same fuzzer on its own Ksocks, no bystanders. In
/// the parent's own run (no `KBUS_HOSTILE_CHILD`) it does nothing.
#[test]
fn hostile_child() {
    let Ok(seed) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = seed.parse().expect("child seed");
    let n = steps(CHILD_STEPS);
    let mut f = Fuzzer::new(&format!("hostile child {}", std::process::id()), seed, 4);
    while f.step < n {
        f.step();
        if f.step % BINDINGS_EVERY == 0 {
            f.check_bindings(&[]);
        }
    }
    f.check_bindings(&[]);
    if std::env::var("KBUS_HOSTILE_END").as_deref() == Ok("exit") {
        // End with every Ksock still open: the kernel closes them.
        std::process::exit(0);
    }
}

/// NEWDEVICE whose answer cannot be written (NULL, an address in the kernel
/// half) fails with EFAULT and creates no device: a device the caller
/// never learns the number of would be state left behind by bad input.
#[test]
fn new_device_with_unwritable_argument_creates_nothing() {
    let k = open_rw(0);
    let newdevice = kbus_rustix::IOCTLS[15];
    assert_eq!(newdevice.0, "NEWDEVICE");
    let first = ok(k.new_device(), "NEWDEVICE");
    for bad in [0usize, usize::MAX - 4095] {
        assert_eq!(
            raw::ioctl(k.as_fd(), newdevice.1, bad),
            Err(Errno::FAULT),
            "NEWDEVICE with argument {bad:#x}"
        );
    }
    let next = ok(k.new_device(), "NEWDEVICE after the faults");
    assert_eq!(next, first + 1, "the faulting calls created devices");
}
