//! Whole networks of unmodified [`Node`]s in one process, under virtual time, replayable
//! from one seed.
//!
//! - **Virtual time**: event queues hold every datagram, stream write, connection attempt,
//!   close and node timer; [`Sim::run_until`] jumps straight from one to the next. Nothing
//!   reads a wall clock.
//! - **Threads** ([`SimConfig::threads`], [`Sim::set_threads`]): time advances in windows
//!   of the shortest link latency, within which every node's events can run apart from
//!   every other node's; the nodes are dealt out to the threads (node `i` to thread
//!   `i % n`, a queue of events each), and what they send reaches the other threads' queues
//!   at the window's end, in an order fixed by time and sender. Every event touches one
//!   node, each node sees its events in the same order whatever the threads, and so the same
//!   seed gives the same run, and digest, on 1 thread or 4.
//! - **Links** ([`LinkConfig`]): a fixed latency per pair of nodes drawn from the seed, and
//!   per-packet jitter, loss, reordering and uplink bandwidth. TCP streams are reliable and
//!   ordered; datagrams are neither.
//! - **Faults**: [`Sim::partition`] splits the network into groups (datagrams and dials
//!   between groups vanish, streams across the cut go silent for good) until [`Sim::heal`];
//!   churn ([`Churn`]) crashes nodes and restarts them, with the same key and address, from
//!   the node database they last saved (every [`SimConfig::db_save_interval`]), as a driver
//!   with a data directory would.
//! - **Randomness**: [`SimConfig::seed`] derives every node key, every node's RNG, every link
//!   latency and every draw the network makes (from a stream per sending node). Same seed,
//!   same run.
//! - **Trace digest**: every observable step is hashed into its node's trace as it happens;
//!   [`Sim::digest`] combines them in node order (see [`trace`]), so two runs can be
//!   compared with one 32-byte value.
//!
//! Nodes get public IPv4 addresses, one /24 each ([`honest_ip`]), so discovery's per-subnet
//! limits apply as on the internet; extra nodes (an attacker's, say) can be added with any
//! address by [`Sim::add_node`]. A share of them can sit behind full-cone NATs instead
//! ([`SimConfig::nat_share`], [`nat`]).

mod barrier;
pub mod link;
pub mod nat;
pub mod queue;
pub mod run;
pub mod trace;

use std::any::Any;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devp2p_core::discv4::wire::MAX_PACKET_SIZE;
use devp2p_core::discv4::{Event as DiscoveryEvent, LookupId, NodeDbSnapshot};
use devp2p_core::discv5::discovery::Event as Discv5Event;
use devp2p_core::keccak::keccak256_concat;
use devp2p_core::known_keys::KnownKeysGuard;
use devp2p_core::node::{Action, ConnId, DiscoveryVersion, Node, NodeConfig, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{
    Enode, Instant, KnownKeys, NodeId, NodePublicKey, NodeSecretKey, SignatureScheme,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use barrier::WindowBarrier;
pub use link::LinkConfig;
use queue::EventQueue;
use trace::{Record, Trace};

/// Wall-clock seconds (for packet expirations) at virtual time zero.
pub const UNIX_START: u64 = 1_800_000_000;
/// The TCP and UDP port of every simulated node.
pub const PORT: u16 = 30303;
/// Virtual time at which a simulation begins.
pub const START: Instant = Instant::from_millis(1);
/// Results a lookup returns at most, and the size of the true closest set recall is
/// measured against (Kademlia's k, geth `bucketSize`).
pub const LOOKUP_RESULTS: usize = 16;

/// The address of the `i`-th node made by [`Sim::new`]: `11.b.c.1`, a /24 of its own.
pub fn honest_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(11 + (i >> 16) as u8, (i >> 8) as u8, i as u8, 1)
}

/// The sub-protocol every simulated node speaks, so that dialled sessions stay up.
pub fn sim_protocol() -> Protocol {
    Protocol::new("sim", 1, 1)
}

/// Node churn: a share of the nodes crash and come back, again and again.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    /// Share of the (non-boot) nodes that churn, 0..=1.
    pub fraction: f64,
    /// Mean time a churning node stays up (exponentially distributed).
    pub mean_up: Duration,
    /// Mean time a churning node stays down (exponentially distributed).
    pub mean_down: Duration,
}

impl Churn {
    /// `fraction` of the nodes churn, up 10 minutes and down 2 minutes on average.
    pub fn new(fraction: f64) -> Self {
        Self {
            fraction,
            mean_up: Duration::from_secs(600),
            mean_down: Duration::from_secs(120),
        }
    }
}

/// What [`Sim::new`] builds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Drives everything: keys, node RNGs, link latencies, network draws.
    pub seed: u64,
    /// Nodes in all, bootnodes included.
    pub nodes: usize,
    /// The first this many nodes are bootnodes: started at once, known to every other node.
    pub bootnodes: usize,
    /// Network behaviour.
    pub link: LinkConfig,
    /// Settings of every node (listen address, bootnodes and database are set per node).
    pub node: NodeConfig,
    /// Non-boot nodes start at uniformly random times within this window.
    pub join_window: Duration,
    /// Node churn, if any (bootnodes never churn).
    pub churn: Option<Churn>,
    /// How often a node saves its database (what it restarts from after a crash).
    pub db_save_interval: Duration,
    /// How nodes sign discovery packets. The default,
    /// [`SignatureScheme::InsecureSimulation`], skips the elliptic-curve work (the rest of
    /// every node runs as in production); [`SignatureScheme::Secp256k1`] runs it for real,
    /// at tens of microseconds per packet. RLPx handshakes always use real secp256k1.
    pub signatures: SignatureScheme,
    /// Share of the non-boot nodes behind a full-cone NAT ([`nat`]): they listen on a private
    /// address and must learn their public endpoint from their peers (0: none).
    pub nat_share: f64,
    /// OS threads that run the nodes ([`Sim::run_until`]); changes the speed of a run, never
    /// what happens in it.
    pub threads: usize,
    /// Whether the nodes' key conversions consult one process-wide set of every simulated
    /// node's public key ([`KnownKeys`]: curve check and node id computed once per key, not
    /// once per packet and Neighbors entry). Changes the speed of a run, never what happens in
    /// it. On by default.
    pub known_keys: bool,
}

impl SimConfig {
    /// `nodes` nodes of which 3 are bootnodes, default links, nodes joining over the first
    /// minute, discovery plus up to [`DEFAULT_SIM_PEERS`] peers each.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Self {
            seed,
            nodes,
            bootnodes: 3.min(nodes),
            link: LinkConfig::default(),
            node: default_node_config(),
            join_window: Duration::from_secs(60),
            churn: None,
            db_save_interval: Duration::from_secs(60),
            signatures: SignatureScheme::InsecureSimulation,
            nat_share: 0.0,
            threads: 1,
            known_keys: true,
        }
    }
}

/// Peers per simulated node by default (geth's default is 50; fewer keeps large runs cheap
/// while still exercising dialing and admission).
pub const DEFAULT_SIM_PEERS: usize = 12;

