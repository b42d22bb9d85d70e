//! Side by side with go-ethereum, in one run: the same work done by our code and by geth's
//! own packages (the Go program `tests/interop/geth/bench`, built from the module pinned to
//! go-ethereum v1.17.10), alternated in rounds on the same machine. Every figure is the
//! median of per-round ratios ours/geth, each round measuring both sides back to back
//! (which goes first alternates), so a slow patch of a shared machine slows both sides alike.
//!
//! * frames: one frame sealed by one codec and opened by its peer (ours: `FrameCodec`; geth:
//!   `rlpx.Conn` over an in-memory conn), 64 B, 1 KiB, 16 KiB, 1 MiB, snappy off;
//! * handshakes: one complete handshake per role, from nothing to a session ready for frames,
//!   over the same recorded messages (the recipient reads one of our auths, the initiator one
//!   of our acks);
//! * discv4: decode + verify of the same six packets (our encoder wrote them), geth doing
//!   what its UDPv4 does with a packet (v4wire.Decode, the sender's id, an ENRResponse's
//!   record verified);
//! * discv5: receiving the same messages (PING, PONG, FINDNODE, TALKREQ, a NODES of 4
//!   records) in ordinary packets under a session, and handshake packets with and without the
//!   initiator's record (see `bench_discv5`);
//! * the primitives under those three, each as our code and geth's call them;
//! * one session over 127.0.0.1 at 1 KiB and 64 KiB messages: ours↔ours (tokio: two nodes on
//!   one two-worker runtime; mio: each node in its own `Runner` on its own thread) against
//!   geth↔geth (two p2p.Servers in the Go process), and geth↔ours in both directions
//!   against geth↔geth with each server in its own process (the same process boundary);
//! * resident memory per established idle session at 1,000 sessions: a hub process (geth's
//!   p2p.Server, or one of our nodes through each driver) dialled by 1,000 of our client
//!   nodes in another process; the ratio is ours / geth (lower is better).
//!
//! The short figures (frames, handshakes, discv4, primitives) run 61 rounds of 20 ms of
//! process CPU time a side: CPU time, because on a shared machine what a slice of wall time
//! holds depends on what else runs. Sessions run 15 rounds of 16 MiB a side, timed by the
//! wall clock (their figure is the parallel work of two threads); memory 7 rounds.
//!
//! Run: `cargo bench -p devp2p-tests --bench versus_geth`. `DEVP2P_BENCH_QUICK=1` runs two
//! short rounds of everything (100 sessions) to check that it works;
//! `DEVP2P_VERSUS_ONLY=frames,handshakes,discv4,discv5,prims,sessions,memory` (any of them) runs only
//! those figures, and `DEVP2P_VERSUS_PAIRS` and `DEVP2P_VERSUS_SIZES` only some of the
//! session figure's rows; `DEVP2P_VERSUS_VERBOSE=1` prints every round. Needs Go (see `tests/harness/go_build.rs`); `DEVP2P_SKIP_GETH=1`
//! skips it. Linux only (reads /proc). Without `--bench` (as `cargo test --benches` runs it)
//! it does nothing.

#[path = "../harness/go_build.rs"]
mod go_build;
#[path = "../harness/mio_pair.rs"]
mod mio_pair;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use devp2p_core::discv4::wire::{self, Endpoint, Neighbor, Neighbors, Packet, Ping, Pong};
use devp2p_core::keccak::Keccak256;
use devp2p_core::node::NodeEvent;
use devp2p_core::rlpx::{FrameCodec, Handshake, Secrets};
use devp2p_core::session::{Protocol, ProtocolId, SendError};
use devp2p_core::{Enode, Enr, NodeSecretKey};
use devp2p_mio::{DriverConfig, Runner, SendFailure};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Which process this is (the hubs and the clients of the memory figure re-run this binary).
const ROLE: &str = "DEVP2P_VERSUS_ROLE";
/// `1`: two short rounds of everything.
const QUICK: &str = "DEVP2P_BENCH_QUICK";
/// A comma-separated subset of frames, handshakes, discv4, discv5, prims, sessions, memory.
const ONLY: &str = "DEVP2P_VERSUS_ONLY";
/// `1`: every round's two measurements on stderr, and for the session pairs the CPU time
/// they took (geth's pair, our tokio pair's process, each of our mio pair's threads).
const VERBOSE: &str = "DEVP2P_VERSUS_VERBOSE";
/// The session figure's pairs to run (comma-separated keys: tokio, mio, geth-tokio, tokio-geth,
/// geth-mio, mio-geth; all by default).
const PAIRS: &str = "DEVP2P_VERSUS_PAIRS";
/// The session figure's message sizes to run (1024, 65536; both by default).
const SIZES: &str = "DEVP2P_VERSUS_SIZES";
/// The one protocol the session figures speak (geth's side: "bench" version 1, one code).
const P: ProtocolId = ProtocolId::new(0);
/// Longest one session round or one connection phase may take.
const LIMIT: Duration = Duration::from_secs(120);
/// How long all sessions stay idle before the hub's memory is read.
const IDLE: Duration = Duration::from_secs(3);
/// Handshake messages recorded for the handshake figure (used in turn).
const RECORDED: usize = 16;

/// How much to measure.
struct Plan {
    /// Rounds of the short figures (frames, handshakes, discv4, primitives).
    rounds: usize,
    /// Rounds of the session figure (each run moves `session_bytes`).
    session_rounds: usize,
    /// Rounds of the memory figure (each starts three hub processes).
    mem_rounds: usize,
    /// Milliseconds each side works per round in the frames, handshakes and discv4 figures.
    ms: u64,
    /// Payload bytes per session round.
    session_bytes: usize,
    /// Sessions into each hub.
    sessions: usize,
}

impl Plan {
    fn from_env() -> Plan {
        if std::env::var(QUICK).as_deref() == Ok("1") {
            Plan {
                rounds: 2,
                session_rounds: 2,
                mem_rounds: 2,
                ms: 20,
                session_bytes: 4 << 20,
                sessions: 100,
            }
        } else {
            Plan {
                rounds: 61,
                session_rounds: 15,
                mem_rounds: 7,
                ms: 20,
                session_bytes: 16 << 20,
                sessions: 1000,
            }
        }
    }
}

// ---- measuring --------------------------------------------------------------------------

