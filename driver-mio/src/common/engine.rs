//! The part of a driver that is the same whatever the event loop: moving bytes between
//! non-blocking sockets and a core [`Node`], in the node's documented order.
//!
//! A driver owns the sockets' readiness (mio registrations, tokio wakers) and calls in:
//! [`Engine::on_udp_readable`] / [`Engine::on_udp_writable`] for the UDP socket,
//! [`Engine::on_accepted`] per accepted stream, [`Engine::on_readable`] /
//! [`Engine::on_writable`] when a connection is ready, [`Engine::on_connected`] /
//! [`Engine::on_connect_failed`] for dials it completes itself, [`Engine::on_dns_answer`] for
//! the TXT lookups it ran (off its loop) for DNS discovery, and [`Engine::on_timeout`] once
//! [`Engine::next_deadline`] has passed. After every input the engine drains the node:
//! datagrams, then actions (dial, write, close, resolve), then events, which go to the
//! driver's [`Io::deliver`]. The engine decides nothing about the protocol.
//!
//! Backpressure is counted in bytes: while the events handed to the application and not yet
//! taken hold [`MAX_BACKLOG_BYTES`] of message payload, no connection is read, so TCP flow
//! control slows the peers down. Connections that still had input when reading stopped are
//! remembered and resumed by [`Engine::run_pending`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use devp2p_core::discv4::wire::MAX_PACKET_SIZE;
use devp2p_core::discv4::{Event as DiscoveryEvent, Node as DiscNode, NodeDbSnapshot};
use devp2p_core::discv5::discovery::Event as Discv5Event;
use devp2p_core::dnsdisc::{Event as DnsEvent, ResolveError};
use devp2p_core::nat::{NatEvent, Outcome, Request, RequestId};
use devp2p_core::node::{
    Action, ConnId, ConnectionFailure, DnsQueryId, Node, NodeEvent, NodeStats,
};
use devp2p_core::session::DisconnectReason;
use devp2p_core::Instant;
use rand_chacha::ChaCha20Rng;

use crate::common::clock::Clock;
use crate::common::config::{
    prepare, DataDirLock, DriverConfig, Prepared, StartError, MIN_DB_SAVE_INTERVAL,
};
use crate::common::dns::DnsResolver;
use crate::common::nat::{NatWorker, Wake, NAT_SHUTDOWN_TIMEOUT};
use crate::common::nodedb_file::NodeDbFile;

/// Bytes read from one socket per read call.
pub const READ_CHUNK: usize = 64 * 1024;
/// Bytes read from one connection per readiness before the others get a turn (fairness; the
/// rest is read on the next turn).
pub const READ_BUDGET: usize = 256 * 1024;
/// Message bytes handed to the application and not yet taken beyond which no connection is
/// read. One maximal message (16 MiB) may overshoot it; the core's own limit is 8 MiB.
pub const MAX_BACKLOG_BYTES: usize = 16 * 1024 * 1024;
/// Undelivered events beyond which discovery events are dropped (counted) instead of queued;
/// peer and message events, and finished lookups (someone may wait for one), are never
/// dropped. Bounds memory when the application holds the
/// event stream without reading it.
pub const MAX_BACKLOG_EVENTS: usize = 65_536;
/// How long a graceful shutdown waits for Disconnects to drain before closing what is left:
/// the core lingers at most `DISCONNECT_LINGER` (1 s) per session; the rest is slack.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the node database is written while the node runs, so a crash loses little
/// (our choice; geth writes through to LevelDB); [`DriverConfig::db_save_interval`] changes
/// it.
pub const NODE_DB_SAVE_INTERVAL: Duration = Duration::from_secs(300);
/// Datagrams read per readiness before the connections get their turn (fairness under a UDP
/// flood); the rest are read on the next turn.
pub const DATAGRAMS_PER_TURN: usize = 64;
/// Pause after the listener reports an error (out of file descriptors, say), so a persistent
/// error does not spin the loop (our choice).
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// Datagrams kept while the UDP socket cannot take them (its buffer is full, or, with tokio,
/// its writability is not yet known); beyond this the oldest are dropped and counted.
/// Discovery retries what matters; 1024 datagrams is at most 1.3 MB.
pub const MAX_UNSENT_DATAGRAMS: usize = 1024;
/// Unread input discarded from a socket before it is closed, so that closing sends FIN rather
/// than RST and the peer still reads our Disconnect (bounded: it is only what has arrived).
pub const CLOSE_DRAIN_LIMIT: usize = 256 * 1024;

/// Whose name the engine's log lines carry: the driver's crate, which is the one a user
/// filters on (`RUST_LOG=devp2p_tokio=debug`), not this shared module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// `devp2p_mio`.
    Mio,
    /// `devp2p_tokio`.
    Tokio,
}

/// A `tracing` event under a [`LogTarget`] chosen at run time (a callsite's target must be a
/// constant, so each target gets its own).
#[macro_export]
#[doc(hidden)]
macro_rules! log {
    ($target:expr, $level:ident, $($arg:tt)+) => {
        match $target {
            $crate::common::engine::LogTarget::Mio => ::tracing::$level!(target: "devp2p_mio", $($arg)+),
            $crate::common::engine::LogTarget::Tokio => ::tracing::$level!(target: "devp2p_tokio", $($arg)+),
        }
    };
}
pub use crate::log;

