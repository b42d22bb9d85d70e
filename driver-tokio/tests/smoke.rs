//! Two nodes on 127.0.0.1 through the tokio driver: a static dial, one message each way, and a
//! graceful shutdown seen by the other side as ClientQuitting.

use std::time::Duration;

use devp2p_core::node::{NodeConfig, NodeEvent};
use devp2p_core::session::{DisconnectReason, Protocol, SessionConfig, Side};
use devp2p_tokio::{spawn, DriverConfig, EventStream};

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

async fn next_matching(
    events: &mut EventStream,
    mut f: impl FnMut(&NodeEvent) -> bool,
) -> NodeEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.recv().await.expect("node stopped");
            if f(&e) {
                return e;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_peer_connects_exchanges_a_message_and_hears_client_quitting() {
    let (a, mut a_events) = spawn(config()).unwrap();
    let (b, mut b_events) = spawn(config()).unwrap();
    b.add_static(a.local_enode().clone()).await.unwrap();
    next_matching(&mut a_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    b.send(a.local_id(), 0, 1, b"ping".to_vec()).await.unwrap();
    let got = next_matching(&mut a_events, |e| matches!(e, NodeEvent::Message { .. })).await;
    assert!(matches!(got, NodeEvent::Message { payload, code: 1, .. } if payload == b"ping"));
    let report = a.shutdown().await.unwrap();
    assert_eq!(report.forced_closes, 0);
    let removed = next_matching(&mut b_events, |e| {
        matches!(e, NodeEvent::PeerRemoved { .. })
    })
    .await;
    match removed {
        NodeEvent::PeerRemoved {
            initiator, reason, ..
        } => {
            assert_eq!(initiator, Side::Remote);
            assert_eq!(reason, Some(DisconnectReason::ClientQuitting));
        }
        _ => unreachable!(),
    }
}

/// One thread: the 1000 callers all queue their commands before the node task runs again.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_commands_larger_than_a_turn_is_answered_in_full() {
    let (a, _events) = spawn(config()).unwrap();
    // Far more than COMMANDS_PER_TURN waiting at once: none may be lost between turns.
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.peers().await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), Ok(vec![]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_messages_arrive_in_order_and_refused_ones_are_counted() {
    let (a, mut a_events) = spawn(config()).unwrap();
    // A small outbound queue, so that posts soon wait for room in numbers beyond
    // MAX_PARKED_SENDS_PER_PEER: posts are bounded by bytes, not by that count.
    let mut small = config();
    small.node.session.max_outbound_queue = 8 * 1024;
    let (b, mut b_events) = spawn(small).unwrap();
    b.add_static(a.local_enode().clone()).await.unwrap();
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    let n = 3 * devp2p_tokio::MAX_PARKED_SENDS_PER_PEER as u32;
    for i in 0..n {
        let mut p = i.to_be_bytes().to_vec();
        p.resize(256, 0);
        b.post(a.local_id(), 0, 1, p).await.unwrap();
    }
    for i in 0..n {
        let e = next_matching(&mut a_events, |e| matches!(e, NodeEvent::Message { .. })).await;
        assert!(
            matches!(&e, NodeEvent::Message { payload, .. } if payload[..4] == i.to_be_bytes()),
            "message {i}: {e:?}"
        );
    }
    assert_eq!(b.info().await.unwrap().posts_dropped, 0);
    // Nobody with this id is connected: the node refuses it, nobody waits, it is counted.
    b.post(b.local_id(), 0, 1, vec![1]).await.unwrap();
    assert_eq!(b.info().await.unwrap().posts_dropped, 1);
}
