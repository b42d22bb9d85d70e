//! Our discovery v5 node as a [`V5Peer`]: `devp2p_core::discv5::discovery::Discovery` over a
//! real UDP socket on 127.0.0.1, driven by a thin loop on a thread of its own (a tokio
//! current-thread runtime: one datagram, command or timeout in, then every datagram and
//! event out, then sleep until the next deadline). The loop holds no protocol logic: it
//! moves bytes, reads the clock, and turns commands and events into calls and replies.
//!
//! This stands in for the drivers' discv5 until they run it; the test-facing side is the
//! [`V5Peer`] trait, so that moving onto a driver changes only this file.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devp2p_core::discv4::{LookupId, Node, NodeDbSnapshot};
use devp2p_core::discv5::discovery::{Config, Discovery, Event};
use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
use devp2p_core::discv5::{NodesResponse, RequestId};
use devp2p_core::{Enr, Instant, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::mpsc;

use super::{rlp_string, Kind, Options, Pong, TalkSeen, Transform, V5Peer, LOOKUP_WAIT, WAIT};

type Reply<T> = std_mpsc::Sender<T>;
/// A look at the machine from the test's thread.
type Inspection = Box<dyn FnOnce(&Discovery<ChaCha20Rng>) + Send>;

/// What the test asks of the loop.
enum Command {
    Ping(Enr, Reply<Result<Pong, String>>),
    FindNode(Enr, Vec<u64>, Reply<Result<NodesResponse, String>>),
    Talk(Enr, Vec<u8>, Vec<u8>, Reply<Result<Vec<u8>, String>>),
    Lookup(NodeId, Reply<Result<Vec<Enr>, String>>),
    Table(Reply<Vec<Enr>>),
    RegisterTalk(Vec<u8>, Transform, Reply<()>),
    SetField(String, Vec<u8>, Reply<Result<Enr, String>>),
    /// Runs a closure over the machine, for what the trait does not cover.
    Inspect(Inspection),
}

/// Someone waiting for a request of ours to end.
enum Waiting {
    Pong(Reply<Result<Pong, String>>),
    Nodes(Reply<Result<NodesResponse, String>>),
    Talk(Reply<Result<Vec<u8>, String>>),
}

/// Our node: the loop's thread and the way to reach it.
pub struct OurNode {
    commands: Option<mpsc::UnboundedSender<Command>>,
    thread: Option<JoinHandle<()>>,
    record: Arc<Mutex<Enr>>,
    seen: Arc<Mutex<Vec<TalkSeen>>>,
    addr: SocketAddr,
}

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl OurNode {
    /// Starts a node with `opts` and `config` (whose bootnodes `opts.bootnodes` extend). The
    /// first record's seq is the clock in milliseconds, as in our drivers and geth, or
    /// `opts.min_seq` if higher.
    pub fn start_with(opts: Options, mut config: Config) -> Self {
        let socket = std::net::UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port)))
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{}: {e}", opts.port));
        socket.set_nonblocking(true).expect("a non-blocking socket");
        let addr = socket.local_addr().expect("bound");
        let record = Enr::builder()
            .seq(unix_ms().max(opts.min_seq))
            .ip(addr.ip())
            .udp4(addr.port())
            .sign(&opts.key)
            .expect("our record");
        config
            .bootnodes
            .extend(opts.bootnodes.iter().cloned().filter_map(Node::from_enr));
        let shared_record = Arc::new(Mutex::new(record.clone()));
        let seen: Arc<Mutex<Vec<TalkSeen>>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Loop {
            key: opts.key.clone(),
            talk: BTreeMap::new(),
            waiting: BTreeMap::new(),
            lookups: BTreeMap::new(),
            record: shared_record.clone(),
            seen: seen.clone(),
            start: std::time::Instant::now(),
        };
        // Seeded from the key: a run is as reproducible as real sockets allow.
        let seed = u64::from_le_bytes(opts.key.to_bytes()[..8].try_into().expect("8 bytes"));
        let rng = ChaCha20Rng::seed_from_u64(seed);
        let thread = std::thread::Builder::new()
            .name(format!("our-discv5-{}", addr.port()))
            .spawn(move || state.run(socket, record, config, rng, rx))
            .expect("spawning our node's thread");
        OurNode {
            commands: Some(tx),
            thread: Some(thread),
            record: shared_record,
            seen,
            addr,
        }
    }

    /// Starts a node with `opts` and the default configuration.
    pub fn start(opts: Options) -> Self {
        Self::start_with(opts, Config::default())
    }

    /// FINDNODE `distances` at the node of `to`: the whole answer (records, the NODES
    /// messages received and the `total` they announced, records left out).
    pub fn find_node_messages(
        &mut self,
        to: &Enr,
        distances: &[u64],
    ) -> Result<NodesResponse, String> {
        self.call(WAIT, |r| {
            Command::FindNode(to.clone(), distances.to_vec(), r)
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` over the machine (its table, sessions, counters) and returns the result.
    pub fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Discovery<ChaCha20Rng>) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std_mpsc::channel();
        self.send(Command::Inspect(Box::new(move |d| {
            let _ = tx.send(f(d));
        })));
        rx.recv_timeout(WAIT).expect("our node's loop answers")
    }

    fn send(&self, c: Command) {
        self.commands
            .as_ref()
            .expect("running")
            .send(c)
            .unwrap_or_else(|_| panic!("our node's loop has stopped"));
    }

    /// Sends the command `make` builds around a reply channel and waits `limit` (plus a
    /// margin: the machine ends every request itself) for the reply.
    fn call<T>(&self, limit: Duration, make: impl FnOnce(Reply<T>) -> Command) -> T {
        let (tx, rx) = std_mpsc::channel();
        self.send(make(tx));
        rx.recv_timeout(limit + Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("our node did not answer within {limit:?}: {e}"))
    }
}

impl Drop for OurNode {
    fn drop(&mut self) {
        // Closing the channel ends the loop, which closes the socket.
        drop(self.commands.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl V5Peer for OurNode {
    fn kind(&self) -> Kind {
        Kind::Ours
    }

    fn record(&self) -> Enr {
        self.record.lock().unwrap().clone()
    }

    fn ping(&mut self, to: &Enr) -> Result<Pong, String> {
        self.call(WAIT, |r| Command::Ping(to.clone(), r))
    }

    fn find_node(&mut self, to: &Enr, distances: &[u64]) -> Result<Vec<Enr>, String> {
        self.find_node_messages(to, distances).map(|n| n.records)
    }

    fn talk(&mut self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String> {
        self.call(WAIT, |r| {
            Command::Talk(to.clone(), protocol.to_vec(), request.to_vec(), r)
        })
    }

    fn register_talk(&mut self, protocol: &[u8], transform: Transform) {
        self.call(WAIT, |r| {
            Command::RegisterTalk(protocol.to_vec(), transform, r)
        })
    }

    fn talk_requests(&self) -> Vec<TalkSeen> {
        self.seen.lock().unwrap().clone()
    }

    fn lookup(&mut self, target: NodeId) -> Result<Vec<Enr>, String> {
        self.call(LOOKUP_WAIT, |r| Command::Lookup(target, r))
    }

    fn table(&mut self) -> Vec<Enr> {
        self.call(WAIT, Command::Table)
    }

    fn set_enr_field(&mut self, key: &str, value: &[u8]) -> Enr {
        self.call(WAIT, |r| {
            Command::SetField(key.to_string(), value.to_vec(), r)
        })
        .unwrap_or_else(|e| panic!("our node refused a record entry: {e}"))
    }
}

/// The loop's own state beside the machine: who waits for what.
struct Loop {
    key: NodeSecretKey,
    talk: BTreeMap<Vec<u8>, Transform>,
    waiting: BTreeMap<RequestId, Waiting>,
    lookups: BTreeMap<LookupId, Reply<Result<Vec<Enr>, String>>>,
    record: Arc<Mutex<Enr>>,
    seen: Arc<Mutex<Vec<TalkSeen>>>,
    start: std::time::Instant,
}

impl Loop {
    fn now(&self) -> Instant {
        Instant::from_millis(self.start.elapsed().as_millis() as u64)
    }

    fn run(
        mut self,
        socket: std::net::UdpSocket,
        record: Enr,
        config: Config,
        rng: ChaCha20Rng,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for our node");
        rt.block_on(async move {
            let socket = tokio::net::UdpSocket::from_std(socket).expect("a tokio socket");
            let unix = unix_ms() / 1000;
            let mut disc = Discovery::new(
                self.key.clone(),
                record,
                config,
                NodeDbSnapshot::default(),
                rng,
                self.now(),
                unix,
            );
            let mut out = [0u8; MAX_PACKET_SIZE];
            let mut buf = vec![0u8; 2048];
            loop {
                // Everything out, until answering events sends nothing more.
                loop {
                    let mut moved = false;
                    while let Some(t) = disc.poll_transmit(&mut out) {
                        moved = true;
                        let _ = socket.send_to(&out[..t.len], t.destination).await;
                    }
                    while let Some(e) = disc.poll_event() {
                        moved = true;
                        self.on_event(&mut disc, e);
                    }
                    if !moved {
                        break;
                    }
                }
                let wake = disc
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(self.now()))
                    .unwrap_or(Duration::from_secs(60))
                    .min(Duration::from_secs(60));
                tokio::select! {
                    got = socket.recv_from(&mut buf) => {
                        if let Ok((n, from)) = got {
                            let _ = disc.handle_datagram(self.now(), unix_ms() / 1000, from, &buf[..n]);
                        }
                    }
                    c = commands.recv() => match c {
                        Some(c) => self.on_command(&mut disc, c),
                        None => break,
                    },
                    _ = tokio::time::sleep(wake) => {}
                }
                disc.handle_timeout(self.now(), unix_ms() / 1000);
            }
        });
    }

    fn on_command(&mut self, disc: &mut Discovery<ChaCha20Rng>, c: Command) {
        let now = self.now();
        match c {
            Command::Ping(to, reply) => match disc.ping(now, &to) {
                Ok(id) => drop(self.waiting.insert(id, Waiting::Pong(reply))),
                Err(e) => drop(reply.send(Err(e.to_string()))),
            },
            Command::FindNode(to, distances, reply) => match disc.find_node(now, &to, &distances) {
                Ok(id) => drop(self.waiting.insert(id, Waiting::Nodes(reply))),
                Err(e) => drop(reply.send(Err(e.to_string()))),
            },
            Command::Talk(to, protocol, request, reply) => {
                match disc.talk_request(now, &to, &protocol, &request) {
                    Ok(id) => drop(self.waiting.insert(id, Waiting::Talk(reply))),
                    Err(e) => drop(reply.send(Err(e.to_string()))),
                }
            }
            Command::Lookup(target, reply) => {
                let id = disc.start_lookup(now, unix_ms() / 1000, target);
                self.lookups.insert(id, reply);
            }
            Command::Table(reply) => {
                let records = disc
                    .table()
                    .entries()
                    .filter_map(|e| e.node().record().cloned())
                    .collect();
                let _ = reply.send(records);
            }
            Command::RegisterTalk(protocol, transform, reply) => {
                disc.register_talk_protocol(&protocol);
                self.talk.insert(protocol, transform);
                let _ = reply.send(());
            }
            Command::SetField(key, value, reply) => {
                let current = disc.local_record().clone();
                let next = current
                    .to_builder()
                    .seq(current.seq() + 1)
                    .raw(key.as_bytes(), &rlp_string(&value))
                    .and_then(|b| b.sign(&self.key))
                    .map_err(|e| e.to_string());
                let result = next.and_then(|r| {
                    if disc.set_local_record(r.clone()) {
                        *self.record.lock().unwrap() = r.clone();
                        Ok(r)
                    } else {
                        Err("the machine kept its record".to_string())
                    }
                });
                let _ = reply.send(result);
            }
            Command::Inspect(f) => f(disc),
        }
    }

    fn on_event(&mut self, disc: &mut Discovery<ChaCha20Rng>, e: Event) {
        match e {
            Event::PingResponse { id, result, .. } => {
                if let Some(Waiting::Pong(reply)) = self.waiting.remove(&id) {
                    let pong = result.map_err(|f| f.to_string()).and_then(|p| {
                        let ip = p.recipient_ip.ok_or("a PONG without a valid IP")?;
                        Ok(Pong {
                            enr_seq: p.enr_seq,
                            addr: SocketAddr::new(ip, p.recipient_port),
                        })
                    });
                    let _ = reply.send(pong);
                }
            }
            Event::FindNodeResponse { id, result, .. } => {
                if let Some(Waiting::Nodes(reply)) = self.waiting.remove(&id) {
                    let _ = reply.send(result.map_err(|f| f.to_string()));
                }
            }
            Event::TalkResponse { id, result, .. } => {
                if let Some(Waiting::Talk(reply)) = self.waiting.remove(&id) {
                    let _ = reply.send(result.map_err(|f| f.to_string()));
                }
            }
            Event::LookupFinished { id, nodes, .. } => {
                if let Some(reply) = self.lookups.remove(&id) {
                    let records = nodes.iter().filter_map(|n| n.record().cloned()).collect();
                    let _ = reply.send(Ok(records));
                }
            }
            Event::TalkRequest {
                id,
                from,
                protocol,
                request,
            } => {
                if let Some(t) = self.talk.get(&protocol) {
                    let answer = t.apply(&request);
                    self.seen.lock().unwrap().push(TalkSeen {
                        from: from.id,
                        protocol,
                        request,
                    });
                    let _ = disc.answer_talk(self.now(), id, &answer);
                }
            }
            _ => {}
        }
    }
}
