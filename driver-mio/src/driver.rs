//! [`Driver`]: one node inside the caller's `mio::Poll`, under a range of tokens.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use crate::common::engine::{backlog_bytes, ACCEPT_ERROR_BACKOFF};
use crate::common::nat::NAT_POLL_INTERVAL;
use crate::common::{
    AddStaticError, Backlog, Discv5Failure, DriverConfig, Engine, Io, LogTarget, LookupError,
    RecordFailure, SendFailure, ShutdownReport, StartError, Stats, Stopped, Stream,
};
use devp2p_core::discv4::{LookupId, Node as DiscNode, NodeDbSnapshot};
use devp2p_core::discv5::discovery::TalkRequestId;
use devp2p_core::discv5::RequestId;
use devp2p_core::node::{ConnId, DiscoveryVersion, DnsQueryId, NodeEvent, PeerInfo};
#[cfg(doc)]
use devp2p_core::session::SendError;
use devp2p_core::session::{DisconnectReason, ProtocolId};
use devp2p_core::{Enode, Enr, NodeId, NodePublicKey};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use crate::dns::{Answer, DnsWorker};

/// Tokens a driver needs at least: its UDP socket, its listener, and one connection (with
/// DNS discovery one more, for its resolver's wake-up socket).
pub const MIN_TOKENS: usize = 3;

/// A mio stream as the engine sees it.
pub(crate) struct MioStream(TcpStream);

impl Stream for MioStream {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn connect_result(&mut self) -> io::Result<bool> {
        // mio's documented way to learn how a non-blocking connect ended.
        if let Some(e) = self.0.take_error()? {
            return Err(e);
        }
        match self.0.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Connection tokens: handed out round-robin, so a token freed in one batch of readiness
/// events is not reused at once by a new connection that would get the stale events.
struct Tokens {
    range: Range<usize>,
    next: usize,
    by_token: BTreeMap<usize, ConnId>,
}

impl Tokens {
    fn allocate(&mut self, conn: ConnId) -> Option<Token> {
        let span = self.range.len();
        for _ in 0..span {
            let t = self.next;
            self.next = if t + 1 >= self.range.end {
                self.range.start
            } else {
                t + 1
            };
            if let std::collections::btree_map::Entry::Vacant(v) = self.by_token.entry(t) {
                v.insert(conn);
                return Some(Token(t));
            }
        }
        None
    }
}

struct MioIo {
    registry: Registry,
    udp: Option<UdpSocket>,
    tokens: Tokens,
    by_conn: BTreeMap<ConnId, Token>,
    events: VecDeque<NodeEvent>,
    backlog: Backlog,
    /// The DNS resolver's thread, with DNS trees.
    dns: Option<DnsWorker>,
    /// DNS answers to hand to the node at the next turn (a lookup that could not start).
    dns_now: VecDeque<Answer>,
}

impl MioIo {
    fn register_stream(&mut self, conn: ConnId, stream: &mut TcpStream) -> io::Result<()> {
        let token = self
            .tokens
            .allocate(conn)
            .ok_or_else(|| io::Error::other("out of connection tokens"))?;
        if let Err(e) =
            self.registry
                .register(stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            self.tokens.by_token.remove(&token.0);
            return Err(e);
        }
        self.by_conn.insert(conn, token);
        Ok(())
    }
}

impl Io for MioIo {
    type Stream = MioStream;

    fn send_datagram(&mut self, to: SocketAddr, data: &[u8]) -> io::Result<usize> {
        match &self.udp {
            Some(s) => s.send_to(data, to),
            None => Err(io::Error::other("no UDP socket")),
        }
    }

    fn recv_datagram(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.udp {
            Some(s) => s.recv_from(buf),
            None => Err(ErrorKind::WouldBlock.into()),
        }
    }

    fn dial(&mut self, conn: ConnId, addr: SocketAddr) -> io::Result<Option<MioStream>> {
        let mut stream = TcpStream::connect(addr)?;
        self.register_stream(conn, &mut stream)?;
        // Nagle would hold back small frames (Ping, Pong, short messages) for an ACK.
        let _ = stream.set_nodelay(true);
        Ok(Some(MioStream(stream)))
    }

