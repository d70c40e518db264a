//! Pending (ALL_OR_WAIT) sends finished by poll: Disappeared, ErrorSending;
//! and the project's promise that Stateful Requests get answers too
//! (spec §5.9, §7.5, §13 items 6 and 7).

use std::time::Duration;

use kbus_guest_tests::*;
use kbus_wire::name::{ERROR_SENDING, REPLIER_DISAPPEARED, REPLIER_GONE_AWAY, REPLIER_UNBOUND};

#[test]
fn pending_request_whose_replier_vanishes_gets_disappeared() {
    let r = open_rw(0);
    let s1 = open_rw(0);
    let s2 = open_rw(0);
    let s2id = ok(s2.ksock_id(), "id");
    bind(&r, "$.Pend.Gone", Role::Replier);
    ok(r.set_max_messages(1), "MAXMSGS 1");
    let a = send(&s1, &MessageRepr::request("$.Pend.Gone", b"a"));
    let mut b = MessageRepr::request("$.Pend.Gone", b"b");
    b.flags |= Flags::ALL_OR_WAIT;
    let bid = expect_errno(s2.send_msg(&b), Errno::AGAIN, "replier full")
        .message_id()
        .unwrap();
    // The Ksock refuses to write while pending, without a system call;
    // a raw write gets EALREADY, which leaves the pending message intact
    // (§13 item 7).
    expect_send_pending(s2.write_data(&[1, 2, 3]), bid, "write while pending");
    assert_eq!(
        write_past_ksock(&s2, &[1, 2, 3]),
        Err(Errno::ALREADY),
        "raw write"
    );
    drop(r);
    assert_eq!(recv(&s1, "GoneAway for a").in_reply_to(), a);
    // The retry in poll finds no Replier: Disappeared, and writable again.
    assert_eq!(
        ok(s2.poll(Ready::WRITE, Some(Duration::ZERO)), "poll"),
        Ready::WRITE
    );
    let m = recv(&s2, "Disappeared");
    assert_eq!(m.name(), REPLIER_DISAPPEARED);
    assert_eq!((m.from(), m.to(), m.in_reply_to()), (0, s2id, bid));
    assert_eq!(m.flags(), Flags::SYNTHETIC);
    assert_empty(&s2, "one answer");
    expect_errno(s2.send(), Errno::NOMSG, "the pending message is gone");
}

#[test]
fn pending_stateful_request_with_a_new_replier_gets_error_sending() {
    let r1 = open_rw(0);
    let r2 = open_rw(0);
    let s = open_rw(0);
    let sid = ok(s.ksock_id(), "id");
    bind(&r1, "$.Pend.State", Role::Replier);
    send(&s, &MessageRepr::request("$.Pend.State", b"1"));
    let req = recv(&r1, "first");
    send(&r1, &MessageRepr::reply_to(&req, b"").unwrap());
    let reply = recv(&s, "reply");
    ok(r1.set_max_messages(1), "MAXMSGS 1");
    let filler = open_rw(0);
    send(&filler, &MessageRepr::request("$.Pend.State", b"filler"));
    let mut sr = MessageRepr::stateful_request(&reply, "$.Pend.State", b"2").unwrap();
    sr.flags |= Flags::ALL_OR_WAIT;
    let id = expect_errno(s.send_msg(&sr), Errno::AGAIN, "stateful, replier full")
        .message_id()
        .unwrap();
    // The Replier changes: the retry fails with EPIPE -> ErrorSending.
    ok(r1.unbind("$.Pend.State", Role::Replier), "unbind");
    bind(&r2, "$.Pend.State", Role::Replier);
    assert_eq!(
        recv(&filler, "Unbound for the filler").name(),
        REPLIER_UNBOUND
    );
    assert_eq!(
        ok(s.poll(Ready::WRITE, Some(Duration::ZERO)), "poll"),
        Ready::WRITE
    );
    let m = recv(&s, "ErrorSending");
    assert_eq!(m.name(), ERROR_SENDING);
    assert_eq!((m.from(), m.to(), m.in_reply_to()), (0, sid, id));
    assert_empty(&s, "one answer");
    assert_empty(&r2, "not delivered to the new replier");
}

