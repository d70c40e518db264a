//! Synthetic answers: GoneAway, Ignored, Unbound (spec §7.5, §7.7).

use kbus_guest_tests::*;
use kbus_wire::name::{REPLIER_GONE_AWAY, REPLIER_IGNORED, REPLIER_UNBOUND};

/// Check every field of a synthetic answer.
#[track_caller]
fn check_answer(m: &Msg, name: &str, to: u32, from: u32, in_reply_to: MessageId, after: MessageId) {
    assert_eq!(m.name(), name, "{m}");
    assert_eq!(m.to(), to, "to: {m}");
    assert_eq!(m.from(), from, "from: {m}");
    assert_eq!(m.in_reply_to(), in_reply_to, "in_reply_to: {m}");
    assert_eq!(m.flags(), Flags::SYNTHETIC, "flags: {m}");
    assert_eq!(m.id().network_id, 0, "{m}");
    assert!(m.id() > after, "a fresh serial: {m}");
    assert_eq!(m.data(), b"", "no data: {m}");
    assert_eq!(m.orig_from(), kbus_wire::OrigFrom::new(0, 0));
    assert_eq!(m.final_to(), kbus_wire::OrigFrom::new(0, 0));
    assert_eq!(m.extra(), 0);
    assert!(m.is_synthetic() && m.is_reply() && !m.is_request());
}

#[test]
fn replier_closing_before_reading_gives_gone_away() {
    let sender = open_rw(0);
    let sid = ok(sender.ksock_id(), "KSOCKID");
    let replier = open_rw(0);
    let rid = ok(replier.ksock_id(), "KSOCKID");
    bind(&replier, "$.Syn.Gone", Role::Replier);
    let req_id = send(&sender, &MessageRepr::request("$.Syn.Gone", b"hello?"));
    drop(replier);
    let m = recv(&sender, "GoneAway");
    check_answer(&m, REPLIER_GONE_AWAY, sid, rid, req_id, req_id);
    assert_empty(&sender, "exactly one answer");
    // The reservation was released: the name has no replier left.
    expect_errno(
        sender.send_msg(&MessageRepr::request("$.Syn.Gone", b"")),
        Errno::ADDRNOTAVAIL,
        "replier is gone",
    );
}

#[test]
fn replier_closing_after_reading_gives_ignored() {
    let sender = open_rw(0);
    let sid = ok(sender.ksock_id(), "KSOCKID");
    let replier = open_rw(0);
    let rid = ok(replier.ksock_id(), "KSOCKID");
    bind(&replier, "$.Syn.Ign", Role::Replier);
    let id1 = send(&sender, &MessageRepr::request("$.Syn.Ign", b"1"));
    let id2 = send(&sender, &MessageRepr::request("$.Syn.Ign", b"2"));
    assert_eq!(recv(&replier, "first").id(), id1);
    assert_eq!(recv(&replier, "second").id(), id2);
    assert_eq!(ok(replier.num_unreplied_to(), "UNREPLIEDTO"), 2);
    drop(replier);
    // Newest popped first.
    let a = recv(&sender, "Ignored for the second");
    check_answer(&a, REPLIER_IGNORED, sid, rid, id2, id2);
    let b = recv(&sender, "Ignored for the first");
    check_answer(&b, REPLIER_IGNORED, sid, rid, id1, id2);
    assert!(b.id() > a.id());
    assert_empty(&sender, "one answer per request");
}

#[test]
fn popping_without_reading_still_obliges() {
    let sender = open_rw(0);
    let replier = open_rw(0);
    bind(&replier, "$.Syn.Popped", Role::Replier);
    let id = send(&sender, &MessageRepr::request("$.Syn.Popped", b""));
    assert!(ok(replier.next_msg(), "NEXTMSG").is_some());
    assert_eq!(ok(replier.num_unreplied_to(), "UNREPLIEDTO"), 1);
    drop(replier);
    let m = recv(&sender, "Ignored after a pop");
    assert_eq!(
        (m.name().to_str().unwrap(), m.in_reply_to()),
        (REPLIER_IGNORED, id)
    );
}

