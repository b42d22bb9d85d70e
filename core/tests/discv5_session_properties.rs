//! Properties of the discv5 session layer: handshakes complete whatever the order and
//! duplication of the first packets, and no input sequence takes sessions, challenges, the
//! rate limiter, the record cache or the request queues past their limits.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use devp2p_core::discv5::message::{Message, Ping, Pong, TalkResp};
use devp2p_core::discv5::packet::{encode_handshake, encode_random, Packet, MAX_PACKET_SIZE};
use devp2p_core::discv5::{Contact, Event, Request, RequestId, Response, Sessions, SessionsConfig};
use devp2p_core::{Enr, Instant, NodeSecretKey};
use quickcheck::{quickcheck, TestResult};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key(i: u8) -> NodeSecretKey {
    let mut b = [0x22u8; 32];
    b[31] = i;
    NodeSecretKey::from_bytes(&b).unwrap()
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, i], 30300 + u16::from(i)))
}

fn record(k: &NodeSecretKey, a: SocketAddr) -> Enr {
    Enr::builder().ip(a.ip()).udp4(a.port()).sign(k).unwrap()
}

/// A datagram in flight.
#[derive(Clone, Debug)]
struct Datagram {
    to: usize,
    from: SocketAddr,
    bytes: Vec<u8>,
}

/// Two machines whose datagrams are delivered in whatever order a test picks.
struct Pair {
    now: Instant,
    nodes: Vec<(Sessions<ChaCha20Rng>, SocketAddr, Enr)>,
    pool: VecDeque<Datagram>,
    events: Vec<Vec<Event>>,
}

impl Pair {
    fn new(seed: u64) -> Self {
        let now = Instant::from_millis(10_000);
        let nodes = (1..=2u8)
            .map(|i| {
                let (k, a) = (key(i), addr(i));
                let r = record(&k, a);
                let rng = ChaCha20Rng::seed_from_u64(seed.wrapping_mul(31) + u64::from(i));
                (
                    Sessions::new(k, r.clone(), SessionsConfig::default(), rng, now),
                    a,
                    r,
                )
            })
            .collect();
        Pair {
            now,
            nodes,
            pool: VecDeque::new(),
            events: vec![Vec::new(), Vec::new()],
        }
    }

    /// Node `i` forgets everything (same key and record).
    fn restart(&mut self, i: usize, seed: u64) {
        let (k, a) = (key(i as u8 + 1), addr(i as u8 + 1));
        let rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
        self.nodes[i].0 = Sessions::new(
            k,
            record(&key(i as u8 + 1), a),
            SessionsConfig::default(),
            rng,
            self.now,
        );
    }

    fn request(&mut self, from: usize, to: usize) -> RequestId {
        let c = Contact::from_record(self.nodes[to].2.clone()).unwrap();
        let id = self.nodes[from]
            .0
            .send_request(self.now, c, Request::Ping)
            .unwrap();
        self.flush(from);
        id
    }

    /// Node `i`'s datagrams into the pool; PINGs answered with PONGs.
    fn flush(&mut self, i: usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        loop {
            while let Some(t) = self.nodes[i].0.poll_transmit(&mut buf) {
                let to = self
                    .nodes
                    .iter()
                    .position(|n| n.1 == t.destination)
                    .unwrap();
                self.pool.push_back(Datagram {
                    to,
                    from: self.nodes[i].1,
                    bytes: buf[..t.len].to_vec(),
                });
            }
            let mut more = false;
            while let Some(e) = self.nodes[i].0.poll_event() {
                if let Event::Request {
                    from,
                    request: Message::Ping(p),
                } = &e
                {
                    let pong = Message::Pong(Pong {
                        request_id: p.request_id,
                        enr_seq: 1,
                        recipient_ip: Some(from.addr.ip()),
                        recipient_port: from.addr.port(),
                    });
                    let _ = self.nodes[i].0.send_response(self.now, from, pong);
                    more = true;
                }
                self.events[i].push(e);
            }
            if !more {
                return;
            }
        }
    }

    fn deliver(&mut self, d: Datagram) {
        let _ = self.nodes[d.to]
            .0
            .handle_datagram(self.now, d.from, &d.bytes);
        self.flush(d.to);
    }

    /// In order, 1 ms per datagram, timers when nothing is in flight, until quiet.
    fn drive(&mut self) {
        for _ in 0..10_000 {
            if let Some(d) = self.pool.pop_front() {
                self.now += Duration::from_millis(1);
                self.deliver(d);
                continue;
            }
            let next = self.nodes.iter().filter_map(|n| n.0.poll_timeout()).min();
            let Some(t) = next else { return };
            self.now = self.now.max(t);
            for i in 0..self.nodes.len() {
                self.nodes[i].0.handle_timeout(self.now);
                self.flush(i);
            }
        }
        panic!("no quiet after 10,000 steps");
    }

