//! The Zenoh transport: one link to a Zenoh network of any number of
//! bridges.
//!
//! | KBUS | Zenoh |
//! |---|---|
//! | Announcement | `put` on the name's key ([`crate::keys`]), congestion control *block*; Announcements of one name already waiting together share one put |
//! | Replier binding on a device | a queryable on the binding's key (complete) and a liveliness token `kbus-replier/<net>/<binder>/…` |
//! | Request to a remote Replier | a `get` on the name's key (a Stateful Request: to all matching queryables, only the one behind `final_to` answers) |
//! | its Reply (or KBUS's synthetic answer) | the query's reply |
//! | Replier gone (token deleted, its bridge died) | remote bridges unbind their proxy; a query that ends without a reply is answered `$.KBUS.Replier.GoneAway` |
//!
//! Every payload is the Limpet frame of the message ([`crate::frame`]), so
//! ids, flags, `orig_from` and `final_to` cross unchanged; a put's payload
//! may hold several frames back to back ([`frame::decode_each`]). Our own
//! puts, queries and tokens are not delivered back to us.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kbus_wire::MessageId;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::{ConsolidationMode, Query, QueryTarget, Queryable, Reply};
use zenoh::sample::{Locality, SampleKind};
use zenoh::{Config, Session};

pub use crate::bridge::ZenohOptions;
use crate::frame::{self, BIND_EVENT_NAME};
use crate::keys;
use crate::relay::{bind_event, Input, LinkId};
use crate::Msg;

/// A local Replier binding served on Zenoh: its queryable, its liveliness
/// token and the token's key, by (binding string, binder).
type Served = HashMap<(Vec<u8>, u32), (Queryable<()>, LivelinessToken, String)>;

/// A query we answer, waiting for its Reply from the device.
type Pending = Arc<Mutex<HashMap<MessageId, Query>>>;

/// How long a query may wait for its answer. KBUS has no timeout: a
/// Request waits for its Replier however long it takes, so this is only a
/// bound against leaks; the link or the answering bridge going away ends a
/// query much sooner.
const QUERY_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Build the session configuration.
pub fn config(opts: &ZenohOptions) -> Result<Config, String> {
    let mut c = match &opts.config {
        Some(p) => {
            Config::from_file(p).map_err(|e| format!("zenoh config {}: {e}", p.display()))?
        }
        None => Config::default(),
    };
    let set = |c: &mut Config, k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| format!("zenoh config {k} = {v}: {e}"))
    };
    if opts.config.is_none() {
        set(&mut c, "mode", "\"peer\"".into())?;
    }
    if !opts.multicast {
        set(&mut c, "scouting/multicast/enabled", "false".into())?;
    }
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|e| format!("\"{e}\"")).collect();
        format!("[{}]", items.join(","))
    };
    if !opts.connect.is_empty() {
        set(&mut c, "connect/endpoints", list(&opts.connect))?;
    }
    if !opts.listen.is_empty() || opts.config.is_none() {
        // Without --listen a peer listens nowhere (Zenoh's default would be
        // every IPv6 and IPv4 address on a random port).
        set(&mut c, "listen/endpoints", list(&opts.listen))?;
    }
    Ok(c)
}

