//! Allocation-failure injection (issue 8): only on the rig's debug kernel
//! (`cargo xtask test --arch x86_64-debug`; `cargo xtask test` runs it).
//!
//! One thread, and only that thread, gets failures: failslab and
//! fail_page_alloc with `task-filter` and `/proc/thread-self/make-it-fail`.
//! It drives every kind of operation (open, bind/unbind as Listener and
//! Replier, REPLIER, Announcements and Requests sent pointy, entire and by
//! write(), NEXTMSG, read, Replies, REPORTREPLIERBINDS, close with queued
//! Requests) in a loop and checks that:
//!
//! * every failed operation fails with an errno the spec allows for an
//!   allocation failure in that operation (see [`allowed`]), and a failed
//!   operation changed nothing that can be observed (a failed SEND delivered
//!   nothing, a failed NEXTMSG popped nothing, a failed UNBIND kept the
//!   binding);
//! * a bystander thread without injection, on the same device, keeps
//!   sending, receiving, requesting and replying with exact contents, and
//!   receives exactly the faulty thread's successful Announcements, in order;
//! * at the end `/proc/kbus/stats` shows no Ksock and no set-aside event, and
//!   kmemleak (scanned twice) reports no object allocated by kbus.
//!
//! After `rmmod kbus` the rig's init scans kmemleak again (any report fails
//! the run) and checks dmesg for the module's leak-counter WARN, KASAN,
//! lockdep and UBSAN reports.
//!
//! 6.1's `FAULT_INJECTION_STACKTRACE_FILTER` (`require-start`/`require-end`)
//! is not available on x86_64, so failures are limited by task: the faulty
//! thread touches its buffers before it turns injection on and then makes
//! system calls on KBUS only, where (besides kbus.ko) only `open()`'s own
//! `struct file`/path allocations can fail, and those give ENOMEM too.
//! `ignore-gfp-highmem` keeps user-page faults out of fail_page_alloc.

use kbus_guest_tests::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEBUGFS: &str = "/sys/kernel/debug";
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// Rounds of the faulty loop.
const ROUNDS: u32 = 150;
/// Percent of allocations that fail in the faulty thread.
const PERCENT: u32 = 10;

const PUBLIC: &str = "$.Faults.Public";
const SVC: &str = "$.Faults.Svc";
const SVC2: &str = "$.Faults.Svc2";
const ECHO: &str = "$.Faults.Echo";
const BIND_EVENT: &str = "$.KBUS.ReplierBindEvent";
const BY_NAME: &str = "$.Faults.Bystander";
const BY_SVC: &str = "$.Faults.BystanderSvc";
const DEV: u32 = 0;

/// The operations the faulty thread makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum OpKind {
    Open,
    Bind,
    Unbind,
    Replier,
    SendPointy,
    SendEntire,
    Write,
    SendWritten,
    SendRequest,
    SendReply,
    NextMsg,
    Read,
    ReportBinds,
}

/// Errnos an injected allocation failure may give, per operation:
///
/// * ENOMEM is the spec's "allocation failure" (§3.13) for every operation
///   that allocates: open (the Ksock), BIND (the binding, §3.11), UNBIND and
///   REPLIER (they copy the name in; §3.13's general rule, the §3.11 lists
///   name the others), SEND and write() (the message, its queue entries, the
///   outstanding-request slot), NEXTMSG (the unreplied-to entry of a Request
///   to answer), REPORTREPLIERBINDS (the events it queues).
/// * EFAULT: §2.3 gives it for open when the outstanding-request table
///   cannot be allocated, and §3.13 for "internal allocation failure in a
///   few paths", which §3.11 lists for SEND only.
/// * read() copies out a message already queued: it allocates nothing and
///   must never fail here.
fn allowed(op: OpKind) -> &'static [Errno] {
    match op {
        OpKind::Open => &[Errno::NOMEM, Errno::FAULT],
        OpKind::SendPointy
        | OpKind::SendEntire
        | OpKind::SendWritten
        | OpKind::SendRequest
        | OpKind::SendReply => &[Errno::NOMEM, Errno::FAULT],
        OpKind::Bind
        | OpKind::Unbind
        | OpKind::Replier
        | OpKind::Write
        | OpKind::NextMsg
        | OpKind::ReportBinds => &[Errno::NOMEM],
        OpKind::Read => &[],
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ok: u32,
    failed: u32,
}

