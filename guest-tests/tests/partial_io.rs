//! Partial reads and writes, LENLEFT, buffers too small (spec §5.1, §6).

use kbus_guest_tests::*;
use kbus_rustix::ErrorKind;
use kbus_wire::{entire_len, NativeLayout};

fn entire(repr: &MessageRepr<'_>) -> Vec<u8> {
    repr.to_vec().expect("emit")
}

#[test]
fn reads_of_any_size_return_consecutive_bytes() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Pio.Fred", Role::Listener);
    for chunk in [1usize, 3, 4, 7, 64] {
        let id = send(&s, &MessageRepr::announcement("$.Pio.Fred", b"abc1234"));
        let total = ok(l.next_msg(), "NEXTMSG").expect("queued");
        assert_eq!(total, entire_len::<NativeLayout>(10, 7));
        let mut all = Vec::new();
        loop {
            assert_eq!(
                ok(l.len_left(), "LENLEFT"),
                total - all.len(),
                "after {} bytes",
                all.len()
            );
            let mut buf = vec![0u8; chunk];
            let n = ok(l.read_data(&mut buf), "read");
            if n == 0 {
                break;
            }
            assert!(n <= chunk);
            all.extend_from_slice(&buf[..n]);
        }
        assert_eq!(all.len(), total, "chunk {chunk}");
        assert_eq!(
            ok(l.len_left(), "LENLEFT"),
            0,
            "released after the last byte"
        );
        let m = Message::new_checked(&all[..]).expect("a whole entire message");
        assert_eq!(
            (m.id(), m.name().to_str().unwrap(), m.data()),
            (id, "$.Pio.Fred", &b"abc1234"[..])
        );
        // Zero padding on the way out (spec §3.4).
        let h = kbus_wire::NATIVE_HEADER_LEN;
        assert_eq!(&all[h + 10..h + 12], &[0, 0], "name padding");
        assert_eq!(all[h + 12 + 7], 0, "data padding");
    }
}

#[test]
fn a_read_never_runs_into_the_next_message() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Pio.Two", Role::Listener);
    send(&s, &MessageRepr::announcement("$.Pio.Two", b"1"));
    send(&s, &MessageRepr::announcement("$.Pio.Two", b"22"));
    let len = ok(l.next_msg(), "NEXTMSG").unwrap();
    let mut big = vec![0u8; 4096];
    assert_eq!(ok(l.read_data(&mut big), "read"), len);
    assert_eq!(ok(l.read_data(&mut big), "read"), 0, "no NEXTMSG, no bytes");
    assert_eq!(ok(l.num_messages(), "NUMMSGS"), 1);
}

#[test]
fn nextmsg_drops_a_partly_read_message() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Pio.Drop", Role::Listener);
    send(&s, &MessageRepr::announcement("$.Pio.Drop", b"first"));
    let second = send(&s, &MessageRepr::announcement("$.Pio.Drop", b"second"));
    ok(l.next_msg(), "NEXTMSG");
    let mut some = [0u8; 10];
    assert_eq!(ok(l.read_data(&mut some), "read"), 10);
    let mut buf = [0u8; 256];
    let m = ok(l.read_next_msg(&mut buf), "read next").unwrap();
    assert_eq!(m.id(), second);
}

#[test]
fn a_small_buffer_leaves_the_message_current() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Pio.Small", Role::Listener);
    let data = [9u8; 300];
    let id = send(&s, &MessageRepr::announcement("$.Pio.Small", &data));
    let need = entire_len::<NativeLayout>(11, 300);
    let mut small = [0u8; 64];
    let e = l.read_next_msg(&mut small).unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::BufferTooSmall {
            needed: need,
            available: 64
        }
    );
    assert!(e.to_string().contains("stays current"), "{e}");
    assert_eq!(ok(l.len_left(), "LENLEFT"), need, "nothing consumed");
    let e = l.read_msg(&mut small).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::BufferTooSmall { .. }), "{e}");
    let mut big = vec![0u8; need];
    let m = ok(l.read_msg(&mut big), "read_msg").expect("still current");
    assert_eq!((m.id(), m.data()), (id, &data[..]));
    assert!(
        ok(l.read_msg(&mut big), "read_msg").is_none(),
        "consumed now"
    );
}

#[test]
fn writes_of_any_size_assemble_one_message() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Pio.Write", Role::Listener);
    let bytes = entire(&MessageRepr::announcement("$.Pio.Write", b"pieces"));
    for chunk in [1usize, 2, 5, 88, 1000] {
        for piece in bytes.chunks(chunk) {
            assert_eq!(ok(s.write_data(piece), "write"), piece.len());
        }
        let id = ok(s.send(), "SEND");
        let m = recv(&l, &format!("chunk {chunk}"));
        assert_eq!((m.id(), m.data()), (id, &b"pieces"[..]));
    }
    // An empty write starts an empty message: SEND then says EINVAL.
    assert_eq!(ok(s.write_data(&[]), "empty write"), 0);
    expect_errno(s.send(), Errno::INVAL, "SEND after an empty write");
    expect_errno(s.send(), Errno::NOMSG, "and it was discarded");
}

#[test]
fn iteration_lending_and_owned() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Pio.Iter", Role::Listener);
    let ids: Vec<MessageId> = (0..3u8)
        .map(|i| send(&s, &MessageRepr::announcement("$.Pio.Iter", &[i])))
        .collect();
    let mut buf = [0u8; 256];
    let mut it = l.messages(&mut buf);
    let mut seen = Vec::new();
    while let Some(m) = ok(it.next(), "lending next") {
        seen.push(m.id());
    }
    assert_eq!(seen, ids);
    let ids: Vec<MessageId> = (0..3u8)
        .map(|i| send(&s, &MessageRepr::announcement("$.Pio.Iter", &[i])))
        .collect();
    let got: Vec<MessageId> = l.iter_owned().map(|m| ok(m, "owned next").id()).collect();
    assert_eq!(got, ids);
}
