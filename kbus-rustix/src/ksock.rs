//! [`Ksock`]: one open KBUS device file (spec §1, §9.1).

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use kbus_wire::{Message, MessageId, MessageRepr, Name, MAX_NAME_LEN};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Op, Result};
use crate::sys;

/// How to open a Ksock (Python `mode='rw'` / `'r'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `O_RDWR`: can send and receive; needed to get answers to Requests.
    ReadWrite,
    /// `O_RDONLY`: can bind and receive; `write()` fails with EBADF and
    /// poll never reports it writable.
    ReadOnly,
}

impl Mode {
    fn oflags(self) -> rustix::fs::OFlags {
        use rustix::fs::OFlags;
        OFlags::CLOEXEC
            | match self {
                Mode::ReadWrite => OFlags::RDWR,
                Mode::ReadOnly => OFlags::RDONLY,
            }
    }

    /// `read/write` or `read`, as in the Python `str()`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "read/write",
            Mode::ReadOnly => "read",
        }
    }
}

/// The role of a binding (Python `replier=False/True`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Receives a copy of every matching message.
    Listener,
    /// Receives the Requests for the name (at most one per binding string).
    Replier,
}

impl Role {
    /// The raw `is_replier` value: 0 or 1.
    pub const fn is_replier(self) -> u32 {
        match self {
            Role::Listener => 0,
            Role::Replier => 1,
        }
    }
}

/// Which readiness to wait for, and what [`Ksock::poll`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ready {
    /// A message is queued (NEXTMSG would pop one).
    pub readable: bool,
    /// The Ksock was opened for writing and is not in sending state (a
    /// pending ALL_OR_WAIT send has finished, one way or another).
    pub writable: bool,
}

impl Ready {
    /// Readable only.
    pub const READ: Ready = Ready {
        readable: true,
        writable: false,
    };
    /// Writable only.
    pub const WRITE: Ready = Ready {
        readable: false,
        writable: true,
    };
    /// Either.
    pub const BOTH: Ready = Ready {
        readable: true,
        writable: true,
    };
}

/// A "just ask" or setting ioctl taking and returning one `u32` (spec
/// §3.12), for callers that need the raw values (e.g. to test that the
/// module refuses bad ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawUpdate {
    /// MAXMSGS: 0 asks, anything else sets; returns the resulting limit.
    MaxMessages,
    /// MSGONLYONCE: 0/1/0xFFFFFFFF; returns the previous state.
    MessagesOnce,
    /// VERBOSE: 0/1/0xFFFFFFFF; returns the previous state.
    Verbose,
    /// REPORTREPLIERBINDS: 0/1/0xFFFFFFFF; returns the previous state.
    ReportReplierBinds,
    /// MAXMSGSIZE: 0 asks, 1 asks the absolute maximum, else sets.
    MaxMessageSize,
}

/// The "just ask" value of MSGONLYONCE, VERBOSE and REPORTREPLIERBINDS.
pub const JUST_ASK: u32 = 0xFFFF_FFFF;

/// One open KBUS device file: bindings, a read queue, one message being
/// written and one being read (spec §2.4). Closed on drop.
///
/// All methods take `&self`: a Ksock is a file descriptor and the module
/// serialises every call, like `&File` implementing `Read`. Reading never
/// allocates: messages are read into the caller's buffer.
///
/// The module assembles one outgoing message and holds one current read
/// message per Ksock, so threads sharing a Ksock must not interleave a send
/// (write + SEND) with another, nor NEXTMSG + read with another: serialise
/// them, or use one Ksock per thread. The `tokio` feature's `AsyncKsock`
/// does this for its tasks.
pub struct Ksock {
    fd: OwnedFd,
    device: Option<u32>,
    mode: Mode,
    pending: Pending,
}

/// The sending state (spec §5.9) as this Ksock last saw it: set when a SEND
/// returns EAGAIN, cleared by [`Ksock::send`], [`Ksock::discard`] and a
/// [`Ksock::poll`] that reports writable. While it is set, nothing is
/// written: on some deployed modules a `write()` in sending state frees the
/// pending message while the Ksock stays in sending state, after which SEND
/// gives ENOMSG and a poll crashes the kernel (spec §12 item 7).
///
/// `state` packs a generation (bits 1..) with the on bit (bit 0), so that a
/// poll that started before another thread's SEND cannot clear the pending
/// state that SEND set: it clears only the state it saw (see
/// [`Pending::clear_if`]). One `u32`, because 32-bit MIPS has no 64-bit
/// atomics.
#[derive(Default)]
struct Pending {
    state: AtomicU32,
    network_id: AtomicU32,
    serial_num: AtomicU32,
}

impl Pending {
    fn get(&self) -> Option<MessageId> {
        (self.state.load(Ordering::Acquire) & 1 == 1).then(|| {
            MessageId::new(
                self.network_id.load(Ordering::Relaxed),
                self.serial_num.load(Ordering::Relaxed),
            )
        })
    }

