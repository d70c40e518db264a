//! The Limpet transport (spec §11): one stream connection (TCP or a Unix
//! socket) to one peer Limpet, as server or client, `HELO` + network id,
//! then frames ([`crate::frame`]) both ways.
//!
//! A server accepts one peer at a time and waits for the next when it goes;
//! a client reconnects (every second) when its connection ends. Each
//! connection is a link going up (with the peer's network id) and down.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::frame::{self, FrameError, HEADER_WORDS_LEN};
use crate::relay::{Input, LinkId};
use crate::Msg;

/// Where the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Address {
    /// `host:port` (it has a colon and does not start with `/` or `.`) is
    /// TCP; anything else is a Unix socket path, as with runlimpet.
    pub fn parse(s: &str) -> Address {
        if s.contains(':') && !s.starts_with('/') && !s.starts_with('.') {
            Address::Tcp(s.to_string())
        } else {
            Address::Unix(PathBuf::from(s))
        }
    }
}

/// One Limpet link.
#[derive(Debug, Clone)]
pub struct LimpetOptions {
    /// The peer's (client) or our (server) address.
    pub address: Address,
    /// Listen (true) or connect (false).
    pub server: bool,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Run the link forever (a server serving one peer after another, a
/// client reconnecting).
pub async fn run(
    link: LinkId,
    opts: LimpetOptions,
    net_id: u32,
    to_core: UnboundedSender<Input>,
    mut from_core: UnboundedReceiver<Msg>,
    verbose: u8,
) -> Result<(), String> {
    enum Listener {
        Tcp(tokio::net::TcpListener),
        Unix(tokio::net::UnixListener),
    }
    let listener = if opts.server {
        Some(match &opts.address {
            Address::Tcp(a) => Listener::Tcp(
                tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(|e| format!("limpet listen {a}: {e}"))?,
            ),
            Address::Unix(p) => {
                let _ = std::fs::remove_file(p);
                Listener::Unix(
                    tokio::net::UnixListener::bind(p)
                        .map_err(|e| format!("limpet listen {}: {e}", p.display()))?,
                )
            }
        })
    } else {
        None
    };
    loop {
        let stream: Box<dyn Stream> = match &listener {
            Some(Listener::Tcp(l)) => match l.accept().await {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    Box::new(s)
                }
                Err(e) => return Err(format!("limpet accept: {e}")),
            },
            Some(Listener::Unix(l)) => match l.accept().await {
                Ok((s, _)) => Box::new(s),
                Err(e) => return Err(format!("limpet accept: {e}")),
            },
            None => match connect(&opts.address).await {
                Ok(s) => s,
                Err(e) => {
                    if verbose > 1 {
                        eprintln!("kbus-bridge: limpet connect: {e}");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        // Whatever the core sent while no peer was there is dropped.
        while from_core.try_recv().is_ok() {}
        match serve(link, stream, net_id, &to_core, &mut from_core, verbose).await {
            Ok(()) => {}
            Err(e) => eprintln!("kbus-bridge: limpet link {link}: {e}"),
        }
        if to_core.is_closed() {
            return Ok(());
        }
        if !opts.server {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn connect(address: &Address) -> std::io::Result<Box<dyn Stream>> {
    Ok(match address {
        Address::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Address::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
    })
}

/// One connection: greet, then frames both ways until either side ends.
async fn serve(
    link: LinkId,
    stream: Box<dyn Stream>,
    net_id: u32,
    to_core: &UnboundedSender<Input>,
    from_core: &mut UnboundedReceiver<Msg>,
    verbose: u8,
) -> Result<(), String> {
    let (rd, mut wr) = tokio::io::split(stream);
    // Frames are read a header and a body at a time: buffered, a burst
    // costs a read system call per buffer, not two per frame.
    let mut rd = tokio::io::BufReader::with_capacity(STREAM_BATCH, rd);
    wr.write_all(&frame::helo(net_id))
        .await
        .map_err(|e| format!("write HELO: {e}"))?;
    let mut greeting = [0u8; 8];
    rd.read_exact(&mut greeting)
        .await
        .map_err(|e| format!("read HELO: {e}"))?;
    let peer = frame::parse_helo(&greeting).map_err(|e| e.to_string())?;
    if peer == net_id || peer == 0 {
        return Err(format!(
            "peer network id {peer} is ours or 0: every Limpet needs its own non-zero id"
        ));
    }
    if verbose > 0 {
        eprintln!("kbus-bridge: limpet link {link} up, peer network id {peer}");
    }
    let _ = to_core.send(Input::LinkUp {
        link,
        peer: Some(peer),
    });
    let reader = async {
        loop {
            match read_frame(&mut rd).await {
                Ok(Some(msg)) => {
                    let _ = to_core.send(Input::FromLink { link, msg });
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    let writer = async {
        let mut out = Vec::with_capacity(STREAM_BATCH);
        while let Some(msg) = from_core.recv().await {
            out.clear();
            frame::encode_into(&msg, &mut out);
            gather_waiting(&mut out, from_core);
            wr.write_all(&out)
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
        Ok::<(), String>(())
    };
    let result = tokio::select! {
        r = reader => r,
        r = writer => r,
    };
    let _ = to_core.send(Input::LinkDown { link });
    if verbose > 0 {
        eprintln!("kbus-bridge: limpet link {link} down");
    }
    result
}

/// Bytes of frames gathered into one write, and of the read buffer.
const STREAM_BATCH: usize = 64 * 1024;

/// Append to `out` the frames of the messages already waiting in `queue`,
/// in order, until [`STREAM_BATCH`] bytes are gathered: a burst then costs
/// one write (and, with TCP_NODELAY, few segments) per batch instead of
/// one per message. Nothing waits for more, so a lone message goes at once.
fn gather_waiting(out: &mut Vec<u8>, queue: &mut UnboundedReceiver<Msg>) {
    while out.len() < STREAM_BATCH {
        match queue.try_recv() {
            Ok(msg) => frame::encode_into(&msg, out),
            Err(_) => break,
        }
    }
}

/// Read one frame; `None` at a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Option<Msg>, String> {
    let mut frame = vec![0u8; HEADER_WORDS_LEN];
    match rd.read_exact(&mut frame).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("read: {e}")),
    }
    let (name_len, data_len) =
        frame::header_lengths(&frame).map_err(|e: FrameError| e.to_string())?;
    frame.resize(frame::frame_len(name_len, data_len), 0);
    rd.read_exact(&mut frame[HEADER_WORDS_LEN..])
        .await
        .map_err(|e| format!("read: {e}"))?;
    frame::decode(&frame).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_wire::{MessageId, MessageRepr};

    #[test]
    fn addresses() {
        assert_eq!(
            Address::parse("127.0.0.1:5000"),
            Address::Tcp("127.0.0.1:5000".into())
        );
        assert_eq!(
            Address::parse("localhost:1"),
            Address::Tcp("localhost:1".into())
        );
        assert_eq!(
            Address::parse("/tmp/limpet.sock"),
            Address::Unix("/tmp/limpet.sock".into())
        );
        assert_eq!(Address::parse("sock"), Address::Unix("sock".into()));
    }

    fn announcement(name: &str, id: MessageId, data: &[u8]) -> Msg {
        let mut r = MessageRepr::announcement(name, data);
        r.id = id;
        crate::msg_from_repr(&r)
    }

    /// Waiting messages join one write, in order, until the batch size is
    /// reached; the rest stay queued.
    #[test]
    fn waiting_frames_are_gathered() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let msgs: Vec<Msg> = (0..100u32)
            .map(|i| announcement("$.G", MessageId::new(0, i + 1), &[7; 1000]))
            .collect();
        for m in &msgs {
            tx.send(m.clone()).unwrap();
        }
        let mut out = Vec::new();
        gather_waiting(&mut out, &mut rx);
        let got: Vec<Msg> = frame::decode_each(&out).map(Result::unwrap).collect();
        let per = frame::frame_len(3, 1000);
        assert_eq!(got.len(), STREAM_BATCH.div_ceil(per));
        assert_eq!(got[..], msgs[..got.len()]);
        assert_eq!(rx.try_recv().unwrap(), msgs[got.len()]);
        let mut out = Vec::new();
        gather_waiting(&mut out, &mut rx);
        assert_eq!(out.len(), (msgs.len() - got.len() - 1) * per);
    }

    /// Our server and our client over a Unix socket: greetings, frames both
    /// ways, byte for byte, and link events.
    #[test]
    fn server_and_client_exchange_frames() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("kbus-limpet-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("sock");
            let (stx, mut srx) = tokio::sync::mpsc::unbounded_channel();
            let (s_out, s_in) = tokio::sync::mpsc::unbounded_channel();
            let (ctx, mut crx) = tokio::sync::mpsc::unbounded_channel();
            let (c_out, c_in) = tokio::sync::mpsc::unbounded_channel();
            let server = LimpetOptions {
                address: Address::Unix(path.clone()),
                server: true,
            };
            let client = LimpetOptions {
                address: Address::Unix(path.clone()),
                server: false,
            };
            tokio::spawn(run(0, server, 2, stx, s_in, 0));
            tokio::spawn(run(7, client, 1, ctx, c_in, 0));
            let up = |i: Option<Input>| match i {
                Some(Input::LinkUp { link, peer }) => (link, peer),
                other => panic!("{other:?}"),
            };
            assert_eq!(up(srx.recv().await), (0, Some(1)));
            assert_eq!(up(crx.recv().await), (7, Some(2)));
            let mut repr = MessageRepr::request("$.Sensors.Kitchen", b"temperature?");
            repr.id = MessageId::new(1, 42);
            let msg = crate::msg_from_repr(&repr);
            c_out.send(msg.clone()).unwrap();
            match srx.recv().await {
                Some(Input::FromLink { link: 0, msg: got }) => assert_eq!(got, msg),
                other => panic!("{other:?}"),
            }
            let back = crate::msg_from_repr(&MessageRepr::announcement("$.A", b""));
            s_out.send(back.clone()).unwrap();
            match crx.recv().await {
                Some(Input::FromLink { link: 7, msg: got }) => assert_eq!(got, back),
                other => panic!("{other:?}"),
            }
            // A burst queued at once is written gathered and read buffered:
            // every frame arrives whole and in order.
            let burst: Vec<Msg> = (0..1000u32)
                .map(|i| {
                    let data = vec![i as u8; (i % 97) as usize];
                    announcement("$.Burst", MessageId::new(2, i + 1), &data)
                })
                .collect();
            for m in &burst {
                s_out.send(m.clone()).unwrap();
            }
            for m in &burst {
                match crx.recv().await {
                    Some(Input::FromLink { link: 7, msg: got }) => assert_eq!(&got, m),
                    other => panic!("{other:?}"),
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
