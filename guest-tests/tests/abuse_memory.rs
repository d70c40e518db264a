//! Spec §14.2: every allocation a user's operation causes is charged to
//! that user's memory cgroup, each Ksock has a ceiling on the bytes queued
//! to it (`kbus_max_queued_bytes`, treated exactly like a full queue), and
//! MAXMSGS is clamped to `kbus_max_msgs_limit`.
//!
//! The memcg test puts an attacker (uid 65534) in a cgroup with
//! `memory.max` = 16 MiB. It asks for MAXMSGS 0xFFFFFFFF, binds a Listener
//! to its own name and sends itself the largest messages the device allows
//! (ALL_OR_FAIL, so a skipped delivery is an error too) until a send fails,
//! then holds its Ksock open while root measures how much memory the
//! machine lost. It must be at most `memory.max` plus [`SLACK`]. The
//! attacker being killed by its own cgroup's OOM killer is acceptable; any
//! other process being killed is not.

mod abuse_common;

use std::time::{Duration, Instant};

use abuse_common::*;
use kbus_guest_tests::*;
use kbus_wire::{entire_len, NativeLayout};

const DEV: u32 = 2;
const CG_ROOT: &str = "/sys/fs/cgroup";
const MEMORY_MAX: u64 = 16 * MIB;
/// What the guest may lose beyond `memory.max` while the attacker holds
/// its Ksock: free pages parked on the per-CPU lists (not in MemFree, up to
/// about 1 MiB per CPU on these guests), root's own allocations while it
/// forks and reads /proc during the test, and slab pages that fill up
/// partly. Without accounting, the loss is the whole queue (≥ 16 MiB more).
const SLACK: u64 = 4 * MIB;
/// The attacker stops queueing after this many bytes without a failure, so
/// that a module that charges nothing fails this test instead of taking
/// the guest's 512 MiB.
const GIVE_UP: u64 = MEMORY_MAX + 32 * MIB;
const T: Duration = Duration::from_secs(60);

