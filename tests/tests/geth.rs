//! Interop against go-ethereum, the reference implementation: geth's own packages (through
//! the harness in `tests/interop/geth/`, built from the Go module pinned to go-ethereum
//! v1.17.10) and geth's `devp2p` tool, against our node through each driver. Real sockets on
//! 127.0.0.1; every wait bounded. See `tests/INTEROP.md` for what the tests show and the
//! differences found; `DEVP2P_SKIP_GETH=1` skips them.

#[path = "../harness/e2e/mod.rs"]
mod e2e;
#[path = "../harness/geth.rs"]
mod geth;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use devp2p_core::keccak::keccak256;
use devp2p_core::node::{Direction, NodeEvent, PeerInfo};
use devp2p_core::rlpx::{MAX_MESSAGE_SIZE, MAX_UNCOMPRESSED_SIZE};
use devp2p_core::session::{DisconnectReason, Protocol, ProtocolId, SessionError, Side};
use devp2p_core::{Enode, NodeId};
use devp2p_mio::common::DriverConfig;
use e2e::{local_config, wait_for, Harness, MioHarness, TokioHarness};
use geth::go_build::GETH_DEVP2P;
use geth::{geth_binary, geth_enabled, is, to_hex, xorshift, GethPeer};
use serde_json::{json, Value};

/// Longest wait for a connection, a message or a disconnect on loopback (they take ms).
const WAIT: Duration = Duration::from_secs(10);
/// Longest wait for a large message (16 MiB through a debug build takes about a second).
const LARGE_WAIT: Duration = Duration::from_secs(60);
/// How often our node pings in these tests (15 s by default), so that Pongs come back soon.
const PING_INTERVAL: Duration = Duration::from_millis(200);
/// Our read timeout in these tests (30 s by default): a peer whose Pongs we could not read
/// would be dropped this long after the last message we did read.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// geth's sub-protocols: two versions of `aaa` (the higher shared one must win), `bbb`, and
/// `zzz`, which we do not speak.
const GETH_PROTOCOLS: &str = "aaa/1/5,aaa/2/7,bbb/1/3,zzz/1/2";
/// Ours, in another order: `bbb`, `aaa` 2 and 3 (geth has no 3), and `abc`, which geth does
/// not speak. Shared: aaa/2 at wire ids 0x10..0x17, bbb/1 at 0x17..0x1a.
fn our_protocols() -> Vec<Protocol> {
    vec![
        Protocol::new("bbb", 1, 3),
        Protocol::new("aaa", 2, 7),
        Protocol::new("aaa", 3, 9),
        Protocol::new("abc", 1, 4),
    ]
}
/// Our `bbb/1`.
const BBB: ProtocolId = ProtocolId::new(0);
/// Our `aaa/2`.
const AAA: ProtocolId = ProtocolId::new(1);

macro_rules! both_drivers {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;

                #[test]
                fn tokio() {
                    if geth_enabled(concat!(stringify!($scenario), "::tokio")) {
                        super::$scenario(&mut TokioHarness::new());
                    }
                }

                #[test]
                fn mio() {
                    if geth_enabled(concat!(stringify!($scenario), "::mio")) {
                        super::$scenario(&mut MioHarness::new());
                    }
                }
            }
        )*
    };
}

both_drivers!(
    we_dial_geth,
    geth_dials_us,
    every_disconnect_reason_both_ways
);

/// A node without discovery speaking [`our_protocols`], pinging every [`PING_INTERVAL`].
fn rlpx_config() -> DriverConfig {
    let mut c = local_config(false);
    c.node.session.protocols = our_protocols();
    c.node.session.ping_interval = PING_INTERVAL;
    c.node.session.read_timeout = READ_TIMEOUT;
    c
}

/// A geth RLPx server without discovery speaking [`GETH_PROTOCOLS`], plus `extra` flags.
fn geth_rlpx(extra: &[&str]) -> GethPeer {
    let mut args = vec!["--no-discovery", "--protocols", GETH_PROTOCOLS];
    args.extend_from_slice(extra);
    GethPeer::start(&args)
}

fn peer_info(h: &mut impl Harness, i: usize, peer: NodeId) -> Option<PeerInfo> {
    h.peers(i).into_iter().find(|p| p.id == peer)
}

