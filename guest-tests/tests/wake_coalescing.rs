//! Wake-up coalescing (kmod/README.md, "Who wakes whom"): the wake-ups a
//! *streaming* sender gives to sleeping Listeners of a message with copies
//! for two or more other Ksocks are held for at most
//! `kbus_wake_coalesce_us` and never lost; the message itself is queued at
//! once; the first message of a burst, a message for one other Ksock, and
//! anything sent by a Ksock that waited for something since its last SEND,
//! wake at once; a full queue gives every held wake-up at once, and so does
//! a 16th queued message; a Listener may close while its wake-up is held.
//!
//! Each test sets the window to 1 s, so that "held" (at least 0.5 s) and
//! "not held" (under 0.5 s) differ by far more than the guest's scheduling
//! noise. These are behaviour checks: the fan-out benches
//! (`cargo xtask bench --ab`) measure what coalescing buys.

mod abuse_common;

use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use abuse_common::{fork_as, Knob};
use kbus_guest_tests::*;

/// What the window is set to in every test.
const WINDOW_US: &str = "1000000";
/// A wake-up held by the 1 s window comes at least this late; one given at
/// once comes sooner.
const HELD: Duration = Duration::from_millis(500);
/// Longest anything here may take before the test calls it lost.
const LOST: Duration = Duration::from_secs(10);
/// Time for a Listener thread to drain its queue and sleep in poll again.
const SETTLE: Duration = Duration::from_millis(200);

