//! The dial scheduler ([PROTOCOL.md §9.1–9.2](crate::spec::protocol)): decides whom to dial and
//! when, from static nodes and from candidates discovery supplies. A pure machine: the
//! [`Node`](crate::node) feeds it peer-set changes and dial outcomes and asks it for the next
//! action.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rand_core::CryptoRng;

use crate::identity::{NodeId, NodePublicKey};
use crate::netlist::NetList;
use crate::time::Instant;

/// How long a dialled node is not dialled again (geth `dialHistoryExpiration`: the inbound
/// throttle of 30 s plus 5 s, so the remote's throttle has expired when we retry).
pub const DIAL_HISTORY_EXPIRATION: Duration = Duration::from_secs(35);
/// How soon a static node is dialled again after a lost duplicate race: we closed one
/// connection to it with AlreadyConnected and it refused the other with AlreadyConnected,
/// so neither survives (see [`Dialer::refused_as_duplicate`]). A second is ample for the
/// remote to drop the connection we closed.
pub const DUPLICATE_REDIAL_DELAY: Duration = Duration::from_secs(1);
/// How long after we close a duplicate connection a remote's AlreadyConnected on the other
/// counts as the other half of the same race (a handshake takes at most 5 s, Hello included).
pub const DUPLICATE_RACE_WINDOW: Duration = Duration::from_secs(10);
/// Default share of MaxPeers that we dial ourselves: a third (geth `defaultDialRatio`).
pub const DEFAULT_DIAL_RATIO: usize = 3;
/// Discovered candidates kept while every dial slot is busy; the oldest are dropped beyond
/// this (geth's candidate iterator blocks instead; a bounded queue is the sans-IO equivalent).
pub const MAX_DIAL_CANDIDATES: usize = 1024;

/// The number of peers we dial ourselves (geth `maxDialedConns`): `max(1, MaxPeers / ratio)`,
/// or 0 with `MaxPeers == 0` or dialling switched off.
pub fn max_dialed_peers(max_peers: usize, dial_ratio: usize, no_dial: bool) -> usize {
    if no_dial || max_peers == 0 {
        return 0;
    }
    let ratio = if dial_ratio == 0 {
        DEFAULT_DIAL_RATIO
    } else {
        dial_ratio
    };
    (max_peers / ratio).max(1)
}

/// Limits of the scheduler.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DialConfig {
    /// Peers we dial ourselves at most ([`max_dialed_peers`]).
    pub max_dial_peers: usize,
    /// Dials in flight at most (geth uses MaxPendingPeers, default 50).
    pub max_active_dials: usize,
    /// When set, only addresses inside are dialled.
    pub net_restrict: Option<NetList>,
}

/// A node to dial: its key, and its TCP address when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    /// The node's public key (the handshake proves the remote holds it).
    pub public_key: NodePublicKey,
    /// Its TCP address; `None` until resolved.
    pub addr: Option<SocketAddr>,
}

impl DialTarget {
    /// The node id.
    pub fn id(&self) -> NodeId {
        self.public_key.id()
    }
}

/// Why a dial was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DialKind {
    /// A configured static peer.
    Static,
    /// A candidate from discovery.
    Dynamic,
}

/// What the scheduler wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialAction {
    /// Open a TCP connection to `target.addr` and start a session as initiator.
    Dial {
        /// Whom to dial (always with an address).
        target: DialTarget,
        /// Static or dynamic.
        kind: DialKind,
    },
    /// Find the current address of a static node (discovery), then report it with
    /// [`Dialer::update_static`].
    Resolve(NodeId),
}