/// A non-blocking TCP stream.
pub trait Stream {
    /// Reads into `buf`; `Ok(0)` is end of stream, `WouldBlock` means nothing to read now.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `buf`; `WouldBlock` means the socket buffer is full.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// For a connect in progress: `Ok(true)` once connected, `Ok(false)` while connecting.
    fn connect_result(&mut self) -> io::Result<bool>;
}

/// Undelivered events, as the driver counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Message payload bytes.
    pub bytes: usize,
    /// Events of any kind.
    pub events: usize,
}

/// What the engine asks of the driver's sockets and application side.
pub trait Io {
    /// The driver's stream type.
    type Stream: Stream;
    /// Sends one datagram now. `WouldBlock` queues it (see [`MAX_UNSENT_DATAGRAMS`]); other
    /// failures drop it (discovery retries what matters).
    fn send_datagram(&mut self, to: SocketAddr, data: &[u8]) -> io::Result<usize>;
    /// Receives one datagram into `buf` if one is waiting (`WouldBlock` if not).
    fn recv_datagram(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// Starts a TCP connect for `conn`. `Some(stream)` when the stream exists (and is
    /// registered) while connecting, the engine then watches [`Stream::connect_result`] on
    /// writability; `None` when the driver connects elsewhere and reports
    /// [`Engine::on_connected`] or [`Engine::on_connect_failed`].
    fn dial(&mut self, conn: ConnId, addr: SocketAddr) -> io::Result<Option<Self::Stream>>;
    /// A connected stream joins the loop under `conn`.
    fn register(&mut self, conn: ConnId, stream: &mut Self::Stream) -> io::Result<()>;
    /// A stream leaves the loop (it is dropped, and so closed, right after).
    fn deregister(&mut self, conn: ConnId, stream: &mut Self::Stream);
    /// Starts a TXT lookup of `name` for DNS discovery without blocking the loop (the
    /// resolver runs elsewhere: a task, a thread); its result goes to
    /// [`Engine::on_dns_answer`] with `query`. Only called for nodes with DNS trees, whose
    /// driver got a resolver in [`Sockets::dns`].
    fn resolve_txt(&mut self, query: DnsQueryId, name: String);
    /// Hands an event to the application.
    fn deliver(&mut self, event: NodeEvent);
    /// What the application has not taken yet.
    fn backlog(&self) -> Backlog;
}

/// Counters of what the driver did outside the node, since it started. Each counts something
/// the node never saw, so a non-zero value points at the host or the application rather than
/// at peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Datagrams dropped because the UDP socket could not take them (queue full, or an
    /// error other than `WouldBlock`).
    pub datagrams_dropped: u64,
    /// Connections closed because of a socket error.
    pub socket_errors: u64,
    /// Discovery events dropped because the application did not take events (beyond 65,536
    /// waiting). Peer and message events are never dropped: the node stops reading instead.
    pub events_dropped: u64,
    /// Accepted connections closed at once because the driver was shutting down or out of
    /// tokens.
    pub accepts_dropped: u64,
    /// Node database writes that failed.
    pub db_save_failures: u64,
    /// Messages `devp2p_tokio::NodeHandle::post` handed over that the node then refused
    /// (the peer left, say); each is also logged. Always 0 with mio, which has no `post`.
    pub posts_dropped: u64,
}

/// Everything a driver counts: the node's counters and the driver's own, as `stats()` of
/// either driver returns them. Counters only grow (since start); the difference of two
/// snapshots is a rate. The node's are the same whichever driver runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams, handshakes, dials, refusals and disconnects, by kind and reason. Of what
    /// [`NodeEvent::ConnectionFailed`](devp2p_core::node::NodeEvent::ConnectionFailed) reports
    /// one by one, failed TCP connects are counted under `dials`, failed handshakes under
    /// `handshakes`.
    pub node: NodeStats,
    /// What the driver did outside the node.
    pub driver: DriverStats,
}

/// What a graceful shutdown did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections still open when the shutdown timeout passed (closed without waiting).
    pub forced_closes: usize,
    /// Where the node database was written, if it was.
    pub db_saved: Option<std::path::PathBuf>,
    /// Why writing it failed, if it did.
    pub db_error: Option<String>,
}

enum Phase {
    /// The stream exists, the TCP connect is in flight (mio).
    Connecting,
    /// Connected: bytes flow.
    Open,
}

struct Conn<S> {
    addr: SocketAddr,
    /// `None` while the driver connects elsewhere (tokio).
    stream: Option<S>,
    phase: Phase,
    /// Bytes read that the node has not taken yet; offered again before reading more.
    leftover: Vec<u8>,
    /// The last write hit `WouldBlock` with bytes still queued.
    write_blocked: bool,
}

/// Which readiness a connection waits for (for drivers that arm wakers per socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Reading would make progress.
    pub read: bool,
    /// Writing (or finishing a connect) would make progress.
    pub write: bool,
}

