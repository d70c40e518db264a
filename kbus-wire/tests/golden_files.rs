//! The host half of "a 32-bit guest and a 64-bit host agree on a message's
//! bytes" (issue 5): both layouts emit exactly the golden files that
//! `guest-tests/tests/golden.rs` checks against the kernel in each guest
//! (see `guest-tests/golden/README.md`), in both byte orders, through the
//! explicit-order layouts (so every host checks all four files).

use kbus_wire::{
    Flags, Layout, Layout32Be, Layout32Le, Layout64Be, Layout64Le, Message, MessageId, MessageRepr,
    OrigFrom,
};

const GOLDEN64: &[u8] = include_bytes!("../../guest-tests/golden/request64.bin");
const GOLDEN32: &[u8] = include_bytes!("../../guest-tests/golden/request32.bin");
const GOLDEN64_BE: &[u8] = include_bytes!("../../guest-tests/golden/request64be.bin");
const GOLDEN32_BE: &[u8] = include_bytes!("../../guest-tests/golden/request32be.bin");

/// The Replier's copy of the golden Stateful Request.
fn golden_repr() -> MessageRepr<'static> {
    let mut repr = MessageRepr::request("$.Golden.Request", b"abc1234");
    repr.id = MessageId::new(7, 42);
    repr.to = 2;
    repr.from = 1;
    repr.orig_from = OrigFrom::new(3, 4);
    repr.final_to = OrigFrom::new(5, 6);
    repr.flags =
        Flags::WANT_A_REPLY | Flags::WANT_YOU_TO_REPLY | Flags::from_bits_retain(0x8001_0000);
    repr
}

fn check<L: Layout>(golden: &[u8]) {
    let repr = golden_repr();
    assert_eq!(repr.buffer_len_in::<L>(), golden.len());
    let mut buf = vec![0xAA; golden.len() + 8];
    let n = repr.emit_in::<L>(&mut buf).expect("emit");
    assert_eq!(
        &buf[..n],
        golden,
        "emit with a {}-byte header",
        L::HEADER_LEN
    );
    let msg = Message::<_, L>::new_checked_in(golden).expect("golden file parses");
    assert_eq!(MessageRepr::parse(&msg).unwrap(), repr);
    assert_eq!(msg.flags().bits(), 0x8001_0003);
}

#[test]
fn layout64_emits_request64_bin() {
    assert_eq!(GOLDEN64.len(), 120);
    check::<Layout64Le>(GOLDEN64);
}

#[test]
fn layout32_emits_request32_bin() {
    assert_eq!(GOLDEN32.len(), 104);
    check::<Layout32Le>(GOLDEN32);
}

#[test]
fn big_endian_layouts_emit_the_be_files() {
    check::<Layout64Be>(GOLDEN64_BE);
    check::<Layout32Be>(GOLDEN32_BE);
}

#[test]
fn the_two_files_differ_only_in_the_header_tail() {
    // Offsets 0..60 are the same in both ABIs, and so is everything after
    // the header (spec §3.3, §3.4).
    assert_eq!(GOLDEN64[..60], GOLDEN32[..60]);
    assert_eq!(GOLDEN64[88..], GOLDEN32[72..]);
}
