//! discv5 discovery between in-memory nodes under virtual time: tables fill from one
//! bootnode, lookups find the true closest, NODES answers hold only the distances asked,
//! liveness checks carry enr-seq and fetch a newer record, TALKREQ reaches the application
//! (and an unknown protocol gets an empty TALKRESP), within their limits.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use devp2p_core::discv4::{LookupId, Node, NodeDbSnapshot};
use devp2p_core::discv5::discovery::{Config, Discovery, Event, Refusal, TalkError};
use devp2p_core::discv5::message::Message;
use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
use devp2p_core::discv5::{
    Contact, Event as SessionEvent, Request, RequestFailure, Response, Sessions, SessionsConfig,
};
use devp2p_core::{Enr, Instant, NodeId, NodeSecretKey};
use quickcheck::{quickcheck, TestResult};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const UNIX_START: u64 = 1_700_000_000;
/// One-way delay of every datagram.
const LATENCY_MS: u64 = 20;

/// A datagram in flight: (delivery time, sequence number, recipient, sender, bytes).
type InFlight = (u64, u64, SocketAddr, SocketAddr, Vec<u8>);

/// One end of the network: a discovery node, or a bare session machine the test drives by
/// hand (to see exactly what a node sends and answers).
enum Member {
    Disc(Box<Discovery<ChaCha20Rng>>),
    Raw(Box<Sessions<ChaCha20Rng>>),
}

struct Net {
    members: Vec<Member>,
    keys: Vec<NodeSecretKey>,
    addrs: Vec<SocketAddr>,
    by_addr: BTreeMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    now: u64,
    events: Vec<Vec<Event>>,
    raw_events: Vec<Vec<SessionEvent>>,
    packets: u64,
    active: usize,
}

fn addr(i: usize) -> SocketAddr {
    // A /24 of its own for each node, so the subnet limits never bite.
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(11, (i / 250) as u8, (i % 250) as u8, 1)),
        30303,
    )
}

fn record(key: &NodeSecretKey, a: SocketAddr, seq: u64) -> Enr {
    Enr::builder()
        .seq(seq)
        .ip(a.ip())
        .udp4(a.port())
        .tcp4(a.port())
        .sign(key)
        .unwrap()
}

impl Net {
    fn empty() -> Self {
        Net {
            members: Vec::new(),
            keys: Vec::new(),
            addrs: Vec::new(),
            by_addr: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            events: Vec::new(),
            raw_events: Vec::new(),
            packets: 0,
            active: 0,
        }
    }

    /// `n` discovery nodes; every node but the first knows the first as its bootnode.
    fn new(n: usize, seed: u64, configure: impl Fn(usize, &mut Config)) -> Self {
        let mut net = Net::empty();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for i in 0..n {
            let key = NodeSecretKey::generate(&mut rng);
            let mut config = Config::default();
            if i > 0 {
                config.bootnodes = vec![net.boot_node(0)];
            }
            configure(i, &mut config);
            net.add_disc(key, config, seed ^ (i as u64 + 1));
        }
        net
    }

    fn boot_node(&self, i: usize) -> Node {
        let r = record(&self.keys[i], self.addrs[i], 1);
        Node::from_enr(r).unwrap()
    }

    fn add_disc(&mut self, key: NodeSecretKey, config: Config, seed: u64) -> usize {
        let i = self.members.len();
        let a = addr(i);
        let d = Discovery::new(
            key.clone(),
            record(&key, a, 1),
            config,
            NodeDbSnapshot::default(),
            ChaCha20Rng::seed_from_u64(seed),
            Instant::from_millis(self.now),
            self.unix(),
        );
        self.push_member(key, a, Member::Disc(Box::new(d)))
    }

    fn add_raw(&mut self, seed: u64) -> usize {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = NodeSecretKey::generate(&mut rng);
        let i = self.members.len();
        let a = addr(i);
        let s = Sessions::new(
            key.clone(),
            record(&key, a, 1),
            SessionsConfig::default(),
            rng,
            Instant::from_millis(self.now),
        );
        self.push_member(key, a, Member::Raw(Box::new(s)))
    }

    fn push_member(&mut self, key: NodeSecretKey, a: SocketAddr, m: Member) -> usize {
        let i = self.members.len();
        self.members.push(m);
        self.keys.push(key);
        self.addrs.push(a);
        self.by_addr.insert(a, i);
        self.events.push(Vec::new());
        self.raw_events.push(Vec::new());
        i
    }

