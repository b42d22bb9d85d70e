//! The discv4 state machine: requests and replies, endpoint proofs, revalidation, refresh
//! and lookups, driven by datagrams and timeouts ([PROTOCOL.md §7, §8](crate::spec::protocol)).
//!
//! # Driving contract
//! * Inputs: [`Discovery::handle_datagram`] for every datagram received,
//!   [`Discovery::handle_timeout`] once the deadline from [`Discovery::poll_timeout`] has
//!   passed, and commands such as [`Discovery::start_lookup`]. Every input carries `now` (a
//!   monotonic [`Instant`] that never goes backwards) and `unix_secs`, the wall clock in unix
//!   seconds, used only for packet expirations and the node database.
//! * Outputs, drained after every input: [`Discovery::poll_transmit`] until `None`, then
//!   [`Discovery::poll_event`] until `None`, then [`Discovery::poll_timeout`] to re-arm the
//!   timer.
//!
//! Nothing inbound ever produces an error for the driver: malformed, expired, unsolicited and
//! unproven packets are dropped silently and counted by [`DropReason`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand_core::CryptoRng;

use super::config::*;
use super::events::{DropReason, Event, LookupId, Transmit};
use super::lookup::Lookup;
use super::node::Node;
use super::nodedb::{NodeDb, NodeDbSnapshot};
use super::requests::{Expect, Pending, Purpose};
use super::table::{AddOutcome, RevalidationFailure, RevalidationList, Table, BUCKET_SIZE};
use super::wire::{self, Endpoint, FindNode, Packet, Ping, MAX_PACKET_SIZE, PING_VERSION};
use crate::endpoint::{Observation, Observations};
use crate::enr::Enr;
use crate::identity::{NodeId, NodeSecretKey, PUBLIC_KEY_LEN};
use crate::time::Instant;

/// Why a lookup runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookupKind {
    /// Part of a table refresh.
    Refresh,
    /// Asked for by the application.
    User,
}

/// One node's discovery v4 endpoint.
pub struct Discovery<R> {
    pub(super) key: NodeSecretKey,
    pub(super) local_record: Enr,
    /// The `from` endpoint of our Pings, as `local_record` advertises it.
    local_endpoint: Endpoint,
    pub(super) config: Config,
    pub(super) rng: R,
    pub(super) table: Table,
    pub(super) db: NodeDb,
    pub(super) pending: Vec<Pending>,
    /// How many of `pending` are [`Purpose::BondInbound`].
    pub(super) inbound_bonds: usize,
    /// FindNode requests waiting out the pause after a bonding ping
    /// ([PROTOCOL.md §7.4](crate::spec::protocol)).
    delayed: Vec<(Instant, LookupId, Node)>,
    lookups: BTreeMap<LookupId, (Lookup, LookupKind)>,
    next_lookup_id: u64,
    /// Refresh lookups still to start after the running one; `None` when no refresh runs.
    refresh_remaining: Option<usize>,
    pub(super) bootstrapped: bool,
    next_refresh: Instant,
    next_fast_revalidation: Instant,
    next_slow_revalidation: Instant,
    next_db_sweep: Instant,
    pub(super) revalidating: BTreeSet<NodeId>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    /// What Pings and Pongs said about our endpoint, for the owner's
    /// [`LocalRecord`](crate::endpoint::LocalRecord).
    observations: Observations,
    drops: BTreeMap<DropReason, u64>,
    /// Requests timed out since the last matched reply.
    consecutive_timeouts: u32,
    last_clock_skew_report: Option<Instant>,
    pub(super) now: Instant,
    pub(super) unix_secs: u64,
}

impl<R: CryptoRng> Discovery<R> {
    /// A node with secret `key` and signed `local_record` (whose `ip`/`udp`/`tcp` are what we
    /// advertise), seeded from `db` (an earlier [`Discovery::db_snapshot`], or the default).
    /// The first refresh runs at the first [`Discovery::handle_timeout`], due at `now`.
    pub fn new(
        key: NodeSecretKey,
        local_record: Enr,
        config: Config,
        db: NodeDbSnapshot,
        rng: R,
        now: Instant,
        unix_secs: u64,
    ) -> Self {
        let table = Table::new(key.id());
        let db =
            NodeDb::from_snapshot_seeded(db, unix_secs, key.hash_seed(b"devp2p node hash seed"));
        Discovery {
            key,
            local_endpoint: advertised_endpoint(&local_record),
            local_record,
            config,
            rng,
            table,
            db,
            pending: Vec::new(),
            inbound_bonds: 0,
            delayed: Vec::new(),
            lookups: BTreeMap::new(),
            next_lookup_id: 0,
            refresh_remaining: None,
            bootstrapped: false,
            next_refresh: now,
            next_fast_revalidation: now + FAST_REVALIDATION_INTERVAL,
            next_slow_revalidation: now + SLOW_REVALIDATION_INTERVAL,
            next_db_sweep: now + DB_CLEANUP_INTERVAL,
            revalidating: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            observations: Observations::default(),
            drops: BTreeMap::new(),
            consecutive_timeouts: 0,
            last_clock_skew_report: None,
            now,
            unix_secs,
        }
    }