/// Run the link until the session fails: messages from the core arrive on
/// `from_core`, what Zenoh delivers goes to the core on `to_core`.
pub async fn run(
    link: LinkId,
    opts: ZenohOptions,
    net_id: u32,
    listen_name: Vec<u8>,
    to_core: UnboundedSender<Input>,
    mut from_core: UnboundedReceiver<Msg>,
    verbose: u8,
) -> Result<(), String> {
    let session = zenoh::open(config(&opts)?)
        .await
        .map_err(|e| format!("zenoh open: {e}"))?;
    if verbose > 0 {
        eprintln!("kbus-bridge: zenoh session {} up", session.zid());
    }
    let sub_key = keys::name_to_key(&listen_name)
        .ok_or_else(|| format!("no key for {}", String::from_utf8_lossy(&listen_name)))?;
    let tx = to_core.clone();
    let received_keys = ReceivedKeys::start(&session);
    let _subscriber = session
        .declare_subscriber(sub_key)
        .allowed_origin(Locality::Remote)
        .callback(move |sample| {
            received_keys.saw(sample.key_expr().as_str());
            for one in frame::decode_each(&sample.payload().to_bytes()) {
                match one {
                    Ok(msg) => {
                        let _ = tx.send(Input::FromLink { link, msg });
                    }
                    Err(e) => eprintln!(
                        "kbus-bridge: zenoh: bad sample on {}: {e}",
                        sample.key_expr()
                    ),
                }
            }
        })
        .await
        .map_err(|e| format!("zenoh subscriber: {e}"))?;

    // Tokens we declared ourselves, not to be taken for remote Repliers.
    let ours: Arc<Mutex<HashSet<String>>> = Arc::default();
    let tx = to_core.clone();
    let ours_cb = ours.clone();
    let _tokens = session
        .liveliness()
        .declare_subscriber(format!("{}/**", keys::REPLIER_PREFIX))
        .history(true)
        .callback(move |sample| {
            let key = sample.key_expr().as_str();
            if lock(&ours_cb).contains(key) {
                return;
            }
            let Some((net, binder, name)) = keys::parse_replier_token(key) else {
                return;
            };
            if net == net_id {
                return;
            }
            let mut ev = bind_event(sample.kind() == SampleKind::Put, binder, &name);
            ev.set_id(MessageId::new(net, 0));
            let _ = tx.send(Input::FromLink { link, msg: ev });
        })
        .await
        .map_err(|e| format!("zenoh liveliness subscriber: {e}"))?;

    let _ = to_core.send(Input::LinkUp { link, peer: None });

    let pending: Pending = Arc::default();
    let mut repliers: Served = HashMap::new();
    let mut publishers = Publishers::default();
    // A message taken from the queue to see whether it joins a batch, and
    // that did not.
    let mut held: Option<Msg> = None;
    loop {
        let msg = match held.take() {
            Some(msg) => msg,
            None => match from_core.recv().await {
                Some(msg) => msg,
                None => break,
            },
        };
        let name = msg.name_bytes().to_vec();
        let Some(key) = keys::name_to_key(&name) else {
            continue;
        };
        match Outgoing::of(&msg) {
            Outgoing::BindEvent => {
                let Ok(ev) = msg.view().bind_event() else {
                    continue;
                };
                let bound = ev.name_bytes().to_vec();
                let Some(qkey) = keys::name_to_key(&bound) else {
                    continue;
                };
                let id = (bound.clone(), ev.binder());
                if !ev.is_bind() {
                    if let Some((_q, _t, token_key)) = repliers.remove(&id) {
                        lock(&ours).remove(&token_key);
                    }
                    continue;
                }
                if repliers.contains_key(&id) {
                    continue;
                }
                let origin = match msg.id().network_id {
                    0 => net_id,
                    n => n,
                };
                let Some(token_key) = keys::replier_token(origin, ev.binder(), &bound) else {
                    continue;
                };
                let q = declare_queryable(&session, qkey, link, net_id, &to_core, &pending).await?;
                lock(&ours).insert(token_key.clone());
                let token = session
                    .liveliness()
                    .declare_token(token_key.clone())
                    .await
                    .map_err(|e| format!("zenoh token: {e}"))?;
                repliers.insert(id, (q, token, token_key));
            }
            Outgoing::Query => {
                query(&session, key, &msg, link, &to_core).await;
            }
            Outgoing::Reply => {
                let query = lock(&pending).remove(&msg.in_reply_to());
                if let Some(query) = query {
                    let ke = query.key_expr().clone();
                    if let Err(e) = query.reply(ke, frame::encode(&msg)).await {
                        eprintln!("kbus-bridge: zenoh reply: {e}");
                    }
                }
            }
            Outgoing::Put => {
                let mut payload = frame::encode(&msg);
                held = join_waiting(&mut payload, &name, &mut from_core);
                let r = match publishers.get(&session, key).await {
                    Ok(publisher) => publisher.put(payload).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    eprintln!("kbus-bridge: zenoh put: {e}");
                }
            }
        }
    }
    let _ = to_core.send(Input::LinkDown { link });
    Ok(())
}

