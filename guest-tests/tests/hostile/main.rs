//! Hostile input: a seeded, bounded random-operation fuzzer against
//! `/dev/kbus0..2` (spec §3.10–3.11, §5.1, §5.2, §6). Bad input always gets
//! a clear error and loses nothing; the module never oopses, leaks, or
//! corrupts another Ksock's state.
//!
//! Several Ksocks of this process (and two child processes: this binary run
//! again with `--exact hostile_child`, one ending with `exit()` with its
//! Ksocks open, one SIGKILLed at a random point) do random things:
//! `write()`s of valid messages with one field mutated, truncated or
//! extended, random bytes, huge `name_len`/`data_len`, bad guards, pointy
//! headers with wild name/data pointers (NULL, 0x1, kernel-half,
//! non-canonical, a PROT_NONE page, read-only memory, buffers that straddle
//! into a PROT_NONE page), the `write()` buffer itself bad; ioctls with every
//! `nr` 0..=20, the right or a wrong direction/size/type, NULL and bad
//! argument pointers; reads of random sizes into good and bad buffers;
//! BIND/UNBIND of random names, raw `is_replier` values and lengths; SEND,
//! DISCARD, NEXTMSG and poll at random points; Replies to Requests received;
//! closes and reopens.
//!
//! Checked throughout:
//! * every failure is an errno the spec lists for that operation (table
//!   [`allowed`]); a bad pointer always gives a failure; a good call never
//!   gives EFAULT; return values are in range;
//! * a small model per Ksock: `write()` on a read-only Ksock is EBADF,
//!   during sending state EALREADY and never otherwise; SEND with nothing
//!   written is ENOMSG; KSOCKID, LENLEFT, LASTSENT, MAXMSGS and MSGONLYONCE
//!   report what the model says; read sizes add up; every message read
//!   whole is well formed; ids of sends ascend per device; Ksocks' bindings
//!   in `/proc/kbus/bindings` are exactly those the model expects;
//! * a bystander Listener and Replier on each device, on names the fuzzer
//!   never sends to or binds exactly, keep working exactly: every few steps
//!   an Announcement and a Request/Reply between them arrive intact, ids
//!   ascending, NUMMSGS and UNREPLIEDTO as expected;
//! * at the end, with everything closed, no bindings, no open Ksocks and no
//!   set-aside entries remain on devices 0..2. (The rig then fails the run if
//!   `rmmod` fails or dmesg shows a WARN/BUG/oops, and the module WARNs at
//!   unload if a message or queue item leaked.)
//!
//! Seeds: the default is fixed. `KBUS_FUZZ_SEED=<n>[,<n>...]` in the
//! environment, or as an extra command-line argument (the guest rig passes
//! arguments, not environment), runs other seeds, e.g.
//! `cargo xtask run <this binary> --exact hostile_fuzz KBUS_FUZZ_SEED=7,8`.
//! `KBUS_FUZZ_STEPS=<n>` changes the number of steps of this process.
//!
//! # Why this test has its own ABI and opcode table
//!
//! The ioctl numbers, directions and sizes (`errnos.rs`), the header
//! offsets and the message checks (`abi.rs`, `kbus_guest_tests::raw`) are
//! written here from the spec's tables, not taken from `kbus_rustix::IOCTLS`
//! or `kbus_wire`: the fuzzer judges the module, and a mistake shared with
//! the crates (a wrong direction bit, a wrong offset on 32-bit) would
//! otherwise make both agree and hide it. The crates' own unit tests check
//! their tables against the same spec; the two meet only in the kernel.
//!
//! # Layout
//!
//! * `raw.rs`: the only `unsafe` code: syscalls with arbitrary pointers and
//!   the arena of pages with holes;
//! * `abi.rs`: the raw ABI (pointer kinds, offsets, a received message's
//!   checks);
//! * `errnos.rs`: the ioctl table and the spec's errnos per operation;
//! * `model.rs`: the fuzzer and its per-Ksock model;
//! * `bystanders.rs`: the Listener/Replier pairs that must not notice;
//! * `main.rs` (here): seeds, child processes, running it, the tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kbus_guest_tests::*;
use kbus_rustix::Op;
use kbus_wire::name::validate_message_name;
use rustix::fd::AsFd;
use rustix::ioctl::{opcode, Direction, Opcode};

