//! A devp2p session: one TCP connection from its first handshake byte to its close
//! ([PROTOCOL.md §4–§6](crate::spec::protocol), timeouts [§9.8](crate::spec::protocol)).
//!
//! A [`Session`] owns the RLPx [`Handshake`], then the
//! [`FrameCodec`] and the base protocol: Hello and capability
//! negotiation, Ping/Pong keepalive, Disconnect, and the handshake, read and write timeouts.
//!
//! # Driving a session
//!
//! The driver owns the socket and calls in; the session never blocks and never reads a clock.
//! After every input, drain the outputs in this order:
//! 1. [`outbound`](Session::outbound): bytes to write; report what was written with
//!    [`handle_written`](Session::handle_written).
//! 2. [`poll_event`](Session::poll_event) until `None`.
//! 3. [`is_finished`](Session::is_finished): close the socket and drop the session.
//! 4. [`poll_timeout`](Session::poll_timeout): call [`handle_timeout`](Session::handle_timeout)
//!    then.
//!
//! Inputs: [`handle_read`](Session::handle_read) with bytes read (it returns how many it
//! took: when the application is slow to take events it stops taking bytes, so the driver
//! stops reading), [`handle_timeout`](Session::handle_timeout),
//! [`handle_eof`](Session::handle_eof) when the peer closed the connection, and the commands
//! [`send`](Session::send) and [`disconnect`](Session::disconnect). `now` must never go
//! backwards.
//!
//! Failures caused by the peer never come back as `Err`: the session tells the peer why with a
//! Disconnect where the protocol allows, and reports [`SessionEvent::Closed`] with the reason
//! and the error.

mod capability;
mod disconnect;
mod hello;
mod queue;
mod types;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand_core::CryptoRng;

pub use capability::{
    match_protocols, Protocol, ProtocolId, SharedCapability, BASE_PROTOCOL_LENGTH,
};
pub use disconnect::{DisconnectDecodeError, DisconnectReason};
pub use hello::{Capability, Hello, HelloError, MAX_HELLO_SIZE, P2P_VERSION};
pub use types::{
    Closed, Established, SendError, SessionError, SessionEvent, Side, SizeLimit, TimeoutKind,
};

use crate::identity::{NodePublicKey, NodeSecretKey};
use crate::rlpx::{
    FrameCodec, FrameError, Handshake, Secrets, MAX_FRAME_SIZE, MAX_FRAME_WIRE_LEN,
    MAX_UNCOMPRESSED_SIZE,
};
use crate::time::Instant;
use queue::OutboundQueue;

