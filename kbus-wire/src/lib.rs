//! Zero-copy, `no_std` view and emitter for KBUS messages (the `/dev/kbusN`
//! message bus ABI), in the style of smoltcp's `wire` module.
//!
//! ```
//! use kbus_wire::{Flags, Kind, Message, MessageId, MessageRepr};
//!
//! // Emit a Request into a stack buffer (no allocation).
//! let request = MessageRepr::request("$.Sensors.Kitchen", b"temperature?");
//! let mut buf = [0u8; 256];
//! let len = request.emit(&mut buf)?;
//! assert_eq!(len, request.buffer_len());
//!
//! // What the Replier reads back: KBUS has set the id, the sender, and the
//! // WANT_YOU_TO_REPLY flag on the Replier's copy.
//! let mut msg = Message::new_checked(&mut buf[..len])?;
//! msg.set_id(MessageId::new(0, 7));
//! msg.set_from(3);
//! msg.set_flags(msg.flags() | Flags::WANT_YOU_TO_REPLY);
//! let msg = Message::new_checked(msg.into_inner())?;
//! assert_eq!(msg.kind(), Kind::Request);
//! assert_eq!(msg.name(), "$.Sensors.Kitchen");
//! assert_eq!(msg.data(), b"temperature?");
//! assert!(msg.wants_us_to_reply());
//!
//! // Build its Reply: same name, in_reply_to = its id, to = its sender.
//! let reply = MessageRepr::reply_to(&msg, b"21.5")?;
//! assert_eq!(reply.kind(), Kind::Reply);
//! assert_eq!((reply.in_reply_to, reply.to), (MessageId::new(0, 7), 3));
//! assert_eq!(
//!     reply.to_string(),
//!     "<Reply '$.Sensors.Kitchen', to=3, in_reply_to=[0:7], data=b\"21.5\">"
//! );
//! # Ok::<(), kbus_wire::Error>(())
//! ```
//!
//! # What is here
//!
//! * [`Message`]: a checked view over the bytes of an *entire* message, with
//!   an accessor for every header field, [`Message::name`] and
//!   [`Message::data`], setters on mutable buffers, and the Python binding's
//!   predicates. After [`Message::new_checked`] no accessor can panic (in
//!   fact none can panic at all: out-of-range reads give 0 or `[]`).
//! * [`MessageRepr`]: the fields with borrowed name and data; builds
//!   Announcements, Requests, Replies ([`MessageRepr::reply_to`]) and
//!   Stateful Requests; [`MessageRepr::emit`] writes the entire form into any
//!   `&mut [u8]`; [`MessageRepr::pointy_header`] gives a native *pointy*
//!   header whose pointers refer to the borrowed name and data, for
//!   zero-copy sends.
//! * Both header layouts side by side ([`Layout64`], 88 bytes; [`Layout32`],
//!   72 bytes; [`NativeLayout`] the default): a 64-bit tool can read and
//!   write 32-bit messages and back. Each also comes in both byte orders
//!   ([`Layout64Le`], [`Layout64Be`], [`Layout32Le`], [`Layout32Be`]): see
//!   [Byte order](#byte-order).
//! * [`Flags`], [`MessageId`], [`OrigFrom`], [`Kind`],
//!   [`name::SyntheticName`], [`ReplierBindEvent`].
//! * [`name`]: validation (§4.1, typed [`NameError`]) and binding matching
//!   (§4.2) exactly as the kernel does them.
//!
//! # Names
//!
//! The kernel accepts ISO-8859-1 letter bytes (0xC0–0xFF but 0xD7, 0xF7) in
//! names. Such a name is never valid UTF-8 (UTF-8 needs the bytes 0x80–0xBF,
//! which names may not contain), so names are a bytes-level [`Name`]: it
//! compares with `&str`, prints Latin-1 decoded, and gives `&str` through
//! [`Name::to_str`] when the name is ASCII. [`Message::new_checked`] checks
//! structure only (guards, lengths, pointers), so a Latin-1 name is a
//! well-formed message, and [`MessageRepr`] carries it (and `extra`): parse →
//! emit is byte-exact for every message the kernel can deliver.
//!
//! # Layouts
//!
//! Constructors and emitters use the native layout without annotations
//! (`Message::new_checked(buf)`, `repr.emit(&mut buf)`); the `_in` forms
//! take another one: `Message::<_, Layout32>::new_checked_in(buf)`,
//! `repr.emit_in::<Layout32>(&mut buf)`.
//!
//! # Byte order
//!
//! KBUS converts nothing on the kernel interface: every integer (and
//! pointer) of a message is in the byte order of the machine running the
//! module (spec §3.1). [`Layout64`] and [`Layout32`] are in this machine's
//! order ([`NativeEndian`]), which is what a program talking to its own
//! `/dev/kbusN` needs. To read or write the messages of a machine with the
//! other order (a dump from a big-endian set-top box on a little-endian
//! workstation, or the reverse), name the order: [`Layout64Le`],
//! [`Layout64Be`], [`Layout32Le`], [`Layout32Be`]. On a little-endian machine
//! `Layout64` *is* `Layout64Le` (a type alias), on a big-endian one it is
//! `Layout64Be`. Only the integers differ between the orders: names, data
//! and padding are the same bytes.
//!
//! ```
//! use kbus_wire::{Layout32Be, Layout32Le, Message, MessageRepr};
//!
//! // A big-endian 32-bit box's message, re-emitted for a little-endian one.
//! let mut be = [0u8; 128];
//! let n = MessageRepr::announcement("$.Box.Ready", b"1").emit_in::<Layout32Be>(&mut be)?;
//! let repr = MessageRepr::parse(&Message::<_, Layout32Be>::new_checked_in(&be[..n])?)?;
//! let mut le = [0u8; 128];
//! assert_eq!(repr.emit_in::<Layout32Le>(&mut le)?, n);
//! assert_eq!(be[72..n - 4], le[72..n - 4]); // name and data: the same bytes
//! assert_eq!(be[52..56], [0, 0, 0, 11]); // name_len, big-endian
//! assert_eq!(le[52..56], [11, 0, 0, 0]); // name_len, little-endian
//! # Ok::<(), kbus_wire::Error>(())
//! ```
//!
//! The data of a `$.KBUS.ReplierBindEvent` is three words in the same order
//! as its header: [`Message::bind_event`] reads it in the layout's order,
//! [`ReplierBindEvent::new_checked_in`] and [`ReplierBindEventRepr::emit_in`]
//! take a [`ByteOrder`]. [`PointyHeader`] is native only: its pointers are
//! addresses in this process, meaningful only to this machine's kernel.
//!
//! # Features
//!
//! * `alloc`: [`MessageRepr::to_vec`].
//! * `std` (default): implies `alloc`.
//! * `defmt`: `defmt::Format` for the public types.
//!
//! Without default features the crate is `no_std` and allocation-free.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod bind_event;
mod byte_order;
mod error;
mod field;
mod flags;
mod id;
mod kind;
pub mod layout;
mod message;
pub mod name;
mod repr;

pub use bind_event::{ReplierBindEvent, ReplierBindEventRepr};
pub use byte_order::{BigEndian, ByteOrder, LittleEndian, NativeEndian};
pub use error::Error;
pub use flags::Flags;
pub use id::{MessageId, OrigFrom};
pub use kind::{Kind, MessageFields};
pub use layout::{
    entire_len, padded_data_len, padded_name_len, Header32, Header64, Layout, Layout32, Layout32Be,
    Layout32Le, Layout64, Layout64Be, Layout64Le, NativeHeader, NativeLayout,
};
pub use message::Message;
pub use name::{Name, NameError, SyntheticName, MAX_NAME_LEN, MIN_NAME_LEN};
pub use repr::{MessageRepr, PointyHeader};

/// `KBUS_MSG_START_GUARD`: first word of every message header.
pub const START_GUARD: u32 = 0x7375_624B;
/// `KBUS_MSG_END_GUARD`: last word of the header and of an entire message.
pub const END_GUARD: u32 = 0x4B62_7573;

/// The size of the native header (`H`: 88 on 64-bit, 72 on 32-bit).
pub const NATIVE_HEADER_LEN: usize = <NativeLayout as Layout>::HEADER_LEN;
