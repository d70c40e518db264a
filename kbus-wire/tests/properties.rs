//! Property tests: emit → parse is the identity in both layouts (native
//! order) and in all four explicit-order layouts, and no bytes whatsoever
//! make `new_checked` or any accessor panic, in any layout.

// The spec's formulas are transcribed literally.
#![allow(clippy::manual_div_ceil)]

use kbus_wire::{
    entire_len, BigEndian, ByteOrder, Flags, Layout, Layout32, Layout32Be, Layout32Le, Layout64,
    Layout64Be, Layout64Le, LittleEndian, Message, MessageId, MessageRepr, Name, OrigFrom,
    ReplierBindEvent, END_GUARD, START_GUARD,
};
use proptest::prelude::*;

/// A valid, sendable, ASCII name.
fn name_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9]{1,12}", 1..6).prop_map(|parts| {
        let mut name = String::from("$.");
        name.push_str(&parts.join("."));
        name.truncate(1000);
        name.trim_end_matches('.').to_owned()
    })
}

#[derive(Debug, Clone)]
struct Fields {
    id: (u32, u32),
    in_reply_to: (u32, u32),
    to: u32,
    from: u32,
    orig_from: (u32, u32),
    final_to: (u32, u32),
    flags: u32,
    extra: u32,
    name: String,
    data: Vec<u8>,
}

fn fields_strategy() -> impl Strategy<Value = Fields> {
    (
        any::<(u32, u32)>(),
        any::<(u32, u32)>(),
        any::<u32>(),
        any::<u32>(),
        any::<(u32, u32)>(),
        any::<(u32, u32)>(),
        (any::<u32>(), any::<u32>()),
        name_strategy(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(id, in_reply_to, to, from, orig_from, final_to, (flags, extra), name, data)| Fields {
                id,
                in_reply_to,
                to,
                from,
                orig_from,
                final_to,
                flags,
                extra,
                name,
                data,
            },
        )
}

fn repr(f: &Fields) -> MessageRepr<'_> {
    MessageRepr {
        id: MessageId::new(f.id.0, f.id.1),
        in_reply_to: MessageId::new(f.in_reply_to.0, f.in_reply_to.1),
        to: f.to,
        from: f.from,
        orig_from: OrigFrom::new(f.orig_from.0, f.orig_from.1),
        final_to: OrigFrom::new(f.final_to.0, f.final_to.1),
        extra: f.extra,
        flags: Flags::from_bits_retain(f.flags),
        name: Name::new(&f.name),
        data: &f.data,
    }
}

