//! State machines fed arbitrary sequences of operations: a session, a whole node, the table.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use devp2p_core::discv4::wire::{packet_hash, MAX_PACKET_SIZE};
use devp2p_core::discv4::{Node as DiscNode, Table};
use devp2p_core::node::{Node, NodeConfig};
use devp2p_core::rlpx::FrameCodec;
use devp2p_core::session::{
    DisconnectReason, Protocol, ProtocolId, Session, SessionConfig, SessionEvent,
};
use devp2p_core::{Instant, NodeSecretKey, SignatureScheme};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::handshake::secrets_pair;
use crate::keys;

/// Outbound queue limit for the fuzzed session: small, so floods hit it.
const SESSION_QUEUE_LIMIT: usize = 64 * 1024;

fn protocols() -> Vec<Protocol> {
    vec![Protocol::new("eth", 68, 17), Protocol::new("snap", 1, 8)]
}

#[derive(Arbitrary, Debug)]
enum SessionOp {
    /// A frame sealed by the peer (so it passes the MACs).
    Frame { id: u8, payload: Vec<u8> },
    /// The peer's Hello, with a chosen version and capabilities.
    Hello {
        version: u8,
        caps: Vec<(bool, u8)>,
        own_id: bool,
    },
    /// Raw bytes (break the stream).
    Raw(Vec<u8>),
    /// Toggle snappy on the peer's side.
    PeerSnappy(bool),
    /// Time passes.
    Advance(u16),
    /// The application sends.
    Send {
        protocol: u8,
        code: u8,
        payload: Vec<u8>,
    },
    /// The application disconnects.
    Disconnect(u8),
    /// The driver writes some bytes.
    Written(u16),
    /// The peer closes the connection.
    Eof,
}

/// A session after a completed handshake (known secrets), fed frames from its peer, raw
/// bytes, time jumps and application commands. The outbound queue never exceeds its limit
/// by more than one Disconnect frame, and nothing panics.
pub fn session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (ours, theirs) = secrets_pair();
    let (local, remote) = (keys::nth(1), keys::nth(2));
    let config = Arc::new({
        let mut session = SessionConfig::default();
        session.protocols = protocols();
        session.max_outbound_queue = SESSION_QUEUE_LIMIT;
        session
    });
    let mut now = Instant::from_millis(0);
    let mut s = Session::from_secrets(config, &local, *remote.public(), ours, false, now);
    let mut peer = FrameCodec::new(theirs);
    let mut wire = Vec::new();
    for _ in 0..64 {
        let Ok(op) = SessionOp::arbitrary(&mut u) else {
            break;
        };
        wire.clear();
        match op {
            SessionOp::Frame { id, payload } => {
                let _ = peer.encode(u64::from(id), &payload, &mut wire);
            }
            SessionOp::Hello {
                version,
                caps,
                own_id,
            } => {
                let caps = caps
                    .into_iter()
                    .take(8)
                    .map(|(eth, v)| {
                        devp2p_core::session::Capability::new(
                            if eth { "eth" } else { "snap" },
                            u64::from(v),
                        )
                    })
                    .collect();
                let id = if own_id {
                    remote.public().raw().to_vec()
                } else {
                    local.public().raw().to_vec()
                };
                let h = devp2p_core::session::Hello {
                    protocol_version: u64::from(version),
                    client_id: "fuzz".into(),
                    capabilities: caps,
                    listen_port: 0,
                    id,
                };
                let _ = peer.encode(0, &h.encode(), &mut wire);
            }
            SessionOp::Raw(bytes) => wire = bytes,
            SessionOp::PeerSnappy(on) => peer.set_snappy(on),
            SessionOp::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 50);
                s.handle_timeout(now);
            }
            SessionOp::Send {
                protocol,
                code,
                payload,
            } => {
                let _ = s.send(
                    now,
                    ProtocolId::new(usize::from(protocol % 3)),
                    u64::from(code),
                    &payload,
                );
            }
            SessionOp::Disconnect(r) => s.disconnect(now, DisconnectReason::from_code(r)),
            SessionOp::Written(n) => s.handle_written(now, usize::from(n)),
            SessionOp::Eof => s.handle_eof(now),
        }
        let mut pos = 0;
        while pos < wire.len() {
            let n = s.handle_read(now, &wire[pos..]);
            while let Some(e) = s.poll_event() {
                if let SessionEvent::Message { protocol, code, .. } = e {
                    assert!(protocol.index() < 2 && code < 17);
                }
            }
            if n == 0 {
                break;
            }
            pos += n;
        }
        assert!(
            s.queued_bytes() <= SESSION_QUEUE_LIMIT + 64,
            "queue {} over its limit",
            s.queued_bytes()
        );
        if s.is_finished() {
            assert!(s.poll_timeout().is_none());
        }
    }
}

