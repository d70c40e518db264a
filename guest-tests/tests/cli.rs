//! The `kbus` command-line tool (kbus-cli), driven as a user would: by
//! spawning the real binary, which `cargo xtask test` stages next to this
//! test binary in the guest's share. Every subcommand, its output and its
//! exit status; Replier processes answering `kbus call`, the synthetic
//! answers' exit statuses, Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kbus_guest_tests::*;

/// Generous bounds: the guests are emulated (TCG), 32-bit ones slowly.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);
const BINDING_LIMIT: Duration = Duration::from_secs(30);

/// The `kbus` binary next to this test binary; a loud failure without it.
fn kbus_path() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    let path = me.with_file_name("kbus");
    if !path.is_file() {
        panic!(
            "the kbus CLI is not at {} (next to this test binary). `cargo xtask test` \
             cross-builds it (package kbus-cli) and stages it in the guest's share; \
             running this test by hand needs it copied there",
            path.display()
        );
    }
    path
}

fn kbus() -> Command {
    let mut c = Command::new(kbus_path());
    c.stdin(Stdio::null());
    c
}

/// Wait for `child` at most `limit`; kill it and fail if it takes longer.
fn wait_output(mut child: Child, what: &str, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => return child.wait_with_output().expect("wait_with_output"),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait_with_output");
                panic!(
                    "{what}: still running after {limit:?}; killed. stdout: {:?} stderr: {:?}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Spawn `kbus ARGS` with stdout and stderr captured.
fn spawn(args: &[&str]) -> Child {
    kbus()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kbus {args:?}: {e}"))
}

/// Run `kbus ARGS` to its end (with `stdin` as its input).
fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = kbus();
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kbus {args:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    wait_output(child, &format!("kbus {args:?}"), PROCESS_LIMIT)
}

fn run(args: &[&str]) -> Output {
    run_with(args, None)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Check the exit status, showing everything the command printed if wrong.
#[track_caller]
fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit status {:?}, expected {code}. stdout: {:?} stderr: {:?}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Wait until process `pid` holds a binding of `name` on device 0.
fn wait_for_binding(pid: u32, name: &str) -> u32 {
    let start = Instant::now();
    loop {
        let all = ok(kbus_rustix::read_bindings(), "reading /proc/kbus/bindings");
        if let Some(b) = all
            .iter()
            .find(|b| b.device == 0 && b.pid == u64::from(pid) && b.name == name)
        {
            return b.ksock_id;
        }
        assert!(
            start.elapsed() < BINDING_LIMIT,
            "process {pid} did not bind {name} within {BINDING_LIMIT:?}: {all:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until `k` has `n` messages queued.
fn wait_for_queue(k: &Ksock, n: u32) {
    let start = Instant::now();
    while ok(k.num_messages(), "NUMMSGS") < n {
        assert!(start.elapsed() < BINDING_LIMIT, "no {n} messages queued");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn version_help_completions_manpage() {
    let out = run(&["--version"]);
    expect_code(&out, 0, "--version");
    assert!(text(&out.stdout).starts_with("kbus "), "{out:?}");
    let out = run(&["--help"]);
    expect_code(&out, 0, "--help");
    let help = text(&out.stdout);
    for word in [
        "listen", "send", "call", "reply", "bindings", "stats", "errno", "bench",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    assert!(help.contains("Exit status:"), "{help}");
    let out = run(&["call", "--help"]);
    assert!(
        text(&out.stdout).contains("$.KBUS.Replier.GoneAway"),
        "{out:?}"
    );
    let out = run(&["completions", "bash"]);
    expect_code(&out, 0, "completions bash");
    assert!(text(&out.stdout).contains("kbus"), "{out:?}");
    let out = run(&["manpage"]);
    expect_code(&out, 0, "manpage");
    assert!(text(&out.stdout).contains(".TH kbus"), "{out:?}");
    // A usage error is 2.
    expect_code(&run(&["listen", "--format", "xml"]), 2, "bad --format");
}

#[test]
fn reply_exec_cat_answers_call() {
    let name = "$.CliTest.Cat";
    let replier = spawn(&["reply", name, "--exec", "cat", "--count", "2"]);
    wait_for_binding(replier.id(), name);
    let out = run(&["call", name, "hello, Replier"]);
    expect_code(&out, 0, "call answered by reply --exec cat");
    assert_eq!(out.stdout, b"hello, Replier");
    // Binary data from stdin, through cat and back, byte for byte.
    let data: Vec<u8> = (0..=255u8).collect();
    let out = run_with(&["call", name, "-"], Some(&data));
    expect_code(&out, 0, "call with stdin data");
    assert_eq!(out.stdout, data);
    // --count 2: the Replier is done, and printed both Requests.
    let r = wait_output(replier, "reply --count 2", PROCESS_LIMIT);
    expect_code(&r, 0, "reply --count 2");
    let printed = text(&r.stdout);
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert!(
        printed.starts_with(&format!("<Request '{name}'")),
        "{printed}"
    );
    assert!(printed.contains("data=b\"hello, Replier\""), "{printed}");
}

#[test]
fn reply_echo_static_and_exec_environment() {
    let name = "$.CliTest.Echo";
    let replier = spawn(&["reply", name, "--echo", "-n", "1", "--quiet"]);
    wait_for_binding(replier.id(), name);
    let out = run(&["call", name, "--hex", "00ff10"]);
    expect_code(&out, 0, "call to --echo");
    assert_eq!(out.stdout, [0, 0xff, 0x10]);
    let r = wait_output(replier, "reply --echo", PROCESS_LIMIT);
    expect_code(&r, 0, "reply --echo -n 1");
    assert_eq!(r.stdout, b"", "--quiet prints nothing");

    let replier = spawn(&["reply", name, "--static", "6f6b", "--hex", "-n", "1"]);
    wait_for_binding(replier.id(), name);
    let out = run(&["call", name, "anything", "--format", "json"]);
    expect_code(&out, 0, "call to --static");
    let json = text(&out.stdout);
    assert!(json.starts_with("{\"kind\":\"Reply\""), "{json}");
    assert!(
        json.contains("\"data\":\"ok\",\"data_hex\":\"6f6b\""),
        "{json}"
    );
    expect_code(
        &wait_output(replier, "reply --static", PROCESS_LIMIT),
        0,
        "reply --static",
    );

    let replier = spawn(&[
        "reply",
        name,
        "-n",
        "1",
        "--exec",
        "printf '%s %s' \"$KBUS_NAME\" \"$(wc -c)\"",
    ]);
    wait_for_binding(replier.id(), name);
    let out = run(&["call", name, "12345"]);
    expect_code(&out, 0, "call to --exec with environment");
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        [name, "5"]
    );
    expect_code(
        &wait_output(replier, "reply --exec", PROCESS_LIMIT),
        0,
        "reply --exec",
    );
}

#[test]
fn call_exit_statuses() {
    // No Replier: 3, with the operation-aware text.
    let out = run(&["call", "$.CliTest.Nobody", "x"]);
    expect_code(&out, 3, "call with no Replier");
    let err = text(&out.stderr);
    assert!(
        err.contains("KBUS SEND failed") && err.contains("EADDRNOTAVAIL"),
        "{err}"
    );

    // A Replier that never answers: --timeout gives 4.
    let name = "$.CliTest.Slow";
    let r = open_rw(0);
    bind(&r, name, Role::Replier);
    let out = run(&["call", name, "--timeout", "300ms"]);
    expect_code(&out, 4, "call --timeout");
    ok(r.next_msg(), "drop the Request");

    // GoneAway (5): the Replier closes with the Request unread.
    let call = spawn(&["call", name]);
    wait_for_queue(&r, 1);
    drop(r);
    let out = wait_output(call, "call → GoneAway", PROCESS_LIMIT);
    expect_code(&out, 5, "call answered by GoneAway");
    assert!(
        text(&out.stderr).contains("$.KBUS.Replier.GoneAway"),
        "{out:?}"
    );

    // Ignored (6): the Replier read it and closed.
    let r = open_rw(0);
    bind(&r, name, Role::Replier);
    let call = spawn(&["call", name]);
    wait_for_queue(&r, 1);
    let m = recv(&r, "the Request");
    assert!(m.wants_us_to_reply(), "{m}");
    drop(r);
    expect_code(
        &wait_output(call, "call → Ignored", PROCESS_LIMIT),
        6,
        "call answered by Ignored",
    );

    // Unbound (7): the Replier unbound with it queued.
    let r = open_rw(0);
    bind(&r, name, Role::Replier);
    let call = spawn(&["call", name]);
    wait_for_queue(&r, 1);
    ok(r.unbind(name, Role::Replier), "UNBIND");
    expect_code(
        &wait_output(call, "call → Unbound", PROCESS_LIMIT),
        7,
        "call answered by Unbound",
    );
}

#[test]
fn call_stateful() {
    let name = "$.CliTest.Stateful";
    let replier = spawn(&["reply", name, "--static", "yes", "-n", "1"]);
    let id = wait_for_binding(replier.id(), name);
    // Another Ksock named: EPIPE, 8.
    let other = (id + 1000).to_string();
    let out = run(&["call", name, "--stateful", &other]);
    expect_code(&out, 8, "call --stateful to the wrong Ksock");
    assert!(text(&out.stderr).contains("EPIPE"), "{out:?}");
    let out = run(&["call", name, "--stateful", &id.to_string()]);
    expect_code(&out, 0, "call --stateful to the Replier");
    assert_eq!(out.stdout, b"yes");
    expect_code(
        &wait_output(replier, "reply", PROCESS_LIMIT),
        0,
        "reply -n 1",
    );
}

#[test]
fn listen_sees_send() {
    let name = "$.CliTest.Listen";
    let listener = spawn(&["listen", name, "--count", "2"]);
    wait_for_binding(listener.id(), name);
    let out = run(&["send", name, "first"]);
    expect_code(&out, 0, "send");
    let id = text(&out.stdout);
    assert!(
        id.starts_with("[0:") && id.ends_with("]\n"),
        "send prints the id: {id:?}"
    );
    expect_code(
        &run(&["send", name, "--urgent", "-x", "ff00"]),
        0,
        "send --urgent --hex",
    );
    let out = wait_output(listener, "listen --count 2", PROCESS_LIMIT);
    expect_code(&out, 0, "listen --count 2");
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let head = format!("<Announcement '{name}', id={}, from=", id.trim());
    assert!(
        lines[0].starts_with(&head) && lines[0].ends_with(", data=b\"first\">"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("flags=0x8 (URG), data=hex:ff00>"),
        "{lines:?}"
    );

    // JSON, hex and data formats; data from a file and from stdin.
    for (format, check) in [
        ("json", "\"data\":\"from a file\""),
        ("data", "from a file"),
        ("hex", &hex_of_data(b"from a file")),
    ] {
        let listener = spawn(&["listen", name, "-n", "1", "--format", format]);
        wait_for_binding(listener.id(), name);
        let path = std::env::temp_dir().join("kbus-cli-data");
        std::fs::write(&path, b"from a file").unwrap();
        expect_code(
            &run(&["send", name, "--file", path.to_str().unwrap()]),
            0,
            "send --file",
        );
        let out = wait_output(listener, "listen -n 1", PROCESS_LIMIT);
        expect_code(&out, 0, "listen -n 1");
        let s = text(&out.stdout);
        assert!(s.contains(check), "--format {format}: {s}");
        assert_eq!(s.lines().count(), 1, "{s}");
    }
    let k = open_ro(0);
    bind(&k, name, Role::Listener);
    expect_code(
        &run_with(&["send", name, "-"], Some(b"stdin\0data")),
        0,
        "send -",
    );
    assert_eq!(recv(&k, "the stdin message").data(), b"stdin\0data");
}

/// The data's bytes in hex as they appear in the entire message (the hex
/// format prints the whole message).
fn hex_of_data(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn listen_timeout_and_ctrl_c() {
    let name = "$.CliTest.Quiet";
    let out = run(&["listen", name, "-n", "1", "--timeout", "200ms"]);
    expect_code(&out, 4, "listen --count with nothing to see");
    assert!(text(&out.stderr).contains("timed out"), "{out:?}");
    expect_code(
        &run(&["listen", name, "--timeout", "200ms"]),
        0,
        "listen --timeout without --count",
    );

    // Ctrl-C: a clean end (status 0), the binding gone with the process.
    let listener = spawn(&["listen", name]);
    let pid = listener.id();
    wait_for_binding(pid, name);
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0, "kill -INT");
    let out = wait_output(listener, "listen after SIGINT", PROCESS_LIMIT);
    expect_code(&out, 0, "listen ended by SIGINT");
    let all = ok(kbus_rustix::read_bindings(), "bindings");
    assert!(!all.iter().any(|b| b.pid == u64::from(pid)), "{all:?}");
}

#[test]
fn listen_replier_events() {
    let r1 = open_rw(0);
    bind(&r1, "$.CliTest.Event1", Role::Replier);
    let rid = ok(r1.ksock_id(), "KSOCKID");
    let listener = spawn(&["listen", "$.CliTest.NoSuch", "-r", "-n", "2", "-o", "json"]);
    wait_for_binding(listener.id(), "$.KBUS.ReplierBindEvent");
    // It binds, then turns reporting on (which queues Event1's event).
    let start = Instant::now();
    while !ok(r1.query_report_replier_binds(), "REPORTREPLIERBINDS") {
        assert!(start.elapsed() < BINDING_LIMIT, "reporting never turned on");
        thread::sleep(Duration::from_millis(10));
    }
    let r2 = open_rw(0);
    bind(&r2, "$.CliTest.Event2", Role::Replier);
    let out = wait_output(listener, "listen --replier-events", PROCESS_LIMIT);
    expect_code(&out, 0, "listen -r -n 2");
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2, "{s}");
    assert!(
        lines[0].contains(&format!(
            "\"bind_event\":{{\"is_bind\":true,\"binder\":{rid},\"name\":\"$.CliTest.Event1\"}}"
        )),
        "the existing binding first: {s}"
    );
    assert!(lines[1].contains("\"name\":\"$.CliTest.Event2\"}"), "{s}");
    // Reporting was off before, so it is off again.
    assert!(!ok(r1.query_report_replier_binds(), "REPORTREPLIERBINDS"));
}

#[test]
fn send_flags() {
    let name = "$.CliTest.Full";
    let k = open_ro(0);
    bind(&k, name, Role::Listener);
    ok(k.set_max_messages(1), "MAXMSGS");
    expect_code(&run(&["send", name, "one"]), 0, "send to an empty queue");
    let out = run(&["send", name, "two", "--all-or-fail"]);
    expect_code(&out, 1, "--all-or-fail to a full queue");
    assert!(text(&out.stderr).contains("EBUSY"), "{out:?}");
    let out = run(&["send", name, "two", "--all-or-wait", "--timeout", "300ms"]);
    expect_code(&out, 4, "--all-or-wait, never room");
    assert!(text(&out.stderr).contains("discarded"), "{out:?}");
    // Room comes while it waits: sent.
    let sender = spawn(&["send", name, "three", "--all-or-wait", "--timeout", "30s"]);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(recv(&k, "the first").data(), b"one");
    let out = wait_output(sender, "send --all-or-wait", PROCESS_LIMIT);
    expect_code(&out, 0, "--all-or-wait with room later");
    let m = recv(&k, "the waiting one");
    assert_eq!(m.data(), b"three");
    assert_eq!(format!("{}\n", m.id()), text(&out.stdout));
    // A bad name: the operation-aware text.
    let out = run(&["send", "$.Wild.*", "x"]);
    expect_code(&out, 1, "send to a wildcard");
    assert!(text(&out.stderr).contains("EBADMSG"), "{out:?}");
}

#[test]
fn bindings_and_stats() {
    let name = "$.CliTest.Bindings";
    let k = open_rw(0);
    bind(&k, name, Role::Replier);
    let id = ok(k.ksock_id(), "KSOCKID");
    // The PID column is the opener's task (this test's thread), so the
    // row is matched on everything else.
    let out = run(&["bindings"]);
    expect_code(&out, 0, "bindings");
    let s = text(&out.stdout);
    assert!(s.starts_with("DEVICE "), "{s}");
    let id_s = id.to_string();
    assert!(
        s.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 5 && f[0] == "0" && f[1] == id_s && f[3] == "Replier" && f[4] == name
        }),
        "no row for Ksock {id} in {s}"
    );
    let out = run(&["bindings", "--json"]);
    expect_code(&out, 0, "bindings --json");
    let s = text(&out.stdout);
    assert!(
        s.starts_with('[') && s.contains(&format!("{{\"device\":0,\"ksock_id\":{id},\"pid\":")),
        "{s}"
    );
    assert!(
        s.contains(&format!("\"role\":\"Replier\",\"name\":\"{name}\"}}")),
        "{s}"
    );
    let out = run(&["--bus", "1", "bindings"]);
    assert!(!text(&out.stdout).contains(name), "{out:?}");

    let out = run(&["stats"]);
    expect_code(&out, 0, "stats");
    let s = text(&out.stdout);
    assert!(s.starts_with("/dev/kbus0\n"), "{s}");
    assert!(s.contains("max message size"), "{s}");
    assert!(s.contains("\ndev  0: "), "{s}");
    assert!(s.contains(&format!("    ksock {id} ")), "our Ksock: {s}");
    assert!(!s.contains("dev  1:"), "only device 0: {s}");
    let out = run(&["stats", "--all"]);
    expect_code(&out, 0, "stats --all");
    let s = text(&out.stdout);
    assert!(s.contains("dev  1:") && s.contains("dev  2:"), "{s}");
    let out = run(&["--device", "/dev/kbus2", "stats"]);
    expect_code(&out, 0, "stats --device");
    assert!(text(&out.stdout).contains("\ndev  2: "), "{out:?}");
    let out = run(&["--bus", "77", "stats"]);
    expect_code(&out, 1, "stats on a device that does not exist");
    let err = text(&out.stderr);
    assert!(
        err.contains("/dev/kbus77") && err.contains("ENOENT"),
        "{err}"
    );
}

#[test]
fn errno_explains() {
    let out = run(&["errno", "EADDRINUSE"]);
    expect_code(&out, 0, "errno EADDRINUSE");
    let s = text(&out.stdout);
    assert!(s.starts_with("EADDRINUSE ("), "{s}");
    assert!(s.contains("BIND") && s.contains("already bound"), "{s}");
    // By this arch's number (they differ on MIPS).
    let n = Errno::ADDRNOTAVAIL.raw_os_error().to_string();
    let out = run(&["errno", &n]);
    expect_code(&out, 0, "errno by number");
    let s = text(&out.stdout);
    assert!(s.starts_with(&format!("EADDRNOTAVAIL ({n})")), "{s}");
    assert!(s.contains("SEND"), "{s}");
    let out = run(&["errno"]);
    expect_code(&out, 0, "errno (all)");
    assert!(text(&out.stdout).contains("ECONNREFUSED ("), "{out:?}");
    expect_code(&run(&["errno", "EBOGUS"]), 2, "errno EBOGUS");
}

#[test]
fn bench_runs() {
    let out = run(&["bench", "--duration", "200ms", "--size", "16"]);
    expect_code(&out, 0, "bench");
    let s = text(&out.stdout);
    assert!(s.contains("send-read") && s.contains("req-reply"), "{s}");
    assert!(s.contains("/s"), "{s}");
    // Its bindings are gone with it.
    let all = ok(kbus_rustix::read_bindings(), "bindings");
    assert!(!all.iter().any(|b| b.name.contains("KbusCli")), "{all:?}");
}