/// What the faulty thread saw.
#[derive(Default)]
struct Faulty {
    tally: BTreeMap<OpKind, Tally>,
    problems: Vec<String>,
    /// Data of the Announcements to PUBLIC whose SEND succeeded, in order.
    public_sent: Vec<Vec<u8>>,
    /// Data of those whose SEND failed.
    public_failed: Vec<Vec<u8>>,
}

impl Faulty {
    /// Record the outcome of `op`; an errno it may not give is a problem.
    fn check<T>(&mut self, op: OpKind, what: &str, r: Result<T, Error>) -> Option<T> {
        let t = self.tally.entry(op).or_default();
        match r {
            Ok(v) => {
                t.ok += 1;
                Some(v)
            }
            Err(e) => {
                t.failed += 1;
                match e.errno() {
                    Some(errno) if allowed(op).contains(&errno) => {}
                    _ => self
                        .problems
                        .push(format!("{what} ({op:?}): unexpected failure: {e}")),
                }
                None
            }
        }
    }

    /// Retry `f` until it succeeds (each failure checked as in [`check`]).
    fn retry<T>(
        &mut self,
        op: OpKind,
        what: &str,
        mut f: impl FnMut() -> Result<T, Error>,
    ) -> Option<T> {
        for _ in 0..1000 {
            let r = f();
            let failed_badly =
                matches!(&r, Err(e) if !e.errno().is_some_and(|n| allowed(op).contains(&n)));
            if let Some(v) = self.check(op, what, r) {
                return Some(v);
            }
            if failed_badly {
                return None;
            }
        }
        self.problems
            .push(format!("{what} ({op:?}): still failing after 1000 tries"));
        None
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }
}

fn write_attr(path: &str, value: &str) {
    if let Err(e) = fs::write(path, value) {
        panic!("writing {value:?} to {path}: {e}");
    }
}

fn read_attr(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
        .trim()
        .to_string()
}

/// Injection settings for both mechanisms (off until a thread says
/// make-it-fail). Returns the `times` budget given.
fn configure(percent: u32) -> i64 {
    let budget: i64 = 1_000_000;
    for fa in ["failslab", "fail_page_alloc"] {
        let d = format!("{DEBUGFS}/{fa}");
        write_attr(&format!("{d}/task-filter"), "Y");
        write_attr(&format!("{d}/probability"), &percent.to_string());
        write_attr(&format!("{d}/interval"), "1");
        write_attr(&format!("{d}/times"), &budget.to_string());
        write_attr(&format!("{d}/space"), "0");
        // No "FAULT_INJECTION: forcing a failure" with a stack dump: the
        // rig's dmesg check rightly fails on any Call Trace.
        write_attr(&format!("{d}/verbose"), "0");
        // GFP_KERNEL allocations may sleep; they are the ones kbus makes.
        write_attr(&format!("{d}/ignore-gfp-wait"), "N");
    }
    // User pages (GFP_HIGHUSER*) never fail, so the thread's own page
    // faults are not affected; kernel pages of any order are.
    write_attr(
        &format!("{DEBUGFS}/fail_page_alloc/ignore-gfp-highmem"),
        "Y",
    );
    write_attr(&format!("{DEBUGFS}/fail_page_alloc/min-order"), "0");
    budget
}

fn injected(budget: i64) -> i64 {
    ["failslab", "fail_page_alloc"]
        .iter()
        .map(|fa| {
            let left: i64 = read_attr(&format!("{DEBUGFS}/{fa}/times"))
                .parse()
                .expect("times is a number");
            budget - left
        })
        .sum()
}

fn switch_off() {
    for fa in ["failslab", "fail_page_alloc"] {
        write_attr(&format!("{DEBUGFS}/{fa}/probability"), "0");
    }
}

