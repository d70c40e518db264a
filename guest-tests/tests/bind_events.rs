//! Replier Bind Events and the set-aside list (spec §3.7, §3.11
//! REPORTREPLIERBINDS, §7.6, §7.7, §13 item 13 and kmod/README decisions 5
//! and 10).
//!
//! Each test works on a device of its own made with NEWDEVICE, so that Ksock
//! ids, serial numbers and the device-wide REPORTREPLIERBINDS flag are
//! predictable (they start at 1 and off).

use std::time::Duration;

use kbus_guest_tests::*;
use kbus_wire::name::{REPLIER_BIND_EVENT, UNBIND_EVENTS_LOST};
use kbus_wire::{entire_len, NativeLayout, OrigFrom};

const EVENT: &str = REPLIER_BIND_EVENT;

/// The event data of spec §3.7, built by hand: `is_bind`, `binder`,
/// `name_len`, then the name with a NUL and zero padding to a multiple of 4.
fn event_data(is_bind: bool, binder: u32, name: &str) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&u32::from(is_bind).to_ne_bytes());
    d.extend_from_slice(&binder.to_ne_bytes());
    d.extend_from_slice(&(name.len() as u32).to_ne_bytes());
    d.extend_from_slice(name.as_bytes());
    d.resize(12 + (name.len() + 1).div_ceil(4) * 4, 0);
    d
}

/// Every field of a Replier Bind Event (spec §7.5, §7.6).
#[track_caller]
fn check_event(m: &Msg, serial: Option<u32>, is_bind: bool, binder: u32, name: &str) {
    assert_eq!(m.name(), EVENT, "{m}");
    if let Some(serial) = serial {
        assert_eq!(m.id(), MessageId::new(0, serial), "id of {m}");
    }
    assert_eq!(m.flags().bits(), 0x204, "SYNTHETIC | ALL_OR_FAIL: {m}");
    assert_eq!((m.from(), m.to()), (0, 0), "{m}");
    assert_eq!(m.in_reply_to(), MessageId::new(0, 0), "{m}");
    assert_eq!(m.orig_from(), OrigFrom::new(0, 0), "{m}");
    assert_eq!(m.final_to(), OrigFrom::new(0, 0), "{m}");
    assert_eq!(m.extra(), 0, "{m}");
    assert_eq!(m.data(), event_data(is_bind, binder, name), "data of {m}");
    let ev = m.bind_event().expect("bind event data");
    assert_eq!(
        (ev.is_bind(), ev.binder(), ev.name()),
        (is_bind, binder, name)
    );
}

/// The `$.KBUS.UnbindEventsLost` announcement (spec §7.5).
#[track_caller]
fn check_lost(m: &Msg, serial: u32) {
    assert_eq!(m.name(), UNBIND_EVENTS_LOST, "{m}");
    assert_eq!(m.id(), MessageId::new(0, serial), "id of {m}");
    assert_eq!(m.flags(), Flags::SYNTHETIC, "{m}");
    assert_eq!((m.from(), m.to()), (0, 0), "{m}");
    assert_eq!(m.in_reply_to(), MessageId::new(0, 0), "{m}");
    assert_eq!(m.data(), b"", "{m}");
}

#[track_caller]
fn id_of(k: &Ksock) -> u32 {
    ok(k.ksock_id(), "KSOCKID")
}

#[track_caller]
fn num(k: &Ksock) -> u32 {
    ok(k.num_messages(), "NUMMSGS")
}

#[track_caller]
fn assert_unsent(dev: u32, want: &str) {
    let line = stats_device_line(dev);
    assert!(
        line.ends_with(&format!(" unsent unbindings {want}")),
        "/proc/kbus/stats: {line:?}, want unsent unbindings {want:?}"
    );
}

