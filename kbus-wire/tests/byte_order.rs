//! Byte order (spec §3.1): the four explicit-order layouts, byte-exact.
//!
//! The golden vectors are literal byte arrays written from the spec's
//! worked examples (§3.3, §3.4, §3.7) in both byte orders and both widths,
//! or built here from the spec's offset table with `u32::to_le_bytes` /
//! `to_be_bytes`, independently of the crate. Nothing here depends on the
//! host's byte order except the tests marked `cfg(target_endian)`, which
//! check that the native aliases are the explicit layouts of the host.

// The spec's formulas are transcribed literally.
#![allow(clippy::manual_div_ceil)]

use std::any::TypeId;

use kbus_wire::{
    BigEndian, ByteOrder, Error, Flags, Header32, Header64, Kind, Layout, Layout32, Layout32Be,
    Layout32Le, Layout64, Layout64Be, Layout64Le, LittleEndian, Message, MessageId, MessageRepr,
    Name, NativeEndian, NativeLayout, OrigFrom, ReplierBindEvent, ReplierBindEventRepr,
};
use zerocopy::IntoBytes;

const START: u32 = 0x7375_624B;
const END: u32 = 0x4B62_7573;

/// `$.Fred` with the 7 data bytes `abc1234` (spec §3.4), 64-bit little-endian:
/// 108 bytes.
#[rustfmt::skip]
const FRED_64LE: [u8; 108] = [
    b'K', b'b', b'u', b's', // 0: start_guard
    0x00, 0x00, 0x00, 0x00, // 4: id.network_id
    0x00, 0x00, 0x00, 0x00, // 8: id.serial_num
    0x00, 0x00, 0x00, 0x00, // 12: in_reply_to.network_id
    0x00, 0x00, 0x00, 0x00, // 16: in_reply_to.serial_num
    0x00, 0x00, 0x00, 0x00, // 20: to
    0x00, 0x00, 0x00, 0x00, // 24: from
    0x00, 0x00, 0x00, 0x00, // 28: orig_from.network_id
    0x00, 0x00, 0x00, 0x00, // 32: orig_from.local_id
    0x00, 0x00, 0x00, 0x00, // 36: final_to.network_id
    0x00, 0x00, 0x00, 0x00, // 40: final_to.local_id
    0x00, 0x00, 0x00, 0x00, // 44: extra
    0x00, 0x00, 0x00, 0x00, // 48: flags
    0x06, 0x00, 0x00, 0x00, // 52: name_len
    0x07, 0x00, 0x00, 0x00, // 56: data_len
    0x00, 0x00, 0x00, 0x00, // 60: padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 64: name pointer (NULL)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 72: data pointer (NULL)
    b's', b'u', b'b', b'K', // 80: end_guard
    0x00, 0x00, 0x00, 0x00, // 84: tail padding
    b'$', b'.', b'F', b'r', b'e', b'd', 0x00, 0x00, // 88: name area "$.Fred\0\0"
    b'a', b'b', b'c', b'1', b'2', b'3', b'4', 0x00, // 96: data "abc1234", one pad byte
    b's', b'u', b'b', b'K', // 104: final end guard
];