#[test]
fn stateful_request_to_a_closing_replier_gets_gone_away() {
    let r = open_rw(0);
    let rid = ok(r.ksock_id(), "id");
    let s = open_rw(0);
    bind(&r, "$.Pend.StateGone", Role::Replier);
    send(&s, &MessageRepr::request("$.Pend.StateGone", b""));
    let req = recv(&r, "request");
    send(&r, &MessageRepr::reply_to(&req, b"").unwrap());
    let reply = recv(&s, "reply");
    let sr = MessageRepr::stateful_request(&reply, "$.Pend.StateGone", b"").unwrap();
    let id = send(&s, &sr);
    drop(r);
    let m = recv(&s, "GoneAway for a stateful request (§13 item 6)");
    assert_eq!(
        (m.name().to_str().unwrap(), m.in_reply_to(), m.from()),
        (REPLIER_GONE_AWAY, id, rid)
    );
    // And the reservation was released: the queue limit is whole again.
    ok(s.set_max_messages(1), "MAXMSGS 1");
    let r2 = open_rw(0);
    bind(&r2, "$.Pend.StateGone", Role::Replier);
    send(&s, &MessageRepr::request("$.Pend.StateGone", b"fits"));
}

#[test]
fn stateful_request_to_an_unbinding_replier_gets_unbound() {
    let r = open_rw(0);
    let s = open_rw(0);
    bind(&r, "$.Pend.StateUnb", Role::Replier);
    send(&s, &MessageRepr::request("$.Pend.StateUnb", b""));
    let req = recv(&r, "request");
    send(&r, &MessageRepr::reply_to(&req, b"").unwrap());
    let reply = recv(&s, "reply");
    let id = send(
        &s,
        &MessageRepr::stateful_request(&reply, "$.Pend.StateUnb", b"").unwrap(),
    );
    ok(r.unbind("$.Pend.StateUnb", Role::Replier), "unbind");
    let m = recv(&s, "Unbound for a stateful request (§13 item 6)");
    assert_eq!(
        (m.name().to_str().unwrap(), m.in_reply_to()),
        (REPLIER_UNBOUND, id)
    );
}

/// Issue 10: on some modules a `write()` in sending state frees the pending
/// message (spec §12 item 7), so the Ksock tracks the pending state and
/// refuses every write while it lasts; `send()`, `discard()` and a writable
/// poll end it.
#[test]
fn the_ksock_refuses_to_write_while_a_send_is_pending() {
    let l = open_rw(0);
    let s = open_rw(0);
    bind(&l, "$.Pend.Refuse", Role::Listener);
    ok(l.set_max_messages(1), "MAXMSGS 1");
    send(&s, &MessageRepr::announcement("$.Pend.Refuse", b"filler"));
    let mut m = MessageRepr::announcement("$.Pend.Refuse", b"waits");
    m.flags |= Flags::ALL_OR_WAIT;
    let id = expect_errno(s.send_msg(&m), Errno::AGAIN, "listener full")
        .message_id()
        .unwrap();
    assert_eq!(s.pending_send(), Some(id));
    let other = MessageRepr::announcement("$.Pend.Refuse", b"other");
    expect_send_pending(s.send_msg(&other), id, "send_msg while pending");
    let bytes = other.to_vec().unwrap();
    expect_send_pending(s.send_entire(&bytes), id, "send_entire while pending");
    expect_send_pending(s.write_data(&bytes), id, "write_data while pending");
    let e = s.send_msg(&other).unwrap_err();
    assert!(e.to_string().contains("pending"), "{e}");
    // No write reached the module: the pending message is still there and
    // still the last one sent.
    assert_eq!(ok(s.last_msg_id(), "LASTSENT"), id);
    // send() retries it: still full, so still pending.
    assert_eq!(
        expect_errno(s.send(), Errno::AGAIN, "retry while full").message_id(),
        Some(id)
    );
    assert_eq!(s.pending_send(), Some(id));
    // Room: send() delivers it and ends the pending state.
    assert_eq!(recv(&l, "filler").data(), b"filler");
    assert_eq!(ok(s.send(), "retry with room"), id);
    assert_eq!(s.pending_send(), None);
    assert_eq!(recv(&l, "the pending one").id(), id);
    // Pending again, ended by discard(): nothing is delivered.
    send(&s, &MessageRepr::announcement("$.Pend.Refuse", b"filler 2"));
    let id2 = expect_errno(s.send_msg(&m), Errno::AGAIN, "full again")
        .message_id()
        .unwrap();
    expect_send_pending(s.send_msg(&other), id2, "refused again");
    ok(s.discard(), "DISCARD");
    assert_eq!(s.pending_send(), None);
    assert_eq!(recv(&l, "filler 2").data(), b"filler 2");
    let id3 = send(&s, &other);
    assert_eq!(recv(&l, "sent after discard").id(), id3);
    assert_empty(&l, "the discarded one never arrives");
}
