//! The discv5 session layer as a stateful target: a node under test and a real peer machine,
//! their datagrams delivered, lost, duplicated or corrupted in the fuzzer's order, mixed with
//! random packets and handshakes from strangers, raw bytes, requests both ways, restarts and
//! time jumps.
//!
//! Every key signs under the simulated scheme ([`keys::sim`]): this target fuzzes the
//! machines' logic, and real ECDSA and ECDH were most of its time; `discv5_packet` and
//! `discv5_message` fuzz the real handshake cryptography.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use devp2p_core::discv5::message::{Message, Ping, Pong, TalkResp};
use devp2p_core::discv5::packet::{encode_handshake, encode_random, Packet, MAX_PACKET_SIZE};
use devp2p_core::discv5::{Contact, Event, Request, RequestId, Sessions, SessionsConfig};
use devp2p_core::{Enr, Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::keys;

/// Small limits, so that a short input reaches every one of them.
fn config() -> SessionsConfig {
    let mut c = SessionsConfig::default();
    c.max_sessions = 3;
    c.max_pending_challenges = 3;
    c.max_rate_limited_ips = 3;
    c.max_known_records = 4;
    c.whoareyou_per_ip_per_second = 5;
    c.max_queued_requests_per_node = 2;
    c.max_requests = 5;
    c
}

fn strangers() -> &'static [NodeSecretKey] {
    static K: OnceLock<Vec<NodeSecretKey>> = OnceLock::new();
    K.get_or_init(|| (0..8).map(|i| keys::sim(200 + i)).collect())
}

fn stranger_addr(i: u8) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, i % 5)),
        9000 + u16::from(i % 3),
    )
}

const NUT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 30303);
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 30303);

fn record(key: &NodeSecretKey, addr: SocketAddr, seq: u64) -> Enr {
    crate::records::signed(key, addr, seq)
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The peer asks the node something.
    PeerRequest(u8),
    /// The node asks the peer (by record, key or id) or a stranger something.
    NutRequest { to: u8, how: u8, what: u8 },
    /// A datagram in flight between the two arrives, perhaps twice, perhaps changed.
    Deliver {
        which: u8,
        duplicate: bool,
        flip: Option<(u16, u8)>,
    },
    /// A datagram in flight is lost.
    Lose(u8),
    /// A stranger's random packet (it draws a WHOAREYOU).
    Random { key: u8, from: u8, nonce: u8 },
    /// A stranger's handshake answering the last WHOAREYOU sent to its address.
    StrangerHandshake { key: u8, from: u8, record: bool },
    /// Raw bytes from anywhere.
    Raw { from: u8, data: Vec<u8> },
    /// The caller learns a stranger's or the peer's record.
    Learn(u8),
    /// The peer restarts: sessions gone, maybe a newer record.
    RestartPeer { newer: bool },
    /// Time passes.
    Advance(u16),
}

/// Two machines and the wire between them.
struct World {
    now: Instant,
    nut: Sessions<ChaCha20Rng>,
    peer: Sessions<ChaCha20Rng>,
    peer_seq: u64,
    /// In flight: (to the node?, bytes).
    wire: Vec<(bool, Vec<u8>)>,
    /// The node's datagrams to strangers, newest last (a few).
    to_strangers: Vec<(SocketAddr, Vec<u8>)>,
    /// The node's requests that have not ended yet.
    outstanding: BTreeSet<RequestId>,
}

impl World {
    fn new() -> Self {
        let now = Instant::from_millis(1_000);
        let nut_key = keys::sim(1);
        let nut = Sessions::new(
            nut_key.clone(),
            record(&nut_key, NUT, 1),
            config(),
            ChaCha20Rng::seed_from_u64(1),
            now,
        );
        World {
            now,
            nut,
            peer: Self::peer(1, now),
            peer_seq: 1,
            wire: Vec::new(),
            to_strangers: Vec::new(),
            outstanding: BTreeSet::new(),
        }
    }

    fn peer(seq: u64, now: Instant) -> Sessions<ChaCha20Rng> {
        let k = keys::sim(2);
        Sessions::new(
            k.clone(),
            record(&k, PEER, seq),
            SessionsConfig::default(),
            ChaCha20Rng::seed_from_u64(seq),
            now,
        )
    }

    fn peer_contact(&self, how: u8) -> Contact {
        let k = keys::sim(2);
        match how % 3 {
            0 => Contact::from_record(record(&k, PEER, self.peer_seq)).expect("has udp"),
            1 => Contact::from_key(*k.public(), PEER),
            _ => Contact::from_id(k.id(), PEER),
        }
    }

