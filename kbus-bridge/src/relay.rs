//! The transport-agnostic core: a sans-IO state machine that makes one
//! KBUS device and its links look like one bus (spec §11).
//!
//! Feed it [`Input`]s (messages read from the local Ksock, messages and
//! events from links, results of local sends) with [`Relay::handle`]; it
//! returns the [`Action`]s to carry out (send on the local Ksock, bind or
//! unbind a proxy Replier, send on a link). It never touches a device or a
//! socket, so every rule below is unit-tested with scripted sequences.
//!
//! # Rules
//!
//! Local messages (read from our Ksock, which listens to the proxied name
//! and to `$.KBUS.ReplierBindEvent`, with MSGONLYONCE on):
//!
//! * A Replier Bind Event whose binder is not us: remembered (for Stateful
//!   pass-through and for links that come up later) and sent to every link.
//!   Our own proxy bindings' events are ignored.
//! * A Request for us to answer (we are the proxy Replier): remember
//!   `id → requester` and send it to the link behind the best-matching proxy
//!   binding (KBUS's rank: exact, `%`, `*`; ties to the newest).
//! * A Reply (or KBUS's synthetic answer) addressed to us: it answers a
//!   Request we sent into the device for a link; send it back there.
//! * Anything else we sent ourselves: ignored (echo suppression).
//! * Other Requests and Replies (Listener copies of a local exchange): not
//!   forwarded. They cross only along the requester→Replier path.
//! * Announcements: sent to every link, except one whose peer network id is
//!   the message's (it came from there).
//!
//! Before anything goes out, a zero `id.network_id` becomes ours and a zero
//! `orig_from` becomes `{ours, from}`.
//!
//! Messages from a link:
//!
//! * Replier Bind Events: bind (first holder) or unbind (last holder) a
//!   proxy Replier locally; also passed on to our other links.
//! * Anything whose `id.network_id` is ours: dropped (it went round a loop).
//! * Replies: matched to the remembered requester (an `in_reply_to` with our
//!   network id is a local id), sent to it with a fresh local id; unmatched
//!   ones are dropped (the requester was answered already).
//! * Requests to answer: sent into the device (a Stateful Request to its
//!   `final_to` here, or to the current local Replier when it passes
//!   through); a failed SEND is answered on the link with
//!   `$.KBUS.RemoteError.<ERRNO>` (`GoneAway` / `NotSameKsock` for a
//!   Stateful Request whose Replier is gone / another Ksock).
//! * Announcements: sent into the device and on to our other links.
//!
//! Exactly one answer: a forwarded Request is remembered until its answer
//! comes back; if its link goes down, or the transport says no answer will
//! come ([`Input::RequestLost`]), the requester gets
//! `$.KBUS.Replier.GoneAway` from us instead, and a late answer is dropped.

use std::collections::{BTreeMap, HashMap};

use kbus_rustix::{errno_name, Errno};
use kbus_wire::name::{binding_matches, REPLIER_GONE_AWAY, REPLIER_NOT_SAME_KSOCK};
use kbus_wire::{Flags, MessageId, MessageRepr, Name, OrigFrom, ReplierBindEventRepr};

use crate::frame::BIND_EVENT_NAME;
use crate::{msg_from_repr, Msg};

/// A link's number, given by the driver.
pub type LinkId = u32;

/// Something that happened.
#[derive(Debug)]
pub enum Input {
    /// A message read from the local Ksock.
    Local(Msg),
    /// The local SEND of a message from [`Action::SendLocal`] failed.
    LocalSendFailed {
        /// The message.
        msg: Msg,
        /// Why.
        errno: Errno,
    },
    /// A link is up. `peer`: the peer's network id (a Limpet link), or
    /// `None` for a bus of many peers (Zenoh).
    LinkUp {
        /// The link.
        link: LinkId,
        /// The peer's network id, if there is one peer.
        peer: Option<u32>,
    },
    /// A message from a link.
    FromLink {
        /// The link.
        link: LinkId,
        /// The message (Replier Bind Events included).
        msg: Msg,
    },
    /// No answer will come over `link` for the Request `request` (its id as
    /// it was sent on the link): e.g. a Zenoh query ended without a reply.
    RequestLost {
        /// The link.
        link: LinkId,
        /// The Request's id as sent.
        request: MessageId,
    },
    /// A link is gone.
    LinkDown {
        /// The link.
        link: LinkId,
    },
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// SEND this on the local Ksock; report a failure with
    /// [`Input::LocalSendFailed`].
    SendLocal(Msg),
    /// Bind the local Ksock as Replier to this name (a proxy Replier).
    BindProxy(Vec<u8>),
    /// Unbind that proxy Replier.
    UnbindProxy(Vec<u8>),
    /// Send this on a link.
    ToLink {
        /// The link.
        link: LinkId,
        /// The message.
        msg: Msg,
    },
}

