//! Async Ksocks for tokio (feature `tokio`): [`AsyncKsock`].
//!
//! Readiness-based, over [`tokio::io::unix::AsyncFd`]: a task waits in the
//! reactor (epoll) for the Ksock to become readable or writable, then makes
//! the same non-blocking system calls as [`Ksock`]. Nothing runs on a
//! blocking thread.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use kbus_wire::{Message, MessageId, MessageRepr};
use tokio::io::unix::AsyncFd;

use crate::error::{Error, ErrorKind, Op, Result};
use crate::ksock::{Ksock, Ready};

pub use tokio::spawn;
pub use tokio::task::JoinHandle;

/// An owned received message.
pub type OwnedMessage = Message<Vec<u8>>;

/// A current-thread tokio runtime with the IO and time drivers an
/// [`AsyncKsock`] needs, for programs that have no runtime of their own:
/// `runtime()?.block_on(async { … })`. ([`spawn`] is tokio's, re-exported.)
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::os(Op::Poll, io_errno(&e)))
}

/// How often a task waiting for a pending send to finish asks the module
/// again, in case the module's poll does not wake epoll for it (a module
/// that registers its writer wait queue only when the Ksock is already in
/// sending state at the first poll: epoll polls once at registration).
const PENDING_RECHECK: Duration = Duration::from_millis(20);

/// A [`Ksock`] for tokio.
///
/// All methods take `&self`, so one `AsyncKsock` can serve many tasks at
/// once (e.g. 100 concurrent [`request`](Self::request)s). Messages that a
/// task reads but does not want (another request's Reply, an Announcement
/// while waiting for a Reply) are kept, in order, for the next
/// [`recv`](Self::recv), [`stream`](Self::stream) item or `request` that
/// wants them.
///
/// Every future is cancellation-safe: dropping it loses no message (a
/// message is only taken from the Ksock by code that runs without awaiting
/// until it is handed over or kept), and leaves no pending send (a send
/// still pending when its future is dropped is discarded).
///
/// ```no_run
/// # async fn f() -> kbus_rustix::Result<()> {
/// use kbus_rustix::tokio::AsyncKsock;
/// use kbus_rustix::{Ksock, MessageRepr, Mode};
/// use std::time::Duration;
///
/// let k = AsyncKsock::new(Ksock::open(0, Mode::ReadWrite)?)?;
/// let request = MessageRepr::request("$.Sensors.Kitchen", b"temperature?");
/// let reply = k.request(&request, Some(Duration::from_secs(1))).await?;
/// println!("{}", String::from_utf8_lossy(reply.data()));
/// # Ok(()) }
/// ```
pub struct AsyncKsock {
    fd: AsyncFd<Ksock>,
    state: Mutex<State>,
    /// Held while one message is written and SENT: the module assembles one
    /// message at a time per Ksock, so two tasks' writes must not
    /// interleave.
    sending: Mutex<()>,
    /// Held from NEXTMSG until the message is read: a second NEXTMSG in
    /// between would drop the first task's message.
    reading: Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Messages read but not yet handed to anyone, oldest first.
    kept: VecDeque<OwnedMessage>,
    /// Tasks to wake when `kept` grows.
    wakers: Vec<Waker>,
}

impl AsyncKsock {
    /// Register `ksock` with the current tokio runtime's reactor (must be
    /// called within one).
    pub fn new(ksock: Ksock) -> Result<Self> {
        let fd =
            crate::sys::register_async(ksock).map_err(|e| Error::os(Op::Poll, io_errno(&e)))?;
        Ok(AsyncKsock {
            fd,
            state: Mutex::default(),
            sending: Mutex::new(()),
            reading: Mutex::new(()),
        })
    }

    /// The Ksock, for everything that does not wait (bind, settings...).
    pub fn get_ref(&self) -> &Ksock {
        self.fd.get_ref()
    }

