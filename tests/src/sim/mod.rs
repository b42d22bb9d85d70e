//! Whole networks of unmodified [`Node`]s in one process, under virtual time, replayable
//! from one seed.
//!
//! - **Virtual time**: one event queue holds every datagram, stream write, connection
//!   attempt, close and node timer, ordered by (time, insertion); [`Sim::run_until`] jumps
//!   straight from one to the next. Nothing reads a wall clock.
//! - **Links** ([`LinkConfig`]): a fixed latency per pair of nodes drawn from the seed, and
//!   per-packet jitter, loss, reordering and uplink bandwidth. TCP streams are reliable and
//!   ordered; datagrams are neither.
//! - **Faults**: [`Sim::partition`] splits the network into groups (datagrams and dials
//!   between groups vanish, streams across the cut go silent for good) until [`Sim::heal`];
//!   churn ([`Churn`]) crashes nodes and restarts them, with the same key and address, from
//!   the node database they last saved (every [`SimConfig::db_save_interval`]), as a driver
//!   with a data directory would.
//! - **Randomness**: [`SimConfig::seed`] derives every node key, every node's RNG, every link
//!   latency and every draw the network makes. Same seed, same run.
//! - **Trace digest**: every observable step is hashed into [`Sim::digest`] as it happens
//!   (see [`trace`]), so two runs can be compared with one 32-byte value.
//!
//! Nodes get public IPv4 addresses, one /24 each ([`honest_ip`]), so discovery's per-subnet
//! limits apply as on the internet; extra nodes (an attacker's, say) can be added with any
//! address by [`Sim::add_node`]. A share of them can sit behind full-cone NATs instead
//! ([`SimConfig::nat_share`], [`nat`]).