fn added_count(h: &impl Harness, i: usize, peer: NodeId) -> usize {
    h.log().with(i, |ev| {
        ev.iter()
            .filter(|e| matches!(e, NodeEvent::PeerAdded(p) if p.id == peer))
            .count()
    })
}

type Removal = (Side, Option<DisconnectReason>, Option<SessionError>);

/// The first PeerRemoved of `peer` at node `i`.
fn removed(h: &impl Harness, i: usize, peer: NodeId) -> Option<Removal> {
    h.log().with(i, |ev| {
        ev.iter().find_map(|e| match e {
            NodeEvent::PeerRemoved {
                id,
                initiator,
                reason,
                error,
            } if *id == peer => Some((*initiator, *reason, error.clone())),
            _ => None,
        })
    })
}

/// Waits until our node `i` and geth both list each other as peers with their protocols
/// running, and checks what each read from the other's Hello.
fn wait_connected(h: &mut impl Harness, i: usize, geth: &GethPeer, direction: Direction) {
    let geth_id = geth.id();
    let ours = h.id(i);
    wait_for(
        &format!("our node to add geth ({})", h.driver()),
        WAIT,
        || added_count(h, i, geth_id) >= 1,
    );
    let added = geth.wait_for("geth to add our node", WAIT, |e| is(e, "peer_added", &ours));
    for proto in ["aaa/2", "bbb/1"] {
        geth.wait_for(&format!("geth to start {proto}"), WAIT, |e| {
            is(e, "protocol_started", &ours) && e["protocol"] == proto
        });
    }
    // Only the highest shared version of each shared name runs.
    let started: BTreeSet<String> = geth
        .matching(|e| is(e, "protocol_started", &ours))
        .iter()
        .map(|e| e["protocol"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        started,
        BTreeSet::from(["aaa/2".to_string(), "bbb/1".to_string()])
    );
    // What geth read from our Hello.
    assert!(
        added["name"]
            .as_str()
            .is_some_and(|c| c.starts_with("devp2p-sansio/")),
        "{added}"
    );
    let caps: BTreeSet<&str> = added["caps"]
        .as_array()
        .expect("caps")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        caps,
        BTreeSet::from(["aaa/2", "aaa/3", "abc/1", "bbb/1"]),
        "{added}"
    );
    assert_eq!(
        added["inbound"],
        direction == Direction::Outbound,
        "{added}"
    );
    // What we read from geth's, and the id ranges we gave the shared protocols: by name,
    // from 0x10, whatever order either side listed them in.
    let peer = peer_info(h, i, geth_id)
        .unwrap_or_else(|| panic!("{}: geth is not listed as a peer", h.driver()));
    assert_eq!(peer.client_id, geth.client());
    assert_eq!(peer.direction, direction);
    let shared: Vec<(String, u64, u64, u64, ProtocolId)> = peer
        .capabilities
        .iter()
        .map(|c| (c.name.clone(), c.version, c.offset, c.length, c.protocol))
        .collect();
    assert_eq!(
        shared,
        [
            ("aaa".to_string(), 2, 0x10, 7, AAA),
            ("bbb".to_string(), 1, 0x17, 3, BBB),
        ]
    );
}

/// One message of the exchange: which protocol, which code, and its payload.
#[derive(Clone)]
struct Planned {
    protocol: ProtocolId,
    code: u64,
    payload: Payload,
}

#[derive(Clone, Copy)]
enum Payload {
    /// `len` bytes of the xorshift stream of `seed` (incompressible).
    Random { len: usize, seed: u64 },
    /// `len` zero bytes (compressible).
    Zeros { len: usize },
}

impl Payload {
    fn bytes(self) -> Vec<u8> {
        match self {
            Payload::Random { len, seed } => xorshift(len, seed),
            Payload::Zeros { len } => vec![0; len],
        }
    }

    fn len(self) -> usize {
        match self {
            Payload::Random { len, .. } | Payload::Zeros { len } => len,
        }
    }

    /// The harness's payload fields.
    fn json(self, cmd: &mut Value) {
        match self {
            Payload::Random { len, seed } => {
                cmd["size"] = json!(len);
                cmd["seed"] = json!(seed);
            }
            Payload::Zeros { len } => {
                cmd["size"] = json!(len);
                cmd["fill"] = json!(0);
            }
        }
    }
}

fn geth_name(p: ProtocolId) -> &'static str {
    if p == AAA {
        "aaa/2"
    } else {
        "bbb/1"
    }
}

