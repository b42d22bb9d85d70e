//! discv5 through the mio driver over real loopback sockets: a v5-only network of a few
//! nodes fills its tables and connects over RLPx; a TALKREQ goes from one application to
//! another and its answer comes back; a PING and a FINDNODE to one node are answered, and a
//! new local record is seen in the next answers; lookups, PINGs, FINDNODEs and TALKREQs on a
//! node without discv5 are refused saying so. The same scenarios as devp2p-tokio's
//! `tests/discv5.rs`, with the same names.

use std::time::{Duration, Instant};

use devp2p_core::discv5::discovery::Event as V5Event;
use devp2p_core::discv5::{RequestFailure, RequestId};
use devp2p_core::node::{DiscoveryVersion, Discv5Error, LocalRecordError, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{Enr, NodeSecretKey};
use devp2p_mio::{Discv5Failure, DriverConfig, KeySource, LookupError, RecordFailure, Runner};
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

#[test]
fn a_v5_only_network_on_loopback_fills_its_tables_and_connects() {
    const N: usize = 4;
    let mut runner = Runner::new().unwrap();
    let boot = runner.add(v5_only()).unwrap();
    let boot_record: Enr = runner.driver(boot).unwrap().local_enr().unwrap();
    for _ in 1..N {
        let mut c = v5_only();
        c.node.bootnode_records = vec![boot_record.clone()];
        runner.add(c).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut added = [false; N];
    loop {
        runner
            .turn(Some(Duration::from_millis(20)), &mut |i, _, e| {
                if let NodeEvent::Discv5(d) = &e {
                    if matches!(**d, V5Event::NodeAdded(_)) {
                        added[i] = true;
                    }
                }
            })
            .unwrap();
        let drivers = runner.drivers();
        let full = drivers.iter().all(|d| d.table_v5().len() == N - 1);
        let connected = drivers.iter().all(|d| !d.peers().is_empty());
        if full && connected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tables {:?}, peers {:?}",
            drivers
                .iter()
                .map(|d| d.table_v5().len())
                .collect::<Vec<_>>(),
            drivers.iter().map(|d| d.peers().len()).collect::<Vec<_>>()
        );
    }
    assert_eq!(added, [true; N]);
    for d in runner.drivers() {
        let stats = d.stats().node;
        assert!(stats.packets_in.is_empty(), "no discv4 datagram at all");
        assert!(stats.discv5_packets_in > 0);
        assert!(d.table().is_empty());
        assert!(d.table_v5().iter().all(|n| n.record().is_some()));
    }
    // A lookup over v5 finds the others; one over v4 is refused, naming the version.
    let target = runner.driver(3).unwrap().local_id();
    let id = runner.driver_mut(1).unwrap().lookup_v5(&target).unwrap();
    assert_eq!(
        runner.driver_mut(1).unwrap().lookup_random(),
        Err(LookupError::NotRunning(DiscoveryVersion::V4))
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = None;
    while found.is_none() {
        assert!(Instant::now() < deadline, "the lookup did not end");
        runner
            .turn(Some(Duration::from_millis(20)), &mut |i, _, e| {
                if let NodeEvent::Discv5(d) = &e {
                    if let V5Event::LookupFinished { id: got, nodes, .. } = &**d {
                        if i == 1 && *got == id {
                            found = Some(nodes.clone());
                        }
                    }
                }
            })
            .unwrap();
    }
    assert_eq!(found.unwrap().first().map(|n| n.id()), Some(target));
}

#[test]
fn a_talk_request_is_answered_by_the_other_application() {
    let mut runner = Runner::new().unwrap();
    let a = runner.add(v5_only()).unwrap();
    let b = runner.add(v5_only()).unwrap();
    let a_record = runner.driver(a).unwrap().local_enr().unwrap();
    runner
        .driver_mut(a)
        .unwrap()
        .register_talk_protocol(b"echo")
        .unwrap();
    let asked = runner
        .driver_mut(b)
        .unwrap()
        .talk_request(&a_record, b"echo", b"hello")
        .unwrap();
    let unknown = runner
        .driver_mut(b)
        .unwrap()
        .talk_request(&a_record, b"nobody", b"?")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answers = Vec::new();
    while answers.len() < 2 {
        assert!(Instant::now() < deadline, "answers so far: {answers:?}");
        runner
            .turn(Some(Duration::from_millis(20)), &mut |i, d, e| {
                let NodeEvent::Discv5(v5) = e else { return };
                match *v5 {
                    V5Event::TalkRequest {
                        id,
                        protocol,
                        request,
                        ..
                    } if i == a => {
                        assert_eq!(protocol, b"echo");
                        let mut reply = b"echo: ".to_vec();
                        reply.extend_from_slice(&request);
                        d.answer_talk(id, &reply).unwrap();
                        assert_eq!(
                            d.answer_talk(id, b"twice"),
                            Err(Discv5Failure::Refused(Discv5Error::Talk(
                                devp2p_core::discv5::discovery::TalkError::UnknownRequest
                            )))
                        );
                    }
                    V5Event::TalkResponse { id, result, .. } if i == b => {
                        answers.push((id, result))
                    }
                    _ => {}
                }
            })
            .unwrap();
    }
    assert!(answers.contains(&(asked, Ok(b"echo: hello".to_vec()))));
    assert!(answers.contains(&(unknown, Ok(Vec::new()))));

    // A node without discv5 says so.
    let mut config = v5_only();
    config.node.discv4 = true;
    config.node.discv5 = false;
    let c = runner.add(config).unwrap();
    let d = runner.driver_mut(c).unwrap();
    assert_eq!(
        d.register_talk_protocol(b"echo"),
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        d.talk_request(&a_record, b"echo", b"?"),
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        d.lookup_random_v5(),
        Err(LookupError::NotRunning(DiscoveryVersion::V5))
    );
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

/// Turns the runner until node `i` reports how its discv5 request `id` ended.
fn answer_to(runner: &mut Runner, i: usize, id: RequestId) -> V5Event {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = None;
    while answer.is_none() {
        assert!(Instant::now() < deadline, "request {id:?} never ended");
        runner
            .turn(Some(Duration::from_millis(20)), &mut |node, _, e| {
                let NodeEvent::Discv5(v5) = e else { return };
                let ended = match &*v5 {
                    V5Event::PingResponse { id: got, .. }
                    | V5Event::FindNodeResponse { id: got, .. }
                    | V5Event::TalkResponse { id: got, .. } => *got == id,
                    _ => false,
                };
                if node == i && ended {
                    answer = Some(*v5);
                }
            })
            .unwrap();
    }
    answer.unwrap()
}

#[test]
fn a_ping_and_a_findnode_to_one_node_are_answered_and_a_new_record_is_seen() {
    let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(21));
    let mut runner = Runner::new().unwrap();
    let mut config = v5_only();
    config.key = KeySource::Secret(key.clone());
    let a = runner.add(config).unwrap();
    let a_record = runner.driver(a).unwrap().local_enr().unwrap();
    let mut config = v5_only();
    config.node.bootnode_records = vec![a_record.clone()];
    let c = runner.add(config).unwrap();
    let b = runner.add(v5_only()).unwrap();
    let (a_id, c_id) = {
        let d = |i| runner.driver(i).unwrap().local_id();
        (d(a), d(c))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !runner
        .driver(a)
        .unwrap()
        .table_v5()
        .iter()
        .any(|n| n.id() == c_id)
    {
        assert!(Instant::now() < deadline, "c never entered a's table");
        runner
            .turn(Some(Duration::from_millis(20)), &mut |_, _, _| {})
            .unwrap();
    }
    let ask =
        |runner: &mut Runner,
         send: &dyn Fn(&mut devp2p_mio::Driver) -> Result<RequestId, Discv5Failure>| {
            let id = send(runner.driver_mut(b).unwrap()).unwrap();
            answer_to(runner, b, id)
        };

    // PING: a's seq, and b's address as a saw it.
    let V5Event::PingResponse { result, .. } = ask(&mut runner, &|d| d.ping_v5(&a_record)) else {
        unreachable!()
    };
    let pong = result.unwrap();
    assert_eq!(pong.enr_seq, a_record.seq());
    assert_eq!(
        pong.recipient(),
        Some(runner.driver(b).unwrap().listen_addr())
    );
    // FINDNODE [0, d]: a's own record, and c (at distance d from a), as c signed it.
    let d = u64::from(a_id.log_distance(&c_id));
    let V5Event::FindNodeResponse { result, .. } =
        ask(&mut runner, &|dr| dr.find_node_v5(&a_record, &[0, d]))
    else {
        unreachable!()
    };
    let nodes = result.unwrap();
    let c_record = runner.driver(c).unwrap().local_enr().unwrap();
    assert!(nodes.records.contains(&a_record), "{nodes:?}");
    assert!(nodes.records.contains(&c_record), "{nodes:?}");
    assert_eq!((nodes.messages, nodes.rejected), (nodes.total, 0));

    // A new record: taken, and seen in the next PONG and FINDNODE [0].
    let next = a_record
        .to_builder()
        .seq(a_record.seq() + 1)
        .raw(b"app", b"\x83v02")
        .unwrap()
        .sign(&key)
        .unwrap();
    let node_a = runner.driver_mut(a).unwrap();
    node_a.set_local_record(&next).unwrap();
    assert_eq!(node_a.local_enr(), Some(next.clone()));
    assert_eq!(
        node_a.set_local_record(&a_record),
        Err(RecordFailure::Refused(LocalRecordError::NotNewer {
            seq: a_record.seq(),
            current: next.seq()
        }))
    );
    assert_eq!(
        node_a.set_local_record(&c_record),
        Err(RecordFailure::Refused(LocalRecordError::NotOurs {
            signer: c_id
        }))
    );
    let V5Event::PingResponse { result, .. } = ask(&mut runner, &|d| d.ping_v5(&a_record)) else {
        unreachable!()
    };
    assert_eq!(result.unwrap().enr_seq, next.seq());
    let V5Event::FindNodeResponse { result, .. } =
        ask(&mut runner, &|d| d.find_node_v5(&a_record, &[0]))
    else {
        unreachable!()
    };
    assert_eq!(result.unwrap().records, vec![next]);

    // Nobody there: the requests time out (700 ms, one resend).
    let gone = record_of_nobody(22);
    let V5Event::PingResponse { result, .. } = ask(&mut runner, &|d| d.ping_v5(&gone)) else {
        unreachable!()
    };
    assert_eq!(result, Err(RequestFailure::Timeout));
    let V5Event::FindNodeResponse { result, .. } =
        ask(&mut runner, &|d| d.find_node_v5(&gone, &[0]))
    else {
        unreachable!()
    };
    assert_eq!(result, Err(RequestFailure::Timeout));

    // A node without discv5 says so.
    let mut config = v5_only();
    config.node.discv4 = true;
    config.node.discv5 = false;
    let v4 = runner.add(config).unwrap();
    let d = runner.driver_mut(v4).unwrap();
    assert_eq!(
        d.ping_v5(&a_record),
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        d.find_node_v5(&a_record, &[0]),
        Err(Discv5Failure::Refused(Discv5Error::NotRunning))
    );
}
