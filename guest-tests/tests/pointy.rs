//! Pointy messages at the very end of a mapping (spec §3.5, §5.2;
//! kmod/README decision 10: our module copies exactly `name_len` name bytes
//! and `data_len` data bytes at SEND, so a name that ends exactly at the end
//! of a mapped page, with the next page inaccessible, can be sent; one byte
//! more is EFAULT). Modules in the field read the byte after the name too;
//! `send_msg` therefore sends such a name from a NUL-terminated stack copy
//! (issue 10), which the first test exercises on every module.

use std::ptr::null_mut;

use kbus_guest_tests::*;
use rustix::mm::{mmap_anonymous, mprotect, MapFlags, MprotectFlags, ProtFlags};

/// The last `len` bytes of a fresh read/write page whose next page is
/// PROT_NONE. The two pages are never unmapped.
fn before_a_hole(len: usize) -> &'static mut [u8] {
    let page = rustix::param::page_size();
    assert!(len <= page);
    // SAFETY: mmap_anonymous with a null hint creates a new private mapping
    // of two pages that no other pointer refers to; mprotect changes only
    // its second page. The slice covers the last `len` bytes of the first
    // page, which stay mapped read/write (zero-filled) for the rest of the
    // process, and it is the only reference to them.
    unsafe {
        let base = mmap_anonymous(
            null_mut(),
            2 * page,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
        .expect("mmap")
        .cast::<u8>();
        mprotect(base.add(page).cast(), page, MprotectFlags::empty()).expect("mprotect");
        std::slice::from_raw_parts_mut(base.add(page - len), len)
    }
}

#[test]
fn a_name_ending_at_the_end_of_a_page_is_sent() {
    const NAME: &str = "$.Pointy.Edge";
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, NAME, Role::Listener);
    let area = before_a_hole(NAME.len());
    area.copy_from_slice(NAME.as_bytes());
    let name = std::str::from_utf8(area).unwrap();
    let id = send(&s, &MessageRepr::announcement(name, b"some data"));
    let m = recv(&l, "name at the page end");
    assert_eq!(
        (m.id(), m.name().to_str().unwrap(), m.data()),
        (id, NAME, &b"some data"[..])
    );
    // And as a Request, so the name is copied for the Replier too.
    let r = open_rw(0);
    bind(&r, NAME, Role::Replier);
    let rid = send(&s, &MessageRepr::request(name, b""));
    let m = recv(&r, "request with its name at the page end");
    assert_eq!((m.id(), m.name().to_str().unwrap()), (rid, NAME));
    assert!(m.wants_us_to_reply());
    send(&r, &MessageRepr::reply_to(&m, b"").unwrap());
    assert_eq!(recv(&s, "reply").in_reply_to(), rid);
    recv(&l, "listener copy of the Request");
    recv(&l, "listener copy of the Reply");
    assert_empty(&l, "done");
}

#[test]
fn data_and_name_ending_at_the_end_of_a_page_are_sent() {
    const NAME: &str = "$.Pointy.Both";
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, NAME, Role::Listener);
    let data: Vec<u8> = (0..100u8).collect();
    // Data ending at the page end.
    let area = before_a_hole(data.len());
    area.copy_from_slice(&data);
    let id = send(&s, &MessageRepr::announcement(NAME, area));
    let m = recv(&l, "data at the page end");
    assert_eq!((m.id(), m.data()), (id, &data[..]));
    // Data directly followed by the name, which ends at the page end.
    let area = before_a_hole(data.len() + NAME.len());
    let (d, n) = area.split_at_mut(data.len());
    d.copy_from_slice(&data);
    n.copy_from_slice(NAME.as_bytes());
    let name = std::str::from_utf8(n).unwrap();
    let id = send(&s, &MessageRepr::announcement(name, d));
    let m = recv(&l, "data and name at the page end");
    assert_eq!(
        (m.id(), m.name().to_str().unwrap(), m.data()),
        (id, NAME, &data[..])
    );
    assert_empty(&l, "done");
}

#[test]
fn an_entire_message_ending_at_the_end_of_a_page_is_sent() {
    const NAME: &str = "$.Pointy.Entire";
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, NAME, Role::Listener);
    let bytes = MessageRepr::announcement(NAME, b"abc").to_vec().unwrap();
    let area = before_a_hole(bytes.len());
    area.copy_from_slice(&bytes);
    let id = ok(s.send_entire(area), "write + SEND");
    let m = recv(&l, "entire message at the page end");
    assert_eq!((m.id(), m.data()), (id, &b"abc"[..]));
}

#[test]
fn one_byte_into_the_hole_is_efault() {
    const NAME: &str = "$.Pointy.Hole";
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, NAME, Role::Listener);
    let area = before_a_hole(NAME.len() + 8);
    let (d, n) = area.split_at_mut(8);
    d.copy_from_slice(b"12345678");
    n.copy_from_slice(NAME.as_bytes());
    let name = std::str::from_utf8(n).unwrap();

    // The name pointer stays, its length runs one byte into the hole.
    let repr = MessageRepr::announcement(name, b"x");
    let header = repr.pointy_header();
    let mut msg = Message::new_unchecked(header.as_bytes().to_vec());
    msg.set_name_len(NAME.len() as u32 + 1);
    ok(s.write_data(msg.header_bytes()), "header");
    expect_errno(s.send(), Errno::FAULT, "name one byte into the hole");
    // The data, as the last 8 bytes of the page, then one byte more.
    let area = before_a_hole(8);
    area.copy_from_slice(b"abcdefgh");
    let repr = MessageRepr::announcement(NAME, area);
    let header = repr.pointy_header();
    let mut msg = Message::new_unchecked(header.as_bytes().to_vec());
    msg.set_data_len(9);
    ok(s.write_data(msg.header_bytes()), "header");
    expect_errno(s.send(), Errno::FAULT, "data one byte into the hole");
    // Nothing was delivered and the Ksock still works.
    assert_empty(&l, "failed sends deliver nothing");
    expect_errno(s.send(), Errno::NOMSG, "the failed message is gone");
    let id = send(&s, &repr);
    let m = recv(&l, "a good send afterwards");
    assert_eq!((m.id(), m.data()), (id, &b"abcdefgh"[..]));
}
