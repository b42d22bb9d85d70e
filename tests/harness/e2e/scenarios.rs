//! The end-to-end scenarios, each written once against [`Harness`] and run with both drivers
//! (see `tests/e2e.rs`). Real sockets on 127.0.0.1, every wait bounded.

use std::collections::BTreeSet;
use std::time::Duration;

use devp2p_core::discv4::{Event as DiscoveryEvent, Node as DiscNode};
use devp2p_core::node::{NodeEvent, PeerInfo};
use devp2p_core::session::{DisconnectReason, Side};
use devp2p_core::NodeId;
use devp2p_mio::common::{DriverConfig, NodeDbFile};

use super::{local_config, temp_dir, wait_for, Harness};

/// Longest wait for two nodes on loopback to connect (handshake and Hello take milliseconds).
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for discovery to converge among a handful of nodes (it takes about a second).
const DISCOVERY_WAIT: Duration = Duration::from_secs(20);

fn added(h: &impl Harness, i: usize, peer: NodeId) -> bool {
    h.log().with(i, |ev| {
        ev.iter()
            .any(|e| matches!(e, NodeEvent::PeerAdded(p) if p.id == peer))
    })
}

fn removed(h: &impl Harness, i: usize, peer: NodeId) -> Option<(Side, Option<DisconnectReason>)> {
    h.log().with(i, |ev| {
        ev.iter().find_map(|e| match e {
            NodeEvent::PeerRemoved {
                id,
                initiator,
                reason,
                ..
            } if *id == peer => Some((*initiator, *reason)),
            _ => None,
        })
    })
}

/// Starts two nodes without discovery and has the second dial the first (static peer).
fn connected_pair(h: &mut impl Harness) -> (usize, usize) {
    let a = h.start(local_config(false));
    let b = h.start(local_config(false));
    h.add_static(b, h.enode(a));
    let (ida, idb) = (h.id(a), h.id(b));
    wait_for(
        &format!("a static dial to connect both sides ({})", h.driver()),
        CONNECT_WAIT,
        || added(h, a, idb) && added(h, b, ida),
    );
    (a, b)
}

/// Two nodes handshake, agree on the test sub-protocol and exchange messages both ways, in
/// order, small and large.
pub fn two_nodes_exchange_messages_on_a_test_subprotocol(h: &mut impl Harness) {
    let (a, b) = connected_pair(h);
    let (ida, idb) = (h.id(a), h.id(b));
    let peer_of_b: PeerInfo = h
        .peers(b)
        .into_iter()
        .find(|p| p.id == ida)
        .expect("b lists a as a peer");
    let cap = &peer_of_b.capabilities[0];
    assert_eq!((cap.name.as_str(), cap.version), ("e2e", 1));

    // 1 B up to 1 MiB: the large ones span many reads and writes.
    let payloads: Vec<Vec<u8>> = (0..40u32)
        .map(|i| {
            let len = match i % 4 {
                0 => 1,
                1 => 1024,
                2 => 64 * 1024,
                _ => 1024 * 1024,
            };
            (0..len).map(|j| (j as u32 ^ i) as u8).collect()
        })
        .collect();
    for (i, p) in payloads.iter().enumerate() {
        h.send(b, ida, 0, (i % 4) as u64, p.clone())
            .unwrap_or_else(|e| panic!("send {i} from b: {e}"));
    }
    h.send(a, idb, 0, 3, b"reply".to_vec())
        .expect("send from a");
    let count = |ev: &[NodeEvent], from: NodeId| {
        ev.iter()
            .filter(|e| matches!(e, NodeEvent::Message { peer, .. } if *peer == from))
            .count()
    };
    wait_for(
        &format!("40 messages b->a and 1 a->b ({})", h.driver()),
        CONNECT_WAIT,
        || {
            h.log().with(a, |ev| count(ev, idb)) == payloads.len()
                && h.log().with(b, |ev| count(ev, ida)) == 1
        },
    );
    h.log().with(a, |ev| {
        let got: Vec<(u64, &Vec<u8>)> = ev
            .iter()
            .filter_map(|e| match e {
                NodeEvent::Message {
                    peer,
                    protocol: 0,
                    code,
                    payload,
                } if *peer == idb => Some((*code, payload)),
                _ => None,
            })
            .collect();
        for (i, (code, payload)) in got.iter().enumerate() {
            assert_eq!(*code, (i % 4) as u64, "message {i}: code");
            assert!(*payload == &payloads[i], "message {i}: payload differs");
        }
    });
    h.log().with(b, |ev| {
        assert!(ev.iter().any(|e| matches!(e,
            NodeEvent::Message { peer, code: 3, payload, .. } if *peer == ida && payload == b"reply")));
    });
}

/// Ids a node learnt through discovery: its table and what its events reported.
fn discovered(h: &mut impl Harness, i: usize) -> BTreeSet<NodeId> {
    let mut ids: BTreeSet<NodeId> = h.table(i).into_iter().collect();
    h.log().with(i, |ev| {
        for e in ev {
            if let NodeEvent::Discovery(d) = e {
                match d.as_ref() {
                    DiscoveryEvent::NodeAdded(n) | DiscoveryEvent::NodeSeen(n) => {
                        ids.insert(n.id());
                    }
                    DiscoveryEvent::LookupFinished { nodes, .. } => {
                        ids.extend(nodes.iter().map(DiscNode::id))
                    }
                    _ => {}
                }
            }
        }
    });
    ids
}