/// Turn injection on or off for the calling thread only. Turning it off
/// runs with injection still on, so its own open()/write() may fail with
/// ENOMEM: retry.
fn make_it_fail(on: bool) {
    let path = "/proc/thread-self/make-it-fail";
    let value = if on { "1" } else { "0" };
    for _ in 0..1000 {
        match fs::write(path, value) {
            Ok(()) => return,
            Err(e) if e.raw_os_error() == Some(Errno::NOMEM.raw_os_error()) => continue,
            Err(e) => panic!("writing {value:?} to {path}: {e}"),
        }
    }
    panic!("writing {value:?} to {path}: ENOMEM 1000 times");
}

/// The debug kernel's files, or a loud failure.
fn require_debug_kernel() {
    let mut missing = Vec::new();
    for f in [
        format!("{DEBUGFS}/failslab/probability"),
        format!("{DEBUGFS}/failslab/task-filter"),
        format!("{DEBUGFS}/fail_page_alloc/probability"),
        "/proc/thread-self/make-it-fail".to_string(),
        KMEMLEAK.to_string(),
    ] {
        if fs::metadata(&f).is_err() {
            missing.push(f);
        }
    }
    assert!(
        missing.is_empty(),
        "the fault-injection tests need the rig's debug kernel (FAILSLAB, FAIL_PAGE_ALLOC, \
         FAULT_INJECTION_DEBUG_FS, DEBUG_KMEMLEAK, debugfs mounted): missing {missing:?}. \
         Run them with `cargo xtask test --arch x86_64-debug`; the other rig kernels never \
         include this binary."
    );
}

/// `/proc/kbus/stats` must show no Ksock and no set-aside event.
fn assert_stats_clean(when: &str) {
    let text = read_stats();
    let dirty = text.lines().any(|l| {
        l.starts_with("    ksock") || (l.starts_with("dev ") && !l.contains("unsent unbindings 0"))
    });
    assert!(!dirty, "/proc/kbus/stats {when} is not clean:\n{text}");
}

/// kmemleak entries whose allocation stack names kbus (module loaded, so its
/// symbols resolve). Everything else is checked by the rig after rmmod.
fn kmemleak_kbus() -> String {
    // Objects younger than 5 s are not reported.
    std::thread::sleep(Duration::from_secs(6));
    for _ in 0..2 {
        write_attr(KMEMLEAK, "scan");
    }
    let report = fs::read_to_string(KMEMLEAK).expect("reading kmemleak");
    let mut ours = String::new();
    for entry in report.split("unreferenced object").skip(1) {
        if entry.contains("kbus") {
            let _ = write!(ours, "unreferenced object{entry}");
        }
    }
    ours
}

fn public_data(round: u32, kind: &str) -> Vec<u8> {
    // Sizes up to 20000 bytes: kmalloc_large and vmalloc paths too.
    let len = match round % 4 {
        0 => 0,
        1 => 64,
        2 => 3000,
        _ => 20000,
    };
    let mut d = format!("pub-{round}-{kind}-").into_bytes();
    d.extend((0..len).map(|i| (i as u8) ^ (round as u8)));
    d
}