/// Why a node was not dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// It is us.
    SelfDial,
    /// It has an address but TCP port 0.
    NoPort,
    /// A dial to it is in flight.
    AlreadyDialing,
    /// It is a peer already.
    AlreadyConnected,
    /// Its inbound handshake is in progress.
    PendingInbound,
    /// Its address is outside NetRestrict.
    NetRestrict,
    /// It was dialled less than [`DIAL_HISTORY_EXPIRATION`] ago.
    RecentlyDialed,
    /// Its address is unknown.
    NoAddress,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::SelfDial => "is self",
            SkipReason::NoPort => "no TCP port",
            SkipReason::AlreadyDialing => "already dialing",
            SkipReason::AlreadyConnected => "already connected",
            SkipReason::PendingInbound => "inbound handshake pending",
            SkipReason::NetRestrict => "outside NetRestrict",
            SkipReason::RecentlyDialed => "recently dialed",
            SkipReason::NoAddress => "address unknown",
        })
    }
}

struct StaticNode {
    target: DialTarget,
    in_pool: bool,
    /// When we last closed a connection to it as a duplicate (AlreadyConnected).
    duplicate_closed: Option<Instant>,
}

/// The dial scheduler.
pub struct Dialer {
    config: DialConfig,
    local_id: NodeId,
    statics: BTreeMap<NodeId, StaticNode>,
    /// Static nodes that pass every check, waiting for a slot; picked at random.
    pool: Vec<NodeId>,
    dialing: BTreeMap<NodeId, DialKind>,
    /// Connected peers: id -> whether we dialled them.
    peers: BTreeMap<NodeId, bool>,
    dial_peers: usize,
    pending_inbound: BTreeSet<NodeId>,
    history: BTreeMap<NodeId, Instant>,
    candidates: VecDeque<DialTarget>,
    resolves: VecDeque<NodeId>,
    skipped: BTreeMap<SkipReason, u64>,
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("statics", &self.statics.len())
            .field("dialing", &self.dialing.len())
            .field("dial_peers", &self.dial_peers)
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

impl Dialer {
    /// A scheduler for the node `local_id`.
    pub fn new(local_id: NodeId, config: DialConfig) -> Self {
        Self {
            config,
            local_id,
            statics: BTreeMap::new(),
            pool: Vec::new(),
            dialing: BTreeMap::new(),
            peers: BTreeMap::new(),
            dial_peers: 0,
            pending_inbound: BTreeSet::new(),
            history: BTreeMap::new(),
            candidates: VecDeque::new(),
            resolves: VecDeque::new(),
            skipped: BTreeMap::new(),
        }
    }

    // ---- getters ---------------------------------------------------------------------------

    /// Dial slots free now: twice the missing dialled peers, capped by the active-dial limit,
    /// minus the dials in flight (geth `freeDialSlots`).
    pub fn free_slots(&self) -> usize {
        let missing = self.config.max_dial_peers.saturating_sub(self.dial_peers);
        (missing * 2)
            .min(self.config.max_active_dials)
            .saturating_sub(self.dialing.len())
    }

    /// Dials in flight.
    pub fn dialing(&self) -> usize {
        self.dialing.len()
    }

    /// Whether a dial to `id` is in flight.
    pub fn is_dialing(&self, id: &NodeId) -> bool {
        self.dialing.contains_key(id)
    }

    /// Connected peers that we dialled.
    pub fn dialed_peers(&self) -> usize {
        self.dial_peers
    }

    /// Whether `id` is a configured static node.
    pub fn is_static(&self, id: &NodeId) -> bool {
        self.statics.contains_key(id)
    }

    /// The public key of static node `id`.
    pub fn static_key(&self, id: &NodeId) -> Option<NodePublicKey> {
        self.statics.get(id).map(|s| s.target.public_key)
    }

    /// The address of static node `id`, if it has one.
    pub fn static_addr(&self, id: &NodeId) -> Option<SocketAddr> {
        self.statics.get(id).and_then(|s| s.target.addr)
    }

    /// How often each skip reason occurred.
    pub fn skipped(&self) -> &BTreeMap<SkipReason, u64> {
        &self.skipped
    }

