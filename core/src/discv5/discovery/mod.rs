//! The discv5 discovery service ([DISCV5.md §8](crate::spec::discv5)): the Kademlia table,
//! liveness checks, refresh and iterative lookups, the answers to PING, FINDNODE and TALKREQ,
//! and TALKREQ for applications, on top of the session layer ([`Sessions`]), as one sans-IO
//! machine, [`Discovery`].
//!
//! The table and the lookup are discv4's ([`crate::discv4::table`], [`crate::discv4::lookup`]):
//! the rules are the same (geth shares its `Table` between the versions) — 17 buckets of 16,
//! at most 2 nodes of one /24 per bucket and 10 in the table, 10 replacements per bucket, the
//! fast and slow revalidation lists, α = 3 queries at a time for the 16 closest. What differs:
//!
//! | | discv4 | discv5 |
//! |---|---|---|
//! | a lookup asks | FindNode for a 64-byte target | FINDNODE for the 3 log distances around the target's from the asked node (geth `lookupDistances`) |
//! | the endpoint proof | a Ping/Pong bond before FindNode | the handshake; nothing more |
//! | liveness check | Ping, the Pong's enr-seq | PING carrying our enr-seq, the PONG's; a higher one fetches the record with `FINDNODE [0]` |
//! | a node enters the table | on a bonded Ping, or from Neighbors | on an inbound handshake whose record advertises the packet's source, or from NODES |
//! | answers | the 16 closest to the target | the nodes at exactly the distances asked, live ones only, at most 16 |
//!
//! Every node in the table has a record (NODES carries records): a bootnode known by key and
//! address only is asked for its record first, with `FINDNODE [0]`.
//!
//! # Driving it
//! As [`Sessions`], which it owns: [`Discovery::handle_datagram`] for every datagram (it
//! returns the session layer's [`DropReason`]; on a socket shared with discv4, a datagram
//! with [`DropReason::is_not_discv5`] goes there), [`Discovery::handle_timeout`] once
//! [`Discovery::poll_timeout`] is due, the commands ([`Discovery::start_lookup`],
//! [`Discovery::talk_request`], [`Discovery::answer_talk`], …), and after each input
//! [`Discovery::poll_transmit`] until `None`, then [`Discovery::poll_event`] until `None`, then
//! [`Discovery::poll_timeout`]. `unix_secs`, the wall clock, is data for the node database
//! only.
//!
//! # TALKREQ
//! The application registers protocol names ([`Discovery::register_talk_protocol`]). A
//! TALKREQ for one of them becomes [`Event::TalkRequest`], answered with
//! [`Discovery::answer_talk`] within [`TALK_ANSWER_TIMEOUT`]; one for any other protocol is
//! answered at once with an empty TALKRESP ([DISCV5.md §3.5](crate::spec::discv5)). Bounded:
//! [`MAX_PENDING_TALK_REQUESTS`] unanswered at once holding at most
//! [`MAX_PENDING_TALK_BYTES`], and [`TALK_REQUESTS_PER_PEER_PER_SECOND`] per node; beyond
//! those a request is dropped unanswered and counted ([`Refusal`]).
//!
//! # Example
//! Two nodes in memory, the network delivering at once; B knows A's record as a bootnode.
//! B's refresh handshakes with A, and A adds B to its table when B's record arrives with the
//! handshake.
//!
//! ```
//! use std::net::SocketAddr;
//! use devp2p_core::discv4::{Node, NodeDbSnapshot};
//! use devp2p_core::discv5::discovery::{Config, Discovery};
//! use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
//! use devp2p_core::{Enr, Instant, NodeSecretKey};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let unix = 1_700_000_000;
//! let make = |seed: u64, port: u16, bootnodes: Vec<Node>| {
//!     let mut rng = ChaCha20Rng::seed_from_u64(seed);
//!     let key = NodeSecretKey::generate(&mut rng);
//!     let addr: SocketAddr = ([127, 0, 0, 1], port).into();
//!     let record = Enr::builder().ip(addr.ip()).udp4(port).sign(&key).unwrap();
//!     let mut config = Config::default();
//!     config.bootnodes = bootnodes;
//!     let d = Discovery::new(key, record, config, NodeDbSnapshot::default(), rng,
//!                            Instant::ZERO, unix);
//!     (addr, d)
//! };
//! let (addr_a, mut a) = make(1, 30301, vec![]);
//! let boot = Node::from_enr(a.local_record().clone()).unwrap();
//! let (addr_b, mut b) = make(2, 30302, vec![boot]);
//!
//! let mut now = Instant::ZERO;
//! let mut buf = [0u8; MAX_PACKET_SIZE];
//! for _ in 0..50 {
//!     a.handle_timeout(now, unix);
//!     b.handle_timeout(now, unix);
//!     loop {
//!         let mut moved = false;
//!         while let Some(t) = a.poll_transmit(&mut buf) {
//!             let _ = b.handle_datagram(now, unix, addr_a, &buf[..t.len]);
//!             moved = true;
//!         }
//!         while let Some(t) = b.poll_transmit(&mut buf) {
//!             let _ = a.handle_datagram(now, unix, addr_b, &buf[..t.len]);
//!             moved = true;
//!         }
//!         if !moved { break; }
//!     }
//!     while a.poll_event().is_some() {}
//!     while b.poll_event().is_some() {}
//!     now = a.poll_timeout().into_iter().chain(b.poll_timeout()).min().unwrap().max(now);
//! }
//! assert!(b.is_bootstrapped());
//! assert!(b.table().contains(&a.local_id()));
//! assert!(a.table().contains(&b.local_id()));
//! ```

