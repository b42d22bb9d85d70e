//! Whole networks of `Node`s in memory, under virtual time, driven only through the public
//! API: dial targets, admission limits, trusted and static peers, NetRestrict.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::net::{addr_of, Net};
use devp2p_core::dial::SkipReason;
use devp2p_core::node::{Direction, HandshakeOutcome, NodeConfig, NodeEvent, RefuseReason};
use devp2p_core::session::{DisconnectReason, Protocol, SessionConfig, Side};

fn config(max_peers: usize) -> NodeConfig {
    NodeConfig {
        session: SessionConfig {
            protocols: vec![Protocol::new("test", 1, 4)],
            ..SessionConfig::default()
        },
        max_peers,
        ..NodeConfig::default()
    }
}

fn lonely(max_peers: usize) -> NodeConfig {
    NodeConfig {
        no_discovery: true,
        ..config(max_peers)
    }
}

fn added(net: &Net, i: usize) -> usize {
    net.events[i]
        .iter()
        .filter(|e| matches!(e, NodeEvent::PeerAdded(_)))
        .count()
}

#[test]
fn fifty_nodes_with_max_peers_10_reach_their_dial_targets_without_self_or_duplicate_sessions() {
    let mut net = Net::new();
    net.add(1000, config(10));
    let boot = net.enode(0);
    for i in 1..50 {
        net.add(
            1000 + i,
            NodeConfig {
                bootnodes: vec![boot.clone()],
                ..config(10)
            },
        );
    }
    net.run_for(Duration::from_secs(300));
    for i in 0..50 {
        let node = &net.nodes[i];
        let peers = node.peers();
        let outbound = peers
            .iter()
            .filter(|p| p.direction == Direction::Outbound)
            .count();
        // MaxPeers 10 with DialRatio 3: 3 peers are dialled by each node.
        assert!(
            outbound >= 3,
            "node {i} dialled only {outbound} peers: {:?}",
            node.stats()
        );
        assert!(peers.len() <= 10, "node {i} has {} peers", peers.len());
        assert!(
            peers.iter().all(|p| p.id != node.local_id()),
            "node {i} is its own peer"
        );
        let stats = node.stats();
        assert_eq!(
            stats.handshakes.get(&HandshakeOutcome::Refused(
                DisconnectReason::ConnectedToSelf
            )),
            None
        );
        // Each peering is one connection, seen from both ends with opposite directions.
        for p in &peers {
            let j = (0..50)
                .find(|&j| net.nodes[j].local_id() == p.id)
                .expect("peer is in the network");
            let back = net.nodes[j]
                .peers()
                .into_iter()
                .find(|q| q.id == node.local_id());
            let back =
                back.unwrap_or_else(|| panic!("{i} has {j} as a peer but not the other way round"));
            assert_ne!(
                back.direction, p.direction,
                "{i}<->{j} disagree on who dialled"
            );
        }
    }
}

#[test]
fn peers_exchange_messages_through_the_node_api() {
    let mut net = Net::new();
    net.add(1, lonely(5));
    net.add(
        2,
        NodeConfig {
            static_nodes: vec![net.enode(0)],
            ..lonely(5)
        },
    );
    net.run_for(Duration::from_secs(2));
    let b = net.nodes[1].local_id();
    let a = net.nodes[0].local_id();
    let now = net.now;
    net.nodes[0]
        .send(now, &b, 0, 3, b"hello over devp2p")
        .unwrap();
    net.drain(0);
    net.run_for(Duration::from_secs(1));
    assert!(net.events[1].iter().any(|e| matches!(
        e,
        NodeEvent::Message { peer, protocol: 0, code: 3, payload } if *peer == a && payload == b"hello over devp2p"
    )));
    let info = &net.nodes[1].peers()[0];
    assert_eq!(
        (info.direction, info.is_static),
        (Direction::Outbound, true)
    );
    assert!(info.bytes_in > 0 && info.bytes_out > 0);
}