/// The node settings [`SimConfig::new`] uses: the sim protocol, [`DEFAULT_SIM_PEERS`] peers,
/// discv4 only (the simulator's figures are discv4's; `devp2p sim --discovery` and
/// [`Sim::configure`] turn discv5 on).
pub fn default_node_config() -> NodeConfig {
    let mut c = NodeConfig::default();
    c.discv5 = false;
    c.max_peers = DEFAULT_SIM_PEERS;
    c.session.client_id = "devp2p-sim".into();
    c.session.protocols = vec![sim_protocol()];
    c
}

/// How an extra node joins ([`Sim::add_node`]).
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Its IPv4 address (the port is [`PORT`]).
    pub ip: Ipv4Addr,
    /// Its settings; bootnodes are added to the list given here.
    pub config: NodeConfig,
    /// When it starts.
    pub start_at: Instant,
    /// Whether it churns (needs [`SimConfig::churn`]).
    pub churns: bool,
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Datagrams handed to the network.
    pub datagrams_sent: u64,
    /// Datagrams delivered to a running node.
    pub datagrams_delivered: u64,
    /// Datagrams lost: the loss model, a partition, a node down, or an unknown address.
    pub datagrams_lost: u64,
    /// Stream writes handed to the network.
    pub stream_writes: u64,
    /// Stream bytes handed to the network.
    pub stream_bytes: u64,
    /// Connection attempts.
    pub dials: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Node timers that fired.
    pub timers: u64,
    /// Node events.
    pub events: u64,
    /// Crashes (churn or [`Sim::crash`]).
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
}

impl SimStats {
    /// Datagrams plus stream writes sent: the "messages" of the network.
    pub fn messages(&self) -> u64 {
        self.datagrams_sent + self.stream_writes
    }
}

/// Table sizes over the running nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableFill {
    /// Running nodes measured.
    pub nodes: usize,
    /// Smallest table.
    pub min: usize,
    /// Mean table size.
    pub mean: f64,
    /// Largest table.
    pub max: usize,
}

/// What [`Sim::measure_recall`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Recall {
    /// Lookups started.
    pub lookups: usize,
    /// Lookups that finished within the time allowed (the rest count as recall 0).
    pub finished: usize,
    /// Mean over lookups of |result ∩ true 16 closest| / 16.
    pub mean: f64,
    /// The worst lookup's recall.
    pub min: f64,
}

#[derive(Debug)]
enum Kind {
    Start {
        node: usize,
    },
    Timer {
        node: usize,
        inc: u32,
        deadline: Instant,
    },
    Datagram {
        to: usize,
        from: usize,
        data: Vec<u8>,
    },
    /// A connection attempt reaches `to`, from `from`'s port `port`.
    Syn {
        from: usize,
        inc: u32,
        conn: ConnId,
        to: usize,
        port: u16,
    },
    /// The dialer learns that `peer` accepted its attempt as `peer`'s connection `peer_conn`.
    Connected {
        node: usize,
        inc: u32,
        conn: ConnId,
        peer: usize,
        peer_inc: u32,
        peer_conn: ConnId,
    },
    ConnectFailed {
        node: usize,
        inc: u32,
        conn: ConnId,
    },
    Data {
        to: usize,
        inc: u32,
        conn: ConnId,
        data: Vec<u8>,
    },
    Closed {
        to: usize,
        inc: u32,
        conn: ConnId,
    },
    /// The far end wrote across a partition: this end of the stream is cut for good too.
    Broken {
        to: usize,
        inc: u32,
        conn: ConnId,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    SaveDb {
        node: usize,
        inc: u32,
    },
}

impl Kind {
    /// The node whose state the event touches (and no other node's).
    fn node(&self) -> usize {
        match *self {
            Kind::Start { node }
            | Kind::Timer { node, .. }
            | Kind::Connected { node, .. }
            | Kind::ConnectFailed { node, .. }
            | Kind::Crash { node }
            | Kind::Restart { node }
            | Kind::SaveDb { node, .. } => node,
            Kind::Datagram { to, .. }
            | Kind::Syn { to, .. }
            | Kind::Data { to, .. }
            | Kind::Closed { to, .. }
            | Kind::Broken { to, .. } => to,
        }
    }
}

/// One end of a simulated TCP connection, held by the node at that end.
#[derive(Debug)]
struct StreamEnd {
    peer: usize,
    peer_inc: u32,
    peer_conn: ConnId,
    /// When the last write from this end arrives: later writes never overtake it.
    tail: Instant,
    /// Cut by a partition: nothing more crosses, in either direction.
    broken: bool,
    /// Bytes delivered that the node has not taken yet.
    inbox: Vec<u8>,
}

impl StreamEnd {
    fn new(peer: usize, peer_inc: u32, peer_conn: ConnId, now: Instant) -> Self {
        Self {
            peer,
            peer_inc,
            peer_conn,
            tail: now,
            broken: false,
            inbox: Vec::new(),
        }
    }
}

/// Everything the simulation keeps about one node. Only events addressed to the node touch
/// it, which is what lets nodes run in parallel.
struct Slot {
    key: NodeSecretKey,
    addr: SocketAddr,
    config: NodeConfig,
    node: Option<Box<Node<ChaCha20Rng>>>,
    /// Bumped at every crash, so deliveries addressed to an earlier life are dropped.
    inc: u32,
    db: NodeDbSnapshot,
    timer: Option<Instant>,
    uplink_free: Instant,
    conns: BTreeSet<ConnId>,
    dialing: HashSet<ConnId>,
    /// Its ends of streams, by its connection handle.
    streams: HashMap<ConnId, StreamEnd>,
    next_port: u16,
    churns: bool,
    saves_db: bool,
    ever_started: bool,
    /// The public endpoint of the NAT in front of it, if any ([`nat`]).
    nat: Option<SocketAddr>,
    /// The network's draws for what it sends (loss, jitter, reordering) and its churn.
    rng: ChaCha20Rng,
    /// What it did, in the order it did it.
    trace: Trace,
    /// Events it has sent to the queue: with its index, their order among equal times.
    sent: u64,
    /// Lookups under way or finished, by version (ids are per version) and id.
    lookups: HashMap<(DiscoveryVersion, LookupId), Option<Vec<NodeId>>>,
}

/// What processing reads and nothing changes while the network runs (only the harness does,
/// between runs): shared by every thread.
struct Net {
    config: SimConfig,
    by_addr: HashMap<SocketAddr, usize>,
    /// Where each node's packets come from: its NAT's public endpoint, or its own address.
    public: Vec<SocketAddr>,
    /// Partition group of each node; nodes talk only within their group.
    groups: Option<Vec<u32>>,
    /// Every node's public key, when [`SimConfig::known_keys`]: entered on every thread that
    /// runs nodes.
    known: Option<Arc<KnownKeys>>,
}

impl Net {
    /// Installs [`known`](Self::known) on this thread while the guard lives.
    fn enter_known_keys(&self) -> Option<KnownKeysGuard> {
        self.known.clone().map(KnownKeys::enter)
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().is_some_and(|g| g[a] != g[b])
    }