/// Eight nodes bootstrap from the first and each finds all seven others through discovery,
/// and holds at least one session.
pub fn eight_nodes_bootstrap_from_one_and_find_each_other(h: &mut impl Harness) {
    let boot = h.start(local_config(true));
    let mut nodes = vec![boot];
    for _ in 1..8 {
        let mut c = local_config(true);
        c.node.bootnodes = vec![h.enode(boot)];
        nodes.push(h.start(c));
    }
    let ids: Vec<NodeId> = nodes.iter().map(|&i| h.id(i)).collect();
    wait_for(
        &format!("8 nodes to find each other ({})", h.driver()),
        DISCOVERY_WAIT,
        || {
            nodes.iter().all(|&i| {
                let found = discovered(h, i);
                ids.iter().all(|id| *id == ids[i] || found.contains(id)) && !h.peers(i).is_empty()
            })
        },
    );
}

/// A graceful shutdown sends Disconnect(ClientQuitting): the node that quits reports it as its
/// own reason, the peer as the remote's; nothing is closed by force. An explicit disconnect
/// carries its reason to the other side the same way.
pub fn shutdown_is_clean_on_both_sides_with_reasons(h: &mut impl Harness) {
    let (a, b) = connected_pair(h);
    let c = h.start(local_config(false));
    h.add_static(c, h.enode(a));
    let (ida, idb, idc) = (h.id(a), h.id(b), h.id(c));
    wait_for("c to connect to a", CONNECT_WAIT, || added(h, a, idc));

    h.disconnect(c, ida, DisconnectReason::UselessPeer);
    wait_for("both ends to report c's disconnect", CONNECT_WAIT, || {
        removed(h, a, idc).is_some() && removed(h, c, ida).is_some()
    });
    assert_eq!(
        removed(h, a, idc),
        Some((Side::Remote, Some(DisconnectReason::UselessPeer)))
    );
    assert_eq!(
        removed(h, c, ida),
        Some((Side::Local, Some(DisconnectReason::UselessPeer)))
    );

    let report = h.shutdown(a);
    assert_eq!(report.forced_closes, 0, "{}: {report:?}", h.driver());
    // The harness returns once the node's last events are logged.
    assert_eq!(
        removed(h, a, idb),
        Some((Side::Local, Some(DisconnectReason::ClientQuitting)))
    );
    wait_for("b to hear a quit", CONNECT_WAIT, || {
        removed(h, b, ida).is_some()
    });
    assert_eq!(
        removed(h, b, ida),
        Some((Side::Remote, Some(DisconnectReason::ClientQuitting)))
    );
}

/// A node with a data directory saves its node database at shutdown (its bond with the
/// bootnode recorded) and keeps its key. Restarted from that directory with no bootnodes, it
/// seeds its table from the database, finds the bootnode again and connects to it.
///
/// The core stores a node as a future seed only after more than five successful
/// revalidations (geth's rule; minutes of running), so the test promotes the bootnode to a
/// seed in the saved file itself, through the file format's own writer, before the restart.
pub fn restart_seeds_from_the_saved_database(h: &mut impl Harness) {
    let dir = temp_dir(&format!("restart-{}", h.driver()));
    let boot = h.start(local_config(true));
    let boot_enode = h.enode(boot);
    let boot_id = h.id(boot);
    let with_dir = |bootnodes| {
        let mut c: DriverConfig = local_config(true);
        c.data_dir = Some(dir.clone());
        c.node.bootnodes = bootnodes;
        c
    };
    let first = h.start(with_dir(vec![boot_enode.clone()]));
    let first_id = h.id(first);
    wait_for(
        "the first run to bond with the bootnode",
        DISCOVERY_WAIT,
        || {
            h.db_snapshot(first)
                .endpoints
                .iter()
                .any(|e| e.id == boot_id && e.record.last_pong_received > 0)
        },
    );
    let report = h.shutdown(first);
    let db = NodeDbFile::in_dir(&dir);
    assert_eq!(report.db_saved.as_deref(), Some(db.path()), "{report:?}");
    let (mut snap, skipped) = db
        .try_load()
        .expect("the saved database loads")
        .expect("the database was written");
    assert_eq!(skipped, 0);
    let bond = snap
        .endpoints
        .iter()
        .find(|e| e.id == boot_id)
        .unwrap_or_else(|| {
            panic!(
                "the bond with the bootnode was not saved: {}",
                std::fs::read_to_string(db.path()).unwrap_or_default()
            )
        });
    assert!(bond.record.last_pong_received > 0, "{bond:?}");

    if !snap.nodes.iter().any(|n| n.id() == boot_id) {
        let ip = boot_enode.ip().expect("an IP");
        snap.nodes.push(DiscNode::new(
            boot_enode.public_key,
            ip,
            boot_enode.udp_port,
            boot_enode.tcp_port,
        ));
        db.save(&snap, bond.record.last_pong_received)
            .expect("rewriting the database");
    }

    let second = h.start(with_dir(Vec::new()));
    assert_eq!(
        h.id(second),
        first_id,
        "the key is kept in the data directory"
    );
    wait_for(
        "the restarted node to find the bootnode from its database and connect",
        DISCOVERY_WAIT,
        || h.table(second).contains(&boot_id) && h.peers(second).iter().any(|p| p.id == boot_id),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
