//! Byte-exact golden vectors from the worked examples of the spec (§3.3,
//! §3.4, §3.7), for both layouts. Expected bytes are built here from the
//! spec's offset tables, independently of the crate's own constants.

// The spec's formulas are transcribed literally.
#![allow(clippy::manual_div_ceil)]

use kbus_wire::{
    entire_len, padded_data_len, padded_name_len, Error, Flags, Header32, Header64, Layout,
    Layout32, Layout64, Message, MessageId, MessageRepr, Name, NameError, OrigFrom,
    ReplierBindEvent, ReplierBindEventRepr,
};
use zerocopy::IntoBytes;

const START: u32 = 0x7375_624B;
const END: u32 = 0x4B62_7573;

/// Spec §3.3 offsets for one layout.
struct Spec {
    h: usize,
    name_ptr: usize,
    data_ptr: usize,
    ptr_len: usize,
    end_guard: usize,
    padding: &'static [usize],
}

const SPEC64: Spec = Spec {
    h: 88,
    name_ptr: 64,
    data_ptr: 72,
    ptr_len: 8,
    end_guard: 80,
    padding: &[60, 84],
};
const SPEC32: Spec = Spec {
    h: 72,
    name_ptr: 60,
    data_ptr: 64,
    ptr_len: 4,
    end_guard: 68,
    padding: &[],
};

