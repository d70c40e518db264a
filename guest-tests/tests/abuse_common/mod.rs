//! Shared plumbing of the `abuse_*` guest tests (spec §14): forked
//! attacker processes that drop to an unprivileged uid, a line protocol
//! with them, guards that restore module parameters and sysctls, raw KBUS
//! ioctls with hand-made argument pointers, and userfaultfd.
//!
//! The tests run as root in the guest. Each attack runs in a `fork()`ed
//! child that calls `setgroups(0)`, `setgid` and `setuid` before doing
//! anything else, so it has no capabilities. The child talks to the parent
//! over a `socketpair`: one line per message. A child that panics sends
//! `PANIC <message>` and exits with 101; the parent turns that into a test
//! failure naming the child.

// Each abuse_*.rs test binary uses a different part of this module.
#![allow(dead_code)]

use std::ffi::c_void;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use kbus_guest_tests::Errno;
use rustix::ioctl::{opcode, Direction};

/// The unprivileged uid/gid the attackers run as ("nobody").
pub const NOBODY: u32 = 65534;
/// A second unprivileged uid, for "another user" (no account needed).
pub const OTHER_USER: u32 = 1000;

/// Where the module's parameters live (spec §14: writable by root).
pub const PARAMS: &str = "/sys/module/kbus/parameters";

// ---- the line protocol ----------------------------------------------------

/// One end of the parent/child socket.
pub struct Chan {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    peer: String,
    /// The start of a line whose end has not arrived yet.
    pending: String,
}

impl Chan {
    fn new(s: UnixStream, peer: &str) -> Chan {
        Chan {
            writer: s.try_clone().expect("socket clone"),
            reader: BufReader::new(s),
            peer: peer.to_string(),
            pending: String::new(),
        }
    }

    /// Send one line.
    pub fn say(&mut self, line: &str) {
        // One write(2) per line, so the reader never sees half of one.
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("telling {} {line:?}: {e}", self.peer));
    }

    /// The next line, or `None` if none came within `timeout`. Panics on
    /// EOF and on a `PANIC` line from the other side.
    pub fn try_hear(&mut self, timeout: Duration) -> Option<String> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set_read_timeout");
        let mut line = std::mem::take(&mut self.pending);
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("{} closed the connection (it exited or died)", self.peer),
            Ok(_) if !line.ends_with('\n') => {
                panic!("{} closed the connection mid-line: {line:?}", self.peer)
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Keep a partial line for the next call.
                self.pending = line;
                return None;
            }
            Err(e) => panic!("reading from {}: {e}", self.peer),
        }
        let line = line.trim_end().to_string();
        if let Some(msg) = line.strip_prefix("PANIC ") {
            panic!("{} failed: {}", self.peer, msg.replace("\\n", "\n"));
        }
        Some(line)
    }

    /// The next line, or `None` if the other side closed the connection
    /// (exited or was killed) first; panics if neither happens in `timeout`.
    #[track_caller]
    pub fn hear_or_eof(&mut self, timeout: Duration) -> Option<String> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
        let mut line = std::mem::take(&mut self.pending);
        match self.reader.read_line(&mut line) {
            Ok(_) if !line.ends_with('\n') => return None,
            Ok(_) => {}
            Err(e) => panic!("nothing from {} for {timeout:?}: {e}", self.peer),
        }
        let line = line.trim_end().to_string();
        if let Some(msg) = line.strip_prefix("PANIC ") {
            panic!("{} failed: {}", self.peer, msg.replace("\\n", "\n"));
        }
        Some(line)
    }

    /// The next line; panics if none comes within `timeout`.
    #[track_caller]
    pub fn hear(&mut self, timeout: Duration) -> String {
        match self.try_hear(timeout) {
            Some(l) => l,
            None => panic!("nothing from {} for {timeout:?}", self.peer),
        }
    }

    /// The next line, which must start with `word`; returns the rest.
    #[track_caller]
    pub fn expect(&mut self, word: &str, timeout: Duration) -> String {
        let line = self.hear(timeout);
        match line.strip_prefix(word) {
            Some(rest) => rest.trim_start().to_string(),
            None => panic!("expected {word:?} from {}, got {line:?}", self.peer),
        }
    }

    /// A second handle on the same socket, for another thread.
    pub fn try_clone(&self) -> Chan {
        Chan::new(
            self.reader.get_ref().try_clone().expect("socket clone"),
            &self.peer,
        )
    }
}

/// The message of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".to_string()
    }
}

// ---- forked children ------------------------------------------------------

