//! Requests, Replies and Repliers (spec §5.5, §7.1–7.4).

use kbus_guest_tests::*;

#[test]
fn request_reply_with_ids_and_in_reply_to() {
    let replier = open_rw(0);
    let listener = open_ro(0);
    let sender = open_rw(0);
    let rid = ok(replier.ksock_id(), "KSOCKID");
    let sid = ok(sender.ksock_id(), "KSOCKID");
    bind(&replier, "$.Req.Time", Role::Replier);
    bind(&listener, "$.Req.Time", Role::Listener);
    assert_eq!(ok(sender.find_replier("$.Req.Time"), "REPLIER"), Some(rid));

    let req_id = send(&sender, &MessageRepr::request("$.Req.Time", b"what time?"));

    // The Replier's copy says "you reply".
    let req = recv(&replier, "request at the replier");
    assert_eq!(req.id(), req_id);
    assert_eq!(req.from(), sid);
    assert_eq!(req.name(), "$.Req.Time");
    assert_eq!(req.data(), b"what time?");
    assert!(req.is_request());
    assert!(req.wants_us_to_reply());
    assert_eq!(req.flags(), Flags::WANT_A_REPLY | Flags::WANT_YOU_TO_REPLY);
    assert_eq!(ok(replier.num_unreplied_to(), "UNREPLIEDTO"), 1);

    // The Listener's copy does not.
    let copy = recv(&listener, "request at the listener");
    assert_eq!(copy.id(), req_id);
    assert!(copy.is_request() && !copy.wants_us_to_reply());
    assert_eq!(copy.flags(), Flags::WANT_A_REPLY);

    let reply = MessageRepr::reply_to(&req, b"noon").expect("a Request we must answer");
    let reply_id = send(&replier, &reply);
    assert!(reply_id > req_id);
    assert_eq!(ok(replier.num_unreplied_to(), "UNREPLIEDTO"), 0);

    let ans = recv(&sender, "reply at the sender");
    assert_eq!(ans.id(), reply_id);
    assert_eq!(ans.in_reply_to(), req_id);
    assert_eq!(ans.to(), sid);
    assert_eq!(ans.from(), rid);
    assert_eq!(ans.name(), "$.Req.Time");
    assert_eq!(ans.data(), b"noon");
    assert!(ans.is_reply() && !ans.is_request() && !ans.is_synthetic());

    // The Listener sees the Reply too.
    let lrep = recv(&listener, "reply at the listener");
    assert_eq!((lrep.id(), lrep.in_reply_to()), (reply_id, req_id));

    // A second Reply to the same Request is refused.
    expect_errno(
        replier.send_msg(&reply),
        Errno::CONNREFUSED,
        "second reply to the same request",
    );
    assert_empty(&sender, "no second reply");
    assert_empty(&replier, "replier got nothing else");
}

#[test]
fn a_request_without_replier_is_eaddrnotavail() {
    let listener = open_ro(0);
    let s = open_rw(0);
    bind(&listener, "$.Req.NoReplier", Role::Listener);
    let e = expect_errno(
        s.send_msg(&MessageRepr::request("$.Req.NoReplier", b"")),
        Errno::ADDRNOTAVAIL,
        "request with only a listener",
    );
    assert!(e.to_string().contains("no Replier"), "{e}");
    assert_empty(&listener, "a failed send queues nothing");
    // The failed send still consumed an id (§5.2 note).
    assert_ne!(ok(s.last_msg_id(), "LASTSENT"), MessageId::new(0, 0));
    assert_eq!(ok(s.find_replier("$.Req.NoReplier"), "REPLIER"), None);
}