    /// The current state, to hand to [`Pending::clear_if`] later.
    fn snapshot(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    fn set(&self, id: MessageId) {
        self.network_id.store(id.network_id, Ordering::Relaxed);
        self.serial_num.store(id.serial_num, Ordering::Relaxed);
        // A new generation, with the on bit.
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                Some((s | 1).wrapping_add(2))
            });
    }

    fn clear(&self) {
        self.state.fetch_and(!1, Ordering::Release);
    }

    /// Clear the pending state only if it is still `seen` (no SEND has set
    /// a newer one since).
    fn clear_if(&self, seen: u32) {
        if seen & 1 == 1 {
            let _ =
                self.state
                    .compare_exchange(seen, seen & !1, Ordering::Release, Ordering::Relaxed);
        }
    }
}

/// Every Linux page size is a multiple of this, so a name whose end is not a
/// multiple of it cannot end a page.
const MIN_PAGE_SIZE: usize = 4096;

fn id_from([network_id, serial_num]: [u32; 2]) -> MessageId {
    MessageId::new(network_id, serial_num)
}

impl Ksock {
    /// Open `/dev/kbus<which>` (Python `Ksock(which, mode)`).
    ///
    /// ENOENT means there is no such device.
    #[doc(alias = "Ksock")]
    pub fn open(which: u32, mode: Mode) -> Result<Ksock> {
        let mut buf = [0u8; 24];
        let path = device_path(which, &mut buf);
        let fd = rustix::fs::open(path, mode.oflags(), rustix::fs::Mode::empty())
            .map_err(|e| Error::os(Op::Open, e))?;
        Ok(Ksock {
            fd,
            device: Some(which),
            mode,
            pending: Pending::default(),
        })
    }

    /// Open a KBUS device node by path (e.g. a node made elsewhere). The
    /// device number shown by `Display` is taken from the trailing digits.
    #[doc(alias = "Ksock")]
    pub fn open_path<P: rustix::path::Arg>(path: P, mode: Mode) -> Result<Ksock> {
        let device = path.as_str().ok().and_then(trailing_number);
        let fd = rustix::fs::open(path, mode.oflags(), rustix::fs::Mode::empty())
            .map_err(|e| Error::os(Op::Open, e))?;
        Ok(Ksock {
            fd,
            device,
            mode,
            pending: Pending::default(),
        })
    }

    /// The device number this Ksock was opened on, if known.
    pub fn device(&self) -> Option<u32> {
        self.device
    }

    /// The mode it was opened with.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Close it (the same as dropping it). Closing unbinds everything and
    /// generates GoneAway / Ignored answers for Requests it held (spec §7.7).
    #[doc(alias = "__exit__")]
    pub fn close(self) {
        drop(self.fd);
    }

    // ---- bindings -------------------------------------------------------

    /// BIND: receive messages named `name` (may end in `.*` or `.%`).
    ///
    /// EBADMSG: invalid name; EADDRINUSE: that exact string already has a
    /// Replier; EAGAIN: reporting Replier binds and a bind-event Listener is
    /// full.
    #[doc(alias = "KBUS_IOC_BIND")]
    pub fn bind(&self, name: impl AsRef<[u8]>, role: Role) -> Result<()> {
        self.bind_raw(name.as_ref(), role.is_replier())
    }

    /// UNBIND a binding made with the same name and role. EINVAL if there
    /// is none. Queued messages that came through it are removed (queued
    /// Requests answered with `$.KBUS.Replier.Unbound`).
    #[doc(alias = "KBUS_IOC_UNBIND")]
    pub fn unbind(&self, name: impl AsRef<[u8]>, role: Role) -> Result<()> {
        self.unbind_raw(name.as_ref(), role.is_replier())
    }

    /// BIND with a raw `is_replier` value (the module stores it raw and
    /// UNBIND must repeat it, spec §7.1).
    #[doc(alias = "KBUS_IOC_BIND")]
    #[doc(alias = "bind")]
    pub fn bind_raw(&self, name: &[u8], is_replier: u32) -> Result<()> {
        sys::bind(self.fd(), is_replier, name).map_err(|e| Error::os(Op::Bind, e))
    }

    /// UNBIND with a raw `is_replier` value.
    #[doc(alias = "KBUS_IOC_UNBIND")]
    #[doc(alias = "unbind")]
    pub fn unbind_raw(&self, name: &[u8], is_replier: u32) -> Result<()> {
        sys::unbind(self.fd(), is_replier, name).map_err(|e| Error::os(Op::Unbind, e))
    }

    /// REPLIER: the id of the Ksock bound as Replier to exactly `name`
    /// (wildcard Repliers that would match are not considered), or `None`.
    #[doc(alias = "KBUS_IOC_REPLIER")]
    pub fn find_replier(&self, name: impl AsRef<[u8]>) -> Result<Option<u32>> {
        sys::find_replier(self.fd(), name.as_ref()).map_err(|e| Error::os(Op::FindReplier, e))
    }

    // ---- simple queries ---------------------------------------------------

