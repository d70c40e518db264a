//! KBUS's two promises under concurrency (threads, each with its own Ksocks):
//! every Listener sees the same order, and every sent Request gets exactly
//! one answer, real or synthetic, even when Repliers close or unbind at
//! random (spec §1, §5.6, §7.5).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kbus_guest_tests::*;

#[test]
fn every_listener_sees_the_same_order() {
    const SENDERS: usize = 3;
    const EACH: usize = 60;
    let listeners: Vec<Ksock> = (0..3).map(|_| open_ro(2)).collect();
    for (i, l) in listeners.iter().enumerate() {
        ok(l.set_max_messages(1000), "MAXMSGS");
        // Different bindings that all match.
        let b = ["$.Prop.Order.*", "$.Prop.Order.%", "$.Prop.Order.X"][i];
        bind(l, b, Role::Listener);
    }
    let handles: Vec<_> = (0..SENDERS)
        .map(|t| {
            thread::spawn(move || {
                let s = open_rw(2);
                let mut mine = Vec::new();
                for i in 0..EACH {
                    let mut m = MessageRepr::announcement("$.Prop.Order.X", &[]);
                    let data = [t as u8, i as u8];
                    m.data = &data;
                    mine.push(send(&s, &m));
                }
                mine
            })
        })
        .collect();
    let mut sent: Vec<MessageId> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    sent.sort();
    let seen: Vec<Vec<MessageId>> = listeners
        .iter()
        .map(|l| l.iter_owned().map(|m| ok(m, "read").id()).collect())
        .collect();
    assert_eq!(seen[0].len(), SENDERS * EACH);
    assert_eq!(seen[0], seen[1], "listeners 0 and 1 disagree on the order");
    assert_eq!(seen[0], seen[2], "listeners 0 and 2 disagree on the order");
    // Ids are assigned under the device lock, so queue order is id order.
    assert_eq!(seen[0], sent);
}

#[test]
fn every_request_gets_exactly_one_answer() {
    const REQUESTS: usize = 300;
    const NAME: &str = "$.Prop.Svc";
    let stop = Arc::new(AtomicBool::new(false));
    let repliers: Vec<_> = (0..3u64)
        .map(|t| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                let mut buf = vec![0u8; 512];
                let mut answered = 0usize;
                let mut unbinds_with_queue = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let r = open_rw(1);
                    match r.bind(NAME, Role::Replier) {
                        Ok(()) => {}
                        Err(e) if e.is(Errno::ADDRINUSE) => {
                            thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        Err(e) => panic!("bind: {e}"),
                    }
                    for _ in 0..rng.below(20) {
                        let Some(m) = ok(
                            r.wait_for_msg_timeout(&mut buf, Duration::from_millis(2)),
                            "wait",
                        ) else {
                            continue;
                        };
                        assert!(m.wants_us_to_reply());
                        if rng.below(10) < 7 {
                            let reply = MessageRepr::reply_to(&m, b"ok").unwrap();
                            ok(r.send_msg(&reply), "reply");
                            answered += 1;
                        }
                    }
                    // Let Requests pile up so unbinding and closing find some.
                    thread::sleep(Duration::from_micros(rng.below(3000)));
                    if rng.below(2) == 0 {
                        let queued = ok(r.num_messages(), "NUMMSGS");
                        ok(r.unbind(NAME, Role::Replier), "unbind");
                        unbinds_with_queue += usize::from(queued > 0);
                    }
                    drop(r);
                }
                println!(
                    "replier {t}: {answered} replies, {unbinds_with_queue} unbinds with a queue"
                );
                answered
            })
        })
        .collect();

    let s = open_rw(1);
    ok(s.set_max_messages(2 * REQUESTS as u32), "MAXMSGS");
    let mut sent = BTreeMap::new();
    let mut answers: BTreeMap<MessageId, Vec<String>> = BTreeMap::new();
    let collect = |s: &Ksock, answers: &mut BTreeMap<MessageId, Vec<String>>| {
        for m in s.iter_owned() {
            let m = ok(m, "read");
            assert!(m.is_reply(), "only answers come back: {m}");
            answers
                .entry(m.in_reply_to())
                .or_default()
                .push(m.name().to_string());
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.len() < REQUESTS && Instant::now() < deadline {
        match s.send_msg(&MessageRepr::request(NAME, b"?")) {
            Ok(id) => {
                sent.insert(id, ());
            }
            // No Replier bound just now, or its queue is full: try again.
            Err(e) if e.is(Errno::ADDRNOTAVAIL) || e.is(Errno::BUSY) => thread::yield_now(),
            Err(e) => panic!("request: {e}"),
        }
        collect(&s, &mut answers);
    }
    assert_eq!(sent.len(), REQUESTS, "could not send all Requests in time");
    stop.store(true, Ordering::Relaxed);
    let replied: usize = repliers.into_iter().map(|h| h.join().unwrap()).sum();
    // Every Replier has closed now, so every answer is queued.
    collect(&s, &mut answers);
    for id in sent.keys() {
        match answers.get(id) {
            Some(v) if v.len() == 1 => {}
            Some(v) => panic!("Request {id} got {} answers: {v:?}", v.len()),
            None => panic!("Request {id} got no answer"),
        }
    }
    assert_eq!(answers.len(), sent.len(), "answers to Requests never sent");
    let real = answers.values().filter(|v| v[0] == NAME).count();
    assert_eq!(real, replied, "real Replies");
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for v in answers.values() {
        *kinds.entry(v[0].as_str()).or_default() += 1;
    }
    println!("answers by kind: {kinds:?}");
    assert_eq!(ok(s.num_messages(), "NUMMSGS"), 0);
}