/// A forked child process. Dropping it SIGKILLs and reaps it if it still
/// runs, so a failing test leaves nothing behind.
pub struct Forked {
    pub pid: i32,
    pub chan: Chan,
    what: String,
    status: Option<i32>,
}

/// Drop to `uid`/`gid` (same number): supplementary groups first, then the
/// gid, then the uid, which clears every capability.
pub fn drop_privileges(uid: u32) {
    // SAFETY: plain syscalls without pointers (setgroups with 0 entries
    // reads nothing).
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setgid(uid), 0, "setgid({uid})");
        assert_eq!(libc::setuid(uid), 0, "setuid({uid})");
        assert_eq!(libc::geteuid(), uid);
    }
}

/// `fork()`; the child drops to `uid` (if given) and runs `body` with its
/// end of the socket, then `_exit`s: 0 when `body` returned, 101 when it
/// panicked (after sending `PANIC <message>`). The child dies with SIGKILL
/// when the parent dies.
pub fn fork_as(what: &str, uid: Option<u32>, body: impl FnOnce(&mut Chan)) -> Forked {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    // SAFETY: the test harness runs tests one at a time (the rig passes
    // --test-threads=1); the other threads of this process are the
    // harness's main thread, which waits for this test and holds no lock
    // the child needs. The child only runs `body` and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(ours);
        let mut chan = Chan::new(theirs, "the parent");
        let r = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: prctl with an integer argument.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if let Some(uid) = uid {
                drop_privileges(uid);
            }
            body(&mut chan);
        }));
        let code = match r {
            Ok(()) => 0,
            Err(p) => {
                let msg = panic_message(&*p).replace('\n', "\\n");
                let _ = chan.writer.write_all(format!("PANIC {msg}\n").as_bytes());
                101
            }
        };
        // SAFETY: ends the child without running the parent's destructors
        // or the test harness.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);
    let label = match uid {
        Some(u) => format!("{what} (pid {pid}, uid {u})"),
        None => format!("{what} (pid {pid}, root)"),
    };
    Forked {
        pid,
        chan: Chan::new(ours, &label),
        what: label,
        status: None,
    }
}

impl Forked {
    /// The raw wait status if the child has ended (reaps it).
    pub fn poll_exit(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let mut st = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) };
            assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
            if r == self.pid {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// Wait up to `timeout` for the child to end; the raw wait status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.poll_exit() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for a clean exit (status 0); panics otherwise.
    #[track_caller]
    pub fn finish(mut self, timeout: Duration) {
        match self.wait_exit(timeout) {
            Some(0) => {}
            Some(st) => {
                // A PANIC line may be waiting: report it first.
                while self.chan.try_hear(Duration::from_millis(1)).is_some() {}
                panic!("{} ended with {}", self.what, describe_status(st))
            }
            None => panic!("{} still runs after {timeout:?}", self.what),
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        if self.poll_exit().is_none() {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(self.pid, &mut st, 0);
            }
        }
    }
}

/// "exit 1", "signal 9 (SIGKILL)", ...
pub fn describe_status(st: i32) -> String {
    if libc::WIFEXITED(st) {
        format!("exit status {}", libc::WEXITSTATUS(st))
    } else if libc::WIFSIGNALED(st) {
        let sig = libc::WTERMSIG(st);
        let name = if sig == libc::SIGKILL {
            " (SIGKILL)"
        } else {
            ""
        };
        format!("signal {sig}{name}")
    } else {
        format!("wait status {st:#x}")
    }
}

// ---- module parameters and sysctls ----------------------------------------

/// A knob file (module parameter, sysctl) set for one test; the old value
/// is written back on drop, also when the test fails.
pub struct Knob {
    path: String,
    old: String,
}

impl Knob {
    /// Write `value` to `path`, remembering the old value. Panics with a
    /// clear message when the file is missing or not writable.
    #[track_caller]
    pub fn set(path: &str, value: &str) -> Knob {
        let old = read_knob(path);
        write_knob(path, value);
        Knob {
            path: path.to_string(),
            old,
        }
    }

    /// Set the module parameter `name` (spec §14: writable by root at run time).
    #[track_caller]
    pub fn param(name: &str, value: &str) -> Knob {
        Knob::set(&format!("{PARAMS}/{name}"), value)
    }

    /// The value before this knob was set.
    pub fn old(&self) -> &str {
        &self.old
    }
}

impl Drop for Knob {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, &self.old) {
            eprintln!("restoring {} to {}: {e}", self.path, self.old);
        }
    }
}

