//! Helpers shared by the discv4 integration tests: a node under test driven in virtual time,
//! and a scripted remote peer that builds packets by hand.
#![allow(dead_code)]

use std::net::SocketAddr;

use devp2p_core::discv4::wire::{self, Decoded, Endpoint, Packet, Ping, Pong, MAX_PACKET_SIZE};
use devp2p_core::discv4::{Config, Discovery, Event, NodeDbSnapshot};
use devp2p_core::keccak::keccak256_concat;
use devp2p_core::{Enr, Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Wall-clock time at the start of every test (2023-11-14).
pub const UNIX_START: u64 = 1_700_000_000;

/// A node under test plus its virtual clock.
pub struct Nut {
    pub disc: Discovery<ChaCha20Rng>,
    pub addr: SocketAddr,
    pub key: NodeSecretKey,
    pub now: Instant,
    pub events: Vec<Event>,
}

impl Nut {
    pub fn new(seed: u64, addr: SocketAddr, config: Config) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = NodeSecretKey::generate(&mut rng);
        let record = Enr::builder()
            .ip(addr.ip())
            .udp4(addr.port())
            .tcp4(addr.port())
            .sign(&key)
            .unwrap();
        let now = Instant::from_millis(0);
        let disc = Discovery::new(
            key.clone(),
            record,
            config,
            NodeDbSnapshot::default(),
            rng,
            now,
            UNIX_START,
        );
        Nut {
            disc,
            addr,
            key,
            now,
            events: Vec::new(),
        }
    }

    /// A node at 127.0.0.1:30303 with no bootnodes that has finished its first refresh.
    pub fn bootstrapped() -> Self {
        let mut n = Nut::new(1, "127.0.0.1:30303".parse().unwrap(), Config::default());
        n.tick();
        assert!(n.disc.is_bootstrapped());
        n
    }

    pub fn unix(&self) -> u64 {
        UNIX_START + self.now.as_millis() / 1000
    }

    fn drain(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        let mut out = Vec::new();
        while let Some(t) = self.disc.poll_transmit(&mut buf) {
            out.push((t.destination, buf[..t.len].to_vec()));
        }
        while let Some(e) = self.disc.poll_event() {
            self.events.push(e);
        }
        out
    }

    /// Delivers one datagram and returns what the node sent in response, decoded.
    pub fn deliver(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<(SocketAddr, Decoded)> {
        let (now, unix) = (self.now, self.unix());
        self.disc.handle_datagram(now, unix, from, bytes);
        decode_all(self.drain())
    }

    /// Runs timers due now and returns what was sent.
    pub fn tick(&mut self) -> Vec<(SocketAddr, Decoded)> {
        let (now, unix) = (self.now, self.unix());
        self.disc.handle_timeout(now, unix);
        decode_all(self.drain())
    }

    /// Advances virtual time by `ms`, firing every deadline on the way.
    pub fn advance(&mut self, ms: u64) -> Vec<(SocketAddr, Decoded)> {
        let end = Instant::from_millis(self.now.as_millis() + ms);
        let mut out = Vec::new();
        while let Some(t) = self.disc.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            out.extend(self.tick());
        }
        self.now = end;
        out.extend(self.tick());
        out
    }
}

fn decode_all(raw: Vec<(SocketAddr, Vec<u8>)>) -> Vec<(SocketAddr, Decoded)> {
    raw.into_iter()
        .map(|(a, b)| (a, wire::decode(&b).expect("the node sends valid packets")))
        .collect()
}

/// A scripted remote peer.
pub struct Peer {
    pub key: NodeSecretKey,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn new(seed: u8, addr: &str) -> Self {
        Peer {
            key: NodeSecretKey::from_bytes(&[seed; 32]).unwrap(),
            addr: addr.parse().unwrap(),
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            ip: Some(self.addr.ip()),
            udp: self.addr.port(),
            tcp: self.addr.port(),
        }
    }

    pub fn packet(&self, p: &Packet) -> (Vec<u8>, [u8; 32]) {
        wire::encode(p, &self.key)
    }

    pub fn ping(&self, nut: &Nut, expiration: u64) -> (Vec<u8>, [u8; 32]) {
        self.packet(&Packet::Ping(Ping {
            version: 4,
            from: self.endpoint(),
            to: Endpoint {
                ip: Some(nut.addr.ip()),
                udp: nut.addr.port(),
                tcp: 0,
            },
            expiration,
            enr_seq: Some(1),
        }))
    }

    pub fn pong(&self, nut: &Nut, ping_hash: [u8; 32]) -> Vec<u8> {
        self.packet(&Packet::Pong(Pong {
            to: Endpoint {
                ip: Some(nut.addr.ip()),
                udp: nut.addr.port(),
                tcp: 0,
            },
            ping_hash,
            expiration: nut.unix() + 20,
            enr_seq: Some(1),
        }))
        .0
    }

    /// Runs the full endpoint proof with `nut`: ping, then answer its ping.
    pub fn bond(&self, nut: &mut Nut) {
        let (ping, _) = self.ping(nut, nut.unix() + 20);
        let out = nut.deliver(self.addr, &ping);
        let their_ping = out
            .iter()
            .find_map(|(_, d)| matches!(d.packet, Packet::Ping(_)).then_some(d.hash));
        if let Some(h) = their_ping {
            let pong = self.pong(nut, h);
            assert!(nut.deliver(self.addr, &pong).is_empty());
        }
    }
}

/// A hashed, signed datagram around arbitrary packet data (to send shapes the encoder will not
/// produce, like extra list elements).
pub fn sealed(key: &NodeSecretKey, ty: u8, body: &[u8]) -> Vec<u8> {
    let sig = key.sign_recoverable(&keccak256_concat(&[&[ty], body]));
    let hash = keccak256_concat(&[&sig, &[ty], body]);
    [&hash[..], &sig[..], &[ty], body].concat()
}

impl Nut {
    /// Advances time by `ms` while remote peers answer whatever the node sends: `respond`
    /// gets each (destination, packet) and returns datagrams to deliver back from that
    /// destination, at once. Returns everything the node sent.
    pub fn advance_with(
        &mut self,
        ms: u64,
        mut respond: impl FnMut(&Nut, SocketAddr, &Decoded) -> Vec<Vec<u8>>,
    ) -> Vec<(SocketAddr, Decoded)> {
        let end = Instant::from_millis(self.now.as_millis() + ms);
        let mut sent = Vec::new();
        let mut queue: std::collections::VecDeque<(SocketAddr, Decoded)> = self.tick().into();
        loop {
            while let Some((to, d)) = queue.pop_front() {
                for reply in respond(self, to, &d) {
                    queue.extend(self.deliver(to, &reply));
                }
                sent.push((to, d));
            }
            match self.disc.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    queue.extend(self.tick());
                }
                _ => break,
            }
        }
        self.now = end;
        sent.extend(self.tick());
        sent
    }
}

/// A responder for [`Nut::advance_with`]: the listed peers answer Pings with Pongs and
/// ignore everything else.
pub fn pong_only<'a>(
    peers: &'a [Peer],
) -> impl FnMut(&Nut, SocketAddr, &Decoded) -> Vec<Vec<u8>> + 'a {
    move |nut, to, d| {
        let Some(peer) = peers.iter().find(|p| p.addr == to) else {
            return vec![];
        };
        match d.packet {
            Packet::Ping(_) => vec![peer.pong(nut, d.hash)],
            _ => vec![],
        }
    }
}