fn round_trip<L: Layout>(f: &Fields, slack: usize) -> Result<(), TestCaseError> {
    let r = repr(f);
    let len = r.buffer_len_in::<L>();
    prop_assert_eq!(len, entire_len::<L>(f.name.len(), f.data.len()));
    prop_assert_eq!(len % 4, 0);
    let mut buf = vec![0xA5u8; len + slack];
    prop_assert_eq!(r.emit_in::<L>(&mut buf), Ok(len));
    prop_assert!(
        buf[len..].iter().all(|&b| b == 0xA5),
        "nothing written past the end"
    );
    let msg = Message::<_, L>::new_checked_in(&buf[..])
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(msg.total_len(), len);
    let parsed = MessageRepr::parse(&msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(parsed, r);
    // Emitting the parsed form gives the same bytes.
    let mut again = vec![0u8; len];
    parsed.emit_in::<L>(&mut again).unwrap();
    prop_assert_eq!(&again[..], &buf[..len]);
    // One byte short never works.
    prop_assert!(r.emit_in::<L>(&mut buf[..len - 1]).is_err());
    prop_assert!(Message::<_, L>::new_checked_in(&buf[..len - 1]).is_err());
    Ok(())
}

/// Calls every accessor; none may panic.
fn touch_all<L: Layout>(m: &Message<&[u8], L>) -> usize {
    let mut acc = m.start_guard() as usize
        ^ m.id().serial_num as usize
        ^ m.in_reply_to().network_id as usize
        ^ m.to() as usize
        ^ m.from() as usize
        ^ m.orig_from().local_id as usize
        ^ m.final_to().network_id as usize
        ^ m.extra() as usize
        ^ m.flags().bits() as usize
        ^ m.name_len() as usize
        ^ m.data_len() as usize
        ^ m.name_ptr() as usize
        ^ m.data_ptr() as usize
        ^ m.end_guard() as usize
        ^ m.final_guard() as usize
        ^ m.total_len()
        ^ m.name().len()
        ^ m.name_bytes().len()
        ^ m.data().len()
        ^ m.as_bytes().len()
        ^ m.header_bytes().len();
    acc ^= m.is_request() as usize
        ^ m.is_reply() as usize
        ^ m.is_stateful_request() as usize
        ^ m.wants_us_to_reply() as usize
        ^ m.is_synthetic() as usize
        ^ m.is_urgent() as usize;
    acc ^= format!("{:?}", m.kind()).len() ^ format!("{:?}", m.synthetic_name()).len();
    acc ^= m.to_string().len() ^ format!("{m:?}").len() ^ format!("{:?}", m.header()).len();
    if let Ok(ev) = m.bind_event() {
        acc ^= ev.binder() as usize ^ ev.name().len() ^ ev.to_string().len();
    }
    let r = m.repr();
    acc ^= r.to_string().len();
    let _ = MessageRepr::reply_to(&r, b"x");
    let _ = MessageRepr::stateful_request(m, "$.S", b"");
    let mut out = vec![0u8; 64];
    let _ = r.emit_in::<L>(&mut out);
    acc
}

/// Mutable accessors on arbitrary bytes; none may panic.
fn poke_all<L: Layout>(bytes: &mut [u8], v: u32) {
    let mut m = Message::<_, L>::new_unchecked_in(bytes);
    m.set_to(v);
    m.set_from(v);
    m.set_id(MessageId::new(v, v));
    m.set_in_reply_to(MessageId::new(v, v));
    m.set_orig_from(OrigFrom::new(v, v));
    m.set_final_to(OrigFrom::new(v, v));
    m.set_extra(v);
    m.set_flags(Flags(v));
    m.set_name_ptr(u64::from(v));
    m.set_data_ptr(u64::from(v));
    m.set_end_guard(v);
    m.set_final_guard(v);
    m.data_mut().fill(1);
    m.name_bytes_mut().fill(b'a');
    m.set_name_len(v);
    m.set_data_len(v);
    m.set_start_guard(v);
    let _ = m.check();
}

/// Every view of arbitrary bytes in layout `L` (and of bind-event data in
/// `L`'s byte order): nothing may panic.
fn arbitrary_in<L: Layout>(bytes: &[u8], v: u32) {
    for start in [0usize, 1] {
        let b = &bytes[start.min(bytes.len())..];
        let _ = Message::<_, L>::new_checked_in(b);
        touch_all(&Message::<&[u8], L>::new_unchecked_in(b));
        let ev = ReplierBindEvent::<_, L::ByteOrder>::new_unchecked_in(b);
        let _ = (
            ev.is_bind(),
            ev.binder(),
            ev.name(),
            ev.to_string(),
            ev.check(),
        );
        let _ = ReplierBindEvent::<_, L::ByteOrder>::new_checked_in(b);
    }
    let mut m = bytes.to_vec();
    poke_all::<L>(&mut m, v);
}

/// Plausible headers in layout `L`: guards in place (in `L`'s order),
/// lengths small or wild. Checked views must be consistent, and no view may
/// panic.
fn plausible_in<L: Layout>(
    bytes: &mut [u8],
    name_len: u32,
    data_len: u32,
    nulls: bool,
) -> Result<(), TestCaseError> {
    let word = <L::ByteOrder as ByteOrder>::u32_to_bytes;
    let end = L::END_GUARD;
    bytes[0..4].copy_from_slice(&word(START_GUARD));
    bytes[end..end + 4].copy_from_slice(&word(END_GUARD));
    bytes[52..56].copy_from_slice(&word(name_len));
    bytes[56..60].copy_from_slice(&word(data_len));
    if nulls {
        bytes[L::NAME_PTR..L::END_GUARD].fill(0);
    }
    // u64: on a 32-bit target these sums overflow usize.
    let total = 4 * ((u64::from(name_len) + 4) / 4)
        + 4 * ((u64::from(data_len) + 3) / 4)
        + L::HEADER_LEN as u64
        + 4;
    if let Ok(total) = usize::try_from(total) {
        if total <= bytes.len() {
            bytes[total - 4..total].copy_from_slice(&word(END_GUARD));
        }
    }
    if let Ok(m) = Message::<_, L>::new_checked_in(&bytes[..]) {
        prop_assert!(m.total_len() <= bytes.len());
        prop_assert_eq!(m.name().len(), name_len as usize);
        prop_assert_eq!(m.data().len(), data_len as usize);
    }
    touch_all(&Message::<&[u8], L>::new_unchecked_in(bytes));
    Ok(())
}

/// Emits `f` in layout `L`.
fn emit<L: Layout>(f: &Fields) -> Vec<u8> {
    let r = repr(f);
    let mut buf = vec![0u8; r.buffer_len_in::<L>()];
    r.emit_in::<L>(&mut buf).unwrap();
    buf
}

/// `bytes` with every 4-byte word of the header and the final guard
/// reversed, and the 8-byte pointer fields of a 64-bit header reversed
/// whole: the same message in the other byte order.
fn swapped<L: Layout>(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for word in out[..L::HEADER_LEN].chunks_exact_mut(4) {
        word.reverse();
    }
    if L::POINTER_LEN == 8 {
        for off in [L::NAME_PTR, L::DATA_PTR] {
            out[off..off + 8].rotate_left(4);
        }
    }
    let n = out.len();
    out[n - 4..].reverse();
    out
}

/// A valid message, then one corrupted word and/or a truncation: reaches
/// the deep checks that random bytes rarely get past.
fn corrupted<L: Layout>(f: &Fields, at: usize, word: u32, cut: usize) -> Vec<u8> {
    let r = repr(f);
    let mut buf = vec![0u8; r.buffer_len_in::<L>()];
    r.emit_in::<L>(&mut buf).unwrap();
    let at = at % buf.len();
    let end = (at + 4).min(buf.len());
    buf[at..end].copy_from_slice(&<L::ByteOrder as ByteOrder>::u32_to_bytes(word)[..end - at]);
    let keep = buf.len() - cut % buf.len();
    buf.truncate(keep);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn emit_parse_identity_64(f in fields_strategy(), slack in 0usize..9) {
        round_trip::<Layout64>(&f, slack)?;
    }

    #[test]
    fn emit_parse_identity_32(f in fields_strategy(), slack in 0usize..9) {
        round_trip::<Layout32>(&f, slack)?;
    }

    #[test]
    fn cross_layout_identity(f in fields_strategy()) {
        let r = repr(&f);
        let mut b64 = vec![0u8; r.buffer_len_in::<Layout64>()];
        r.emit_in::<Layout64>(&mut b64).unwrap();
        let m64 = Message::<_, Layout64>::new_checked_in(&b64[..]).unwrap();
        let p = MessageRepr::parse(&m64).unwrap();
        let mut b32 = vec![0u8; p.buffer_len_in::<Layout32>()];
        p.emit_in::<Layout32>(&mut b32).unwrap();
        let m32 = Message::<_, Layout32>::new_checked_in(&b32[..]).unwrap();
        prop_assert_eq!(MessageRepr::parse(&m32).unwrap(), r);
        prop_assert_eq!(b64.len(), b32.len() + 16);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for start in [0usize, 1] {
            let b = &bytes[start.min(bytes.len())..];
            let _ = Message::<_, Layout64>::new_checked_in(b);
            let _ = Message::<_, Layout32>::new_checked_in(b);
            touch_all(&Message::<&[u8], Layout64>::new_unchecked_in(b));
            touch_all(&Message::<&[u8], Layout32>::new_unchecked_in(b));
            let ev = ReplierBindEvent::new_unchecked(b);
            let _ = (ev.is_bind(), ev.binder(), ev.name(), ev.to_string(), ev.check());
            let _ = ReplierBindEvent::new_checked(b);
        }
        let mut m = bytes.clone();
        poke_all::<Layout64>(&mut m, 0xFFFF_FFF0);
        let mut m = bytes.clone();
        poke_all::<Layout32>(&mut m, 7);
    }

    #[test]
    fn arbitrary_headers_with_guards_never_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 88..700),
        name_len in prop_oneof![0u32..40, any::<u32>()],
        data_len in prop_oneof![0u32..600, any::<u32>()],
        nulls in any::<bool>(),
    ) {
        // Plausible headers: guards in place, lengths small or wild.
        for (h, end, ptrs) in [(88usize, 80usize, 64usize..80), (72, 68, 60..68)] {
            bytes[0..4].copy_from_slice(&START_GUARD.to_ne_bytes());
            bytes[end..end + 4].copy_from_slice(&END_GUARD.to_ne_bytes());
            bytes[52..56].copy_from_slice(&name_len.to_ne_bytes());
            bytes[56..60].copy_from_slice(&data_len.to_ne_bytes());
            if nulls {
                bytes[ptrs].fill(0);
            }
            // u64: on a 32-bit target these sums overflow usize.
            let total = 4 * ((u64::from(name_len) + 4) / 4)
                + 4 * ((u64::from(data_len) + 3) / 4)
                + h as u64
                + 4;
            if let Ok(total) = usize::try_from(total) {
                if total <= bytes.len() {
                    bytes[total - 4..total].copy_from_slice(&END_GUARD.to_ne_bytes());
                }
            }
            if h == 88 {
                if let Ok(m) = Message::<_, Layout64>::new_checked_in(&bytes[..]) {
                    prop_assert!(m.total_len() <= bytes.len());
                    prop_assert_eq!(m.name().len(), name_len as usize);
                    prop_assert_eq!(m.data().len(), data_len as usize);
                }
                touch_all(&Message::<&[u8], Layout64>::new_unchecked_in(&bytes));
            } else {
                if let Ok(m) = Message::<_, Layout32>::new_checked_in(&bytes[..]) {
                    prop_assert!(m.total_len() <= bytes.len());
                    prop_assert_eq!(m.name().len(), name_len as usize);
                }
                touch_all(&Message::<&[u8], Layout32>::new_unchecked_in(&bytes));
            }
        }
    }

    #[test]
    fn corrupted_messages_never_panic(
        f in fields_strategy(), at in any::<usize>(), word in any::<u32>(), cut in 0usize..12,
    ) {
        for b in [corrupted::<Layout64>(&f, at, word, cut), corrupted::<Layout32>(&f, at, word, cut)] {
            let m = Message::<&[u8], Layout64>::new_unchecked_in(&b);
            let _ = m.check();
            touch_all(&m);
            let m = Message::<&[u8], Layout32>::new_unchecked_in(&b);
            let _ = m.check();
            touch_all(&m);
            // A checked view's fields are consistent with its bytes.
            if let Ok(m) = Message::<_, Layout64>::new_checked_in(&b[..]) {
                prop_assert!(m.total_len() <= b.len());
                prop_assert_eq!(m.name().len(), m.name_len() as usize);
                prop_assert_eq!(m.data().len(), m.data_len() as usize);
                // Structure only: the name's meaning is check_name's job,
                // and agrees with the validator.
                prop_assert_eq!(
                    m.check_name().is_ok(),
                    kbus_wire::name::validate_message_name(m.name().as_bytes()).is_ok()
                );
            }
        }
    }
}

