//! Spec §14.4: a full Listener of `$.KBUS.ReplierBindEvent` makes a Replier
//! BIND or UNBIND fail with EAGAIN (§7.6) only when the Listener's opener
//! has the binder's uid or CAP_SYS_ADMIN. For any other Listener the event
//! goes to the device's set-aside list and reaches the Listener later, in
//! order; nothing is lost.
//!
//! Binders and Listeners run in forked children as uid 65534 ("nobody") or
//! uid 1000; each test uses a device of its own (NEWDEVICE), so the
//! device-wide REPORTREPLIERBINDS flag and the Ksock ids are its own.

mod abuse_common;

use std::time::Duration;

use abuse_common::*;
use kbus_guest_tests::*;
use kbus_wire::name::REPLIER_BIND_EVENT as EVENT;

const T: Duration = Duration::from_secs(20);
const FILL: &str = "$.Abuse.Bev.Fill";
const NAME: &str = "$.Abuse.Bev.Name";
const NAME2: &str = "$.Abuse.Bev.Other";

/// "EV <is_bind> <binder> <name>" for a bind event message.
#[track_caller]
fn describe_event(m: &Msg) -> String {
    assert_eq!(m.name(), EVENT, "{m}");
    let ev = m.bind_event().expect("bind event data");
    format!(
        "EV {} {} {}",
        u8::from(ev.is_bind()),
        ev.binder(),
        ev.name()
    )
}

/// A Listener child: opens `dev` as `uid`, sets MAXMSGS 1, binds to the
/// bind event, says `READY <ksock id>`; on `READ` reports `NUM <NUMMSGS>`,
/// then every event it can read, then `END`.
fn event_listener(dev: u32, uid: u32) -> Forked {
    fork_as("event Listener", Some(uid), move |ch| {
        let k = open_rw(dev);
        assert_eq!(ok(k.set_max_messages(1), "MAXMSGS 1"), 1);
        bind(&k, EVENT, Role::Listener);
        ch.say(&format!("READY {}", ok(k.ksock_id(), "KSOCKID")));
        ch.expect("READ", T);
        ch.say(&format!("NUM {}", ok(k.num_messages(), "NUMMSGS")));
        while let Some(m) = ok(k.read_next_msg_owned(), "read") {
            ch.say(&describe_event(&m));
        }
        ch.say(&format!("END {}", ok(k.num_messages(), "NUMMSGS")));
    })
}

#[test]
fn another_users_full_listener_does_not_block_binds() {
    let dev = fresh_device();
    let root = open_rw(dev);
    assert!(!ok(root.report_replier_binds(true), "REPORTREPLIERBINDS 1"));
    let _off = ReportOff(&root);
    let root_id = ok(root.ksock_id(), "KSOCKID");

    let mut l = event_listener(dev, OTHER_USER);
    l.chan.expect("READY", T);
    // Fill the Listener's queue (MAXMSGS 1) with root's own bind event.
    bind(&root, FILL, Role::Replier);

    let mut b = fork_as("binder", Some(NOBODY), move |ch| {
        let k = open_rw(dev);
        ok(
            k.bind(NAME, Role::Replier),
            "Replier BIND as uid 65534 while uid 1000's event Listener is full (spec §14.4)",
        );
        ok(
            k.unbind(NAME, Role::Replier),
            "Replier UNBIND as uid 65534 while uid 1000's event Listener is full",
        );
        ok(k.bind(NAME2, Role::Replier), "a second Replier BIND");
        ch.say(&format!("DONE {}", ok(k.ksock_id(), "KSOCKID")));
        ch.expect("EXIT", T);
        // Closing with NAME2 bound: its unbind event is set aside too.
    });
    let bid: u32 = b.chan.expect("DONE", T).parse().unwrap();
    b.chan.say("EXIT");
    b.finish(T);

    l.chan.say("READ");
    assert_eq!(
        l.chan.expect("NUM", T),
        "5",
        "NUMMSGS of the full Listener: the queued event plus 4 set aside (spec §7.6)"
    );
    let want = [
        format!("EV 1 {root_id} {FILL}"),
        format!("EV 1 {bid} {NAME}"),
        format!("EV 0 {bid} {NAME}"),
        format!("EV 1 {bid} {NAME2}"),
        format!("EV 0 {bid} {NAME2}"),
    ];
    // The last one comes from the binder's close (it exited before READ).
    let mut got = Vec::new();
    loop {
        let line = l.chan.hear(T);
        if let Some(rest) = line.strip_prefix("END ") {
            assert_eq!(rest, "0", "NUMMSGS after reading everything");
            break;
        }
        got.push(line);
    }
    assert_eq!(
        got, want,
        "every event reaches the Listener, in order, none lost (spec §14.4)"
    );
    l.finish(T);
}

