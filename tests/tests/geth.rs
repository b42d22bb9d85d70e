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

use devp2p_core::dial::DUPLICATE_REDIAL_DELAY;
use devp2p_core::keccak::keccak256;
use devp2p_core::node::{ConnectError, ConnectionFailure, Direction, NodeEvent, PeerInfo};
use devp2p_core::rlpx::HandshakeError;
use devp2p_core::rlpx::{MAX_MESSAGE_SIZE, MAX_UNCOMPRESSED_SIZE};
use devp2p_core::session::{DisconnectReason, Protocol, ProtocolId, SessionError, Side};
use devp2p_core::{Enode, NodeId};
use devp2p_mio::common::DriverConfig;
use e2e::{local_config, wait_for, Harness, MioHarness, TokioHarness};
use geth::go_build::GETH_DEVP2P;
use geth::{geth_binary, geth_enabled, is, is_log, to_hex, xorshift, GethPeer};
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

/// For scenarios that mostly wait on protocol timers (revalidation every few seconds, a
/// redial after a second): one test runs both drivers at the same time, on two threads,
/// so that the suite's wall time is not the sum. A failure names its driver.
macro_rules! both_drivers_at_once {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                if !geth_enabled(stringify!($scenario)) {
                    return;
                }
                std::thread::scope(|s| {
                    let t = s.spawn(|| super::$scenario(&mut TokioHarness::new()));
                    let m = s.spawn(|| super::$scenario(&mut MioHarness::new()));
                    let (t, m) = (t.join(), m.join());
                    if let Err(e) = t.and(m) {
                        std::panic::resume_unwind(e);
                    }
                });
            }
        )*
    };
}

both_drivers!(
    we_dial_geth,
    geth_dials_us,
    every_disconnect_reason_both_ways,
    no_shared_capability_both_ways,
    too_many_peers_both_ways,
    wrong_key_fails_the_handshake_both_ways,
    geth_drops_the_session_when_told_to_send_too_much,
);

/// The slow ones, each driver on a thread of its own (`<scenario>` runs both).
mod at_once {
    use super::*;

    both_drivers_at_once!(
        simultaneous_dials_leave_one_connection,
        discovery_both_ways,
        changed_records_are_fetched_both_ways,
        mixed_network_of_8_geth_and_8_of_ours,
    );
}

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