    fn answered(&self, i: usize, id: RequestId) -> bool {
        self.events[i].iter().any(
            |e| matches!(e, Event::Response { id: r, response: Response::Pong(_), .. } if *r == id),
        )
    }
}

/// Delivers the pool in the order `schedule` picks, copies included, without time passing.
fn scramble(p: &mut Pair, schedule: &[(u8, bool)]) {
    for &(pick, dup) in schedule {
        if p.pool.is_empty() {
            break;
        }
        let i = usize::from(pick) % p.pool.len();
        let d = if dup {
            p.pool[i].clone()
        } else {
            p.pool.remove(i).unwrap()
        };
        p.deliver(d);
    }
}

quickcheck! {
    /// Whatever order the first packets of one or both ends' requests arrive in, and
    /// whichever are duplicated, every request is answered once delivery becomes orderly.
    fn a_handshake_completes_for_any_order_and_duplication_of_the_first_packets(
        seed: u64, both: bool, queued: u8, stale: bool, schedule: Vec<(u8, bool)>
    ) -> TestResult {
        handshake_completes(seed, both, queued, stale, schedule)
    }
}

fn handshake_completes(
    seed: u64,
    both: bool,
    queued: u8,
    stale: bool,
    schedule: Vec<(u8, bool)>,
) -> TestResult {
    let mut p = Pair::new(seed);
    if stale {
        // Start from sessions one end has forgotten.
        let id = p.request(0, 1);
        p.drive();
        assert!(p.answered(0, id));
        p.restart(0, seed);
        p.events[0].clear();
    }
    let mut ids = vec![(0, p.request(0, 1))];
    for _ in 0..queued % 3 {
        ids.push((0, p.request(0, 1)));
    }
    if both {
        ids.push((1, p.request(1, 0)));
    }
    scramble(&mut p, &schedule);
    p.drive();
    for &(i, id) in &ids {
        if !p.answered(i, id) {
            return TestResult::error(format!(
                "request {id:?} of node {i} unanswered: {:#?}",
                p.events[i]
            ));
        }
    }
    for (m, _, _) in &p.nodes {
        if let Err(e) = m.check_invariants() {
            return TestResult::error(e);
        }
    }
    TestResult::passed()
}

// ----- limits under arbitrary inputs -----

fn pool_keys() -> &'static [NodeSecretKey] {
    static K: OnceLock<Vec<NodeSecretKey>> = OnceLock::new();
    K.get_or_init(|| (0..24u8).map(|i| key(100 + i)).collect())
}

fn small_config() -> SessionsConfig {
    let mut c = SessionsConfig::default();
    c.max_sessions = 4;
    c.max_pending_challenges = 3;
    c.max_rate_limited_ips = 3;
    c.max_known_records = 5;
    c.whoareyou_per_ip_per_second = 4;
    c.max_queued_requests_per_node = 2;
    c.max_requests = 6;
    c
}

/// The node under test, at 127.0.0.1:30303, fed by strangers.
struct Nut {
    m: Sessions<ChaCha20Rng>,
    now: Instant,
    /// Datagrams it sent, newest last, for the strangers to answer.
    out: Vec<(SocketAddr, Vec<u8>)>,
}

impl Nut {
    fn new() -> Self {
        let k = key(1);
        let a = addr(1);
        let now = Instant::from_millis(0);
        let m = Sessions::new(
            k.clone(),
            record(&k, a),
            small_config(),
            ChaCha20Rng::seed_from_u64(9),
            now,
        );
        Nut {
            m,
            now,
            out: Vec::new(),
        }
    }

    fn drain(&mut self) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        while let Some(t) = self.m.poll_transmit(&mut buf) {
            self.out.push((t.destination, buf[..t.len].to_vec()));
            if self.out.len() > 64 {
                self.out.remove(0);
            }
        }
        while self.m.poll_event().is_some() {}
    }

    /// The last datagram sent to `to`.
    fn last_to(&self, to: SocketAddr) -> Option<&[u8]> {
        self.out
            .iter()
            .rev()
            .find(|(a, _)| *a == to)
            .map(|(_, b)| &b[..])
    }
}

fn stranger_addr(ip: u8, port: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, ip % 6], 1000 + u16::from(port % 3)))
}

quickcheck! {
    /// Random packets, handshakes from many keys and addresses, garbage, requests and time
    /// jumps: every bounded structure stays within its limit and the indexes stay consistent.
    fn no_input_sequence_takes_the_machine_past_its_limits(
        ops: Vec<(u8, u8, u8, u16)>
    ) -> TestResult {
        limits_hold(ops)
    }
}