    /// KSOCKID: this Ksock's id (non-zero, unique per device).
    #[doc(alias = "KBUS_IOC_KSOCKID")]
    pub fn ksock_id(&self) -> Result<u32> {
        sys::ksock_id(self.fd()).map_err(|e| Error::os(Op::KsockId, e))
    }

    /// LASTSENT: the id of the last message this Ksock tried to send
    /// (`[0:0]` if none).
    #[doc(alias = "KBUS_IOC_LASTSENT")]
    pub fn last_msg_id(&self) -> Result<MessageId> {
        sys::last_sent(self.fd())
            .map(id_from)
            .map_err(|e| Error::os(Op::LastSent, e))
    }

    /// NUMMSGS: messages in the queue (plus set-aside bind events).
    #[doc(alias = "KBUS_IOC_NUMMSGS")]
    pub fn num_messages(&self) -> Result<u32> {
        sys::num_msgs(self.fd()).map_err(|e| Error::os(Op::NumMessages, e))
    }

    /// UNREPLIEDTO: Requests popped with WANT_YOU_TO_REPLY, not yet answered.
    #[doc(alias = "KBUS_IOC_UNREPLIEDTO")]
    pub fn num_unreplied_to(&self) -> Result<u32> {
        sys::unreplied_to(self.fd()).map_err(|e| Error::os(Op::NumUnrepliedTo, e))
    }

    /// LENLEFT: bytes of the current read message not yet read (0 if none).
    ///
    /// This project's module reports the true remainder at every point. Some
    /// modules in the field (the original among them, spec §6.3 and §12
    /// item 5) report a different number while the *data* part is being
    /// read with [`read_data`](Self::read_data): `ENTIRE − 4 × data bytes
    /// read`. Before the first read of a message and after its data the
    /// value is right on every module, which is all
    /// [`read_msg`](Self::read_msg) relies on.
    #[doc(alias = "KBUS_IOC_LENLEFT")]
    pub fn len_left(&self) -> Result<usize> {
        sys::len_left(self.fd())
            .map(|n| n as usize)
            .map_err(|e| Error::os(Op::LenLeft, e))
    }

    /// NEWDEVICE: create the next KBUS device; returns its number. Its node
    /// may take a moment to appear.
    #[doc(alias = "KBUS_IOC_NEWDEVICE")]
    pub fn new_device(&self) -> Result<u32> {
        sys::new_device(self.fd()).map_err(|e| Error::os(Op::NewDevice, e))
    }

    /// RESET: does nothing (kept for completeness).
    #[doc(alias = "KBUS_IOC_RESET")]
    pub fn reset(&self) -> Result<()> {
        sys::reset(self.fd()).map_err(|e| Error::os(Op::Reset, e))
    }

    // ---- settings ---------------------------------------------------------

    /// One of the `u32` in/out ioctls with a raw value (spec §3.11–3.12).
    #[doc(alias = "KBUS_IOC_MAXMSGS")]
    #[doc(alias = "KBUS_IOC_MSGONLYONCE")]
    #[doc(alias = "KBUS_IOC_VERBOSE")]
    #[doc(alias = "KBUS_IOC_REPORTREPLIERBINDS")]
    #[doc(alias = "KBUS_IOC_MAXMSGSIZE")]
    pub fn raw_update(&self, which: RawUpdate, value: u32) -> Result<u32> {
        let fd = self.fd();
        match which {
            RawUpdate::MaxMessages => {
                sys::max_msgs(fd, value).map_err(|e| Error::os(Op::MaxMessages, e))
            }
            RawUpdate::MessagesOnce => {
                sys::msg_only_once(fd, value).map_err(|e| Error::os(Op::MessagesOnce, e))
            }
            RawUpdate::Verbose => sys::verbose(fd, value).map_err(|e| Error::os(Op::Verbose, e)),
            RawUpdate::ReportReplierBinds => sys::report_replier_binds(fd, value)
                .map_err(|e| Error::os(Op::ReportReplierBinds, e)),
            RawUpdate::MaxMessageSize => {
                sys::max_msg_size(fd, value).map_err(|e| Error::os(Op::MaxMessageSize, e))
            }
        }
    }

    /// MAXMSGS query: this Ksock's queue limit (default 100).
    #[doc(alias = "KBUS_IOC_MAXMSGS")]
    pub fn max_messages(&self) -> Result<u32> {
        self.raw_update(RawUpdate::MaxMessages, 0)
    }

    /// MAXMSGS: set the queue limit (≥ 1; 0 only asks); returns the result.
    #[doc(alias = "KBUS_IOC_MAXMSGS")]
    pub fn set_max_messages(&self, count: u32) -> Result<u32> {
        self.raw_update(RawUpdate::MaxMessages, count)
    }

    /// MAXMSGSIZE query: the device's current maximum message size.
    #[doc(alias = "KBUS_IOC_MAXMSGSIZE")]
    pub fn max_message_size(&self) -> Result<u32> {
        self.raw_update(RawUpdate::MaxMessageSize, 0)
    }