/// The trimmed contents of a knob file; panics if it cannot be read.
#[track_caller]
pub fn read_knob(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().to_string(),
        Err(e) => panic!(
            "cannot read {path}: {e} (spec §14 needs this knob; for a module parameter, \
             kbus.ko must declare it writable by root, mode 0644)"
        ),
    }
}

/// Write a knob file; panics if that fails.
#[track_caller]
pub fn write_knob(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        panic!("cannot write {value:?} to {path}: {e} (spec §14 needs it writable by root)")
    }
}

/// The current value of module parameter `name`.
#[track_caller]
pub fn param(name: &str) -> String {
    read_knob(&format!("{PARAMS}/{name}"))
}

// ---- raw syscalls -----------------------------------------------------------

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// The KBUS ioctl request code `nr` (spec §3.9): magic `'k'`, a
/// pointer-sized nominal argument, `dir` as the module declares it.
pub fn kbus_opcode(nr: u8, dir: Direction) -> rustix::ioctl::Opcode {
    let size = if dir == Direction::None {
        0
    } else {
        std::mem::size_of::<usize>()
    };
    opcode::from_components(dir, b'k', nr, size)
}

/// KBUS BIND's request code (spec §3.9).
pub fn op_bind() -> rustix::ioctl::Opcode {
    kbus_opcode(2, Direction::Write)
}

/// KBUS NEXTMSG's request code (spec §3.9).
pub fn op_nextmsg() -> rustix::ioctl::Opcode {
    kbus_opcode(6, Direction::Read)
}