#[test]
fn bind_event_data_is_exactly_as_in_the_spec() {
    let dev = fresh_device();
    let watcher = open_rw(dev);
    let everything = open_ro(dev);
    let _k3 = open_ro(dev);
    let _k4 = open_ro(dev);
    let binder = open_rw(dev);
    assert_eq!(id_of(&binder), 5, "the fifth Ksock of a new device");
    bind(&watcher, EVENT, Role::Listener);
    bind(&everything, "$.*", Role::Listener);
    // The binder itself hears its own events too.
    bind(&binder, "$.KBUS.*", Role::Listener);
    assert!(!ok(watcher.report_replier_binds(true), "on"), "was off");
    assert_empty(&watcher, "no Replier bindings to report yet");

    // The spec's example: binding `$.Fred` by Ksock 5 gives the 20 data
    // bytes 01000000 05000000 06000000 "$.Fred\0\0" (little-endian).
    bind(&binder, "$.Fred", Role::Replier);
    let m = recv(&watcher, "bind event");
    check_event(&m, Some(1), true, 5, "$.Fred");
    let mut want = Vec::new();
    for w in [1u32, 5, 6] {
        want.extend_from_slice(&w.to_ne_bytes());
    }
    want.extend_from_slice(b"$.Fred\0\0");
    assert_eq!(m.data(), want);
    assert_eq!(m.data_len(), 20);
    assert_eq!(m.total_len(), entire_len::<NativeLayout>(EVENT.len(), 20));
    for (k, who) in [(&everything, "via $.*"), (&binder, "the binder itself")] {
        let copy = recv(k, who);
        assert_eq!(copy.as_bytes(), m.as_bytes(), "{who}: the same message");
        assert_empty(k, who);
    }
    assert_empty(&watcher, "one event");

    ok(binder.unbind("$.Fred", Role::Replier), "unbind");
    check_event(&recv(&watcher, "unbind"), Some(2), false, 5, "$.Fred");
    // The name is the binding string as given: wildcards too. Padding:
    // `$.Fred.*` (8 bytes) takes 12, `$.Fr` (4 bytes) takes 8.
    bind(&binder, "$.Fred.*", Role::Replier);
    let m = recv(&watcher, "wildcard");
    check_event(&m, Some(3), true, 5, "$.Fred.*");
    assert_eq!(m.data_len(), 24);
    bind(&binder, "$.Fr", Role::Replier);
    let m = recv(&watcher, "4-byte name");
    check_event(&m, Some(4), true, 5, "$.Fr");
    assert_eq!(&m.data()[12..], b"$.Fr\0\0\0\0");
    // No events for Listener bindings, nor for an UNBIND that finds nothing
    // (which uses no serial number either).
    bind(&binder, "$.Fred.Listen", Role::Listener);
    ok(
        binder.unbind("$.Fred.Listen", Role::Listener),
        "unbind listener",
    );
    expect_errno(
        binder.unbind("$.Fred.None", Role::Replier),
        Errno::INVAL,
        "UNBIND of nothing",
    );
    let probe = send(&watcher, &MessageRepr::announcement("$.Fred.Probe", b""));
    assert_eq!(probe, MessageId::new(0, 5));
    // `everything` also got events 2..4 and the probe, `binder` events 2..4.
    for (k, serials) in [(&everything, &[2, 3, 4, 5][..]), (&binder, &[2, 3, 4][..])] {
        let got: Vec<u32> = k
            .iter_owned()
            .map(|m| ok(m, "read").id().serial_num)
            .collect();
        assert_eq!(got, serials, "{k}");
    }
    assert_empty(&watcher, "all read");
    let _ = watcher.report_replier_binds(false);
}

#[test]
fn full_listener_makes_replier_bind_and_unbind_eagain() {
    let dev = fresh_device();
    let admin = open_rw(dev);
    ok(admin.report_replier_binds(true), "on");
    let r1 = open_rw(dev);
    let r1id = id_of(&r1);
    bind(&r1, "$.BE.Kept", Role::Replier);
    let l = open_ro(dev);
    bind(&l, EVENT, Role::Listener);
    ok(l.set_max_messages(1), "MAXMSGS 1");
    let r2 = open_rw(dev);
    bind(&r2, "$.BE.First", Role::Replier);
    assert_eq!(num(&l), 1, "l is full now");
    let probe = send(&admin, &MessageRepr::announcement("$.BE.Probe", b""));

    expect_errno(
        r2.bind("$.BE.Second", Role::Replier),
        Errno::AGAIN,
        "Replier BIND with a full event Listener",
    );
    assert_eq!(ok(r2.find_replier("$.BE.Second"), "REPLIER"), None);
    expect_errno(
        r1.unbind("$.BE.Kept", Role::Replier),
        Errno::AGAIN,
        "Replier UNBIND with a full event Listener",
    );
    assert_eq!(
        ok(r2.find_replier("$.BE.Kept"), "REPLIER"),
        Some(r1id),
        "binding kept"
    );
    // EADDRINUSE is checked first (spec §7.6).
    expect_errno(
        r2.bind("$.BE.Kept", Role::Replier),
        Errno::ADDRINUSE,
        "EADDRINUSE wins over EAGAIN",
    );
    // Listener bindings never fail because of full queues.
    bind(&r2, "$.BE.Listen", Role::Listener);
    ok(r2.unbind("$.BE.Listen", Role::Listener), "unbind listener");
    // The two events that could not be delivered used a serial each
    // (kmod/README decision 10); EADDRINUSE built none.
    let probe2 = send(&admin, &MessageRepr::announcement("$.BE.Probe", b""));
    assert_eq!(probe2.serial_num, probe.serial_num + 3);
    assert_eq!(num(&l), 1, "nothing was queued");
    check_event(
        &recv(&l, "the one event"),
        None,
        true,
        id_of(&r2),
        "$.BE.First",
    );
    // Room again: the UNBIND now works and is announced.
    ok(r1.unbind("$.BE.Kept", Role::Replier), "unbind");
    check_event(
        &recv(&l, "unbind event"),
        Some(probe2.serial_num + 1),
        false,
        r1id,
        "$.BE.Kept",
    );
    assert_empty(&l, "one event each");
}

