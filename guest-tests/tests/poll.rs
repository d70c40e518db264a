//! poll and wait_for_msg, with and without timeouts (spec §5.9, §6.5).

use std::thread;
use std::time::{Duration, Instant};

use kbus_guest_tests::*;

#[test]
fn poll_with_a_timeout() {
    let l = open_rw(0);
    bind(&l, "$.Poll.T", Role::Listener);
    assert_eq!(
        ok(l.poll(Ready::READ, Some(Duration::ZERO)), "poll 0"),
        Ready::default()
    );
    let t = Instant::now();
    assert_eq!(
        ok(l.poll(Ready::READ, Some(SHORT)), "poll 50ms"),
        Ready::default()
    );
    assert!(t.elapsed() >= SHORT, "the timeout was waited for");
    // A read/write Ksock not in sending state is always writable.
    assert_eq!(
        ok(l.poll(Ready::BOTH, Some(Duration::ZERO)), "poll rw"),
        Ready::WRITE
    );

    send(&l, &MessageRepr::announcement("$.Poll.T", b""));
    assert_eq!(ok(l.poll(Ready::READ, Some(SHORT)), "poll"), Ready::READ);
    assert_eq!(ok(l.poll(Ready::BOTH, None), "poll forever"), Ready::BOTH);
    recv(&l, "the message");
    assert_eq!(
        ok(l.poll(Ready::READ, Some(Duration::ZERO)), "poll"),
        Ready::default()
    );

    let mut buf = [0u8; 128];
    let t = Instant::now();
    assert!(ok(l.wait_for_msg_timeout(&mut buf, SHORT), "wait").is_none());
    assert!(t.elapsed() >= SHORT);
}

#[test]
fn poll_without_a_timeout_wakes_on_delivery() {
    let l = open_ro(0);
    bind(&l, "$.Poll.Wake", Role::Listener);
    let sender = thread::spawn(|| {
        let s = open_rw(0);
        thread::sleep(Duration::from_millis(100));
        send(&s, &MessageRepr::announcement("$.Poll.Wake", b"wake up"))
    });
    let t = Instant::now();
    let r = ok(l.poll(Ready::READ, None), "poll forever");
    assert_eq!(r, Ready::READ);
    assert!(
        t.elapsed() >= Duration::from_millis(90),
        "poll returned before the send"
    );
    let id = sender.join().unwrap();
    let mut buf = [0u8; 128];
    let m = ok(l.wait_for_msg(&mut buf), "wait_for_msg");
    assert_eq!((m.id(), m.data()), (id, &b"wake up"[..]));
}

#[test]
fn wait_for_msg_without_a_timeout() {
    let l = open_ro(1);
    bind(&l, "$.Poll.Wait", Role::Listener);
    let sender = thread::spawn(|| {
        let s = open_rw(1);
        thread::sleep(Duration::from_millis(50));
        send(&s, &MessageRepr::announcement("$.Poll.Wait", b"hi"))
    });
    let mut buf = [0u8; 128];
    let m = ok(l.wait_for_msg(&mut buf), "wait_for_msg");
    assert_eq!(m.id(), sender.join().unwrap());
}

#[test]
fn pending_send_finishes_when_the_listener_makes_room() {
    let l = open_ro(0);
    let s = open_rw(0);
    bind(&l, "$.Poll.Pending", Role::Listener);
    ok(l.set_max_messages(1), "MAXMSGS 1");
    send(&s, &MessageRepr::announcement("$.Poll.Pending", b"1"));
    let mut m = MessageRepr::announcement("$.Poll.Pending", b"2");
    m.flags = Flags::ALL_OR_WAIT;
    let id = expect_errno(s.send_msg(&m), Errno::AGAIN, "pending")
        .message_id()
        .unwrap();
    expect_send_pending(s.write_data(&[0u8; 4]), id, "write while pending");
    assert_eq!(
        write_past_ksock(&s, &[0u8; 4]),
        Err(Errno::ALREADY),
        "raw write"
    );
    assert_eq!(
        ok(s.poll(Ready::WRITE, Some(Duration::ZERO)), "poll"),
        Ready::default()
    );
    assert_eq!(s.pending_send(), Some(id), "still pending after a poll");
    recv(&l, "first");
    // Room now: a poll for writable retries and finishes the send.
    assert_eq!(ok(s.poll(Ready::WRITE, Some(SHORT)), "poll"), Ready::WRITE);
    assert_eq!(s.pending_send(), None, "a writable poll ends it");
    let got = recv(&l, "the pending message");
    assert_eq!((got.id(), got.data()), (id, &b"2"[..]));
    assert!(got.flags().contains(Flags::ALL_OR_WAIT));
}

