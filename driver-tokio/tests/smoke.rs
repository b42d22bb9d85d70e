//! Two nodes on 127.0.0.1 through the tokio driver: a static dial, one message each way, and a
//! graceful shutdown seen by the other side as ClientQuitting.

use std::time::Duration;

use devp2p_core::node::NodeEvent;
use devp2p_core::session::{DisconnectReason, Protocol, ProtocolId, Side};
use devp2p_tokio::{spawn, DriverConfig, EventStream};

/// The one protocol the test nodes speak.
const P: ProtocolId = ProtocolId::new(0);

fn config() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new("smoke", 1, 2)];
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.no_discovery = true;
    config
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
    b.add_static(&a.local_enode()).await.unwrap();
    next_matching(&mut a_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    b.send(&a.local_id(), P, 1, b"ping").await.unwrap();
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
    b.add_static(&a.local_enode()).await.unwrap();
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    let n = 3 * devp2p_tokio::MAX_PARKED_SENDS_PER_PEER as u32;
    for i in 0..n {
        let mut p = i.to_be_bytes().to_vec();
        p.resize(256, 0);
        b.post(&a.local_id(), P, 1, &p).await.unwrap();
    }
    for i in 0..n {
        let e = next_matching(&mut a_events, |e| matches!(e, NodeEvent::Message { .. })).await;
        assert!(
            matches!(&e, NodeEvent::Message { payload, .. } if payload[..4] == i.to_be_bytes()),
            "message {i}: {e:?}"
        );
    }
    assert_eq!(b.stats().await.unwrap().driver.posts_dropped, 0);
    // Nobody with this id is connected: the node refuses it, nobody waits, it is counted.
    b.post(&b.local_id(), P, 1, &[1]).await.unwrap();
    assert_eq!(b.stats().await.unwrap().driver.posts_dropped, 1);
}

/// `post` around the size limits: what no peer accepts is refused at once; what the node
/// refuses later (it does not compress into a frame) is counted, not lost silently; the
/// largest always-accepted messages arrive, in order with the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_around_the_size_limits_arrive_or_are_refused_and_counted() {
    use devp2p_core::rlpx::{MAX_MESSAGE_SIZE, MAX_UNCOMPRESSED_SIZE};
    use devp2p_core::session::{SendError, SizeLimit};
    use devp2p_tokio::SendFailure;

    let (a, mut a_events) = spawn(config()).unwrap();
    let (b, mut b_events) = spawn(config()).unwrap();
    b.add_static(&a.local_enode()).await.unwrap();
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let to = a.local_id();
    for len in [MAX_UNCOMPRESSED_SIZE + 1, 20 * 1024 * 1024] {
        let e = b.post(&to, P, 1, &vec![0; len]).await.unwrap_err();
        assert!(
            matches!(
                e,
                SendFailure::Refused(SendError::TooLarge {
                    kind: SizeLimit::Message,
                    ..
                })
            ),
            "{e:?}"
        );
    }
    let first = noise(MAX_MESSAGE_SIZE);
    let second = noise(MAX_MESSAGE_SIZE);
    b.post(&to, P, 1, &first).await.unwrap();
    // Within the message limit but it cannot fit a frame: the node refuses it later.
    b.post(&to, P, 1, &noise(MAX_UNCOMPRESSED_SIZE))
        .await
        .unwrap();
    b.post(&to, P, 1, &second).await.unwrap();
    b.post(&to, P, 1, b"last").await.unwrap();
    for want in [&first[..], &second[..], b"last"] {
        let e = tokio::time::timeout(
            Duration::from_secs(60),
            next_matching(&mut a_events, |e| matches!(e, NodeEvent::Message { .. })),
        )
        .await
        .expect("the posted messages arrive");
        assert!(matches!(&e, NodeEvent::Message { payload, .. } if payload == want));
    }
    assert_eq!(b.stats().await.unwrap().driver.posts_dropped, 1);
}

