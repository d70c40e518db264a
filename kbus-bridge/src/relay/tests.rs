//! Scripted sequences: inputs in, the exact actions out; and two relays
//! joined by an in-memory transport, with the devices played by the test.

use super::*;
use kbus_wire::name::REPLIER_BIND_EVENT;

const NET_A: u32 = 1;
const NET_B: u32 = 2;
/// The bridges' own Ksock ids on their devices.
const KSOCK_A: u32 = 10;
const KSOCK_B: u32 = 20;

fn msg(f: impl FnOnce(&mut MessageRepr<'static>)) -> Msg {
    let mut r = MessageRepr::announcement("$.Sensors.Kitchen", b"21.5");
    f(&mut r);
    msg_from_repr(&r)
}

fn request(name: &'static str, id: MessageId, from: u32, for_us: bool) -> Msg {
    msg(|r| {
        r.name = Name::new(name);
        r.id = id;
        r.from = from;
        r.flags = Flags::WANT_A_REPLY;
        if for_us {
            r.flags |= Flags::WANT_YOU_TO_REPLY;
        }
    })
}

fn reply(name: &'static str, id: MessageId, in_reply_to: MessageId, from: u32, to: u32) -> Msg {
    msg(|r| {
        r.name = Name::new(name);
        r.id = id;
        r.in_reply_to = in_reply_to;
        r.from = from;
        r.to = to;
        r.data = b"answer";
    })
}

/// A bind event as KBUS delivers it locally (id and from as the module
/// sets them).
fn local_bind_event(is_bind: bool, binder: u32, name: &str, serial: u32) -> Msg {
    let mut m = bind_event(is_bind, binder, name.as_bytes());
    m.set_id(MessageId::new(0, serial));
    m
}

/// A bind event as it arrives from a peer with network id `net`.
fn remote_bind_event(is_bind: bool, binder: u32, name: &str, net: u32) -> Msg {
    let mut m = bind_event(is_bind, binder, name.as_bytes());
    m.set_id(MessageId::new(net, 3));
    m.set_orig_from(OrigFrom::new(net, 0));
    m
}

fn id(n: u32, s: u32) -> MessageId {
    MessageId::new(n, s)
}

fn relay_with_link(peer: Option<u32>) -> Relay {
    let mut r = Relay::new(NET_A, KSOCK_A);
    assert_eq!(r.handle(Input::LinkUp { link: 0, peer }), vec![]);
    r
}

fn one_to_link(actions: Vec<Action>) -> (LinkId, Msg) {
    match <[Action; 1]>::try_from(actions) {
        Ok([Action::ToLink { link, msg }]) => (link, msg),
        Ok([other]) => panic!("expected one ToLink, got {other:?}"),
        Err(v) => panic!("expected one action, got {v:?}"),
    }
}

fn one_local(actions: Vec<Action>) -> Msg {
    match <[Action; 1]>::try_from(actions) {
        Ok([Action::SendLocal(m)]) => m,
        Ok([other]) => panic!("expected one SendLocal, got {other:?}"),
        Err(v) => panic!("expected one action, got {v:?}"),
    }
}

#[test]
fn announcements_leave_with_our_network_id_and_orig_from() {
    let mut r = relay_with_link(Some(NET_B));
    let m = msg(|r| {
        r.id = id(0, 5);
        r.from = 3;
    });
    let (link, out) = one_to_link(r.handle(Input::Local(m.clone())));
    assert_eq!(link, 0);
    assert_eq!(out.id(), id(NET_A, 5));
    assert_eq!(out.orig_from(), OrigFrom::new(NET_A, 3));
    assert_eq!((out.name(), out.data()), (m.name(), m.data()));
    assert_eq!(out.flags(), m.flags());
    // An orig_from already set (it crossed another bridge) is kept.
    let m = msg(|r| {
        r.id = id(7, 5);
        r.from = 3;
        r.orig_from = OrigFrom::new(7, 1);
    });
    let (_, out) = one_to_link(r.handle(Input::Local(m)));
    assert_eq!((out.id(), out.orig_from()), (id(7, 5), OrigFrom::new(7, 1)));
}

#[test]
fn echoes_and_loops_are_suppressed() {
    let mut r = relay_with_link(Some(NET_B));
    r.handle(Input::LinkUp {
        link: 1,
        peer: Some(3),
    });
    // Our own relays read back as Listener copies.
    let ours = msg(|r| {
        r.id = id(NET_B, 9);
        r.from = KSOCK_A;
    });
    assert_eq!(r.handle(Input::Local(ours)), vec![]);
    // From peer B (another process put it on our device): not back to B.
    let from_b = msg(|r| {
        r.id = id(NET_B, 9);
        r.from = 4;
    });
    let (link, _) = one_to_link(r.handle(Input::Local(from_b)));
    assert_eq!(link, 1);
    // A message of ours that went round a loop.
    let looped = msg(|r| r.id = id(NET_A, 5));
    assert_eq!(
        r.handle(Input::FromLink {
            link: 0,
            msg: looped
        }),
        vec![]
    );
    // From a link: into the device and on to the other links, except to
    // the one it came from.
    let m = msg(|r| r.id = id(NET_B, 6));
    let actions = r.handle(Input::FromLink {
        link: 0,
        msg: m.clone(),
    });
    assert_eq!(
        actions,
        vec![
            Action::ToLink {
                link: 1,
                msg: m.clone()
            },
            Action::SendLocal(m)
        ]
    );
}

#[test]
fn local_exchanges_stay_local() {
    let mut r = relay_with_link(Some(NET_B));
    // A Listener copy of a local Request, and of its Reply.
    assert_eq!(
        r.handle(Input::Local(request("$.X", id(0, 1), 3, false))),
        vec![]
    );
    assert_eq!(
        r.handle(Input::Local(reply("$.X", id(0, 2), id(0, 1), 4, 3))),
        vec![]
    );
    // Other synthetic messages.
    let lost = msg(|r| {
        r.name = Name::new("$.KBUS.UnbindEventsLost");
        r.flags = Flags::SYNTHETIC;
    });
    assert_eq!(r.handle(Input::Local(lost)), vec![]);
}

#[test]
fn local_replier_bindings_are_announced_and_remembered() {
    let mut r = Relay::new(NET_A, KSOCK_A);
    // Before any link: remembered only.
    assert_eq!(
        r.handle(Input::Local(local_bind_event(true, 5, "$.X", 1))),
        vec![]
    );
    // Our own proxy bindings are not announced.
    assert_eq!(
        r.handle(Input::Local(local_bind_event(true, KSOCK_A, "$.Y", 2))),
        vec![]
    );
    // A link coming up hears of the existing ones.
    let (_, ev) = one_to_link(r.handle(Input::LinkUp {
        link: 0,
        peer: Some(NET_B),
    }));
    let e = ev.view().bind_event().unwrap();
    assert!(e.is_bind());
    assert_eq!((e.binder(), e.name()), (5, "$.X"));
    assert_eq!(ev.id().network_id, NET_A);
    // Later ones go straight out, as KBUS made them (stamped).
    let unbind = local_bind_event(false, 5, "$.X", 3);
    let (_, ev) = one_to_link(r.handle(Input::Local(unbind.clone())));
    assert_eq!(ev.data(), unbind.data());
    assert_eq!(ev.flags().bits(), 0x204);
    assert_eq!(ev.id(), id(NET_A, 3));
    // A user message that merely has the name is not a bind event.
    let fake = msg(|r| {
        r.name = Name::new(REPLIER_BIND_EVENT);
        r.from = 3;
    });
    let (_, out) = one_to_link(r.handle(Input::Local(fake)));
    assert_eq!(out.name(), REPLIER_BIND_EVENT);
    assert!(r.local_repliers.is_empty());
}

#[test]
fn proxy_bindings_follow_remote_bind_events() {
    let mut r = relay_with_link(None);
    r.handle(Input::LinkUp {
        link: 1,
        peer: Some(3),
    });
    let bind_b = remote_bind_event(true, 5, "$.X", NET_B);
    let actions = r.handle(Input::FromLink {
        link: 0,
        msg: bind_b.clone(),
    });
    assert_eq!(
        actions,
        vec![
            Action::BindProxy(b"$.X".to_vec()),
            Action::ToLink {
                link: 1,
                msg: bind_b.clone()
            }
        ]
    );
    // A second remote Replier for the same string (another bridge on the
    // bus): no second binding; the proxy stays until both are gone.
    let bind_c = remote_bind_event(true, 5, "$.X", 7);
    assert_eq!(
        r.handle(Input::FromLink {
            link: 0,
            msg: bind_c
        }),
        vec![Action::ToLink {
            link: 1,
            msg: remote_bind_event(true, 5, "$.X", 7)
        }]
    );
    let unbind_b = remote_bind_event(false, 5, "$.X", NET_B);
    assert_eq!(
        r.handle(Input::FromLink {
            link: 0,
            msg: unbind_b
        })
        .len(),
        1
    );
    assert_eq!(r.proxies().count(), 1);
    let unbind_c = remote_bind_event(false, 5, "$.X", 7);
    let actions = r.handle(Input::FromLink {
        link: 0,
        msg: unbind_c,
    });
    assert_eq!(actions[0], Action::UnbindProxy(b"$.X".to_vec()));
    assert_eq!(r.proxies().count(), 0);
}

#[test]
fn a_request_crosses_and_gets_exactly_one_answer() {
    let mut r = relay_with_link(Some(NET_B));
    r.handle(Input::FromLink {
        link: 0,
        msg: remote_bind_event(true, 5, "$.X", NET_B),
    });
    // Requester 3 on our device; we are the proxy Replier.
    let req = request("$.X", id(0, 7), 3, true);
    let (link, out) = one_to_link(r.handle(Input::Local(req)));
    assert_eq!(link, 0);
    assert_eq!(out.id(), id(NET_A, 7));
    assert_eq!(out.orig_from(), OrigFrom::new(NET_A, 3));
    assert!(out.wants_us_to_reply());
    assert_eq!(r.outstanding(), 1);
    // The far bridge relays the Replier's answer.
    let mut answer = reply("$.X", id(NET_B, 30), id(NET_A, 7), KSOCK_B, KSOCK_B);
    answer.set_orig_from(OrigFrom::new(NET_B, 5));
    let back = one_local(r.handle(Input::FromLink {
        link: 0,
        msg: answer.clone(),
    }));
    assert_eq!(back.to(), 3, "to the requester");
    assert_eq!(back.in_reply_to(), id(0, 7), "its local id");
    assert_eq!(back.id(), MessageId::ZERO, "KBUS gives it a fresh id");
    assert_eq!(
        back.orig_from(),
        OrigFrom::new(NET_B, 5),
        "for Stateful Requests"
    );
    assert_eq!(back.data(), b"answer");
    assert_eq!(r.outstanding(), 0);
    // A second answer (a duplicate, or one after a synthetic one): dropped.
    assert_eq!(
        r.handle(Input::FromLink {
            link: 0,
            msg: answer
        }),
        vec![]
    );
}

#[test]
fn the_best_matching_proxy_binding_picks_the_link() {
    let mut r = relay_with_link(Some(NET_B));
    r.handle(Input::LinkUp {
        link: 1,
        peer: Some(3),
    });
    r.handle(Input::FromLink {
        link: 0,
        msg: remote_bind_event(true, 5, "$.S.*", NET_B),
    });
    r.handle(Input::FromLink {
        link: 1,
        msg: remote_bind_event(true, 6, "$.S.%", 3),
    });
    r.handle(Input::FromLink {
        link: 0,
        msg: remote_bind_event(true, 7, "$.S.K.T", NET_B),
    });
    for (name, want) in [("$.S.K.T", 0), ("$.S.K", 1), ("$.S.K.H", 0)] {
        let (link, _) = one_to_link(r.handle(Input::Local(request(name, id(0, 1), 3, true))));
        assert_eq!(link, want, "{name}");
    }
}

#[test]
fn a_request_whose_proxy_vanished_is_answered_at_once() {
    let mut r = relay_with_link(Some(NET_B));
    let m = one_local(r.handle(Input::Local(request("$.X", id(0, 7), 3, true))));
    assert_eq!(m.name(), REPLIER_GONE_AWAY);
    assert_eq!((m.to(), m.in_reply_to()), (3, id(0, 7)));
}

#[test]
fn link_down_answers_every_outstanding_request_once() {
    let mut r = relay_with_link(Some(NET_B));
    r.handle(Input::FromLink {
        link: 0,
        msg: remote_bind_event(true, 5, "$.X", NET_B),
    });
    r.handle(Input::Local(request("$.X", id(0, 7), 3, true)));
    r.handle(Input::Local(request("$.X", id(0, 8), 4, true)));
    let actions = r.handle(Input::LinkDown { link: 0 });
    let mut answered = Vec::new();
    let mut unbound = false;
    for a in actions {
        match a {
            Action::SendLocal(m) => {
                assert_eq!(m.name(), REPLIER_GONE_AWAY);
                answered.push((m.to(), m.in_reply_to()));
            }
            Action::UnbindProxy(n) => unbound = n == b"$.X",
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, vec![(3, id(0, 7)), (4, id(0, 8))]);
    assert!(unbound, "the proxy goes with its link");
    // A late answer after the link is back: dropped.
    r.handle(Input::LinkUp {
        link: 0,
        peer: Some(NET_B),
    });
    let late = reply("$.X", id(NET_B, 1), id(NET_A, 7), KSOCK_B, KSOCK_B);
    assert_eq!(r.handle(Input::FromLink { link: 0, msg: late }), vec![]);
}

#[test]
fn a_lost_query_is_answered_gone_away() {
    let mut r = relay_with_link(None);
    r.handle(Input::FromLink {
        link: 0,
        msg: remote_bind_event(true, 5, "$.X", NET_B),
    });
    r.handle(Input::Local(request("$.X", id(0, 7), 3, true)));
    // Another link's loss does not count.
    assert_eq!(
        r.handle(Input::RequestLost {
            link: 1,
            request: id(NET_A, 7)
        }),
        vec![]
    );
    let m = one_local(r.handle(Input::RequestLost {
        link: 0,
        request: id(NET_A, 7),
    }));
    assert_eq!(
        (m.name(), m.to(), m.in_reply_to()),
        (Name::new(REPLIER_GONE_AWAY), 3, id(0, 7))
    );
    assert_eq!(
        r.handle(Input::RequestLost {
            link: 0,
            request: id(NET_A, 7)
        }),
        vec![]
    );
}

#[test]
fn requests_from_a_link_are_answered_on_it() {
    let mut r = relay_with_link(Some(NET_B));
    let req = request("$.X", id(NET_B, 7), KSOCK_B, true);
    assert_eq!(
        r.handle(Input::FromLink {
            link: 0,
            msg: req.clone()
        }),
        vec![Action::SendLocal(req)]
    );
    // KBUS routes the Replier's Reply to us (the requester on this device).
    let answer = reply("$.X", id(0, 40), id(NET_B, 7), 5, KSOCK_A);
    let (link, out) = one_to_link(r.handle(Input::Local(answer)));
    assert_eq!(link, 0);
    assert_eq!(out.id(), id(NET_A, 40));
    assert_eq!(out.in_reply_to(), id(NET_B, 7));
    assert_eq!(out.orig_from(), OrigFrom::new(NET_A, 5), "the real Replier");
    // KBUS's synthetic answers (the Replier died) go the same way.
    let req = request("$.X", id(NET_B, 8), KSOCK_B, true);
    r.handle(Input::FromLink { link: 0, msg: req });
    let gone = msg(|r| {
        r.name = Name::new(REPLIER_GONE_AWAY);
        r.id = id(0, 41);
        r.in_reply_to = id(NET_B, 8);
        r.from = 5;
        r.to = KSOCK_A;
        r.flags = Flags::SYNTHETIC;
    });
    let (_, out) = one_to_link(r.handle(Input::Local(gone)));
    assert_eq!(
        (out.name(), out.in_reply_to()),
        (Name::new(REPLIER_GONE_AWAY), id(NET_B, 8))
    );
}

#[test]
fn failed_local_sends_are_answered_remote_error() {
    let mut r = relay_with_link(Some(NET_B));
    let req = request("$.X", id(NET_B, 7), KSOCK_B, true);
    r.handle(Input::FromLink {
        link: 0,
        msg: req.clone(),
    });
    let (_, out) = one_to_link(r.handle(Input::LocalSendFailed {
        msg: req,
        errno: Errno::ADDRNOTAVAIL,
    }));
    assert_eq!(out.name(), "$.KBUS.RemoteError.EADDRNOTAVAIL");
    assert_eq!(out.in_reply_to(), id(NET_B, 7));
    assert_eq!(out.to(), KSOCK_B);
    assert_eq!(out.id().network_id, NET_A);
    assert!(out.is_reply());
    // Failed Announcements and Replies are not answered.
    let ann = msg(|r| r.id = id(NET_B, 9));
    assert_eq!(
        r.handle(Input::LocalSendFailed {
            msg: ann,
            errno: Errno::BUSY
        }),
        vec![]
    );
    assert_eq!(remote_error_name(Errno::PIPE), b"$.KBUS.RemoteError.EPIPE");
}

#[test]
fn stateful_requests_go_to_final_to() {
    let mut r = relay_with_link(Some(NET_B));
    // For a Replier on our device: to = final_to's Ksock, final_to cleared.
    let mut req = request("$.X", id(NET_B, 7), KSOCK_B, true);
    req.set_to(KSOCK_B);
    req.set_final_to(OrigFrom::new(NET_A, 5));
    let sent = one_local(r.handle(Input::FromLink { link: 0, msg: req }));
    assert_eq!((sent.to(), sent.final_to()), (5, OrigFrom::ZERO));
    // That Replier is another Ksock now: NotSameKsock; gone: GoneAway.
    let (_, out) = one_to_link(r.handle(Input::LocalSendFailed {
        msg: sent.clone(),
        errno: Errno::PIPE,
    }));
    assert_eq!(out.name(), REPLIER_NOT_SAME_KSOCK);
    r.handle(Input::FromLink {
        link: 0,
        msg: {
            let mut m = request("$.X", id(NET_B, 8), KSOCK_B, true);
            m.set_to(KSOCK_B);
            m.set_final_to(OrigFrom::new(NET_A, 5));
            m
        },
    });
    let mut sent8 = sent;
    sent8.set_id(id(NET_B, 8));
    let (_, out) = one_to_link(r.handle(Input::LocalSendFailed {
        msg: sent8,
        errno: Errno::ADDRNOTAVAIL,
    }));
    assert_eq!(out.name(), REPLIER_GONE_AWAY);
    // Passing through to a Replier further on: the current local Replier
    // of that name (here another bridge's proxy, Ksock 6)...
    let mut through = request("$.X", id(NET_B, 9), KSOCK_B, true);
    through.set_to(KSOCK_B);
    through.set_final_to(OrigFrom::new(9, 5));
    let (_, out) = one_to_link(r.handle(Input::FromLink {
        link: 0,
        msg: through.clone(),
    }));
    assert_eq!(out.name(), REPLIER_GONE_AWAY, "none yet");
    r.handle(Input::Local(local_bind_event(true, 6, "$.X", 1)));
    let sent = one_local(r.handle(Input::FromLink {
        link: 0,
        msg: through,
    }));
    assert_eq!((sent.to(), sent.final_to()), (6, OrigFrom::new(9, 5)));
}

/// Two relays joined by an in-memory transport; the test plays both
/// devices. Requester 3 on A, Replier 5 on B.
#[test]
fn two_relays_over_an_in_memory_link() {
    let mut a = Relay::new(NET_A, KSOCK_A);
    let mut b = Relay::new(NET_B, KSOCK_B);
    // Wire: whatever one sends on link 0 arrives at the other on link 0;
    // returns what the receiver sends into its device.
    fn pass(to: &mut Relay, actions: Vec<Action>) -> Vec<Msg> {
        let mut local = Vec::new();
        for act in actions {
            let Action::ToLink { link: 0, msg } = act else {
                panic!("unexpected {act:?}");
            };
            for a in to.handle(Input::FromLink { link: 0, msg }) {
                match a {
                    Action::SendLocal(m) => local.push(m),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        local
    }
    a.handle(Input::LinkUp {
        link: 0,
        peer: Some(NET_B),
    });
    b.handle(Input::LinkUp {
        link: 0,
        peer: Some(NET_A),
    });
    // Replier 5 binds on B: A binds a proxy.
    let out = b.handle(Input::Local(local_bind_event(
        true,
        5,
        "$.Sensors.Kitchen",
        11,
    )));
    let (_, ev) = one_to_link(out);
    assert_eq!(
        a.handle(Input::FromLink { link: 0, msg: ev }),
        vec![Action::BindProxy(b"$.Sensors.Kitchen".to_vec())]
    );
    // Requester 3 on A asks; KBUS gives A's proxy the Replier copy.
    let req = request("$.Sensors.Kitchen", id(0, 12), 3, true);
    let on_b = pass(&mut b, a.handle(Input::Local(req)));
    let [sent_on_b] = &on_b[..] else {
        panic!("{on_b:?}")
    };
    assert_eq!(sent_on_b.id(), id(NET_A, 12));
    // Device B: Replier 5 answers B's Ksock.
    let answer = reply("$.Sensors.Kitchen", id(0, 13), id(NET_A, 12), 5, KSOCK_B);
    let on_a = pass(&mut a, b.handle(Input::Local(answer)));
    let [got] = &on_a[..] else { panic!("{on_a:?}") };
    assert_eq!((got.to(), got.in_reply_to()), (3, id(0, 12)));
    assert_eq!(got.orig_from(), OrigFrom::new(NET_B, 5));
    assert_eq!(got.data(), b"answer");
    // An Announcement from B's device reaches A's device once, and A does
    // not send it back when it reads its own copy.
    let ann = msg(|r| {
        r.id = id(0, 14);
        r.from = 8;
    });
    let on_a = pass(&mut a, b.handle(Input::Local(ann)));
    let [got] = &on_a[..] else { panic!("{on_a:?}") };
    assert_eq!(got.id(), id(NET_B, 14));
    let mut read_back = got.clone();
    read_back.set_from(KSOCK_A);
    assert_eq!(a.handle(Input::Local(read_back)), vec![]);
}
