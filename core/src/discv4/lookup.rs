//! An iterative Kademlia lookup as a pure machine ([PROTOCOL.md §8.6](crate::spec::protocol)),
//! shared by both discovery versions: discv4 looks up a 64-byte target ([`Lookup::new`]),
//! discv5 a node id ([`Lookup::for_id`], [DISCV5.md §8](crate::spec::discv5)); how a node is
//! asked (FindNode for the target, FINDNODE for distances) is the owner's business.
//!
//! The lookup keeps the 16 nodes closest to the target seen so far. While fewer than α = 3
//! queries are in flight it hands out the closest node not yet asked ([`Lookup::next_query`]);
//! the owner sends FindNode and reports the answer ([`Lookup::on_response`]) or the failure
//! ([`Lookup::on_failure`]). It ends when nothing is in flight and every node in the result set
//! has been asked. As in geth there is no final "ask all k" round, and nodes that failed stay
//! in the result (they are simply never asked again).

use std::collections::BTreeSet;

use super::node::Node;
use super::table::BUCKET_SIZE;
use crate::identity::{NodeId, PUBLIC_KEY_LEN};

/// Concurrent queries per lookup (Kademlia α; geth `alpha`).
pub const ALPHA: usize = 3;
/// Size of a lookup's result (geth `bucketSize`).
pub const LOOKUP_RESULTS: usize = BUCKET_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryState {
    NotAsked,
    InFlight,
    Answered,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    node: Node,
    state: QueryState,
}

/// One iterative lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The 64-byte discv4 target; `None` for a lookup by node id.
    target: Option<[u8; PUBLIC_KEY_LEN]>,
    target_id: NodeId,
    /// Sorted by distance to `target_id`, at most [`LOOKUP_RESULTS`] long.
    result: Vec<Candidate>,
    /// Every id ever offered, so a node pushed out of the result is not re-added and asked.
    seen: BTreeSet<NodeId>,
    /// Nodes asked and not yet answered (they may have left the result meanwhile).
    in_flight: BTreeSet<NodeId>,
    queries_sent: usize,
}

impl Lookup {
    /// A lookup for the 64-byte `target` by the node `local`, seeded with `seeds` (usually the
    /// table's closest nodes). `local` is never asked nor returned.
    pub fn new(local: NodeId, target: [u8; PUBLIC_KEY_LEN], seeds: Vec<Node>) -> Self {
        Self::build(local, Some(target), NodeId::of_target(&target), seeds)
    }

    /// A lookup for the nodes closest to the node id `target` (discv5, where targets are ids
    /// and not keys), by the node `local`, seeded with `seeds`.
    pub fn for_id(local: NodeId, target: NodeId, seeds: Vec<Node>) -> Self {
        Self::build(local, None, target, seeds)
    }

    fn build(
        local: NodeId,
        target: Option<[u8; PUBLIC_KEY_LEN]>,
        target_id: NodeId,
        seeds: Vec<Node>,
    ) -> Self {
        let mut l = Lookup {
            target,
            target_id,
            result: Vec::new(),
            seen: BTreeSet::from([local]),
            in_flight: BTreeSet::new(),
            queries_sent: 0,
        };
        l.offer(seeds);
        l
    }

    /// The 64-byte target, as sent in discv4's FindNode; `None` for a lookup by node id
    /// ([`Lookup::for_id`]).
    pub fn target(&self) -> Option<&[u8; PUBLIC_KEY_LEN]> {
        self.target.as_ref()
    }

    /// The target's id: distances are measured to it.
    pub fn target_id(&self) -> NodeId {
        self.target_id
    }

    fn offer(&mut self, nodes: Vec<Node>) {
        for node in nodes {
            if !self.seen.insert(node.id()) {
                continue;
            }
            let pos = self.result.partition_point(|c| {
                self.target_id
                    .distance_cmp(&c.node.id(), &node.id())
                    .is_lt()
            });
            if pos >= LOOKUP_RESULTS {
                continue;
            }
            self.result.insert(
                pos,
                Candidate {
                    node,
                    state: QueryState::NotAsked,
                },
            );
            if self.result.len() > LOOKUP_RESULTS {
                // An in-flight node can be pushed out; its answer still counts when it comes.
                let dropped = self.result.pop();
                debug_assert!(dropped.is_some());
            }
        }
    }