    /// The Ksock back (messages kept for later reads are dropped).
    pub fn into_inner(self) -> Ksock {
        self.fd.into_inner()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Wait for the next message and read it into `buf` (no heap unless it
    /// had to be kept earlier); the async form of
    /// [`Ksock::wait_for_msg`].
    ///
    /// If `buf` is too small the error is [`ErrorKind::BufferTooSmall`] and
    /// the message is kept: the next `recv` with a large enough buffer gets
    /// it.
    pub async fn recv<'b>(&self, buf: &'b mut [u8]) -> Result<Message<&'b [u8]>> {
        let len = poll_fn(|cx| self.poll_recv_into(cx, buf)).await?;
        Message::new_checked(&buf[..len])
            .map_err(|e| Error::new(Op::Read, ErrorKind::BadMessage(e)))
    }

    fn poll_recv_into(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        loop {
            {
                let mut state = self.state();
                if let Some(m) = state.kept.front() {
                    let bytes = m.as_bytes();
                    let Some(out) = buf.get_mut(..bytes.len()) else {
                        return Poll::Ready(Err(too_small(bytes.len(), buf.len())));
                    };
                    out.copy_from_slice(bytes);
                    state.kept.pop_front();
                    return Poll::Ready(Ok(out.len()));
                }
                register(&mut state, cx);
            }
            let mut guard = ready!(self.fd.poll_read_ready(cx)).map_err(read_error)?;
            let ksock = self.fd.get_ref();
            let _one_at_a_time = lock(&self.reading);
            match ksock.next_msg()? {
                None => guard.clear_ready(),
                Some(len) if len <= buf.len() => {
                    return Poll::Ready(ksock.read_current(len, buf).map(|m| m.total_len()));
                }
                Some(len) => {
                    // Too small: keep it (first in line) for a larger buffer.
                    let m = ksock.read_current_owned(len)?;
                    self.state().kept.push_front(m);
                    return Poll::Ready(Err(too_small(len, buf.len())));
                }
            }
        }
    }

    /// The next message that `want` accepts, owned; the others read on the
    /// way are kept in order.
    fn poll_owned(
        &self,
        cx: &mut Context<'_>,
        want: &dyn Fn(&OwnedMessage) -> bool,
    ) -> Poll<Result<OwnedMessage>> {
        loop {
            {
                let mut state = self.state();
                if let Some(i) = state.kept.iter().position(want) {
                    if let Some(m) = state.kept.remove(i) {
                        return Poll::Ready(Ok(m));
                    }
                }
                register(&mut state, cx);
            }
            let mut guard = ready!(self.fd.poll_read_ready(cx)).map_err(read_error)?;
            let popped = {
                let _one_at_a_time = lock(&self.reading);
                self.fd.get_ref().read_next_msg_owned()?
            };
            match popped {
                None => guard.clear_ready(),
                Some(m) if want(&m) => return Poll::Ready(Ok(m)),
                Some(m) => {
                    let wakers = {
                        let mut state = self.state();
                        state.kept.push_back(m);
                        std::mem::take(&mut state.wakers)
                    };
                    wakers.into_iter().for_each(Waker::wake);
                }
            }
        }
    }

    /// Wait for the next message, owned.
    pub async fn recv_owned(&self) -> Result<OwnedMessage> {
        poll_fn(|cx| self.poll_owned(cx, &|_| true)).await
    }

