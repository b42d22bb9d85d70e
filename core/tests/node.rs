//! Whole networks of `Node`s in memory, under virtual time, driven only through the public
//! API: dial targets, admission limits, trusted and static peers, NetRestrict.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::net::{addr_of, Net};
use devp2p_core::node::{
    ConnectError, Direction, HandshakeOutcome, NodeConfig, NodeEvent, RefuseReason, Undialable,
};
use devp2p_core::session::{DisconnectReason, Protocol, ProtocolId, SessionConfig, Side};

fn config(max_peers: usize) -> NodeConfig {
    let mut node = NodeConfig::default();
    node.session.protocols = vec![Protocol::new("test", 1, 4)];
    node.max_peers = max_peers;
    node
}

fn lonely(max_peers: usize) -> NodeConfig {
    let mut node = config(max_peers);
    node.no_discovery = true;
    node
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
        net.add(1000 + i, {
            let mut node = config(10);
            node.bootnodes = vec![boot.clone()];
            node
        });
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
    net.add(2, {
        let mut node = lonely(5);
        node.static_nodes = vec![net.enode(0)];
        node
    });
    net.run_for(Duration::from_secs(2));
    let b = net.nodes[1].local_id();
    let a = net.nodes[0].local_id();
    let now = net.now;
    net.nodes[0]
        .send(now, &b, ProtocolId::new(0), 3, b"hello over devp2p")
        .unwrap();
    net.drain(0);
    net.run_for(Duration::from_secs(1));
    assert!(net.events[1].iter().any(|e| matches!(
        e,
        NodeEvent::Message { peer, protocol, code: 3, payload } if protocol.index() == 0 && *peer == a && payload == b"hello over devp2p"
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
    net.add(11, {
        let mut node = lonely(5);
        node.static_nodes = vec![hub.clone()];
        node
    });
    net.add(14, {
        let mut node = lonely(5);
        node.static_nodes = vec![hub.clone()];
        node
    });
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[0].peer_count(), 2);

    // A further inbound node is refused: the hub's inbound slots are full.
    net.add(12, {
        let mut node = lonely(5);
        node.static_nodes = vec![hub.clone()];
        node
    });
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
    net.add(13, {
        let mut node = lonely(5);
        node.static_nodes = vec![hub];
        node
    });
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
    net.add(21, {
        let mut node = lonely(5);
        node.static_nodes = vec![net.enode(0)];
        node
    });
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
    let mut c = lonely(5);
    c.static_nodes = vec![net.enode(0), net.enode(1)];
    c.net_restrict = Some(restrict);
    net.add(32, c);
    // Node 3 tries to dial node 2 from 127.0.0.4.
    net.add(33, {
        let mut node = lonely(5);
        node.static_nodes = vec![net.enode(2)];
        node
    });
    net.run_for(Duration::from_secs(5));
    let ids: Vec<_> = net.nodes[2].peers().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![net.nodes[1].local_id()]);
    // The static node outside NetRestrict is reported as undialable at start.
    let blocked = net.nodes[0].local_id();
    assert!(
        net.events[2].iter().any(|e| matches!(
            e,
            NodeEvent::ConnectionFailed(f) if f.remote.map(|k| k.id()) == Some(blocked)
                && f.error == ConnectError::NotDialable(Undialable::NetRestrict)
        )),
        "{:?}",
        net.events[2]
    );
    let s = net.nodes[2].stats();
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
        net.nodes[0].add_static(now, &e1).unwrap();
        net.nodes[1].add_static(now, &e0).unwrap();
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
    let mut config = lonely(5);
    config.max_pending_peers = 2;
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

/// The failures node `i` reported, as (remote id, error).
fn failures(net: &Net, i: usize) -> Vec<(Option<devp2p_core::NodeId>, ConnectError)> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            NodeEvent::ConnectionFailed(f) => Some((f.remote.map(|k| k.id()), f.error.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_static_peer_on_a_closed_port_is_reported_as_a_failed_dial_with_the_os_error() {
    let mut net = Net::new();
    net.add(50, lonely(5));
    let mut ghost = net.enode(0);
    // Same key, an address nobody listens on.
    ghost.host = Some(devp2p_core::Host::Ip("127.0.9.9".parse().unwrap()));
    let i = net.add(51, {
        let mut node = lonely(5);
        node.static_nodes = vec![ghost.clone()];
        node
    });
    net.run_for(Duration::from_secs(1));
    let f = net.events[i]
        .iter()
        .find_map(|e| match e {
            NodeEvent::ConnectionFailed(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a failure event");
    assert_eq!(f.remote.map(|k| k.id()), Some(ghost.id()));
    assert_eq!(f.addr, ghost.tcp_addr());
    assert_eq!(f.dial, Some(devp2p_core::dial::DialKind::Static));
    assert!(f.is_configured_peer());
    assert!(
        matches!(
            &f.error,
            ConnectError::Tcp {
                kind: std::io::ErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{f}"
    );
    assert!(f.to_string().contains("127.0.9.9:30303"), "{f}");
}

#[test]
fn a_static_peer_with_a_stale_key_fails_during_the_rlpx_handshake_and_says_why() {
    let mut net = Net::new();
    net.add(52, lonely(5));
    // Node 0's address, another node's key.
    let mut stale = Net::new();
    stale.add(99, lonely(5));
    let mut enode = stale.enode(0);
    enode.host = net.enode(0).host;
    let i = net.add(53, {
        let mut node = lonely(5);
        node.static_nodes = vec![enode.clone()];
        node
    });
    net.run_for(Duration::from_secs(1));
    let f = failures(&net, i);
    assert!(
        f.contains(&(Some(enode.id()), ConnectError::ClosedDuringHandshake)),
        "{f:?}"
    );
    assert!(ConnectError::ClosedDuringHandshake
        .to_string()
        .contains("does not hold the key"));
    // The node dialled saw an auth it could not decrypt, from nobody it knows.
    assert!(
        failures(&net, 0)
            .iter()
            .any(|(who, e)| who.is_none() && matches!(e, ConnectError::Rlpx(_))),
        "{:?}",
        failures(&net, 0)
    );
}

#[test]
fn no_shared_capability_is_reported_on_both_sides_with_what_the_other_offered() {
    let mut net = Net::new();
    net.add(54, lonely(5));
    let mut other = lonely(5);
    other.session = {
        let mut session = SessionConfig::default();
        session.protocols = vec![Protocol::new("other", 2, 1)];
        session
    };
    other.static_nodes = vec![net.enode(0)];
    let i = net.add(55, other);
    net.run_for(Duration::from_secs(1));
    for (node, remote) in [(0, i), (i, 0)] {
        let f = failures(&net, node);
        let remote_id = net.nodes[remote].local_id();
        assert!(
            f.iter().any(|(who, e)| *who == Some(remote_id)
                && match e {
                    ConnectError::Refused {
                        reason: DisconnectReason::UselessPeer,
                        error: Some(e),
                    } => e.to_string().contains("offers"),
                    ConnectError::RemoteDisconnected(Some(DisconnectReason::UselessPeer)) => true,
                    _ => false,
                }),
            "node {node}: {f:?}"
        );
    }
}

#[test]
fn statics_that_can_never_be_dialled_are_refused_by_add_static_and_reported_at_start() {
    let mut net = Net::new();
    net.add(56, lonely(5));
    let target = net.enode(0);
    // max_peers 0: this node dials nobody.
    let i = net.add(57, {
        let mut node = lonely(0);
        node.static_nodes = vec![target.clone()];
        node
    });
    assert_eq!(
        failures(&net, i),
        vec![(
            Some(target.id()),
            ConnectError::NotDialable(Undialable::DialingOff)
        )]
    );
    let now = net.now;
    assert_eq!(
        net.nodes[i].add_static(now, &target),
        Err(Undialable::DialingOff)
    );

    let j = net.add(58, lonely(5));
    let mut dns = target.clone();
    dns.host = Some(devp2p_core::Host::Dns("node.example".into()));
    assert!(matches!(
        net.nodes[j].add_static(now, &dns),
        Err(Undialable::DnsName(h)) if h == "node.example"
    ));
    let mut keyless = target.clone();
    keyless.host = None;
    // Without discovery nothing can find its address.
    assert_eq!(
        net.nodes[j].add_static(now, &keyless),
        Err(Undialable::NoAddress)
    );
    let own = net.enode(j);
    assert_eq!(net.nodes[j].add_static(now, &own), Err(Undialable::IsSelf));
    assert_eq!(net.nodes[j].add_static(now, &target), Ok(()));
}

#[test]
fn a_send_refused_for_a_full_queue_is_followed_by_writable_for_that_peer() {
    let small = |peers| {
        let mut node = lonely(peers);
        node.session = {
            let mut session = SessionConfig::default();
            session.protocols = vec![Protocol::new("test", 1, 4)];
            session.max_outbound_queue = 16 * 1024;
            session
        };
        node
    };
    let mut net = Net::new();
    net.add(59, small(5));
    net.add(60, {
        let mut node = small(5);
        node.static_nodes = vec![net.enode(0)];
        node
    });
    net.run_for(Duration::from_secs(1));
    let b = net.nodes[1].local_id();
    let now = net.now;
    let p = ProtocolId::new(0);
    let payload: Vec<u8> = (0..6000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut refused = false;
    for _ in 0..10 {
        match net.nodes[0].send(now, &b, p, 1, &payload) {
            Ok(()) => {}
            Err(devp2p_core::session::SendError::QueueFull { .. }) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused, "the queue filled");
    net.drain(0);
    net.run_for(Duration::from_millis(100));
    assert!(
        net.events[0]
            .iter()
            .any(|e| matches!(e, NodeEvent::Writable { peer } if *peer == b)),
        "{:?}",
        net.events[0]
    );
    net.nodes[0].send(net.now, &b, p, 1, &payload).unwrap();
}
