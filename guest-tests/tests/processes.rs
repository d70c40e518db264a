//! KBUS's two promises with several *processes* (spec §1, §5.6, §7.5, §7.7,
//! §13 item 6): every Listener sees the messages of several sending
//! processes in one order, and every sent Request gets exactly one answer,
//! real or synthetic, while Replier processes unbind, close, exit without
//! closing, or are killed with SIGKILL at random.
//!
//! The children are this test binary run again (`current_exe()`) with
//! `KBUS_CHILD_ROLE` set and `--exact child_process_role`, so that one test
//! function plays the role. A child prints `KBUS-CHILD <word> ...` lines on
//! its stdout and reads one-line commands from its stdin. All random
//! choices come from seeded generators; the scheduling of the processes is
//! whatever the guest kernel does.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use kbus_guest_tests::*;
use kbus_wire::name::{binding_matches, REPLIER_GONE_AWAY, REPLIER_IGNORED, REPLIER_UNBOUND};

/// Environment variable naming the role a child process plays.
const ROLE: &str = "KBUS_CHILD_ROLE";
/// Prefix of the protocol lines a child prints.
const TAG: &str = "KBUS-CHILD ";
const DEV: u32 = 2;

const ORDER_NAMES: [&str; 3] = ["$.Proc.Order.A", "$.Proc.Order.B", "$.Proc.Order.B.C"];
const ORDER_END: &str = "$.Proc.Order.End";
const SERVICE: &str = "$.Proc.Svc";

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child process: {key} is not set"))
}

fn env_u64(key: &str) -> u64 {
    env(key).parse().expect("a number")
}

/// The entry point of every child process. In the parent's own run (no
/// `KBUS_CHILD_ROLE`) it does nothing.
#[test]
fn child_process_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let seed = env_u64("KBUS_SEED");
    match role.as_str() {
        "order-listener" => order_listener(&env("KBUS_BINDING"), seed),
        "order-sender" => order_sender(env_u64("KBUS_COUNT") as usize, seed),
        "requester" => requester(env_u64("KBUS_COUNT") as usize, seed),
        "replier" => replier(seed),
        other => panic!("unknown child role {other:?}"),
    }
}

// ---- the child side ------------------------------------------------------

/// Tell the parent something (one line).
fn say(words: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG}{words}").expect("stdout");
    out.flush().expect("stdout");
}

/// Wait for the parent's next command.
fn hear(want: &str) {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    assert_eq!(line.trim(), want, "command from the parent");
}

/// Data whose bytes follow from its length, so a Listener can check it.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|k| (len + k) as u8).collect()
}

fn order_listener(binding: &str, seed: u64) {
    let mut rng = Rng(seed);
    let l = if rng.percent(50) {
        open_ro(DEV)
    } else {
        open_rw(DEV)
    };
    ok(l.set_max_messages(1000), "MAXMSGS");
    bind(&l, binding, Role::Listener);
    if !binding_matches(binding.as_bytes(), ORDER_END.as_bytes()) {
        bind(&l, ORDER_END, Role::Listener);
    }
    say("READY");
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 1024];
    loop {
        let m = ok(
            l.wait_for_msg_timeout(&mut buf, Duration::from_secs(60)),
            "read",
        )
        .expect("no message for 60 s");
        if m.name() == ORDER_END {
            break;
        }
        assert_eq!(m.id().network_id, 0, "{m}");
        assert_ne!(m.from(), 0, "{m}");
        assert_eq!(m.data(), pattern(m.data().len()), "data of {m}");
        seen.push(format!("{}:{}", m.id().serial_num, m.data().len()));
        // Read at an uneven pace, so queues grow and shrink differently.
        if rng.percent(10) {
            thread::sleep(Duration::from_millis(rng.below(3)));
        }
    }
    assert_empty(&l, "nothing after the end marker");
    drop(l);
    say(&format!("SEEN {}", seen.join(" ")));
}