    fn latency(&self, a: usize, b: usize) -> Duration {
        Duration::from_millis(self.config.link.latency_ms(self.config.seed, a, b))
    }
}

/// An event a node sent: where it goes into the queue is decided at the window's end, by
/// (time, sender, the sender's count), whatever thread ran the sender.
struct Sent {
    at: Instant,
    origin: usize,
    seq: u64,
    kind: Kind,
}

/// One thread's part of a window: its nodes' events, and what they sent.
struct Shard {
    queue: EventQueue<Kind>,
    /// End of the current window (exclusive, virtual ms): a node's own events due before it
    /// stay here; everything else waits in `outbox` for the window's end.
    end: u64,
    outbox: Vec<Sent>,
    stats: SimStats,
    buf: Box<[u8; MAX_PACKET_SIZE]>,
}

impl Shard {
    fn new(now: Instant) -> Self {
        Self {
            queue: EventQueue::new(now),
            end: now.as_millis(),
            outbox: Vec::new(),
            stats: SimStats::default(),
            buf: Box::new([0u8; MAX_PACKET_SIZE]),
        }
    }
}

/// A simulated network. See the [module docs](self).
pub struct Sim {
    net: Net,
    now: Instant,
    slots: Vec<Slot>,
    bootnodes: Vec<Enode>,
    /// Events the harness caused, not yet handed to the shards.
    queue: EventQueue<Kind>,
    /// The harness's draws (which nodes look up what).
    rng: ChaCha20Rng,
    /// The harness's records (partitions); the nodes' are in their slots.
    trace: Trace,
    stats: SimStats,
    /// Each thread's nodes' events, and what they sent.
    shards: Vec<Shard>,
    /// Shards, of `shards`.
    layout: Option<usize>,
    /// The harness's outbox and counters.
    harness: Shard,
    threads: usize,
}

/// 32 bytes derived from the seed for one purpose, so that adding a node or a draw in one
/// place never shifts the randomness of another.
fn derive(seed: u64, label: &str, a: u64, b: u64) -> [u8; 32] {
    keccak256_concat(&[
        b"devp2p-sim",
        &seed.to_le_bytes(),
        label.as_bytes(),
        &a.to_le_bytes(),
        &b.to_le_bytes(),
    ])
}

impl SimStats {
    fn add(&mut self, o: &SimStats) {
        self.datagrams_sent += o.datagrams_sent;
        self.datagrams_delivered += o.datagrams_delivered;
        self.datagrams_lost += o.datagrams_lost;
        self.stream_writes += o.stream_writes;
        self.stream_bytes += o.stream_bytes;
        self.dials += o.dials;
        self.connections += o.connections;
        self.timers += o.timers;
        self.events += o.events;
        self.crashes += o.crashes;
        self.restarts += o.restarts;
    }
}

impl Sim {
    /// A network of `config.nodes` nodes; the bootnodes start at [`START`], the others at
    /// random times within the join window. Nothing runs until [`Sim::run_until`].
    pub fn new(config: SimConfig) -> Self {
        let threads = config.threads;
        let mut sim = Sim {
            now: START,
            slots: Vec::new(),
            bootnodes: Vec::new(),
            queue: EventQueue::new(START),
            rng: ChaCha20Rng::from_seed(derive(config.seed, "network", 0, 0)),
            trace: Trace::default(),
            stats: SimStats::default(),
            shards: Vec::new(),
            layout: None,
            harness: Shard::new(START),
            threads,
            net: Net {
                config,
                by_addr: HashMap::new(),
                public: Vec::new(),
                groups: None,
                known: None,
            },
        };
        sim.net.config.link.lookahead_ms();
        let mut join = ChaCha20Rng::from_seed(derive(sim.net.config.seed, "join", 0, 0));
        let churn_fraction = sim.net.config.churn.as_ref().map_or(0.0, |c| c.fraction);
        let window = sim.net.config.join_window.as_millis() as u64;
        let c = &sim.net.config;
        let nated = nat::pick(c.seed, c.nodes, c.bootnodes, c.nat_share);
        for i in 0..sim.net.config.nodes {
            let boot = i < sim.net.config.bootnodes;
            let start_at = if boot || window == 0 {
                START
            } else {
                START + Duration::from_millis(join.next_u64() % window)
            };
            let churns = !boot && unit(&mut join) < churn_fraction;
            let behind_nat = nated.contains(&i);
            let spec = NodeSpec {
                ip: if behind_nat {
                    nat::PRIVATE_IP
                } else {
                    honest_ip(i)
                },
                config: sim.net.config.node.clone(),
                start_at,
                churns,
            };
            let j = sim.add_node(spec);
            if behind_nat {
                sim.put_behind_nat(j, nat::public_addr(i));
            }
            if boot {
                let key = *sim.slots[j].key.public();
                let ip = IpAddr::V4(honest_ip(i));
                sim.bootnodes.push(Enode::new(key, ip, PORT, PORT));
            }
        }
        sim
    }

    /// Adds a node at `spec.ip`, with a key derived from the seed and its index; it knows
    /// the bootnodes. Returns its index.
    ///
    /// # Panics
    /// If another node already has that address.
    pub fn add_node(&mut self, spec: NodeSpec) -> usize {
        let i = self.slots.len();
        let seed = self.net.config.seed;
        let mut rng = ChaCha20Rng::from_seed(derive(seed, "key", i as u64, 0));
        let key =
            NodeSecretKey::generate(&mut rng).with_signature_scheme(self.net.config.signatures);
        if self.net.config.known_keys {
            Arc::make_mut(self.net.known.get_or_insert_with(Default::default)).insert(key.public());
        }
        let addr = SocketAddr::new(IpAddr::V4(spec.ip), PORT);
        assert!(
            self.net.by_addr.insert(addr, i).is_none(),
            "two simulated nodes at {addr}"
        );
        self.net.public.push(addr);
        let mut config = spec.config;
        config.listen = addr;
        config.bootnodes.extend(self.bootnodes.iter().cloned());
        self.slots.push(Slot {
            key,
            addr,
            config,
            node: None,
            inc: 0,
            db: NodeDbSnapshot::default(),
            timer: None,
            uplink_free: START,
            conns: BTreeSet::new(),
            dialing: HashSet::new(),
            streams: HashMap::new(),
            next_port: 40000,
            churns: spec.churns,
            saves_db: spec.churns,
            ever_started: false,
            nat: None,
            rng: ChaCha20Rng::from_seed(derive(seed, "link", i as u64, 0)),
            trace: Trace::default(),
            sent: 0,
            lookups: HashMap::new(),
        });
        let at = spec.start_at.max(self.now);
        self.queue.push(at, Kind::Start { node: i });
        i
    }