#[derive(Arbitrary, Debug)]
enum NodeOp {
    /// A raw datagram from one of a few addresses.
    Datagram {
        from: u8,
        data: Vec<u8>,
    },
    /// `type || body`, validly hashed and signed by one of a few keys (under the simulated
    /// scheme, as the node's own key: see [`keys::sim`]).
    Signed {
        from: u8,
        key: u8,
        body: Vec<u8>,
    },
    Accept {
        from: u8,
    },
    Connected {
        conn: u8,
    },
    ConnectFailed {
        conn: u8,
    },
    Read {
        conn: u8,
        data: Vec<u8>,
    },
    Written {
        conn: u8,
        n: u16,
    },
    Closed {
        conn: u8,
    },
    Advance {
        ms: u16,
    },
    Send {
        peer: u8,
        code: u8,
        payload: Vec<u8>,
    },
    AddStatic {
        key: u8,
    },
    Trust {
        key: u8,
    },
    Disconnect {
        peer: u8,
    },
}

fn addr(i: u8) -> SocketAddr {
    let ip = match i % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(127, 0, 0, i / 4 + 1)),
        1 => IpAddr::V4(Ipv4Addr::new(10, 0, i / 4, 1)),
        _ => IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)),
    };
    SocketAddr::new(ip, 30303)
}

fn key_pool() -> &'static [NodeSecretKey] {
    static KEYS: OnceLock<Vec<NodeSecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..16).map(|i| keys::sim(100 + i)).collect())
}

/// A whole node fed datagrams from many addresses, connections, reads, closes, time jumps and
/// application commands. Peers never exceed MaxPeers plus the trusted ones, and nothing panics.
/// The node signs under the simulated scheme ([`keys::sim`]): its discovery, admission and
/// dialing are what is fuzzed here; `discv4_packet` fuzzes the real signatures.
pub fn node(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut now = Instant::from_millis(0);
    let unix = 1_800_000_000u64;
    let mut config = NodeConfig::default();
    config.session.protocols = protocols();
    config.max_peers = 4;
    config.max_pending_peers = 4;
    config.bootnodes = vec![devp2p_core::Enode::new(
        *key_pool()[0].public(),
        addr(0).ip(),
        30303,
        30303,
    )];
    let mut n = Node::new(
        keys::sim(1),
        config,
        ChaCha20Rng::seed_from_u64(1),
        now,
        unix,
    );
    let mut conns = Vec::new();
    let mut trusted = 0usize;
    let mut buf = [0u8; MAX_PACKET_SIZE];
    for _ in 0..96 {
        let Ok(op) = NodeOp::arbitrary(&mut u) else {
            break;
        };
        let t = unix + now.as_millis() / 1000;
        let pick = |i: u8, conns: &Vec<devp2p_core::node::ConnId>| {
            conns.get(usize::from(i) % conns.len().max(1)).copied()
        };
        match op {
            NodeOp::Datagram { from, data } => n.handle_datagram(now, t, addr(from), &data),
            NodeOp::Signed { from, key, body } => {
                let k = &key_pool()[usize::from(key) % key_pool().len()];
                // What `discv4::wire::encode` writes under the simulated scheme.
                let sig = k.sign_recoverable(&[0; 32]);
                let rest = [&sig[..], &body[..]].concat();
                let hash = packet_hash(SignatureScheme::InsecureSimulation, &rest);
                let d = [&hash[..], &rest[..]].concat();
                n.handle_datagram(now, t, addr(from), &d);
            }
            NodeOp::Accept { from } => {
                if let Ok(c) = n.handle_accept(now, addr(from)) {
                    conns.push(c);
                }
            }
            NodeOp::Connected { conn } => {
                if let Some(c) = pick(conn, &conns) {
                    n.handle_connected(now, c);
                }
            }
            NodeOp::ConnectFailed { conn } => {
                if let Some(c) = pick(conn, &conns) {
                    n.handle_connect_failed(
                        now,
                        c,
                        &std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                    );
                }
            }
            NodeOp::Read { conn, data } => {
                if let Some(c) = pick(conn, &conns) {
                    let used = n.handle_read(now, c, &data);
                    assert!(used <= data.len());
                }
            }
            NodeOp::Written { conn, n: w } => {
                if let Some(c) = pick(conn, &conns) {
                    let len = n.outbound(c).len().min(usize::from(w));
                    n.handle_written(now, c, len);
                }
            }
            NodeOp::Closed { conn } => {
                if let Some(c) = pick(conn, &conns) {
                    n.handle_closed(now, c);
                }
            }
            NodeOp::Advance { ms } => {
                now += Duration::from_millis(u64::from(ms) * 20);
                n.handle_timeout(now, unix + now.as_millis() / 1000);
            }
            NodeOp::Send {
                peer,
                code,
                payload,
            } => {
                let peers = n.peers();
                if let Some(p) = peers.get(usize::from(peer) % peers.len().max(1)) {
                    let _ = n.send(now, &p.id, ProtocolId::new(0), u64::from(code), &payload);
                }
            }
            NodeOp::AddStatic { key } => {
                let k = &key_pool()[usize::from(key) % key_pool().len()];
                // Refusals (ourselves, say) are part of what is fuzzed.
                let _ = n.add_static(
                    now,
                    &devp2p_core::Enode::new(*k.public(), addr(key).ip(), 30303, 30303),
                );
            }
            NodeOp::Trust { key } => {
                n.add_trusted(key_pool()[usize::from(key) % key_pool().len()].id());
                trusted += 1;
            }
            NodeOp::Disconnect { peer } => {
                let peers = n.peers();
                if let Some(p) = peers.get(usize::from(peer) % peers.len().max(1)) {
                    n.disconnect(now, &p.id, DisconnectReason::Requested);
                }
            }
        }
        while n.poll_transmit(&mut buf).is_some() {}
        while let Some(a) = n.poll_action() {
            if let devp2p_core::node::Action::Dial { conn, .. } = a {
                conns.push(conn);
            }
        }
        while n.poll_event().is_some() {}
        assert!(n.peer_count() <= 4 + trusted, "{} peers", n.peer_count());
    }
}

