//! The discv5 session layer ([DISCV5.md §4–§7](crate::spec::discv5)): sessions keyed by node
//! id and address, the handshake in both roles, our requests with their timeouts and retries,
//! and the matching of answers, as one sans-IO machine, [`Sessions`]. Below it is the
//! stateless wire layer ([`super::packet`], [`super::message`], [`super::crypto`]); above it
//! the discovery service (table, lookups, TALKREQ handlers) decides what to ask and how to
//! answer.
//!
//! # Driving it
//! * Inputs: [`Sessions::handle_datagram`] for every datagram on the socket,
//!   [`Sessions::handle_timeout`] once the deadline from [`Sessions::poll_timeout`] has passed,
//!   and the commands [`Sessions::send_request`], [`Sessions::send_response`],
//!   [`Sessions::send_nodes`] and [`Sessions::learn_record`]. Each carries `now`, a monotonic
//!   [`Instant`] that never goes backwards (an earlier one counts as the latest seen).
//! * Outputs, drained after every input in this order: [`Sessions::poll_transmit`] until
//!   `None` (each datagram goes to its `destination`), then [`Sessions::poll_event`] until
//!   `None`, then [`Sessions::poll_timeout`] to re-arm the timer. Answering a
//!   [`Event::Request`] is itself an input, so drain again after it.
//! * Randomness (masking IVs, nonces, id-nonces, ephemeral keys, request ids, random packets)
//!   comes from the injected `rand_core::CryptoRng`; one seed replays one run.
//!
//! Nothing a peer sends is an error for the driver: [`Sessions::handle_datagram`] says why a
//! datagram was dropped ([`DropReason`], also counted) and a socket shared with discv4 hands
//! those with [`DropReason::is_not_discv5`] to the discv4 machine.
//!
//! # What it does
//! | input | what happens |
//! |---|---|
//! | an ordinary packet that opens under the session with its (src-id, address) | its request becomes [`Event::Request`]; its response completes our request in flight there (matching id and type) |
//! | an ordinary packet without such a session, or that does not open | a WHOAREYOU naming it, or the one already pending for that node and address again, byte for byte, for [`HANDSHAKE_TIMEOUT`]; at most [`WHOAREYOU_PER_IP_PER_SECOND`] per IP |
//! | a WHOAREYOU naming a packet of our request in flight, from where it went | the request again as a handshake packet under fresh keys, with our record if the peer's enr-seq is lower; once per attempt |
//! | a handshake packet answering our pending WHOAREYOU | verified (record, signature, key), the session stored or replaced, [`Event::SessionEstablished`], then its message as above; the challenge is gone either way |
//! | [`Sessions::send_request`] | one request in flight per node and address, the rest queued; without a session a random packet draws the WHOAREYOU |
//! | a request's deadline ([`REQUEST_TIMEOUT`]) | sent again as a fresh packet [`REQUEST_RETRIES`] times, then [`Event::RequestFailed`] |
//! | NODES answering our FINDNODE | gathered until `total` messages (at most 6) arrived, each re-arming the timer; one [`Event::Response`] |
//!
//! A peer that restarts, and so lost its keys, fails to open our packets and challenges us;
//! a peer we lost keys with fails to open under ours and is challenged. Either way a new
//! handshake replaces the session, with the peer's newer record if it has one.
//!
//! # Limits
//! Every input a peer controls is bounded: sessions ([`MAX_SESSIONS`], least recently used
//! evicted), pending WHOAREYOUs ([`MAX_PENDING_CHALLENGES`], oldest evicted, each expiring
//! after [`HANDSHAKE_TIMEOUT`]), the WHOAREYOU rate per IP ([`WHOAREYOU_PER_IP_PER_SECOND`],
//! [`MAX_RATE_LIMITED_IPS`] addresses tracked), known records ([`MAX_KNOWN_RECORDS`]),
//! remembered nonces ([`MAX_RECENT_NONCES`]), NODES messages per request
//! ([`MAX_NODES_RESPONSES`](super::message::MAX_NODES_RESPONSES)), datagram size
//! ([`MAX_PACKET_SIZE`]) and the output queues ([`MAX_QUEUED_TRANSMITS`],
//! [`MAX_QUEUED_EVENTS`], oldest dropped). What the caller asks is bounded too:
//! [`MAX_QUEUED_REQUESTS_PER_NODE`] and [`MAX_REQUESTS`]. [`SessionsConfig`] lowers (or
//! raises) each.
//!
//! # Example
//! Two nodes in memory, the network delivering at once: A pings B without a session, so the
//! PING travels random packet → WHOAREYOU → handshake, and B's PONG comes back under the new
//! session.
//!
//! ```
//! use std::net::SocketAddr;
//! use devp2p_core::discv5::message::{Message, Pong};
//! use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
//! use devp2p_core::discv5::{Contact, Event, Request, Response, Sessions, SessionsConfig};
//! use devp2p_core::{Enr, Instant, NodeSecretKey};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let node = |seed: u64, port: u16| {
//!     let mut rng = ChaCha20Rng::seed_from_u64(seed);
//!     let key = NodeSecretKey::generate(&mut rng);
//!     let addr: SocketAddr = ([127, 0, 0, 1], port).into();
//!     let record = Enr::builder().ip(addr.ip()).udp4(port).sign(&key).unwrap();
//!     (addr, Sessions::new(key, record, SessionsConfig::default(), rng, Instant::ZERO))
//! };
//! let (addr_a, mut a) = node(1, 30301);
//! let (addr_b, mut b) = node(2, 30302);
//! let now = Instant::ZERO;
//!
//! let to_b = Contact::from_record(b.local_record().clone()).unwrap();
//! let ping = a.send_request(now, to_b, Request::Ping)?;
//!
//! let mut buf = [0u8; MAX_PACKET_SIZE];
//! let (mut pong, mut datagrams) = (None, 0);
//! loop {
//!     let mut moved = false;
//!     // A's datagrams to B, then B's events: B answers the PING as the layer above would.
//!     while let Some(t) = a.poll_transmit(&mut buf) {
//!         let _ = b.handle_datagram(now, addr_a, &buf[..t.len]);
//!         (moved, datagrams) = (true, datagrams + 1);
//!     }
//!     while let Some(event) = b.poll_event() {
//!         if let Event::Request { from, request: Message::Ping(p) } = event {
//!             let seq = b.local_record().seq();
//!             let answer = Pong {
//!                 request_id: p.request_id,
//!                 enr_seq: seq,
//!                 recipient_ip: Some(from.addr.ip()),
//!                 recipient_port: from.addr.port(),
//!             };
//!             b.send_response(now, &from, Message::Pong(answer))?;
//!         }
//!     }
//!     // B's datagrams to A, then A's events.
//!     while let Some(t) = b.poll_transmit(&mut buf) {
//!         let _ = a.handle_datagram(now, addr_b, &buf[..t.len]);
//!         (moved, datagrams) = (true, datagrams + 1);
//!     }
//!     while let Some(event) = a.poll_event() {
//!         if let Event::Response { id, response: Response::Pong(p), .. } = event {
//!             assert_eq!(id, ping);
//!             pong = Some(p);
//!         }
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//! // Random packet, WHOAREYOU, handshake, PONG; B saw A at 127.0.0.1:30301.
//! assert_eq!(datagrams, 4);
//! assert_eq!(pong.map(|p| p.recipient_port), Some(30301));
//! assert_eq!(a.session_count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where the spec, geth and sigp differ, and what we do
//! - **A second undecryptable packet while a WHOAREYOU is pending.** geth re-sends the
//!   pending WHOAREYOU byte for byte (go-ethereum#31356, hive `HandshakeResend`, and the spec
//!   since devp2p#278); the older spec text and ChainSafe send a fresh one; sigp sends nothing
//!   (sigp/discv5#309). We follow geth, which the conformance suite tests.
//! - **Matching a WHOAREYOU.** geth matches the nonce alone; sigp also wants it from the
//!   address the request went to. We check both, as sigp: sessions are per address, so a
//!   WHOAREYOU from elsewhere cannot be for this one.
//! - **A WHOAREYOU naming a response, or a request that has ended.** geth and sigp ignore it
//!   (go-ethereum#30592: a response cannot be re-sent as a handshake). But a peer repeats its
//!   pending challenge to every packet it cannot read, so while it lasts every request to that
//!   peer would draw the same unusable WHOAREYOU and fail. We answer it with the request in
//!   flight to that node and address, if there is one ([`RECENT_NONCE_LIFETIME`]); with none
//!   we ignore it as geth does.
//! - **Decryption failure under an existing session.** geth keeps the session until a new
//!   handshake replaces it; sigp drops it at once and fails the queued requests. We keep it,
//!   as geth: a spoofed packet must not end a working session.
//! - **Keys during a handshake.** geth stores the new keys when it sends its handshake,
//!   overwriting the old; sigp holds the new keys aside and tries them once. We keep the two
//!   latest key sets, write with the newer and read with both; a packet opening only under the
//!   older makes it current again. When both ends handshake at once this converges without a
//!   further handshake (geth has an open TODO for a tie-breaker there). Against a peer that
//!   keeps one set (geth, ChainSafe: the last handshake it handled), two rules keep the
//!   first answers from being lost: a request to a node we have a WHOAREYOU pending for
//!   waits for its handshake (at most until the challenge expires) instead of crossing it,
//!   and when its handshake arrives after ours went out behind our WHOAREYOU, we keep
//!   writing with our own keys, which that peer takes last (both seen in the interop tests,
//!   `tests/INTEROP.md`).
//! - **A handshake with a bad signature.** geth deletes the challenge (any failure does,
//!   against forging attempts: `TestHandshake_BadHandshakeAttack`); sigp puts it back. We
//!   follow geth; the spec is silent.
//! - **Retries.** The spec advises against re-sending on silence and geth never does. sigp and
//!   ChainSafe set `request_retries = 1`, but count the first send in it, so in fact they do
//!   not resend either ([DISCV5.md §13](crate::spec::discv5) lists them as retrying once, which
//!   is what the setting suggests, not what the code does). We resend once by default, with a
//!   fresh packet (sigp would resend the same bytes), since that recovers a lost WHOAREYOU, a
//!   lost handshake and a lost response alike; [`SessionsConfig::request_retries`] set to 0
//!   behaves as geth.
//! - **Timeouts.** 700 ms as geth (spec 500 ms, sigp and ChainSafe 1 s), re-armed by a
//!   handshake and by each NODES part; a challenge lasts 1 s (geth, spec).
//! - **Handshakes per request.** geth allows one per call; we allow one per attempt.
//! - **Requests in flight.** geth allows one per node id, sigp one per node id and address;
//!   we follow sigp, since sessions are per address, and bound the queue behind it.
//! - **NODES.** We follow geth: `total` 0 read as 1, records outside the asked distances and
//!   repeats dropped one by one (sigp bans the peer instead); but `total` is cut to 6, not
//!   geth's 5, so that ChainSafe's 16 records at 3 per message arrive whole.
//! - **The handshake record's address.** sigp refuses a session whose record advertises a
//!   UDP address other than the packet's source; geth accepts it. We accept it as geth and
//!   report the record; the layer above decides what to do with its address.
//! - **Contacts without a record.** geth's `TalkRequestToID` fails when challenged; sigp
//!   handshakes with the key alone and then asks for the record with `FINDNODE [0]`. We
//!   handshake with a key or any record we know, and otherwise fail with
//!   [`RequestFailure::NoPublicKey`]; fetching the record is left to the layer above.
//! - **A response without a session.** geth sends a random packet in its place (so it is
//!   lost); sigp drops it. We refuse it with [`SendError::NoSession`].
//! - **Limits geth leaves open.** Pending challenges (unbounded in geth and sigp, expired
//!   after 1 s) are bounded; the WHOAREYOU rate per IP (none in geth, sigp's optional packet
//!   filter has 9 per second) is on, loopback sources exempt; after 2³² packets under one key set, where geth's counter
//!   would wrap, the session is dropped for a new handshake.
//! - **Addresses.** geth unwraps IPv4-mapped IPv6 sources; sigp also zeroes the IPv6 flow
//!   label and scope id. We unwrap and zero the flow label but keep the scope id, which a
//!   link-local answer needs ([`NodeAddress::new`]).
//!
//! # For the layer above
//! - Answer every [`Event::Request`] to its `from`: PING with a PONG carrying `from`'s address,
//!   FINDNODE with [`Sessions::send_nodes`] (at most 16 records, live ones only, after
//!   geth's relay-address checks), TALKREQ with a TALKRESP (an empty one for an unknown
//!   protocol). A request whose id is over 8 bytes never gets here: the wire layer drops it.
//! - [`Event::SessionEstablished`] with [`Direction::Inbound`] is where geth adds the node to
//!   its table (as an inbound node, once its first refresh is done).
//! - Call [`Sessions::learn_record`] for the nodes of the table: their seq goes into our
//!   WHOAREYOUs (so peers send their record only when it is newer) and their keys let a
//!   request by id only complete a handshake.
//! - [`NodesResponse::records`] are verified, at the asked distances and unique; the relay
//!   checks (`CheckRelayAddr`, UDP port above 1024, NetRestrict) and the lookup's own
//!   bookkeeping are the caller's. A PONG whose `enr_seq` is above the known record's asks
//!   for `FINDNODE [0]`.
//! - Every accepted request ends in exactly one [`Event::Response`] or
//!   [`Event::RequestFailed`], after at most (1 + [`REQUEST_RETRIES`]) × [`REQUEST_TIMEOUT`]
//!   plus the re-arming by handshakes and NODES parts.
//! - When our record changes, [`Sessions::set_local_record`]: later handshakes carry it, and
//!   later PINGs its seq.