mod config;
mod events;
mod handlers;
mod talk;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, Rng, SeedableRng};

pub use config::*;
pub use events::{Event, Refusal, TalkError, TalkRequestId};

use talk::Talk;

use super::message::{Message, Pong, RequestId, TalkResp};
use super::packet::MAX_PACKET_SIZE;
use super::sessions::{Contact, DropReason, NodeAddress, Request, SendError, Sessions, Transmit};
use crate::discv4::lookup::Lookup;
use crate::discv4::table::{AddOutcome, RevalidationFailure, RevalidationList, Table};
use crate::discv4::{LookupId, Node, NodeDb, NodeDbSnapshot};
use crate::endpoint::{Observation, Observations};
use crate::enr::Enr;
use crate::identity::{NodeId, NodeSecretKey};
use crate::time::Instant;

/// Why a lookup runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookupKind {
    Refresh,
    User,
}

/// What one of our requests was for.
#[derive(Debug, Clone)]
enum Purpose {
    /// A liveness check of a table node.
    Revalidate(Node),
    /// `FINDNODE [0]`: the node's current record (a higher seq in a PONG, or a bootnode
    /// known by key only).
    FetchRecord(Node),
    /// `FINDNODE [0]` to a node outside the table whose PING named a newer record than the
    /// one its handshake brought: the record may now qualify it as an inbound node.
    FetchInbound(NodeAddress),
    /// FINDNODE for a lookup.
    Query { lookup: LookupId, node: Node },
    /// The application's PING.
    Ping,
    /// The application's FINDNODE.
    FindNode,
    /// The application's TALKREQ.
    Talk,
}

/// One node's discv5 discovery: table, lookups and TALKREQ over a [`Sessions`]. See the
/// [module documentation](self).
pub struct Discovery<R> {
    sessions: Sessions<R>,
    rng: ChaCha20Rng,
    config: Config,
    table: Table,
    db: NodeDb,
    requests: BTreeMap<RequestId, Purpose>,
    lookups: BTreeMap<LookupId, (Lookup, LookupKind)>,
    next_lookup_id: u64,
    /// Refresh lookups still to start after the running one; `None` when no refresh runs.
    refresh_remaining: Option<usize>,
    bootstrapped: bool,
    next_refresh: Instant,
    next_fast_revalidation: Instant,
    next_slow_revalidation: Instant,
    next_db_sweep: Instant,
    revalidating: BTreeSet<NodeId>,
    /// Nodes whose record is being fetched (one `FINDNODE [0]` at a time each).
    fetching: BTreeSet<NodeId>,
    talk: Talk,
    events: VecDeque<Event>,
    /// What PONGs said about our endpoint, for the owner's
    /// [`LocalRecord`](crate::endpoint::LocalRecord).
    observations: Observations,
    refusals: BTreeMap<Refusal, u64>,
    now: Instant,
    unix_secs: u64,
}

