//! `kbus_rustix::tokio::AsyncKsock` (issue 10): readiness-based async over
//! the real module: receiving, requests with their answers, 100 concurrent
//! requests from one task set, pending ALL_OR_WAIT sends, the Stream, and
//! cancellation safety (a dropped future loses no message and leaves no
//! pending send).

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use futures_core::Stream;
use kbus_guest_tests::*;
use kbus_rustix::tokio::AsyncKsock;
use kbus_rustix::ErrorKind;
use kbus_wire::name::REPLIER_GONE_AWAY;
use tokio::task::JoinSet;

/// A Replier thread on `name` answering every Request `x` with `ans-x`
/// until `stop` is set; returns its Ksock at the end.
fn replier(name: &'static str, max: u32, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    let r = open_rw(0);
    bind(&r, name, Role::Replier);
    ok(r.set_max_messages(max), "MAXMSGS");
    thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        let mut answered = 0;
        while !stop.load(Ordering::SeqCst) {
            let Some(m) = ok(
                r.wait_for_msg_timeout(&mut buf, Duration::from_millis(20)),
                "replier wait",
            ) else {
                continue;
            };
            assert!(m.wants_us_to_reply(), "replier got {m}");
            let data = [b"ans-", m.data()].concat();
            ok(
                r.send_msg(&ok(
                    MessageRepr::reply_to(&m, &data).map_err(Into::into),
                    "reply_to",
                )),
                "reply",
            );
            answered += 1;
        }
        answered
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn recv_waits_for_a_message() {
    runtime().block_on(async {
        let l = AsyncKsock::new(open_ro(0)).unwrap();
        bind(l.get_ref(), "$.Async.Recv", Role::Listener);
        let sender = thread::spawn(|| {
            thread::sleep(Duration::from_millis(100));
            send(
                &open_rw(0),
                &MessageRepr::announcement("$.Async.Recv", b"hi"),
            )
        });
        let mut buf = [0u8; 256];
        let m = ok(l.recv(&mut buf).await, "recv");
        assert_eq!(m.data(), b"hi");
        assert_eq!(m.id(), sender.join().unwrap());
        // Too small a buffer: the message is kept for a larger one.
        send(
            &open_rw(0),
            &MessageRepr::announcement("$.Async.Recv", &[7; 100]),
        );
        let mut small = [0u8; 64];
        let e = l.recv(&mut small).await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::BufferTooSmall { .. }), "{e}");
        let m = ok(l.recv(&mut buf).await, "recv after BufferTooSmall");
        assert_eq!(m.data(), &[7; 100][..]);
        assert_empty(l.get_ref(), "done");
    });
}

#[test]
fn a_request_gets_its_reply_and_other_messages_are_kept() {
    runtime().block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let rep = replier("$.Async.Req", 100, stop.clone());
        let k = AsyncKsock::new(open_rw(0)).unwrap();
        bind(k.get_ref(), "$.Async.Other", Role::Listener);
        // An Announcement queued before the Reply is kept for later reads.
        send(
            &open_rw(0),
            &MessageRepr::announcement("$.Async.Other", b"first"),
        );
        let reply = ok(
            k.request(
                &MessageRepr::request("$.Async.Req", b"1"),
                Some(Duration::from_secs(10)),
            )
            .await,
            "request",
        );
        assert!(reply.is_reply());
        assert_eq!(reply.data(), b"ans-1");
        let m = ok(k.recv_owned().await, "the kept Announcement");
        assert_eq!(m.data(), b"first");
        stop.store(true, Ordering::SeqCst);
        assert_eq!(rep.join().unwrap(), 1);
        assert_empty(k.get_ref(), "done");
    });
}

#[test]
fn a_synthetic_answer_ends_a_request_and_time_runs_out() {
    runtime().block_on(async {
        let r = open_rw(0);
        bind(&r, "$.Async.Gone", Role::Replier);
        let k = AsyncKsock::new(open_rw(0)).unwrap();
        // Nobody answers: TimedOut, and the late answer is kept.
        let e = k
            .request(
                &MessageRepr::request("$.Async.Gone", b"x"),
                Some(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::TimedOut, "{e}");
        let first = ok(k.get_ref().last_msg_id(), "LASTSENT");
        // A second Request, then the Replier goes away: GoneAway for both;
        // the request gets its own, the first one's is kept.
        let second = MessageRepr::request("$.Async.Gone", b"y");
        let waiting = k.request(&second, None);
        let closer = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(r);
        };
        let (answer, ()) = tokio::join!(waiting, closer);
        let answer = ok(answer, "request answered by KBUS");
        assert_eq!(answer.name(), REPLIER_GONE_AWAY);
        assert!(answer.is_synthetic());
        assert_ne!(answer.in_reply_to(), first);
        let late = ok(k.recv_owned().await, "the first Request's answer");
        assert_eq!(
            (late.name().to_str().unwrap(), late.in_reply_to()),
            (REPLIER_GONE_AWAY, first)
        );
        assert_empty(k.get_ref(), "done");
    });
}