    /// When a history entry expires next, which may free a static node.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.history.values().min().copied()
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// Adds a static node: it is kept dialled for as long as it is configured.
    pub fn add_static(&mut self, target: DialTarget) {
        let id = target.id();
        if let Some(s) = self.statics.get_mut(&id) {
            s.target = target;
            return;
        }
        self.statics.insert(
            id,
            StaticNode {
                target,
                in_pool: false,
                duplicate_closed: None,
            },
        );
        self.refill_pool(id);
    }

    /// Removes a static node; a dial in flight to it is left to finish.
    pub fn remove_static(&mut self, id: &NodeId) {
        if self.statics.remove(id).is_some() {
            self.pool.retain(|p| p != id);
            self.resolves.retain(|r| r != id);
        }
    }

    /// Reports a resolved address for a static node.
    pub fn update_static(&mut self, id: &NodeId, addr: SocketAddr) {
        if let Some(s) = self.statics.get_mut(id) {
            s.target.addr = Some(addr);
            self.refill_pool(*id);
        }
    }

    /// Offers a node that discovery found. Kept in a bounded queue until a slot frees up.
    pub fn add_candidate(&mut self, target: DialTarget) {
        if self.config.max_dial_peers == 0 {
            return; // no dynamic dials (NoDial, or MaxPeers 0): nothing would ever take it
        }
        if self.candidates.len() >= MAX_DIAL_CANDIDATES {
            self.candidates.pop_front();
        }
        self.candidates.push_back(target);
    }

    /// A peer joined: `dialed` when we dialled it. Ends any dial to it.
    pub fn peer_added(&mut self, id: NodeId, dialed: bool) {
        self.dialing.remove(&id);
        if self.peers.insert(id, dialed).is_none() && dialed {
            self.dial_peers += 1;
        }
        if let Some(s) = self.statics.get_mut(&id) {
            if s.in_pool {
                s.in_pool = false;
                self.pool.retain(|p| *p != id);
            }
        }
    }

    /// A peer left.
    pub fn peer_removed(&mut self, id: &NodeId) {
        if let Some(dialed) = self.peers.remove(id) {
            if dialed {
                self.dial_peers -= 1;
            }
            self.refill_pool(*id);
        }
    }

    /// A dial ended without a peer (connect, handshake or admission failed). A failed static
    /// node is re-resolved, as geth does, in case it moved.
    pub fn dial_failed(&mut self, id: &NodeId) {
        if self.dialing.remove(id).is_some()
            && self.statics.contains_key(id)
            && !self.resolves.contains(id)
        {
            self.resolves.push_back(*id);
        }
    }

    /// We closed a connection to `id` with AlreadyConnected at `now`: the loser of a race
    /// between two connections to the same node (ours keeps the one dialled by the node with
    /// the lower id).
    pub fn duplicate_closed(&mut self, id: &NodeId, now: Instant) {
        if let Some(s) = self.statics.get_mut(id) {
            s.duplicate_closed = Some(now);
        }
    }

    /// `id` refused a connection with AlreadyConnected at `now`. Right after we closed
    /// another connection to it as a duplicate, this is the other half of a race that the
    /// two ends resolved differently: a node that keeps the first connection it admits
    /// (geth) kept the one we closed, so neither survives. A static node is then dialled
    /// again after [`DUPLICATE_REDIAL_DELAY`] rather than after the dial history's 35 s
    /// (when a connection survived after all, the dial is skipped as usual).
    pub fn refused_as_duplicate(&mut self, id: &NodeId, now: Instant) {
        let Some(s) = self.statics.get_mut(id) else {
            return;
        };
        let Some(closed) = s.duplicate_closed.take() else {
            return;
        };
        if now.saturating_duration_since(closed) <= DUPLICATE_RACE_WINDOW {
            self.history.insert(*id, now + DUPLICATE_REDIAL_DELAY);
        }
    }

    /// A lookup for static node `id`'s address found nothing: it is looked up again once
    /// [`DIAL_HISTORY_EXPIRATION`] has passed, like a failed dial.
    pub fn resolve_failed(&mut self, id: &NodeId, now: Instant) {
        if self.statics.contains_key(id) {
            self.history.insert(*id, now + DIAL_HISTORY_EXPIRATION);
        }
    }

