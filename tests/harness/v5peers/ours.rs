//! Our discovery v5 node as a [`V5Peer`]: a real node of one of our drivers, with discv4 off,
//! discv5 on and dialling off, listening on 127.0.0.1 — what an application gets:
//!
//! - [`OurDriver::Tokio`]: `devp2p_tokio::spawn` on a tokio runtime of its own (one worker);
//!   every request is one `NodeHandle` call awaited there (`ping_v5`, `find_node_v5`,
//!   `talk_request`, `lookup_v5`, …), and a task reads the event stream to answer TALKREQs.
//! - [`OurDriver::Mio`]: a `devp2p_mio::Runner` with the one `Driver` on a thread of its own;
//!   requests go in through its `Remote` and return a request id, and the runner's event
//!   callback hands each answer (`PingResponse`, `FindNodeResponse`, `TalkResponse`,
//!   `LookupFinished`) to the test thread waiting for it, and answers TALKREQs.
//!
//! Nothing here decides anything about the protocol: it turns the test's blocking calls into
//! driver calls and driver events into replies. The node dials nobody: only discovery is
//! under test, and a dialler wanting peers would start a random lookup every second.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devp2p_core::discv4::{LookupId, Node as DiscNode};
use devp2p_core::discv5::discovery::Event as V5Event;
use devp2p_core::discv5::{NodesResponse, Pong as V5Pong, RequestId};
use devp2p_core::node::NodeEvent;
use devp2p_core::{Enr, NodeId, NodeSecretKey};
use devp2p_mio::{Discv5Failure, DriverConfig, KeySource, Remote, Runner, Stats};
use devp2p_tokio::NodeHandle;

use super::{
    rlp_string, Kind, Options, OurDriver, Pong, TalkSeen, Transform, V5Peer, LOCAL_WAIT,
    LOOKUP_WAIT, WAIT,
};

/// Beyond a request's own limit, how long its reply may take to reach the test thread (the
/// node ends every request itself; this only turns a hang into a failing test).
const REPLY_MARGIN: Duration = Duration::from_secs(2);

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The application's side of our node: the TALKREQ handlers and the requests they saw.
#[derive(Default)]
struct Talk {
    handlers: Mutex<BTreeMap<Vec<u8>, Transform>>,
    seen: Mutex<Vec<TalkSeen>>,
}

impl Talk {
    /// The answer to a TALKREQ the node handed up, recorded as seen; `None` without a handler
    /// (the node answers unregistered protocols itself, so this does not happen).
    fn answer(&self, from: NodeId, protocol: Vec<u8>, request: Vec<u8>) -> Option<Vec<u8>> {
        let answer = self
            .handlers
            .lock()
            .unwrap()
            .get(&protocol)?
            .apply(&request);
        self.seen.lock().unwrap().push(TalkSeen {
            from,
            protocol,
            request,
        });
        Some(answer)
    }
}

/// What each driver does for the node: the requests block until they end.
trait Backend: Send {
    fn record(&self) -> Enr;
    fn ping(&self, to: &Enr) -> Result<V5Pong, String>;
    fn find_node(&self, to: &Enr, distances: &[u64]) -> Result<NodesResponse, String>;
    fn talk(&self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String>;
    fn register_talk(&self, protocol: &[u8]) -> Result<(), String>;
    fn lookup(&self, target: NodeId) -> Result<Vec<DiscNode>, String>;
    fn table(&self) -> Vec<DiscNode>;
    fn set_local_record(&self, record: &Enr) -> Result<(), String>;
    fn stats(&self) -> Stats;
}

/// Our node: a driver running it, and its key (to sign a changed record with).
pub struct OurNode {
    driver: OurDriver,
    key: NodeSecretKey,
    addr: SocketAddr,
    talk: Arc<Talk>,
    backend: Box<dyn Backend>,
}

impl OurNode {
    /// Starts a node on `driver` with `opts`, after `configure` has had its say on the
    /// driver's configuration. The first record's seq is the clock in milliseconds, as the
    /// drivers and geth pick it, or `opts.min_seq` if higher.
    pub fn start_with(
        driver: OurDriver,
        opts: Options,
        configure: impl FnOnce(&mut DriverConfig),
    ) -> Self {
        let mut config = DriverConfig::default();
        config.key = KeySource::Secret(opts.key.clone());
        config.node.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port));
        config.node.discv4 = false;
        config.node.discv5 = true;
        config.node.no_dial = true;
        config.node.enr_seq = Some(unix_ms().max(opts.min_seq));
        config.node.bootnode_records = opts.bootnodes.clone();
        configure(&mut config);
        let talk = Arc::new(Talk::default());
        let (backend, addr): (Box<dyn Backend>, SocketAddr) = match driver {
            OurDriver::Tokio => {
                let b = TokioBackend::start(config, talk.clone());
                let addr = b.node.listen_addr();
                (Box::new(b), addr)
            }
            OurDriver::Mio => {
                let (b, addr) = MioBackend::start(config, talk.clone());
                (Box::new(b), addr)
            }
        };
        OurNode {
            driver,
            key: opts.key,
            addr,
            talk,
            backend,
        }
    }

    /// Starts a node on `driver` with `opts` and the configuration above.
    pub fn start(driver: OurDriver, opts: Options) -> Self {
        Self::start_with(driver, opts, |_| {})
    }

    /// Which driver runs it.
    pub fn driver(&self) -> OurDriver {
        self.driver
    }

    /// FINDNODE `distances` at the node of `to`: the whole answer (records, the NODES
    /// messages received and the `total` they announced, records left out).
    pub fn find_node_messages(
        &mut self,
        to: &Enr,
        distances: &[u64],
    ) -> Result<NodesResponse, String> {
        self.backend.find_node(to, distances)
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The discv5 sessions it holds now, from the driver's stats.
    pub fn session_count(&self) -> usize {
        self.backend.stats().node.discv5_sessions
    }
}