#[test]
fn enabling_reports_existing_repliers_to_the_caller_only() {
    let dev = fresh_device();
    let r1 = open_rw(dev);
    let r2 = open_rw(dev);
    let (r1id, r2id) = (id_of(&r1), id_of(&r2));
    let other = open_ro(dev);
    let c = open_rw(dev);
    bind(&r1, "$.RB.A", Role::Replier);
    bind(&r2, "$.RB.B", Role::Replier);
    bind(&r1, "$.RB.C", Role::Replier);
    bind(&other, EVENT, Role::Listener);
    // Newest binding first (spec §3.11).
    let all = [(r1id, "$.RB.C"), (r2id, "$.RB.B"), (r1id, "$.RB.A")];

    // The caller's own outstanding Request counts against its queue: full
    // before the first event, so EBUSY and nothing queued.
    ok(c.set_max_messages(1), "MAXMSGS 1");
    send(&c, &MessageRepr::request("$.RB.B", b"?"));
    expect_errno(
        c.report_replier_binds(true),
        Errno::BUSY,
        "caller full of reservations",
    );
    assert_eq!(num(&c), 0);
    assert!(
        ok(other.query_report_replier_binds(), "ask"),
        "the flag is on although EBUSY"
    );
    let req = recv(&r2, "request");
    send(&r2, &MessageRepr::reply_to(&req, b"").unwrap());
    recv(&c, "reply");

    // Room for two of the three: those two stay queued, then EBUSY.
    ok(c.set_max_messages(2), "MAXMSGS 2");
    expect_errno(c.report_replier_binds(true), Errno::BUSY, "caller full");
    assert_eq!(num(&c), 2);
    let first = recv(&c, "first");
    check_event(&first, None, true, all[0].0, all[0].1);
    let second = recv(&c, "second");
    check_event(&second, None, true, all[1].0, all[1].1);
    assert!(second.id() > first.id(), "fresh serials");

    // With room for all: each call with 1 reports every binding again.
    ok(c.set_max_messages(10), "MAXMSGS 10");
    assert!(ok(c.report_replier_binds(true), "on again"), "was on");
    let mut last = second.id();
    for (binder, name) in all {
        let m = recv(&c, name);
        check_event(&m, None, true, binder, name);
        assert!(m.id() > last);
        last = m.id();
    }
    assert_empty(&c, "one event per Replier binding");
    // Just asking, or turning it off, queues nothing.
    assert!(ok(c.query_report_replier_binds(), "ask"));
    assert!(ok(c.report_replier_binds(false), "off"));
    assert_empty(&c, "nothing for 0 or just-ask");
    assert_empty(&other, "other Listeners get none of these");
}

