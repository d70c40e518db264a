//! `/proc/kbus/stats` byte for byte (spec §8.2; kmod/README decision 10 for
//! the write state of a complete message).
//!
//! The scenario runs on a device of its own (NEWDEVICE), so its counters are
//! predictable; every other device must show just its one line.

use kbus_guest_tests::*;
use kbus_wire::{entire_len, NativeLayout, NATIVE_HEADER_LEN as H};

/// What stats shows for one Ksock (spec §8.2, three lines).
#[derive(Clone, Copy)]
struct KsockStats {
    id: u32,
    last_sent: u32,
    queue: u32,
    limit: u32,
    /// (bytes read, total) of the current read message.
    read: (usize, usize),
    /// (position in the part, part, finished)
    wrote: (usize, &'static str, bool),
    sending: bool,
    /// (count, table size, high-water mark)
    outstanding: (u32, u32, u32),
    /// (count, high-water mark)
    unreplied: (u32, u32),
}

impl KsockStats {
    fn new(id: u32) -> Self {
        KsockStats {
            id,
            last_sent: 0,
            queue: 0,
            limit: 100,
            read: (0, 0),
            wrote: (0, "HDR", false),
            sending: false,
            outstanding: (0, 16, 0),
            unreplied: (0, 0),
        }
    }