    /// The next node to send FindNode to, if fewer than [`ALPHA`] are in flight and an unasked
    /// node remains in the result set. The node counts as in flight from now on.
    pub fn next_query(&mut self) -> Option<Node> {
        if self.in_flight.len() >= ALPHA {
            return None;
        }
        let c = self
            .result
            .iter_mut()
            .find(|c| c.state == QueryState::NotAsked)?;
        c.state = QueryState::InFlight;
        self.in_flight.insert(c.node.id());
        self.queries_sent += 1;
        Some(c.node.clone())
    }

    fn finish_query(&mut self, from: &NodeId, state: QueryState) -> bool {
        if !self.in_flight.remove(from) {
            return false;
        }
        // The node may have been pushed out of the result while in flight; the query ends
        // either way.
        if let Some(c) = self.result.iter_mut().find(|c| c.node.id() == *from) {
            c.state = state;
        }
        true
    }

    /// Feeds the nodes `from` returned. Answers from nodes not in flight are ignored.
    pub fn on_response(&mut self, from: &NodeId, nodes: Vec<Node>) {
        if self.finish_query(from, QueryState::Answered) {
            self.offer(nodes);
        }
    }

    /// Records that `from` did not answer.
    pub fn on_failure(&mut self, from: &NodeId) {
        self.finish_query(from, QueryState::Failed);
    }

    /// Number of queries in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Number of FindNode queries handed out so far.
    pub fn queries_sent(&self) -> usize {
        self.queries_sent
    }

    /// Whether the lookup is over: nothing in flight, nobody left to ask.
    pub fn is_finished(&self) -> bool {
        self.in_flight.is_empty() && self.result.iter().all(|c| c.state != QueryState::NotAsked)
    }

    /// The current result, nearest first.
    pub fn result(&self) -> Vec<Node> {
        self.result.iter().map(|c| c.node.clone()).collect()
    }