/// `$.Fred` with the 7 data bytes `abc1234` (spec §3.4), 64-bit big-endian:
/// 108 bytes.
#[rustfmt::skip]
const FRED_64BE: [u8; 108] = [
    b's', b'u', b'b', b'K', // 0: start_guard
    0x00, 0x00, 0x00, 0x00, // 4: id.network_id
    0x00, 0x00, 0x00, 0x00, // 8: id.serial_num
    0x00, 0x00, 0x00, 0x00, // 12: in_reply_to.network_id
    0x00, 0x00, 0x00, 0x00, // 16: in_reply_to.serial_num
    0x00, 0x00, 0x00, 0x00, // 20: to
    0x00, 0x00, 0x00, 0x00, // 24: from
    0x00, 0x00, 0x00, 0x00, // 28: orig_from.network_id
    0x00, 0x00, 0x00, 0x00, // 32: orig_from.local_id
    0x00, 0x00, 0x00, 0x00, // 36: final_to.network_id
    0x00, 0x00, 0x00, 0x00, // 40: final_to.local_id
    0x00, 0x00, 0x00, 0x00, // 44: extra
    0x00, 0x00, 0x00, 0x00, // 48: flags
    0x00, 0x00, 0x00, 0x06, // 52: name_len
    0x00, 0x00, 0x00, 0x07, // 56: data_len
    0x00, 0x00, 0x00, 0x00, // 60: padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 64: name pointer (NULL)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 72: data pointer (NULL)
    b'K', b'b', b'u', b's', // 80: end_guard
    0x00, 0x00, 0x00, 0x00, // 84: tail padding
    b'$', b'.', b'F', b'r', b'e', b'd', 0x00, 0x00, // 88: name area "$.Fred\0\0"
    b'a', b'b', b'c', b'1', b'2', b'3', b'4', 0x00, // 96: data "abc1234", one pad byte
    b'K', b'b', b'u', b's', // 104: final end guard
];

/// `$.Fred` with the 7 data bytes `abc1234` (spec §3.4), 32-bit little-endian:
/// 92 bytes.
#[rustfmt::skip]
const FRED_32LE: [u8; 92] = [
    b'K', b'b', b'u', b's', // 0: start_guard
    0x00, 0x00, 0x00, 0x00, // 4: id.network_id
    0x00, 0x00, 0x00, 0x00, // 8: id.serial_num
    0x00, 0x00, 0x00, 0x00, // 12: in_reply_to.network_id
    0x00, 0x00, 0x00, 0x00, // 16: in_reply_to.serial_num
    0x00, 0x00, 0x00, 0x00, // 20: to
    0x00, 0x00, 0x00, 0x00, // 24: from
    0x00, 0x00, 0x00, 0x00, // 28: orig_from.network_id
    0x00, 0x00, 0x00, 0x00, // 32: orig_from.local_id
    0x00, 0x00, 0x00, 0x00, // 36: final_to.network_id
    0x00, 0x00, 0x00, 0x00, // 40: final_to.local_id
    0x00, 0x00, 0x00, 0x00, // 44: extra
    0x00, 0x00, 0x00, 0x00, // 48: flags
    0x06, 0x00, 0x00, 0x00, // 52: name_len
    0x07, 0x00, 0x00, 0x00, // 56: data_len
    0x00, 0x00, 0x00, 0x00, // 60: name pointer (NULL)
    0x00, 0x00, 0x00, 0x00, // 64: data pointer (NULL)
    b's', b'u', b'b', b'K', // 68: end_guard
    b'$', b'.', b'F', b'r', b'e', b'd', 0x00, 0x00, // 72: name area "$.Fred\0\0"
    b'a', b'b', b'c', b'1', b'2', b'3', b'4', 0x00, // 80: data "abc1234", one pad byte
    b's', b'u', b'b', b'K', // 88: final end guard
];

/// `$.Fred` with the 7 data bytes `abc1234` (spec §3.4), 32-bit big-endian:
/// 92 bytes.
#[rustfmt::skip]
const FRED_32BE: [u8; 92] = [
    b's', b'u', b'b', b'K', // 0: start_guard
    0x00, 0x00, 0x00, 0x00, // 4: id.network_id
    0x00, 0x00, 0x00, 0x00, // 8: id.serial_num
    0x00, 0x00, 0x00, 0x00, // 12: in_reply_to.network_id
    0x00, 0x00, 0x00, 0x00, // 16: in_reply_to.serial_num
    0x00, 0x00, 0x00, 0x00, // 20: to
    0x00, 0x00, 0x00, 0x00, // 24: from
    0x00, 0x00, 0x00, 0x00, // 28: orig_from.network_id
    0x00, 0x00, 0x00, 0x00, // 32: orig_from.local_id
    0x00, 0x00, 0x00, 0x00, // 36: final_to.network_id
    0x00, 0x00, 0x00, 0x00, // 40: final_to.local_id
    0x00, 0x00, 0x00, 0x00, // 44: extra
    0x00, 0x00, 0x00, 0x00, // 48: flags
    0x00, 0x00, 0x00, 0x06, // 52: name_len
    0x00, 0x00, 0x00, 0x07, // 56: data_len
    0x00, 0x00, 0x00, 0x00, // 60: name pointer (NULL)
    0x00, 0x00, 0x00, 0x00, // 64: data pointer (NULL)
    b'K', b'b', b'u', b's', // 68: end_guard
    b'$', b'.', b'F', b'r', b'e', b'd', 0x00, 0x00, // 72: name area "$.Fred\0\0"
    b'a', b'b', b'c', b'1', b'2', b'3', b'4', 0x00, // 80: data "abc1234", one pad byte
    b'K', b'b', b'u', b's', // 88: final end guard
];

