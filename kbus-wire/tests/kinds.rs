//! Message kinds, Reply / Stateful Request construction (§9.3), printed
//! forms, flags, ids and the pointy header.

use kbus_wire::{
    Error, Flags, Kind, Layout, Layout32, Layout64, Message, MessageFields, MessageId, MessageRepr,
    Name, NativeLayout, OrigFrom, SyntheticName,
};

/// Emits `repr` into a fresh buffer and returns the bytes.
fn bytes<L: Layout>(repr: &MessageRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len_in::<L>()];
    repr.emit_in::<L>(&mut buf).unwrap();
    buf
}

#[test]
fn constructors_and_kinds() {
    let a = MessageRepr::announcement("$.Fred", b"hi");
    assert_eq!(a.kind(), Kind::Announcement);
    assert_eq!(a.flags, Flags::empty());
    let r = MessageRepr::request("$.Fred", b"");
    assert_eq!(r.kind(), Kind::Request);
    assert!(r.is_request() && !r.is_stateful_request() && !r.is_reply());

    // The Replier's copy: KBUS sets id, from and WANT_YOU_TO_REPLY.
    let mut delivered = r;
    delivered.id = MessageId::new(0, 11);
    delivered.from = 4;
    delivered.orig_from = OrigFrom::new(2, 3);
    delivered.flags |= Flags::WANT_YOU_TO_REPLY | Flags::URGENT | Flags::from_user_bits(7);
    for layout_bytes in [bytes::<Layout64>(&delivered), bytes::<Layout32>(&delivered)] {
        let v64 = Message::<_, Layout64>::new_checked_in(&layout_bytes[..]);
        let v32 = Message::<_, Layout32>::new_checked_in(&layout_bytes[..]);
        let msg = if layout_bytes.len() == 88 + 8 + 4 {
            MessageRepr::parse(v64.as_ref().unwrap()).unwrap()
        } else {
            MessageRepr::parse(v32.as_ref().unwrap()).unwrap()
        };
        let reply = MessageRepr::reply_to(&msg, b"answer").unwrap();
        assert_eq!(reply.name, "$.Fred");
        assert_eq!(reply.in_reply_to, MessageId::new(0, 11));
        assert_eq!(reply.to, 4);
        assert_eq!(reply.flags, Flags::empty(), "flags are not copied");
        assert_eq!(reply.orig_from, OrigFrom::ZERO, "orig_from is not copied");
        assert_eq!(reply.data, b"answer");
        assert_eq!(reply.kind(), Kind::Reply);
        assert!(reply.is_reply());
    }

    // Not ours to reply to: a Listener's copy, or not a Request at all.
    assert_eq!(MessageRepr::reply_to(&r, b""), Err(Error::NotOursToReply));
    assert_eq!(MessageRepr::reply_to(&a, b""), Err(Error::NotOursToReply));
}

#[test]
fn reply_to_a_message_view() {
    let mut req = MessageRepr::request("$.Svc.Ping", b"?");
    req.flags |= Flags::WANT_YOU_TO_REPLY;
    req.id = MessageId::new(0, 5);
    req.from = 9;
    let buf = bytes::<NativeLayout>(&req);
    let msg = Message::new_checked(&buf[..]).unwrap();
    assert!(msg.wants_us_to_reply());
    let reply = MessageRepr::reply_to(&msg, b"!").unwrap();
    assert_eq!((reply.to, reply.in_reply_to), (9, MessageId::new(0, 5)));
}

#[test]
fn stateful_requests() {
    // From a Reply: to = its sender, final_to = its orig_from.
    let mut reply = MessageRepr::announcement("$.Svc", b"");
    reply.in_reply_to = MessageId::new(0, 3);
    reply.from = 7;
    reply.orig_from = OrigFrom::new(1, 2);
    let s = MessageRepr::stateful_request(&reply, "$.Svc.Next", b"x").unwrap();
    assert_eq!((s.to, s.final_to), (7, OrigFrom::new(1, 2)));
    assert!(s.flags.contains(Flags::WANT_A_REPLY), "it is a Request");
    assert!(s.is_stateful_request());
    assert_eq!(s.kind(), Kind::StatefulRequest);
    // From a Stateful Request: copies to and final_to.
    let s2 = MessageRepr::stateful_request(&s, "$.Svc.More", b"").unwrap();
    assert_eq!((s2.to, s2.final_to), (7, OrigFrom::new(1, 2)));
    // From a view of a Reply.
    let buf = bytes::<Layout32>(&reply);
    let view = Message::<_, Layout32>::new_checked_in(&buf[..]).unwrap();
    let s3 = MessageRepr::stateful_request(&view, "$.Svc.Again", b"").unwrap();
    assert_eq!(s3.to, 7);
    // Otherwise refused.
    let plain = MessageRepr::request("$.Svc", b"");
    assert_eq!(
        MessageRepr::stateful_request(&plain, "$.Svc", b""),
        Err(Error::NotReplyOrStatefulRequest)
    );
    assert_eq!(
        MessageRepr::stateful_request(&MessageRepr::announcement("$.A", b""), "$.Svc", b""),
        Err(Error::NotReplyOrStatefulRequest)
    );
}