    /// The nodes that answered, nearest first.
    pub fn responders(&self) -> Vec<Node> {
        self.result
            .iter()
            .filter(|c| c.state == QueryState::Answered)
            .map(|c| c.node.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discv4::netutil::v4;
    use crate::identity::NodeSecretKey;
    use quickcheck::quickcheck;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn nodes(n: usize, seed: u64) -> Vec<Node> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let k = NodeSecretKey::generate(&mut rng);
                Node::new(
                    *k.public(),
                    v4(10, 0, (i / 256) as u8, i as u8),
                    30303,
                    30303,
                )
            })
            .collect()
    }

    fn closest(all: &[Node], target: &NodeId, n: usize) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = all.iter().map(Node::id).collect();
        ids.sort_by(|a, b| target.distance_cmp(a, b));
        ids.truncate(n);
        ids
    }

    /// What node `q` knows: up to 8 nodes per log distance, a full Kademlia routing table.
    fn routing_table<'a>(all: &'a [Node], q: &Node) -> Vec<&'a Node> {
        let mut per_distance = std::collections::BTreeMap::<u32, usize>::new();
        all.iter()
            .filter(|n| n.id() != q.id())
            .filter(|n| {
                let c = per_distance
                    .entry(q.id().log_distance(&n.id()))
                    .or_default();
                *c += 1;
                *c <= 8
            })
            .collect()
    }

    /// Drives a lookup where every node answers with the 16 nodes of its routing table closest
    /// to the target, except that nodes whose index is in `dead` never answer.
    fn drive(all: &[Node], target: [u8; 64], seeds: usize, dead: &BTreeSet<usize>) -> Lookup {
        let local = NodeId([0xee; 32]);
        let mut l = Lookup::new(local, target, all[..seeds].to_vec());
        let mut steps = 0;
        while !l.is_finished() {
            let mut batch = Vec::new();
            while let Some(n) = l.next_query() {
                batch.push(n);
            }
            assert!(batch.len() <= ALPHA && l.in_flight() <= ALPHA);
            for q in batch {
                let idx = all.iter().position(|x| x.id() == q.id()).unwrap();
                if dead.contains(&idx) {
                    l.on_failure(&q.id());
                } else {
                    let known: Vec<Node> = routing_table(all, &q).into_iter().cloned().collect();
                    let ans: Vec<Node> = closest(&known, &l.target_id(), 16)
                        .into_iter()
                        .map(|id| all.iter().find(|x| x.id() == id).unwrap().clone())
                        .collect();
                    l.on_response(&q.id(), ans);
                }
            }
            steps += 1;
            assert!(steps < 10_000, "lookup does not terminate");
        }
        l
    }

    #[test]
    fn a_lookup_over_a_cooperative_network_finds_the_true_closest_16() {
        let all = nodes(300, 1);
        let target = [0x42u8; 64];
        let l = drive(&all, target, 3, &BTreeSet::new());
        let want = closest(&all, &NodeId::of_target(&target), 16);
        let got: Vec<NodeId> = l.result().iter().map(Node::id).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unresponsive_nodes_stay_in_the_result_but_are_asked_only_once() {
        let all = nodes(50, 2);
        let dead: BTreeSet<usize> = (0..50).step_by(2).collect();
        let l = drive(&all, [1u8; 64], 50, &dead);
        assert!(l.is_finished());
        assert_eq!(l.result().len(), 16);
        assert!(l.queries_sent() <= 50);
        assert!(l.responders().len() < 16);
    }

    #[test]
    fn an_empty_seed_set_finishes_at_once_and_self_is_never_returned() {
        let local = NodeId([1; 32]);
        let l = Lookup::new(local, [0; 64], vec![]);
        assert!(l.is_finished());
        let all = nodes(5, 3);
        let mut l = Lookup::new(all[0].id(), [0; 64], all.clone());
        assert!(l.result().iter().all(|n| n.id() != all[0].id()));
        let q = l.next_query().unwrap();
        l.on_response(&q.id(), all.clone());
        assert!(l.result().iter().all(|n| n.id() != all[0].id()));
    }

    #[test]
    fn answers_from_nodes_never_asked_change_nothing() {
        let all = nodes(30, 4);
        let mut l = Lookup::new(NodeId([9; 32]), [5; 64], all[..20].to_vec());
        let asked: Vec<Node> = std::iter::from_fn(|| l.next_query()).collect();
        assert_eq!(asked.len(), ALPHA);
        // Seen but not asked, and never seen at all: both ignored.
        let waiting = l
            .result()
            .into_iter()
            .find(|n| asked.iter().all(|a| a.id() != n.id()))
            .unwrap();
        let before = l.result();
        l.on_response(&waiting.id(), all[20..].to_vec());
        l.on_failure(&all[25].id());
        assert_eq!(l.in_flight(), ALPHA);
        assert_eq!(l.result(), before);
        // Answering twice counts once.
        l.on_failure(&asked[0].id());
        l.on_failure(&asked[0].id());
        assert_eq!(l.in_flight(), ALPHA - 1);
    }

    quickcheck! {
        fn lookups_terminate_stay_sorted_and_respect_alpha(seed: u64, dead_mask: u64) -> bool {
            let all = nodes(40, seed % 16);
            let dead: BTreeSet<usize> = (0..40).filter(|i| dead_mask & (1 << i) != 0).collect();
            let target = [seed as u8; 64];
            let l = drive(&all, target, 4, &dead);
            let t = l.target_id();
            let r = l.result();
            let ids: BTreeSet<NodeId> = r.iter().map(Node::id).collect();
            l.is_finished()
                && r.len() <= LOOKUP_RESULTS
                && ids.len() == r.len()
                && r.windows(2).all(|w| t.distance_cmp(&w[0].id(), &w[1].id()).is_lt())
                && l.queries_sent() <= 40
        }
    }
}
