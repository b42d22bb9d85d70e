//! Our requests: at most one in flight per node and address, the rest queued behind it, and
//! how answers and WHOAREYOUs find them ([DISCV5.md §7.1](crate::spec::discv5)).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use smallvec::SmallVec;

use super::types::{Contact, NodeAddress, NodesResponse};
use crate::discv5::crypto::Nonce;
use crate::discv5::message::{Message, Nodes, RequestId, MAX_NODES_RESPONSES};
use crate::enr::Enr;
use crate::identity::NodeId;
use crate::time::Instant;

/// One request, queued or in flight.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub id: RequestId,
    pub contact: Contact,
    /// The request as sent, with its id; re-encoded for every attempt and handshake.
    pub message: Message,
    /// Sends so far (0 while queued).
    pub attempts: u8,
    /// Whether this attempt already answered a WHOAREYOU.
    pub handshake_sent: bool,
    /// Whether its first send was held back for the peer's handshake (see
    /// `Sessions::send_attempt`); once only.
    pub held: bool,
    /// The nonce of every packet sent for it: a WHOAREYOU may name any of them (a peer
    /// repeats its first challenge, which names our first packet, §4.9).
    pub nonces: SmallVec<[Nonce; 4]>,
    pub deadline: Instant,
    /// NODES messages gathered so far.
    pub nodes: Option<NodesProgress>,
}

/// A multi-part NODES answer in progress.
#[derive(Debug, Clone, Default)]
pub(super) struct NodesProgress {
    pub total: u8,
    pub messages: u8,
    pub records: Vec<Enr>,
    pub seen: BTreeSet<NodeId>,
    pub rejected: usize,
}

impl NodesProgress {
    /// Adds one NODES message from `responder` answering `distances`; records at other
    /// distances and repeats are left out (geth `verifyResponseNode`).
    pub fn add(&mut self, responder: &NodeId, distances: &[u64], nodes: Nodes) {
        if self.messages == 0 {
            let total = usize::from(nodes.total).clamp(1, MAX_NODES_RESPONSES);
            self.total = total as u8;
        }
        self.messages = self.messages.saturating_add(1);
        self.rejected += nodes.invalid_records;
        for r in nodes.records {
            let d = u64::from(responder.log_distance(&r.node_id()));
            if distances.contains(&d) && self.seen.insert(r.node_id()) {
                self.records.push(r);
            } else {
                self.rejected += 1;
            }
        }
    }

    pub fn is_complete(&self) -> bool {
        self.messages >= self.total
    }

    pub fn into_response(self) -> NodesResponse {
        NodesResponse {
            records: self.records,
            messages: self.messages,
            total: self.total,
            rejected: self.rejected,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct NodeCalls {
    active: Option<Call>,
    queue: VecDeque<Call>,
}

/// Every request of ours, by node address, with indexes by packet nonce and by id.
#[derive(Debug, Clone, Default)]
pub(super) struct Calls {
    by_node: BTreeMap<NodeAddress, NodeCalls>,
    by_nonce: BTreeMap<Nonce, NodeAddress>,
    ids: BTreeSet<RequestId>,
}

impl Calls {
    /// Requests outstanding, in flight and queued.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Requests in flight.
    pub fn active_len(&self) -> usize {
        self.by_node.values().filter(|n| n.active.is_some()).count()
    }

    pub fn contains_id(&self, id: &RequestId) -> bool {
        self.ids.contains(id)
    }

    /// How many wait behind the one in flight to `node`, or `None` if none is in flight.
    pub fn queued(&self, node: &NodeAddress) -> Option<usize> {
        let n = self.by_node.get(node)?;
        n.active.as_ref().map(|_| n.queue.len())
    }

    /// Adds `call`; true if it is now in flight (nothing else was), false if queued.
    pub fn push(&mut self, node: NodeAddress, call: Call) -> bool {
        self.ids.insert(call.id);
        let n = self.by_node.entry(node).or_default();
        if n.active.is_none() {
            n.active = Some(call);
            true
        } else {
            n.queue.push_back(call);
            false
        }
    }

    pub fn active(&self, node: &NodeAddress) -> Option<&Call> {
        self.by_node.get(node)?.active.as_ref()
    }

    pub fn active_mut(&mut self, node: &NodeAddress) -> Option<&mut Call> {
        self.by_node.get_mut(node)?.active.as_mut()
    }

    /// Notes that the call in flight to `node` sent a packet with `nonce`.
    pub fn sent_with(&mut self, node: &NodeAddress, nonce: Nonce) {
        if let Some(c) = self.active_mut(node) {
            c.nonces.push(nonce);
            self.by_nonce.insert(nonce, *node);
        }
    }

    /// Whose request sent a packet with `nonce`.
    pub fn by_nonce(&self, nonce: &Nonce) -> Option<NodeAddress> {
        self.by_nonce.get(nonce).copied()
    }

    /// Ends the call in flight to `node`, makes the next queued one active (it still has to
    /// be sent) and says whether there is one.
    pub fn finish(&mut self, node: &NodeAddress) -> Option<(Call, bool)> {
        let n = self.by_node.get_mut(node)?;
        let call = n.active.take()?;
        for nonce in &call.nonces {
            self.by_nonce.remove(nonce);
        }
        self.ids.remove(&call.id);
        n.active = n.queue.pop_front();
        let next = n.active.is_some();
        if !next {
            self.by_node.remove(node);
        }
        Some((call, next))
    }

    /// Nodes whose call in flight is due at `now`.
    pub fn due(&self, now: Instant) -> Vec<NodeAddress> {
        self.by_node
            .iter()
            .filter(|(_, n)| n.active.as_ref().is_some_and(|c| c.deadline <= now))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The earliest deadline of a call in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_node
            .values()
            .filter_map(|n| n.active.as_ref().map(|c| c.deadline))
            .min()
    }

    /// Whether the indexes agree with the calls (for tests and fuzzers).
    pub fn check(&self) -> Result<(), String> {
        let mut ids = 0;
        for (node, n) in &self.by_node {
            if n.active.is_none() && !n.queue.is_empty() {
                return Err(format!("{node}: queued calls but none in flight"));
            }
            if n.active.is_none() {
                return Err(format!("{node}: empty entry kept"));
            }
            for c in n.active.iter().chain(&n.queue) {
                ids += 1;
                if !self.ids.contains(&c.id) {
                    return Err(format!("{node}: call id missing from the index"));
                }
            }
            for c in &n.queue {
                if !c.nonces.is_empty() {
                    return Err(format!("{node}: queued call with packets sent"));
                }
            }
            if let Some(c) = &n.active {
                for nonce in &c.nonces {
                    if self.by_nonce.get(nonce) != Some(node) {
                        return Err(format!("{node}: nonce missing from the index"));
                    }
                }
            }
        }
        if ids != self.ids.len() {
            return Err(format!("{} ids indexed, {ids} calls", self.ids.len()));
        }
        for (nonce, node) in &self.by_nonce {
            if !self.active(node).is_some_and(|c| c.nonces.contains(nonce)) {
                return Err(format!("{node}: stale nonce in the index"));
            }
        }
        Ok(())
    }
}
