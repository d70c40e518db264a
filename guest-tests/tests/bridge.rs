//! kbus-bridge (issue 12) in the guest: devices /dev/kbus0..2 joined by
//! real `kbus-bridge` processes over Zenoh on loopback (explicit endpoints,
//! no multicast) and over the Limpet protocol.
//!
//! The `kbus-bridge` binary must sit next to this test binary (xtask stages
//! it); without it every test fails, saying so.
//!
//! x86_64 only for now: xtask cross-builds kbus-bridge (Zenoh) for x86_64
//! and says loudly that the other arches do not run this file.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kbus_rustix::{Flags, Ksock, Message, MessageId, MessageRepr, Mode, OrigFrom, Role};

const WAIT: Duration = Duration::from_secs(20);
const BUF: usize = 4096;

fn bridge_exe() -> PathBuf {
    let exe = std::env::current_exe()
        .expect("current_exe")
        .with_file_name("kbus-bridge");
    assert!(
        exe.is_file(),
        "{} is missing: xtask must stage the kbus-bridge binary next to the bridge test",
        exe.display()
    );
    exe
}

/// A running bridge, killed on drop.
struct Bridge {
    child: Child,
    bus: u32,
}

impl Bridge {
    fn start(bus: u32, args: &[&str]) -> Bridge {
        let child = Command::new(bridge_exe())
            .args(["--bus", &bus.to_string(), "--verbose", "1"])
            .args(args)
            .spawn()
            .expect("spawn kbus-bridge");
        Bridge { child, bus }
    }