fn order_sender(count: usize, seed: u64) {
    let mut rng = Rng(seed);
    let s = open_rw(DEV);
    say("READY");
    hear("GO");
    let mut sent = Vec::new();
    for _ in 0..count {
        let which = rng.below(3) as usize;
        let data = pattern(rng.below(40) as usize);
        let repr = MessageRepr::announcement(ORDER_NAMES[which], &data);
        let id = if rng.percent(50) {
            send(&s, &repr)
        } else {
            let bytes = repr.to_vec().expect("emit");
            ok(s.send_entire(&bytes), "send entire")
        };
        sent.push(format!("{}:{}:{}", id.serial_num, which, data.len()));
        if rng.percent(20) {
            thread::sleep(Duration::from_millis(rng.below(2)));
        }
    }
    drop(s);
    say(&format!("SENT {}", sent.join(" ")));
}

fn requester(count: usize, seed: u64) {
    let mut rng = Rng(seed);
    let s = open_rw(DEV);
    let sid = ok(s.ksock_id(), "KSOCKID");
    // Room for a reservation per Request (spec §5.5).
    ok(s.set_max_messages(2 * count as u32 + 10), "MAXMSGS");
    say("READY");
    hear("GO");
    let mut sent: BTreeMap<MessageId, (Vec<u8>, bool)> = BTreeMap::new();
    let mut answers: BTreeMap<MessageId, Vec<Msg>> = BTreeMap::new();
    let mut last_reply: Option<Msg> = None;
    let collect =
        |s: &Ksock, answers: &mut BTreeMap<MessageId, Vec<Msg>>, last: &mut Option<Msg>| {
            for m in s.iter_owned() {
                let m = ok(m, "read an answer");
                assert!(m.is_reply(), "only answers come back: {m}");
                if !m.is_synthetic() {
                    *last = Some(m.clone());
                }
                answers.entry(m.in_reply_to()).or_default().push(m);
            }
        };
    let mut n = 0usize;
    let mut stateful = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut window = 1;
    while sent.len() < count {
        assert!(Instant::now() < deadline, "could not send {count} Requests");
        // A few Requests in flight at a time, so Repliers get to answer.
        if sent.len() - answers.len() >= window {
            ok(s.poll(Ready::READ, Some(Duration::from_millis(5))), "poll");
            collect(&s, &mut answers, &mut last_reply);
            continue;
        }
        window = 1 + rng.below(6) as usize;
        let data = format!("{seed}-{n}").into_bytes();
        let repr = match &last_reply {
            Some(r) if rng.percent(30) => {
                MessageRepr::stateful_request(r, SERVICE, &data).expect("stateful")
            }
            _ => MessageRepr::request(SERVICE, &data),
        };
        match s.send_msg(&repr) {
            Ok(id) => {
                sent.insert(id, (data.clone(), repr.to != 0));
                stateful += usize::from(repr.to != 0);
                n += 1;
            }
            // No Replier just now, or its queue is full: try again.
            Err(e) if e.is(Errno::ADDRNOTAVAIL) || e.is(Errno::BUSY) => {
                thread::sleep(Duration::from_millis(1))
            }
            // Another Replier took over since that Reply.
            Err(e) if e.is(Errno::PIPE) && repr.to != 0 => last_reply = None,
            Err(e) => panic!("sending a Request: {e}"),
        }
        collect(&s, &mut answers, &mut last_reply);
        if rng.percent(30) {
            thread::sleep(Duration::from_millis(rng.below(3)));
        }
    }
    say(&format!("SENT {}", sent.len()));
    // Every Replier process has ended now, so every answer is queued.
    hear("DRAIN");
    collect(&s, &mut answers, &mut last_reply);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, (data, _)) in &sent {
        let got = answers.get(id).map_or(&[][..], |v| &v[..]);
        let [m] = got else {
            let names: Vec<String> = got.iter().map(|m| m.to_string()).collect();
            panic!(
                "Request {id} got {} answers, not exactly one: {names:?}",
                got.len()
            );
        };
        assert_eq!((m.to(), m.in_reply_to()), (sid, *id), "{m}");
        assert_ne!(m.from(), 0, "{m}");
        assert!(!m.wants_us_to_reply() && !m.is_request(), "{m}");
        match m.name().to_str().unwrap_or("") {
            SERVICE => {
                assert_eq!(m.flags(), Flags::empty(), "{m}");
                assert_eq!(m.data(), &data[..], "the Reply echoes its Request: {m}");
            }
            REPLIER_GONE_AWAY | REPLIER_IGNORED | REPLIER_UNBOUND => {
                assert_eq!(m.flags(), Flags::SYNTHETIC, "{m}");
                assert_eq!(m.data(), b"", "{m}");
            }
            other => panic!("unexpected answer {other}: {m}"),
        }
        *kinds.entry(m.name().to_str().unwrap()).or_default() += 1;
    }
    assert_eq!(answers.len(), sent.len(), "answers to Requests never sent");
    assert_eq!(ok(s.num_messages(), "NUMMSGS"), 0);
    drop(s);
    say(&format!("RESULT {kinds:?}, {stateful} stateful"));
}