#[test]
fn close_with_a_full_listener_sets_the_event_aside() {
    let dev = fresh_device();
    let admin = open_rw(dev);
    ok(admin.report_replier_binds(true), "on");
    let lf = open_ro(dev);
    let lr = open_ro(dev);
    let b = open_rw(dev);
    let s = open_rw(dev);
    let bid = id_of(&b);
    bind(&lf, EVENT, Role::Listener);
    bind(&lf, "$.SA.Fill", Role::Listener);
    bind(&lr, EVENT, Role::Listener);
    bind(&b, "$.SA.One", Role::Replier);
    check_event(&recv(&lf, "bind event"), None, true, bid, "$.SA.One");
    check_event(&recv(&lr, "bind event"), None, true, bid, "$.SA.One");
    ok(lf.set_max_messages(1), "MAXMSGS 1");
    let fill = send(&s, &MessageRepr::announcement("$.SA.Fill", b""));

    drop(b);
    // Closing cannot fail: the event is set aside for every Listener
    // binding; lr had room, so its copy moved to its queue at once
    // (decision 5); lf's waits, and NUMMSGS counts it.
    assert_eq!(num(&lr), 1);
    assert_eq!(num(&lf), 2, "1 queued + 1 set aside");
    assert_unsent(dev, "1");
    let ev_r = recv(&lr, "event for the Listener with room");
    check_event(&ev_r, None, false, bid, "$.SA.One");
    assert_eq!(recv(&lf, "the filler").id(), fill);
    // Popping the filler made room: the event moved in and is readable.
    assert_eq!(num(&lf), 1);
    assert_unsent(dev, "0");
    let r = ok(lf.poll(Ready::READ, Some(Duration::ZERO)), "poll");
    assert!(r.readable, "the moved event makes lf readable");
    let ev_f = recv(&lf, "set-aside event");
    assert_eq!(ev_f.as_bytes(), ev_r.as_bytes(), "the very same message");
    assert_empty(&lf, "one event");
    assert_empty(&lr, "one event");
}

#[test]
fn set_aside_events_come_before_newer_messages() {
    let dev = fresh_device();
    let admin = open_rw(dev);
    ok(admin.report_replier_binds(true), "on");
    let b = open_rw(dev);
    let bid = id_of(&b);
    for name in ["$.SO.R1", "$.SO.R2", "$.SO.R3"] {
        bind(&b, name, Role::Replier);
    }
    let l = open_ro(dev);
    bind(&l, EVENT, Role::Listener);
    bind(&l, "$.SO.News", Role::Listener);
    ok(l.set_max_messages(2), "MAXMSGS 2");
    let s = open_rw(dev);
    let s2 = open_rw(dev);
    let news = |s: &Ksock, data: &[u8], flags: Flags| {
        let mut m = MessageRepr::announcement("$.SO.News", data);
        m.flags = flags;
        s.send_msg(&m)
    };
    let n1 = ok(news(&s, b"1", Flags::empty()), "N1");
    let n2 = ok(news(&s, b"2", Flags::empty()), "N2");

    drop(b);
    // Unbind events in binding-list order (newest first), all set aside.
    assert_eq!(num(&l), 5, "2 queued + 3 set aside");
    assert_unsent(dev, "3");
    // A Ksock with set-aside entries is full: newer messages are skipped,
    // or refused with ALL_OR_FAIL.
    ok(news(&s, b"3", Flags::empty()), "N3 (skipped)");
    expect_errno(
        news(&s, b"4", Flags::ALL_OR_FAIL),
        Errno::BUSY,
        "ALL_OR_FAIL while events wait",
    );
    assert_eq!(num(&l), 5);

    assert_eq!(recv(&l, "N1").id(), n1);
    assert_eq!(num(&l), 4, "one event moved in behind N2");
    assert_unsent(dev, "2");
    // ALL_OR_WAIT stays pending until every event has been read.
    let pending = expect_errno(
        news(&s2, b"5", Flags::ALL_OR_WAIT),
        Errno::AGAIN,
        "ALL_OR_WAIT while events wait",
    )
    .message_id()
    .expect("pending id");
    assert_eq!(recv(&l, "N2").id(), n2);
    let w = ok(s2.poll(Ready::WRITE, Some(Duration::ZERO)), "poll");
    assert!(!w.writable, "still pending: the events come first");
    let mut last = n2;
    for name in ["$.SO.R3", "$.SO.R2", "$.SO.R1"] {
        let m = recv(&l, name);
        check_event(&m, None, false, bid, name);
        assert!(m.id() > last, "set aside in order");
        last = m.id();
    }
    assert_empty(&l, "all events read");
    assert_unsent(dev, "0");
    let w = ok(s2.poll(Ready::WRITE, Some(Duration::ZERO)), "poll");
    assert!(w.writable, "the pending send went through");
    let n6 = ok(news(&s, b"6", Flags::empty()), "N6");
    let m = recv(&l, "N5");
    assert_eq!((m.id(), m.data()), (pending, &b"5"[..]));
    assert_eq!(recv(&l, "N6").id(), n6);
    assert_empty(&l, "N3 and N4 never arrived");
}