    fn disc(&mut self, i: usize) -> &mut Discovery<ChaCha20Rng> {
        match &mut self.members[i] {
            Member::Disc(d) => d,
            Member::Raw(_) => panic!("member {i} is a bare session machine"),
        }
    }

    fn raw(&mut self, i: usize) -> &mut Sessions<ChaCha20Rng> {
        match &mut self.members[i] {
            Member::Raw(s) => s,
            Member::Disc(_) => panic!("member {i} is a discovery node"),
        }
    }

    fn unix(&self) -> u64 {
        UNIX_START + self.now / 1000
    }

    fn at(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn drain(&mut self, i: usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        loop {
            let t = match &mut self.members[i] {
                Member::Disc(d) => d.poll_transmit(&mut buf),
                Member::Raw(s) => s.poll_transmit(&mut buf),
            };
            let Some(t) = t else { break };
            self.seq += 1;
            self.packets += 1;
            self.queue.push(Reverse((
                self.now + LATENCY_MS,
                self.seq,
                t.destination,
                self.addrs[i],
                buf[..t.len].to_vec(),
            )));
        }
        match &mut self.members[i] {
            Member::Disc(d) => {
                while let Some(e) = d.poll_event() {
                    self.events[i].push(e);
                }
            }
            Member::Raw(s) => {
                while let Some(e) = s.poll_event() {
                    self.raw_events[i].push(e);
                }
            }
        }
    }

    fn deadline(&self, i: usize) -> Option<u64> {
        match &self.members[i] {
            Member::Disc(d) => d.poll_timeout(),
            Member::Raw(s) => s.poll_timeout(),
        }
        .map(Instant::as_millis)
    }

    /// Runs until virtual time `end_ms`; only members below `self.active` run.
    fn run_until(&mut self, end_ms: u64) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse(m)| m.0);
            let next_timer = (0..self.active).filter_map(|i| self.deadline(i)).min();
            let Some(t) = next_msg.into_iter().chain(next_timer).min() else {
                break;
            };
            if t > end_ms {
                break;
            }
            self.now = self.now.max(t);
            let (now, unix) = (self.at(), self.unix());
            while self.queue.peek().is_some_and(|Reverse(m)| m.0 <= self.now) {
                let Reverse((_, _, to, from, bytes)) = self.queue.pop().unwrap();
                let Some(&j) = self.by_addr.get(&to) else {
                    continue;
                };
                if j >= self.active {
                    continue;
                }
                match &mut self.members[j] {
                    Member::Disc(d) => {
                        let _ = d.handle_datagram(now, unix, from, &bytes);
                    }
                    Member::Raw(s) => {
                        let _ = s.handle_datagram(now, from, &bytes);
                    }
                }
                self.drain(j);
            }
            for i in 0..self.active {
                if self.deadline(i).is_some_and(|d| d <= self.now) {
                    match &mut self.members[i] {
                        Member::Disc(d) => d.handle_timeout(now, unix),
                        Member::Raw(s) => s.handle_timeout(now),
                    }
                    self.drain(i);
                }
            }
        }
        self.now = self.now.max(end_ms);
    }

    fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    /// Starts the members one every `gap_ms`.
    fn start_all(&mut self, gap_ms: u64) {
        for i in self.active..self.members.len() {
            self.active = i + 1;
            self.run_for(gap_ms);
        }
    }

    fn ids(&self) -> Vec<NodeId> {
        self.keys.iter().map(NodeSecretKey::id).collect()
    }

    fn true_closest(&self, target: &NodeId, exclude: usize, n: usize) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .ids()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != exclude && matches!(self.members[*i], Member::Disc(_)))
            .map(|(_, id)| id)
            .collect();
        ids.sort_by(|a, b| target.distance_cmp(a, b));
        ids.truncate(n);
        ids
    }

    fn lookup(&mut self, from: usize, target: NodeId, wait_ms: u64) -> Vec<Node> {
        let (now, unix) = (self.at(), self.unix());
        let id: LookupId = self.disc(from).start_lookup(now, unix, target);
        self.drain(from);
        self.run_for(wait_ms);
        self.events[from]
            .iter()
            .find_map(|e| match e {
                Event::LookupFinished { id: got, nodes, .. } if *got == id => Some(nodes.clone()),
                _ => None,
            })
            .expect("the lookup finishes in time")
    }

    /// Sends `request` from the bare machine `raw` to member `to` and runs until it ends.
    fn ask(&mut self, raw: usize, to: usize, request: Request) -> Result<Response, RequestFailure> {
        let contact = Contact::from_record(record(&self.keys[to], self.addrs[to], 1)).unwrap();
        let now = self.at();
        let id = self.raw(raw).send_request(now, contact, request).unwrap();
        self.drain(raw);
        self.run_for(5_000);
        self.raw_events[raw]
            .iter()
            .find_map(|e| match e {
                SessionEvent::Response {
                    id: got, response, ..
                } if *got == id => Some(Ok(response.clone())),
                SessionEvent::RequestFailed {
                    id: got, reason, ..
                } if *got == id => Some(Err(*reason)),
                _ => None,
            })
            .expect("every request ends")
    }
}

