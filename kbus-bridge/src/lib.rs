//! Join KBUS devices across processes and machines (spec §11, Limpets).
//!
//! * [`relay`]: the transport-agnostic core, a sans-IO state machine
//!   (events in, actions out): network ids and `orig_from`, proxy Repliers
//!   driven by Replier Bind Events, requesters remembered per forwarded
//!   Request, Stateful Requests and `final_to`, loop and echo suppression,
//!   and the synthetic answers that keep "every Request gets exactly one
//!   answer" true across machines.
//! * [`frame`]: the Limpet wire format (16 network-order words, padded
//!   name and data, final guard), also the payload of every Zenoh message.
//! * [`keys`]: KBUS names as Zenoh key expressions.
//! * [`limpet`]: the §11 transport over TCP or a Unix socket.
//! * `zenoh_link`: the Zenoh transport (puts, queryables and queries,
//!   liveliness tokens), with the default feature `zenoh`.
//! * `bench`: the plain-Zenoh baseline of the bridge bench (feature
//!   `zenoh`).
//! * [`bridge`]: the tokio driver that connects a local Ksock, the core and
//!   any number of links.
//!
//! See `kbus-bridge/README.md` for the commands and what is guaranteed.

#![warn(missing_docs)]

#[cfg(feature = "zenoh")]
pub mod bench;
pub mod bridge;
pub mod frame;
pub mod keys;
pub mod limpet;
pub mod relay;
#[cfg(feature = "zenoh")]
pub mod zenoh_link;

use kbus_wire::{Message, MessageRepr};

/// An owned message in the native layout (the entire form KBUS delivers).
pub type Msg = Message<Vec<u8>>;

/// The entire native-layout bytes of `repr` as an owned message. The name
/// is not validated (a message read from KBUS may carry any name the
/// module accepted).
pub fn msg_from_repr(repr: &MessageRepr<'_>) -> Msg {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit_unvalidated(&mut buf)
        .expect("buffer sized by buffer_len");
    Message::new_unchecked(buf)
}