impl<R: CryptoRng> Discovery<R> {
    /// The node with secret `key` and signed `local_record` (which must advertise the IP and
    /// UDP port others reach it at), seeded from `db` (a saved [`NodeDbSnapshot`], shared
    /// with discv4 on a node running both). `rng` is the session layer's; the service's own
    /// draws (lookup targets, revalidation picks, jitter) come from a stream seeded from it.
    /// The first refresh runs at the first [`Discovery::handle_timeout`], due at `now`.
    pub fn new(
        key: NodeSecretKey,
        local_record: Enr,
        config: Config,
        db: NodeDbSnapshot,
        mut rng: R,
        now: Instant,
        unix_secs: u64,
    ) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let local = key.id();
        let db =
            NodeDb::from_snapshot_seeded(db, unix_secs, key.hash_seed(b"devp2p discv5 hash seed"));
        let sessions = Sessions::new(key, local_record, config.sessions.clone(), rng, now);
        Discovery {
            sessions,
            rng: ChaCha20Rng::from_seed(seed),
            talk: Talk::new(&config),
            config,
            table: Table::new(local),
            db,
            requests: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_lookup_id: 0,
            refresh_remaining: None,
            bootstrapped: false,
            next_refresh: now,
            next_fast_revalidation: now + FAST_REVALIDATION_INTERVAL,
            next_slow_revalidation: now + SLOW_REVALIDATION_INTERVAL,
            next_db_sweep: now + DB_CLEANUP_INTERVAL,
            revalidating: BTreeSet::new(),
            fetching: BTreeSet::new(),
            events: VecDeque::new(),
            observations: Observations::default(),
            refusals: BTreeMap::new(),
            now,
            unix_secs,
        }
    }

    // ----- getters -----

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.sessions.local_id()
    }

    /// Our record.
    pub fn local_record(&self) -> &Enr {
        self.sessions.local_record()
    }

    /// Replaces our record if it is ours and newer; says whether it did. Later handshakes
    /// carry it, PINGs and PONGs its seq, and `FINDNODE [0]` answers return it.
    pub fn set_local_record(&mut self, record: Enr) -> bool {
        self.sessions.set_local_record(record)
    }

    /// The routing table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The session layer (sessions, drop counters).
    pub fn sessions(&self) -> &Sessions<R> {
        &self.sessions
    }

    /// Whether the first refresh has finished.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// The node database to persist.
    pub fn db_snapshot(&self) -> NodeDbSnapshot {
        self.db.snapshot()
    }

    /// Lookups running.
    pub fn active_lookups(&self) -> usize {
        self.lookups.len()
    }

    /// Our requests outstanding (liveness checks, record fetches, lookup queries, TALKREQs).
    pub fn outstanding_requests(&self) -> usize {
        self.requests.len()
    }

    /// TALKREQs waiting for the application's answer, and the bytes they hold.
    pub fn pending_talk_requests(&self) -> (usize, usize) {
        (self.talk.pending_len(), self.talk.pending_bytes())
    }

    /// The registered TALKREQ protocols, in byte order.
    pub fn talk_protocols(&self) -> impl Iterator<Item = &[u8]> {
        self.talk.protocols()
    }

    /// How often `refusal` happened.
    pub fn refusal_count(&self, refusal: Refusal) -> u64 {
        self.refusals.get(&refusal).copied().unwrap_or(0)
    }

    /// All refusal counters.
    pub fn refusals(&self) -> &BTreeMap<Refusal, u64> {
        &self.refusals
    }

    /// Checks the table, the session layer and the bookkeeping against each other; `Err`
    /// names the first inconsistency. For tests and fuzzers.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.table.check_invariants()?;
        self.sessions.check_invariants()?;
        self.talk.check()?;
        if self.requests.len() > self.sessions.request_count() {
            return Err(format!(
                "{} requests tracked, {} in the session layer",
                self.requests.len(),
                self.sessions.request_count()
            ));
        }
        if self.events.len() > MAX_QUEUED_EVENTS {
            return Err("events over their limit".into());
        }
        for e in self.table.entries() {
            if e.node().record().is_none() {
                return Err(format!("{:?} in the table without a record", e.node().id()));
            }
        }
        Ok(())
    }

    // ----- outputs -----

    /// Writes the next datagram to send into `buf` and says where it goes.
    pub fn poll_transmit(&mut self, buf: &mut [u8; MAX_PACKET_SIZE]) -> Option<Transmit> {
        self.sessions.poll_transmit(buf)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next thing a PONG to one of our PINGs told us about our own endpoint (its
    /// recipient IP and port, [DNSDISC_NAT.md §B.6](crate::spec::dnsdisc_nat)), for an
    /// endpoint predictor ([`LocalRecord`](crate::endpoint::LocalRecord)); a queue nobody
    /// drains keeps only the newest
    /// [`MAX_QUEUED_OBSERVATIONS`](crate::endpoint::MAX_QUEUED_OBSERVATIONS).
    pub fn poll_observation(&mut self) -> Option<Observation> {
        self.observations.pop()
    }

    /// When [`Discovery::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.sessions.poll_timeout(),
            self.talk.next_expiry(),
            Some(self.next_refresh),
            Some(self.next_fast_revalidation),
            Some(self.next_slow_revalidation),
            Some(self.next_db_sweep),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- inputs -----

    /// Processes one datagram received from `from`. `Err` is the session layer's reason for
    /// dropping it; with [`DropReason::is_not_discv5`] it may be discv4's.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        unix_secs: u64,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DropReason> {
        self.advance(now, unix_secs);
        let result = self.sessions.handle_datagram(self.now, from, data);
        self.drain_sessions();
        result
    }

    /// Runs what is due at `now`: the session layer's timeouts, TALKREQs left unanswered,
    /// liveness checks, refresh and the node database sweep.
    pub fn handle_timeout(&mut self, now: Instant, unix_secs: u64) {
        self.advance(now, unix_secs);
        let now = self.now;
        self.sessions.handle_timeout(now);
        self.drain_sessions();
        let expired = self.talk.expire(now) as u64;
        if expired > 0 {
            *self.refusals.entry(Refusal::TalkExpired).or_default() += expired;
        }
        if self.next_fast_revalidation <= now {
            self.revalidate(RevalidationList::Fast);
            self.next_fast_revalidation = now + self.jitter(FAST_REVALIDATION_INTERVAL);
        }
        if self.next_slow_revalidation <= now {
            self.revalidate(RevalidationList::Slow);
            self.next_slow_revalidation = now + self.jitter(SLOW_REVALIDATION_INTERVAL);
        }
        if self.next_refresh <= now {
            let half = REFRESH_INTERVAL / 2;
            self.next_refresh = now + half + self.jitter(half);
            self.start_refresh();
        }
        if self.next_db_sweep <= now {
            self.db.expire(self.unix_secs);
            self.next_db_sweep = now + DB_CLEANUP_INTERVAL;
        }
        self.drain_sessions();
    }

    // ----- commands -----

    /// Starts a lookup for the nodes closest to `target`; its result arrives as
    /// [`Event::LookupFinished`].
    pub fn start_lookup(&mut self, now: Instant, unix_secs: u64, target: NodeId) -> LookupId {
        self.advance(now, unix_secs);
        if self.table.is_empty() && self.refresh_remaining.is_none() {
            self.start_refresh();
        }
        let id = self.begin_lookup(target, LookupKind::User);
        self.drain_sessions();
        id
    }

    /// Starts a lookup for a random target.
    pub fn start_random_lookup(&mut self, now: Instant, unix_secs: u64) -> LookupId {
        let target = self.random_id();
        self.start_lookup(now, unix_secs, target)
    }

    /// Adds a node learnt outside discovery (from a signed DNS tree, say) to the table, the
    /// way bootnodes with a record and database seeds enter it: as a found node, under the
    /// table's IP limits, and checked by revalidation like any other. It needs its record
    /// (discv5 addresses and handshakes by it). Says whether the table took it (not: no
    /// record, ourselves, an address outside NetRestrict, a node already there, a full
    /// bucket); an [`Event::NodeAdded`] follows when it did.
    pub fn add_seed(&mut self, now: Instant, unix_secs: u64, node: Node) -> bool {
        self.advance(now, unix_secs);
        if node.record().is_none()
            || node.id() == self.local_id()
            || !self.config.allows(&node.ip())
        {
            return false;
        }
        self.add_to_table(node, false)
    }

    /// Sends a PING to the node of `record`, at the UDP endpoint it advertises (geth
    /// `UDPv5.Ping`); the PONG, or why none came, arrives as [`Event::PingResponse`] with the
    /// returned id.
    pub fn ping(&mut self, now: Instant, record: &Enr) -> Result<RequestId, SendError> {
        self.user_request(now, record, Request::Ping, Purpose::Ping)
    }

    /// Sends FINDNODE for `distances` (0 for the node's own record) to the node of `record`,
    /// at the UDP endpoint it advertises (geth `UDPv5.Findnode`); the records, or why none
    /// came, arrive as [`Event::FindNodeResponse`] with the returned id. The records are not
    /// put into the table.
    pub fn find_node(
        &mut self,
        now: Instant,
        record: &Enr,
        distances: &[u64],
    ) -> Result<RequestId, SendError> {
        let ask = Request::FindNode {
            distances: distances.to_vec(),
        };
        self.user_request(now, record, ask, Purpose::FindNode)
    }

    /// Sends a TALKREQ of `protocol` to the node of `record`, at the UDP endpoint it
    /// advertises; the answer arrives as [`Event::TalkResponse`] with the returned id.
    pub fn talk_request(
        &mut self,
        now: Instant,
        record: &Enr,
        protocol: &[u8],
        request: &[u8],
    ) -> Result<RequestId, SendError> {
        let ask = Request::TalkReq {
            protocol: protocol.to_vec(),
            request: request.to_vec(),
        };
        self.user_request(now, record, ask, Purpose::Talk)
    }

    /// Answers the TALKREQ `id` ([`Event::TalkRequest`]) with `response`.
    pub fn answer_talk(
        &mut self,
        now: Instant,
        id: TalkRequestId,
        response: &[u8],
    ) -> Result<(), TalkError> {
        self.advance(now, self.unix_secs);
        let pending = self.talk.take(id).ok_or(TalkError::UnknownRequest)?;
        let answer = Message::TalkResp(TalkResp {
            request_id: pending.request_id,
            response: response.to_vec(),
        });
        let sent = self
            .sessions
            .send_response(self.now, &pending.from, answer)
            .map_err(TalkError::Send);
        self.drain_sessions();
        sent
    }

    /// Registers the TALKREQ protocol `name`: its requests reach the application from now
    /// on. False (and nothing registered) when [`MAX_TALK_PROTOCOLS`] are registered.
    pub fn register_talk_protocol(&mut self, name: &[u8]) -> bool {
        self.talk.register(name)
    }

    /// Unregisters `name`: its requests get an empty TALKRESP from now on (those already
    /// handed to the application may still be answered).
    pub fn unregister_talk_protocol(&mut self, name: &[u8]) {
        self.talk.unregister(name);
    }

    // ----- internals -----

    fn advance(&mut self, now: Instant, unix_secs: u64) {
        self.now = self.now.max(now);
        self.unix_secs = self.unix_secs.max(unix_secs);
    }

    /// A PONG from `from` said our endpoint is its recipient address.
    pub(super) fn observe_pong(&mut self, from: &SocketAddr, pong: &Pong) {
        if let Some(ip) = pong.recipient_ip {
            self.observations.push(Observation::Statement {
                reporter: from.ip(),
                endpoint: SocketAddr::new(ip, pong.recipient_port),
            });
        }
    }

    pub(super) fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    pub(super) fn refuse(&mut self, refusal: Refusal) {
        *self.refusals.entry(refusal).or_default() += 1;
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(self.rng.next_u64() % ms)
    }

    fn random_id(&mut self) -> NodeId {
        let mut t = [0u8; 32];
        self.rng.fill_bytes(&mut t);
        NodeId(t)
    }

    /// Sends the application's `request` to the node of `record`, at its advertised endpoint.
    fn user_request(
        &mut self,
        now: Instant,
        record: &Enr,
        request: Request,
        purpose: Purpose,
    ) -> Result<RequestId, SendError> {
        self.advance(now, self.unix_secs);
        let contact = Contact::from_record(record.clone()).ok_or(SendError::NoEndpoint)?;
        let id = self.sessions.send_request(self.now, contact, request)?;
        self.requests.insert(id, purpose);
        self.drain_sessions();
        Ok(id)
    }

    /// Sends `request` to `node` for `purpose`; false if the session layer refused it.
    fn request(&mut self, node: &Node, request: Request, purpose: Purpose) -> bool {
        let contact = match node.record() {
            Some(r) => Contact::from_record_at(r.clone(), node.udp_addr()),
            None => Contact::from_key(*node.public_key(), node.udp_addr()),
        };
        match self.sessions.send_request(self.now, contact, request) {
            Ok(id) => {
                self.requests.insert(id, purpose);
                true
            }
            Err(_) => false,
        }
    }

    /// Puts a node with a record into the table; tells the session layer its record.
    /// Adds `node` (with its record) to the table; true (and an [`Event::NodeAdded`]) when
    /// it went in.
    pub(super) fn add_to_table(&mut self, node: Node, inbound: bool) -> bool {
        let Some(record) = node.record().cloned() else {
            return false;
        };
        let outcome = if inbound {
            self.table.add_inbound(node.clone(), self.now)
        } else {
            self.table.add_found(node.clone(), self.now)
        };
        match outcome {
            AddOutcome::Added => {
                self.sessions.learn_record(record);
                self.emit(Event::NodeAdded(node));
                return true;
            }
            AddOutcome::Updated { .. } | AddOutcome::Replacement => {
                self.sessions.learn_record(record)
            }
            AddOutcome::Unchanged | AddOutcome::Rejected(_) => {}
        }
        false
    }

    /// Asks `node` for its current record, unless that is under way already.
    fn fetch_record(&mut self, node: Node) {
        if !self.fetching.insert(node.id()) {
            return;
        }
        let id = node.id();
        let ask = Request::FindNode { distances: vec![0] };
        if !self.request(&node.clone(), ask, Purpose::FetchRecord(node)) {
            self.fetching.remove(&id);
        }
    }

    /// A PING named the sender's record seq: fetch the record when it is newer than the one
    /// we hold, the table's (as a PONG's seq does; sigp does the same) or, for a node outside
    /// the table, the one its handshake brought. The latter is how a node whose endpoint
    /// changed gets into the table: behind a NAT its first record named an address it did not
    /// write from ([`Refusal::InboundAddressMismatch`]), and its sessions, kept until evicted,
    /// bring no new handshake; its PINGs carry the seq of the record that names its public
    /// endpoint. At most one fetch per node at a time, and only for a seq above the one
    /// already fetched.
    pub(super) fn ping_named_seq(&mut self, from: NodeAddress, seq: u64) {
        if let Some(e) = self.table.get(&from.id) {
            if seq > e.node().seq() {
                let node = e.node().clone();
                self.fetch_record(node);
            }
            return;
        }
        let known = match self.sessions.known_record(&from.id) {
            Some(r) if self.bootstrapped && seq > r.seq() => r.clone(),
            _ => return,
        };
        if !self.fetching.insert(from.id) {
            return;
        }
        let contact = Contact::from_record_at(known, from.addr);
        let ask = Request::FindNode { distances: vec![0] };
        match self.sessions.send_request(self.now, contact, ask) {
            Ok(id) => {
                self.requests.insert(id, Purpose::FetchInbound(from));
            }
            Err(_) => {
                self.fetching.remove(&from.id);
            }
        }
    }

    // ----- liveness checks -----

    fn revalidate(&mut self, list: RevalidationList) {
        let Some(node) = self
            .table
            .pick_for_revalidation(list, &mut self.rng, &self.revalidating)
            .cloned()
        else {
            return;
        };
        self.revalidating.insert(node.id());
        if !self.request(
            &node.clone(),
            Request::Ping,
            Purpose::Revalidate(node.clone()),
        ) {
            self.revalidation_done(&node, false, None);
        }
    }

    pub(super) fn revalidation_done(&mut self, node: &Node, answered: bool, seq: Option<u64>) {
        let id = node.id();
        self.revalidating.remove(&id);
        if answered {
            let Some(entry) = self.table.revalidation_succeeded(&id) else {
                return;
            };
            let current = entry.node().clone();
            if entry.liveness_checks() > PERSIST_MIN_LIVENESS_CHECKS {
                self.db.store_node(current.clone());
            }
            // Record refresh: the PONG names a newer record than the one we hold.
            if seq.is_some_and(|s| s > current.seq()) {
                self.fetch_record(current);
            }
            return;
        }
        match self.table.revalidation_failed(&id, self.now, &mut self.rng) {
            Some(RevalidationFailure::Removed { removed, promoted }) => {
                self.emit(Event::NodeRemoved(removed));
                if let Some(p) = promoted.and_then(|p| self.table.get(&p)) {
                    let n = p.node().clone();
                    if let Some(r) = n.record() {
                        self.sessions.learn_record(r.clone());
                    }
                    self.emit(Event::NodeAdded(n));
                }
            }
            Some(RevalidationFailure::Demoted) | None => {}
        }
    }

    // ----- refresh and lookups -----

    fn start_refresh(&mut self) {
        if self.refresh_remaining.is_some() {
            return;
        }
        let seeds = self.db.seeds(SEED_COUNT, self.unix_secs);
        for n in seeds {
            if self.config.allows(&n.ip()) {
                self.add_to_table(n, false);
            }
        }
        for n in self.config.bootnodes.clone() {
            if !self.config.allows(&n.ip()) || self.table.contains(&n.id()) {
                continue;
            }
            if n.record().is_some() {
                self.add_to_table(n, false);
            } else {
                self.fetch_record(n);
            }
        }
        self.refresh_remaining = Some(RANDOM_LOOKUPS_PER_REFRESH);
        let local = self.local_id();
        self.begin_lookup(local, LookupKind::Refresh);
    }

    fn begin_lookup(&mut self, target: NodeId, kind: LookupKind) -> LookupId {
        let id = LookupId(self.next_lookup_id);
        self.next_lookup_id += 1;
        let mut seeds = self.table.closest(&target, LOOKUP_SEEDS, false);
        if seeds.is_empty() {
            seeds = self
                .config
                .bootnodes
                .iter()
                .filter(|n| self.config.allows(&n.ip()))
                .cloned()
                .collect();
        }
        let lookup = Lookup::for_id(self.local_id(), target, seeds);
        self.lookups.insert(id, (lookup, kind));
        self.advance_lookup(id);
        id
    }

    fn advance_lookup(&mut self, id: LookupId) {
        loop {
            let Some((lookup, _)) = self.lookups.get_mut(&id) else {
                return;
            };
            let Some(node) = lookup.next_query() else {
                break;
            };
            let distances = lookup_distances(&lookup.target_id(), &node.id());
            let ask = Request::FindNode { distances };
            let query = Purpose::Query {
                lookup: id,
                node: node.clone(),
            };
            if !self.request(&node, ask, query) {
                if let Some((lookup, _)) = self.lookups.get_mut(&id) {
                    lookup.on_failure(&node.id());
                }
            }
        }
        let finished = self.lookups.get(&id).is_some_and(|(l, _)| l.is_finished());
        if !finished {
            return;
        }
        let Some((lookup, kind)) = self.lookups.remove(&id) else {
            return;
        };
        self.emit(Event::LookupFinished {
            id,
            target: lookup.target_id(),
            nodes: lookup.result(),
        });
        if kind == LookupKind::Refresh {
            match self.refresh_remaining {
                Some(0) | None => {
                    self.refresh_remaining = None;
                    if !self.bootstrapped {
                        self.bootstrapped = true;
                        self.emit(Event::Bootstrapped);
                    }
                }
                Some(n) => {
                    self.refresh_remaining = Some(n - 1);
                    let target = self.random_id();
                    self.begin_lookup(target, LookupKind::Refresh);
                }
            }
        }
    }

    /// A lookup query ended: `Some(nodes)` if NODES came (the checked records).
    pub(super) fn query_done(&mut self, lookup: LookupId, node: Node, answer: Option<Vec<Node>>) {
        let nodes = answer.clone().unwrap_or_default();
        // Failure accounting as in discv4 (geth `trackRequest`): an empty answer counts too.
        let rec = self.db.endpoint(&node.id(), &node.ip());
        let fails = if nodes.is_empty() {
            rec.find_failures.saturating_add(1)
        } else {
            0
        };
        self.db.set_find_failures(&node.id(), &node.ip(), fails);
        if fails >= MAX_FINDNODE_FAILURES
            && self.table.bucket_len_for(&node.id()) >= FAILURE_EVICTION_MIN_BUCKET
        {
            if let Some((removed, promoted)) =
                self.table.remove(&node.id(), self.now, &mut self.rng)
            {
                self.emit(Event::NodeRemoved(removed.id()));
                if let Some(p) = promoted {
                    self.emit(Event::NodeAdded(p));
                }
            }
        }
        for n in &nodes {
            self.emit(Event::NodeSeen(n.clone()));
            self.add_to_table(n.clone(), false);
        }
        if let Some((l, _)) = self.lookups.get_mut(&lookup) {
            match answer {
                Some(found) => l.on_response(&node.id(), found),
                None => l.on_failure(&node.id()),
            }
        }
        self.advance_lookup(lookup);
    }
}