/// Largest payload [`join_waiting`] makes (Zenoh's default batch size: a
/// bigger one is fragmented).
const MAX_JOINED: usize = 64 * 1024;

/// What a message from the core becomes on Zenoh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outgoing {
    /// A Replier Bind Event: a queryable and a liveliness token, or their end.
    BindEvent,
    /// A Request for a Replier: a query.
    Query,
    /// A Reply: the answer to a query we serve.
    Reply,
    /// Anything else (Announcements, Requests to Listeners only): a put.
    Put,
}

impl Outgoing {
    fn of(msg: &Msg) -> Outgoing {
        if msg.name_bytes() == BIND_EVENT_NAME {
            Outgoing::BindEvent
        } else if msg.is_request() && msg.wants_us_to_reply() {
            Outgoing::Query
        } else if msg.is_reply() {
            Outgoing::Reply
        } else {
            Outgoing::Put
        }
    }
}

/// Append to `payload` the frames of the puts of `name` already waiting
/// in `queue`, in order, up to [`MAX_JOINED`] bytes; return the first
/// waiting message that does not join (to be handled next).
///
/// Under a burst, one put then carries many messages: the cost of a put
/// (routing, Zenoh's framing, the subscriber's wake-up and callback) is
/// paid once per batch instead of once per message. Nothing waits for a
/// batch to fill, so a lone message goes at once; order is kept, since
/// only consecutive messages of one key join and puts keep their order.
fn join_waiting(
    payload: &mut Vec<u8>,
    name: &[u8],
    queue: &mut UnboundedReceiver<Msg>,
) -> Option<Msg> {
    while let Ok(next) = queue.try_recv() {
        let fits = payload.len() + frame::frame_len(next.name_bytes().len(), next.data().len())
            <= MAX_JOINED;
        if !(fits && next.name_bytes() == name && Outgoing::of(&next) == Outgoing::Put) {
            return Some(next);
        }
        frame::encode_into(&next, payload);
    }
    None
}

/// The most recent Announcement keys, each with its declared publisher.
///
/// A put on a key that nothing declared makes Zenoh compute the key's
/// routes (match it against every subscription) for each message; a
/// declared publisher's key is a resource in Zenoh's routing tables, whose
/// routes are computed once and kept. (Measured in the rig's x86_64 guest,
/// with a remote `kbus/**` subscriber: a 64-byte put took ~600 µs without
/// and ~70 µs with.)
#[derive(Default)]
struct Publishers {
    by_key: HashMap<String, Publisher<'static>>,
}

impl Publishers {
    /// How many keys keep a publisher. Past this (a bridge that sees very
    /// many distinct names) all are undeclared and the cache starts over,
    /// so memory stays bounded.
    const MAX: usize = 1024;

    async fn get(&mut self, session: &Session, key: String) -> zenoh::Result<&Publisher<'static>> {
        if !self.by_key.contains_key(&key) {
            if self.by_key.len() >= Self::MAX {
                self.by_key.clear();
            }
            let publisher = session
                .declare_publisher(key.clone())
                .congestion_control(CongestionControl::Block)
                .await?;
            self.by_key.insert(key.clone(), publisher);
        }
        Ok(&self.by_key[&key])
    }
}

/// The keys Announcements arrive on, each declared in our session once it
/// has been seen.
///
/// Our subscriber's key is a wildcard (`kbus/**`). Zenoh computes the
/// routes of a sample whose key is not a resource in its tables afresh for
/// every sample, matching it against every subscription; a key the session
/// has declared keeps its routes. (Measured natively with plain Zenoh and a
/// `**` subscriber: 0.25–0.36 M puts/s, and 1.3–1.5 M/s once the publisher
/// is declared and the subscriber's session has declared the key, the same
/// as an exact subscription.)
///
/// The callback does not declare itself: it runs inside Zenoh's receive
/// path, and a declaration goes back into Zenoh's routing tables from
/// there (not tried: a deadlock risk not worth taking), so it hands new
/// keys to a task on our runtime.
struct ReceivedKeys {
    asked: Arc<Mutex<HashSet<String>>>,
    to_declare: UnboundedSender<String>,
}

