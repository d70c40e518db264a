//! A 32-bit guest and a 64-bit host agree on a message's bytes (issue 5):
//! the kernel of this guest delivers exactly the golden file for its
//! pointer width (`golden/README.md`), the 72-byte header on armv7 and
//! mipsel, 88 on x86_64. `kbus-wire/tests/golden_files.rs` checks on the
//! host that `MessageRepr::emit` gives the same bytes in both layouts.

use kbus_guest_tests::*;
use kbus_wire::{OrigFrom, NATIVE_HEADER_LEN};

#[cfg(all(target_pointer_width = "64", target_endian = "little"))]
const GOLDEN: &[u8] = include_bytes!("../golden/request64.bin");
#[cfg(all(target_pointer_width = "32", target_endian = "little"))]
const GOLDEN: &[u8] = include_bytes!("../golden/request32.bin");
// Big-endian kernels (s390x) deliver the same message in their byte order.
#[cfg(all(target_pointer_width = "64", target_endian = "big"))]
const GOLDEN: &[u8] = include_bytes!("../golden/request64be.bin");
#[cfg(all(target_pointer_width = "32", target_endian = "big"))]
const GOLDEN: &[u8] = include_bytes!("../golden/request32be.bin");

const NAME: &str = "$.Golden.Request";

fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| {
            c.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_golden(got: &[u8], what: &str) {
    assert!(
        got == GOLDEN,
        "{what}: the delivered bytes differ from the golden file\ngot:\n{}\nwant:\n{}",
        hex(got),
        hex(GOLDEN)
    );
}

#[test]
fn a_delivered_request_matches_the_golden_file() {
    let (h, total) = if cfg!(target_pointer_width = "64") {
        (88, 120)
    } else {
        (72, 104)
    };
    assert_eq!(NATIVE_HEADER_LEN, h, "header size of this ABI");
    assert_eq!(GOLDEN.len(), total);

    let dev = fresh_device();
    let s = open_rw(dev);
    let r = open_rw(dev);
    assert_eq!((ok(s.ksock_id(), "id"), ok(r.ksock_id(), "id")), (1, 2));
    bind(&r, NAME, Role::Replier);

    // Pointy: every field KBUS does not assign is chosen here; the id has a
    // non-zero network id, so KBUS keeps it (spec §5.2).
    let mut repr = MessageRepr::request(NAME, b"abc1234");
    repr.id = MessageId::new(7, 42);
    repr.to = 2;
    repr.orig_from = OrigFrom::new(3, 4);
    repr.final_to = OrigFrom::new(5, 6);
    repr.flags = Flags::from_bits_retain(0x8001_0001);
    assert_eq!(send(&s, &repr), MessageId::new(7, 42));
    let m = recv(&r, "the Replier's copy");
    assert_golden(m.as_bytes(), "pointy send");

    // The golden bytes themselves, written as an entire message, come back
    // unchanged (KBUS sets `from` and WANT_YOU_TO_REPLY to what they are).
    assert_eq!(
        ok(s.send_entire(GOLDEN), "send the golden file"),
        MessageId::new(7, 42)
    );
    let m = recv(&r, "the Replier's copy of the golden file");
    assert_golden(m.as_bytes(), "entire send");
    assert_empty(&r, "two Requests");
}
