//! Device-wide things: /proc/kbus/bindings byte for byte, NEWDEVICE,
//! VERBOSE, REPORTREPLIERBINDS and Replier Bind Events (spec §2, §3.11,
//! §7.6, §8.1).

use kbus_guest_tests::*;
use kbus_rustix::{read_bindings, read_bindings_named, read_bindings_text, Binder};
use kbus_wire::name::REPLIER_BIND_EVENT;
use std::collections::BTreeMap;

const COMMENT: &str =
    "# <device> is bound to <Ksock-ID> in <process-PID> as <Replier|Listener> for <message-name>\n";

/// This thread's kernel pid (TID), from `/proc/thread-self` -> `PID/task/TID`.
fn thread_id() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let tid = link.file_name().expect("TID").to_str().expect("UTF-8");
    tid.parse().expect("a number")
}

#[test]
fn proc_bindings_byte_for_byte() {
    let a = open_rw(2);
    let b = open_ro(2);
    let aid = ok(a.ksock_id(), "id");
    let bid = ok(b.ksock_id(), "id");
    bind(&a, "$.Dev.Sensors.Kitchen", Role::Replier);
    bind(&b, "$.Dev.Sensors.*", Role::Listener);
    bind(&b, "$.Dev.Sensors.*", Role::Listener);
    bind(&a, "$.Dev.%", Role::Listener);

    let text = ok(read_bindings_text(), "read /proc/kbus/bindings");
    let devices = text.matches(COMMENT).count();
    assert!(devices >= 3, "one comment line per device:\n{text}");
    // The module records the opening *thread's* kernel pid (spec §2.3); a
    // test runs on its own thread.
    let pid = thread_id();
    let mut want = String::new();
    for dev in 0..devices {
        want.push_str(COMMENT);
        if dev == 2 {
            // Newest first.
            for (id, role, name) in [
                (aid, 'L', "$.Dev.%"),
                (bid, 'L', "$.Dev.Sensors.*"),
                (bid, 'L', "$.Dev.Sensors.*"),
                (aid, 'R', "$.Dev.Sensors.Kitchen"),
            ] {
                want.push_str(&format!("{dev:3}: {id:8} {pid:8}  {role}  {name}\n"));
            }
        }
    }
    assert_eq!(
        text, want,
        "/proc/kbus/bindings (other tests must have closed their Ksocks)"
    );

    let parsed = ok(read_bindings(), "read_bindings");
    assert_eq!(parsed.len(), 4);
    assert_eq!(parsed[3].name, "$.Dev.Sensors.Kitchen");
    assert!(parsed[3].role == Role::Replier && parsed[3].ksock_id == aid);
    assert_eq!(pid, parsed[0].pid);

    let names = BTreeMap::from([(aid, "a")]);
    let named = ok(read_bindings_named(&names), "read_bindings_named");
    assert_eq!(named[0], (Binder::Named("a"), false, "$.Dev.%".to_string()));
    assert_eq!(
        named[1],
        (Binder::Id(bid), false, "$.Dev.Sensors.*".to_string())
    );
    assert_eq!(
        named[3],
        (
            Binder::Named("a"),
            true,
            "$.Dev.Sensors.Kitchen".to_string()
        )
    );

    // Closing removes them synchronously.
    drop(a);
    drop(b);
    let text = ok(read_bindings_text(), "read again");
    assert_eq!(
        text,
        COMMENT.repeat(devices),
        "all bindings gone after close"
    );
}

#[test]
fn verbose_set_and_ask() {
    let k = open_rw(1);
    let before = ok(k.query_kernel_module_verbose(), "ask");
    assert_eq!(ok(k.kernel_module_verbose(true), "on"), before);
    assert!(ok(k.query_kernel_module_verbose(), "ask"));
    // Device-wide: another Ksock sees it.
    let other = open_ro(1);
    assert!(ok(
        other.query_kernel_module_verbose(),
        "ask from another Ksock"
    ));
    bind(&k, "$.Dev.Verbose", Role::Listener);
    send(&k, &MessageRepr::announcement("$.Dev.Verbose", b"logged"));
    recv(&k, "works while verbose");
    assert!(ok(k.kernel_module_verbose(false), "off"));
    assert!(!ok(other.query_kernel_module_verbose(), "ask"));
}