    fn zenoh(bus: u32, id: u32, listen: &[u16], connect: &[u16]) -> Bridge {
        let mut args = vec!["--id".to_string(), id.to_string()];
        for p in listen {
            args.push("--listen".into());
            args.push(format!("tcp/127.0.0.1:{p}"));
        }
        for p in connect {
            args.push("--connect".into());
            args.push(format!("tcp/127.0.0.1:{p}"));
        }
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        Bridge::start(bus, &args)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bridge {
    /// Kill it, and turn off the device-wide REPORTREPLIERBINDS it turned
    /// on, so that the tests that run after this file find the devices as
    /// they were (one bridge per device at a time here).
    fn drop(&mut self) {
        self.kill();
        if let Ok(k) = Ksock::open(self.bus, Mode::ReadWrite) {
            let _ = k.report_replier_binds(false);
        }
    }
}

/// What every thread of process `pid` has used so far: CPU time and
/// context switches (voluntary or not, i.e. how often its threads slept or
/// were preempted). For the bench's cost per message.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu: Duration,
    switches: u64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"));
        let mut u = Usage::default();
        for t in tasks.flatten() {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            // schedstat: time on CPU (ns), time waiting, timeslices.
            let ns = read("schedstat")
                .split_whitespace()
                .next()
                .map(str::parse::<u64>);
            u.cpu += Duration::from_nanos(ns.and_then(Result::ok).unwrap_or(0));
            u.switches += read("status")
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        u
    }

    /// Per message, from `before` to now: (CPU µs, context switches).
    fn per_msg_since(pid: u32, before: Usage, n: u32) -> (f64, f64) {
        let now = Usage::of(pid);
        let n = f64::from(n);
        (
            (now.cpu - before.cpu).as_secs_f64() * 1e6 / n,
            (now.switches - before.switches) as f64 / n,
        )
    }
}

fn open(bus: u32) -> Ksock {
    Ksock::open(bus, Mode::ReadWrite).unwrap_or_else(|e| panic!("/dev/kbus{bus}: {e}"))
}

fn recv(k: &Ksock, buf: &mut [u8]) -> Message<Vec<u8>> {
    let m = k
        .wait_for_msg_timeout(buf, WAIT)
        .expect("read")
        .expect("a message within the time limit");
    Message::new_checked(m.as_bytes().to_vec()).unwrap()
}

fn nothing_more(k: &Ksock, what: &str) {
    let mut buf = vec![0u8; BUF];
    if let Some(m) = k
        .wait_for_msg_timeout(&mut buf, Duration::from_millis(500))
        .unwrap()
    {
        panic!("{what}: unexpected {m}");
    }
}

/// Wait until `bus` has a Replier for exactly `name` (a bridge's proxy).
fn wait_for_replier(bus: u32, name: &str) -> u32 {
    let k = open(bus);
    let start = Instant::now();
    loop {
        if let Some(id) = k.find_replier(name).unwrap() {
            return id;
        }
        assert!(
            start.elapsed() < WAIT,
            "no proxy Replier for {name} on kbus{bus}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until there is no Replier for `name` on `bus`.
fn wait_no_replier(bus: u32, name: &str) {
    let k = open(bus);
    let start = Instant::now();
    while k.find_replier(name).unwrap().is_some() {
        assert!(
            start.elapsed() < WAIT,
            "{name} still has a Replier on kbus{bus}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send probe Announcements from `from` until one reaches `to` (the links
/// and subscriptions are up), then drain.
fn wait_linked(from: u32, to: u32) {
    let name = format!("$.Probe.From{from}.To{to}");
    let listener = open(to);
    listener.bind(&name, Role::Listener).unwrap();
    let sender = open(from);
    let start = Instant::now();
    let mut buf = vec![0u8; BUF];
    loop {
        sender
            .send_msg(&MessageRepr::announcement(&name, b"probe"))
            .unwrap();
        if listener
            .wait_for_msg_timeout(&mut buf, Duration::from_millis(200))
            .unwrap()
            .is_some()
        {
            break;
        }
        assert!(start.elapsed() < WAIT, "kbus{from} never reached kbus{to}");
    }
    std::thread::sleep(Duration::from_millis(300));
    while listener.read_next_msg(&mut buf).unwrap().is_some() {}
}

fn pair(port: u16) -> (Bridge, Bridge) {
    let b0 = Bridge::zenoh(0, 1, &[port], &[]);
    let b1 = Bridge::zenoh(1, 2, &[], &[port]);
    wait_linked(0, 1);
    wait_linked(1, 0);
    (b0, b1)
}

#[test]
fn zenoh_announcements_both_ways_with_wildcards() {
    let _b = pair(17411);
    let l1 = open(1);
    l1.bind("$.Sensors.*", Role::Listener).unwrap();
    let l0 = open(0);
    l0.bind("$.Back.%", Role::Listener).unwrap();
    let s0 = open(0);
    let s1 = open(1);
    let mut buf = vec![0u8; BUF];

    let mut ann = MessageRepr::announcement("$.Sensors.Kitchen.Temperature", b"21.5\0\xff");
    ann.flags = Flags::URGENT | Flags::from_user_bits(0xBEEF);
    let sent = s0.send_msg(&ann).unwrap();
    let got = recv(&l1, &mut buf);
    assert_eq!(got.name(), "$.Sensors.Kitchen.Temperature");
    assert_eq!(got.data(), b"21.5\0\xff");
    assert_eq!(got.id(), MessageId::new(1, sent.serial_num), "network id 1");
    assert_eq!(got.orig_from(), OrigFrom::new(1, s0.ksock_id().unwrap()));
    assert_eq!(got.flags(), ann.flags);
    assert!(!got.is_request() && !got.is_reply());

    let sent = s1
        .send_msg(&MessageRepr::announcement("$.Back.Hall", b"x"))
        .unwrap();
    let got = recv(&l0, &mut buf);
    assert_eq!((got.name(), got.data()), ("$.Back.Hall".into(), &b"x"[..]));
    assert_eq!(got.id(), MessageId::new(2, sent.serial_num));
    // `%` means one more component only: not delivered.
    s1.send_msg(&MessageRepr::announcement("$.Back.Hall.Lamp", b"y"))
        .unwrap();
    nothing_more(&l0, "$.Back.% got a deeper name");
    nothing_more(&l1, "echo");
}

#[test]
fn zenoh_request_reply_and_stateful_request() {
    let _b = pair(17421);
    let replier = open(1);
    replier.bind("$.Svc.Echo", Role::Replier).unwrap();
    let proxy = wait_for_replier(0, "$.Svc.Echo");
    let requester = open(0);
    let listener1 = open(1);
    listener1.bind("$.Svc.*", Role::Listener).unwrap();
    let mut buf = vec![0u8; BUF];

    let id = requester
        .send_msg(&MessageRepr::request("$.Svc.Echo", b"ping"))
        .unwrap();
    let req = recv(&replier, &mut buf);
    assert!(req.wants_us_to_reply());
    assert_eq!(req.data(), b"ping");
    assert_eq!(req.id(), MessageId::new(1, id.serial_num));
    assert_eq!(
        req.orig_from(),
        OrigFrom::new(1, requester.ksock_id().unwrap())
    );
    replier
        .send_msg(&MessageRepr::reply_to(&req.view(), b"pong").unwrap())
        .unwrap();
    let reply = recv(&requester, &mut buf);
    assert!(reply.is_reply());
    assert_eq!(reply.in_reply_to(), id);
    assert_eq!(reply.data(), b"pong");
    assert_eq!(reply.from(), proxy);
    assert_eq!(
        reply.orig_from(),
        OrigFrom::new(2, replier.ksock_id().unwrap())
    );
    assert_eq!(requester.num_unreplied_to().unwrap(), 0);
    // A Listener on the Replier's device saw the Request and the Reply.
    assert!(recv(&listener1, &mut buf).is_request());
    assert!(recv(&listener1, &mut buf).is_reply());

    // A Stateful Request goes to the same Replier.
    let again = MessageRepr::stateful_request(&reply.view(), "$.Svc.Echo", b"again").unwrap();
    assert_eq!(again.to, proxy);
    let id2 = requester.send_msg(&again).unwrap();
    let req = recv(&replier, &mut buf);
    assert!(req.wants_us_to_reply());
    assert_eq!(req.to(), replier.ksock_id().unwrap());
    assert_eq!(req.data(), b"again");
    replier
        .send_msg(&MessageRepr::reply_to(&req.view(), b"again!").unwrap())
        .unwrap();
    let reply = recv(&requester, &mut buf);
    assert_eq!((reply.in_reply_to(), reply.data()), (id2, &b"again!"[..]));

    // The Replier is replaced by another Ksock: a Stateful Request for the
    // old one gets NotSameKsock.
    drop(replier);
    wait_no_replier(0, "$.Svc.Echo");
    let other = open(1);
    other.bind("$.Svc.Echo", Role::Replier).unwrap();
    wait_for_replier(0, "$.Svc.Echo");
    let id3 = requester.send_msg(&again).unwrap();
    let answer = recv(&requester, &mut buf);
    assert_eq!(answer.in_reply_to(), id3);
    assert_eq!(answer.name(), "$.KBUS.Replier.NotSameKsock");
    nothing_more(&requester, "exactly one answer");
}

#[test]
fn zenoh_remote_replier_closed_gives_gone_away() {
    let _b = pair(17431);
    let replier = open(1);
    replier.bind("$.Svc.Slow", Role::Replier).unwrap();
    wait_for_replier(0, "$.Svc.Slow");
    let requester = open(0);
    let mut buf = vec![0u8; BUF];
    let id = requester
        .send_msg(&MessageRepr::request("$.Svc.Slow", b"?"))
        .unwrap();
    // Wait until the Request is queued to the Replier, then close it
    // unread, as a killed process would.
    let start = Instant::now();
    while replier.num_messages().unwrap() == 0 {
        assert!(start.elapsed() < WAIT, "the Request never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(replier);
    let answer = recv(&requester, &mut buf);
    assert_eq!(answer.in_reply_to(), id);
    assert_eq!(answer.name(), "$.KBUS.Replier.GoneAway");
    nothing_more(&requester, "exactly one answer");
    wait_no_replier(0, "$.Svc.Slow");
    // With no Replier anywhere, a Request fails at once, as locally.
    assert!(requester
        .send_msg(&MessageRepr::request("$.Svc.Slow", b"?"))
        .is_err());
}

#[test]
fn zenoh_bridge_killed_mid_request_answers() {
    let (_b0, mut b1) = pair(17441);
    let replier = open(1);
    replier.bind("$.Svc.Hang", Role::Replier).unwrap();
    wait_for_replier(0, "$.Svc.Hang");
    let requester = open(0);
    let mut buf = vec![0u8; BUF];
    let id = requester
        .send_msg(&MessageRepr::request("$.Svc.Hang", b"?"))
        .unwrap();
    let req = recv(&replier, &mut buf);
    assert!(req.wants_us_to_reply());
    b1.kill();
    let answer = recv(&requester, &mut buf);
    assert_eq!(answer.in_reply_to(), id);
    assert_eq!(answer.name(), "$.KBUS.Replier.GoneAway");
    nothing_more(&requester, "exactly one answer");
    wait_no_replier(0, "$.Svc.Hang");
}

/// The requester's own bridge dies: its KBUS answers (`Ignored`: the
/// bridge had taken the Request as proxy Replier).
#[test]
fn zenoh_requesters_bridge_killed_answers() {
    let (mut b0, _b1) = pair(17446);
    let replier = open(1);
    replier.bind("$.Svc.Hang2", Role::Replier).unwrap();
    wait_for_replier(0, "$.Svc.Hang2");
    let requester = open(0);
    let mut buf = vec![0u8; BUF];
    let id = requester
        .send_msg(&MessageRepr::request("$.Svc.Hang2", b"?"))
        .unwrap();
    recv(&replier, &mut buf);
    b0.kill();
    let answer = recv(&requester, &mut buf);
    assert_eq!(answer.in_reply_to(), id);
    assert_eq!(answer.name(), "$.KBUS.Replier.Ignored");
    nothing_more(&requester, "exactly one answer");
}

/// Each Listener sees every sender's messages in that sender's order, once.
#[test]
fn zenoh_one_order_per_sender() {
    const N: u32 = 200;
    let _b = pair(17451);
    let listeners = [open(0), open(1)];
    for l in &listeners {
        l.set_max_messages(3 * N + 10).unwrap();
        l.bind("$.Order.*", Role::Listener).unwrap();
    }
    let senders = [
        (open(0), "$.Order.A"),
        (open(0), "$.Order.B"),
        (open(1), "$.Order.C"),
    ];
    for i in 0..N {
        for (k, name) in &senders {
            k.send_msg(&MessageRepr::announcement(name, &i.to_le_bytes()))
                .unwrap();
        }
    }
    let mut buf = vec![0u8; BUF];
    for (li, l) in listeners.iter().enumerate() {
        let mut next = std::collections::HashMap::new();
        for _ in 0..3 * N {
            let m = recv(l, &mut buf);
            let seq = u32::from_le_bytes(m.data().try_into().unwrap());
            let name = m.name().to_str().unwrap().to_string();
            let want = next.entry(name.clone()).or_insert(0u32);
            assert_eq!(seq, *want, "listener {li}, sender {name}: out of order");
            *want += 1;
        }
        nothing_more(l, "duplicates");
    }
}

fn request_round_trip(requester_bus: u32, replier_bus: u32, name: &str) {
    let replier = open(replier_bus);
    replier.bind(name, Role::Replier).unwrap();
    wait_for_replier(requester_bus, name);
    let requester = open(requester_bus);
    let mut buf = vec![0u8; BUF];
    let id = requester
        .send_msg(&MessageRepr::request(name, b"hi"))
        .unwrap();
    let req = recv(&replier, &mut buf);
    replier
        .send_msg(&MessageRepr::reply_to(&req.view(), b"ho").unwrap())
        .unwrap();
    let reply = recv(&requester, &mut buf);
    assert_eq!((reply.in_reply_to(), reply.data()), (id, &b"ho"[..]));
    nothing_more(&requester, "exactly one answer");
    nothing_more(&replier, "one Request");
}

/// Every Announcement reaches every other device exactly once.
fn exactly_once_everywhere(buses: &[u32]) {
    let listeners: Vec<Ksock> = buses
        .iter()
        .map(|&b| {
            let l = open(b);
            l.bind("$.Mesh.*", Role::Listener).unwrap();
            l
        })
        .collect();
    let mut buf = vec![0u8; BUF];
    for &from in buses {
        let name = format!("$.Mesh.From{from}");
        open(from)
            .send_msg(&MessageRepr::announcement(&name, b"m"))
            .unwrap();
        for (l, &b) in listeners.iter().zip(buses) {
            let m = recv(l, &mut buf);
            assert_eq!(m.name(), name.as_str(), "on kbus{b}");
        }
    }
    for (l, b) in listeners.iter().zip(buses) {
        nothing_more(l, &format!("duplicate or loop on kbus{b}"));
    }
}

#[test]
fn zenoh_chain_of_three() {
    let _b0 = Bridge::zenoh(0, 1, &[17461], &[]);
    let _b1 = Bridge::zenoh(1, 2, &[17462], &[17461]);
    let _b2 = Bridge::zenoh(2, 3, &[], &[17462]);
    for (a, b) in [(0, 2), (2, 0), (0, 1), (1, 2)] {
        wait_linked(a, b);
    }
    exactly_once_everywhere(&[0, 1, 2]);
    request_round_trip(2, 0, "$.Chain.Far");
    request_round_trip(0, 2, "$.Chain.Back");
}

#[test]
fn zenoh_triangle() {
    let _b0 = Bridge::zenoh(0, 1, &[17471], &[]);
    let _b1 = Bridge::zenoh(1, 2, &[17472], &[17471]);
    let _b2 = Bridge::zenoh(2, 3, &[], &[17471, 17472]);
    for (a, b) in [(0, 1), (0, 2), (1, 2), (2, 0), (2, 1), (1, 0)] {
        wait_linked(a, b);
    }
    exactly_once_everywhere(&[0, 1, 2]);
    request_round_trip(0, 1, "$.Tri.A");
    request_round_trip(2, 0, "$.Tri.B");
}

/// One bridge process serving /dev/kbus0 to Zenoh and to a Limpet peer at
/// once: kbus1 —Zenoh— kbus0 —Limpet— kbus2 behaves as one bus.
#[test]
fn zenoh_and_limpet_in_one_process() {
    let _b0 = Bridge::start(
        0,
        &[
            "--id",
            "1",
            "--listen",
            "tcp/127.0.0.1:17501",
            "127.0.0.1:17502",
            "--server",
        ],
    );
    let _b1 = Bridge::zenoh(1, 2, &[], &[17501]);
    std::thread::sleep(Duration::from_millis(300));
    let _b2 = Bridge::start(2, &["--id", "3", "127.0.0.1:17502", "--client"]);
    for (a, b) in [(1, 2), (2, 1), (0, 1), (0, 2)] {
        wait_linked(a, b);
    }
    exactly_once_everywhere(&[0, 1, 2]);
    request_round_trip(1, 2, "$.Both.Far");
    request_round_trip(2, 1, "$.Both.Back");
    request_round_trip(2, 0, "$.Both.Mid");
}

#[test]
fn limpet_server_and_client() {
    std::fs::create_dir_all("/tmp").unwrap();
    for (addr, server_args) in [
        (
            "127.0.0.1:17481",
            vec!["127.0.0.1:17481", "--server", "--id", "2"],
        ),
        ("/tmp/kbus-limpet.sock", vec!["/tmp/kbus-limpet.sock", "-s"]),
    ] {
        let _server = Bridge::start(0, &server_args);
        std::thread::sleep(Duration::from_millis(300));
        let _client = Bridge::start(1, &[addr, "--client"]);
        wait_linked(0, 1);
        wait_linked(1, 0);
        exactly_once_everywhere(&[0, 1]);
        request_round_trip(0, 1, "$.Limpet.Svc");
        request_round_trip(1, 0, "$.Limpet.Back");
        // Network ids: the server's default is 2, the client's 1.
        let l = open(1);
        l.bind("$.Limpet.Id", Role::Listener).unwrap();
        let s = open(0);
        let id = s
            .send_msg(&MessageRepr::announcement("$.Limpet.Id", b""))
            .unwrap();
        let mut buf = vec![0u8; BUF];
        let m = recv(&l, &mut buf);
        assert_eq!(m.id(), MessageId::new(2, id.serial_num));
    }
}

/// Send `n` 64-byte Announcements `$.Bench.Ann` on `/dev/kbus<from>` as
/// fast as SEND goes, then read them all from a Listener on
/// `/dev/kbus<to>`: messages per second, first send to last read.
fn announce_burst(from: u32, to: u32, n: u32) -> f64 {
    let listener = open(to);
    listener.set_max_messages(n + 10).unwrap();
    listener.bind("$.Bench.Ann", Role::Listener).unwrap();
    let sender = open(from);
    let data = [0x5au8; 64];
    let mut buf = vec![0u8; BUF];
    let t = Instant::now();
    for _ in 0..n {
        sender
            .send_msg(&MessageRepr::announcement("$.Bench.Ann", &data))
            .unwrap();
    }
    for _ in 0..n {
        assert_eq!(recv(&listener, &mut buf).data(), &data[..]);
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

/// The bench of issue 12 (`cargo xtask bench --bridge` runs it alone):
/// 64-byte Announcements per second and Request→Reply round trips per
/// second across one bridge hop (device 0 → bridge → Zenoh → bridge →
/// device 1), against the same between two plain Zenoh processes in the
/// same boot (`kbus-bridge --zenoh-bench`), with each process's CPU time
/// and context switches per Announcement, the same burst on one device
/// without a bridge, and across a Limpet hop instead of Zenoh. Prints `KBUS-BENCH:` lines; asserts only that
/// everything arrived.
#[test]
fn bench_one_hop_against_plain_zenoh() {
    const WARM_UP: u32 = 200;
    const N: u32 = 4000;
    const M: u32 = 200;
    let parse = |out: &str, what: &str| -> f64 {
        out.lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no '{what}' in {out}"))
    };
    // Baseline first, alone.
    let _server = Bridge::start(
        0,
        &["--zenoh-bench", "serve", "--listen", "tcp/127.0.0.1:17492"],
    );
    let out = Command::new(bridge_exe())
        .args(["--zenoh-bench", "run", &N.to_string(), &M.to_string()])
        .args(["--connect", "tcp/127.0.0.1:17492"])
        .output()
        .expect("run the Zenoh baseline");
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let (z_ann, z_rr) = (parse(&out, "announcements/s"), parse(&out, "round trips/s"));
    let z_cpu = parse(&out, "publisher CPU us/put");
    drop(_server);

    // The same sends and reads on one device with no bridge: the
    // ceiling of any bridge hop, since its sender and Listener run on the
    // same vCPUs as the bridges.
    let me = std::process::id();
    announce_burst(2, 2, WARM_UP);
    let before = Usage::of(me);
    let direct = announce_burst(2, 2, N);
    let (direct_cpu, _) = Usage::per_msg_since(me, before, N);

    let (b0, b1) = pair(17491);
    // Untimed first, as the baseline does: declarations and routes.
    announce_burst(0, 1, WARM_UP);
    let pids = [b0.child.id(), b1.child.id(), me];
    let before = pids.map(Usage::of);
    let k_ann = announce_burst(0, 1, N);
    let [a, b, ends] = [0, 1, 2].map(|i| Usage::per_msg_since(pids[i], before[i], N));
    let data = [0x5au8; 64];
    let mut buf = vec![0u8; BUF];

    let replier = std::thread::spawn(|| {
        let r = open(1);
        r.bind("$.Bench.Echo", Role::Replier).unwrap();
        let mut buf = vec![0u8; BUF];
        for _ in 0..M {
            let m = recv(&r, &mut buf);
            r.send_msg(&MessageRepr::reply_to(&m.view(), m.data()).unwrap())
                .unwrap();
        }
    });
    wait_for_replier(0, "$.Bench.Echo");
    let requester = open(0);
    let t = Instant::now();
    for _ in 0..M {
        let id = requester
            .send_msg(&MessageRepr::request("$.Bench.Echo", &data))
            .unwrap();
        assert_eq!(recv(&requester, &mut buf).in_reply_to(), id);
    }
    let k_rr = f64::from(M) / t.elapsed().as_secs_f64();
    replier.join().unwrap();

    // The same burst across a Limpet hop (TCP on loopback) between the
    // same two devices, the Zenoh bridges gone.
    drop((b0, b1));
    let l0 = Bridge::start(0, &["127.0.0.1:17493", "--server", "--id", "2"]);
    std::thread::sleep(Duration::from_millis(300));
    let l1 = Bridge::start(1, &["127.0.0.1:17493", "--client"]);
    wait_linked(0, 1);
    wait_linked(1, 0);
    announce_burst(0, 1, WARM_UP);
    let pids = [l0.child.id(), l1.child.id(), me];
    let before = pids.map(Usage::of);
    let l_ann = announce_burst(0, 1, N);
    let [la, lb, lends] = [0, 1, 2].map(|i| Usage::per_msg_since(pids[i], before[i], N));
    println!(
        "KBUS-BENCH: bridge 64 B announcements/s {k_ann:.0}, plain Zenoh {z_ann:.0}: ratio {:.2}",
        k_ann / z_ann
    );
    println!(
        "KBUS-BENCH: per Announcement, CPU us (context switches): sending bridge {:.0} ({:.2}), \
         receiving bridge {:.0} ({:.2}), sender and Listener {:.0} ({:.2}); plain Zenoh publisher {z_cpu:.0}",
        a.0, a.1, b.0, b.1, ends.0, ends.1
    );
    println!(
        "KBUS-BENCH: the same 64 B Announcements on one device, no bridge: {direct:.0}/s \
         ({direct_cpu:.0} CPU us each), {:.2} of plain Zenoh",
        direct / z_ann
    );
    println!(
        "KBUS-BENCH: bridge Request->Reply round trips/s {k_rr:.0}, plain Zenoh {z_rr:.0}: ratio {:.2}",
        k_rr / z_rr
    );
    println!(
        "KBUS-BENCH: Limpet hop (TCP) 64 B announcements/s {l_ann:.0}, {:.2} of the Zenoh hop; \
         per Announcement, CPU us (context switches): sending bridge {:.0} ({:.2}), \
         receiving bridge {:.0} ({:.2}), sender and Listener {:.0} ({:.2})",
        l_ann / k_ann,
        la.0,
        la.1,
        lb.0,
        lb.1,
        lends.0,
        lends.1
    );
}
