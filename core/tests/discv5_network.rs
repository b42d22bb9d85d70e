//! discv5 discovery between in-memory nodes under virtual time: tables fill from one
//! bootnode, lookups find the true closest, NODES answers hold only the distances asked,
//! liveness checks carry enr-seq and fetch a newer record, TALKREQ reaches the application
//! (and an unknown protocol gets an empty TALKRESP), within their limits.

mod discv5_network_support;

use std::collections::BTreeMap;

use devp2p_core::discv4::Node;
use devp2p_core::discv5::discovery::{Config, Event, Refusal, TalkError};
use devp2p_core::discv5::message::Message;
use devp2p_core::discv5::{Contact, Event as SessionEvent, Request, RequestFailure, Response};
use devp2p_core::{Enr, NodeId, NodeSecretKey};
use discv5_network_support::{record, Net};
use quickcheck::TestResult;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

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

/// Seeds the small-network property runs by default (each a whole network simulation; the
/// environment's `QUICKCHECK_TESTS` overrides it).
const SMALL_NETWORK_CASES: u64 = 40;

/// A network's seed. Not shrunk: a smaller seed is another network, not a simpler one, and
/// every try is a whole simulation.
#[derive(Debug, Clone, Copy)]
struct Seed(u64);

impl quickcheck::Arbitrary for Seed {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        Seed(u64::arbitrary(g))
    }
}

/// A small network (6 to 15 nodes, started 30 ms apart, all knowing the first as their
/// bootnode) runs 20 s; then one node looks up a target. The lookup must end, return at most
/// 16 distinct members of the network nearest first (never the asker), and return every
/// node it could have learnt: those in the asker's table when it started, and those a node
/// it returns (and so asked) held as live at a distance it was asked for. (In networks under
/// 17 nodes nothing is pushed out of the 16.) Every machine's invariants hold.
///
/// It does not demand every node of the network: discv5 cannot promise that, here or in
/// geth. A node enters a table from a NODES answer, or from an inbound handshake once that
/// table's first refresh is done (geth `addInboundNode` before `initDone` is dropped). A node
/// whose handshakes all came before its peers had bootstrapped is then known to the
/// bootnode alone, at a log distance from it that lookups for other targets never ask for
/// (seeds 1856674092133719, 4, 18, ... show it).
fn small_network_lookup(Seed(seed): Seed) -> TestResult {
    let n = 6 + (seed % 10) as usize;
    let mut net = Net::new(n, seed, |_, _| {});
    net.start_all(30);
    net.run_for(20_000);
    let target = NodeId([seed as u8; 32]);
    let from = (seed % n as u64) as usize;
    let ids = net.ids();
    // What the asker knows, and what each node would serve of its live nodes, at the start.
    let mut expected: Vec<NodeId> = net
        .disc(from)
        .table()
        .entries()
        .map(|e| e.node().id())
        .collect();
    let live: Vec<Vec<NodeId>> = (0..n)
        .map(|q| {
            net.disc(q)
                .table()
                .entries()
                .filter(|e| e.is_live())
                .map(|e| e.node().id())
                .collect()
        })
        .collect();
    let (now, unix) = (net.at(), net.unix());
    let id = net.disc(from).start_lookup(now, unix, target);
    net.drain(from);
    net.run_for(10_000);
    let Some(result) = net.events[from].iter().find_map(|e| match e {
        Event::LookupFinished { id: got, nodes, .. } if *got == id => Some(nodes.clone()),
        _ => None,
    }) else {
        return TestResult::error("the lookup did not end within 10 s");
    };
    for i in 0..n {
        if let Err(e) = net.disc(i).check_invariants() {
            return TestResult::error(format!("node {i}: {e}"));
        }
    }
    let got: Vec<NodeId> = result.iter().map(Node::id).collect();
    if got.len() > 16 || got.contains(&ids[from]) || !got.iter().all(|g| ids.contains(g)) {
        return TestResult::error(format!("not a result of at most 16 others: {got:?}"));
    }
    if !got
        .windows(2)
        .all(|w| target.distance_cmp(&w[0], &w[1]).is_lt())
    {
        return TestResult::error("results not nearest first, or repeated");
    }
    for (q, held) in live.iter().enumerate() {
        if q == from || !got.contains(&ids[q]) {
            continue;
        }
        let asked = devp2p_core::discv5::discovery::lookup_distances(&target, &ids[q]);
        expected.extend(
            held.iter()
                .filter(|m| asked.contains(&u64::from(ids[q].log_distance(m)))),
        );
    }
    let missed: Vec<&NodeId> = expected
        .iter()
        .filter(|m| **m != ids[from] && !got.contains(m))
        .collect();
    if !missed.is_empty() {
        return TestResult::error(format!(
            "the lookup missed {missed:?}, which it could learn"
        ));
    }
    TestResult::passed()
}

#[test]
fn small_networks_keep_their_invariants_and_lookups_end() {
    let mut qc = quickcheck::QuickCheck::new();
    if std::env::var_os("QUICKCHECK_TESTS").is_none() {
        qc = qc.tests(SMALL_NETWORK_CASES);
    }
    qc.quickcheck(small_network_lookup as fn(Seed) -> TestResult);
}

#[test]
fn a_node_that_handshakes_before_the_first_refresh_is_done_stays_out_of_the_table() {
    // geth's guard (`addInboundNode` before `initDone`): while a node has not finished its
    // first refresh, whoever handshakes with it is answered but not added; afterwards the
    // first handshake adds it. Node 1's bootnode (member 0) never answers, so node 1's four
    // refresh lookups each wait for a FINDNODE to time out.
    let mut net = Net::empty();
    let silent = net.add_raw(61);
    let mut rng = ChaCha20Rng::seed_from_u64(62);
    let mut config = Config::default();
    config.bootnodes = vec![net.boot_node(silent)];
    let node = net.add_disc(NodeSecretKey::generate(&mut rng), config, 63);
    let early = net.add_raw(64);
    let late = net.add_raw(65);
    net.active = 4;
    let (early_id, late_id) = (net.keys[early].id(), net.keys[late].id());
    let contact =
        |net: &Net, i: usize| Contact::from_record(record(&net.keys[i], net.addrs[i], 1)).unwrap();
    let now = net.at();
    let c = contact(&net, node);
    net.raw(early).send_request(now, c, Request::Ping).unwrap();
    net.drain(early);
    net.run_for(500);
    assert!(net.raw_events[early].iter().any(|e| matches!(
        e,
        SessionEvent::Response {
            response: Response::Pong(_),
            ..
        }
    )));
    assert!(!net.disc(node).is_bootstrapped());
    assert!(!net.disc(node).table().contains(&early_id));
    net.run_for(30_000);
    assert!(net.disc(node).is_bootstrapped());
    let now = net.at();
    let c = contact(&net, node);
    net.raw(late).send_request(now, c, Request::Ping).unwrap();
    net.drain(late);
    net.run_for(500);
    let table = net.disc(node).table();
    assert!(table.contains(&late_id));
    assert!(!table.contains(&early_id));
}
