//! An in-memory network of discv5 session machines under virtual time: datagrams are queued
//! with a fixed latency, time jumps to the next delivery or deadline, a filter can lose or
//! duplicate chosen datagrams, and every node answers PING, FINDNODE and TALKREQ the way the
//! layer above would. A livelock is a failing test.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use devp2p_core::discv5::message::{Message, Pong, TalkResp};
use devp2p_core::discv5::packet::{
    apply_mask, encode_handshake, encode_random, flag, Packet, MAX_PACKET_SIZE,
};
use devp2p_core::discv5::Response;
use devp2p_core::discv5::{
    Contact, Event, NodeAddress, Request, RequestId, SessionKeys, Sessions, SessionsConfig,
};
use devp2p_core::{Enr, Instant, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// One-way latency of every datagram.
pub const LATENCY: Duration = Duration::from_millis(5);
/// Steps after which a run declares a livelock.
const MAX_STEPS: usize = 100_000;

/// A datagram as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the filter does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Lose,
    /// Delivered twice, the copy one latency later.
    Duplicate,
}

pub struct Peer {
    pub key: NodeSecretKey,
    pub addr: SocketAddr,
    pub record: Enr,
    pub m: Sessions<ChaCha20Rng>,
    pub events: Vec<Event>,
    /// Records this node answers every FINDNODE with (whatever the distances).
    pub nodes_answer: Vec<Enr>,
    /// Whether it answers requests at all.
    pub answers: bool,
    /// Whether its socket is up (datagrams to it vanish otherwise).
    pub up: bool,
}

/// Decides a datagram's fate from the network's state and the datagram.
pub type Filter = Box<dyn FnMut(&Net, &Sent) -> Fate>;

pub struct Net {
    pub now: Instant,
    pub peers: Vec<Peer>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: BTreeMap<u64, Sent>,
    seq: u64,
    /// Every datagram sent, in order.
    pub log: Vec<Sent>,
    /// Decides each datagram's fate; `None` delivers everything.
    pub filter: Option<Filter>,
}

