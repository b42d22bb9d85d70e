//! The `Node`: discovery, the dial scheduler and every session of one devp2p node behind a
//! single driver-facing API ([PROTOCOL.md §9](crate::spec::protocol)).
//!
//! Discovery runs v4, v5 or both ([`NodeConfig::discv4`], [`NodeConfig::discv5`]) on the one
//! UDP socket: each datagram goes to the version whose framing it has, both versions feed
//! the dialer and start from the same node database, and [`Node::set_local_record`] changes
//! the record of both. v4 reports through [`NodeEvent::Discovery`], v5 through
//! [`NodeEvent::Discv5`]; lookups run over either ([`Node::lookup`], [`Node::lookup_v5`]),
//! discv5's requests to one node are open to the application ([`Node::ping_v5`],
//! [`Node::find_node_v5`]), and so is its TALKREQ ([`Node::register_talk_protocol`],
//! [`Node::talk_request`], [`Node::answer_talk`]).
//!
//! Our record follows the endpoint peers see us at, unless [`NodeConfig::advertised_ip`]
//! pins it: both versions report what their Pings and Pongs say about it, and once enough
//! hosts agree on another endpoint the record takes it with a higher seq
//! ([`NodeEvent::EndpointChanged`]; the rules are [`LocalRecord`]'s). Save
//! [`Node::db_snapshot`] after that event: it holds the seq a restart must exceed.
//!
//! # Driving a node
//!
//! The driver owns one UDP socket, one TCP listener and the TCP streams; the node decides
//! everything else. Inputs, each with the current time:
//! - [`handle_datagram`](Node::handle_datagram) for every UDP datagram;
//! - [`handle_accept`](Node::handle_accept) for every accepted TCP connection (an `Err` means
//!   close it at once);
//! - [`handle_connected`](Node::handle_connected) /
//!   [`handle_connect_failed`](Node::handle_connect_failed) for the outcome of an [`Action::Dial`];
//! - [`handle_read`](Node::handle_read) with bytes read from a connection; it returns how many
//!   it took, and while the application is slow to take messages it takes fewer, so the
//!   driver can stop reading that socket and offer the rest again later;
//! - [`handle_written`](Node::handle_written) after writing from [`outbound`](Node::outbound);
//! - [`handle_closed`](Node::handle_closed) when a connection ends by itself;
//! - [`handle_timeout`](Node::handle_timeout) once [`poll_timeout`](Node::poll_timeout) is due.
//!
//! After each input, drain in this order: [`poll_transmit`](Node::poll_transmit) until `None`
//! (send each datagram), [`poll_action`](Node::poll_action) until `None` (dial, write, close),
//! [`poll_event`](Node::poll_event) until `None` (hand to the application),
//! [`poll_nat_request`](Node::poll_nat_request) until `None` (ask the gateway; only with
//! [`NodeConfig::nat`] set to map ports), then re-arm the timer with
//! [`poll_timeout`](Node::poll_timeout). `now` must never go backwards; `unix_secs`
//! (wall-clock seconds) is data for discovery's packet expirations only.
//!
//! With port mapping ([`NodeConfig::nat`]), one more input: the gateway's answer to each
//! request, [`handle_nat_response`](Node::handle_nat_response), whenever it comes; and at
//! shutdown [`stop_port_mapping`](Node::stop_port_mapping), then keep answering requests
//! (they delete the mappings) until [`is_port_mapping_stopped`](Node::is_port_mapping_stopped).
//!
//! ```
//! use devp2p_core::node::{Node, NodeConfig};
//! use devp2p_core::{Instant, NodeSecretKey};
//! use rand_core::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let key = NodeSecretKey::generate(&mut rng);
//! let mut node = Node::new(key, NodeConfig::default(), rng, Instant::ZERO, 1_700_000_000);
//! let mut buf = [0u8; devp2p_core::discv4::wire::MAX_PACKET_SIZE];
//! // A tiny driver loop: no sockets here, so nothing arrives; run the timers once.
//! node.handle_timeout(Instant::from_millis(10), 1_700_000_000);
//! while let Some((to, len)) = node.poll_transmit(&mut buf) { let _ = (to, &buf[..len]); }
//! while let Some(action) = node.poll_action() { let _ = action; }
//! while let Some(event) = node.poll_event() { let _ = event; }
//! assert!(node.poll_timeout().is_some());
//! ```

mod admission;
mod config;
mod discovery;
mod dns;
mod nat;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::CryptoRng;

