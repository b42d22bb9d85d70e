//! Faults and hostile peers on real sockets (127.0.0.1), each against devp2p-tokio and
//! devp2p-mio.

#[path = "../harness/e2e/mod.rs"]
mod e2e;
#[path = "../harness/raw.rs"]
mod raw;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devp2p_core::discv4::Node as DiscNode;
use devp2p_core::node::{HandshakeOutcome, NodeEvent, DEFAULT_MAX_PENDING_PEERS};
use devp2p_core::session::{
    Capability, ProtocolId, SendError, SessionError, TimeoutKind, CONTROL_RESERVE,
};
use devp2p_core::{Enode, NodeId};
use devp2p_mio::common::{DriverConfig, NodeDbFile};
use devp2p_mio::SendFailure;
use e2e::{local_config, temp_dir, test_protocol, wait_for, Harness, MioHarness, TokioHarness};

/// Longest wait for anything that takes milliseconds when all is well.
const WAIT: Duration = Duration::from_secs(10);

fn added(h: &impl Harness, i: usize, peer: NodeId) -> bool {
    h.log().with(i, |ev| {
        ev.iter()
            .any(|e| matches!(e, NodeEvent::PeerAdded(p) if p.id == peer))
    })
}

fn removed(h: &impl Harness, i: usize, peer: NodeId) -> Option<Option<SessionError>> {
    h.log().with(i, |ev| {
        ev.iter().find_map(|e| match e {
            NodeEvent::PeerRemoved { id, error, .. } if *id == peer => Some(error.clone()),
            _ => None,
        })
    })
}

fn received(h: &impl Harness, i: usize, from: NodeId, code: u64, payload: &[u8]) -> bool {
    h.log().with(i, |ev| {
        ev.iter().any(|e| {
            matches!(e, NodeEvent::Message { peer, code: c, payload: p, .. }
                if *peer == from && *c == code && p == payload)
        })
    })
}

/// The capability the raw peers offer: the test sub-protocol's.
fn caps() -> Vec<Capability> {
    vec![test_protocol().capability()]
}

/// Starts the node under test with `config` and a legitimate peer that dials it; returns
/// (node, peer) once both ends have added each other.
fn with_legitimate_peer(h: &mut impl Harness, config: DriverConfig) -> (usize, usize) {
    let t = h.start(config);
    let l = h.start(local_config(false));
    h.add_static(l, h.enode(t)).expect("a dialable static peer");
    let (idt, idl) = (h.id(t), h.id(l));
    wait_for("the legitimate peer to connect", WAIT, || {
        added(h, t, idl) && added(h, l, idt)
    });
    (t, l)
}

/// The legitimate peer and the node exchange one message each way, tagged `round`; the peer
/// was never dropped.
fn legitimate_exchange(h: &mut impl Harness, t: usize, l: usize, round: u64) {
    let (idt, idl) = (h.id(t), h.id(l));
    let tag = round.to_be_bytes().to_vec();
    h.send(l, idt, ProtocolId::new(0), 1, tag.clone())
        .unwrap_or_else(|e| panic!("{}: legitimate send, round {round}: {e}", h.driver()));
    h.send(t, idl, ProtocolId::new(0), 2, tag.clone())
        .unwrap_or_else(|e| panic!("{}: reply, round {round}: {e}", h.driver()));
    wait_for(
        &format!("the legitimate exchange of round {round} ({})", h.driver()),
        WAIT,
        || received(h, t, idl, 1, &tag) && received(h, l, idt, 2, &tag),
    );
    assert_eq!(
        removed(h, t, idl),
        None,
        "{}: the legitimate peer was dropped",
        h.driver()
    );
}

