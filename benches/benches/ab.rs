//! A/B workloads through two kbus.ko builds, in one guest boot:
//! `cargo xtask bench --ab REV` builds this statically and runs it there
//! (`cargo xtask bench --help` and the README's benchmark section say how).
//!
//! The orchestrator (the default mode) swaps the modules itself: for each
//! round and each workload, `rmmod kbus`, `insmod kbus-a.ko`, the workload,
//! `rmmod kbus`, `insmod kbus-b.ko`, the workload again (A B A B …, each
//! pair run back to back, so the drifts of an emulated guest on a busy host
//! hit both alike; round i's B/A is that pair's ratio). It leaves the last
//! module loaded, because the rig's init unloads it and checks dmesg after
//! the payload. Before round 1 every workload runs once
//! at a tenth of its size against the module the init loaded (untimed
//! warm-up: page cache of this binary, slab caches).
//!
//! Every workload reports **delivered messages per second**: the messages
//! that receivers actually got, divided by the wall time (monotonic clock)
//! from the first send until the last receiver has read its last message.
//! A fixed count per round, no criterion: the multi-process workloads need
//! their processes set up and torn down around the timed part. 64 data
//! bytes, one device (`/dev/kbus0`). All Ksocks are opened read/write, as
//! the Python binding and libkbus do by default.
//!
//! | name | workload |
//! |---|---|
//! | `send` | one Ksock sends Announcements to one Listener Ksock of the same process, in batches of 50 (below the default queue limit of 100); only the sends are timed, the Listener is drained (NEXTMSG) outside the timed part after each batch |
//! | `send-1000` | the same with 1000 more Listener bindings to other exact names (`$.Bench.Other.N`), held by a third Ksock; the summary adds `send-1000 / send`, the ratio the target is about |
//! | `send-read` | one Ksock bound as Listener to its own name sends and reads each message back (`read_next_msg`) |
//! | `two-proc` | this process sends with ALL_OR_WAIT (nothing lost), one Listener process reads |
//! | `req-reply` | Request → Replier process reads it and Replies → this process reads the Reply; 2 messages per round trip; at least 200 round trips and 0.5 s (a round trip is ~10 times faster on 1 vCPU); with 2 or more vCPUs the requester is pinned to CPU 0 and the Replier to CPU 1, so every round trip crosses CPUs |
//! | `fanout` | this process sends, 10 Listener processes read; no flag, so a full Listener queue skips that Listener (only delivered messages count) |
//! | `fanout-wait` | the same with ALL_OR_WAIT: nothing is lost, the sender polls for writable on EAGAIN (spec §5.7, §5.9) |
//!
//! Listener processes read with NEXTMSG + read until the queue is empty,
//! then `poll()` for readable; for the fan-outs the summary gives those
//! polls per delivered message (a Listener that keeps up with the sender
//! sleeps about once per message). Each child process is this binary,
//! started again with a role (`listener`, `replier`); a final Announcement
//! to `$.Bench.End`, sent with ALL_OR_WAIT, tells it to report and exit.
//!
//! Output: a line per workload and round while running, then the summary
//! (lines starting `KBUS-BENCH: `, which `cargo xtask bench` prints again at
//! the end): per workload the median msgs/s of A and B, B÷A per round (the
//! pair of round i), and the median and range of those ratios.
//!
//! Usage: `ab [--a KO --b KO] [--rounds N] [--scale F] [--a-label S]
//! [--b-label S] [--sched-feature F] [--listener-policy batch|idle]
//! [WORKLOAD…]`. Without `--a`/`--b` it measures the module already loaded
//! (`--rounds` times, no ratios). The last two are diagnoses of the
//! scheduler's part in a fan-out (see their functions).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use kbus_benches::sample_data;
use kbus_rustix::{Errno, Ksock, Mode, Ready, Role};
use kbus_wire::{Flags, MessageRepr};