#[test]
fn replier_bind_events() {
    let watcher = open_ro(1);
    let wid = ok(watcher.ksock_id(), "id");
    let existing = open_rw(1);
    let eid = ok(existing.ksock_id(), "id");
    bind(&existing, "$.Dev.Existing", Role::Replier);
    bind(&watcher, REPLIER_BIND_EVENT, Role::Listener);

    let _off = ReportOff(&watcher);
    assert!(!ok(watcher.query_report_replier_binds(), "ask"));
    // Turning it on reports existing Replier bindings to the caller only.
    assert!(!ok(watcher.report_replier_binds(true), "on"));
    let m = recv(&watcher, "event for the existing binding");
    assert_eq!(m.name(), REPLIER_BIND_EVENT);
    assert_eq!(m.flags(), Flags::SYNTHETIC | Flags::ALL_OR_FAIL);
    assert_eq!((m.from(), m.to()), (0, 0));
    let ev = m.bind_event().expect("bind event data");
    assert!(ev.is_bind());
    assert_eq!((ev.binder(), ev.name()), (eid, "$.Dev.Existing"));
    assert_empty(&watcher, "one existing replier binding");

    // A new Replier binding and its unbinding are announced.
    let r = open_rw(1);
    let rid = ok(r.ksock_id(), "id");
    bind(&r, "$.Dev.New.*", Role::Replier);
    let m = recv(&watcher, "bind event");
    let ev = m.bind_event().expect("bind event data");
    assert!(ev.is_bind());
    assert_eq!((ev.binder(), ev.name()), (rid, "$.Dev.New.*"));
    assert_eq!(m.data().len(), 12 + kbus_wire::padded_name_len(11));
    // Listener bindings are not.
    bind(&r, "$.Dev.New.Listen", Role::Listener);
    assert_empty(&watcher, "listener binds are not reported");
    ok(r.unbind("$.Dev.New.*", Role::Replier), "unbind");
    let ev_msg = recv(&watcher, "unbind event");
    let ev = ev_msg.bind_event().unwrap();
    assert!(!ev.is_bind());
    assert_eq!((ev.binder(), ev.name()), (rid, "$.Dev.New.*"));
    // Closing a Ksock with a Replier binding announces the unbind.
    bind(&r, "$.Dev.Closing", Role::Replier);
    recv(&watcher, "bind event before close");
    drop(r);
    let ev_msg = recv(&watcher, "unbind event on close");
    let ev = ev_msg.bind_event().unwrap();
    assert_eq!(
        (ev.is_bind(), ev.binder(), ev.name()),
        (false, rid, "$.Dev.Closing")
    );

    // A full event Listener makes a Replier BIND fail with EAGAIN.
    ok(watcher.set_max_messages(1), "MAXMSGS 1");
    let r2 = open_rw(1);
    bind(&r2, "$.Dev.Fill", Role::Replier);
    expect_errno(
        r2.bind("$.Dev.Fill2", Role::Replier),
        Errno::AGAIN,
        "full listener",
    );
    assert_eq!(
        ok(r2.find_replier("$.Dev.Fill2"), "REPLIER"),
        None,
        "not bound"
    );
    recv(&watcher, "the one event");
    bind(&r2, "$.Dev.Fill2", Role::Replier);
    recv(&watcher, "now it fits");
    ok(watcher.set_max_messages(100), "MAXMSGS 100");
    assert!(
        ok(watcher.report_replier_binds(false), "off"),
        "previous state on"
    );
    drop(r2);
    assert_empty(&watcher, "reporting is off");
    let _ = wid;
}

#[test]
fn new_device_appears_with_mode_0666() {
    let k = open_rw(0);
    let n = ok(k.new_device(), "NEWDEVICE");
    assert!(n >= 3, "devices 0..2 exist already, got {n}");
    let path = format!("/dev/kbus{n}");
    let fresh = open_new_device(n);
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(&path).expect("stat").mode();
    assert_eq!(mode, 0o020666, "{path} mode {mode:o}");
    assert_eq!(
        ok(fresh.ksock_id(), "id"),
        1,
        "a new device starts its ids at 1"
    );
    assert_eq!(
        fresh.to_string(),
        format!("Ksock device {n}, id 1, mode read/write")
    );
    bind(&fresh, "$.Dev.NewDev", Role::Listener);
    let id = send(&fresh, &MessageRepr::announcement("$.Dev.NewDev", b""));
    assert_eq!(id, MessageId::new(0, 1), "serials start at 1 too");
    recv(&fresh, "on the new device");
    // Each NEWDEVICE makes the next number.
    let n2 = ok(fresh.new_device(), "NEWDEVICE again");
    assert_eq!(n2, n + 1);
}

#[test]
fn device_nodes_have_mode_0666() {
    use std::os::unix::fs::MetadataExt;
    for dev in 0..3 {
        let path = format!("/dev/kbus{dev}");
        let _k = open_ro(dev);
        let mode = std::fs::metadata(&path).expect("stat").mode();
        assert_eq!(mode, 0o020666, "{path} mode {mode:o}");
    }
}