pub mod link;
pub mod nat;
pub mod queue;
pub mod run;
pub mod trace;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use devp2p_core::discv4::wire::MAX_PACKET_SIZE;
use devp2p_core::discv4::{Event as DiscoveryEvent, LookupId, NodeDbSnapshot};
use devp2p_core::discv5::discovery::Event as Discv5Event;
use devp2p_core::keccak::keccak256_concat;
use devp2p_core::node::{Action, ConnId, DiscoveryVersion, Node, NodeConfig, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{Enode, Instant, NodeId, NodePublicKey, NodeSecretKey, SignatureScheme};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

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
    Syn {
        from: usize,
        inc: u32,
        conn: ConnId,
        to: usize,
    },
    Connected {
        node: usize,
        inc: u32,
        conn: ConnId,
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

/// One end of a simulated TCP connection, keyed by (node, conn).
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
    next_port: u16,
    churns: bool,
    saves_db: bool,
    ever_started: bool,
    /// The public endpoint of the NAT in front of it, if any ([`nat`]).
    nat: Option<SocketAddr>,
}

/// A simulated network. See the [module docs](self).
pub struct Sim {
    config: SimConfig,
    now: Instant,
    slots: Vec<Slot>,
    by_addr: HashMap<SocketAddr, usize>,
    bootnodes: Vec<Enode>,
    queue: EventQueue<Kind>,
    streams: HashMap<(usize, ConnId), StreamEnd>,
    /// Partition group of each node; nodes talk only within their group.
    groups: Option<Vec<u32>>,
    rng: ChaCha20Rng,
    trace: Trace,
    stats: SimStats,
    /// Lookups under way or finished, by node, version (ids are per version) and id.
    lookups: HashMap<(usize, DiscoveryVersion, LookupId), Option<Vec<NodeId>>>,
    buf: Box<[u8; MAX_PACKET_SIZE]>,
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

impl Sim {
    /// A network of `config.nodes` nodes; the bootnodes start at [`START`], the others at
    /// random times within the join window. Nothing runs until [`Sim::run_until`].
    pub fn new(config: SimConfig) -> Self {
        let mut sim = Sim {
            now: START,
            slots: Vec::new(),
            by_addr: HashMap::new(),
            bootnodes: Vec::new(),
            queue: EventQueue::new(START),
            streams: HashMap::new(),
            groups: None,
            rng: ChaCha20Rng::from_seed(derive(config.seed, "network", 0, 0)),
            trace: Trace::default(),
            stats: SimStats::default(),
            lookups: HashMap::new(),
            buf: Box::new([0u8; MAX_PACKET_SIZE]),
            config,
        };
        let mut join = ChaCha20Rng::from_seed(derive(sim.config.seed, "join", 0, 0));
        let churn_fraction = sim.config.churn.as_ref().map_or(0.0, |c| c.fraction);
        let window = sim.config.join_window.as_millis() as u64;
        let c = &sim.config;
        let nated = nat::pick(c.seed, c.nodes, c.bootnodes, c.nat_share);
        for i in 0..sim.config.nodes {
            let boot = i < sim.config.bootnodes;
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
                config: sim.config.node.clone(),
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
        let mut rng = ChaCha20Rng::from_seed(derive(self.config.seed, "key", i as u64, 0));
        let key = NodeSecretKey::generate(&mut rng).with_signature_scheme(self.config.signatures);
        let addr = SocketAddr::new(IpAddr::V4(spec.ip), PORT);
        assert!(
            self.by_addr.insert(addr, i).is_none(),
            "two simulated nodes at {addr}"
        );
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
            next_port: 40000,
            churns: spec.churns,
            saves_db: spec.churns,
            ever_started: false,
            nat: None,
        });
        let at = spec.start_at.max(self.now);
        self.push(at, Kind::Start { node: i });
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
        &self.config
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

    /// The trace digest so far.
    pub fn digest(&self) -> [u8; 32] {
        self.trace.digest()
    }

    /// Trace records hashed so far.
    pub fn trace_records(&self) -> u64 {
        self.trace.records()
    }

    /// The discovery version the measurements ([`Sim::table_fill`], [`Sim::start_lookup`],
    /// [`Sim::measure_recall`]) look at: v4 when the nodes run it, else v5.
    pub fn measured_version(&self) -> DiscoveryVersion {
        if self.config.node.runs_discv4() {
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
    pub fn run_until(&mut self, until: Instant) {
        while let Some((at, kind)) = self.queue.pop_until(until) {
            self.now = self.now.max(at);
            self.process(kind);
        }
        self.now = self.now.max(until);
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
        self.groups = Some(groups);
    }

    /// Ends a partition. Streams cut by it stay dead; everything else flows again.
    pub fn heal(&mut self) {
        self.trace.record(Record::Partition, self.now, 0, 0, 0, &[]);
        self.groups = None;
    }

    /// Crashes node `i` now: its state is lost except the database it last saved; its peers
    /// see their connections close.
    pub fn crash(&mut self, i: usize) {
        if self.slots[i].node.is_none() {
            return;
        }
        self.stats.crashes += 1;
        self.trace.record(Record::Lifecycle, self.now, i, 2, 0, &[]);
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.inc += 1;
        slot.timer = None;
        slot.dialing.clear();
        let conns = std::mem::take(&mut slot.conns);
        for conn in conns {
            self.close_end(i, conn);
        }
    }

    /// Makes node `i` save its database every [`SimConfig::db_save_interval`], as churning
    /// nodes do (saving costs time, so other nodes do not). Takes effect at its next start.
    pub fn save_db_of(&mut self, i: usize) {
        self.slots[i].saves_db = true;
    }

    /// Restarts node `i` now, from its saved database (no effect if it is running).
    pub fn restart(&mut self, i: usize) {
        if self.slots[i].node.is_some() {
            return;
        }
        self.stats.restarts += 1;
        self.start(i);
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
        let now = self.now;
        let node = self.slots[i].node.as_mut()?;
        let id = match version {
            DiscoveryVersion::V4 => node.lookup_target(now, &target)?,
            DiscoveryVersion::V5 => node.lookup_v5(now, &NodeId::of_target(&target))?,
        };
        self.trace.record(Record::Lookup, now, i, id.0, 0, &target);
        self.lookups.insert((i, version, id), None);
        self.after(i);
        Some(id)
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
        match self.lookups.get(&(i, version, id)) {
            Some(Some(_)) => self.lookups.remove(&(i, version, id)).flatten(),
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
                .any(|(i, id, _)| matches!(self.lookups.get(&(*i, version, *id)), Some(None)))
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
                    self.lookups.remove(&(i, version, id));
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

    fn unix(&self) -> u64 {
        UNIX_START + self.now.as_millis() / 1000
    }

    fn push(&mut self, at: Instant, kind: Kind) {
        self.queue.push(at, kind);
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().is_some_and(|g| g[a] != g[b])
    }

    fn latency(&self, a: usize, b: usize) -> Duration {
        Duration::from_millis(self.config.link.latency_ms(self.config.seed, a, b))
    }

    /// When a packet of `len` bytes sent now by `from` reaches `to`: queueing on the
    /// sender's uplink, the link latency and jitter.
    fn arrival(&mut self, from: usize, to: usize, len: usize) -> Instant {
        let tx = self.config.link.transmission_ms(len);
        let leave = self.slots[from].uplink_free.max(self.now) + Duration::from_millis(tx);
        self.slots[from].uplink_free = leave;
        let jitter = self.config.link.jitter.as_millis() as u64;
        let jitter = if jitter > 0 {
            self.rng.next_u64() % (jitter + 1)
        } else {
            0
        };
        leave + self.latency(from, to) + Duration::from_millis(jitter)
    }

    fn start(&mut self, i: usize) {
        let now = self.now;
        let unix = self.unix();
        let slot = &mut self.slots[i];
        let mut config = slot.config.clone();
        config.node_db = slot.db.clone();
        // A restarted node signs a newer record, as geth does from its database.
        config.enr_seq = Some(u64::from(slot.inc) + 1);
        let rng =
            ChaCha20Rng::from_seed(derive(self.config.seed, "node", i as u64, slot.inc.into()));
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
        self.trace
            .record(Record::Lifecycle, now, i, if first { 0 } else { 1 }, 0, &[]);
        if churns {
            if let Some(c) = self.config.churn.clone() {
                let up = exponential(&mut self.rng, c.mean_up);
                self.push(now + up, Kind::Crash { node: i });
            }
        }
        if saves_db {
            let save = self.config.db_save_interval;
            self.push(now + save, Kind::SaveDb { node: i, inc });
        }
        self.after(i);
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
                let slot = &mut self.slots[node];
                if slot.inc != inc || slot.timer != Some(deadline) {
                    return;
                }
                slot.timer = None;
                let Some(n) = slot.node.as_mut() else { return };
                self.stats.timers += 1;
                self.trace.record(Record::Timer, now, node, 0, 0, &[]);
                n.handle_timeout(now, unix);
                self.after(node);
            }
            Kind::Datagram { to, from, data } => {
                if self.slots[to].node.is_none() || self.cut(from, to) {
                    self.stats.datagrams_lost += 1;
                    self.trace
                        .record(Record::DatagramLost, now, to, from as u64, 1, &[]);
                    return;
                }
                self.stats.datagrams_delivered += 1;
                self.trace
                    .record(Record::Datagram, now, to, from as u64, 0, &data);
                let src = self.public_addr(from);
                if let Some(n) = self.slots[to].node.as_mut() {
                    n.handle_datagram(now, unix, src, &data);
                }
                self.after(to);
            }
            Kind::Syn {
                from,
                inc,
                conn,
                to,
            } => self.on_syn(from, inc, conn, to),
            Kind::Connected { node, inc, conn } => {
                let slot = &mut self.slots[node];
                if slot.inc != inc || !slot.conns.contains(&conn) {
                    return;
                }
                self.trace
                    .record(Record::Connected, now, node, conn.0, 0, &[]);
                if let Some(n) = slot.node.as_mut() {
                    n.handle_connected(now, conn);
                }
                self.after(node);
            }
            Kind::ConnectFailed { node, inc, conn } => {
                let slot = &mut self.slots[node];
                if slot.inc != inc || !slot.dialing.remove(&conn) {
                    return;
                }
                self.trace
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
                if self.slots[to].inc != inc || self.streams.remove(&(to, conn)).is_none() {
                    return;
                }
                self.slots[to].conns.remove(&conn);
                self.trace.record(Record::Closed, now, to, conn.0, 0, &[]);
                if let Some(n) = self.slots[to].node.as_mut() {
                    n.handle_closed(now, conn);
                }
                self.after(to);
            }
            Kind::Crash { node } => {
                self.crash(node);
                if let Some(c) = self.config.churn.clone() {
                    let down = exponential(&mut self.rng, c.mean_down);
                    self.push(now + down, Kind::Restart { node });
                }
            }
            Kind::Restart { node } => self.restart(node),
            Kind::SaveDb { node, inc } => {
                let slot = &mut self.slots[node];
                if slot.inc != inc {
                    return;
                }
                if let Some(n) = slot.node.as_ref() {
                    slot.db = n.db_snapshot();
                }
                let next = now + self.config.db_save_interval;
                self.push(next, Kind::SaveDb { node, inc });
            }
        }
    }

    fn on_syn(&mut self, from: usize, inc: u32, conn: ConnId, to: usize) {
        let now = self.now;
        if self.slots[from].inc != inc || !self.slots[from].dialing.contains(&conn) {
            return; // the dialer gave up or crashed: nobody is there to complete it
        }
        if self.cut(from, to) {
            return; // the SYN vanishes; the dialer's own timeout ends the dial
        }
        let back = self.now + self.latency(from, to);
        self.trace
            .record(Record::Syn, now, to, from as u64, conn.0, &[]);
        let ip = self.public_addr(from).ip();
        let slot = &mut self.slots[from];
        slot.next_port = slot.next_port.checked_add(1).unwrap_or(40000);
        let src = SocketAddr::new(ip, slot.next_port);
        let accepted = match self.slots[to].node.as_mut() {
            Some(n) => n.handle_accept(now, src).ok(),
            None => None,
        };
        let Some(jc) = accepted else {
            // Nobody listening, or refused at once: the dialer sees the connection fail.
            self.push(
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
        self.stats.connections += 1;
        let to_inc = self.slots[to].inc;
        self.streams
            .insert((from, conn), StreamEnd::new(to, to_inc, jc, now));
        self.streams
            .insert((to, jc), StreamEnd::new(from, inc, conn, now));
        self.slots[from].dialing.remove(&conn);
        self.slots[from].conns.insert(conn);
        self.slots[to].conns.insert(jc);
        self.push(
            back,
            Kind::Connected {
                node: from,
                inc,
                conn,
            },
        );
        self.after(to);
    }

    fn on_data(&mut self, to: usize, inc: u32, conn: ConnId, data: Vec<u8>) {
        let now = self.now;
        if self.slots[to].inc != inc {
            return;
        }
        let Some(end) = self.streams.get_mut(&(to, conn)) else {
            return;
        };
        if end.broken {
            return;
        }
        self.trace.record(Record::Data, now, to, conn.0, 0, &data);
        let mut buf = std::mem::take(&mut end.inbox);
        buf.extend_from_slice(&data);
        let mut offset = 0;
        loop {
            let Some(n) = self.slots[to].node.as_mut() else {
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
        if let Some(end) = self.streams.get_mut(&(to, conn)) {
            end.inbox = buf;
        }
    }

    /// Forgets node `i`'s end of `conn` and lets the peer see the close (FIN or RST), after
    /// whatever `i` wrote before it and unless a partition swallows it.
    fn close_end(&mut self, i: usize, conn: ConnId) {
        let Some(end) = self.streams.remove(&(i, conn)) else {
            return;
        };
        if !end.broken && !self.cut(i, end.peer) {
            let at = (self.now + self.latency(i, end.peer)).max(end.tail);
            let closed = Kind::Closed {
                to: end.peer,
                inc: end.peer_inc,
                conn: end.peer_conn,
            };
            self.push(at, closed);
        }
    }

    /// Takes everything node `i` wants done and puts it on the network; re-arms its timer.
    fn after(&mut self, i: usize) {
        let now = self.now;
        loop {
            let Some(node) = self.slots[i].node.as_mut() else {
                return;
            };
            let Some(t) = node.poll_transmit(&mut self.buf) else {
                break;
            };
            let (to, len) = t;
            self.stats.datagrams_sent += 1;
            let Some(&j) = self.by_addr.get(&to) else {
                self.stats.datagrams_lost += 1;
                continue;
            };
            let loss = self.config.link.loss;
            if loss > 0.0 && unit(&mut self.rng) < loss {
                self.stats.datagrams_lost += 1;
                self.trace
                    .record(Record::DatagramLost, now, j, i as u64, 0, &[]);
                continue;
            }
            let data = self.buf[..len].to_vec();
            let mut at = self.arrival(i, j, len);
            let reorder = self.config.link.reorder;
            if reorder > 0.0 && unit(&mut self.rng) < reorder {
                at += self.latency(i, j);
            }
            self.push(
                at,
                Kind::Datagram {
                    to: j,
                    from: i,
                    data,
                },
            );
        }
        while let Some(action) = self.slots[i].node.as_mut().and_then(|n| n.poll_action()) {
            match action {
                Action::Dial { conn, addr } => {
                    self.stats.dials += 1;
                    if let Some(&j) = self.by_addr.get(&addr) {
                        self.slots[i].dialing.insert(conn);
                        let at = now + self.latency(i, j);
                        let inc = self.slots[i].inc;
                        self.push(
                            at,
                            Kind::Syn {
                                from: i,
                                inc,
                                conn,
                                to: j,
                            },
                        );
                    }
                    // An address nobody has: the connect hangs until the node's dial
                    // timeout, as it would on the internet.
                }
                Action::Write { conn } => {
                    let Some(node) = self.slots[i].node.as_mut() else {
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
                    self.slots[i].dialing.remove(&conn);
                    self.slots[i].conns.remove(&conn);
                    self.close_end(i, conn);
                }
                // The simulated nodes are given no DNS trees.
                Action::ResolveTxt { .. } => {}
            }
        }
        while let Some(event) = self.slots[i].node.as_mut().and_then(|n| n.poll_event()) {
            self.stats.events += 1;
            self.trace.event(now, i, &event);
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
                if let Some(slot) = self.lookups.get_mut(&(i, version, id)) {
                    *slot = Some(nodes.iter().map(|n| n.id()).collect());
                }
            }
        }
        let slot = &mut self.slots[i];
        let Some(node) = slot.node.as_ref() else {
            return;
        };
        let t = node.poll_timeout();
        if t != slot.timer {
            slot.timer = t;
            if let Some(t) = t {
                let inc = slot.inc;
                self.push(
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
        let Some(end) = self.streams.get(&(i, conn)) else {
            return; // not connected (yet): a real socket would have refused the write
        };
        if end.broken {
            return;
        }
        let j = end.peer;
        if self.cut(i, j) {
            let (pc, pi) = (end.peer_conn, end.peer_inc);
            if let Some(e) = self.streams.get_mut(&(i, conn)) {
                e.broken = true;
            }
            if self.slots[j].inc == pi {
                if let Some(e) = self.streams.get_mut(&(j, pc)) {
                    e.broken = true;
                }
            }
            return;
        }
        self.stats.stream_writes += 1;
        self.stats.stream_bytes += data.len() as u64;
        let at = self.arrival(i, j, data.len());
        let end = self.streams.get_mut(&(i, conn)).expect("looked up above");
        let at = at.max(end.tail);
        end.tail = at;
        let (to, inc, pconn) = (end.peer, end.peer_inc, end.peer_conn);
        self.push(
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