#[test]
fn gone_away_then_ignored_in_close_order() {
    let sender = open_rw(0);
    let replier = open_rw(0);
    bind(&replier, "$.Syn.Both", Role::Replier);
    let read_id = send(&sender, &MessageRepr::request("$.Syn.Both", b"read"));
    let queued_id = send(&sender, &MessageRepr::request("$.Syn.Both", b"queued"));
    assert_eq!(recv(&replier, "read one").id(), read_id);
    drop(replier);
    let first = recv(&sender, "first answer");
    let second = recv(&sender, "second answer");
    assert_eq!(
        (first.name().to_str().unwrap(), first.in_reply_to()),
        (REPLIER_GONE_AWAY, queued_id)
    );
    assert_eq!(
        (second.name().to_str().unwrap(), second.in_reply_to()),
        (REPLIER_IGNORED, read_id)
    );
    assert_empty(&sender, "two answers only");
}

#[test]
fn unbind_with_a_queued_request_gives_unbound() {
    let sender = open_rw(0);
    let sid = ok(sender.ksock_id(), "KSOCKID");
    let replier = open_rw(0);
    let rid = ok(replier.ksock_id(), "KSOCKID");
    bind(&replier, "$.Syn.Unb", Role::Replier);
    bind(&replier, "$.Syn.Other", Role::Listener);
    let req_id = send(&sender, &MessageRepr::request("$.Syn.Unb", b""));
    let other_id = send(&sender, &MessageRepr::announcement("$.Syn.Other", b""));
    assert_eq!(ok(replier.num_messages(), "NUMMSGS"), 2);
    ok(replier.unbind("$.Syn.Unb", Role::Replier), "unbind");
    // The Request went away with its binding; the other message stays.
    assert_eq!(ok(replier.num_messages(), "NUMMSGS"), 1);
    assert_eq!(
        recv(&replier, "message through another binding").id(),
        other_id
    );
    let m = recv(&sender, "Unbound");
    check_answer(&m, REPLIER_UNBOUND, sid, rid, req_id, other_id);
    assert_empty(&sender, "one answer");
    drop(replier);
    assert_empty(&sender, "closing later adds nothing");
}

#[test]
fn answers_after_the_requester_closed_go_nowhere() {
    let replier = open_rw(0);
    bind(&replier, "$.Syn.Orphan", Role::Replier);
    let sender = open_rw(0);
    send(&sender, &MessageRepr::request("$.Syn.Orphan", b""));
    drop(sender);
    let req = recv(&replier, "request");
    expect_errno(
        replier.send_msg(&MessageRepr::reply_to(&req, b"").unwrap()),
        Errno::ADDRNOTAVAIL,
        "reply to a closed requester",
    );
    assert_eq!(ok(replier.num_unreplied_to(), "UNREPLIEDTO"), 1);
}

#[test]
fn unbind_of_the_only_binding_gives_unbound_then_close_adds_nothing() {
    let sender = open_rw(0);
    let replier = open_rw(0);
    bind(&replier, "$.Syn.Only", Role::Replier);
    let a = send(&sender, &MessageRepr::request("$.Syn.Only", b"a"));
    let b = send(&sender, &MessageRepr::request("$.Syn.Only", b"b"));
    ok(replier.unbind("$.Syn.Only", Role::Replier), "unbind");
    assert_eq!(
        ok(replier.num_messages(), "NUMMSGS"),
        0,
        "queued Requests removed"
    );
    drop(replier);
    let m1 = recv(&sender, "first answer");
    let m2 = recv(&sender, "second answer");
    assert_eq!(
        (m1.name().to_str().unwrap(), m1.in_reply_to()),
        (REPLIER_UNBOUND, a)
    );
    assert_eq!(
        (m2.name().to_str().unwrap(), m2.in_reply_to()),
        (REPLIER_UNBOUND, b)
    );
    assert_empty(&sender, "one answer each");
}
