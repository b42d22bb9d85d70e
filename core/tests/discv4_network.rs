//! A 200-node in-memory network under virtual time: every node bootstraps from one bootnode,
//! tables fill, and lookups find the true closest nodes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;

use devp2p_core::discv4::wire::MAX_PACKET_SIZE;
use devp2p_core::discv4::{Config, Discovery, Event, LookupId, Node, NodeDbSnapshot};
use devp2p_core::{Enr, Instant, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const UNIX_START: u64 = 1_700_000_000;
/// One-way delay of every datagram.
const LATENCY_MS: u64 = 20;

/// A datagram in flight: (delivery time, sequence number, recipient index, sender, bytes).
type InFlight = (u64, u64, usize, SocketAddr, Vec<u8>);

struct Net {
    nodes: Vec<Discovery<ChaCha20Rng>>,
    keys: Vec<NodeSecretKey>,
    by_addr: BTreeMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    now: u64,
    events: Vec<Vec<Event>>,
    packets: u64,
    /// Each node's `poll_timeout`, refreshed whenever the node is touched.
    deadlines: Vec<Option<u64>>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            10,
            0,
            (i / 250) as u8,
            (i % 250 + 1) as u8,
        )),
        30303,
    )
}

impl Net {
    fn new(n: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let keys: Vec<NodeSecretKey> = (0..n).map(|_| NodeSecretKey::generate(&mut rng)).collect();
        let boot = Node::new(*keys[0].public(), addr(0).ip(), 30303, 30303);
        let nodes = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let record = Enr::builder()
                    .ip(addr(i).ip())
                    .udp4(30303)
                    .tcp4(30303)
                    .sign(k)
                    .unwrap();
                let mut config = Config::default();
                config.bootnodes = if i == 0 { vec![] } else { vec![boot.clone()] };
                Discovery::new(
                    k.clone(),
                    record,
                    config,
                    NodeDbSnapshot::default(),
                    ChaCha20Rng::seed_from_u64(seed ^ (i as u64 + 1)),
                    Instant::from_millis(0),
                    UNIX_START,
                )
            })
            .collect();
        Net {
            nodes,
            by_addr: (0..n).map(|i| (addr(i), i)).collect(),
            keys,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            events: vec![Vec::new(); n],
            packets: 0,
            deadlines: vec![Some(0); n],
        }
    }

    fn unix(&self) -> u64 {
        UNIX_START + self.now / 1000
    }

    fn drain(&mut self, i: usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        while let Some(t) = self.nodes[i].poll_transmit(&mut buf) {
            if let Some(&to) = self.by_addr.get(&t.destination) {
                self.seq += 1;
                self.packets += 1;
                self.queue.push(Reverse((
                    self.now + LATENCY_MS,
                    self.seq,
                    to,
                    addr(i),
                    buf[..t.len].to_vec(),
                )));
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events[i].push(e);
        }
        self.deadlines[i] = self.nodes[i].poll_timeout().map(Instant::as_millis);
    }

    /// Runs until virtual time `end_ms`; only nodes below `active` are started.
    fn run_until(&mut self, end_ms: u64, active: usize) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse(m)| m.0);
            let next_timer = self.deadlines[..active].iter().flatten().min().copied();
            let Some(t) = next_msg.into_iter().chain(next_timer).min() else {
                break;
            };
            if t > end_ms {
                break;
            }
            self.now = self.now.max(t);
            let now = Instant::from_millis(self.now);
            let unix = self.unix();
            while self.queue.peek().is_some_and(|Reverse(m)| m.0 <= self.now) {
                let Reverse((_, _, to, from, bytes)) = self.queue.pop().unwrap();
                if to < active {
                    self.nodes[to].handle_datagram(now, unix, from, &bytes);
                    self.drain(to);
                }
            }
            for i in 0..active {
                if self.deadlines[i].is_some_and(|d| d <= self.now) {
                    self.nodes[i].handle_timeout(now, unix);
                    self.drain(i);
                }
            }
        }
        self.now = self.now.max(end_ms);
    }

    fn true_closest(&self, target: &NodeId, exclude: usize, n: usize) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != exclude)
            .map(|(_, k)| k.id())
            .collect();
        ids.sort_by(|a, b| target.distance_cmp(a, b));
        ids.truncate(n);
        ids
    }
}

#[test]
fn two_hundred_nodes_bootstrap_from_one_bootnode_and_lookups_find_the_closest() {
    const N: usize = 200;
    let mut net = Net::new(N, 42);
    // Nodes join one every 50 ms, then the network runs for one more minute.
    for i in 1..=N {
        net.run_until(i as u64 * 50, i);
    }
    net.run_until(net.now + 60 * 1000, N);

    let sizes: Vec<usize> = net.nodes.iter().map(|n| n.table().len()).collect();
    let bootstrapped = net.nodes.iter().filter(|n| n.is_bootstrapped()).count();
    let min = *sizes.iter().min().unwrap();
    let mean = sizes.iter().sum::<usize>() as f64 / N as f64;
    eprintln!(
        "tables: min {min}, mean {mean:.1}, max {}; packets {}",
        sizes.iter().max().unwrap(),
        net.packets
    );
    assert_eq!(bootstrapped, N, "every node finished its first refresh");
    assert!(
        min >= 16,
        "every table holds at least a bucket's worth: {sizes:?}"
    );

    // Lookups for random targets from random nodes.
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut found = 0usize;
    let mut wanted = 0usize;
    for _ in 0..40 {
        let from = (rng.next_u64() % N as u64) as usize;
        let mut target = [0u8; 64];
        rng.fill_bytes(&mut target);
        let now = Instant::from_millis(net.now);
        let unix = net.unix();
        let id: LookupId = net.nodes[from].start_lookup(now, unix, target);
        net.drain(from);
        net.run_until(net.now + 10_000, N);
        let result = net.events[from]
            .iter()
            .find_map(|e| match e {
                Event::LookupFinished { id: got, nodes, .. } if *got == id => Some(nodes.clone()),
                _ => None,
            })
            .expect("the lookup finishes within 10 s");
        let truth = net.true_closest(&NodeId::of_target(&target), from, 16);
        let got: Vec<NodeId> = result.iter().map(Node::id).collect();
        found += truth.iter().filter(|t| got.contains(t)).count();
        wanted += truth.len();
    }
    let recall = found as f64 / wanted as f64;
    eprintln!("lookup recall: {found}/{wanted} = {recall:.3}");
    assert!(recall >= 0.95, "recall {recall}");
}