fn limits_hold(ops: Vec<(u8, u8, u8, u16)>) -> TestResult {
    let mut nut = Nut::new();
    let me = nut.m.local_id();
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(7),
        enr_seq: 1,
    });
    for (kind, a, b, c) in ops.into_iter().take(200) {
        let k = &pool_keys()[usize::from(a) % pool_keys().len()];
        let from = stranger_addr(b, a);
        match kind % 7 {
            // A random packet: draws a WHOAREYOU (or a repeat), or hits the rate limit.
            0 | 1 => {
                let mut out = Vec::new();
                encode_random(&mut out, &me, &k.id(), &[a; 16], &[b; 12], &[0; 20]).unwrap();
                let _ = nut.m.handle_datagram(nut.now, from, &out);
            }
            // A handshake answering the last WHOAREYOU sent there.
            2 => {
                if let Some(w) = nut.last_to(from).map(<[u8]>::to_vec) {
                    if let Ok(p) = Packet::decode(&k.id(), &w) {
                        let eph =
                            secp256k1::SecretKey::from_secret_bytes([(a % 100) | 1; 32]).unwrap();
                        let mut out = Vec::new();
                        let rec = (b % 2 == 0).then(|| record(k, from));
                        let _ = encode_handshake(
                            &mut out,
                            k,
                            nut.m.local_record().public_key(),
                            p.header(),
                            &eph,
                            rec.as_ref(),
                            &[1; 16],
                            &[2; 12],
                            &ping,
                        );
                        let _ = nut.m.handle_datagram(nut.now, from, &out);
                    }
                }
            }
            // Garbage, or one of our own datagrams with a byte changed, sent back.
            3 => {
                let mut d = nut
                    .out
                    .last()
                    .map(|o| o.1.clone())
                    .unwrap_or_else(|| vec![a; usize::from(c % 200)]);
                if !d.is_empty() {
                    let i = usize::from(c) % d.len();
                    d[i] ^= b | 1;
                }
                let _ = nut.m.handle_datagram(nut.now, from, &d);
            }
            // A request of ours.
            4 => {
                let contact = if b % 2 == 0 {
                    Contact::from_record_at(record(k, from), from)
                } else {
                    Contact::from_id(k.id(), from)
                };
                let _ = nut.m.send_request(
                    nut.now,
                    contact,
                    Request::TalkReq {
                        protocol: vec![a],
                        request: vec![b; usize::from(c % 64)],
                    },
                );
            }
            // The caller learns a record.
            5 => nut.m.learn_record(record(k, from)),
            // Time passes.
            _ => {
                nut.now += Duration::from_millis(u64::from(c % 2000));
                nut.m.handle_timeout(nut.now);
            }
        }
        if b % 4 != 0 {
            nut.drain();
        }
        if let Err(e) = nut.m.check_invariants() {
            return TestResult::error(e);
        }
        let c = nut.m.config();
        assert!(nut.m.session_count() <= c.max_sessions);
        assert!(nut.m.pending_challenges() <= c.max_pending_challenges);
        assert!(nut.m.rate_limited_ips() <= c.max_rate_limited_ips);
        assert!(nut.m.known_record_count() <= c.max_known_records);
        assert!(nut.m.request_count() <= c.max_requests);
    }
    TestResult::passed()
}

#[test]
fn talk_responses_echo_under_the_pair_harness() {
    // The harness itself: a TALKREQ answered by hand after a handshake.
    let mut p = Pair::new(1);
    let id = p.request(0, 1);
    p.drive();
    assert!(p.answered(0, id));
    let c = Contact::from_record(p.nodes[1].2.clone()).unwrap();
    let now = p.now;
    let t = p.nodes[0]
        .0
        .send_request(
            now,
            c,
            Request::TalkReq {
                protocol: b"p".to_vec(),
                request: b"q".to_vec(),
            },
        )
        .unwrap();
    p.flush(0);
    let d = p.pool.pop_front().unwrap();
    let _ = p.nodes[1].0.handle_datagram(now, d.from, &d.bytes);
    let Some(Event::Request {
        from,
        request: Message::TalkReq(r),
    }) = p.nodes[1].0.poll_event()
    else {
        panic!("no TALKREQ");
    };
    p.nodes[1]
        .0
        .send_response(
            now,
            &from,
            Message::TalkResp(TalkResp {
                request_id: r.request_id,
                response: b"a".to_vec(),
            }),
        )
        .unwrap();
    p.flush(1);
    p.drive();
    assert!(p.events[0].iter().any(|e| matches!(e,
        Event::Response { id, response: Response::TalkResp(b), .. } if *id == t && b == b"a")));
}
