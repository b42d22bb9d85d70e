//! discv5 through the mio driver over real loopback sockets: a v5-only network of a few
//! nodes fills its tables and connects over RLPx; a TALKREQ goes from one application to
//! another and its answer comes back; lookups and TALKREQs on a node without discv5 are
//! refused saying so.

use std::time::{Duration, Instant};

use devp2p_core::discv5::discovery::Event as V5Event;
use devp2p_core::node::{DiscoveryVersion, Discv5Error, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::Enr;
use devp2p_mio::{DriverConfig, LookupError, Runner, TalkFailure};

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
                            Err(TalkFailure::Refused(Discv5Error::Talk(
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
        Err(TalkFailure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        d.talk_request(&a_record, b"echo", b"?"),
        Err(TalkFailure::Refused(Discv5Error::NotRunning))
    );
    assert_eq!(
        d.lookup_random_v5(),
        Err(LookupError::NotRunning(DiscoveryVersion::V5))
    );
}