/// Calls `f` (one unit of work, given its index) in batches until the process has spent
/// `ms` of CPU time on them; returns units per CPU second. CPU time, because the machines are
/// shared: what a slice of wall time holds depends on what else runs, the CPU time the work
/// takes much less so (geth's side counts its garbage collector's threads too). Batches
/// double until one takes a fiftieth of the budget, exactly as the Go side's `measure` does.
fn measure(ms: u64, mut f: impl FnMut(usize)) -> f64 {
    let budget = Duration::from_millis(ms);
    let (mut ops, mut batch) = (0usize, 1usize);
    let start = cpu_time();
    loop {
        let t = cpu_time();
        for j in 0..batch {
            f(ops + j);
        }
        ops += batch;
        let now = cpu_time();
        if now - start >= budget {
            return ops as f64 / (now - start).as_secs_f64();
        }
        if now - t < budget / 50 {
            batch *= 2;
        }
    }
}

/// CPU time (user + system) this process has used, all threads.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one `rusage` into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// The lower and upper quartiles of `v`.
fn quartiles(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 4], s[(3 * s.len()) / 4])
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Per-round measurements of one figure: ours, geth's and the ratio of the two.
#[derive(Default)]
struct Series {
    ours: Vec<f64>,
    geth: Vec<f64>,
    ratio: Vec<f64>,
}

impl Series {
    fn push(&mut self, ours: f64, geth: f64, ratio: f64) {
        self.ours.push(ours);
        self.geth.push(geth);
        self.ratio.push(ratio);
    }

    /// `**median**`, quartiles and `min–max` of the ratios.
    fn ratio_cells(&self) -> String {
        ratio_cells(&self.ratio)
    }
}

/// `**median** | q1–q3 | min–max` of per-round ratios.
fn ratio_cells(r: &[f64]) -> String {
    let (lo, hi) = range(r);
    let (q1, q3) = quartiles(r);
    format!("**{:.2}** | {q1:.2}–{q3:.2} | {lo:.2}–{hi:.2}", median(r))
}

/// Rate figures: both sides once per round (`rate(true)` ours, `rate(false)` geth's),
/// alternating which goes first; the ratio is our rate over geth's.
fn versus(rounds: usize, mut rate: impl FnMut(bool) -> f64) -> Series {
    let mut s = Series::default();
    for round in 0..rounds {
        let (o, g) = if round % 2 == 0 {
            let o = rate(true);
            (o, rate(false))
        } else {
            let g = rate(false);
            (rate(true), g)
        };
        if std::env::var(VERBOSE).as_deref() == Ok("1") {
            eprintln!(
                "round {round}: ours {o:.1}, geth {g:.1}, ratio {:.3}",
                o / g
            );
        }
        s.push(o, g, o / g);
    }
    s
}

// ---- the Go side ------------------------------------------------------------------------

/// The long-lived `bench serve` process: one JSON command per line on stdin, JSON answers
/// on stdout (read on a thread, so that a caller can poll for an answer).
struct Go {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Go {
    fn start(bin: &Path) -> Go {
        let mut child = Command::new(bin)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the Go benchmark program");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Go {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, cmd: Value) {
        writeln!(self.stdin, "{cmd}").expect("writing to the Go benchmark program");
        self.stdin.flush().expect("flushing");
    }

    fn parse(line: &str) -> Value {
        let v: Value = serde_json::from_str(line).expect("a JSON answer");
        if let Some(e) = v.get("error") {
            panic!("the Go benchmark program failed: {e}");
        }
        v
    }

    /// The next answer (panics on an `error` answer or after [`LIMIT`]).
    fn recv(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(LIMIT)
            .expect("an answer from the Go benchmark program");
        Self::parse(&line)
    }

    /// The next answer if one has arrived.
    fn try_recv(&self) -> Option<Value> {
        self.lines.try_recv().ok().map(|l| Self::parse(&l))
    }

    fn call(&mut self, cmd: Value) -> Value {
        self.send(cmd);
        self.recv()
    }