/// Deadline for the whole RLPx auth/ack exchange (geth `handshakeTimeout`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Every message must be read within this of the previous one (geth `frameReadTimeout`); it
/// also bounds the wait for the peer's Hello.
pub const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Queued bytes must start moving within this (geth `frameWriteTimeout`).
pub const FRAME_WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often we Ping an established peer (geth `pingInterval`).
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a connection is kept after we send a Disconnect (geth `discWriteTimeout` bounds
/// the write alone). It ends sooner when the peer closes its end, which it does once it has
/// read the Disconnect; until then whatever it sends is read and discarded. Closing at once
/// instead, as geth does, resets the connection if the peer's bytes arrive after our close
/// (a Pong crossing the Disconnect), and a peer that is writing then may never read the
/// reason: ethereumjs drops the connection on the failed write (tests/INTEROP.md).
pub const DISCONNECT_LINGER: Duration = Duration::from_secs(1);
/// Bytes at the end of the outbound queue that only the base protocol may fill (Ping, Pong
/// and Disconnect frames are 64 bytes each), so a queue the application filled with its own
/// messages never ends the session over a Pong it owes the peer.
pub const CONTROL_RESERVE: usize = 1024;
/// Default cap on bytes queued for one peer: one maximal frame, and the control reserve.
pub const DEFAULT_MAX_OUTBOUND_QUEUE: usize = MAX_FRAME_WIRE_LEN + CONTROL_RESERVE;
/// Default cap on received message bytes waiting in [`Session::poll_event`] before
/// [`Session::handle_read`] stops taking input.
pub const DEFAULT_MAX_PENDING_INBOUND: usize = 1024 * 1024;

/// Base protocol message ids ([PROTOCOL.md §6.1](crate::spec::protocol)).
const HELLO: u64 = 0x00;
const DISCONNECT: u64 = 0x01;
const PING: u64 = 0x02;
/// Ping and Pong carry an empty list.
const EMPTY_LIST: [u8; 1] = [0xc0];
const PONG: u64 = 0x03;

/// Settings shared by all sessions of a node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Our client name, sent in Hello.
    pub client_id: String,
    /// The sub-protocols we speak.
    pub protocols: Vec<Protocol>,
    /// The `listenPort` we put in Hello (legacy; geth sends 0).
    pub listen_port: u64,
    /// Largest frame accepted from the peer.
    pub max_frame_size: usize,
    /// Largest message (after decompression) accepted from the peer.
    pub max_message_size: usize,
    /// Cap on bytes queued for the peer; see [`DEFAULT_MAX_OUTBOUND_QUEUE`].
    pub max_outbound_queue: usize,
    /// Cap on received bytes waiting to be taken; see [`DEFAULT_MAX_PENDING_INBOUND`].
    pub max_pending_inbound: usize,
    /// See [`HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// See [`FRAME_READ_TIMEOUT`].
    pub read_timeout: Duration,
    /// See [`FRAME_WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// See [`PING_INTERVAL`].
    pub ping_interval: Duration,
    /// See [`DISCONNECT_LINGER`].
    pub disconnect_linger: Duration,
    /// When set, a session stops after the RLPx handshake, reports [`SessionEvent::Authenticated`],
    /// and sends its Hello only once [`Session::admit`] is called (or a Disconnect, uncompressed,
    /// on [`Session::disconnect`]). This is where a node applies its post-handshake checks
    /// ([PROTOCOL.md §9.4](crate::spec::protocol)). Off by default.
    pub manual_admission: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            client_id: concat!("devp2p-sansio/v", env!("CARGO_PKG_VERSION")).to_string(),
            protocols: Vec::new(),
            listen_port: 0,
            max_frame_size: MAX_FRAME_SIZE,
            max_message_size: MAX_UNCOMPRESSED_SIZE,
            max_outbound_queue: DEFAULT_MAX_OUTBOUND_QUEUE,
            max_pending_inbound: DEFAULT_MAX_PENDING_INBOUND,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            read_timeout: FRAME_READ_TIMEOUT,
            write_timeout: FRAME_WRITE_TIMEOUT,
            ping_interval: PING_INTERVAL,
            disconnect_linger: DISCONNECT_LINGER,
            manual_admission: false,
        }
    }
}

impl SessionConfig {
    /// Appends `protocol` to [`protocols`](Self::protocols) and returns its id, which
    /// messages of the protocol are sent with and reported under.
    pub fn add_protocol(&mut self, protocol: Protocol) -> ProtocolId {
        self.protocols.push(protocol);
        ProtocolId::new(self.protocols.len() - 1)
    }

    /// The id of protocol `name` at `version`, if it is in [`protocols`](Self::protocols).
    pub fn protocol_id(&self, name: &str, version: u64) -> Option<ProtocolId> {
        self.protocols
            .iter()
            .position(|p| p.name == name && p.version == version)
            .map(ProtocolId::new)
    }
}

enum Phase {
    /// RLPx auth/ack in progress.
    Handshake(Box<Handshake>),
    /// Handshake done; waiting for [`Session::admit`] (manual admission only).
    Authenticated {
        codec: Box<FrameCodec>,
        remote: NodePublicKey,
    },
    /// Our Hello is sent; waiting for theirs.
    Hello {
        codec: Box<FrameCodec>,
        remote: NodePublicKey,
    },
    /// Exchanging messages.
    Active {
        codec: Box<FrameCodec>,
        remote: NodePublicKey,
        caps: Vec<SharedCapability>,
    },
    /// We sent a Disconnect; we wait for it to drain and for the peer to close (see
    /// [`DISCONNECT_LINGER`]).
    Closing { linger_until: Instant },
    /// Over: the driver should close the connection.
    Closed,
}