// The four explicit-order layouts: fewer cases each, as the native-order
// tests above already run every path with one of them.
proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn emit_parse_identity_64le(f in fields_strategy(), slack in 0usize..9) {
        round_trip::<Layout64Le>(&f, slack)?;
    }

    #[test]
    fn emit_parse_identity_64be(f in fields_strategy(), slack in 0usize..9) {
        round_trip::<Layout64Be>(&f, slack)?;
    }

    #[test]
    fn emit_parse_identity_32le(f in fields_strategy(), slack in 0usize..9) {
        round_trip::<Layout32Le>(&f, slack)?;
    }

    #[test]
    fn emit_parse_identity_32be(f in fields_strategy(), slack in 0usize..9) {
        round_trip::<Layout32Be>(&f, slack)?;
    }

    /// Parse in one order, emit in the other: the same fields, and bytes
    /// that differ exactly by the header words and the final guard.
    #[test]
    fn cross_order_identity(f in fields_strategy()) {
        let r = repr(&f);
        let le64 = emit::<Layout64Le>(&f);
        let be64 = emit::<Layout64Be>(&f);
        let le32 = emit::<Layout32Le>(&f);
        let be32 = emit::<Layout32Be>(&f);
        prop_assert_eq!(&swapped::<Layout64Le>(&le64), &be64);
        prop_assert_eq!(&swapped::<Layout32Be>(&be32), &le32);
        let p = MessageRepr::parse(&Message::<_, Layout64Be>::new_checked_in(&be64[..]).unwrap())
            .unwrap();
        prop_assert_eq!(p, r);
        let mut again = vec![0u8; p.buffer_len_in::<Layout32Le>()];
        p.emit_in::<Layout32Le>(&mut again).unwrap();
        prop_assert_eq!(&again, &le32);
        let p = MessageRepr::parse(&Message::<_, Layout32Le>::new_checked_in(&le32[..]).unwrap())
            .unwrap();
        prop_assert_eq!(p, r);
        // The wrong order never parses: the start guard reads byte-swapped.
        prop_assert!(Message::<_, Layout64Le>::new_checked_in(&be64[..]).is_err());
        prop_assert!(Message::<_, Layout32Be>::new_checked_in(&le32[..]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic_in_any_order(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        v in any::<u32>(),
    ) {
        arbitrary_in::<Layout64Le>(&bytes, v);
        arbitrary_in::<Layout64Be>(&bytes, v);
        arbitrary_in::<Layout32Le>(&bytes, v);
        arbitrary_in::<Layout32Be>(&bytes, v);
        let _ = ReplierBindEvent::<_, LittleEndian>::new_checked_in(&bytes[..]);
        let _ = ReplierBindEvent::<_, BigEndian>::new_checked_in(&bytes[..]);
    }

    #[test]
    fn arbitrary_headers_with_guards_never_panic_in_any_order(
        bytes in prop::collection::vec(any::<u8>(), 88..700),
        name_len in prop_oneof![0u32..40, any::<u32>()],
        data_len in prop_oneof![0u32..600, any::<u32>()],
        nulls in any::<bool>(),
    ) {
        plausible_in::<Layout64Le>(&mut bytes.clone(), name_len, data_len, nulls)?;
        plausible_in::<Layout64Be>(&mut bytes.clone(), name_len, data_len, nulls)?;
        plausible_in::<Layout32Le>(&mut bytes.clone(), name_len, data_len, nulls)?;
        plausible_in::<Layout32Be>(&mut bytes.clone(), name_len, data_len, nulls)?;
    }

    #[test]
    fn corrupted_messages_never_panic_in_any_order(
        f in fields_strategy(), at in any::<usize>(), word in any::<u32>(), cut in 0usize..12,
    ) {
        for b in [
            corrupted::<Layout64Le>(&f, at, word, cut),
            corrupted::<Layout64Be>(&f, at, word, cut),
            corrupted::<Layout32Le>(&f, at, word, cut),
            corrupted::<Layout32Be>(&f, at, word, cut),
        ] {
            touch_all(&Message::<&[u8], Layout64Le>::new_unchecked_in(&b));
            touch_all(&Message::<&[u8], Layout64Be>::new_unchecked_in(&b));
            touch_all(&Message::<&[u8], Layout32Le>::new_unchecked_in(&b));
            touch_all(&Message::<&[u8], Layout32Be>::new_unchecked_in(&b));
            if let Ok(m) = Message::<_, Layout64Be>::new_checked_in(&b[..]) {
                prop_assert!(m.total_len() <= b.len());
                prop_assert_eq!(m.data().len(), m.data_len() as usize);
            }
            if let Ok(m) = Message::<_, Layout32Le>::new_checked_in(&b[..]) {
                prop_assert!(m.total_len() <= b.len());
                prop_assert_eq!(m.name().len(), m.name_len() as usize);
            }
        }
    }
}