const DEVICE: u32 = 0;
const DEVICE_PATH: &str = "/dev/kbus0";
const MODULE: &str = "kbus";
const DATA: usize = 64;
const NAME: &str = "$.Bench.Data";
const REQUEST: &str = "$.Bench.Request";
const END: &str = "$.Bench.End";
const FANOUT: usize = 10;
const UNRELATED: usize = 1000;
/// Sends per batch in `send`: below the default queue limit (100).
const BATCH: usize = 50;
/// Longest a poll may wait before the bench calls the module stuck.
const STUCK: Duration = Duration::from_secs(60);
/// `req-reply` runs at least this long (and at least its count).
const MIN_REQ_REPLY: Duration = Duration::from_millis(500);
/// The prefix of the summary lines `cargo xtask bench` collects.
const TAG: &str = "KBUS-BENCH: ";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Send,
    Send1000,
    SendRead,
    TwoProc,
    ReqReply,
    Fanout,
    FanoutWait,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::Send,
        Workload::Send1000,
        Workload::SendRead,
        Workload::TwoProc,
        Workload::ReqReply,
        Workload::Fanout,
        Workload::FanoutWait,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Send => "send",
            Workload::Send1000 => "send-1000",
            Workload::SendRead => "send-read",
            Workload::TwoProc => "two-proc",
            Workload::ReqReply => "req-reply",
            Workload::Fanout => "fanout",
            Workload::FanoutWait => "fanout-wait",
        }
    }

    /// Messages sent per round at scale 1 (round trips for `req-reply`),
    /// chosen so each round takes well under a second in the x86_64 TCG
    /// guest.
    /// (About 0.3 to 1 s each with today's module; a Request/Reply round
    /// trip takes ~4 ms there, most of it waking the other process.)
    /// `send-1000` sends as many as `send`, so that `send-1000 / send`
    /// compares like with like: with a tenth of the count, a run's fixed
    /// start-up cost weighed ten times as much, and both modules showed
    /// ~0.9 even with the 1000 bindings on another device. A module that
    /// walks every binding takes ~2 s for it.
    fn count(self) -> usize {
        match self {
            Workload::Send => 20_000,
            Workload::Send1000 => 20_000,
            Workload::SendRead => 10_000,
            Workload::TwoProc => 4_000,
            Workload::ReqReply => 200,
            Workload::Fanout | Workload::FanoutWait => 600,
        }
    }
}

/// One measurement.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    delivered: u64,
    secs: f64,
    /// Listener polls (fan-out only).
    polls: u64,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.secs
    }

    fn polls_per_msg(&self) -> f64 {
        self.polls as f64 / self.delivered.max(1) as f64
    }
}

fn open() -> Ksock {
    Ksock::open(DEVICE, Mode::ReadWrite)
        .unwrap_or_else(|e| panic!("cannot open {DEVICE_PATH}: {e} (is kbus.ko loaded?)"))
}

fn with_flags<'a>(mut m: MessageRepr<'a>, flags: Flags) -> MessageRepr<'a> {
    m.flags |= flags;
    m
}

/// SEND `m`; if it is pending (EAGAIN, ALL_OR_WAIT), poll for writable:
/// the module retries the send inside poll and says writable once it has
/// delivered it (spec §5.9).
fn send_wait(k: &Ksock, m: &MessageRepr<'_>) {
    match k.send_msg(m) {
        Ok(_) => {}
        Err(e) if e.is(Errno::AGAIN) => {
            let r = k
                .poll(Ready::WRITE, Some(STUCK))
                .expect("poll for writable");
            assert!(
                r.writable,
                "a pending send was not delivered within {STUCK:?}"
            );
        }
        Err(e) => panic!("send {}: {e}", m.name),
    }
}

/// Wait until `k` has a message (the queue was found empty): one poll.
fn wait_readable(k: &Ksock, polls: &mut u64) {
    *polls += 1;
    let r = k.poll(Ready::READ, Some(STUCK)).expect("poll for readable");
    assert!(r.readable, "nothing arrived within {STUCK:?}");
}

// ------------------------------------------------------------ child roles

/// A Listener process: bind `name` and END, say `ready`, read until END,
/// say `done <messages> <polls>`.
fn listener(name: &str) {
    let k = open();
    k.bind(name, Role::Listener).expect("bind");
    k.bind(END, Role::Listener).expect("bind END");
    ready();
    let mut buf = vec![0u8; 4096];
    let (mut count, mut polls) = (0u64, 0u64);
    loop {
        match k.read_next_msg(&mut buf).expect("read_next_msg") {
            Some(m) if m.name() == END => break,
            Some(_) => count += 1,
            None => wait_readable(&k, &mut polls),
        }
    }
    println!("done {count} {polls}");
}

/// Run this thread on `cpu` only.
fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).expect("sched_setaffinity");
}