    /// Marks `id` as having an inbound handshake in progress (or no longer).
    pub fn set_inbound_pending(&mut self, id: NodeId, pending: bool) {
        if pending {
            self.pending_inbound.insert(id);
        } else if self.pending_inbound.remove(&id) {
            self.refill_pool(id);
        }
    }

    /// Expires history entries due at `now`, returning static nodes to the pool.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<NodeId> = self
            .history
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.history.remove(&id);
            self.refill_pool(id);
        }
    }

    /// The next thing to do at `now`, if any: resolves first, then static dials (picked at
    /// random from the ready ones), then discovered candidates, while dial slots are free.
    pub fn poll_action<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
    ) -> Option<DialAction> {
        self.handle_timeout(now);
        if let Some(id) = self.resolves.pop_front() {
            return Some(DialAction::Resolve(id));
        }
        if self.free_slots() == 0 {
            return None;
        }
        while !self.pool.is_empty() {
            let i = (rng.next_u64() % self.pool.len() as u64) as usize;
            let id = self.pool.swap_remove(i);
            let Some(s) = self.statics.get_mut(&id) else {
                continue;
            };
            s.in_pool = false;
            let target = s.target.clone();
            match self.check(&target) {
                Ok(()) => return Some(self.start(now, target, DialKind::Static)),
                Err(SkipReason::NoAddress) => return Some(DialAction::Resolve(id)),
                Err(r) => self.count_skip(r),
            }
        }
        while let Some(target) = self.candidates.pop_front() {
            match self.check(&target) {
                Ok(()) => return Some(self.start(now, target, DialKind::Dynamic)),
                Err(r) => self.count_skip(r),
            }
        }
        None
    }

    // ---- internals -------------------------------------------------------------------------

    fn count_skip(&mut self, r: SkipReason) {
        *self.skipped.entry(r).or_default() += 1;
    }

    fn start(&mut self, now: Instant, target: DialTarget, kind: DialKind) -> DialAction {
        let id = target.id();
        self.dialing.insert(id, kind);
        self.history.insert(id, now + DIAL_HISTORY_EXPIRATION);
        DialAction::Dial { target, kind }
    }

    /// geth's `checkDial`, plus the server's pending-inbound check.
    fn check(&self, t: &DialTarget) -> Result<(), SkipReason> {
        let id = t.id();
        if id == self.local_id {
            return Err(SkipReason::SelfDial);
        }
        if let Some(addr) = t.addr {
            if addr.port() == 0 {
                return Err(SkipReason::NoPort);
            }
        }
        if self.dialing.contains_key(&id) {
            return Err(SkipReason::AlreadyDialing);
        }
        if self.peers.contains_key(&id) {
            return Err(SkipReason::AlreadyConnected);
        }
        if self.pending_inbound.contains(&id) {
            return Err(SkipReason::PendingInbound);
        }
        if let (Some(restrict), Some(addr)) = (&self.config.net_restrict, t.addr) {
            if !restrict.contains(&addr.ip()) {
                return Err(SkipReason::NetRestrict);
            }
        }
        if self.history.contains_key(&id) {
            return Err(SkipReason::RecentlyDialed);
        }
        if t.addr.is_none() {
            return Err(SkipReason::NoAddress);
        }
        Ok(())
    }

    /// Puts static node `id` back in the pool if it is one, is not there, and may be dialled
    /// (or needs resolving first).
    fn refill_pool(&mut self, id: NodeId) {
        let Some(s) = self.statics.get(&id) else {
            return;
        };
        if s.in_pool {
            return;
        }
        match self.check(&s.target) {
            Ok(()) | Err(SkipReason::NoAddress) => {
                self.pool.push(id);
                self.statics.get_mut(&id).expect("checked above").in_pool = true;
            }
            Err(r) => self.count_skip(r),
        }
    }
}
