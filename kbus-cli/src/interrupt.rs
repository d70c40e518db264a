//! Ctrl-C (SIGINT) and SIGTERM as an event to poll on, next to a Ksock.
//!
//! The handler only writes one byte to a self-pipe (`write(2)` is
//! async-signal-safe); the waits below poll the Ksock and the pipe together,
//! so a signal ends a wait at once and without a race. rustix has no
//! signal-handler API, so `sigaction(2)` comes from the `libc` crate; std
//! links the C library anyway (see the README), so that adds no library,
//! only its declarations.

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

use kbus_rustix::{Error, Ksock, Op};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, IntoRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};

static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static FIRED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    FIRED.store(true, Ordering::SeqCst);
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) on our own non-blocking pipe with a valid
        // one-byte buffer; async-signal-safe. A full pipe is fine: it is
        // readable already.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The read end of the self-pipe; the handler stays installed for the
/// process's life.
pub struct Interrupt {
    read: OwnedFd,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The Ksock has a message.
    Ready,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The deadline passed.
    TimedOut,
}

impl Interrupt {
    /// Install the handler for SIGINT and SIGTERM.
    pub fn install() -> std::io::Result<Interrupt> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        WRITE_FD.store(write.into_raw_fd(), Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
            // value; the handler is an `extern "C" fn(c_int)` that only does
            // async-signal-safe things.
            let rc = unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Interrupt { read })
    }

    /// Has a signal come?
    pub fn fired(&self) -> bool {
        FIRED.load(Ordering::SeqCst)
    }

    /// Wait until `k` has a message, a signal comes, or `deadline` passes.
    pub fn wait_readable(&self, k: &Ksock, deadline: Option<Instant>) -> Result<Wait, Error> {
        self.wait(k, PollFlags::IN, deadline)
    }

    /// Wait until `k` is writable (a pending ALL_OR_WAIT send has ended), a
    /// signal comes, or `deadline` passes. The module retries the pending
    /// message on each such poll.
    pub fn wait_writable(&self, k: &Ksock, deadline: Option<Instant>) -> Result<Wait, Error> {
        loop {
            if self.fired() {
                return Ok(Wait::Interrupted);
            }
            // The Ksock's own poll, so that it forgets the pending send when
            // it sees it writable; short slices let a signal through.
            let slice = std::time::Duration::from_millis(100);
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let t = left.map_or(slice, |l| l.min(slice));
            if k.poll(kbus_rustix::Ready::WRITE, Some(t))?.writable {
                return Ok(Wait::Ready);
            }
            if left.is_some_and(|l| l <= slice) {
                return Ok(Wait::TimedOut);
            }
        }
    }

    fn wait(&self, k: &Ksock, what: PollFlags, deadline: Option<Instant>) -> Result<Wait, Error> {
        loop {
            if self.fired() {
                return Ok(Wait::Interrupted);
            }
            let ts = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Wait::TimedOut);
                    }
                    Some(Timespec::try_from(left).map_err(|_| Error::os(Op::Poll, Errno::INVAL))?)
                }
            };
            let mut fds = [
                PollFd::new(k, what),
                PollFd::from_borrowed_fd(self.read.as_fd(), PollFlags::IN),
            ];
            match poll(&mut fds, ts.as_ref()) {
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::os(Op::Poll, e)),
                Ok(_) => {}
            }
            if !fds[1].revents().is_empty() {
                return Ok(Wait::Interrupted);
            }
            if !fds[0].revents().is_empty() {
                return Ok(Wait::Ready);
            }
        }
    }
}