impl V5Peer for OurNode {
    fn kind(&self) -> Kind {
        Kind::Ours(self.driver)
    }

    fn record(&self) -> Enr {
        self.backend.record()
    }

    fn ping(&mut self, to: &Enr) -> Result<Pong, String> {
        let pong = self.backend.ping(to)?;
        let addr = pong.recipient().ok_or("a PONG without a valid IP")?;
        Ok(Pong {
            enr_seq: pong.enr_seq,
            addr,
        })
    }

    fn find_node(&mut self, to: &Enr, distances: &[u64]) -> Result<Vec<Enr>, String> {
        self.find_node_messages(to, distances).map(|n| n.records)
    }

    fn talk(&mut self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String> {
        self.backend.talk(to, protocol, request)
    }

    fn register_talk(&mut self, protocol: &[u8], transform: Transform) {
        // The handler first, so that no request of the protocol finds none.
        self.talk
            .handlers
            .lock()
            .unwrap()
            .insert(protocol.to_vec(), transform);
        self.backend
            .register_talk(protocol)
            .unwrap_or_else(|e| panic!("our node refused to register a protocol: {e}"));
    }

    fn talk_requests(&self) -> Vec<TalkSeen> {
        self.talk.seen.lock().unwrap().clone()
    }

    fn lookup(&mut self, target: NodeId) -> Result<Vec<Enr>, String> {
        let nodes = self.backend.lookup(target)?;
        Ok(nodes.iter().filter_map(|n| n.record().cloned()).collect())
    }

    fn table(&mut self) -> Vec<Enr> {
        let nodes = self.backend.table();
        nodes.iter().filter_map(|n| n.record().cloned()).collect()
    }

    fn set_enr_field(&mut self, key: &str, value: &[u8]) -> Enr {
        let current = self.backend.record();
        let next = current
            .to_builder()
            .seq(current.seq() + 1)
            .raw(key.as_bytes(), &rlp_string(value))
            .and_then(|b| b.sign(&self.key))
            .unwrap_or_else(|e| panic!("signing our changed record: {e}"));
        self.backend
            .set_local_record(&next)
            .unwrap_or_else(|e| panic!("our node refused its changed record: {e}"));
        next
    }
}

// ---- tokio ----------------------------------------------------------------------------------

/// A `devp2p_tokio` node and the runtime it runs on.
struct TokioBackend {
    node: NodeHandle,
    /// `None` once dropped (taken to shut it down).
    rt: Option<tokio::runtime::Runtime>,
}

impl TokioBackend {
    fn start(config: DriverConfig, talk: Arc<Talk>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("our-discv5-tokio")
            .enable_all()
            .build()
            .expect("a tokio runtime for our node");
        let port = config.node.listen.port();
        let (node, mut events) = {
            let _in_runtime = rt.enter();
            devp2p_tokio::spawn(config)
                .unwrap_or_else(|e| panic!("our tokio node on 127.0.0.1:{port}: {e}"))
        };
        // The application: answers the TALKREQs of the registered protocols, and takes
        // every other event off the stream (an unread stream would hold the node back).
        let handle = node.clone();
        rt.spawn(async move {
            while let Some(event) = events.recv().await {
                let NodeEvent::Discv5(v5) = event else {
                    continue;
                };
                if let V5Event::TalkRequest {
                    id,
                    from,
                    protocol,
                    request,
                } = *v5
                {
                    if let Some(answer) = talk.answer(from.id, protocol, request) {
                        let _ = handle.answer_talk(id, &answer).await;
                    }
                }
            }
        });
        TokioBackend { node, rt: Some(rt) }
    }