    /// Units per CPU second of a timed command (`ops` units in `cpu_ns`).
    fn rate(&mut self, cmd: Value) -> f64 {
        let v = self.call(cmd);
        v["ops"].as_f64().expect("ops") / (v["cpu_ns"].as_f64().expect("cpu_ns") / 1e9)
    }
}

impl Drop for Go {
    fn drop(&mut self) {
        // Its stdin closing ends it; it is ours, so wait for it by its id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the fixture: what both sides work on -----------------------------------------------

struct Fixture {
    a: NodeSecretKey,
    b: NodeSecretKey,
    /// Auth messages from A to B.
    auths: Vec<Vec<u8>>,
    /// Ack messages from B to A.
    acks: Vec<Vec<u8>>,
    /// discv4 packets signed by A.
    packets: Vec<Vec<u8>>,
    /// The records of the discv5 figure's NODES packet.
    v5_records: Vec<Enr>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Fixture {
    fn new() -> Fixture {
        let mut rng = ChaCha20Rng::seed_from_u64(0x9e7);
        let a = NodeSecretKey::generate(&mut rng);
        let b = NodeSecretKey::generate(&mut rng);
        let (mut auths, mut acks) = (Vec::new(), Vec::new());
        for _ in 0..RECORDED {
            let mut init = Handshake::initiator(&a, b.public(), &mut rng);
            let auth = init.take_output();
            let mut resp = Handshake::recipient(&b, &mut rng);
            resp.read(&auth).expect("our auth");
            let ack = resp.take_output();
            init.read(&ack).expect("our ack");
            assert!(init.is_done() && resp.is_done());
            auths.push(auth);
            acks.push(ack);
        }
        let packets = discv4_packets(&a);
        let v5_records = v5_records();
        Fixture {
            a,
            b,
            auths,
            acks,
            packets,
            v5_records,
        }
    }

    fn write(&self, path: &Path) {
        let list = |v: &[Vec<u8>]| v.iter().map(|b| hex(b)).collect::<Vec<_>>();
        let doc = json!({
            "key_a": hex(&self.a.to_bytes()),
            "key_b": hex(&self.b.to_bytes()),
            "auths": list(&self.auths),
            "acks": list(&self.acks),
            "packets": list(&self.packets),
            "v5_records": self.v5_records.iter().map(|r| hex(r.as_bytes())).collect::<Vec<_>>(),
        });
        std::fs::write(path, doc.to_string()).expect("writing the fixture");
    }
}

/// The mix of core/benches/discv4.rs: Ping, Pong, FindNode, a full Neighbors (12),
/// ENRRequest, ENRResponse (the sender's own record), signed by `key`.
fn discv4_packets(key: &NodeSecretKey) -> Vec<Vec<u8>> {
    use std::net::{IpAddr, Ipv4Addr};
    let e = Endpoint {
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        udp: 30303,
        tcp: 30303,
    };
    let record = Enr::builder()
        .ip4(Ipv4Addr::new(10, 1, 2, 3))
        .udp4(30303)
        .tcp4(30303)
        .sign(key)
        .expect("record");
    // Far in the future: neither side checks it here, but geth's handler would.
    let exp = 4_000_000_000;
    [
        Packet::Ping(Ping {
            version: 4,
            from: e,
            to: e,
            expiration: exp,
            enr_seq: Some(3),
        }),
        Packet::Pong(Pong {
            to: e,
            ping_hash: [7; 32],
            expiration: exp,
            enr_seq: Some(3),
        }),
        Packet::FindNode(wire::FindNode {
            target: [9; 64],
            expiration: exp,
        }),
        Packet::Neighbors(Neighbors {
            nodes: vec![
                Neighbor {
                    endpoint: e,
                    key: *key.public().raw(),
                };
                12
            ],
            expiration: exp,
        }),
        Packet::EnrRequest(wire::EnrRequest { expiration: exp }),
        Packet::EnrResponse(wire::EnrResponse {
            request_hash: [1; 32],
            record,
        }),
    ]
    .iter()
    .map(|p| wire::encode(p, key).0)
    .collect()
}

// ---- frames, handshakes, discv4 ---------------------------------------------------------

fn codec_pair(snappy: bool) -> (FrameCodec, FrameCodec) {
    let mut s1 = Keccak256::new();
    s1.update(b"one direction");
    let mut s2 = Keccak256::new();
    s2.update(b"other direction");
    let secrets = |e: Keccak256, i: Keccak256| Secrets {
        aes_secret: [7; 32],
        mac_secret: [9; 32],
        egress_mac: e,
        ingress_mac: i,
    };
    let mut a = FrameCodec::new(secrets(s1.clone(), s2.clone()));
    let mut b = FrameCodec::new(secrets(s2, s1));
    a.set_snappy(snappy);
    b.set_snappy(snappy);
    (a, b)
}

fn bench_frames(plan: &Plan, go: &mut Go) {
    println!("\n### Frame seal + open (one codec seals, its peer opens; snappy off)\n");
    println!("| payload | ours MB/s | geth MB/s | ours/geth | middle half | range |\n|---|---|---|---|---|---|");
    for size in [64usize, 1024, 16 << 10, 1 << 20] {
        let (mut a, mut b) = codec_pair(false);
        let mut payload = vec![0u8; size];
        ChaCha20Rng::seed_from_u64(size as u64).fill_bytes(&mut payload);
        let mut wire = Vec::with_capacity(FrameCodec::frame_len(0x10, size));
        let s = versus(plan.rounds, |ours| {
            if !ours {
                return go.rate(json!({"cmd": "frames", "size": size, "ms": plan.ms}));
            }
            measure(plan.ms, |_| {
                wire.clear();
                a.encode(0x10, black_box(&payload), &mut wire)
                    .expect("seal");
                let (used, frame) = b.decode(&wire).expect("open");
                let frame = frame.expect("a whole frame");
                assert_eq!(frame.payload.len(), size);
                black_box(used);
            })
        });
        let mbs = |r: f64| r * size as f64 / 1e6;
        println!(
            "| {} | {:.1} | {:.1} | {} |",
            human(size),
            mbs(median(&s.ours)),
            mbs(median(&s.geth)),
            s.ratio_cells()
        );
    }
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn bench_handshakes(plan: &Plan, go: &mut Go, fx: &Fixture) {
    println!("\n### Handshakes, per role (from nothing to a session ready for frames)\n");
    println!(
        "| role | ours /s | geth /s | ours/geth | middle half | range |\n|---|---|---|---|---|---|"
    );
    let mut rng = ChaCha20Rng::seed_from_u64(0x4a5);
    for role in ["initiator", "recipient"] {
        let s = versus(plan.rounds, |ours| {
            if !ours {
                return go.rate(json!({"cmd": "handshake", "role": role, "ms": plan.ms}));
            }
            measure(plan.ms, |i| {
                let outcome = if role == "initiator" {
                    let mut h = Handshake::initiator(&fx.a, fx.b.public(), &mut rng);
                    black_box(h.take_output());
                    h.read(&fx.acks[i % fx.acks.len()]).expect("ack");
                    h.into_outcome()
                } else {
                    let mut h = Handshake::recipient(&fx.b, &mut rng);
                    h.read(&fx.auths[i % fx.auths.len()]).expect("auth");
                    black_box(h.take_output());
                    h.into_outcome()
                };
                // As geth's Conn.Handshake does: the frame codec set up from the secrets.
                black_box(FrameCodec::new(outcome.expect("done").secrets));
            })
        });
        println!(
            "| {role} | {:.0} | {:.0} | {} |",
            median(&s.ours),
            median(&s.geth),
            s.ratio_cells()
        );
    }
}

fn bench_discv4(plan: &Plan, go: &mut Go, fx: &Fixture) {
    println!("\n### discv4 packet decode + verify (the same 6 packets, in turn)\n");
    println!("| ours packets/s | geth packets/s | ours/geth | middle half | range |\n|---|---|---|---|---|");
    let s = versus(plan.rounds, |ours| {
        if !ours {
            return go.rate(json!({"cmd": "discv4", "ms": plan.ms}));
        }
        measure(plan.ms, |i| {
            let p = &fx.packets[i % fx.packets.len()];
            black_box(wire::decode(black_box(p)).expect("our packet"));
        })
    });
    println!(
        "| {:.0} | {:.0} | {} |",
        median(&s.ours),
        median(&s.geth),
        s.ratio_cells()
    );
}

/// The NODES figure's records: four nodes' (keys 1..=4), as core/benches/discv5.rs makes them.
fn v5_records() -> Vec<Enr> {
    (1..=4u8)
        .map(|i| {
            let key = NodeSecretKey::from_bytes(&[i; 32]).expect("a key");
            Enr::builder()
                .seq(1_700_000_000_000 + u64::from(i))
                .ip4([10, 1, 2, i].into())
                .udp4(30303)
                .tcp4(30303)
                .sign(&key)
                .expect("a record")
        })
        .collect()
}

/// discv5, receiving: node B decodes packets from node A. Ours: `Packet::decode` and
/// `Packet::open` (an owned message; a second row with `Packet::open_in`, decoded in place)
/// for ordinary packets, `Packet::accept_handshake` for handshakes, over our encoding. geth:
/// `v5wire.Codec.Decode` of its own codec's encoding of the same messages, under a session
/// its two codecs set up with a real handshake (its session keys are not settable from
/// outside the package, so it cannot read our packets); for NODES, both sides verify every
/// record (ours while decoding, geth's with `enode.New` after, as UDPv5 does). geth's
/// handshake decodes each answer a fresh WHOAREYOU: the challenges are prepared outside the
/// timed part (see `discv5Handshake` in the Go program); ours is stateless and decodes one
/// packet again and again.
fn bench_discv5(plan: &Plan, go: &mut Go, fx: &Fixture) {
    use devp2p_core::discv5::packet::{
        encode_handshake, encode_message, encode_whoareyou, Whoareyou, MAX_MESSAGE_PLAINTEXT,
    };
    use devp2p_core::discv5::{self as v5, SessionKeys};
    println!("\n### discv5 packet decode + decrypt (node B receiving from node A)\n");
    let sizes = go.call(json!({"cmd": "discv5-sizes"}));
    println!("| packet | ours bytes | geth bytes | ours packets/s | geth packets/s | ours/geth | middle half | range |\n|---|---|---|---|---|---|---|---|");
    let (a, b) = (&fx.a, &fx.b);
    let (at_a, at_b) = (
        SessionKeys::new([1; 16], [2; 16]),
        SessionKeys::new([2; 16], [1; 16]),
    );
    let id = v5::RequestId::from_u64(0x0123_4567_89ab_cdef);
    let cases = [
        (
            "ping",
            "PING",
            v5::Message::Ping(v5::Ping {
                request_id: id,
                enr_seq: 1_700_000_000_000,
            }),
        ),
        (
            "pong",
            "PONG",
            v5::Message::Pong(v5::Pong {
                request_id: id,
                enr_seq: 1_700_000_000_000,
                recipient_ip: Some([203, 0, 113, 9].into()),
                recipient_port: 30303,
            }),
        ),
        (
            "findnode",
            "FINDNODE [256, 255, 254]",
            v5::Message::FindNode(v5::FindNode {
                request_id: id,
                distances: vec![256, 255, 254],
            }),
        ),
        (
            "talkreq",
            "TALKREQ, 512-byte request",
            v5::Message::TalkReq(v5::TalkReq {
                request_id: id,
                protocol: b"portal".to_vec(),
                request: vec![0x5a; 512],
            }),
        ),
        (
            "nodes",
            "NODES, 4 records",
            v5::Message::Nodes(v5::Nodes {
                request_id: id,
                total: 1,
                records: fx.v5_records.clone(),
                invalid_records: 0,
            }),
        ),
    ];
    let row = |name: &str, ours_len: usize, key: &str, s: &Series| {
        println!(
            "| {name} | {ours_len} | {} | {:.0} | {:.0} | {} |",
            sizes[key],
            median(&s.ours),
            median(&s.geth),
            s.ratio_cells()
        );
    };
    for (key, name, m) in &cases {
        let mut d = Vec::new();
        encode_message(&mut d, &b.id(), &a.id(), &[7; 16], &[9; 12], &at_a.write, m).expect("fits");
        let geth = |go: &mut Go| go.rate(json!({"cmd": "discv5", "name": key, "ms": plan.ms}));
        let s = versus(plan.rounds, |ours| {
            if !ours {
                return geth(go);
            }
            measure(plan.ms, |_| {
                let p = v5::Packet::decode(black_box(&b.id()), black_box(&d)).expect("ours");
                black_box(p.open(&at_b.read).expect("opens"));
            })
        });
        row(name, d.len(), key, &s);
        let mut plain = [0u8; MAX_MESSAGE_PLAINTEXT];
        let s = versus(plan.rounds, |ours| {
            if !ours {
                return geth(go);
            }
            measure(plan.ms, |_| {
                let p = v5::Packet::decode(black_box(&b.id()), black_box(&d)).expect("ours");
                black_box(p.open_in(&at_b.read, &mut plain).expect("opens"));
            })
        });
        row(
            &format!("{name}, ours in place (`open_in`)"),
            d.len(),
            key,
            &s,
        );
    }
    let record_a = Enr::builder()
        .ip4([10, 1, 2, 1].into())
        .udp4(30303)
        .tcp4(30303)
        .sign(a)
        .expect("a record");
    let ping = v5::Message::Ping(v5::Ping {
        request_id: v5::RequestId::from_u64(5 << 56),
        enr_seq: 1,
    });
    let eph = NodeSecretKey::from_bytes(&[0xe3; 32]).expect("a key");
    for (key, with_record) in [("handshake", false), ("handshake-with-record", true)] {
        let whoareyou = Whoareyou {
            id_nonce: [4; 16],
            enr_seq: if with_record { 0 } else { record_a.seq() },
        };
        let challenge = encode_whoareyou(&mut Vec::new(), &a.id(), &[3; 16], &[2; 12], &whoareyou);
        let mut d = Vec::new();
        encode_handshake(
            &mut d,
            a,
            b.public(),
            &challenge,
            eph.secp(),
            with_record.then_some(&record_a),
            &[7; 16],
            &[9; 12],
            &ping,
        )
        .expect("fits");
        let known = (!with_record).then_some(&record_a);
        let s = versus(plan.rounds, |ours| {
            if !ours {
                return go.rate(json!({"cmd": "discv5", "name": key, "ms": plan.ms}));
            }
            measure(plan.ms, |_| {
                let p = v5::Packet::decode(black_box(&b.id()), black_box(&d)).expect("ours");
                black_box(p.accept_handshake(b, &challenge, known).expect("accepted"));
            })
        });
        let name = match with_record {
            true => "handshake with a record",
            false => "handshake without record",
        };
        row(name, d.len(), key, &s);
    }
}

/// The primitives under the figures above, each as our code calls it, against geth's.
fn bench_prims(plan: &Plan, go: &mut Go, fx: &Fixture) {
    use ctr::cipher::{KeyIvInit, StreamCipher};
    use secp256k1::ecdsa::RecoverableSignature;
    println!("\n### The primitives underneath (ours through the crates the core uses)\n");
    println!("| primitive | ours /s | geth /s | ours/geth | middle half | range |\n|---|---|---|---|---|---|");
    let digest = {
        let mut d = [0u8; 32];
        d[0] = 7;
        secp256k1::Message::from_digest(d)
    };
    let (sk, pk) = (fx.a.secp(), fx.b.public().secp());
    let sig = RecoverableSignature::sign_ecdsa_recoverable(digest, sk);
    let compressed = fx.a.public().compressed();
    let plain =
        secp256k1::ecdsa::Signature::from_compact(&sig.serialize_compact().1).expect("signature");
    let mut data = vec![0u8; 1 << 20];
    let mut rng = ChaCha20Rng::seed_from_u64(0x9f);
    let names = [
        ("keccak", "Keccak-256 of 1 MiB"),
        ("aes-ctr", "AES-256-CTR over 1 MiB"),
        ("ecdh", "ECDH"),
        ("keygen", "key pair"),
        ("sign", "recoverable signature"),
        ("recover", "public-key recovery"),
        ("verify", "ECDSA verification, compressed key"),
    ];
    for (name, what) in names {
        let mut ctr = ctr::Ctr128BE::<aes::Aes256>::new(&[0u8; 32].into(), &[0u8; 16].into());
        let s = versus(plan.rounds, |ours| {
            if !ours {
                return go.rate(json!({"cmd": "prim", "name": name, "ms": plan.ms}));
            }
            measure(plan.ms, |_| match name {
                "keccak" => {
                    black_box(devp2p_core::keccak::keccak256(black_box(&data)));
                }
                "aes-ctr" => ctr.apply_keystream(&mut data),
                "ecdh" => {
                    black_box(secp256k1::ecdh::shared_secret_point(&pk, sk));
                }
                "keygen" => {
                    let mut b = [0u8; 32];
                    rng.fill_bytes(&mut b);
                    let k = secp256k1::SecretKey::from_secret_bytes(b).expect("a key");
                    black_box(secp256k1::PublicKey::from_secret_key(&k));
                }
                "sign" => {
                    black_box(RecoverableSignature::sign_ecdsa_recoverable(digest, sk));
                }
                "recover" => {
                    black_box(sig.recover_ecdsa(digest).expect("recovers"));
                }
                _ => {
                    let key = secp256k1::PublicKey::from_byte_array_compressed(compressed)
                        .expect("a key");
                    secp256k1::ecdsa::verify(&plain, digest, &key).expect("verifies");
                }
            })
        });
        println!(
            "| {what} | {:.0} | {:.0} | {} |",
            median(&s.ours),
            median(&s.geth),
            s.ratio_cells()
        );
    }
    // What our key pairs and signatures pay on top of libsecp256k1's own work (geth's
    // context is never re-randomised, so it has no counterpart): rust-secp256k1 re-randomises
    // its context after every operation with a secret.
    let rates: Vec<f64> = (0..plan.rounds)
        .map(|_| {
            measure(plan.ms, |i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                secp256k1::rerandomize_global_context(&seed);
            })
        })
        .collect();
    println!(
        "\nOurs alone: rust-secp256k1's context re-randomisation, done after every key pair and signature: {:.0} /s ({:.1} µs)",
        median(&rates),
        1e6 / median(&rates)
    );
}

// ---- one session over 127.0.0.1 ---------------------------------------------------------

fn config() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new("bench", 1, 1)];
    config.node.listen = "127.0.0.1:0".parse().expect("address");
    config.node.no_discovery = true;
    config
}

/// Up to 16 distinct random (incompressible) payloads, reused in turn (the Go side does the
/// same with its own random bytes).
fn payloads(size: usize, count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..count.min(16))
        .map(|_| {
            let mut p = vec![0u8; size];
            rng.fill_bytes(&mut p);
            p
        })
        .collect()
}

/// The kinds of the session figure; each round runs all of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pair {
    Geth,
    /// geth to geth with each server in its own process, as in the geth-and-ours pairs.
    GethTwo,
    Tokio,
    Mio,
    GethToTokio,
    TokioToGeth,
    GethToMio,
    MioToGeth,
}

