//! Opening, ids, bind/send/receive (spec §2, §5, §6).

use kbus_guest_tests::*;

#[test]
fn devices_exist_and_ids_are_distinct() {
    let a = open_rw(0);
    let b = open_ro(0);
    let c = open_rw(1);
    let ida = ok(a.ksock_id(), "KSOCKID");
    let idb = ok(b.ksock_id(), "KSOCKID");
    assert_ne!(ida, 0);
    assert_ne!(idb, 0);
    assert_eq!(idb, ida + 1, "ids are handed out in open order");
    assert_ne!(ok(c.ksock_id(), "KSOCKID"), 0);
    assert_eq!(
        a.to_string(),
        format!("Ksock device 0, id {ida}, mode read/write")
    );
    assert_eq!(
        b.to_string(),
        format!("Ksock device 0, id {idb}, mode read")
    );
    assert_eq!(format!("{a:?}"), "<Ksock /dev/kbus0 open for read/write>");
    let _d2 = open_rw(2);
}

#[test]
fn a_missing_device_is_enoent() {
    let e = expect_errno(
        Ksock::open(255, Mode::ReadWrite),
        Errno::NOENT,
        "open /dev/kbus255",
    );
    assert!(e.to_string().contains("no such KBUS device"), "{e}");
}

#[test]
fn fresh_ksock_state() {
    let k = open_rw(0);
    assert_eq!(ok(k.num_messages(), "NUMMSGS"), 0);
    assert_eq!(ok(k.num_unreplied_to(), "UNREPLIEDTO"), 0);
    assert_eq!(ok(k.len_left(), "LENLEFT"), 0);
    assert_eq!(ok(k.last_msg_id(), "LASTSENT"), MessageId::new(0, 0));
    assert_eq!(ok(k.max_messages(), "MAXMSGS"), 100);
    assert_eq!(ok(k.next_msg(), "NEXTMSG"), None);
    let mut buf = [0u8; 256];
    assert!(ok(k.read_next_msg(&mut buf), "read_next_msg").is_none());
    assert_eq!(
        ok(k.read_data(&mut buf), "read"),
        0,
        "read with no current message"
    );
    ok(k.reset(), "RESET");
    ok(k.discard(), "DISCARD with nothing written");
}

#[test]
fn bind_send_receive() {
    let listener = open_ro(0);
    let sender = open_rw(0);
    let lid = ok(listener.ksock_id(), "KSOCKID");
    let sid = ok(sender.ksock_id(), "KSOCKID");
    bind(&listener, "$.Basic.Hello", Role::Listener);

    let id = send(
        &sender,
        &MessageRepr::announcement("$.Basic.Hello", b"hello world"),
    );
    assert_eq!(id.network_id, 0);
    assert_ne!(id.serial_num, 0);
    assert_eq!(ok(sender.last_msg_id(), "LASTSENT"), id);
    assert_eq!(ok(listener.num_messages(), "NUMMSGS"), 1);

    let mut buf = [0u8; 512];
    let m = ok(listener.read_next_msg(&mut buf), "read").expect("one message queued");
    assert_eq!(m.name(), "$.Basic.Hello");
    assert_eq!(m.data(), b"hello world");
    assert_eq!(m.id(), id);
    assert_eq!(m.from(), sid);
    assert_eq!(m.to(), 0);
    assert_eq!(m.in_reply_to(), MessageId::new(0, 0));
    assert_eq!(m.flags(), Flags::empty());
    assert_eq!(m.extra(), 0);
    assert!(!m.is_request() && !m.is_reply() && !m.is_synthetic());
    assert_eq!(
        m.total_len(),
        kbus_wire::entire_len::<kbus_wire::NativeLayout>(13, 11)
    );
    assert_ne!(lid, sid);
    assert_empty(&listener, "after one message");
    assert_empty(&sender, "the sender is not bound");

    // A second send gets a later id; no binding means no delivery.
    let id2 = send(&sender, &MessageRepr::announcement("$.Basic.Nobody", b""));
    assert!(id2 > id);
    assert_empty(&listener, "nobody bound to $.Basic.Nobody");
}

#[test]
fn entire_messages_are_sent_too() {
    let listener = open_ro(0);
    let sender = open_rw(0);
    bind(&listener, "$.Basic.Entire", Role::Listener);
    let repr = MessageRepr::announcement("$.Basic.Entire", b"abc1234");
    let mut bytes = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut bytes).expect("emit");
    assert_eq!(n, bytes.len());
    let id = ok(sender.send_entire(&bytes), "send entire");
    let m = recv(&listener, "entire message");
    assert_eq!(
        (m.name().to_str().unwrap(), m.data(), m.id()),
        ("$.Basic.Entire", &b"abc1234"[..], id)
    );

    // write_msg of a received message + send (exactly ENTIRE() bytes, §9.1).
    ok(sender.write_msg(&m), "write_msg");
    let id2 = ok(sender.send(), "send");
    assert!(id2 > id);
    let m2 = recv(&listener, "re-sent message");
    assert_eq!(
        (m2.name().to_str().unwrap(), m2.data(), m2.id()),
        ("$.Basic.Entire", &b"abc1234"[..], id2)
    );
}

#[test]
fn the_sender_gets_its_own_message_if_bound() {
    let k = open_rw(0);
    bind(&k, "$.Basic.Self", Role::Listener);
    let id = send(&k, &MessageRepr::announcement("$.Basic.Self", b"me"));
    let m = recv(&k, "own message");
    assert_eq!(m.id(), id);
    assert_eq!(m.from(), ok(k.ksock_id(), "KSOCKID"));
}

#[test]
fn devices_are_independent() {
    let l0 = open_ro(0);
    let l1 = open_ro(1);
    let s1 = open_rw(1);
    bind(&l0, "$.Basic.Dev", Role::Listener);
    bind(&l1, "$.Basic.Dev", Role::Listener);
    send(&s1, &MessageRepr::announcement("$.Basic.Dev", b"on 1"));
    assert_empty(&l0, "device 0 must not see device 1's message");
    assert_eq!(recv(&l1, "device 1").data(), b"on 1");
}

#[test]
fn read_only_ksocks_cannot_write() {
    let k = open_ro(0);
    let e = expect_errno(
        k.send_msg(&MessageRepr::announcement("$.Basic.RO", b"")),
        Errno::BADF,
        "write on a read-only Ksock",
    );
    assert!(e.to_string().contains("read-only"), "{e}");
    // poll never reports a read-only Ksock writable (§2.3).
    let r = ok(k.poll(Ready::BOTH, Some(std::time::Duration::ZERO)), "poll");
    assert_eq!(r, Ready::default());
}

#[test]
fn duplicate_bindings_give_duplicate_copies() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Basic.Dup", Role::Listener);
    bind(&l, "$.Basic.Dup", Role::Listener);
    bind(&l, "$.Basic.*", Role::Listener);
    let id = send(&s, &MessageRepr::announcement("$.Basic.Dup", b"x"));
    for i in 0..3 {
        assert_eq!(recv(&l, &format!("copy {i}")).id(), id);
    }
    assert_empty(&l, "three bindings, three copies");
    ok(l.unbind("$.Basic.Dup", Role::Listener), "unbind one");
    send(&s, &MessageRepr::announcement("$.Basic.Dup", b"y"));
    assert_eq!(ok(l.num_messages(), "NUMMSGS"), 2);
}
