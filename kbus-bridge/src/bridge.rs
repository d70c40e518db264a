//! The driver: one local Ksock, the [`Relay`] core and any number of links,
//! on tokio.
//!
//! Three kinds of task feed one channel of [`Input`]s to the core loop: the
//! Ksock reader, the local writer (which reports failed SENDs) and one task
//! per link. The core loop never waits on the device or a link: local
//! sends and binds go, in order, to the writer task (so an ALL_OR_WAIT send
//! that waits for a full Listener does not stop the reading), and link
//! messages to each link's own queue.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kbus_rustix::tokio::AsyncKsock;
use kbus_rustix::{Ksock, Mode, Role};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::frame::BIND_EVENT_NAME;
use crate::limpet::LimpetOptions;
use crate::relay::{Action, Input, LinkId, Relay};
use crate::Msg;

/// How to join the Zenoh network.
#[derive(Debug, Clone, Default)]
pub struct ZenohOptions {
    /// A Zenoh configuration file (JSON5); the options below are applied
    /// on top of it.
    pub config: Option<PathBuf>,
    /// Endpoints to connect to (`tcp/127.0.0.1:7447`, `unixsock-stream/…`).
    pub connect: Vec<String>,
    /// Endpoints to listen on.
    pub listen: Vec<String>,
    /// Keep multicast scouting on (off by default: peers are the endpoints
    /// given).
    pub multicast: bool,
}

/// One link of a bridge.
#[derive(Debug, Clone)]
pub enum LinkSpec {
    /// A Zenoh session.
    Zenoh(ZenohOptions),
    /// A Limpet connection.
    Limpet(LimpetOptions),
}

/// What the bridge serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// KBUS device number (`/dev/kbus<N>`).
    pub bus: u32,
    /// Our network id (non-zero, distinct from every other bridge's).
    pub net_id: u32,
    /// The name bound as Listener and proxied (default `$.*`).
    pub message: String,
    /// 0 quiet, 1 links and errors, 2 every message.
    pub verbose: u8,
    /// The links.
    pub links: Vec<LinkSpec>,
}

/// What a Limpet-only build says when asked for Zenoh.
pub const NO_ZENOH: &str =
    "this kbus-bridge is built without Zenoh (cargo feature `zenoh`): only Limpet links";

/// Queue limit of the bridge's Ksock: a full Listener is skipped silently
/// by KBUS, so the bridge keeps room for bursts.
const MAX_QUEUED: u32 = 10_000;

enum LocalOp {
    Send(Msg),
    Bind(Vec<u8>),
    Unbind(Vec<u8>),
}