    // ---- observation ---------------------------------------------------------------------

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since [`START`].
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.now.as_millis() - START.as_millis())
    }

    /// Nodes, running or not.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The settings the simulation was built with.
    pub fn config(&self) -> &SimConfig {
        &self.net.config
    }

    /// Node `i`, if it is running.
    pub fn node(&self, i: usize) -> Option<&Node<ChaCha20Rng>> {
        self.slots[i].node.as_deref()
    }

    /// Whether node `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    /// Node `i`'s id (whether or not it is running).
    pub fn id(&self, i: usize) -> NodeId {
        self.slots[i].key.id()
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.slots[i].addr
    }

    /// Node `i`'s public key.
    pub fn public_key(&self, i: usize) -> &NodePublicKey {
        self.slots[i].key.public()
    }

    /// Node `i`'s enode URL.
    pub fn node_enode(&self, i: usize) -> Enode {
        let a = self.slots[i].addr;
        Enode::new(*self.slots[i].key.public(), a.ip(), a.port(), a.port())
    }

    /// The node database node `i` last saved (what it restarts from).
    pub fn saved_db(&self, i: usize) -> &NodeDbSnapshot {
        &self.slots[i].db
    }

    /// The index of the node with id `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        (0..self.slots.len()).find(|&i| self.slots[i].key.id() == *id)
    }

    /// The bootnodes' enode URLs.
    pub fn bootnodes(&self) -> &[Enode] {
        &self.bootnodes
    }

    /// Counters so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The trace digest so far: the harness's trace, then every node's, in index order.
    pub fn digest(&self) -> [u8; 32] {
        trace::digest_of(std::iter::once(&self.trace).chain(self.slots.iter().map(|s| &s.trace)))
    }

    /// Trace records hashed so far.
    pub fn trace_records(&self) -> u64 {
        self.trace.records() + self.slots.iter().map(|s| s.trace.records()).sum::<u64>()
    }

    /// Threads [`Sim::run_until`] runs the nodes on (never more than there are nodes).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Sets the threads [`Sim::run_until`] runs the nodes on (at least 1). It changes how
    /// fast a run goes, never what happens in it.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// The discovery version the measurements ([`Sim::table_fill`], [`Sim::start_lookup`],
    /// [`Sim::measure_recall`]) look at: v4 when the nodes run it, else v5.
    pub fn measured_version(&self) -> DiscoveryVersion {
        if self.net.config.node.runs_discv4() {
            DiscoveryVersion::V4
        } else {
            DiscoveryVersion::V5
        }
    }

    /// Table sizes of the running nodes among `nodes` (in the table of
    /// [`Sim::measured_version`]).
    pub fn table_fill(&self, nodes: impl IntoIterator<Item = usize>) -> TableFill {
        self.table_fill_over(self.measured_version(), nodes)
    }

    /// [`Sim::table_fill`] of the `version` tables (of the nodes among `nodes` that run it).
    pub fn table_fill_over(
        &self,
        version: DiscoveryVersion,
        nodes: impl IntoIterator<Item = usize>,
    ) -> TableFill {
        let v5 = version == DiscoveryVersion::V5;
        let sizes: Vec<usize> = nodes
            .into_iter()
            .filter_map(|i| self.node(i))
            .filter_map(|n| {
                if v5 {
                    n.discv5().map(|d| d.table().len())
                } else {
                    n.discovery().map(|d| d.table().len())
                }
            })
            .collect();
        TableFill {
            nodes: sizes.len(),
            min: sizes.iter().copied().min().unwrap_or(0),
            mean: sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
            max: sizes.iter().copied().max().unwrap_or(0),
        }
    }

    /// The [`LOOKUP_RESULTS`] running nodes closest to `target` (by XOR distance of node
    /// ids), `except` excluded: what a perfect lookup from `except` would return.
    pub fn true_closest(&self, target: &NodeId, except: usize) -> Vec<NodeId> {
        self.true_closest_among(target, except, None)
    }

    /// [`Sim::true_closest`] among the nodes that run `version` (all if `None`): what a
    /// perfect lookup over that version would return.
    pub fn true_closest_among(
        &self,
        target: &NodeId,
        except: usize,
        version: Option<DiscoveryVersion>,
    ) -> Vec<NodeId> {
        let mut ids: Vec<([u8; 32], NodeId)> = (0..self.slots.len())
            .filter(|&i| i != except && self.is_up(i))
            .filter(|&i| version.is_none_or(|v| self.runs(i, v)))
            .map(|i| {
                let id = self.slots[i].key.id();
                (target.xor(&id), id)
            })
            .collect();
        let k = LOOKUP_RESULTS.min(ids.len());
        if k < ids.len() {
            ids.select_nth_unstable(k);
            ids.truncate(k);
        }
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Whether node `i` is configured to run discovery `version`.
    pub fn runs(&self, i: usize, version: DiscoveryVersion) -> bool {
        let c = &self.slots[i].config;
        match version {
            DiscoveryVersion::V4 => c.runs_discv4(),
            DiscoveryVersion::V5 => c.runs_discv5(),
        }
    }

    // ---- control -------------------------------------------------------------------------

    /// Changes the settings node `i` will start with (a network of mixed nodes: some
    /// running discv4 only, some discv5 only). Panics once the node has started.
    pub fn configure(&mut self, i: usize, f: impl FnOnce(&mut NodeConfig)) {
        let slot = &mut self.slots[i];
        assert!(!slot.ever_started, "node {i} has already started");
        f(&mut slot.config);
    }

    /// Runs until virtual time `until` (everything due at or before it happens).
    /// Runs until virtual time `until` (everything due at or before it happens), on
    /// [`Sim::threads`] threads.
    ///
    /// Time advances in windows of one lookahead ([`LinkConfig::lookahead_ms`]) from the
    /// present: nothing a node does within a window can reach another node before the
    /// window ends, so each thread runs the events of its share of the nodes on its own. At
    /// the window's end, what its nodes sent to other shards is passed on, and each shard
    /// queues what it was sent in (time, sender, the sender's count) order. Each node sees its
    /// events in an order that does not depend on the threads, so neither does anything else.
    pub fn run_until(&mut self, until: Instant) {
        if self.slots.is_empty() {
            self.now = self.now.max(until);
            return;
        }
        let n = self.threads.clamp(1, self.slots.len());
        self.lay_out(n);
        let lookahead = self.net.config.link.lookahead_ms();
        let start = self.now.as_millis();
        let stop = until.as_millis().saturating_add(1);
        let Sim {
            net,
            slots,
            shards,
            stats,
            ..
        } = self;
        let net = &*net;
        // What shard `from` sent shard `to` in a window of parity `p`: cell `(from * n + to) *
        // 2 + p`. A shard writes the cells of one parity while the others still read those of
        // the other: nobody is ever a window ahead of the barrier.
        let cells: Vec<Mutex<Vec<Sent>>> = (0..n * n * 2).map(|_| Mutex::new(Vec::new())).collect();
        let barrier = WindowBarrier::new(n);
        let panicked: Mutex<Option<Box<dyn Any + Send>>> = Mutex::new(None);
        let failed = AtomicBool::new(false);
        let mut dealt: Vec<Vec<&mut Slot>> = (0..n)
            .map(|_| Vec::with_capacity(slots.len().div_ceil(n)))
            .collect();
        for (i, slot) in slots.iter_mut().enumerate() {
            dealt[shard_of(i, n)].push(slot);
        }
        std::thread::scope(|s| {
            let mut parts = dealt.iter_mut().zip(shards.iter_mut()).enumerate();
            let (_, (first, first_shard)) = parts.next().expect("at least one node");
            let window = Window {
                net,
                n,
                lookahead,
                start,
                stop,
                cells: &cells,
                barrier: &barrier,
                panicked: &panicked,
                failed: &failed,
            };
            for (k, (part, shard)) in parts {
                s.spawn(move || window.run(k, part, shard));
            }
            window.run(0, first, first_shard);
        });
        for sh in shards.iter_mut() {
            stats.add(&std::mem::take(&mut sh.stats));
        }
        if let Some(p) = panicked.into_inner().expect("not poisoned") {
            std::panic::resume_unwind(p);
        }
        self.now = self.now.max(until);
    }

    /// Makes the shards those of `n` threads (node `i` in shard `i % n`), and moves into them
    /// every event queued from the harness. A node's events keep their order: the ones its
    /// shard held, then the harness's, each in (time, insertion) order.
    fn lay_out(&mut self, n: usize) {
        let now = self.now;
        let mut staged = std::mem::replace(&mut self.queue, EventQueue::new(now));
        if self.layout != Some(n) {
            let mut all = EventQueue::new(now);
            for sh in &mut self.shards {
                while let Some((at, kind)) = sh.queue.pop_until(Instant::MAX) {
                    all.push(at, kind);
                }
                self.stats.add(&std::mem::take(&mut sh.stats));
            }
            while let Some((at, kind)) = staged.pop_until(Instant::MAX) {
                all.push(at, kind);
            }
            staged = all;
            self.shards = (0..n).map(|_| Shard::new(now)).collect();
            self.layout = Some(n);
        }
        while let Some((at, kind)) = staged.pop_until(Instant::MAX) {
            self.shards[shard_of(kind.node(), n)].queue.push(at, kind);
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Splits the network: nodes talk only to nodes with the same group number. Streams
    /// across the cut go silent (their sessions time out); datagrams and dials across it
    /// vanish.
    pub fn partition(&mut self, group: impl Fn(usize) -> u32) {
        let groups: Vec<u32> = (0..self.slots.len()).map(group).collect();
        let h = keccak256_concat(&[&groups
            .iter()
            .flat_map(|g| g.to_le_bytes())
            .collect::<Vec<u8>>()]);
        self.trace
            .record(Record::Partition, self.now, 0, 1, groups.len() as u64, &h);
        self.net.groups = Some(groups);
    }

    /// Ends a partition. Streams cut by it stay dead; everything else flows again.
    pub fn heal(&mut self) {
        self.trace.record(Record::Partition, self.now, 0, 0, 0, &[]);
        self.net.groups = None;
    }

    /// Crashes node `i` now: its state is lost except the database it last saved; its peers
    /// see their connections close.
    pub fn crash(&mut self, i: usize) {
        self.with_nodes(|c| c.crash(i));
    }

    /// Makes node `i` save its database every [`SimConfig::db_save_interval`], as churning
    /// nodes do (saving costs time, so other nodes do not). Takes effect at its next start.
    pub fn save_db_of(&mut self, i: usize) {
        self.slots[i].saves_db = true;
    }

    /// Restarts node `i` now, from its saved database (no effect if it is running).
    pub fn restart(&mut self, i: usize) {
        self.with_nodes(|c| c.restart(i));
    }

    /// Starts a lookup for `target` on running node `i`, over [`Sim::measured_version`]
    /// (discv5 looks up the target's id, `NodeId::of_target`); its result is collected by
    /// [`Sim::lookup_result`]. `None` if the node is down or runs without discovery.
    pub fn start_lookup(&mut self, i: usize, target: [u8; 64]) -> Option<LookupId> {
        self.start_lookup_over(i, self.measured_version(), target)
    }

    /// [`Sim::start_lookup`] over `version`; collected by [`Sim::lookup_result_over`].
    pub fn start_lookup_over(
        &mut self,
        i: usize,
        version: DiscoveryVersion,
        target: [u8; 64],
    ) -> Option<LookupId> {
        self.with_nodes(|c| {
            let now = c.now;
            let slot = c.slot(i);
            let node = slot.node.as_mut()?;
            let id = match version {
                DiscoveryVersion::V4 => node.lookup_target(now, &target)?,
                DiscoveryVersion::V5 => node.lookup_v5(now, &NodeId::of_target(&target))?,
            };
            slot.trace.record(Record::Lookup, now, i, id.0, 0, &target);
            slot.lookups.insert((version, id), None);
            c.after(i);
            Some(id)
        })
    }

    /// The result of a lookup started by [`Sim::start_lookup`], once it has finished (and
    /// forgets it).
    pub fn lookup_result(&mut self, i: usize, id: LookupId) -> Option<Vec<NodeId>> {
        self.lookup_result_over(i, self.measured_version(), id)
    }

    /// The result of a lookup started by [`Sim::start_lookup_over`], once it has finished.
    pub fn lookup_result_over(
        &mut self,
        i: usize,
        version: DiscoveryVersion,
        id: LookupId,
    ) -> Option<Vec<NodeId>> {
        let lookups = &mut self.slots[i].lookups;
        match lookups.get(&(version, id)) {
            Some(Some(_)) => lookups.remove(&(version, id)).flatten(),
            _ => None,
        }
    }

    /// Starts `samples` lookups for random targets from random running nodes among `from`,
    /// runs until all finish (at most `timeout`), and compares each result with the true
    /// 16 closest running nodes.
    pub fn measure_recall(&mut self, from: &[usize], samples: usize, timeout: Duration) -> Recall {
        let version = self.measured_version();
        self.measure_recall_inner(version, None, from, samples, timeout)
    }

    /// [`Sim::measure_recall`] over `version`, from the nodes among `from` that run it, and
    /// against the true closest among the nodes that run it (in a mixed network the others
    /// cannot be found over it).
    pub fn measure_recall_over(
        &mut self,
        version: DiscoveryVersion,
        from: &[usize],
        samples: usize,
        timeout: Duration,
    ) -> Recall {
        self.measure_recall_inner(version, Some(version), from, samples, timeout)
    }

    fn measure_recall_inner(
        &mut self,
        version: DiscoveryVersion,
        among: Option<DiscoveryVersion>,
        from: &[usize],
        samples: usize,
        timeout: Duration,
    ) -> Recall {
        let candidates: Vec<usize> = from
            .iter()
            .copied()
            .filter(|&i| self.is_up(i) && self.runs(i, version))
            .collect();
        let mut started = Vec::new();
        for _ in 0..samples {
            if candidates.is_empty() {
                break;
            }
            let i = candidates[(self.rng.next_u64() % candidates.len() as u64) as usize];
            let mut target = [0u8; 64];
            self.rng.fill_bytes(&mut target);
            if let Some(id) = self.start_lookup_over(i, version, target) {
                started.push((i, id, target));
            }
        }
        let deadline = self.now + timeout;
        let step = Duration::from_millis(100);
        while self.now < deadline
            && started
                .iter()
                .any(|(i, id, _)| matches!(self.slots[*i].lookups.get(&(version, *id)), Some(None)))
        {
            let next = (self.now + step).min(deadline);
            self.run_until(next);
        }
        let mut recalls = Vec::new();
        let mut finished = 0;
        for (i, id, target) in started {
            let r = match self.lookup_result_over(i, version, id) {
                Some(found) => {
                    finished += 1;
                    let truth = self.true_closest_among(&NodeId::of_target(&target), i, among);
                    let hit = found.iter().filter(|f| truth.contains(f)).count();
                    hit as f64 / truth.len().max(1) as f64
                }
                None => {
                    self.slots[i].lookups.remove(&(version, id));
                    0.0
                }
            };
            recalls.push(r);
        }
        Recall {
            lookups: recalls.len(),
            finished,
            mean: recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
            min: recalls.iter().copied().fold(1.0, f64::min),
        }
    }

    // ---- internals -----------------------------------------------------------------------

    /// Runs `f` on the nodes from the harness, between windows: everything it makes the
    /// nodes send goes into the queue of the harness, to reach the shards at the next run.
    fn with_nodes<R>(&mut self, f: impl FnOnce(&mut Ctx) -> R) -> R {
        let _keys = self.net.enter_known_keys();
        let sh = &mut self.harness;
        // A window that ends now: nothing stays in the shard.
        sh.end = self.now.as_millis();
        let mut slots: Vec<&mut Slot> = self.slots.iter_mut().collect();
        let mut ctx = Ctx {
            net: &self.net,
            slots: &mut slots,
            stride: 1,
            first: 0,
            sh,
            now: self.now,
        };
        let r = f(&mut ctx);
        let mut sent = std::mem::take(&mut self.harness.outbox);
        sent.sort_unstable_by_key(|s| (s.at, s.origin, s.seq));
        for s in sent {
            self.queue.push(s.at, s.kind);
        }
        self.stats.add(&std::mem::take(&mut self.harness.stats));
        r
    }
}

/// The shard of node `i` among `n`: the nodes are dealt out like cards, so that neither the
/// bootnodes (the first few, busier than the rest) nor any other run of nodes loads one shard
/// more than the others. Within its shard, node `i` is the `i / n`-th.
fn shard_of(i: usize, n: usize) -> usize {
    i % n
}

/// What every thread of one [`Sim::run_until`] shares.
#[derive(Clone, Copy)]
struct Window<'a> {
    net: &'a Net,
    /// Shards (threads).
    n: usize,
    lookahead: u64,
    /// The first window's start and the end of the last (exclusive), virtual ms.
    start: u64,
    stop: u64,
    cells: &'a [Mutex<Vec<Sent>>],
    barrier: &'a WindowBarrier,
    panicked: &'a Mutex<Option<Box<dyn Any + Send>>>,
    failed: &'a AtomicBool,
}

impl Window<'_> {
    /// Shard `k`'s part: window after window, run its nodes' events, pass on what they sent,
    /// wait for the others, queue what it was sent.
    fn run(self, k: usize, slots: &mut [&mut Slot], sh: &mut Shard) {
        let _keys = self.net.enter_known_keys();
        let mut w = self.start;
        let mut parity = 0;
        while w < self.stop {
            if self.n == 1 {
                // Alone, skip the windows with nothing due (on the same grid as with more
                // threads, where every shard steps through every window).
                let Some(t) = sh.queue.next_due(Instant::from_millis(self.stop - 1)) else {
                    break;
                };
                let t = t.as_millis();
                w += (t - w) / self.lookahead * self.lookahead;
            }
            sh.end = (w + self.lookahead).min(self.stop);
            if !self.failed.load(Ordering::Relaxed) {
                let mut ctx = Ctx {
                    net: self.net,
                    slots: &mut *slots,
                    stride: self.n,
                    first: k,
                    sh: &mut *sh,
                    now: Instant::from_millis(w),
                };
                if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| ctx.run_window())) {
                    self.failed.store(true, Ordering::Relaxed);
                    self.panicked.lock().expect("not poisoned").get_or_insert(p);
                }
            }
            let mut sent = std::mem::take(&mut sh.outbox);
            if self.n > 1 {
                let mut to: Vec<Vec<Sent>> = (0..self.n).map(|_| Vec::new()).collect();
                for s in sent.drain(..) {
                    to[shard_of(s.kind.node(), self.n)].push(s);
                }
                for (j, v) in to.into_iter().enumerate() {
                    if !v.is_empty() {
                        *self.cell(k, j, parity) = v;
                    }
                }
                self.barrier.wait();
                for j in 0..self.n {
                    sent.append(&mut self.cell(j, k, parity));
                }
            }
            sent.sort_unstable_by_key(|s| (s.at, s.origin, s.seq));
            for s in sent.drain(..) {
                sh.queue.push(s.at, s.kind);
            }
            sh.outbox = sent;
            parity ^= 1;
            w = sh.end;
        }
    }

    fn cell(&self, from: usize, to: usize, parity: usize) -> std::sync::MutexGuard<'_, Vec<Sent>> {
        self.cells[(from * self.n + to) * 2 + parity]
            .lock()
            .expect("not poisoned")
    }
}

