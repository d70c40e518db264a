//! Spec §14.6: `/proc/kbus/bindings` shows each binder's PID as seen from
//! the reader's PID namespace, and 0 where the binder is not visible there.
//! Spec §14.7: a `read()` that faults after copying some bytes returns the
//! count copied, and the next read continues from there.

mod abuse_common;

use std::time::Duration;

use abuse_common::*;
use kbus_guest_tests::*;
use kbus_rustix::{parse_bindings, read_bindings_text};

const T: Duration = Duration::from_secs(20);
const OUTER: &str = "$.Abuse.Ns.Outer";
const INNER: &str = "$.Abuse.Ns.Inner";

/// The PID column of the one binding named `name` on device 0.
#[track_caller]
fn pid_of(text: &str, name: &str) -> u64 {
    let found: Vec<u64> = parse_bindings(text)
        .map(|b| b.expect("a well-formed bindings line"))
        .filter(|b| b.device == 0 && b.name == name)
        .map(|b| b.pid)
        .collect();
    assert_eq!(found.len(), 1, "one binding {name} in:\n{text}");
    found[0]
}

#[test]
fn bindings_show_pids_from_the_readers_pid_namespace() {
    let outer = open_rw(0);
    bind(&outer, OUTER, Role::Listener);
    // SAFETY: no arguments.
    let opener_tid = unsafe { libc::gettid() };

    // A root child in a new PID (and mount) namespace; its own child is
    // pid 1 there and mounts a /proc of that namespace.
    let mut ns = fork_as("pid namespace parent", None, |ch| {
        // SAFETY: unshare and mount with valid C strings or nulls.
        unsafe {
            assert_eq!(
                libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS),
                0,
                "unshare(CLONE_NEWPID | CLONE_NEWNS): {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0,
                "making / private: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut inner_ch = ch.try_clone();
        // SAFETY: as in fork_as; the child runs the closure below and
        // `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: mount with valid C strings.
                let r = unsafe {
                    libc::mount(
                        c"proc".as_ptr(),
                        c"/proc".as_ptr(),
                        c"proc".as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                };
                assert_eq!(r, 0, "mount proc: {}", std::io::Error::last_os_error());
                let k = open_rw(0);
                bind(&k, INNER, Role::Listener);
                let text = ok(read_bindings_text(), "reading /proc/kbus/bindings");
                // SAFETY: no arguments.
                let me = unsafe { libc::getpid() };
                inner_ch.say(&format!(
                    "SEES {} {} {me}",
                    pid_of(&text, OUTER),
                    pid_of(&text, INNER)
                ));
                inner_ch.expect("EXIT", T);
            }));
            let code = match r {
                Ok(()) => 0,
                Err(p) => {
                    let msg = panic_message(&*p).replace('\n', "\\n");
                    inner_ch.say(&format!("PANIC {msg}"));
                    101
                }
            };
            // SAFETY: ends the grandchild.
            unsafe { libc::_exit(code) };
        }
        ch.say(&format!("INNER {pid}"));
        let mut st = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
        assert_eq!(st, 0, "the namespace's pid 1: {}", describe_status(st));
    });
    // The namespace's init says INNER after its fork, and the grandchild
    // says SEES on the same socket: either may come first.
    let (mut inner, mut seen) = (None, None);
    for _ in 0..2 {
        let line = ns.chan.hear(T);
        if let Some(pid) = line.strip_prefix("INNER ") {
            inner = Some(pid.parse::<u64>().expect("INNER <pid>"));
        } else if let Some(rest) = line.strip_prefix("SEES ") {
            seen = Some(rest.to_string());
        } else {
            panic!("expected INNER or SEES from the pid namespace, got {line:?}");
        }
    }
    let inner_global = inner.expect("INNER from the pid namespace's init");
    let sees = seen.expect("SEES from the pid namespace's grandchild");
    let text = ok(read_bindings_text(), "reading /proc/kbus/bindings");
    ns.chan.say("EXIT");
    ns.finish(T);

    assert_eq!(
        sees, "0 1 1",
        "the view from inside the namespace (OUTER, INNER, own pid): a binder outside \
         is not visible (0), its own binding shows its namespace pid (spec §14.6)"
    );
    // The module records the opening task's pid: the test thread's id
    // (kernel `current->pid`) or, for a module that records the thread
    // group, the process id. Either is the binder as root sees it.
    let root_view = pid_of(&text, OUTER);
    assert!(
        root_view == u64::from(std::process::id()) || root_view == opener_tid as u64,
        "root's view of its own binding: {root_view}, expected pid {} or tid {opener_tid}",
        std::process::id()
    );
    assert_eq!(
        pid_of(&text, INNER),
        inner_global,
        "root's view of the binding made inside the namespace: the global pid"
    );
}

#[test]
fn a_read_that_faults_midway_returns_the_bytes_copied() {
    const NAME: &str = "$.Abuse.Partial";
    let page = page_size();
    let l1 = open_ro(0);
    let l2 = open_ro(0);
    let s = open_rw(0);
    bind(&l1, NAME, Role::Listener);
    bind(&l2, NAME, Role::Listener);
    let data: Vec<u8> = (0..3 * page).map(|i| (i % 251) as u8).collect();
    send(&s, &MessageRepr::announcement(NAME, &data));

    // The same message (same id) read whole by l1 ...
    let len = ok(l1.next_msg(), "NEXTMSG").expect("a message");
    let mut full = vec![0u8; len];
    assert_eq!(ok(l1.read_data(&mut full), "read"), len);
    // ... and by l2 into a buffer whose second page is inaccessible.
    assert_eq!(ok(l2.next_msg(), "NEXTMSG"), Some(len));
    assert!(len > 2 * page);
    let base = map_anon(2 * page);
    // SAFETY: changes the protection of the second page of our own mapping.
    let r = unsafe { libc::mprotect((base + page) as *mut _, page, libc::PROT_NONE) };
    assert_eq!(r, 0, "mprotect");
    let fd = raw_fd(&l2);

    // Nothing can be copied: EFAULT (spec §6.2), and nothing is consumed.
    // SAFETY: the range is the PROT_NONE page: the kernel cannot write it.
    let r = unsafe { raw_read(fd, base + page, len) };
    assert_eq!(r, Err(Errno::FAULT), "read into an inaccessible buffer");
    assert_eq!(
        ok(l2.len_left(), "LENLEFT"),
        len,
        "a failed read consumes nothing"
    );

    // SAFETY: the first page is our own read/write memory that no
    // reference points to; the rest of the range is PROT_NONE.
    let n = unsafe { raw_read(fd, base, len) }
        .unwrap_or_else(|e| panic!("a read that faults after one page: {e:?}, not a count"));
    assert!(
        n > 0 && n <= page,
        "the count copied before the fault: {n} (page {page})"
    );
    // SAFETY: the first `n` ≤ page bytes of the mapping are readable.
    let got = unsafe { std::slice::from_raw_parts(base as *const u8, n) };
    assert!(got == &full[..n], "the {n} bytes copied");
    assert_eq!(
        ok(l2.len_left(), "LENLEFT"),
        len - n,
        "the read consumed exactly what it copied"
    );
    let mut rest = vec![0u8; len];
    assert_eq!(ok(l2.read_data(&mut rest), "read the rest"), len - n);
    assert!(rest[..len - n] == full[n..], "the next read continues");
    assert_eq!(ok(l2.len_left(), "LENLEFT"), 0);
    assert_empty(&l2, "done");
}