/// The spec's bind event example (§3.7): binding `$.Fred` by Ksock 5.
#[rustfmt::skip]
const BIND_FRED_LE: [u8; 20] = [
    0x01, 0x00, 0x00, 0x00, // is_bind
    0x05, 0x00, 0x00, 0x00, // binder
    0x06, 0x00, 0x00, 0x00, // name_len
    b'$', b'.', b'F', b'r', b'e', b'd', 0x00, 0x00,
];
/// The same event from a big-endian machine.
#[rustfmt::skip]
const BIND_FRED_BE: [u8; 20] = [
    0x00, 0x00, 0x00, 0x01, // is_bind
    0x00, 0x00, 0x00, 0x05, // binder
    0x00, 0x00, 0x00, 0x06, // name_len
    b'$', b'.', b'F', b'r', b'e', b'd', 0x00, 0x00,
];

fn same_type<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

/// Emits `repr` in layout `L` into a buffer with slack, checking that
/// nothing after the message is touched.
fn emit<L: Layout>(repr: &MessageRepr<'_>) -> Vec<u8> {
    let len = repr.buffer_len_in::<L>();
    let mut buf = vec![0xA5u8; len + 5];
    assert_eq!(repr.emit_in::<L>(&mut buf), Ok(len), "{}", L::NAME);
    assert_eq!(
        buf[len..],
        [0xA5; 5],
        "{}: bytes after the message",
        L::NAME
    );
    buf.truncate(len);
    buf
}

/// Checks one layout against the golden `$.Fred` / `abc1234` bytes: emit
/// gives them, parse reads them back, and the other byte order and the
/// other width refuse them.
fn fred<L: Layout, Other: Layout, OtherWidth: Layout>(golden: &[u8]) {
    let repr = MessageRepr::announcement("$.Fred", b"abc1234");
    assert_eq!(emit::<L>(&repr), golden, "{}", L::NAME);
    let m = Message::<_, L>::new_checked_in(golden).unwrap();
    assert_eq!(m.start_guard(), START);
    assert_eq!(m.end_guard(), END);
    assert_eq!(m.final_guard(), END);
    assert_eq!((m.name_len(), m.data_len()), (6, 7));
    assert_eq!((m.name_ptr(), m.data_ptr()), (0, 0));
    assert_eq!(m.name(), "$.Fred");
    assert_eq!(m.data(), b"abc1234");
    assert_eq!(m.total_len(), golden.len());
    assert_eq!(m.kind(), Kind::Announcement);
    assert_eq!(MessageRepr::parse(&m), Ok(repr));
    // Read in the other byte order, the start guard is byte-swapped.
    let wrong = Message::<_, Other>::new_checked_in(golden);
    assert_eq!(wrong, Err(Error::BadStartGuard { found: END }));
    assert!(wrong
        .unwrap_err()
        .to_string()
        .contains("byte-swapped, a message in the other byte order?"));
    // Read with the other width, the header's end guard is elsewhere.
    assert!(Message::<_, OtherWidth>::new_checked_in(golden).is_err());
}

