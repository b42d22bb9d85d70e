//! The node database ([PROTOCOL.md §8.7](crate::spec::protocol)), in memory: per-(node, IP) bond
//! timestamps and FindNode failure counts, and the records of proven nodes kept as future seeds.
//!
//! Times are wall-clock unix seconds, because they must survive a restart. The core hands the
//! whole state out as a [`NodeDbSnapshot`] and takes one back at start-up; the file format is
//! the driver's business.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::FixedState;
use std::net::IpAddr;

use super::config::{DB_NODE_EXPIRATION_SECS, SEED_MAX_AGE_SECS};
use super::node::Node;
use crate::identity::NodeId;

/// Most (node, IP) pairs remembered. When full, new pairs are not recorded until the hourly
/// sweep frees room, so a flood of freshly generated keys cannot exhaust memory (our choice;
/// geth's LevelDB is unbounded on disk).
pub const MAX_DB_ENDPOINTS: usize = 65_536;
/// Most seed records kept (our bound; the table holds at most 17 × 16 live nodes anyway).
pub const MAX_DB_NODES: usize = 4_096;

/// What we know about one node at one IP. Zero means "never".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointRecord {
    /// When it last pinged us (unix seconds).
    pub last_ping_received: u64,
    /// When it last answered one of our pings (unix seconds): the endpoint proof.
    pub last_pong_received: u64,
    /// Consecutive FindNode requests it failed to answer.
    pub find_failures: u32,
}

/// One (node, IP) entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSnapshot {
    /// The node.
    pub id: NodeId,
    /// The IP the entry is about.
    pub ip: IpAddr,
    /// The data.
    pub record: EndpointRecord,
}

/// Everything worth persisting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDbSnapshot {
    /// Proven nodes, candidates to seed the table after a restart.
    pub nodes: Vec<Node>,
    /// Bond and failure data.
    pub endpoints: Vec<EndpointSnapshot>,
    /// The seq of our own record when the snapshot was taken (0: unknown). A
    /// [`Node`](crate::node::Node) started from the snapshot signs a higher one, so that no
    /// peer holding the old record ignores the new (geth keeps it in its node database too,
    /// [DNSDISC_NAT.md §B.7](crate::spec::dnsdisc_nat)). The discovery machines leave it 0.
    pub local_seq: u64,
}

impl NodeDbSnapshot {
    /// Both snapshots in one, as a database both versions of discovery wrote would hold it
    /// (geth keeps one for both): every node, the one with the higher record seq where both
    /// have it; per (node, IP) the later ping and pong; FindNode failures, counted by either,
    /// the higher count; the higher [`local_seq`](Self::local_seq). Sorted like
    /// [`NodeDb::snapshot`].
    pub fn merge(self, other: NodeDbSnapshot) -> NodeDbSnapshot {
        let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
        for n in self.nodes.into_iter().chain(other.nodes) {
            match nodes.get(&n.id()) {
                Some(have) if have.seq() >= n.seq() => {}
                _ => {
                    nodes.insert(n.id(), n);
                }
            }
        }
        let mut endpoints: BTreeMap<(NodeId, IpAddr), EndpointRecord> = BTreeMap::new();
        for e in self.endpoints.into_iter().chain(other.endpoints) {
            let r = endpoints.entry((e.id, e.ip)).or_default();
            r.last_ping_received = r.last_ping_received.max(e.record.last_ping_received);
            r.last_pong_received = r.last_pong_received.max(e.record.last_pong_received);
            r.find_failures = r.find_failures.max(e.record.find_failures);
        }
        NodeDbSnapshot {
            nodes: nodes.into_values().collect(),
            endpoints: endpoints
                .into_iter()
                .map(|((id, ip), record)| EndpointSnapshot { id, ip, record })
                .collect(),
            local_seq: self.local_seq.max(other.local_seq),
        }
    }
}

/// The in-memory node database.
#[derive(Debug, Clone, Default)]
pub struct NodeDb {
    /// Looked up for every packet, so hashed; keyed with a secret seed, because anyone can
    /// create entries (a Ping is enough) and choose their ids.
    endpoints: HashMap<(NodeId, IpAddr), EndpointRecord, FixedState>,
    nodes: BTreeMap<NodeId, Node>,
}