#[test]
fn a_hundred_concurrent_requests_from_one_task_set() {
    runtime().block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let rep = replier("$.Async.Many", 200, stop.clone());
        let k = Arc::new(AsyncKsock::new(open_rw(0)).unwrap());
        ok(k.get_ref().set_max_messages(200), "MAXMSGS");
        let mut set = JoinSet::new();
        for i in 0..100u32 {
            let k = k.clone();
            set.spawn(async move {
                let data = format!("{i}");
                let reply = k
                    .request(
                        &MessageRepr::request("$.Async.Many", data.as_bytes()),
                        Some(Duration::from_secs(60)),
                    )
                    .await;
                (i, reply)
            });
        }
        let mut seen = [false; 100];
        while let Some(done) = set.join_next().await {
            let (i, reply) = done.expect("task");
            let reply = ok(reply, "request");
            assert_eq!(reply.data(), format!("ans-{i}").as_bytes(), "request {i}");
            assert!(!seen[i as usize]);
            seen[i as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        stop.store(true, Ordering::SeqCst);
        assert_eq!(rep.join().unwrap(), 100);
        assert_empty(k.get_ref(), "no stray answers");
    });
}

#[test]
fn a_hundred_concurrent_all_or_wait_requests_to_a_small_queue() {
    // The Replier's queue holds 5, so most sends go pending (EAGAIN) and
    // the tasks wait for writable, one pending send at a time per Ksock.
    runtime().block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let rep = replier("$.Async.Wait", 5, stop.clone());
        let k = Arc::new(AsyncKsock::new(open_rw(0)).unwrap());
        ok(k.get_ref().set_max_messages(200), "MAXMSGS");
        let mut set = JoinSet::new();
        for i in 0..100u32 {
            let k = k.clone();
            set.spawn(async move {
                let data = format!("{i}");
                let mut req = MessageRepr::request("$.Async.Wait", data.as_bytes());
                req.flags |= Flags::ALL_OR_WAIT;
                (i, k.request(&req, Some(Duration::from_secs(120))).await)
            });
        }
        let mut n = 0;
        while let Some(done) = set.join_next().await {
            let (i, reply) = done.expect("task");
            let reply = ok(reply, "request");
            assert_eq!(reply.data(), format!("ans-{i}").as_bytes(), "request {i}");
            n += 1;
        }
        assert_eq!(n, 100);
        assert_eq!(k.get_ref().pending_send(), None);
        stop.store(true, Ordering::SeqCst);
        assert_eq!(rep.join().unwrap(), 100);
        assert_empty(k.get_ref(), "no stray answers");
    });
}

#[test]
fn dropped_recv_futures_lose_no_message() {
    runtime().block_on(async {
        let l = AsyncKsock::new(open_ro(0)).unwrap();
        bind(l.get_ref(), "$.Async.Drop", Role::Listener);
        // The sender sends 10 batches of 20, each when told to; the
        // receiver first lets one recv time out on the empty queue (a
        // dropped future for sure), then reads the batch with short
        // timeouts, which cut more waits short while messages arrive.
        let (go, batches) = std::sync::mpsc::channel::<()>();
        let sender = thread::spawn(move || {
            let s = open_rw(0);
            let mut rng = Rng(0x5eed);
            for i in 0..200u32 {
                if i % 20 == 0 {
                    batches.recv().expect("go");
                }
                if rng.percent(30) {
                    thread::sleep(Duration::from_millis(rng.below(3)));
                }
                send(
                    &s,
                    &MessageRepr::announcement("$.Async.Drop", &i.to_le_bytes()),
                );
            }
        });
        let mut buf = [0u8; 256];
        let mut next = 0u32;
        let (mut sure, mut raced) = (0, 0);
        while next < 200 {
            if next % 20 == 0 && sure == next / 20 {
                let r = tokio::time::timeout(Duration::from_millis(5), l.recv(&mut buf)).await;
                assert!(r.is_err(), "nothing is queued before the batch");
                sure += 1;
                go.send(()).expect("sender alive");
            }
            match tokio::time::timeout(Duration::from_micros(300), l.recv(&mut buf)).await {
                Ok(m) => {
                    let m = ok(m, "recv");
                    assert_eq!(m.data(), next.to_le_bytes(), "in order, none lost");
                    next += 1;
                }
                Err(_) => raced += 1,
            }
        }
        sender.join().unwrap();
        assert_eq!(sure, 10);
        eprintln!("dropped recv futures: {sure} on an empty queue, {raced} while messages came");
        assert_empty(l.get_ref(), "done");
    });
}