/// A [`Node`] between non-blocking sockets. See the [module docs](self).
pub struct Engine<S> {
    node: Node<ChaCha20Rng>,
    clock: Clock,
    conns: BTreeMap<ConnId, Conn<S>>,
    /// Connections with input not yet read or not yet taken (budget spent, or backlog full).
    runnable: BTreeSet<ConnId>,
    scratch: Vec<u8>,
    datagram: Box<[u8; MAX_PACKET_SIZE]>,
    /// Where datagrams are received: one byte more than the largest valid one, so that an
    /// oversized datagram is seen as such rather than cut to a valid-looking length.
    received: Box<[u8; MAX_PACKET_SIZE + 1]>,
    /// Datagrams waiting for the UDP socket to become writable.
    unsent: std::collections::VecDeque<(SocketAddr, Vec<u8>)>,
    db_file: Option<NodeDbFile>,
    save_interval: Duration,
    next_save: Instant,
    shutdown_deadline: Option<Instant>,
    stats: DriverStats,
    log: LogTarget,
    /// The data directory's lock (see [`prepare`]), released by [`finish`](Self::finish)
    /// once the database is saved, or on drop.
    data_dir_lock: Option<DataDirLock>,
    /// The thread doing the gateway I/O of port mapping, started at the node's first request.
    nat: Option<NatWorker>,
    /// What the NAT worker calls after each outcome (see [`set_nat_wake`](Self::set_nat_wake)).
    nat_wake: Wake,
    /// At shutdown, when the deletion of the mappings stops being waited for.
    nat_deadline: Option<Instant>,
    /// DNS trees whose last lookup failed: their next failure is logged at debug, not warn,
    /// until one works again (one warning per outage; every failure is counted and is an
    /// event all the same). At most the client's trees (`MAX_TREES`).
    dns_failing: BTreeSet<String>,
}

/// The sockets a driver converts to its own types.
pub struct Sockets {
    /// Non-blocking TCP listener.
    pub listener: std::net::TcpListener,
    /// Non-blocking UDP socket on the same port (`None` without discovery).
    pub udp: Option<std::net::UdpSocket>,
    /// The resolver for DNS discovery's lookups ([`Io::resolve_txt`]), when the node has
    /// trees to walk.
    pub dns: Option<DnsResolver>,
}

impl<S: Stream> Engine<S> {
    /// Prepares key, database and sockets (see [`prepare`]) and starts the node; its log
    /// lines carry `log`'s name.
    pub fn start(config: DriverConfig, log: LogTarget) -> Result<(Self, Sockets), StartError> {
        let save_interval = config
            .db_save_interval
            .unwrap_or(NODE_DB_SAVE_INTERVAL)
            .max(MIN_DB_SAVE_INTERVAL);
        let Prepared {
            key,
            node,
            rng,
            listener,
            udp,
            db_file,
            lock,
            dns,
        } = prepare(config, log)?;
        let clock = Clock::new();
        let now = clock.now();
        let node = Node::new(key, node, rng, now, clock.unix_secs());
        log!(log, info, enode = %node.local_enode(), "node started");
        let engine = Engine {
            node,
            clock,
            conns: BTreeMap::new(),
            runnable: BTreeSet::new(),
            scratch: vec![0; READ_CHUNK],
            datagram: Box::new([0; MAX_PACKET_SIZE]),
            received: Box::new([0; MAX_PACKET_SIZE + 1]),
            unsent: std::collections::VecDeque::new(),
            db_file,
            save_interval,
            next_save: now + save_interval,
            shutdown_deadline: None,
            stats: DriverStats::default(),
            log,
            data_dir_lock: lock,
            nat: None,
            nat_wake: Arc::new(|| {}),
            nat_deadline: None,
            dns_failing: BTreeSet::new(),
        };
        Ok((engine, Sockets { listener, udp, dns }))
    }

    // ---- getters ---------------------------------------------------------------------------

    /// The node.
    pub fn node(&self) -> &Node<ChaCha20Rng> {
        &self.node
    }

    /// The node, for a command whose outputs must not be drained yet (to register interest
    /// in an event it may cause at once, say). Call [`flush`](Self::flush) afterwards;
    /// [`command`](Self::command) does both.
    pub fn node_mut(&mut self) -> &mut Node<ChaCha20Rng> {
        &mut self.node
    }

    /// The clock the node runs on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Driver counters.
    pub fn stats(&self) -> &DriverStats {
        &self.stats
    }

    /// Driver counters, to update (the tokio driver counts dropped posts).
    pub fn stats_mut(&mut self) -> &mut DriverStats {
        &mut self.stats
    }

    /// The node's counters and the driver's.
    pub fn all_stats(&self) -> Stats {
        Stats {
            node: self.node.stats(),
            driver: self.stats.clone(),
        }
    }

    /// The nodes in the discv4 table (empty without discv4).
    pub fn table(&self) -> Vec<DiscNode> {
        self.node
            .discovery()
            .map(|d| d.table().entries().map(|e| e.node().clone()).collect())
            .unwrap_or_default()
    }

    /// The nodes in the discv5 table, each with its record (empty without discv5).
    pub fn table_v5(&self) -> Vec<DiscNode> {
        self.node
            .discv5()
            .map(|d| d.table().entries().map(|e| e.node().clone()).collect())
            .unwrap_or_default()
    }