    /// MAXMSGSIZE query: the absolute maximum the device can be set to.
    #[doc(alias = "KBUS_IOC_MAXMSGSIZE")]
    pub fn abs_max_message_size(&self) -> Result<u32> {
        self.raw_update(RawUpdate::MaxMessageSize, 1)
    }

    /// MAXMSGSIZE: set the device's maximum (100..=absolute maximum, EINVAL
    /// otherwise); returns it. Affects headers written afterwards.
    #[doc(alias = "KBUS_IOC_MAXMSGSIZE")]
    pub fn set_max_message_size(&self, size: u32) -> Result<u32> {
        self.raw_update(RawUpdate::MaxMessageSize, size)
    }

    fn flag(&self, which: RawUpdate, value: u32) -> Result<bool> {
        self.raw_update(which, value).map(|prev| prev != 0)
    }

    /// MSGONLYONCE: receive only one copy of a message however many of
    /// this Ksock's bindings match. Returns the previous state.
    #[doc(alias = "KBUS_IOC_MSGONLYONCE")]
    pub fn want_messages_once(&self, only_once: bool) -> Result<bool> {
        self.flag(RawUpdate::MessagesOnce, u32::from(only_once))
    }

    /// MSGONLYONCE "just ask": the current state.
    #[doc(alias = "KBUS_IOC_MSGONLYONCE")]
    #[doc(alias = "want_messages_once")]
    pub fn query_want_messages_once(&self) -> Result<bool> {
        self.flag(RawUpdate::MessagesOnce, JUST_ASK)
    }

    /// VERBOSE: the device's kernel debug logging. Returns the previous
    /// state.
    #[doc(alias = "KBUS_IOC_VERBOSE")]
    pub fn kernel_module_verbose(&self, verbose: bool) -> Result<bool> {
        self.flag(RawUpdate::Verbose, u32::from(verbose))
    }

    /// VERBOSE "just ask": the current state.
    #[doc(alias = "KBUS_IOC_VERBOSE")]
    #[doc(alias = "kernel_module_verbose")]
    pub fn query_kernel_module_verbose(&self) -> Result<bool> {
        self.flag(RawUpdate::Verbose, JUST_ASK)
    }

    /// REPORTREPLIERBINDS: make the device announce Replier binds and
    /// unbinds as `$.KBUS.ReplierBindEvent`. Turning it on also queues, on
    /// this Ksock only, one bind event per existing Replier binding (EBUSY if
    /// this Ksock's queue fills). Returns the previous state.
    #[doc(alias = "KBUS_IOC_REPORTREPLIERBINDS")]
    pub fn report_replier_binds(&self, report: bool) -> Result<bool> {
        self.flag(RawUpdate::ReportReplierBinds, u32::from(report))
    }

    /// REPORTREPLIERBINDS "just ask": the current state.
    #[doc(alias = "KBUS_IOC_REPORTREPLIERBINDS")]
    #[doc(alias = "report_replier_binds")]
    pub fn query_report_replier_binds(&self) -> Result<bool> {
        self.flag(RawUpdate::ReportReplierBinds, JUST_ASK)
    }

    // ---- sending ----------------------------------------------------------

    /// Write a message and SEND it, zero-copy: writes exactly `H` bytes (a
    /// *pointy* header whose pointers refer to `msg.name` and `msg.data`),
    /// then SENDs; the module copies name and data during SEND. Returns the
    /// id KBUS gave the message (spec §5.2).
    ///
    /// Some modules (the original among them) copy one byte more than the
    /// name, where a C string's NUL would be (spec §5.2 step 4). When the
    /// name's last byte is the last byte of a page, that byte may not be
    /// readable, so then (and only then) the name is first copied to a stack
    /// buffer with a trailing NUL; otherwise nothing is copied.
    ///
    /// With ALL_OR_WAIT, EAGAIN means the message is pending (the error's
    /// [`Error::message_id`] has its id): poll for writable (the module
    /// retries it then), [`send`](Self::send) to retry, or
    /// [`discard`](Self::discard). Until one of those ends the pending
    /// state, this Ksock refuses to write (`send_msg`, `write_msg`,
    /// `send_entire`, `write_data`) with [`ErrorKind::SendPending`] and
    /// makes no system call: on some modules such a write would destroy the
    /// pending message.
    #[doc(alias = "KBUS_IOC_SEND")]
    #[doc(alias = "write")]
    pub fn send_msg(&self, msg: &MessageRepr<'_>) -> Result<MessageId> {
        self.refuse_if_pending()?;
        let name = msg.name.as_bytes();
        let mut copy;
        let mut local = *msg;
        if ends_a_page(name) {
            copy = [0u8; MAX_NAME_LEN + 1];
            let (head, _nul) = copy.split_at_mut(name.len());
            head.copy_from_slice(name);
            local.name = Name::from_bytes(head);
        }
        let header = local.pointy_header();
        let mut raw = [0u32; 2];
        let result = sys::send_pointy(self.fd(), &header, &mut raw);
        match result {
            Ok(()) => Ok(id_from(raw)),
            Err((op, e)) => Err(self.send_error(op, e, raw)),
        }
    }

