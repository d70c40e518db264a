//! Queue order and bookkeeping: URGENT, MSGONLYONCE, MAXMSGS, NUMMSGS,
//! LASTSENT, UNREPLIEDTO (spec §3.11, §5.6, §5.10).

use kbus_guest_tests::*;
use kbus_rustix::{RawUpdate, JUST_ASK};

#[test]
fn urgent_messages_jump_the_queue_newest_first() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Q.Urgent", Role::Listener);
    let plain1 = send(&s, &MessageRepr::announcement("$.Q.Urgent", b"plain1"));
    let plain2 = send(&s, &MessageRepr::announcement("$.Q.Urgent", b"plain2"));
    let mut u = MessageRepr::announcement("$.Q.Urgent", b"urgent1");
    u.flags = Flags::URGENT;
    let urgent1 = send(&s, &u);
    u.data = b"urgent2";
    let urgent2 = send(&s, &u);
    let order: Vec<MessageId> = (0..4)
        .map(|i| recv(&l, &format!("message {i}")).id())
        .collect();
    assert_eq!(order, [urgent2, urgent1, plain1, plain2]);

    // URGENT stays set in delivered copies; it applies to Requests too.
    let r = open_rw(0);
    bind(&r, "$.Q.UrgentReq", Role::Replier);
    send(&s, &MessageRepr::request("$.Q.UrgentReq", b"normal"));
    let mut ur = MessageRepr::request("$.Q.UrgentReq", b"urgent");
    ur.flags |= Flags::URGENT;
    let uid = send(&s, &ur);
    let first = recv(&r, "urgent request first");
    assert_eq!(first.id(), uid);
    assert!(first.is_urgent());
    assert_eq!(
        first.flags(),
        Flags::WANT_A_REPLY | Flags::WANT_YOU_TO_REPLY | Flags::URGENT
    );
}

#[test]
fn msgonlyonce_suppresses_listener_duplicates() {
    let k = open_rw(0);
    let s = open_rw(0);
    assert!(!ok(k.query_want_messages_once(), "ask"));
    bind(&k, "$.Q.Once", Role::Listener);
    bind(&k, "$.Q.*", Role::Listener);
    send(&s, &MessageRepr::announcement("$.Q.Once", b""));
    assert_eq!(
        ok(k.num_messages(), "NUMMSGS"),
        2,
        "two bindings, two copies"
    );
    assert!(!ok(k.want_messages_once(true), "on"), "previous state off");
    assert!(ok(k.query_want_messages_once(), "ask"));
    assert!(
        ok(k.want_messages_once(true), "on again"),
        "previous state on"
    );
    assert_eq!(
        ok(k.num_messages(), "NUMMSGS"),
        2,
        "existing duplicates stay"
    );
    let id = send(&s, &MessageRepr::announcement("$.Q.Once", b""));
    assert_eq!(
        ok(k.num_messages(), "NUMMSGS"),
        3,
        "one copy of the new message"
    );
    for _ in 0..3 {
        recv(&k, "drain");
    }

    // Replier + Listener: the Replier copy is the one kept.
    bind(&k, "$.Q.OnceReq", Role::Replier);
    let rid = send(&s, &MessageRepr::request("$.Q.OnceReq", b""));
    let m = recv(&k, "replier copy");
    assert_eq!(m.id(), rid);
    assert!(m.wants_us_to_reply());
    assert_empty(&k, "listener copy suppressed");
    send(&k, &MessageRepr::reply_to(&m, b"").unwrap());
    recv(&s, "reply");
    // Own Reply is seen once via $.Q.* (it is a Listener copy, id differs).
    assert_eq!(ok(k.num_messages(), "NUMMSGS"), 1);
    recv(&k, "own reply via $.Q.*");

    assert!(ok(k.want_messages_once(false), "off"));
    assert!(!ok(k.query_want_messages_once(), "ask"));
    assert_ne!(id, MessageId::new(0, 0));
    for bad in [2, 3, 0x8000_0000, JUST_ASK - 1] {
        expect_errno(
            k.raw_update(RawUpdate::MessagesOnce, bad),
            Errno::INVAL,
            &format!("MSGONLYONCE {bad:#x}"),
        );
    }
    assert!(!ok(k.query_want_messages_once(), "unchanged by bad values"));
}