    /// The node database file, when there is a data directory.
    pub fn db_file(&self) -> Option<&NodeDbFile> {
        self.db_file.as_ref()
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// Whether a shutdown has begun and every connection is closed (or the timeout passed).
    pub fn is_drained(&self) -> bool {
        let now = self.clock.now();
        let nat_done = self.node.is_port_mapping_stopped()
            || self.nat_deadline.is_some_and(|d| now >= d)
            || self.nat.is_none();
        nat_done
            && self
                .shutdown_deadline
                .is_some_and(|d| self.conns.is_empty() || now >= d)
    }

    /// When [`on_timeout`](Self::on_timeout) is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let save = self.db_file.as_ref().map(|_| self.next_save);
        let nat = self
            .nat_deadline
            .filter(|_| !self.node.is_port_mapping_stopped());
        [self.node.poll_timeout(), save, self.shutdown_deadline, nat]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether [`run_pending`](Self::run_pending) has work it can do now.
    pub fn has_pending(&self, io: &impl Io) -> bool {
        !self.runnable.is_empty() && !backlog_full(io)
    }

    /// The connections with their streams and what they wait for (for drivers that arm a
    /// waker per socket), starting after `after` and wrapping around, for fairness.
    pub fn interests(&self, after: Option<ConnId>) -> impl Iterator<Item = (ConnId, &S, Interest)> {
        let (tail, head) = match after {
            Some(a) => (
                self.conns
                    .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
                self.conns.range(..=a),
            ),
            None => (self.conns.range(..), self.conns.range(..ConnId(0))),
        };
        tail.chain(head).filter_map(|(id, c)| {
            let stream = c.stream.as_ref()?;
            let interest = match c.phase {
                Phase::Connecting => Interest {
                    read: false,
                    write: true,
                },
                Phase::Open => Interest {
                    read: c.leftover.is_empty() && !self.runnable.contains(id),
                    write: c.write_blocked,
                },
            };
            Some((*id, stream, interest))
        })
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// Runs `f` on the node (a command: send, disconnect, add a peer…) and drains it.
    pub fn command<T>(
        &mut self,
        io: &mut impl Io<Stream = S>,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T,
    ) -> T {
        let now = self.clock.now();
        let out = f(&mut self.node, now);
        self.flush(io);
        out
    }

    /// The UDP socket is readable: hands up to [`DATAGRAMS_PER_TURN`] datagrams to the node.
    /// Returns whether more may be waiting (the budget ran out before `WouldBlock`).
    pub fn on_udp_readable(&mut self, io: &mut impl Io<Stream = S>) -> bool {
        for _ in 0..DATAGRAMS_PER_TURN {
            match io.recv_datagram(&mut self.received[..]) {
                Ok((n, from)) => {
                    let (now, unix) = (self.clock.now(), self.clock.unix_secs());
                    self.node
                        .handle_datagram(now, unix, from, &self.received[..n]);
                    self.flush(io);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP port-unreachable and the like surface here on some systems; the
                    // socket itself is fine, and more may be waiting.
                    log!(self.log, trace, error = %e, "UDP receive error");
                }
            }
        }
        true
    }

    /// The listener accepted `stream` from `addr`.
    pub fn on_accepted(&mut self, io: &mut impl Io<Stream = S>, mut stream: S, addr: SocketAddr) {
        if self.is_shutting_down() {
            self.stats.accepts_dropped += 1;
            return;
        }
        let conn = match self.node.handle_accept(self.clock.now(), addr) {
            Ok(c) => c,
            Err(reason) => {
                log!(self.log, debug, peer = %addr, %reason, "inbound connection refused");
                return;
            }
        };
        if let Err(e) = io.register(conn, &mut stream) {
            log!(self.log, warn, peer = %addr, %conn, error = %e, "cannot watch an accepted connection; closing it");
            self.stats.accepts_dropped += 1;
            self.node.handle_closed(self.clock.now(), conn);
            self.flush(io);
            return;
        }
        log!(self.log, trace, peer = %addr, %conn, "accepted");
        self.conns.insert(
            conn,
            Conn {
                addr,
                stream: Some(stream),
                phase: Phase::Open,
                leftover: Vec::new(),
                write_blocked: false,
            },
        );
        self.flush(io);
    }

    /// A connect the driver ran itself succeeded.
    pub fn on_connected(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId, mut stream: S) {
        let Some(c) = self.conns.get_mut(&conn) else {
            // The node gave up on this dial (timeout) before it completed.
            return;
        };
        if c.stream.is_some() {
            return;
        }
        if let Err(e) = io.register(conn, &mut stream) {
            log!(self.log, debug, peer = %c.addr, %conn, error = %e, "cannot watch a connected stream");
            return self.on_connect_failed(io, conn, &e);
        }
        c.stream = Some(stream);
        c.phase = Phase::Open;
        self.node.handle_connected(self.clock.now(), conn);
        self.flush(io);
    }

    /// A connect the driver ran itself failed.
    pub fn on_connect_failed(
        &mut self,
        io: &mut impl Io<Stream = S>,
        conn: ConnId,
        error: &io::Error,
    ) {
        if let Some(c) = self.conns.remove(&conn) {
            log!(self.log, debug, peer = %c.addr, %conn, %error, "dial failed");
            self.release(io, conn, c, false);
            self.node
                .handle_connect_failed(self.clock.now(), conn, error);
            self.flush(io);
        }
    }

    /// `conn` is readable (or closed, or in error: reading finds out).
    pub fn on_readable(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId) {
        let mut budget = READ_BUDGET;
        let mut stalls = 0;
        loop {
            if backlog_full(io) {
                self.runnable.insert(conn);
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                self.runnable.remove(&conn);
                return;
            };
            if matches!(c.phase, Phase::Connecting) {
                return self.on_writable(io, conn);
            }
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            if !c.leftover.is_empty() {
                let taken = self.node.handle_read(self.clock.now(), conn, &c.leftover);
                c.leftover.drain(..taken);
                if c.leftover.is_empty() {
                    // Taken at last: an idle connection holds no buffer here.
                    c.leftover = Vec::new();
                }
                self.flush(io);
                if taken == 0 {
                    // Nothing taken even after the events were drained: try again next turn.
                    stalls += 1;
                    if stalls > 1 {
                        self.runnable.insert(conn);
                        return;
                    }
                }
                continue;
            }
            if budget == 0 {
                self.runnable.insert(conn);
                return;
            }
            match stream.try_read(&mut self.scratch) {
                Ok(0) => {
                    log!(self.log, trace, peer = %c.addr, %conn, "connection closed by the peer");
                    self.lost(io, conn);
                    return;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let taken = self
                        .node
                        .handle_read(self.clock.now(), conn, &self.scratch[..n]);
                    if taken < n {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.leftover.extend_from_slice(&self.scratch[taken..n]);
                        }
                    }
                    self.flush(io);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.runnable.remove(&conn);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.socket_error(io, conn, "read", &e);
                    return;
                }
            }
        }
    }

    /// The answer to the DNS lookup `query` that [`Io::resolve_txt`] started: every TXT
    /// record at the name (character-strings joined), or why there is none.
    pub fn on_dns_answer(
        &mut self,
        io: &mut impl Io<Stream = S>,
        query: DnsQueryId,
        answer: Result<Vec<String>, ResolveError>,
    ) {
        self.node.dns_answer(self.clock.now(), query, answer);
        self.flush(io);
    }

    /// `conn` is writable (or, while connecting, its connect finished either way).
    pub fn on_writable(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if matches!(c.phase, Phase::Connecting) {
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            match stream.connect_result() {
                Ok(false) => return,
                Ok(true) => {
                    c.phase = Phase::Open;
                    log!(self.log, trace, peer = %c.addr, %conn, "connected");
                    self.node.handle_connected(self.clock.now(), conn);
                    self.flush(io);
                }
                Err(e) => return self.on_connect_failed(io, conn, &e),
            }
        }
        self.write(io, conn);
        self.flush(io);
    }

    /// Whether datagrams wait for the UDP socket to become writable.
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// The UDP socket is writable: sends what waited, until it blocks again.
    pub fn on_udp_writable(&mut self, io: &mut impl Io<Stream = S>) {
        while let Some((to, data)) = self.unsent.front() {
            match io.send_datagram(*to, data) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.stats.datagrams_dropped += 1;
                    log!(self.log, trace, to = %to, error = %e, "datagram not sent");
                }
                Ok(_) => {}
            }
            self.unsent.pop_front();
        }
    }

    /// Runs the node's deadlines if due, saves the node database if due, and ends a shutdown
    /// whose time is up.
    pub fn on_timeout(&mut self, io: &mut impl Io<Stream = S>) {
        let now = self.clock.now();
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now, self.clock.unix_secs());
            self.flush(io);
        }
        if self.db_file.is_some() && self.next_save <= now && !self.is_shutting_down() {
            self.next_save = now + self.save_interval;
            self.save_db();
        }
    }

    /// What the NAT worker calls after each gateway answer, from its own thread, so that the
    /// driver then calls [`on_nat`](Self::on_nat) (tokio: a `Notify`). Without one the
    /// driver polls while [`nat_busy`](Self::nat_busy) (mio). Set it before the first turn.
    pub fn set_nat_wake(&mut self, wake: Wake) {
        self.nat_wake = wake;
    }

    /// Whether a port-mapping request waits for the gateway's answer.
    pub fn nat_busy(&self) -> bool {
        self.nat.as_ref().is_some_and(NatWorker::is_busy)
    }

    /// Hands the gateway's answers that arrived to the node, then runs `changed` on it (the
    /// tokio driver copies the new enode and record for its handles there, before the events
    /// that announce them are delivered), then drains it.
    pub fn on_nat(
        &mut self,
        io: &mut impl Io<Stream = S>,
        changed: impl FnOnce(&Node<ChaCha20Rng>),
    ) {
        let Some(worker) = &mut self.nat else {
            return;
        };
        let mut any = false;
        while let Some((id, outcome)) = worker.try_recv() {
            any = true;
            self.node.handle_nat_response(self.clock.now(), id, outcome);
        }
        if any {
            changed(&self.node);
            self.flush(io);
        }
    }

    /// Offers input that waited (read budget spent, backlog full) again, while the backlog
    /// has room.
    pub fn run_pending(&mut self, io: &mut impl Io<Stream = S>) {
        let waiting: Vec<ConnId> = self.runnable.iter().copied().collect();
        for conn in waiting {
            if backlog_full(io) {
                return;
            }
            self.runnable.remove(&conn);
            self.on_readable(io, conn);
        }
    }

    /// Starts a graceful shutdown: Disconnect(ClientQuitting) to every peer; no new
    /// connections. Keep driving the engine until [`is_drained`](Self::is_drained), then call
    /// [`finish`](Self::finish).
    pub fn begin_shutdown(&mut self, io: &mut impl Io<Stream = S>) {
        if self.is_shutting_down() {
            return;
        }
        let now = self.clock.now();
        log!(
            self.log,
            info,
            peers = self.node.peer_count(),
            "shutting down"
        );
        self.shutdown_deadline = Some(now + SHUTDOWN_TIMEOUT);
        self.nat_deadline = Some(now + NAT_SHUTDOWN_TIMEOUT);
        self.node
            .disconnect_all(now, DisconnectReason::ClientQuitting);
        self.node.stop_port_mapping();
        self.flush(io);
    }

    /// Closes what is left, saves the node database and reports. Call once drained.
    pub fn finish(&mut self, io: &mut impl Io<Stream = S>) -> ShutdownReport {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        let forced_closes = ids.len();
        for conn in ids {
            if let Some(c) = self.conns.remove(&conn) {
                self.release(io, conn, c, true);
                self.node.handle_closed(self.clock.now(), conn);
            }
        }
        // What the node says after its sockets are gone is still the application's to hear.
        while let Some(e) = self.node.poll_event() {
            io.deliver(e);
        }
        let (db_saved, db_error) = match self.save_db() {
            Some(Ok(p)) => (Some(p), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        // Saved: the directory is free for the next node (a finished driver may be kept).
        self.data_dir_lock = None;
        ShutdownReport {
            forced_closes,
            db_saved,
            db_error,
        }
    }

    /// The node database as it would be saved now.
    pub fn db_snapshot(&self) -> NodeDbSnapshot {
        self.node.db_snapshot()
    }

    // ---- internals -------------------------------------------------------------------------

    fn save_db(&mut self) -> Option<Result<std::path::PathBuf, String>> {
        let file = self.db_file.as_ref()?;
        let snap = self.node.db_snapshot();
        Some(match file.save(&snap, self.clock.unix_secs()) {
            Ok(()) => {
                log!(self.log, debug, path = %file.path().display(), nodes = snap.nodes.len(), "node database saved");
                Ok(file.path().to_path_buf())
            }
            Err(e) => {
                self.stats.db_save_failures += 1;
                log!(self.log, warn, path = %file.path().display(), error = %e, "saving the node database failed");
                Err(format!("{}: {e}", file.path().display()))
            }
        })
    }

    /// Drains the node in its documented order until it has nothing more to say.
    pub fn flush(&mut self, io: &mut impl Io<Stream = S>) {
        loop {
            let mut progress = false;
            while let Some((to, len)) = self.node.poll_transmit(&mut self.datagram) {
                progress = true;
                if !self.unsent.is_empty() {
                    // Keep the order: behind what already waits.
                    self.queue_datagram(to, len);
                    continue;
                }
                match io.send_datagram(to, &self.datagram[..len]) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.queue_datagram(to, len),
                    Err(e) => {
                        self.stats.datagrams_dropped += 1;
                        log!(self.log, trace, to = %to, error = %e, "datagram not sent");
                    }
                }
            }
            while let Some(action) = self.node.poll_action() {
                progress = true;
                match action {
                    Action::Dial { conn, addr } => self.dial(io, conn, addr),
                    Action::Write { conn } => self.write(io, conn),
                    Action::Close { conn } => {
                        if let Some(c) = self.conns.remove(&conn) {
                            self.release(io, conn, c, true);
                        }
                    }
                    // Nothing new starts while shutting down; the node gives the lookup up
                    // after its timeout, by which time the driver has stopped.
                    Action::ResolveTxt { query, name } if !self.is_shutting_down() => {
                        log!(self.log, trace, %name, "DNS lookup");
                        io.resolve_txt(query, name)
                    }
                    Action::ResolveTxt { .. } => {}
                }
            }
            while let Some(event) = self.node.poll_event() {
                progress = true;
                match &event {
                    NodeEvent::ConnectionFailed(f) => self.log_failure(f),
                    NodeEvent::EndpointChanged { old, new, seq } => {
                        let old = old.map_or_else(|| "none".to_string(), |a| a.to_string());
                        log!(self.log, info, %old, %new, seq, "our record now advertises {new} (peers agree they see us there)");
                        // The new seq must survive a crash: save at the next turn.
                        self.next_save = self.next_save.min(self.clock.now());
                    }
                    NodeEvent::Dns(d) => self.log_dns(d),
                    _ => {}
                }
                if let NodeEvent::Nat(e) = &event {
                    self.log_nat(e);
                }
                let full = io.backlog().events >= MAX_BACKLOG_EVENTS;
                if full && droppable(&event) {
                    self.stats.events_dropped += 1;
                } else {
                    io.deliver(event);
                }
            }
            while let Some((id, request)) = self.node.poll_nat_request() {
                progress = true;
                self.submit_nat(id, request);
            }
            if !progress {
                return;
            }
        }
    }

    /// A log line for a failed dial or handshake: at info for the peers the operator asked
    /// for (static, trusted), at debug for discovered candidates and strangers.
    fn log_failure(&self, f: &ConnectionFailure) {
        let peer = f.remote.map(|k| k.id().to_string()).unwrap_or_default();
        let addr = f.addr.map(|a| a.to_string()).unwrap_or_default();
        if f.is_configured_peer() {
            log!(self.log, info, %peer, %addr, error = %f.error, "{f}");
        } else {
            log!(self.log, debug, %peer, %addr, error = %f.error, "{f}");
        }
    }

    /// Hands a request to the NAT worker, starting it first if need be; if it cannot run,
    /// the request fails at once (the node retries on its schedule).
    fn submit_nat(&mut self, id: RequestId, request: Request) {
        if self.nat.is_none() {
            let nat = self.node.nat();
            match NatWorker::spawn(nat, self.log, self.nat_wake.clone()) {
                Ok(w) => self.nat = Some(w),
                Err(e) => {
                    let error = devp2p_core::nat::GatewayError(format!(
                        "cannot start the NAT worker thread: {e}"
                    ));
                    let outcome = match request {
                        Request::ExternalIp => Outcome::ExternalIp(Err(error)),
                        Request::Map { .. } => Outcome::Mapped(Err(error)),
                        Request::Unmap { .. } => Outcome::Unmapped(Err(error)),
                    };
                    self.node.handle_nat_response(self.clock.now(), id, outcome);
                    return;
                }
            }
        }
        if let Some(w) = &mut self.nat {
            if let Err(error) = w.submit(id, request.clone()) {
                let outcome = match request {
                    Request::ExternalIp => Outcome::ExternalIp(Err(error)),
                    Request::Map { .. } => Outcome::Mapped(Err(error)),
                    Request::Unmap { .. } => Outcome::Unmapped(Err(error)),
                };
                self.node.handle_nat_response(self.clock.now(), id, outcome);
            }
        }
    }

    /// A log line per port-mapping report: changes at info, the first failure of a kind at
    /// warn and its repeats at debug (a missing router fails every few minutes).
    fn log_nat(&self, e: &NatEvent) {
        match e {
            NatEvent::ExternalIp { ip } if is_private_or_shared(ip) => log!(
                self.log,
                warn,
                %ip,
                "{e}, a private or shared address: this router is behind another NAT, and                  peers outside cannot reach the ports it forwards"
            ),
            NatEvent::ExternalIp { ip } => log!(self.log, info, %ip, "{e}"),
            NatEvent::Mapped { .. } | NatEvent::Unmapped { error: None, .. } => {
                log!(self.log, info, "{e}")
            }
            NatEvent::ExternalIpFailed { failures: 1, .. }
            | NatEvent::MappingFailed { failures: 1, .. }
            | NatEvent::MappingDisabled { .. }
            | NatEvent::MappingAbandoned { .. }
            | NatEvent::Unmapped { .. } => log!(self.log, warn, "{e}"),
            _ => log!(self.log, debug, "{e}"),
        }
    }

    /// A log line for what DNS discovery reports: the first failure of a tree at warn (the
    /// operator configured it: a wrong URL or an unreachable resolver), later ones at debug
    /// until the tree works again, which is logged at info; records found at debug.
    fn log_dns(&mut self, e: &DnsEvent) {
        match e {
            DnsEvent::Error(err) => {
                let tree = err.tree.to_string();
                if self.dns_failing.insert(err.tree.identity()) {
                    log!(self.log, warn, %tree, name = %err.name, error = %err.error,
                        "DNS discovery failed: {err} (tree {tree}; check the URL, and that \
                         the resolver answers for its domain); retrying, and logging further \
                         failures of this tree at debug until it works again");
                } else {
                    log!(self.log, debug, %tree, name = %err.name, error = %err.error,
                        "DNS discovery failed: {err}");
                }
            }
            DnsEvent::RootUpdated { tree, seq } => {
                self.dns_works(tree);
                log!(self.log, info, tree = %tree, seq, "DNS tree root accepted");
            }
            DnsEvent::Node { tree, record } => {
                self.dns_works(tree);
                log!(self.log, debug, tree = %tree, id = %record.node_id(), "DNS tree record");
            }
            DnsEvent::StaleRoot { tree, held, served } => log!(self.log, info, tree = %tree,
                held, served, "DNS tree served an older root than the one held; ignored"),
            DnsEvent::TreeLinked { tree, added } => log!(self.log, info, tree = %tree, added,
                "DNS tree {}", if *added { "linked" } else { "no longer linked" }),
            _ => {}
        }
    }

    fn dns_works(&mut self, tree: &devp2p_core::dnsdisc::TreeUrl) {
        if self.dns_failing.remove(&tree.identity()) {
            log!(self.log, info, tree = %tree, "DNS tree resolves again");
        }
    }

    fn queue_datagram(&mut self, to: SocketAddr, len: usize) {
        if self.unsent.len() >= MAX_UNSENT_DATAGRAMS {
            self.unsent.pop_front();
            self.stats.datagrams_dropped += 1;
        }
        self.unsent.push_back((to, self.datagram[..len].to_vec()));
    }

    fn dial(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId, addr: SocketAddr) {
        let result = if self.is_shutting_down() {
            Err(io::Error::other("shutting down"))
        } else {
            io.dial(conn, addr)
        };
        match result {
            Ok(stream) => {
                log!(self.log, trace, peer = %addr, %conn, "dialling");
                self.conns.insert(
                    conn,
                    Conn {
                        addr,
                        phase: if stream.is_some() {
                            Phase::Connecting
                        } else {
                            Phase::Open
                        },
                        stream,
                        leftover: Vec::new(),
                        write_blocked: false,
                    },
                );
            }
            Err(e) => {
                log!(self.log, debug, peer = %addr, %conn, error = %e, "dial failed at once");
                self.node.handle_connect_failed(self.clock.now(), conn, &e);
            }
        }
    }

    /// Writes what the node has queued for `conn` until done or the socket is full.
    fn write(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (Phase::Open, Some(stream)) = (&c.phase, c.stream.as_mut()) else {
            return;
        };
        loop {
            let out = self.node.outbound(conn);
            if out.is_empty() {
                c.write_blocked = false;
                return;
            }
            match stream.try_write(out) {
                Ok(0) => {
                    let e = io::Error::new(ErrorKind::WriteZero, "socket accepted no bytes");
                    return self.socket_error(io, conn, "write", &e);
                }
                Ok(n) => self.node.handle_written(self.clock.now(), conn, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.write_blocked = true;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.socket_error(io, conn, "write", &e),
            }
        }
    }

    fn socket_error(
        &mut self,
        io: &mut impl Io<Stream = S>,
        conn: ConnId,
        op: &str,
        e: &io::Error,
    ) {
        if let Some(c) = self.conns.get(&conn) {
            log!(self.log, debug, peer = %c.addr, %conn, error = %e, "{op} failed; closing the connection");
        }
        self.stats.socket_errors += 1;
        self.lost(io, conn);
    }

    /// The connection ended by itself: tell the node, forget the socket.
    fn lost(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.release(io, conn, c, false);
            self.node.handle_closed(self.clock.now(), conn);
            self.flush(io);
        }
    }

    /// Deregisters and drops a connection's socket. With `drain`, unread input is discarded
    /// first so that the close sends FIN, not RST (see [`CLOSE_DRAIN_LIMIT`]).
    fn release(&mut self, io: &mut impl Io<Stream = S>, conn: ConnId, mut c: Conn<S>, drain: bool) {
        self.runnable.remove(&conn);
        if let Some(mut stream) = c.stream.take() {
            if drain && matches!(c.phase, Phase::Open) {
                let mut drained = 0;
                while drained < CLOSE_DRAIN_LIMIT {
                    match stream.try_read(&mut self.scratch) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => drained += n,
                    }
                }
            }
            io.deregister(conn, &mut stream);
            log!(self.log, trace, peer = %c.addr, %conn, "closed");
        }
    }
}