    fn refuse_if_pending(&self) -> Result<()> {
        match self.pending.get() {
            None => Ok(()),
            Some(id) => Err(Error::new(Op::Write, ErrorKind::SendPending).with_id(id)),
        }
    }

    /// The id of the ALL_OR_WAIT message this Ksock has pending (a SEND
    /// returned EAGAIN and neither [`send`](Self::send),
    /// [`discard`](Self::discard) nor a writable [`poll`](Self::poll) has
    /// ended it yet), if any. No system call.
    pub fn pending_send(&self) -> Option<MessageId> {
        self.pending.get()
    }

    /// Write an entire message: exactly its `ENTIRE()` bytes (spec §3.4).
    /// Follow with [`send`](Self::send). Refused while a send is pending
    /// (see [`send_msg`](Self::send_msg)).
    #[doc(alias = "write")]
    pub fn write_msg<T: AsRef<[u8]>>(&self, msg: &Message<T>) -> Result<()> {
        self.write_all(msg.as_bytes())
    }

    /// Write `bytes` (an entire message) and SEND them. Refused while a
    /// send is pending (see [`send_msg`](Self::send_msg)).
    #[doc(alias = "KBUS_IOC_SEND")]
    #[doc(alias = "write_msg")]
    #[doc(alias = "send")]
    pub fn send_entire(&self, bytes: &[u8]) -> Result<MessageId> {
        self.write_all(bytes)?;
        self.send()
    }

    /// SEND what has been written, or retry the pending ALL_OR_WAIT message.
    /// ENOMSG if nothing was written (or a poll already finished the pending
    /// message). Any result but EAGAIN ends the pending state.
    #[doc(alias = "KBUS_IOC_SEND")]
    pub fn send(&self) -> Result<MessageId> {
        let mut raw = [0u32; 2];
        match sys::send(self.fd(), &mut raw) {
            Ok(()) => {
                self.pending.clear();
                Ok(id_from(raw))
            }
            Err(e) => Err(self.send_error(Op::Send, e, raw)),
        }
    }

    /// DISCARD the message being written, or the pending one after EAGAIN
    /// (which ends the pending state).
    #[doc(alias = "KBUS_IOC_DISCARD")]
    pub fn discard(&self) -> Result<()> {
        sys::discard(self.fd()).map_err(|e| Error::os(Op::Discard, e))?;
        self.pending.clear();
        Ok(())
    }

    /// Raw `write()`: the module assembles a message from any number of
    /// writes (partial I/O, spec §5.1). Returns the bytes written.
    ///
    /// A write whose wait for the device lock was interrupted by a signal
    /// (EAGAIN from KBUS, before it takes any byte) is repeated. Refused
    /// with [`ErrorKind::SendPending`], without a system call, while a send
    /// is pending (see [`send_msg`](Self::send_msg)).
    ///
    /// The module reads the name/data pointers of a *pointy* header at SEND
    /// time; writing one by hand makes keeping them valid until SEND your
    /// job (stale pointers give EFAULT or send the wrong bytes).
    #[doc(alias = "write")]
    pub fn write_data(&self, bytes: &[u8]) -> Result<usize> {
        self.refuse_if_pending()?;
        sys::write(self.fd(), bytes).map_err(|e| Error::os(Op::Write, e))
    }