/// Run the bridge until a link fails for good or the device goes.
pub async fn run(opts: Options) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: kbus_rustix::Error| format!("{what}: {e}")
    };
    let ksock = Ksock::open(opts.bus, Mode::ReadWrite).map_err(err("open"))?;
    let ksock_id = ksock.ksock_id().map_err(err("KSOCKID"))?;
    ksock.set_max_messages(MAX_QUEUED).map_err(err("MAXMSGS"))?;
    ksock.want_messages_once(true).map_err(err("MSGONLYONCE"))?;
    ksock
        .bind(&opts.message, Role::Listener)
        .map_err(err("bind"))?;
    ksock
        .bind(BIND_EVENT_NAME, Role::Listener)
        .map_err(err("bind"))?;
    // Turning it on also queues the existing Replier bindings to us.
    ksock
        .report_replier_binds(true)
        .map_err(err("REPORTREPLIERBINDS"))?;
    let ksock = Arc::new(AsyncKsock::new(ksock).map_err(err("register"))?);
    if opts.verbose > 0 {
        eprintln!(
            "kbus-bridge: /dev/kbus{} Ksock {ksock_id}, network id {}, proxying {}",
            opts.bus, opts.net_id, opts.message
        );
    }

    let (tx, mut inputs) = unbounded_channel::<Input>();
    let mut links: BTreeMap<LinkId, UnboundedSender<Msg>> = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, spec) in opts.links.iter().enumerate() {
        let link = i as LinkId;
        let (ltx, lrx) = unbounded_channel();
        links.insert(link, ltx);
        let tx = tx.clone();
        let (net, verbose) = (opts.net_id, opts.verbose);
        match spec.clone() {
            #[cfg(feature = "zenoh")]
            LinkSpec::Zenoh(z) => {
                let name = opts.message.clone().into_bytes();
                tasks.spawn(crate::zenoh_link::run(link, z, net, name, tx, lrx, verbose));
            }
            #[cfg(not(feature = "zenoh"))]
            LinkSpec::Zenoh(_) => return Err(NO_ZENOH.into()),
            LinkSpec::Limpet(l) => {
                tasks.spawn(crate::limpet::run(link, l, net, tx, lrx, verbose));
            }
        }
    }

    // The local writer: sends and binds in the order the core asked.
    let (local_tx, mut local_rx) = unbounded_channel::<LocalOp>();
    let writer = {
        let ksock = ksock.clone();
        let tx = tx.clone();
        let verbose = opts.verbose;
        tokio::spawn(async move {
            while let Some(op) = local_rx.recv().await {
                match op {
                    LocalOp::Send(msg) => {
                        let r = ksock.send_msg(&msg.view().repr()).await;
                        if let Err(e) = r {
                            if verbose > 0 {
                                eprintln!("kbus-bridge: send {}: {e}", msg.view());
                            }
                            let errno = e.errno().unwrap_or(kbus_rustix::Errno::IO);
                            let _ = tx.send(Input::LocalSendFailed { msg, errno });
                        }
                    }
                    LocalOp::Bind(name) => {
                        if let Err(e) = ksock.get_ref().bind(&name, Role::Replier) {
                            eprintln!(
                                "kbus-bridge: proxy Replier for {}: {e}",
                                String::from_utf8_lossy(&name)
                            );
                        }
                    }
                    LocalOp::Unbind(name) => {
                        let _ = ksock.get_ref().unbind(&name, Role::Replier);
                    }
                }
            }
        })
    };

    // The reader.
    let reader = {
        let ksock = ksock.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match ksock.recv_owned().await {
                    Ok(msg) => {
                        if tx.send(Input::Local(msg)).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        })
    };
    drop(tx);

    let mut relay = Relay::new(opts.net_id, ksock_id);
    let result = loop {
        tokio::select! {
            input = inputs.recv() => {
                let Some(input) = input else { break Ok(()) };
                if opts.verbose > 1 {
                    eprintln!("kbus-bridge: <- {}", show_input(&input));
                }
                for action in relay.handle(input) {
                    if opts.verbose > 1 {
                        eprintln!("kbus-bridge: -> {}", show_action(&action));
                    }
                    match action {
                        Action::SendLocal(m) => {
                            let _ = local_tx.send(LocalOp::Send(m));
                        }
                        Action::BindProxy(n) => {
                            let _ = local_tx.send(LocalOp::Bind(n));
                        }
                        Action::UnbindProxy(n) => {
                            let _ = local_tx.send(LocalOp::Unbind(n));
                        }
                        Action::ToLink { link, msg } => {
                            if let Some(l) = links.get(&link) {
                                let _ = l.send(msg);
                            }
                        }
                    }
                }
            }
            done = tasks.join_next(), if !tasks.is_empty() => {
                match done {
                    Some(Ok(Err(e))) => break Err(e),
                    Some(Err(e)) => break Err(format!("link task: {e}")),
                    _ => {}
                }
            }
        }
    };
    reader.abort();
    writer.abort();
    result
}

fn show_input(i: &Input) -> String {
    match i {
        Input::Local(m) => format!("local {m}"),
        Input::LocalSendFailed { msg, errno } => format!("send failed ({errno}) {msg}"),
        Input::LinkUp { link, peer } => format!("link {link} up (peer {peer:?})"),
        Input::FromLink { link, msg } => format!("link {link}: {msg}"),
        Input::RequestLost { link, request } => format!("link {link}: no answer for {request}"),
        Input::LinkDown { link } => format!("link {link} down"),
    }
}

fn show_action(a: &Action) -> String {
    match a {
        Action::SendLocal(m) => format!("local {m}"),
        Action::BindProxy(n) => format!("bind proxy {}", String::from_utf8_lossy(n)),
        Action::UnbindProxy(n) => format!("unbind proxy {}", String::from_utf8_lossy(n)),
        Action::ToLink { link, msg } => format!("link {link}: {msg}"),
    }
}
