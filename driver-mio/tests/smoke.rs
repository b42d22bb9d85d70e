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