    /// Drains both machines: datagrams onto the wire, requests answered, the node's request
    /// events checked against what it has outstanding.
    fn flush(&mut self) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        for _ in 0..8 {
            let mut answered = false;
            while let Some(t) = self.nut.poll_transmit(&mut buf) {
                let bytes = buf[..t.len].to_vec();
                if t.destination == PEER {
                    self.wire.push((false, bytes));
                } else {
                    self.to_strangers.push((t.destination, bytes));
                    if self.to_strangers.len() > 16 {
                        self.to_strangers.remove(0);
                    }
                }
            }
            while let Some(t) = self.peer.poll_transmit(&mut buf) {
                assert_eq!(t.destination, NUT, "the peer talks only to the node");
                self.wire.push((true, buf[..t.len].to_vec()));
            }
            while let Some(e) = self.nut.poll_event() {
                match &e {
                    Event::Response { id, .. } | Event::RequestFailed { id, .. } => {
                        assert!(self.outstanding.remove(id), "request {id:?} ended twice");
                    }
                    _ => {}
                }
                answered |= answer(&mut self.nut, self.now, &e);
            }
            while let Some(e) = self.peer.poll_event() {
                answered |= answer(&mut self.peer, self.now, &e);
            }
            if !answered {
                break;
            }
        }
        self.wire.truncate(64);
    }

    fn check(&self) {
        for m in [&self.nut, &self.peer] {
            if let Err(e) = m.check_invariants() {
                panic!("invariant broken: {e}");
            }
        }
        let c = config();
        assert!(self.nut.session_count() <= c.max_sessions);
        assert!(self.nut.pending_challenges() <= c.max_pending_challenges);
        assert!(self.nut.rate_limited_ips() <= c.max_rate_limited_ips);
        assert!(self.nut.known_record_count() <= c.max_known_records);
        assert!(self.nut.request_count() <= c.max_requests);
        assert_eq!(self.nut.request_count(), self.outstanding.len());
    }
}

/// Answers a request event the way the layer above would; says whether it sent anything.
fn answer(m: &mut Sessions<ChaCha20Rng>, now: Instant, e: &Event) -> bool {
    let Event::Request { from, request } = e else {
        return false;
    };
    let r = match request {
        Message::Ping(p) => m.send_response(
            now,
            from,
            Message::Pong(Pong {
                request_id: p.request_id,
                enr_seq: m.local_record().seq(),
                recipient_ip: Some(from.addr.ip()),
                recipient_port: from.addr.port(),
            }),
        ),
        Message::FindNode(f) => {
            let own = m.local_record().clone();
            m.send_nodes(now, from, f.request_id, &[own]).map(|_| ())
        }
        Message::TalkReq(t) => m.send_response(
            now,
            from,
            Message::TalkResp(TalkResp {
                request_id: t.request_id,
                response: t.request.clone(),
            }),
        ),
        _ => return false,
    };
    r.is_ok()
}

fn request(what: u8) -> Request {
    match what % 3 {
        0 => Request::Ping,
        1 => Request::FindNode {
            distances: vec![0, u64::from(what), 256],
        },
        _ => Request::TalkReq {
            protocol: vec![what],
            request: vec![what; usize::from(what) * 4],
        },
    }
}