/// Processing within one shard: its nodes, the shared network, its outbox.
struct Ctx<'a, 'b> {
    net: &'a Net,
    /// Node `i` is `slots[i / stride]`: the shard's nodes are every `stride`-th from
    /// `first`.
    slots: &'a mut [&'b mut Slot],
    stride: usize,
    first: usize,
    sh: &'a mut Shard,
    now: Instant,
}

impl Ctx<'_, '_> {
    fn slot(&mut self, i: usize) -> &mut Slot {
        self.check(i);
        self.slots[i / self.stride]
    }

    /// Node `i` is one of this shard's (a node of another shard is never touched).
    fn check(&self, i: usize) {
        debug_assert_eq!(
            shard_of(i, self.stride),
            self.first,
            "node {i} is not in this shard"
        );
    }

    fn run_window(&mut self) {
        let last = Instant::from_millis(self.sh.end - 1);
        while let Some((at, kind)) = self.sh.queue.pop_until(last) {
            self.now = self.now.max(at);
            self.process(kind);
        }
    }

    fn unix(&self) -> u64 {
        UNIX_START + self.now.as_millis() / 1000
    }

    /// Queues `kind`, sent by node `origin`: its own events within the window stay in the
    /// shard, everything else goes out at the window's end.
    fn push(&mut self, origin: usize, at: Instant, kind: Kind) {
        let at = at.max(self.now);
        if kind.node() == origin && at.as_millis() < self.sh.end {
            self.sh.queue.push(at, kind);
            return;
        }
        let slot = self.slot(origin);
        slot.sent += 1;
        let seq = slot.sent;
        self.sh.outbox.push(Sent {
            at,
            origin,
            seq,
            kind,
        });
    }

