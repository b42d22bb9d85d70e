//! The discv5 discovery service as a stateful target: a node under test and two real
//! discovery peers (both knowing the node as their bootnode), their datagrams delivered, lost,
//! duplicated or corrupted in the fuzzer's order, with strangers' random packets and raw
//! bytes, lookups, TALKREQs both ways (answered, late or never), protocols registered and
//! dropped, new local records, peer restarts and time jumps.
//!
//! Every key signs under the simulated scheme ([`keys::sim`]): this target fuzzes the
//! machines' logic, and real ECDSA and ECDH were most of its time; `discv5_packet` and
//! `discv5_message` fuzz the real handshake cryptography.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use devp2p_core::discv4::{LookupId, Node, NodeDbSnapshot};
use devp2p_core::discv5::discovery::{Config, Discovery, Event, TalkRequestId};
use devp2p_core::discv5::packet::{encode_random, MAX_PACKET_SIZE};
use devp2p_core::discv5::{RequestId, SessionsConfig};
use devp2p_core::{Enr, Instant, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::keys;

const UNIX_START: u64 = 1_700_000_000;
const NUT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 30303);
const PEERS: [SocketAddr; 2] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 30303),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 30303),
];
/// Datagrams kept in flight at most; older ones are lost.
const MAX_IN_FLIGHT: usize = 64;

/// Small limits, so that a short input reaches them.
fn nut_config() -> Config {
    let mut sessions = SessionsConfig::default();
    sessions.max_sessions = 3;
    sessions.max_pending_challenges = 3;
    sessions.max_rate_limited_ips = 3;
    sessions.max_known_records = 4;
    sessions.max_queued_requests_per_node = 2;
    sessions.max_requests = 6;
    let mut c = Config::default();
    c.sessions = sessions;
    c.max_pending_talk_requests = 2;
    c.max_pending_talk_bytes = 64;
    c.talk_requests_per_peer_per_second = 3;
    c
}

fn stranger_addr(i: u8) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, i % 5)),
        9000 + u16::from(i % 3),
    )
}

fn record(key: &NodeSecretKey, addr: SocketAddr, seq: u64) -> Enr {
    crate::records::signed(key, addr, seq)
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A datagram in flight arrives, perhaps twice, perhaps changed.
    Deliver {
        which: u8,
        duplicate: bool,
        flip: Option<(u16, u8)>,
    },
    /// A datagram in flight is lost.
    Lose(u8),
    /// A stranger's random packet (it draws a WHOAREYOU).
    Random { from: u8, nonce: u8 },
    /// Raw bytes from a peer's address or a stranger's.
    Raw { from: u8, data: Vec<u8> },
    /// The node looks up a target.
    Lookup([u8; 2]),
    /// The node asks a peer (or a stranger's record) a TALKREQ.
    TalkRequest { to: u8, protocol: u8, size: u8 },
    /// A peer asks the node a TALKREQ.
    PeerTalk { peer: u8, protocol: u8, size: u8 },
    /// The node's application answers a pending TALKREQ (or one it answered already).
    Answer { which: u8, size: u8 },
    /// The node registers or drops a protocol.
    Register { protocol: u8, on: bool },
    /// The node gets a newer record.
    NewRecord,
    /// A peer restarts with a newer record: its sessions are gone.
    RestartPeer(u8),
    /// Time passes.
    Advance(u16),
}

/// The node, its peers and the wire.
struct World {
    now: Instant,
    nut: Discovery<ChaCha20Rng>,
    nut_seq: u64,
    peers: Vec<Discovery<ChaCha20Rng>>,
    peer_seqs: Vec<u64>,
    /// In flight: (from, to, bytes).
    wire: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// The node's lookups that have not finished.
    lookups: BTreeSet<LookupId>,
    /// The node's TALKREQs that have not ended.
    talks: BTreeSet<RequestId>,
    /// TALKREQs handed to the node's application, answered or not.
    handed: Vec<TalkRequestId>,
    /// TALKREQs handed to the node's application and not answered, by id.
    unanswered: BTreeMap<TalkRequestId, ()>,
}