/// A Request we took as proxy Replier and sent on a link.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    requester: u32,
    link: LinkId,
}

/// A Request from a link that we sent into the device.
#[derive(Debug, Clone, Copy)]
struct Relayed {
    link: LinkId,
    /// Sent to its `final_to` here (a Stateful Request for a local Replier).
    stateful_local: bool,
}

/// A proxy Replier binding and the remote Repliers it stands for.
#[derive(Debug)]
struct Proxy {
    /// `(link, {network id, binder})`, oldest first.
    holders: Vec<(LinkId, OrigFrom)>,
    /// When it was bound (newer wins a tie, as in KBUS).
    seq: u64,
}

/// The core state machine of one bridge (one local Ksock, any number of
/// links). See the [module docs](self).
#[derive(Debug)]
pub struct Relay {
    net_id: u32,
    ksock_id: u32,
    links: BTreeMap<LinkId, Option<u32>>,
    outstanding: HashMap<MessageId, Outstanding>,
    relayed: HashMap<MessageId, Relayed>,
    proxies: BTreeMap<Vec<u8>, Proxy>,
    local_repliers: BTreeMap<Vec<u8>, u32>,
    serial: u32,
    seq: u64,
}

impl Relay {
    /// A relay for network id `net_id` (non-zero) whose local Ksock has id
    /// `ksock_id`.
    pub fn new(net_id: u32, ksock_id: u32) -> Relay {
        assert!(net_id != 0, "network ids are non-zero");
        Relay {
            net_id,
            ksock_id,
            links: BTreeMap::new(),
            outstanding: HashMap::new(),
            relayed: HashMap::new(),
            proxies: BTreeMap::new(),
            local_repliers: BTreeMap::new(),
            serial: 0,
            seq: 0,
        }
    }

    /// Our network id.
    pub fn net_id(&self) -> u32 {
        self.net_id
    }

    /// Requests taken as proxy Replier and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Names we hold proxy Replier bindings for.
    pub fn proxies(&self) -> impl Iterator<Item = &[u8]> {
        self.proxies.keys().map(|k| &k[..])
    }