    fn record(&mut self, kind: Record, node: usize, a: u64, b: u64, data: &[u8]) {
        let now = self.now;
        self.slot(node).trace.record(kind, now, node, a, b, data);
    }

    /// When a packet of `len` bytes sent now by `from` reaches `to`: queueing on the
    /// sender's uplink, the link latency and jitter.
    fn arrival(&mut self, from: usize, to: usize, len: usize) -> Instant {
        let link = &self.net.config.link;
        let tx = link.transmission_ms(len);
        let jitter = link.jitter.as_millis() as u64;
        let latency = self.net.latency(from, to);
        let now = self.now;
        let slot = self.slot(from);
        let leave = slot.uplink_free.max(now) + Duration::from_millis(tx);
        slot.uplink_free = leave;
        let jitter = if jitter > 0 {
            slot.rng.next_u64() % (jitter + 1)
        } else {
            0
        };
        leave + latency + Duration::from_millis(jitter)
    }

    fn start(&mut self, i: usize) {
        let now = self.now;
        let unix = self.unix();
        let seed = self.net.config.seed;
        let churn = self.net.config.churn.clone();
        let save = self.net.config.db_save_interval;
        let slot = self.slot(i);
        let mut config = slot.config.clone();
        config.node_db = slot.db.clone();
        // A restarted node signs a newer record, as geth does from its database.
        config.enr_seq = Some(u64::from(slot.inc) + 1);
        let rng = ChaCha20Rng::from_seed(derive(seed, "node", i as u64, slot.inc.into()));
        slot.node = Some(Box::new(Node::new(
            slot.key.clone(),
            config,
            rng,
            now,
            unix,
        )));
        slot.timer = None;
        let first = !slot.ever_started;
        slot.ever_started = true;
        let inc = slot.inc;
        let churns = slot.churns;
        let saves_db = slot.saves_db;
        slot.trace
            .record(Record::Lifecycle, now, i, if first { 0 } else { 1 }, 0, &[]);
        if churns {
            if let Some(c) = churn {
                let up = exponential(&mut self.slot(i).rng, c.mean_up);
                self.push(i, now + up, Kind::Crash { node: i });
            }
        }
        if saves_db {
            self.push(i, now + save, Kind::SaveDb { node: i, inc });
        }
        self.after(i);
    }