impl ReceivedKeys {
    /// How many keys stay declared. Past this (a bus with very many
    /// distinct names) all are undeclared and the set starts over, so
    /// memory stays bounded.
    const MAX: usize = 1024;

    /// Start the declaring task (in the current runtime).
    fn start(session: &Session) -> ReceivedKeys {
        let asked: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (to_declare, mut keys) = tokio::sync::mpsc::unbounded_channel::<String>();
        let session = session.clone();
        tokio::spawn(async move {
            let mut declared = Vec::new();
            while let Some(key) = keys.recv().await {
                // `saw` starts over at the same count.
                if declared.len() >= Self::MAX {
                    declared.clear();
                }
                // A key Zenoh refuses is only not optimised.
                if let Ok(k) = session.declare_keyexpr(key).await {
                    declared.push(k);
                }
            }
        });
        ReceivedKeys { asked, to_declare }
    }

    /// Note that a sample arrived on `key`.
    fn saw(&self, key: &str) {
        let mut asked = lock(&self.asked);
        if !asked.contains(key) {
            if asked.len() >= Self::MAX {
                asked.clear();
            }
            asked.insert(key.to_owned());
            let _ = self.to_declare.send(key.to_owned());
        }
    }
}

async fn declare_queryable(
    session: &Session,
    key: String,
    link: LinkId,
    net_id: u32,
    to_core: &UnboundedSender<Input>,
    pending: &Pending,
) -> Result<Queryable<()>, String> {
    let tx = to_core.clone();
    let pending = pending.clone();
    session
        .declare_queryable(key)
        .complete(true)
        .allowed_origin(Locality::Remote)
        .callback(move |query| {
            let Some(payload) = query.payload() else {
                return;
            };
            let msg = match frame::decode(&payload.to_bytes()) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("kbus-bridge: zenoh: bad query on {}: {e}", query.key_expr());
                    return;
                }
            };
            // A Stateful Request goes to every matching queryable; only the
            // bridge its final_to names takes it (the others drop the
            // query, which then ends with that one's reply).
            let final_net = msg.final_to().network_id;
            if msg.is_stateful_request() && final_net != 0 && final_net != net_id {
                return;
            }
            lock(&pending).insert(msg.id(), query);
            let _ = tx.send(Input::FromLink { link, msg });
        })
        .await
        .map_err(|e| format!("zenoh queryable: {e}"))
}

/// Ends a query's bookkeeping: if the query ends without an answer, the
/// core hears [`Input::RequestLost`].
struct QueryEnd {
    answered: AtomicBool,
    link: LinkId,
    request: MessageId,
    tx: UnboundedSender<Input>,
}

impl Drop for QueryEnd {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) {
            let _ = self.tx.send(Input::RequestLost {
                link: self.link,
                request: self.request,
            });
        }
    }
}