/// 0 B, 1 B, 1 KiB and 1 MiB on both protocols, every code at the ends of each range (the
/// last aaa code, 6, sits just below bbb's first wire id), and then `largest`.
fn plan(largest: &[Payload]) -> Vec<Planned> {
    let mut plan = Vec::new();
    let sizes = [0, 1, 1024, 1 << 20];
    for (i, len) in sizes.into_iter().enumerate() {
        let seed = i as u64 + 1;
        plan.push(Planned {
            protocol: AAA,
            code: [0, 6, 3, 6][i],
            payload: Payload::Random { len, seed },
        });
        plan.push(Planned {
            protocol: BBB,
            code: [2, 0, 2, 1][i],
            payload: Payload::Random {
                len,
                seed: seed + 100,
            },
        });
    }
    plan.push(Planned {
        protocol: BBB,
        code: 2,
        payload: Payload::Zeros { len: 1 << 20 },
    });
    for (i, p) in largest.iter().enumerate() {
        plan.push(Planned {
            protocol: if i % 2 == 0 { AAA } else { BBB },
            code: if i % 2 == 0 { 6 } else { 2 },
            payload: *p,
        });
    }
    plan
}

/// Bytes the plan would put on the wire with compression on: the random payloads whole, the
/// zeros at most a tenth (snappy shrinks them about twentyfold).
fn compressed_bound(plan: &[Planned]) -> u64 {
    plan.iter()
        .map(|m| match m.payload {
            Payload::Random { len, .. } => len as u64,
            Payload::Zeros { len } => len as u64 / 10,
        })
        .sum::<u64>()
        + 64 * 1024
}

fn zeros_total(plan: &[Planned]) -> u64 {
    plan.iter()
        .map(|m| match m.payload {
            Payload::Zeros { len } => len as u64,
            Payload::Random { .. } => 0,
        })
        .sum()
}

/// A message as geth reports it: code, size, Keccak-256, and the bytes when small.
type GethRead = (u64, usize, String, Option<String>);