#[test]
fn fred_abc1234_golden_in_all_four_layouts() {
    fred::<Layout64Le, Layout64Be, Layout32Le>(&FRED_64LE);
    fred::<Layout64Be, Layout64Le, Layout32Be>(&FRED_64BE);
    fred::<Layout32Le, Layout32Be, Layout64Le>(&FRED_32LE);
    fred::<Layout32Be, Layout32Le, Layout64Be>(&FRED_32BE);
    // Spec §3.1: the guards' byte images.
    assert_eq!(FRED_64LE[..4], *b"Kbus");
    assert_eq!(FRED_64BE[..4], *b"subK");
    assert_eq!(FRED_32LE[68..72], *b"subK");
    assert_eq!(FRED_32BE[68..72], *b"Kbus");
    // Name, data and padding are the same bytes in both orders.
    assert_eq!(FRED_64LE[88..104], FRED_64BE[88..104]);
    assert_eq!(FRED_32LE[72..88], FRED_32BE[72..88]);
}

/// An entire message built from the spec's offset table in byte order
/// `be` (true: big-endian), independently of the crate.
#[allow(clippy::too_many_arguments)]
fn golden(h: usize, be: bool, words: &[(usize, u32)], name: &[u8], data: &[u8]) -> Vec<u8> {
    let put = |b: &mut Vec<u8>, off: usize, v: u32| {
        let bytes = if be { v.to_be_bytes() } else { v.to_le_bytes() };
        b[off..off + 4].copy_from_slice(&bytes);
    };
    let pn = 4 * ((name.len() + 1 + 3) / 4);
    let pd = 4 * ((data.len() + 3) / 4);
    let total = h + pn + pd + 4;
    let mut b = vec![0u8; total];
    put(&mut b, 0, START);
    for &(off, v) in words {
        put(&mut b, off, v);
    }
    put(&mut b, 52, name.len() as u32);
    put(&mut b, 56, data.len() as u32);
    put(&mut b, if h == 88 { 80 } else { 68 }, END);
    b[h..h + name.len()].copy_from_slice(name);
    b[h + pn..h + pn + data.len()].copy_from_slice(data);
    put(&mut b, total - 4, END);
    b
}

/// The other worked examples of §3.4 in all four layouts: `$.Fred` without
/// data (100 / 84 bytes) and a 4-byte name with a 4-byte NUL pad.
#[test]
fn fred_no_data_and_four_byte_name_in_all_four_layouts() {
    fn check<L: Layout>(be: bool) {
        let h = L::HEADER_LEN;
        for (name, data, total) in [
            ("$.Fred", &b""[..], if h == 88 { 100 } else { 84 }),
            ("$.ab", &b""[..], h + 8 + 4),
        ] {
            let expected = golden(h, be, &[], name.as_bytes(), data);
            assert_eq!(expected.len(), total);
            let repr = MessageRepr::announcement(name, data);
            assert_eq!(emit::<L>(&repr), expected, "{name} in {}", L::NAME);
            let m = Message::<_, L>::new_checked_in(&expected[..]).unwrap();
            assert_eq!(MessageRepr::parse(&m), Ok(repr));
        }
    }
    check::<Layout64Le>(false);
    check::<Layout64Be>(true);
    check::<Layout32Le>(false);
    check::<Layout32Be>(true);
}