/// One round of the faulty loop; the thread has make-it-fail set.
fn faulty_round(f: &mut Faulty, round: u32, buf: &mut [u8]) {
    let Some(a) = f.check(OpKind::Open, "open A", Ksock::open(DEV, Mode::ReadWrite)) else {
        return;
    };
    let Some(b) = f.check(OpKind::Open, "open B", Ksock::open(DEV, Mode::ReadWrite)) else {
        return;
    };
    // Listener bind and unbind.
    if f.check(OpKind::Bind, "A bind ECHO", a.bind(ECHO, Role::Listener))
        .is_some()
        && f.check(
            OpKind::Unbind,
            "A unbind ECHO",
            a.unbind(ECHO, Role::Listener),
        )
        .is_none()
    {
        // A failed UNBIND keeps the binding: a second UNBIND (retried
        // through injected failures) must find it.
        f.retry(OpKind::Unbind, "A unbind ECHO again", || {
            a.unbind(ECHO, Role::Listener)
        });
    }

    // Announcements to PUBLIC (the bystander listens), three ways.
    for kind in ["pointy", "entire", "write"] {
        let data = public_data(round, kind);
        let repr = MessageRepr::announcement(PUBLIC, &data);
        let r = match kind {
            "pointy" => f.check(OpKind::SendPointy, "A send pointy", a.send_msg(&repr)),
            "entire" => {
                let n = repr.emit(buf).expect("emit");
                f.check(
                    OpKind::SendEntire,
                    "A send entire",
                    a.send_entire(&buf[..n]),
                )
            }
            _ => {
                let n = repr.emit(buf).expect("emit");
                // write() in pieces, then SEND.
                let mut off = 0;
                let mut ok = true;
                while off < n && ok {
                    let end = (off + 1000).min(n);
                    match f.check(OpKind::Write, "A write", a.write_data(&buf[off..end])) {
                        Some(w) => off += w,
                        None => ok = false,
                    }
                }
                if ok {
                    f.check(OpKind::SendWritten, "A send written", a.send())
                } else {
                    None
                }
            }
        };
        if r.is_some() {
            f.public_sent.push(data);
        } else {
            f.public_failed.push(data);
            // Leave the sending state, whatever the failure left behind.
            if let Err(e) = a.discard() {
                f.problem(format!("DISCARD after a failed send: {e}"));
            }
        }
    }

    // Request -> Reply, each step retried through injected failures.
    if f.retry(OpKind::Bind, "B bind SVC", || b.bind(SVC, Role::Replier))
        .is_none()
    {
        return;
    }
    let rdata = format!("req-{round}").into_bytes();
    let before = b.num_messages().unwrap_or(u32::MAX);
    let mut tries = 0;
    let req_id = loop {
        tries += 1;
        if tries > 1000 {
            f.problem("A request: still failing after 1000 tries".into());
            break None;
        }
        match a.send_msg(&MessageRepr::request(SVC, &rdata)) {
            Ok(id) => {
                f.check::<()>(OpKind::SendRequest, "A request", Ok(()));
                break Some(id);
            }
            Err(e) => {
                let _ = a.discard();
                let now = b.num_messages().unwrap_or(u32::MAX);
                if now != before {
                    f.problem(format!(
                        "a failed Request SEND ({e}) changed the Replier's queue: {before} -> {now}"
                    ));
                }
                if f.check::<()>(OpKind::SendRequest, "A request", Err(e))
                    .is_none()
                    && f.problems.len() > 50
                {
                    break None;
                }
            }
        }
    };
    let Some(req_id) = req_id else { return };
    let mut tries = 0;
    let req = loop {
        tries += 1;
        if tries > 1000 {
            f.problem("B NEXTMSG: still failing after 1000 tries".into());
            break None;
        }
        let queued = b.num_messages().unwrap_or(0);
        match b.read_next_msg_owned() {
            Ok(Some(m)) => {
                f.check::<()>(OpKind::NextMsg, "B NEXTMSG", Ok(()));
                break Some(m);
            }
            Ok(None) => {
                f.problem("the Request is not in the Replier's queue".into());
                break None;
            }
            Err(e) => {
                let now = b.num_messages().unwrap_or(u32::MAX);
                if now != queued {
                    f.problem(format!(
                        "a failed NEXTMSG ({e}) lost a message: queue {queued} -> {now}"
                    ));
                    break None;
                }
                if f.check::<()>(OpKind::NextMsg, "B NEXTMSG", Err(e))
                    .is_none()
                    && f.problems.len() > 50
                {
                    break None;
                }
            }
        }
    };
    let Some(req) = req else { return };
    if req.id() != req_id || req.data() != rdata.as_slice() || !req.wants_us_to_reply() {
        f.problem(format!("Replier got a wrong Request: {req}"));
        return;
    }
    let reply_data = format!("reply-{round}").into_bytes();
    let reply = MessageRepr::reply_to(&req, &reply_data).expect("reply_to");
    if f.retry(OpKind::SendReply, "B reply", || {
        let r = b.send_msg(&reply);
        if r.is_err() {
            let _ = b.discard();
        }
        r
    })
    .is_none()
    {
        return;
    }
    match f.retry(OpKind::NextMsg, "A read reply", || a.read_next_msg_owned()) {
        Some(Some(m)) if m.in_reply_to() == req_id && m.data() == reply_data.as_slice() => {}
        other => f.problem(format!("A expected the Reply to {req_id}, got {other:?}")),
    }

    // REPLIER (copies the name in), then Replier bind events.
    match f.retry(OpKind::Replier, "A REPLIER SVC", || a.find_replier(SVC)) {
        Some(Some(id)) if Some(id) == b.ksock_id().ok() => {}
        other => f.problem(format!("REPLIER {SVC}: {other:?}")),
    }
    if f.retry(OpKind::Bind, "A bind bind events", || {
        a.bind(BIND_EVENT, Role::Listener)
    })
    .is_some()
    {
        let report = f.check(
            OpKind::ReportBinds,
            "A REPORTREPLIERBINDS",
            a.report_replier_binds(true),
        );
        if report.is_some() {
            let _off = ReportOff(&a);
            if f.check(OpKind::Bind, "B bind SVC2", b.bind(SVC2, Role::Replier))
                .is_some()
                && f.check(
                    OpKind::Unbind,
                    "B unbind SVC2",
                    b.unbind(SVC2, Role::Replier),
                )
                .is_none()
            {
                // Not unbound: still the Replier. (REPLIER copies the name
                // in, so it may fail with ENOMEM itself: retried.)
                let found = f.retry(OpKind::Replier, "A REPLIER SVC2", || a.find_replier(SVC2));
                match b.ksock_id() {
                    Ok(id) if found == Some(Some(id)) => {}
                    Ok(id) => f.problem(format!(
                        "after a failed UNBIND, {SVC2} is no longer bound to Ksock {id}: {found:?}"
                    )),
                    Err(e) => f.problem(format!("KSOCKID: {e}")),
                }
            }
        }
    }
    // Drain A (bind events, maybe the synthetic ones later): every message
    // read in full.
    loop {
        match a.read_next_msg(buf) {
            Ok(Some(_)) => f.check::<()>(OpKind::Read, "A drain", Ok(())),
            Ok(None) => break,
            Err(e) if e.errno() == Some(Errno::NOMEM) => {
                f.check::<()>(OpKind::NextMsg, "A drain NEXTMSG", Err(e))
            }
            Err(e) => {
                f.check::<()>(OpKind::Read, "A drain", Err(e));
                break;
            }
        };
    }

    // Close B with unread Requests queued: A gets GoneAway for each (or,
    // when that allocation fails, loses it with a warning, README decision
    // 10) and its outstanding entries go away either way (checked at the end
    // through /proc/kbus/stats, once everything is closed).
    for i in 0..3 {
        let d = format!("queued-{round}-{i}").into_bytes();
        let r = a.send_msg(&MessageRepr::request(SVC, &d));
        if r.is_err() {
            let _ = a.discard();
        }
        f.check(OpKind::SendRequest, "A request to be dropped", r);
    }
    drop(b);
    loop {
        match a.read_next_msg(buf) {
            Ok(Some(m)) => {
                if !m.name().starts_with("$.KBUS.") {
                    f.problem(format!("A got {m} after B closed"));
                }
            }
            Ok(None) => break,
            Err(e) if e.errno() == Some(Errno::NOMEM) => {
                f.check::<()>(OpKind::NextMsg, "A NEXTMSG GoneAway", Err(e));
            }
            Err(e) => {
                f.check::<()>(OpKind::Read, "A read GoneAway", Err(e));
                break;
            }
        }
    }
    drop(a);
}