    // ----- getters -----

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.key.id()
    }

    /// The record we hand out in ENRResponse.
    pub fn local_record(&self) -> &Enr {
        &self.local_record
    }

    /// Replaces our record (it must be signed with our key and carry a higher seq).
    pub fn set_local_record(&mut self, record: Enr) {
        if record.node_id() == self.key.id() && record.seq() > self.local_record.seq() {
            self.local_endpoint = advertised_endpoint(&record);
            self.local_record = record;
        }
    }

    /// The routing table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The signature scheme of our key, which the packets we read must use too.
    pub fn signature_scheme(&self) -> crate::identity::SignatureScheme {
        self.key.signature_scheme()
    }

    /// Whether the first refresh has finished.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// How many inbound packets (or Neighbors entries) were dropped for `reason`.
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }

    /// All drop counters.
    pub fn drop_counts(&self) -> &BTreeMap<DropReason, u64> {
        &self.drops
    }

    /// The node database to persist ([PROTOCOL.md §8.7](crate::spec::protocol)).
    pub fn db_snapshot(&self) -> NodeDbSnapshot {
        self.db.snapshot()
    }

    /// Number of lookups running.
    pub fn active_lookups(&self) -> usize {
        self.lookups.len()
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

    /// The next thing a packet told us about our own endpoint ([DNSDISC_NAT.md
    /// §B.6](crate::spec::dnsdisc_nat)): the `to` of every Pong matching our Ping and of every
    /// Ping from a bonded node, and the destination of every Ping we send. For an endpoint
    /// predictor ([`LocalRecord`](crate::endpoint::LocalRecord)); a queue nobody drains keeps
    /// only the newest [`MAX_QUEUED_OBSERVATIONS`](crate::endpoint::MAX_QUEUED_OBSERVATIONS).
    pub fn poll_observation(&mut self) -> Option<Observation> {
        self.observations.pop()
    }

    /// When [`Discovery::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.iter().map(|p| p.deadline);
        let delayed = self.delayed.iter().map(|d| d.0);
        pending
            .chain(delayed)
            .chain([
                self.next_refresh,
                self.next_fast_revalidation,
                self.next_slow_revalidation,
                self.next_db_sweep,
            ])
            .min()
    }

    // ----- inputs -----

    fn advance_clock(&mut self, now: Instant, unix_secs: u64) {
        self.now = self.now.max(now);
        self.unix_secs = unix_secs;
    }

    /// Processes one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, unix_secs: u64, from: SocketAddr, data: &[u8]) {
        self.advance_clock(now, unix_secs);
        let from = SocketAddr::new(super::netutil::canonical_ip(from.ip()), from.port());
        let decoded = match wire::decode_with(data, self.key.signature_scheme()) {
            Ok(d) => d,
            Err(e) => {
                self.count_drop(drop_reason_for(&e));
                return;
            }
        };
        if decoded.sender.id() == self.key.id() {
            self.count_drop(DropReason::FromSelf);
            return;
        }
        if let Some(exp) = decoded.packet.expiration() {
            if wire::is_expired(exp, unix_secs) {
                self.count_drop(DropReason::Expired);
                return;
            }
        }
        self.handle_packet(from, decoded);
    }

    /// Runs everything due at `now`: reply timeouts, delayed requests, revalidation, refresh
    /// and the node database sweep.
    pub fn handle_timeout(&mut self, now: Instant, unix_secs: u64) {
        self.advance_clock(now, unix_secs);
        let now = self.now;

        let (expired, kept): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.deadline <= now);
        self.pending = kept;
        self.inbound_bonds = self
            .pending
            .iter()
            .filter(|p| matches!(p.purpose, Purpose::BondInbound(_)))
            .count();
        self.consecutive_timeouts = self
            .consecutive_timeouts
            .saturating_add(expired.len() as u32);
        for p in expired {
            self.request_timed_out(p);
        }
        self.check_clock_skew();

        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|d| d.0 <= now);
        self.delayed = later;
        for (_, lookup, node) in due {
            self.send_findnode(lookup, node);
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
            self.db.expire(unix_secs);
            self.next_db_sweep = now + DB_CLEANUP_INTERVAL;
        }
    }

    /// Starts a lookup for the 64-byte `target`; its result arrives as
    /// [`Event::LookupFinished`].
    pub fn start_lookup(
        &mut self,
        now: Instant,
        unix_secs: u64,
        target: [u8; PUBLIC_KEY_LEN],
    ) -> LookupId {
        self.advance_clock(now, unix_secs);
        if self.table.is_empty() && self.refresh_remaining.is_none() {
            self.start_refresh();
        }
        self.begin_lookup(target, LookupKind::User)
    }

    /// Starts a lookup for a random target.
    pub fn start_random_lookup(&mut self, now: Instant, unix_secs: u64) -> LookupId {
        let target = self.random_target();
        self.start_lookup(now, unix_secs, target)
    }

    /// Adds a node learnt outside discovery (from a signed DNS tree, say) to the table, the
    /// way bootnodes and database seeds enter it: as a found node, under the table's IP
    /// limits, and checked by revalidation like any other. Lookups start from it once it is
    /// in. Says whether the table took it (not: ourselves, an address outside NetRestrict, a
    /// node already there, a full bucket); an [`Event::NodeAdded`] follows when it did.
    pub fn add_seed(&mut self, now: Instant, unix_secs: u64, node: Node) -> bool {
        self.advance_clock(now, unix_secs);
        if node.id() == self.key.id() || !self.config.allows(&node.ip()) {
            return false;
        }
        self.add_to_table(node, false)
    }

    // ----- internals shared with the packet handlers -----

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        *self.drops.entry(reason).or_default() += 1;
    }

    pub(super) fn observe(&mut self, o: Observation) {
        self.observations.push(o);
    }

    pub(super) fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    pub(super) fn expiration(&self) -> u64 {
        self.unix_secs.saturating_add(PACKET_EXPIRATION_SECS)
    }

    /// Encodes, signs and queues `packet` for `to`; returns its hash.
    pub(super) fn send(&mut self, to: SocketAddr, packet: &Packet) -> [u8; 32] {
        let (bytes, hash) = wire::encode(packet, &self.key);
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.transmits.pop_front();
        }
        self.transmits.push_back((to, bytes));
        hash
    }

    /// Registers a request whose reply is due within [`RESPONSE_TIMEOUT`].
    pub(super) fn expect(&mut self, node: &Node, expect: Expect, purpose: Purpose) {
        if matches!(purpose, Purpose::BondInbound(_)) {
            self.inbound_bonds += 1;
        }
        self.pending.push(Pending {
            id: node.id(),
            ip: node.ip(),
            deadline: self.now + RESPONSE_TIMEOUT,
            expect,
            purpose,
        });
    }

    /// Notes that a reply matched a request: the network hears us, so the clock is fine.
    pub(super) fn reply_matched(&mut self) {
        self.consecutive_timeouts = 0;
    }

    fn check_clock_skew(&mut self) {
        if self.consecutive_timeouts <= CLOCK_SKEW_TIMEOUT_THRESHOLD {
            return;
        }
        let cooled = self
            .last_clock_skew_report
            .is_none_or(|t| self.now.saturating_duration_since(t) >= CLOCK_SKEW_REPORT_COOLDOWN);
        if cooled {
            self.last_clock_skew_report = Some(self.now);
            self.emit(Event::ClockSkewSuspected {
                consecutive_timeouts: self.consecutive_timeouts,
            });
        }
        // As geth does: start counting afresh either way.
        self.consecutive_timeouts = 0;
    }

    /// Removes the pending request at `i` after a reply matched it.
    pub(super) fn take_pending(&mut self, i: usize) -> Pending {
        self.reply_matched();
        let p = self.pending.remove(i);
        if matches!(p.purpose, Purpose::BondInbound(_)) {
            self.inbound_bonds -= 1;
        }
        p
    }

    /// Sends a Ping to `node` and waits for its Pong.
    pub(super) fn send_ping(&mut self, node: &Node, purpose: Purpose) {
        let from = self.local_endpoint;
        let ping = Packet::Ping(Ping {
            version: PING_VERSION,
            from,
            to: Endpoint {
                ip: Some(node.ip()),
                udp: node.udp_port(),
                tcp: 0,
            },
            expiration: self.expiration(),
            enr_seq: Some(self.local_record.seq()),
        });
        let ping_hash = self.send(node.udp_addr(), &ping);
        self.observe(Observation::Contact { host: node.ip() });
        self.expect(node, Expect::Pong { ping_hash }, purpose);
    }

    /// Adds `node` to the table; true (and an [`Event::NodeAdded`]) when it went in.
    pub(super) fn add_to_table(&mut self, node: Node, inbound: bool) -> bool {
        let outcome = if inbound {
            self.table.add_inbound(node.clone(), self.now)
        } else {
            self.table.add_found(node.clone(), self.now)
        };
        let added = outcome == AddOutcome::Added;
        if added {
            self.emit(Event::NodeAdded(node));
        }
        added
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(self.rng.next_u64() % ms)
    }

    fn random_target(&mut self) -> [u8; PUBLIC_KEY_LEN] {
        let mut t = [0u8; PUBLIC_KEY_LEN];
        self.rng.fill_bytes(&mut t);
        t
    }

    // ----- requests finishing -----

    /// A request's deadline passed without (enough of) a reply.
    fn request_timed_out(&mut self, p: Pending) {
        match p.purpose {
            Purpose::BondInbound(_) | Purpose::FetchRecord => {}
            Purpose::Revalidate => self.revalidation_done(&p.id, false, None),
            Purpose::BondBeforeQuery { lookup, node } => {
                self.delayed
                    .push((self.now + RESPONSE_TIMEOUT, lookup, node));
            }
            Purpose::Query { lookup, node } => {
                let answered = match p.expect {
                    Expect::Neighbors { packets, nodes, .. } => (packets > 0).then_some(nodes),
                    _ => None,
                };
                self.query_done(lookup, node, answered);
            }
        }
    }

    /// A Pong matched one of our Pings.
    pub(super) fn ping_answered(&mut self, p: Pending, enr_seq: Option<u64>) {
        match p.purpose {
            Purpose::BondInbound(node) => {
                if self.bootstrapped {
                    self.add_to_table(node, true);
                }
            }
            Purpose::Revalidate => self.revalidation_done(&p.id, true, enr_seq),
            Purpose::BondBeforeQuery { lookup, node } => {
                // Give the remote time to ping us back and finish its own proof
                // (core/docs/PROTOCOL.md §7.4).
                self.delayed
                    .push((self.now + RESPONSE_TIMEOUT, lookup, node));
            }
            Purpose::Query { .. } | Purpose::FetchRecord => {}
        }
    }

    /// A FindNode query ended: `Some(nodes)` if at least one Neighbors packet came.
    pub(super) fn query_done(&mut self, lookup: LookupId, node: Node, answer: Option<Vec<Node>>) {
        let nodes = answer.clone().unwrap_or_default();
        // Failure accounting (core/docs/PROTOCOL.md §7.9).
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
            self.remove_from_table(&node.id());
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

    fn remove_from_table(&mut self, id: &NodeId) {
        if let Some((removed, promoted)) = self.table.remove(id, self.now, &mut self.rng) {
            self.emit(Event::NodeRemoved(removed.id()));
            if let Some(p) = promoted {
                self.emit(Event::NodeAdded(p));
            }
        }
    }

    // ----- revalidation (core/docs/PROTOCOL.md §8.4) -----

    fn revalidate(&mut self, list: RevalidationList) {
        let busy = &self.revalidating;
        let Some(node) = self
            .table
            .pick_for_revalidation(list, &mut self.rng, busy)
            .cloned()
        else {
            return;
        };
        self.revalidating.insert(node.id());
        self.send_ping(&node, Purpose::Revalidate);
    }

    fn revalidation_done(&mut self, id: &NodeId, answered: bool, enr_seq: Option<u64>) {
        self.revalidating.remove(id);
        if answered {
            let Some(entry) = self.table.revalidation_succeeded(id) else {
                return;
            };
            let node = entry.node().clone();
            if entry.liveness_checks() > PERSIST_MIN_LIVENESS_CHECKS {
                self.db.store_node(node.clone());
            }
            if enr_seq.is_some_and(|s| s > node.seq()) {
                let hash = self.send(
                    node.udp_addr(),
                    &Packet::EnrRequest(wire::EnrRequest {
                        expiration: self.expiration(),
                    }),
                );
                self.expect(
                    &node,
                    Expect::EnrResponse { request_hash: hash },
                    Purpose::FetchRecord,
                );
            }
        } else {
            match self.table.revalidation_failed(id, self.now, &mut self.rng) {
                Some(RevalidationFailure::Removed { removed, promoted }) => {
                    self.emit(Event::NodeRemoved(removed));
                    if let Some(p) = promoted.and_then(|p| self.table.get(&p)) {
                        let n = p.node().clone();
                        self.emit(Event::NodeAdded(n));
                    }
                }
                Some(RevalidationFailure::Demoted) | None => {}
            }
        }
    }

    // ----- refresh and lookups (core/docs/PROTOCOL.md §8.5, §8.6) -----

    fn start_refresh(&mut self) {
        if self.refresh_remaining.is_some() {
            return;
        }
        let seeds = self.db.seeds(SEED_COUNT, self.unix_secs);
        let boot = self.config.bootnodes.clone();
        for n in seeds.into_iter().chain(boot) {
            if self.config.allows(&n.ip()) {
                self.add_to_table(n, false);
            }
        }
        self.refresh_remaining = Some(RANDOM_LOOKUPS_PER_REFRESH);
        let mut self_target = [0u8; PUBLIC_KEY_LEN];
        self_target.copy_from_slice(self.key.public().raw());
        self.begin_lookup(self_target, LookupKind::Refresh);
    }

    fn begin_lookup(&mut self, target: [u8; PUBLIC_KEY_LEN], kind: LookupKind) -> LookupId {
        let id = LookupId(self.next_lookup_id);
        self.next_lookup_id += 1;
        let target_id = NodeId::of_target(&target);
        let mut seeds = self.table.closest(&target_id, BUCKET_SIZE, false);
        if seeds.is_empty() {
            seeds = self
                .config
                .bootnodes
                .iter()
                .filter(|n| self.config.allows(&n.ip()))
                .cloned()
                .collect();
        }
        let lookup = Lookup::new(self.key.id(), target, seeds);
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
            self.start_query(id, node);
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
            target: lookup.target().copied().unwrap_or([0; PUBLIC_KEY_LEN]),
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
                    let target = self.random_target();
                    self.begin_lookup(target, LookupKind::Refresh);
                }
            }
        }
    }

    /// Asks `node` for the lookup's target, first proving our endpoint if needed
    /// ([PROTOCOL.md §7.4](crate::spec::protocol)).
    fn start_query(&mut self, lookup: LookupId, node: Node) {
        let rec = self.db.endpoint(&node.id(), &node.ip());
        let ping_age = self.unix_secs.saturating_sub(rec.last_ping_received);
        if rec.last_ping_received == 0
            || ping_age > BOND_EXPIRATION_SECS
            || rec.find_failures > MAX_FINDNODE_FAILURES
        {
            let n = node.clone();
            self.send_ping(&n, Purpose::BondBeforeQuery { lookup, node });
        } else {
            self.send_findnode(lookup, node);
        }
    }

    fn send_findnode(&mut self, lookup: LookupId, node: Node) {
        let Some((l, _)) = self.lookups.get(&lookup) else {
            return;
        };
        let Some(&target) = l.target() else {
            return; // every discv4 lookup has a 64-byte target (Lookup::new)
        };
        let packet = Packet::FindNode(FindNode {
            target,
            expiration: self.expiration(),
        });
        self.send(node.udp_addr(), &packet);
        let n = node.clone();
        self.expect(
            &n,
            Expect::Neighbors {
                entries: 0,
                packets: 0,
                nodes: Vec::new(),
            },
            Purpose::Query { lookup, node },
        );
    }
}

/// Which counter a decode failure goes to.
fn drop_reason_for(e: &wire::WireError) -> DropReason {
    use wire::WireError as W;
    match e {
        W::TooSmall => DropReason::TooSmall,
        W::TooLarge => DropReason::TooLarge,
        W::BadHash => DropReason::BadHash,
        W::BadSignature(_) => DropReason::BadSignature,
        W::UnknownType(_) => DropReason::UnknownType,
        W::Enr(_) => DropReason::BadRecord,
        W::Rlp(_) | W::MissingField(_) | W::BadField(_) | W::BadEnrSeq => DropReason::Malformed,
    }
}

/// The endpoint `record` advertises, as the `from` of a Ping: its UDP endpoint with its TCP
/// port, or nothing at all.
fn advertised_endpoint(record: &Enr) -> Endpoint {
    match record.udp_endpoint() {
        Some(addr) => Endpoint {
            ip: Some(addr.ip()),
            udp: addr.port(),
            tcp: record.tcp_endpoint().map_or(0, |a| a.port()),
        },
        None => Endpoint {
            ip: None,
            udp: 0,
            tcp: 0,
        },
    }
}