    /// Handle one input; returns what to do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Local(msg) => self.local(msg, &mut out),
            Input::LocalSendFailed { msg, errno } => self.send_failed(msg, errno, &mut out),
            Input::LinkUp { link, peer } => {
                self.links.insert(link, peer);
                for (name, &binder) in &self.local_repliers {
                    let ev = bind_event(true, binder, name);
                    out.push(Action::ToLink {
                        link,
                        msg: self.stamp(ev),
                    });
                }
            }
            Input::FromLink { link, msg } => self.remote(link, msg, &mut out),
            Input::RequestLost { link, request } => {
                let key = self.local_key(request);
                if self.outstanding.get(&key).is_some_and(|o| o.link == link) {
                    let o = self.outstanding.remove(&key).expect("just seen");
                    out.push(Action::SendLocal(local_answer(
                        REPLIER_GONE_AWAY,
                        key,
                        o.requester,
                    )));
                }
            }
            Input::LinkDown { link } => self.link_down(link, &mut out),
        }
        out
    }

    fn local(&mut self, msg: Msg, out: &mut Vec<Action>) {
        let r = msg.view().repr();
        if r.name == BIND_EVENT_NAME && r.is_synthetic() && r.from == 0 {
            let Ok(ev) = msg.view().bind_event() else {
                return;
            };
            if ev.binder() == self.ksock_id {
                return; // our own proxy binding
            }
            let name = ev.name_bytes().to_vec();
            if ev.is_bind() {
                self.local_repliers.insert(name, ev.binder());
            } else if self.local_repliers.get(&name) == Some(&ev.binder()) {
                self.local_repliers.remove(&name);
            }
            let stamped = self.stamp(msg.clone());
            for &link in self.links.keys() {
                out.push(Action::ToLink {
                    link,
                    msg: stamped.clone(),
                });
            }
            return;
        }
        if r.is_request() && r.wants_us_to_reply() {
            match self.proxy_link(r.name.as_bytes()) {
                Some(link) => {
                    self.outstanding.insert(
                        r.id,
                        Outstanding {
                            requester: r.from,
                            link,
                        },
                    );
                    out.push(Action::ToLink {
                        link,
                        msg: self.stamp(msg.clone()),
                    });
                }
                // Our proxy binding went away meanwhile: answer at once.
                None => out.push(Action::SendLocal(local_answer(
                    REPLIER_GONE_AWAY,
                    r.id,
                    r.from,
                ))),
            }
            return;
        }
        if r.is_reply() && r.to == self.ksock_id {
            if let Some(rel) = self.relayed.remove(&r.in_reply_to) {
                if self.links.contains_key(&rel.link) {
                    out.push(Action::ToLink {
                        link: rel.link,
                        msg: self.stamp(msg.clone()),
                    });
                }
            }
            return;
        }
        if r.from == self.ksock_id || r.is_reply() || r.is_request() || r.is_synthetic() {
            return;
        }
        let origin = r.id.network_id;
        let stamped = self.stamp(msg.clone());
        for (&link, &peer) in &self.links {
            if origin == 0 || peer != Some(origin) {
                out.push(Action::ToLink {
                    link,
                    msg: stamped.clone(),
                });
            }
        }
    }

    fn remote(&mut self, link: LinkId, mut msg: Msg, out: &mut Vec<Action>) {
        if !self.links.contains_key(&link) {
            return;
        }
        if msg.name_bytes() == BIND_EVENT_NAME {
            self.remote_bind_event(link, &msg, out);
            return;
        }
        let id = msg.id();
        if id.network_id == self.net_id {
            return; // ours, back round a loop
        }
        if msg.is_reply() {
            let key = self.local_key(msg.in_reply_to());
            if let Some(o) = self.outstanding.remove(&key) {
                msg.set_id(MessageId::ZERO);
                msg.set_in_reply_to(key);
                msg.set_to(o.requester);
                out.push(Action::SendLocal(msg));
            }
            return;
        }
        if msg.is_request() && msg.wants_us_to_reply() {
            let mut stateful_local = false;
            if msg.is_stateful_request() {
                let final_to = msg.final_to();
                if final_to.network_id == self.net_id {
                    stateful_local = true;
                    msg.set_to(final_to.local_id);
                    msg.set_final_to(OrigFrom::ZERO);
                } else {
                    match self.local_repliers.get(msg.name_bytes()).copied() {
                        Some(replier) => msg.set_to(replier),
                        None => {
                            let answer = self.link_answer(&msg, REPLIER_GONE_AWAY.as_bytes());
                            out.push(Action::ToLink { link, msg: answer });
                            return;
                        }
                    }
                }
            }
            self.relayed.insert(
                id,
                Relayed {
                    link,
                    stateful_local,
                },
            );
            out.push(Action::SendLocal(msg));
            return;
        }
        if msg.is_request() {
            return; // only Requests to answer cross (see the module docs)
        }
        let origin = id.network_id;
        for (&other, &peer) in &self.links {
            if other != link && peer != Some(origin) {
                out.push(Action::ToLink {
                    link: other,
                    msg: msg.clone(),
                });
            }
        }
        out.push(Action::SendLocal(msg));
    }

    fn remote_bind_event(&mut self, link: LinkId, msg: &Msg, out: &mut Vec<Action>) {
        let Ok(ev) = msg.view().bind_event() else {
            return;
        };
        let holder = (link, OrigFrom::new(msg.id().network_id, ev.binder()));
        let name = ev.name_bytes().to_vec();
        if ev.is_bind() {
            match self.proxies.get_mut(&name) {
                Some(p) => {
                    if !p.holders.contains(&holder) {
                        p.holders.push(holder);
                    }
                }
                None => {
                    self.seq += 1;
                    self.proxies.insert(
                        name.clone(),
                        Proxy {
                            holders: vec![holder],
                            seq: self.seq,
                        },
                    );
                    out.push(Action::BindProxy(name));
                }
            }
        } else if let Some(p) = self.proxies.get_mut(&name) {
            p.holders.retain(|h| *h != holder);
            if p.holders.is_empty() {
                self.proxies.remove(&name);
                out.push(Action::UnbindProxy(name));
            }
        }
        for &other in self.links.keys() {
            if other != link {
                out.push(Action::ToLink {
                    link: other,
                    msg: msg.clone(),
                });
            }
        }
    }

    fn send_failed(&mut self, msg: Msg, errno: Errno, out: &mut Vec<Action>) {
        if !msg.is_request() {
            return; // an Announcement nobody could take, or a late Reply
        }
        let Some(rel) = self.relayed.remove(&msg.id()) else {
            return;
        };
        let name = if rel.stateful_local && errno == Errno::ADDRNOTAVAIL {
            REPLIER_GONE_AWAY.as_bytes().to_vec()
        } else if rel.stateful_local && errno == Errno::PIPE {
            REPLIER_NOT_SAME_KSOCK.as_bytes().to_vec()
        } else {
            remote_error_name(errno)
        };
        if self.links.contains_key(&rel.link) {
            let answer = self.link_answer(&msg, &name);
            out.push(Action::ToLink {
                link: rel.link,
                msg: answer,
            });
        }
    }

    fn link_down(&mut self, link: LinkId, out: &mut Vec<Action>) {
        if self.links.remove(&link).is_none() {
            return;
        }
        let mut gone: Vec<_> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.link == link)
            .map(|(&id, o)| (id, o.requester))
            .collect();
        gone.sort();
        for (id, requester) in gone {
            self.outstanding.remove(&id);
            out.push(Action::SendLocal(local_answer(
                REPLIER_GONE_AWAY,
                id,
                requester,
            )));
        }
        self.relayed.retain(|_, r| r.link != link);
        let mut emptied = Vec::new();
        for (name, p) in &mut self.proxies {
            p.holders.retain(|h| h.0 != link);
            if p.holders.is_empty() {
                emptied.push(name.clone());
            }
        }
        for name in emptied {
            self.proxies.remove(&name);
            // Tell our other links that these Repliers are gone.
            let ev = bind_event(false, self.ksock_id, &name);
            for &other in self.links.keys() {
                out.push(Action::ToLink {
                    link: other,
                    msg: self.stamp(ev.clone()),
                });
            }
            out.push(Action::UnbindProxy(name));
        }
    }

    /// The link of the proxy binding KBUS chose for a Request named `name`.
    fn proxy_link(&self, name: &[u8]) -> Option<LinkId> {
        let rank = |b: &[u8]| match b.last() {
            Some(b'*') => 1,
            Some(b'%') => 2,
            _ => 3,
        };
        self.proxies
            .iter()
            .filter(|(b, _)| binding_matches(b, name))
            .max_by_key(|(b, p)| (rank(b), p.seq))
            .and_then(|(_, p)| {
                p.holders
                    .iter()
                    .map(|h| h.0)
                    .find(|l| self.links.contains_key(l))
            })
    }

    /// An id on a link with our network id is a local id (`{0, serial}`).
    fn local_key(&self, id: MessageId) -> MessageId {
        if id.network_id == self.net_id {
            MessageId::new(0, id.serial_num)
        } else {
            id
        }
    }

    /// Our network id on a local id and a local `orig_from`.
    fn stamp(&self, mut msg: Msg) -> Msg {
        let id = msg.id();
        if id.network_id == 0 {
            msg.set_id(MessageId::new(self.net_id, id.serial_num));
        }
        if msg.orig_from().network_id == 0 {
            let from = msg.from();
            msg.set_orig_from(OrigFrom::new(self.net_id, from));
        }
        msg
    }

    /// An answer of ours to a Request `req` that came from a link.
    fn link_answer(&mut self, req: &Msg, name: &[u8]) -> Msg {
        self.serial = self.serial.wrapping_add(1).max(1);
        let repr = MessageRepr {
            id: MessageId::new(self.net_id, self.serial),
            in_reply_to: req.id(),
            to: req.from(),
            from: self.ksock_id,
            orig_from: OrigFrom::new(self.net_id, self.ksock_id),
            final_to: OrigFrom::ZERO,
            extra: 0,
            flags: Flags::SYNTHETIC,
            name: Name::from_bytes(name),
            data: b"",
        };
        msg_from_repr(&repr)
    }
}

