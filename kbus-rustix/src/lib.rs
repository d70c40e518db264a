//! The KBUS Ksock API over [rustix] — no libc, `no_std` capable.
//!
//! KBUS is a kernel-mediated message bus: processes open `/dev/kbusN`,
//! [bind](Ksock::bind) to message names as Listener or Replier, and exchange
//! Announcements, Requests and Replies through the module. This crate is the
//! user-space side, shaped after the Python `Ksock` of the original (spec
//! §9.1) in Rust style. It re-exports what a user needs from [`kbus_wire`]
//! (messages, builders, names, ids, flags, layouts), so it is the only
//! crate to import.
//!
//! ```no_run
//! use kbus_rustix::{Ksock, MessageRepr, Mode, Role};
//!
//! let listener = Ksock::open(0, Mode::ReadOnly)?;
//! listener.bind("$.Sensors.*", Role::Listener)?;
//!
//! let sender = Ksock::open(0, Mode::ReadWrite)?;
//! let id = sender.send_msg(&MessageRepr::announcement("$.Sensors.Kitchen", b"21.5"))?;
//!
//! let mut buf = [0u8; 512];
//! let msg = listener.read_next_msg(&mut buf)?.expect("queued by the send");
//! assert_eq!(msg.id(), id);
//! assert_eq!(msg.data(), b"21.5");
//! # Ok::<(), kbus_rustix::Error>(())
//! ```
//!
//! # A Replier loop
//!
//! Heap-free: one stack buffer sized for the largest Request expected,
//! Replies sent zero-copy, `?` on both KBUS and message-building errors.
//!
//! ```no_run
//! use kbus_rustix::{message_len, Ksock, MessageRepr, Mode, Result, Role};
//!
//! const NAME: &str = "$.Sensors.Kitchen";
//!
//! fn serve() -> Result<()> {
//!     let replier = Ksock::open(0, Mode::ReadWrite)?;
//!     replier.bind(NAME, Role::Replier)?;
//!     let mut buf = [0u8; message_len(NAME.len(), 64)];
//!     loop {
//!         let request = replier.wait_for_msg(&mut buf)?;
//!         if request.wants_us_to_reply() {
//!             let answer: &[u8] = if request.data() == b"temperature?" { b"21.5" } else { b"?" };
//!             replier.send_msg(&MessageRepr::reply_to(&request, answer)?)?;
//!         }
//!     }
//! }
//! # serve().unwrap();
//! ```
//!
//! Design points:
//!
//! * All `unsafe` code (the ioctl argument structures with pointers, and the
//!   zero-copy "pointy" send) is in one small private module, one safe
//!   function per ioctl; request codes are built with rustix's
//!   `ioctl::opcode` functions from `(b'k', nr, size_of::<*const u8>())`, so
//!   they are right on every architecture (spec §3.9).
//! * Errors keep the errno and the operation and say what they mean in KBUS
//!   terms ([`Error`]).
//! * Reading needs no heap: messages are read into the caller's buffer and
//!   viewed in place ([`Ksock::read_next_msg`]); size it with
//!   [`message_len`] or [`DEFAULT_MAX_MESSAGE_LEN`]. The `alloc` feature
//!   adds owned forms, `std` (default) adds `std::io::Error` conversion.
//! * The Ksock remembers an ALL_OR_WAIT send left pending and refuses to
//!   write until it is finished ([`ErrorKind::SendPending`]), and sends a
//!   name that ends a page from a NUL-terminated copy, so it is safe with
//!   the KBUS modules in the field as well as with this project's.
//! * Feature `tokio`: `kbus_rustix::tokio::AsyncKsock`, readiness-based
//!   async over tokio's `AsyncFd`.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(all(test, not(feature = "std")))]
extern crate std;

mod error;
mod ksock;
mod proc_bindings;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use error::{errno_name, ErrnoName, Error, ErrorKind, Op, Result, KBUS_ERRNOS};
#[cfg(feature = "alloc")]
pub use ksock::OwnedMessages;
pub use ksock::{Ksock, Messages, Mode, RawUpdate, Ready, Role, JUST_ASK};
pub use proc_bindings::{parse_bindings, Binding, BINDINGS_PATH};
#[cfg(feature = "alloc")]
pub use proc_bindings::{
    read_bindings, read_bindings_named, read_bindings_text, Binder, OwnedBinding,
};

pub use kbus_wire;
pub use kbus_wire::{
    entire_len, Flags, Kind, Layout, Layout32, Layout32Be, Layout32Le, Layout64, Layout64Be,
    Layout64Le, Message, MessageId, MessageRepr, Name, NativeLayout, OrigFrom, ReplierBindEvent,
};
pub use rustix::io::Errno;

/// The KBUS ioctl request codes for this target, built with rustix's
/// `ioctl::opcode` (spec §3.9), as `(name, code)` in number order: the
/// Python binding's `IOC_*` constants.
pub const IOCTLS: [(&str, rustix::ioctl::Opcode); 18] = sys::ALL;

/// The largest message a device delivers with the default maximum message
/// size (spec §2.5, §13 item 1: 409600 bytes, `ENTIRE()` with the native
/// header; [`Ksock::max_message_size`] gives a device's current value).
/// A buffer this large never gets [`ErrorKind::BufferTooSmall`] on such a
/// device; it is meant for the heap. For a stack buffer, size it from the
/// largest name and data you expect with [`message_len`]:
///
/// ```
/// const NAME: &str = "$.Sensors.Kitchen";
/// let mut buf = [0u8; kbus_rustix::message_len(NAME.len(), 64)];
/// # let _ = &mut buf;
/// ```
///
/// What KBUS itself generates fits in `message_len(32, 1016)`: synthetic
/// answers (`$.KBUS.Replier.GoneAway`, …, no data) and replier bind events
/// (`$.KBUS.ReplierBindEvent`, at most 12 + 1004 data bytes).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 409_600;

/// `ENTIRE(name_len, data_len)` in the native layout: the size of a message
/// with a name of `name_len` bytes and `data_len` bytes of data, as
/// `read_next_msg` needs it.
pub const fn message_len(name_len: usize, data_len: usize) -> usize {
    kbus_wire::entire_len::<kbus_wire::NativeLayout>(name_len, data_len)
}

/// The highest KBUS ioctl number (`KBUS_IOC_MAXNR`).
pub const IOC_MAXNR: u8 = sys::MAX_NR;
