//! Two nodes on 127.0.0.1 in one mio Runner: a static dial, one message, and a graceful
//! shutdown seen by the other side as ClientQuitting.

use std::time::{Duration, Instant};

use devp2p_core::node::NodeEvent;
use devp2p_core::session::{DisconnectReason, Protocol, ProtocolId, Side};
use devp2p_mio::{DriverConfig, Runner};

fn config() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new("smoke", 1, 2)];
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.no_discovery = true;
    config
}

#[test]
fn a_static_peer_connects_exchanges_a_message_and_hears_client_quitting() {
    let mut runner = Runner::new().unwrap();
    let a = runner.add(config()).unwrap();
    let b = runner.add(config()).unwrap();
    let a_enode = runner.driver(a).unwrap().local_enode();
    runner.driver_mut(b).unwrap().add_static(&a_enode).unwrap();
    let mut log: Vec<(usize, NodeEvent)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = false;
    let mut shut = false;
    loop {
        assert!(Instant::now() < deadline, "timed out: {log:?}");
        runner
            .turn(Some(Duration::from_millis(50)), &mut |i, d, e| {
                if let (true, NodeEvent::PeerAdded(p)) = (i == b && !sent, &e) {
                    d.send(&p.id, ProtocolId::new(0), 1, b"ping").unwrap();
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
            runner.driver_mut(a).unwrap().shutdown();
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

/// The contract an application relies on with mio: a send refused for a full queue is
/// followed by a `Writable` event for that peer, and a send then succeeds; nobody polls.
/// Two messages of the largest always-accepted size: the queue holds one at a time.
#[test]
fn a_full_queue_is_announced_writable_and_two_maximal_messages_arrive() {
    use devp2p_core::rlpx::MAX_MESSAGE_SIZE;
    use devp2p_core::session::SendError;
    use devp2p_mio::SendFailure;

    let mut runner = Runner::new().unwrap();
    let a = runner.add(config()).unwrap();
    let b = runner.add(config()).unwrap();
    let a_enode = runner.driver(a).unwrap().local_enode();
    runner.driver_mut(b).unwrap().add_static(&a_enode).unwrap();
    let p = ProtocolId::new(0);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..MAX_MESSAGE_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (mut sent, mut refused, mut writable, mut got) = (0, 0, 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut connected = false;
    while got.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "sent {sent}, refused {refused}, writable {writable}, got {}",
            got.len()
        );
        let mut resend = false;
        runner
            .turn(Some(Duration::from_millis(50)), &mut |i, _, e| match e {
                NodeEvent::PeerAdded(_) if i == b => connected = true,
                NodeEvent::Writable { peer } if i == b && peer == a_enode.id() => {
                    writable += 1;
                    resend = true;
                }
                NodeEvent::Message { payload, .. } if i == a => got.push(payload),
                _ => {}
            })
            .unwrap();
        // Send on connecting, and again only when told the peer is writable.
        if (connected && sent == 0 && refused == 0) || resend {
            let d = runner.driver_mut(b).unwrap();
            while sent < 2 {
                match d.send(&a_enode.id(), p, 1, &big) {
                    Ok(()) => sent += 1,
                    Err(SendFailure::Refused(SendError::QueueFull { needed, .. })) => {
                        assert!(needed > MAX_MESSAGE_SIZE);
                        refused += 1;
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    assert_eq!((sent, refused, writable), (2, 1, 1));
    assert!(got.iter().all(|m| *m == big), "altered");
}

/// A bootnode discovery could never reach is refused at start, naming it, as geth does.
#[test]
fn a_bootnode_without_an_ip_address_is_refused_at_start() {
    let mut c = config();
    c.node.no_discovery = false;
    let key = "enode://a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c";
    c.node.bootnodes = vec![format!("{key}@boot.example:30303").parse().unwrap()];
    let poll = mio::Poll::new().unwrap();
    let e = devp2p_mio::Driver::new(poll.registry(), 0..10, c)
        .err()
        .expect("refused");
    assert!(matches!(e, devp2p_mio::StartError::Bootnode { .. }), "{e}");
    assert!(e.to_string().contains("boot.example"), "{e}");
}

/// A driver whose shutdown has finished closes its TCP listener and UDP socket, though the
/// Runner keeps it: connecting to its old port is refused (before, the kernel still
/// accepted connections nobody served), and a node restarted on the same port in the same
/// Runner starts (before: "Address already in use" for TCP).
#[test]
fn a_finished_driver_frees_its_ports_for_a_restart_in_the_same_runner() {
    let mut runner = Runner::new().unwrap();
    let mut c = config();
    c.node.no_discovery = false;
    let a = runner.add(c.clone()).unwrap();
    let addr = runner.driver(a).unwrap().listen_addr();
    runner.driver_mut(a).unwrap().shutdown();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !runner.driver(a).unwrap().is_finished() {
        assert!(Instant::now() < deadline, "the shutdown did not finish");
        runner
            .turn(Some(Duration::from_millis(20)), &mut |_, _, _| {})
            .unwrap();
    }
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "something still listens on {addr}");
    c.node.listen = addr;
    let b = runner
        .add(c)
        .expect("the same TCP and UDP port, free again");
    assert_eq!(runner.driver(b).unwrap().listen_addr(), addr);
}