/// Whether an external IP is one only a LAN knows: private, or shared (100.64/10, carrier-grade
/// NAT).
fn is_private_or_shared(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        std::net::IpAddr::V6(v6) => v6.is_unique_local(),
    }
}

fn backlog_full(io: &impl Io) -> bool {
    io.backlog().bytes >= MAX_BACKLOG_BYTES
}

/// Whether an event may be dropped when the application falls behind: discovery's table
/// changes and sightings, DNS discovery's reports, and failed connections of strangers and
/// discovered candidates (each is logged, and counted in the node's stats), but not a
/// finished lookup, a TALKREQ or its answer, or the failure of a static or trusted peer.
fn droppable(event: &NodeEvent) -> bool {
    match event {
        NodeEvent::Discovery(d) => !matches!(d.as_ref(), DiscoveryEvent::LookupFinished { .. }),
        NodeEvent::Discv5(d) => matches!(
            d.as_ref(),
            Discv5Event::NodeAdded(_)
                | Discv5Event::NodeRemoved(_)
                | Discv5Event::NodeSeen(_)
                | Discv5Event::Bootstrapped
        ),
        NodeEvent::ConnectionFailed(f) => !f.is_configured_peer(),
        NodeEvent::Dns(_) => true,
        _ => false,
    }
}