fn replier(seed: u64) {
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 1024];
    let mut k = open_rw(DEV);
    for _session in 0..1 + rng.below(4) {
        // Another process may hold the Replier binding just now.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match k.bind(SERVICE, Role::Replier) {
                Ok(()) => break,
                Err(e) if e.is(Errno::ADDRINUSE) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("binding {SERVICE} as Replier: {e}"),
            }
        }
        for _ in 0..rng.below(15) {
            if rng.percent(10) {
                // Pop without reading: the Request still needs an answer.
                ok(k.next_msg(), "NEXTMSG");
                continue;
            }
            let Some(m) = ok(
                k.wait_for_msg_timeout(&mut buf, Duration::from_millis(3)),
                "read",
            ) else {
                continue;
            };
            assert!(m.wants_us_to_reply() && m.name() == SERVICE, "{m}");
            if rng.percent(75) {
                let reply = MessageRepr::reply_to(&m, m.data()).expect("reply_to");
                ok(k.send_msg(&reply), "Reply");
            }
        }
        // Let Requests pile up so that what follows finds some.
        thread::sleep(Duration::from_millis(rng.below(4)));
        match rng.below(5) {
            0 | 1 => ok(k.unbind(SERVICE, Role::Replier), "UNBIND"),
            2 => {
                drop(k);
                k = open_rw(DEV);
            }
            3 => {
                // Exit without closing anything: the kernel closes it.
                std::process::exit(0);
            }
            _ => {
                // Holding everything until SIGKILL.
                say("KILLME");
                thread::sleep(Duration::from_secs(60));
                panic!("the parent did not kill this replier");
            }
        }
    }
    drop(k);
}

// ---- the parent side -----------------------------------------------------

/// The child processes of one test; kills and reaps any left on drop.
struct Kids {
    kids: Vec<(Child, Option<ChildStdin>)>,
    tx: Sender<(usize, String)>,
    rx: Receiver<(usize, String)>,
    stash: VecDeque<(usize, String)>,
}

impl Kids {
    fn new() -> Self {
        let (tx, rx) = channel();
        Kids {
            kids: Vec::new(),
            tx,
            rx,
            stash: VecDeque::new(),
        }
    }