mod abi;
mod bystanders;
mod errnos;
mod model;
mod raw;

use abi::*;
use bystanders::*;
use errnos::*;
use kbus_guest_tests::raw::{
    entire, entire_bytes, header, pad4, set_ptr, set_u32, u32_at, HeaderFields as Hdr,
    DATA_PTR_OFF, END, END_GUARD_OFF, H, NAME_PTR_OFF, PTR, START,
};
use model::*;
use raw::Arena;

const DEFAULT_SEED: u64 = 0x4B42_5553_F022_0001;
/// Steps of this process: about 7 s under TCG on x86_64; the armv7 and
/// mipsel guests are about 7 and 25 times slower, so they do fewer.
const PARENT_STEPS: u64 = if cfg!(target_arch = "x86_64") {
    20_000
} else if cfg!(target_arch = "arm") {
    6_000
} else {
    2_500
};
const CHILD_STEPS: u64 = PARENT_STEPS * 2 / 5;
/// Bystander check every this many steps.
const CHECK_EVERY: u64 = 40;
/// Binding model check every this many steps.
const BINDINGS_EVERY: u64 = 150;
const DEVICES: [u32; 3] = [0, 1, 2];
/// Environment of a child process: its seed.
const CHILD_ENV: &str = "KBUS_HOSTILE_CHILD";

const DEF_MAX_MSG_SIZE: u32 = 409_600;

/// Bystander names: three bytes, so no fuzz name (all start `$.F` and are
/// at least four bytes long) becomes one by a single mutation, and a
/// bystander message fits the smallest MAXMSGSIZE (100) on both ABIs.
const BY_ANN: &str = "$.Y";
const BY_REQ: &str = "$.Z";

/// Names the fuzzer sends to.
const SEND_NAMES: [&str; 8] = [
    "$.Fa",
    "$.F.a",
    "$.F.b",
    "$.F.a.b",
    "$.F.Req",
    "$.F.1.2.3",
    "$.Fz",
    "$.F.a.c",
];
/// Extra names it binds to (wildcards included; `$.*` and `$.%` also match
/// the bystander names, which only adds Listener copies or lower-ranked
/// Repliers).
const BIND_NAMES: [&str; 9] = [
    "$.F.*",
    "$.F.%",
    "$.*",
    "$.%",
    "$.F.a.*",
    "$.KBUS.ReplierBindEvent",
    "$.KBUS.*",
    "$.KBUS.Replier.%",
    "$.F.a.%",
];

/// A non-zero generator state from any seed (splitmix64), so that
/// neighbouring seeds give unrelated runs.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

// ---- running it -----------------------------------------------------------

fn seeds() -> Vec<u64> {
    let from_args =
        std::env::args().find_map(|a| a.strip_prefix("KBUS_FUZZ_SEED=").map(str::to_string));
    let text = from_args.or_else(|| std::env::var("KBUS_FUZZ_SEED").ok());
    match text {
        None => vec![DEFAULT_SEED],
        Some(t) => t
            .split(',')
            .map(|s| {
                let s = s.trim();
                let v = match s.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => s.parse(),
                };
                v.unwrap_or_else(|_| panic!("bad KBUS_FUZZ_SEED value {s:?}"))
            })
            .collect(),
    }
}

fn steps(default: u64) -> u64 {
    let from_args =
        std::env::args().find_map(|a| a.strip_prefix("KBUS_FUZZ_STEPS=").map(str::to_string));
    from_args
        .or_else(|| std::env::var("KBUS_FUZZ_STEPS").ok())
        .map_or(default, |s| s.parse().expect("KBUS_FUZZ_STEPS"))
}