    /// A [`Stream`] of owned messages, in order, forever (until an error,
    /// which it yields and then goes on).
    pub fn stream(&self) -> MessageStream<'_> {
        MessageStream { ksock: self }
    }

    /// Send `msg` (zero-copy, as [`Ksock::send_msg`]) and return its id.
    ///
    /// If an earlier ALL_OR_WAIT send of this Ksock is pending, first wait
    /// (for writable) until the module has finished it. If `msg` itself has
    /// ALL_OR_WAIT and a recipient is full, wait until the module has
    /// finished it too; a failure then arrives as a message
    /// (`$.KBUS.Replier.Disappeared`, `$.KBUS.ErrorSending`), as with the
    /// synchronous API. Dropping the future while it waits discards that
    /// pending message.
    pub async fn send_msg(&self, msg: &MessageRepr<'_>) -> Result<MessageId> {
        let ksock = self.get_ref();
        loop {
            let attempt = {
                let _one_at_a_time = lock(&self.sending);
                match ksock.pending_send() {
                    Some(other) => Err(other),
                    None => Ok(ksock.send_msg(msg)),
                }
            };
            match attempt {
                Err(other) => self.wait_finished(other).await?,
                Ok(Ok(id)) => return Ok(id),
                Ok(Err(e)) if e.is(rustix::io::Errno::AGAIN) && e.message_id().is_some() => {
                    let id = e.message_id().unwrap_or(MessageId::ZERO);
                    let mut discard = DiscardOnDrop {
                        ksock,
                        id: Some(id),
                    };
                    self.wait_finished(id).await?;
                    discard.id = None;
                    return Ok(id);
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Wait until the module has finished the pending send `id` (poll
    /// reports writable), asking it again every [`PENDING_RECHECK`].
    async fn wait_finished(&self, id: MessageId) -> Result<()> {
        let ksock = self.get_ref();
        while ksock.pending_send() == Some(id) {
            if ksock.poll(Ready::WRITE, Some(Duration::ZERO))?.writable {
                break;
            }
            if let Ok(guard) = tokio::time::timeout(PENDING_RECHECK, self.fd.writable()).await {
                let mut guard = guard.map_err(|e| Error::os(Op::Poll, io_errno(&e)))?;
                // The zero-timeout poll at the top decides; let the next
                // wake-up through.
                guard.clear_ready();
            }
        }
        Ok(())
    }

    /// Send the Request `request` and wait for its answer: the Reply, or the
    /// synthetic answer KBUS sends instead (`$.KBUS.Replier.GoneAway`, …),
    /// i.e. the first message whose `in_reply_to` is the Request's id.
    /// Other messages that arrive meanwhile are kept for later reads.
    ///
    /// `timeout` bounds the whole exchange; when it runs out the error is
    /// [`ErrorKind::TimedOut`] (an answer arriving later is kept like any
    /// other message).
    pub async fn request(
        &self,
        request: &MessageRepr<'_>,
        timeout: Option<Duration>,
    ) -> Result<OwnedMessage> {
        let exchange = async {
            let id = self.send_msg(request).await?;
            poll_fn(|cx| self.poll_owned(cx, &|m| m.in_reply_to() == id)).await
        };
        match timeout {
            None => exchange.await,
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .unwrap_or_else(|_| Err(Error::new(Op::Read, ErrorKind::TimedOut))),
        }
    }
}

/// Discards this Ksock's pending send `id` when dropped armed (a cancelled
/// [`AsyncKsock::send_msg`]).
struct DiscardOnDrop<'k> {
    ksock: &'k Ksock,
    id: Option<MessageId>,
}

impl Drop for DiscardOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            if self.ksock.pending_send() == Some(id) {
                let _ = self.ksock.discard();
            }
        }
    }
}

/// The [`Stream`] of [`AsyncKsock::stream`].
pub struct MessageStream<'k> {
    ksock: &'k AsyncKsock,
}

impl Stream for MessageStream<'_> {
    type Item = Result<OwnedMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ksock.poll_owned(cx, &|_| true).map(Some)
    }
}

/// Every lock here guards a short section without awaits, which leaves its
/// data consistent even if it panics, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(state: &mut State, cx: &Context<'_>) {
    if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
        state.wakers.push(cx.waker().clone());
    }
}

fn too_small(needed: usize, available: usize) -> Error {
    Error::new(Op::Read, ErrorKind::BufferTooSmall { needed, available })
}

fn io_errno(e: &std::io::Error) -> rustix::io::Errno {
    rustix::io::Errno::from_io_error(e).unwrap_or(rustix::io::Errno::IO)
}

fn read_error(e: std::io::Error) -> Error {
    Error::os(Op::Poll, io_errno(&e))
}
