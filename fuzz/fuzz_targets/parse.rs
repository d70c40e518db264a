//! Fuzz the parser: `new_checked` on both layouts, every accessor, and the
//! emit → parse round trip of whatever parses.
#![no_main]

use kbus_wire::{
    Layout, Layout32, Layout64, Message, MessageRepr, ReplierBindEvent,
};
use libfuzzer_sys::fuzz_target;

fn exercise<L: Layout>(data: &[u8]) {
    // Accessors never panic, checked or not.
    let view = Message::<_, L>::new_unchecked_in(data);
    let _ = (view.id(), view.in_reply_to(), view.to(), view.from(), view.orig_from());
    let _ = (view.final_to(), view.extra(), view.flags(), view.name(), view.data());
    let _ = (view.name_ptr(), view.data_ptr(), view.final_guard(), view.total_len());
    let _ = (view.kind(), view.synthetic_name(), view.bind_event().is_ok());
    let _ = view.to_string();
    let _ = format!("{view:?}");

    let Ok(msg) = Message::<_, L>::new_checked_in(data) else {
        return;
    };
    assert!(msg.total_len() <= data.len());
    let repr = MessageRepr::parse(&msg).expect("checked message parses");
    assert_eq!(repr.name.len() as u32, msg.name_len());
    assert_eq!(repr.data.len() as u32, msg.data_len());
    let _ = repr.kind();
    let _ = MessageRepr::reply_to(&msg, b"r");
    let _ = MessageRepr::stateful_request(&msg, "$.S", b"");

    // new_checked checks structure only: a name the kernel would refuse
    // parses, and emit (which validates) refuses it; emit_unvalidated does
    // not. Either way, what is emitted parses to the same fields.
    let mut out = vec![0u8; repr.buffer_len_in::<L>()];
    let n = if msg.check_name().is_ok() {
        repr.emit_in::<L>(&mut out).expect("parsed message re-emits")
    } else {
        assert!(repr.emit_in::<L>(&mut out).is_err());
        repr.emit_unvalidated_in::<L>(&mut out).expect("re-emits unvalidated")
    };
    assert_eq!(n, msg.total_len());
    let again = Message::<_, L>::new_checked_in(&out[..]).expect("re-emitted parses");
    assert_eq!(MessageRepr::parse(&again).expect("ok"), repr);
    // Every header field (extra included) is byte-identical; only padding
    // may differ.
    assert_eq!(&out[..60], &msg.as_bytes()[..60]);
}

fuzz_target!(|data: &[u8]| {
    exercise::<Layout64>(data);
    exercise::<Layout32>(data);
    if let Ok(ev) = ReplierBindEvent::new_checked(data) {
        assert!(ev.total_len() <= data.len());
        let _ = ev.to_string();
    }
});
