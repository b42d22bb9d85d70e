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

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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

/// One host's latest statement.
#[derive(Debug, Clone, Copy)]
struct Statement {
    endpoint: SocketAddr,
    at: Instant,
}

/// The endpoint tracker of one address family.
#[derive(Debug, Clone)]
pub struct IpTracker {
    window: Duration,
    contact_window: Duration,
    min_statements: usize,
    statements: BTreeMap<IpAddr, Statement>,
    contacts: BTreeMap<IpAddr, Instant>,
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
            statements: BTreeMap::new(),
            contacts: BTreeMap::new(),
            last_prediction: None,
        }
    }

    /// `host` says our endpoint is `endpoint` (it replaces what `host` said before).
    pub fn add_statement(&mut self, now: Instant, host: IpAddr, endpoint: SocketAddr) {
        self.gc(now);
        if !self.statements.contains_key(&host) && self.statements.len() >= MAX_TRACKED_HOSTS {
            let oldest = self
                .statements
                .iter()
                .min_by_key(|(_, s)| s.at)
                .map(|(h, _)| *h);
            if let Some(h) = oldest {
                self.statements.remove(&h);
            }
        }
        self.statements
            .insert(host, Statement { endpoint, at: now });
    }

    /// We sent our endpoint to `host` (a Ping): only the full-cone check uses it.
    pub fn add_contact(&mut self, now: Instant, host: IpAddr) {
        self.gc(now);
        if !self.contacts.contains_key(&host) && self.contacts.len() >= MAX_TRACKED_HOSTS {
            let oldest = self
                .contacts
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(h, _)| *h);
            if let Some(h) = oldest {
                self.contacts.remove(&h);
            }
        }
        self.contacts.insert(host, now);
    }

    /// The endpoint most hosts agree on within the window, if at least the minimum do.
    pub fn predict_endpoint(&mut self, now: Instant) -> Option<SocketAddr> {
        self.gc(now);
        let mut counts: BTreeMap<SocketAddr, usize> = BTreeMap::new();
        for s in self.statements.values() {
            *counts.entry(s.endpoint).or_default() += 1;
        }
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
        self.statements
            .iter()
            .any(|(host, s)| self.contacts.get(host).is_none_or(|c| *c > s.at))
    }

    /// Statements counted now.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    fn gc(&mut self, now: Instant) {
        let (w, cw) = (self.window, self.contact_window);
        self.statements.retain(|_, s| now <= s.at.saturating_add(w));
        self.contacts.retain(|_, t| now <= t.saturating_add(cw));
    }
}