    /// Runs `f` on the node's runtime, for at most `limit` plus [`REPLY_MARGIN`].
    fn run<T>(&self, limit: Duration, f: impl std::future::Future<Output = T>) -> T {
        let rt = self.rt.as_ref().expect("running");
        // The timer is made inside the runtime, which it needs.
        rt.block_on(async { tokio::time::timeout(limit + REPLY_MARGIN, f).await })
            .unwrap_or_else(|_| panic!("our tokio node did not answer within {limit:?}"))
    }
}

impl Drop for TokioBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let _ = rt.block_on(async { tokio::time::timeout(WAIT, self.node.shutdown()).await });
            // Drops the node task and the event task: the sockets are closed when this
            // returns, so a restart may bind the same port at once.
            rt.shutdown_timeout(WAIT);
        }
    }
}

impl Backend for TokioBackend {
    fn record(&self) -> Enr {
        self.node.local_enr().expect("discv5 runs")
    }

    fn ping(&self, to: &Enr) -> Result<V5Pong, String> {
        self.run(WAIT, self.node.ping_v5(to))
            .map_err(|e| e.to_string())
    }

    fn find_node(&self, to: &Enr, distances: &[u64]) -> Result<NodesResponse, String> {
        self.run(WAIT, self.node.find_node_v5(to, distances))
            .map_err(|e| e.to_string())
    }

    fn talk(&self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String> {
        self.run(WAIT, self.node.talk_request(to, protocol, request))
            .map_err(|e| e.to_string())
    }

    fn register_talk(&self, protocol: &[u8]) -> Result<(), String> {
        self.run(LOCAL_WAIT, self.node.register_talk_protocol(protocol))
            .map_err(|e| e.to_string())
    }

    fn lookup(&self, target: NodeId) -> Result<Vec<DiscNode>, String> {
        self.run(LOOKUP_WAIT, self.node.lookup_v5(&target))
            .map_err(|e| e.to_string())
    }

    fn table(&self) -> Vec<DiscNode> {
        self.run(LOCAL_WAIT, self.node.table_v5())
            .expect("our tokio node runs")
    }

    fn set_local_record(&self, record: &Enr) -> Result<(), String> {
        self.run(LOCAL_WAIT, self.node.set_local_record(record))
            .map_err(|e| e.to_string())
    }

    fn stats(&self) -> Stats {
        self.run(LOCAL_WAIT, self.node.stats())
            .expect("our tokio node runs")
    }
}

// ---- mio ------------------------------------------------------------------------------------

type Reply<T> = std_mpsc::Sender<Result<T, String>>;

/// A test thread waiting for the answer to one of its requests.
enum Waiting {
    Pong(Reply<V5Pong>),
    Nodes(Reply<NodesResponse>),
    Talk(Reply<Vec<u8>>),
}

/// Who waits for what, shared by the commands (which register) and the event callback
/// (which answers); both run on the runner's thread.
#[derive(Default)]
struct Waiters {
    requests: BTreeMap<RequestId, Waiting>,
    lookups: BTreeMap<LookupId, Reply<Vec<DiscNode>>>,
}

/// The driver's index in its runner: the only one.
const DRIVER: usize = 0;

/// A `devp2p_mio` node on a `Runner` of its own, on a thread of its own.
struct MioBackend {
    remote: Remote,
    waiters: Arc<Mutex<Waiters>>,
    /// `None` once dropped (taken to join it).
    thread: Option<JoinHandle<()>>,
}

impl MioBackend {
    fn start(config: DriverConfig, talk: Arc<Talk>) -> (Self, SocketAddr) {
        let port = config.node.listen.port();
        let mut runner = Runner::new().expect("a mio runner for our node");
        runner
            .add(config)
            .unwrap_or_else(|e| panic!("our mio node on 127.0.0.1:{port}: {e}"));
        let addr = runner.driver(DRIVER).expect("added").listen_addr();
        let remote = runner.remote();
        let waiters = Arc::new(Mutex::new(Waiters::default()));
        let w = waiters.clone();
        let thread = std::thread::Builder::new()
            .name(format!("our-discv5-mio-{}", addr.port()))
            .spawn(move || {
                let result = runner.run(move |_, driver, event| {
                    let NodeEvent::Discv5(v5) = event else {
                        return;
                    };
                    let mut w = w.lock().unwrap();
                    match *v5 {
                        V5Event::PingResponse { id, result, .. } => {
                            if let Some(Waiting::Pong(tx)) = w.requests.remove(&id) {
                                let _ = tx.send(result.map_err(|e| e.to_string()));
                            }
                        }
                        V5Event::FindNodeResponse { id, result, .. } => {
                            if let Some(Waiting::Nodes(tx)) = w.requests.remove(&id) {
                                let _ = tx.send(result.map_err(|e| e.to_string()));
                            }
                        }
                        V5Event::TalkResponse { id, result, .. } => {
                            if let Some(Waiting::Talk(tx)) = w.requests.remove(&id) {
                                let _ = tx.send(result.map_err(|e| e.to_string()));
                            }
                        }
                        V5Event::LookupFinished { id, nodes, .. } => {
                            if let Some(tx) = w.lookups.remove(&id) {
                                let _ = tx.send(Ok(nodes));
                            }
                        }
                        V5Event::TalkRequest {
                            id,
                            from,
                            protocol,
                            request,
                        } => {
                            if let Some(answer) = talk.answer(from.id, protocol, request) {
                                let _ = driver.answer_talk(id, &answer);
                            }
                        }
                        _ => {}
                    }
                });
                if let Err(e) = result {
                    eprintln!("our mio node on {addr}: polling failed: {e}");
                }
            })
            .expect("spawning our mio node's thread");
        let backend = MioBackend {
            remote,
            waiters,
            thread: Some(thread),
        };
        (backend, addr)
    }

