//! The crate's error type.

use core::fmt;

use crate::name::NameError;

/// Why bytes are not a valid message, or why a message cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Parsing: the buffer ends before the message does (`needed` is the
    /// header length, or the message's `ENTIRE()` length once the header is
    /// known).
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// Emitting: the output buffer is smaller than the message.
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The header does not start with [`START_GUARD`](crate::START_GUARD).
    /// (`found` = 0x4B627573 is the guard byte-swapped: the message is in
    /// the other byte order than the layout it was read with.)
    BadStartGuard {
        /// The value found.
        found: u32,
    },
    /// The header's `end_guard` is not [`END_GUARD`](crate::END_GUARD).
    BadEndGuard {
        /// The value found.
        found: u32,
    },
    /// The word after the data is not [`END_GUARD`](crate::END_GUARD).
    BadFinalGuard {
        /// The value found.
        found: u32,
    },
    /// The name or data pointer field is not NULL: this is a *pointy*
    /// message, which is not self-contained (readers always get the entire
    /// form with both pointers NULL).
    NotEntire {
        /// The name pointer field.
        name_ptr: u64,
        /// The data pointer field.
        data_ptr: u64,
    },
    /// The name is not valid (for a message: wildcards are refused).
    Name(NameError),
    /// The name is valid for the kernel but contains ISO-8859-1 letter bytes,
    /// so it cannot be shown as `&str`. (Parsing no longer refuses such
    /// names: [`Message::name`](crate::Message::name) gives a
    /// [`Name`](crate::Name); this is for callers that need ASCII.)
    NonAsciiName {
        /// Index of the first non-ASCII byte.
        index: usize,
        /// That byte.
        byte: u8,
    },
    /// Data longer than `u32::MAX` bytes.
    DataTooLong {
        /// Its length.
        len: usize,
    },
    /// `reply_to` needs a Request with both WANT_A_REPLY and
    /// WANT_YOU_TO_REPLY set (the copy KBUS gave to its Replier).
    NotOursToReply,
    /// `stateful_request` needs a Reply or a Stateful Request.
    NotReplyOrStatefulRequest,
    /// The message is not a `$.KBUS.ReplierBindEvent`.
    NotBindEvent,
    /// Bind-event data is malformed.
    BadBindEvent,
}

impl From<NameError> for Error {
    #[inline]
    fn from(e: NameError) -> Error {
        Error::Name(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, got } => {
                write!(f, "message truncated: needs {needed} bytes, got {got}")
            }
            Error::BufferTooSmall { needed, got } => {
                write!(f, "buffer too small: message needs {needed} bytes, buffer has {got}")
            }
            Error::BadStartGuard { found } => {
                write!(f, "bad start guard {found:#010x} (expected 0x7375624b)")?;
                if found == crate::START_GUARD.swap_bytes() {
                    f.write_str(": byte-swapped, a message in the other byte order?")?;
                }
                Ok(())
            }
            Error::BadEndGuard { found } => {
                write!(f, "bad header end guard {found:#010x} (expected 0x4b627573)")
            }
            Error::BadFinalGuard { found } => {
                write!(f, "bad final end guard {found:#010x} (expected 0x4b627573)")
            }
            Error::NotEntire { name_ptr, data_ptr } => write!(
                f,
                "not an entire message: name pointer {name_ptr:#x}, data pointer {data_ptr:#x} (both must be NULL)"
            ),
            Error::Name(e) => write!(f, "invalid message name: {e}"),
            Error::NonAsciiName { index, byte } => write!(
                f,
                "message name has Latin-1 byte {byte:#04x} at index {index} (not representable as str)"
            ),
            Error::DataTooLong { len } => write!(f, "data too long ({len} bytes)"),
            Error::NotOursToReply => f.write_str(
                "can only reply to a Request with WANT_A_REPLY and WANT_YOU_TO_REPLY set",
            ),
            Error::NotReplyOrStatefulRequest => {
                f.write_str("a stateful request needs an earlier Reply or Stateful Request")
            }
            Error::NotBindEvent => f.write_str("not a $.KBUS.ReplierBindEvent message"),
            Error::BadBindEvent => f.write_str("malformed replier bind event data"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Name(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            Error::Truncated { needed, got } => {
                defmt::write!(
                    f,
                    "message truncated: needs {=usize}, got {=usize}",
                    needed,
                    got
                )
            }
            Error::BufferTooSmall { needed, got } => {
                defmt::write!(
                    f,
                    "buffer too small: needs {=usize}, got {=usize}",
                    needed,
                    got
                )
            }
            Error::BadStartGuard { found } => defmt::write!(f, "bad start guard {=u32:#x}", found),
            Error::BadEndGuard { found } => defmt::write!(f, "bad end guard {=u32:#x}", found),
            Error::BadFinalGuard { found } => {
                defmt::write!(f, "bad final end guard {=u32:#x}", found)
            }
            Error::NotEntire { name_ptr, data_ptr } => defmt::write!(
                f,
                "not an entire message (name ptr {=u64:#x}, data ptr {=u64:#x})",
                name_ptr,
                data_ptr
            ),
            Error::Name(e) => defmt::write!(f, "invalid message name: {}", e),
            Error::NonAsciiName { index, byte } => {
                defmt::write!(
                    f,
                    "Latin-1 byte {=u8:#x} at index {=usize} of name",
                    byte,
                    index
                )
            }
            Error::DataTooLong { len } => defmt::write!(f, "data too long ({=usize})", len),
            Error::NotOursToReply => defmt::write!(f, "not a Request for us to reply to"),
            Error::NotReplyOrStatefulRequest => {
                defmt::write!(f, "not a Reply or Stateful Request")
            }
            Error::NotBindEvent => defmt::write!(f, "not a ReplierBindEvent"),
            Error::BadBindEvent => defmt::write!(f, "malformed replier bind event"),
        }
    }
}