fn say(s: &str) {
    // Straight to fd 2, so it is shown even when libtest captures output.
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

fn spawn_child(seed: u64, steps: u64, end: &str) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "hostile_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, seed.to_string())
        .env("KBUS_FUZZ_STEPS", steps.to_string())
        .env("KBUS_HOSTILE_END", end)
        .spawn()
        .expect("spawning a child process")
}

/// The child processes; killed if the parent fails, so that none is left
/// holding the module.
struct Children(Vec<(Child, bool)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (c, _) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn device_settings(dev: u32) -> (bool, bool, u32) {
    let k = open_ro(dev);
    let s = (
        ok(k.query_report_replier_binds(), "REPORTREPLIERBINDS"),
        ok(k.query_kernel_module_verbose(), "VERBOSE"),
        ok(k.max_message_size(), "MAXMSGSIZE"),
    );
    drop(k);
    s
}

fn restore_settings(dev: u32) {
    let k = open_ro(dev);
    ok(k.report_replier_binds(false), "REPORTREPLIERBINDS");
    ok(k.kernel_module_verbose(false), "VERBOSE");
    ok(k.set_max_message_size(DEF_MAX_MSG_SIZE), "MAXMSGSIZE");
    // Draining anything REPORTREPLIERBINDS may have queued is not needed:
    // closing drops it.
}

fn run_seed(seed: u64) {
    let started = Instant::now();
    let n = steps(PARENT_STEPS);
    say(&format!(
        "hostile: seed {seed:#x} ({seed}), {n} steps, {} children; rerun with KBUS_FUZZ_SEED={seed}",
        2
    ));
    for dev in DEVICES {
        let s = device_settings(dev);
        assert_eq!(
            s,
            (false, false, DEF_MAX_MSG_SIZE),
            "device {dev} settings before the run"
        );
    }
    let mut bystanders: Vec<Bystander> = DEVICES.iter().map(|&d| Bystander::new(d)).collect();
    let mut f = Fuzzer::new("hostile parent", seed, 6);
    let mut children = Children(vec![
        (spawn_child(seed ^ 0x1111, CHILD_STEPS, "exit"), false),
        (spawn_child(seed ^ 0x2222, CHILD_STEPS * 10, "drop"), true),
    ]);
    let kill_at = 1 + f.rng.below(n);
    let by_bindings = |b: &[Bystander]| -> Vec<(u32, u32, u32, &'static str)> {
        b.iter()
            .flat_map(|b| [(b.dev, b.l_id, 0, BY_ANN), (b.dev, b.r_id, 1, BY_REQ)])
            .collect()
    };
    while f.step < n {
        f.step();
        if f.step % CHECK_EVERY == 0 {
            f.note("bystander check".into());
            for b in &mut bystanders {
                b.check(&f);
            }
        }
        if f.step % BINDINGS_EVERY == 0 {
            f.check_bindings(&by_bindings(&bystanders));
        }
        if f.step == kill_at {
            for (c, kill) in &mut children.0 {
                if *kill {
                    let _ = c.kill();
                }
            }
        }
    }
    let parent_time = started.elapsed();
    // The children end by themselves (one by exit(), one was killed).
    let deadline = Instant::now() + Duration::from_secs(120);
    for (c, killed) in &mut children.0 {
        let status = loop {
            if let Some(s) = c.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                f.fail("a child process did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !*killed && !status.success() {
            f.fail(&format!(
                "child process failed: {status} (its output is above)"
            ));
        }
        if *killed && !status.success() {
            use std::os::unix::process::ExitStatusExt;
            if status.signal() != Some(9) {
                f.fail(&format!(
                    "killed child process ended with {status} (its output is above)"
                ));
            }
        }
    }
    for b in &mut bystanders {
        b.check(&f);
    }
    f.check_bindings(&by_bindings(&bystanders));
    // Nobody else's bindings are left (the children are gone).
    let others = proc_bindings(|p| p != my_tid());
    if !others.is_empty() {
        f.fail(&format!(
            "bindings of other processes left on devices 0..2: {others:?}"
        ));
    }
    let summary = f.summary();
    let Fuzzer { slots, keep, .. } = f;
    drop(slots);
    drop(keep);
    let mine = proc_bindings(|_| true);
    let want: Vec<_> = by_bindings(&bystanders)
        .into_iter()
        .map(|(d, i, r, n)| (d, i, r != 0, n.as_bytes().to_vec()))
        .collect();
    let mut mine_sorted = mine.clone();
    mine_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        mine_sorted, want_sorted,
        "seed {seed:#x}: only the bystanders' bindings are left after the fuzz Ksocks closed"
    );
    drop(bystanders);
    for dev in DEVICES {
        restore_settings(dev);
    }
    assert!(
        proc_bindings(|_| true).is_empty(),
        "seed {seed:#x}: bindings left: {:?}",
        proc_bindings(|_| true)
    );
    let stats = read_stats();
    let mut dev_now = None;
    for line in stats.lines() {
        if let Some(rest) = line.strip_prefix("dev ") {
            let d: u32 = rest.split(':').next().unwrap().trim().parse().unwrap();
            dev_now = Some(d);
            if d <= 2 {
                assert!(
                    line.contains("unsent unbindings 0") && !line.contains("tragic"),
                    "seed {seed:#x}: set-aside entries left: {line}"
                );
            }
        } else if dev_now.is_some_and(|d| d <= 2) && line.trim_start().starts_with("ksock ") {
            panic!(
                "seed {seed:#x}: a Ksock is still open on device {}: {line}\n{stats}",
                dev_now.unwrap()
            );
        }
    }
    say(&format!(
        "hostile: seed {seed:#x} passed: {n} steps in {:.1} s (all done in {:.1} s); outcomes:{summary}",
        parent_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
}

#[test]
fn hostile_fuzz() {
    for seed in seeds() {
        run_seed(seed);
    }
}

/// A child process: the same fuzzer on its own Ksocks, no bystanders. In
/// the parent's own run (no `KBUS_HOSTILE_CHILD`) it does nothing.
#[test]
fn hostile_child() {
    let Ok(seed) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = seed.parse().expect("child seed");
    let n = steps(CHILD_STEPS);
    let mut f = Fuzzer::new(&format!("hostile child {}", std::process::id()), seed, 4);
    while f.step < n {
        f.step();
        if f.step % BINDINGS_EVERY == 0 {
            f.check_bindings(&[]);
        }
    }
    f.check_bindings(&[]);
    if std::env::var("KBUS_HOSTILE_END").as_deref() == Ok("exit") {
        // End with every Ksock still open: the kernel closes them.
        std::process::exit(0);
    }
}

/// NEWDEVICE whose answer cannot be written (NULL, an address in the kernel
/// half) fails with EFAULT and creates no device: a device the caller
/// never learns the number of would be state left behind by bad input.
#[test]
fn new_device_with_unwritable_argument_creates_nothing() {
    let k = open_rw(0);
    let newdevice = kbus_rustix::IOCTLS[15];
    assert_eq!(newdevice.0, "NEWDEVICE");
    let first = ok(k.new_device(), "NEWDEVICE");
    for bad in [0usize, usize::MAX - 4095] {
        assert_eq!(
            raw::ioctl(k.as_fd(), newdevice.1, bad),
            Err(Errno::FAULT),
            "NEWDEVICE with argument {bad:#x}"
        );
    }
    let next = ok(k.new_device(), "NEWDEVICE after the faults");
    assert_eq!(next, first + 1, "the faulting calls created devices");
}