#[test]
fn second_replier_is_eaddrinuse() {
    let r1 = open_rw(0);
    let r2 = open_rw(0);
    bind(&r1, "$.Req.Unique", Role::Replier);
    let e = expect_errno(
        r2.bind("$.Req.Unique", Role::Replier),
        Errno::ADDRINUSE,
        "second replier",
    );
    assert!(e.to_string().contains("already bound"), "{e}");
    expect_errno(
        r1.bind("$.Req.Unique", Role::Replier),
        Errno::ADDRINUSE,
        "same Ksock again",
    );
    // Other strings, even overlapping wildcards, are separate bindings.
    bind(&r2, "$.Req.Unique.*", Role::Replier);
    bind(&r2, "$.Req.%", Role::Replier);
    // Listeners may duplicate freely.
    bind(&r2, "$.Req.Unique", Role::Listener);
    // After unbinding, the name is free again.
    ok(r1.unbind("$.Req.Unique", Role::Replier), "unbind");
    bind(&r2, "$.Req.Unique", Role::Replier);
    assert_eq!(
        ok(r1.find_replier("$.Req.Unique"), "REPLIER"),
        Some(ok(r2.ksock_id(), "KSOCKID"))
    );
    // Unbinding with the wrong role or a name never bound is EINVAL.
    let e = expect_errno(
        r1.unbind("$.Req.Unique", Role::Replier),
        Errno::INVAL,
        "gone",
    );
    assert!(e.to_string().contains("no such binding"), "{e}");
    expect_errno(
        r2.unbind("$.Req.Unique.*", Role::Listener),
        Errno::INVAL,
        "wrong role",
    );
}

#[test]
fn replier_precedence() {
    let r1 = open_rw(0);
    let r2 = open_rw(0);
    let r3 = open_rw(0);
    let s = open_rw(0);
    bind(&r1, "$.ReqPrec.*", Role::Replier);
    bind(&r2, "$.ReqPrec.%", Role::Replier);
    bind(&r3, "$.ReqPrec.Kitchen.Temperature", Role::Replier);
    for (name, who) in [
        ("$.ReqPrec.Kitchen.Temperature", &r3),
        ("$.ReqPrec.Kitchen", &r2),
        ("$.ReqPrec.Kitchen.Humidity", &r1),
    ] {
        let id = send(&s, &MessageRepr::request(name, b""));
        let m = recv(who, name);
        assert_eq!((m.name().to_str().unwrap(), m.id()), (name, id));
        assert!(m.wants_us_to_reply());
        for other in [&r1, &r2, &r3] {
            assert_empty(other, &format!("only one replier gets {name}"));
        }
        send(who, &MessageRepr::reply_to(&m, b"").unwrap());
        let ans = recv(&s, "reply");
        assert_eq!(ans.in_reply_to(), id);
    }
    // REPLIER looks only for the identical string.
    assert_eq!(ok(s.find_replier("$.ReqPrec.Kitchen"), "REPLIER"), None);
    assert_eq!(
        ok(s.find_replier("$.ReqPrec.%"), "REPLIER"),
        Some(ok(r2.ksock_id(), "KSOCKID"))
    );
    expect_errno(
        s.find_replier(""),
        Errno::NAMETOOLONG,
        "REPLIER with an empty name",
    );
}

#[test]
fn an_announcement_does_not_go_to_a_replier() {
    let r = open_rw(0);
    let s = open_rw(0);
    bind(&r, "$.Req.Ann", Role::Replier);
    send(&s, &MessageRepr::announcement("$.Req.Ann", b""));
    assert_empty(&r, "repliers get Requests only");
}

#[test]
fn reply_errors() {
    let r = open_rw(0);
    let s = open_rw(0);
    bind(&r, "$.Req.Errs", Role::Replier);
    let req_id = send(&s, &MessageRepr::request("$.Req.Errs", b""));
    let req = recv(&r, "request");
    let good = MessageRepr::reply_to(&req, b"").unwrap();

    // Wrong in_reply_to: the target is not waiting for it.
    let mut wrong = good;
    wrong.in_reply_to = req_id + 1000;
    expect_errno(r.send_msg(&wrong), Errno::CONNREFUSED, "wrong in_reply_to");
    // Target not open.
    let mut nobody = good;
    nobody.to = 0x7fff_fff0;
    expect_errno(r.send_msg(&nobody), Errno::ADDRNOTAVAIL, "reply to nobody");
    assert_eq!(
        ok(r.num_unreplied_to(), "UNREPLIEDTO"),
        1,
        "failed replies leave it"
    );

    send(&r, &good);
    assert_eq!(recv(&s, "reply").in_reply_to(), req_id);
}