#[test]
fn status_and_synthetic_kinds() {
    let mut gone = MessageRepr::announcement("$.KBUS.Replier.GoneAway", b"");
    gone.to = 2;
    gone.from = 4;
    gone.in_reply_to = MessageId::new(0, 3);
    gone.flags = Flags::SYNTHETIC;
    assert_eq!(gone.kind(), Kind::Status);
    assert_eq!(gone.synthetic_name(), Some(SyntheticName::ReplierGoneAway));
    // The spec's printed example (§9.3).
    assert_eq!(
        gone.to_string(),
        "<Status '$.KBUS.Replier.GoneAway', to=2, from=4, in_reply_to=[0:3], flags=0x4 (SYN)>"
    );
    let buf = bytes::<NativeLayout>(&gone);
    let view = Message::new_checked(&buf[..]).unwrap();
    assert_eq!(view.kind(), Kind::Status);
    assert_eq!(view.to_string(), gone.to_string());

    let mut lost = MessageRepr::announcement("$.KBUS.UnbindEventsLost", b"");
    lost.flags = Flags::SYNTHETIC;
    assert_eq!(lost.kind(), Kind::Status);
    // A user Reply named `$.KBUS.*` is a Status too, like Python's cast().
    let mut user = MessageRepr::announcement("$.KBUS.Replier.Ignored", b"");
    user.in_reply_to = MessageId::new(0, 1);
    assert_eq!(user.kind(), Kind::Status);
    // A synthetic-named announcement without the flag is just an announcement.
    assert_eq!(
        MessageRepr::announcement("$.KBUS.Replier.Ignored", b"").kind(),
        Kind::Announcement
    );
}

