//! Properties of the whole machine: hostile bytes never get a reply, and runs replay bit for
//! bit from the same seed.

mod discv4_support;

use devp2p_core::discv4::wire::{self, Packet};
use devp2p_core::discv4::{Config, Discovery, Node, NodeDbSnapshot};
use devp2p_core::keccak::keccak256;
use devp2p_core::{Enr, Instant, NodeSecretKey};
use discv4_support::{Nut, Peer};
use quickcheck::{quickcheck, TestResult};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

quickcheck! {
    fn arbitrary_datagrams_get_no_reply(data: Vec<u8>) -> bool {
        let mut nut = Nut::bootstrapped();
        nut.deliver("127.0.0.2:40000".parse().unwrap(), &data).is_empty()
    }

    fn a_ping_with_any_byte_flipped_gets_no_reply(pos: usize, bit: u8) -> TestResult {
        let mut nut = Nut::bootstrapped();
        let peer = Peer::new(2, "127.0.0.2:40000");
        let (mut ping, _) = peer.ping(&nut, nut.unix() + 20);
        let i = pos % ping.len();
        ping[i] ^= 1 << (bit % 8);
        // Flipping a byte after the hash breaks the hash; flipping the hash itself too.
        TestResult::from_bool(nut.deliver(peer.addr, &ping).is_empty())
    }

    fn truncated_or_extended_pings_get_no_reply(cut: usize, extra: Vec<u8>) -> TestResult {
        let mut nut = Nut::bootstrapped();
        let peer = Peer::new(3, "127.0.0.2:40001");
        let (ping, _) = peer.ping(&nut, nut.unix() + 20);
        let mut bad = ping[..cut % ping.len()].to_vec();
        if extra.is_empty() && bad.len() == ping.len() {
            return TestResult::discard();
        }
        bad.extend_from_slice(&extra);
        if bad == ping {
            return TestResult::discard();
        }
        TestResult::from_bool(nut.deliver(peer.addr, &bad).is_empty())
    }
}

/// Runs a 12-node network for 20 virtual seconds and returns the hash of every datagram in
/// the order it was sent.
fn run(seed: u64) -> Vec<[u8; 32]> {
    const N: usize = 12;
    let addr =
        |i: usize| -> std::net::SocketAddr { format!("10.0.0.{}:30303", i + 1).parse().unwrap() };
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys: Vec<NodeSecretKey> = (0..N).map(|_| NodeSecretKey::generate(&mut rng)).collect();
    let boot = Node::new(*keys[0].public(), addr(0).ip(), 30303, 30303);
    let unix = 1_700_000_000;
    let mut nodes: Vec<Discovery<ChaCha20Rng>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let record = Enr::builder().ip(addr(i).ip()).udp4(30303).sign(k).unwrap();
            let mut config = Config::default();
            config.bootnodes = if i == 0 { vec![] } else { vec![boot.clone()] };
            Discovery::new(
                k.clone(),
                record,
                config,
                NodeDbSnapshot::default(),
                ChaCha20Rng::seed_from_u64(seed + i as u64),
                Instant::from_millis(0),
                unix,
            )
        })
        .collect();
    let mut log = Vec::new();
    let mut now = Instant::from_millis(0);
    let mut buf = [0u8; wire::MAX_PACKET_SIZE];
    while now.as_millis() <= 20_000 {
        for n in nodes.iter_mut() {
            n.handle_timeout(now, unix);
        }
        loop {
            let mut moved = false;
            for i in 0..N {
                while let Some(t) = nodes[i].poll_transmit(&mut buf) {
                    moved = true;
                    log.push(keccak256(&buf[..t.len]));
                    if let Some(j) = (0..N).find(|&j| addr(j) == t.destination) {
                        let bytes = buf[..t.len].to_vec();
                        nodes[j].handle_datagram(now, unix, addr(i), &bytes);
                    }
                }
                while nodes[i].poll_event().is_some() {}
            }
            if !moved {
                break;
            }
        }
        let next = nodes.iter().filter_map(|n| n.poll_timeout()).min().unwrap();
        now = next.max(Instant::from_millis(now.as_millis() + 1));
    }
    log
}

#[test]
fn the_same_seed_replays_the_same_datagrams_bit_for_bit() {
    let a = run(11);
    let b = run(11);
    assert!(a.len() > 100, "the network did talk: {}", a.len());
    assert_eq!(a, b);
    assert_ne!(a, run(12), "a different seed gives a different run");
}

#[test]
fn replies_to_a_peer_use_its_datagram_source_even_from_an_ipv4_mapped_address() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(4, "127.0.0.2:40002");
    let (ping, _) = peer.ping(&nut, nut.unix() + 20);
    let mapped = "[::ffff:127.0.0.2]:40002".parse().unwrap();
    let out = nut.deliver(mapped, &ping);
    assert_eq!(out.len(), 2);
    for (to, d) in out {
        assert_eq!(to, peer.addr);
        if let Packet::Pong(p) = d.packet {
            assert_eq!(p.to.ip, Some(peer.addr.ip()));
        }
    }
}