/// One byte over geth's limits: told to send 2^24 bytes (or incompressible bytes one more
/// than fit a frame), geth's writer fails ("message length >= 16MB") and geth drops the
/// session as a network error, without a Disconnect; we see the connection close. (We
/// refuse such a send at once and keep the session: `tests/e2e.rs`.)
fn geth_drops_the_session_when_told_to_send_too_much(h: &mut impl Harness) {
    let mut geth = geth_rlpx(&[]);
    let geth_id = geth.id();
    let max = geth.request_ok(json!({"cmd": "max_size", "seed": 5}), WAIT);
    let incompressible = max["incompressible"].as_u64().expect("a size");
    for payload in [
        json!({"size": MAX_UNCOMPRESSED_SIZE + 1, "fill": 0}),
        json!({"size": incompressible + 1, "seed": 5}),
    ] {
        let a = h.start(quiet_config());
        let ours = h.id(a);
        h.add_static(a, geth.enode()).expect("dialable");
        geth.wait_for("geth to start aaa/2", WAIT, |e| {
            is(e, "protocol_started", &ours) && e["protocol"] == "aaa/2"
        });
        let mut cmd =
            json!({"cmd": "send", "peer": ours.to_string(), "protocol": "aaa/2", "code": 1});
        for (k, v) in payload.as_object().expect("an object") {
            cmd[k] = v.clone();
        }
        geth.send(cmd);
        let sent = geth.wait_for("geth's write to fail", WAIT, |e| is(e, "sent", &ours));
        assert_eq!(sent["error"], "message length >= 16MB", "{sent}");
        let gone = geth.wait_for("geth to drop us", WAIT, |e| is(e, "peer_removed", &ours));
        assert_eq!(gone["error"], "message length >= 16MB", "{gone}");
        wait_for("our node to see the close", WAIT, || {
            removed(h, a, geth_id).is_some()
        });
        assert_eq!(
            removed(h, a, geth_id),
            Some((Side::Remote, None, Some(SessionError::ConnectionClosed))),
            "{}",
            h.driver()
        );
    }
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

/// Every ConnectionFailed at node `i`.
fn failures(h: &impl Harness, i: usize) -> Vec<ConnectionFailure> {
    h.log().with(i, |ev| {
        ev.iter()
            .filter_map(|e| match e {
                NodeEvent::ConnectionFailed(f) => Some((**f).clone()),
                _ => None,
            })
            .collect()
    })
}

/// No capability in common, both ways. Our node with no sub-protocol at all (so it accepts
/// anyone itself) dials geth: geth reads our Hello and refuses us with "useless peer" (it
/// logs "Rejected peer"); we had its Hello already, so for us a session opened and the
/// remote ended it. A geth node with no sub-protocol dials ours: geth takes us as a peer,
/// we refuse it with useless peer (listing what it offered: nothing), and geth reports
/// the reason as ours.
fn no_shared_capability_both_ways(h: &mut impl Harness) {
    let geth = geth_rlpx(&["--verbosity", "trace"]);
    let geth_id = geth.id();
    let mut c = quiet_config();
    c.node.session.protocols.clear();
    let a = h.start(c);
    let a_id = h.id(a);
    h.add_static(a, geth.enode()).expect("dialable");
    wait_for("geth to refuse us", WAIT, || {
        removed(h, a, geth_id).is_some()
    });
    assert_eq!(
        removed(h, a, geth_id),
        Some((Side::Remote, Some(DisconnectReason::UselessPeer), None)),
        "{}",
        h.driver()
    );
    geth.wait_for("geth's log of the refusal", WAIT, |e| {
        is_log(e, "Rejected peer")
            && e["ctx"]["id"] == a_id.to_string().as_str()
            && e["ctx"]["err"] == "useless peer"
    });

    let mut bare = GethPeer::start(&["--no-discovery"]);
    let bare_id = bare.id();
    let b = h.start(quiet_config());
    let b_id = h.id(b);
    bare.request_ok(
        json!({"cmd": "dial", "enode": h.enode(b).to_string()}),
        WAIT,
    );
    let saw = bare.wait_for("geth to hear our refusal", WAIT, |e| {
        is(e, "peer_removed", &b_id)
    });
    assert_eq!(saw["reason"], DisconnectReason::UselessPeer.code(), "{saw}");
    assert!(saw["requested"].is_null(), "{saw}");
    wait_for("our node to report its refusal", WAIT, || {
        refusal(h, b, bare_id).is_some()
    });
    assert!(
        matches!(
            refusal(h, b, bare_id),
            Some(ConnectError::Refused {
                reason: DisconnectReason::UselessPeer,
                error: Some(SessionError::NoSharedCapability { ref remote }),
            }) if remote.is_empty()
        ),
        "{}: {:?}",
        h.driver(),
        refusal(h, b, bare_id)
    );
}

/// The ConnectionFailed of node `i` about `peer`.
fn refusal(h: &impl Harness, i: usize, peer: NodeId) -> Option<ConnectError> {
    failures(h, i)
        .into_iter()
        .find(|f| f.remote.is_some_and(|k| k.id() == peer))
        .map(|f| f.error)
}

/// Peer limits, both ways. geth at its MaxPeers (1, and no dialling, so all of it inbound)
/// refuses a second node of ours right after the RLPx handshake with "too many peers"
/// (before Hello, uncompressed); we report the remote's reason. Our node at its max_peers
/// refuses a second geth node the same way, and geth reports it as the reason its Hello
/// exchange failed.
fn too_many_peers_both_ways(h: &mut impl Harness) {
    let geth = geth_rlpx(&["--max-peers", "1", "--no-dial", "--verbosity", "trace"]);
    let geth_id = geth.id();
    let a = h.start(quiet_config());
    h.add_static(a, geth.enode()).expect("dialable");
    wait_for("the first node to connect", WAIT, || {
        added_count(h, a, geth_id) >= 1
    });
    let b = h.start(quiet_config());
    let b_id = h.id(b);
    h.add_static(b, geth.enode()).expect("dialable");
    wait_for("geth to refuse the second", WAIT, || {
        refusal(h, b, geth_id).is_some()
    });
    assert_eq!(
        refusal(h, b, geth_id),
        Some(ConnectError::RemoteDisconnected(Some(
            DisconnectReason::TooManyPeers
        ))),
        "{}",
        h.driver()
    );
    geth.wait_for("geth's log of the refusal", WAIT, |e| {
        is_log(e, "Rejected peer")
            && e["ctx"]["id"] == b_id.to_string().as_str()
            && e["ctx"]["err"] == "too many peers"
    });
    assert!(peer_info(h, a, geth_id).is_some(), "the first stays");

    let mut c = quiet_config();
    c.node.max_peers = 1;
    c.node.no_dial = true;
    let n = h.start(c);
    let n_id = h.id(n);
    let mut g1 = geth_rlpx(&[]);
    let mut g2 = geth_rlpx(&["--verbosity", "trace"]);
    g1.request_ok(
        json!({"cmd": "dial", "enode": h.enode(n).to_string()}),
        WAIT,
    );
    wait_for("the first geth to connect", WAIT, || {
        added_count(h, n, g1.id()) >= 1
    });
    g2.request_ok(
        json!({"cmd": "dial", "enode": h.enode(n).to_string()}),
        WAIT,
    );
    wait_for("our node to refuse the second geth", WAIT, || {
        refusal(h, n, g2.id()).is_some()
    });
    assert_eq!(
        refusal(h, n, g2.id()),
        Some(ConnectError::Refused {
            reason: DisconnectReason::TooManyPeers,
            error: None
        }),
        "{}",
        h.driver()
    );
    g2.wait_for("geth's log of our refusal", WAIT, |e| {
        is_log(e, "Failed p2p handshake")
            && e["ctx"]["id"] == n_id.to_string().as_str()
            && e["ctx"]["err"] == "too many peers"
    });
    assert!(peer_info(h, n, g1.id()).is_some(), "the first stays");
}

/// How long the simultaneous-dial test lets each race settle: a lost race is redialled
/// after [`DUPLICATE_REDIAL_DELAY`].
const SETTLE: Duration = Duration::from_secs(5).saturating_add(DUPLICATE_REDIAL_DELAY);

/// We and geth dial each other at the same moment (each as a static peer of the other), six
/// times with a fresh node of ours each time. However the race goes, exactly one
/// connection survives, and it is the same one on both sides.
///
/// We keep the connection dialled by the node with the lower id, so that two of our nodes
/// always agree; geth keeps whichever it admits first and refuses the other with "already
/// connected". When the two rules pick different connections both die, and we redial after
/// a second (not after the 35 s dial history): the regression this test guards.
fn simultaneous_dials_leave_one_connection(h: &mut impl Harness) {
    let mut geth = geth_rlpx(&["--verbosity", "trace"]);
    let geth_id = geth.id();
    let geth_addr = geth.enode().tcp_addr().expect("an address").to_string();
    let mut report = Vec::new();
    for round in 0..6 {
        let n = h.start(quiet_config());
        let n_id = h.id(n);
        geth.send(json!({"cmd": "dial", "enode": h.enode(n).to_string()}));
        h.add_static(n, geth.enode()).expect("dialable");
        let started = Instant::now();
        let connected = |h: &mut _, geth: &mut GethPeer| -> Option<(PeerInfo, Value)> {
            let ours = peer_info(h, n, geth_id)?;
            let peers = geth.request_ok(json!({"cmd": "peers"}), WAIT);
            let theirs = peers["peers"]
                .as_array()?
                .iter()
                .find(|p| p["peer"] == n_id.to_string().as_str())?
                .clone();
            Some((ours, theirs))
        };
        // Settled: connected on both sides, over the same connection a second later.
        let mut settled = None;
        while settled.is_none() && started.elapsed() < SETTLE {
            if let Some((ours, _)) = connected(h, &mut geth) {
                std::thread::sleep(Duration::from_secs(1));
                settled = connected(h, &mut geth).filter(|(o, _)| o.conn == ours.conn);
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let Some((ours, theirs)) = settled else {
            let about_n = |e: &Value| {
                e["peer"] == n_id.to_string().as_str()
                    || e["ctx"]["id"] == n_id.to_string().as_str()
            };
            panic!(
                "{} round {round}: no connection survived {:?} after the race; our events: \
                 {:#?}\ngeth's: {:#?}",
                h.driver(),
                started.elapsed(),
                h.log().with(n, |ev| ev.to_vec()),
                geth.matching(about_n),
            )
        };
        // The same connection: our dial is geth's inbound one, and the addresses match.
        match ours.direction {
            Direction::Outbound => {
                assert_eq!(theirs["inbound"], true, "{theirs}");
                assert_eq!(theirs["local"], geth_addr.as_str(), "{theirs}");
            }
            Direction::Inbound => {
                assert_eq!(theirs["inbound"], false, "{theirs}");
                assert_eq!(theirs["local"], ours.addr.to_string().as_str(), "{theirs}");
            }
        }
        // Whatever we closed, geth read our reason (it once read a Disconnect we sent
        // between the two Hellos as corrupt snappy).
        let garbled = geth.matching(|e| {
            is(e, "peer_removed", &n_id)
                && e["error"].as_str().is_some_and(|t| t.contains("snappy"))
        });
        assert!(
            garbled.is_empty(),
            "{} round {round}: {garbled:?}",
            h.driver()
        );
        // Two connections per race; a third is our redial.
        let redialled = added_count(h, n, geth_id) + failures(h, n).len() > 2;
        report.push((ours.direction, redialled, started.elapsed().as_millis()));
    }
    eprintln!(
        "{}: surviving connection (direction, after a redial, ms): {report:?}",
        h.driver()
    );
}

/// A dial with the wrong key, both ways. Ours to geth's address: geth cannot decrypt our
/// auth ("ecies: invalid message") and closes; we report a connection closed during the
/// handshake before the remote proved a key, which names a stale enode as the likely cause.
/// geth's to ours: we cannot decrypt its auth (our ECIES MAC check fails) and close; geth
/// reports its handshake failed.
fn wrong_key_fails_the_handshake_both_ways(h: &mut impl Harness) {
    use devp2p_core::NodeSecretKey;
    use rand_core::SeedableRng;

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let mut geth = geth_rlpx(&["--verbosity", "trace"]);
    let wrong = NodeSecretKey::generate(&mut rng);
    let g = geth.enode();
    let bad = Enode::new(
        *wrong.public(),
        g.ip().expect("an IP"),
        g.tcp_port,
        g.udp_port,
    );
    let a = h.start(quiet_config());
    h.add_static(a, bad.clone()).expect("dialable");
    wait_for("our dial to fail", WAIT, || !failures(h, a).is_empty());
    let f = &failures(h, a)[0];
    assert_eq!(f.remote, Some(bad.public_key));
    assert_eq!(
        f.error,
        ConnectError::ClosedDuringHandshake,
        "{}",
        h.driver()
    );
    assert!(f.to_string().contains("does not hold the key"), "{f}");
    let ours = geth.wait_for("geth's log of our failed handshake", WAIT, |e| {
        is_log(e, "Failed RLPx handshake") && e["ctx"]["conn"] == "inbound"
    });
    assert_eq!(ours["ctx"]["err"], "ecies: invalid message", "{ours}");

    let b = h.start(quiet_config());
    let e = h.enode(b);
    let bad = Enode::new(
        *wrong.public(),
        e.ip().expect("an IP"),
        e.tcp_port,
        e.udp_port,
    );
    geth.request_ok(json!({"cmd": "dial", "enode": bad.to_string()}), WAIT);
    wait_for("geth's dial to fail", WAIT, || !failures(h, b).is_empty());
    let f = &failures(h, b)[0];
    assert_eq!(f.direction, Direction::Inbound);
    assert_eq!(f.remote, None, "no key proved");
    assert_eq!(
        f.error,
        ConnectError::Rlpx(HandshakeError::BadMac),
        "{}",
        h.driver()
    );
    // All geth can tell: the recipient closed the connection.
    let theirs = geth.wait_for("geth's log of its failed dial", WAIT, |e| {
        is_log(e, "Failed RLPx handshake") && e["ctx"]["conn"] == "staticdial"
    });
    assert_eq!(theirs["ctx"]["err"], "EOF", "{theirs}");
}

/// Longest wait for discovery to get somewhere: revalidation runs every few seconds on
/// both sides (geth pings one table node every 0–3 s, we every 3 s), and a record change is
/// only noticed by the next revalidation of that node.
const DISCOVERY_WAIT: Duration = Duration::from_secs(30);

/// A geth node with discovery v4 (and no dialling, so that only discovery runs), trace
/// logs (every discovery packet), bootnodes `boot`.
fn geth_disc(boot: &[Enode]) -> GethPeer {
    let boot: Vec<String> = boot.iter().map(Enode::to_string).collect();
    let boot = boot.join(",");
    let mut args = vec!["--no-dial", "--verbosity", "trace"];
    if !boot.is_empty() {
        args.extend(["--bootnodes", boot.as_str()]);
    }
    GethPeer::start(&args)
}

/// One of our nodes with discovery and no dialling, bootnodes `boot`.
fn disc_config(boot: Vec<Enode>) -> DriverConfig {
    let mut c = local_config(true);
    c.node.no_dial = true;
    c.node.bootnodes = boot;
    c
}

/// Whether our node `i` logged the end of its bootstrap.
fn bootstrapped(h: &impl Harness, i: usize) -> bool {
    h.log().with(i, |ev| {
        ev.iter().any(|e| {
            matches!(e, NodeEvent::Discovery(d) if matches!(d.as_ref(), devp2p_core::discv4::Event::Bootstrapped))
        })
    })
}

/// geth's table: each node's `id`, `seq`, `rlp` (its record, when geth holds one), `live`.
fn geth_table(geth: &mut GethPeer) -> Vec<Value> {
    let t = geth.request_ok(json!({"cmd": "table"}), WAIT);
    t["nodes"].as_array().cloned().unwrap_or_default()
}

fn geth_table_entry(geth: &mut GethPeer, id: &NodeId) -> Option<Value> {
    geth_table(geth)
        .into_iter()
        .find(|n| n["id"] == id.to_string().as_str())
}

/// Waits until `f` returns something, and returns it (records come and go in both tables:
/// see `discovery_both_ways`).
fn wait_value<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let mut value = None;
    wait_for(what, timeout, || {
        value = f();
        value.is_some()
    });
    value.expect("waited for it")
}

/// The record our node `i` holds for `id`, if any.
fn our_record_of(h: &mut impl Harness, i: usize, id: &NodeId) -> Option<devp2p_core::Enr> {
    h.table_nodes(i)
        .into_iter()
        .find(|n| n.id() == *id)
        .and_then(|n| n.record().cloned())
}

/// Whether geth logged a discovery packet `what` (e.g. `<< ENRREQUEST/v4`) from or to `id`.
fn geth_packet(geth: &GethPeer, what: &str, id: &NodeId) -> bool {
    !geth
        .matching(|e| is_log(e, what) && e["ctx"]["id"] == id.to_string().as_str())
        .is_empty()
}

/// Scenario 3, a few nodes at a time. Our node O bootstraps from geth G1, and geth G2
/// bootstraps from O; each ends up in the other's table, and G2 finds G1 through O.
/// ENRRequest both ways (EIP-868): O fetches G1's record as soon as a Pong shows a
/// sequence number above the none it knew (G1 logs our ENRRequest), and holds it byte for
/// byte; G1 fetches ours the same way, and answers its own RequestENR with our record.
fn discovery_both_ways(h: &mut impl Harness) {
    let mut g1 = geth_disc(&[]);
    let g1_id = g1.id();
    let mut c = disc_config(vec![g1.enode()]);
    c.node.enr_seq = Some(7);
    let o = h.start(c);
    let o_id = h.id(o);
    let o_enode = h.enode(o);
    let our_record = h.local_enr(o).expect("discovery on");
    assert_eq!(our_record.seq(), 7);

    let theirs = wait_value(
        &format!("our node to hold geth's record ({})", h.driver()),
        DISCOVERY_WAIT,
        || our_record_of(h, o, &g1_id),
    );
    assert_eq!(theirs, g1.record(), "the record geth started with");
    assert!(geth_packet(&g1, "<< ENRREQUEST/v4", &o_id), "{}", g1.dump());
    let entry = wait_value("geth to hold our record", DISCOVERY_WAIT, || {
        geth_table_entry(&mut g1, &o_id).filter(|n| n["rlp"].is_string())
    });
    assert_eq!(geth::parse_record(&entry), our_record, "{entry}");
    assert!(geth_packet(&g1, ">> ENRREQUEST/v4", &o_id), "{}", g1.dump());
    let answer = g1.request_ok(
        json!({"cmd": "requestenr", "enode": o_enode.to_string()}),
        WAIT,
    );
    assert_eq!(answer["event"], "enr_response", "{answer}");
    assert_eq!(geth::parse_record(&answer), our_record, "{answer}");

    let mut g2 = geth_disc(std::slice::from_ref(&o_enode));
    let g2_id = g2.id();
    wait_for(
        "G2 and our node in each other's tables",
        DISCOVERY_WAIT,
        || geth_table_entry(&mut g2, &o_id).is_some() && h.table(o).contains(&g2_id),
    );
    // G2 learns of G1 from our Neighbours: at its bootstrap if we had revalidated G1 by
    // then (we answer FindNode with revalidated nodes first, as geth does), else by a lookup.
    wait_for("G2 to find G1 through our node", DISCOVERY_WAIT, || {
        if geth_table_entry(&mut g2, &g1_id).is_some() {
            return true;
        }
        let found = g2.request_ok(json!({"cmd": "lookup"}), WAIT);
        found["nodes"]
            .as_array()
            .is_some_and(|ns| ns.iter().any(|n| n["id"] == g1_id.to_string().as_str()))
    });
}

/// Scenario 3, records that change (EIP-868), both at once on two pairs: geth Ga sets an
/// entry (LocalNode.Set, a new seq) and our node O, which bootstrapped from it, fetches the
/// new record at its next revalidation of Ga (a Pong with a higher seq); our node P
/// restarts with the same key and port and a higher seq, and geth Gb, which it
/// bootstrapped from, fetches that at its next revalidation of P. One node in each table,
/// so that each revalidation picks it.
fn changed_records_are_fetched_both_ways(h: &mut impl Harness) {
    use devp2p_core::NodeSecretKey;
    use rand_core::SeedableRng;

    let mut ga = geth_disc(&[]);
    let mut gb = geth_disc(&[]);
    let ga_id = ga.id();
    let o = h.start(disc_config(vec![ga.enode()]));
    let key = NodeSecretKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(3));
    let mut c = disc_config(vec![gb.enode()]);
    c.key = devp2p_mio::common::KeySource::Secret(key);
    c.node.enr_seq = Some(7);
    let mut p = h.start(c.clone());
    let p_id = h.id(p);
    let p_addr = h.enode(p).udp_addr().expect("an address");
    wait_value(
        &format!("O to hold Ga's record ({})", h.driver()),
        DISCOVERY_WAIT,
        || our_record_of(h, o, &ga_id),
    );
    wait_value("Gb to hold P's record", DISCOVERY_WAIT, || {
        geth_table_entry(&mut gb, &p_id).filter(|n| n["seq"] == 7)
    });

    let changed = ga.request_ok(
        json!({"cmd": "set_enr_field", "key": "foo", "value": "83626172"}),
        WAIT,
    );
    let new_seq = changed["seq"].as_u64().expect("a seq");
    assert!(new_seq > ga.record().seq(), "{changed}");
    h.shutdown(p);
    c.node.listen = p_addr;
    c.node.enr_seq = Some(8);
    p = h.start(c);
    assert_eq!(h.id(p), p_id);
    let p_record = h.local_enr(p).expect("discovery on");
    assert_eq!(p_record.seq(), 8);

    // Each is seen once: both tables drop a record whenever its node pings (see
    // `discovery_both_ways`), and take it back at the next revalidation.
    let (mut fetched, mut entry) = (None, None);
    wait_for(
        &format!("each side to fetch the other's new record ({})", h.driver()),
        DISCOVERY_WAIT,
        || {
            if fetched.is_none() {
                fetched = our_record_of(h, o, &ga_id).filter(|r| r.seq() == new_seq);
            }
            if entry.is_none() {
                entry = geth_table_entry(&mut gb, &p_id).filter(|n| n["seq"] == 8);
            }
            fetched.is_some() && entry.is_some()
        },
    );
    let fetched = fetched.expect("waited for it");
    assert_eq!(fetched, geth::parse_record(&changed));
    assert_eq!(
        fetched.get_raw(b"foo"),
        Some(&geth::from_hex("83626172")[..])
    );
    assert_eq!(geth::parse_record(&entry.expect("waited for it")), p_record);
}

/// Scenario 3, a mixed network on 127.0.0.1: 8 geth nodes and 8 of ours. geth's G0 is the
/// first node; our O0 and O1..O7 bootstrap from it, G1..G7 from O0. Every node finds
/// every other (its table, or what its lookups returned: rounds of random lookups from
/// every node that still misses some, all at once), then lookups from either
/// implementation, for random targets and for nodes' own keys, return the true closest
/// nodes of the mixed set, nearest first: with 16 nodes, all 15 others in distance order.
fn mixed_network_of_8_geth_and_8_of_ours(h: &mut impl Harness) {
    let mut geths = vec![geth_disc(&[])];
    let g0 = geths[0].enode();
    let mut ours = vec![h.start(disc_config(vec![g0.clone()]))];
    let o0 = h.enode(ours[0]);
    // The two seeds first: a node pinged while its table is still bootstrapping does not
    // take the pinger in (geth's rule, and ours), and would learn of it only much later.
    let g0_id = geths[0].id();
    wait_for(
        "our first node to bootstrap from geth's",
        DISCOVERY_WAIT,
        || bootstrapped(h, ours[0]) && h.table(ours[0]).contains(&g0_id),
    );
    for _ in 1..8 {
        ours.push(h.start(disc_config(vec![g0.clone()])));
        geths.push(geth_disc(std::slice::from_ref(&o0)));
    }
    let mut all: Vec<NodeId> = geths.iter().map(GethPeer::id).collect();
    all.extend(ours.iter().map(|&i| h.id(i)));
    let started = Instant::now();
    let others =
        |me: &NodeId| -> BTreeSet<NodeId> { all.iter().filter(|n| *n != me).copied().collect() };
    let ids_of = |v: &Value| -> Vec<NodeId> {
        v.as_array()
            .map(|ns| {
                ns.iter()
                    .filter_map(|n| {
                        let id = n["id"].as_str()?;
                        all.iter().copied().find(|a| a.to_string() == id)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // What each node found: its table, plus what its lookups returned.
    let mut found: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
    let mut rounds = 0;
    loop {
        let mut asked = Vec::new();
        for (k, g) in geths.iter_mut().enumerate() {
            let me = g.id();
            let table = ids_of(&json!(geth_table(g)));
            let set = found.entry(me).or_default();
            set.extend(table);
            if *set != others(&me) {
                asked.push((k, g.ask(json!({"cmd": "lookup"}))));
            }
        }
        let mut queries = Vec::new();
        for &i in &ours {
            let me = h.id(i);
            let table = h.table(i);
            let set = found.entry(me).or_default();
            set.extend(table);
            if *set != others(&me) {
                queries.push((i, None));
            }
        }
        if asked.is_empty() && queries.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < 2 * DISCOVERY_WAIT,
            "{}: after {:?} and {rounds} rounds of lookups, nodes still missing others: {:?}",
            h.driver(),
            started.elapsed(),
            found
                .iter()
                .map(|(me, s)| (*me, others(me).difference(s).count()))
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>()
        );
        rounds += 1;
        for ((i, _), nodes) in queries.iter().zip(h.lookups(&queries)) {
            let me = h.id(*i);
            found
                .entry(me)
                .or_default()
                .extend(nodes.iter().map(|n| n.id()));
        }
        for (k, tag) in asked {
            let l = geths[k].answer(tag, WAIT);
            let me = geths[k].id();
            found.entry(me).or_default().extend(ids_of(&l["nodes"]));
        }
    }
    let converged = started.elapsed();

    // Lookups: random targets and nodes' own keys, from two nodes of each kind, at once.
    let mut targets: Vec<devp2p_core::NodePublicKey> = (0..3u64)
        .map(|s| {
            use rand_core::SeedableRng;
            let k = devp2p_core::NodeSecretKey::generate(
                &mut rand_chacha::ChaCha20Rng::seed_from_u64(100 + s),
            );
            *k.public()
        })
        .collect();
    targets.push(geths[3].enode().public_key);
    targets.push(h.enode(ours[5]).public_key);
    let truth = |searcher: &NodeId, target: &devp2p_core::NodePublicKey| -> Vec<NodeId> {
        let t = target.id();
        let mut v: Vec<NodeId> = all.iter().copied().filter(|n| n != searcher).collect();
        v.sort_by(|a, b| t.distance_cmp(a, b));
        v.truncate(devp2p_core::discv4::lookup::LOOKUP_RESULTS);
        v
    };
    let mut asked = Vec::new();
    let mut queries = Vec::new();
    for (n, target) in targets.iter().enumerate() {
        let k = 1 + n % 2;
        let tag = geths[k].ask(json!({"cmd": "lookup", "target": to_hex(target.raw())}));
        asked.push((k, tag, *target));
        queries.push((ours[2 + n % 2], Some(*target)));
    }
    for ((i, target), got) in queries.iter().zip(h.lookups(&queries)) {
        let target = target.expect("a target");
        let got: Vec<NodeId> = got.iter().map(|n| n.id()).collect();
        assert_eq!(
            got,
            truth(&h.id(*i), &target),
            "{}: our lookup for {}",
            h.driver(),
            target.id()
        );
    }
    for (k, tag, target) in asked {
        let l = geths[k].answer(tag, WAIT);
        assert_eq!(
            ids_of(&l["nodes"]),
            truth(&geths[k].id(), &target),
            "{}: geth's lookup for {}",
            h.driver(),
            target.id()
        );
    }
    eprintln!(
        "{}: 16 nodes found each other in {converged:?} ({rounds} rounds of lookups); \
         lookups agreed after {:?}",
        h.driver(),
        started.elapsed()
    );
}

/// One record for scenario 5: a key, a sequence number and entries, built by each side.
struct RecordCase {
    key: &'static str,
    seq: u64,
    ip: Option<&'static str>,
    tcp: Option<u16>,
    udp: Option<u16>,
    /// (key, one RLP item in hex)
    fields: &'static [(&'static str, &'static str)],
}

impl RecordCase {
    fn geth_args(&self) -> Vec<String> {
        let mut a = vec![
            "enr".to_string(),
            "--key".to_string(),
            self.key.to_string(),
            "--seq".to_string(),
            self.seq.to_string(),
        ];
        if let Some(ip) = self.ip {
            a.extend(["--ip".to_string(), ip.to_string()]);
        }
        if let Some(p) = self.tcp {
            a.extend(["--tcp".to_string(), p.to_string()]);
        }
        if let Some(p) = self.udp {
            a.extend(["--udp".to_string(), p.to_string()]);
        }
        for (k, v) in self.fields {
            a.extend(["--field".to_string(), format!("{k}={v}")]);
        }
        a
    }

    fn ours(&self) -> devp2p_core::Enr {
        let key = devp2p_core::NodeSecretKey::from_hex(self.key).expect("a key");
        let mut b = devp2p_core::Enr::builder().seq(self.seq);
        if let Some(ip) = self.ip {
            b = b.ip(ip.parse().expect("an IP"));
        }
        if let Some(p) = self.tcp {
            b = b.tcp4(p);
        }
        if let Some(p) = self.udp {
            b = b.udp4(p);
        }
        for (k, v) in self.fields {
            b = b
                .raw(k.as_bytes(), &geth::from_hex(v))
                .expect("one RLP item");
        }
        b.sign(&key).expect("fits 300 bytes")
    }
}

/// Scenario 5: for the same key, sequence number and entries, the record we sign is byte
/// for byte the one geth signs (`enr.Record`, `enode.SignV4`: same key order, same RLP, and
/// the same deterministic RFC 6979 signature), its `enr:` text too; geth verifies ours and
/// we verify geth's, reading the same entries; each refuses the other's record with one
/// signature byte changed. Cases: the EIP-778 example (key and fields of the spec's example
/// record, whose text it must reproduce), no entries at all, seq 0 and 2^64−1, ports at
/// both ends of their range, IPv6, and entries of other kinds (eth's fork id list, snap's
/// empty list, an empty string, a 40-byte string).
#[test]
fn records_are_byte_identical_and_each_side_verifies_the_other() {
    if !geth_enabled("records_are_byte_identical_and_each_side_verifies_the_other") {
        return;
    }
    const EIP778_KEY: &str = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";
    const EIP778_TEXT: &str = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
    let cases = [
        RecordCase {
            key: EIP778_KEY,
            seq: 1,
            ip: Some("127.0.0.1"),
            tcp: None,
            udp: Some(30303),
            fields: &[],
        },
        RecordCase {
            key: "45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8",
            seq: 0,
            ip: None,
            tcp: None,
            udp: None,
            fields: &[],
        },
        RecordCase {
            key: "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90",
            seq: u64::MAX,
            ip: Some("10.1.2.3"),
            tcp: Some(1),
            udp: Some(65535),
            fields: &[],
        },
        RecordCase {
            key: "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
            seq: 1_700_000_000_123,
            ip: Some("2001:db8::1"),
            tcp: Some(30303),
            udp: Some(30303),
            fields: &[],
        },
        RecordCase {
            key: "8a1f9a8f95be41cd7ccb6168179afb4504aefe388d1e14474d32c45c72ce7b7a",
            seq: 42,
            ip: Some("192.168.0.7"),
            tcp: Some(30303),
            udp: Some(30304),
            fields: &[
                // eth: [[fork hash, next fork]]
                ("eth", "c7c6849fb7c1e480"),
                ("snap", "c0"),
                ("empty", "80"),
                (
                    "long",
                    "a8000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
                ),
            ],
        },
    ];
    for (n, case) in cases.iter().enumerate() {
        let args = case.geth_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = geth::geth_record(&args);
        assert_eq!(theirs["event"], "enr", "case {n}: {theirs}");
        let ours = case.ours();
        assert_eq!(
            theirs["rlp"].as_str(),
            Some(to_hex(ours.as_bytes()).as_str()),
            "case {n}: geth's record (first) and ours (second) differ"
        );
        assert_eq!(
            theirs["enr"].as_str(),
            Some(ours.to_string().as_str()),
            "case {n}"
        );
        if case.key == EIP778_KEY {
            assert_eq!(ours.to_string(), EIP778_TEXT);
        }

        // geth verifies ours and reads the same entries.
        let verified = geth::geth_record(&["verify-enr", &ours.to_string()]);
        assert_eq!(verified["event"], "enr_verified", "case {n}: {verified}");
        assert_eq!(
            verified["id"],
            ours.node_id().to_string().as_str(),
            "case {n}"
        );
        assert_eq!(verified["seq"], ours.seq(), "case {n}");
        assert_eq!(verified["pubkey"], ours.public_key().to_string().as_str());
        let pairs: BTreeMap<String, String> = ours
            .pairs()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), to_hex(v)))
            .collect();
        assert_eq!(verified["pairs"], json!(pairs), "case {n}");

        // We verify geth's.
        let decoded = geth::parse_record(&theirs);
        assert_eq!(decoded, ours, "case {n}");
        assert_eq!(
            decoded.node_id().to_string(),
            theirs["id"].as_str().unwrap()
        );

        // One signature byte changed: both refuse.
        let mut bad = ours.as_bytes().to_vec();
        bad[5] ^= 1; // inside the 64-byte signature, after the list and string headers
        let refused = geth::geth_record(&["verify-enr", &to_hex(&bad)]);
        assert_eq!(
            refused["event"], "error",
            "case {n}: geth took a bad signature"
        );
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("invalid signature")),
            "case {n}: {refused}"
        );
        assert!(
            devp2p_core::Enr::decode(&bad).is_err(),
            "case {n}: we took a bad signature"
        );
    }
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
