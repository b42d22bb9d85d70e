//! discv5 through the tokio driver over real loopback sockets: a v5-only network of a few
//! nodes fills its tables and connects over RLPx; a TALKREQ goes from one application to
//! another and its answer comes back; what a node without discv5 cannot do is refused
//! saying so. The same scenarios as devp2p-mio's `tests/discv5.rs`, with the same names.

use std::time::{Duration, Instant};

use devp2p_core::discv5::discovery::{Event as V5Event, TalkError};
use devp2p_core::discv5::RequestFailure;
use devp2p_core::node::{DiscoveryVersion, Discv5Error, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{Enr, NodeSecretKey};
use devp2p_tokio::{spawn, DriverConfig, EventStream, LookupError, NodeHandle, TalkFailure};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn v5_only() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new("smoke", 1, 2)];
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.discv4 = false;
    config.node.discv5 = true;
    config
}

/// Takes events off every stream until `done` says the network is where it should be.
async fn wait_until(
    nodes: &[NodeHandle],
    streams: &mut [EventStream],
    mut done: impl AsyncFnMut(&[NodeHandle]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for s in streams.iter_mut() {
            while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), s.recv()).await {
            }
        }
        if done(nodes).await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_only_network_on_loopback_fills_its_tables_and_connects() {
    const N: usize = 4;
    let (boot, boot_events) = spawn(v5_only()).unwrap();
    let boot_record = boot.local_enr().unwrap();
    let mut nodes = vec![boot];
    let mut streams = vec![boot_events];
    for _ in 1..N {
        let mut c = v5_only();
        c.node.bootnode_records = vec![boot_record.clone()];
        let (h, e) = spawn(c).unwrap();
        nodes.push(h);
        streams.push(e);
    }
    wait_until(&nodes, &mut streams, async |nodes| {
        for n in nodes {
            let full = n.table_v5().await.unwrap().len() == N - 1;
            if !full || n.peers().await.unwrap().is_empty() {
                return false;
            }
        }
        true
    })
    .await;
    for n in &nodes {
        let stats = n.stats().await.unwrap().node;
        assert!(stats.packets_in.is_empty(), "no discv4 datagram at all");
        assert!(stats.discv5_packets_in > 0);
        assert!(n.table().await.unwrap().is_empty());
        assert!(n
            .table_v5()
            .await
            .unwrap()
            .iter()
            .all(|n| n.record().is_some()));
    }
    // A lookup over v5 finds the target first; one over v4 is refused, naming the version.
    let target = nodes[3].local_id();
    let found = nodes[1].lookup_v5(&target).await.unwrap();
    assert_eq!(found.first().map(|n| n.id()), Some(target));
    assert_eq!(
        nodes[1].lookup_random().await,
        Err(LookupError::NotRunning(DiscoveryVersion::V4))
    );
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talk_request_is_answered_by_the_other_application() {
    let (a, mut a_events) = spawn(v5_only()).unwrap();
    let (b, _b_events) = spawn(v5_only()).unwrap();
    let a_record = a.local_enr().unwrap();
    a.register_talk_protocol(b"echo").await.unwrap();
    // A's application answers every request it gets with "echo: " and the request.
    let a2 = a.clone();
    let server = tokio::spawn(async move {
        while let Some(e) = a_events.recv().await {
            let NodeEvent::Discv5(v5) = e else { continue };
            if let V5Event::TalkRequest {
                id,
                protocol,
                request,
                ..
            } = *v5
            {
                assert_eq!(protocol, b"echo");
                let mut reply = b"echo: ".to_vec();
                reply.extend_from_slice(&request);
                a2.answer_talk(id, &reply).await.unwrap();
                assert_eq!(
                    a2.answer_talk(id, b"twice").await,
                    Err(TalkFailure::Refused(Discv5Error::Talk(
                        TalkError::UnknownRequest
                    )))
                );
            }
        }
    });
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        b.talk_request(&a_record, b"echo", b"hello"),
    )
    .await
    .expect("answered in time");
    assert_eq!(answer, Ok(b"echo: hello".to_vec()));
    let unknown = b.talk_request(&a_record, b"nobody", b"?").await;
    assert_eq!(unknown, Ok(Vec::new()));
    // Nobody at the address a record names: the request times out (700 ms, one resend).
    let nobody = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(9));
    let free_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = Enr::builder()
        .ip("127.0.0.1".parse().unwrap())
        .udp4(free_port)
        .sign(&nobody)
        .unwrap();
    assert_eq!(
        b.talk_request(&gone, b"echo", b"?").await,
        Err(TalkFailure::Failed(RequestFailure::Timeout))
    );

    // A node without discv5 says so.
    let mut config = v5_only();
    config.node.discv4 = true;
    config.node.discv5 = false;
    let (c, _c_events) = spawn(config).unwrap();
    assert_eq!(
        c.register_talk_protocol(b"echo").await,
        Err(TalkFailure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        c.talk_request(&a_record, b"echo", b"?").await,
        Err(TalkFailure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        c.lookup_random_v5().await,
        Err(LookupError::NotRunning(DiscoveryVersion::V5))
    );
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
    server.abort();
}
