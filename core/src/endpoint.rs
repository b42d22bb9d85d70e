//! Our own endpoint: predicting it from what other nodes say it is, as geth's
//! `netutil.IPTracker` does ([DNSDISC_NAT.md §B.5–B.6](crate::spec::dnsdisc_nat)), and keeping
//! our record in step with the prediction, as geth's `enode.LocalNode` does (§B.7,
//! [`LocalRecord`]).
//!
//! Each host that tells us our endpoint (the `to` of a discv4 Pong or Ping, a discv5 PONG's
//! recipient address) makes one statement, keyed by its IP; the endpoint (IP and port) most
//! hosts agree on, if at least [`MIN_STATEMENTS`] do within [`STATEMENT_WINDOW`], is the
//! prediction. Discovery reports what it hears as [`Observation`]s; the
//! [`Node`](crate::node::Node) hands them to its [`LocalRecord`].
//!
//! Departures from geth's tracker, both for determinism and bounded memory: a tie between
//! endpoints with equal counts goes to the one predicted before, then to the smallest (geth
//! takes the first in Go's random map order); at most [`MAX_TRACKED_HOSTS`] statements and as
//! many contacts are kept, the oldest forgotten first (geth keeps every host of the window).
//! [`LocalRecord`] adds the departures of its own listed there.
//!
//! ```
//! use devp2p_core::endpoint::IpTracker;
//! use devp2p_core::Instant;
//! let mut t = IpTracker::new(std::time::Duration::from_secs(10), std::time::Duration::from_secs(10), 3);
//! let ours = "203.0.113.7:30303".parse().unwrap();
//! for host in 1..=3u8 {
//!     t.add_statement(Instant::ZERO, [198, 51, 100, host].into(), ours);
//! }
//! assert_eq!(t.predict_endpoint(Instant::ZERO), Some(ours));
//! ```

mod local;

pub use local::{EndpointChange, LocalRecord};