/// Found by the side-by-side benchmark against geth (tests/benches/versus_geth.rs): with an
/// outbound queue smaller than what the application posts, posts park in the node task until
/// the peer's queue has room. When the socket took everything at once, the `Writable` that
/// frees them arrived during the task's last flush of a turn, and nothing woke the task to
/// retry them: they waited for the next unrelated wake-up (the 15 s Ping, say). 16 MiB took
/// minutes at a 1 MiB queue. Here the Ping is pushed out of reach, so a stall is a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_parked_on_a_small_queue_go_out_as_soon_as_it_drains() {
    const SIZE: usize = 64 * 1024;
    const COUNT: usize = 128;
    let small = || {
        let mut c = config();
        c.node.session.max_outbound_queue = 256 * 1024;
        c.node.session.ping_interval = Duration::from_secs(600);
        c
    };
    let (a, mut a_events) = spawn(small()).unwrap();
    let (b, mut b_events) = spawn(small()).unwrap();
    b.add_static(&a.local_enode()).await.unwrap();
    next_matching(&mut a_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    // Incompressible, so that every message takes its 64 KiB of queue.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let payload: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let to = a.local_id();
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < SIZE * COUNT {
            if let NodeEvent::Message { payload, .. } = a_events.recv().await.expect("node a runs")
            {
                got += payload.len();
            }
        }
        got
    });
    for _ in 0..COUNT {
        b.post(&to, P, 0, &payload).await.unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(20), receiver)
        .await
        .expect("every posted byte arrives without waiting for an unrelated wake-up")
        .unwrap();
    assert_eq!(got, SIZE * COUNT);
    assert_eq!(b.stats().await.unwrap().driver.posts_dropped, 0);
}

/// `send_batch` on a queue much smaller than the batch: the batch waits for room in the node
/// task, a post made after it waits behind it, and every message arrives once, in order. A
/// batch that fails says how far it got, and what it queued arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_queue_arrives_in_order_and_a_failed_one_says_how_far_it_got() {
    use devp2p_core::rlpx::MAX_UNCOMPRESSED_SIZE;
    use devp2p_core::session::SendError;
    use devp2p_tokio::{BatchFailure, SendFailure};

    const N: u32 = 2000;
    let (a, mut a_events) = spawn(config()).unwrap();
    let mut small = config();
    small.node.session.max_outbound_queue = 8 * 1024;
    let (b, mut b_events) = spawn(small).unwrap();
    b.add_static(&a.local_enode()).await.unwrap();
    next_matching(&mut b_events, |e| matches!(e, NodeEvent::PeerAdded(_))).await;
    let to = a.local_id();
    let numbered = |i: u32| {
        let mut p = i.to_be_bytes().to_vec();
        p.resize(256, i as u8);
        p
    };
    // 500 KB through an 8 KiB queue; the post is handed over after the batch (join polls in
    // order), so it must wait behind the batch's parked rest.
    let batch: Vec<_> = (0..N).map(|i| (1, numbered(i))).collect();
    let (sent, posted) = tokio::join!(b.send_batch(&to, P, batch), async {
        tokio::task::yield_now().await;
        b.post(&to, P, 1, &numbered(N)).await
    });
    sent.unwrap();
    posted.unwrap();
    async fn expect(events: &mut EventStream, want: &[u8]) {
        let e = next_matching(events, |e| matches!(e, NodeEvent::Message { .. })).await;
        assert!(
            matches!(&e, NodeEvent::Message { payload, code: 1, .. } if payload == want),
            "message {:?}: {e:?}",
            &want[..4]
        );
    }
    for i in 0..=N {
        expect(&mut a_events, &numbered(i)).await;
    }

    // Nobody with this id is connected: nothing queued.
    let e = b.send_batch(&b.local_id(), P, vec![(1, vec![1])]).await;
    assert_eq!(
        e,
        Err(BatchFailure {
            queued: 0,
            failure: SendFailure::Refused(SendError::NotEstablished)
        })
    );
    // Too large for any peer, third of three: refused whole, before anything is sent.
    let e = b
        .send_batch(
            &to,
            P,
            vec![
                (1, numbered(N + 1)),
                (1, numbered(N + 1)),
                (1, vec![0; MAX_UNCOMPRESSED_SIZE + 1]),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.queued, 0);
    assert!(
        matches!(e.failure, SendFailure::Refused(SendError::TooLarge { .. })),
        "{e}"
    );
    // Code 7 is outside the protocol's two: the two before it are queued and arrive, the one
    // after it is not sent.
    let e = b
        .send_batch(
            &to,
            P,
            vec![
                (1, numbered(N + 1)),
                (1, numbered(N + 2)),
                (7, numbered(0)),
                (1, numbered(0)),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.queued, 2, "{e}");
    assert!(matches!(e.failure, SendFailure::Refused(_)), "{e}");
    b.send(&to, P, 1, &numbered(N + 3)).await.unwrap();
    for i in N + 1..=N + 3 {
        expect(&mut a_events, &numbered(i)).await;
    }
    assert_eq!(b.send_batch(&to, P, vec![]).await, Ok(()));
}
