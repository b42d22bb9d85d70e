//! The observable trace of a run, hashed as it happens: every datagram, connection, stream
//! write and node event. Each node has a trace of its own, fed in the order that node
//! processes its events (which is defined, whatever thread runs it); the digest combines them
//! in node order ([`digest_of`]). Two runs with the same digest did the same things at the
//! same virtual times.
//!
//! The running hash is a fast 128-bit multiply-rotate mix ([`Mix128`]; every byte of every datagram
//! passes through it, and Keccak there would cost a large share of the run); the digest is
//! Keccak-256 of its final state. It detects change; it is not meant to resist an adversary.

use devp2p_core::discv4::Event as DiscoveryEvent;
use devp2p_core::discv5::discovery::Event as Discv5Event;
use devp2p_core::fastmix::Mix128;
use devp2p_core::keccak::{keccak256, keccak256_concat};
use devp2p_core::node::NodeEvent;
use devp2p_core::Instant;

/// What a trace record is about; its byte is the first thing hashed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Record {
    /// A datagram reached a node.
    Datagram = 1,
    /// A datagram was lost (by the loss model, a partition, or a node being down).
    DatagramLost = 2,
    /// A TCP connection attempt reached its target.
    Syn = 3,
    /// A dial completed (the dialer learns it is connected).
    Connected = 4,
    /// A dial failed.
    ConnectFailed = 5,
    /// Stream bytes reached a node.
    Data = 6,
    /// A node learnt its connection was closed.
    Closed = 7,
    /// A node's timer fired.
    Timer = 8,
    /// A node reported an event.
    Event = 9,
    /// A node started, crashed or restarted.
    Lifecycle = 10,
    /// A partition formed or healed.
    Partition = 11,
    /// The harness started a lookup.
    Lookup = 12,
}

/// A running hash over the trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    mix: Mix128,
    bytes: u64,
    records: u64,
}

impl Trace {
    /// Hashes one record: its kind, the virtual time, the node, two numbers and some bytes.
    pub fn record(&mut self, kind: Record, at: Instant, node: usize, a: u64, b: u64, data: &[u8]) {
        self.record_parts(kind, at, node, a, b, &[data]);
    }

