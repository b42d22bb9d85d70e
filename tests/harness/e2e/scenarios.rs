//! The end-to-end scenarios, each written once against [`Harness`] and run with both drivers
//! (see `tests/e2e.rs`). Real sockets on 127.0.0.1, every wait bounded.

use std::collections::BTreeSet;
use std::time::Duration;

use devp2p_core::discv4::{Event as DiscoveryEvent, Node as DiscNode};
use devp2p_core::node::{NodeEvent, PeerInfo};
use devp2p_core::session::{DisconnectReason, ProtocolId, Side};
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
    h.add_static(b, h.enode(a)).expect("a dialable static peer");
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
        h.send(b, ida, ProtocolId::new(0), (i % 4) as u64, p.clone())
            .unwrap_or_else(|e| panic!("send {i} from b: {e}"));
    }
    h.send(a, idb, ProtocolId::new(0), 3, b"reply".to_vec())
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
                    protocol,
                    code,
                    payload,
                } if *peer == idb && protocol.index() == 0 => Some((*code, payload)),
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
    h.add_static(c, h.enode(a)).expect("a dialable static peer");
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

/// Bytes no compressor can shrink (xorshift), so each costs its full size on the wire.
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Messages at and around every size limit, snappy on (every session after Hello): each one
/// up to the documented maximum arrives intact and in order, two maximal ones back to back
/// included (the queue holds one at a time: the second waits for room); each one that can
/// never be sent is refused at once, naming the limit, and the session carries on.
pub fn messages_around_every_size_limit_arrive_or_are_refused_at_once(h: &mut impl Harness) {
    use devp2p_core::rlpx::{MAX_FRAME_SIZE, MAX_MESSAGE_SIZE, MAX_UNCOMPRESSED_SIZE};
    use devp2p_core::session::{SendError, SizeLimit};
    use devp2p_mio::SendFailure;

    let (a, b) = connected_pair(h);
    let (ida, idb) = (h.id(a), h.id(b));
    let p = ProtocolId::new(0);
    let deliverable = [
        incompressible(MAX_MESSAGE_SIZE, 1),
        incompressible(MAX_MESSAGE_SIZE, 2),
        vec![0x5a; MAX_UNCOMPRESSED_SIZE],
        incompressible(MAX_MESSAGE_SIZE - 1, 3),
        Vec::new(),
    ];
    for (i, m) in deliverable.iter().enumerate() {
        h.send(b, ida, p, i as u64 % 4, m.clone())
            .unwrap_or_else(|e| panic!("{}: {} bytes: {e}", h.driver(), m.len()));
    }
    let refusals = [
        (
            MAX_UNCOMPRESSED_SIZE + 1,
            SizeLimit::Message,
            MAX_UNCOMPRESSED_SIZE,
        ),
        (20 * 1024 * 1024, SizeLimit::Message, MAX_UNCOMPRESSED_SIZE),
        (MAX_UNCOMPRESSED_SIZE, SizeLimit::Frame, MAX_FRAME_SIZE),
    ];
    for (len, kind, limit) in refusals {
        let m = incompressible(len, 9);
        let started = std::time::Instant::now();
        let e = h.try_send(b, ida, p, 0, m.clone()).unwrap_err();
        assert!(
            matches!(&e, SendFailure::Refused(SendError::TooLarge { kind: k, limit: l, .. }) if *k == kind && *l == limit),
            "{}: {len} bytes: {e:?}",
            h.driver()
        );
        assert!(e.to_string().contains(&limit.to_string()), "{e}");
        // The waiting send refuses it at once too: it never waits for room it cannot get.
        let e = h.send(b, ida, p, 0, m).unwrap_err();
        assert!(e.contains(&limit.to_string()), "{}: {e}", h.driver());
        assert!(
            started.elapsed() < CONNECT_WAIT,
            "{}: refused late",
            h.driver()
        );
    }
    h.send(b, ida, p, 1, b"after the refusals".to_vec())
        .expect("the session carries on");
    let from_b = |ev: &[NodeEvent]| -> Vec<Vec<u8>> {
        ev.iter()
            .filter_map(|e| match e {
                NodeEvent::Message { peer, payload, .. } if *peer == idb => Some(payload.clone()),
                _ => None,
            })
            .collect()
    };
    wait_for(
        &format!(
            "{} large messages to arrive ({})",
            deliverable.len() + 1,
            h.driver()
        ),
        Duration::from_secs(60),
        || h.log().with(a, |ev| from_b(ev).len()) == deliverable.len() + 1,
    );
    let got = h.log().with(a, from_b);
    for (i, m) in deliverable.iter().enumerate() {
        assert!(
            got[i] == *m,
            "{}: message {i} ({} bytes) altered",
            h.driver(),
            m.len()
        );
    }
    assert_eq!(got[deliverable.len()], b"after the refusals");
    assert!(h.peers(a).iter().any(|p| p.id == idb), "still connected");
}