#[test]
fn a_hundred_nodes_fill_their_tables_and_lookups_find_the_true_closest() {
    const N: usize = 100;
    let mut net = Net::new(N, 5, |_, _| {});
    net.start_all(50);
    net.run_for(3 * 60 * 1000);
    let sizes: Vec<usize> = (0..N).map(|i| net.disc(i).table().len()).collect();
    let bootstrapped = (0..N).filter(|&i| net.disc(i).is_bootstrapped()).count();
    for i in 0..N {
        net.disc(i).check_invariants().unwrap();
    }
    let min = *sizes.iter().min().unwrap();
    eprintln!(
        "tables: min {min}, mean {:.1}, max {}; packets {}",
        sizes.iter().sum::<usize>() as f64 / N as f64,
        sizes.iter().max().unwrap(),
        net.packets
    );
    assert_eq!(bootstrapped, N);
    assert!(min >= 16, "every table holds a bucket's worth: {sizes:?}");

    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (mut found, mut wanted) = (0, 0);
    for _ in 0..30 {
        let from = (rng.next_u64() % N as u64) as usize;
        let mut t = [0u8; 32];
        rng.fill_bytes(&mut t);
        let target = NodeId(t);
        let result = net.lookup(from, target, 10_000);
        let truth = net.true_closest(&target, from, 16);
        let got: Vec<NodeId> = result.iter().map(Node::id).collect();
        assert!(
            got.windows(2)
                .all(|w| target.distance_cmp(&w[0], &w[1]).is_lt()),
            "results nearest first"
        );
        found += truth.iter().filter(|t| got.contains(t)).count();
        wanted += truth.len();
    }
    let recall = found as f64 / wanted as f64;
    eprintln!("lookup recall {found}/{wanted} = {recall:.3}");
    assert!(recall >= 0.95, "recall {recall}");
}

/// A small network, bootstrapped, with a bare session machine as member `N` that knows
/// nobody.
fn small_net_with_asker(n: usize, seed: u64) -> (Net, usize) {
    let mut net = Net::new(n, seed, |_, _| {});
    let asker = net.add_raw(seed + 1000);
    net.start_all(50);
    net.run_for(2 * 60 * 1000);
    (net, asker)
}