    fn lines(&self) -> String {
        let not = |b: bool| if b { "" } else { "not " };
        format!(
            "    ksock {} last msg 0:{} queue {} of {}\n      read byte {} of {}, wrote byte {} of {} ({}finished), {}sending\n      outstanding requests {} (size {}, max {}), unsent replies {} (max {})\n",
            self.id,
            self.last_sent,
            self.queue,
            self.limit,
            self.read.0,
            self.read.1,
            self.wrote.0,
            self.wrote.1,
            not(self.wrote.2),
            not(self.sending),
            self.outstanding.0,
            self.outstanding.1,
            self.outstanding.2,
            self.unreplied.0,
            self.unreplied.1,
        )
    }
}

/// Compare the whole of `/proc/kbus/stats` with what we expect: our device
/// `dev` with its Ksocks newest first, every other device one idle line.
#[track_caller]
fn check(dev: u32, next_ksock: u32, next_msg: u32, ksocks: &[KsockStats], what: &str) {
    let text = read_stats();
    let mut want = String::new();
    let mut seen_ours = false;
    for line in text.lines().filter(|l| l.starts_with("dev ")) {
        // "dev %2u: next ksock %u next msg %u unsent unbindings %u%s"
        let w: Vec<&str> = line.split_whitespace().collect();
        let n: u32 = w[1].trim_end_matches(':').parse().expect("device number");
        if n == dev {
            seen_ours = true;
            want.push_str(&format!(
                "dev {dev:2}: next ksock {next_ksock} next msg {next_msg} unsent unbindings 0\n"
            ));
            for k in ksocks {
                want.push_str(&k.lines());
            }
        } else {
            assert!(w.len() >= 10, "{line:?}");
            want.push_str(&format!(
                "dev {n:2}: next ksock {} next msg {} unsent unbindings 0\n",
                w[4], w[7]
            ));
        }
    }
    assert!(seen_ours, "{what}: no line for device {dev}:\n{text}");
    assert_eq!(text, want, "{what}: /proc/kbus/stats");
}

#[test]
fn proc_stats_byte_for_byte() {
    let dev = fresh_device();
    let a = open_rw(dev);
    let b = open_rw(dev);
    let c = open_ro(dev);
    let mut sa = KsockStats::new(1);
    let mut sb = KsockStats::new(2);
    let mut sc = KsockStats::new(3);
    // Counters show the next value to hand out, 0 before first use.
    check(dev, 4, 0, &[sc, sb, sa], "three fresh Ksocks");

    bind(&b, "$.Stats.Svc", Role::Replier);
    bind(&c, "$.Stats.*", Role::Listener);
    ok(c.set_max_messages(5), "MAXMSGS");
    send(&a, &MessageRepr::request("$.Stats.Svc", b"hello"));
    send(&a, &MessageRepr::announcement("$.Stats.News", b""));
    // b pops the Request and reads 10 bytes of it; c reads a whole message.
    let req_len = entire_len::<NativeLayout>(11, 5);
    assert_eq!(ok(b.next_msg(), "NEXTMSG"), Some(req_len));
    let mut buf = [0u8; 10];
    assert_eq!(ok(b.read_data(&mut buf), "read"), 10);
    recv(&c, "listener copy of the Request");
    // a writes the first bytes of an entire message.
    let entire = MessageRepr::announcement("$.Stats.News", b"ab")
        .to_vec()
        .unwrap();
    assert_eq!(entire.len(), H + 16 + 4 + 4);
    ok(a.write_data(&entire[..H + 3]), "write");
    sa.last_sent = 2;
    sa.outstanding = (1, 16, 1);
    sa.wrote = (3, "NAME", false);
    sb.queue = 0;
    sb.read = (10, req_len);
    sb.unreplied = (1, 1);
    sc.queue = 1;
    sc.limit = 5;
    check(
        dev,
        4,
        3,
        &[sc, sb, sa],
        "a Request, a partial read and write",
    );

    // The write position within each part of the entire message: name 12
    // bytes + 4 padding, data 2 + 2 padding, final guard 4.
    let mut written = H + 3;
    for (upto, pos, part) in [
        (H + 14, 2, "NPAD"),
        (H + 17, 1, "DATA"),
        (H + 19, 1, "DPAD"),
        (H + 22, 2, "FINAL"),
        (H + 24, 4, "FINAL"),
    ] {
        ok(a.write_data(&entire[written..upto]), "write");
        written = upto;
        sa.wrote = (pos, part, upto == entire.len());
        check(dev, 4, 3, &[sc, sb, sa], &format!("{upto} bytes written"));
    }
    // Sent: the write state starts over.
    ok(a.send(), "SEND");
    sa.last_sent = 3;
    sa.wrote = (0, "HDR", false);
    sc.queue = 2;
    check(dev, 4, 4, &[sc, sb, sa], "after SEND");

    // b answers (its read message stays current); c gets a copy.
    let mut full = vec![0u8; req_len];
    full[..10].copy_from_slice(&buf);
    assert_eq!(
        ok(b.read_data(&mut full[10..]), "read the rest"),
        req_len - 10
    );
    let req: Msg = Message::new_checked(full).expect("the Request");
    send(&b, &MessageRepr::reply_to(&req, b"").unwrap());
    sb.last_sent = 4;
    sb.read = (0, 0);
    sb.unreplied = (0, 1);
    sa.queue = 1;
    sa.outstanding = (0, 16, 1);
    sc.queue = 3;
    check(dev, 4, 5, &[sc, sb, sa], "after the Reply");

    // A pending ALL_OR_WAIT send: sending state, a complete pointy header.
    ok(c.set_max_messages(3), "MAXMSGS");
    sc.limit = 3;
    let mut m = MessageRepr::announcement("$.Stats.News", b"wait");
    m.flags = Flags::ALL_OR_WAIT;
    expect_errno(a.send_msg(&m), Errno::AGAIN, "c is full");
    sa.last_sent = 5;
    sa.wrote = (H, "HDR", true);
    sa.sending = true;
    check(dev, 4, 6, &[sc, sb, sa], "sending state");
    ok(a.discard(), "DISCARD");
    sa.wrote = (0, "HDR", false);
    sa.sending = false;

    // 17 outstanding Requests: the table grows from 16 by 1/8 to 18.
    for _ in 0..17 {
        send(&a, &MessageRepr::request("$.Stats.Svc", b""));
    }
    sa.last_sent = 22;
    sa.outstanding = (17, 18, 17);
    sb.queue = 17;
    check(dev, 4, 23, &[sc, sb, sa], "17 outstanding Requests");
    drop(c);
    drop(b);
    drop(a);
}