fn put(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// An entire message built by hand from the spec's tables.
#[allow(clippy::too_many_arguments)]
fn golden(
    spec: &Spec,
    id: (u32, u32),
    in_reply_to: (u32, u32),
    to: u32,
    from: u32,
    orig_from: (u32, u32),
    final_to: (u32, u32),
    flags: u32,
    name: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let pn = 4 * ((name.len() + 1 + 3) / 4);
    let pd = 4 * ((data.len() + 3) / 4);
    let total = spec.h + pn + pd + 4;
    let mut b = vec![0u8; total];
    put(&mut b, 0, START);
    put(&mut b, 4, id.0);
    put(&mut b, 8, id.1);
    put(&mut b, 12, in_reply_to.0);
    put(&mut b, 16, in_reply_to.1);
    put(&mut b, 20, to);
    put(&mut b, 24, from);
    put(&mut b, 28, orig_from.0);
    put(&mut b, 32, orig_from.1);
    put(&mut b, 36, final_to.0);
    put(&mut b, 40, final_to.1);
    put(&mut b, 44, 0); // extra
    put(&mut b, 48, flags);
    put(&mut b, 52, name.len() as u32);
    put(&mut b, 56, data.len() as u32);
    // name and data pointers stay NULL, padding stays zero
    put(&mut b, spec.end_guard, END);
    b[spec.h..spec.h + name.len()].copy_from_slice(name);
    b[spec.h + pn..spec.h + pn + data.len()].copy_from_slice(data);
    put(&mut b, total - 4, END);
    b
}

fn simple(spec: &Spec, name: &[u8], data: &[u8]) -> Vec<u8> {
    golden(spec, (0, 0), (0, 0), 0, 0, (0, 0), (0, 0), 0, name, data)
}

#[test]
fn header_sizes_and_padded_lengths() {
    assert_eq!(Layout64::HEADER_LEN, 88);
    assert_eq!(Layout32::HEADER_LEN, 72);
    assert_eq!(size_of::<Header64>(), 88);
    assert_eq!(size_of::<Header32>(), 72);
    let native = if cfg!(target_pointer_width = "64") {
        88
    } else {
        72
    };
    assert_eq!(kbus_wire::NATIVE_HEADER_LEN, native);
    // PN / PD from the spec's formulas
    for n in 0..64usize {
        assert_eq!(padded_name_len(n), 4 * ((n + 1 + 3) / 4), "PN({n})");
        assert_eq!(padded_data_len(n), 4 * ((n + 3) / 4), "PD({n})");
        assert!(padded_name_len(n) > n, "always at least one NUL");
    }
    assert_eq!(padded_name_len(4), 8);
    assert_eq!(padded_name_len(6), 8);
    assert_eq!(padded_data_len(0), 0);
    assert_eq!(padded_data_len(7), 8);
    // saturating, never panicking
    assert_eq!(entire_len::<Layout64>(usize::MAX, usize::MAX), usize::MAX);
    assert_eq!(entire_len::<Layout32>(0, usize::MAX), usize::MAX);
}

#[test]
fn fred_no_data_100_and_84() {
    for (spec, total) in [(&SPEC64, 100), (&SPEC32, 84)] {
        let expected = simple(spec, b"$.Fred", b"");
        assert_eq!(expected.len(), total);
        // name area `$.Fred\0\0`
        assert_eq!(&expected[spec.h..spec.h + 8], b"$.Fred\0\0");
        let repr = MessageRepr::announcement("$.Fred", b"");
        let mut out = vec![0xAAu8; total + 3];
        let n = if spec.h == 88 {
            assert_eq!(repr.buffer_len_in::<Layout64>(), total);
            repr.emit_in::<Layout64>(&mut out).unwrap()
        } else {
            assert_eq!(repr.buffer_len_in::<Layout32>(), total);
            repr.emit_in::<Layout32>(&mut out).unwrap()
        };
        assert_eq!(n, total);
        assert_eq!(&out[..n], &expected[..], "layout H={}", spec.h);
        assert_eq!(&out[n..], &[0xAA; 3], "bytes after the message untouched");
    }
    assert_eq!(entire_len::<Layout64>(6, 0), 100);
    assert_eq!(entire_len::<Layout32>(6, 0), 84);
}

#[test]
fn fred_with_seven_data_bytes_108_and_92() {
    for (spec, total, data_at, guard_at) in [(&SPEC64, 108, 96, 104), (&SPEC32, 92, 80, 88)] {
        let expected = simple(spec, b"$.Fred", b"abc1234");
        assert_eq!(expected.len(), total);
        assert_eq!(&expected[spec.h..spec.h + 6], b"$.Fred");
        assert_eq!(&expected[data_at..data_at + 8], b"abc1234\0");
        assert_eq!(&expected[guard_at..guard_at + 4], &END.to_ne_bytes());
        let repr = MessageRepr::announcement("$.Fred", b"abc1234");
        let mut out = vec![0u8; total];
        if spec.h == 88 {
            assert_eq!(repr.emit_in::<Layout64>(&mut out), Ok(total));
            let m = Message::<_, Layout64>::new_checked_in(&expected[..]).unwrap();
            assert_eq!(
                (m.name(), m.data(), m.total_len()),
                (Name::new("$.Fred"), &b"abc1234"[..], total)
            );
        } else {
            assert_eq!(repr.emit_in::<Layout32>(&mut out), Ok(total));
            let m = Message::<_, Layout32>::new_checked_in(&expected[..]).unwrap();
            assert_eq!(
                (m.name(), m.data(), m.total_len()),
                (Name::new("$.Fred"), &b"abc1234"[..], total)
            );
        }
        assert_eq!(out, expected, "layout H={}", spec.h);
    }
}

#[test]
fn four_byte_name_gets_four_nuls() {
    for spec in [&SPEC64, &SPEC32] {
        let expected = simple(spec, b"$.ab", b"");
        assert_eq!(&expected[spec.h..spec.h + 8], b"$.ab\0\0\0\0");
        assert_eq!(expected.len(), spec.h + 8 + 4);
        let mut out = vec![0xFFu8; expected.len()];
        let repr = MessageRepr::announcement("$.ab", b"");
        if spec.h == 88 {
            repr.emit_in::<Layout64>(&mut out).unwrap();
        } else {
            repr.emit_in::<Layout32>(&mut out).unwrap();
        }
        assert_eq!(out, expected);
    }
}

#[cfg(target_endian = "little")]
#[test]
fn guards_read_as_ascii_on_little_endian() {
    let b = simple(&SPEC64, b"$.Fred", b"");
    assert_eq!(&b[0..4], b"Kbus");
    assert_eq!(&b[80..84], b"subK");
    assert_eq!(&b[96..100], b"subK");
}

/// Every header field at its spec offset: a distinct value per field, the
/// padding zero, in both directions (emit and parse).
#[test]
fn every_field_at_its_offset() {
    for spec in [&SPEC64, &SPEC32] {
        let expected = golden(
            spec,
            (0x0101_0101, 0x0202_0202),
            (0x0303_0303, 0x0404_0404),
            0x0505_0505,
            0x0606_0606,
            (0x0707_0707, 0x0808_0808),
            (0x0909_0909, 0x0A0A_0A0A),
            0xBEEF_0309,
            b"$.Sensors.Kitchen",
            &[0xFE; 13],
        );
        let repr = MessageRepr {
            id: MessageId::new(0x0101_0101, 0x0202_0202),
            in_reply_to: MessageId::new(0x0303_0303, 0x0404_0404),
            to: 0x0505_0505,
            from: 0x0606_0606,
            orig_from: OrigFrom::new(0x0707_0707, 0x0808_0808),
            final_to: OrigFrom::new(0x0909_0909, 0x0A0A_0A0A),
            extra: 0,
            flags: Flags::from_bits_retain(0xBEEF_0309),
            name: Name::new("$.Sensors.Kitchen"),
            data: &[0xFE; 13],
        };
        let mut out = vec![0x55u8; expected.len()];
        if spec.h == 88 {
            repr.emit_in::<Layout64>(&mut out).unwrap();
        } else {
            repr.emit_in::<Layout32>(&mut out).unwrap();
        }
        assert_eq!(out, expected, "H={}", spec.h);
        for &p in spec.padding {
            assert_eq!(&out[p..p + 4], &[0; 4], "padding at {p} is zero");
        }
        assert_eq!(
            &out[spec.name_ptr..spec.name_ptr + spec.ptr_len],
            &[0; 8][..spec.ptr_len]
        );
        assert_eq!(
            &out[spec.data_ptr..spec.data_ptr + spec.ptr_len],
            &[0; 8][..spec.ptr_len]
        );

        fn check<L: Layout>(bytes: &[u8], repr: &MessageRepr<'_>) {
            let m = Message::<_, L>::new_checked_in(bytes).unwrap();
            assert_eq!(m.start_guard(), START);
            assert_eq!(m.end_guard(), END);
            assert_eq!(m.final_guard(), END);
            assert_eq!(m.extra(), 0);
            assert_eq!(m.name_len(), 17);
            assert_eq!(m.data_len(), 13);
            assert_eq!((m.name_ptr(), m.data_ptr()), (0, 0));
            assert_eq!(MessageRepr::parse(&m).unwrap(), *repr);
        }
        if spec.h == 88 {
            check::<Layout64>(&out, &repr);
            let h: Header64 = Message::<_, Layout64>::new_checked_in(&out[..])
                .unwrap()
                .header();
            assert_eq!(h.as_bytes(), &out[..88]);
            assert_eq!(h.flags, 0xBEEF_0309);
            assert_eq!(h.to, 0x0505_0505);
        } else {
            check::<Layout32>(&out, &repr);
            let h: Header32 = Message::<_, Layout32>::new_checked_in(&out[..])
                .unwrap()
                .header();
            assert_eq!(h.as_bytes(), &out[..72]);
            assert_eq!(h.final_to, OrigFrom::new(0x0909_0909, 0x0A0A_0A0A));
        }
    }
}

/// Spec §3.4: pad bytes are ignored on input, always zero on output.
#[test]
fn padding_contents_ignored_on_parse() {
    let mut b = simple(&SPEC64, b"$.Fred", b"abc1234");
    b[60] = 0xEE; // header padding
    b[84] = 0xEE; // tail padding
    b[94] = 0xEE; // name padding (second NUL)
    b[103] = 0xEE; // data padding
    let m = Message::<_, Layout64>::new_checked_in(&b[..]).unwrap();
    assert_eq!(m.name(), "$.Fred");
    assert_eq!(m.data(), b"abc1234");
    let mut out = vec![0; 108];
    MessageRepr::parse(&m)
        .unwrap()
        .emit_in::<Layout64>(&mut out)
        .unwrap();
    assert_eq!(out, simple(&SPEC64, b"$.Fred", b"abc1234"));
}

#[test]
fn errors_are_specific() {
    let good = simple(&SPEC64, b"$.Fred", b"abc1234");
    let parse = |b: &[u8]| Message::<_, Layout64>::new_checked_in(b.to_vec()).map(|_| ());

    assert_eq!(
        parse(&good[..50]),
        Err(Error::Truncated {
            needed: 88,
            got: 50
        })
    );
    assert_eq!(
        parse(&good[..107]),
        Err(Error::Truncated {
            needed: 108,
            got: 107
        })
    );
    let mut b = good.clone();
    b[0] ^= 1;
    assert!(matches!(parse(&b), Err(Error::BadStartGuard { .. })));
    let mut b = good.clone();
    b[80] ^= 1;
    assert!(matches!(parse(&b), Err(Error::BadEndGuard { .. })));
    let mut b = good.clone();
    b[104] ^= 1;
    assert!(matches!(parse(&b), Err(Error::BadFinalGuard { .. })));
    let mut b = good.clone();
    // The whole 8-byte pointer field (a u32 at 64 is its high half on a
    // big-endian host).
    b[64..72].copy_from_slice(&0x1000u64.to_ne_bytes());
    assert_eq!(
        parse(&b),
        Err(Error::NotEntire {
            name_ptr: 0x1000,
            data_ptr: 0
        })
    );
    let mut b = good.clone();
    put(&mut b, 52, 1001);
    assert_eq!(
        parse(&b),
        Err(Error::Name(NameError::TooLong { len: 1001 }))
    );
    let mut b = good.clone();
    put(&mut b, 52, 0);
    // name_len 0 moves the final guard: PN(0) = 4 → guard expected at 88+4+8
    assert!(parse(&b).is_err());
    // The name's meaning is not checked by new_checked (structure only):
    // a wildcard name is well-formed bytes, and check_name says what is
    // wrong with it.
    let b = simple(&SPEC64, b"$.Fred.*", b"");
    let m = Message::<_, Layout64>::new_checked_in(&b[..]).unwrap();
    assert_eq!(
        m.check_name(),
        Err(Error::Name(NameError::WildcardNotAllowed))
    );
    // Latin-1 name: valid for the kernel, a well-formed message, and a
    // name whose bytes are there (issue 10).
    let b = simple(&SPEC64, b"$.Caf\xE9", b"");
    let m = Message::<_, Layout64>::new_checked_in(&b[..]).unwrap();
    assert_eq!(m.check_name(), Ok(()));
    assert_eq!(m.name(), b"$.Caf\xE9");
    assert_eq!(m.name().to_str(), None);
    assert_eq!(m.name().to_string(), "$.Café");
    // ...and parse → emit gives the same bytes.
    let repr = MessageRepr::parse(&m).unwrap();
    assert_eq!(repr.to_vec_in::<Layout64>().unwrap(), b);
    // trailing bytes are allowed
    let mut b = good.clone();
    b.extend_from_slice(&[1, 2, 3, 4, 5]);
    let m = Message::<_, Layout64>::new_checked_in(&b[..]).unwrap();
    assert_eq!(m.total_len(), 108);
    assert_eq!(m.as_bytes(), &good[..]);

    // emit: buffer too small
    let repr = MessageRepr::announcement("$.Fred", b"abc1234");
    let mut small = [0u8; 107];
    assert_eq!(
        repr.emit_in::<Layout64>(&mut small),
        Err(Error::BufferTooSmall {
            needed: 108,
            got: 107
        })
    );
    assert_eq!(
        MessageRepr::announcement("$.Fred.*", b"").emit_in::<Layout64>(&mut [0; 200]),
        Err(Error::Name(NameError::WildcardNotAllowed))
    );
    // emit_unvalidated writes what KBUS would refuse
    let n = MessageRepr::announcement("Fred", b"").emit_unvalidated_in::<Layout32>(&mut [0; 200]);
    assert_eq!(n, Ok(72 + 8 + 4));
}

/// Spec §3.7: binding `$.Fred` by Ksock 5 gives 20 data bytes.
#[test]
fn bind_event_data_example() {
    let mut expected = Vec::new();
    expected.extend_from_slice(&1u32.to_ne_bytes());
    expected.extend_from_slice(&5u32.to_ne_bytes());
    expected.extend_from_slice(&6u32.to_ne_bytes());
    expected.extend_from_slice(b"$.Fred\0\0");
    assert_eq!(expected.len(), 20);
    #[cfg(target_endian = "little")]
    assert_eq!(
        expected,
        [0x01, 0, 0, 0, 0x05, 0, 0, 0, 0x06, 0, 0, 0, b'$', b'.', b'F', b'r', b'e', b'd', 0, 0]
    );
    let repr = ReplierBindEventRepr {
        is_bind: true,
        binder: 5,
        name: "$.Fred",
    };
    assert_eq!(repr.buffer_len(), 20);
    let mut out = [0xAAu8; 24];
    assert_eq!(repr.emit(&mut out), Ok(20));
    assert_eq!(&out[..20], &expected[..]);
    let ev = ReplierBindEvent::new_checked(&expected[..]).unwrap();
    assert!(ev.is_bind());
    assert_eq!(ev.binder(), 5);
    assert_eq!(ev.name(), "$.Fred");
    assert_eq!(ReplierBindEventRepr::parse(&ev), Ok(repr));
    assert_eq!(ev.to_string(), "[Bind '$.Fred' for 5]");
    // wildcards are allowed in bind events
    let wild = ReplierBindEventRepr {
        is_bind: false,
        binder: 9,
        name: "$.Sensors.*",
    };
    let mut out = [0u8; 32];
    let n = wild.emit(&mut out).unwrap();
    assert_eq!(n, 12 + 12);
    let ev = ReplierBindEvent::new_checked(&out[..n]).unwrap();
    assert_eq!(ev.to_string(), "[Unbind '$.Sensors.*' for 9]");
    // too short
    assert_eq!(
        ReplierBindEvent::new_checked(&expected[..19]).map(|_| ()),
        Err(Error::BadBindEvent)
    );
    assert_eq!(
        ReplierBindEvent::new_checked(&expected[..8]).map(|_| ()),
        Err(Error::BadBindEvent)
    );

    // The whole synthetic message (§7.5/§7.6): flags 0x204, from 0, to 0.
    let mut msg = MessageRepr::announcement(kbus_wire::name::REPLIER_BIND_EVENT, &expected);
    msg.id = MessageId::new(0, 42);
    msg.flags = Flags::SYNTHETIC | Flags::ALL_OR_FAIL;
    let mut buf = [0u8; 200];
    let n = msg.emit_in::<Layout64>(&mut buf).unwrap();
    assert_eq!(n, 88 + padded_name_len(23) + 20 + 4);
    let m = Message::<_, Layout64>::new_checked_in(&buf[..n]).unwrap();
    assert_eq!(m.kind(), kbus_wire::Kind::ReplierBindEvent);
    assert_eq!(m.bind_event().unwrap().binder(), 5);
    assert_eq!(
        m.to_string(),
        "<ReplierBindEvent id=[0:42], flags=0x204 (SYN,aFL), [Bind '$.Fred' for 5]>"
    );
}