pub fn key(seed: u64) -> NodeSecretKey {
    NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

pub fn record(key: &NodeSecretKey, addr: SocketAddr, seq: u64) -> Enr {
    Enr::builder()
        .seq(seq)
        .ip(addr.ip())
        .udp4(addr.port())
        .sign(key)
        .unwrap()
}

impl Net {
    pub fn new() -> Self {
        Net {
            now: Instant::from_millis(1_000),
            peers: Vec::new(),
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
            filter: None,
        }
    }

    /// Adds a node with key seed `seed` at 127.0.0.1:`port` (or `addr`); returns its index.
    pub fn add(&mut self, seed: u64, port: u16) -> usize {
        self.add_at(
            seed,
            format!("127.0.0.1:{port}").parse().unwrap(),
            SessionsConfig::default(),
        )
    }

    pub fn add_at(&mut self, seed: u64, addr: SocketAddr, config: SessionsConfig) -> usize {
        let key = key(seed);
        let record = record(&key, addr, 1);
        let m = Sessions::new(
            key.clone(),
            record.clone(),
            config,
            ChaCha20Rng::seed_from_u64(seed ^ 0xdead),
            self.now,
        );
        self.peers.push(Peer {
            key,
            addr,
            record,
            m,
            events: Vec::new(),
            nodes_answer: Vec::new(),
            answers: true,
            up: true,
        });
        self.peers.len() - 1
    }

    /// Node `i` restarts: a new machine with key seed `seed` and a record of seq `seq` at the
    /// same address, all sessions forgotten.
    pub fn restart(&mut self, i: usize, seed: u64, seq: u64, config: SessionsConfig) {
        let addr = self.peers[i].addr;
        let key = key(seed);
        let record = record(&key, addr, seq);
        let p = &mut self.peers[i];
        p.m = Sessions::new(
            key.clone(),
            record.clone(),
            config,
            ChaCha20Rng::seed_from_u64(seed ^ seq ^ 0xbeef),
            self.now,
        );
        p.key = key;
        p.record = record;
        p.events.clear();
    }

    pub fn id(&self, i: usize) -> NodeId {
        self.peers[i].key.id()
    }

    pub fn address(&self, i: usize) -> NodeAddress {
        NodeAddress::new(self.id(i), self.peers[i].addr)
    }

    /// Node `i` as the others see it: its record at its address.
    pub fn contact(&self, i: usize) -> Contact {
        Contact::from_record(self.peers[i].record.clone()).unwrap()
    }

    /// `from` sends `request` to node `to`.
    pub fn request(&mut self, from: usize, to: usize, request: Request) -> RequestId {
        let c = self.contact(to);
        let now = self.now;
        let id = self.peers[from].m.send_request(now, c, request).unwrap();
        self.flush(from);
        id
    }

    /// Drains node `i`'s outputs: datagrams onto the wire, events into its log, requests
    /// answered.
    pub fn flush(&mut self, i: usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        loop {
            while let Some(t) = self.peers[i].m.poll_transmit(&mut buf) {
                let sent = Sent {
                    at: self.now,
                    from: self.peers[i].addr,
                    to: t.destination,
                    bytes: buf[..t.len].to_vec(),
                };
                self.send(sent);
            }
            let mut answered = false;
            while let Some(e) = self.peers[i].m.poll_event() {
                if let Event::Request { from, request } = &e {
                    if self.peers[i].answers {
                        self.answer(i, from, request);
                        answered = true;
                    }
                }
                self.peers[i].events.push(e);
            }
            if !answered {
                break;
            }
        }
    }

    fn answer(&mut self, i: usize, from: &NodeAddress, request: &Message) {
        let now = self.now;
        let p = &mut self.peers[i];
        let _ = match request {
            Message::Ping(ping) => p.m.send_response(
                now,
                from,
                Message::Pong(Pong {
                    request_id: ping.request_id,
                    enr_seq: p.record.seq(),
                    recipient_ip: Some(from.addr.ip()),
                    recipient_port: from.addr.port(),
                }),
            ),
            Message::FindNode(f) => {
                p.m.send_nodes(now, from, f.request_id, &p.nodes_answer.clone())
                    .map(|_| ())
            }
            Message::TalkReq(t) => p.m.send_response(
                now,
                from,
                Message::TalkResp(TalkResp {
                    request_id: t.request_id,
                    response: t.request.clone(),
                }),
            ),
            _ => Ok(()),
        };
    }

    /// Puts a datagram on the wire, through the filter.
    pub fn send(&mut self, sent: Sent) {
        self.log.push(sent.clone());
        let fate = match self.filter.take() {
            Some(mut f) => {
                let fate = f(self, &sent);
                self.filter = Some(f);
                fate
            }
            None => Fate::Deliver,
        };
        match fate {
            Fate::Lose => {}
            Fate::Deliver => self.enqueue(self.now + LATENCY, sent),
            Fate::Duplicate => {
                self.enqueue(self.now + LATENCY, sent.clone());
                self.enqueue(self.now + LATENCY + LATENCY, sent);
            }
        }
    }

    fn enqueue(&mut self, at: Instant, sent: Sent) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, sent);
    }

    fn by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.peers.iter().position(|p| p.addr == addr)
    }

    /// Delivers `bytes` to node `to` as if from `from`, now.
    pub fn inject(
        &mut self,
        to: usize,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), devp2p_core::discv5::DropReason> {
        let now = self.now;
        let r = self.peers[to].m.handle_datagram(now, from, bytes);
        self.flush(to);
        r
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let delivery = self.queue.peek().map(|Reverse((t, _))| *t);
        let timers = self.peers.iter().filter_map(|p| p.m.poll_timeout());
        delivery.into_iter().chain(timers).min()
    }

    /// Runs until nothing is due before `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Instant) {
        for _ in 0..MAX_STEPS {
            match self.next_wakeup() {
                Some(t) if t <= until => self.step(t),
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("livelock: still busy after {MAX_STEPS} steps");
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs until node `i` has been asked one more request than now.
    pub fn run_until_request(&mut self, i: usize) {
        let asked = |net: &Net| {
            net.peers[i]
                .events
                .iter()
                .filter(|e| matches!(e, Event::Request { .. }))
                .count()
        };
        let before = asked(self);
        for _ in 0..MAX_STEPS {
            if asked(self) > before {
                return;
            }
            let t = self.next_wakeup().expect("nothing left to run");
            self.step(t);
        }
        panic!("livelock: still busy after {MAX_STEPS} steps");
    }

    /// Runs until no datagram is in flight and no deadline is pending.
    pub fn run_idle(&mut self) {
        for _ in 0..MAX_STEPS {
            match self.next_wakeup() {
                Some(t) => self.step(t),
                None => return,
            }
        }
        panic!("livelock: still busy after {MAX_STEPS} steps");
    }

    fn step(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let now = self.now;
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > now {
                break;
            }
            self.queue.pop();
            let sent = self.pending.remove(&seq).expect("queued");
            if let Some(to) = self.by_addr(sent.to) {
                if self.peers[to].up {
                    let _ = self.peers[to]
                        .m
                        .handle_datagram(now, sent.from, &sent.bytes);
                    self.flush(to);
                }
            }
        }
        for i in 0..self.peers.len() {
            if self.peers[i].m.poll_timeout().is_some_and(|d| d <= now) {
                self.peers[i].m.handle_timeout(now);
                self.flush(i);
            }
        }
    }

    /// The packet flag (0 message, 1 WHOAREYOU, 2 handshake) of a datagram, decoded as its
    /// recipient would; `None` if it is not for a node of this network.
    pub fn flag_of(&self, sent: &Sent) -> Option<u8> {
        let to = self.by_addr(sent.to)?;
        Packet::decode(&self.id(to), &sent.bytes)
            .ok()
            .map(|p| p.flag())
    }

    /// The datagrams of the log with flag `f` sent by node `from`.
    pub fn sent_by(&self, from: usize, f: u8) -> Vec<&Sent> {
        let addr = self.peers[from].addr;
        self.log
            .iter()
            .filter(|s| s.from == addr && self.flag_of(s) == Some(f))
            .collect()
    }

    pub fn whoareyous_by(&self, from: usize) -> Vec<&Sent> {
        self.sent_by(from, flag::WHOAREYOU)
    }

    /// The response event of request `id` at node `i`.
    pub fn response(&self, i: usize, id: RequestId) -> Option<&Event> {
        self.peers[i].events.iter().find(|e| match e {
            Event::Response { id: r, .. } | Event::RequestFailed { id: r, .. } => *r == id,
            _ => false,
        })
    }

    pub fn established(&self, i: usize) -> Vec<&Event> {
        self.peers[i]
            .events
            .iter()
            .filter(|e| matches!(e, Event::SessionEstablished { .. }))
            .collect()
    }
}