#[test]
fn a_full_node_refuses_with_too_many_peers_but_admits_a_trusted_one() {
    // MaxPeers 3: one dialled slot, two inbound (geth's maxInbound = MaxPeers - maxDialed).
    let mut net = Net::new();
    net.add(10, lonely(3));
    let hub = net.enode(0);
    net.add(
        11,
        NodeConfig {
            static_nodes: vec![hub.clone()],
            ..lonely(5)
        },
    );
    net.add(
        14,
        NodeConfig {
            static_nodes: vec![hub.clone()],
            ..lonely(5)
        },
    );
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[0].peer_count(), 2);

    // A further inbound node is refused: the hub's inbound slots are full.
    net.add(
        12,
        NodeConfig {
            static_nodes: vec![hub.clone()],
            ..lonely(5)
        },
    );
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[0].peer_count(), 2);
    assert_eq!(
        net.nodes[0]
            .stats()
            .handshakes
            .get(&HandshakeOutcome::Refused(DisconnectReason::TooManyPeers)),
        Some(&1)
    );
    assert!(net.nodes[3]
        .stats()
        .disconnects
        .contains_key(&(Side::Remote, Some(DisconnectReason::TooManyPeers))));

    // A trusted node gets in at the cap.
    net.add(
        13,
        NodeConfig {
            static_nodes: vec![hub],
            ..lonely(5)
        },
    );
    let trusted = net.nodes[4].local_id();
    net.nodes[0].add_trusted(trusted);
    net.run_for(Duration::from_secs(2));
    let peers: BTreeSet<_> = net.nodes[0]
        .peers()
        .into_iter()
        .map(|p| (p.id, p.trusted))
        .collect();
    assert_eq!(peers.len(), 3);
    assert!(peers.contains(&(trusted, true)));
}

#[test]
fn a_static_peer_is_redialled_after_its_connection_drops() {
    let mut net = Net::new();
    net.add(20, lonely(5));
    net.add(
        21,
        NodeConfig {
            static_nodes: vec![net.enode(0)],
            ..lonely(5)
        },
    );
    net.run_for(Duration::from_secs(2));
    assert_eq!(added(&net, 1), 1);
    // The remote drops us.
    let b = net.nodes[1].local_id();
    let now = net.now;
    net.nodes[0].disconnect(now, &b, DisconnectReason::Requested);
    net.drain(0);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[1].peer_count(), 0);
    assert!(net.events[1].iter().any(|e| matches!(
        e,
        NodeEvent::PeerRemoved {
            initiator: Side::Remote,
            reason: Some(DisconnectReason::Requested),
            ..
        }
    )));
    // Redialled once the 35 s dial history expires.
    net.run_for(Duration::from_secs(40));
    assert_eq!(net.nodes[1].peer_count(), 1);
    assert_eq!(added(&net, 1), 2);
}

#[test]
fn net_restrict_holds_for_dials_and_for_inbound_connections() {
    let mut net = Net::new();
    net.add(30, lonely(5));
    net.add(31, lonely(5));
    // Node 2 may only talk to 127.0.0.2 (node 1).
    let restrict = format!("{}/32", addr_of(1).ip()).parse().unwrap();
    let c = NodeConfig {
        static_nodes: vec![net.enode(0), net.enode(1)],
        net_restrict: Some(restrict),
        ..lonely(5)
    };
    net.add(32, c);
    // Node 3 tries to dial node 2 from 127.0.0.4.
    net.add(
        33,
        NodeConfig {
            static_nodes: vec![net.enode(2)],
            ..lonely(5)
        },
    );
    net.run_for(Duration::from_secs(5));
    let ids: Vec<_> = net.nodes[2].peers().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![net.nodes[1].local_id()]);
    let s = net.nodes[2].stats();
    assert!(
        s.dials_skipped
            .get(&SkipReason::NetRestrict)
            .copied()
            .unwrap_or(0)
            >= 1,
        "{s:?}"
    );
    assert_eq!(s.refused.get(&RefuseReason::NetRestrict), Some(&1));
}

