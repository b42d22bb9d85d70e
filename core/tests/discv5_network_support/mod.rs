//! An in-memory network of discv5 discovery nodes (and bare session machines the test drives
//! by hand) under virtual time: every datagram takes a fixed latency, time jumps to the next
//! delivery or deadline, and each node sits on a /24 of its own.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use devp2p_core::discv4::{LookupId, Node, NodeDbSnapshot};
use devp2p_core::discv5::discovery::{Config, Discovery, Event};
use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
use devp2p_core::discv5::{
    Contact, Event as SessionEvent, Request, RequestFailure, Response, Sessions, SessionsConfig,
};
use devp2p_core::{Enr, Instant, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The wall clock at virtual time 0.
pub const UNIX_START: u64 = 1_700_000_000;
/// One-way delay of every datagram.
pub const LATENCY_MS: u64 = 20;

/// A datagram in flight: (delivery time, sequence number, recipient, sender, bytes).
pub type InFlight = (u64, u64, SocketAddr, SocketAddr, Vec<u8>);

/// One end of the network: a discovery node, or a bare session machine the test drives by
/// hand (to see exactly what a node sends and answers).
pub enum Member {
    Disc(Box<Discovery<ChaCha20Rng>>),
    Raw(Box<Sessions<ChaCha20Rng>>),
}

/// The network: members, their keys and addresses, and the datagrams in flight.
pub struct Net {
    pub members: Vec<Member>,
    pub keys: Vec<NodeSecretKey>,
    pub addrs: Vec<SocketAddr>,
    pub by_addr: BTreeMap<SocketAddr, usize>,
    pub queue: BinaryHeap<Reverse<InFlight>>,
    pub seq: u64,
    pub now: u64,
    pub events: Vec<Vec<Event>>,
    pub raw_events: Vec<Vec<SessionEvent>>,
    pub packets: u64,
    pub active: usize,
}

pub fn addr(i: usize) -> SocketAddr {
    // A /24 of its own for each node, so the subnet limits never bite.
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(11, (i / 250) as u8, (i % 250) as u8, 1)),
        30303,
    )
}

pub fn record(key: &NodeSecretKey, a: SocketAddr, seq: u64) -> Enr {
    Enr::builder()
        .seq(seq)
        .ip(a.ip())
        .udp4(a.port())
        .tcp4(a.port())
        .sign(key)
        .unwrap()
}

impl Net {
    pub fn empty() -> Self {
        Net {
            members: Vec::new(),
            keys: Vec::new(),
            addrs: Vec::new(),
            by_addr: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            events: Vec::new(),
            raw_events: Vec::new(),
            packets: 0,
            active: 0,
        }
    }

    /// `n` discovery nodes; every node but the first knows the first as its bootnode.
    pub fn new(n: usize, seed: u64, configure: impl Fn(usize, &mut Config)) -> Self {
        let mut net = Net::empty();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for i in 0..n {
            let key = NodeSecretKey::generate(&mut rng);
            let mut config = Config::default();
            if i > 0 {
                config.bootnodes = vec![net.boot_node(0)];
            }
            configure(i, &mut config);
            net.add_disc(key, config, seed ^ (i as u64 + 1));
        }
        net
    }

    pub fn boot_node(&self, i: usize) -> Node {
        let r = record(&self.keys[i], self.addrs[i], 1);
        Node::from_enr(r).unwrap()
    }

    pub fn add_disc(&mut self, key: NodeSecretKey, config: Config, seed: u64) -> usize {
        let i = self.members.len();
        let a = addr(i);
        let d = Discovery::new(
            key.clone(),
            record(&key, a, 1),
            config,
            NodeDbSnapshot::default(),
            ChaCha20Rng::seed_from_u64(seed),
            Instant::from_millis(self.now),
            self.unix(),
        );
        self.push_member(key, a, Member::Disc(Box::new(d)))
    }

    pub fn add_raw(&mut self, seed: u64) -> usize {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = NodeSecretKey::generate(&mut rng);
        let i = self.members.len();
        let a = addr(i);
        let s = Sessions::new(
            key.clone(),
            record(&key, a, 1),
            SessionsConfig::default(),
            rng,
            Instant::from_millis(self.now),
        );
        self.push_member(key, a, Member::Raw(Box::new(s)))
    }

    pub fn push_member(&mut self, key: NodeSecretKey, a: SocketAddr, m: Member) -> usize {
        let i = self.members.len();
        self.members.push(m);
        self.keys.push(key);
        self.addrs.push(a);
        self.by_addr.insert(a, i);
        self.events.push(Vec::new());
        self.raw_events.push(Vec::new());
        i
    }

    pub fn disc(&mut self, i: usize) -> &mut Discovery<ChaCha20Rng> {
        match &mut self.members[i] {
            Member::Disc(d) => d,
            Member::Raw(_) => panic!("member {i} is a bare session machine"),
        }
    }

