//! The discovery service's limits and intervals, each with where its value comes from, and
//! the settings that default to them. The table's own rules (bucket size, /24 limits,
//! replacements) are discv4's: [`crate::discv4::table`].

use std::time::Duration;

use crate::discv4::Node;
use crate::netlist::NetList;

use super::super::sessions::SessionsConfig;

pub use crate::discv4::{
    DB_CLEANUP_INTERVAL, FAILURE_EVICTION_MIN_BUCKET, FAST_REVALIDATION_INTERVAL,
    MAX_FINDNODE_FAILURES, PERSIST_MIN_LIVENESS_CHECKS, RANDOM_LOOKUPS_PER_REFRESH,
    REFRESH_INTERVAL, SEED_COUNT, SLOW_REVALIDATION_INTERVAL,
};

/// NODES records whose UDP port is at or below this are not taken (geth
/// `verifyResponseNode`, `errLowPort`; the same rule as discv4's Neighbors check).
pub const MIN_RECORD_UDP_PORT: u16 = 1024;
/// Distances asked for in one lookup FINDNODE: the target's log distance from the asked node
/// and its neighbours (geth `lookupRequestLimit`, `lookupDistances`;
/// [DISCV5.md §8](crate::spec::discv5)).
pub const LOOKUP_DISTANCES: usize = 3;
/// Inbound TALKREQs handed to the application and not yet answered (geth
/// `maxActiveTalkRequests`). Beyond it new ones are dropped unanswered, as geth drops them
/// when no handler slot frees within its launch timeout.
pub const MAX_PENDING_TALK_REQUESTS: usize = 1024;
/// Bytes of protocol names and payloads held by the pending TALKREQs together (our choice:
/// 1024 full-sized requests would hold about 1.2 MiB; a quarter of that is ample for the
/// small requests TALKREQ is meant for). Beyond it new ones are dropped unanswered.
pub const MAX_PENDING_TALK_BYTES: usize = 256 * 1024;
/// How long the application has to answer a TALKREQ before it is forgotten unanswered: the
/// asker has stopped waiting by then (its request timeout, geth `respTimeout`, 700 ms; geth
/// gives its handler 400 ms to start, `talkHandlerLaunchTimeout`).
pub const TALK_ANSWER_TIMEOUT: Duration = Duration::from_millis(700);
/// TALKREQs one node may have handed to the application per second, as a burst of as many
/// that refills continuously (our choice; geth has no per-peer limit, only its 1024 slots,
/// which one peer could take all of). Requests over it are dropped unanswered.
pub const TALK_REQUESTS_PER_PEER_PER_SECOND: u32 = 10;
/// Nodes whose TALKREQ budget is tracked, the least recently seen forgotten first (our
/// choice, the session cache's size).
pub const MAX_TALK_RATE_PEERS: usize = 1024;
/// Protocols the application may register at once (our choice; a guard against a program
/// that registers without end, not a limit any real use reaches).
pub const MAX_TALK_PROTOCOLS: usize = 256;
/// Events waiting for [`super::Discovery::poll_event`]; beyond it the oldest are dropped
/// (our choice, as in discv4).
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// What a discv5 [`super::Discovery`] is told at start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Nodes contacted on every refresh, whatever the table holds. A bootnode known by key
    /// and address only (an enode URL) is asked for its record (`FINDNODE [0]`) before it
    /// enters the table; one with a record enters at once.
    pub bootnodes: Vec<Node>,
    /// Answer FINDNODE, at each distance asked, with the nodes whose last liveness check
    /// succeeded, and only when none there has yet with the others (false: with all of them
    /// at once). geth serves live nodes only (`NoFindnodeLivenessCheck` turns that off), so
    /// a bootnode that has not checked its newcomers yet answers a new node's first lookup
    /// with nothing, and the new node learns nobody until its next refresh, 15 to 30 minutes
    /// later, unless it runs lookups of its own meanwhile; we fall back as geth's discv4
    /// `preferLive` does, per distance. A node that failed its check is not live, so known
    /// dead nodes are served only where no live one is known.
    pub prefer_live: bool,
    /// When set, nodes outside these networks are never learnt (NODES records, seeds,
    /// bootnodes, inbound handshakes).
    pub net_restrict: Option<NetList>,
    /// The session layer's settings.
    pub sessions: SessionsConfig,
    /// [`MAX_PENDING_TALK_REQUESTS`].
    pub max_pending_talk_requests: usize,
    /// [`MAX_PENDING_TALK_BYTES`].
    pub max_pending_talk_bytes: usize,
    /// [`TALK_REQUESTS_PER_PEER_PER_SECOND`]; 0 refuses every TALKREQ of a registered
    /// protocol.
    pub talk_requests_per_peer_per_second: u32,
}

impl Config {
    /// Whether NetRestrict (if any) allows `ip`.
    pub(super) fn allows(&self, ip: &std::net::IpAddr) -> bool {
        self.net_restrict.as_ref().is_none_or(|n| n.contains(ip))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bootnodes: Vec::new(),
            prefer_live: true,
            net_restrict: None,
            sessions: SessionsConfig::default(),
            max_pending_talk_requests: MAX_PENDING_TALK_REQUESTS,
            max_pending_talk_bytes: MAX_PENDING_TALK_BYTES,
            talk_requests_per_peer_per_second: TALK_REQUESTS_PER_PEER_PER_SECOND,
        }
    }
}