#[test]
fn max_messages_num_messages_last_sent() {
    let k = open_rw(0);
    let s = open_rw(0);
    bind(&k, "$.Q.Count", Role::Listener);
    assert_eq!(ok(k.max_messages(), "MAXMSGS"), 100, "default queue limit");
    assert_eq!(ok(k.set_max_messages(5), "set"), 5);
    assert_eq!(ok(k.raw_update(RawUpdate::MaxMessages, 0), "raw ask"), 5);
    let mut last = MessageId::new(0, 0);
    for i in 0..5u8 {
        let id = send(&s, &MessageRepr::announcement("$.Q.Count", &[i]));
        assert!(id > last, "ids ascend");
        last = id;
        assert_eq!(ok(s.last_msg_id(), "LASTSENT"), id);
        assert_eq!(ok(k.num_messages(), "NUMMSGS"), u32::from(i) + 1);
    }
    // Lowering below the queue length discards nothing.
    assert_eq!(ok(k.set_max_messages(2), "lower"), 2);
    assert_eq!(ok(k.num_messages(), "NUMMSGS"), 5);
    send(&s, &MessageRepr::announcement("$.Q.Count", b"skipped"));
    assert_eq!(ok(k.num_messages(), "NUMMSGS"), 5, "full: skipped");
    for i in 0..5u8 {
        assert_eq!(recv(&k, "drain").data(), [i]);
    }
    assert_eq!(ok(k.set_max_messages(1000), "raise"), 1000);
    // LASTSENT is per Ksock.
    assert_eq!(ok(k.last_msg_id(), "LASTSENT"), MessageId::new(0, 0));
    // NUMMSGS counts the queue, not the current read message.
    send(&s, &MessageRepr::announcement("$.Q.Count", b"x"));
    assert!(ok(k.next_msg(), "NEXTMSG").is_some());
    assert_eq!(ok(k.num_messages(), "NUMMSGS"), 0);
}

#[test]
fn unreplied_to_counts_popped_requests() {
    let r = open_rw(0);
    let s = open_rw(0);
    bind(&r, "$.Q.Unrep", Role::Replier);
    let ids: Vec<MessageId> = (0..3)
        .map(|_| send(&s, &MessageRepr::request("$.Q.Unrep", b"")))
        .collect();
    assert_eq!(
        ok(r.num_unreplied_to(), "UNREPLIEDTO"),
        0,
        "queued is not popped"
    );
    let reqs: Vec<Msg> = (0..3).map(|_| recv(&r, "request")).collect();
    assert_eq!(ok(r.num_unreplied_to(), "UNREPLIEDTO"), 3);
    // Answer out of order.
    for (n, req) in [&reqs[1], &reqs[0], &reqs[2]].into_iter().enumerate() {
        send(&r, &MessageRepr::reply_to(req, b"").unwrap());
        assert_eq!(ok(r.num_unreplied_to(), "UNREPLIEDTO"), 2 - n as u32);
    }
    let got: Vec<MessageId> = (0..3).map(|_| recv(&s, "reply").in_reply_to()).collect();
    assert_eq!(got, [ids[1], ids[0], ids[2]]);
}

#[test]
fn stateful_requests_go_only_to_the_named_replier() {
    let r1 = open_rw(1);
    let r2 = open_rw(1);
    let s = open_rw(1);
    bind(&r1, "$.Q.State", Role::Replier);
    send(&s, &MessageRepr::request("$.Q.State", b"hello"));
    let req = recv(&r1, "first request");
    send(&r1, &MessageRepr::reply_to(&req, b"").unwrap());
    let reply = recv(&s, "reply");

    // Same Replier still bound: the stateful Request goes through.
    let sr = MessageRepr::stateful_request(&reply, "$.Q.State", b"again").unwrap();
    assert_eq!(sr.to, ok(r1.ksock_id(), "KSOCKID"));
    assert!(sr.flags.contains(Flags::WANT_A_REPLY));
    let id = send(&s, &sr);
    let m = recv(&r1, "stateful request");
    assert_eq!((m.id(), m.to()), (id, ok(r1.ksock_id(), "KSOCKID")));
    assert!(m.is_stateful_request() && m.wants_us_to_reply());
    send(&r1, &MessageRepr::reply_to(&m, b"").unwrap());
    recv(&s, "reply");

    // The Replier changed: EPIPE.
    ok(r1.unbind("$.Q.State", Role::Replier), "unbind");
    bind(&r2, "$.Q.State", Role::Replier);
    let e = expect_errno(
        s.send_msg(&sr),
        Errno::PIPE,
        "stateful request, other replier",
    );
    assert!(e.to_string().contains("Stateful"), "{e}");
    assert_empty(&r2, "nothing delivered");
    // No Replier at all: EADDRNOTAVAIL.
    drop(r2);
    expect_errno(
        s.send_msg(&sr),
        Errno::ADDRNOTAVAIL,
        "stateful request, no replier",
    );
}