    /// Runs `f` on the driver, on the runner's thread, and returns what it returns (within
    /// [`LOCAL_WAIT`]: the runner runs it at its next turn).
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut devp2p_mio::Driver) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std_mpsc::channel();
        self.remote
            .run(move |r| {
                let _ = tx.send(f(r.driver_mut(DRIVER).expect("our driver")));
            })
            .unwrap_or_else(|e| panic!("our mio node: {e}"));
        rx.recv_timeout(LOCAL_WAIT).unwrap_or_else(|e| {
            panic!("our mio node's runner did not turn within {LOCAL_WAIT:?}: {e}")
        })
    }

    /// Sends a request with `send` and waits (at most `limit` plus [`REPLY_MARGIN`]) for the
    /// event that ends it; `waiting` files the reply under the request's id.
    fn request<T: Send + 'static>(
        &self,
        limit: Duration,
        send: impl FnOnce(&mut devp2p_mio::Driver) -> Result<RequestId, Discv5Failure> + Send + 'static,
        waiting: fn(Reply<T>) -> Waiting,
    ) -> Result<T, String> {
        let (tx, rx) = std_mpsc::channel();
        let waiters = self.waiters.clone();
        // Filed before the runner hands out the events the command caused.
        self.call(move |d| match send(d) {
            Ok(id) => drop(waiters.lock().unwrap().requests.insert(id, waiting(tx))),
            Err(e) => drop(tx.send(Err(e.to_string()))),
        });
        rx.recv_timeout(limit + REPLY_MARGIN)
            .unwrap_or_else(|e| panic!("our mio node did not answer within {limit:?}: {e}"))
    }
}

impl Drop for MioBackend {
    fn drop(&mut self) {
        // The runner shuts the node down (its sockets closed) and returns.
        self.remote.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Backend for MioBackend {
    fn record(&self) -> Enr {
        self.call(|d| d.local_enr()).expect("discv5 runs")
    }

    fn ping(&self, to: &Enr) -> Result<V5Pong, String> {
        let to = to.clone();
        self.request(WAIT, move |d| d.ping_v5(&to), Waiting::Pong)
    }

    fn find_node(&self, to: &Enr, distances: &[u64]) -> Result<NodesResponse, String> {
        let (to, distances) = (to.clone(), distances.to_vec());
        self.request(
            WAIT,
            move |d| d.find_node_v5(&to, &distances),
            Waiting::Nodes,
        )
    }

    fn talk(&self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String> {
        let (to, protocol, request) = (to.clone(), protocol.to_vec(), request.to_vec());
        self.request(
            WAIT,
            move |d| d.talk_request(&to, &protocol, &request),
            Waiting::Talk,
        )
    }

    fn register_talk(&self, protocol: &[u8]) -> Result<(), String> {
        let protocol = protocol.to_vec();
        self.call(move |d| d.register_talk_protocol(&protocol))
            .map_err(|e| e.to_string())
    }

    fn lookup(&self, target: NodeId) -> Result<Vec<DiscNode>, String> {
        let (tx, rx) = std_mpsc::channel();
        let waiters = self.waiters.clone();
        self.call(move |d| match d.lookup_v5(&target) {
            Ok(id) => drop(waiters.lock().unwrap().lookups.insert(id, tx)),
            Err(e) => drop(tx.send(Err(e.to_string()))),
        });
        rx.recv_timeout(LOOKUP_WAIT + REPLY_MARGIN)
            .unwrap_or_else(|e| panic!("our mio node's lookup did not end: {e}"))
    }

    fn table(&self) -> Vec<DiscNode> {
        self.call(|d| d.table_v5())
    }

    fn set_local_record(&self, record: &Enr) -> Result<(), String> {
        let record = record.clone();
        self.call(move |d| d.set_local_record(&record))
            .map_err(|e| e.to_string())
    }

    fn stats(&self) -> Stats {
        self.call(|d| d.stats())
    }
}