#[derive(Arbitrary, Debug)]
enum TableOp {
    AddFound { key: u8, ip: u8, subnet: u8 },
    AddInbound { key: u8, ip: u8, subnet: u8 },
    Remove { key: u8 },
    Revalidated { key: u8 },
    RevalidationFailed { key: u8 },
    Closest { key: u8 },
}

fn table_keys() -> &'static [NodeSecretKey] {
    static KEYS: OnceLock<Vec<NodeSecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..=255u8).map(keys::nth).collect())
}

/// Operations between two whole-table checks in the `table` target; after the others only
/// the bucket the operation touched (and the table's totals) is checked.
const TABLE_FULL_CHECK_EVERY: usize = 32;

/// The table fed adds, removes and revalidation outcomes; its invariants (sizes, IP limits,
/// no self, no duplicates) are checked after every step: the touched bucket and the table's
/// subnet totals each time ([`Table::check_invariants_for`]; every operation touches only the
/// bucket of its node), the whole table every `TABLE_FULL_CHECK_EVERY` (32) steps and at the
/// end.
pub fn table(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let local = table_keys()[0].id();
    let mut t = Table::new(local);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut now = Instant::from_millis(0);
    let node = |key: u8, ip: u8, subnet: u8| {
        let ip = match subnet % 5 {
            0 => IpAddr::V4(Ipv4Addr::new(127, 0, 0, ip)),
            s => IpAddr::V4(Ipv4Addr::new(203, 0, s, ip)),
        };
        DiscNode::new(*table_keys()[usize::from(key)].public(), ip, 30303, 30303)
    };
    for step in 1..=256 {
        let Ok(op) = TableOp::arbitrary(&mut u) else {
            break;
        };
        now += Duration::from_millis(10);
        let id = |k: u8| table_keys()[usize::from(k)].id();
        let touched = match op {
            TableOp::AddFound { key, ip, subnet } => {
                t.add_found(node(key, ip, subnet), now);
                key
            }
            TableOp::AddInbound { key, ip, subnet } => {
                t.add_inbound(node(key, ip, subnet), now);
                key
            }
            TableOp::Remove { key } => {
                t.remove(&id(key), now, &mut rng);
                key
            }
            TableOp::Revalidated { key } => {
                t.revalidation_succeeded(&id(key));
                key
            }
            TableOp::RevalidationFailed { key } => {
                t.revalidation_failed(&id(key), now, &mut rng);
                key
            }
            TableOp::Closest { key } => {
                let target = id(key);
                let c = t.closest(&target, 16, false);
                assert!(c.len() <= 16);
                assert!(c
                    .windows(2)
                    .all(|w| target.distance_cmp(&w[0].id(), &w[1].id()).is_le()));
                key
            }
        };
        let checked = if step % TABLE_FULL_CHECK_EVERY == 0 {
            t.check_invariants()
        } else {
            t.check_invariants_for(&id(touched))
        };
        if let Err(e) = checked {
            panic!("table invariant broken: {e}");
        }
        assert!(!t.contains(&local), "self in the table");
    }
    if let Err(e) = t.check_invariants() {
        panic!("table invariant broken: {e}");
    }
}