impl Pair {
    const ALL: [Pair; 8] = [
        Pair::Geth,
        Pair::GethTwo,
        Pair::Tokio,
        Pair::Mio,
        Pair::GethToTokio,
        Pair::TokioToGeth,
        Pair::GethToMio,
        Pair::MioToGeth,
    ];

    fn name(self) -> &'static str {
        match self {
            Pair::Geth => "geth → geth",
            Pair::GethTwo => "geth → geth, two processes",
            Pair::Tokio => "ours → ours, tokio",
            Pair::Mio => "ours → ours, mio",
            Pair::GethToTokio => "geth → ours, tokio",
            Pair::TokioToGeth => "ours, tokio → geth",
            Pair::GethToMio => "geth → ours, mio",
            Pair::MioToGeth => "ours, mio → geth",
        }
    }

    /// The geth pair this one is measured against: the pairs with one end in each process
    /// against geth's two servers in two processes (the same process boundary), the others
    /// against geth's two servers in one process.
    fn baseline(self) -> Pair {
        match self {
            Pair::GethToTokio | Pair::TokioToGeth | Pair::GethToMio | Pair::MioToGeth => {
                Pair::GethTwo
            }
            _ => Pair::Geth,
        }
    }

    /// Its name in `DEVP2P_VERSUS_PAIRS`.
    fn key(self) -> &'static str {
        match self {
            Pair::Geth => "geth",
            Pair::GethTwo => "geth2",
            Pair::Tokio => "tokio",
            Pair::Mio => "mio",
            Pair::GethToTokio => "geth-tokio",
            Pair::TokioToGeth => "tokio-geth",
            Pair::GethToMio => "geth-mio",
            Pair::MioToGeth => "mio-geth",
        }
    }
}