#[test]
fn a_dropped_request_loses_no_reply_and_a_dropped_send_leaves_nothing_pending() {
    runtime().block_on(async {
        // A request dropped while it waits for its Reply: the Reply is kept.
        let stop = Arc::new(AtomicBool::new(false));
        let rep = replier("$.Async.Cancel", 100, stop.clone());
        let k = AsyncKsock::new(open_rw(0)).unwrap();
        let req = MessageRepr::request("$.Async.Cancel", b"slow");
        let first_poll = {
            // Polled once (that sends the Request), then dropped.
            let mut fut = pin!(k.request(&req, None));
            poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
        };
        let sent = ok(k.get_ref().last_msg_id(), "LASTSENT");
        assert_ne!(sent, MessageId::ZERO, "the first poll sent the Request");
        let reply = match first_poll {
            // The Reply was already there: the future had it.
            Poll::Ready(r) => ok(r, "request"),
            // Dropped while waiting: the Reply is kept for the next read.
            Poll::Pending => {
                let got = tokio::time::timeout(Duration::from_secs(10), k.recv_owned()).await;
                ok(
                    got.expect("the Reply of the dropped request arrives"),
                    "recv",
                )
            }
        };
        assert_eq!(
            (reply.in_reply_to(), reply.data()),
            (sent, &b"ans-slow"[..])
        );
        stop.store(true, Ordering::SeqCst);
        rep.join().unwrap();

        // A send dropped while pending is discarded: nothing pending stays
        // and the message is never delivered.
        let l = open_rw(0);
        bind(&l, "$.Async.Pending", Role::Listener);
        ok(l.set_max_messages(1), "MAXMSGS 1");
        send(
            &open_rw(0),
            &MessageRepr::announcement("$.Async.Pending", b"filler"),
        );
        let mut m = MessageRepr::announcement("$.Async.Pending", b"never");
        m.flags |= Flags::ALL_OR_WAIT;
        let r = tokio::time::timeout(Duration::from_millis(200), k.send_msg(&m)).await;
        assert!(
            r.is_err(),
            "the send cannot finish while the Listener is full"
        );
        assert_eq!(k.get_ref().pending_send(), None, "nothing pending");
        // The module agrees: a raw write is accepted (no EALREADY).
        assert_eq!(write_past_ksock(k.get_ref(), &[]), Ok(0));
        ok(k.get_ref().discard(), "DISCARD the empty write");
        assert_eq!(recv(&l, "filler").data(), b"filler");
        assert_empty(&l, "the cancelled message never arrives");
        let id = ok(
            k.send_msg(&MessageRepr::announcement("$.Async.Pending", b"after"))
                .await,
            "send after",
        );
        assert_eq!(recv(&l, "after").id(), id);
    });
}

#[test]
fn the_stream_yields_owned_messages_in_order() {
    runtime().block_on(async {
        let l = AsyncKsock::new(open_ro(0)).unwrap();
        bind(l.get_ref(), "$.Async.Stream", Role::Listener);
        let s = open_rw(0);
        for i in 0..5u8 {
            send(&s, &MessageRepr::announcement("$.Async.Stream", &[i]));
        }
        let mut stream = l.stream();
        for i in 0..5u8 {
            let m = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx))
                .await
                .expect("never ends");
            assert_eq!(ok(m, "item").data(), [i]);
        }
        assert_empty(l.get_ref(), "done");
    });
}

#[test]
fn a_waiter_is_woken_whoever_else_gave_up() {
    // Many tasks wait at once; most give up (their futures are dropped)
    // before the message comes. The one still waiting must be woken.
    runtime().block_on(async {
        let l = Arc::new(AsyncKsock::new(open_ro(0)).unwrap());
        bind(l.get_ref(), "$.Async.Waiters", Role::Listener);
        let mut set = JoinSet::new();
        for i in 0..20u32 {
            let l = l.clone();
            set.spawn(async move {
                // Task 7 waits long, the others give up after 100 ms.
                let patience = Duration::from_millis(if i == 7 { 10_000 } else { 100 });
                (i, tokio::time::timeout(patience, l.recv_owned()).await)
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = send(
            &open_rw(0),
            &MessageRepr::announcement("$.Async.Waiters", b"w"),
        );
        while let Some(done) = set.join_next().await {
            let (i, r) = done.expect("task");
            if i == 7 {
                let m = ok(r.expect("task 7 was woken"), "recv_owned");
                assert_eq!(m.id(), id);
            } else {
                assert!(r.is_err(), "task {i} gave up before the message");
            }
        }
        assert_empty(l.get_ref(), "done");
    });
}