/// What an event weighs in [`Backlog::bytes`]: its message payload, if it has one.
pub fn backlog_bytes(event: &NodeEvent) -> usize {
    match event {
        NodeEvent::Message { payload, .. } => payload.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devp2p_core::discv4::LookupId;
    use devp2p_core::NodeId;

    #[test]
    fn only_discovery_sightings_are_dropped_when_the_application_falls_behind() {
        let seen = NodeEvent::Discovery(Box::new(DiscoveryEvent::NodeRemoved(NodeId::default())));
        let lookup = NodeEvent::Discovery(Box::new(DiscoveryEvent::LookupFinished {
            id: LookupId(1),
            target: [0; 64],
            nodes: Vec::new(),
        }));
        let message = NodeEvent::Message {
            peer: NodeId::default(),
            protocol: devp2p_core::session::ProtocolId::new(0),
            code: 0,
            payload: vec![1, 2, 3],
        };
        assert!(droppable(&seen));
        let talk = NodeEvent::Discv5(Box::new(Discv5Event::TalkRequest {
            id: devp2p_core::discv5::discovery::TalkRequestId(1),
            from: devp2p_core::discv5::NodeAddress {
                id: NodeId::default(),
                addr: "127.0.0.1:1".parse().unwrap(),
            },
            protocol: b"x".to_vec(),
            request: Vec::new(),
        }));
        assert!(!droppable(&talk), "a TALKREQ waits for its answer");
        let bootstrapped = NodeEvent::Discv5(Box::new(Discv5Event::Bootstrapped));
        assert!(droppable(&bootstrapped));
        assert!(!droppable(&lookup), "a lookup caller may wait for it");
        assert!(!droppable(&message));
        assert_eq!(backlog_bytes(&message), 3);
        assert_eq!(backlog_bytes(&seen), 0);
    }
}
