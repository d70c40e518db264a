//! Reply spinning (kmod/README.md, "Who wakes whom"): a Ksock about to
//! sleep in poll() for EPOLLIN, with a Request of its own outstanding and
//! nothing queued, watches its queue for up to `kbus_reply_spin_us` before
//! it sleeps, and stops early when another task wants the CPU. A spin that
//! ends without a message turns the Ksock's spinning off until a message
//! comes within twice the window of a poll again. Nothing else spins: no
//! outstanding Request, a poll that must not wait, or the parameter at 0.
//!
//! A poll that caught its Reply spinning returns without having slept (no
//! voluntary context switch of its thread); one that slept switched away
//! and used little CPU. A spin lasts at most its window in CPU time. The
//! Replies the tests expect caught come 20 ms late: a spin ends early when
//! any other task wants its CPU, and on a busy host (the full test run)
//! spins of 80 ms were cut after 17–39 ms. These are behaviour checks: the
//! Request→Reply bench (`cargo xtask bench --ab`) measures what spinning
//! buys.

mod abuse_common;

use std::sync::mpsc::{channel, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use abuse_common::Knob;
use kbus_guest_tests::*;
use rustix::time::{clock_gettime, ClockId};

const REQUEST: &str = "$.Spin.Request";
/// A poll that slept used at most this much CPU. On a quiet host it uses
/// under 1 ms; on a busy one, a TCG guest counts the time its vCPU thread
/// waited for the host CPU as the guest task's run time (25 ms seen in a
/// poll that slept, i686 beside the other cells). Where CPU time alone
/// tells a spin from a sleep, the spin would last 300 ms or more.
const SLEPT: Duration = Duration::from_millis(50);
/// Longest anything here may take before the test calls it lost.
const LOST: Duration = Duration::from_secs(10);

/// The CPU time this thread has used so far.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// How many times this thread has slept (`voluntary_ctxt_switches` in
/// /proc/thread-self/status). A poll that caught its Reply spinning adds
/// none; one that slept adds one or more, however busy the host.
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

/// What one poll for a Reply cost this thread.
struct Waited {
    /// CPU time used in poll.
    cpu: Duration,
    /// Whether it slept in poll (a context switch of its own).
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
/// checks that the poll sleeps instead.
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
    /// for the Reply and read it. Returns what the poll cost this thread.
    #[track_caller]
    fn round_trip(&self, k: &Ksock, delay: Duration) -> Waited {
        self.delays.send(delay).expect("the Replier thread ended");
        let id = send(k, &MessageRepr::request(REQUEST, b"question"));
        let (wall, cpu, switches) = (Instant::now(), thread_cpu(), voluntary_switches());
        let r = ok(k.poll(Ready::READ, Some(LOST)), "poll for the Reply");
        let slept = voluntary_switches() > switches;
        let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
        assert_eq!(r, Ready::READ, "no Reply within {LOST:?}");
        let m = recv(k, "the Reply");
        assert!(m.is_reply() && m.in_reply_to() == id, "not our Reply: {m}");
        assert!(
            wall >= delay,
            "poll returned after {wall:?}, before the Reply was sent ({delay:?})"
        );
        Waited { cpu, slept }
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

#[track_caller]
fn assert_slept(cpu: Duration, what: &str) {
    assert!(
        cpu <= SLEPT,
        "{what}: poll used {cpu:?} of CPU while it waited; sleeping uses at most {SLEPT:?}"
    );
}

/// A round trip's poll slept: it used little CPU and, where a spin could
/// have caught the Reply, switched away. With one CPU online the Replier
/// may preempt the requester before its poll sleeps (seen on the debug
/// kernel), so there the CPU time alone speaks.
#[track_caller]
fn assert_round_trip_slept(w: &Waited, what: &str) {
    if spinning_possible() {
        assert!(w.slept, "{what}: poll returned without sleeping");
    }
    assert_slept(w.cpu, what);
}

/// Round trips answered `delay` late until one poll catches its Reply
/// spinning (it returns without having slept), at most three. Any other
/// task that wants the CPU ends a spin early (the guest's kernel threads
/// do now and then, more so on a busy host), which turns spinning off
/// until the next Reply; so one early end may take two more round trips.
/// With one CPU online: that the round trip's poll sleeps instead.
#[track_caller]
fn assert_one_of_three_spins(replier: &Replier, k: &Ksock, delay: Duration, what: &str) {
    if !spinning_possible() {
        // Long enough that a spin would show in CPU time.
        let w = replier.round_trip(k, Duration::from_millis(300));
        assert_round_trip_slept(&w, &format!("{what}, one CPU online, 300 ms"));
        return;
    }
    let mut used = Vec::new();
    for _ in 0..3 {
        let w = replier.round_trip(k, delay);
        if !w.slept {
            return;
        }
        used.push(w.cpu);
    }
    panic!("{what}: every poll slept before its Reply came; CPU used: {used:?}");
}

#[test]
fn a_requester_spins_for_a_reply_within_the_window() {
    let _window = Knob::param("kbus_reply_spin_us", "1000000");
    let replier = Replier::start();
    let k = open_rw(0);
    assert_one_of_three_spins(
        &replier,
        &k,
        Duration::from_millis(20),
        "Replies 20 ms after the Request, window 1 s",
    );
}

#[test]
fn a_spin_without_a_reply_turns_spinning_off_until_a_quick_reply() {
    let window = Duration::from_millis(100);
    let _window = Knob::param("kbus_reply_spin_us", &window.as_micros().to_string());
    let replier = Replier::start();
    let k = open_rw(0);
    let slow = Duration::from_millis(500);
    let quick = Duration::from_millis(20);
    // Spins through the window (or less, if the CPU is wanted) and gives
    // up; with one CPU online, sleeps.
    let cpu = replier.round_trip(&k, slow).cpu;
    let most = if spinning_possible() {
        window + SLEPT
    } else {
        SLEPT
    };
    assert!(
        cpu <= most,
        "a spin lasts at most the window ({window:?}), this poll used {cpu:?}"
    );
    assert_round_trip_slept(
        &replier.round_trip(&k, slow),
        "after a spin without a Reply",
    );
    // That Reply came 500 ms after the poll: more than twice the window.
    assert_round_trip_slept(
        &replier.round_trip(&k, quick),
        "still off after a Reply slower than twice the window",
    );
    // That one came within twice the window: spinning is on again.
    assert_one_of_three_spins(
        &replier,
        &k,
        quick,
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
    let cpu = thread_cpu();
    let r = ok(l.poll(Ready::READ, Some(LOST)), "Listener poll");
    let cpu = thread_cpu() - cpu;
    assert_eq!(r, Ready::READ, "the Announcement never came");
    sender.join().expect("the sender thread panicked");
    assert_eq!(recv(&l, "the Announcement").data(), b"news");
    assert_slept(cpu, "no Request outstanding");
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
    let cpu = thread_cpu();
    let r = ok(k.poll(Ready::READ, Some(Duration::ZERO)), "poll, timeout 0");
    let cpu = thread_cpu() - cpu;
    assert_eq!(r, Ready::default(), "nothing can be queued yet");
    assert_slept(cpu, "a poll with timeout 0");
    // Readable or writable: the Ksock is writable, so poll does not wait.
    let r = ok(
        k.poll(Ready::BOTH, Some(LOST)),
        "poll, readable or writable",
    );
    assert_eq!(r, Ready::WRITE, "writable at once, the Reply still to come");
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
    let w = replier.round_trip(&k, Duration::from_millis(300));
    assert_round_trip_slept(&w, "kbus_reply_spin_us=0");
}
