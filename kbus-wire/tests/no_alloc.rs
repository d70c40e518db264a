//! Parsing and emitting allocate nothing: a counting global allocator sees
//! zero allocations while they run (this test binary uses `std` only for the
//! allocator and the harness).

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;

use kbus_wire::{
    Flags, Layout32, Layout64, Message, MessageId, MessageRepr, ReplierBindEvent,
    ReplierBindEventRepr,
};

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = COUNT.with(Cell::get);
    let r = f();
    (COUNT.with(Cell::get) - before, r)
}

#[test]
fn parse_and_emit_allocate_nothing() {
    let data = [7u8; 4096];
    let mut buf64 = [0u8; 4300];
    let mut buf32 = [0u8; 4300];
    let mut ev = [0u8; 64];

    let (n, total) = allocations(|| {
        let mut req = MessageRepr::request("$.Sensors.Kitchen", &data);
        req.id = MessageId::new(0, 1);
        req.flags |= Flags::WANT_YOU_TO_REPLY;
        let a = req.emit_in::<Layout64>(&mut buf64).unwrap();
        let b = req.emit_in::<Layout32>(&mut buf32).unwrap();
        let m64 = Message::<_, Layout64>::new_checked_in(&buf64[..a]).unwrap();
        let m32 = Message::<_, Layout32>::new_checked_in(&buf32[..b]).unwrap();
        let p64 = MessageRepr::parse(&m64).unwrap();
        let p32 = MessageRepr::parse(&m32).unwrap();
        assert_eq!(p64, p32);
        let reply = MessageRepr::reply_to(&m64, b"ok").unwrap();
        let stateful = MessageRepr::stateful_request(&reply, "$.Next", b"").unwrap();
        let pointy = stateful.pointy_header();
        let sum = pointy.as_bytes().len() + m64.data().len() + m32.name().len();
        let heap: heapless::Vec<u8, 256> = reply.emit_heapless::<256>().unwrap();
        let e = ReplierBindEventRepr {
            is_bind: true,
            binder: 5,
            name: "$.Fred",
        }
        .emit(&mut ev)
        .unwrap();
        let view = ReplierBindEvent::new_checked(&ev[..e]).unwrap();
        // Errors are allocation-free too.
        let err = Message::<_, Layout64>::new_checked_in(&buf64[..10]).unwrap_err();
        let _ = MessageRepr::announcement("$.A.*", b"").emit_in::<Layout64>(&mut buf64);
        sum + heap.len()
            + view.binder() as usize
            + matches!(err, kbus_wire::Error::Truncated { .. }) as usize
    });
    assert_eq!(n, 0, "parse/emit allocated {n} times");
    assert!(total > 4096);
    // The counter works.
    let (n, v) = allocations(|| vec![1u8; 10]);
    assert!(n >= 1 && v.len() == 10);
}