    /// [`Trace::record`] with the bytes in pieces, hashed as if concatenated; every piece but
    /// the last must be a multiple of 8 bytes long (ids are), which makes that so.
    fn record_parts(
        &mut self,
        kind: Record,
        at: Instant,
        node: usize,
        a: u64,
        b: u64,
        parts: &[&[u8]],
    ) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut head = [0u8; 1 + 8 * 5];
        head[0] = kind as u8;
        head[1..9].copy_from_slice(&at.as_millis().to_le_bytes());
        head[9..17].copy_from_slice(&(node as u64).to_le_bytes());
        head[17..25].copy_from_slice(&a.to_le_bytes());
        head[25..33].copy_from_slice(&b.to_le_bytes());
        head[33..41].copy_from_slice(&(len as u64).to_le_bytes());
        self.update(&head);
        for (i, p) in parts.iter().enumerate() {
            debug_assert!(i + 1 == parts.len() || p.len() % 8 == 0);
            self.update(p);
        }
        self.records += 1;
    }

    fn update(&mut self, data: &[u8]) {
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ (rest.len() as u64) << 56);
        }
        self.bytes += data.len() as u64;
    }

    fn mix(&mut self, w: u64) {
        self.mix.mix(w);
    }

    /// Hashes a node event in a compact form (kind and the ids involved).
    pub fn event(&mut self, at: Instant, node: usize, event: &NodeEvent) {
        let mut rec = |tag: u64, a: u64, parts: &[&[u8]]| {
            self.record_parts(Record::Event, at, node, tag, a, parts)
        };
        match event {
            NodeEvent::PeerAdded(p) => rec(1, p.direction as u64, &[&p.id.0]),
            NodeEvent::PeerRemoved {
                id,
                initiator,
                reason,
                ..
            } => rec(
                2,
                (*initiator as u64) << 8 | reason.map_or(0xff, |r| u64::from(r.code())),
                &[&id.0],
            ),
            NodeEvent::Message {
                peer,
                protocol,
                code,
                payload,
            } => rec(
                3,
                (protocol.index() as u64) << 32 | *code,
                &[&peer.0, payload],
            ),
            NodeEvent::Discovery(e) => match &**e {
                DiscoveryEvent::NodeAdded(n) => rec(4, 0, &[&n.id().0]),
                DiscoveryEvent::NodeRemoved(id) => rec(5, 0, &[&id.0]),
                DiscoveryEvent::NodeSeen(n) => rec(6, 0, &[&n.id().0]),
                DiscoveryEvent::LookupFinished { id, nodes, .. } => {
                    let ids: Vec<[u8; 32]> = nodes.iter().map(|n| n.id().0).collect();
                    let parts: Vec<&[u8]> = ids.iter().map(|i| &i[..]).collect();
                    rec(7, id.0, &parts)
                }
                DiscoveryEvent::Bootstrapped => rec(8, 0, &[]),
                DiscoveryEvent::ClockSkewSuspected {
                    consecutive_timeouts,
                } => rec(9, u64::from(*consecutive_timeouts), &[]),
                // The enum may grow; anything new still counts as "an event happened".
                #[allow(unreachable_patterns)]
                _ => rec(10, 0, &[]),
            },
            NodeEvent::Discv5(e) => match &**e {
                Discv5Event::NodeAdded(n) => rec(14, 0, &[&n.id().0]),
                Discv5Event::NodeRemoved(id) => rec(15, 0, &[&id.0]),
                Discv5Event::NodeSeen(n) => rec(16, 0, &[&n.id().0]),
                Discv5Event::LookupFinished { id, nodes, .. } => {
                    let ids: Vec<[u8; 32]> = nodes.iter().map(|n| n.id().0).collect();
                    let parts: Vec<&[u8]> = ids.iter().map(|i| &i[..]).collect();
                    rec(17, id.0, &parts)
                }
                Discv5Event::Bootstrapped => rec(18, 0, &[]),
                Discv5Event::TalkRequest { id, from, .. } => rec(19, id.0, &[&from.id.0]),
                Discv5Event::TalkResponse { to, .. } => rec(20, 0, &[&to.id.0]),
                Discv5Event::PingResponse { to, .. } => rec(21, 0, &[&to.id.0]),
                Discv5Event::FindNodeResponse { to, .. } => rec(22, 0, &[&to.id.0]),
            },
            NodeEvent::Writable { peer } => rec(11, 0, &[&peer.0]),
            NodeEvent::ConnectionFailed(f) => {
                let id = f.remote.map(|k| k.id().0).unwrap_or_default();
                let conn = f.conn.map_or(u64::MAX, |c| c.0);
                // The error's text names its kind and detail.
                rec(12, conn, &[&id, f.error.to_string().as_bytes()])
            }
            // The enum may grow; anything new still counts as "an event happened".
            #[allow(unreachable_patterns)]
            _ => rec(13, 0, &[]),
        }
    }

    /// Records hashed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The running state: what [`Trace::digest`] hashes, and what [`digest_of`] combines.
    pub fn state(&self) -> [u8; 32] {
        let mut state = [0u8; 32];
        state[..8].copy_from_slice(&self.mix.a.to_le_bytes());
        state[8..16].copy_from_slice(&self.mix.b.to_le_bytes());
        state[16..24].copy_from_slice(&self.bytes.to_le_bytes());
        state[24..].copy_from_slice(&self.records.to_le_bytes());
        state
    }

    /// The digest of everything recorded so far.
    pub fn digest(&self) -> [u8; 32] {
        keccak256(&self.state())
    }
}

/// The digest of several traces in the order given (the simulation's: its own, then every
/// node's in index order, so that it does not depend on which thread ran which node).
pub fn digest_of<'a>(traces: impl IntoIterator<Item = &'a Trace>) -> [u8; 32] {
    let states: Vec<[u8; 32]> = traces.into_iter().map(Trace::state).collect();
    let parts: Vec<&[u8]> = states.iter().map(|s| &s[..]).collect();
    keccak256_concat(&parts)
}