    fn write_all(&self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let n = self.write_data(bytes)?;
            if n == 0 {
                return Err(Error::os(Op::Write, Errno::IO));
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    // ---- receiving --------------------------------------------------------

    /// NEXTMSG: drop the current read message (if any), pop the next one
    /// and return its length, or `None` if the queue is empty.
    #[doc(alias = "KBUS_IOC_NEXTMSG")]
    pub fn next_msg(&self) -> Result<Option<usize>> {
        sys::next_msg(self.fd())
            .map(|n| n.map(|n| n as usize))
            .map_err(|e| Error::os(Op::NextMsg, e))
    }

    /// Raw `read()` of the current message, continuing where the last read
    /// stopped; 0 when there is none left (partial I/O, spec §6.2). A read
    /// whose wait for the device lock was interrupted (EAGAIN from KBUS,
    /// before it copies anything) is repeated.
    #[doc(alias = "read")]
    pub fn read_data(&self, buf: &mut [u8]) -> Result<usize> {
        sys::read(self.fd(), buf).map_err(|e| Error::os(Op::Read, e))
    }

    fn read_exact<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8]> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read_data(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(&buf[..got])
    }

    fn parse<T: AsRef<[u8]>>(bytes: T) -> Result<Message<T>> {
        Message::new_checked(bytes).map_err(|e| Error::new(Op::Read, ErrorKind::BadMessage(e)))
    }

    /// Read the rest of the current message (as LENLEFT reports it) into
    /// `buf` and view it; `None` if there is no current message.
    ///
    /// Meant for a message that has not been partly read with
    /// [`read_data`](Self::read_data), typically after
    /// [`read_next_msg`](Self::read_next_msg) said the buffer was too small:
    /// that leaves the message current and unread, so growing the buffer and
    /// calling `read_msg` gets it. If `buf` is still too small the error is
    /// [`ErrorKind::BufferTooSmall`] again and nothing is consumed.
    #[doc(alias = "KBUS_IOC_LENLEFT")]
    #[doc(alias = "read")]
    pub fn read_msg<'b>(&self, buf: &'b mut [u8]) -> Result<Option<Message<&'b [u8]>>> {
        let left = self.len_left()?;
        if left == 0 {
            return Ok(None);
        }
        self.read_current(left, buf).map(Some)
    }

    pub(crate) fn read_current<'b>(
        &self,
        len: usize,
        buf: &'b mut [u8],
    ) -> Result<Message<&'b [u8]>> {
        if buf.len() < len {
            return Err(Error::new(
                Op::Read,
                ErrorKind::BufferTooSmall {
                    needed: len,
                    available: buf.len(),
                },
            ));
        }
        let bytes = self.read_exact(&mut buf[..len])?;
        Self::parse(bytes)
    }

    /// NEXTMSG, then read that message into `buf` and view it in place (no
    /// heap); `None` if the queue is empty.
    ///
    /// If `buf` is smaller than the message the error is
    /// [`ErrorKind::BufferTooSmall`] with the size needed; the message has
    /// been popped but nothing has been read, so it stays current: call
    /// [`read_msg`](Self::read_msg) with a buffer that large (the next
    /// `read_next_msg` would drop it instead).
    #[doc(alias = "KBUS_IOC_NEXTMSG")]
    #[doc(alias = "read")]
    pub fn read_next_msg<'b>(&self, buf: &'b mut [u8]) -> Result<Option<Message<&'b [u8]>>> {
        match self.next_msg()? {
            None => Ok(None),
            Some(len) => self.read_current(len, buf).map(Some),
        }
    }

    /// Wait until a message is queued (no time limit), then read it into
    /// `buf` as [`read_next_msg`](Self::read_next_msg) does (Python
    /// `wait_for_msg()`).
    #[doc(alias = "poll")]
    #[doc(alias = "select")]
    pub fn wait_for_msg<'b>(&self, buf: &'b mut [u8]) -> Result<Message<&'b [u8]>> {
        loop {
            self.poll(Ready::READ, None)?;
            // Another reader of this Ksock may have popped it first.
            if let Some(len) = self.next_msg()? {
                return self.read_current(len, buf);
            }
        }
    }

    /// Wait at most `timeout` for a message, then
    /// [`read_next_msg`](Self::read_next_msg); `None` if the time ran out
    /// (Python `wait_for_msg(timeout)`).
    #[doc(alias = "wait_for_msg")]
    #[doc(alias = "poll")]
    #[doc(alias = "select")]
    pub fn wait_for_msg_timeout<'b>(
        &self,
        buf: &'b mut [u8],
        timeout: Duration,
    ) -> Result<Option<Message<&'b [u8]>>> {
        if self.poll(Ready::READ, Some(timeout))?.readable {
            self.read_next_msg(buf)
        } else {
            Ok(None)
        }
    }

    /// poll(2) for the readiness in `what`, at most `timeout` (`None` waits
    /// forever, `Some(ZERO)` just looks). Returns what is ready (all false
    /// on timeout). Polling for writable also lets the module retry a
    /// pending ALL_OR_WAIT send (spec §5.9).
    ///
    /// A signal does not cut the wait short. With the `std` feature the
    /// wait resumes with the time left; without it (no clock in `no_std`)
    /// it resumes with the whole `timeout` again.
    #[doc(alias = "select")]
    #[doc(alias = "fileno")]
    pub fn poll(&self, what: Ready, timeout: Option<Duration>) -> Result<Ready> {
        let mut flags = PollFlags::empty();
        if what.readable {
            flags |= PollFlags::IN;
        }
        if what.writable {
            flags |= PollFlags::OUT;
        }
        // Taken before the syscall: its answer says nothing about a SEND
        // that another thread makes while it runs.
        let seen = self.pending.snapshot();
        let mut fds = [PollFd::from_borrowed_fd(self.fd(), flags)];
        #[cfg_attr(not(feature = "std"), allow(unused_mut))] // only std has a clock
        let mut left = timeout;
        #[cfg(feature = "std")]
        let deadline = timeout.and_then(|d| std::time::Instant::now().checked_add(d));
        loop {
            let ts = match left {
                None => None,
                Some(d) => Some(
                    rustix::event::Timespec::try_from(d)
                        .map_err(|_| Error::os(Op::Poll, Errno::INVAL))?,
                ),
            };
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Err(Errno::INTR) =>
                {
                    #[cfg(feature = "std")]
                    if let Some(deadline) = deadline {
                        left = Some(deadline.saturating_duration_since(std::time::Instant::now()));
                    }
                }
                Err(e) => return Err(Error::os(Op::Poll, e)),
                Ok(_) => break,
            }
        }
        let got = fds[0].revents();
        if got.contains(PollFlags::OUT) {
            // Writable: the module is not in sending state (any pending
            // message was delivered or failed during this poll).
            self.pending.clear_if(seen);
        }
        Ok(Ready {
            readable: got.contains(PollFlags::IN),
            writable: got.contains(PollFlags::OUT),
        })
    }

    /// Iterate over the queued messages, reading each into `buf` (no heap),
    /// until the queue is empty.
    ///
    /// Each message borrows `buf`, so this is a *lending* iterator, which
    /// `for` cannot drive; use [`Messages::for_each`] /
    /// [`Messages::try_for_each`], or `while let`:
    ///
    /// ```no_run
    /// # fn main() -> kbus_rustix::Result<()> {
    /// use kbus_rustix::{Ksock, Mode, Role};
    /// let k = Ksock::open(0, Mode::ReadOnly)?;
    /// k.bind("$.Sensors.*", Role::Listener)?;
    /// let mut buf = [0u8; 1024];
    /// k.messages(&mut buf).for_each(|m| println!("{m}"))?;
    /// k.messages(&mut buf).try_for_each(|m| {
    ///     if m.is_request() {
    ///         println!("a Request: {}", m.name());
    ///     }
    ///     Ok::<(), kbus_rustix::Error>(())
    /// })?;
    /// let mut it = k.messages(&mut buf);
    /// while let Some(m) = it.next()? {
    ///     println!("{}: {} bytes", m.name(), m.data().len());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// With `alloc`, [`iter_owned`](Self::iter_owned) is a real
    /// [`Iterator`] of owned messages.
    #[doc(alias = "__iter__")]
    #[doc(alias = "__next__")]
    pub fn messages<'k, 'b>(&'k self, buf: &'b mut [u8]) -> Messages<'k, 'b> {
        Messages { ksock: self, buf }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The error of a failed write or SEND, updating the pending state: a
    /// SEND that says EAGAIN leaves the message pending (with the id the
    /// module wrote back), any other SEND result ends it.
    fn send_error(&self, op: Op, e: Errno, raw: [u32; 2]) -> Error {
        let err = Error::os(op, e);
        if op != Op::Send {
            return err;
        }
        if e == Errno::AGAIN {
            let id = id_from(raw);
            self.pending.set(id);
            err.with_id(id)
        } else {
            self.pending.clear();
            err
        }
    }
}