fn peer(i: usize, seq: u64, now: Instant) -> Discovery<ChaCha20Rng> {
    let k = keys::sim(10 + i as u8);
    let mut c = Config::default();
    c.bootnodes = vec![Node::from_enr(record(&keys::sim(1), NUT, 1)).expect("udp")];
    let mut d = Discovery::new(
        k.clone(),
        record(&k, PEERS[i], seq),
        c,
        NodeDbSnapshot::default(),
        ChaCha20Rng::seed_from_u64(100 + seq * 2 + i as u64),
        now,
        UNIX_START,
    );
    // Protocols 0 and 1 are answered by the peers' application (with the request), 2 and 3
    // with the empty TALKRESP for an unknown protocol.
    d.register_talk_protocol(&[0]);
    d.register_talk_protocol(&[1]);
    d
}

impl World {
    fn new() -> Self {
        let now = Instant::from_millis(1_000);
        let k = keys::sim(1);
        let mut c = nut_config();
        // The node starts knowing the first peer, the second knows the node.
        c.bootnodes = vec![Node::from_enr(record(&keys::sim(10), PEERS[0], 1)).expect("udp")];
        let nut = Discovery::new(
            k.clone(),
            record(&k, NUT, 1),
            c,
            NodeDbSnapshot::default(),
            ChaCha20Rng::seed_from_u64(1),
            now,
            UNIX_START,
        );
        World {
            now,
            nut,
            nut_seq: 1,
            peers: (0..2).map(|i| peer(i, 1, now)).collect(),
            peer_seqs: vec![1, 1],
            wire: Vec::new(),
            lookups: BTreeSet::new(),
            talks: BTreeSet::new(),
            handed: Vec::new(),
            unanswered: BTreeMap::new(),
        }
    }

    fn unix(&self) -> u64 {
        UNIX_START + self.now.as_millis() / 1000
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let (now, unix) = (self.now, self.unix());
        if to == NUT {
            let _ = self.nut.handle_datagram(now, unix, from, bytes);
        } else if let Some(i) = PEERS.iter().position(|p| *p == to) {
            let _ = self.peers[i].handle_datagram(now, unix, from, bytes);
        }
    }

    /// Drains every machine: datagrams onto the wire (those to strangers are dropped), the
    /// node's events checked against what it has outstanding, the peers' TALKREQs answered.
    fn flush(&mut self) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        while let Some(t) = self.nut.poll_transmit(&mut buf) {
            if PEERS.contains(&t.destination) {
                self.wire.push((NUT, t.destination, buf[..t.len].to_vec()));
            }
        }
        while let Some(e) = self.nut.poll_event() {
            match e {
                Event::LookupFinished { id, nodes, target } => {
                    // Refresh lookups are the machine's own; the application's end once.
                    self.lookups.remove(&id);
                    assert!(nodes.len() <= 16);
                    assert!(nodes
                        .windows(2)
                        .all(|w| target.distance_cmp(&w[0].id(), &w[1].id()).is_lt()));
                }
                Event::TalkResponse { id, .. } => {
                    assert!(self.talks.remove(&id), "TALKREQ {id:?} ended twice");
                }
                Event::TalkRequest { id, .. } => {
                    assert!(!self.handed.contains(&id), "{id} handed out twice");
                    self.handed.push(id);
                    self.unanswered.insert(id, ());
                }
                _ => {}
            }
        }
        for (peer, &at) in self.peers.iter_mut().zip(PEERS.iter()) {
            while let Some(t) = peer.poll_transmit(&mut buf) {
                self.wire.push((at, t.destination, buf[..t.len].to_vec()));
            }
            while let Some(e) = peer.poll_event() {
                if let Event::TalkRequest { id, request, .. } = e {
                    let _ = peer.answer_talk(self.now, id, &request);
                    while let Some(t) = peer.poll_transmit(&mut buf) {
                        self.wire.push((at, t.destination, buf[..t.len].to_vec()));
                    }
                }
            }
        }
        if self.wire.len() > MAX_IN_FLIGHT {
            self.wire.drain(..self.wire.len() - MAX_IN_FLIGHT);
        }
    }

    fn check(&self) {
        if let Err(e) = self.nut.check_invariants() {
            panic!("invariant broken: {e}");
        }
        for p in &self.peers {
            if let Err(e) = p.check_invariants() {
                panic!("a peer's invariant broken: {e}");
            }
        }
        let c = nut_config();
        let (pending, bytes) = self.nut.pending_talk_requests();
        assert!(pending <= c.max_pending_talk_requests);
        assert!(bytes <= c.max_pending_talk_bytes);
        assert!(self.nut.sessions().request_count() <= c.sessions.max_requests);
        assert!(self.nut.outstanding_requests() <= c.sessions.max_requests);
        assert!(
            self.nut.table().len() <= 2,
            "only the peers can enter the table"
        );
    }
}

