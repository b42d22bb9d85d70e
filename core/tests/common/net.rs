//! An in-memory network of `Node`s under virtual time: UDP datagrams and TCP streams are
//! queued with a fixed latency, and time jumps to the next delivery or deadline; DNS lookups
//! are answered from an in-memory zone after the same latency. Enough for the node tests; the
//! full simulator (loss, partitions, churn) is its own piece.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use devp2p_core::discv4::wire::MAX_PACKET_SIZE;
use devp2p_core::dnsdisc::ResolveError;
use devp2p_core::node::{Action, ConnId, DnsQueryId, Node, NodeConfig, NodeEvent};
use devp2p_core::{Enode, Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// One-way latency of every datagram and stream chunk.
pub const LATENCY: Duration = Duration::from_millis(5);
/// Wall-clock seconds at virtual time zero.
pub const UNIX_START: u64 = 1_800_000_000;

enum Delivery {
    Datagram {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Data {
        to: usize,
        conn: ConnId,
        data: Vec<u8>,
    },
    Closed {
        to: usize,
        conn: ConnId,
    },
    DnsAnswer {
        to: usize,
        query: DnsQueryId,
        answer: Result<Vec<String>, ResolveError>,
    },
}

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Node<ChaCha20Rng>>,
    pub keys: Vec<NodeSecretKey>,
    pub addrs: Vec<SocketAddr>,
    pub events: Vec<Vec<NodeEvent>>,
    /// Whether node i is down (its sockets gone).
    pub down: Vec<bool>,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    inbox: BTreeMap<(usize, ConnId), Vec<u8>>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: BTreeMap<u64, Delivery>,
    seq: u64,
    by_addr: BTreeMap<SocketAddr, usize>,
    next_port: u16,
    /// Nodes behind a full-cone NAT, and their public address: what they send comes from it,
    /// what is sent to it reaches them, and their own address reaches nobody.
    pub nat: BTreeMap<usize, SocketAddr>,
    /// TXT records by name (one record per name), what every DNS lookup is answered from; a
    /// name not in it is `NotFound`.
    pub zone: BTreeMap<String, String>,
    /// The names looked up, in order, by node.
    pub lookups: Vec<(usize, String)>,
}

/// The address of node `i`: 127.0.x.y:30303.
pub fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, (i / 250) as u8, (i % 250 + 1) as u8)),
        30303,
    )
}

impl Net {
    pub fn new() -> Self {
        Net {
            now: Instant::from_millis(1),
            nodes: Vec::new(),
            keys: Vec::new(),
            addrs: Vec::new(),
            events: Vec::new(),
            down: Vec::new(),
            links: BTreeMap::new(),
            inbox: BTreeMap::new(),
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            by_addr: BTreeMap::new(),
            next_port: 40000,
            nat: BTreeMap::new(),
            zone: BTreeMap::new(),
            lookups: Vec::new(),
        }
    }

    /// Adds a node whose key and randomness come from `seed`; `config.listen` is set here.
    pub fn add(&mut self, seed: u64, mut config: NodeConfig) -> usize {
        let i = self.nodes.len();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = NodeSecretKey::generate(&mut rng);
        config.listen = addr_of(i);
        let node = Node::new(key.clone(), config, rng, self.now, self.unix());
        let reachable = self.nat.get(&i).copied().unwrap_or(addr_of(i));
        self.by_addr.insert(reachable, i);
        self.nodes.push(node);
        self.keys.push(key);
        self.addrs.push(addr_of(i));
        self.events.push(Vec::new());
        self.down.push(false);
        self.drain(i);
        i
    }

    /// Adds a node like [`Net::add`] behind a full-cone NAT whose mapping is `public`.
    pub fn add_behind_nat(&mut self, seed: u64, config: NodeConfig, public: SocketAddr) -> usize {
        self.nat.insert(self.nodes.len(), public);
        self.add(seed, config)
    }

    /// Where node `i`'s packets come from: its NAT's public address, or its own.
    pub fn seen_as(&self, i: usize) -> SocketAddr {
        self.nat.get(&i).copied().unwrap_or(self.addrs[i])
    }

    pub fn enode(&self, i: usize) -> Enode {
        self.nodes[i].local_enode()
    }

    fn unix(&self) -> u64 {
        UNIX_START + self.now.as_millis() / 1000
    }