    /// Restarts node `i` now, from its saved database (no effect if it is running).
    fn restart(&mut self, i: usize) {
        if self.slot(i).node.is_some() {
            return;
        }
        self.sh.stats.restarts += 1;
        self.start(i);
    }

    /// Crashes node `i` now: its state is lost except the database it last saved; its peers
    /// see their connections close.
    fn crash(&mut self, i: usize) {
        if self.slot(i).node.is_none() {
            return;
        }
        self.sh.stats.crashes += 1;
        self.record(Record::Lifecycle, i, 2, 0, &[]);
        let slot = self.slot(i);
        slot.node = None;
        slot.inc += 1;
        slot.timer = None;
        slot.dialing.clear();
        let conns = std::mem::take(&mut slot.conns);
        for conn in conns {
            self.close_end(i, conn);
        }
        self.slot(i).streams.clear();
    }

    fn process(&mut self, kind: Kind) {
        let now = self.now;
        let unix = self.unix();
        match kind {
            Kind::Start { node } => self.start(node),
            Kind::Timer {
                node,
                inc,
                deadline,
            } => {
                let slot = self.slot(node);
                if slot.inc != inc || slot.timer != Some(deadline) {
                    return;
                }
                slot.timer = None;
                let Some(n) = slot.node.as_mut() else { return };
                n.handle_timeout(now, unix);
                slot.trace.record(Record::Timer, now, node, 0, 0, &[]);
                self.sh.stats.timers += 1;
                self.after(node);
            }
            Kind::Datagram { to, from, data } => {
                if self.slot(to).node.is_none() || self.net.cut(from, to) {
                    self.sh.stats.datagrams_lost += 1;
                    self.record(Record::DatagramLost, to, from as u64, 1, &[]);
                    return;
                }
                self.sh.stats.datagrams_delivered += 1;
                self.record(Record::Datagram, to, from as u64, 0, &data);
                let src = self.net.public[from];
                if let Some(n) = self.slot(to).node.as_mut() {
                    n.handle_datagram(now, unix, src, &data);
                }
                self.after(to);
            }
            Kind::Syn {
                from,
                inc,
                conn,
                to,
                port,
            } => self.on_syn(from, inc, conn, to, port),
            Kind::Connected {
                node,
                inc,
                conn,
                peer,
                peer_inc,
                peer_conn,
            } => {
                let slot = self.slot(node);
                if slot.inc != inc || !slot.dialing.remove(&conn) {
                    // The dialer gave up or crashed meanwhile: its side resets the
                    // connection, and the acceptor sees it close.
                    let at = now + self.net.latency(node, peer);
                    let rst = Kind::Closed {
                        to: peer,
                        inc: peer_inc,
                        conn: peer_conn,
                    };
                    self.push(node, at, rst);
                    return;
                }
                slot.conns.insert(conn);
                slot.streams
                    .insert(conn, StreamEnd::new(peer, peer_inc, peer_conn, now));
                slot.trace
                    .record(Record::Connected, now, node, conn.0, 0, &[]);
                if let Some(n) = slot.node.as_mut() {
                    n.handle_connected(now, conn);
                }
                self.after(node);
            }
            Kind::ConnectFailed { node, inc, conn } => {
                let slot = self.slot(node);
                if slot.inc != inc || !slot.dialing.remove(&conn) {
                    return;
                }
                slot.trace
                    .record(Record::ConnectFailed, now, node, conn.0, 0, &[]);
                if let Some(n) = slot.node.as_mut() {
                    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                    n.handle_connect_failed(now, conn, &refused);
                }
                self.after(node);
            }
            Kind::Data {
                to,
                inc,
                conn,
                data,
            } => self.on_data(to, inc, conn, data),
            Kind::Closed { to, inc, conn } => {
                let slot = self.slot(to);
                if slot.inc != inc || slot.streams.remove(&conn).is_none() {
                    return;
                }
                slot.conns.remove(&conn);
                slot.trace.record(Record::Closed, now, to, conn.0, 0, &[]);
                if let Some(n) = slot.node.as_mut() {
                    n.handle_closed(now, conn);
                }
                self.after(to);
            }
            Kind::Broken { to, inc, conn } => {
                let slot = self.slot(to);
                if slot.inc == inc {
                    if let Some(e) = slot.streams.get_mut(&conn) {
                        e.broken = true;
                    }
                }
            }
            Kind::Crash { node } => {
                self.crash(node);
                if let Some(c) = self.net.config.churn.clone() {
                    let down = exponential(&mut self.slot(node).rng, c.mean_down);
                    self.push(node, now + down, Kind::Restart { node });
                }
            }
            Kind::Restart { node } => self.restart(node),
            Kind::SaveDb { node, inc } => {
                let slot = self.slot(node);
                if slot.inc != inc {
                    return;
                }
                if let Some(n) = slot.node.as_ref() {
                    slot.db = n.db_snapshot();
                }
                let next = now + self.net.config.db_save_interval;
                self.push(node, next, Kind::SaveDb { node, inc });
            }
        }
    }

    /// A connection attempt from `from`'s port `port` reaches `to`, which accepts or refuses
    /// it; either way the dialer hears back one latency later.
    fn on_syn(&mut self, from: usize, inc: u32, conn: ConnId, to: usize, port: u16) {
        let now = self.now;
        if self.net.cut(from, to) {
            return; // the SYN vanishes; the dialer's own timeout ends the dial
        }
        let back = now + self.net.latency(from, to);
        let src = SocketAddr::new(self.net.public[from].ip(), port);
        let slot = self.slot(to);
        slot.trace
            .record(Record::Syn, now, to, from as u64, conn.0, &[]);
        let to_inc = slot.inc;
        let accepted = match slot.node.as_mut() {
            Some(n) => n.handle_accept(now, src).ok(),
            None => None,
        };
        let Some(jc) = accepted else {
            // Nobody listening, or refused at once: the dialer sees the connection fail.
            self.push(
                to,
                back,
                Kind::ConnectFailed {
                    node: from,
                    inc,
                    conn,
                },
            );
            self.after(to);
            return;
        };
        slot.streams
            .insert(jc, StreamEnd::new(from, inc, conn, now));
        slot.conns.insert(jc);
        self.sh.stats.connections += 1;
        self.push(
            to,
            back,
            Kind::Connected {
                node: from,
                inc,
                conn,
                peer: to,
                peer_inc: to_inc,
                peer_conn: jc,
            },
        );
        self.after(to);
    }