/// We send `plan` to geth; geth reports each message in order per protocol, with its code,
/// size and Keccak-256 (and the bytes of the small ones). Our bytes out show snappy on.
fn we_send(h: &mut impl Harness, i: usize, geth: &GethPeer, plan: &[Planned]) {
    let geth_id = geth.id();
    let ours = h.id(i);
    let out_before = peer_info(h, i, geth_id).expect("connected").bytes_out;
    let mut expected: BTreeMap<&str, Vec<GethRead>> = BTreeMap::new();
    for (n, m) in plan.iter().enumerate() {
        let bytes = m.payload.bytes();
        let small = (bytes.len() <= 64).then(|| to_hex(&bytes));
        expected.entry(geth_name(m.protocol)).or_default().push((
            m.code,
            bytes.len(),
            to_hex(&keccak256(&bytes)),
            small,
        ));
        h.send(i, geth_id, m.protocol, m.code, bytes)
            .unwrap_or_else(|e| panic!("{}: message {n} ({} B): {e}", h.driver(), m.payload.len()));
    }
    geth.wait_until(
        &format!("geth to read our {} messages", plan.len()),
        LARGE_WAIT,
        |ev| ev.iter().filter(|e| is(e, "message", &ours)).count() >= plan.len(),
    );
    for (proto, want) in &expected {
        let got: Vec<GethRead> = geth
            .matching(|e| is(e, "message", &ours) && e["protocol"] == *proto)
            .iter()
            .map(|e| {
                (
                    e["code"].as_u64().expect("code"),
                    e["size"].as_u64().expect("size") as usize,
                    e["keccak"].as_str().expect("keccak").to_string(),
                    e["payload"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert!(
            got == *want,
            "{}: geth read on {proto} (code, size, keccak, payload) {got:?}, we sent {want:?}",
            h.driver()
        );
    }
    let out = peer_info(h, i, geth_id).expect("connected").bytes_out - out_before;
    assert!(
        out < compressed_bound(plan),
        "{}: {out} bytes out for {} bytes of zeros: not compressed?",
        h.driver(),
        zeros_total(plan)
    );
}

/// geth sends `plan` to us (large payloads generated on its side from a seed); we get each
/// message intact, in order per protocol. Our bytes in show geth compressed.
fn geth_sends(h: &mut impl Harness, i: usize, geth: &mut GethPeer, plan: &[Planned]) {
    let geth_id = geth.id();
    let ours = h.id(i);
    let in_before = peer_info(h, i, geth_id).expect("connected").bytes_in;
    let received_before = h.log().with(i, |ev| {
        ev.iter()
            .filter(|e| matches!(e, NodeEvent::Message { peer, .. } if *peer == geth_id))
            .count()
    });
    for m in plan {
        let mut cmd = json!({
            "cmd": "send",
            "peer": ours.to_string(),
            "protocol": geth_name(m.protocol),
            "code": m.code,
        });
        m.payload.json(&mut cmd);
        geth.send(cmd);
    }
    geth.wait_until("geth to write its messages", LARGE_WAIT, |ev| {
        ev.iter().filter(|e| is(e, "sent", &ours)).count() >= plan.len()
    });
    let errors = geth.matching(|e| is(e, "sent", &ours) && !e["error"].is_null());
    assert!(errors.is_empty(), "geth failed to send: {errors:?}");
    let from_geth = |ev: &[NodeEvent]| -> Vec<(ProtocolId, u64, Vec<u8>)> {
        ev.iter()
            .filter_map(|e| match e {
                NodeEvent::Message {
                    peer,
                    protocol,
                    code,
                    payload,
                } if *peer == geth_id => Some((*protocol, *code, payload.clone())),
                _ => None,
            })
            .skip(received_before)
            .collect()
    };
    wait_for(
        &format!(
            "our node to read geth's {} messages ({})",
            plan.len(),
            h.driver()
        ),
        LARGE_WAIT,
        || h.log().with(i, |ev| from_geth(ev).len()) >= plan.len(),
    );
    let got = h.log().with(i, from_geth);
    for proto in [AAA, BBB] {
        let want: Vec<&Planned> = plan.iter().filter(|m| m.protocol == proto).collect();
        let got: Vec<&(ProtocolId, u64, Vec<u8>)> =
            got.iter().filter(|(p, ..)| *p == proto).collect();
        assert_eq!(got.len(), want.len(), "{}: {proto}", h.driver());
        for (n, (m, (_, code, payload))) in want.iter().zip(got).enumerate() {
            assert_eq!(*code, m.code, "{}: {proto} message {n}: code", h.driver());
            assert!(
                *payload == m.payload.bytes(),
                "{}: {proto} message {n} ({} B, got {} B) altered",
                h.driver(),
                m.payload.len(),
                payload.len()
            );
        }
    }
    let inbound = peer_info(h, i, geth_id).expect("connected").bytes_in - in_before;
    assert!(
        inbound < compressed_bound(plan),
        "{}: {inbound} bytes in for {} bytes of zeros: not compressed?",
        h.driver(),
        zeros_total(plan)
    );
}

/// The largest messages each side can send the other: ours, any content up to
/// [`MAX_MESSAGE_SIZE`] and compressible content up to [`MAX_UNCOMPRESSED_SIZE`] (geth reads
/// both: it takes any frame of up to 2^24−1 bytes that decompresses to at most 2^24−1);
/// geth's, what its encoder fits in one frame (for incompressible bytes 16,776,442, as it
/// computes) and 2^24−1 compressible bytes.
fn largest(geth: &mut GethPeer, ours: bool) -> Vec<Payload> {
    if ours {
        vec![
            Payload::Random {
                len: MAX_MESSAGE_SIZE,
                seed: 77,
            },
            Payload::Zeros {
                len: MAX_UNCOMPRESSED_SIZE,
            },
        ]
    } else {
        let max = geth.request_ok(json!({"cmd": "max_size", "seed": 78}), WAIT);
        assert_eq!(max["plain"], MAX_UNCOMPRESSED_SIZE as u64, "{max}");
        let incompressible = max["incompressible"].as_u64().expect("a size") as usize;
        vec![
            Payload::Random {
                len: incompressible,
                seed: 78,
            },
            Payload::Zeros {
                len: MAX_UNCOMPRESSED_SIZE,
            },
        ]
    }
}

/// Pings: ours go out every [`PING_INTERVAL`] and geth's Pongs come back: with a
/// [`READ_TIMEOUT`] of 2 s and nothing else on the wire, we would drop geth otherwise.
fn pings_are_answered(h: &mut impl Harness, i: usize, geth: &GethPeer) {
    let geth_id = geth.id();
    std::thread::sleep(READ_TIMEOUT + Duration::from_millis(500));
    assert!(
        peer_info(h, i, geth_id).is_some(),
        "{}: we dropped geth: {:?}",
        h.driver(),
        removed(h, i, geth_id)
    );
}

/// Everything of a session with geth, once connected: both Hellos, the shared protocols and
/// their id offsets, messages of every size both ways on both protocols, snappy on both ways,
/// Pings answered.
fn exchange(h: &mut impl Harness, i: usize, geth: &mut GethPeer, direction: Direction) {
    wait_connected(h, i, geth, direction);
    let ours = largest(geth, true);
    we_send(h, i, geth, &plan(&ours));
    let theirs = largest(geth, false);
    geth_sends(h, i, geth, &plan(&theirs));
    pings_are_answered(h, i, geth);
    let ours = h.id(i);
    assert!(
        geth.matching(|e| is(e, "peer_removed", &ours)).is_empty(),
        "{}: geth dropped us\n{}",
        h.driver(),
        geth.dump()
    );
}

/// We dial geth (a static peer): EIP-8 auth (the only kind we write), Hello both ways, the
/// whole exchange.
fn we_dial_geth(h: &mut impl Harness) {
    let mut geth = geth_rlpx(&[]);
    let a = h.start(rlpx_config());
    h.add_static(a, geth.enode())
        .expect("a dialable static peer");
    exchange(h, a, &mut geth, Direction::Outbound);
}

/// geth dials us (`Server.AddPeer`): our EIP-8 ack, the same exchange.
fn geth_dials_us(h: &mut impl Harness) {
    let mut geth = geth_rlpx(&[]);
    let a = h.start(rlpx_config());
    geth.request_ok(
        json!({"cmd": "dial", "enode": h.enode(a).to_string()}),
        WAIT,
    );
    exchange(h, a, &mut geth, Direction::Inbound);
}

/// Every reason [`DisconnectReason`] names (0x0c..=0x0f are unassigned).
const REASONS: [DisconnectReason; 13] = [
    DisconnectReason::Requested,
    DisconnectReason::TcpError,
    DisconnectReason::BreachOfProtocol,
    DisconnectReason::UselessPeer,
    DisconnectReason::TooManyPeers,
    DisconnectReason::AlreadyConnected,
    DisconnectReason::IncompatibleVersion,
    DisconnectReason::InvalidIdentity,
    DisconnectReason::ClientQuitting,
    DisconnectReason::UnexpectedIdentity,
    DisconnectReason::ConnectedToSelf,
    DisconnectReason::PingTimeout,
    DisconnectReason::SubprotocolError,
];

/// A node without discovery speaking [`our_protocols`], default timers.
fn quiet_config() -> DriverConfig {
    let mut c = local_config(false);
    c.node.session.protocols = our_protocols();
    c
}

/// Each reason, sent by us and read by geth, and sent by geth and read by us: 26 sessions at
/// once, one node of ours each, half dialled by us and half by geth. Both sides report the
/// reason and who sent it, with one exception: geth never sends 0x01 (TCP sub-system
/// error); told to disconnect with it, it closes the connection without a Disconnect
/// (`rlpxTransport.close` skips `DiscNetworkError`), and we report a close without reason.
fn every_disconnect_reason_both_ways(h: &mut impl Harness) {
    let mut geth = geth_rlpx(&["--max-peers", "64"]);
    let geth_id = geth.id();
    // (we send it, the reason, we dial)
    let cases: Vec<(bool, DisconnectReason, bool)> = [true, false]
        .into_iter()
        .flat_map(|ours| {
            REASONS
                .iter()
                .enumerate()
                .map(move |(k, r)| (ours, *r, (k % 2 == 0) == ours))
        })
        .collect();
    let nodes: Vec<usize> = cases.iter().map(|_| h.start(quiet_config())).collect();
    for (&(_, _, we_dial), &n) in cases.iter().zip(&nodes) {
        if we_dial {
            h.add_static(n, geth.enode())
                .expect("a dialable static peer");
        } else {
            geth.request_ok(
                json!({"cmd": "dial", "enode": h.enode(n).to_string()}),
                WAIT,
            );
        }
    }
    for &n in &nodes {
        let id = h.id(n);
        wait_for(
            &format!("node {n} and geth to connect ({})", h.driver()),
            WAIT,
            || added_count(h, n, geth_id) >= 1,
        );
        geth.wait_for("geth to add our node", WAIT, |e| is(e, "peer_added", &id));
    }
    for (&(ours, reason, _), &n) in cases.iter().zip(&nodes) {
        if ours {
            h.disconnect(n, geth_id, reason);
        } else {
            let id = h.id(n).to_string();
            geth.send(json!({"cmd": "disconnect", "peer": id, "reason": reason.code()}));
        }
    }
    for (&(ours, reason, we_dial), &n) in cases.iter().zip(&nodes) {
        let id = h.id(n);
        let case = format!(
            "{}: {reason:?} sent by {}, {} dialled",
            h.driver(),
            if ours { "us" } else { "geth" },
            if we_dial { "we" } else { "geth" }
        );
        wait_for(&format!("{case}: our node to report it"), WAIT, || {
            removed(h, n, geth_id).is_some()
        });
        let geth_saw = geth.wait_for(&format!("{case}: geth to report it"), WAIT, |e| {
            is(e, "peer_removed", &id)
        });
        let our_view = removed(h, n, geth_id).expect("waited for it");
        if ours {
            assert_eq!(our_view, (Side::Local, Some(reason), None), "{case}");
            assert_eq!(geth_saw["reason"], reason.code(), "{case}: {geth_saw}");
            assert!(geth_saw["requested"].is_null(), "{case}: {geth_saw}");
        } else {
            assert_eq!(geth_saw["requested"], reason.code(), "{case}: {geth_saw}");
            if reason == DisconnectReason::TcpError {
                assert_eq!(
                    our_view,
                    (Side::Remote, None, Some(SessionError::ConnectionClosed)),
                    "{case}"
                );
            } else {
                assert_eq!(our_view, (Side::Remote, Some(reason), None), "{case}");
            }
        }
    }
}

/// geth pings every 15 s (`pingInterval`, a constant) and we answer. Our node does not ping
/// (its interval is a minute), so nothing else crosses the idle session: the first bytes in
/// after the Hellos are one 64-byte frame (geth's compressed Ping), and the next bytes out
/// one 64-byte frame (our Pong). One test runs both drivers at once, as it waits 15 s.
#[test]
fn geth_pings_every_15_s_and_we_answer() {
    if !geth_enabled("geth_pings_every_15_s_and_we_answer") {
        return;
    }
    let geth = geth_rlpx(&[]);
    let geth_id = geth.id();
    let mut config = quiet_config();
    config.node.session.ping_interval = Duration::from_secs(60);
    let mut t = TokioHarness::new();
    let mut m = MioHarness::new();
    let ti = t.start(config.clone());
    let mi = m.start(config);
    t.add_static(ti, geth.enode()).expect("dialable");
    m.add_static(mi, geth.enode()).expect("dialable");
    wait_for("both nodes to connect to geth", WAIT, || {
        added_count(&t, ti, geth_id) >= 1 && added_count(&m, mi, geth_id) >= 1
    });
    // The Hellos have crossed once both sides list each other.
    for id in [t.id(ti), m.id(mi)] {
        geth.wait_for("geth to add our nodes", WAIT, |e| is(e, "peer_added", &id));
    }
    std::thread::sleep(Duration::from_millis(200));
    let bytes = |p: Option<PeerInfo>| p.map(|p| (p.bytes_in, p.bytes_out)).expect("connected");
    let start = [
        bytes(peer_info(&mut t, ti, geth_id)),
        bytes(peer_info(&mut m, mi, geth_id)),
    ];
    let started = Instant::now();
    let mut now = start;
    wait_for(
        "geth's Ping and our Pong on both",
        Duration::from_secs(20),
        || {
            now = [
                bytes(peer_info(&mut t, ti, geth_id)),
                bytes(peer_info(&mut m, mi, geth_id)),
            ];
            now.iter().zip(&start).all(|(n, s)| n.0 > s.0 && n.1 > s.1)
        },
    );
    for (driver, (n, s)) in ["tokio", "mio"].iter().zip(now.iter().zip(&start)) {
        assert_eq!((n.0 - s.0, n.1 - s.1), (64, 64), "{driver}: bytes in, out");
    }
    assert!(
        started.elapsed() > Duration::from_secs(10),
        "geth pinged after {:?}, not 15 s",
        started.elapsed()
    );
}

/// The RLPx handshake with geth at the level of the core's state machines, where the
/// message formats show: geth answers our EIP-8 auth with an EIP-8 ack, its own auth is
/// EIP-8, and its first frame is its Hello (p2p version 5, its capabilities, its key).
#[test]
fn geth_handshakes_are_eip8_both_ways() {
    use devp2p_core::rlpx::{FrameCodec, Handshake, MessageFormat};
    use devp2p_core::session::Hello;
    use devp2p_core::NodeSecretKey;
    use rand_core::SeedableRng;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    if !geth_enabled("geth_handshakes_are_eip8_both_ways") {
        return;
    }
    let mut geth = geth_rlpx(&[]);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let key = NodeSecretKey::generate(&mut rng);

    // We initiate.
    let addr = geth.enode().tcp_addr().expect("an address");
    let mut stream = TcpStream::connect(addr).expect("connecting to geth");
    stream.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut hs = Handshake::initiator(&key, &geth.enode().public_key, &mut rng);
    stream
        .write_all(&hs.take_output())
        .expect("writing our auth");
    let mut buf = vec![0u8; 4096];
    let mut rest = Vec::new();
    while !hs.is_done() {
        let n = stream.read(&mut buf).expect("reading geth's ack");
        assert!(n > 0, "geth closed the connection during the handshake");
        let used = hs.read(&buf[..n]).expect("geth's ack");
        rest.extend_from_slice(&buf[used..n]);
    }
    let outcome = hs.into_outcome().expect("done");
    assert_eq!(outcome.format, MessageFormat::Eip8, "geth's ack");
    assert_eq!(outcome.remote, geth.enode().public_key);
    let mut codec = FrameCodec::new(outcome.secrets);
    let hello = loop {
        let (used, frame) = codec.decode(&rest).expect("geth's first frame");
        if let Some(f) = frame {
            assert_eq!(f.id, 0, "geth's first frame is its Hello");
            break Hello::decode(f.payload).expect("geth's Hello");
        }
        rest.drain(..used);
        let n = stream.read(&mut buf).expect("reading geth's Hello");
        assert!(n > 0, "geth closed the connection before its Hello");
        rest.extend_from_slice(&buf[..n]);
    };
    assert_eq!(hello.protocol_version, 5);
    assert_eq!(hello.client_id, geth.client());
    assert_eq!(hello.id, geth.enode().public_key.raw().to_vec());
    assert_eq!(hello.listen_port, 0);
    let caps: Vec<String> = hello
        .capabilities
        .iter()
        .map(|c| format!("{}/{}", c.name, c.version))
        .collect();
    assert_eq!(
        caps,
        ["aaa/1", "aaa/2", "bbb/1", "zzz/1"],
        "sorted, as geth sends them"
    );
    drop(stream);

    // geth initiates.
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let port = listener.local_addr().expect("bound").port();
    let ours = Enode::new(*key.public(), [127, 0, 0, 1].into(), port, port);
    geth.request_ok(json!({"cmd": "dial", "enode": ours.to_string()}), WAIT);
    let (mut stream, _) = listener.accept().expect("geth's dial");
    stream.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut hs = Handshake::recipient(&key, &mut rng);
    while !hs.is_done() {
        let n = stream.read(&mut buf).expect("reading geth's auth");
        assert!(n > 0, "geth closed the connection during the handshake");
        hs.read(&buf[..n]).expect("geth's auth");
    }
    stream
        .write_all(&hs.take_output())
        .expect("writing our ack");
    let outcome = hs.into_outcome().expect("done");
    assert_eq!(outcome.format, MessageFormat::Eip8, "geth's auth");
    assert_eq!(outcome.remote, geth.enode().public_key);
}

/// The pinned module builds geth's tool, and it is the pinned version.
#[test]
fn geth_devp2p_tool_builds_from_the_pinned_module() {
    if !geth_enabled("geth_devp2p_tool_builds_from_the_pinned_module") {
        return;
    }
    let tool = geth_binary(GETH_DEVP2P);
    let out = Command::new(&tool)
        .arg("--version")
        .output()
        .expect("running geth's devp2p");
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{version}");
    assert!(version.contains("1.17.10"), "{version}");
}