/// Every header field at its spec offset in its byte order, with values
/// whose four bytes all differ (so a swapped or misplaced field shows),
/// both ways; `header()` gives the values in host order.
#[test]
fn every_field_in_its_byte_order() {
    fn check<L: Layout>(be: bool) -> Vec<u8> {
        let h = L::HEADER_LEN;
        let words = [
            (4, 0x0102_0304),
            (8, 0x0506_0708),
            (12, 0x090A_0B0C),
            (16, 0x0D0E_0F10),
            (20, 0x1112_1314),
            (24, 0x1516_1718),
            (28, 0x191A_1B1C),
            (32, 0x1D1E_1F20),
            (36, 0x2122_2324),
            (40, 0x2526_2728),
            (44, 0x292A_2B2C),
            (48, 0xBEEF_0309),
        ];
        let name = b"$.Sensors.Kitchen";
        let data = [0xFE; 13];
        let expected = golden(h, be, &words, name, &data);
        let repr = MessageRepr {
            id: MessageId::new(0x0102_0304, 0x0506_0708),
            in_reply_to: MessageId::new(0x090A_0B0C, 0x0D0E_0F10),
            to: 0x1112_1314,
            from: 0x1516_1718,
            orig_from: OrigFrom::new(0x191A_1B1C, 0x1D1E_1F20),
            final_to: OrigFrom::new(0x2122_2324, 0x2526_2728),
            extra: 0x292A_2B2C,
            flags: Flags::from_bits_retain(0xBEEF_0309),
            name: Name::new("$.Sensors.Kitchen"),
            data: &data,
        };
        assert_eq!(emit::<L>(&repr), expected, "{}", L::NAME);
        let m = Message::<_, L>::new_checked_in(&expected[..]).unwrap();
        assert_eq!(MessageRepr::parse(&m), Ok(repr));
        assert_eq!((m.name_len(), m.data_len()), (17, 13));
        // Setters write in the layout's order, at the spec's offsets.
        let mut b = expected.clone();
        let mut m = Message::<_, L>::new_unchecked_in(&mut b[..]);
        m.set_to(0xA1A2_A3A4);
        m.set_name_ptr(0x0102_0304_0506_0708);
        m.set_data_ptr(0x1112_1314_1516_1718);
        assert_eq!(m.to(), 0xA1A2_A3A4);
        let to: [u8; 4] = if be {
            [0xA1, 0xA2, 0xA3, 0xA4]
        } else {
            [0xA4, 0xA3, 0xA2, 0xA1]
        };
        assert_eq!(b[20..24], to);
        let (name_ptr, data_ptr) = if h == 88 { (64, 72) } else { (60, 64) };
        let np: &[u8] = match (h, be) {
            (88, true) => &[1, 2, 3, 4, 5, 6, 7, 8],
            (88, false) => &[8, 7, 6, 5, 4, 3, 2, 1],
            (_, true) => &[5, 6, 7, 8],
            (_, false) => &[8, 7, 6, 5],
        };
        assert_eq!(&b[name_ptr..name_ptr + np.len()], np, "{}", L::NAME);
        let m = Message::<_, L>::new_unchecked_in(&b[..]);
        let want = if h == 88 {
            (0x0102_0304_0506_0708, 0x1112_1314_1516_1718)
        } else {
            (0x0506_0708, 0x1516_1718)
        };
        assert_eq!((m.name_ptr(), m.data_ptr()), want);
        assert_eq!(
            m.check(),
            Err(Error::NotEntire {
                name_ptr: want.0,
                data_ptr: want.1
            })
        );
        let _ = data_ptr;
        expected
    }
    let le64 = check::<Layout64Le>(false);
    let be64 = check::<Layout64Be>(true);
    let le32 = check::<Layout32Le>(false);
    let be32 = check::<Layout32Be>(true);

    // header(): host-order values whatever the layout's order.
    for b in [&le64, &be64] {
        let h: Header64 = if b == &le64 {
            Message::<_, Layout64Le>::new_checked_in(&b[..])
                .unwrap()
                .header()
        } else {
            Message::<_, Layout64Be>::new_checked_in(&b[..])
                .unwrap()
                .header()
        };
        assert_eq!(h.start_guard, START);
        assert_eq!(h.id, MessageId::new(0x0102_0304, 0x0506_0708));
        assert_eq!(h.to, 0x1112_1314);
        assert_eq!(h.flags, 0xBEEF_0309);
        assert_eq!((h.name_len, h.data_len), (17, 13));
        assert_eq!((h.name, h.data, h.pad0, h.pad1), (0, 0, 0, 0));
        assert_eq!(h.end_guard, END);
        // ... which is the native layout's header image.
        assert_eq!(h.as_bytes(), &emit_native::<Layout64>(&le64)[..88]);
    }
    for b in [&le32, &be32] {
        let h: Header32 = if b == &le32 {
            Message::<_, Layout32Le>::new_checked_in(&b[..])
                .unwrap()
                .header()
        } else {
            Message::<_, Layout32Be>::new_checked_in(&b[..])
                .unwrap()
                .header()
        };
        assert_eq!(h.final_to, OrigFrom::new(0x2122_2324, 0x2526_2728));
        assert_eq!(h.extra, 0x292A_2B2C);
        assert_eq!((h.name, h.data, h.end_guard), (0, 0, END));
        assert_eq!(h.as_bytes(), &emit_native::<Layout32>(&le32)[..72]);
    }
    // A pointy header's 8-byte pointers convert whole.
    let mut b = be64.clone();
    let mut m = Message::<_, Layout64Be>::new_unchecked_in(&mut b[..]);
    m.set_name_ptr(0x0102_0304_0506_0708);
    let h = Message::<_, Layout64Be>::new_unchecked_in(&b[..]).header();
    assert_eq!(h.name, 0x0102_0304_0506_0708);
    // A header cut short: all zeros, no panic.
    let short = Message::<_, Layout64Be>::new_unchecked_in(&be64[..40]);
    assert_eq!(short.header(), Header64::default());
}