#[test]
fn nodes_answers_hold_only_the_distances_asked_and_only_live_nodes() {
    let (mut net, asker) = small_net_with_asker(40, 11);
    let local = net.keys[0].id();
    let ids = net.ids();
    // Every distance the table of node 0 holds, one at a time, and three at once.
    let mut by_distance: BTreeMap<u32, usize> = BTreeMap::new();
    for e in net.disc(0).table().entries() {
        *by_distance
            .entry(local.log_distance(&e.node().id()))
            .or_default() += 1;
    }
    let distances: Vec<u64> = by_distance.keys().map(|&d| u64::from(d)).collect();
    assert!(distances.len() >= 3, "{by_distance:?}");
    let mut served = 0;
    for d in &distances {
        let Ok(Response::Nodes(n)) = net.ask(
            asker,
            0,
            Request::FindNode {
                distances: vec![*d],
            },
        ) else {
            panic!("no NODES for distance {d}");
        };
        let live = net
            .disc(0)
            .table()
            .entries()
            .filter(|e| e.is_live() && u64::from(local.log_distance(&e.node().id())) == *d)
            .count();
        assert_eq!(n.rejected, 0, "every record at the distance asked");
        assert!(n.records.len() <= 16);
        assert_eq!(
            n.records.len(),
            live.min(16),
            "the live nodes at distance {d}"
        );
        for r in &n.records {
            assert_eq!(u64::from(local.log_distance(&r.node_id())), *d);
            assert!(ids.contains(&r.node_id()));
        }
        served += n.records.len();
    }
    assert!(served > 0);
    // Distance 0 is the node's own record; repeats and distances over 256 are skipped.
    let Ok(Response::Nodes(n)) = net.ask(
        asker,
        0,
        Request::FindNode {
            distances: vec![0, 0, 300],
        },
    ) else {
        panic!("no NODES");
    };
    assert_eq!(n.records.len(), 1);
    assert_eq!(n.records[0].node_id(), local);
    // Three distances at once: the union, at most 16.
    let three: Vec<u64> = distances.iter().rev().take(3).copied().collect();
    let Ok(Response::Nodes(n)) = net.ask(
        asker,
        0,
        Request::FindNode {
            distances: three.clone(),
        },
    ) else {
        panic!("no NODES");
    };
    assert!(!n.records.is_empty() && n.records.len() <= 16);
    assert!(n
        .records
        .iter()
        .all(|r| three.contains(&u64::from(local.log_distance(&r.node_id())))));
}

#[test]
fn liveness_pings_carry_the_enr_seq_and_a_higher_one_in_the_pong_fetches_the_record() {
    // Node 1 knows node 0 (its bootnode) and checks it from time to time.
    let mut net = Net::new(2, 21, |_, _| {});
    net.start_all(10);
    net.run_for(60 * 1000);
    let id0 = net.keys[0].id();
    assert_eq!(net.disc(1).table().get(&id0).unwrap().node().seq(), 1);
    // Node 0 gets a new record (seq 2, a new TCP port); node 1's next check sees seq 2 in the
    // PONG, asks for the record with FINDNODE [0] and puts it in its table.
    let newer = Enr::builder()
        .seq(2)
        .ip(net.addrs[0].ip())
        .udp4(30303)
        .tcp4(30304)
        .sign(&net.keys[0])
        .unwrap();
    assert!(net.disc(0).set_local_record(newer.clone()));
    net.run_for(60 * 1000);
    let entry = net.disc(1).table().get(&id0).unwrap().clone();
    assert_eq!(entry.node().record(), Some(&newer));
    assert_eq!(entry.node().tcp_port(), 30304);
    assert!(entry.is_live() && entry.liveness_checks() > 1);

    // What the PINGs carry: a bare machine in node 1's table gets them with node 1's seq.
    let mut net = Net::new(1, 22, |_, _| {});
    let watcher = net.add_raw(23);
    net.start_all(10);
    let r = record(&net.keys[watcher], net.addrs[watcher], 1);
    // The watcher contacts node 0, which adds it (inbound, after its first refresh).
    net.run_for(10_000);
    let res = net.ask(watcher, 0, Request::Ping);
    assert!(matches!(res, Ok(Response::Pong(p)) if p.enr_seq == 1));
    assert!(net.events[0]
        .iter()
        .any(|e| matches!(e, Event::NodeAdded(n) if n.id() == r.node_id())));
    net.run_for(30_000);
    let pings: Vec<u64> = net.raw_events[watcher]
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Request {
                request: Message::Ping(p),
                ..
            } => Some(p.enr_seq),
            _ => None,
        })
        .collect();
    // The watcher does not answer (the test does not), so node 0 drops it after its first
    // failed check.
    assert!(!pings.is_empty(), "node 0 checked the watcher");
    assert!(pings.iter().all(|&s| s == 1));
    assert!(!net.disc(0).table().contains(&r.node_id()));
}

