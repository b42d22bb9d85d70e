//! Interop with an independent implementation: @ethereumjs/devp2p (pinned in
//! `tests/interop/package.json`) against our node, through each driver. Real sockets on
//! 127.0.0.1; every wait bounded. See `tests/INTEROP.md` for what the tests show and the
//! differences found; `DEVP2P_SKIP_INTEROP=1` skips them.

#[path = "../harness/e2e/mod.rs"]
mod e2e;
#[path = "../harness/interop.rs"]
mod interop;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use devp2p_core::discv4::wire::{
    self, Endpoint, FindNode, Packet, Ping, Pong, WireError, MAX_PACKET_SIZE, PING_VERSION,
};
use devp2p_core::discv4::{Event as DiscoveryEvent, PACKET_EXPIRATION_SECS};
use devp2p_core::node::{Direction, NodeEvent};
use devp2p_core::session::{DisconnectReason, Protocol, SessionError, Side};
use devp2p_core::{Enode, NodeId, NodeSecretKey};
use devp2p_mio::common::DriverConfig;
use e2e::{local_config, wait_for, Harness, MioHarness, TokioHarness};
use interop::{is, EjsPeer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::json;

/// Longest wait for a connection, a message or a disconnect on loopback (they take ms).
const WAIT: Duration = Duration::from_secs(10);
/// Longest wait for discovery steps (our bootstrap takes ~2.5 s of lookup timeouts).
const DISCOVERY_WAIT: Duration = Duration::from_secs(20);
/// How often our node pings in these tests (15 s by default), so that Pongs come back soon.
const PING_INTERVAL: Duration = Duration::from_millis(200);
/// Our read timeout in these tests (30 s by default): a peer whose Pongs we could not read
/// would be dropped this long after the last message we did read.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// ethereumjs's discovery table refresh period here (60 s by default): each known node is asked
/// for neighbours once per period.
const EJS_REFRESH_MS: &str = "1000";

macro_rules! both_drivers {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;

                #[test]
                fn tokio() {
                    if interop::ready(concat!(stringify!($scenario), "::tokio")) {
                        super::$scenario(&mut TokioHarness::new());
                    }
                }

                #[test]
                fn mio() {
                    if interop::ready(concat!(stringify!($scenario), "::mio")) {
                        super::$scenario(&mut MioHarness::new());
                    }
                }
            }
        )*
    };
}

both_drivers!(
    our_node_dials_ethereumjs,
    ethereumjs_dials_our_node,
    ethereumjs_requires_a_shared_capability,
    discovery_both_ways,
);

/// eth/68 (17 message ids, as geth and ethereumjs register it): the capability the ethereumjs
/// peer offers and requires.
fn eth68() -> Protocol {
    Protocol::new("eth", 68, 17)
}

/// A node without discovery that speaks eth/68 and pings every [`PING_INTERVAL`].
fn rlpx_config() -> DriverConfig {
    let mut c = local_config(false);
    c.node.session.protocols = vec![eth68()];
    c.node.session.ping_interval = PING_INTERVAL;
    c.node.session.read_timeout = READ_TIMEOUT;
    c
}

fn parse_enode(s: &str) -> Enode {
    s.parse()
        .unwrap_or_else(|e| panic!("ethereumjs printed a bad enode URL {s}: {e:?}"))
}

/// Our node `i`'s public key as ethereumjs writes it (128 hex characters).
fn pubkey(h: &impl Harness, i: usize) -> String {
    h.enode(i).public_key.to_string()
}

fn added_count(h: &impl Harness, i: usize, peer: NodeId) -> usize {
    h.log().with(i, |ev| {
        ev.iter()
            .filter(|e| matches!(e, NodeEvent::PeerAdded(p) if p.id == peer))
            .count()
    })
}

/// The `n`th (from 1) PeerRemoved of `peer` at node `i`.
fn nth_removed(
    h: &impl Harness,
    i: usize,
    peer: NodeId,
    n: usize,
) -> Option<(Side, Option<DisconnectReason>, Option<SessionError>)> {
    h.log().with(i, |ev| {
        ev.iter()
            .filter_map(|e| match e {
                NodeEvent::PeerRemoved {
                    id,
                    initiator,
                    reason,
                    error,
                } if *id == peer => Some((*initiator, *reason, error.clone())),
                _ => None,
            })
            .nth(n - 1)
    })
}