async fn query(
    session: &Session,
    key: String,
    msg: &Msg,
    link: LinkId,
    to_core: &UnboundedSender<Input>,
) {
    let end = QueryEnd {
        answered: AtomicBool::new(false),
        link,
        request: msg.id(),
        tx: to_core.clone(),
    };
    let target = if msg.is_stateful_request() {
        QueryTarget::All
    } else {
        QueryTarget::BestMatching
    };
    let result = session
        .get(key)
        .payload(frame::encode(msg))
        .target(target)
        .consolidation(ConsolidationMode::None)
        .allowed_destination(Locality::Remote)
        .congestion_control(CongestionControl::Block)
        .timeout(QUERY_TIMEOUT)
        .callback(move |reply: Reply| {
            let Ok(sample) = reply.result() else {
                return;
            };
            let Ok(answer) = frame::decode(&sample.payload().to_bytes()) else {
                return;
            };
            if !end.answered.swap(true, Ordering::AcqRel) {
                let _ = end.tx.send(Input::FromLink { link, msg: answer });
            }
        })
        .await;
    if let Err(e) = result {
        // The callback (and so the QueryEnd) was dropped: RequestLost sent.
        eprintln!("kbus-bridge: zenoh get: {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    //! Two Zenoh links over a Unix socket, with the cores played by the test
    //! (no KBUS device needed).

    use super::*;
    use crate::msg_from_repr;
    use kbus_wire::{Flags, MessageRepr};
    use tokio::sync::mpsc::unbounded_channel;

    struct End {
        to_core: UnboundedReceiver<Input>,
        from_core: Option<UnboundedSender<Msg>>,
    }

    fn start(net: u32, listen: &[&str], connect: &[&str]) -> End {
        let (tx, to_core) = unbounded_channel();
        let (from_core, rx) = unbounded_channel();
        let opts = ZenohOptions {
            connect: connect.iter().map(|s| s.to_string()).collect(),
            listen: listen.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        tokio::spawn(run(0, opts, net, b"$.*".to_vec(), tx, rx, 0));
        End {
            to_core,
            from_core: Some(from_core),
        }
    }

    impl End {
        fn send(&self, m: Msg) {
            self.from_core.as_ref().unwrap().send(m).unwrap();
        }
        async fn next(&mut self) -> Input {
            tokio::time::timeout(Duration::from_secs(10), self.to_core.recv())
                .await
                .expect("an input within 10 s")
                .expect("link running")
        }
        async fn next_msg(&mut self) -> Msg {
            match self.next().await {
                Input::FromLink { msg, .. } => msg,
                other => panic!("{other:?}"),
            }
        }
    }

    /// Puts of one name waiting in the queue join the first one's payload,
    /// in order; the first message that may not join (another name, a
    /// Request for a Replier, a Reply, or one past the size limit) is
    /// handed back, and nothing after it is taken.
    #[test]
    fn waiting_puts_of_one_name_join() {
        let ann = |name: &str, serial: u32, len: usize| {
            let data = vec![b'x'; len];
            let mut r = MessageRepr::announcement(name, &data);
            r.id = MessageId::new(0, serial);
            msg_from_repr(&r)
        };
        let first = ann("$.A", 1, 64);
        let (tx, mut rx) = unbounded_channel();
        let mut request = MessageRepr::request("$.A", b"q");
        request.flags |= Flags::WANT_YOU_TO_REPLY;
        let request = msg_from_repr(&request);
        let queued = [ann("$.A", 2, 64), ann("$.A", 3, 64), ann("$.B", 4, 64)];
        for m in queued.iter().chain([&request]) {
            tx.send(m.clone()).unwrap();
        }
        let mut payload = frame::encode(&first);
        let held = join_waiting(&mut payload, first.name_bytes(), &mut rx);
        assert_eq!(held.as_ref(), Some(&queued[2]));
        let joined: Vec<Msg> = frame::decode_each(&payload).map(Result::unwrap).collect();
        assert_eq!(
            joined,
            [first.clone(), queued[0].clone(), queued[1].clone()]
        );
        assert_eq!(rx.try_recv().unwrap(), request, "left in the queue");

        // A Request for a Replier stops the batch, and so does the limit.
        tx.send(request.clone()).unwrap();
        let mut payload = frame::encode(&first);
        assert_eq!(join_waiting(&mut payload, b"$.A", &mut rx), Some(request));
        let big = ann("$.A", 5, MAX_JOINED - 200);
        tx.send(big.clone()).unwrap();
        let mut payload = frame::encode(&first);
        assert_eq!(join_waiting(&mut payload, b"$.A", &mut rx), Some(big));
        assert_eq!(payload, frame::encode(&first));
        // An empty queue: nothing held.
        assert_eq!(join_waiting(&mut payload, b"$.A", &mut rx), None);
    }

    /// A configuration file, with --connect/--listen applied on top;
    /// multicast scouting off unless asked for.
    #[test]
    fn config_file_and_endpoints() {
        let path = std::env::temp_dir().join(format!("kbus-zenoh-{}.json5", std::process::id()));
        std::fs::write(
            &path,
            r#"{ mode: "peer", connect: { endpoints: ["tcp/127.0.0.1:1"] } }"#,
        )
        .unwrap();
        let opts = ZenohOptions {
            config: Some(path.clone()),
            listen: vec!["tcp/127.0.0.1:17399".into()],
            ..Default::default()
        };
        let c = config(&opts).unwrap();
        let json = format!("{c}");
        assert!(json.contains("tcp/127.0.0.1:1"), "{json}");
        assert!(json.contains("tcp/127.0.0.1:17399"), "{json}");
        assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(config(&opts).is_err());
        let _ = std::fs::remove_file(&path);
        let plain = config(&ZenohOptions {
            multicast: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plain.get_json("mode").unwrap(), "\"peer\"");
        assert_eq!(plain.get_json("listen/endpoints").unwrap(), "[]");
    }

    #[test]
    fn two_links_exchange_binds_requests_replies_and_announcements() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A Unix socket named after this process: no port to collide
            // with another run on the same machine.
            let path = std::env::temp_dir().join(format!("kbus-zenoh-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let ep = format!("unixsock-stream/{}", path.display());
            let mut a = start(1, &[&ep], &[]);
            let mut b = start(2, &[], &[&ep]);
            assert!(matches!(a.next().await, Input::LinkUp { peer: None, .. }));
            assert!(matches!(b.next().await, Input::LinkUp { peer: None, .. }));

            // A Replier binding on B's device: A hears of it.
            let mut ev = bind_event(true, 5, b"$.Svc.*");
            ev.set_id(MessageId::new(2, 9));
            b.send(ev);
            let got = a.next_msg().await;
            let e = got.view().bind_event().unwrap();
            assert!(e.is_bind());
            assert_eq!((e.binder(), e.name()), (5, "$.Svc.*"));
            assert_eq!(got.id().network_id, 2);

            // A Request from A's device: B gets it byte for byte.
            let mut r = MessageRepr::request("$.Svc.Echo", b"ping");
            r.flags |= Flags::WANT_YOU_TO_REPLY;
            r.id = MessageId::new(1, 7);
            r.from = 10;
            let req = msg_from_repr(&r);
            a.send(req.clone());
            assert_eq!(b.next_msg().await, req);
            // Its Reply goes back as the query's reply.
            let mut rep = MessageRepr::announcement("$.Svc.Echo", b"pong");
            rep.in_reply_to = req.id();
            rep.to = 20;
            rep.id = MessageId::new(2, 11);
            let reply = msg_from_repr(&rep);
            b.send(reply.clone());
            assert_eq!(a.next_msg().await, reply);

            // Announcements (after the subscription has reached A).
            let ann = msg_from_repr(&MessageRepr::announcement("$.News.Today", b"x"));
            let got = loop {
                a.send(ann.clone());
                match tokio::time::timeout(Duration::from_millis(300), b.to_core.recv()).await {
                    Ok(Some(Input::FromLink { msg, .. })) => break msg,
                    Ok(other) => panic!("{other:?}"),
                    Err(_) => continue,
                }
            };
            assert_eq!(got, ann);

            // A Request in flight when B goes away: A hears it is lost,
            // and that the Replier is gone.
            let mut r2 = r;
            r2.id = MessageId::new(1, 8);
            a.send(msg_from_repr(&r2));
            let _ = b.next_msg().await;
            drop(b.from_core.take());
            let mut lost = false;
            let mut unbound = false;
            while !(lost && unbound) {
                match a.next().await {
                    Input::RequestLost { request, .. } => {
                        assert_eq!(request, MessageId::new(1, 8));
                        lost = true;
                    }
                    Input::FromLink { msg, .. } => {
                        let e = msg.view().bind_event().unwrap();
                        assert!(!e.is_bind());
                        unbound = true;
                    }
                    Input::LinkUp { .. } | Input::LinkDown { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
            let _ = std::fs::remove_file(&path);
        });
    }
}