/// What the bystander thread saw.
#[derive(Default)]
struct Bystander {
    exchanges: u32,
    public_seen: Vec<Vec<u8>>,
    problems: Vec<String>,
}

/// Sends to itself through another Ksock, asks and answers its own
/// Requests, and collects the faulty thread's PUBLIC Announcements, until
/// `stop`; then drains up to a final marker.
fn bystander(stop: Arc<AtomicBool>, ready: Arc<AtomicBool>) -> Bystander {
    let mut by = Bystander::default();
    let tx = open_rw(DEV);
    let rx = open_rw(DEV);
    ok(rx.set_max_messages(10_000), "MAXMSGS");
    ok(tx.set_max_messages(10_000), "MAXMSGS");
    bind(&rx, BY_NAME, Role::Listener);
    bind(&rx, PUBLIC, Role::Listener);
    bind(&rx, BY_SVC, Role::Replier);
    ready.store(true, Ordering::SeqCst);
    let mut n: u32 = 0;
    let mut expect_next: u32 = 0;
    let handle = |by: &mut Bystander, m: Msg, expect_next: &mut u32| -> bool {
        match m.name().to_str().unwrap_or("") {
            PUBLIC => by.public_seen.push(m.data().to_vec()),
            BY_NAME => {
                let want = format!("by-{expect_next}").into_bytes();
                if m.data() == b"end" {
                    return true;
                }
                if m.data() != want.as_slice() {
                    by.problems.push(format!(
                        "bystander: expected {:?}, got {m}",
                        String::from_utf8_lossy(&want)
                    ));
                }
                *expect_next += 1;
            }
            BY_SVC => {
                let data = [m.data(), b"-answered"].concat();
                match MessageRepr::reply_to(&m, &data) {
                    Ok(r) => {
                        if let Err(e) = rx.send_msg(&r) {
                            by.problems.push(format!("bystander reply: {e}"));
                        }
                    }
                    Err(e) => by
                        .problems
                        .push(format!("bystander got a bad Request {m}: {e}")),
                }
            }
            other => by.problems.push(format!("bystander rx got {other}: {m}")),
        }
        false
    };
    while !stop.load(Ordering::SeqCst) {
        let data = format!("by-{n}").into_bytes();
        if let Err(e) = tx.send_msg(&MessageRepr::announcement(BY_NAME, &data)) {
            by.problems.push(format!("bystander send {n}: {e}"));
            break;
        }
        n += 1;
        let q = format!("q-{n}").into_bytes();
        let qid = match tx.send_msg(&MessageRepr::request(BY_SVC, &q)) {
            Ok(id) => id,
            Err(e) => {
                by.problems.push(format!("bystander request {n}: {e}"));
                break;
            }
        };
        // rx answers; then tx reads the Reply.
        loop {
            match rx.read_next_msg_owned() {
                Ok(Some(m)) => {
                    let is_req = m.name() == BY_SVC;
                    handle(&mut by, m, &mut expect_next);
                    if is_req {
                        break;
                    }
                }
                Ok(None) => {
                    by.problems
                        .push("bystander: its Request never arrived".into());
                    break;
                }
                Err(e) => {
                    by.problems.push(format!("bystander rx: {e}"));
                    break;
                }
            }
        }
        match tx.read_next_msg_owned() {
            Ok(Some(m))
                if m.in_reply_to() == qid && m.data() == [&q[..], b"-answered"].concat() =>
            {
                by.exchanges += 1
            }
            other => by
                .problems
                .push(format!("bystander expected the Reply to {qid}: {other:?}")),
        }
        if !by.problems.is_empty() {
            break;
        }
    }
    // Everything the faulty thread sent is queued before this marker.
    if let Err(e) = tx.send_msg(&MessageRepr::announcement(BY_NAME, b"end")) {
        by.problems.push(format!("bystander end marker: {e}"));
        return by;
    }
    loop {
        match rx.read_next_msg_owned() {
            Ok(Some(m)) => {
                if handle(&mut by, m, &mut expect_next) {
                    break;
                }
            }
            Ok(None) => {
                by.problems
                    .push("bystander: the end marker never arrived".into());
                break;
            }
            Err(e) => {
                by.problems.push(format!("bystander drain: {e}"));
                break;
            }
        }
    }
    if expect_next != n {
        by.problems.push(format!(
            "bystander: sent {n} to itself, received {expect_next}"
        ));
    }
    by
}