/// The CPUs this process could run on when it started, before any pinning
/// (a pinned process, and every child it spawns, would see only one).
fn start_cpus() -> &'static rustix::thread::CpuSet {
    static CPUS: std::sync::OnceLock<rustix::thread::CpuSet> = std::sync::OnceLock::new();
    CPUS.get_or_init(|| rustix::thread::sched_getaffinity(None).expect("sched_getaffinity"))
}

/// How many CPUs the process had at start.
fn cpu_count() -> usize {
    start_cpus().count() as usize
}

/// Run this thread on the CPUs it had at start again.
fn unpin() {
    rustix::thread::sched_setaffinity(None, start_cpus()).expect("sched_setaffinity");
}

/// With 2 or more CPUs: the CPUs the requester and the Replier run on, two
/// different ones, so every round trip crosses CPUs. Without pinning, the
/// TCG guest's scheduler sometimes put both on one vCPU for a whole round,
/// which made that round ~20 times faster than the others.
fn req_reply_cpus() -> Option<(usize, usize)> {
    (cpu_count() >= 2).then_some((0, 1))
}

/// A Replier process: reply to every Request until END.
fn replier() {
    if let Some((_, cpu)) = req_reply_cpus() {
        pin(cpu);
    }
    let k = open();
    k.bind(REQUEST, Role::Replier).expect("bind Replier");
    k.bind(END, Role::Listener).expect("bind END");
    ready();
    let data = sample_data(DATA);
    let mut buf = vec![0u8; 4096];
    let (mut count, mut polls) = (0u64, 0u64);
    loop {
        match k.read_next_msg(&mut buf).expect("read_next_msg") {
            Some(m) if m.name() == END => break,
            Some(m) => {
                let reply = MessageRepr::reply_to(&m, &data).expect("reply_to");
                k.send_msg(&reply).expect("send Reply");
                count += 1;
            }
            None => wait_readable(&k, &mut polls),
        }
    }
    println!("done {count} {polls}");
}

fn ready() {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .expect("stdout");
}

/// A child process of this binary in `role`, once it said `ready`.
struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a child process");
        let mut out = BufReader::new(child.stdout.take().expect("child stdout"));
        assert_eq!(line(&mut out), "ready", "child {args:?}");
        Peer { child, out }
    }

    /// Wait for `done <messages> <polls>` and the exit.
    fn done(mut self) -> (u64, u64) {
        let l = line(&mut self.out);
        let mut w = l.split_whitespace();
        assert_eq!(w.next(), Some("done"), "child said {l:?}");
        let mut num = || w.next().and_then(|x| x.parse().ok()).expect("a count");
        let r = (num(), num());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "child failed: {status}");
        r
    }
}

fn line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).expect("read from child");
    s.trim_end().to_string()
}

// ------------------------------------------------------------ workloads

fn end_marker() -> MessageRepr<'static> {
    with_flags(MessageRepr::announcement(END, &[]), Flags::ALL_OR_WAIT)
}

/// `send` and `send-1000`.
fn send_only(n: usize, unrelated: usize) -> Sample {
    let data = sample_data(DATA);
    let m = MessageRepr::announcement(NAME, &data);
    let s = open();
    let l = open();
    l.bind(NAME, Role::Listener).expect("bind");
    let other = open();
    for i in 0..unrelated {
        other
            .bind(format!("$.Bench.Other.N{i}"), Role::Listener)
            .expect("bind an unrelated name");
    }
    let mut timed = Duration::ZERO;
    let mut delivered = 0;
    let mut sent = 0;
    while sent < n {
        let batch = BATCH.min(n - sent);
        let t = Instant::now();
        for _ in 0..batch {
            s.send_msg(&m).expect("send");
        }
        timed += t.elapsed();
        sent += batch;
        while l.next_msg().expect("NEXTMSG").is_some() {
            delivered += 1;
        }
    }
    assert_eq!(delivered, n as u64, "the Listener missed messages");
    Sample {
        delivered,
        secs: timed.as_secs_f64(),
        polls: 0,
    }
}

fn send_read(n: usize) -> Sample {
    let data = sample_data(DATA);
    let m = MessageRepr::announcement(NAME, &data);
    let k = open();
    k.bind(NAME, Role::Listener).expect("bind");
    let mut buf = vec![0u8; 4096];
    let t = Instant::now();
    for _ in 0..n {
        k.send_msg(&m).expect("send");
        let got = k.read_next_msg(&mut buf).expect("read").expect("queued");
        assert_eq!(got.data().len(), DATA);
    }
    Sample {
        delivered: n as u64,
        secs: t.elapsed().as_secs_f64(),
        polls: 0,
    }
}