#[test]
fn the_same_users_full_listener_blocks_binds_with_eagain() {
    let dev = fresh_device();
    let root = open_rw(dev);
    assert!(!ok(root.report_replier_binds(true), "REPORTREPLIERBINDS 1"));
    let _off = ReportOff(&root);

    let mut child = fork_as("listener and binder", Some(NOBODY), move |ch| {
        let l = open_rw(dev);
        ok(l.set_max_messages(2), "MAXMSGS 2");
        bind(&l, EVENT, Role::Listener);
        let b = open_rw(dev);
        let bid = ok(b.ksock_id(), "KSOCKID");
        bind(&b, NAME, Role::Replier); // event 1: room
        bind(&b, FILL, Role::Replier); // event 2: now full
        expect_errno(
            b.bind(NAME2, Role::Replier),
            Errno::AGAIN,
            "Replier BIND with a full event Listener of the same uid (spec §7.6, §14.4)",
        );
        assert_eq!(ok(b.find_replier(NAME2), "REPLIER"), None, "not bound");
        expect_errno(
            b.unbind(NAME, Role::Replier),
            Errno::AGAIN,
            "Replier UNBIND with a full event Listener of the same uid",
        );
        assert_eq!(
            ok(b.find_replier(NAME), "REPLIER"),
            Some(bid),
            "binding kept"
        );
        assert_eq!(ok(l.num_messages(), "NUMMSGS"), 2, "nothing set aside");
        assert_eq!(
            describe_event(&recv(&l, "event 1")),
            format!("EV 1 {bid} {NAME}")
        );
        ok(b.unbind(NAME, Role::Replier), "UNBIND once there is room");
        assert_eq!(
            describe_event(&recv(&l, "event 2")),
            format!("EV 1 {bid} {FILL}")
        );
        assert_eq!(
            describe_event(&recv(&l, "event 3")),
            format!("EV 0 {bid} {NAME}")
        );
        ok(b.unbind(FILL, Role::Replier), "UNBIND");
        assert_eq!(
            describe_event(&recv(&l, "event 4")),
            format!("EV 0 {bid} {FILL}")
        );
        assert_empty(&l, "done");
        ch.say("DONE");
    });
    child.chan.expect("DONE", T);
    child.finish(T);
}

#[test]
fn a_full_root_listener_blocks_unprivileged_binds_with_eagain() {
    let dev = fresh_device();
    let root = open_rw(dev);
    assert!(!ok(root.report_replier_binds(true), "REPORTREPLIERBINDS 1"));
    let _off = ReportOff(&root);
    let root_id = ok(root.ksock_id(), "KSOCKID");
    let l = open_rw(dev);
    ok(l.set_max_messages(1), "MAXMSGS 1");
    bind(&l, EVENT, Role::Listener);
    bind(&root, FILL, Role::Replier); // fills l

    let mut b = fork_as("binder", Some(NOBODY), move |ch| {
        let k = open_rw(dev);
        expect_errno(
            k.bind(NAME, Role::Replier),
            Errno::AGAIN,
            "Replier BIND as uid 65534 with a full CAP_SYS_ADMIN event Listener (spec §14.4)",
        );
        assert_eq!(ok(k.find_replier(NAME), "REPLIER"), None, "not bound");
        ch.say(&format!("REFUSED {}", ok(k.ksock_id(), "KSOCKID")));
        ch.expect("AGAIN", T);
        ok(
            k.bind(NAME, Role::Replier),
            "Replier BIND once there is room",
        );
        ok(k.unbind(NAME, Role::Replier), "UNBIND");
        ch.say("DONE");
        ch.expect("EXIT", T);
    });
    let bid: u32 = b.chan.expect("REFUSED", T).parse().unwrap();
    assert_eq!(ok(l.num_messages(), "NUMMSGS"), 1, "nothing set aside");
    assert_eq!(
        describe_event(&recv(&l, "fill")),
        format!("EV 1 {root_id} {FILL}")
    );
    // Room for both of the child's events, so its BIND and UNBIND succeed.
    ok(l.set_max_messages(3), "MAXMSGS 3");
    b.chan.say("AGAIN");
    b.chan.expect("DONE", T);
    assert_eq!(
        describe_event(&recv(&l, "bind")),
        format!("EV 1 {bid} {NAME}")
    );
    assert_eq!(
        describe_event(&recv(&l, "unbind")),
        format!("EV 0 {bid} {NAME}")
    );
    assert_empty(&l, "done");
    b.chan.say("EXIT");
    b.finish(T);
}