#[test]
fn allocation_failures_are_enomem_leak_nothing_and_spare_bystanders() {
    require_debug_kernel();
    assert_stats_clean("before the test");
    let before = kmemleak_kbus();
    assert!(before.is_empty(), "kmemleak before the test:\n{before}");

    let budget = configure(PERCENT);
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    let by = {
        let (stop, ready) = (stop.clone(), ready.clone());
        std::thread::spawn(move || bystander(stop, ready))
    };
    while !ready.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let faulty = Arc::new(Mutex::new(Faulty::default()));
    let start = Instant::now();
    let worker = {
        let faulty = faulty.clone();
        std::thread::spawn(move || {
            let mut f = Faulty {
                public_sent: Vec::with_capacity(4 * ROUNDS as usize),
                public_failed: Vec::with_capacity(4 * ROUNDS as usize),
                problems: Vec::with_capacity(1024),
                ..Faulty::default()
            };
            let mut buf = vec![0u8; 64 * 1024];
            buf.fill(1); // touched before injection starts
            make_it_fail(true);
            for round in 0..ROUNDS {
                faulty_round(&mut f, round, &mut buf);
                if f.problems.len() > 50 {
                    break;
                }
            }
            make_it_fail(false);
            *faulty.lock().unwrap() = f;
        })
    };
    let worker_result = worker.join();
    let injected_count = injected(budget);
    switch_off();
    stop.store(true, Ordering::SeqCst);
    let by = by.join().expect("bystander thread panicked");
    worker_result.expect("faulty thread panicked");
    let f = std::mem::take(&mut *faulty.lock().unwrap());
    // REPORTREPLIERBINDS is device-wide: make sure no round left it on.
    ok(
        open_rw(DEV).report_replier_binds(false),
        "REPORTREPLIERBINDS off",
    );

    let mut report = format!(
        "{ROUNDS} rounds at {PERCENT}% in {:.1}s, {injected_count} failures injected; \
         bystander: {} exchanges, {} PUBLIC received\n",
        start.elapsed().as_secs_f64(),
        by.exchanges,
        by.public_seen.len()
    );
    for (op, t) in &f.tally {
        let _ = writeln!(report, "  {op:?}: {} ok, {} failed", t.ok, t.failed);
    }
    // Straight to fd 2, so the rig log shows it even when the test passes
    // (libtest captures eprint!).
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("faults: {report}").as_bytes(),
    );

    let mut problems = f.problems.clone();
    problems.extend(by.problems.iter().cloned());
    if by.public_seen != f.public_sent {
        let lost: Vec<String> = f
            .public_sent
            .iter()
            .filter(|d| !by.public_seen.contains(d))
            .map(|d| String::from_utf8_lossy(&d[..d.len().min(20)]).into_owned())
            .take(5)
            .collect();
        let ghosts: Vec<String> = by
            .public_seen
            .iter()
            .filter(|d| f.public_failed.contains(d))
            .map(|d| String::from_utf8_lossy(&d[..d.len().min(20)]).into_owned())
            .take(5)
            .collect();
        problems.push(format!(
            "the bystander got {} PUBLIC Announcements, {} were sent successfully \
             (lost: {lost:?}; delivered although SEND failed: {ghosts:?}; or out of order)",
            by.public_seen.len(),
            f.public_sent.len()
        ));
    }
    if injected_count == 0 {
        problems.push("no failure was injected: the test proved nothing".into());
    }
    // Operations that must allocate in any design: opening a Ksock, binding,
    // sending a message. Each must have met injected failures and successes.
    for op in [OpKind::Open, OpKind::Bind, OpKind::SendPointy] {
        let t = f.tally.get(&op).copied().unwrap_or_default();
        if t.failed == 0 || t.ok == 0 {
            problems.push(format!(
                "{op:?}: {} ok and {} failed; expected some of both",
                t.ok, t.failed
            ));
        }
    }
    if by.exchanges == 0 {
        problems.push("the bystander made no exchange while failures were injected".into());
    }
    assert!(
        problems.is_empty(),
        "{report}{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );

    assert_stats_clean("after every Ksock closed");
    let leaks = kmemleak_kbus();
    assert!(leaks.is_empty(), "kmemleak found kbus objects:\n{leaks}");
}
