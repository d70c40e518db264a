//! Bad input of every kind gives the spec's errno and leaves the Ksock
//! usable (spec §3.5, §5.1, §5.2, §3.11–3.12).

use kbus_guest_tests::*;
use kbus_rustix::{Op, RawUpdate, JUST_ASK};
use kbus_wire::START_GUARD;

const NAME: &str = "$.Bad.Ok";

/// The Ksock still sends and receives after the error.
#[track_caller]
fn still_usable(s: &Ksock, l: &Ksock, what: &str) {
    expect_errno(
        s.send(),
        Errno::NOMSG,
        &format!("{what}: nothing left pending"),
    );
    let id = send(s, &MessageRepr::announcement(NAME, what.as_bytes()));
    let m = recv(l, what);
    assert_eq!((m.id(), m.data()), (id, what.as_bytes()), "{what}");
    assert_empty(l, what);
}

fn good_entire(data: &[u8]) -> Vec<u8> {
    MessageRepr::announcement(NAME, data).to_vec().unwrap()
}

fn set_u32(bytes: &mut [u8], off: usize, v: u32) {
    bytes[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn broken_headers_are_einval_at_write() {
    let s = open_rw(0);
    let l = open_ro(0);
    bind(&l, NAME, Role::Listener);
    let h = kbus_wire::NATIVE_HEADER_LEN;
    let end_guard_off = h - if h == 88 { 8 } else { 4 };
    type Patch = fn(&mut Vec<u8>, usize);
    let cases: [(&str, Errno, Patch); 8] = [
        ("bad start guard", Errno::INVAL, |b, _| {
            set_u32(b, 0, 0x1234_5678)
        }),
        ("bad header end guard", Errno::INVAL, |b, e| {
            set_u32(b, e, START_GUARD)
        }),
        ("name_len 0", Errno::INVAL, |b, _| set_u32(b, 52, 0)),
        ("name_len 1001", Errno::NAMETOOLONG, |b, _| {
            set_u32(b, 52, 1001)
        }),
        ("both ALL_OR flags", Errno::INVAL, |b, _| {
            set_u32(b, 48, 0x300)
        }),
        ("bad final guard", Errno::INVAL, |b, _| {
            let n = b.len();
            set_u32(b, n - 4, START_GUARD)
        }),
        ("data_len disagrees (too big)", Errno::MSGSIZE, |b, _| {
            set_u32(b, 56, 10_000_000)
        }),
        // 5 data bytes declared as 2: the final guard lands on data bytes.
        ("data_len disagrees (too small)", Errno::INVAL, |b, _| {
            set_u32(b, 56, 2)
        }),
    ];
    for (what, errno, patch) in cases {
        let mut bytes = good_entire(b"data!");
        patch(&mut bytes, end_guard_off);
        let e = expect_errno(s.send_entire(&bytes), errno, what);
        assert_eq!(e.op(), Op::Write, "{what}");
        still_usable(&s, &l, what);
    }
}

#[test]
fn bytes_after_a_complete_message_are_emsgsize() {
    let s = open_rw(0);
    let l = open_ro(0);
    bind(&l, NAME, Role::Listener);
    let mut bytes = good_entire(b"abc");
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    let e = expect_errno(s.send_entire(&bytes), Errno::MSGSIZE, "4 extra bytes");
    assert!(e.to_string().contains("after a complete message"), "{e}");
    still_usable(&s, &l, "extra bytes in one write");
    // The same in two writes: the second write fails and drops the message.
    let bytes = good_entire(b"abc");
    ok(s.write_data(&bytes), "complete message");
    expect_errno(s.write_data(&[0]), Errno::MSGSIZE, "one more byte");
    still_usable(&s, &l, "extra bytes in a second write");
    // An incomplete message: SEND says EINVAL and discards it.
    ok(s.write_data(&bytes[..bytes.len() - 1]), "all but one byte");
    expect_errno(s.send(), Errno::INVAL, "SEND of an incomplete message");
    still_usable(&s, &l, "incomplete message");
    // DISCARD throws away a partly written message.
    ok(s.write_data(&bytes[..10]), "10 bytes");
    ok(s.discard(), "DISCARD");
    still_usable(&s, &l, "discarded message");
}

#[test]
fn pointy_messages_with_bad_pointers() {
    let s = open_rw(0);
    let l = open_ro(0);
    bind(&l, NAME, Role::Listener);
    let name = "$.Bad.Ok\0";
    let data = *b"pointy";
    let repr = MessageRepr::announcement(&name[..8], &data);
    let header = repr.pointy_header();
    let good: Vec<u8> = header.as_bytes().to_vec();
    let mut msg = Message::new_unchecked(good.clone());

    // A name pointer into unmapped memory: EFAULT at SEND.
    msg.set_name_ptr(0x10);
    ok(
        s.write_data(msg.header_bytes()),
        "header with a bad name pointer",
    );
    let e = expect_errno(s.send(), Errno::FAULT, "bad name pointer");
    assert_eq!(e.op(), Op::Send);
    still_usable(&s, &l, "bad name pointer");

    // A data pointer into unmapped memory.
    let mut msg = Message::new_unchecked(good.clone());
    msg.set_data_ptr(0x10);
    ok(
        s.write_data(msg.header_bytes()),
        "header with a bad data pointer",
    );
    expect_errno(s.send(), Errno::FAULT, "bad data pointer");
    still_usable(&s, &l, "bad data pointer");

    // Inconsistent pointers and lengths (spec §3.5): EINVAL at write.
    let mut msg = Message::new_unchecked(good.clone());
    msg.set_name_ptr(0);
    expect_errno(
        s.write_data(msg.header_bytes()),
        Errno::INVAL,
        "name NULL, data not",
    );
    still_usable(&s, &l, "name NULL, data not");
    let mut msg = Message::new_unchecked(good.clone());
    msg.set_data_ptr(0);
    expect_errno(
        s.write_data(msg.header_bytes()),
        Errno::INVAL,
        "data NULL, data_len 6",
    );
    still_usable(&s, &l, "data NULL with data_len");
    let mut msg = Message::new_unchecked(good.clone());
    msg.set_data_len(0);
    expect_errno(
        s.write_data(msg.header_bytes()),
        Errno::INVAL,
        "data pointer, data_len 0",
    );
    still_usable(&s, &l, "data pointer with data_len 0");

    // A pointy header followed by anything: EMSGSIZE.
    let mut more = good.clone();
    more.push(0);
    expect_errno(
        s.write_data(&more),
        Errno::MSGSIZE,
        "byte after a pointy header",
    );
    still_usable(&s, &l, "byte after a pointy header");

    // Writing the good header and sending it works (pointers still valid).
    ok(s.write_data(&good), "good pointy header");
    let id = ok(s.send(), "SEND");
    let m = recv(&l, "hand-made pointy message");
    assert_eq!((m.id(), m.data()), (id, &data[..]));
}

#[test]
fn bad_ioctl_values() {
    let k = open_rw(0);
    for which in [
        RawUpdate::MessagesOnce,
        RawUpdate::Verbose,
        RawUpdate::ReportReplierBinds,
    ] {
        for bad in [2u32, 7, 0x1_0000, JUST_ASK - 1] {
            let e = expect_errno(
                k.raw_update(which, bad),
                Errno::INVAL,
                &format!("{which:?} {bad}"),
            );
            assert!(e.to_string().contains("just ask"), "{e}");
        }
        assert_eq!(
            ok(k.raw_update(which, JUST_ASK), "just ask"),
            0,
            "{which:?} unchanged"
        );
    }
    // Binding with a raw is_replier of 2 needs the same value to unbind.
    ok(k.bind_raw(b"$.Bad.Raw", 2), "bind with is_replier 2");
    assert_eq!(
        ok(k.find_replier("$.Bad.Raw"), "REPLIER"),
        Some(ok(k.ksock_id(), "id"))
    );
    expect_errno(k.unbind_raw(b"$.Bad.Raw", 1), Errno::INVAL, "unbind with 1");
    ok(k.unbind_raw(b"$.Bad.Raw", 2), "unbind with 2");
    // REPLIER does not validate names, but checks the length.
    assert_eq!(ok(k.find_replier("not a name"), "REPLIER"), None);
    expect_errno(
        k.find_replier(vec![b'x'; 1001]),
        Errno::NAMETOOLONG,
        "REPLIER 1001",
    );
    // Replier binding to the bind-event name is refused.
    expect_errno(
        k.bind(kbus_wire::name::REPLIER_BIND_EVENT, Role::Replier),
        Errno::BADMSG,
        "replier for $.KBUS.ReplierBindEvent",
    );
    ok(
        k.bind(kbus_wire::name::REPLIER_BIND_EVENT, Role::Listener),
        "listener is fine",
    );
    // SEND with nothing written.
    let e = expect_errno(k.send(), Errno::NOMSG, "SEND of nothing");
    assert!(e.to_string().contains("nothing was written"), "{e}");
}
