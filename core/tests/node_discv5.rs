//! Nodes running discv5, discv4 or both on one UDP socket, in memory under virtual time,
//! through the public `Node` API only: v5-only nodes find each other and connect over
//! RLPx; in a mixed network each datagram reaches the version that reads it and both feed
//! the dialer; lookups run over either version; TALKREQ goes from the application to the
//! application and back; a new local record reaches both versions; the node database
//! holds what both learnt.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::net::Net;
use devp2p_core::discv4::{DropReason, Event as V4Event};
use devp2p_core::discv5::discovery::{Event as V5Event, TalkError};
use devp2p_core::discv5::{DropReason as V5DropReason, RequestFailure, SendError};
use devp2p_core::node::{DiscoveryVersion, Discv5Error, LocalRecordError, NodeConfig, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{Enr, NodeId};

fn config(v4: bool, v5: bool) -> NodeConfig {
    let mut node = NodeConfig::default();
    node.session.protocols = vec![Protocol::new("test", 1, 4)];
    node.max_peers = 10;
    node.discv4 = v4;
    node.discv5 = v5;
    node
}

/// `n` nodes of the given (v4, v5) kinds, node 0 the bootnode of the others.
fn network(kinds: &[(bool, bool)], seed: u64) -> Net {
    let mut net = Net::new();
    for (i, &(v4, v5)) in kinds.iter().enumerate() {
        let mut c = config(v4, v5);
        if i > 0 {
            c.bootnodes = vec![net.enode(0)];
        }
        net.add(seed + i as u64, c);
    }
    net
}

fn v5_table(net: &Net, i: usize) -> BTreeSet<NodeId> {
    net.nodes[i]
        .discv5()
        .map(|d| d.table().entries().map(|e| e.node().id()).collect())
        .unwrap_or_default()
}

fn v4_table(net: &Net, i: usize) -> BTreeSet<NodeId> {
    net.nodes[i]
        .discovery()
        .map(|d| d.table().entries().map(|e| e.node().id()).collect())
        .unwrap_or_default()
}

#[test]
fn v5_only_nodes_find_each_other_and_connect_over_rlpx() {
    const N: usize = 8;
    let mut net = network(&[(false, true); N], 100);
    net.run_for(Duration::from_secs(120));
    let ids: Vec<NodeId> = net.nodes.iter().map(|n| n.local_id()).collect();
    let mut dialled = 0;
    for i in 0..N {
        let node = &net.nodes[i];
        assert!(!node.runs(DiscoveryVersion::V4) && node.runs(DiscoveryVersion::V5));
        let stats = node.stats();
        assert!(stats.packets_in.is_empty() && stats.packets_out.is_empty());
        assert!(stats.discv5_packets_in > 0 && stats.discv5_packets_out > 0);
        let table = v5_table(&net, i);
        assert!(
            table.len() >= 3,
            "node {i} knows {} nodes over v5",
            table.len()
        );
        assert!(table.iter().all(|id| ids.contains(id)));
        // The dialer took its candidates from discv5 (there is no other source here).
        let peers = node.peers();
        assert!(peers.len() >= 3, "node {i} has {} peers", peers.len());
        dialled += peers
            .iter()
            .filter(|p| p.direction == devp2p_core::node::Direction::Outbound)
            .count();
        assert!(net.events[i]
            .iter()
            .any(|e| matches!(e, NodeEvent::Discv5(e) if matches!(**e, V5Event::NodeAdded(_)))));
        assert!(!net.events[i]
            .iter()
            .any(|e| matches!(e, NodeEvent::Discovery(_))));
    }
    assert!(dialled >= N, "{dialled} dials succeeded");
}

#[test]
fn in_a_mixed_network_each_datagram_reaches_the_version_that_reads_it() {
    // Node 0, the bootnode, and 1..=3 run both; 4..=6 discv4 only; 7..=9 discv5 only.
    let mut kinds = vec![(true, true); 4];
    kinds.extend([(true, false); 3]);
    kinds.extend([(false, true); 3]);
    let mut net = network(&kinds, 200);
    net.run_for(Duration::from_secs(120));
    let ids: Vec<NodeId> = net.nodes.iter().map(|n| n.local_id()).collect();
    let v4_only: BTreeSet<NodeId> = ids[4..7].iter().copied().collect();
    let v5_only: BTreeSet<NodeId> = ids[7..10].iter().copied().collect();
    for i in 0..4 {
        let stats = net.nodes[i].stats();
        // No discv5 datagram went to v4 (it would fail the hash or be too short), and no
        // discv4 datagram to v5.
        for r in [DropReason::BadHash, DropReason::TooSmall] {
            assert_eq!(stats.packets_dropped.get(&r), None, "node {i}: {stats:?}");
        }
        assert_eq!(
            stats.discv5_packets_dropped.get(&V5DropReason::NotDiscv5),
            None,
            "node {i}: {stats:?}"
        );
        assert!(stats.discv5_packets_in > 0 && !stats.packets_in.is_empty());
        // Each version's table holds the nodes of that version only.
        let (t4, t5) = (v4_table(&net, i), v5_table(&net, i));
        assert!(t4.is_disjoint(&v5_only) && t5.is_disjoint(&v4_only));
        assert!(!t4.is_disjoint(&v4_only), "node {i} learnt v4-only nodes");
        assert!(!t5.is_disjoint(&v5_only), "node {i} learnt v5-only nodes");
    }
    // Everyone found peers, whatever it speaks; the nodes of one version only connect to
    // nodes speaking it (they never learnt the others).
    for i in 0..10 {
        let peers: BTreeSet<NodeId> = net.nodes[i].peers().iter().map(|p| p.id).collect();
        assert!(peers.len() >= 3, "node {i} has {} peers", peers.len());
    }
    for i in 4..7 {
        let dialled: Vec<NodeId> = net.nodes[i]
            .peers()
            .iter()
            .filter(|p| p.direction == devp2p_core::node::Direction::Outbound)
            .map(|p| p.id)
            .collect();
        assert!(dialled.iter().all(|p| !v5_only.contains(p)));
    }
    for i in 7..10 {
        let dialled: Vec<NodeId> = net.nodes[i]
            .peers()
            .iter()
            .filter(|p| p.direction == devp2p_core::node::Direction::Outbound)
            .map(|p| p.id)
            .collect();
        assert!(dialled.iter().all(|p| !v4_only.contains(p)));
    }
}

#[test]
fn lookups_run_over_either_version_and_report_through_their_own_events() {
    let mut net = network(&[(true, true); 8], 300);
    net.run_for(Duration::from_secs(60));
    let target = net.nodes[5].local_id();
    let key = *net.keys[5].public();
    let now = net.now;
    let v5 = net.nodes[1].lookup_v5(now, &target).expect("v5 runs");
    let v4 = net.nodes[1].lookup(now, &key).expect("v4 runs");
    net.drain(1);
    net.run_for(Duration::from_secs(10));
    let found_v5 = net.events[1].iter().find_map(|e| match e {
        NodeEvent::Discv5(e) => match &**e {
            V5Event::LookupFinished { id, nodes, .. } if *id == v5 => Some(nodes.clone()),
            _ => None,
        },
        _ => None,
    });
    let found_v4 = net.events[1].iter().find_map(|e| match e {
        NodeEvent::Discovery(e) => match &**e {
            V4Event::LookupFinished { id, nodes, .. } if *id == v4 => Some(nodes.clone()),
            _ => None,
        },
        _ => None,
    });
    let (found_v5, found_v4) = (
        found_v5.expect("v5 lookup ended"),
        found_v4.expect("v4 too"),
    );
    assert_eq!(found_v5.first().map(|n| n.id()), Some(target));
    assert_eq!(found_v4.first().map(|n| n.id()), Some(target));
    // Records came with the v5 result: the node as it signed itself.
    assert!(found_v5.iter().all(|n| n.record().is_some()));

    // A node without v5 runs no v5 lookup, and one without v4 no v4 lookup.
    let mut net = network(&[(true, false), (false, true)], 310);
    let now = net.now;
    assert_eq!(net.nodes[0].lookup_v5(now, &target), None);
    assert_eq!(net.nodes[0].lookup_random_v5(now), None);
    assert_eq!(net.nodes[1].lookup_random(now), None);
    assert!(net.nodes[1].lookup_random_v5(now).is_some());
}

fn talk_responses(
    net: &Net,
    i: usize,
) -> Vec<(
    devp2p_core::discv5::RequestId,
    Result<Vec<u8>, RequestFailure>,
)> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            NodeEvent::Discv5(e) => match &**e {
                V5Event::TalkResponse { id, result, .. } => Some((*id, result.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_talk_request_reaches_the_application_and_its_answer_comes_back() {
    let mut net = network(&[(true, true), (false, true)], 400);
    net.run_for(Duration::from_secs(5));
    net.nodes[0].register_talk_protocol(b"demo").unwrap();
    let to: Enr = net.nodes[0].local_enr().unwrap().clone();
    let now = net.now;
    let asked = net.nodes[1]
        .talk_request(now, &to, b"demo", b"ping?")
        .unwrap();
    let unknown = net.nodes[1].talk_request(now, &to, b"other", b"?").unwrap();
    net.drain(1);
    net.run_for(Duration::from_millis(200));
    let requests: Vec<_> = net.events[0]
        .iter()
        .filter_map(|e| match e {
            NodeEvent::Discv5(e) => match &**e {
                V5Event::TalkRequest {
                    id,
                    from,
                    protocol,
                    request,
                } => Some((*id, from.id, protocol.clone(), request.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        requests.len(),
        1,
        "only the registered protocol reaches the app"
    );
    let (tid, from, protocol, request) = requests[0].clone();
    assert_eq!(from, net.nodes[1].local_id());
    assert_eq!((&protocol[..], &request[..]), (&b"demo"[..], &b"ping?"[..]));
    let now = net.now;
    net.nodes[0].answer_talk(now, tid, b"pong!").unwrap();
    assert_eq!(
        net.nodes[0].answer_talk(now, tid, b"again"),
        Err(Discv5Error::Talk(TalkError::UnknownRequest))
    );
    net.drain(0);
    net.run_for(Duration::from_millis(200));
    let answers = talk_responses(&net, 1);
    assert!(
        answers.contains(&(asked, Ok(b"pong!".to_vec()))),
        "{answers:?}"
    );
    assert!(answers.contains(&(unknown, Ok(Vec::new()))), "{answers:?}");

    // Left unanswered, the asker's request fails with a timeout.
    let now = net.now;
    let silent = net.nodes[1].talk_request(now, &to, b"demo", b"?").unwrap();
    net.drain(1);
    net.run_for(Duration::from_secs(5));
    assert!(talk_responses(&net, 1).contains(&(silent, Err(RequestFailure::Timeout))));

    // What cannot be done is said at once.
    let v4_only = network(&[(true, false)], 410).nodes.remove(0);
    let mut v4_only = v4_only;
    assert_eq!(
        v4_only.register_talk_protocol(b"demo"),
        Err(Discv5Error::NotRunning)
    );
    assert_eq!(
        v4_only.talk_request(now, &to, b"demo", b"?"),
        Err(Discv5Error::NotRunning)
    );
    let no_udp = Enr::builder().sign(&net.keys[0]).unwrap();
    assert_eq!(
        net.nodes[1].talk_request(now, &no_udp, b"demo", b"?"),
        Err(Discv5Error::Send(SendError::NoEndpoint))
    );
    let own = net.nodes[1].local_enr().unwrap().clone();
    assert_eq!(
        net.nodes[1].talk_request(now, &own, b"demo", b"?"),
        Err(Discv5Error::Send(SendError::ToSelf))
    );
}

/// The `PingResponse` and `FindNodeResponse` events node `i` got, by request id.
fn v5_answers(net: &Net, i: usize) -> Vec<V5Event> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            NodeEvent::Discv5(e) => match &**e {
                V5Event::PingResponse { .. } | V5Event::FindNodeResponse { .. } => {
                    Some((**e).clone())
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_ping_and_a_findnode_to_one_node_come_back_as_events() {
    // Node 0 serves every node it holds, checked or not (`NodeConfig::discv5_config`
    // reaches its discv5): nodes 1 and 2 share a distance now and then, and the one checked
    // first would otherwise be served alone.
    let mut net = Net::new();
    let mut c = config(false, true);
    c.discv5_config.prefer_live = false;
    net.add(450, c);
    for i in 1..3 {
        let mut c = config(false, true);
        c.bootnodes = vec![net.enode(0)];
        net.add(450 + i, c);
    }
    net.run_for(Duration::from_secs(5));
    let to: Enr = net.nodes[0].local_enr().unwrap().clone();
    let now = net.now;
    let ping = net.nodes[1].ping_v5(now, &to).unwrap();
    let at = |net: &Net, j: usize| {
        u64::from(
            net.nodes[0]
                .local_id()
                .log_distance(&net.nodes[j].local_id()),
        )
    };
    let distances = [0, at(&net, 2)];
    let find = net.nodes[1].find_node_v5(now, &to, &distances).unwrap();
    net.drain(1);
    net.run_for(Duration::from_millis(200));
    let answers = v5_answers(&net, 1);
    let pong = answers.iter().find_map(|e| match e {
        V5Event::PingResponse { id, result, .. } if *id == ping => Some(result.clone()),
        _ => None,
    });
    let pong = pong.expect("the PING ended").expect("a PONG");
    assert_eq!(pong.enr_seq, to.seq(), "the PONG names node 0's seq");
    assert_eq!(
        pong.recipient(),
        Some(common::net::addr_of(1)),
        "and our address"
    );
    let nodes = answers.iter().find_map(|e| match e {
        V5Event::FindNodeResponse { id, result, .. } if *id == find => Some(result.clone()),
        _ => None,
    });
    let nodes = nodes.expect("the FINDNODE ended").expect("NODES");
    let got: BTreeSet<NodeId> = nodes.records.iter().map(Enr::node_id).collect();
    // Node 0's own record for distance 0, node 2 at its distance (and node 1 itself, if it
    // happens to sit at the same one).
    assert!(got.contains(&net.nodes[0].local_id()), "{got:?}");
    assert!(got.contains(&net.nodes[2].local_id()), "{got:?}");
    for r in &nodes.records {
        let d = u64::from(net.nodes[0].local_id().log_distance(&r.node_id()));
        assert!(distances.contains(&d), "a record at {d}, not asked for");
    }
    assert_eq!(nodes.messages, nodes.total);
    // A node without discv5 says so at once, and so does a request to ourselves.
    let mut v4_only = network(&[(true, false)], 460).nodes.remove(0);
    assert_eq!(v4_only.ping_v5(now, &to), Err(Discv5Error::NotRunning));
    assert_eq!(
        v4_only.find_node_v5(now, &to, &[0]),
        Err(Discv5Error::NotRunning)
    );
    let own = net.nodes[1].local_enr().unwrap().clone();
    assert_eq!(
        net.nodes[1].ping_v5(now, &own),
        Err(Discv5Error::Send(SendError::ToSelf))
    );
}

#[test]
fn a_new_local_record_reaches_both_versions_and_their_peers() {
    let mut net = network(&[(true, true), (true, true)], 500);
    net.run_for(Duration::from_secs(30));
    let key = net.keys[0].clone();
    let old = net.nodes[0].local_enr().unwrap().clone();
    let newer = old
        .to_builder()
        .seq(old.seq() + 1)
        .raw(b"test", b"\x83new")
        .unwrap()
        .sign(&key)
        .unwrap();
    // Not ours, or not newer: refused.
    let stranger = Enr::builder().seq(9).sign(&net.keys[1]).unwrap();
    assert_eq!(
        net.nodes[0].set_local_record(stranger),
        Err(LocalRecordError::NotOurs {
            signer: net.keys[1].id()
        })
    );
    assert_eq!(
        net.nodes[0].set_local_record(old.clone()),
        Err(LocalRecordError::NotNewer {
            seq: old.seq(),
            current: old.seq()
        })
    );
    assert_eq!(net.nodes[0].set_local_record(newer.clone()), Ok(()));
    let n0 = &net.nodes[0];
    assert_eq!(n0.local_enr(), Some(&newer));
    assert_eq!(n0.discovery().unwrap().local_record(), &newer);
    assert_eq!(n0.discv5().unwrap().local_record(), &newer);
    // Node 1's liveness checks see the new seq in the PONG and fetch the record.
    net.run_for(Duration::from_secs(120));
    let id0 = net.nodes[0].local_id();
    let entry = net.nodes[1]
        .discv5()
        .unwrap()
        .table()
        .get(&id0)
        .map(|e| e.node().seq());
    assert_eq!(entry, Some(newer.seq()));
}

#[test]
fn the_node_database_holds_what_both_versions_learnt_and_seeds_a_restart() {
    // Node 0 runs both; 1 and 2 only v4, 3 and 4 only v5. After long enough for several
    // liveness checks, node 0's database holds nodes of both kinds.
    let kinds = [
        (true, true),
        (true, false),
        (true, false),
        (false, true),
        (false, true),
    ];
    let mut net = network(&kinds, 600);
    net.run_for(Duration::from_secs(15 * 60));
    let ids: Vec<NodeId> = net.nodes.iter().map(|n| n.local_id()).collect();
    let snap = net.nodes[0].db_snapshot();
    let stored: BTreeSet<NodeId> = snap.nodes.iter().map(|n| n.id()).collect();
    assert!(
        stored.contains(&ids[1]) || stored.contains(&ids[2]),
        "a v4-only node stored: {stored:?}"
    );
    assert!(
        stored.contains(&ids[3]) || stored.contains(&ids[4]),
        "a v5-only node stored: {stored:?}"
    );
    // A v5-only node restarted (same key, a new address) from its own database, with no
    // bootnode, finds its old neighbours from the seeds: its lookups get answers and its
    // dialer connects.
    let snap3 = net.nodes[3].db_snapshot();
    assert!(!snap3.nodes.is_empty(), "node 3 stored nothing");
    net.crash(3);
    let mut c = config(false, true);
    c.node_db = snap3;
    let j = net.add(603, c);
    assert_eq!(net.nodes[j].local_id(), ids[3]);
    net.run_for(Duration::from_secs(60));
    let d = net.nodes[j].discv5().unwrap();
    assert!(d.is_bootstrapped());
    assert!(d.table().len() >= 2, "the restarted node learnt nobody new");
    assert!(net.nodes[j].peer_count() >= 1);
}
