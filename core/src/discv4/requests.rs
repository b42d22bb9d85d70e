//! Outstanding requests and how replies are matched to them
//! ([PROTOCOL.md §7.5](crate::spec::protocol)).

use std::net::IpAddr;

use super::events::LookupId;
use super::node::Node;
use crate::identity::NodeId;
use crate::time::Instant;

/// The reply a request waits for.
#[derive(Debug, Clone)]
pub(super) enum Expect {
    /// A Pong echoing our Ping's hash.
    Pong { ping_hash: [u8; 32] },
    /// Neighbors packets, gathered until 16 entries arrived or the deadline.
    Neighbors {
        entries: usize,
        packets: usize,
        nodes: Vec<Node>,
    },
    /// An ENRResponse echoing our ENRRequest's hash.
    EnrResponse { request_hash: [u8; 32] },
}

/// Why we sent the request: what to do with the answer or the silence.
#[derive(Debug, Clone)]
pub(super) enum Purpose {
    /// The node pinged us without a bond; on its Pong it may enter the table
    /// ([PROTOCOL.md §7.4](crate::spec::protocol)).
    BondInbound(Node),
    /// A revalidation ping ([PROTOCOL.md §8.4](crate::spec::protocol)).
    Revalidate,
    /// `ensureBond` before asking `node` for `lookup` ([PROTOCOL.md §7.4](crate::spec::protocol)).
    BondBeforeQuery { lookup: LookupId, node: Node },
    /// FindNode for a lookup.
    Query { lookup: LookupId, node: Node },
    /// ENRRequest after a Pong advertised a newer record.
    FetchRecord,
}

/// One outstanding request.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub id: NodeId,
    pub ip: IpAddr,
    pub deadline: Instant,
    pub expect: Expect,
    pub purpose: Purpose,
}

impl Pending {
    /// Whether a reply from `id` at `ip` of this shape is the one this request waits for.
    pub fn matches_pong(&self, id: &NodeId, ip: &IpAddr, hash: &[u8; 32]) -> bool {
        self.id == *id
            && self.ip == *ip
            && matches!(&self.expect, Expect::Pong { ping_hash } if ping_hash == hash)
    }

    pub fn matches_neighbors(&self, id: &NodeId, ip: &IpAddr) -> bool {
        self.id == *id && self.ip == *ip && matches!(self.expect, Expect::Neighbors { .. })
    }

    pub fn matches_enr_response(&self, id: &NodeId, ip: &IpAddr, hash: &[u8; 32]) -> bool {
        self.id == *id
            && self.ip == *ip
            && matches!(&self.expect, Expect::EnrResponse { request_hash } if request_hash == hash)
    }
}