#[test]
fn set_aside_events_are_flushed_before_a_reply() {
    let dev = fresh_device();
    let admin = open_rw(dev);
    ok(admin.report_replier_binds(true), "on");
    let r = open_rw(dev);
    bind(&r, "$.SF.Svc", Role::Replier);
    let b = open_rw(dev);
    let bid = id_of(&b);
    bind(&b, "$.SF.B1", Role::Replier);
    bind(&b, "$.SF.B2", Role::Replier);
    let l = open_rw(dev);
    bind(&l, EVENT, Role::Listener);
    bind(&l, "$.SF.News", Role::Listener);
    ok(l.set_max_messages(3), "MAXMSGS 3");
    let s = open_rw(dev);
    let req = send(&l, &MessageRepr::request("$.SF.Svc", b"?"));
    let n1 = send(&s, &MessageRepr::announcement("$.SF.News", b"1"));
    let n2 = send(&s, &MessageRepr::announcement("$.SF.News", b"2"));
    drop(b);
    assert_eq!(num(&l), 4, "2 queued + 2 set aside (1 slot reserved)");
    // The Reply uses the reserved slot; the events go in before it.
    let m = recv(&r, "request");
    send(&r, &MessageRepr::reply_to(&m, b"!").unwrap());
    assert_eq!(num(&l), 5, "over the limit by the flushed events");
    assert_unsent(dev, "0");
    assert_eq!(recv(&l, "N1").id(), n1);
    assert_eq!(recv(&l, "N2").id(), n2);
    check_event(&recv(&l, "B2"), None, false, bid, "$.SF.B2");
    check_event(&recv(&l, "B1"), None, false, bid, "$.SF.B1");
    let reply = recv(&l, "reply last");
    assert_eq!((reply.in_reply_to(), reply.data()), (req, &b"!"[..]));
    assert_empty(&l, "done");
}

#[test]
fn set_aside_entries_go_with_their_binding() {
    let dev = fresh_device();
    let admin = open_rw(dev);
    ok(admin.report_replier_binds(true), "on");
    let r = open_rw(dev);
    bind(&r, "$.SR.Svc", Role::Replier);
    let b = open_rw(dev);
    let bid = id_of(&b);
    bind(&b, "$.SR.B1", Role::Replier);
    bind(&b, "$.SR.B2", Role::Replier);
    // l1: full of a message that came through `$.*`.
    let l1 = open_ro(dev);
    ok(l1.set_max_messages(1), "MAXMSGS 1");
    bind(&l1, "$.*", Role::Listener);
    bind(&l1, EVENT, Role::Listener);
    let s = open_rw(dev);
    send(&s, &MessageRepr::announcement("$.SR.Fill", b""));
    // l2: full of a reservation only, its queue empty.
    let l2 = open_rw(dev);
    bind(&l2, EVENT, Role::Listener);
    ok(l2.set_max_messages(1), "MAXMSGS 1");
    let req = send(&l2, &MessageRepr::request("$.SR.Svc", b""));

    drop(b);
    // Two events, one entry per Listener binding: l1 has two bindings.
    assert_eq!(num(&l1), 1 + 4);
    assert_eq!(num(&l2), 2, "NUMMSGS counts set-aside entries");
    assert_unsent(dev, "6");
    // Entries are not queued messages: l2 has nothing to pop or poll.
    assert_eq!(ok(l2.next_msg(), "NEXTMSG"), None);
    let p = ok(l2.poll(Ready::READ, Some(Duration::ZERO)), "poll");
    assert!(
        !p.readable,
        "set-aside entries do not make a Ksock readable"
    );

    // Failed UNBINDs remove nothing (kmod/README decision 5).
    expect_errno(
        l1.unbind(EVENT, Role::Replier),
        Errno::INVAL,
        "no Replier binding",
    );
    assert_eq!(num(&l1), 5);
    // Unbinding `$.*` removes what came through it: the filler and its two
    // entries (the original kept entries that came through `$.*`). The room
    // made lets one entry of the other binding move in.
    ok(l1.unbind("$.*", Role::Listener), "unbind $.*");
    assert_eq!(num(&l1), 2);
    assert_unsent(dev, "3");
    check_event(&recv(&l1, "B2"), None, false, bid, "$.SR.B2");
    check_event(&recv(&l1, "B1"), None, false, bid, "$.SR.B1");
    assert_empty(&l1, "one copy of each event");
    // Unbinding the event name removes l2's entries.
    ok(l2.unbind(EVENT, Role::Listener), "unbind the event name");
    assert_eq!(num(&l2), 0);
    assert_unsent(dev, "0");
    let m = recv(&r, "request");
    send(&r, &MessageRepr::reply_to(&m, b"").unwrap());
    assert_eq!(recv(&l2, "the reply").in_reply_to(), req);
    assert_empty(&l2, "only the reply");
}

