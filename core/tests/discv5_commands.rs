//! The discv5 discovery service's direct requests for applications and tools: PING and
//! FINDNODE to a node named by its record (geth `UDPv5.Ping`, `UDPv5.Findnode`), answered
//! through [`Event::PingResponse`] and [`Event::FindNodeResponse`], between in-memory nodes
//! under virtual time.

use std::net::SocketAddr;

use devp2p_core::discv4::{Node, NodeDbSnapshot};
use devp2p_core::discv5::discovery::{Config, Discovery, Event};
use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
use devp2p_core::discv5::{RequestFailure, RequestId};
use devp2p_core::{Enr, Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const UNIX: u64 = 1_700_000_000;

struct Member {
    addr: SocketAddr,
    disc: Discovery<ChaCha20Rng>,
    events: Vec<Event>,
}

/// Nodes on 127.0.0.1 whose datagrams are delivered at once; a datagram to an address nobody
/// holds is lost.
struct Net {
    members: Vec<Member>,
    now: Instant,
}

impl Net {
    fn new() -> Self {
        Net {
            members: Vec::new(),
            now: Instant::ZERO,
        }
    }

    fn add(&mut self, key: NodeSecretKey, port: u16, seq: u64, bootnodes: Vec<Node>) -> usize {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let record = Enr::builder()
            .seq(seq)
            .ip(addr.ip())
            .udp4(port)
            .sign(&key)
            .unwrap();
        let mut config = Config::default();
        config.bootnodes = bootnodes;
        let rng = ChaCha20Rng::seed_from_u64(u64::from(port));
        let disc = Discovery::new(
            key,
            record,
            config,
            NodeDbSnapshot::default(),
            rng,
            self.now,
            UNIX,
        );
        self.members.push(Member {
            addr,
            disc,
            events: Vec::new(),
        });
        self.members.len() - 1
    }

    fn record(&self, i: usize) -> Enr {
        self.members[i].disc.local_record().clone()
    }

    /// Delivers everything in flight, then collects the events.
    fn deliver(&mut self) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        loop {
            let mut moved = false;
            for i in 0..self.members.len() {
                while let Some(t) = self.members[i].disc.poll_transmit(&mut buf) {
                    moved = true;
                    let from = self.members[i].addr;
                    let data = buf[..t.len].to_vec();
                    if let Some(m) = self.members.iter_mut().find(|m| m.addr == t.destination) {
                        let _ = m.disc.handle_datagram(self.now, UNIX, from, &data);
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for m in &mut self.members {
            while let Some(e) = m.disc.poll_event() {
                m.events.push(e);
            }
        }
    }

    /// Runs the network for `ms` of virtual time.
    fn run(&mut self, ms: u64) {
        let end = self.now + std::time::Duration::from_millis(ms);
        loop {
            self.deliver();
            let next = self
                .members
                .iter()
                .filter_map(|m| m.disc.poll_timeout())
                .min()
                .unwrap_or(end)
                .max(self.now);
            if next > end {
                self.now = end;
                break;
            }
            self.now = next;
            for m in &mut self.members {
                m.disc.handle_timeout(self.now, UNIX);
            }
        }
    }

    fn ping_result(&self, i: usize, id: RequestId) -> Option<Event> {
        self.members[i]
            .events
            .iter()
            .find(|e| matches!(e, Event::PingResponse { id: x, .. } if *x == id))
            .cloned()
    }

    fn nodes_result(&self, i: usize, id: RequestId) -> Option<Event> {
        self.members[i]
            .events
            .iter()
            .find(|e| matches!(e, Event::FindNodeResponse { id: x, .. } if *x == id))
            .cloned()
    }
}

fn key(seed: u64) -> NodeSecretKey {
    NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

#[test]
fn a_ping_to_a_record_is_answered_with_its_seq_and_our_address_and_fails_without_an_answer() {
    let mut net = Net::new();
    let a = net.add(key(1), 40001, 5, vec![]);
    let b = net.add(key(2), 40002, 9, vec![]);
    let to_b = net.record(b);
    let id = net.members[a].disc.ping(net.now, &to_b).unwrap();
    net.run(100);
    match net.ping_result(a, id) {
        Some(Event::PingResponse { to, result, .. }) => {
            assert_eq!(to.id, to_b.node_id());
            assert_eq!(to.addr, net.members[b].addr);
            let pong = result.expect("B answers");
            assert_eq!(pong.enr_seq, 9, "B's record seq");
            assert_eq!(pong.recipient_ip, Some(net.members[a].addr.ip()));
            assert_eq!(pong.recipient_port, 40001);
        }
        other => panic!("no PONG for our PING: {other:?}"),
    }
    // A record at an address where nobody listens: the PING times out, once, with Timeout.
    let nobody = Enr::builder()
        .ip([127, 0, 0, 1].into())
        .udp4(40009)
        .sign(&key(3))
        .unwrap();
    let lost = net.members[a].disc.ping(net.now, &nobody).unwrap();
    net.run(5_000);
    match net.ping_result(a, lost) {
        Some(Event::PingResponse { result, .. }) => {
            assert_eq!(result, Err(RequestFailure::Timeout))
        }
        other => panic!("the lost PING did not fail: {other:?}"),
    }
    let ends = net.members[a]
        .events
        .iter()
        .filter(|e| matches!(e, Event::PingResponse { id, .. } if *id == lost))
        .count();
    assert_eq!(ends, 1, "a request ends exactly once");
}

#[test]
fn find_node_returns_the_records_at_the_distances_asked_and_leaves_our_table_alone() {
    let mut net = Net::new();
    let b = net.add(key(11), 40011, 1, vec![]);
    let boot = Node::from_enr(net.record(b)).unwrap();
    // C and D bootstrap from B, so that B's table holds them.
    let c = net.add(key(12), 40012, 1, vec![boot.clone()]);
    let d = net.add(key(13), 40013, 1, vec![boot]);
    net.run(20_000);
    let b_id = net.record(b).node_id();
    let (c_id, d_id) = (net.record(c).node_id(), net.record(d).node_id());
    assert!(net.members[b].disc.table().contains(&c_id));
    assert!(net.members[b].disc.table().contains(&d_id));
    let dc = u64::from(b_id.log_distance(&c_id));
    let dd = u64::from(b_id.log_distance(&d_id));

    let a = net.add(key(14), 40014, 1, vec![]);
    let to_b = net.record(b);
    let own = net.members[a].disc.find_node(net.now, &to_b, &[0]).unwrap();
    let at_c = net.members[a]
        .disc
        .find_node(net.now, &to_b, &[dc])
        .unwrap();
    net.run(200);
    match net.nodes_result(a, own) {
        Some(Event::FindNodeResponse { result, .. }) => {
            let n = result.expect("answered");
            assert_eq!(
                n.records,
                vec![to_b.clone()],
                "distance 0 is B's own record"
            );
        }
        other => panic!("no NODES for FINDNODE [0]: {other:?}"),
    }
    match net.nodes_result(a, at_c) {
        Some(Event::FindNodeResponse { result, .. }) => {
            let n = result.expect("answered");
            let ids: Vec<_> = n.records.iter().map(Enr::node_id).collect();
            assert!(ids.contains(&c_id), "C is at distance {dc} from B: {ids:?}");
            assert_eq!(
                ids.contains(&d_id),
                dd == dc,
                "D only if at the same distance"
            );
            for r in &n.records {
                assert_eq!(u64::from(b_id.log_distance(&r.node_id())), dc);
            }
            assert_eq!(n.records[0], net.record(c), "C's record as C signed it");
        }
        other => panic!("no NODES for FINDNODE [{dc}]: {other:?}"),
    }
    assert!(
        !net.members[a].disc.table().contains(&c_id),
        "records asked for by the application do not enter the table"
    );
}