    fn register(&mut self, conn: ConnId, stream: &mut MioStream) -> io::Result<()> {
        let _ = stream.0.set_nodelay(true);
        self.register_stream(conn, &mut stream.0)
    }

    fn deregister(&mut self, conn: ConnId, stream: &mut MioStream) {
        if let Some(t) = self.by_conn.remove(&conn) {
            self.tokens.by_token.remove(&t.0);
        }
        let _ = self.registry.deregister(&mut stream.0);
    }

    fn resolve_txt(&mut self, query: DnsQueryId, name: String) {
        let started = match &self.dns {
            Some(w) => w.resolve(query, name),
            None => Err((
                query,
                Err(devp2p_core::dnsdisc::ResolveError::Failed(
                    "this driver has no DNS resolver".into(),
                )),
            )),
        };
        if let Err(answer) = started {
            self.dns_now.push_back(answer);
        }
    }

    fn deliver(&mut self, event: NodeEvent) {
        self.backlog.bytes += backlog_bytes(&event);
        self.backlog.events += 1;
        self.events.push_back(event);
    }

    fn backlog(&self) -> Backlog {
        self.backlog
    }
}

/// One devp2p node in the caller's `mio::Poll`. See the [crate docs](crate) for the loop.
///
/// Two nodes in one `Poll`, each under its own tokens; the second dials the first, which
/// sends it one message once it is a peer:
///
/// ```
/// use std::time::{Duration, Instant};
/// use devp2p_core::node::NodeEvent;
/// use devp2p_core::session::Protocol;
/// use devp2p_mio::{Driver, DriverConfig};
/// use mio::{Events, Poll};
///
/// let mut poll = Poll::new()?;
/// let mut config = DriverConfig::default();
/// config.node.listen = "127.0.0.1:0".parse()?; // any free port
/// config.node.no_discovery = true; // peers are named here, not discovered
/// let chat = config.node.session.add_protocol(Protocol::new("chat", 1, 2));
/// let mut a = Driver::new(poll.registry(), 100..200, config.clone())?;
/// let mut b = Driver::new(poll.registry(), 200..300, config)?;
/// b.add_static(&a.local_enode())?;
///
/// let mut events = Events::with_capacity(256);
/// let give_up = Instant::now() + Duration::from_secs(5);
/// let mut received = None;
/// while received.is_none() && Instant::now() < give_up {
///     // Each node's timeout, and ours; a node's `None` leaves the wait to us.
///     let ours = give_up.saturating_duration_since(Instant::now());
///     let wait = a.timeout().into_iter().chain(b.timeout()).fold(ours, Duration::min);
///     poll.poll(&mut events, Some(wait))?;
///     for event in &events {
///         for node in [&mut a, &mut b] {
///             if node.owns(event.token()) {
///                 node.handle_event(event);
///             }
///         }
///     }
///     a.handle_timeout();
///     b.handle_timeout();
///     while let Some(event) = a.poll_event() {
///         if let NodeEvent::PeerAdded(peer) = event {
///             // Refused as QueueFull, it would be sent again on NodeEvent::Writable.
///             a.send(&peer.id, chat, 1, b"hello")?;
///         }
///     }
///     while let Some(event) = b.poll_event() {
///         if let NodeEvent::Message { peer, payload, .. } = event {
///             received = Some((peer, payload));
///         }
///     }
/// }
/// assert_eq!(received, Some((a.local_id(), b"hello".to_vec())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Driver {
    engine: Engine<MioStream>,
    io: MioIo,
    /// `None` once the shutdown has finished: the port is free again.
    listener: Option<TcpListener>,
    udp_token: Token,
    listener_token: Token,
    /// The DNS resolver's wake-up socket, with DNS trees.
    dns_token: Option<Token>,
    /// Datagrams may be waiting (the last read stopped at the budget, not at `WouldBlock`).
    udp_ready: bool,
    /// Connections may be waiting (an accept error paused accepting).
    accept_ready: bool,
    accept_paused_until: Option<std::time::Instant>,
    finished: Option<ShutdownReport>,
    listen: SocketAddr,
}

impl Driver {
    /// Starts a node whose sockets are registered with `registry` under the tokens in
    /// `tokens` (the first for UDP, the second for the listener, the rest for connections: at
    /// most `tokens.len() - 2` at once). With DNS discovery (`config.node.dns`) the third is
    /// the wake-up socket of the resolver thread, which resolves off this loop, and one
    /// connection fewer fits. Never panics: bad input is a [`StartError`].
    pub fn new(
        registry: &Registry,
        tokens: Range<usize>,
        config: DriverConfig,
    ) -> Result<Self, StartError> {
        let with_dns = !config.node.dns.is_empty();
        let needed = MIN_TOKENS + usize::from(with_dns);
        if tokens.len() < needed {
            return Err(StartError::Io(io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "token range {tokens:?} holds {} tokens; a driver needs at least {needed}",
                    tokens.len()
                ),
            )));
        }
        let registry = registry.try_clone().map_err(StartError::Io)?;
        let (engine, sockets) = Engine::<MioStream>::start(config, LogTarget::Mio)?;
        let listen = sockets.listener.local_addr().map_err(StartError::Io)?;
        let udp_token = Token(tokens.start);
        let listener_token = Token(tokens.start + 1);
        let mut listener = TcpListener::from_std(sockets.listener);
        registry
            .register(&mut listener, listener_token, Interest::READABLE)
            .map_err(StartError::Io)?;
        let udp = match sockets.udp {
            Some(s) => {
                let mut s = UdpSocket::from_std(s);
                registry
                    .register(&mut s, udp_token, Interest::READABLE | Interest::WRITABLE)
                    .map_err(StartError::Io)?;
                Some(s)
            }
            None => None,
        };
        let (dns, dns_token) = match sockets.dns {
            Some(resolver) => {
                let token = Token(tokens.start + 2);
                let mut worker = DnsWorker::start(resolver).map_err(StartError::DnsResolver)?;
                registry
                    .register(&mut worker.wake, token, Interest::READABLE)
                    .map_err(StartError::Io)?;
                (Some(worker), Some(token))
            }
            None => (None, None),
        };
        let first_conn = tokens.start + 2 + usize::from(dns_token.is_some());
        let conn_tokens = first_conn..tokens.end;
        let mut driver = Driver {
            engine,
            io: MioIo {
                registry,
                udp,
                tokens: Tokens {
                    next: conn_tokens.start,
                    range: conn_tokens,
                    by_token: BTreeMap::new(),
                },
                by_conn: BTreeMap::new(),
                events: VecDeque::new(),
                backlog: Backlog::default(),
                dns,
                dns_now: VecDeque::new(),
            },
            listener: Some(listener),
            udp_token,
            listener_token,
            dns_token,
            udp_ready: false,
            accept_ready: false,
            accept_paused_until: None,
            finished: None,
            listen,
        };
        driver.engine.flush(&mut driver.io);
        Ok(driver)
    }

    // ---- the loop --------------------------------------------------------------------------

    /// Whether `token` is one of this driver's.
    pub fn owns(&self, token: Token) -> bool {
        token == self.udp_token
            || token == self.listener_token
            || Some(token) == self.dns_token
            || self.io.tokens.range.contains(&token.0)
    }

    /// Handles one readiness event for one of this driver's tokens (others are ignored).
    pub fn handle_event(&mut self, event: &mio::event::Event) {
        let token = event.token();
        if self.finished.is_some() {
            return;
        }
        if token == self.udp_token {
            if event.is_writable() {
                self.engine.on_udp_writable(&mut self.io);
            }
            if event.is_readable() {
                self.udp_ready = true;
                self.read_datagrams();
            }
        } else if token == self.listener_token {
            self.accept_ready = true;
            self.accept();
        } else if Some(token) == self.dns_token {
            self.dns_answers();
        } else if let Some(&conn) = self.io.tokens.by_token.get(&token.0) {
            if event.is_writable() || event.is_error() {
                self.engine.on_writable(&mut self.io, conn);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.engine.on_readable(&mut self.io, conn);
            }
        }
        self.finish_if_drained();
    }

    /// Runs what is due: the node's deadlines, input that waited (read budget, application
    /// backlog), a paused listener. Call it after every `poll` (it is cheap when nothing is
    /// due) or at least when [`timeout`](Self::timeout) has passed.
    pub fn handle_timeout(&mut self) {
        if self.finished.is_some() {
            return;
        }
        self.engine.on_timeout(&mut self.io);
        self.engine.on_nat(&mut self.io, |_| {});
        self.dns_answers();
        self.engine.run_pending(&mut self.io);
        if self.udp_ready {
            self.read_datagrams();
        }
        if self.accept_ready {
            self.accept();
        }
        self.finish_if_drained();
    }

    /// How long `poll` may sleep before this driver needs [`handle_timeout`](Self::handle_timeout),
    /// from now: zero while input waits. `None` when nothing is scheduled: until one of the
    /// driver's sockets is ready it has nothing to do, so `poll` may block (`None`) or wait for
    /// whatever else the loop waits for. Ask again before every `poll`; each turn and each
    /// command can change it.
    ///
    /// `None` also once [`is_finished`](Self::is_finished): a loop that polls a finished
    /// driver with nothing else registered blocks for ever, so check `is_finished` first.
    ///
    /// With port mapping ([`NodeConfig::nat`](devp2p_core::node::NodeConfig::nat)), at most
    /// [`NAT_POLL_INTERVAL`] while a request waits for the gateway: the answer comes from a
    /// helper thread, which looks in at the next turn.
    pub fn timeout(&self) -> Option<Duration> {
        if self.finished.is_some() {
            return None;
        }
        let accept_waits = self.accept_ready && self.accept_paused_until.is_none();
        let dns_waits = !self.io.dns_now.is_empty();
        if self.udp_ready || accept_waits || dns_waits || self.engine.has_pending(&self.io) {
            return Some(Duration::ZERO);
        }
        let node = self
            .engine
            .next_deadline()
            .map(|d| self.engine.clock().until(d));
        let accept = self
            .accept_paused_until
            .map(|t| t.saturating_duration_since(std::time::Instant::now()));
        // The gateway's answer comes from the NAT thread, which cannot wake this Poll.
        let nat = self.engine.nat_busy().then_some(NAT_POLL_INTERVAL);
        [node, accept, nat].into_iter().flatten().min()
    }

    /// The next event for the application. Take them all after each turn: while 16 MiB of
    /// messages wait here the driver stops reading its connections.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        let e = self.io.events.pop_front()?;
        self.io.backlog.bytes -= backlog_bytes(&e);
        self.io.backlog.events -= 1;
        Some(e)
    }

    // ---- commands --------------------------------------------------------------------------

    /// Sends message `code` of `protocol` to `peer` (`code` counts from the protocol's first
    /// message; see [`ProtocolId`]). The message is queued at once or refused, never held:
    /// [`SendError::QueueFull`] inside [`SendFailure::Refused`] means the peer's queue has no
    /// room now, and a [`NodeEvent::Writable`] for the peer follows once it has: send again
    /// then. [`SendError::TooLarge`] means it can never be sent (every payload up to
    /// [`MAX_MESSAGE_SIZE`](devp2p_core::rlpx::MAX_MESSAGE_SIZE) bytes can). Queued bytes are
    /// written as the loop turns; what is still queued when the connection drops is lost.
    ///
    /// # Errors
    ///
    /// - [`SendFailure::Refused`] with [`SendError::QueueFull`]: keep the message and send
    ///   it again on the `Writable` event (one per refusal). A peer that stops reading is
    ///   disconnected by its write timeout, and its `PeerRemoved` ends the wait.
    /// - [`SendFailure::Refused`] with [`SendError::NotEstablished`]: `peer` is not connected.
    /// - [`SendFailure::Refused`] with another [`SendError`]: the protocol or code is wrong
    ///   for this peer, or the message is too large; sending it again gets the same answer.
    /// - [`SendFailure::Stopped`]: the driver has finished its shutdown.
    pub fn send(
        &mut self,
        peer: &NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
    ) -> Result<(), SendFailure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| {
                n.send(now, peer, protocol, code, payload)
            })
            .map_err(SendFailure::Refused)
    }

    /// Disconnects `peer` with `reason`.
    pub fn disconnect(&mut self, peer: &NodeId, reason: DisconnectReason) {
        self.engine
            .command(&mut self.io, |n, now| n.disconnect(now, peer, reason))
    }

    /// Adds a static peer: kept connected, redialled after drops. Refused when the node can
    /// never dial it; a dial that fails later is a [`NodeEvent::ConnectionFailed`].
    pub fn add_static(&mut self, node: &Enode) -> Result<(), AddStaticError> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.add_static(now, node))
            .map_err(AddStaticError::Undialable)
    }

    /// Removes a static peer (an existing connection stays).
    pub fn remove_static(&mut self, id: &NodeId) {
        self.engine
            .command(&mut self.io, |n, _| n.remove_static(id))
    }

    /// Trusts `id`: admitted past the peer limits.
    pub fn add_trusted(&mut self, id: &NodeId) {
        self.engine.command(&mut self.io, |n, _| n.add_trusted(*id))
    }

    /// Stops trusting `id`.
    pub fn remove_trusted(&mut self, id: &NodeId) {
        self.engine
            .command(&mut self.io, |n, _| n.remove_trusted(id))
    }

    /// Starts a discv4 lookup for the nodes closest to `target`; the result arrives as a
    /// [`NodeEvent::Discovery`] holding a `LookupFinished` with the returned id.
    pub fn lookup(&mut self, target: &NodePublicKey) -> Result<LookupId, LookupError> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.lookup(now, target))
            .ok_or_else(|| LookupError::of(self.engine.node(), DiscoveryVersion::V4))
    }

    /// Starts a discv4 lookup for a random target (a crawler's walk); reported like
    /// [`lookup`](Self::lookup).
    pub fn lookup_random(&mut self) -> Result<LookupId, LookupError> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.lookup_random(now))
            .ok_or_else(|| LookupError::of(self.engine.node(), DiscoveryVersion::V4))
    }

    /// Starts a discv5 lookup for the nodes closest to the node id `target`; the result
    /// arrives as a [`NodeEvent::Discv5`] holding a `LookupFinished` with the returned id
    /// (discv5 numbers its lookups apart from discv4).
    pub fn lookup_v5(&mut self, target: &NodeId) -> Result<LookupId, LookupError> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.lookup_v5(now, target))
            .ok_or_else(|| LookupError::of(self.engine.node(), DiscoveryVersion::V5))
    }

    /// Starts a discv5 lookup for a random target; reported like
    /// [`lookup_v5`](Self::lookup_v5).
    pub fn lookup_random_v5(&mut self) -> Result<LookupId, LookupError> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.lookup_random_v5(now))
            .ok_or_else(|| LookupError::of(self.engine.node(), DiscoveryVersion::V5))
    }

    /// Sends a discv5 PING to the node of `to` (at the UDP endpoint its record advertises,
    /// handshaking first if need be); the PONG (the node's record seq, and our address as
    /// it saw us), or why none came, arrives as a [`NodeEvent::Discv5`] holding a
    /// `PingResponse` with the returned id.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use devp2p_core::discv5::discovery::Event as V5Event;
    /// use devp2p_core::node::NodeEvent;
    /// use devp2p_mio::{DriverConfig, Runner};
    ///
    /// let mut config = DriverConfig::default();
    /// config.node.listen = "127.0.0.1:0".parse()?;
    /// config.node.discv4 = false; // discv5 alone
    /// let mut runner = Runner::new()?;
    /// let a = runner.add(config.clone())?;
    /// let b = runner.add(config)?;
    /// let b_record = runner.driver(b).unwrap().local_enr().unwrap();
    /// let ping = runner.driver_mut(a).unwrap().ping_v5(&b_record)?;
    ///
    /// let mut pong = None;
    /// let give_up = Instant::now() + Duration::from_secs(5);
    /// while pong.is_none() && Instant::now() < give_up {
    ///     runner.turn(Some(Duration::from_millis(20)), &mut |_, _, event| {
    ///         if let NodeEvent::Discv5(e) = event {
    ///             if let V5Event::PingResponse { id, result, .. } = *e {
    ///                 if id == ping {
    ///                     pong = Some(result);
    ///                 }
    ///             }
    ///         }
    ///     })?;
    /// }
    /// let pong = pong.expect("the PING ended")?;
    /// assert_eq!(pong.enr_seq, b_record.seq());
    /// assert_eq!(pong.recipient(), Some(runner.driver(a).unwrap().listen_addr()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ping_v5(&mut self, to: &Enr) -> Result<RequestId, Discv5Failure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.ping_v5(now, to))
            .map_err(Discv5Failure::Refused)
    }

    /// Sends a discv5 FINDNODE for the log `distances` (0 for the node's own record) to the
    /// node of `to`; every NODES message of the answer put together (the verified records,
    /// and how many messages came of how many announced), or why none came, arrives as a
    /// [`NodeEvent::Discv5`] holding a `FindNodeResponse` with the returned id. The records
    /// are the caller's: they do not enter the table.
    pub fn find_node_v5(
        &mut self,
        to: &Enr,
        distances: &[u64],
    ) -> Result<RequestId, Discv5Failure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.find_node_v5(now, to, distances))
            .map_err(Discv5Failure::Refused)
    }

    /// Replaces our record (discv4 and discv5 hand it out from now on: handshakes, PINGs and
    /// PONGs carry its seq, `FINDNODE [0]` and ENRRequest return it). It must be signed with
    /// our key and carry a higher seq than [`local_enr`](Self::local_enr)'s, or it is refused
    /// saying which: build it from the current one.
    ///
    /// ```
    /// use devp2p_core::NodeSecretKey;
    /// use devp2p_mio::{DriverConfig, KeySource, Runner};
    /// use rand_chacha::ChaCha20Rng;
    /// use rand_core::SeedableRng;
    ///
    /// // A key of our own (a real node keeps it, in its key file say), to sign with.
    /// let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(7));
    /// let mut config = DriverConfig::default();
    /// config.node.listen = "127.0.0.1:0".parse()?;
    /// config.key = KeySource::Secret(key.clone());
    /// let mut runner = Runner::new()?;
    /// let i = runner.add(config)?;
    /// let node = runner.driver_mut(i).unwrap();
    ///
    /// let current = node.local_enr().unwrap();
    /// let next = current
    ///     .to_builder()
    ///     .seq(current.seq() + 1)
    ///     .raw(b"app", b"\x83v02")? // an entry of our own, as an RLP string
    ///     .sign(&key)?;
    /// node.set_local_record(&next)?;
    /// assert_eq!(node.local_enr(), Some(next.clone()));
    /// assert!(node.set_local_record(&next).is_err(), "not newer than itself");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_local_record(&mut self, record: &Enr) -> Result<(), RecordFailure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, _| n.set_local_record(record.clone()))
            .map_err(RecordFailure::Refused)
    }

    /// Registers the discv5 TALKREQ protocol `name`: its requests arrive as
    /// [`NodeEvent::Discv5`] holding a `TalkRequest`, to answer with
    /// [`answer_talk`](Self::answer_talk); other protocols get an empty TALKRESP.
    pub fn register_talk_protocol(&mut self, name: &[u8]) -> Result<(), Discv5Failure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, _| n.register_talk_protocol(name))
            .map_err(Discv5Failure::Refused)
    }

    /// Unregisters the TALKREQ protocol `name`.
    pub fn unregister_talk_protocol(&mut self, name: &[u8]) -> Result<(), Discv5Failure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, _| n.unregister_talk_protocol(name))
            .map_err(Discv5Failure::Refused)
    }

    /// Sends a discv5 TALKREQ of `protocol` to the node of `to`; the answer (or why none
    /// came) arrives as a [`NodeEvent::Discv5`] holding a `TalkResponse` with the returned
    /// id.
    pub fn talk_request(
        &mut self,
        to: &Enr,
        protocol: &[u8],
        request: &[u8],
    ) -> Result<RequestId, Discv5Failure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| {
                n.talk_request(now, to, protocol, request)
            })
            .map_err(Discv5Failure::Refused)
    }

    /// Answers the TALKREQ `id` (from a `TalkRequest` event) with `response`, within
    /// [`TALK_ANSWER_TIMEOUT`](devp2p_core::discv5::discovery::TALK_ANSWER_TIMEOUT).
    pub fn answer_talk(&mut self, id: TalkRequestId, response: &[u8]) -> Result<(), Discv5Failure> {
        self.running()?;
        self.engine
            .command(&mut self.io, |n, now| n.answer_talk(now, id, response))
            .map_err(Discv5Failure::Refused)
    }

    // ---- getters ---------------------------------------------------------------------------

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.engine.node().peers()
    }

    /// The nodes in the discv4 table (empty without discv4).
    pub fn table(&self) -> Vec<DiscNode> {
        self.engine.table()
    }

    /// The nodes in the discv5 table, each with its record (empty without discv5).
    pub fn table_v5(&self) -> Vec<DiscNode> {
        self.engine.table_v5()
    }

    /// The node's counters and the driver's.
    pub fn stats(&self) -> Stats {
        self.engine.all_stats()
    }

    /// The node database as it would be saved now.
    pub fn db_snapshot(&self) -> NodeDbSnapshot {
        self.engine.db_snapshot()
    }

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.engine.node().local_id()
    }

    /// Our enode URL (with the port actually bound).
    pub fn local_enode(&self) -> Enode {
        self.engine.node().local_enode()
    }

    /// Our signed record (`None` without discovery).
    pub fn local_enr(&self) -> Option<Enr> {
        self.engine.node().local_enr().cloned()
    }

    /// The address TCP and UDP are bound to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    // ---- shutdown --------------------------------------------------------------------------

    /// Starts a graceful shutdown: Disconnect(ClientQuitting) to every peer, no new
    /// connections. Keep driving until [`is_finished`](Self::is_finished), then
    /// [`shutdown_report`](Self::shutdown_report) says what happened (the tokio driver's
    /// `shutdown` waits for the same report).
    pub fn shutdown(&mut self) {
        self.engine.begin_shutdown(&mut self.io);
        self.finish_if_drained();
    }

    /// Whether the shutdown is complete: every connection closed (or the 3 s timeout passed),
    /// sockets deregistered, node database saved.
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// What the shutdown did, once finished.
    pub fn shutdown_report(&self) -> Option<&ShutdownReport> {
        self.finished.as_ref()
    }

    /// Checks whether a shutdown has drained, and completes it if so. Called by the loop
    /// methods; exposed for loops that drive several drivers.
    pub fn finish_if_drained(&mut self) -> bool {
        if self.finished.is_none() && self.engine.is_drained() {
            let report = self.engine.finish(&mut self.io);
            // Both sockets are closed, not only deregistered: a finished driver kept by its
            // loop (the Runner keeps them) neither holds its ports nor lets the kernel accept
            // connections nobody will serve.
            if let Some(mut l) = self.listener.take() {
                let _ = self.io.registry.deregister(&mut l);
            }
            if let Some(u) = &mut self.io.udp {
                let _ = self.io.registry.deregister(u);
            }
            self.io.udp = None;
            // The resolver thread ends once its request channel closes.
            if let Some(mut w) = self.io.dns.take() {
                let _ = self.io.registry.deregister(&mut w.wake);
            }
            tracing::info!(forced_closes = report.forced_closes, db = ?report.db_saved, "node stopped");
            self.finished = Some(report);
        }
        self.finished.is_some()
    }

    // ---- internals -------------------------------------------------------------------------

    fn running(&self) -> Result<(), Stopped> {
        if self.finished.is_some() {
            Err(Stopped)
        } else {
            Ok(())
        }
    }

    /// Hands the DNS answers that arrived (and those given at once) to the node.
    fn dns_answers(&mut self) {
        let mut answers: Vec<Answer> = self.io.dns_now.drain(..).collect();
        if let Some(w) = &self.io.dns {
            answers.extend(w.take_answers());
        }
        for (query, answer) in answers {
            self.engine.on_dns_answer(&mut self.io, query, answer);
        }
    }

    fn read_datagrams(&mut self) {
        self.udp_ready = self.engine.on_udp_readable(&mut self.io);
    }

    fn accept(&mut self) {
        if let Some(t) = self.accept_paused_until {
            if std::time::Instant::now() < t {
                return;
            }
            self.accept_paused_until = None;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, addr)) => {
                    self.engine
                        .on_accepted(&mut self.io, MioStream(stream), addr)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.accept_ready = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed; pausing accepts");
                    self.accept_paused_until =
                        Some(std::time::Instant::now() + ACCEPT_ERROR_BACKOFF);
                    return;
                }
            }
        }
    }
}