/// Lending iterator over a Ksock's queue (see [`Ksock::messages`]).
pub struct Messages<'k, 'b> {
    ksock: &'k Ksock,
    buf: &'b mut [u8],
}

impl Messages<'_, '_> {
    /// The next message, viewed in the buffer; `None` when the queue is
    /// empty. Each call reuses the buffer, so the previous message must be
    /// dropped first.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Message<&[u8]>>> {
        self.ksock.read_next_msg(self.buf)
    }

    /// Call `f` with each queued message until the queue is empty; stops at
    /// the first read error.
    pub fn for_each(mut self, mut f: impl FnMut(Message<&[u8]>)) -> Result<()> {
        while let Some(m) = self.next()? {
            f(m);
        }
        Ok(())
    }

    /// Call `f` with each queued message until the queue is empty, stopping
    /// at the first error, `f`'s or a read's (any `E: From<Error>`).
    pub fn try_for_each<E: From<Error>>(
        mut self,
        mut f: impl FnMut(Message<&[u8]>) -> core::result::Result<(), E>,
    ) -> core::result::Result<(), E> {
        while let Some(m) = self.next()? {
            f(m)?;
        }
        Ok(())
    }
}

#[cfg(feature = "alloc")]
mod owned {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    impl Ksock {
        /// NEXTMSG + read into a new exactly-sized buffer.
        #[doc(alias = "read_next_msg")]
        #[doc(alias = "KBUS_IOC_NEXTMSG")]
        pub fn read_next_msg_owned(&self) -> Result<Option<Message<Vec<u8>>>> {
            match self.next_msg()? {
                None => Ok(None),
                Some(len) => self.read_current_owned(len).map(Some),
            }
        }

        /// Read the current message (`len` bytes, just popped) into a new
        /// buffer.
        pub(crate) fn read_current_owned(&self, len: usize) -> Result<Message<Vec<u8>>> {
            let mut buf = vec![0u8; len];
            let got = self.read_exact(&mut buf)?.len();
            buf.truncate(got);
            Self::parse(buf)
        }

        /// An owned iterator over the queue (Python `for msg in ksock`):
        /// yields messages until the queue is empty.
        #[doc(alias = "__iter__")]
        #[doc(alias = "__next__")]
        pub fn iter_owned(&self) -> OwnedMessages<'_> {
            OwnedMessages { ksock: self }
        }
    }

    /// Owned iterator over a Ksock's queue (see [`Ksock::iter_owned`]).
    pub struct OwnedMessages<'k> {
        ksock: &'k Ksock,
    }

    impl Iterator for OwnedMessages<'_> {
        type Item = Result<Message<Vec<u8>>>;
        fn next(&mut self) -> Option<Self::Item> {
            self.ksock.read_next_msg_owned().transpose()
        }
    }
}

#[cfg(feature = "alloc")]
pub use owned::OwnedMessages;

