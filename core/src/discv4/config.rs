//! Settings and the protocol's timing constants.

use std::time::Duration;

use super::node::Node;
use crate::netlist::NetList;

/// How long to wait for a reply (geth `respTimeout`, [PROTOCOL.md §7.5](crate::spec::protocol)).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Lifetime of the packets we send (geth `expiration`, [PROTOCOL.md §7.3](crate::spec::protocol)).
pub const PACKET_EXPIRATION_SECS: u64 = 20;
/// How long an endpoint proof lasts (geth `bondExpiration`; the spec says 12 h,
/// [PROTOCOL.md §7.4](crate::spec::protocol)).
pub const BOND_EXPIRATION_SECS: u64 = 24 * 60 * 60;
/// FindNode failures after which a node is re-pinged before being asked again, and removed
/// from a bucket holding at least [`FAILURE_EVICTION_MIN_BUCKET`] nodes (geth
/// `maxFindnodeFailures`, [PROTOCOL.md §7.9](crate::spec::protocol)).
pub const MAX_FINDNODE_FAILURES: u32 = 5;
/// Smallest bucket from which a failing node is evicted (geth: `bucketSize / 4`,
/// [PROTOCOL.md §7.9](crate::spec::protocol)).
pub const FAILURE_EVICTION_MIN_BUCKET: usize = 4;
/// Mean interval of fast revalidation (geth `PingInterval`,
/// [PROTOCOL.md §8.4](crate::spec::protocol)).
pub const FAST_REVALIDATION_INTERVAL: Duration = Duration::from_secs(3);
/// Mean interval of slow revalidation (3 × `PingInterval`,
/// [PROTOCOL.md §8.4](crate::spec::protocol)).
pub const SLOW_REVALIDATION_INTERVAL: Duration = Duration::from_secs(9);
/// Nominal refresh interval; each refresh is scheduled uniformly in [half, full) of it
/// (geth `RefreshInterval`, [PROTOCOL.md §8.5](crate::spec::protocol)).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Random-target lookups after each self lookup in a refresh (geth `doRefresh`,
/// [PROTOCOL.md §8.5](crate::spec::protocol)).
pub const RANDOM_LOOKUPS_PER_REFRESH: usize = 3;
/// Seeds taken from the node database per refresh (geth `seedCount`,
/// [PROTOCOL.md §8.5](crate::spec::protocol)).
pub const SEED_COUNT: usize = 30;
/// Only nodes that answered within this many seconds are seeds (geth `seedMaxAge`,
/// [PROTOCOL.md §8.5](crate::spec::protocol)).
pub const SEED_MAX_AGE_SECS: u64 = 5 * 24 * 60 * 60;
/// Node database entries without a pong this recent are deleted (geth `dbNodeExpiration`,
/// [PROTOCOL.md §8.7](crate::spec::protocol)).
pub const DB_NODE_EXPIRATION_SECS: u64 = 24 * 60 * 60;
/// How often the node database is swept (geth `dbCleanupCycle`,
/// [PROTOCOL.md §8.7](crate::spec::protocol)).
pub const DB_CLEANUP_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Liveness checks after which a node is worth persisting as a future seed (geth
/// `table_reval.go`, [PROTOCOL.md §8.4](crate::spec::protocol)).
pub const PERSIST_MIN_LIVENESS_CHECKS: u32 = 5;
/// Consecutive reply timeouts after which our clock is suspect: geth then runs an NTP drift check
/// (geth `ntpFailureThreshold`, [PROTOCOL.md §7.3](crate::spec::protocol)). We report it as an
/// event.
pub const CLOCK_SKEW_TIMEOUT_THRESHOLD: u32 = 32;
/// Least time between two clock-skew reports (geth `ntpWarningCooldown`).
pub const CLOCK_SKEW_REPORT_COOLDOWN: Duration = Duration::from_secs(10 * 60);
/// Upper bound on queued outgoing datagrams; beyond it the oldest are dropped, so a flood of
/// inbound pings cannot grow memory without bound (our choice; geth blocks on the socket).
pub const MAX_QUEUED_TRANSMITS: usize = 4096;
/// Upper bound on queued events (our choice, same reason).
pub const MAX_QUEUED_EVENTS: usize = 4096;
/// Most unbonded pingers we ping back at once; beyond it a Ping still gets its Pong but no
/// Ping back until earlier ones resolve, so a flood of fresh keys cannot grow our request
/// list without bound (our choice; geth has no such cap). Our own requests (revalidation,
/// lookups) are bounded by the table and α and never count against it.
pub const MAX_PENDING_INBOUND_BONDS: usize = 1024;

/// What a [`super::Discovery`] is told at start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Nodes contacted on every refresh, whatever the table holds
    /// ([PROTOCOL.md §8.5](crate::spec::protocol)).
    pub bootnodes: Vec<Node>,
    /// Answer FindNode only with live nodes when there are any (geth default,
    /// [PROTOCOL.md §7.6](crate::spec::protocol)).
    pub prefer_live: bool,
    /// When set, nodes outside these networks are never learnt: Neighbors entries and fetched
    /// records elsewhere are refused ([PROTOCOL.md §7.8](crate::spec::protocol)), and so are seeds
    /// and bootnodes ([PROTOCOL.md §8.5](crate::spec::protocol)).
    pub net_restrict: Option<NetList>,
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
        }
    }
}