/// Seconds for `count` messages of `size` bytes to cross one session, sender to receiver's
/// application.
fn session_round(
    pair: Pair,
    go: &mut Go,
    go2: &mut Go,
    rt: &tokio::runtime::Runtime,
    size: usize,
    count: usize,
) -> f64 {
    let seed = 0x5e55 + size as u64;
    match pair {
        Pair::Geth => {
            let v = go.call(json!({"cmd": "pair", "size": size, "count": count, "seed": seed}));
            if std::env::var(VERBOSE).as_deref() == Ok("1") {
                eprintln!(
                    "geth pair: {:.3} s, {:.3} s of CPU",
                    v["ns"].as_f64().expect("ns") / 1e9,
                    v["cpu_ns"].as_f64().expect("cpu_ns") / 1e9
                );
            }
            v["ns"].as_f64().expect("ns") / 1e9
        }
        Pair::GethTwo => {
            let receiver = geth_listener(go2);
            geth_listener(go);
            go.call(json!({"cmd": "dial", "enode": receiver.to_string()}));
            go2.call(json!({"cmd": "expect", "bytes": size * count}));
            let start = Instant::now();
            go.send(json!({"cmd": "stream", "size": size, "count": count, "seed": seed}));
            go2.recv();
            let secs = start.elapsed().as_secs_f64();
            go.recv();
            go.call(json!({"cmd": "close"}));
            go2.call(json!({"cmd": "close"}));
            secs
        }
        Pair::Tokio => tokio_pair(rt, &payloads(size, count, seed), count),
        Pair::Mio => mio_pair::mio_pair(
            config,
            P,
            payloads(size, count, seed),
            count,
            LIMIT,
            std::env::var(VERBOSE).as_deref() == Ok("1"),
        ),
        Pair::GethToTokio | Pair::TokioToGeth => {
            tokio_with_geth(rt, go, size, count, seed, pair == Pair::TokioToGeth)
        }
        Pair::GethToMio | Pair::MioToGeth => {
            mio_with_geth(go, size, count, seed, pair == Pair::MioToGeth)
        }
    }
}