#[test]
fn simultaneous_dials_between_two_nodes_end_in_one_shared_connection() {
    for seed in 0..10u64 {
        let mut net = Net::new();
        net.add(100 + 2 * seed, lonely(5));
        net.add(101 + 2 * seed, lonely(5));
        let (e0, e1) = (net.enode(0), net.enode(1));
        let now = net.now;
        // Both dial each other in the same instant.
        net.nodes[0].add_static(now, &e1);
        net.nodes[1].add_static(now, &e0);
        net.drain(0);
        net.drain(1);
        net.run_for(Duration::from_secs(5));
        let p0 = net.nodes[0].peers();
        let p1 = net.nodes[1].peers();
        assert_eq!((p0.len(), p1.len()), (1, 1), "seed {seed}");
        assert_ne!(
            p0[0].direction, p1[0].direction,
            "seed {seed}: both ends keep the same connection"
        );
        // ...and they stay connected.
        net.run_for(Duration::from_secs(60));
        assert_eq!(
            (net.nodes[0].peer_count(), net.nodes[1].peer_count()),
            (1, 1),
            "seed {seed}"
        );
    }
}

/// With every MaxPendingPeers slot taken, a new inbound connection displaces the oldest one
/// that has not completed its RLPx handshake (connections that open and send nothing must
/// not lock real peers out for the handshake timeout); one that has proved its key is never
/// displaced, and when all of them have, the newcomer is refused.
#[test]
fn a_full_set_of_pending_slots_makes_room_by_displacing_the_oldest_unproven_connection() {
    use devp2p_core::node::{Action, Node};
    use devp2p_core::rlpx::Handshake;
    use devp2p_core::{Instant, NodeSecretKey};
    use rand_core::SeedableRng;

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let key = NodeSecretKey::generate(&mut rng);
    let public = *key.public();
    let config = NodeConfig {
        max_pending_peers: 2,
        ..lonely(5)
    };
    let node_rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
    let mut node = Node::new(key, config, node_rng, Instant::ZERO, 1_700_000_000);
    let now = Instant::from_millis(10);
    let from = |i: usize| addr_of(100 + i);
    let actions =
        |node: &mut Node<_>| std::iter::from_fn(|| node.poll_action()).collect::<Vec<_>>();
    let displaced = |node: &Node<_>| {
        node.stats()
            .handshakes
            .get(&HandshakeOutcome::Displaced)
            .copied()
    };

    let a = node.handle_accept(now, from(0)).expect("a free slot");
    let b = node.handle_accept(now, from(1)).expect("a free slot");
    // b proves a key: a real peer's auth.
    let auth =
        Handshake::initiator(&NodeSecretKey::generate(&mut rng), &public, &mut rng).take_output();
    assert_eq!(node.handle_read(now, b, &auth), auth.len());
    assert!(
        actions(&mut node).contains(&Action::Write { conn: b }),
        "b gets its ack and Hello"
    );

    // Full: the newcomer takes a's slot, never b's.
    let c = node
        .handle_accept(now, from(2))
        .expect("room made by displacing a");
    assert_eq!(actions(&mut node), vec![Action::Close { conn: a }]);
    assert_eq!(displaced(&node), Some(1));
    // And then c's, the only unproven one left.
    let d = node
        .handle_accept(now, from(3))
        .expect("room made by displacing c");
    assert_eq!(actions(&mut node), vec![Action::Close { conn: c }]);
    assert_eq!(displaced(&node), Some(2));
    assert!(!node.outbound(b).is_empty(), "b is untouched");

    // Once every pending connection has proved a key, a newcomer is refused.
    let auth =
        Handshake::initiator(&NodeSecretKey::generate(&mut rng), &public, &mut rng).take_output();
    assert_eq!(node.handle_read(now, d, &auth), auth.len());
    let _ = actions(&mut node);
    assert_eq!(
        node.handle_accept(now, from(4)),
        Err(RefuseReason::TooManyPending)
    );
    assert_eq!(actions(&mut node), vec![]);
    assert_eq!(displaced(&node), Some(2));
    assert_eq!(
        node.stats().refused.get(&RefuseReason::TooManyPending),
        Some(&1)
    );
}
