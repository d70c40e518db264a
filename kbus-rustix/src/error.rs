//! Errors that keep the errno and the operation, and say what they mean in
//! KBUS terms (spec §3.13, §5).

use core::fmt;

use kbus_wire::MessageId;
use rustix::io::Errno;

/// The operation that failed (an ioctl, `open`, `read`, `write`, `poll`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `open()` of a KBUS device.
    Open,
    /// `KBUS_IOC_RESET`.
    Reset,
    /// `KBUS_IOC_BIND`.
    Bind,
    /// `KBUS_IOC_UNBIND`.
    Unbind,
    /// `KBUS_IOC_KSOCKID`.
    KsockId,
    /// `KBUS_IOC_REPLIER`.
    FindReplier,
    /// `KBUS_IOC_NEXTMSG`.
    NextMsg,
    /// `KBUS_IOC_LENLEFT`.
    LenLeft,
    /// `KBUS_IOC_SEND`.
    Send,
    /// `KBUS_IOC_DISCARD`.
    Discard,
    /// `KBUS_IOC_LASTSENT`.
    LastSent,
    /// `KBUS_IOC_MAXMSGS`.
    MaxMessages,
    /// `KBUS_IOC_NUMMSGS`.
    NumMessages,
    /// `KBUS_IOC_UNREPLIEDTO`.
    NumUnrepliedTo,
    /// `KBUS_IOC_MSGONLYONCE`.
    MessagesOnce,
    /// `KBUS_IOC_VERBOSE`.
    Verbose,
    /// `KBUS_IOC_NEWDEVICE`.
    NewDevice,
    /// `KBUS_IOC_REPORTREPLIERBINDS`.
    ReportReplierBinds,
    /// `KBUS_IOC_MAXMSGSIZE`.
    MaxMessageSize,
    /// `write()` of message bytes.
    Write,
    /// `read()` of message bytes.
    Read,
    /// `poll()`.
    Poll,
    /// Reading or parsing `/proc/kbus/bindings`.
    ReadBindings,
    /// Building or checking a message in memory (no system call).
    Message,
}

impl Op {
    /// Every operation, in the order of the variants (the ioctls in number
    /// order, then `write`, `read`, `poll`, `/proc/kbus/bindings` and
    /// message building): to list what an errno means for each of them with
    /// [`Error::meaning`], as `kbus errno` does.
    pub const ALL: [Op; 24] = [
        Op::Open,
        Op::Reset,
        Op::Bind,
        Op::Unbind,
        Op::KsockId,
        Op::FindReplier,
        Op::NextMsg,
        Op::LenLeft,
        Op::Send,
        Op::Discard,
        Op::LastSent,
        Op::MaxMessages,
        Op::NumMessages,
        Op::NumUnrepliedTo,
        Op::MessagesOnce,
        Op::Verbose,
        Op::NewDevice,
        Op::ReportReplierBinds,
        Op::MaxMessageSize,
        Op::Write,
        Op::Read,
        Op::Poll,
        Op::ReadBindings,
        Op::Message,
    ];

    /// Short name used in messages, e.g. `SEND`, `write`.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Reset => "RESET",
            Op::Bind => "BIND",
            Op::Unbind => "UNBIND",
            Op::KsockId => "KSOCKID",
            Op::FindReplier => "REPLIER",
            Op::NextMsg => "NEXTMSG",
            Op::LenLeft => "LENLEFT",
            Op::Send => "SEND",
            Op::Discard => "DISCARD",
            Op::LastSent => "LASTSENT",
            Op::MaxMessages => "MAXMSGS",
            Op::NumMessages => "NUMMSGS",
            Op::NumUnrepliedTo => "UNREPLIEDTO",
            Op::MessagesOnce => "MSGONLYONCE",
            Op::Verbose => "VERBOSE",
            Op::NewDevice => "NEWDEVICE",
            Op::ReportReplierBinds => "REPORTREPLIERBINDS",
            Op::MaxMessageSize => "MAXMSGSIZE",
            Op::Write => "write",
            Op::Read => "read",
            Op::Poll => "poll",
            Op::ReadBindings => "/proc/kbus/bindings",
            Op::Message => "message",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The system call failed with this errno.
    Os(Errno),
    /// The caller's buffer is smaller than the message (`needed` bytes).
    /// Nothing was read and the message stays current. Recover by either
    ///
    /// * growing: read it with a buffer of at least `needed` bytes through
    ///   [`Ksock::read_msg`](crate::Ksock::read_msg), or
    /// * skipping: the next [`Ksock::next_msg`](crate::Ksock::next_msg) (or
    ///   `read_next_msg`) drops it and pops the one after.
    ///
    /// [`DEFAULT_MAX_MESSAGE_LEN`](crate::DEFAULT_MAX_MESSAGE_LEN) bytes are
    /// always enough on a device with the default maximum message size.
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes the buffer had.
        available: usize,
    },
    /// The bytes read back are not a well-formed entire message.
    BadMessage(kbus_wire::Error),
    /// A line of `/proc/kbus/bindings` could not be parsed.
    BadBindingsLine,
    /// Refused without a system call: this Ksock has an ALL_OR_WAIT message
    /// pending (a SEND returned EAGAIN; [`Error::message_id`] has its id),
    /// and on some modules a `write()` in that state destroys it. End the
    /// pending state first: poll for writable
    /// ([`Ksock::poll`](crate::Ksock::poll)), then
    /// [`send`](crate::Ksock::send) to retry or
    /// [`discard`](crate::Ksock::discard).
    SendPending,
    /// An async wait ran out of time
    /// (`tokio::AsyncKsock::request`).
    TimedOut,
    /// Building or checking a message failed (e.g. `MessageRepr::reply_to`
    /// on a message that is not ours to answer); no system call was made.
    Message(kbus_wire::Error),
}