/// `two-proc`, `fanout`, `fanout-wait`: this process sends `n` messages to
/// `listeners` Listener processes.
fn fan_out(n: usize, listeners: usize, wait: bool) -> Sample {
    let data = sample_data(DATA);
    let flags = if wait {
        Flags::ALL_OR_WAIT
    } else {
        Flags::empty()
    };
    let m = with_flags(MessageRepr::announcement(NAME, &data), flags);
    let s = open();
    let peers: Vec<Peer> = (0..listeners)
        .map(|_| match LISTENER_POLICY.get() {
            Some(p) => Peer::spawn(&["listener", NAME, p.arg]),
            None => Peer::spawn(&["listener", NAME]),
        })
        .collect();
    let t = Instant::now();
    for _ in 0..n {
        if wait {
            send_wait(&s, &m);
        } else {
            s.send_msg(&m).expect("send");
        }
    }
    send_wait(&s, &end_marker());
    let (mut delivered, mut polls) = (0, 0);
    for p in peers {
        let (d, q) = p.done();
        delivered += d;
        polls += q;
    }
    let secs = t.elapsed().as_secs_f64();
    if wait {
        assert_eq!(
            delivered,
            (n * listeners) as u64,
            "ALL_OR_WAIT lost messages"
        );
    }
    Sample {
        delivered,
        secs,
        polls,
    }
}