mod calls;
mod config;
mod inbound;
pub(in crate::discv5) mod lru;
mod outbound;
pub(in crate::discv5) mod session;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use rand_core::CryptoRng;

pub use config::*;
pub use types::{
    canonical_addr, Contact, Direction, DropReason, Event, NodeAddress, NodesResponse, Request,
    RequestFailure, Response, SendError, Transmit,
};

use calls::Calls;
use lru::Lru;
use session::{Session, WhoareyouLimiter};

pub use super::packet::MAX_PACKET_SIZE;
use super::packet::WHOAREYOU_SIZE;
use crate::enr::Enr;
use crate::identity::{NodeId, NodeSecretKey};
use crate::time::Instant;

/// A WHOAREYOU we sent and the handshake it waits for.
#[derive(Debug, Clone)]
struct Challenge {
    /// The packet unmasked: what the handshake signs over, and what a repeat re-sends.
    data: [u8; WHOAREYOU_SIZE],
    /// When it stops being accepted (sent + [`HANDSHAKE_TIMEOUT`]).
    expires: Instant,
    /// The record whose seq the WHOAREYOU named, used if the handshake carries none.
    record: Option<Enr>,
}

/// The discv5 session layer of one node: sessions, handshakes and requests over one UDP
/// socket, without I/O. See the [module documentation](self) for how to drive it.
pub struct Sessions<R> {
    key: NodeSecretKey,
    local_id: NodeId,
    local_record: Enr,
    config: SessionsConfig,
    rng: R,
    sessions: Lru<NodeAddress, Session>,
    /// Never fetched with `get_mut`, so the oldest is always the first to expire.
    challenges: Lru<NodeAddress, Challenge>,
    records: Lru<NodeId, Enr>,
    limiter: WhoareyouLimiter,
    calls: Calls,
    /// Nonces of packets no request waits for (responses, ended requests), with where they
    /// went and until when they count ([`RECENT_NONCE_LIFETIME`]). Never fetched with
    /// `get_mut`, so the oldest is the first to expire.
    recent_nonces: Lru<super::crypto::Nonce, (NodeAddress, Instant)>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    drops: BTreeMap<DropReason, u64>,
    now: Instant,
}

