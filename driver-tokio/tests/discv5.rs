//! discv5 through the tokio driver over real loopback sockets: a v5-only network of a few
//! nodes fills its tables and connects over RLPx; a TALKREQ goes from one application to
//! another and its answer comes back; a PING and a FINDNODE to one node are answered, and a
//! new local record is seen in the next answers; what a node without discv5 cannot do is
//! refused saying so. The same scenarios as devp2p-mio's `tests/discv5.rs`, with the same names.

use std::time::{Duration, Instant};

use devp2p_core::discv5::discovery::{Event as V5Event, TalkError};
use devp2p_core::discv5::RequestFailure;
use devp2p_core::node::{DiscoveryVersion, Discv5Error, LocalRecordError, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{Enr, NodeSecretKey};
use devp2p_tokio::{
    spawn, Discv5Failure, DriverConfig, EventStream, KeySource, LookupError, NodeHandle,
    RecordFailure,
};
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

/// How long a scenario may take to get where it should be: it takes about 2 s here; the rest
/// is slack for a loaded machine (CI once timed the 4-node network out at 30 s, with nothing
/// to say why: the timeout now reports each node's table, peers and sessions).
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

/// Takes events off every stream until `done` says the network is where it should be.
async fn wait_until(
    nodes: &[NodeHandle],
    streams: &mut [EventStream],
    mut done: impl AsyncFnMut(&[NodeHandle]) -> bool,
) {
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        for s in streams.iter_mut() {
            while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), s.recv()).await {
            }
        }
        if done(nodes).await {
            return;
        }
        if Instant::now() >= deadline {
            // Say where each node got to, so that a failure can be read without a rerun.
            let mut state = Vec::new();
            for n in nodes {
                let stats = n.stats().await.unwrap().node;
                state.push(format!(
                    "{}: v5 table {}, peers {}, v5 sessions {}, v5 packets in {}",
                    n.local_enr().unwrap().node_id(),
                    n.table_v5().await.unwrap().len(),
                    n.peers().await.unwrap().len(),
                    stats.discv5_sessions,
                    stats.discv5_packets_in
                ));
            }
            panic!("timed out after {CONVERGE_WITHIN:?}:\n{}", state.join("\n"));
        }
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
                    Err(Discv5Failure::Refused(Discv5Error::Talk(
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
    let gone = record_of_nobody(9);
    assert_eq!(
        b.talk_request(&gone, b"echo", b"?").await,
        Err(Discv5Failure::Failed(RequestFailure::Timeout))
    );

    // A node without discv5 says so.
    let mut config = v5_only();
    config.node.discv4 = true;
    config.node.discv5 = false;
    let (c, _c_events) = spawn(config).unwrap();
    assert_eq!(
        c.register_talk_protocol(b"echo").await,
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        c.talk_request(&a_record, b"echo", b"?").await,
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
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

/// A record for a node nobody runs, at a UDP port nobody listens on.
fn record_of_nobody(seed: u64) -> Enr {
    let nobody = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(seed));
    let free_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Enr::builder()
        .ip("127.0.0.1".parse().unwrap())
        .udp4(free_port)
        .sign(&nobody)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_and_a_findnode_to_one_node_are_answered_and_a_new_record_is_seen() {
    let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(21));
    let mut config = v5_only();
    config.key = KeySource::Secret(key.clone());
    let (a, _a_events) = spawn(config).unwrap();
    let a_record = a.local_enr().unwrap();
    let mut config = v5_only();
    config.node.bootnode_records = vec![a_record.clone()];
    let (c, _c_events) = spawn(config).unwrap();
    let (b, _b_events) = spawn(v5_only()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a
        .table_v5()
        .await
        .unwrap()
        .iter()
        .any(|n| n.id() == c.local_id())
    {
        assert!(Instant::now() < deadline, "c never entered a's table");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // PING: a's seq, and b's address as a saw it.
    let pong = b.ping_v5(&a_record).await.unwrap();
    assert_eq!(pong.enr_seq, a_record.seq());
    assert_eq!(pong.recipient(), Some(b.listen_addr()));
    // FINDNODE [0, d]: a's own record, and c (at distance d from a), as c signed it.
    let d = u64::from(a.local_id().log_distance(&c.local_id()));
    let nodes = b.find_node_v5(&a_record, &[0, d]).await.unwrap();
    assert!(nodes.records.contains(&a_record), "{nodes:?}");
    assert!(nodes.records.contains(&c.local_enr().unwrap()), "{nodes:?}");
    assert_eq!((nodes.messages, nodes.rejected), (nodes.total, 0));

    // A new record: taken, and seen in the next PONG and FINDNODE [0].
    let next = a_record
        .to_builder()
        .seq(a_record.seq() + 1)
        .raw(b"app", b"\x83v02")
        .unwrap()
        .sign(&key)
        .unwrap();
    a.set_local_record(&next).await.unwrap();
    assert_eq!(a.local_enr(), Some(next.clone()));
    assert_eq!(
        a.set_local_record(&a_record).await,
        Err(RecordFailure::Refused(LocalRecordError::NotNewer {
            seq: a_record.seq(),
            current: next.seq()
        }))
    );
    let foreign = b.local_enr().unwrap();
    assert_eq!(
        a.set_local_record(&foreign).await,
        Err(RecordFailure::Refused(LocalRecordError::NotOurs {
            signer: b.local_id()
        }))
    );
    assert_eq!(b.ping_v5(&a_record).await.unwrap().enr_seq, next.seq());
    let own = b.find_node_v5(&a_record, &[0]).await.unwrap();
    assert_eq!(own.records, vec![next.clone()]);

    // Nobody there: the requests time out (700 ms, one resend).
    let gone = record_of_nobody(22);
    assert_eq!(
        b.ping_v5(&gone).await,
        Err(Discv5Failure::Failed(RequestFailure::Timeout))
    );
    assert_eq!(
        b.find_node_v5(&gone, &[0]).await,
        Err(Discv5Failure::Failed(RequestFailure::Timeout))
    );
    // A node without discv5 says so.
    let mut config = v5_only();
    config.node.discv4 = true;
    config.node.discv5 = false;
    let (v4, _v4_events) = spawn(config).unwrap();
    assert_eq!(
        v4.ping_v5(&a_record).await,
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        v4.find_node_v5(&a_record, &[0]).await,
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
    for n in [&a, &b, &c, &v4] {
        n.shutdown().await.unwrap();
    }
    assert_eq!(a.ping_v5(&next).await, Err(Discv5Failure::Stopped));
}