/// The little-endian 64-bit bytes, re-emitted in the native-order layout of
/// the same width.
fn emit_native<L: Layout>(le: &[u8]) -> Vec<u8> {
    let repr = if le.len() > 100 && L::HEADER_LEN == 88 {
        MessageRepr::parse(&Message::<_, Layout64Le>::new_checked_in(le).unwrap()).unwrap()
    } else {
        MessageRepr::parse(&Message::<_, Layout32Le>::new_checked_in(le).unwrap()).unwrap()
    };
    emit::<L>(&repr)
}

/// Spec §3.7's example in both orders, through the event view, its repr,
/// and the `bind_event()` of a message in each of the four layouts.
#[test]
fn bind_event_in_both_orders() {
    let repr = ReplierBindEventRepr {
        is_bind: true,
        binder: 5,
        name: "$.Fred",
    };
    let mut out = [0xAAu8; 24];
    assert_eq!(repr.emit_in::<LittleEndian>(&mut out), Ok(20));
    assert_eq!(out[..20], BIND_FRED_LE);
    assert_eq!(out[20..], [0xAA; 4]);
    assert_eq!(repr.emit_in::<BigEndian>(&mut out), Ok(20));
    assert_eq!(out[..20], BIND_FRED_BE);

    for (bytes, big) in [(&BIND_FRED_LE, false), (&BIND_FRED_BE, true)] {
        let (ev, wrong) = if big {
            (
                ReplierBindEvent::<_, BigEndian>::new_checked_in(&bytes[..])
                    .map(|e| (e.is_bind(), e.binder(), e.name().to_owned())),
                ReplierBindEvent::<_, LittleEndian>::new_checked_in(&bytes[..]).map(|_| ()),
            )
        } else {
            (
                ReplierBindEvent::<_, LittleEndian>::new_checked_in(&bytes[..])
                    .map(|e| (e.is_bind(), e.binder(), e.name().to_owned())),
                ReplierBindEvent::<_, BigEndian>::new_checked_in(&bytes[..]).map(|_| ()),
            )
        };
        assert_eq!(ev, Ok((true, 5, "$.Fred".to_owned())));
        // The other order reads name_len 0x06000000: not an event.
        assert_eq!(wrong, Err(Error::BadBindEvent));
    }
    let ev = ReplierBindEvent::<_, BigEndian>::new_checked_in(&BIND_FRED_BE[..]).unwrap();
    assert_eq!(ev.to_string(), "[Bind '$.Fred' for 5]");
    assert_eq!(ReplierBindEventRepr::parse(&ev), Ok(repr));

    // The synthetic message carrying it (§7.5/§7.6) in each layout: its
    // data is in the layout's order and bind_event() reads it so.
    fn carried<L: Layout>(data: &[u8]) {
        let mut msg = MessageRepr::announcement(kbus_wire::name::REPLIER_BIND_EVENT, data);
        msg.id = MessageId::new(0, 42);
        msg.flags = Flags::SYNTHETIC | Flags::ALL_OR_FAIL;
        let bytes = emit::<L>(&msg);
        let m = Message::<_, L>::new_checked_in(&bytes[..]).unwrap();
        assert_eq!(m.kind(), Kind::ReplierBindEvent);
        let ev = m.bind_event().unwrap();
        assert!(ev.is_bind());
        assert_eq!((ev.binder(), ev.name_len(), ev.name()), (5, 6, "$.Fred"));
        assert_eq!(
            m.to_string(),
            "<ReplierBindEvent id=[0:42], flags=0x204 (SYN,aFL), [Bind '$.Fred' for 5]>",
            "{}",
            L::NAME
        );
        // Owned views give the same.
        let owned = Message::<_, L>::new_checked_in(bytes.clone()).unwrap();
        assert_eq!(owned.bind_event().unwrap().binder(), 5);
    }
    carried::<Layout64Le>(&BIND_FRED_LE);
    carried::<Layout32Le>(&BIND_FRED_LE);
    carried::<Layout64Be>(&BIND_FRED_BE);
    carried::<Layout32Be>(&BIND_FRED_BE);
    // A big-endian event in a little-endian message is malformed data.
    let msg = MessageRepr::announcement(kbus_wire::name::REPLIER_BIND_EVENT, &BIND_FRED_BE);
    let bytes = emit::<Layout64Le>(&msg);
    let m = Message::<_, Layout64Le>::new_checked_in(&bytes[..]).unwrap();
    assert_eq!(m.bind_event().map(|_| ()), Err(Error::BadBindEvent));
    assert!(m
        .to_string()
        .ends_with("data=hex:000000010000000500000006242e467265640000>"));
    // A MessageRepr has no layout: it shows the event in whichever order
    // checks, and at most one can (a valid name_len byte-swapped is > 1000).
    let mut msg = msg;
    msg.flags = Flags::SYNTHETIC;
    assert!(msg.to_string().ends_with("[Bind '$.Fred' for 5]>"), "{msg}");
    for n in 3u32..=1000 {
        assert!(n.swap_bytes() > 1000);
    }
}