/// Nodes of the table a lookup starts from (geth: the 16 closest).
const LOOKUP_SEEDS: usize = crate::discv4::table::BUCKET_SIZE;

/// The distances a lookup asks `node` for: the target's log distance from it and those next
/// to it, [`LOOKUP_DISTANCES`] in all, within 1..=256 (geth `lookupDistances`).
pub fn lookup_distances(target: &NodeId, node: &NodeId) -> Vec<u64> {
    let td = u64::from(target.log_distance(node));
    let mut d = vec![td];
    let mut i = 1;
    while d.len() < LOOKUP_DISTANCES && i <= 256 {
        if td + i <= 256 {
            d.push(td + i);
        }
        if td > i && d.len() < LOOKUP_DISTANCES {
            d.push(td - i);
        }
        i += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_distances_are_the_targets_and_its_neighbours() {
        let a = NodeId([0; 32]);
        let mut far = [0u8; 32];
        far[0] = 0x80;
        assert_eq!(lookup_distances(&NodeId(far), &a), vec![256, 255, 254]);
        let mut near = [0u8; 32];
        near[31] = 1;
        assert_eq!(lookup_distances(&NodeId(near), &a), vec![1, 2, 3]);
        let mut mid = [0u8; 32];
        mid[16] = 1;
        assert_eq!(lookup_distances(&NodeId(mid), &a), vec![121, 122, 120]);
        // The target itself: distance 0, then 1 and 2.
        assert_eq!(lookup_distances(&a, &a), vec![0, 1, 2]);
    }
}