impl AsFd for Ksock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Ksock {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<Ksock> for OwnedFd {
    fn from(k: Ksock) -> OwnedFd {
        k.fd
    }
}

/// Like the Python `str()`: `Ksock device 0, id 3, mode read/write`.
impl fmt::Display for Ksock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ksock device ")?;
        match self.device {
            Some(d) => write!(f, "{d}")?,
            None => f.write_str("?")?,
        }
        match self.ksock_id() {
            Ok(id) => write!(f, ", id {id}")?,
            Err(_) => f.write_str(", id ?")?,
        }
        write!(f, ", mode {}", self.mode.as_str())
    }
}

/// Like the Python `repr()`: `<Ksock /dev/kbus0 open for read/write>`.
impl fmt::Debug for Ksock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<Ksock ")?;
        match self.device {
            Some(d) => write!(f, "/dev/kbus{d}")?,
            None => write!(f, "fd {}", self.fd.as_raw_fd())?,
        }
        write!(f, " open for {}>", self.mode.as_str())
    }
}

/// Whether the byte after `name` may be the first of another page (so a
/// module that reads it could fault), for a name `send_msg` can copy.
fn ends_a_page(name: &[u8]) -> bool {
    let end = (name.as_ptr() as usize).wrapping_add(name.len());
    end % MIN_PAGE_SIZE == 0 && !name.is_empty() && name.len() <= MAX_NAME_LEN
}

/// `/dev/kbus<which>` as a C string in `buf`.
fn device_path(which: u32, buf: &mut [u8; 24]) -> &core::ffi::CStr {
    const PREFIX: &[u8] = b"/dev/kbus";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = which;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = PREFIX.len() + digits.len() - i;
    buf[PREFIX.len()..len].copy_from_slice(&digits[i..]);
    buf[len] = 0;
    core::ffi::CStr::from_bytes_with_nul(&buf[..=len]).expect("one NUL at the end")
}

fn trailing_number(path: &str) -> Option<u32> {
    let digits = path.len() - path.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    path[path.len() - digits..].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_paths() {
        let mut buf = [0u8; 24];
        assert_eq!(device_path(0, &mut buf).to_bytes(), b"/dev/kbus0");
        assert_eq!(device_path(255, &mut buf).to_bytes(), b"/dev/kbus255");
        assert_eq!(
            device_path(u32::MAX, &mut buf).to_bytes(),
            b"/dev/kbus4294967295"
        );
        assert_eq!(trailing_number("/dev/kbus12"), Some(12));
        assert_eq!(trailing_number("/tmp/node"), None);
    }

    #[test]
    fn only_names_ending_a_page_are_copied() {
        #[repr(C, align(4096))]
        struct Pages([u8; 8192]);
        let pages = Pages([b'a'; 8192]);
        let b = &pages.0;
        assert!(ends_a_page(&b[4096 - 6..4096]));
        assert!(ends_a_page(&b[8192 - 1000..]));
        assert!(!ends_a_page(&b[4096 - 6..4095]));
        assert!(!ends_a_page(&b[4096 - 6..4097]));
        assert!(!ends_a_page(&b[4096..4096]), "empty");
        assert!(!ends_a_page(&b[8192 - 1001..]), "too long to be sent");
    }

    #[test]
    fn opening_a_missing_device_says_so() {
        let err = Ksock::open_path("/nonexistent/kbus7", Mode::ReadOnly).unwrap_err();
        assert_eq!(err.op(), Op::Open);
        assert!(err.is(Errno::NOENT));
        let s = alloc_free_display(&err);
        assert!(s.contains("no such KBUS device"), "{s}");
    }

    #[test]
    fn a_non_kbus_file_gives_enotty() {
        // /dev/null answers every ioctl with ENOTTY: the request codes reach
        // the kernel and errors come back with their operation.
        let k = Ksock::open_path("/dev/null", Mode::ReadWrite).unwrap();
        let e = k.ksock_id().unwrap_err();
        assert_eq!((e.op(), e.errno()), (Op::KsockId, Some(Errno::NOTTY)));
        assert!(k.bind("$.A", Role::Listener).unwrap_err().is(Errno::NOTTY));
        assert!(k.find_replier("$.A").unwrap_err().is(Errno::NOTTY));
        assert!(k.send().unwrap_err().is(Errno::NOTTY));
        assert!(k.next_msg().unwrap_err().is(Errno::NOTTY));
        assert!(k.max_messages().unwrap_err().is(Errno::NOTTY));
        assert!(k.last_msg_id().unwrap_err().is(Errno::NOTTY));
        assert_eq!(k.device(), None);
        assert_eq!(std::format!("{k}"), "Ksock device ?, id ?, mode read/write");
        // poll on /dev/null: always readable and writable.
        let r = k.poll(Ready::BOTH, Some(Duration::ZERO)).unwrap();
        assert!(r.readable && r.writable);
        assert!(k.as_raw_fd() >= 0);
    }

    fn alloc_free_display(e: &Error) -> std::string::String {
        std::format!("{e}")
    }
}
