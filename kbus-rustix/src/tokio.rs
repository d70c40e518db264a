//! Async Ksocks for tokio (feature `tokio`): [`AsyncKsock`].
//!
//! Readiness-based, over [`tokio::io::unix::AsyncFd`]: a task waits in the
//! reactor (epoll) for the Ksock to become readable or writable, then makes
//! the same non-blocking system calls as [`Ksock`]. Nothing runs on a
//! blocking thread.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use kbus_wire::{Message, MessageId, MessageRepr};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

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
/// still pending when its future is dropped is discarded). Waiting uses
/// tokio's multi-waiter `AsyncFd::readable`, so any number of tasks can
/// wait at once.
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
    /// Messages read but not yet handed to anyone, oldest first. Only
    /// changed with `reading` held, so they stay older than anything still
    /// in the Ksock's queue.
    kept: Mutex<VecDeque<OwnedMessage>>,
    /// Notified when `kept` grows.
    kept_grew: Notify,
    /// Held while one message is written and SENT: the module assembles one
    /// message at a time per Ksock, so two tasks' writes must not
    /// interleave.
    sending: Mutex<()>,
    /// Held from looking at `kept` through NEXTMSG until the message read is
    /// handed over or kept: a second NEXTMSG in between would drop the
    /// first task's message, and a message kept late would be overtaken.
    reading: Mutex<()>,
}

impl AsyncKsock {
    /// Register `ksock` with the current tokio runtime's reactor (must be
    /// called within one).
    pub fn new(ksock: Ksock) -> Result<Self> {
        let fd =
            crate::sys::register_async(ksock).map_err(|e| Error::os(Op::Poll, io_errno(&e)))?;
        Ok(AsyncKsock {
            fd,
            kept: Mutex::default(),
            kept_grew: Notify::new(),
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

    /// Wait until the Ksock may be readable or `kept` has grown since
    /// `kept_grew` was enabled. Returns the readiness guard when readable.
    async fn wait_readable_or_kept<'a>(
        &'a self,
        kept_grew: Pin<&mut tokio::sync::futures::Notified<'a>>,
    ) -> Result<Option<tokio::io::unix::AsyncFdReadyGuard<'a, Ksock>>> {
        let mut readable = pin!(self.fd.readable());
        let mut kept_grew = kept_grew;
        poll_fn(|cx| {
            if let Poll::Ready(r) = readable.as_mut().poll(cx) {
                return Poll::Ready(r.map(Some).map_err(read_error));
            }
            kept_grew.as_mut().poll(cx).map(|()| Ok(None))
        })
        .await
    }

    /// Wait for the next message and read it into `buf` (no heap unless it
    /// had to be kept earlier); the async form of
    /// [`Ksock::wait_for_msg`].
    ///
    /// If `buf` is too small the error is [`ErrorKind::BufferTooSmall`] and
    /// the message is kept: the next `recv` with a large enough buffer gets
    /// it.
    pub async fn recv<'b>(&self, buf: &'b mut [u8]) -> Result<Message<&'b [u8]>> {
        let len = loop {
            let mut kept_grew = pin!(self.kept_grew.notified());
            kept_grew.as_mut().enable();
            {
                let _reading = lock(&self.reading);
                if let Some(r) = self.recv_kept(buf) {
                    break r?;
                }
            }
            let Some(mut guard) = self.wait_readable_or_kept(kept_grew).await? else {
                continue;
            };
            // From here to the end of the block nothing awaits, so a
            // cancelled `recv` never holds a message.
            let _reading = lock(&self.reading);
            if let Some(r) = self.recv_kept(buf) {
                break r?;
            }
            let ksock = self.fd.get_ref();
            match ksock.next_msg()? {
                None => guard.clear_ready(),
                Some(len) if len <= buf.len() => {
                    break ksock.read_current(len, buf)?.total_len();
                }
                Some(len) => {
                    // Too small: keep it (first in line) for a larger buffer.
                    let m = ksock.read_current_owned(len)?;
                    lock(&self.kept).push_front(m);
                    return Err(too_small(len, buf.len()));
                }
            }
        };
        Message::new_checked(&buf[..len])
            .map_err(|e| Error::new(Op::Read, ErrorKind::BadMessage(e)))
    }

    /// The oldest kept message copied into `buf` (and no longer kept), if
    /// there is one; `reading` must be held.
    fn recv_kept(&self, buf: &mut [u8]) -> Option<Result<usize>> {
        let mut kept = lock(&self.kept);
        let bytes = kept.front()?.as_bytes();
        let Some(out) = buf.get_mut(..bytes.len()) else {
            return Some(Err(too_small(bytes.len(), buf.len())));
        };
        out.copy_from_slice(bytes);
        kept.pop_front();
        Some(Ok(out.len()))
    }

    /// The first kept message that `want` accepts (no longer kept);
    /// `reading` must be held.
    fn take_kept(&self, want: &Want<'_>) -> Option<OwnedMessage> {
        let mut kept = lock(&self.kept);
        let i = kept.iter().position(want)?;
        kept.remove(i)
    }

    /// The next message that `want` accepts, owned; the others read on the
    /// way are kept in order.
    async fn next_wanted(&self, want: &Want<'_>) -> Result<OwnedMessage> {
        loop {
            let mut kept_grew = pin!(self.kept_grew.notified());
            kept_grew.as_mut().enable();
            {
                let _reading = lock(&self.reading);
                if let Some(m) = self.take_kept(want) {
                    return Ok(m);
                }
            }
            let Some(mut guard) = self.wait_readable_or_kept(kept_grew).await? else {
                continue;
            };
            // No await from here on: a cancelled future holds no message.
            let reading = lock(&self.reading);
            if let Some(m) = self.take_kept(want) {
                return Ok(m);
            }
            match self.fd.get_ref().read_next_msg_owned()? {
                None => guard.clear_ready(),
                Some(m) if want(&m) => return Ok(m),
                Some(m) => {
                    lock(&self.kept).push_back(m);
                    drop(reading);
                    self.kept_grew.notify_waiters();
                }
            }
        }
    }

    /// Wait for the next message, owned.
    pub async fn recv_owned(&self) -> Result<OwnedMessage> {
        self.next_wanted(&|_| true).await
    }

    /// A [`Stream`] of owned messages, in order, forever (until an error,
    /// which it yields and then goes on).
    pub fn stream(&self) -> MessageStream<'_> {
        MessageStream {
            ksock: self,
            next: None,
        }
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
            self.next_wanted(&|m| m.in_reply_to() == id).await
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

/// Which messages a waiting task takes.
type Want<'w> = dyn Fn(&OwnedMessage) -> bool + Send + Sync + 'w;

/// The [`Stream`] of [`AsyncKsock::stream`]. Dropping it between items
/// loses nothing; dropping it while an item is being waited for loses
/// nothing either (see [`AsyncKsock`]).
pub struct MessageStream<'k> {
    ksock: &'k AsyncKsock,
    next: Option<Pin<Box<dyn Future<Output = Result<OwnedMessage>> + Send + 'k>>>,
}

impl Stream for MessageStream<'_> {
    type Item = Result<OwnedMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let ksock = this.ksock;
        let next = this
            .next
            .get_or_insert_with(|| Box::pin(ksock.recv_owned()));
        let item = std::task::ready!(next.as_mut().poll(cx));
        this.next = None;
        Poll::Ready(Some(item))
    }
}

/// Every lock here guards a short section without awaits, which leaves its
/// data consistent even if it panics, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