/// The PONG that answered request `id` of node `i`.
pub fn pong_of(net: &Net, i: usize, id: RequestId) -> Pong {
    match net.response(i, id) {
        Some(Event::Response {
            response: Response::Pong(p),
            ..
        }) => p.clone(),
        other => panic!("no PONG for {id:?} at node {i}: {other:?}"),
    }
}

/// Two nodes, at 127.0.0.1:30301 and :30302.
pub fn two() -> (Net, usize, usize) {
    let mut net = Net::new();
    let a = net.add(1, 30301);
    let b = net.add(2, 30302);
    (net, a, b)
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

/// A peer driven by hand: it handshakes with a node of the network through packets built
/// with the wire layer, then seals whatever plaintext a test wants under the session.
pub struct Scripted {
    pub key: NodeSecretKey,
    pub addr: SocketAddr,
    /// The session as this side holds it, once the handshake is done.
    pub keys: Option<SessionKeys>,
    counter: u32,
}

impl Scripted {
    pub fn new(seed: u64, addr: SocketAddr) -> Self {
        Scripted {
            key: key(seed),
            addr,
            keys: None,
            counter: 0,
        }
    }

    pub fn record(&self) -> Enr {
        record(&self.key, self.addr, 1)
    }

    fn nonce(&mut self) -> [u8; 12] {
        self.counter += 1;
        let mut n = [0x5a; 12];
        n[..4].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// A random packet to `to`.
    pub fn random(&mut self, to: &NodeId) -> Vec<u8> {
        let nonce = self.nonce();
        let mut out = Vec::new();
        encode_random(&mut out, to, &self.key.id(), &[9; 16], &nonce, &[7; 20]).unwrap();
        out
    }

    /// Handshakes with node `to` of `net` (sending `message` in the handshake) and returns
    /// what the node answered to the handshake packet.
    pub fn handshake(&mut self, net: &mut Net, to: usize, message: &Message) -> Vec<Sent> {
        let to_id = net.id(to);
        let random = self.random(&to_id);
        net.inject(to, self.addr, &random).expect("challenged");
        let w = net
            .log
            .iter()
            .rev()
            .find(|s| s.to == self.addr)
            .expect("a WHOAREYOU")
            .clone();
        let p = Packet::decode(&self.key.id(), &w.bytes).expect("decodes");
        assert_eq!(p.flag(), flag::WHOAREYOU);
        let remote = *net.peers[to].key.public();
        let eph = secp256k1::SecretKey::from_secret_bytes([0x33; 32]).unwrap();
        let nonce = self.nonce();
        let mut out = Vec::new();
        let keys = encode_handshake(
            &mut out,
            &self.key,
            &remote,
            p.header(),
            &eph,
            Some(&self.record()),
            &[8; 16],
            &nonce,
            message,
        )
        .unwrap();
        self.keys = Some(keys);
        let before = net.log.len();
        net.inject(to, self.addr, &out).expect("handshake accepted");
        net.log[before..].to_vec()
    }

    /// An ordinary packet to `to` carrying `plaintext` (any bytes) under the session.
    pub fn seal(&mut self, to: &NodeId, plaintext: &[u8]) -> Vec<u8> {
        let keys = self.keys.clone().expect("handshake first");
        let nonce = self.nonce();
        let iv = [6u8; 16];
        let mut header = Vec::new();
        header.extend_from_slice(&iv);
        header.extend_from_slice(b"discv5");
        header.extend_from_slice(&[0, 1, flag::MESSAGE]);
        header.extend_from_slice(&nonce);
        header.extend_from_slice(&[0, 32]);
        header.extend_from_slice(&self.key.id().0);
        let sealed = keys.write.seal(&nonce, &header, plaintext);
        apply_mask(to, &iv, &mut header[16..]);
        header.extend_from_slice(&sealed);
        header
    }

    /// Opens a packet the node sent us under the session.
    pub fn open(&self, bytes: &[u8]) -> Option<Message> {
        let p = Packet::decode(&self.key.id(), bytes).ok()?;
        p.open(&self.keys.as_ref()?.read).ok()
    }
}