pub use config::*;
pub use types::*;

use crate::dial::{max_dialed_peers, DialConfig, DialKind, DialTarget, Dialer};
use crate::discv4::{Discovery, LookupId, NodeDbSnapshot};
use crate::discv5::discovery::Discovery as Discv5;
use crate::endpoint::LocalRecord;
use crate::enode::{Enode, Host};
use crate::enr::Enr;
use crate::identity::{NodeId, NodePublicKey, NodeSecretKey};
use crate::nat::Nat;
use crate::session::{
    DisconnectReason, ProtocolId, SendError, Session, SessionConfig, SessionEvent,
};
use crate::time::Instant;

enum ConnState {
    /// Waiting for the driver's TCP connect.
    Connecting { deadline: Instant },
    /// Handshake, Hello or established.
    Open(Box<Session>),
}

struct Conn {
    direction: Direction,
    addr: SocketAddr,
    state: ConnState,
    /// For dials: the node we dialled and why.
    dial: Option<(NodePublicKey, DialKind)>,
    /// Passed the post-handshake checks.
    admitted: bool,
    /// The remote's id, once the RLPx handshake proved it.
    remote: Option<NodeId>,
    /// The key it proved.
    remote_key: Option<NodePublicKey>,
    /// Set once the Hello exchange completed and the peer was added.
    peer: Option<PeerInfo>,
    /// Whether an [`Action::Write`] is outstanding.
    write_signalled: bool,
    /// The deadline this connection has in [`Node::conn_timers`]; kept equal to
    /// [`deadline`](Self::deadline) by [`Node::retime`] after anything touches the session.
    timer: Option<Instant>,
}

impl Conn {
    /// When the connection next needs [`Node::handle_timeout`]: its TCP connect's deadline,
    /// or its session's next timer.
    fn deadline(&self) -> Option<Instant> {
        match &self.state {
            ConnState::Connecting { deadline } => Some(*deadline),
            ConnState::Open(s) => s.poll_timeout(),
        }
    }

    fn session(&mut self) -> Option<&mut Session> {
        match &mut self.state {
            ConnState::Open(s) => Some(s),
            ConnState::Connecting { .. } => None,
        }
    }
}