/// 200 connections that open and send nothing do not keep a legitimate peer from completing
/// its handshake within 3 s.
fn idle_connections_do_not_block_a_legitimate_peer(h: &mut impl Harness) {
    const IDLE: usize = 200;
    const LIMIT: Duration = Duration::from_secs(3);
    let t = h.start(local_config(false));
    let addr = h.enode(t).tcp_addr().expect("an address");
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| raw::connect(addr, WAIT).unwrap_or_else(|e| panic!("idle connection {i}: {e}")))
        .collect();
    let legit = h.start(local_config(false));
    let (idt, idl) = (h.id(t), h.id(legit));
    let start = Instant::now();
    h.add_static(legit, h.enode(t))
        .expect("a dialable static peer");
    wait_for(
        &format!(
            "the legitimate peer's handshake past {IDLE} idle connections ({})",
            h.driver()
        ),
        WAIT,
        || added(h, t, idl) && added(h, legit, idt),
    );
    let took = start.elapsed();
    let stats = h.stats(t).node;
    eprintln!(
        "{}: handshake past {IDLE} idle connections in {took:?}; {:?} {:?}",
        h.driver(),
        stats.handshakes,
        stats.refused
    );
    assert!(
        took < LIMIT,
        "{}: the legitimate handshake took {took:?} (limit {LIMIT:?})",
        h.driver()
    );
    // The idle connections did fill every pending slot: the newer ones displaced the older.
    let displaced = stats
        .handshakes
        .get(&HandshakeOutcome::Displaced)
        .copied()
        .unwrap_or(0);
    assert!(
        displaced >= (IDLE - DEFAULT_MAX_PENDING_PEERS) as u64,
        "{}: only {displaced} displaced",
        h.driver()
    );
    drop(idle);
}

/// Flood datagrams the node has dropped (each is dropped exactly once, with its reason).
/// Datagrams the node dropped, by either discovery version (on a socket running both, what
/// discv4 cannot read goes to discv5, which drops what is not discv5 either).
fn dropped(h: &mut impl Harness, i: usize) -> u64 {
    let s = h.stats(i).node;
    s.packets_dropped.values().sum::<u64>() + s.discv5_packets_dropped.values().sum::<u64>()
}

fn datagrams_out(h: &mut impl Harness, i: usize) -> u64 {
    let s = h.stats(i).node;
    s.packets_out.values().sum::<u64>() + s.discv5_packets_out
}

/// Size of the flood: the 100,000 unless `DEVP2P_FLOOD_DATAGRAMS` says otherwise.
fn flood_size() -> u64 {
    std::env::var("DEVP2P_FLOOD_DATAGRAMS")
        .ok()
        .map(|v| v.parse().expect("DEVP2P_FLOOD_DATAGRAMS: a number"))
        .unwrap_or(100_000)
}