/// `Layout64`, `Layout32`, `NativeLayout` and `NativeEndian` are the
/// explicit types of the host's byte order (type aliases, not copies).
#[test]
fn native_aliases_are_the_hosts_explicit_layouts() {
    let little = cfg!(target_endian = "little");
    assert_eq!(same_type::<Layout64, Layout64Le>(), little);
    assert_eq!(same_type::<Layout64, Layout64Be>(), !little);
    assert_eq!(same_type::<Layout32, Layout32Le>(), little);
    assert_eq!(same_type::<Layout32, Layout32Be>(), !little);
    assert_eq!(same_type::<NativeEndian, LittleEndian>(), little);
    assert_eq!(same_type::<NativeEndian, BigEndian>(), !little);
    assert!(same_type::<<Layout64 as Layout>::ByteOrder, NativeEndian>());
    assert!(same_type::<<Layout32 as Layout>::ByteOrder, NativeEndian>());
    const {
        assert!(
            Layout64::IS_NATIVE_ORDER && Layout32::IS_NATIVE_ORDER && NativeLayout::IS_NATIVE_ORDER
        )
    };
    let wide = cfg!(target_pointer_width = "64");
    assert_eq!(same_type::<NativeLayout, Layout64>(), wide);
    assert_eq!(same_type::<NativeLayout, Layout32>(), !wide);
}