impl<R: CryptoRng> Sessions<R> {
    /// The session layer of the node with secret `key` and signed `local_record` (which it
    /// hands to peers that lack it, and whose seq its PINGs carry), drawing every random
    /// value from `rng`.
    pub fn new(
        key: NodeSecretKey,
        local_record: Enr,
        config: SessionsConfig,
        rng: R,
        now: Instant,
    ) -> Self {
        Sessions {
            local_id: key.id(),
            key,
            local_record,
            sessions: Lru::new(config.max_sessions),
            challenges: Lru::new(config.max_pending_challenges),
            records: Lru::new(config.max_known_records),
            limiter: WhoareyouLimiter::new(
                config.whoareyou_per_ip_per_second,
                config.max_rate_limited_ips,
            ),
            config,
            rng,
            calls: Calls::default(),
            recent_nonces: Lru::new(MAX_RECENT_NONCES),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: BTreeMap::new(),
            now,
        }
    }

    // ----- getters -----

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.local_id
    }

    /// Our record.
    pub fn local_record(&self) -> &Enr {
        &self.local_record
    }

    /// Replaces our record, if it is ours (signed with our key) and newer; says whether it
    /// did. Handshakes from now on carry it to peers that hold an older one.
    pub fn set_local_record(&mut self, record: Enr) -> bool {
        let ok = record.node_id() == self.local_id && record.seq() > self.local_record.seq();
        if ok {
            self.local_record = record;
        }
        ok
    }

    /// The settings.
    pub fn config(&self) -> &SessionsConfig {
        &self.config
    }

    /// Whether a session with `node` exists.
    pub fn has_session(&self, node: &NodeAddress) -> bool {
        self.sessions.contains(&canonical(node))
    }

    /// How many sessions exist (at most [`SessionsConfig::max_sessions`]).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many WHOAREYOUs await their handshake (at most
    /// [`SessionsConfig::max_pending_challenges`]).
    pub fn pending_challenges(&self) -> usize {
        self.challenges.len()
    }

    /// How many IP addresses the WHOAREYOU rate limit tracks.
    pub fn rate_limited_ips(&self) -> usize {
        self.limiter.tracked_ips()
    }

    /// How many requests are outstanding, in flight or queued (at most
    /// [`SessionsConfig::max_requests`]).
    pub fn request_count(&self) -> usize {
        self.calls.len()
    }

    /// How many requests are in flight (one per node and address at most).
    pub fn active_request_count(&self) -> usize {
        self.calls.active_len()
    }

    /// How many records of other nodes are kept (at most
    /// [`SessionsConfig::max_known_records`]).
    pub fn known_record_count(&self) -> usize {
        self.records.len()
    }

    /// The newest record we know of `id`.
    pub fn known_record(&self, id: &NodeId) -> Option<&Enr> {
        self.records.peek(id)
    }

    /// How many datagrams and events wait to be polled.
    pub fn queued_outputs(&self) -> (usize, usize) {
        (self.transmits.len(), self.events.len())
    }

    /// How many inbound datagrams were dropped for `reason`.
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }

    /// All drop counters.
    pub fn drop_counts(&self) -> &BTreeMap<DropReason, u64> {
        &self.drops
    }

    /// Checks the internal indexes against each other; `Err` names the first inconsistency.
    /// For tests and fuzzers.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.calls.check()?;
        let c = &self.config;
        let bounded = [
            ("sessions", self.sessions.len(), c.max_sessions.max(1)),
            (
                "challenges",
                self.challenges.len(),
                c.max_pending_challenges.max(1),
            ),
            ("records", self.records.len(), c.max_known_records.max(1)),
            (
                "rate-limited IPs",
                self.limiter.tracked_ips(),
                c.max_rate_limited_ips.max(1),
            ),
            ("requests", self.calls.len(), c.max_requests),
            ("recent nonces", self.recent_nonces.len(), MAX_RECENT_NONCES),
            ("transmits", self.transmits.len(), MAX_QUEUED_TRANSMITS),
            ("events", self.events.len(), MAX_QUEUED_EVENTS),
        ];
        for (what, len, max) in bounded {
            if len > max {
                return Err(format!("{len} {what}, over the limit of {max}"));
            }
        }
        Ok(())
    }

    // ----- outputs -----

    /// Writes the next datagram to send into `buf` and says where it goes.
    pub fn poll_transmit(&mut self, buf: &mut [u8; MAX_PACKET_SIZE]) -> Option<Transmit> {
        let (destination, bytes) = self.transmits.pop_front()?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Some(Transmit {
            destination,
            len: bytes.len(),
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Sessions::handle_timeout`] should next be called: the earliest request deadline
    /// or challenge expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let challenge = self.challenges.oldest().map(|(_, c)| c.expires);
        self.calls
            .next_deadline()
            .into_iter()
            .chain(challenge)
            .min()
    }

    // ----- inputs -----

    /// Processes one datagram received from `from`: answers, events and transmits follow.
    /// `Err` says why it was dropped (it is counted too); a datagram for which
    /// [`DropReason::is_not_discv5`] holds may belong to discv4 on a shared socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DropReason> {
        self.advance(now);
        let result = self.process_datagram(canonical_addr(from), data);
        if let Err(reason) = result {
            *self.drops.entry(reason).or_default() += 1;
        }
        result
    }

    /// Runs what is due at `now`: request timeouts (resending or failing them) and challenge
    /// expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.expire_challenges();
        for node in self.calls.due(self.now) {
            self.request_due(node);
        }
    }

    /// Remembers `record` (if newer than what we have for its node): its seq goes into the
    /// WHOAREYOUs we send that node, and its key lets us answer the node's WHOAREYOU when a
    /// request was sent by id only. The layer above calls it for the nodes of its table.
    pub fn learn_record(&mut self, record: Enr) {
        let id = record.node_id();
        if id == self.local_id {
            return;
        }
        let newer = self
            .records
            .peek(&id)
            .is_none_or(|r| record.seq() > r.seq());
        if newer {
            self.records.insert(id, record);
        }
    }

    // ----- internals -----

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn transmit(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.transmits.pop_front();
        }
        self.transmits.push_back((to, bytes));
    }

    /// Drops the challenges whose time is up (before any handshake is looked at, as geth
    /// does, so that a late handshake is never accepted).
    fn expire_challenges(&mut self) {
        while self
            .challenges
            .oldest()
            .is_some_and(|(_, c)| c.expires <= self.now)
        {
            self.challenges.pop_oldest();
        }
    }

    /// Remembers that a packet with `nonce` went to `node` and no request waits for it.
    fn remember_nonce(&mut self, node: NodeAddress, nonce: super::crypto::Nonce) {
        while self
            .recent_nonces
            .oldest()
            .is_some_and(|(_, (_, until))| *until <= self.now)
        {
            self.recent_nonces.pop_oldest();
        }
        let until = self.now + RECENT_NONCE_LIFETIME;
        self.recent_nonces.insert(nonce, (node, until));
    }

    /// The node a packet of ours with `nonce` recently went to, if it is still remembered.
    fn recent_nonce(&self, nonce: &super::crypto::Nonce) -> Option<NodeAddress> {
        let (node, until) = self.recent_nonces.peek(nonce)?;
        (*until > self.now).then_some(*node)
    }

    fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill_bytes(&mut b);
        b
    }
}

fn canonical(node: &NodeAddress) -> NodeAddress {
    NodeAddress::new(node.id, node.addr)
}