/// A synthetic-style answer `name` to the local Request `id` of `requester`
/// (KBUS clears SYNTHETIC on user sends; the name says what happened).
fn local_answer(name: &str, id: MessageId, requester: u32) -> Msg {
    let mut repr = MessageRepr::announcement(name, b"");
    repr.in_reply_to = id;
    repr.to = requester;
    msg_from_repr(&repr)
}

/// `$.KBUS.RemoteError.<ERRNO>` (the symbolic name; the number for errnos
/// without one).
pub fn remote_error_name(errno: Errno) -> Vec<u8> {
    let sym = errno_name(errno).to_string();
    let suffix = if sym.starts_with('E') && sym.bytes().all(|b| b.is_ascii_alphanumeric()) {
        sym
    } else {
        errno.raw_os_error().to_string()
    };
    format!("$.KBUS.RemoteError.{suffix}").into_bytes()
}

/// A Replier Bind Event message as KBUS makes them (flags 0x204, from 0).
pub fn bind_event(is_bind: bool, binder: u32, name: &[u8]) -> Msg {
    let name = String::from_utf8_lossy(name);
    let ev = ReplierBindEventRepr {
        is_bind,
        binder,
        name: &name,
    };
    let mut data = vec![0u8; ev.buffer_len()];
    let _ = ev.emit(&mut data);
    let mut repr = MessageRepr::announcement(kbus_wire::name::REPLIER_BIND_EVENT, &data);
    repr.flags = Flags::SYNTHETIC | Flags::ALL_OR_FAIL;
    msg_from_repr(&repr)
}

#[cfg(test)]
mod tests;