/// The RLP encoding of a small integer: how ethereumjs writes a Disconnect reason.
fn rlp_uint_hex(v: u8) -> String {
    match v {
        0 => "80".to_string(),
        1..=0x7f => format!("{v:02x}"),
        _ => format!("81{v:02x}"),
    }
}

/// Waits for session number `n` between our node `i` and ethereumjs to be up on both sides, and
/// checks each side's view of the other's Hello.
fn wait_connected(h: &mut impl Harness, i: usize, js: &EjsPeer, n: usize, direction: Direction) {
    let js_id = parse_enode(js.enode()).id();
    let pk = pubkey(h, i);
    wait_for(
        &format!("our node to add the ethereumjs peer ({})", h.driver()),
        WAIT,
        || added_count(h, i, js_id) >= n,
    );
    let hello = js.wait_nth("ethereumjs to add our node", WAIT, n, |e| {
        is(e, "peer_added", &pk)
    });
    // What ethereumjs read from our Hello.
    assert!(
        hello["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("devp2p-sansio/")),
        "{hello}"
    );
    assert_eq!(hello["version"], 5, "{hello}");
    assert_eq!(hello["caps"], json!(["eth/68"]), "{hello}");
    assert_eq!(hello["listen_port"], 0, "{hello}");
    // Our side of the RLPx handshake (auth when we dial, ack when it does) is EIP-8.
    let ours = match direction {
        Direction::Outbound => "eip8_auth",
        Direction::Inbound => "eip8_ack",
    };
    assert_eq!(hello[ours], true, "{hello}");
    // What we read from theirs.
    let peer = h
        .peers(i)
        .into_iter()
        .find(|p| p.id == js_id)
        .unwrap_or_else(|| panic!("{}: the ethereumjs peer is not listed", h.driver()));
    assert_eq!(peer.client_id, js.client());
    assert_eq!(peer.direction, direction);
    let caps: Vec<(String, u64)> = peer
        .capabilities
        .iter()
        .map(|c| (c.name.clone(), c.version))
        .collect();
    assert_eq!(caps, [("eth".to_string(), 68)]);
}

/// Pings both ways. ethereumjs's Ping gets our Pong; our Pings (every [`PING_INTERVAL`]) get
/// its Pongs, which we must decompress and read: with a [`READ_TIMEOUT`] of 2 s we would drop
/// the peer otherwise. ethereumjs sends both snappy-compressed (`01 00 c0`: length 1, a 1-byte
/// literal, the empty list).
fn ping_pong(h: &mut impl Harness, i: usize, js: &mut EjsPeer) {
    let js_id = parse_enode(js.enode()).id();
    let pk = pubkey(h, i);
    let pongs_before = js
        .matching(|e| is(e, "recv", &pk) && e["msg"] == "PONG")
        .len();
    let pings_before = js
        .matching(|e| is(e, "recv", &pk) && e["msg"] == "PING")
        .len();
    js.send(json!({"cmd": "ping", "pubkey": pk}));
    js.wait_nth("ethereumjs to get our Pong", WAIT, pongs_before + 1, |e| {
        is(e, "recv", &pk) && e["msg"] == "PONG"
    });
    // Three Pings take 0.6 s; the read timeout is 2 s, so a fourth Pong read proves the
    // earlier ones were read too.
    js.wait_nth(
        "ethereumjs to get 4 of our Pings",
        WAIT,
        pings_before + 4,
        |e| is(e, "recv", &pk) && e["msg"] == "PING",
    );
    for sent in js.matching(|e| is(e, "sent", &pk) && (e["msg"] == "PING" || e["msg"] == "PONG")) {
        assert_eq!(sent["payload"], "0100c0", "compressed after Hello: {sent}");
    }
    assert!(
        h.peers(i).iter().any(|p| p.id == js_id),
        "{}: we dropped the ethereumjs peer: {:?}",
        h.driver(),
        nth_removed(h, i, js_id, 1)
    );
}

/// We send Disconnect(`reason`) (compressed, in the list form); both sides report `reason`.
fn we_hang_up(h: &mut impl Harness, i: usize, js: &EjsPeer, n: usize, reason: DisconnectReason) {
    let js_id = parse_enode(js.enode()).id();
    let pk = pubkey(h, i);
    h.disconnect(i, js_id, reason);
    wait_for("our node to report its disconnect", WAIT, || {
        nth_removed(h, i, js_id, n).is_some()
    });
    assert_eq!(
        nth_removed(h, i, js_id, n),
        Some((Side::Local, Some(reason), None)),
        "{}",
        h.driver()
    );
    let removed = js.wait_nth("ethereumjs to report our disconnect", WAIT, n, |e| {
        is(e, "peer_removed", &pk)
    });
    assert_eq!(removed["reason"], reason.code(), "{removed}\n{}", js.dump());
    assert_eq!(removed["by_us"], false, "{removed}");
}

/// ethereumjs sends Disconnect(`reason`): a bare RLP integer, not compressed (unlike every
/// other message after Hello); both sides report `reason`.
fn they_hang_up(
    h: &mut impl Harness,
    i: usize,
    js: &mut EjsPeer,
    n: usize,
    reason: DisconnectReason,
) {
    let js_id = parse_enode(js.enode()).id();
    let pk = pubkey(h, i);
    js.send(json!({"cmd": "disconnect", "pubkey": pk, "reason": reason.code()}));
    let sent = js.wait_for("ethereumjs to send Disconnect", WAIT, |e| {
        is(e, "sent", &pk) && e["msg"] == "DISCONNECT"
    });
    assert_eq!(sent["payload"], rlp_uint_hex(reason.code()), "{sent}");
    wait_for("our node to report ethereumjs's disconnect", WAIT, || {
        nth_removed(h, i, js_id, n).is_some()
    });
    assert_eq!(
        nth_removed(h, i, js_id, n),
        Some((Side::Remote, Some(reason), None)),
        "{}",
        h.driver()
    );
    let removed = js.wait_nth("ethereumjs to report its disconnect", WAIT, n, |e| {
        is(e, "peer_removed", &pk)
    });
    assert_eq!(removed["reason"], reason.code(), "{removed}");
    assert_eq!(removed["by_us"], true, "{removed}");
}

/// Our node dials an ethereumjs RLPx server: handshake, Hello, Ping/Pong both ways, and we hang
/// up with a reason both sides report. A second node of ours connects and ethereumjs hangs
/// up (reason 0, the RLP zero `80`).
fn our_node_dials_ethereumjs(h: &mut impl Harness) {
    let mut js = EjsPeer::start(&["--rlpx"]);
    let a = h.start(rlpx_config());
    h.add_static(a, parse_enode(js.enode()))
        .expect("a dialable static peer");
    wait_connected(h, a, &js, 1, Direction::Outbound);
    ping_pong(h, a, &mut js);
    we_hang_up(h, a, &js, 1, DisconnectReason::TooManyPeers);

    let b = h.start(rlpx_config());
    h.add_static(b, parse_enode(js.enode()))
        .expect("a dialable static peer");
    wait_connected(h, b, &js, 1, Direction::Outbound);
    ping_pong(h, b, &mut js);
    they_hang_up(h, b, &mut js, 1, DisconnectReason::Requested);
}

/// ethereumjs dials our node, with the same checks; it hangs up first, then dials again and we
/// hang up.
fn ethereumjs_dials_our_node(h: &mut impl Harness) {
    let a = h.start(rlpx_config());
    let mut js = EjsPeer::start(&["--rlpx"]);
    let ours = h.enode(a).to_string();
    js.send(json!({"cmd": "dial", "enode": ours}));
    wait_connected(h, a, &js, 1, Direction::Inbound);
    ping_pong(h, a, &mut js);
    they_hang_up(h, a, &mut js, 1, DisconnectReason::ClientQuitting);

    js.send(json!({"cmd": "dial", "enode": ours}));
    wait_connected(h, a, &js, 2, Direction::Inbound);
    ping_pong(h, a, &mut js);
    we_hang_up(h, a, &js, 2, DisconnectReason::UselessPeer);
}

/// ethereumjs refuses a peer with no capability in common: our node, configured with no
/// sub-protocol at all (so it accepts anyone itself), is told "useless peer" right after
/// the Hello exchange, as a bare byte.
fn ethereumjs_requires_a_shared_capability(h: &mut impl Harness) {
    let js = EjsPeer::start(&["--rlpx"]);
    let js_id = parse_enode(js.enode()).id();
    let mut c = rlpx_config();
    c.node.session.protocols.clear();
    let a = h.start(c);
    let pk = pubkey(h, a);
    h.add_static(a, parse_enode(js.enode()))
        .expect("a dialable static peer");
    let sent = js.wait_for("ethereumjs to refuse our node", WAIT, |e| {
        is(e, "sent", &pk) && e["msg"] == "DISCONNECT"
    });
    assert_eq!(sent["payload"], "03", "{sent}");
    wait_for("our node to hear the refusal", WAIT, || {
        nth_removed(h, a, js_id, 1).is_some()
    });
    assert_eq!(
        nth_removed(h, a, js_id, 1),
        Some((Side::Remote, Some(DisconnectReason::UselessPeer), None)),
        "{}",
        h.driver()
    );
    // ethereumjs reports only peers it accepted.
    assert!(js.matching(|e| is(e, "peer_added", &pk)).is_empty());
}

/// Whether our node `i` logged the end of its bootstrap.
fn bootstrapped(h: &impl Harness, i: usize) -> bool {
    h.log().with(i, |ev| {
        ev.iter().any(|e| {
            matches!(e, NodeEvent::Discovery(d) if matches!(d.as_ref(), DiscoveryEvent::Bootstrapped))
        })
    })
}

/// Discovery both ways. Our node A bootstraps from ethereumjs node J1; then ethereumjs node J2
/// bootstraps from A. Each ends up in the other's table, and J1 and J2 find each other through
/// A's Neighbours.
///
/// Along the way: J1 pings the `from` endpoint of A's Ping back (here A's real address); J2's
/// first FindNode, sent right after A's Pong and before J2 has answered A's Ping, is dropped by
/// A (no endpoint proof yet, as in geth), and J2 asks again only on its refresh timer.
fn discovery_both_ways(h: &mut impl Harness) {
    let j1 = EjsPeer::start(&["--dpt", "--refresh-ms", EJS_REFRESH_MS]);
    let j1_enode = parse_enode(j1.enode());
    let mut c = local_config(true);
    c.node.no_dial = true;
    c.node.bootnodes = vec![j1_enode.clone()];
    let a = h.start(c);
    let a_enode = h.enode(a);
    let a_pk = pubkey(h, a);
    let a_udp = a_enode.udp_addr().expect("an IP").to_string();

    wait_for(
        &format!("our node to bootstrap from ethereumjs ({})", h.driver()),
        DISCOVERY_WAIT,
        || bootstrapped(h, a) && h.table(a).contains(&j1_enode.id()),
    );
    j1.wait_for("ethereumjs to put our node in its table", WAIT, |e| {
        is(e, "table_added", &a_pk)
    });
    let ping = j1.wait_for("our Ping", WAIT, |e| {
        is(e, "udp_in", &a_pk) && e["type"] == "ping"
    });
    assert_eq!(ping["advertised"], a_udp.as_str(), "{ping}");
    j1.wait_for("ethereumjs to ping the endpoint we advertised", WAIT, |e| {
        e["event"] == "udp_out" && e["type"] == "ping" && e["to"] == a_udp.as_str()
    });

    let j2 = EjsPeer::start(&[
        "--dpt",
        "--refresh-ms",
        EJS_REFRESH_MS,
        "--bootnode",
        &a_enode.to_string(),
    ]);
    let j2_enode = parse_enode(j2.enode());
    j2.wait_for("ethereumjs to put our node in its table", WAIT, |e| {
        is(e, "table_added", &a_pk)
    });
    wait_for(
        &format!("ethereumjs to be in our table ({})", h.driver()),
        DISCOVERY_WAIT,
        || h.table(a).contains(&j2_enode.id()),
    );
    let answer = j2.wait_for("our Neighbours", DISCOVERY_WAIT, |e| {
        is(e, "udp_in", &a_pk) && e["type"] == "neighbours"
    });
    // Which nodes it lists depends on which A has revalidated yet (like geth, A prefers nodes
    // that answered a revalidation Ping); never none, as A holds J2 at least.
    assert!(
        answer["peers"].as_array().is_some_and(|p| !p.is_empty()),
        "{answer}"
    );
    // J2 asked A at bootstrap and was ignored, then asked again on its refresh timer.
    let events = j2.events();
    let first_answer = events
        .iter()
        .position(|e| is(e, "udp_in", &a_pk) && e["type"] == "neighbours")
        .expect("waited for it");
    let asked = events[..first_answer]
        .iter()
        .filter(|e| is(e, "udp_out", &a_pk) && e["type"] == "findneighbours")
        .count();
    assert!(
        asked >= 2,
        "J2's first FindNode should be dropped (sent before its endpoint proof); asked {asked} \
         times before an answer\n{}",
        j2.dump()
    );
    // The two ethereumjs nodes find each other through ours (J2 pings J1 from our Neighbours,
    // or J1 pings J2 from the Neighbours it got from us on its own refresh).
    j2.wait_for(
        "the ethereumjs nodes to find each other through ours",
        DISCOVERY_WAIT,
        |e| is(e, "table_added", j1.pubkey()),
    );
}

/// A fresh key and a UDP socket on 127.0.0.1, for hand-made discovery packets.
struct Prober {
    key: NodeSecretKey,
    socket: UdpSocket,
}

impl Prober {
    fn new(seed: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("setting a read timeout");
        Prober {
            key: NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(seed)),
            socket,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("bound")
    }

    fn endpoint(&self, tcp: u16) -> Endpoint {
        Endpoint {
            ip: Some(self.addr().ip()),
            udp: self.addr().port(),
            tcp,
        }
    }

    fn send(&self, to: SocketAddr, packet: &Packet) {
        let (bytes, _) = wire::encode(packet, &self.key);
        self.socket.send_to(&bytes, to).expect("sending a datagram");
    }

    /// A Ping to `to`, advertising `from`, expiring at `expiration`.
    fn ping(&self, to: SocketAddr, from: Endpoint, expiration: u64) {
        let to_endpoint = Endpoint {
            ip: Some(to.ip()),
            udp: to.port(),
            tcp: 0,
        };
        self.send(
            to,
            &Packet::Ping(Ping {
                version: PING_VERSION,
                from,
                to: to_endpoint,
                expiration,
                enr_seq: None,
            }),
        );
    }

    /// The next datagram from `from` within `timeout`, as received.
    fn recv_raw(&self, from: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.socket.recv_from(&mut buf) {
                Ok((n, src)) if src == from => return Some(buf[..n].to_vec()),
                _ => {}
            }
        }
        None
    }

    /// The first packet from `from` that decodes and satisfies `f`, within `timeout`.
    fn recv(
        &self,
        from: &Enode,
        timeout: Duration,
        f: impl Fn(&Packet) -> bool,
    ) -> Option<wire::Decoded> {
        let addr = from.udp_addr().expect("an IP");
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let bytes = self.recv_raw(addr, left)?;
            match wire::decode(&bytes) {
                Ok(d) if d.sender == from.public_key && f(&d.packet) => return Some(d),
                _ => {}
            }
        }
        None
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn expiration() -> u64 {
    unix_secs() + PACKET_EXPIRATION_SECS
}

/// Three ethereumjs discovery behaviours that differ from geth and from us, on hand-made
/// packets: it answers a FindNode from a node it never heard of (no endpoint proof); it pings
/// the `from` endpoint a Ping advertises rather than the address the Ping came from; and it
/// answers a Ping that expired a minute ago. Our driver is not involved, so this runs once.
#[test]
fn ethereumjs_trusts_unproven_endpoints_and_expired_packets() {
    if !interop::ready("ethereumjs_trusts_unproven_endpoints_and_expired_packets") {
        return;
    }
    let js = EjsPeer::start(&["--dpt"]);
    let j = parse_enode(js.enode());
    let j_udp = j.udp_addr().expect("an IP");

    let stranger = Prober::new(1);
    stranger.send(
        j_udp,
        &Packet::FindNode(FindNode {
            target: [7; 64],
            expiration: expiration(),
        }),
    );
    assert!(
        stranger
            .recv(&j, WAIT, |p| matches!(p, Packet::Neighbors(_)))
            .is_some(),
        "no Neighbours for an unproven FindNode\n{}",
        js.dump()
    );

    let pinger = Prober::new(2);
    let elsewhere = Prober::new(3);
    pinger.ping(j_udp, elsewhere.endpoint(0), expiration());
    assert!(
        pinger
            .recv(&j, WAIT, |p| matches!(p, Packet::Pong(_)))
            .is_some(),
        "no Pong to the Ping's source\n{}",
        js.dump()
    );
    assert!(
        elsewhere
            .recv(&j, WAIT, |p| matches!(p, Packet::Ping(_)))
            .is_some(),
        "ethereumjs did not ping the advertised endpoint\n{}",
        js.dump()
    );

    let late = Prober::new(4);
    late.ping(j_udp, late.endpoint(0), unix_secs() - 60);
    assert!(
        late.recv(&j, WAIT, |p| matches!(p, Packet::Pong(_)))
            .is_some(),
        "no Pong to an expired Ping\n{}",
        js.dump()
    );
}

/// ethereumjs answers FindNode with up to 16 nodes in one Neighbours packet, where geth sends
/// at most 12 per packet to stay within discv4's 1280 bytes. From 15 IPv4 nodes with TCP ports
/// on, its packet is larger, and geth and we drop it unread.
#[test]
fn ethereumjs_neighbours_exceed_1280_bytes_from_15_nodes() {
    if !interop::ready("ethereumjs_neighbours_exceed_1280_bytes_from_15_nodes") {
        return;
    }
    let js = EjsPeer::start(&["--dpt"]);
    let j = parse_enode(js.enode());
    let j_udp = j.udp_addr().expect("an IP");
    // 15 nodes join its table: each pings it, and answers the Ping it gets back. Each needs a
    // TCP port of its own: ethereumjs takes a second node at the same IP and TCP port for the
    // first one and does not ping it.
    let nodes: Vec<Prober> = (10..25).map(Prober::new).collect();
    for n in &nodes {
        n.ping(j_udp, n.endpoint(n.addr().port()), expiration());
    }
    for (i, n) in nodes.iter().enumerate() {
        let ping = n
            .recv(&j, WAIT, |p| matches!(p, Packet::Ping(_)))
            .unwrap_or_else(|| panic!("node {i}: no Ping back\n{}", js.dump()));
        n.send(
            j_udp,
            &Packet::Pong(Pong {
                to: Endpoint {
                    ip: Some(j_udp.ip()),
                    udp: j_udp.port(),
                    tcp: 0,
                },
                ping_hash: ping.hash,
                expiration: expiration(),
                enr_seq: None,
            }),
        );
    }
    js.wait_until("15 nodes in the ethereumjs table", WAIT, |ev| {
        ev.iter().filter(|e| e["event"] == "table_added").count() >= 15
    });
    let asker = Prober::new(30);
    asker.send(
        j_udp,
        &Packet::FindNode(FindNode {
            target: [9; 64],
            expiration: expiration(),
        }),
    );
    let answer = asker
        .recv_raw(j_udp, WAIT)
        .unwrap_or_else(|| panic!("no answer to FindNode\n{}", js.dump()));
    assert!(
        answer.len() > MAX_PACKET_SIZE,
        "{} bytes\n{}",
        answer.len(),
        js.dump()
    );
    assert!(matches!(wire::decode(&answer), Err(WireError::TooLarge)));
}
