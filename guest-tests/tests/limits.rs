//! Limits: message size, queue limits for Listeners, Repliers and Senders
//! (spec §3.8, §3.11 MAXMSGS/MAXMSGSIZE, §5.1, §5.5, §5.7).

use kbus_guest_tests::*;
use kbus_wire::{entire_len, NativeLayout};

/// Restores a device's maximum message size when dropped, even on panic.
struct RestoreMaxSize<'a>(&'a Ksock, u32);
impl Drop for RestoreMaxSize<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_max_message_size(self.1);
    }
}

#[test]
fn message_over_the_size_limit_is_emsgsize() {
    let s = open_rw(2);
    let l = open_ro(2);
    bind(&l, "$.LimSize", Role::Listener);
    let abs = ok(s.abs_max_message_size(), "MAXMSGSIZE 1");
    let orig = ok(s.max_message_size(), "MAXMSGSIZE 0");
    assert!(
        abs >= 66_000,
        "absolute maximum {abs} is too small for real users"
    );
    assert!(orig <= abs);
    let _restore = RestoreMaxSize(&s, orig);

    assert_eq!(ok(s.set_max_message_size(200), "set 200"), 200);
    assert_eq!(ok(s.max_message_size(), "ask"), 200);
    let name = "$.LimSize";
    // Largest data that fits exactly: ENTIRE(9, d) == 200.
    let fit = (0..200)
        .rev()
        .find(|&d| entire_len::<NativeLayout>(name.len(), d) <= 200)
        .unwrap();
    assert_eq!(
        entire_len::<NativeLayout>(name.len(), fit),
        200,
        "200 is word-aligned"
    );
    let data = vec![0x5a; fit + 1];

    // Pointy and entire forms: exactly the maximum is accepted...
    let id = send(&s, &MessageRepr::announcement(name, &data[..fit]));
    assert_eq!(recv(&l, "max-size pointy").id(), id);
    let repr = MessageRepr::announcement(name, &data[..fit]);
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes).unwrap();
    assert_eq!(bytes.len(), 200);
    let id = ok(s.send_entire(&bytes), "max-size entire");
    assert_eq!(recv(&l, "max-size entire").id(), id);

    // ...one padded word more is refused at write time.
    let e = expect_errno(
        s.send_msg(&MessageRepr::announcement(name, &data[..fit + 1])),
        Errno::MSGSIZE,
        "pointy over the limit",
    );
    assert_eq!(e.op(), kbus_rustix::Op::Write);
    assert!(
        e.to_string().contains("larger than the device's maximum"),
        "{e}"
    );
    let repr = MessageRepr::announcement(name, &data[..fit + 1]);
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes).unwrap();
    expect_errno(
        s.send_entire(&bytes),
        Errno::MSGSIZE,
        "entire over the limit",
    );
    expect_errno(s.send(), Errno::NOMSG, "nothing left after EMSGSIZE");
    assert_empty(&l, "nothing delivered");

    // Bad settings.
    for bad in [2, 50, 99, abs.saturating_add(1)] {
        expect_errno(
            s.set_max_message_size(bad),
            Errno::INVAL,
            &format!("MAXMSGSIZE {bad}"),
        );
    }
    assert_eq!(ok(s.set_max_message_size(100), "lowest setting"), 100);
    assert_eq!(ok(s.set_max_message_size(abs), "highest setting"), abs);

    // Data larger than a page works up to the absolute maximum.
    let big = vec![7u8; 64 * 1024];
    let id = send(&s, &MessageRepr::announcement(name, &big));
    let m = recv(&l, "64 KiB message");
    assert_eq!((m.id(), m.data().len()), (id, big.len()));
    assert!(m.data().iter().all(|&b| b == 7));
}