/// One devp2p connection, either role. See the [module docs](self) for the driving contract.
///
/// Two sessions joined by hand, the bytes one writes handed to the other: the handshake,
/// the Hello exchange, one message and a Disconnect. A driver does the same with a socket.
///
/// ```
/// use std::sync::Arc;
/// use devp2p_core::session::{DisconnectReason, Protocol, Session, SessionConfig, SessionEvent};
/// use devp2p_core::{Instant, NodeSecretKey};
/// use rand_core::SeedableRng;
///
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
/// let (alice, bob) = (NodeSecretKey::generate(&mut rng), NodeSecretKey::generate(&mut rng));
/// let mut config = SessionConfig::default();
/// let chat = config.add_protocol(Protocol::new("chat", 1, 2));
/// let config = Arc::new(config);
/// let now = Instant::ZERO;
/// // The dialler must know whom it dials; the other side learns it from the handshake.
/// let mut a = Session::initiator(config.clone(), &alice, bob.public(), now, &mut rng);
/// let mut b = Session::recipient(config, &bob, now, &mut rng);
///
/// // Moves everything `from` has to write to `to`, as a socket would.
/// fn carry(from: &mut Session, to: &mut Session, now: Instant) {
///     while !from.outbound().is_empty() {
///         let bytes = from.outbound().to_vec();
///         from.handle_written(now, bytes.len());
///         assert_eq!(to.handle_read(now, &bytes), bytes.len());
///     }
/// }
///
/// let mut received = None;
/// for _ in 0..4 {
///     carry(&mut a, &mut b, now);
///     carry(&mut b, &mut a, now);
///     while let Some(event) = a.poll_event() {
///         if let SessionEvent::Established(peer) = event {
///             assert_eq!(&peer.remote, bob.public());
///             a.send(now, chat, 1, b"hello")?; // code 1 of "chat", whatever its wire id
///         }
///     }
///     while let Some(event) = b.poll_event() {
///         if let SessionEvent::Message { protocol, code, payload } = event {
///             received = Some((protocol, code, payload));
///         }
///     }
/// }
/// assert_eq!(received, Some((chat, 1, b"hello".to_vec())));
///
/// a.disconnect(now, DisconnectReason::ClientQuitting);
/// carry(&mut a, &mut b, now);
/// let Some(SessionEvent::Closed(closed)) = b.poll_event() else { panic!("not closed") };
/// assert_eq!(closed.reason, Some(DisconnectReason::ClientQuitting));
/// // `b` is done: its driver closes the socket. `a` waits for that close (1 s at most).
/// assert!(b.is_finished() && !a.is_finished());
/// # Ok::<(), devp2p_core::session::SendError>(())
/// ```
pub struct Session {
    config: Arc<SessionConfig>,
    local_hello: Vec<u8>,
    initiator: bool,
    phase: Phase,
    out: OutboundQueue,
    events: VecDeque<SessionEvent>,
    pending_inbound: usize,
    now: Instant,
    /// End of the handshake or Hello wait, by phase.
    phase_deadline: Instant,
    /// A Disconnect asked for after our Hello went out and before the peer's came: sent once
    /// the peer's Hello says whether to compress it (see [`Session::disconnect`]).
    deferred_disconnect: Option<DisconnectReason>,
    last_read: Instant,
    next_ping: Instant,
    /// When the queued bytes last moved (or started waiting); `None` when nothing is queued.
    write_progress: Option<Instant>,
    /// After a [`SendError::QueueFull`]: the queue room that message needed. Once writes
    /// free that much, [`SessionEvent::Writable`] says so and this clears.
    writable_at: Option<usize>,
    bytes_in: u64,
    bytes_out: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("initiator", &self.initiator)
            .field("established", &self.is_established())
            .field("finished", &self.is_finished())
            .field("queued", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session we dialled to `remote`; the auth message is queued at once.
    pub fn initiator<R: CryptoRng + ?Sized>(
        config: Arc<SessionConfig>,
        local: &NodeSecretKey,
        remote: &NodePublicKey,
        now: Instant,
        rng: &mut R,
    ) -> Self {
        let mut hs = Handshake::initiator(local, remote, rng);
        let auth = hs.take_output();
        let mut s = Self::new(config, local, true, Phase::Handshake(Box::new(hs)), now);
        s.queue_raw(&auth);
        s
    }

    /// A session for a connection the peer opened.
    pub fn recipient<R: CryptoRng + ?Sized>(
        config: Arc<SessionConfig>,
        local: &NodeSecretKey,
        now: Instant,
        rng: &mut R,
    ) -> Self {
        let hs = Handshake::recipient(local, rng);
        Self::new(config, local, false, Phase::Handshake(Box::new(hs)), now)
    }

    /// A session whose RLPx handshake happened elsewhere (a proxy, a test, a fuzzer that needs
    /// to reach Hello and multiplexing without breaking MACs): it starts at the Hello
    /// exchange with the given `secrets` for the peer `remote`.
    pub fn from_secrets(
        config: Arc<SessionConfig>,
        local: &NodeSecretKey,
        remote: NodePublicKey,
        secrets: Secrets,
        initiator: bool,
        now: Instant,
    ) -> Self {
        // `enter_framing` replaces the placeholder phase at once.
        let mut s = Self::new(config, local, initiator, Phase::Closed, now);
        s.enter_framing(secrets, remote);
        s
    }

    fn new(
        config: Arc<SessionConfig>,
        local: &NodeSecretKey,
        initiator: bool,
        phase: Phase,
        now: Instant,
    ) -> Self {
        let mut caps: Vec<Capability> = config.protocols.iter().map(Protocol::capability).collect();
        caps.sort();
        caps.dedup();
        let local_hello = Hello {
            protocol_version: P2P_VERSION,
            client_id: config.client_id.clone(),
            capabilities: caps,
            listen_port: config.listen_port,
            id: local.public().raw().to_vec(),
        }
        .encode();
        Self {
            out: OutboundQueue::new(config.max_outbound_queue),
            phase_deadline: now + config.handshake_timeout,
            deferred_disconnect: None,
            config,
            local_hello,
            initiator,
            phase,
            events: VecDeque::new(),
            pending_inbound: 0,
            now,
            last_read: now,
            next_ping: Instant::MAX,
            write_progress: None,
            writable_at: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    // ---- getters ---------------------------------------------------------------------------

    /// Whether we opened the connection.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Whether the Hello exchange completed and the session is not closing.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Active { .. })
    }

    /// Whether the driver should close the connection and drop the session.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The peer's public key, once known (at once for the initiator).
    pub fn remote(&self) -> Option<&NodePublicKey> {
        match &self.phase {
            Phase::Authenticated { remote, .. }
            | Phase::Hello { remote, .. }
            | Phase::Active { remote, .. } => Some(remote),
            _ => None,
        }
    }

    /// The negotiated capabilities, once established.
    pub fn capabilities(&self) -> &[SharedCapability] {
        match &self.phase {
            Phase::Active { caps, .. } => caps,
            _ => &[],
        }
    }

    /// Bytes read from and written to the connection so far.
    pub fn bytes_in_out(&self) -> (u64, u64) {
        (self.bytes_in, self.bytes_out)
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.out.len()
    }

    /// Heap bytes held in buffers (outbound queue, event queue, our Hello until sent, the
    /// codec's frame and compression buffers), beyond the fixed state of the session and its
    /// codec: for tests that check an idle session holds none.
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        let codec = match &self.phase {
            Phase::Authenticated { codec, .. }
            | Phase::Hello { codec, .. }
            | Phase::Active { codec, .. } => codec.buffer_capacity(),
            _ => 0,
        };
        self.out.capacity()
            + self.events.capacity() * std::mem::size_of::<SessionEvent>()
            + self.local_hello.capacity()
            + codec
    }

    // ---- outputs ---------------------------------------------------------------------------

    /// The bytes to write next (possibly empty).
    pub fn outbound(&self) -> &[u8] {
        self.out.front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        let Some(ev) = self.events.pop_front() else {
            // Drained: the next event allocates again, an idle session holds no queue.
            if self.events.capacity() > 0 {
                self.events = VecDeque::new();
            }
            return None;
        };
        if let SessionEvent::Message { payload, .. } = &ev {
            self.pending_inbound -= payload.len();
        }
        Some(ev)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next; `None` once
    /// finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let write = self.write_progress.map(|t| t + self.config.write_timeout);
        let phase = match &self.phase {
            Phase::Handshake(_) | Phase::Authenticated { .. } | Phase::Hello { .. } => {
                Some(self.phase_deadline)
            }
            Phase::Active { .. } => Some(
                self.next_ping
                    .min(self.last_read + self.config.read_timeout),
            ),
            Phase::Closing { linger_until } => Some(*linger_until),
            Phase::Closed => return None,
        };
        match (phase, write) {
            (Some(p), Some(w)) => Some(p.min(w)),
            (p, w) => p.or(w),
        }
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// Takes bytes read from the connection; returns how many were consumed. Fewer than given
    /// means the application has not taken enough events yet (or the session finished):
    /// offer the rest again after draining events.
    pub fn handle_read(&mut self, now: Instant, data: &[u8]) -> usize {
        self.tick(now);
        let mut used = 0;
        while used < data.len() {
            if self.pending_inbound >= self.config.max_pending_inbound {
                break;
            }
            let n = match &mut self.phase {
                // Until admitted, bytes wait with the driver.
                Phase::Closed | Phase::Authenticated { .. } => break,
                // We sent a Disconnect: whatever the peer still sends is moot.
                Phase::Closing { .. } => data.len() - used,
                Phase::Handshake(_) => self.read_handshake(&data[used..]),
                Phase::Hello { .. } | Phase::Active { .. } => self.read_frames(&data[used..]),
            };
            if n == 0 {
                break;
            }
            used += n;
        }
        self.bytes_in += used as u64;
        // Between reads nothing borrows the frame buffers: an idle connection keeps none.
        if let Phase::Hello { codec, .. } | Phase::Active { codec, .. } = &mut self.phase {
            codec.release_read_buffers();
        }
        used
    }

    /// Reports that the driver wrote `n` bytes from [`outbound`](Self::outbound).
    pub fn handle_written(&mut self, now: Instant, n: usize) {
        self.tick(now);
        let n = self.out.advance(n);
        self.bytes_out += n as u64;
        if self.out.is_empty() {
            // A drained Disconnect still waits for the peer to close (DISCONNECT_LINGER).
            self.write_progress = None;
            // The queue gave its buffer back as it drained; the codec's go too.
            if let Phase::Active { codec, .. } = &mut self.phase {
                codec.release_write_buffers();
            }
        } else if n > 0 {
            self.write_progress = Some(self.now);
        }
        if let Some(needed) = self.writable_at {
            if self.out.has_room(needed, CONTROL_RESERVE) && self.is_established() {
                self.writable_at = None;
                self.events.push_back(SessionEvent::Writable);
            }
        }
    }

    /// Reports that the peer closed the connection (end of stream or a read/write error).
    pub fn handle_eof(&mut self, now: Instant) {
        self.tick(now);
        match self.phase {
            Phase::Closed => {}
            Phase::Closing { .. } => {
                self.out.clear();
                self.phase = Phase::Closed;
            }
            _ => self.close(Side::Remote, None, Some(SessionError::ConnectionClosed)),
        }
    }

    /// Runs whatever deadlines have passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let now = self.now;
        if let Some(since) = self.write_progress {
            if now >= since + self.config.write_timeout && !matches!(self.phase, Phase::Closed) {
                // The peer is not reading: a Disconnect could not reach it either.
                self.out.clear();
                self.write_progress = None;
                if matches!(self.phase, Phase::Closing { .. }) {
                    self.phase = Phase::Closed;
                } else {
                    self.close(
                        Side::Local,
                        None,
                        Some(SessionError::Timeout(TimeoutKind::Write)),
                    );
                }
                return;
            }
        }
        match &self.phase {
            Phase::Handshake(_) | Phase::Authenticated { .. } if now >= self.phase_deadline => self
                .close(
                    Side::Local,
                    None,
                    Some(SessionError::Timeout(TimeoutKind::Handshake)),
                ),
            Phase::Hello { .. } if now >= self.phase_deadline => {
                match self.deferred_disconnect.take() {
                    Some(r) => self.close(Side::Local, Some(r), None),
                    None => self.close(
                        Side::Local,
                        Some(DisconnectReason::PingTimeout),
                        Some(SessionError::Timeout(TimeoutKind::Hello)),
                    ),
                }
            }
            Phase::Active { .. } => {
                if now >= self.last_read + self.config.read_timeout {
                    self.close(
                        Side::Local,
                        Some(DisconnectReason::PingTimeout),
                        Some(SessionError::Timeout(TimeoutKind::Read)),
                    );
                } else if now >= self.next_ping {
                    self.next_ping = now + self.config.ping_interval;
                    self.send_base(PING);
                }
            }
            Phase::Closing { linger_until } if now >= *linger_until => {
                self.out.clear();
                self.write_progress = None;
                self.phase = Phase::Closed;
            }
            _ => {}
        }
    }

    // ---- commands --------------------------------------------------------------------------

    /// Sends message `code` of `protocol`: `code` counts from the protocol's first message
    /// (see [`ProtocolId`]).
    ///
    /// A payload up to [`MAX_MESSAGE_SIZE`](crate::rlpx::MAX_MESSAGE_SIZE) always fits the
    /// message and frame limits; [`SendError::TooLarge`] refuses, at once, what can never be
    /// sent, and [`SendError::QueueFull`] what has to wait for room (a
    /// [`SessionEvent::Writable`] follows once there is).
    pub fn send(
        &mut self,
        now: Instant,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.tick(now);
        let Phase::Active { codec, caps, .. } = &mut self.phase else {
            return Err(SendError::NotEstablished);
        };
        let cap = caps
            .iter()
            .find(|c| c.protocol == protocol)
            .ok_or(SendError::NotNegotiated { protocol })?;
        if code >= cap.length {
            return Err(SendError::CodeOutOfRange {
                code,
                length: cap.length,
            });
        }
        let id = cap.offset + code;
        let limit = self
            .config
            .max_outbound_queue
            .saturating_sub(CONTROL_RESERVE);
        let needed = codec.prepare(id, payload).map_err(|e| match e {
            FrameError::MessageTooLarge { size, limit } => SendError::TooLarge {
                size,
                limit,
                kind: SizeLimit::Message,
            },
            FrameError::FrameTooLarge { size, limit } => SendError::TooLarge {
                size,
                limit,
                kind: SizeLimit::Frame,
            },
            other => SendError::Codec(other),
        })?;
        if needed > limit {
            return Err(SendError::TooLarge {
                size: needed,
                limit,
                kind: SizeLimit::Queue,
            });
        }
        if !self.out.has_room(needed, CONTROL_RESERVE) {
            self.writable_at = Some(needed);
            return Err(SendError::QueueFull {
                queued: self.out.len(),
                limit,
                needed,
            });
        }
        let was_empty = self.out.is_empty();
        codec
            .seal_prepared(id, payload, self.out.tail())
            .map_err(SendError::Codec)?;
        if was_empty {
            self.write_progress = Some(self.now);
        }
        Ok(())
    }

    /// Admits a session held after its handshake ([`SessionConfig::manual_admission`]): sends
    /// our Hello and carries on. Does nothing in any other state.
    pub fn admit(&mut self, now: Instant) {
        self.tick(now);
        if !matches!(self.phase, Phase::Authenticated { .. }) {
            return;
        }
        let Phase::Authenticated { mut codec, remote } =
            std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            unreachable!("checked above")
        };
        self.send_hello(&mut codec);
        self.phase = Phase::Hello { codec, remote };
        self.phase_deadline = self.now + self.config.read_timeout;
    }