    pub fn raw(&mut self, i: usize) -> &mut Sessions<ChaCha20Rng> {
        match &mut self.members[i] {
            Member::Raw(s) => s,
            Member::Disc(_) => panic!("member {i} is a discovery node"),
        }
    }

    pub fn unix(&self) -> u64 {
        UNIX_START + self.now / 1000
    }

    pub fn at(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    pub fn drain(&mut self, i: usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        loop {
            let t = match &mut self.members[i] {
                Member::Disc(d) => d.poll_transmit(&mut buf),
                Member::Raw(s) => s.poll_transmit(&mut buf),
            };
            let Some(t) = t else { break };
            self.seq += 1;
            self.packets += 1;
            self.queue.push(Reverse((
                self.now + LATENCY_MS,
                self.seq,
                t.destination,
                self.addrs[i],
                buf[..t.len].to_vec(),
            )));
        }
        match &mut self.members[i] {
            Member::Disc(d) => {
                while let Some(e) = d.poll_event() {
                    self.events[i].push(e);
                }
            }
            Member::Raw(s) => {
                while let Some(e) = s.poll_event() {
                    self.raw_events[i].push(e);
                }
            }
        }
    }

    pub fn deadline(&self, i: usize) -> Option<u64> {
        match &self.members[i] {
            Member::Disc(d) => d.poll_timeout(),
            Member::Raw(s) => s.poll_timeout(),
        }
        .map(Instant::as_millis)
    }

    /// Runs until virtual time `end_ms`; only members below `self.active` run.
    pub fn run_until(&mut self, end_ms: u64) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse(m)| m.0);
            let next_timer = (0..self.active).filter_map(|i| self.deadline(i)).min();
            let Some(t) = next_msg.into_iter().chain(next_timer).min() else {
                break;
            };
            if t > end_ms {
                break;
            }
            self.now = self.now.max(t);
            let (now, unix) = (self.at(), self.unix());
            while self.queue.peek().is_some_and(|Reverse(m)| m.0 <= self.now) {
                let Reverse((_, _, to, from, bytes)) = self.queue.pop().unwrap();
                let Some(&j) = self.by_addr.get(&to) else {
                    continue;
                };
                if j >= self.active {
                    continue;
                }
                match &mut self.members[j] {
                    Member::Disc(d) => {
                        let _ = d.handle_datagram(now, unix, from, &bytes);
                    }
                    Member::Raw(s) => {
                        let _ = s.handle_datagram(now, from, &bytes);
                    }
                }
                self.drain(j);
            }
            for i in 0..self.active {
                if self.deadline(i).is_some_and(|d| d <= self.now) {
                    match &mut self.members[i] {
                        Member::Disc(d) => d.handle_timeout(now, unix),
                        Member::Raw(s) => s.handle_timeout(now),
                    }
                    self.drain(i);
                }
            }
        }
        self.now = self.now.max(end_ms);
    }

    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    /// Starts the members one every `gap_ms`.
    pub fn start_all(&mut self, gap_ms: u64) {
        for i in self.active..self.members.len() {
            self.active = i + 1;
            self.run_for(gap_ms);
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.keys.iter().map(NodeSecretKey::id).collect()
    }

    pub fn true_closest(&self, target: &NodeId, exclude: usize, n: usize) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .ids()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != exclude && matches!(self.members[*i], Member::Disc(_)))
            .map(|(_, id)| id)
            .collect();
        ids.sort_by(|a, b| target.distance_cmp(a, b));
        ids.truncate(n);
        ids
    }

    pub fn lookup(&mut self, from: usize, target: NodeId, wait_ms: u64) -> Vec<Node> {
        let (now, unix) = (self.at(), self.unix());
        let id: LookupId = self.disc(from).start_lookup(now, unix, target);
        self.drain(from);
        self.run_for(wait_ms);
        self.events[from]
            .iter()
            .find_map(|e| match e {
                Event::LookupFinished { id: got, nodes, .. } if *got == id => Some(nodes.clone()),
                _ => None,
            })
            .expect("the lookup finishes in time")
    }

    /// Sends `request` from the bare machine `raw` to member `to` and runs until it ends.
    pub fn ask(
        &mut self,
        raw: usize,
        to: usize,
        request: Request,
    ) -> Result<Response, RequestFailure> {
        let contact = Contact::from_record(record(&self.keys[to], self.addrs[to], 1)).unwrap();
        let now = self.at();
        let id = self.raw(raw).send_request(now, contact, request).unwrap();
        self.drain(raw);
        self.run_for(5_000);
        self.raw_events[raw]
            .iter()
            .find_map(|e| match e {
                SessionEvent::Response {
                    id: got, response, ..
                } if *got == id => Some(Ok(response.clone())),
                SessionEvent::RequestFailed {
                    id: got, reason, ..
                } if *got == id => Some(Err(*reason)),
                _ => None,
            })
            .expect("every request ends")
    }
}