/// A KBUS operation failed.
///
/// Keeps the errno ([`Error::errno`]) and the operation ([`Error::op`]); its
/// `Display` says what the errno means for that operation in KBUS terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    op: Op,
    kind: ErrorKind,
    id: Option<MessageId>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// An errno from `op`.
    pub const fn os(op: Op, errno: Errno) -> Self {
        Error {
            op,
            kind: ErrorKind::Os(errno),
            id: None,
        }
    }

    pub(crate) const fn new(op: Op, kind: ErrorKind) -> Self {
        Error { op, kind, id: None }
    }

    pub(crate) fn with_id(mut self, id: MessageId) -> Self {
        self.id = Some(id);
        self
    }

    /// The operation that failed.
    pub const fn op(&self) -> Op {
        self.op
    }

    /// What went wrong.
    pub const fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The errno, if the failure came from a system call.
    pub const fn errno(&self) -> Option<Errno> {
        match self.kind {
            ErrorKind::Os(e) => Some(e),
            _ => None,
        }
    }

    /// `true` if this is the errno `e`.
    pub fn is(&self, e: Errno) -> bool {
        self.errno() == Some(e)
    }

    /// For a SEND that failed with EAGAIN (ALL_OR_WAIT, message now pending):
    /// the id KBUS gave the message, which the module reports even though
    /// the ioctl failed (spec §5.2). [`Ksock::last_msg_id`](crate::Ksock::last_msg_id)
    /// reports it too.
    pub const fn message_id(&self) -> Option<MessageId> {
        self.id
    }

    /// What this errno means for this operation in KBUS terms, if KBUS gives
    /// it a specific meaning (spec §3.13, §5).
    pub fn meaning(&self) -> Option<&'static str> {
        match self.kind {
            ErrorKind::Os(e) => meaning(self.op, e),
            _ => None,
        }
    }
}