    /// Start this test binary again as `role`.
    fn spawn(&mut self, role: &str, vars: &[(&str, String)]) -> usize {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "child_process_role",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning a child process");
        let idx = self.kids.len();
        let out = child.stdout.take().expect("stdout");
        let tx = self.tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // The harness prints `test child_process_role ... ` with no
                // newline before the test runs, so look inside the line.
                if let Some(pos) = line.find(TAG) {
                    if tx.send((idx, line[pos + TAG.len()..].to_string())).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        self.kids.push((child, stdin));
        idx
    }

    fn tell(&mut self, i: usize, line: &str) {
        let stdin = self.kids[i].1.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("writing to a child");
        stdin.flush().expect("writing to a child");
    }

    /// The next line from any child, waiting at most `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<(usize, String)> {
        if let Some(x) = self.stash.pop_front() {
            return Some(x);
        }
        match self.rx.recv_timeout(timeout) {
            Ok(x) => Some(x),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
        }
    }

    /// The next line from child `i`, which must start with `word`; returns
    /// the rest. Lines from other children are kept for later.
    fn expect(&mut self, i: usize, word: &str) -> String {
        if let Some(pos) = self.stash.iter().position(|(j, _)| *j == i) {
            let (_, line) = self.stash.remove(pos).unwrap();
            return Self::rest(i, word, line);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((j, line)) if j == i => return Self::rest(i, word, line),
                Ok(other) => self.stash.push_back(other),
                Err(_) => panic!("child {i} did not say {word} in time"),
            }
        }
    }

    fn rest(i: usize, word: &str, line: String) -> String {
        match line.strip_prefix(word) {
            Some(rest) => rest.trim().to_string(),
            None => panic!("child {i} said {line:?}, expected {word}"),
        }
    }

    /// Wait for child `i` to exit and check that it succeeded.
    fn wait_ok(&mut self, i: usize) {
        let status = self.kids[i].0.wait().expect("wait");
        assert!(status.success(), "child {i} failed: {status}");
    }

    fn try_wait(&mut self, i: usize) -> Option<ExitStatus> {
        self.kids[i].0.try_wait().expect("try_wait")
    }

    /// SIGKILL child `i` and reap it.
    fn kill(&mut self, i: usize) {
        let _ = self.kids[i].0.kill();
        let status = self.kids[i].0.wait().expect("wait");
        assert!(
            status.success() || status.signal() == Some(9),
            "child {i} failed before it was killed: {status}"
        );
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        for (child, _) in &mut self.kids {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn listeners_in_several_processes_see_one_order() {
    const SENDERS: u64 = 3;
    const EACH: usize = 60;
    let bindings = ["$.Proc.Order.*", "$.Proc.Order.%", "$.Proc.Order.A"];
    let mut kids = Kids::new();
    let listeners: Vec<usize> = (0u64..)
        .zip(bindings)
        .map(|(i, b)| {
            kids.spawn(
                "order-listener",
                &[
                    ("KBUS_BINDING", b.into()),
                    ("KBUS_SEED", (11 + i).to_string()),
                ],
            )
        })
        .collect();
    for &l in &listeners {
        kids.expect(l, "READY");
    }
    let senders: Vec<usize> = (0..SENDERS)
        .map(|i| {
            kids.spawn(
                "order-sender",
                &[
                    ("KBUS_COUNT", EACH.to_string()),
                    ("KBUS_SEED", (101 + i).to_string()),
                ],
            )
        })
        .collect();
    for &s in &senders {
        kids.expect(s, "READY");
    }
    for &s in &senders {
        kids.tell(s, "GO");
    }
    // serial -> (name, data length)
    let mut sent: BTreeMap<u32, (&str, usize)> = BTreeMap::new();
    for &s in &senders {
        let line = kids.expect(s, "SENT");
        for item in line.split_whitespace() {
            let v: Vec<usize> = item.split(':').map(|x| x.parse().unwrap()).collect();
            let old = sent.insert(v[0] as u32, (ORDER_NAMES[v[1]], v[2]));
            assert!(old.is_none(), "serial {} sent twice", v[0]);
        }
        kids.wait_ok(s);
    }
    assert_eq!(sent.len(), SENDERS as usize * EACH);
    // All senders have finished: the end marker comes after everything.
    let s = open_rw(DEV);
    send(&s, &MessageRepr::announcement(ORDER_END, b""));
    drop(s);
    for (&l, b) in listeners.iter().zip(bindings) {
        let line = kids.expect(l, "SEEN");
        kids.wait_ok(l);
        // Ids are given under the device lock in send order, so every
        // Listener must see exactly the matching messages in id order.
        let want: Vec<String> = sent
            .iter()
            .filter(|(_, (name, _))| binding_matches(b.as_bytes(), name.as_bytes()))
            .map(|(serial, (_, len))| format!("{serial}:{len}"))
            .collect();
        let got: Vec<&str> = line.split_whitespace().collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "Listener bound to {b}: order or contents differ");
    }
}

#[test]
fn every_request_gets_one_answer_across_processes() {
    const REQUESTERS: u64 = 2;
    const EACH: usize = 150;
    const LIVE_REPLIERS: usize = 2;
    // Only a guard against a runaway loop; a run uses a few dozen.
    const MAX_REPLIERS: usize = 200;
    let mut rng = Rng(0x5EED_0F0C_AFE5);
    let mut kids = Kids::new();
    let requesters: Vec<usize> = (0..REQUESTERS)
        .map(|i| {
            kids.spawn(
                "requester",
                &[
                    ("KBUS_COUNT", EACH.to_string()),
                    ("KBUS_SEED", (1001 + i).to_string()),
                ],
            )
        })
        .collect();
    for &r in &requesters {
        kids.expect(r, "READY");
    }
    let mut live: Vec<usize> = Vec::new();
    let mut started = 0usize;
    let start_replier = |kids: &mut Kids, live: &mut Vec<usize>, started: &mut usize| {
        *started += 1;
        live.push(kids.spawn("replier", &[("KBUS_SEED", (5000 + *started).to_string())]));
    };
    for _ in 0..LIVE_REPLIERS {
        start_replier(&mut kids, &mut live, &mut started);
    }
    for &r in &requesters {
        kids.tell(r, "GO");
    }
    let mut done = 0;
    let (mut killed, mut exited) = (0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(150);
    while done < requesters.len() {
        assert!(
            Instant::now() < deadline,
            "the requesters did not finish in time"
        );
        match kids.recv(Duration::from_millis(10)) {
            Some((i, line)) if line.starts_with("KILLME") && live.contains(&i) => {
                kids.kill(i);
                live.retain(|&j| j != i);
                killed += 1;
            }
            // A Replier killed at random (below) may have asked just before:
            // its line was already on the way.
            Some((i, line)) if line.starts_with("KILLME") && !requesters.contains(&i) => {}
            Some((i, line)) if line.starts_with("SENT") && requesters.contains(&i) => done += 1,
            Some((i, line)) => panic!("unexpected line from child {i}: {line}"),
            None => {}
        }
        // Now and then kill a Replier process at an arbitrary moment.
        if !live.is_empty() && rng.percent(3) {
            let i = live.remove(rng.below(live.len() as u64) as usize);
            kids.kill(i);
            killed += 1;
        }
        let mut still = Vec::new();
        for i in live.drain(..) {
            match kids.try_wait(i) {
                None => still.push(i),
                Some(status) => {
                    assert!(status.success(), "replier {i} failed: {status}");
                    exited += 1;
                }
            }
        }
        live = still;
        while live.len() < LIVE_REPLIERS && started < MAX_REPLIERS {
            start_replier(&mut kids, &mut live, &mut started);
        }
    }
    for i in live.drain(..) {
        kids.kill(i);
        killed += 1;
    }
    // No Replier is left: every Request has been answered by now.
    for &r in &requesters {
        kids.tell(r, "DRAIN");
    }
    for &r in &requesters {
        let result = kids.expect(r, "RESULT");
        println!("requester {r}: {result}");
        kids.wait_ok(r);
    }
    println!("{started} replier processes: {killed} killed, {exited} exited by themselves");
    assert!(
        killed > 0 && exited > 0,
        "both ways of ending were exercised"
    );
}
