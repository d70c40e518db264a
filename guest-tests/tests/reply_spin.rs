//! Reply spinning (kmod/README.md, "Who wakes whom"): a Ksock about to
//! sleep in poll() for EPOLLIN, with a Request of its own outstanding and
//! nothing queued, watches its queue for up to `kbus_reply_spin_us` before
//! it sleeps, and stops early when another task wants the CPU. A spin that
//! ends without a message turns the Ksock's spinning off until a message
//! comes within twice the window of a poll again. Nothing else spins: no
//! outstanding Request, a poll that must not wait, or the parameter at 0.
//!
//! The module counts its spins in debugfs (`kbus/reply_spin`: started,
//! caught by a message, cut short), and the tests read those counts around
//! each poll: timing cannot tell a spin from a sleep in an emulated guest
//! on a busy host, where a vCPU's wait for the host CPU counts as run time
//! and spins are cut by every runnable kernel thread (in the full run on
//! armv7, every 10 ms). A poll that caught its Reply must also not have
//! slept (no voluntary context switch of its thread). These are behaviour
//! checks: the Request→Reply bench (`cargo xtask bench --ab`) measures
//! what spinning buys.

mod abuse_common;

use std::sync::mpsc::{channel, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use abuse_common::Knob;
use kbus_guest_tests::*;

const REQUEST: &str = "$.Spin.Request";
/// Longest anything here may take before the test calls it lost.
const LOST: Duration = Duration::from_secs(10);
/// How late the Replies come that a spin should catch: short, so that a
/// spin is seldom cut before (a runnable kernel thread ends it), and long
/// enough that the requester is in poll before the Reply is queued.
const QUICK: Duration = Duration::from_millis(2);
/// Round trips a test may take to see one spin catch its Reply. A cut spin
/// turns spinning off until the next Reply, so at least half of them spin.
const TRIES: usize = 10;
/// The module's debugfs file of spin counts.
const SPIN_COUNTS: &str = "/sys/kernel/debug/kbus/reply_spin";

/// The module's counts of Reply spins since it was loaded (all devices).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Spins {
    /// Spins started.
    spins: u64,
    /// Spins that ended because a message was queued.
    caught: u64,
    /// Spins cut short: another task wanted the CPU, or a signal.
    cut: u64,
}

impl Spins {
    /// The counts now. A module without the file fails the test, loudly.
    fn now() -> Spins {
        let text = std::fs::read_to_string(SPIN_COUNTS)
            .unwrap_or_else(|e| panic!("reading {SPIN_COUNTS}: {e}"));
        let mut counts = Spins::default();
        for line in text.lines() {
            let (key, value) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("{SPIN_COUNTS}: not `<name> <count>`: {line:?}"));
            let value: u64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{SPIN_COUNTS}: not a count: {line:?}"));
            match key {
                "spins" => counts.spins = value,
                "caught" => counts.caught = value,
                "cut" => counts.cut = value,
                _ => panic!("{SPIN_COUNTS}: unknown line {line:?}"),
            }
        }
        counts
    }

    /// What happened between `before` and now.
    fn since(before: Spins) -> Spins {
        let now = Spins::now();
        Spins {
            spins: now.spins - before.spins,
            caught: now.caught - before.caught,
            cut: now.cut - before.cut,
        }
    }
}

/// How many times this thread has slept (`voluntary_ctxt_switches` in
/// /proc/thread-self/status).
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status")
        .expect("reading /proc/thread-self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .expect("voluntary_ctxt_switches in /proc/thread-self/status")
        .trim()
        .parse()
        .expect("a number of context switches")
}

/// What one poll for a Reply did.
#[derive(Debug)]
struct Waited {
    /// The module's spin counts over the poll.
    spins: Spins,
    /// Whether this thread slept in it (a context switch of its own).
    slept: bool,
}

/// How many CPUs the kernel has online (`num_online_cpus()`), from
/// `/sys/devices/system/cpu/online`, e.g. "0-1" or "0".
fn cpus_online() -> usize {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .expect("reading /sys/devices/system/cpu/online");
    list.trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => {
                let n = |x: &str| x.parse::<usize>().expect("a CPU number");
                n(b) - n(a) + 1
            }
            None => 1,
        })
        .sum()
}

