//! The KBUS Ksock API over [rustix] — no libc, `no_std` capable.
//!
//! KBUS is a kernel-mediated message bus: processes open `/dev/kbusN`,
//! [bind](Ksock::bind) to message names as Listener or Replier, and exchange
//! Announcements, Requests and Replies through the module. This crate is the
//! user-space side, shaped after the Python `Ksock` of the original (spec
//! §9.1) in Rust style. Messages themselves (views, builders, names) come
//! from [`kbus_wire`].
//!
//! ```no_run
//! use kbus_rustix::{Ksock, Mode, Role};
//! use kbus_wire::MessageRepr;
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
//! Design points:
//!
//! * All `unsafe` code (the ioctl argument structures with pointers, and the
//!   zero-copy "pointy" send) is in one small private module; request codes
//!   are built with rustix's `ioctl::opcode` functions from
//!   `(b'k', nr, size_of::<*const u8>())`, so they are right on every
//!   architecture (spec §3.9).
//! * Errors keep the errno and the operation and say what they mean in KBUS
//!   terms ([`Error`]).
//! * Reading needs no heap: messages are read into the caller's buffer and
//!   viewed in place ([`Ksock::read_next_msg`]). The `alloc` feature adds
//!   owned forms, `std` (default) adds `std::io::Error` conversion.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(all(test, not(feature = "std")))]
extern crate std;

mod bindings;
mod error;
mod ksock;
mod sys;

pub use bindings::{parse_bindings, Binding, BINDINGS_PATH};
#[cfg(feature = "alloc")]
pub use bindings::{read_bindings, read_bindings_named, read_bindings_text, Binder, OwnedBinding};
pub use error::{errno_name, ErrnoName, Error, ErrorKind, Op, Result};
#[cfg(feature = "alloc")]
pub use ksock::OwnedMessages;
pub use ksock::{Ksock, Messages, Mode, RawUpdate, Ready, Role, JUST_ASK};

pub use kbus_wire;
pub use rustix::io::Errno;

/// The KBUS ioctl request codes for this target, built with rustix's
/// `ioctl::opcode` (spec §3.9), as `(name, code)` in number order: the
/// Python binding's `IOC_*` constants.
pub const IOCTLS: [(&str, rustix::ioctl::Opcode); 18] = sys::ALL;

/// The highest KBUS ioctl number (`KBUS_IOC_MAXNR`).
pub const IOC_MAXNR: u8 = sys::MAX_NR;