#[test]
fn a_full_listener_is_skipped_silently() {
    let l = open_ro(0);
    let other = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.LimListen", Role::Listener);
    bind(&other, "$.LimListen", Role::Listener);
    assert_eq!(ok(l.set_max_messages(2), "MAXMSGS 2"), 2);
    assert_eq!(ok(l.max_messages(), "MAXMSGS 0"), 2);
    let ids: Vec<MessageId> = (0..3)
        .map(|i| send(&s, &MessageRepr::announcement("$.LimListen", &[i])))
        .collect();
    assert_eq!(ok(l.num_messages(), "NUMMSGS"), 2);
    assert_eq!(recv(&l, "first").id(), ids[0]);
    assert_eq!(recv(&l, "second").id(), ids[1]);
    assert_empty(&l, "the third was skipped");
    for id in &ids {
        assert_eq!(recv(&other, "a listener with room gets all").id(), *id);
    }

    // ALL_OR_FAIL: a full Listener fails the whole send.
    send(&s, &MessageRepr::announcement("$.LimListen", b"a"));
    send(&s, &MessageRepr::announcement("$.LimListen", b"b"));
    recv(&other, "a");
    recv(&other, "b");
    let mut m = MessageRepr::announcement("$.LimListen", b"c");
    m.flags = Flags::ALL_OR_FAIL;
    expect_errno(
        s.send_msg(&m),
        Errno::BUSY,
        "ALL_OR_FAIL with a full listener",
    );
    assert_empty(&other, "all or nothing");
    // ALL_OR_WAIT: pending; the id is reported with the error.
    m.flags = Flags::ALL_OR_WAIT;
    let e = expect_errno(
        s.send_msg(&m),
        Errno::AGAIN,
        "ALL_OR_WAIT with a full listener",
    );
    let pending = e.message_id().expect("EAGAIN reports the id");
    assert_eq!(ok(s.last_msg_id(), "LASTSENT"), pending);
    assert_eq!(
        ok(s.poll(Ready::WRITE, Some(SHORT)), "poll"),
        Ready::default()
    );
    ok(s.discard(), "DISCARD the pending message");
    assert_eq!(ok(s.poll(Ready::WRITE, Some(SHORT)), "poll"), Ready::WRITE);
    assert_empty(&other, "a discarded message is never delivered");
}

#[test]
fn a_full_replier_is_ebusy() {
    let r = open_rw(0);
    let s = open_rw(0);
    bind(&r, "$.LimReply", Role::Replier);
    ok(r.set_max_messages(1), "MAXMSGS 1");
    let id = send(&s, &MessageRepr::request("$.LimReply", b"1"));
    let e = expect_errno(
        s.send_msg(&MessageRepr::request("$.LimReply", b"2")),
        Errno::BUSY,
        "request to a full replier",
    );
    assert!(e.to_string().contains("queue is full"), "{e}");
    let mut waiting = MessageRepr::request("$.LimReply", b"3");
    waiting.flags |= Flags::ALL_OR_WAIT;
    expect_errno(
        s.send_msg(&waiting),
        Errno::AGAIN,
        "ALL_OR_WAIT to a full replier",
    );
    ok(s.discard(), "discard");
    let req = recv(&r, "the first request");
    assert_eq!(req.id(), id);
    assert_empty(&r, "only one");
    send(&r, &MessageRepr::reply_to(&req, b"").unwrap());
    assert_eq!(recv(&s, "reply").in_reply_to(), id);
    assert_empty(&s, "nothing else: failed sends get no answer");
}

#[test]
fn no_room_for_the_reply_is_enolck() {
    let r = open_rw(0);
    let s = open_rw(0);
    bind(&r, "$.LimLock", Role::Replier);
    ok(s.set_max_messages(1), "MAXMSGS 1");
    let id = send(&s, &MessageRepr::request("$.LimLock", b""));
    let before = ok(s.last_msg_id(), "LASTSENT");
    let e = expect_errno(
        s.send_msg(&MessageRepr::request("$.LimLock", b"")),
        Errno::NOLCK,
        "second outstanding request with a 1-message queue",
    );
    assert!(e.to_string().contains("no room in your own queue"), "{e}");
    assert_eq!(
        ok(s.last_msg_id(), "LASTSENT"),
        before,
        "ENOLCK consumes no id"
    );
    // Announcements still go (nothing to reserve).
    send(&s, &MessageRepr::announcement("$.LimLock", b""));
    let req = recv(&r, "request");
    assert_eq!(req.id(), id);
    assert_empty(&r, "one request");
    send(&r, &MessageRepr::reply_to(&req, b"").unwrap());
    assert_eq!(recv(&s, "reply").in_reply_to(), id);
    // The reservation is gone: another Request fits again.
    send(&s, &MessageRepr::request("$.LimLock", b""));
}
