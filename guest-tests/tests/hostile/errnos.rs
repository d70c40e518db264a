//! The spec's ioctl table and errno table, independent of `kbus_rustix`.

use super::*;

/// What the fuzzer did: a KBUS operation, named by `kbus_rustix::Op` (the
/// names only; numbers and directions come from [`IOCTLS`] below), or an
/// ioctl code that is none of KBUS's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Op(Op),
    BadIoctl,
}

impl From<Op> for Call {
    fn from(op: Op) -> Call {
        Call::Op(op)
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Op(op) => write!(f, "{op}"),
            Call::BadIoctl => f.write_str("bad ioctl"),
        }
    }
}

/// (nr, direction, op) of every KBUS ioctl (spec §3.9); the nominal size
/// is always `sizeof(char *)`.
pub(crate) const IOCTLS: [(u8, Direction, Op); 18] = [
    (1, Direction::None, Op::Reset),
    (2, Direction::Write, Op::Bind),
    (3, Direction::Write, Op::Unbind),
    (4, Direction::Read, Op::KsockId),
    (5, Direction::ReadWrite, Op::FindReplier),
    (6, Direction::Read, Op::NextMsg),
    (7, Direction::Read, Op::LenLeft),
    (8, Direction::Read, Op::Send),
    (9, Direction::None, Op::Discard),
    (10, Direction::Read, Op::LastSent),
    (11, Direction::ReadWrite, Op::MaxMessages),
    (12, Direction::Read, Op::NumMessages),
    (13, Direction::Read, Op::NumUnrepliedTo),
    (14, Direction::ReadWrite, Op::MessagesOnce),
    (15, Direction::ReadWrite, Op::Verbose),
    (16, Direction::Read, Op::NewDevice),
    (17, Direction::ReadWrite, Op::ReportReplierBinds),
    (18, Direction::ReadWrite, Op::MaxMessageSize),
];

pub(crate) fn code(nr: u8, dir: Direction) -> Opcode {
    opcode::from_components(dir, b'k', nr, if dir == Direction::None { 0 } else { PTR })
}

pub(crate) fn exact(k: Op) -> Opcode {
    let (nr, dir, _) = IOCTLS.iter().find(|e| e.2 == k).copied().unwrap();
    code(nr, dir)
}

pub(crate) fn which_ioctl(cmd: Opcode) -> Option<Op> {
    IOCTLS.iter().find(|e| code(e.0, e.1) == cmd).map(|e| e.2)
}

/// The errnos the spec lists for each operation (§3.10–3.11, §5.1, §5.2,
/// §6.2, plus the VFS's EBADF for writing a read-only file).
pub(crate) fn allowed(call: Call) -> &'static [Errno] {
    use Errno as E;
    use Op as O;
    let op = match call {
        // A code that is not exactly one of the table's (spec §3.10).
        Call::BadIoctl => return &[E::NOTTY, E::FAULT],
        Call::Op(op) => op,
    };
    match op {
        O::Write => &[
            E::INVAL,
            E::NAMETOOLONG,
            E::MSGSIZE,
            E::BADMSG,
            E::ALREADY,
            E::FAULT,
            E::BADF,
        ],
        O::Read => &[E::FAULT],
        O::Poll => &[],
        O::Reset | O::Discard => &[],
        O::Bind => &[
            E::FAULT,
            E::BADMSG,
            E::NAMETOOLONG,
            E::ADDRINUSE,
            E::AGAIN,
            E::NOMEM,
        ],
        O::Unbind => &[E::FAULT, E::BADMSG, E::NAMETOOLONG, E::INVAL, E::AGAIN],
        O::FindReplier => &[E::FAULT, E::NAMETOOLONG],
        O::KsockId
        | O::NextMsg
        | O::LenLeft
        | O::LastSent
        | O::MaxMessages
        | O::NumMessages
        | O::NumUnrepliedTo => &[E::FAULT],
        O::Send => &[
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
        O::MessagesOnce | O::Verbose | O::MaxMessageSize => &[E::FAULT, E::INVAL],
        O::NewDevice => &[E::FAULT, E::INVAL, E::NOMEM],
        O::ReportReplierBinds => &[E::FAULT, E::INVAL, E::BUSY],
        other => panic!("no errno table for {other}"),
    }
}

pub(crate) fn en(e: Errno) -> String {
    kbus_rustix::errno_name(e).to_string()
}