/// Tokio, both nodes on one two-worker runtime: B posts to A, the time runs until A's event
/// stream has every byte (as in benches/drivers.rs).
fn tokio_pair(rt: &tokio::runtime::Runtime, msgs: &[Vec<u8>], count: usize) -> f64 {
    rt.block_on(async {
        let (a, mut a_events) = devp2p_tokio::spawn(config()).expect("node a");
        let (b, mut b_events) = devp2p_tokio::spawn(config()).expect("node b");
        b.add_static(&a.local_enode()).await.expect("b runs");
        wait_peer(&mut b_events).await;
        wait_peer(&mut a_events).await;
        let total: usize = (0..count).map(|i| msgs[i % msgs.len()].len()).sum();
        let (start, cpu0) = (Instant::now(), cpu_time());
        let receiver = tokio::spawn(async move {
            receive(&mut a_events, total).await;
            a_events
        });
        let to = a.local_id();
        for i in 0..count {
            b.post(&to, P, 0, &msgs[i % msgs.len()])
                .await
                .expect("post");
        }
        let _events = tokio::time::timeout(LIMIT, receiver)
            .await
            .expect("tokio round within the limit")
            .expect("receiver task");
        let secs = start.elapsed().as_secs_f64();
        if std::env::var(VERBOSE).as_deref() == Ok("1") {
            eprintln!(
                "tokio pair: {secs:.3} s, {:.3} s of CPU",
                (cpu_time() - cpu0).as_secs_f64()
            );
        }
        let _ = b.shutdown().await;
        let _ = a.shutdown().await;
        secs
    })
}

async fn wait_peer(events: &mut devp2p_tokio::EventStream) {
    loop {
        match events.recv().await {
            Some(NodeEvent::PeerAdded(_)) => return,
            Some(_) => {}
            None => panic!("node stopped"),
        }
    }
}

async fn receive(events: &mut devp2p_tokio::EventStream, total: usize) {
    let mut got = 0;
    while got < total {
        match events.recv().await {
            Some(NodeEvent::Message { payload, .. }) => got += payload.len(),
            Some(_) => {}
            None => panic!("receiver stopped after {got} of {total} bytes"),
        }
    }
}

/// A fresh geth listener (the Go program's `listen`), parsed.
fn geth_listener(go: &mut Go) -> Enode {
    let v = go.call(json!({"cmd": "listen"}));
    v["enode"]
        .as_str()
        .expect("enode")
        .parse()
        .expect("geth's enode URL")
}

/// Our tokio node and geth over one session; `ours_sends`: we post to geth (the time runs
/// until geth's handler has every byte), otherwise geth sends and the time runs until our
/// event stream has every byte.
fn tokio_with_geth(
    rt: &tokio::runtime::Runtime,
    go: &mut Go,
    size: usize,
    count: usize,
    seed: u64,
    ours_sends: bool,
) -> f64 {
    let geth = geth_listener(go);
    let total = size * count;
    let secs = rt.block_on(async {
        let (node, mut events) = devp2p_tokio::spawn(config()).expect("node");
        node.add_static(&geth).await.expect("node runs");
        wait_peer(&mut events).await;
        let secs = if ours_sends {
            let msgs = payloads(size, count, seed);
            go.call(json!({"cmd": "expect", "bytes": total}));
            let start = Instant::now();
            for i in 0..count {
                node.post(&geth.id(), P, 0, &msgs[i % msgs.len()])
                    .await
                    .expect("post");
            }
            go.recv();
            start.elapsed().as_secs_f64()
        } else {
            go.send(json!({"cmd": "stream", "size": size, "count": count, "seed": seed}));
            let start = Instant::now();
            tokio::time::timeout(LIMIT, receive(&mut events, total))
                .await
                .expect("geth's messages within the limit");
            let secs = start.elapsed().as_secs_f64();
            go.recv();
            secs
        };
        let _ = node.shutdown().await;
        secs
    });
    go.call(json!({"cmd": "close"}));
    secs
}