/// A whole devp2p node as one sans-IO state machine. See the [module docs](self) for the
/// driving contract, and the [crate docs](crate) for two nodes that connect over TCP.
///
/// Two nodes in one network of our own making: each datagram one sends goes straight to the
/// other, and time jumps to the next deadline instead of passing, so a minute of discovery runs
/// in milliseconds and replays exactly. The second node knows the first as its bootnode; they
/// bond (Ping, Pong, and the ping-back) and each enters the other's table.
///
/// ```
/// use std::net::SocketAddr;
/// use devp2p_core::discv4::{wire::MAX_PACKET_SIZE, Event};
/// use devp2p_core::node::{Node, NodeConfig, NodeEvent};
/// use devp2p_core::{Instant, NodeSecretKey};
/// use rand_chacha::ChaCha20Rng;
/// use rand_core::SeedableRng;
///
/// let start_unix = 1_800_000_000; // wall-clock seconds at Instant::ZERO
/// let mut rng = ChaCha20Rng::seed_from_u64(4);
/// let addrs: [SocketAddr; 2] = ["127.0.0.1:30301".parse()?, "127.0.0.1:30302".parse()?];
/// let mut nodes: Vec<Node<ChaCha20Rng>> = Vec::new();
/// for (i, addr) in addrs.into_iter().enumerate() {
///     let mut config = NodeConfig::default();
///     config.listen = addr;
///     config.no_dial = true; // discovery only: no TCP in this example
///     if i == 1 {
///         config.bootnodes = vec![nodes[0].local_enode()];
///     }
///     let key = NodeSecretKey::generate(&mut rng);
///     let seed = ChaCha20Rng::seed_from_u64(i as u64);
///     nodes.push(Node::new(key, config, seed, Instant::ZERO, start_unix));
/// }
///
/// let mut now = Instant::ZERO;
/// let mut buf = [0u8; MAX_PACKET_SIZE];
/// let mut found = [false; 2]; // whether node i has the other in its table
/// for _ in 0..100 {
///     // Drain every node in the documented order: datagrams, actions, events.
///     let mut in_flight = Vec::new();
///     for (i, node) in nodes.iter_mut().enumerate() {
///         while let Some((to, len)) = node.poll_transmit(&mut buf) {
///             in_flight.push((addrs[i], to, buf[..len].to_vec()));
///         }
///         while let Some(action) = node.poll_action() {
///             unreachable!("no_dial: no sockets to act on, got {action:?}");
///         }
///         while let Some(event) = node.poll_event() {
///             if let NodeEvent::Discovery(e) = event {
///                 if let Event::NodeAdded(_) = *e {
///                     found[i] = true;
///                 }
///             }
///         }
///     }
///     if found == [true, true] {
///         break;
///     }
///     if in_flight.is_empty() {
///         // Nothing on the wire: go straight to the earliest deadline.
///         now = nodes.iter().filter_map(|n| n.poll_timeout()).min().expect("timers run");
///         for node in &mut nodes {
///             node.handle_timeout(now, start_unix + now.as_millis() / 1000);
///         }
///     }
///     let unix = start_unix + now.as_millis() / 1000;
///     for (from, to, datagram) in in_flight {
///         let j = addrs.iter().position(|a| *a == to).expect("only two nodes");
///         nodes[j].handle_datagram(now, unix, from, &datagram);
///     }
/// }
/// assert_eq!(found, [true, true]);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub struct Node<R> {
    key: NodeSecretKey,
    config: NodeConfig,
    session_config: Arc<SessionConfig>,
    rng: R,
    /// Our record, shared by both versions, and the endpoint prediction that keeps it
    /// current; `None` without discovery.
    local: Option<LocalRecord>,
    discovery: Option<Discovery<ChaCha20Rng>>,
    discv5: Option<Box<Discv5<ChaCha20Rng>>>,
    dialer: Dialer,
    /// Boxed: a map's nodes are about half full when ids only grow, and a connection's
    /// bookkeeping is some 500 bytes, so inline it would waste as much again per session.
    conns: BTreeMap<ConnId, Box<Conn>>,
    /// Every connection's next deadline ([`Conn::timer`]), soonest first: `poll_timeout` and
    /// `handle_timeout` read it instead of asking each of thousands of sessions per turn.
    conn_timers: BTreeSet<(Instant, ConnId)>,
    peers: BTreeMap<NodeId, ConnId>,
    trusted: BTreeSet<NodeId>,
    throttle: admission::Throttle,
    next_conn: u64,
    actions: VecDeque<Action>,
    events: VecDeque<NodeEvent>,
    pending_messages: usize,
    stats: NodeStats,
    now: Instant,
    unix_secs: u64,
    /// The random lookup feeding the dialer, and when the last one started.
    feeder: Option<(DiscoveryVersion, LookupId)>,
    last_feed: Option<Instant>,
    /// Which version runs the next feeder lookup, when both run.
    next_feeder: DiscoveryVersion,
    /// Lookups resolving static nodes.
    resolving: BTreeMap<(DiscoveryVersion, LookupId), NodeId>,
    /// Port mapping, and what the gateway granted.
    nat: nat::NatState,
    /// DNS discovery, when trees are configured.
    dns: Option<Box<crate::dnsdisc::Client<ChaCha20Rng>>>,
}