/// Every step keeps the limits and indexes, every request of the node ends exactly once, and
/// once time runs on with nothing delivered every request has ended.
pub fn discv5_sessions(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut w = World::new();
    let nut_id = w.nut.local_id();
    for _ in 0..64 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        match op {
            Op::PeerRequest(what) => {
                let c = Contact::from_record(w.nut.local_record().clone()).expect("has udp");
                let _ = w.peer.send_request(w.now, c, request(what));
            }
            Op::NutRequest { to, how, what } => {
                let contact = if to % 2 == 0 {
                    w.peer_contact(how)
                } else {
                    let k = &strangers()[usize::from(to / 2) % strangers().len()];
                    Contact::from_record_at(record(k, stranger_addr(to), 1), stranger_addr(to))
                };
                if let Ok(id) = w.nut.send_request(w.now, contact, request(what)) {
                    assert!(
                        w.outstanding.insert(id),
                        "request id {id:?} handed out twice"
                    );
                }
            }
            Op::Deliver {
                which,
                duplicate,
                flip,
            } => {
                if !w.wire.is_empty() {
                    let i = usize::from(which) % w.wire.len();
                    let (to_nut, mut bytes) = if duplicate {
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
                    if to_nut {
                        let _ = w.nut.handle_datagram(w.now, PEER, &bytes);
                    } else {
                        let _ = w.peer.handle_datagram(w.now, NUT, &bytes);
                    }
                }
            }
            Op::Lose(which) => {
                if !w.wire.is_empty() {
                    let i = usize::from(which) % w.wire.len();
                    w.wire.remove(i);
                }
            }
            Op::Random { key, from, nonce } => {
                let k = &strangers()[usize::from(key) % strangers().len()];
                let mut out = Vec::new();
                encode_random(
                    &mut out,
                    &nut_id,
                    &k.id(),
                    &[key; 16],
                    &[nonce; 12],
                    &[0; 20],
                )
                .expect("fits");
                let _ = w.nut.handle_datagram(w.now, stranger_addr(from), &out);
            }
            Op::StrangerHandshake {
                key,
                from,
                record: with_record,
            } => {
                let k = &strangers()[usize::from(key) % strangers().len()];
                let addr = stranger_addr(from);
                let last = w.to_strangers.iter().rev().find(|(a, _)| *a == addr);
                if let Some(p) = last.and_then(|(_, b)| Packet::decode(&k.id(), b).ok()) {
                    // A valid scalar; under the simulated scheme its public key is a hash.
                    let eph = secp256k1::SecretKey::from_secret_bytes([(key % 100) | 1; 32])
                        .expect("valid key");
                    let ping = Message::Ping(Ping {
                        request_id: RequestId::from_u64(u64::from(key)),
                        enr_seq: 1,
                    });
                    let rec = with_record.then(|| record(k, addr, 1));
                    let mut out = Vec::new();
                    let _ = encode_handshake(
                        &mut out,
                        k,
                        w.nut.local_record().public_key(),
                        p.header(),
                        &eph,
                        rec.as_ref(),
                        &[5; 16],
                        &[6; 12],
                        &ping,
                    );
                    let _ = w.nut.handle_datagram(w.now, addr, &out);
                }
            }
            Op::Raw { from, data } => {
                let addr = if from % 4 == 0 {
                    PEER
                } else {
                    stranger_addr(from)
                };
                let _ = w.nut.handle_datagram(w.now, addr, &data);
            }
            Op::Learn(i) => {
                let r = if i % 4 == 0 {
                    record(&keys::sim(2), PEER, w.peer_seq)
                } else {
                    let k = &strangers()[usize::from(i) % strangers().len()];
                    record(k, stranger_addr(i), u64::from(i))
                };
                w.nut.learn_record(r);
            }
            Op::RestartPeer { newer } => {
                if newer {
                    w.peer_seq += 1;
                }
                w.peer = World::peer(w.peer_seq, w.now);
                w.wire.retain(|(to_nut, _)| !*to_nut);
            }
            Op::Advance(ms) => {
                w.now += Duration::from_millis(u64::from(ms % 3000));
                w.nut.handle_timeout(w.now);
                w.peer.handle_timeout(w.now);
            }
        }
        w.flush();
        w.check();
    }
    // Nothing more arrives: every request ends, by an answer already in or by its timer.
    for _ in 0..1000 {
        let Some(t) = w.nut.poll_timeout() else {
            break;
        };
        w.now = w.now.max(t);
        w.nut.handle_timeout(w.now);
        w.wire.clear();
        w.flush();
        w.check();
    }
    assert!(
        w.outstanding.is_empty(),
        "requests never ended: {:?}",
        w.outstanding
    );
    assert_eq!(w.nut.request_count(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written run that completes a handshake both ways, so the target is known to
    /// get past it.
    #[test]
    fn the_world_completes_handshakes_and_requests() {
        let mut w = World::new();
        let c = w.peer_contact(0);
        let id = w.nut.send_request(w.now, c, Request::Ping).unwrap();
        w.outstanding.insert(id);
        w.flush();
        for _ in 0..10 {
            let Some((to_nut, bytes)) = w.wire.first().cloned() else {
                break;
            };
            w.wire.remove(0);
            if to_nut {
                let _ = w.nut.handle_datagram(w.now, PEER, &bytes);
            } else {
                let _ = w.peer.handle_datagram(w.now, NUT, &bytes);
            }
            w.flush();
            w.check();
        }
        assert!(w.outstanding.is_empty());
        assert_eq!(w.nut.session_count(), 1);
    }
}
