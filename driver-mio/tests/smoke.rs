//! Two nodes on 127.0.0.1 in one mio Runner: a static dial, one message, and a graceful
//! shutdown seen by the other side as ClientQuitting.

use std::time::{Duration, Instant};

use devp2p_core::node::{NodeConfig, NodeEvent};
use devp2p_core::session::{DisconnectReason, Protocol, SessionConfig, Side};
use devp2p_mio::{DriverConfig, Runner};

fn config() -> DriverConfig {
    DriverConfig {
        node: NodeConfig {
            session: SessionConfig {
                protocols: vec![Protocol::new("smoke", 1, 2)],
                ..SessionConfig::default()
            },
            listen: "127.0.0.1:0".parse().unwrap(),
            no_discovery: true,
            ..NodeConfig::default()
        },
        ..DriverConfig::default()
    }
}

#[test]
fn a_static_peer_connects_exchanges_a_message_and_hears_client_quitting() {
    let mut runner = Runner::new().unwrap();
    let a = runner.add(config()).unwrap();
    let b = runner.add(config()).unwrap();
    let a_enode = runner.driver(a).unwrap().local_enode();
    runner.driver_mut(b).unwrap().add_static(&a_enode);
    let mut log: Vec<(usize, NodeEvent)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = false;
    let mut shut = false;
    loop {
        assert!(Instant::now() < deadline, "timed out: {log:?}");
        runner
            .turn(Some(Duration::from_millis(50)), &mut |i, d, e| {
                if let (true, NodeEvent::PeerAdded(p)) = (i == b && !sent, &e) {
                    d.send(&p.id, 0, 1, b"ping").unwrap();
                    sent = true;
                }
                log.push((i, e));
            })
            .unwrap();
        let got = log.iter().any(|(i, e)| {
            *i == a
                && matches!(e, NodeEvent::Message { payload, code: 1, .. } if payload == b"ping")
        });
        if got && !shut {
            runner.driver_mut(a).unwrap().begin_shutdown();
            shut = true;
        }
        let removed = log.iter().find_map(|(i, e)| match e {
            NodeEvent::PeerRemoved {
                initiator, reason, ..
            } if *i == b => Some((*initiator, *reason)),
            _ => None,
        });
        if let Some(r) = removed {
            assert_eq!(r, (Side::Remote, Some(DisconnectReason::ClientQuitting)));
            if runner.driver(a).unwrap().is_finished() {
                assert_eq!(
                    runner
                        .driver(a)
                        .unwrap()
                        .shutdown_report()
                        .unwrap()
                        .forced_closes,
                    0
                );
                return;
            }
        }
    }
}

/// With a data directory, the node database is written while the node runs, at the
/// configured interval, not only at shutdown: a node that is killed keeps what it learnt.
#[test]
fn the_node_database_is_saved_while_the_node_runs() {
    let dir = std::env::temp_dir().join(format!("devp2p-mio-smoke-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = config();
    c.node.no_discovery = false;
    c.data_dir = Some(dir.clone());
    c.db_save_interval = Some(Duration::from_millis(200));
    let mut runner = Runner::new().unwrap();
    runner.add(c).unwrap();
    let file = devp2p_mio::common::NodeDbFile::in_dir(&dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.path().exists() {
        assert!(Instant::now() < deadline, "no periodic save within 10 s");
        runner
            .turn(Some(Duration::from_millis(50)), &mut |_, _, _| {})
            .unwrap();
    }
    assert!(runner.drivers().iter().all(|d| !d.is_finished()));
    assert!(file.try_load().unwrap().is_some(), "a whole, loadable file");
    let _ = std::fs::remove_dir_all(&dir);
}