/// Every step keeps the limits and indexes (the node's and its peers'); every lookup and
/// TALKREQ of the node ends exactly once, and once time runs on with nothing delivered all
/// of them have ended and no TALKREQ is left waiting for the application.
pub fn discv5_discovery(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut w = World::new();
    let nut_id = w.nut.local_id();
    for _ in 0..48 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        let (now, unix) = (w.now, w.unix());
        match op {
            Op::Deliver {
                which,
                duplicate,
                flip,
            } => {
                if !w.wire.is_empty() {
                    let i = usize::from(which) % w.wire.len();
                    let (from, to, mut bytes) = if duplicate {
                        w.wire[i].clone()
                    } else {
                        w.wire.remove(i)
                    };
                    if let Some((pos, bit)) = flip {
                        if !bytes.is_empty() {
                            let p = usize::from(pos) % bytes.len();
                            bytes[p] ^= 1 << (bit % 8);
                        }
                    }
                    w.deliver(from, to, &bytes);
                }
            }
            Op::Lose(which) => {
                if !w.wire.is_empty() {
                    let i = usize::from(which) % w.wire.len();
                    w.wire.remove(i);
                }
            }
            Op::Random { from, nonce } => {
                let k = keys::sim(200 + from % 8);
                let mut out = Vec::new();
                encode_random(
                    &mut out,
                    &nut_id,
                    &k.id(),
                    &[from; 16],
                    &[nonce; 12],
                    &[0; 20],
                )
                .expect("fits");
                let _ = w.nut.handle_datagram(now, unix, stranger_addr(from), &out);
            }
            Op::Raw { from, data } => {
                let addr = match from % 4 {
                    0 => PEERS[0],
                    1 => PEERS[1],
                    _ => stranger_addr(from),
                };
                let _ = w.nut.handle_datagram(now, unix, addr, &data);
            }
            Op::Lookup(t) => {
                let mut target = [t[0]; 32];
                target[31] = t[1];
                let id = w.nut.start_lookup(now, unix, NodeId(target));
                assert!(w.lookups.insert(id), "lookup id {id:?} handed out twice");
            }
            Op::TalkRequest { to, protocol, size } => {
                let to = match to % 3 {
                    0 => record(&keys::sim(10), PEERS[0], w.peer_seqs[0]),
                    1 => record(&keys::sim(11), PEERS[1], w.peer_seqs[1]),
                    _ => record(&keys::sim(200 + to % 8), stranger_addr(to), 1),
                };
                let request = vec![size; usize::from(size) * 5];
                if let Ok(id) = w.nut.talk_request(now, &to, &[protocol % 4], &request) {
                    assert!(w.talks.insert(id), "request id {id:?} handed out twice");
                }
            }
            Op::PeerTalk {
                peer,
                protocol,
                size,
            } => {
                let i = usize::from(peer) % w.peers.len();
                let to = record(&keys::sim(1), NUT, w.nut_seq);
                let request = vec![size; usize::from(size) % 48];
                let _ = w.peers[i].talk_request(now, &to, &[protocol % 4], &request);
            }
            Op::Answer { which, size } => {
                if !w.handed.is_empty() {
                    let id = w.handed[usize::from(which) % w.handed.len()];
                    let answered = w.nut.answer_talk(now, id, &vec![size; usize::from(size)]);
                    // A second answer, or one after the expiry, is refused.
                    if w.unanswered.remove(&id).is_none() {
                        assert!(answered.is_err(), "{id} answered twice");
                    }
                }
            }
            Op::Register { protocol, on } => {
                if on {
                    assert!(w.nut.register_talk_protocol(&[protocol % 4]));
                } else {
                    w.nut.unregister_talk_protocol(&[protocol % 4]);
                }
            }
            Op::NewRecord => {
                w.nut_seq += 1;
                let r = record(&keys::sim(1), NUT, w.nut_seq);
                assert!(w.nut.set_local_record(r));
            }
            Op::RestartPeer(i) => {
                let i = usize::from(i) % w.peers.len();
                w.peer_seqs[i] += 1;
                w.peers[i] = peer(i, w.peer_seqs[i], now);
                w.wire.retain(|(_, to, _)| *to != PEERS[i]);
            }
            Op::Advance(ms) => {
                w.now += Duration::from_millis(u64::from(ms % 5000));
                let unix = w.unix();
                w.nut.handle_timeout(w.now, unix);
                for p in &mut w.peers {
                    p.handle_timeout(w.now, unix);
                }
            }
        }
        w.flush();
        w.check();
        // An unanswered TALKREQ is forgotten after its timeout: answering fails from then on.
        let pending = w.nut.pending_talk_requests().0;
        assert!(pending <= w.unanswered.len());
    }
    // Nothing more arrives: every lookup and TALKREQ ends by its timers.
    for _ in 0..2000 {
        if w.lookups.is_empty() && w.talks.is_empty() && w.nut.pending_talk_requests().0 == 0 {
            break;
        }
        let Some(t) = w.nut.poll_timeout() else {
            break;
        };
        w.now = w.now.max(t);
        let unix = w.unix();
        w.nut.handle_timeout(w.now, unix);
        w.wire.clear();
        w.flush();
        w.wire.clear();
        w.check();
    }
    assert!(w.lookups.is_empty(), "lookups never ended: {:?}", w.lookups);
    assert!(w.talks.is_empty(), "TALKREQs never ended: {:?}", w.talks);
    assert_eq!(w.nut.pending_talk_requests(), (0, 0));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written run, every datagram delivered in order: the node and its peers
    /// bootstrap and a TALKREQ is answered, so the target is known to get past the
    /// handshakes.
    #[test]
    fn the_world_fills_the_table_and_answers_talk() {
        let mut w = World::new();
        for _ in 0..200 {
            if w.wire.is_empty() {
                w.now += Duration::from_millis(300);
                let unix = w.unix();
                w.nut.handle_timeout(w.now, unix);
                for p in &mut w.peers {
                    p.handle_timeout(w.now, unix);
                }
            } else {
                let (from, to, bytes) = w.wire.remove(0);
                w.deliver(from, to, &bytes);
            }
            w.flush();
            w.check();
        }
        // The node learns its bootnode; the second peer, which handshook with the node
        // before the node's first refresh ended, learns both (from the node's NODES).
        assert!(w.nut.is_bootstrapped() && w.peers.iter().all(|p| p.is_bootstrapped()));
        assert!(w.nut.table().contains(&keys::sim(10).id()));
        assert_eq!(w.peers[1].table().len(), 2);
        let to = record(&keys::sim(10), PEERS[0], 1);
        let id = w.nut.talk_request(w.now, &to, b"x", b"hello").unwrap();
        w.talks.insert(id);
        for _ in 0..20 {
            w.flush();
            if w.wire.is_empty() {
                break;
            }
            let (from, to, bytes) = w.wire.remove(0);
            w.deliver(from, to, &bytes);
        }
        assert!(w.talks.is_empty(), "the TALKREQ was answered");
    }
}