/// Does this guest have a second CPU for the Replier? Reply spinning never
/// starts with one CPU online (the mipsel guest has one): there, each test
/// checks that no poll spins.
fn spinning_possible() -> bool {
    cpus_online() >= 2
}

/// Run this thread on `cpu` only (on CPU 0 in a one-CPU guest). The
/// requester and the Replier run on different CPUs, so that the Replier's
/// wake-up never lands on the spinning CPU (a spin ends when another task
/// wants its CPU).
fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % cpus_online());
    rustix::thread::sched_setaffinity(None, &set).expect("sched_setaffinity");
}

/// A Replier thread with its own Ksock: for each delay it is given, it
/// waits for one Request and Replies to it that long after reading it.
struct Replier {
    delays: Sender<Duration>,
    thread: Option<JoinHandle<()>>,
}

impl Replier {
    fn start() -> Replier {
        let k = open_rw(0);
        bind(&k, REQUEST, Role::Replier);
        let (delays, rx) = channel::<Duration>();
        let (ready_tx, ready) = channel();
        pin(0);
        let thread = thread::spawn(move || {
            pin(1);
            ready_tx.send(()).expect("the test thread ended");
            let mut buf = vec![0u8; 4096];
            while let Ok(delay) = rx.recv() {
                let r = ok(k.poll(Ready::READ, Some(LOST)), "Replier poll");
                assert_eq!(r, Ready::READ, "the Request never came");
                let m = ok(k.read_next_msg(&mut buf), "Replier read").expect("a Request");
                assert!(m.wants_us_to_reply(), "not a Request for us: {m}");
                thread::sleep(delay);
                let reply = MessageRepr::reply_to(&m, b"answer").expect("reply_to");
                send(&k, &reply);
            }
        });
        // Until it has left CPU 0, it would end the requester's spin there.
        ready.recv().expect("the Replier thread ended early");
        Replier {
            delays,
            thread: Some(thread),
        }
    }

    /// From `k` (in the thread that started the Replier), send a Request
    /// that is answered `delay` after the Replier reads it; wait in poll
    /// for the Reply and read it. Returns what the poll did.
    #[track_caller]
    fn round_trip(&self, k: &Ksock, delay: Duration) -> Waited {
        self.delays.send(delay).expect("the Replier thread ended");
        let id = send(k, &MessageRepr::request(REQUEST, b"question"));
        let (before, switches) = (Spins::now(), voluntary_switches());
        let r = ok(k.poll(Ready::READ, Some(LOST)), "poll for the Reply");
        let slept = voluntary_switches() > switches;
        let spins = Spins::since(before);
        assert_eq!(r, Ready::READ, "no Reply within {LOST:?}");
        let m = recv(k, "the Reply");
        assert!(m.is_reply() && m.in_reply_to() == id, "not our Reply: {m}");
        assert!(spins.spins <= 1, "one poll, {spins:?}");
        if spins.caught == 1 {
            assert!(!slept, "a spin caught the Reply, yet the poll slept");
        }
        Waited { spins, slept }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it is idle.
        let (closed, _) = channel();
        self.delays = closed;
        if let Some(t) = self.thread.take() {
            let panicked = t.join().is_err();
            if panicked && !thread::panicking() {
                panic!("the Replier thread panicked");
            }
        }
    }
}

/// A round trip's poll did not spin.
#[track_caller]
fn assert_no_spin(w: &Waited, what: &str) {
    assert_eq!(w.spins.spins, 0, "{what}: the poll spun ({w:?})");
}

/// Round trips answered [`QUICK`] until a poll's spin catches its Reply, at
/// most [`TRIES`]. Any other task that wants the CPU cuts a spin short (the
/// guest's kernel threads do now and then, more so on a busy host), which
/// turns spinning off until the next Reply. With one CPU online: that no
/// poll spins.
#[track_caller]
fn assert_a_spin_catches_a_reply(replier: &Replier, k: &Ksock, what: &str) {
    if !spinning_possible() {
        let w = replier.round_trip(k, QUICK);
        assert_no_spin(&w, &format!("{what}, one CPU online"));
        return;
    }
    let mut seen = Vec::new();
    for _ in 0..TRIES {
        let w = replier.round_trip(k, QUICK);
        if w.spins.caught == 1 {
            return;
        }
        seen.push(w.spins);
    }
    panic!("{what}: no spin caught its Reply in {TRIES} round trips: {seen:?}");
}