    fn on_data(&mut self, to: usize, inc: u32, conn: ConnId, data: Vec<u8>) {
        let now = self.now;
        let slot = self.slot(to);
        if slot.inc != inc {
            return;
        }
        let Some(end) = slot.streams.get_mut(&conn) else {
            return;
        };
        if end.broken {
            return;
        }
        let mut buf = std::mem::take(&mut end.inbox);
        slot.trace.record(Record::Data, now, to, conn.0, 0, &data);
        buf.extend_from_slice(&data);
        let mut offset = 0;
        loop {
            let Some(n) = self.slot(to).node.as_mut() else {
                return;
            };
            let used = n.handle_read(now, conn, &buf[offset..]);
            offset += used;
            self.after(to);
            if used == 0 || offset == buf.len() {
                break;
            }
        }
        buf.drain(..offset);
        if let Some(end) = self.slot(to).streams.get_mut(&conn) {
            end.inbox = buf;
        }
    }

    /// Forgets node `i`'s end of `conn` and lets the peer see the close (FIN or RST), after
    /// whatever `i` wrote before it and unless a partition swallows it.
    fn close_end(&mut self, i: usize, conn: ConnId) {
        let Some(end) = self.slot(i).streams.remove(&conn) else {
            return;
        };
        if !end.broken && !self.net.cut(i, end.peer) {
            let at = (self.now + self.net.latency(i, end.peer)).max(end.tail);
            let closed = Kind::Closed {
                to: end.peer,
                inc: end.peer_inc,
                conn: end.peer_conn,
            };
            self.push(i, at, closed);
        }
    }

    /// Takes everything node `i` wants done and puts it on the network; re-arms its timer.
    fn after(&mut self, i: usize) {
        let now = self.now;
        let loss = self.net.config.link.loss;
        let reorder = self.net.config.link.reorder;
        loop {
            self.check(i);
            let slot = &mut self.slots[i / self.stride];
            let Some(node) = slot.node.as_mut() else {
                return;
            };
            let Some(t) = node.poll_transmit(&mut self.sh.buf) else {
                break;
            };
            let (to, len) = t;
            self.sh.stats.datagrams_sent += 1;
            let Some(&j) = self.net.by_addr.get(&to) else {
                self.sh.stats.datagrams_lost += 1;
                continue;
            };
            if loss > 0.0 && unit(&mut slot.rng) < loss {
                self.sh.stats.datagrams_lost += 1;
                slot.trace
                    .record(Record::DatagramLost, now, j, i as u64, 0, &[]);
                continue;
            }
            let data = self.sh.buf[..len].to_vec();
            let mut at = self.arrival(i, j, len);
            if reorder > 0.0 && unit(&mut self.slot(i).rng) < reorder {
                at += self.net.latency(i, j);
            }
            self.push(
                i,
                at,
                Kind::Datagram {
                    to: j,
                    from: i,
                    data,
                },
            );
        }
        while let Some(action) = self.slot(i).node.as_mut().and_then(|n| n.poll_action()) {
            match action {
                Action::Dial { conn, addr } => {
                    self.sh.stats.dials += 1;
                    if let Some(&j) = self.net.by_addr.get(&addr) {
                        let at = now + self.net.latency(i, j);
                        let slot = self.slot(i);
                        slot.dialing.insert(conn);
                        slot.next_port = slot.next_port.checked_add(1).unwrap_or(40000);
                        let (inc, port) = (slot.inc, slot.next_port);
                        self.push(
                            i,
                            at,
                            Kind::Syn {
                                from: i,
                                inc,
                                conn,
                                to: j,
                                port,
                            },
                        );
                    }
                    // An address nobody has: the connect hangs until the node's dial
                    // timeout, as it would on the internet.
                }
                Action::Write { conn } => {
                    let Some(node) = self.slot(i).node.as_mut() else {
                        break;
                    };
                    let data = node.outbound(conn).to_vec();
                    if data.is_empty() {
                        continue;
                    }
                    node.handle_written(now, conn, data.len());
                    self.write(i, conn, data);
                }
                Action::Close { conn } => {
                    let slot = self.slot(i);
                    slot.dialing.remove(&conn);
                    slot.conns.remove(&conn);
                    self.close_end(i, conn);
                }
                // The simulated nodes are given no DNS trees.
                Action::ResolveTxt { .. } => {}
            }
        }
        while let Some(event) = self.slot(i).node.as_mut().and_then(|n| n.poll_event()) {
            self.sh.stats.events += 1;
            let slot = self.slot(i);
            slot.trace.event(now, i, &event);
            // Lookup ids are per version.
            let finished = match &event {
                NodeEvent::Discovery(e) => match &**e {
                    DiscoveryEvent::LookupFinished { id, nodes, .. } => {
                        Some((DiscoveryVersion::V4, *id, nodes))
                    }
                    _ => None,
                },
                NodeEvent::Discv5(e) => match &**e {
                    Discv5Event::LookupFinished { id, nodes, .. } => {
                        Some((DiscoveryVersion::V5, *id, nodes))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some((version, id, nodes)) = finished {
                if let Some(l) = slot.lookups.get_mut(&(version, id)) {
                    *l = Some(nodes.iter().map(|n| n.id()).collect());
                }
            }
        }
        let slot = self.slot(i);
        let Some(node) = slot.node.as_ref() else {
            return;
        };
        let t = node.poll_timeout();
        if t != slot.timer {
            slot.timer = t;
            if let Some(t) = t {
                let inc = slot.inc;
                self.push(
                    i,
                    t.max(now),
                    Kind::Timer {
                        node: i,
                        inc,
                        deadline: t,
                    },
                );
            }
        }
    }

    fn write(&mut self, i: usize, conn: ConnId, data: Vec<u8>) {
        self.check(i);
        let Some(end) = self.slots[i / self.stride].streams.get_mut(&conn) else {
            return; // not connected (yet): a real socket would have refused the write
        };
        if end.broken {
            return;
        }
        let j = end.peer;
        if self.net.cut(i, j) {
            // This end is cut now; the far end learns it one latency later.
            end.broken = true;
            let (to, inc, conn) = (end.peer, end.peer_inc, end.peer_conn);
            let at = self.now + self.net.latency(i, j);
            self.push(i, at, Kind::Broken { to, inc, conn });
            return;
        }
        self.sh.stats.stream_writes += 1;
        self.sh.stats.stream_bytes += data.len() as u64;
        let at = self.arrival(i, j, data.len());
        let end = self
            .slot(i)
            .streams
            .get_mut(&conn)
            .expect("looked up above");
        let at = at.max(end.tail);
        end.tail = at;
        let (to, inc, pconn) = (end.peer, end.peer_inc, end.peer_conn);
        self.push(
            i,
            at,
            Kind::Data {
                to,
                inc,
                conn: pconn,
                data,
            },
        );
    }
}

/// A uniform draw from [0, 1).
fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// An exponentially distributed duration with the given mean (at least 1 ms).
fn exponential(rng: &mut ChaCha20Rng, mean: Duration) -> Duration {
    let u = unit(rng);
    let ms = -(1.0 - u).ln() * mean.as_millis() as f64;
    Duration::from_millis((ms as u64).max(1))
}