/// `ioctl(fd, op, arg)` with any argument value.
///
/// # Safety
/// The kernel may read and write through `arg` as the request says; `arg`
/// must be memory no Rust reference is using during the call (or a bad
/// address, which gives EFAULT).
pub unsafe fn raw_ioctl(fd: RawFd, op: rustix::ioctl::Opcode, arg: usize) -> Result<i32, Errno> {
    let r = libc::ioctl(fd, op as _, arg as *mut c_void);
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

/// `write(fd, addr, len)` with any source address (the kernel only reads).
pub fn raw_write(fd: RawFd, addr: usize, len: usize) -> Result<usize, Errno> {
    // SAFETY: write(2) never writes to user memory; the kernel checks the range.
    let r = unsafe { libc::write(fd, addr as *const c_void, len) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// `read(fd, addr, len)`.
///
/// # Safety
/// The kernel writes up to `len` bytes at `addr`: memory no Rust reference
/// uses during the call, or a bad address (EFAULT).
pub unsafe fn raw_read(fd: RawFd, addr: usize, len: usize) -> Result<usize, Errno> {
    let r = libc::read(fd, addr as *mut c_void, len);
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// `struct kbus_bind_request` (spec §3.2) with a raw name pointer.
#[repr(C)]
pub struct RawBind {
    pub is_replier: u32,
    pub name_len: u32,
    pub name: usize,
}

/// A fresh private anonymous read/write mapping of `len` bytes (never
/// unmapped); its address.
pub fn map_anon(len: usize) -> usize {
    // SAFETY: a new mapping at an address the kernel chooses; nothing else
    // refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(
        p != libc::MAP_FAILED,
        "mmap: {}",
        std::io::Error::last_os_error()
    );
    p as usize
}

/// The page size. (Not `rustix::param::page_size`: after `setuid` the
/// process is not dumpable, and rustix then cannot read /proc/self/auxv.)
pub fn page_size() -> usize {
    // SAFETY: sysconf with a valid name.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    assert!(p > 0, "sysconf(_SC_PAGESIZE)");
    p as usize
}

// ---- userfaultfd ------------------------------------------------------------

const UFFD_API: u64 = 0xAA;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

fn uffd_op<T>(nr: u8) -> rustix::ioctl::Opcode {
    opcode::from_components(Direction::ReadWrite, 0xAA, nr, std::mem::size_of::<T>())
}

/// A userfaultfd with one registered anonymous region (MISSING mode): any
/// access to a page of the region that nobody has filled yet, including the
/// kernel's own `copy_from_user`/`copy_to_user`, waits until
/// [`Uffd::fill`] provides the page.
pub struct Uffd {
    fd: RawFd,
    /// Start of the region.
    pub base: usize,
    /// Length of the region (whole pages).
    pub len: usize,
}

impl Uffd {
    /// A region of `pages` pages. Needs `vm.unprivileged_userfaultfd=1` for
    /// an unprivileged caller (without `UFFD_USER_MODE_ONLY`, which would
    /// not catch the kernel's own accesses and so could not stall it).
    pub fn new(pages: usize) -> Uffd {
        // SAFETY: the userfaultfd syscall takes one integer argument.
        let fd =
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            panic!(
                "userfaultfd(O_CLOEXEC|O_NONBLOCK) as uid {}: {} (the stall tests need a \
                 kernel with CONFIG_USERFAULTFD and vm.unprivileged_userfaultfd=1)",
                // SAFETY: no arguments.
                unsafe { libc::geteuid() },
                std::io::Error::last_os_error()
            );
        }
        let fd = fd as RawFd;
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes one `struct uffdio_api`.
        let r = unsafe { libc::ioctl(fd, uffd_op::<UffdioApi>(0x3F) as _, &mut api) };
        assert_eq!(r, 0, "UFFDIO_API: {}", std::io::Error::last_os_error());
        let len = pages * page_size();
        let base = map_anon(len);
        let mut reg = UffdioRegister {
            start: base as u64,
            len: len as u64,
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes one `struct uffdio_register`.
        let r = unsafe { libc::ioctl(fd, uffd_op::<UffdioRegister>(0x00) as _, &mut reg) };
        assert_eq!(r, 0, "UFFDIO_REGISTER: {}", std::io::Error::last_os_error());
        Uffd { fd, base, len }
    }

    /// Wait up to `timeout` for a page fault in the region; its address.
    pub fn wait_fault(&self, timeout: Duration) -> Option<usize> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
            if r < 0 && last_errno() == Errno::INTR {
                continue;
            }
            assert!(
                r >= 0,
                "poll(userfaultfd): {}",
                std::io::Error::last_os_error()
            );
            if r == 0 {
                return None;
            }
            let mut msg = [0u64; 4]; // struct uffd_msg: 32 bytes
                                     // SAFETY: reads at most 32 bytes into `msg`.
            let n = unsafe { libc::read(self.fd, msg.as_mut_ptr().cast(), 32) };
            if n < 0 && matches!(last_errno(), Errno::AGAIN | Errno::INTR) {
                continue;
            }
            assert_eq!(
                n,
                32,
                "read(userfaultfd): {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: the first byte of the message is `event`.
            let event = unsafe { *msg.as_ptr().cast::<u8>() };
            if event == UFFD_EVENT_PAGEFAULT {
                // arg.pagefault = { u64 flags; u64 address; ... } at offset 8.
                return Some(msg[2] as usize);
            }
        }
    }

    /// Fill the page holding `addr` with the matching page of `content`
    /// (which covers the whole region), waking whoever waits for it.
    /// EEXIST (already filled) is fine.
    pub fn fill(&self, addr: usize, content: &[u8]) {
        assert_eq!(content.len(), self.len);
        let page = page_size();
        let off = (addr - self.base) / page * page;
        let mut copy = UffdioCopy {
            dst: (self.base + off) as u64,
            src: content[off..].as_ptr() as u64,
            len: page as u64,
            mode: 0,
            copy: 0,
        };
        // SAFETY: UFFDIO_COPY reads one page from `src` (inside `content`)
        // and writes the struct back.
        let r = unsafe { libc::ioctl(self.fd, uffd_op::<UffdioCopy>(0x03) as _, &mut copy) };
        if r < 0 && last_errno() != Errno::EXIST {
            panic!("UFFDIO_COPY: {}", std::io::Error::last_os_error());
        }
    }
}

/// The raw fd of anything with one (a Ksock).
pub fn raw_fd(f: &impl AsFd) -> RawFd {
    f.as_fd().as_raw_fd()
}

// ---- /proc/meminfo ------------------------------------------------------------

/// One field of /proc/meminfo, in bytes.
#[track_caller]
pub fn meminfo(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("reading /proc/meminfo");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            if let Some(v) = rest.strip_prefix(':') {
                let kb: u64 = v
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .expect("meminfo number");
                return kb * 1024;
            }
        }
    }
    panic!("no {field} in /proc/meminfo:\n{text}")
}

pub const MIB: u64 = 1024 * 1024;

// ---- the rig's debug kernel ---------------------------------------------------

/// Is this the rig's debug kernel (KASAN, lockdep, kmemleak, fault
/// injection; `--arch x86_64-debug`)? kmemleak exists only there. Every
/// allocation and lock is instrumented, so it runs 50 to 150 times slower
/// than the Debian kernel: timing bounds made for the Debian kernels would
/// measure the instrumentation, not the module. Tests use it to scale their
/// bounds and sizes, and still check what they check (the debug run is there
/// for KASAN, lockdep and kmemleak to watch them).
pub fn debug_kernel() -> bool {
    std::path::Path::new("/sys/kernel/debug/kmemleak").exists()
}