impl<R: CryptoRng> Node<R> {
    /// A node with key `key`, started at `now`.
    pub fn new(
        key: NodeSecretKey,
        config: NodeConfig,
        mut rng: R,
        now: Instant,
        unix_secs: u64,
    ) -> Self {
        let mut session = config.session.clone();
        session.manual_admission = true;
        let ip = config.ip_to_advertise();
        let port = config.listen.port();
        // Never a seq a peer may hold already: above the one saved with the database.
        let seq = config
            .enr_seq
            .unwrap_or(1)
            .max(config.node_db.local_seq.saturating_add(1));
        let record = (config.runs_discv4() || config.runs_discv5()).then(|| {
            Enr::builder()
                .seq(seq)
                .ip(ip)
                .tcp4(port)
                .udp4(port)
                .sign(&key)
                .expect("a record with ip, tcp and udp fits 300 bytes")
        });
        let machines =
            discovery::Machines::new(&key, &config, record.as_ref(), &mut rng, now, unix_secs);
        // An explicit address pins the endpoint (geth's extip); a gateway's external IP pins it
        // once known (`nat::NatState`).
        let pinned = config.advertised_ip.is_some() || matches!(config.nat, Nat::ExtIp(_));
        let local = record.map(|r| {
            LocalRecord::new(r, pinned).with_hash_seed(key.hash_seed(b"devp2p endpoint hash seed"))
        });
        let dial_config = DialConfig {
            max_dial_peers: max_dialed_peers(config.max_peers, config.dial_ratio, config.no_dial),
            max_active_dials: config.max_pending_peers,
            net_restrict: config.net_restrict.clone(),
        };
        let dialer = Dialer::new(key.id(), dial_config);
        let static_nodes = config.static_nodes.clone();
        let (nat, nat_event) = nat::NatState::new(&config, now);
        let mut events = VecDeque::new();
        // Drawn only with trees configured, so that nodes without keep their random streams.
        let dns = dns::client(&config, &mut rng, &mut events);
        let mut node = Self {
            trusted: config.trusted_nodes.iter().copied().collect(),
            session_config: Arc::new(session),
            key,
            config,
            rng,
            local,
            discovery: machines.v4,
            discv5: machines.v5,
            dialer,
            conns: BTreeMap::new(),
            conn_timers: BTreeSet::new(),
            peers: BTreeMap::new(),
            throttle: admission::Throttle::default(),
            next_conn: 0,
            actions: VecDeque::new(),
            events,
            pending_messages: 0,
            stats: NodeStats::default(),
            now,
            unix_secs,
            feeder: None,
            last_feed: None,
            next_feeder: DiscoveryVersion::V4,
            resolving: BTreeMap::new(),
            nat,
            dns,
        };
        node.events.extend(nat_event);
        for e in &static_nodes {
            if let Err(u) = node.add_static_target(e) {
                node.fail(ConnectionFailure {
                    conn: None,
                    direction: Direction::Outbound,
                    addr: e.tcp_addr(),
                    remote: Some(e.public_key),
                    dial: Some(DialKind::Static),
                    trusted: node.is_trusted(&e.id()),
                    error: ConnectError::NotDialable(u),
                });
            }
        }
        node.run_dialer();
        node
    }