fn meaning(op: Op, e: Errno) -> Option<&'static str> {
    use Op::*;
    let m = match (op, e) {
        (Open, Errno::NOENT) => "no such KBUS device (is kbus.ko loaded, with enough kbus_num_devices?)",
        (Bind, Errno::ADDRINUSE) => "a Replier is already bound to that exact name",
        (Bind | Unbind, Errno::BADMSG) => {
            "invalid binding name (empty, malformed, or a Replier binding to $.KBUS.ReplierBindEvent)"
        }
        (Bind | Unbind | Write, Errno::NAMETOOLONG) => "message name longer than 1000 bytes",
        (FindReplier, Errno::NAMETOOLONG) => "name empty or longer than 1000 bytes",
        (Bind | Unbind, Errno::AGAIN) => {
            "Replier bind events are being reported and a Listener of $.KBUS.ReplierBindEvent has a full queue; try again later"
        }
        (Unbind, Errno::INVAL) => "this Ksock holds no such binding (same name and same role)",
        (Send, Errno::NOMSG) => {
            "there is no message to send: nothing was written, it was discarded, or a poll already finished the pending one"
        }
        (Send, Errno::INVAL) => "the message written so far is incomplete",
        (Send | Write, Errno::BADMSG) => "invalid message name, or a wildcard name",
        (Send, Errno::NOLCK) => {
            "no room in your own queue to reserve for the Reply to this Request"
        }
        (Send, Errno::ADDRNOTAVAIL) => {
            "no Replier is bound for this Request's name, or this Reply's target Ksock is not open"
        }
        (Send, Errno::CONNREFUSED) => {
            "the Reply's target is not waiting for a Reply to that Request (wrong in_reply_to or to, or already answered)"
        }
        (Send, Errno::PIPE) => {
            "Stateful Request: the Replier for that name is not the Ksock named in `to`"
        }
        (Send, Errno::BUSY) => {
            "a recipient's queue is full (the Replier's or Reply target's, or a Listener's with ALL_OR_FAIL); nothing was sent"
        }
        (Send, Errno::AGAIN) => {
            "a recipient's queue is full and ALL_OR_WAIT was set: the message is pending; poll for writable (the module retries it), SEND to retry, or DISCARD; write nothing before that"
        }
        (Write, Errno::ALREADY) => {
            "the Ksock is in sending state (an earlier SEND returned EAGAIN); on some modules this write has freed the pending message, so a SEND now gives ENOMSG: DISCARD before writing again"
        }
        (Write, Errno::MSGSIZE) => {
            "message larger than the device's maximum message size, or bytes written after a complete message"
        }
        (Write, Errno::INVAL) => {
            "malformed message header (guards, lengths, pointers, or both ALL_OR flags set)"
        }
        (Write, Errno::BADF) => "the Ksock was opened read-only, so it cannot send",
        (Read | Write, Errno::AGAIN) => "interrupted while waiting for the device lock; try again",
        (ReportReplierBinds, Errno::BUSY) => {
            "your queue filled up while the current Replier bindings were being reported to you"
        }
        (MessagesOnce | Verbose | ReportReplierBinds, Errno::INVAL) => {
            "the request must be 0 (off), 1 (on) or 0xFFFFFFFF (just ask)"
        }
        (MaxMessageSize, Errno::INVAL) => {
            "a maximum message size must be 0 (ask), 1 (ask the absolute maximum), or from 100 up to the absolute maximum"
        }
        (NewDevice, Errno::INVAL) => "all 256 KBUS devices already exist",
        (_, Errno::NOTTY) => {
            "not a KBUS device, or an ioctl the module does not know (a 32-bit program on a 64-bit kernel?)"
        }
        (_, Errno::FAULT) => "a bad pointer was passed to the module (or it failed an internal allocation)",
        (_, Errno::NOMEM) => "the kernel ran out of memory",
        _ => return None,
    };
    Some(m)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KBUS {} failed: ", self.op)?;
        match &self.kind {
            ErrorKind::Os(e) => {
                match meaning(self.op, *e) {
                    Some(m) => f.write_str(m)?,
                    None => write!(f, "{e}")?,
                }
                write!(f, " ({})", errno_name(*e))?;
            }
            ErrorKind::BufferTooSmall { needed, available } => write!(
                f,
                "the message needs a {needed}-byte buffer, got {available} (the message stays current: read it again with a larger buffer)"
            )?,
            ErrorKind::BadMessage(e) => write!(f, "malformed message read back: {e}")?,
            ErrorKind::BadBindingsLine => f.write_str("a line does not have the format of spec §8.1")?,
            ErrorKind::SendPending => f.write_str(
                "an earlier ALL_OR_WAIT send is still pending, so nothing was written: poll for writable, then send() to retry or discard()",
            )?,
            ErrorKind::Message(e) => write!(f, "{e}")?,
            ErrorKind::TimedOut => f.write_str("timed out waiting for the answer")?,
        }
        if let Some(id) = self.id {
            write!(f, " [message id {id}]")?;
        }
        Ok(())
    }
}

/// The symbolic name of the errnos KBUS uses (numbers differ per arch).
pub fn errno_name(e: Errno) -> ErrnoName {
    ErrnoName(e)
}

/// Display helper: `EADDRINUSE`, or `errno 123` for the ones KBUS never uses.
#[derive(Clone, Copy, Debug)]
pub struct ErrnoName(Errno);