    /// Ends the session, telling the peer `reason` if a frame can still be sent.
    ///
    /// Between our Hello and the peer's, the Disconnect waits for the peer's Hello (at most
    /// [`SessionConfig::disconnect_linger`]): a peer that has read our Hello already expects
    /// everything after it compressed when both sides speak version 5 (EIP-706), which only
    /// its Hello tells. geth reads an uncompressed Disconnect there as corrupt snappy and
    /// loses the reason. Without its Hello in time, the Disconnect goes uncompressed.
    pub fn disconnect(&mut self, now: Instant, reason: DisconnectReason) {
        self.tick(now);
        if matches!(self.phase, Phase::Hello { .. }) {
            if self.deferred_disconnect.is_none() {
                self.deferred_disconnect = Some(reason);
                self.phase_deadline = self
                    .phase_deadline
                    .min(self.now + self.config.disconnect_linger);
            }
            return;
        }
        self.close(Side::Local, Some(reason), None);
    }

    // ---- internals -------------------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn queue_raw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.out.is_empty() {
            self.write_progress = Some(self.now);
        }
        self.out.tail().extend_from_slice(bytes);
    }

    /// Queues a base-protocol message (Ping or Pong); a full queue ends the session.
    fn send_base(&mut self, id: u64) {
        let codec = match &mut self.phase {
            Phase::Active { codec, .. } => codec,
            _ => return,
        };
        if !self.out.has_room(FrameCodec::frame_len(id, 8), 0) {
            let (queued, limit) = (self.out.len(), self.config.max_outbound_queue);
            self.close(
                Side::Local,
                Some(DisconnectReason::PingTimeout),
                Some(SessionError::OutboundQueueFull { queued, limit }),
            );
            return;
        }
        let was_empty = self.out.is_empty();
        codec
            .encode(id, &EMPTY_LIST, self.out.tail())
            .expect("a tiny frame always fits");
        if was_empty {
            self.write_progress = Some(self.now);
        }
    }

    fn read_handshake(&mut self, data: &[u8]) -> usize {
        let Phase::Handshake(hs) = &mut self.phase else {
            return 0;
        };
        let used = match hs.read(data) {
            Ok(n) => n,
            Err(e) => {
                self.close(Side::Local, None, Some(SessionError::Handshake(e)));
                return data.len();
            }
        };
        let ack = hs.take_output();
        let Some(outcome) = hs.take_outcome() else {
            self.queue_raw(&ack);
            return used;
        };
        self.queue_raw(&ack);
        self.enter_framing(outcome.secrets, outcome.remote);
        used
    }

    /// Switches to framed messages once the RLPx handshake is done: holds for admission, or
    /// sends our Hello and waits for theirs.
    fn enter_framing(&mut self, secrets: Secrets, remote: NodePublicKey) {
        let mut codec = Box::new(FrameCodec::new(secrets));
        // Until the Hello arrives, nothing larger than a Hello is acceptable.
        codec.set_max_frame_size(MAX_HELLO_SIZE + 1);
        codec.set_max_message_size(self.config.max_message_size);
        if self.config.manual_admission {
            self.phase = Phase::Authenticated { codec, remote };
            self.events
                .push_back(SessionEvent::Authenticated { remote });
            return;
        }
        self.send_hello(&mut codec);
        self.phase = Phase::Hello { codec, remote };
        self.phase_deadline = self.now + self.config.read_timeout;
    }

    fn send_hello(&mut self, codec: &mut FrameCodec) {
        let was_empty = self.out.is_empty();
        // Sent once per session: it need not stay in memory.
        let hello = std::mem::take(&mut self.local_hello);
        codec
            .encode(HELLO, &hello, self.out.tail())
            .expect("our Hello fits a frame");
        if was_empty {
            self.write_progress = Some(self.now);
        }
    }

    /// Decodes at most one frame from `data`, handles it, and returns the bytes consumed.
    fn read_frames(&mut self, data: &[u8]) -> usize {
        let hello_phase = !matches!(self.phase, Phase::Active { .. });
        let (Phase::Hello { codec, .. } | Phase::Active { codec, .. }) = &mut self.phase else {
            return 0;
        };
        let (used, id, payload) = match codec.decode(data) {
            Ok((used, None)) => return used,
            Ok((used, Some(frame))) => (used, frame.id, frame.payload.to_vec()),
            Err(FrameError::FrameTooLarge { size, .. }) if hello_phase => {
                let e = SessionError::Hello(HelloError::TooLarge {
                    size: size.saturating_sub(1),
                });
                self.close(
                    Side::Local,
                    Some(DisconnectReason::BreachOfProtocol),
                    Some(e),
                );
                return data.len();
            }
            Err(e) => {
                self.close(
                    Side::Local,
                    Some(DisconnectReason::BreachOfProtocol),
                    Some(SessionError::Frame(e)),
                );
                return data.len();
            }
        };
        self.last_read = self.now;
        if hello_phase {
            self.on_hello_phase_message(id, &payload);
        } else {
            self.on_message(id, payload);
        }
        used
    }

    fn on_hello_phase_message(&mut self, id: u64, payload: &[u8]) {
        match id {
            HELLO => self.on_hello(payload),
            DISCONNECT => self.on_disconnect(payload),
            _ => self.close(
                Side::Local,
                Some(DisconnectReason::BreachOfProtocol),
                Some(SessionError::ExpectedHello { id }),
            ),
        }
    }

    fn on_hello(&mut self, payload: &[u8]) {
        let hello = match Hello::decode(payload) {
            Ok(h) => h,
            Err(e) => {
                return self.close(
                    Side::Local,
                    Some(DisconnectReason::BreachOfProtocol),
                    Some(SessionError::Hello(e)),
                )
            }
        };
        let Phase::Hello { codec, remote } = &mut self.phase else {
            return;
        };
        let remote = *remote;
        // EIP-706: compress everything after Hello when both sides speak version 5+. The peer
        // reads whatever follows our Hello that way, so a Disconnect over this Hello too.
        codec.set_snappy(hello.protocol_version >= P2P_VERSION);
        if let Some(r) = self.deferred_disconnect.take() {
            return self.close(Side::Local, Some(r), None);
        }
        if !hello.has_valid_id() {
            return self.close(
                Side::Local,
                Some(DisconnectReason::InvalidIdentity),
                Some(SessionError::InvalidIdentity),
            );
        }
        if hello.id.as_slice() != remote.raw() {
            return self.close(
                Side::Local,
                Some(DisconnectReason::UnexpectedIdentity),
                Some(SessionError::UnexpectedIdentity),
            );
        }
        let Phase::Hello { codec, .. } = &mut self.phase else {
            return;
        };
        codec.set_max_frame_size(self.config.max_frame_size);
        let caps = match_protocols(&self.config.protocols, &hello.capabilities);
        if caps.is_empty() && !self.config.protocols.is_empty() {
            return self.close(
                Side::Local,
                Some(DisconnectReason::UselessPeer),
                Some(SessionError::NoSharedCapability {
                    remote: hello.capabilities.clone(),
                }),
            );
        }
        let Phase::Hello { codec, .. } = std::mem::replace(&mut self.phase, Phase::Closed) else {
            unreachable!("matched above")
        };
        self.phase = Phase::Active {
            codec,
            remote,
            caps: caps.clone(),
        };
        self.next_ping = self.now + self.config.ping_interval;
        self.events
            .push_back(SessionEvent::Established(Box::new(Established {
                remote,
                hello,
                capabilities: caps,
            })));
    }

    fn on_message(&mut self, id: u64, payload: Vec<u8>) {
        match id {
            DISCONNECT => self.on_disconnect(&payload),
            PING => self.send_base(PONG),
            // A second Hello, a Pong, and the reserved ids are read and discarded (geth).
            0..BASE_PROTOCOL_LENGTH => {}
            _ => {
                let Phase::Active { caps, .. } = &self.phase else {
                    return;
                };
                match caps.iter().find(|c| c.contains(id)) {
                    Some(cap) => {
                        let (protocol, code) = (cap.protocol, id - cap.offset);
                        self.pending_inbound += payload.len();
                        self.events.push_back(SessionEvent::Message {
                            protocol,
                            code,
                            payload,
                        });
                    }
                    // geth maps an invalid message code to "breach of protocol" (0x02).
                    None => self.close(
                        Side::Local,
                        Some(DisconnectReason::BreachOfProtocol),
                        Some(SessionError::MessageIdOutOfRange { id }),
                    ),
                }
            }
        }
    }

    fn on_disconnect(&mut self, payload: &[u8]) {
        match DisconnectReason::decode(payload) {
            Ok(reason) => self.close(Side::Remote, reason, None),
            Err(_) => self.close(Side::Remote, None, Some(SessionError::InvalidDisconnect)),
        }
    }

    /// Ends the session: sends `reason` when we end it and a frame can be sent, reports
    /// [`SessionEvent::Closed`], and lingers until the Disconnect drains and the peer closes
    /// (at most [`DISCONNECT_LINGER`]).
    fn close(
        &mut self,
        initiator: Side,
        reason: Option<DisconnectReason>,
        error: Option<SessionError>,
    ) {
        if matches!(self.phase, Phase::Closing { .. } | Phase::Closed) {
            return;
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        let mut sent = false;
        if let (
            Side::Local,
            Some(r),
            Phase::Authenticated { mut codec, .. }
            | Phase::Hello { mut codec, .. }
            | Phase::Active { mut codec, .. },
        ) = (initiator, reason, phase)
        {
            // The Disconnect may exceed the queue limit by its few bytes: it must go out.
            let was_empty = self.out.is_empty();
            if codec
                .encode(DISCONNECT, &r.encode(), self.out.tail())
                .is_ok()
            {
                sent = true;
                if was_empty {
                    self.write_progress = Some(self.now);
                }
            }
        }
        if sent {
            self.phase = Phase::Closing {
                linger_until: self.now + self.config.disconnect_linger,
            };
        } else {
            self.out.clear();
            self.write_progress = None;
        }
        // What was received but not yet taken stays; Closed comes after it.
        self.events.push_back(SessionEvent::Closed(Closed {
            initiator,
            reason: if initiator == Side::Local && !sent {
                None
            } else {
                reason
            },
            error,
        }));
    }
}