#[test]
fn printed_forms() {
    let mut r = MessageRepr::request("$.Fred", b"abc");
    r.to = 5;
    assert_eq!(
        r.to_string(),
        "<StatefulRequest '$.Fred', to=5, flags=0x1 (REQ), data=b\"abc\">"
    );
    let mut a = MessageRepr::announcement("$.Fred", &[0, 1, 0xff]);
    a.id = MessageId::new(1, 2);
    a.orig_from = OrigFrom::new(3, 4);
    a.final_to = OrigFrom::new(5, 6);
    a.flags = Flags::from_bits_retain(0x30F | 0x1_0000);
    assert_eq!(
        a.to_string(),
        "<Status '$.Fred', id=[1:2], orig_from=(3,4), final_to=(5,6), \
         flags=0x1030f (REQ,YOU,SYN,URG,aFL,aWT), data=hex:0001ff>"
    );
    // Long data is truncated; quotes are escaped.
    let long = [b'x'; 100];
    let s = MessageRepr::announcement("$.L", &long).to_string();
    assert!(
        s.ends_with(&format!("data=b\"{}\"... (100 bytes)>", "x".repeat(64))),
        "{s}"
    );
    let s = MessageRepr::announcement("$.Q", b"say \"hi\"\n").to_string();
    assert!(s.contains(r#"data=b"say \"hi\"\n""#), "{s}");
    let bin = [0x80u8; 40];
    let s = MessageRepr::announcement("$.B", &bin).to_string();
    assert!(
        s.ends_with(&format!("data=hex:{}... (40 bytes)>", "80".repeat(32))),
        "{s}"
    );
    // Debug is readable too, for both views and reprs.
    let buf = bytes::<Layout64>(&r);
    let view = Message::<_, Layout64>::new_checked_in(&buf[..]).unwrap();
    let d = format!("{view:?}");
    assert!(d.contains("kind: StatefulRequest"), "{d}");
    assert!(d.contains("name: '$.Fred'"), "{d}");
    assert!(d.contains("flags: 0x1 (REQ)"), "{d}");
    assert!(d.contains("layout: 64-bit"), "{d}");
    assert!(format!("{r:?}").starts_with("MessageRepr<StatefulRequest"));
}

#[test]
fn ids_and_flags() {
    let id = MessageId::new(0, 3);
    assert_eq!(id.to_string(), "[0:3]");
    assert_eq!(format!("{id:?}"), "MessageId(0, 3)");
    assert_eq!(id + 1, MessageId::new(0, 4));
    let mut id2 = MessageId::new(0, u32::MAX);
    id2 += 2;
    assert_eq!(id2, MessageId::new(0, 1), "wraps");
    assert!(MessageId::new(0, 5) < MessageId::new(1, 0));
    assert!(MessageId::new(1, 1) < MessageId::new(1, 2));
    let o = OrigFrom::new(1, 2);
    assert_eq!(o.to_string(), "(1,2)");
    assert_eq!(format!("{o:?}"), "OrigFrom(1, 2)");
    assert!(OrigFrom::new(0, 9) < o);

    let mut f = Flags::from_bits_retain(0xABCD_0000);
    f.insert(Flags::URGENT);
    f.set(Flags::ALL_OR_WAIT, true);
    f.remove(Flags::URGENT);
    assert_eq!(f.bits(), 0xABCD_0100);
    assert_eq!(f.user_bits(), 0xABCD);
    assert_eq!(f.with_user_bits(1).bits(), 0x0001_0100);
    assert_eq!(f.to_string(), "0xabcd0100 (aWT)");
    assert_eq!(Flags::empty().to_string(), "0x0");
    assert_eq!((f - Flags::ALL_OR_WAIT).bits(), 0xABCD_0000);
    assert!(f.intersects(Flags::USER_MASK));
    // Every bit survives a round trip through the wire.
    let mut r = MessageRepr::announcement("$.F", b"");
    r.flags = Flags::from_bits_retain(0xFFFF_FFFF);
    let buf = bytes::<NativeLayout>(&r);
    let m = Message::new_checked(&buf[..]).unwrap();
    assert_eq!(m.flags().bits(), 0xFFFF_FFFF);
}

#[test]
fn setters_and_mutable_views() {
    let r = MessageRepr::announcement("$.Fred", b"abcd");
    let mut buf = bytes::<Layout32>(&r);
    let mut m = Message::<_, Layout32>::new_checked_in(&mut buf[..]).unwrap();
    m.set_to(3);
    m.set_from(4);
    m.set_id(MessageId::new(5, 6));
    m.set_in_reply_to(MessageId::new(7, 8));
    m.set_orig_from(OrigFrom::new(9, 10));
    m.set_final_to(OrigFrom::new(11, 12));
    m.set_extra(13);
    m.set_flags(Flags::URGENT);
    m.data_mut().copy_from_slice(b"wxyz");
    m.name_bytes_mut()[2] = b'G';
    assert!(m.check().is_ok());
    assert_eq!(
        (m.to(), m.from(), m.id(), m.in_reply_to(), m.extra()),
        (3, 4, MessageId::new(5, 6), MessageId::new(7, 8), 13)
    );
    assert_eq!(
        (m.orig_from(), m.final_to()),
        (OrigFrom::new(9, 10), OrigFrom::new(11, 12))
    );
    assert_eq!((m.name(), m.data()), (Name::new("$.Gred"), &b"wxyz"[..]));
    assert!(m.is_urgent());
    m.set_name_ptr(0x1234);
    assert_eq!(
        m.check(),
        Err(Error::NotEntire {
            name_ptr: 0x1234,
            data_ptr: 0
        })
    );
    m.set_name_ptr(0);
    m.set_final_guard(1);
    assert_eq!(m.check(), Err(Error::BadFinalGuard { found: 1 }));
}

#[test]
fn emitters_into_owned_buffers() {
    let r = MessageRepr::request("$.Fred", b"abc1234");
    let v: heapless::Vec<u8, 128> = r.emit_heapless_in::<Layout64, 128>().unwrap();
    assert_eq!(v.len(), 108);
    let too_small = r.emit_heapless_in::<Layout64, 100>();
    assert_eq!(
        too_small,
        Err(Error::BufferTooSmall {
            needed: 108,
            got: 100
        })
    );
    let m = Message::<_, Layout64>::new_checked_in(v).unwrap();
    assert_eq!(m.name(), "$.Fred");
    #[cfg(feature = "alloc")]
    {
        let owned = r.to_vec_in::<Layout32>().unwrap();
        assert_eq!(owned.len(), 92);
        let m = Message::<_, Layout32>::new_checked_in(owned).unwrap();
        assert_eq!(m.data(), b"abc1234");
        assert_eq!(m.clone(), m);
    }
}

#[test]
fn pointy_header_points_at_borrowed_bytes() {
    let name = String::from("$.Pointy");
    let data = vec![1u8, 2, 3, 4, 5];
    let mut repr = MessageRepr::request(&name, &data);
    repr.to = 6;
    let pointy = repr.pointy_header();
    let bytes = pointy.as_bytes();
    assert_eq!(bytes.len(), NativeLayout::HEADER_LEN);
    assert_eq!(pointy.name_ptr(), name.as_ptr() as usize);
    assert_eq!(pointy.data_ptr(), data.as_ptr() as usize);
    assert_eq!(pointy.message_len(), repr.buffer_len());
    // The same header as the entire form, except for the two pointers.
    let entire = bytes_native(&repr);
    let view = Message::new_unchecked(bytes);
    assert_eq!(view.name_ptr(), name.as_ptr() as usize as u64);
    assert_eq!(view.data_ptr(), data.as_ptr() as usize as u64);
    assert_eq!(
        view.check(),
        Err(Error::NotEntire {
            name_ptr: name.as_ptr() as usize as u64,
            data_ptr: data.as_ptr() as usize as u64
        })
    );
    let mut copy = bytes.to_vec();
    let mut m = Message::new_unchecked(&mut copy[..]);
    m.set_name_ptr(0);
    m.set_data_ptr(0);
    assert_eq!(&copy[..], &entire[..NativeLayout::HEADER_LEN]);

    // No data: NULL data pointer (§3.5).
    let empty = MessageRepr::announcement(&name, &[]);
    let p = empty.pointy_header();
    assert_eq!(p.data_ptr(), 0);
    assert_eq!(p.header().data_len, 0);
    assert_eq!(p.name_ptr(), name.as_ptr() as usize);
}

fn bytes_native(repr: &MessageRepr<'_>) -> Vec<u8> {
    bytes::<NativeLayout>(repr)
}

/// A 64-bit host can write and read 32-bit messages and back: the same
/// fields, two byte images that differ only in the header's tail.
#[test]
fn cross_layout() {
    let mut r = MessageRepr::request("$.Cross.Layout", b"payload");
    r.id = MessageId::new(3, 4);
    r.final_to = OrigFrom::new(8, 9);
    let b64 = bytes::<Layout64>(&r);
    let b32 = bytes::<Layout32>(&r);
    assert_eq!(b64.len(), b32.len() + 16);
    assert_eq!(&b64[..60], &b32[..60], "common header prefix");
    assert_eq!(&b64[88..], &b32[72..], "name, data and final guard");
    let v64 = Message::<_, Layout64>::new_checked_in(&b64[..]).unwrap();
    let v32 = Message::<_, Layout32>::new_checked_in(&b32[..]).unwrap();
    let p64 = MessageRepr::parse(&v64).unwrap();
    let p32 = MessageRepr::parse(&v32).unwrap();
    assert_eq!(p64, r);
    assert_eq!(p32, r);
    // Re-emit each parsed one in the other layout.
    assert_eq!(bytes::<Layout32>(&p64), b32);
    assert_eq!(bytes::<Layout64>(&p32), b64);
    // Reading with the wrong layout fails cleanly.
    assert!(Message::<_, Layout32>::new_checked_in(&b64[..]).is_err());
    assert!(Message::<_, Layout64>::new_checked_in(&b32[..]).is_err());
}

#[test]
fn errors_display_and_source() {
    use core::error::Error as _;
    let e = Error::BufferTooSmall {
        needed: 108,
        got: 100,
    };
    assert_eq!(
        e.to_string(),
        "buffer too small: message needs 108 bytes, buffer has 100"
    );
    let e = Error::Name(kbus_wire::NameError::BadByte {
        index: 3,
        byte: b'-',
    });
    assert_eq!(
        e.to_string(),
        "invalid message name: bad byte 0x2d at index 3 of name"
    );
    assert!(e.source().is_some());
}