/// Our mio node (a `Runner` on this thread) and geth over one session, either direction.
fn mio_with_geth(go: &mut Go, size: usize, count: usize, seed: u64, ours_sends: bool) -> f64 {
    let geth = geth_listener(go);
    let to = geth.id();
    let total = size * count;
    let mut r = Runner::new().expect("poll");
    let n = r.add(config()).expect("node");
    r.driver_mut(n)
        .expect("node")
        .add_static(&geth)
        .expect("dialable");
    let mut up = false;
    let limit = Instant::now() + LIMIT;
    while !up {
        assert!(Instant::now() < limit, "no session with geth");
        r.turn(Some(Duration::from_millis(10)), &mut |_, _, e| {
            up |= matches!(e, NodeEvent::PeerAdded(_))
        })
        .expect("poll");
    }
    let secs = if ours_sends {
        let msgs = payloads(size, count, seed);
        go.call(json!({"cmd": "expect", "bytes": total}));
        let start = Instant::now();
        let mut sent = 0;
        loop {
            assert!(Instant::now() < limit + LIMIT, "mio to geth over the limit");
            let d = r.driver_mut(n).expect("node");
            while sent < count {
                match d.send(&to, P, 0, &msgs[sent % msgs.len()]) {
                    Ok(()) => sent += 1,
                    Err(SendFailure::Refused(SendError::QueueFull { .. })) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
            r.turn(Some(Duration::from_millis(1)), &mut |_, _, _| {})
                .expect("poll");
            if go.try_recv().is_some() {
                break;
            }
        }
        start.elapsed().as_secs_f64()
    } else {
        go.send(json!({"cmd": "stream", "size": size, "count": count, "seed": seed}));
        let start = Instant::now();
        let mut got = 0;
        while got < total {
            assert!(Instant::now() < limit + LIMIT, "geth to mio over the limit");
            r.turn(Some(Duration::from_millis(10)), &mut |_, _, e| {
                if let NodeEvent::Message { payload, .. } = e {
                    got += payload.len();
                }
            })
            .expect("poll");
        }
        let secs = start.elapsed().as_secs_f64();
        go.recv();
        secs
    };
    r.remote().stop();
    let _ = r.run(|_, _, _| {});
    go.call(json!({"cmd": "close"}));
    secs
}

fn bench_sessions(plan: &Plan, go: &mut Go, geth_bin: &Path) {
    // The receiving server of geth to geth across two processes.
    let mut go2 = Go::start(geth_bin);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "\n### One session over 127.0.0.1 ({} MiB of random messages per run; each pair alternates with the geth pair it is measured against, ratio: the pair's rate / that pair's)\n",
        plan.session_bytes >> 20
    );
    println!("| message | sender → receiver | against | MB/s | its MB/s | ratio | middle half | range |\n|---|---|---|---|---|---|---|---|");
    let pairs = std::env::var(PAIRS).unwrap_or_default();
    let sizes = std::env::var(SIZES).unwrap_or_default();
    let listed =
        |list: &str, item: &str| list.is_empty() || list.split(',').any(|x| x.trim() == item);
    for size in [1024usize, 64 << 10] {
        if !listed(&sizes, &size.to_string()) {
            continue;
        }
        let count = plan.session_bytes / size;
        let mb = (size * count) as f64 / 1e6;
        for pair in Pair::ALL[1..].iter().filter(|p| listed(&pairs, p.key())) {
            let baseline = pair.baseline();
            let s = versus(plan.session_rounds, |ours| {
                let p = if ours { *pair } else { baseline };
                mb / session_round(p, go, &mut go2, &rt, size, count)
            });
            println!(
                "| {} | {} | {} | {:.0} | {:.0} | {} |",
                human(size),
                pair.name(),
                baseline.name(),
                median(&s.ours),
                median(&s.geth),
                s.ratio_cells()
            );
        }
    }
}

// ---- memory per idle session ------------------------------------------------------------

fn hub_config(max_peers: usize) -> DriverConfig {
    let mut config = config();
    config.node.max_peers = max_peers;
    config.node.max_pending_peers = max_peers;
    // Inbound peers are limited to MaxPeers minus the dialled share (geth's rule); a ratio
    // of max_peers leaves all but one slot to inbound.
    config.node.dial_ratio = max_peers.max(1);
    config
}

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Our hub (role `hub:<driver>:<max peers>`): prints `enode <url>`, then answers `stat` with
/// `<VmRSS KiB> <peers>` until stdin ends; the Go hub speaks the same lines.
fn our_hub(driver: &str, max_peers: usize) {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    if driver == "tokio" {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (node, events) = {
            let _g = rt.enter();
            devp2p_tokio::spawn(hub_config(max_peers)).expect("hub node")
        };
        // An application that does not listen for events costs nothing here.
        drop(events);
        writeln!(out, "enode {}", node.local_enode()).expect("stdout");
        for line in stdin.lock().lines().map_while(Result::ok) {
            if line.starts_with("stat") {
                let peers = rt.block_on(node.peers()).expect("hub running").len();
                writeln!(out, "{} {peers}", rss_kib()).expect("stdout");
            }
        }
    } else {
        let mut runner = Runner::new().expect("poll");
        runner.add(hub_config(max_peers)).expect("hub node");
        let enode = runner.driver(0).expect("hub").local_enode();
        let remote = runner.remote();
        let thread = std::thread::spawn(move || runner.run(|_, _, _| {}));
        writeln!(out, "enode {enode}").expect("stdout");
        for line in stdin.lock().lines().map_while(Result::ok) {
            if line.starts_with("stat") {
                let peers = remote
                    .call(|r| r.driver(0).map_or(0, |d| d.peers().len()))
                    .expect("hub running");
                writeln!(out, "{} {peers}", rss_kib()).expect("stdout");
            }
        }
        remote.stop();
        let _ = thread.join();
    }
}

/// The clients (role `clients:<enode>:<n>`): `n` tokio nodes, each keeping the hub as a
/// static peer, until killed.
fn clients(target: Enode, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = hub_config(1);
            c.node.static_nodes = vec![target.clone()];
            let (h, events) = devp2p_tokio::spawn(c).expect("client node");
            drop(events);
            handles.push(h);
        }
        std::future::pending::<()>().await;
    });
}

/// A hub process: ours (this binary in a hub role) or geth's (`bench hub`).
struct Hub {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    enode: Enode,
}

impl Hub {
    fn start(mut cmd: Command) -> Hub {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting a hub");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the hub's enode");
        let enode = line
            .trim()
            .strip_prefix("enode ")
            .expect("an enode line")
            .parse()
            .expect("the hub's enode");
        Hub {
            child,
            stdin,
            stdout,
            enode,
        }
    }

    /// (VmRSS KiB, peers) after `cmd` (`stat`, or `stat-gc` for geth's compacted figure).
    fn stat(&mut self, cmd: &str) -> (u64, usize) {
        writeln!(self.stdin, "{cmd}").expect("asking the hub");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("the hub's answer");
        let mut it = line
            .split_whitespace()
            .map(|w| w.parse::<u64>().expect("a number"));
        (it.next().expect("rss"), it.next().expect("peers") as usize)
    }
}