#[cfg(target_endian = "little")]
#[test]
fn native_is_little_endian_here() {
    // Compile-time proof: the alias *is* the explicit type.
    let _: Layout64Le = Layout64::default();
    let _: Layout32Le = Layout32::default();
    let repr = MessageRepr::announcement("$.Fred", b"abc1234");
    assert_eq!(emit::<Layout64>(&repr), FRED_64LE);
    assert_eq!(emit::<Layout32>(&repr), FRED_32LE);
    let native = if cfg!(target_pointer_width = "64") {
        &FRED_64LE[..]
    } else {
        &FRED_32LE[..]
    };
    assert_eq!(repr.to_vec().unwrap(), native);
    assert!(Message::new_checked(native).is_ok());
    let ev = ReplierBindEvent::new_checked(&BIND_FRED_LE[..]).unwrap();
    assert_eq!(ev.binder(), 5);
}

#[cfg(target_endian = "big")]
#[test]
fn native_is_big_endian_here() {
    // Compile-time proof: the alias *is* the explicit type.
    let _: Layout64Be = Layout64::default();
    let _: Layout32Be = Layout32::default();
    let repr = MessageRepr::announcement("$.Fred", b"abc1234");
    assert_eq!(emit::<Layout64>(&repr), FRED_64BE);
    assert_eq!(emit::<Layout32>(&repr), FRED_32BE);
    let native = if cfg!(target_pointer_width = "64") {
        &FRED_64BE[..]
    } else {
        &FRED_32BE[..]
    };
    assert_eq!(repr.to_vec().unwrap(), native);
    assert!(Message::new_checked(native).is_ok());
    let ev = ReplierBindEvent::new_checked(&BIND_FRED_BE[..]).unwrap();
    assert_eq!(ev.binder(), 5);
}

/// The pointy header is native only (its pointers are this process's
/// addresses): read with the native layout it gives the addresses, and
/// with the other byte order of the same width their byte-swapped values.
#[test]
fn pointy_header_is_in_the_native_order() {
    let name = String::from("$.Pointy");
    let data = vec![1u8, 2, 3];
    let repr = MessageRepr::request(&name, &data);
    let pointy = repr.pointy_header();
    let bytes = pointy.as_bytes();
    let native = Message::<_, NativeLayout>::new_unchecked_in(bytes);
    assert_eq!(native.name_ptr(), name.as_ptr() as usize as u64);
    assert_eq!(native.data_ptr(), data.as_ptr() as usize as u64);
    assert_eq!((native.start_guard(), native.end_guard()), (START, END));
    assert_eq!(native.header(), *pointy.header());
    fn foreign<L: Layout>(bytes: &[u8], name: u64) {
        let m = Message::<_, L>::new_unchecked_in(bytes);
        assert_eq!(m.start_guard(), END, "byte-swapped");
        let swapped = if L::POINTER_LEN == 8 {
            name.swap_bytes()
        } else {
            u64::from((name as u32).swap_bytes())
        };
        assert_eq!(m.name_ptr(), swapped);
    }
    let addr = name.as_ptr() as usize as u64;
    match (
        cfg!(target_pointer_width = "64"),
        cfg!(target_endian = "little"),
    ) {
        (true, true) => foreign::<Layout64Be>(bytes, addr),
        (true, false) => foreign::<Layout64Le>(bytes, addr),
        (false, true) => foreign::<Layout32Be>(bytes, addr),
        (false, false) => foreign::<Layout32Le>(bytes, addr),
    }
}

#[test]
fn byte_order_names_and_debug() {
    assert_eq!(Layout64Le::NAME, "64-bit little-endian");
    assert_eq!(Layout32Be::NAME, "32-bit big-endian");
    const { assert!(!<LittleEndian as ByteOrder>::IS_BIG_ENDIAN) };
    const { assert!(<BigEndian as ByteOrder>::IS_BIG_ENDIAN) };
    let m = Message::<_, Layout32Be>::new_checked_in(&FRED_32BE[..]).unwrap();
    let debug = format!("{m:?}");
    assert!(debug.contains("layout: 32-bit big-endian"), "{debug}");
    assert!(debug.contains("data_len: 7"), "{debug}");
    // A good start guard's Display has no byte-order hint.
    let e = Error::BadStartGuard { found: 0 };
    assert!(!e.to_string().contains("byte-swapped"));
}