    fn schedule(&mut self, d: Delivery) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + LATENCY, self.seq)));
        self.pending.insert(self.seq, d);
    }

    /// Moves everything node `i` wants done onto the network.
    pub fn drain(&mut self, i: usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        while let Some((to, len)) = self.nodes[i].poll_transmit(&mut buf) {
            if let Some(&j) = self.by_addr.get(&to) {
                let from = self.seen_as(i);
                self.schedule(Delivery::Datagram {
                    to: j,
                    from,
                    data: buf[..len].to_vec(),
                });
            }
        }
        while let Some(a) = self.nodes[i].poll_action() {
            let now = self.now;
            match a {
                Action::Dial { conn, addr } => {
                    let target = self.by_addr.get(&addr).copied().filter(|&j| !self.down[j]);
                    let Some(j) = target else {
                        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                        self.nodes[i].handle_connect_failed(now, conn, &refused);
                        continue;
                    };
                    self.next_port += 1;
                    let from = SocketAddr::new(self.seen_as(i).ip(), self.next_port);
                    match self.nodes[j].handle_accept(now, from) {
                        Ok(jc) => {
                            self.links.insert((i, conn), (j, jc));
                            self.links.insert((j, jc), (i, conn));
                            self.nodes[i].handle_connected(now, conn);
                            self.drain(j);
                        }
                        Err(_) => {
                            let refused =
                                std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                            self.nodes[i].handle_connect_failed(now, conn, &refused)
                        }
                    }
                }
                Action::Write { conn } => {
                    let data = self.nodes[i].outbound(conn).to_vec();
                    if data.is_empty() {
                        continue;
                    }
                    self.nodes[i].handle_written(now, conn, data.len());
                    if let Some(&(j, jc)) = self.links.get(&(i, conn)) {
                        self.schedule(Delivery::Data {
                            to: j,
                            conn: jc,
                            data,
                        });
                    }
                }
                Action::Close { conn } => {
                    if let Some((j, jc)) = self.links.remove(&(i, conn)) {
                        self.links.remove(&(j, jc));
                        self.schedule(Delivery::Closed { to: j, conn: jc });
                    }
                    self.inbox.remove(&(i, conn));
                }
                Action::ResolveTxt { query, name } => {
                    let answer = match self.zone.get(&name) {
                        Some(text) => Ok(vec![text.clone()]),
                        None => Err(ResolveError::NotFound),
                    };
                    self.lookups.push((i, name));
                    self.schedule(Delivery::DnsAnswer {
                        to: i,
                        query,
                        answer,
                    });
                }
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events[i].push(e);
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        let unix = self.unix();
        match d {
            Delivery::Datagram { to, from, data } => {
                if !self.down[to] {
                    self.nodes[to].handle_datagram(now, unix, from, &data);
                    self.drain(to);
                }
            }
            Delivery::Data { to, conn, data } => {
                if self.down[to] {
                    return;
                }
                let buf = self.inbox.entry((to, conn)).or_default();
                buf.extend_from_slice(&data);
                let mut data = std::mem::take(buf);
                // Offer what is left again after taking events, as a driver would.
                loop {
                    let used = self.nodes[to].handle_read(now, conn, &data);
                    self.drain(to);
                    data.drain(..used);
                    if used == 0 || data.is_empty() {
                        break;
                    }
                }
                if !data.is_empty() {
                    self.inbox.insert((to, conn), data);
                }
            }
            Delivery::Closed { to, conn } => {
                if !self.down[to] {
                    self.nodes[to].handle_closed(now, conn);
                    self.drain(to);
                }
            }
            Delivery::DnsAnswer { to, query, answer } => {
                if !self.down[to] {
                    self.nodes[to].dns_answer(now, query, answer);
                    self.drain(to);
                }
            }
        }
    }

    /// Runs until virtual time `until`.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_delivery = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = (0..self.nodes.len())
                .filter(|&i| !self.down[i])
                .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t, i)))
                .min();
            let t = match (next_delivery, next_timer) {
                (Some(d), Some((tt, _))) => d.min(tt),
                (Some(d), None) => d,
                (None, Some((tt, _))) => tt,
                (None, None) => break,
            };
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            if next_delivery == Some(t) {
                let Reverse((_, seq)) = self.queue.pop().unwrap();
                let d = self.pending.remove(&seq).unwrap();
                self.deliver(d);
            } else if let Some((_, i)) = next_timer {
                let (now, unix) = (self.now, self.unix());
                self.nodes[i].handle_timeout(now, unix);
                self.drain(i);
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Takes node `i` down: every connection of it closes (the peers see the close).
    pub fn crash(&mut self, i: usize) {
        self.down[i] = true;
        let mine: Vec<(usize, ConnId)> = self
            .links
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for k in mine {
            if let Some((j, jc)) = self.links.remove(&k) {
                self.links.remove(&(j, jc));
                self.schedule(Delivery::Closed { to: j, conn: jc });
            }
        }
    }
}