#[test]
fn pending_request_wakes_when_a_better_replier_binds() {
    // The wildcard Replier is full, so an ALL_OR_WAIT Request waits in
    // poll. A new exact-name Replier with room (opened first: the open's
    // wake-up comes too early) changes the retry's outcome: its BIND must
    // wake the poller, not the end of the timeout.
    let r1 = open_rw(0);
    let filler = open_rw(0);
    let s = open_rw(0);
    bind(&r1, "$.Poll.Better.*", Role::Replier);
    ok(r1.set_max_messages(1), "MAXMSGS 1");
    send(&filler, &MessageRepr::request("$.Poll.Better.X", b"filler"));
    let mut m = MessageRepr::request("$.Poll.Better.X", b"wait");
    m.flags |= Flags::ALL_OR_WAIT;
    let id = expect_errno(s.send_msg(&m), Errno::AGAIN, "replier full")
        .message_id()
        .unwrap();
    let binder = thread::spawn(|| {
        let r2 = open_rw(0);
        thread::sleep(Duration::from_millis(200));
        bind(&r2, "$.Poll.Better.X", Role::Replier);
        r2
    });
    let t = Instant::now();
    let r = ok(s.poll(Ready::WRITE, Some(Duration::from_secs(6))), "poll");
    let waited = t.elapsed();
    let r2 = binder.join().unwrap();
    assert_eq!(r, Ready::WRITE);
    assert!(
        waited < Duration::from_secs(4),
        "poll slept {waited:?}: the new Replier's BIND did not wake it"
    );
    let got = recv(&r2, "the pending Request");
    assert_eq!((got.id(), got.data()), (id, &b"wait"[..]));
    assert!(got.wants_us_to_reply());
    assert_empty(&s, "no answer yet");
}

/// Signals that interrupt the wait (a handler without SA_RESTART, so poll
/// sees EINTR) neither end it early nor stretch it: the wait resumes with
/// the time left. Before, every signal restarted the whole timeout, so a
/// steady stream of signals kept `poll` from ever returning.
#[test]
fn poll_timeout_holds_while_signals_interrupt_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    signals::install_noop_handler();
    let k = open_rw(0);
    bind(&k, "$.Poll.Signals", Role::Listener);
    let stop = Arc::new(AtomicBool::new(false));
    let target = signals::this_thread();
    let signaller = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            // At most 6 s of signals, one every 20 ms.
            for _ in 0..300 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
                signals::interrupt(target);
            }
        })
    };
    let timeout = Duration::from_millis(500);
    let start = Instant::now();
    let got = ok(k.poll(Ready::READ, Some(timeout)), "poll under signals");
    let waited = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    signaller.join().expect("signaller");
    assert_eq!(got, Ready::default(), "nothing was sent");
    assert!(waited >= timeout, "poll ended early, after {waited:?}");
    assert!(
        waited < Duration::from_secs(4),
        "poll waited {waited:?} for a {timeout:?} timeout while signals arrived"
    );
}

mod signals {
    //! A no-op SIGUSR1 handler and a way to aim the signal at one thread.
    #![allow(unsafe_code)]

    extern "C" fn noop(_: libc::c_int) {}

    /// SIGUSR1 does nothing but interrupt a blocking call (no SA_RESTART).
    pub fn install_noop_handler() {
        // SAFETY: a zeroed `sigaction` is a valid value (empty mask, no
        // flags); the handler is an `extern "C"` function that does
        // nothing, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = noop as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
        }
    }

    pub fn this_thread() -> libc::pthread_t {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() }
    }

    pub fn interrupt(thread: libc::pthread_t) {
        // SAFETY: `thread` is the test's thread, alive until the signaller
        // is joined; SIGUSR1 has the no-op handler installed above.
        unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
    }
}