/// A flood of 100,000 malformed and unsolicited datagrams (see [`raw::Flood`]) leaves the
/// discovery table unchanged, draws no answer, and the node still answers a valid Ping.
///
/// The flood goes out in batches small enough for the node's socket buffer; after each the
/// test waits until the node has dropped them (its drop counters), so every datagram counted
/// here was read and judged by the node, not lost in the kernel. Should the kernel drop some
/// anyway, more are sent until the node has judged the full number.
fn datagram_flood_leaves_the_table_unchanged(h: &mut impl Harness) {
    const BATCH: u64 = 64;
    const LIMIT: Duration = Duration::from_secs(60);
    let total = flood_size();
    let boot = h.start(local_config(true));
    let mut c = local_config(true);
    c.node.bootnodes = vec![h.enode(boot)];
    let t = h.start(c);
    let boot_id = h.id(boot);
    wait_for("the node to bond with its bootnode", WAIT, || {
        h.table(t).contains(&boot_id)
    });
    let mut before = h.table(t);
    before.sort();
    let target = h.enode(t).udp_addr().expect("an address");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let mut flood = raw::Flood::new(sock.local_addr().expect("bound"), target);
    let base = dropped(h, t);
    let out_before = datagrams_out(h, t);
    let start = Instant::now();
    let (mut sent, mut judged) = (0u64, 0u64);
    while judged < total {
        let batch = (total - judged).min(BATCH);
        for _ in 0..batch {
            sock.send_to(&flood.next_datagram(), target)
                .expect("sending on loopback");
        }
        sent += batch;
        let goal = judged + batch;
        let mut last = (judged, Instant::now());
        while judged < goal {
            assert!(
                start.elapsed() < LIMIT,
                "{}: {judged} of {total} datagrams judged after {LIMIT:?}",
                h.driver()
            );
            std::thread::sleep(Duration::from_micros(500));
            judged = dropped(h, t) - base;
            if judged > last.0 {
                last = (judged, Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(100) {
                break; // the kernel dropped the rest of this batch: send more
            }
        }
    }
    let took = start.elapsed();
    // Nothing in the flood deserves an answer: not one datagram came back to its source.
    sock.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0u8; 2048];
    if let Ok((n, from)) = sock.recv_from(&mut buf) {
        panic!(
            "{}: the flood drew a {n}-byte answer from {from}",
            h.driver()
        );
    }
    sock.set_nonblocking(false).expect("blocking");
    let out = datagrams_out(h, t) - out_before;
    let mut after = h.table(t);
    after.sort();
    let stats = h.stats(t).node;
    eprintln!(
        "{}: {judged} flood datagrams judged ({sent} sent) in {took:?} ({:.0}/s); the node's own traffic meanwhile: {out} datagrams out; drops {:?}",
        h.driver(),
        judged as f64 / took.as_secs_f64(),
        (stats.packets_dropped, stats.discv5_packets_dropped)
    );
    assert_eq!(after, before, "{}: the table changed", h.driver());
    raw::discv4_ping(&sock, &h.enode(t), WAIT)
        .unwrap_or_else(|e| panic!("{}: after the flood: {e}", h.driver()));
}

/// Connections reset (RST) halfway through the auth message, and sessions reset halfway
/// through a message frame: the node counts each as lost, keeps nothing of them, and its
/// legitimate peer keeps exchanging messages throughout.
fn resets_mid_handshake_and_mid_frame(h: &mut impl Harness) {
    const RESETS: usize = 25;
    let (t, l) = with_legitimate_peer(h, local_config(false));
    let target = h.enode(t);
    let addr = target.tcp_addr().expect("an address");
    let mut raw_ids = Vec::new();
    for i in 0..RESETS {
        let mut s = raw::connect(addr, WAIT).expect("connecting");
        let auth = raw::auth_message(&target.public_key);
        s.write_all(&auth[..auth.len() / 2]).expect("half an auth");
        raw::reset(s);

        let mut rs = raw::RawSession::open(&target, &caps(), WAIT)
            .unwrap_or_else(|e| panic!("{}: raw session {i}: {e}", h.driver()));
        raw_ids.push(rs.key.id());
        let frame = rs.frame(raw::SUBPROTOCOL_OFFSET, &[0xab; 1024]);
        rs.stream
            .write_all(&frame[..frame.len() / 2])
            .expect("half a frame");
        raw::reset(rs.stream);
        if i % 5 == 0 {
            legitimate_exchange(h, t, l, i as u64);
        }
    }
    wait_for(
        &format!("the node to count every reset ({})", h.driver()),
        WAIT,
        || {
            let lost = h
                .stats(t)
                .node
                .handshakes
                .get(&HandshakeOutcome::ConnectionLost)
                .copied();
            lost == Some(RESETS as u64) && raw_ids.iter().all(|id| removed(h, t, *id).is_some())
        },
    );
    for id in &raw_ids {
        assert_eq!(
            removed(h, t, *id),
            Some(Some(SessionError::ConnectionClosed)),
            "{}",
            h.driver()
        );
    }
    let peers: Vec<NodeId> = h.peers(t).into_iter().map(|p| p.id).collect();
    assert_eq!(
        peers,
        vec![h.id(l)],
        "{}: only the legitimate peer is left",
        h.driver()
    );
    legitimate_exchange(h, t, l, u64::MAX);
}

/// A peer that completes its handshake and then never reads: what the node queues for it is
/// capped by the session's outbound limit (sends beyond it are refused, not buffered), the
/// write timeout drops it, and the legitimate peer is unaffected.
fn a_peer_that_stops_reading_costs_at_most_its_queue(h: &mut impl Harness) {
    const LIMIT: usize = 1024 * 1024;
    const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
    let mut c = local_config(false);
    c.node.session.max_outbound_queue = LIMIT;
    c.node.session.write_timeout = WRITE_TIMEOUT;
    let (t, l) = with_legitimate_peer(h, c);
    let stalled = raw::RawSession::open(&h.enode(t), &caps(), WAIT)
        .unwrap_or_else(|e| panic!("{}: raw session: {e}", h.driver()));
    let sid = stalled.key.id();
    wait_for("the stalled peer to be added", WAIT, || added(h, t, sid));
    assert!(h.peers(t).iter().any(|p| p.id == sid), "a peer");
    // Random bytes do not compress: each message costs its full size.
    let payload = e2e::scenarios::incompressible(64 * 1024, 0);
    // The kernel's buffers on both ends take a few MB first; then the queue fills. A queue
    // can be full for a moment before the driver has written (tokio writes after its turn's
    // commands), so full means: still full after a few pauses.
    let start = Instant::now();
    let mut sent = 0usize;
    let mut full_streak = 0;
    let (queued, limit) = loop {
        assert!(
            sent < 4096,
            "{}: 256 MiB taken without a full queue",
            h.driver()
        );
        let p = payload.clone();
        match h.try_send(t, sid, ProtocolId::new(0), 3, p) {
            Ok(()) => {
                sent += 1;
                full_streak = 0;
            }
            Err(SendFailure::Refused(SendError::QueueFull { queued, limit, .. })) => {
                full_streak += 1;
                if full_streak >= 3 {
                    break (queued, limit);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{}: send to the stalled peer: {e}", h.driver()),
        }
    };
    let outbound = h.queued(t, sid);
    eprintln!(
        "{}: {sent} messages of 64 KiB accepted for a peer that does not read, then the queue was full ({queued} of {limit} bytes) after {:?}",
        h.driver(),
        start.elapsed()
    );
    assert_eq!(limit, LIMIT - CONTROL_RESERVE);
    assert!(
        queued <= LIMIT && outbound <= LIMIT,
        "{queued} / {outbound} bytes queued"
    );
    legitimate_exchange(h, t, l, 1);
    wait_for(
        &format!(
            "the write timeout to drop the stalled peer ({})",
            h.driver()
        ),
        WRITE_TIMEOUT + WAIT,
        || removed(h, t, sid).is_some(),
    );
    assert_eq!(
        removed(h, t, sid),
        Some(Some(SessionError::Timeout(TimeoutKind::Write))),
        "{}",
        h.driver()
    );
    assert_eq!(h.queued(t, sid), 0);
    legitimate_exchange(h, t, l, 2);
    drop(stalled);
}

/// A peer that sends 10,000 Pings in one burst gets 10,000 Pongs, stays connected, leaves
/// nothing queued, and the legitimate peer is unaffected.
fn ten_thousand_pings_are_each_answered(h: &mut impl Harness) {
    const PINGS: usize = 10_000;
    let (t, l) = with_legitimate_peer(h, local_config(false));
    let mut rs = raw::RawSession::open(&h.enode(t), &caps(), WAIT)
        .unwrap_or_else(|e| panic!("{}: raw session: {e}", h.driver()));
    let rid = rs.key.id();
    wait_for("the pinging peer to be added", WAIT, || added(h, t, rid));
    let start = Instant::now();
    let mut burst = Vec::new();
    for _ in 0..PINGS {
        burst.extend(rs.frame(raw::PING, &[0xc0]));
    }
    rs.stream.write_all(&burst).expect("writing the Pings");
    let mut pongs = 0;
    while pongs < PINGS {
        let (id, _) = rs
            .read_message(WAIT)
            .unwrap_or_else(|e| panic!("{}: after {pongs} Pongs: {e}", h.driver()));
        match id {
            raw::PONG => pongs += 1,
            raw::PING => {} // the node's own keepalive
            other => panic!("{}: message {other:#x} among the Pongs", h.driver()),
        }
    }
    eprintln!(
        "{}: {PINGS} Pings ({} bytes) answered in {:?}",
        h.driver(),
        burst.len(),
        start.elapsed()
    );
    legitimate_exchange(h, t, l, 1);
    let peer = h.peers(t).into_iter().find(|p| p.id == rid);
    assert_eq!(peer.expect("the pinging peer is still connected").queued, 0);
}

/// Set in the child process of [`a_killed_node_restarts_seeded_from_its_database`]: the data
/// directory and the bootnode, separated by `|`.
const KILL_CHILD: &str = "DEVP2P_FAULTS_KILL_CHILD";
/// How often the child saves its node database.
const CHILD_SAVE_INTERVAL: Duration = Duration::from_millis(200);
/// The child ends itself (with a failure) if nobody kills it by then.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// Longest wait for discovery on loopback (bonding takes well under a second).
const DISCOVERY_WAIT: Duration = Duration::from_secs(20);

/// The child process: a node through the driver under test with a data directory, saving its
/// database every [`CHILD_SAVE_INTERVAL`]; it prints its enode and waits to be killed.
fn killable_node(h: &mut impl Harness, spec: &str) {
    let (dir, boot) = spec.split_once('|').expect("<dir>|<bootnode>");
    let mut c = local_config(true);
    c.data_dir = Some(dir.into());
    c.node.bootnodes = vec![boot.parse().expect("the bootnode's enode")];
    c.db_save_interval = Some(CHILD_SAVE_INTERVAL);
    let i = h.start(c);
    println!("child-enode {}", h.enode(i));
    std::io::stdout().flush().expect("stdout");
    std::thread::sleep(CHILD_LIFETIME);
    panic!("the child node was not killed within {CHILD_LIFETIME:?}");
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node killed with SIGKILL and restarted with its data directory comes back with its key
/// and with its table seeded from the database it saved while running.
///
/// The node runs in a child process: this test binary again, running only this test with
/// [`KILL_CHILD`] set, which starts the node through the same driver and data-directory code
/// as `devp2p node --datadir` (the command line adds only argument parsing) and never shuts
/// it down. The parent waits until the child's saved database records its bond with the
/// bootnode, then SIGKILLs it: no shutdown, no final save. The file left behind must load
/// whole. As in the clean-restart scenario, the bootnode is promoted to a seed in the file
/// (the core keeps a node as a seed only after minutes of revalidations); the restarted
/// node, given no bootnodes, must find it in its table.
fn a_killed_node_restarts_seeded_from_its_database(h: &mut impl Harness) {
    if let Ok(spec) = std::env::var(KILL_CHILD) {
        return killable_node(h, &spec);
    }
    let dir = temp_dir(&format!("killed-{}", h.driver()));
    let boot = h.start(local_config(true));
    let boot_enode = h.enode(boot);
    let boot_id = h.id(boot);
    let test = format!(
        "a_killed_node_restarts_seeded_from_its_database::{}",
        h.driver()
    );
    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD, format!("{}|{boot_enode}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the child node");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest's "test <name> ... " may precede it on the same line.
            if let Some((_, e)) = line.split_once("child-enode ") {
                let _ = tx.send(e.trim().to_string());
            }
        }
    });
    let child_enode: Enode = rx
        .recv_timeout(WAIT)
        .expect("the child node's enode")
        .parse()
        .expect("an enode");
    let db = NodeDbFile::in_dir(&dir);
    wait_for(
        &format!(
            "the child's saved database to record its bond with the bootnode ({})",
            h.driver()
        ),
        DISCOVERY_WAIT,
        || {
            matches!(db.try_load(), Ok(Some((snap, _)))
                if snap.endpoints.iter().any(|e| e.id == boot_id && e.record.last_pong_received > 0))
        },
    );
    child.0.kill().expect("SIGKILL");
    let status = child.0.wait().expect("the child's status");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    #[cfg(not(unix))]
    assert!(!status.success());

    let (mut snap, skipped) = db
        .try_load()
        .expect("the database a killed node left loads")
        .expect("it exists");
    assert_eq!(skipped, 0);
    let bond = snap
        .endpoints
        .iter()
        .find(|e| e.id == boot_id)
        .expect("the bond survived the kill")
        .record;
    if !snap.nodes.iter().any(|n| n.id() == boot_id) {
        let ip = boot_enode.ip().expect("an IP");
        snap.nodes.push(DiscNode::new(
            boot_enode.public_key,
            ip,
            boot_enode.udp_port,
            boot_enode.tcp_port,
        ));
        db.save(&snap, bond.last_pong_received)
            .expect("rewriting the database");
    }

    let mut c = local_config(true);
    c.data_dir = Some(dir.clone());
    let again = h.start(c);
    assert_eq!(
        h.id(again),
        child_enode.id(),
        "the key is kept in the data directory"
    );
    wait_for(
        &format!(
            "the restarted node's table to hold the bootnode from its database ({})",
            h.driver()
        ),
        DISCOVERY_WAIT,
        || h.table(again).contains(&boot_id),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! both_drivers {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;

                #[test]
                fn tokio() {
                    super::$scenario(&mut TokioHarness::new());
                }

                #[test]
                fn mio() {
                    super::$scenario(&mut MioHarness::new());
                }
            }
        )*
    };
}

both_drivers!(
    idle_connections_do_not_block_a_legitimate_peer,
    datagram_flood_leaves_the_table_unchanged,
    resets_mid_handshake_and_mid_frame,
    a_peer_that_stops_reading_costs_at_most_its_queue,
    ten_thousand_pings_are_each_answered,
    a_killed_node_restarts_seeded_from_its_database,
);