#[test]
fn a_registered_talk_protocol_is_answered_by_the_application_and_an_unknown_one_gets_an_empty_talkresp(
) {
    let mut net = Net::new(2, 31, |_, _| {});
    net.start_all(10);
    net.run_for(5_000);
    assert!(net.disc(0).register_talk_protocol(b"demo"));
    let to = record(&net.keys[0], net.addrs[0], 1);
    let now = net.at();
    let known = net
        .disc(1)
        .talk_request(now, &to, b"demo", b"ping?")
        .unwrap();
    let unknown = net.disc(1).talk_request(now, &to, b"nope", b"x").unwrap();
    net.drain(1);
    net.run_for(100);
    let asked: Vec<_> = net.events[0]
        .iter()
        .filter_map(|e| match e {
            Event::TalkRequest {
                id,
                protocol,
                request,
                from,
            } => Some((*id, protocol.clone(), request.clone(), *from)),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "only the registered protocol reaches the app"
    );
    let (tid, protocol, request, from) = asked[0].clone();
    assert_eq!(
        (protocol.as_slice(), request.as_slice()),
        (&b"demo"[..], &b"ping?"[..])
    );
    assert_eq!(from.id, net.keys[1].id());
    let now = net.at();
    net.disc(0).answer_talk(now, tid, b"pong!").unwrap();
    assert_eq!(
        net.disc(0).answer_talk(now, tid, b"again"),
        Err(TalkError::UnknownRequest)
    );
    net.drain(0);
    net.run_for(1_000);
    let results: BTreeMap<_, _> = net.events[1]
        .iter()
        .filter_map(|e| match e {
            Event::TalkResponse { id, result, .. } => Some((*id, result.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(results[&known], Ok(b"pong!".to_vec()));
    assert_eq!(results[&unknown], Ok(Vec::new()));
    assert_eq!(net.disc(0).refusal_count(Refusal::TalkUnknownProtocol), 1);

    // Unanswered, a request is forgotten after its timeout; the asker's request times out.
    let now = net.at();
    let silent = net.disc(1).talk_request(now, &to, b"demo", b"?").unwrap();
    net.drain(1);
    net.run_for(5_000);
    assert_eq!(net.disc(0).pending_talk_requests(), (0, 0));
    assert_eq!(net.disc(0).refusal_count(Refusal::TalkExpired), 1);
    assert!(net.events[1].iter().any(|e| matches!(e,
        Event::TalkResponse { id, result: Err(RequestFailure::Timeout), .. } if *id == silent)));

    // Unregistered, the protocol gets empty answers again.
    net.disc(0).unregister_talk_protocol(b"demo");
    let now = net.at();
    let after = net.disc(1).talk_request(now, &to, b"demo", b"?").unwrap();
    net.drain(1);
    net.run_for(1_000);
    assert!(net.events[1].iter().any(|e| matches!(e,
        Event::TalkResponse { id, result: Ok(r), .. } if *id == after && r.is_empty())));
}

fn talk_results(
    net: &Net,
    i: usize,
) -> BTreeMap<devp2p_core::discv5::RequestId, Result<Vec<u8>, RequestFailure>> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            Event::TalkResponse { id, result, .. } => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn talk_requests_are_bounded_per_peer() {
    // One TALKREQ per second per peer, the application answering each at once. The asker
    // sends one request at a time: the second arrives within the second and is dropped (its
    // resend 700 ms later too, and it fails); the third goes out after that and is answered.
    let mut net = Net::new(2, 41, |i, c| {
        if i == 0 {
            c.talk_requests_per_peer_per_second = 1;
        }
    });
    net.start_all(10);
    net.run_for(5_000);
    net.disc(0).register_talk_protocol(b"demo");
    let to = record(&net.keys[0], net.addrs[0], 1);
    let now = net.at();
    let ids: Vec<_> = (0..3)
        .map(|_| net.disc(1).talk_request(now, &to, b"demo", b"x").unwrap())
        .collect();
    net.drain(1);
    for _ in 0..400 {
        net.run_for(10);
        let asked: Vec<_> = std::mem::take(&mut net.events[0])
            .into_iter()
            .filter_map(|e| match e {
                Event::TalkRequest { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        for id in asked {
            let now = net.at();
            net.disc(0).answer_talk(now, id, b"ok").unwrap();
            net.drain(0);
        }
    }
    let results = talk_results(&net, 1);
    assert_eq!(results[&ids[0]], Ok(b"ok".to_vec()));
    assert_eq!(results[&ids[1]], Err(RequestFailure::Timeout));
    assert_eq!(results[&ids[2]], Ok(b"ok".to_vec()));
    assert_eq!(net.disc(0).refusal_count(Refusal::TalkRateLimited), 2);
}

#[test]
fn talk_requests_waiting_for_the_application_are_bounded_in_all() {
    // At most 2 unanswered at once: of 4 askers' requests, 2 reach the application.
    let mut net = Net::new(5, 42, |i, c| {
        if i == 0 {
            c.max_pending_talk_requests = 2;
        }
    });
    net.start_all(10);
    net.run_for(5_000);
    net.disc(0).register_talk_protocol(b"demo");
    let to = record(&net.keys[0], net.addrs[0], 1);
    for i in 1..5 {
        let now = net.at();
        net.disc(i).talk_request(now, &to, b"demo", b"x").unwrap();
        net.drain(i);
    }
    net.run_for(200);
    let handed = net.events[0]
        .iter()
        .filter(|e| matches!(e, Event::TalkRequest { .. }))
        .count();
    assert_eq!(handed, 2);
    assert_eq!(net.disc(0).pending_talk_requests().0, 2);
    assert_eq!(net.disc(0).refusal_count(Refusal::TalkQueueFull), 2);
    net.disc(0).check_invariants().unwrap();
}

#[test]
fn a_record_advertising_an_address_the_responder_may_not_relay_stays_out() {
    // Node 0 is a bare machine answering every FINDNODE with a loopback record (it sits on a
    // public address, so it may not relay 127.0.0.1) and one with a low UDP port.
    let mut net = Net::empty();
    let answerer = net.add_raw(51);
    let mut rng = ChaCha20Rng::seed_from_u64(52);
    let key = NodeSecretKey::generate(&mut rng);
    let mut config = Config::default();
    config.bootnodes =
        vec![Node::from_enr(record(&net.keys[answerer], net.addrs[answerer], 1)).unwrap()];
    let asker = net.add_disc(key, config, 53);
    net.active = 2;
    let k1 = NodeSecretKey::generate(&mut rng);
    let k2 = NodeSecretKey::generate(&mut rng);
    let bad = [
        record(&k1, "127.0.0.1:30303".parse().unwrap(), 1),
        record(&k2, "12.0.0.1:999".parse().unwrap(), 1),
    ];
    let mut answered = 0;
    for _ in 0..200 {
        net.run_for(100);
        let events = std::mem::take(&mut net.raw_events[answerer]);
        for e in events {
            if let SessionEvent::Request { from, request } = e {
                let now = net.at();
                match request {
                    Message::FindNode(f) => {
                        let recs: Vec<Enr> = bad
                            .iter()
                            .filter(|r| {
                                f.distances
                                    .contains(&u64::from(from.id.log_distance(&r.node_id())))
                            })
                            .cloned()
                            .collect();
                        answered += 1;
                        let _ = net
                            .raw(answerer)
                            .send_nodes(now, &from, f.request_id, &recs);
                    }
                    Message::Ping(p) => {
                        let pong = devp2p_core::discv5::message::Pong {
                            request_id: p.request_id,
                            enr_seq: 1,
                            recipient_ip: Some(from.addr.ip()),
                            recipient_port: from.addr.port(),
                        };
                        let _ = net
                            .raw(answerer)
                            .send_response(now, &from, Message::Pong(pong));
                    }
                    _ => {}
                }
                net.drain(answerer);
            }
        }
    }
    assert!(answered > 0);
    let answerer_id = net.keys[answerer].id();
    let d = net.disc(asker);
    assert!(d.table().contains(&answerer_id));
    assert!(!d.table().contains(&k1.id()) && !d.table().contains(&k2.id()));
    d.check_invariants().unwrap();
}

quickcheck! {
    /// Whatever the seed, a small network's tables hold no node twice, keep the subnet
    /// limits, hold only nodes with records, and lookups end.
    fn small_networks_keep_their_invariants_and_lookups_end(seed: u64) -> TestResult {
        let n = 6 + (seed % 10) as usize;
        let mut net = Net::new(n, seed, |_, _| {});
        net.start_all(30);
        net.run_for(20_000);
        let target = NodeId([seed as u8; 32]);
        let from = (seed % n as u64) as usize;
        let result = net.lookup(from, target, 10_000);
        for i in 0..n {
            if let Err(e) = net.disc(i).check_invariants() {
                return TestResult::error(e);
            }
        }
        let truth = net.true_closest(&target, from, 16);
        let got: Vec<NodeId> = result.iter().map(Node::id).collect();
        TestResult::from_bool(truth.iter().all(|t| got.contains(t)))
    }
}