/// Mount cgroup2 if needed and enable the memory controller below the root.
fn ensure_memory_controller() {
    let controllers = format!("{CG_ROOT}/cgroup.controllers");
    if std::fs::metadata(&controllers).is_err() {
        std::fs::create_dir_all(CG_ROOT).expect("mkdir /sys/fs/cgroup");
        // SAFETY: mount with valid C strings.
        let r = unsafe {
            libc::mount(
                c"cgroup2".as_ptr(),
                c"/sys/fs/cgroup".as_ptr(),
                c"cgroup2".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(
            r,
            0,
            "mount cgroup2 on {CG_ROOT}: {}",
            std::io::Error::last_os_error()
        );
    }
    let have = read_knob(&controllers);
    assert!(
        have.split(' ').any(|c| c == "memory"),
        "no memory controller in cgroup2 (controllers: {have:?})"
    );
    write_knob(&format!("{CG_ROOT}/cgroup.subtree_control"), "+memory");
}

/// A child cgroup, killed and removed on drop.
struct Cgroup(String);

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let path = format!("{CG_ROOT}/{name}");
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
        Cgroup(path)
    }

    fn file(&self, f: &str) -> String {
        format!("{}/{f}", self.0)
    }

    /// One `key value` line of a flat-keyed file such as memory.events.
    fn key(&self, f: &str, key: &str) -> u64 {
        read_knob(&self.file(f))
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {}", self.file(f)))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.file("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Mem {
    free: u64,
    kernel: u64,
}

fn mem() -> Mem {
    Mem {
        free: meminfo("MemFree"),
        kernel: meminfo("SUnreclaim") + meminfo("VmallocUsed"),
    }
}

#[test]
fn a_memcg_bounds_what_an_unprivileged_ksock_pins() {
    const NAME: &str = "$.Abuse.Memcg";
    let limit: u32 = param("kbus_max_msgs_limit").parse().expect("a number");
    ensure_memory_controller();
    let cg = Cgroup::new(&format!("kbus-abuse-{}", std::process::id()));
    write_knob(&cg.file("memory.max"), &MEMORY_MAX.to_string());
    if std::fs::metadata(cg.file("memory.swap.max")).is_ok() {
        write_knob(&cg.file("memory.swap.max"), "0");
    }

    // A process of another user outside the cgroup, with some memory of
    // its own: it must survive whatever happens inside.
    let mut bystander = fork_as("bystander", Some(OTHER_USER), |ch| {
        let v = vec![1u8; 4 * MIB as usize];
        ch.say("READY");
        ch.expect("EXIT", Duration::from_secs(600));
        assert_eq!(std::hint::black_box(&v)[12345], 1);
    });
    bystander.chan.expect("READY", T);

    let mut attacker = fork_as("attacker", Some(NOBODY), |ch| {
        ch.expect("GO", T);
        let k = open_rw(DEV);
        let max = ok(k.set_max_messages(0xFFFF_FFFF), "MAXMSGS 0xFFFFFFFF");
        ch.say(&format!("MAXMSGS {max}"));
        bind(&k, NAME, Role::Listener);
        let size = (ok(k.max_message_size(), "MAXMSGSIZE") as usize).min(409_600);
        let data_len = (size - entire_len::<NativeLayout>(NAME.len(), 0)) & !3;
        let data = vec![0xa5u8; data_len];
        let msg = MessageRepr {
            flags: Flags::ALL_OR_FAIL,
            ..MessageRepr::announcement(NAME, &data)
        };
        let (mut n, mut bytes) = (0u64, 0u64);
        let outcome = loop {
            if bytes >= GIVE_UP {
                break "NOFAIL 0".to_string();
            }
            match k.send_msg(&msg) {
                Ok(_) => {
                    n += 1;
                    bytes += size as u64;
                }
                Err(e) => {
                    let errno = e.errno().map_or(0, |e| e.raw_os_error());
                    break format!("FAIL {errno} {e}");
                }
            }
        };
        let queued = ok(k.num_messages(), "NUMMSGS");
        ch.say(&format!("HOLDING {n} {bytes} {queued} {outcome}"));
        ch.expect("EXIT", T);
    });
    write_knob(&cg.file("cgroup.procs"), &attacker.pid.to_string());
    let before = mem();
    attacker.chan.say("GO");
    let max: u32 = attacker
        .chan
        .expect("MAXMSGS", T)
        .parse()
        .expect("a number");

    // The attacker either reports or is killed by its cgroup's OOM killer.
    let holding = attacker.chan.hear_or_eof(T);
    let after = mem();
    let current: u64 = read_knob(&cg.file("memory.current")).parse().unwrap();
    let oom_kills = cg.key("memory.events", "oom_kill ");
    let lost = before.free.saturating_sub(after.free);
    let kernel = after.kernel.saturating_sub(before.kernel);
    let report = format!(
        "MemFree fell by {:.1} MiB, SUnreclaim+VmallocUsed rose by {:.1} MiB, \
         memory.current {:.1} MiB, oom_kill {oom_kills}",
        lost as f64 / MIB as f64,
        kernel as f64 / MIB as f64,
        current as f64 / MIB as f64
    );
    eprintln!("memcg attack: {holding:?}; {report}");

    assert_eq!(
        bystander.poll_exit(),
        None,
        "the bystander outside the cgroup was killed ({report})"
    );
    bystander.chan.say("EXIT");
    bystander.finish(T);
    assert_eq!(
        max, limit,
        "MAXMSGS 0xFFFFFFFF is clamped to kbus_max_msgs_limit (spec §14.2)"
    );
    match holding {
        None => {
            let st = attacker.wait_exit(T).expect("the attacker's end");
            assert!(
                libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL && oom_kills > 0,
                "the attacker ended with {} without an OOM kill in its cgroup ({report})",
                describe_status(st)
            );
        }
        Some(line) => {
            let rest = line
                .strip_prefix("HOLDING ")
                .unwrap_or_else(|| panic!("from the attacker: {line:?}"));
            let f: Vec<&str> = rest.splitn(5, ' ').collect();
            let (n, bytes) = (f[0], f[1].parse::<u64>().unwrap());
            assert_eq!(
                f[3],
                "FAIL",
                "the attacker queued {n} messages ({} MiB) in a {} MiB memcg and no send \
                 failed ({report})",
                bytes / MIB,
                MEMORY_MAX / MIB
            );
            let errno = Errno::from_raw_os_error(f[4].split(' ').next().unwrap().parse().unwrap());
            assert!(
                [Errno::NOMEM, Errno::BUSY, Errno::AGAIN].contains(&errno),
                "the failed send: {} (expected ENOMEM, or EBUSY for a full queue)",
                f[4]
            );
            assert!(
                lost <= MEMORY_MAX + SLACK,
                "a Ksock in a {} MiB memcg pinned more than memory.max + {} MiB: {report}",
                MEMORY_MAX / MIB,
                SLACK / MIB
            );
            attacker.chan.say("EXIT");
            attacker.finish(T);
        }
    }
}

#[test]
fn the_queued_bytes_cap_acts_as_a_full_queue() {
    const NAME: &str = "$.Abuse.ByteCap";
    const CAP: usize = 1 << 20;
    const DATA: usize = 100 * 1024;
    let cap = Knob::param("kbus_max_queued_bytes", &CAP.to_string());
    assert_eq!(
        cap.old(),
        "67108864",
        "kbus_max_queued_bytes defaults to 64 MiB"
    );
    let l = open_ro(DEV);
    assert_eq!(ok(l.set_max_messages(1000), "MAXMSGS"), 1000);
    bind(&l, NAME, Role::Listener);
    let s = open_rw(DEV);
    let data = vec![0x3cu8; DATA];
    let plain = MessageRepr::announcement(NAME, &data);
    // 20 plain sends (2 MiB): all succeed, the Listener is skipped once
    // its bytes reach the cap.
    for _ in 0..20 {
        send(&s, &plain);
    }
    let n = ok(l.num_messages(), "NUMMSGS") as usize;
    assert!(
        n >= 1 && n * DATA <= CAP,
        "{n} messages of {DATA} bytes queued under a {CAP}-byte cap"
    );
    let fail = MessageRepr {
        flags: Flags::ALL_OR_FAIL,
        ..plain
    };
    expect_errno(
        s.send_msg(&fail),
        Errno::BUSY,
        "ALL_OR_FAIL at the byte cap",
    );
    let wait = MessageRepr {
        flags: Flags::ALL_OR_WAIT,
        ..plain
    };
    expect_errno(
        s.send_msg(&wait),
        Errno::AGAIN,
        "ALL_OR_WAIT at the byte cap",
    );
    ok(s.discard(), "DISCARD");
    assert_eq!(
        ok(l.num_messages(), "NUMMSGS") as usize,
        n,
        "nothing queued"
    );
    // Reading one makes room for one.
    let m = recv(&l, "first");
    assert_eq!(m.data().len(), DATA);
    send(&s, &fail);
    assert_eq!(ok(l.num_messages(), "NUMMSGS") as usize, n);
    while ok(l.read_next_msg_owned(), "read").is_some() {}
}