/// One hub's memory with `n` idle sessions: (KiB per session as it is, KiB per session
/// after geth's forced collection (geth only; ours: the same figure), connect seconds).
fn hub_round(hub_cmd: Command, n: usize, geth: bool) -> (f64, f64, f64) {
    let mut hub = Hub::start(hub_cmd);
    std::thread::sleep(Duration::from_millis(500));
    let (base, _) = hub.stat("stat");
    let base_gc = if geth { hub.stat("stat-gc").0 } else { base };
    let mut clients = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, format!("clients:{}:{n}", hub.enode))
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the clients");
    let started = Instant::now();
    loop {
        let (_, peers) = hub.stat("stat");
        if peers >= n {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "only {peers} of {n} sessions after {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let connect = started.elapsed().as_secs_f64();
    std::thread::sleep(IDLE);
    let (rss, peers) = hub.stat("stat");
    assert!(peers >= n, "sessions dropped while idle ({peers} of {n})");
    let rss_gc = if geth { hub.stat("stat-gc").0 } else { rss };
    // The clients and the hub are ours: end them by their ids.
    let _ = clients.kill();
    let _ = clients.wait();
    drop(hub.stdin);
    let _ = hub.child.kill();
    let _ = hub.child.wait();
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
    (per(rss, base), per(rss_gc, base_gc), connect)
}

fn bench_memory(plan: &Plan, geth_bin: &Path) {
    let n = plan.sessions;
    let max = n + 16;
    println!(
        "\n### Resident memory per established idle session ({n} sessions into one hub process, {} s idle; ratio: ours / geth, lower is better)\n",
        IDLE.as_secs()
    );
    let geth_cmd = || {
        let mut c = Command::new(geth_bin);
        c.args(["hub", "--max-peers", &max.to_string()]);
        c
    };
    let ours_cmd = |driver: &str| {
        let mut c = Command::new(std::env::current_exe().expect("own path"));
        c.env(ROLE, format!("hub:{driver}:{max}"));
        c
    };
    // Per round: geth as is, geth compacted, tokio, mio (KiB per session); connect times.
    let mut kib: [Vec<f64>; 4] = Default::default();
    let mut connect: [Vec<f64>; 3] = Default::default();
    for round in 0..plan.mem_rounds {
        let mut order = [0usize, 1, 2];
        if round % 2 == 1 {
            order.reverse();
        }
        for k in order {
            match k {
                0 => {
                    let (as_is, gc, c) = hub_round(geth_cmd(), n, true);
                    kib[0].push(as_is);
                    kib[1].push(gc);
                    connect[0].push(c);
                }
                1 | 2 => {
                    let driver = if k == 1 { "tokio" } else { "mio" };
                    let (per, _, c) = hub_round(ours_cmd(driver), n, false);
                    kib[k + 1].push(per);
                    connect[k].push(c);
                }
                _ => unreachable!(),
            }
        }
    }
    println!("| hub | KiB per session | vs geth compacted | middle half | range | vs geth as is | middle half | range | connect |\n|---|---|---|---|---|---|---|---|---|");
    println!(
        "| geth, as is | {:.1} | | | | | | | {:.1} s |",
        median(&kib[0]),
        median(&connect[0])
    );
    println!(
        "| geth, after runtime.GC + FreeOSMemory | {:.1} | | | | | | | |",
        median(&kib[1])
    );
    for (k, name) in [(2, "ours, tokio"), (3, "ours, mio")] {
        let vs = |geth: &[f64]| -> String {
            let r: Vec<f64> = kib[k].iter().zip(geth).map(|(o, g)| o / g).collect();
            ratio_cells(&r)
        };
        println!(
            "| {name} | {:.1} | {} | {} | {:.1} s |",
            median(&kib[k]),
            vs(&kib[1]),
            vs(&kib[0]),
            median(&connect[k - 1])
        );
    }
}

/// Raises the soft open-file limit to the hard one (children inherit it): 1,000 sessions
/// take a socket at each end, and the client process's nodes a listener each.
fn raise_nofile(need: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we pass and reads nothing else.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) },
        0,
        "getrlimit(RLIMIT_NOFILE)"
    );
    if lim.rlim_cur >= need as libc::rlim_t {
        return;
    }
    assert!(
        lim.rlim_max >= need as libc::rlim_t,
        "{need} open files needed, but the hard limit (ulimit -Hn) is {}",
        lim.rlim_max
    );
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard limit
    // needs no privilege.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) },
        0,
        "setrlimit(RLIMIT_NOFILE)"
    );
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        if let Some(rest) = role.strip_prefix("hub:") {
            let (driver, max) = rest.split_once(':').expect("hub:<driver>:<max>");
            our_hub(driver, max.parse().expect("max peers"));
        } else if let Some(rest) = role.strip_prefix("clients:") {
            // The enode itself holds colons.
            let (enode, n) = rest.rsplit_once(':').expect("clients:<enode>:<n>");
            clients(enode.parse().expect("enode"), n.parse().expect("count"));
        } else {
            panic!("unknown role {role}");
        }
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!("versus_geth: a benchmark; run it with `cargo bench -p devp2p-tests --bench versus_geth`");
        return;
    }
    if !go_build::geth_enabled("versus_geth") {
        return;
    }
    let plan = Plan::from_env();
    let only = std::env::var(ONLY).unwrap_or_default();
    let wanted = |fig: &str| only.is_empty() || only.split(',').any(|f| f.trim() == fig);
    let geth_bin: PathBuf = go_build::geth_binary("./bench");
    raise_nofile(4 * plan.sessions + 256);
    let fx = Fixture::new();
    let fixture_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("versus-geth-fixture.json");
    fx.write(&fixture_path);
    let mut go = Go::start(&geth_bin);
    go.call(json!({"cmd": "load", "file": fixture_path}));
    println!(
        "## Versus go-ethereum v1.17.10: {} rounds of {} ms a side ({} for sessions, {} for memory), ratio = median of per-round ours/geth (range: lowest–highest round)",
        plan.rounds, plan.ms, plan.session_rounds, plan.mem_rounds
    );
    if wanted("frames") {
        bench_frames(&plan, &mut go);
    }
    if wanted("handshakes") {
        bench_handshakes(&plan, &mut go, &fx);
    }
    if wanted("discv4") {
        bench_discv4(&plan, &mut go, &fx);
    }
    if wanted("discv5") {
        bench_discv5(&plan, &mut go, &fx);
    }
    if wanted("prims") {
        bench_prims(&plan, &mut go, &fx);
    }
    if wanted("sessions") {
        bench_sessions(&plan, &mut go, &geth_bin);
    }
    drop(go);
    if wanted("memory") {
        bench_memory(&plan, &geth_bin);
    }
}