impl NodeDb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty database whose hash tables are keyed with `seed`, which should be secret
    /// (discovery derives it from the node key).
    pub fn with_hash_seed(seed: u64) -> Self {
        NodeDb {
            endpoints: HashMap::with_hasher(FixedState::with_seed(seed)),
            nodes: BTreeMap::new(),
        }
    }

    /// Loads a snapshot, discarding what has expired by `unix_secs`.
    pub fn from_snapshot(snapshot: NodeDbSnapshot, unix_secs: u64) -> Self {
        Self::from_snapshot_seeded(snapshot, unix_secs, 0)
    }

    /// [`NodeDb::from_snapshot`] into tables keyed with `seed` (see [`NodeDb::with_hash_seed`]).
    pub fn from_snapshot_seeded(snapshot: NodeDbSnapshot, unix_secs: u64, seed: u64) -> Self {
        let mut db = NodeDb::with_hash_seed(seed);
        for e in snapshot.endpoints.into_iter().take(MAX_DB_ENDPOINTS) {
            db.endpoints.insert((e.id, e.ip), e.record);
        }
        for n in snapshot.nodes.into_iter().take(MAX_DB_NODES) {
            db.nodes.insert(n.id(), n);
        }
        db.expire(unix_secs);
        db
    }

    /// Everything, in a deterministic order.
    pub fn snapshot(&self) -> NodeDbSnapshot {
        NodeDbSnapshot {
            nodes: self.nodes.values().cloned().collect(),
            endpoints: {
                let mut e: Vec<EndpointSnapshot> = self
                    .endpoints
                    .iter()
                    .map(|(&(id, ip), &record)| EndpointSnapshot { id, ip, record })
                    .collect();
                e.sort_by_key(|x| (x.id, x.ip));
                e
            },
            local_seq: 0,
        }
    }

    /// The record for `id` at `ip` (all zeros if unknown).
    pub fn endpoint(&self, id: &NodeId, ip: &IpAddr) -> EndpointRecord {
        self.endpoints.get(&(*id, *ip)).copied().unwrap_or_default()
    }

    fn update(&mut self, id: &NodeId, ip: &IpAddr, f: impl FnOnce(&mut EndpointRecord)) {
        let full = self.endpoints.len() >= MAX_DB_ENDPOINTS;
        match self.endpoints.get_mut(&(*id, *ip)) {
            Some(r) => f(r),
            None if !full => f(self.endpoints.entry((*id, *ip)).or_default()),
            None => {}
        }
    }

    /// Records a ping from `id` at `ip`.
    pub fn set_last_ping_received(&mut self, id: &NodeId, ip: &IpAddr, unix_secs: u64) {
        self.update(id, ip, |r| r.last_ping_received = unix_secs);
    }

    /// Records a pong from `id` at `ip` that matched one of our pings.
    pub fn set_last_pong_received(&mut self, id: &NodeId, ip: &IpAddr, unix_secs: u64) {
        self.update(id, ip, |r| r.last_pong_received = unix_secs);
    }

    /// Sets the FindNode failure count.
    pub fn set_find_failures(&mut self, id: &NodeId, ip: &IpAddr, n: u32) {
        self.update(id, ip, |r| r.find_failures = n);
    }

    /// Keeps `node` as a future seed.
    pub fn store_node(&mut self, node: Node) {
        if self.nodes.len() < MAX_DB_NODES || self.nodes.contains_key(&node.id()) {
            self.nodes.insert(node.id(), node);
        }
    }

    /// Up to `n` stored nodes that answered a ping at their IP within the seed age limit,
    /// most recently answering first (ties by id).
    pub fn seeds(&self, n: usize, unix_secs: u64) -> Vec<Node> {
        let mut fresh: Vec<(u64, &Node)> = self
            .nodes
            .values()
            .map(|node| {
                (
                    self.endpoint(&node.id(), &node.ip()).last_pong_received,
                    node,
                )
            })
            .filter(|(pong, _)| *pong > 0 && unix_secs.saturating_sub(*pong) <= SEED_MAX_AGE_SECS)
            .collect();
        fresh.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id().cmp(&b.1.id())));
        fresh.into_iter().take(n).map(|(_, n)| n.clone()).collect()
    }

    /// Deletes (node, IP) data whose last pong is older than 24 hours, and stored nodes left
    /// with no such data (geth `expireNodes`).
    pub fn expire(&mut self, unix_secs: u64) {
        let cutoff = unix_secs.saturating_sub(DB_NODE_EXPIRATION_SECS);
        self.endpoints.retain(|_, r| r.last_pong_received > cutoff);
        let known: BTreeSet<NodeId> = self.endpoints.keys().map(|(id, _)| *id).collect();
        self.nodes.retain(|id, _| known.contains(id));
    }

    /// Number of (node, IP) entries.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discv4::netutil::v4;
    use crate::identity::NodeSecretKey;

    fn node(b: u8) -> Node {
        let k = NodeSecretKey::from_bytes(&[b; 32]).unwrap();
        Node::new(*k.public(), v4(10, 0, 0, b), 30303, 30303)
    }

    #[test]
    fn bonds_are_kept_per_ip() {
        let mut db = NodeDb::new();
        let n = node(1);
        db.set_last_pong_received(&n.id(), &n.ip(), 1000);
        assert_eq!(db.endpoint(&n.id(), &n.ip()).last_pong_received, 1000);
        assert_eq!(
            db.endpoint(&n.id(), &v4(10, 0, 0, 99)),
            EndpointRecord::default()
        );
    }

    #[test]
    fn merged_snapshots_keep_the_later_times_and_the_newer_record() {
        let (a, b) = (node(1), node(2));
        let mut x = NodeDb::new();
        x.set_last_pong_received(&a.id(), &a.ip(), 100);
        x.set_last_ping_received(&a.id(), &a.ip(), 300);
        x.set_find_failures(&a.id(), &a.ip(), 2);
        x.store_node(a.clone());
        let mut y = NodeDb::new();
        y.set_last_pong_received(&a.id(), &a.ip(), 200);
        y.set_last_pong_received(&b.id(), &b.ip(), 50);
        y.store_node(b.clone());
        let m = x.snapshot().merge(y.snapshot());
        let mut both = vec![a.clone(), b.clone()];
        both.sort_by_key(Node::id);
        assert_eq!(m.nodes, both);
        let ra = m.endpoints.iter().find(|e| e.id == a.id()).unwrap().record;
        assert_eq!(
            ra,
            EndpointRecord {
                last_ping_received: 300,
                last_pong_received: 200,
                find_failures: 2
            }
        );
        assert_eq!(m.endpoints.len(), 2);
        // The same database merged with itself is unchanged.
        assert_eq!(x.snapshot().merge(x.snapshot()), x.snapshot());
    }

    #[test]
    fn a_day_without_a_pong_expires_the_entry_and_its_seed() {
        let day = DB_NODE_EXPIRATION_SECS;
        let mut db = NodeDb::new();
        let (a, b) = (node(1), node(2));
        db.set_last_pong_received(&a.id(), &a.ip(), 10 * day);
        db.set_last_pong_received(&b.id(), &b.ip(), 10 * day + 100);
        db.set_last_ping_received(&b.id(), &v4(1, 1, 1, 1), 11 * day);
        db.store_node(a.clone());
        db.store_node(b.clone());
        assert_eq!(db.seeds(30, 10 * day + 200), vec![b.clone(), a.clone()]);
        let snap = db.snapshot();
        let restored = NodeDb::from_snapshot(snap.clone(), 11 * day + 50);
        // a's pong is older than a day, b's is not; the ping-only entry has no pong at all.
        assert_eq!(restored.snapshot().nodes, vec![b.clone()]);
        assert_eq!(restored.endpoint_count(), 1);
        let fresh = NodeDb::from_snapshot(snap, 10 * day + 300);
        assert_eq!(fresh.snapshot().nodes.len(), 2);
    }
}