/// Ksock `b` holding 2000 Replier bindings closes while the event Listeners
/// (queue limit 1) are busy: spec §7.6's worked example.
fn tragic(listeners: usize) {
    const BINDINGS: u32 = 2000;
    let dev = fresh_device();
    let admin = open_rw(dev);
    ok(admin.report_replier_binds(true), "on");
    let b = open_rw(dev);
    let bid = id_of(&b);
    for i in 0..BINDINGS {
        bind(&b, &format!("$.T.N{i}"), Role::Replier);
    }
    let ls: Vec<Ksock> = (0..listeners).map(|_| open_ro(dev)).collect();
    for l in &ls {
        bind(l, EVENT, Role::Listener);
        ok(l.set_max_messages(1), "MAXMSGS 1");
    }
    let probe = send(&admin, &MessageRepr::announcement("$.T.Probe", b""));
    assert_eq!(
        probe,
        MessageId::new(0, BINDINGS + 1),
        "one serial per event"
    );
    let p = probe.serial_num;

    drop(b);
    // The first event is queued; then 1000 entries fit; the next attempt
    // makes the device tragic and sets aside one UnbindEventsLost per
    // Listener; later attempts add nothing.
    let per = 1000 / listeners as u32;
    for l in &ls {
        assert_eq!(num(l), 1 + per + 1, "NUMMSGS of {l}");
    }
    assert_unsent(
        dev,
        &format!("{}(gone tragic)", listeners as u32 * (per + 1)),
    );
    for (i, l) in ls.iter().enumerate() {
        for k in 0..=per {
            let m = recv(l, "unbind event");
            let name = format!("$.T.N{}", BINDINGS - 1 - k);
            check_event(&m, Some(p + 1 + k), false, bid, &name);
        }
        // One Lost message per attempt, the same one for every Listener.
        check_lost(&recv(l, "UnbindEventsLost"), p + per + 3);
        assert_empty(l, "nothing after UnbindEventsLost");
        let left = (listeners - 1 - i) as u32 * (per + 1);
        if left == 0 {
            assert_unsent(dev, "0");
        } else {
            assert_unsent(dev, &format!("{left}(gone tragic)"));
        }
    }
    // Every attempt used serials: each event, and in the tragic state an
    // UnbindEventsLost too.
    let after = send(&admin, &MessageRepr::announcement("$.T.Probe", b""));
    let attempts_after_tragic = BINDINGS - (per + 2);
    assert_eq!(
        after.serial_num,
        p + (per + 1) + 2 + 2 * attempts_after_tragic + 1
    );
    // Not tragic any more: the next set-aside works normally.
    let b2 = open_rw(dev);
    bind(&b2, "$.T.Again", Role::Replier);
    for l in &ls {
        check_event(&recv(l, "bind event"), None, true, id_of(&b2), "$.T.Again");
    }
    let filler = open_rw(dev);
    for l in &ls {
        bind(l, "$.T.Fill", Role::Listener);
    }
    send(&filler, &MessageRepr::announcement("$.T.Fill", b""));
    drop(b2);
    assert_unsent(dev, &listeners.to_string());
    for l in &ls {
        recv(l, "filler");
        let m = recv(l, "set-aside event");
        assert!(m.bind_event().is_ok_and(|e| e.name() == "$.T.Again"), "{m}");
        assert_empty(l, "done");
    }
}

#[test]
fn tragic_with_one_listener_gets_1_1000_1() {
    tragic(1);
}

#[test]
fn tragic_with_two_listeners_gets_1_500_1_each() {
    tragic(2);
}