#[test]
fn a_requester_spins_for_a_reply_within_the_window() {
    let _window = Knob::param("kbus_reply_spin_us", "1000000");
    let replier = Replier::start();
    let k = open_rw(0);
    assert_a_spin_catches_a_reply(&replier, &k, "window 1 s");
}

#[test]
fn a_spin_without_a_reply_turns_spinning_off_until_a_quick_reply() {
    let window = Duration::from_millis(100);
    let _window = Knob::param("kbus_reply_spin_us", &window.as_micros().to_string());
    let replier = Replier::start();
    let k = open_rw(0);
    let slow = Duration::from_millis(500);
    // Spins through the window (or less, if the CPU is wanted) and gives
    // up; with one CPU online, sleeps.
    let w = replier.round_trip(&k, slow);
    let expected = u64::from(spinning_possible());
    assert_eq!(
        (w.spins.spins, w.spins.caught),
        (expected, 0),
        "a Reply 500 ms late, window {window:?}: (spins, caught) ({w:?})"
    );
    assert!(w.slept, "the poll waited 500 ms without sleeping ({w:?})");
    assert_no_spin(
        &replier.round_trip(&k, slow),
        "after a spin without a Reply",
    );
    // That Reply came 500 ms after the poll: more than twice the window.
    assert_no_spin(
        &replier.round_trip(&k, Duration::from_millis(20)),
        "still off after a Reply slower than twice the window",
    );
    // That one came within twice the window: spinning is on again.
    assert_a_spin_catches_a_reply(
        &replier,
        &k,
        "on again after a Reply within twice the window",
    );
}

#[test]
fn a_listener_waiting_for_an_announcement_does_not_spin() {
    let _window = Knob::param("kbus_reply_spin_us", "1000000");
    let name = "$.Spin.News";
    let l = open_ro(0);
    bind(&l, name, Role::Listener);
    pin(0);
    let sender = thread::spawn(move || {
        pin(1);
        let s = open_rw(0);
        thread::sleep(Duration::from_millis(300));
        send(&s, &MessageRepr::announcement(name, b"news"));
    });
    let before = Spins::now();
    let r = ok(l.poll(Ready::READ, Some(LOST)), "Listener poll");
    let spins = Spins::since(before);
    assert_eq!(r, Ready::READ, "the Announcement never came");
    sender.join().expect("the sender thread panicked");
    assert_eq!(recv(&l, "the Announcement").data(), b"news");
    assert_eq!(spins.spins, 0, "no Request outstanding, yet {spins:?}");
}

#[test]
fn a_poll_that_must_not_wait_does_not_spin() {
    let _window = Knob::param("kbus_reply_spin_us", "1000000");
    let replier = Replier::start();
    let k = open_rw(0);
    replier
        .delays
        .send(Duration::from_millis(300))
        .expect("the Replier thread ended");
    let id = send(&k, &MessageRepr::request(REQUEST, b"question"));
    let before = Spins::now();
    let r = ok(k.poll(Ready::READ, Some(Duration::ZERO)), "poll, timeout 0");
    assert_eq!(r, Ready::default(), "nothing can be queued yet");
    // Readable or writable: the Ksock is writable, so poll does not wait.
    let r = ok(
        k.poll(Ready::BOTH, Some(LOST)),
        "poll, readable or writable",
    );
    assert_eq!(r, Ready::WRITE, "writable at once, the Reply still to come");
    let spins = Spins::since(before);
    assert_eq!(spins.spins, 0, "polls that must not wait, yet {spins:?}");
    let r = ok(k.poll(Ready::READ, Some(LOST)), "poll for the Reply");
    assert_eq!(r, Ready::READ);
    let m = recv(&k, "the Reply");
    assert!(m.is_reply() && m.in_reply_to() == id, "not our Reply: {m}");
}

#[test]
fn spinning_is_off_with_the_parameter_at_zero() {
    let _window = Knob::param("kbus_reply_spin_us", "0");
    let replier = Replier::start();
    let k = open_rw(0);
    for _ in 0..3 {
        let w = replier.round_trip(&k, QUICK);
        assert_no_spin(&w, "kbus_reply_spin_us=0");
    }
}
