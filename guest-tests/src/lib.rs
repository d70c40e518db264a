//! Helpers for the KBUS guest tests (`tests/*.rs`).
//!
//! These tests need `/dev/kbus0`..`/dev/kbus2` from our `kbus.ko` (loaded
//! with `kbus_num_devices=3`), so they run inside a QEMU guest:
//! `cargo xtask test --arch x86_64`. They never skip: a missing device is a
//! loud failure. Each test uses its own message names and drops every Ksock
//! before returning.

use std::fmt::Debug;
use std::time::{Duration, Instant};

pub mod raw;

pub use kbus_rustix::{Errno, Error, Ksock, Mode, Ready, Role};
pub use kbus_wire::{Flags, Message, MessageId, MessageRepr};

/// An owned received message.
pub type Msg = Message<Vec<u8>>;

fn open_or_die(dev: u32, mode: Mode) -> Ksock {
    match Ksock::open(dev, mode) {
        Ok(k) => k,
        Err(e) => panic!(
            "cannot open /dev/kbus{dev} ({e}). These tests must run inside the QEMU guest with \
             our kbus.ko loaded (kbus_num_devices=3): run `cargo xtask test --arch x86_64`"
        ),
    }
}

/// A read/write Ksock on `/dev/kbus<dev>`; panics loudly if it is missing.
pub fn open_rw(dev: u32) -> Ksock {
    open_or_die(dev, Mode::ReadWrite)
}

/// A read-only Ksock on `/dev/kbus<dev>`; panics loudly if it is missing.
pub fn open_ro(dev: u32) -> Ksock {
    open_or_die(dev, Mode::ReadOnly)
}

/// Unwrap with the KBUS error's explanation.
#[track_caller]
pub fn ok<T>(r: Result<T, Error>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Assert that `r` failed with exactly `errno`.
#[track_caller]
pub fn expect_errno<T: Debug>(r: Result<T, Error>, errno: Errno, what: &str) -> Error {
    match r {
        Ok(v) => panic!(
            "{what}: expected {}, but it succeeded with {v:?}",
            kbus_rustix::errno_name(errno)
        ),
        Err(e) => {
            assert_eq!(
                e.errno(),
                Some(errno),
                "{what}: expected {}, got: {e}",
                kbus_rustix::errno_name(errno)
            );
            e
        }
    }
}

/// Pop and read the next message; panics if the queue is empty.
#[track_caller]
pub fn recv(k: &Ksock, what: &str) -> Msg {
    match k.read_next_msg_owned() {
        Ok(Some(m)) => m,
        Ok(None) => panic!("{what}: expected a message on {k}, the queue is empty"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Assert that the Ksock has nothing queued.
#[track_caller]
pub fn assert_empty(k: &Ksock, what: &str) {
    let n = ok(k.num_messages(), "NUMMSGS");
    if n != 0 {
        let m = recv(k, what);
        panic!("{what}: expected an empty queue on {k}, found {n} message(s), first: {m}");
    }
    assert_eq!(
        ok(k.next_msg(), "NEXTMSG"),
        None,
        "{what}: NEXTMSG on an empty queue"
    );
}

/// Send and unwrap.
#[track_caller]
pub fn send(k: &Ksock, m: &MessageRepr<'_>) -> MessageId {
    match k.send_msg(m) {
        Ok(id) => id,
        Err(e) => panic!("sending {} from {k}: {e}", m.name),
    }
}

/// Bind and unwrap.
#[track_caller]
pub fn bind(k: &Ksock, name: &str, role: Role) {
    if let Err(e) = k.bind(name, role) {
        panic!("binding {k} to {name} as {role:?}: {e}");
    }
}

/// Assert that `r` was refused by the Ksock itself because a send is
/// pending ([`kbus_rustix::ErrorKind::SendPending`]), naming `pending`.
#[track_caller]
pub fn expect_send_pending<T: Debug>(r: Result<T, Error>, pending: MessageId, what: &str) {
    match r {
        Ok(v) => panic!("{what}: expected SendPending, but it succeeded with {v:?}"),
        Err(e) => {
            assert_eq!(
                e.kind(),
                &kbus_rustix::ErrorKind::SendPending,
                "{what}: expected SendPending, got: {e}"
            );
            assert_eq!(e.message_id(), Some(pending), "{what}: the pending id");
        }
    }
}

/// A raw `write()` on the Ksock's fd, past the Ksock's own checks (to test
/// what the module does, e.g. EALREADY in sending state).
pub fn write_past_ksock(k: &Ksock, bytes: &[u8]) -> Result<usize, Errno> {
    rustix::io::write(k, bytes)
}

/// A short wait for poll-based tests.
pub const SHORT: Duration = Duration::from_millis(50);

/// A small deterministic generator (xorshift64); the seed must not be 0.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 pseudo-random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 33) % n
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Turns REPORTREPLIERBINDS off again when dropped (it is device-wide).
/// Declare it after the Ksocks of a test so that it drops first.
pub struct ReportOff<'a>(pub &'a Ksock);

impl Drop for ReportOff<'_> {
    fn drop(&mut self) {
        let _ = self.0.report_replier_binds(false);
    }
}

/// Open `/dev/kbus<n>` read/write, retrying for the 0.5 s that spec §2.2
/// allows a NEWDEVICE node to take; panics after that.
pub fn open_new_device(n: u32) -> Ksock {
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match Ksock::open(n, Mode::ReadWrite) {
            Ok(k) => return k,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("/dev/kbus{n} not openable 0.5 s after NEWDEVICE: {e}"),
        }
    }
}

/// A brand-new device (NEWDEVICE): its Ksock ids and serial numbers start
/// at 1 and its device-wide flags are off, so a test can predict them.
pub fn fresh_device() -> u32 {
    let k = open_ro(0);
    let n = ok(k.new_device(), "NEWDEVICE");
    drop(k);
    // Wait for the node without opening it (that would use Ksock id 1).
    let path = format!("/dev/kbus{n}");
    let deadline = Instant::now() + Duration::from_millis(500);
    while std::fs::metadata(&path).is_err() {
        assert!(
            Instant::now() < deadline,
            "{path} missing 0.5 s after NEWDEVICE"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    n
}

/// The whole of `/proc/kbus/stats`.
pub fn read_stats() -> String {
    std::fs::read_to_string("/proc/kbus/stats").expect("reading /proc/kbus/stats")
}

/// The `dev` line of device `dev` in `/proc/kbus/stats` (without its newline).
#[track_caller]
pub fn stats_device_line(dev: u32) -> String {
    let text = read_stats();
    let prefix = format!("dev {dev:2}: ");
    match text.lines().find(|l| l.starts_with(&prefix)) {
        Some(l) => l.to_string(),
        None => panic!("no line for device {dev} in /proc/kbus/stats:\n{text}"),
    }
}