    // ---- getters ---------------------------------------------------------------------------

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.key.id()
    }

    /// Our enode URL: the advertised IP and ports (see [`advertised_ip`](Self::advertised_ip)).
    pub fn local_enode(&self) -> Enode {
        Enode::new(
            *self.key.public(),
            self.advertised_ip(),
            self.advertised_tcp_port(),
            self.advertised_udp_port(),
        )
    }

    /// Our signed record (both discovery versions hand out this one), when discovery runs.
    /// After a [`NodeEvent::EndpointChanged`] the first call signs the new one.
    pub fn local_enr(&self) -> Option<&Enr> {
        self.local.as_ref().map(|l| l.record(&self.key))
    }

    /// The endpoint the statements of our peers predict now (of our record's address family;
    /// `None` until [`MIN_STATEMENTS`](crate::endpoint::MIN_STATEMENTS) hosts agree), also
    /// when the advertised address is pinned and the record does not follow it.
    pub fn predicted_endpoint(&mut self) -> Option<SocketAddr> {
        let now = self.now;
        self.local.as_mut()?.prediction(now)
    }

    /// Discovery v4, when it runs (table, drop counters).
    pub fn discovery(&self) -> Option<&Discovery<ChaCha20Rng>> {
        self.discovery.as_ref()
    }

    /// Discovery v5, when it runs (table, sessions, drop and refusal counters, TALKREQs
    /// waiting for an answer).
    pub fn discv5(&self) -> Option<&Discv5<ChaCha20Rng>> {
        self.discv5.as_deref()
    }

    /// Whether discovery of `version` runs.
    pub fn runs(&self, version: DiscoveryVersion) -> bool {
        match version {
            DiscoveryVersion::V4 => self.discovery.is_some(),
            DiscoveryVersion::V5 => self.discv5.is_some(),
        }
    }

    /// The connected peers, by id.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers
            .values()
            .filter_map(|c| {
                let conn = self.conns.get(c)?;
                let mut info = conn.peer.clone()?;
                if let ConnState::Open(s) = &conn.state {
                    (info.bytes_in, info.bytes_out) = s.bytes_in_out();
                    info.queued = s.outbound().len();
                }
                Some(info)
            })
            .collect()
    }

    /// How many peers are connected.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Counters, with discovery's drop counts and the dialer's skip counts folded in.
    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats.clone();
        if let Some(d) = &self.discovery {
            s.packets_dropped = d.drop_counts().clone();
        }
        if let Some(d) = &self.discv5 {
            s.discv5_packets_dropped = d.sessions().drop_counts().clone();
            s.discv5_sessions = d.sessions().session_count();
        }
        s.dials_skipped = self.dialer.skipped().clone();
        s
    }

    /// The node database to persist, when discovery runs: what both versions learnt, merged
    /// ([`NodeDbSnapshot::merge`]), and our record's seq ([`NodeDbSnapshot::local_seq`]);
    /// both versions start from it on the next run, and our record from a higher seq.
    pub fn db_snapshot(&self) -> NodeDbSnapshot {
        let v4 = self.discovery.as_ref().map(|d| d.db_snapshot());
        let v5 = self.discv5.as_ref().map(|d| d.db_snapshot());
        let mut snap = match (v4, v5) {
            (Some(a), Some(b)) => a.merge(b),
            (a, b) => a.or(b).unwrap_or_default(),
        };
        snap.local_seq = self.local.as_ref().map_or(0, LocalRecord::seq);
        snap
    }

    // ---- outputs ---------------------------------------------------------------------------

    /// The next socket action.
    pub fn poll_action(&mut self) -> Option<Action> {
        let a = self.actions.pop_front()?;
        if let Action::Write { conn } = a {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.write_signalled = false;
            }
        }
        Some(a)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        let e = self.events.pop_front()?;
        if let NodeEvent::Message { payload, .. } = &e {
            self.pending_messages -= payload.len();
        }
        Some(e)
    }

    /// Bytes to write on `conn` (empty if none, or if the connection is unknown).
    pub fn outbound(&self, conn: ConnId) -> &[u8] {
        match self.conns.get(&conn).map(|c| &c.state) {
            Some(ConnState::Open(s)) => s.outbound(),
            _ => &[],
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = [
            self.discovery.as_ref().and_then(|d| d.poll_timeout()),
            self.discv5.as_ref().and_then(|d| d.poll_timeout()),
            self.dialer.poll_timeout(),
            self.throttle.poll_timeout(),
            self.feed_due(),
            self.nat.poll_timeout(),
            self.dns_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        debug_assert_eq!(
            self.conn_timers.first().map(|(t, _)| *t),
            self.conns.values().filter_map(|c| c.deadline()).min(),
            "the connection timer index is stale"
        );
        if let Some((t, _)) = self.conn_timers.first() {
            next = Some(next.map_or(*t, |n| n.min(*t)));
        }
        next
    }

    // ---- driver inputs ---------------------------------------------------------------------

    /// The listener accepted a connection from `remote`. `Err`: close it at once.
    ///
    /// When all [`max_pending_peers`](NodeConfig::max_pending_peers) inbound slots are taken,
    /// the oldest inbound connection that has not completed its RLPx handshake is displaced
    /// (an [`Action::Close`] follows, counted as [`HandshakeOutcome::Displaced`]) to make
    /// room; only when every pending connection has proved its key is the new one refused.
    /// Connections that open and send nothing therefore cannot lock legitimate peers out for
    /// the handshake timeout. geth instead stops accepting while its slots are full, which
    /// leaves it open to exactly that; a real peer's auth arrives within a round trip of its
    /// connect, so it is displaced only if the slots turn over entirely in that time.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        remote: SocketAddr,
    ) -> Result<ConnId, RefuseReason> {
        self.tick(now, self.unix_secs);
        let pending = self
            .conns
            .values()
            .filter(|c| c.direction == Direction::Inbound && c.peer.is_none())
            .count();
        let mut displace = None;
        if pending >= self.config.max_pending_peers {
            displace = self.oldest_unproven_inbound();
        }
        let refusal = if pending >= self.config.max_pending_peers && displace.is_none() {
            Some(RefuseReason::TooManyPending)
        } else if self
            .config
            .net_restrict
            .as_ref()
            .is_some_and(|n| !n.contains(&remote.ip()))
        {
            Some(RefuseReason::NetRestrict)
        } else if !self.throttle.admit(now, remote.ip()) {
            Some(RefuseReason::Throttled)
        } else {
            None
        };
        if let Some(r) = refusal {
            *self.stats.refused.entry(r).or_default() += 1;
            return Err(r);
        }
        if let Some(old) = displace {
            let addr = self.conns.get(&old).map(|c| c.addr);
            self.remove_conn(old, true);
            self.fail(ConnectionFailure {
                conn: Some(old),
                direction: Direction::Inbound,
                addr,
                remote: None,
                dial: None,
                trusted: false,
                error: ConnectError::Displaced,
            });
        }
        let session =
            Session::recipient(self.session_config.clone(), &self.key, now, &mut self.rng);
        let id = self.new_conn(
            Direction::Inbound,
            remote,
            ConnState::Open(Box::new(session)),
            None,
        );
        Ok(id)
    }

    /// The TCP connect of an [`Action::Dial`] succeeded.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        self.tick(now, self.unix_secs);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (ConnState::Connecting { .. }, Some((remote, _))) = (&c.state, &c.dial) else {
            return;
        };
        let session = Session::initiator(
            self.session_config.clone(),
            &self.key,
            remote,
            now,
            &mut self.rng,
        );
        c.state = ConnState::Open(Box::new(session));
        self.pump(conn);
    }

    /// The TCP connect of an [`Action::Dial`] failed with `error`.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, error: &std::io::Error) {
        self.tick(now, self.unix_secs);
        if let Some(c) = self.conns.get(&conn) {
            if matches!(c.state, ConnState::Connecting { .. }) {
                let error = if error.kind() == std::io::ErrorKind::TimedOut {
                    ConnectError::TcpTimeout
                } else {
                    ConnectError::Tcp {
                        kind: error.kind(),
                        message: error.to_string(),
                    }
                };
                self.drop_dial(conn, error, false);
            }
        }
        self.run_dialer();
    }

    /// Bytes arrived on `conn`. Returns how many were taken; offer the rest again later.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) -> usize {
        self.tick(now, self.unix_secs);
        if self.pending_messages >= self.config.max_pending_messages {
            return 0;
        }
        let mut used = 0;
        // A session pauses after its handshake until admitted; `pump` admits it, and the
        // rest of the input is offered again.
        while used < data.len() && self.pending_messages < self.config.max_pending_messages {
            let Some(s) = self.conns.get_mut(&conn).and_then(|c| c.session()) else {
                used = data.len();
                break;
            };
            let n = s.handle_read(now, &data[used..]);
            used += n;
            self.stats.bytes_in += n as u64;
            self.pump(conn);
            if n == 0 {
                break;
            }
        }
        self.run_dialer();
        used
    }

    /// `n` bytes of [`outbound`](Self::outbound) were written on `conn`.
    pub fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        self.tick(now, self.unix_secs);
        if let Some(s) = self.conns.get_mut(&conn).and_then(|c| c.session()) {
            s.handle_written(now, n);
            self.stats.bytes_out += n as u64;
            self.pump(conn);
        }
    }

    /// The connection ended by itself (the peer closed it, or a socket error).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.tick(now, self.unix_secs);
        match self.conns.get_mut(&conn).map(|c| &mut c.state) {
            Some(ConnState::Open(s)) => {
                s.handle_eof(now);
                self.pump(conn);
                // The socket is gone: forget the connection whatever the session says.
                self.remove_conn(conn, false);
            }
            Some(ConnState::Connecting { .. }) => self.drop_dial(
                conn,
                ConnectError::Tcp {
                    kind: std::io::ErrorKind::ConnectionAborted,
                    message: "the connection closed while connecting".into(),
                },
                false,
            ),
            None => {}
        }
        self.run_dialer();
    }

    /// Runs every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, unix_secs: u64) {
        self.tick(now, unix_secs);
        self.publish_local_record();
        if let Some(d) = &mut self.discovery {
            d.handle_timeout(now, unix_secs);
        }
        if let Some(d) = &mut self.discv5 {
            d.handle_timeout(now, unix_secs);
        }
        self.after_discovery();
        self.dns_handle_timeout(now);
        self.throttle.expire(now);
        self.dialer.handle_timeout(now);
        // In connection order, as before the index existed (a scan of `conns`).
        let mut due: Vec<ConnId> = self
            .conn_timers
            .range(..=(now, ConnId(u64::MAX)))
            .map(|(_, id)| *id)
            .collect();
        due.sort_unstable();
        for conn in due {
            match self.conns.get_mut(&conn).map(|c| &mut c.state) {
                Some(ConnState::Connecting { .. }) => {
                    self.drop_dial(conn, ConnectError::TcpTimeout, true)
                }
                Some(ConnState::Open(s)) => {
                    s.handle_timeout(now);
                    self.pump(conn);
                }
                None => {}
            }
        }
        self.run_dialer();
    }

    // ---- application API -------------------------------------------------------------------

    /// Sends message `code` of `protocol` to `peer`. `code` counts from the protocol's first
    /// message; `protocol` names one of [`SessionConfig::protocols`] (see [`ProtocolId`]).
    ///
    /// Every payload up to [`MAX_MESSAGE_SIZE`](crate::rlpx::MAX_MESSAGE_SIZE) fits;
    /// [`SendError::TooLarge`] refuses at once what never can. [`SendError::QueueFull`]
    /// means the peer's queue has no room now: a [`NodeEvent::Writable`] for the peer follows
    /// once it has, so send it again then.
    pub fn send(
        &mut self,
        now: Instant,
        peer: &NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.tick(now, self.unix_secs);
        let conn = *self.peers.get(peer).ok_or(SendError::NotEstablished)?;
        let s = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.session())
            .ok_or(SendError::NotEstablished)?;
        s.send(now, protocol, code, payload)?;
        self.pump(conn);
        Ok(())
    }

    /// Disconnects `peer` with `reason`.
    pub fn disconnect(&mut self, now: Instant, peer: &NodeId, reason: DisconnectReason) {
        self.tick(now, self.unix_secs);
        if let Some(&conn) = self.peers.get(peer) {
            if let Some(s) = self.conns.get_mut(&conn).and_then(|c| c.session()) {
                s.disconnect(now, reason);
            }
            self.pump(conn);
        }
    }

    /// Disconnects every connection with `reason` (ClientQuitting on shutdown).
    pub fn disconnect_all(&mut self, now: Instant, reason: DisconnectReason) {
        self.tick(now, self.unix_secs);
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in ids {
            match self.conns.get_mut(&conn).map(|c| &mut c.state) {
                Some(ConnState::Open(s)) => {
                    s.disconnect(now, reason);
                    self.pump(conn);
                }
                Some(ConnState::Connecting { .. }) => {
                    self.drop_dial(conn, ConnectError::ShuttingDown, true)
                }
                None => {}
            }
        }
    }

    /// Adds a static peer: kept connected, redialled after drops. An enode without an
    /// address (`enode://<key>`) is looked up by its key through discovery first. Refused
    /// when the node could never be dialled (see [`Undialable`]); a dial that fails later
    /// is reported as a [`NodeEvent::ConnectionFailed`].
    pub fn add_static(&mut self, now: Instant, node: &Enode) -> Result<(), Undialable> {
        self.tick(now, self.unix_secs);
        self.add_static_target(node)?;
        self.run_dialer();
        Ok(())
    }

    fn add_static_target(&mut self, node: &Enode) -> Result<(), Undialable> {
        let addr = match &node.host {
            Some(Host::Dns(name)) => return Err(Undialable::DnsName(name.clone())),
            None if self.discovery.is_none() && self.discv5.is_none() => {
                return Err(Undialable::NoAddress)
            }
            None => None,
            Some(Host::Ip(_)) if node.tcp_port == 0 => return Err(Undialable::NoPort),
            Some(Host::Ip(_)) => node.tcp_addr(),
        };
        if node.id() == self.local_id() {
            return Err(Undialable::IsSelf);
        }
        if self.dialer_max() == 0 {
            return Err(Undialable::DialingOff);
        }
        if let (Some(n), Some(a)) = (&self.config.net_restrict, addr) {
            if !n.contains(&a.ip()) {
                return Err(Undialable::NetRestrict);
            }
        }
        self.dialer.add_static(DialTarget {
            public_key: node.public_key,
            addr,
        });
        Ok(())
    }

    /// Removes a static peer (an existing connection stays).
    pub fn remove_static(&mut self, id: &NodeId) {
        self.dialer.remove_static(id);
    }

    /// Trusts `id`: admitted past the peer limits.
    pub fn add_trusted(&mut self, id: NodeId) {
        self.trusted.insert(id);
    }

    /// Stops trusting `id`.
    pub fn remove_trusted(&mut self, id: &NodeId) {
        self.trusted.remove(id);
    }

    // ---- internals -------------------------------------------------------------------------

    fn tick(&mut self, now: Instant, unix_secs: u64) {
        self.now = self.now.max(now);
        self.unix_secs = self.unix_secs.max(unix_secs);
    }

    fn new_conn(
        &mut self,
        direction: Direction,
        addr: SocketAddr,
        state: ConnState,
        dial: Option<(NodePublicKey, DialKind)>,
    ) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Box::new(Conn {
                direction,
                addr,
                state,
                dial,
                admitted: false,
                remote: None,
                remote_key: None,
                peer: None,
                write_signalled: false,
                timer: None,
            }),
        );
        self.retime(id);
        id
    }

    /// Brings `conn`'s entry in [`conn_timers`](Self::conn_timers) up to date with its
    /// deadline. Called after anything that may change a session's timers
    /// ([`pump`](Self::pump) runs after every session call) and when a connection is added.
    fn retime(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let t = c.deadline();
        if t == c.timer {
            return;
        }
        if let Some(old) = std::mem::replace(&mut c.timer, t) {
            self.conn_timers.remove(&(old, conn));
        }
        if let Some(t) = t {
            self.conn_timers.insert((t, conn));
        }
    }

    /// Handles what a session produced: admission, peer changes, messages, writes, closes.
    fn pump(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let Some(s) = c.session() else { return };
            let Some(ev) = s.poll_event() else { break };
            match ev {
                SessionEvent::Authenticated { remote } => self.on_authenticated(conn, remote),
                SessionEvent::Established(est) => self.on_established(conn, *est),
                SessionEvent::Message {
                    protocol,
                    code,
                    payload,
                } => {
                    let Some(peer) = self
                        .conns
                        .get(&conn)
                        .and_then(|c| c.peer.as_ref())
                        .map(|p| p.id)
                    else {
                        continue;
                    };
                    self.pending_messages += payload.len();
                    self.events.push_back(NodeEvent::Message {
                        peer,
                        protocol,
                        code,
                        payload,
                    });
                }
                SessionEvent::Writable => {
                    if let Some(peer) = self.conns.get(&conn).and_then(|c| c.peer.as_ref()) {
                        let peer = peer.id;
                        self.events.push_back(NodeEvent::Writable { peer });
                    }
                }
                SessionEvent::Closed(closed) => self.on_closed(conn, closed),
            }
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ConnState::Open(s) = &c.state else {
            self.retime(conn);
            return;
        };
        if s.is_finished() {
            self.remove_conn(conn, true);
            return;
        }
        if !s.outbound().is_empty() && !c.write_signalled {
            c.write_signalled = true;
            self.actions.push_back(Action::Write { conn });
        }
        self.retime(conn);
    }

    fn remove_conn(&mut self, conn: ConnId, tell_driver: bool) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(t) = c.timer {
                self.conn_timers.remove(&(t, conn));
            }
            if let Some(p) = &c.peer {
                if self.peers.get(&p.id) == Some(&conn) {
                    self.peers.remove(&p.id);
                }
            }
            if tell_driver {
                self.actions.push_back(Action::Close { conn });
            }
        }
    }

    /// Ends a dial that never got a session.
    fn drop_dial(&mut self, conn: ConnId, error: ConnectError, tell_driver: bool) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let outcome = match error {
            ConnectError::TcpTimeout => DialOutcome::ConnectTimeout,
            _ => DialOutcome::ConnectFailed,
        };
        let failure = ConnectionFailure {
            conn: Some(conn),
            direction: c.direction,
            addr: Some(c.addr),
            remote: c.dial.map(|(k, _)| k),
            dial: c.dial.map(|(_, kind)| kind),
            trusted: c.dial.is_some_and(|(k, _)| self.is_trusted(&k.id())),
            error,
        };
        if let Some((key, _)) = c.dial {
            self.dialer.dial_failed(&key.id());
        }
        *self.stats.dials.entry(outcome).or_default() += 1;
        self.remove_conn(conn, tell_driver);
        self.fail(failure);
    }

    /// Counts a failed connection and tells the application.
    fn fail(&mut self, failure: ConnectionFailure) {
        if let Some(outcome) = failure.error.handshake_outcome() {
            *self.stats.handshakes.entry(outcome).or_default() += 1;
        }
        self.events
            .push_back(NodeEvent::ConnectionFailed(Box::new(failure)));
    }

    /// The oldest inbound connection still in its RLPx handshake (no key proved yet).
    fn oldest_unproven_inbound(&self) -> Option<ConnId> {
        // Connection ids grow with time, so the map's order is age.
        self.conns
            .iter()
            .find(|(_, c)| {
                c.direction == Direction::Inbound
                    && c.remote.is_none()
                    && c.peer.is_none()
                    && matches!(c.state, ConnState::Open(_))
            })
            .map(|(id, _)| *id)
    }

    fn is_trusted(&self, id: &NodeId) -> bool {
        self.trusted.contains(id)
    }
}