/// The errnos KBUS uses (spec §3.13), with their symbolic names, for this
/// target's numbering (the numbers differ per arch, e.g. on MIPS). What
/// [`errno_name`] prints, and a table to look a name up in:
///
/// ```
/// use kbus_rustix::{Errno, KBUS_ERRNOS};
/// let (e, _) = KBUS_ERRNOS.iter().find(|(_, n)| *n == "EADDRINUSE").unwrap();
/// assert_eq!(*e, Errno::ADDRINUSE);
/// ```
pub const KBUS_ERRNOS: [(Errno, &str); 21] = [
    (Errno::PERM, "EPERM"),
    (Errno::NOENT, "ENOENT"),
    (Errno::INTR, "EINTR"),
    (Errno::IO, "EIO"),
    (Errno::BADF, "EBADF"),
    (Errno::AGAIN, "EAGAIN"),
    (Errno::NOMEM, "ENOMEM"),
    (Errno::FAULT, "EFAULT"),
    (Errno::BUSY, "EBUSY"),
    (Errno::INVAL, "EINVAL"),
    (Errno::NOTTY, "ENOTTY"),
    (Errno::PIPE, "EPIPE"),
    (Errno::NAMETOOLONG, "ENAMETOOLONG"),
    (Errno::NOLCK, "ENOLCK"),
    (Errno::NOMSG, "ENOMSG"),
    (Errno::BADMSG, "EBADMSG"),
    (Errno::MSGSIZE, "EMSGSIZE"),
    (Errno::ADDRINUSE, "EADDRINUSE"),
    (Errno::ADDRNOTAVAIL, "EADDRNOTAVAIL"),
    (Errno::CONNREFUSED, "ECONNREFUSED"),
    (Errno::ALREADY, "EALREADY"),
];

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match KBUS_ERRNOS.iter().find(|(e, _)| *e == self.0) {
            Some((_, n)) => f.write_str(n),
            None => write!(f, "errno {}", self.0.raw_os_error()),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::BadMessage(e) | ErrorKind::Message(e) => Some(e),
            _ => None,
        }
    }
}

/// `?` on a `kbus_wire` result (e.g. [`MessageRepr::reply_to`]) in a
/// function returning this crate's [`Result`]: [`ErrorKind::Message`], with
/// the operation [`Op::Message`].
///
/// [`MessageRepr::reply_to`]: kbus_wire::MessageRepr::reply_to
impl From<kbus_wire::Error> for Error {
    fn from(e: kbus_wire::Error) -> Self {
        Error::new(Op::Message, ErrorKind::Message(e))
    }
}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e.kind {
            ErrorKind::Os(errno) => std::io::Error::from_raw_os_error(errno.raw_os_error()),
            _ => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_is_operation_aware() {
        let e = Error::os(Op::Bind, Errno::ADDRINUSE);
        assert_eq!(
            e.to_string(),
            "KBUS BIND failed: a Replier is already bound to that exact name (EADDRINUSE)"
        );
        let e = Error::os(Op::Send, Errno::NOLCK);
        assert!(e.to_string().contains("no room in your own queue"), "{e}");
        let e = Error::os(Op::Send, Errno::INVAL);
        assert!(e.to_string().contains("incomplete"), "{e}");
        let e = Error::os(Op::Write, Errno::INVAL);
        assert!(e.to_string().contains("malformed message header"), "{e}");
        let e = Error::os(Op::Unbind, Errno::INVAL);
        assert!(e.to_string().contains("no such binding"), "{e}");
        assert!(e.is(Errno::INVAL));
        assert_eq!(e.errno(), Some(Errno::INVAL));
    }

    #[test]
    fn unknown_errno_falls_back() {
        let e = Error::os(Op::KsockId, Errno::XDEV);
        let s = e.to_string();
        assert!(s.starts_with("KBUS KSOCKID failed: "), "{s}");
        assert!(s.contains("errno"), "{s}");
        assert_eq!(e.meaning(), None);
    }

    #[test]
    fn tables_are_complete() {
        // Op::ALL lists every variant once (the match makes a new variant
        // a compile error here until it is added to the list).
        for (i, op) in Op::ALL.iter().enumerate() {
            let n = match op {
                Op::Open => 0,
                Op::Reset => 1,
                Op::Bind => 2,
                Op::Unbind => 3,
                Op::KsockId => 4,
                Op::FindReplier => 5,
                Op::NextMsg => 6,
                Op::LenLeft => 7,
                Op::Send => 8,
                Op::Discard => 9,
                Op::LastSent => 10,
                Op::MaxMessages => 11,
                Op::NumMessages => 12,
                Op::NumUnrepliedTo => 13,
                Op::MessagesOnce => 14,
                Op::Verbose => 15,
                Op::NewDevice => 16,
                Op::ReportReplierBinds => 17,
                Op::MaxMessageSize => 18,
                Op::Write => 19,
                Op::Read => 20,
                Op::Poll => 21,
                Op::ReadBindings => 22,
                Op::Message => 23,
            };
            assert_eq!(n, i, "{op}");
        }
        for (e, name) in KBUS_ERRNOS {
            assert_eq!(errno_name(e).to_string(), name);
        }
    }

    #[test]
    fn eagain_send_keeps_the_id() {
        let id = MessageId {
            network_id: 0,
            serial_num: 7,
        };
        let e = Error::os(Op::Send, Errno::AGAIN).with_id(id);
        assert_eq!(e.message_id(), Some(id));
        assert!(e.to_string().ends_with("[message id [0:7]]"), "{e}");
    }
}