/// A thread that sleeps in poll on `l`, drains it when woken, and sends
/// each message's data with the time its poll returned.
fn listener_thread(l: Arc<Ksock>, messages: usize) -> Receiver<(Vec<u8>, Instant)> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        while got < messages {
            let r = ok(l.poll(Ready::READ, Some(LOST)), "Listener poll");
            assert_eq!(r, Ready::READ, "the Listener was never woken");
            let woken = Instant::now();
            while let Some(m) = ok(l.read_next_msg(&mut buf), "Listener read") {
                got += 1;
                if tx.send((m.data().to_vec(), woken)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

#[track_caller]
fn arrival(rx: &Receiver<(Vec<u8>, Instant)>, data: &[u8]) -> Instant {
    let (got, at) = rx.recv_timeout(LOST).unwrap_or_else(|_| {
        panic!(
            "{:?} never reached the Listener",
            String::from_utf8_lossy(data)
        )
    });
    assert_eq!(got, data);
    at
}

/// A second Listener of `name` that never reads, so that every message
/// has two copies (a fan-out; one copy is never held).
fn second_copy(name: &str) -> Ksock {
    let k = open_ro(0);
    bind(&k, name, Role::Listener);
    k
}

fn announce(s: &Ksock, name: &str, data: &[u8]) -> Instant {
    let sent = Instant::now();
    send(s, &MessageRepr::announcement(name, data));
    sent
}

/// The start of every test: the window at 1 s; `extra` Listeners of
/// `name` that never read; a Listener thread asleep in poll; and a sender
/// that has sent it `first`, the first message of a burst (woken at once),
/// after which the Listener is asleep again.
struct Scene {
    _window: Knob,
    _extra: Ksock,
    name: &'static str,
    l: Arc<Ksock>,
    rx: Receiver<(Vec<u8>, Instant)>,
    s: Ksock,
}

impl Scene {
    fn start(name: &'static str, extra: Option<Ksock>, messages: usize) -> Scene {
        let window = Knob::param("kbus_wake_coalesce_us", WINDOW_US);
        // Without an extra Listener, a placeholder bound to nothing.
        let extra = extra.unwrap_or_else(|| open_ro(0));
        let l = Arc::new(open_ro(0));
        bind(&l, name, Role::Listener);
        let rx = listener_thread(l.clone(), messages);
        thread::sleep(SETTLE);
        let s = open_rw(0);
        let scene = Scene {
            _window: window,
            _extra: extra,
            name,
            l,
            rx,
            s,
        };
        scene.woken_at_once(b"first", "the first message of a burst was held");
        thread::sleep(SETTLE);
        scene
    }

    fn announce(&self, data: &[u8]) -> Instant {
        announce(&self.s, self.name, data)
    }

    #[track_caller]
    fn arrival(&self, data: &[u8]) -> Instant {
        arrival(&self.rx, data)
    }

    /// Send `data` and check that the Listener was woken at once.
    #[track_caller]
    fn woken_at_once(&self, data: &[u8], why: &str) {
        let sent = self.announce(data);
        let woken = self.arrival(data);
        assert!(woken - sent < HELD, "{why} ({:?})", woken - sent);
    }
}

#[test]
fn a_streaming_senders_wake_up_is_held_and_given_by_the_timer() {
    let name = "$.Coalesce.Held";
    let scene = Scene::start(name, Some(second_copy(name)), 2);
    // Less than the window after the first, and the sender has neither
    // read nor polled since: a streaming SEND.
    let sent = scene.announce(b"second");
    assert_eq!(
        ok(scene.l.num_messages(), "NUMMSGS"),
        1,
        "the message is queued at once; only the wake-up waits"
    );
    let woken = scene.arrival(b"second");
    assert!(
        woken - sent >= HELD,
        "the streaming SEND's wake-up was not held ({:?})",
        woken - sent
    );
}

#[test]
fn a_held_listener_is_woken_once_16_messages_wait() {
    let name = "$.Coalesce.Count";
    let scene = Scene::start(name, Some(second_copy(name)), 17);
    // Held while fewer than 16 (KBUS_COALESCE_MAX_QUEUED) are queued: the
    // 16th is sent with 15 waiting and wakes the Listener at once.
    for i in 2..=16 {
        scene.announce(format!("{i}").as_bytes());
    }
    let sent = scene.announce(b"17");
    let woken = scene.arrival(b"2");
    assert!(
        woken - sent < HELD,
        "16 messages waited, yet the wake-up waited for the timer ({:?})",
        woken - sent
    );
}

#[test]
fn a_stream_to_a_single_listener_is_not_held() {
    let scene = Scene::start("$.Coalesce.Single", None, 2);
    scene.woken_at_once(b"second", "a one-copy message's wake-up was held");
}

#[test]
fn the_senders_own_copy_does_not_count() {
    let scene = Scene::start("$.Coalesce.Own", None, 2);
    // Two copies, but one is the sender's: one other Ksock, not held.
    bind(&scene.s, scene.name, Role::Listener);
    scene.woken_at_once(b"second", "held for one other Ksock");
}

#[test]
fn a_sender_that_waited_since_its_last_send_wakes_at_once() {
    let name = "$.Coalesce.Waited";
    let scene = Scene::start(name, Some(second_copy(name)), 3);
    // A poll (as a Requester waiting for its Reply would) ends the burst.
    ok(
        scene.s.poll(Ready::READ, Some(Duration::ZERO)),
        "sender poll",
    );
    scene.woken_at_once(b"second", "held after the sender polled");
    thread::sleep(SETTLE);
    // So does a NEXTMSG, even one that finds nothing.
    assert!(ok(scene.s.next_msg(), "sender NEXTMSG").is_none());
    scene.woken_at_once(b"third", "held after the sender's NEXTMSG");
}

#[test]
fn a_full_queue_gives_the_held_wake_ups_at_once() {
    let name = "$.Coalesce.Full";
    // A Listener that never reads, full after two messages.
    let full = second_copy(name);
    ok(full.set_max_messages(2), "MAXMSGS");
    let scene = Scene::start(name, Some(full), 2);
    scene.announce(b"second"); // streaming: the Listener's wake-up is held
    let mut third = MessageRepr::announcement(name, b"third");
    third.flags |= Flags::ALL_OR_WAIT;
    let waited = Instant::now();
    expect_errno(
        scene.s.send_msg(&third),
        Errno::AGAIN,
        "ALL_OR_WAIT to a full Listener",
    );
    let woken = scene.arrival(b"second");
    assert!(
        woken - waited < HELD,
        "the sender waits for full Listeners, yet a held wake-up waited for the timer ({:?})",
        woken - waited
    );
    ok(scene.s.discard(), "DISCARD the pending send");
}

#[test]
fn a_listener_may_close_while_its_wake_up_is_held() {
    let _window = Knob::param("kbus_wake_coalesce_us", WINDOW_US);
    let name = "$.Coalesce.Gone";
    let mut child = fork_as("a Listener", None, |chan| {
        let l = open_ro(0);
        bind(&l, name, Role::Listener);
        chan.say("ready");
        let mut buf = vec![0u8; 256];
        loop {
            let _ = l.poll(Ready::READ, Some(LOST));
            while let Ok(Some(m)) = l.read_next_msg(&mut buf) {
                chan.say(&format!("got {}", String::from_utf8_lossy(m.data())));
            }
        }
    });
    child.chan.expect("ready", LOST);
    let _other = second_copy(name);
    thread::sleep(SETTLE);
    let s = open_rw(0);
    announce(&s, name, b"first");
    child.chan.expect("got", LOST);
    thread::sleep(SETTLE);
    announce(&s, name, b"second"); // held for the child's Ksock
                                   // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.pid, libc::SIGKILL) }, 0);
    assert!(child.wait_exit(LOST).is_some(), "the Listener did not die");
    // The timer fires after the Ksock has gone.
    thread::sleep(Duration::from_millis(1500));

    // The device is unharmed: a new Listener is woken as usual.
    let l = Arc::new(open_ro(0));
    bind(&l, name, Role::Listener);
    let rx = listener_thread(l.clone(), 1);
    thread::sleep(SETTLE);
    announce(&s, name, b"after");
    arrival(&rx, b"after");
}