fn req_reply(n: usize) -> Sample {
    let data = sample_data(DATA);
    let request = MessageRepr::request(REQUEST, &data);
    let k = open();
    let peer = Peer::spawn(&["replier"]);
    let cpus = req_reply_cpus();
    if let Some((cpu, _)) = cpus {
        pin(cpu);
    }
    let mut buf = vec![0u8; 4096];
    let mut polls = 0;
    let t = Instant::now();
    let mut done: u64 = 0;
    // At least MIN_REQ_REPLY: a round trip is ~10x faster on 1 vCPU.
    while done < n as u64 || t.elapsed() < MIN_REQ_REPLY {
        done += 1;
        let id = k.send_msg(&request).expect("send Request");
        loop {
            match k.read_next_msg(&mut buf).expect("read_next_msg") {
                Some(r) => {
                    assert!(r.is_reply() && r.in_reply_to() == id, "not our Reply");
                    break;
                }
                None => wait_readable(&k, &mut polls),
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    send_wait(&k, &end_marker());
    if cpus.is_some() {
        unpin();
    }
    let (replied, _) = peer.done();
    assert_eq!(replied, done);
    Sample {
        delivered: 2 * done,
        secs,
        polls: 0,
    }
}

fn run_workload(w: Workload, scale: f64) -> Sample {
    let n = ((w.count() as f64 * scale).round() as usize).max(1);
    match w {
        Workload::Send => send_only(n, 0),
        Workload::Send1000 => send_only(n, UNRELATED),
        Workload::SendRead => send_read(n),
        Workload::TwoProc => fan_out(n, 1, true),
        Workload::ReqReply => req_reply(n),
        Workload::Fanout => fan_out(n, FANOUT, false),
        Workload::FanoutWait => fan_out(n, FANOUT, true),
    }
}

// ------------------------------------------------------------ modules

fn sh(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(st.success(), "{cmd} {args:?} failed: {st}");
}

/// Replace the loaded kbus module by `ko` (one device).
fn load(ko: &str) {
    if Path::new("/sys/module").join(MODULE).exists() {
        sh("rmmod", &[MODULE]);
    }
    sh("insmod", &[ko, "kbus_num_devices=1"]);
    let t = Instant::now();
    while !Path::new(DEVICE_PATH).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{DEVICE_PATH} did not appear after insmod {ko}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ------------------------------------------------------------ summary

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// One summary row: A and B per round, already as the figure to compare.
fn row(name: &str, unit_fmt: fn(f64) -> String, a: &[f64], b: &[f64]) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| b / a).collect();
    let per_round: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    let (lo, hi) = min_max(&ratios);
    println!(
        "{TAG}{name:<20} {:>10} {:>10}  {:>6}  {:<11}  {}",
        unit_fmt(median(a.to_vec())),
        unit_fmt(median(b.to_vec())),
        format!("{:.2}x", median(ratios.clone())),
        format!("{lo:.2}-{hi:.2}"),
        per_round.join(" "),
    );
}

fn summary(
    workloads: &[Workload],
    results: &[(Workload, [Vec<Sample>; 2])],
    labels: [&str; 2],
    rounds: usize,
) {
    let cpus = cpu_count();
    println!(
        "{TAG}A/B: A = {}, B = {}; {rounds} rounds alternating A B in one boot, {cpus} vCPU(s), {DATA} B data",
        labels[0], labels[1]
    );
    println!("{TAG}delivered messages per second (medians over rounds); B/A per round, its median and range");
    println!(
        "{TAG}{:<20} {:>10} {:>10}  {:>6}  {:<11}  B/A per round",
        "workload", "A msgs/s", "B msgs/s", "B/A", "min-max"
    );
    let rates = |w: Workload, i: usize| -> Vec<f64> {
        results
            .iter()
            .find(|r| r.0 == w)
            .map(|r| r.1[i].iter().map(Sample::rate).collect())
            .unwrap_or_default()
    };
    let whole = |x: f64| format!("{x:.0}");
    let two = |x: f64| format!("{x:.2}");
    for &w in workloads {
        row(w.name(), whole, &rates(w, 0), &rates(w, 1));
    }
    if workloads.contains(&Workload::Send) && workloads.contains(&Workload::Send1000) {
        let ratio = |i| -> Vec<f64> {
            rates(Workload::Send1000, i)
                .iter()
                .zip(rates(Workload::Send, i))
                .map(|(x, y)| x / y)
                .collect()
        };
        println!("{TAG}send with {UNRELATED} unrelated bindings / send with 1 (same round):");
        row("send-1000 / send", two, &ratio(0), &ratio(1));
    }
    let fan: Vec<Workload> = workloads
        .iter()
        .copied()
        .filter(|w| matches!(w, Workload::Fanout | Workload::FanoutWait))
        .collect();
    if !fan.is_empty() {
        println!(
            "{TAG}Listener polls per delivered message ({FANOUT} Listeners; lower is better):"
        );
        for w in fan {
            let polls = |i: usize| -> Vec<f64> {
                results
                    .iter()
                    .find(|r| r.0 == w)
                    .map(|r| r.1[i].iter().map(Sample::polls_per_msg).collect())
                    .unwrap_or_default()
            };
            row(&format!("{} polls", w.name()), two, &polls(0), &polls(1));
        }
    }
}

// ------------------------------------------------------------ main

struct Options {
    kos: Option<[String; 2]>,
    labels: [String; 2],
    rounds: usize,
    scale: f64,
    workloads: Vec<Workload>,
}

/// Diagnosis only: set a scheduler feature of the guest kernel for the
/// whole run (e.g. `NO_WAKEUP_PREEMPTION`, to see how much of a fan-out's
/// cost is freshly woken Listeners preempting the sender).
fn set_sched_feature(feature: &str) {
    const FEATURES: &str = "/sys/kernel/debug/sched/features";
    if !Path::new(FEATURES).exists() {
        let mounted = std::process::Command::new("/bin/busybox")
            .args(["mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(mounted, "cannot mount debugfs for --sched-feature");
    }
    std::fs::write(FEATURES, feature).unwrap_or_else(|e| panic!("{FEATURES}: {e}"));
    println!(
        "{TAG}scheduler features: {}",
        std::fs::read_to_string(FEATURES).unwrap_or_default().trim()
    );
}

/// A scheduling policy for the Listener processes of `two-proc` and the
/// fan-outs (`--listener-policy`).
struct Policy {
    name: &'static str,
    /// How `--listener-policy` and the `listener` role name it.
    arg: &'static str,
    policy: libc::c_int,
}

impl Policy {
    fn named(arg: &str) -> Policy {
        match arg {
            "batch" => Policy {
                name: "SCHED_BATCH",
                arg: "batch",
                policy: libc::SCHED_BATCH,
            },
            "idle" => Policy {
                name: "SCHED_IDLE",
                arg: "idle",
                policy: libc::SCHED_IDLE,
            },
            other => panic!("scheduling policy {other:?}: batch or idle"),
        }
    }

    /// Run this process under the policy (any user may pick these two).
    fn apply(&self) {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is this process; `param` is a valid sched_param
        // that outlives the call.
        let r = unsafe { libc::sched_setscheduler(0, self.policy, &param) };
        assert_eq!(
            r,
            0,
            "sched_setscheduler({}): {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }
}

/// Diagnosis, and advice for bulk Listeners: run the Listener processes of
/// `two-proc` and the fan-outs under SCHED_BATCH (`batch`) or SCHED_IDLE
/// (`idle`). A wake-up of such a task does not preempt the running sender
/// (CFS and EEVDF preempt on wake-up only for SCHED_NORMAL wakees), and any
/// user may choose these policies for their own processes.
static LISTENER_POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();

fn set_listener_policy(name: &str) {
    let policy = Policy::named(name);
    println!("{TAG}Listener processes run under {}", policy.name);
    let _ = LISTENER_POLICY.set(policy);
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Options {
    let mut a = None;
    let mut b = None;
    let mut o = Options {
        kos: None,
        labels: ["A".into(), "B".into()],
        rounds: 5,
        scale: 1.0,
        workloads: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--a" => a = Some(value()),
            "--b" => b = Some(value()),
            "--a-label" => o.labels[0] = value(),
            "--b-label" => o.labels[1] = value(),
            "--rounds" => o.rounds = value().parse().expect("--rounds N"),
            "--scale" => o.scale = value().parse().expect("--scale F"),
            "--sched-feature" => set_sched_feature(&value()),
            "--listener-policy" => set_listener_policy(&value()),
            // cargo's and criterion's habits: ignore.
            "--bench" => {}
            w => match Workload::ALL.iter().find(|x| x.name() == w) {
                Some(&x) => o.workloads.push(x),
                None => panic!(
                    "unknown argument or workload {w:?}; workloads: {:?}",
                    Workload::ALL.map(Workload::name)
                ),
            },
        }
    }
    o.kos = match (a, b) {
        (Some(a), Some(b)) => Some([a, b]),
        (None, None) => None,
        _ => panic!("give both --a and --b, or neither"),
    };
    if o.workloads.is_empty() {
        o.workloads = Workload::ALL.to_vec();
    }
    assert!(o.rounds > 0, "--rounds must be at least 1");
    o
}

fn main() {
    // Remember the CPU set before any workload pins this process.
    start_cpus();
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("listener") => {
            let name = args.nth(1).expect("listener NAME");
            if let Some(policy) = args.next() {
                Policy::named(&policy).apply();
            }
            return listener(&name);
        }
        Some("replier") => return replier(),
        _ => {}
    }
    let o = parse_args(args);
    if !Path::new(DEVICE_PATH).exists() {
        panic!("{DEVICE_PATH} is missing: this bench needs kbus.ko loaded; run it with `cargo xtask bench --ab REV`");
    }
    for &w in &o.workloads {
        run_workload(w, o.scale / 10.0);
    }
    let sides: &[usize] = if o.kos.is_some() { &[0, 1] } else { &[0] };
    let mut results: Vec<(Workload, [Vec<Sample>; 2])> = o
        .workloads
        .iter()
        .map(|&w| (w, [Vec::new(), Vec::new()]))
        .collect();
    if o.kos.is_some() {
        println!("ab: A = {}, B = {}", o.labels[0], o.labels[1]);
    }
    let start = Instant::now();
    for round in 1..=o.rounds {
        for (w, r) in results.iter_mut() {
            for &side in sides {
                if let Some(kos) = &o.kos {
                    load(&kos[side]);
                }
                let label = ["A", "B"][side];
                let s = run_workload(*w, o.scale);
                let polls = if s.polls > 0 {
                    format!(", {:.2} polls/msg", s.polls_per_msg())
                } else {
                    String::new()
                };
                println!(
                    "ab: round {round} {label}: {:<12} {:>9.0} msgs/s ({} in {:.3}s{polls})",
                    w.name(),
                    s.rate(),
                    s.delivered,
                    s.secs
                );
                r[side].push(s);
            }
        }
    }
    println!(
        "ab: {} rounds in {:.1}s",
        o.rounds,
        start.elapsed().as_secs_f64()
    );
    if o.kos.is_some() {
        summary(
            &o.workloads,
            &results,
            [&o.labels[0], &o.labels[1]],
            o.rounds,
        );
    } else {
        println!("{TAG}{:<20} {:>10}  per round", "workload", "msgs/s");
        for (w, r) in &results {
            let rates: Vec<f64> = r[0].iter().map(Sample::rate).collect();
            let each: Vec<String> = rates.iter().map(|x| format!("{x:.0}")).collect();
            println!(
                "{TAG}{:<20} {:>10.0}  {}",
                w.name(),
                median(rates.clone()),
                each.join(" ")
            );
        }
    }
}