use std::collections::{btree_map, BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use foldhash::fast::FixedState;

use crate::time::Instant;

/// Hosts that must agree before an endpoint is predicted (geth `LocalNode`:
/// `iptrackMinStatements`).
pub const MIN_STATEMENTS: usize = 10;
/// How long a statement counts (geth `iptrackWindow`).
pub const STATEMENT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long a contact counts for the full-cone check (geth `iptrackContactWindow`).
pub const CONTACT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Statements (and contacts) kept at most, the oldest forgotten first (our choice: a window's
/// worth of Pongs from a full table is a few hundred hosts; anyone can send Pings, so the
/// count needs a bound geth does not have).
pub const MAX_TRACKED_HOSTS: usize = 4096;
/// Observations a discovery machine queues for its owner at most, the oldest dropped first
/// (our bound: the node drains them after every input, which yields a handful).
pub const MAX_QUEUED_OBSERVATIONS: usize = 256;

/// What a discovery machine learnt about our own endpoint from one packet, for the owner's
/// [`LocalRecord`] (geth calls `LocalNode.UDPEndpointStatement` and `UDPContact` for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The host at `reporter` (the packet's proven source) says our endpoint is `endpoint`.
    Statement {
        /// Who says so.
        reporter: IpAddr,
        /// Where it says we are.
        endpoint: SocketAddr,
    },
    /// We sent our endpoint to `host` (a discv4 Ping): only the full-cone check uses it.
    Contact {
        /// The Ping's destination.
        host: IpAddr,
    },
}

/// A bounded queue of [`Observation`]s, oldest dropped first beyond
/// [`MAX_QUEUED_OBSERVATIONS`].
#[derive(Debug, Clone, Default)]
pub struct Observations(std::collections::VecDeque<Observation>);

impl Observations {
    /// Queues `o`.
    pub fn push(&mut self, o: Observation) {
        if self.0.len() >= MAX_QUEUED_OBSERVATIONS {
            self.0.pop_front();
        }
        self.0.push_back(o);
    }

    /// The oldest one queued.
    pub fn pop(&mut self) -> Option<Observation> {
        self.0.pop_front()
    }

    /// How many are queued.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Entries kept past this many beyond twice the live ones are compacted away (stale ones,
/// left by hosts that spoke again): the time-ordered list stays within a constant factor of
/// the map.
const STALE_SLACK: usize = 64;

/// Entries keyed by host, each stamped with the time it was made, forgotten once a window
/// old: the map, plus every insertion in time order, so that forgetting the expired entries
/// and finding the oldest cost what they remove, not a pass over all of them (every datagram
/// brings an observation, and a full table's worth of hosts is in the window).
#[derive(Debug, Clone)]
struct ByAge<V> {
    /// Hashed: looked up for every statement and every expiry. No decision depends on its
    /// order (the oldest comes from `order`; the full-cone check asks whether any entry
    /// qualifies).
    entries: HashMap<IpAddr, (Instant, V), FixedState>,
    /// (time, host) of each insertion, in time order. One whose host has since made a newer
    /// entry is stale: skipped, and dropped when it reaches the front or at compaction.
    order: VecDeque<(Instant, IpAddr)>,
}

impl<V: Copy> ByAge<V> {
    fn new(seed: u64) -> Self {
        ByAge {
            entries: HashMap::with_hasher(FixedState::with_seed(seed)),
            order: VecDeque::new(),
        }
    }

    fn is_live(&self, (at, host): (Instant, IpAddr)) -> bool {
        self.entries.get(&host).is_some_and(|(t, _)| *t == at)
    }

    /// Stores `host`'s entry made at `at`; returns the value it replaced.
    fn insert(&mut self, host: IpAddr, at: Instant, value: V) -> Option<V> {
        let old = self.entries.insert(host, (at, value)).map(|(_, v)| v);
        match self.order.back() {
            // The core's clock never goes backwards; were a caller's to, the entry still
            // goes where its time puts it.
            Some(&(last, _)) if last > at => {
                let i = self.order.partition_point(|&(t, _)| t <= at);
                self.order.insert(i, (at, host));
            }
            _ => self.order.push_back((at, host)),
        }
        if self.order.len() > 2 * self.entries.len() + STALE_SLACK {
            let mut live: Vec<(Instant, IpAddr)> =
                self.entries.iter().map(|(h, (t, _))| (*t, *h)).collect();
            live.sort_unstable();
            self.order = live.into();
        }
        old
    }

    /// Forgets every entry with `now > made + window`, handing each value to `removed`.
    fn expire(&mut self, now: Instant, window: Duration, mut removed: impl FnMut(V)) {
        while let Some(&(at, host)) = self.order.front() {
            if now <= at.saturating_add(window) {
                break;
            }
            self.order.pop_front();
            if self.is_live((at, host)) {
                if let Some((_, v)) = self.entries.remove(&host) {
                    removed(v);
                }
            }
        }
    }

    /// Forgets the oldest entry, the smallest host among equally old ones, handing its value
    /// to `removed`.
    fn evict_oldest(&mut self, removed: impl FnOnce(V)) {
        while let Some(&front) = self.order.front() {
            if self.is_live(front) {
                break;
            }
            self.order.pop_front();
        }
        let Some(&(oldest, _)) = self.order.front() else {
            return;
        };
        let host = self
            .order
            .iter()
            .take_while(|(t, _)| *t == oldest)
            .filter(|e| self.is_live(**e))
            .map(|(_, h)| *h)
            .min();
        if let Some((_, v)) = host.and_then(|h| self.entries.remove(&h)) {
            removed(v);
        }
    }
}

/// One fewer host says `endpoint`.
fn uncount(counts: &mut BTreeMap<SocketAddr, usize>, endpoint: SocketAddr) {
    if let btree_map::Entry::Occupied(mut e) = counts.entry(endpoint) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

/// The endpoint tracker of one address family.
#[derive(Debug, Clone)]
pub struct IpTracker {
    window: Duration,
    contact_window: Duration,
    min_statements: usize,
    /// Each host's latest statement: the endpoint it says we have.
    statements: ByAge<SocketAddr>,
    /// How many statements name each endpoint.
    counts: BTreeMap<SocketAddr, usize>,
    contacts: ByAge<()>,
    last_prediction: Option<SocketAddr>,
}

impl Default for IpTracker {
    /// geth's `LocalNode` settings: [`STATEMENT_WINDOW`], [`CONTACT_WINDOW`],
    /// [`MIN_STATEMENTS`].
    fn default() -> Self {
        IpTracker::new(STATEMENT_WINDOW, CONTACT_WINDOW, MIN_STATEMENTS)
    }
}

impl IpTracker {
    /// A tracker counting statements for `window` and contacts for `contact_window`, and
    /// predicting once `min_statements` hosts agree.
    pub fn new(window: Duration, contact_window: Duration, min_statements: usize) -> Self {
        IpTracker {
            window,
            contact_window,
            min_statements: min_statements.max(1),
            statements: ByAge::new(0),
            counts: BTreeMap::new(),
            contacts: ByAge::new(0),
            last_prediction: None,
        }
    }

    /// The same tracker with its host tables keyed by `seed`, which should be a secret: any
    /// host can make a statement, and one that knew the seed could pick addresses that
    /// collide. A [`Node`](crate::node::Node) derives it from its key. Call it before the
    /// first statement: what the tracker holds is dropped.
    pub fn with_hash_seed(self, seed: u64) -> Self {
        IpTracker {
            statements: ByAge::new(seed),
            counts: BTreeMap::new(),
            contacts: ByAge::new(seed),
            last_prediction: None,
            ..self
        }
    }

    /// `host` says our endpoint is `endpoint` (it replaces what `host` said before).
    pub fn add_statement(&mut self, now: Instant, host: IpAddr, endpoint: SocketAddr) {
        self.gc(now);
        let counts = &mut self.counts;
        // The length first: below the bound (the usual case) no lookup is needed.
        if self.statements.entries.len() >= MAX_TRACKED_HOSTS
            && !self.statements.entries.contains_key(&host)
        {
            self.statements.evict_oldest(|e| uncount(counts, e));
        }
        if let Some(old) = self.statements.insert(host, now, endpoint) {
            uncount(counts, old);
        }
        *counts.entry(endpoint).or_default() += 1;
    }

    /// We sent our endpoint to `host` (a Ping): only the full-cone check uses it.
    pub fn add_contact(&mut self, now: Instant, host: IpAddr) {
        self.gc(now);
        if self.contacts.entries.len() >= MAX_TRACKED_HOSTS
            && !self.contacts.entries.contains_key(&host)
        {
            self.contacts.evict_oldest(|()| {});
        }
        self.contacts.insert(host, now, ());
    }

    /// The endpoint most hosts agree on within the window, if at least the minimum do.
    pub fn predict_endpoint(&mut self, now: Instant) -> Option<SocketAddr> {
        self.gc(now);
        let counts = &self.counts;
        let best = counts.values().copied().max()?;
        if best < self.min_statements {
            return None;
        }
        let winner = match self.last_prediction {
            Some(last) if counts.get(&last) == Some(&best) => last,
            // The smallest of the endpoints with the highest count (BTreeMap order).
            _ => *counts.iter().find(|(_, c)| **c == best)?.0,
        };
        self.last_prediction = Some(winner);
        Some(winner)
    }

    /// Whether we seem to be behind a full-cone NAT (or none): some host told us our endpoint
    /// without our having contacted it first (geth `PredictFullConeNAT`).
    pub fn predict_full_cone_nat(&mut self, now: Instant) -> bool {
        self.gc(now);
        self.statements.entries.iter().any(|(host, (at, _))| {
            self.contacts
                .entries
                .get(host)
                .is_none_or(|(contacted, ())| contacted > at)
        })
    }

    /// Statements counted now.
    pub fn statement_count(&self) -> usize {
        self.statements.entries.len()
    }

    fn gc(&mut self, now: Instant) {
        let counts = &mut self.counts;
        self.statements
            .expire(now, self.window, |e| uncount(counts, e));
        self.contacts.expire(now, self.contact_window, |()| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{Rng, SeedableRng};

    /// geth's tracker as first written here: plain maps, a pass over all of them at every
    /// call. The time-ordered tracker must decide exactly as it does.
    #[derive(Default)]
    struct Naive {
        statements: BTreeMap<IpAddr, (SocketAddr, Instant)>,
        contacts: BTreeMap<IpAddr, Instant>,
        last: Option<SocketAddr>,
    }

    impl Naive {
        fn gc(&mut self, now: Instant) {
            self.statements
                .retain(|_, (_, at)| now <= at.saturating_add(STATEMENT_WINDOW));
            self.contacts
                .retain(|_, at| now <= at.saturating_add(CONTACT_WINDOW));
        }
        fn statement(&mut self, now: Instant, host: IpAddr, e: SocketAddr) {
            self.gc(now);
            if !self.statements.contains_key(&host) && self.statements.len() >= MAX_TRACKED_HOSTS {
                let oldest = self
                    .statements
                    .iter()
                    .min_by_key(|(_, s)| s.1)
                    .map(|(h, _)| *h);
                self.statements.remove(&oldest.unwrap());
            }
            self.statements.insert(host, (e, now));
        }
        fn contact(&mut self, now: Instant, host: IpAddr) {
            self.gc(now);
            if !self.contacts.contains_key(&host) && self.contacts.len() >= MAX_TRACKED_HOSTS {
                let oldest = self
                    .contacts
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(h, _)| *h);
                self.contacts.remove(&oldest.unwrap());
            }
            self.contacts.insert(host, now);
        }
        fn predict(&mut self, now: Instant) -> Option<SocketAddr> {
            self.gc(now);
            let mut counts: BTreeMap<SocketAddr, usize> = BTreeMap::new();
            for (e, _) in self.statements.values() {
                *counts.entry(*e).or_default() += 1;
            }
            let best = counts.values().copied().max()?;
            if best < MIN_STATEMENTS {
                return None;
            }
            let w = match self.last {
                Some(l) if counts.get(&l) == Some(&best) => l,
                _ => *counts.iter().find(|(_, c)| **c == best)?.0,
            };
            self.last = Some(w);
            Some(w)
        }
        fn full_cone(&mut self, now: Instant) -> bool {
            self.gc(now);
            self.statements
                .iter()
                .any(|(h, (_, at))| self.contacts.get(h).is_none_or(|c| c > at))
        }
    }

    #[test]
    fn the_time_ordered_tracker_decides_as_a_pass_over_every_host_does() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let (mut t, mut naive) = (IpTracker::default().with_hash_seed(99), Naive::default());
        let (mut now, mut most) = (0u64, 0);
        // More hosts than are kept, so that the oldest are evicted; times that repeat and
        // advance by up to two seconds, so that the windows expire entries in bulk and one by
        // one; a few endpoints, so that predictions change hands.
        for step in 0..60_000u32 {
            // Slowly while the first hosts pile up past the bound, then faster.
            let pace = if step < 20_000 { 40 } else { 2_000 };
            now += rng.next_u64() % pace * u64::from(rng.next_u32() % 3 == 0);
            let at = Instant::from_millis(now);
            let host = IpAddr::from((6_000u32 + rng.next_u32() % 6_000).to_be_bytes());
            match rng.next_u32() % 8 {
                0..=4 => {
                    let e = SocketAddr::from(([203, 0, 113, rng.next_u32() as u8 % 3], 30303));
                    t.add_statement(at, host, e);
                    naive.statement(at, host, e);
                }
                5 | 6 => {
                    t.add_contact(at, host);
                    naive.contact(at, host);
                }
                _ => assert_eq!(
                    t.predict_full_cone_nat(at),
                    naive.full_cone(at),
                    "step {step}"
                ),
            }
            assert_eq!(t.predict_endpoint(at), naive.predict(at), "step {step}");
            assert_eq!(t.statement_count(), naive.statements.len(), "step {step}");
            assert_eq!(
                t.contacts.entries.len(),
                naive.contacts.len(),
                "step {step}"
            );
            assert!(t.statements.order.len() <= 2 * t.statements.entries.len() + STALE_SLACK + 1);
            most = most.max(naive.statements.len());
        }
        assert_eq!(most, MAX_TRACKED_HOSTS, "the bound was reached");
    }
}
