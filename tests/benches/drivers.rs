//! Loopback throughput of one session through each driver, beside the core codec's own
//! throughput on the same messages in the same run.
//!
//! * codec: one `FrameCodec` seals and its peer opens each message, snappy on (as on every
//!   session after Hello), on one thread: the work a session's bytes cannot avoid.
//! * tokio: node B sends to node A over 127.0.0.1; the time runs until A's event stream has
//!   every byte. Two worker threads, so sealing and opening may overlap. Three times: with
//!   `NodeHandle::post` (pipelined: returns once the message is on its way), with
//!   `NodeHandle::send` (awaits the node's answer for each message: one round trip between
//!   the caller's task and the node's per message) and with `NodeHandle::send_batch`
//!   (`BATCH` messages per round trip).
//! * mio: both nodes in one `Runner` on one thread; B sends whenever its queue has room.
//!   Then again with a thread per node (each node's `Runner` on a thread of its own, as two
//!   processes would run: `tests/harness/mio_pair.rs`, which `versus_geth` runs too).
//!
//! The kinds alternate in rounds; each figure is the median of its rounds, and the ratio
//! driver/codec is the median of the per-round ratios.
//!
//! Run: `cargo bench -p devp2p-tests --bench drivers` (`-- --quick` for fewer rounds).

#[path = "../harness/mio_pair.rs"]
mod mio_pair;

use std::hint::black_box;
use std::time::{Duration, Instant};

use devp2p_core::keccak::Keccak256;
use devp2p_core::node::NodeEvent;
use devp2p_core::rlpx::{FrameCodec, Secrets};
use devp2p_core::session::{Protocol, ProtocolId, SendError};
use devp2p_mio::{DriverConfig, Runner, SendFailure};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Bytes moved per round and message size.
const ROUND_BYTES: usize = 32 * 1024 * 1024;
/// Rounds per message size (the median is reported).
const ROUNDS: usize = 7;
/// Rounds with `--quick`.
const QUICK_ROUNDS: usize = 3;
/// Longest a driver round may take before the bench gives up on it.
const ROUND_LIMIT: Duration = Duration::from_secs(60);
/// The one protocol the benchmark nodes speak.
const P: ProtocolId = ProtocolId::new(0);
/// Messages per `send_batch`.
const BATCH: usize = 64;

/// How the tokio sender hands its messages over.
#[derive(Clone, Copy)]
enum Hand {
    Post,
    Send,
    Batch,
}

fn payloads(size: usize, count: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    // A handful of distinct random (incompressible) payloads, reused.
    (0..count.min(16))
        .map(|_| {
            let mut p = vec![0u8; size];
            rng.fill_bytes(&mut p);
            p
        })
        .collect()
}

fn codec_pair() -> (FrameCodec, FrameCodec) {
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
    a.set_snappy(true);
    b.set_snappy(true);
    (a, b)
}

/// Seconds for the codec to seal and open `count` messages.
fn codec_round(msgs: &[Vec<u8>], count: usize) -> f64 {
    let (mut tx, mut rx) = codec_pair();
    let mut wire = Vec::with_capacity(msgs[0].len() + 1024);
    let start = Instant::now();
    for i in 0..count {
        wire.clear();
        tx.encode(0x10, &msgs[i % msgs.len()], &mut wire)
            .expect("seal");
        let (used, frame) = rx.decode(&wire).expect("open");
        // What a session does with an opened frame: the payload becomes an owned message.
        let owned = frame.expect("whole frame").payload.to_vec();
        black_box((used, owned));
    }
    start.elapsed().as_secs_f64()
}

fn config() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new("bench", 1, 1)];
    config.node.listen = "127.0.0.1:0".parse().expect("address");
    config.node.no_discovery = true;
    config
}

/// Seconds for `count` messages from B to reach A through the tokio driver, handed over as
/// `hand` says.
fn tokio_round(rt: &tokio::runtime::Runtime, msgs: &[Vec<u8>], count: usize, hand: Hand) -> f64 {
    rt.block_on(async {
        let (a, mut a_events) = devp2p_tokio::spawn(config()).expect("node a");
        let (b, mut b_events) = devp2p_tokio::spawn(config()).expect("node b");
        b.add_static(&a.local_enode()).await.expect("b runs");
        loop {
            match b_events.recv().await {
                Some(NodeEvent::PeerAdded(_)) => break,
                Some(_) => {}
                None => panic!("b stopped"),
            }
        }
        let total: usize = (0..count).map(|i| msgs[i % msgs.len()].len()).sum();
        let start = Instant::now();
        let receiver = tokio::spawn(async move {
            let mut got = 0;
            while got < total {
                match a_events.recv().await {
                    Some(NodeEvent::Message { payload, .. }) => got += payload.len(),
                    Some(_) => {}
                    None => break,
                }
            }
            (got, a_events)
        });
        let to = a.local_id();
        match hand {
            Hand::Post => {
                for i in 0..count {
                    b.post(&to, P, 0, &msgs[i % msgs.len()])
                        .await
                        .expect("post");
                }
            }
            Hand::Send => {
                for i in 0..count {
                    b.send(&to, P, 0, &msgs[i % msgs.len()])
                        .await
                        .expect("send");
                }
            }
            Hand::Batch => {
                for first in (0..count).step_by(BATCH) {
                    let batch = (first..(first + BATCH).min(count))
                        .map(|i| (0, msgs[i % msgs.len()].clone()))
                        .collect();
                    b.send_batch(&to, P, batch).await.expect("send_batch");
                }
            }
        }
        let Ok(done) = tokio::time::timeout(ROUND_LIMIT, receiver).await else {
            let dropped = b.stats().await.map(|s| s.driver.posts_dropped);
            panic!("tokio round over {ROUND_LIMIT:?} (posts dropped: {dropped:?})");
        };
        let (got, _events) = done.expect("receiver task");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(got, total);
        let _ = b.shutdown().await;
        let _ = a.shutdown().await;
        secs
    })
}

/// Seconds for `count` messages from B to reach A with both nodes in one mio loop.
fn mio_round(msgs: &[Vec<u8>], count: usize) -> f64 {
    let mut r = Runner::new().expect("poll");
    let a = r.add(config()).expect("node a");
    let b = r.add(config()).expect("node b");
    let a_enode = r.driver(a).expect("a").local_enode();
    let to = a_enode.id();
    r.driver_mut(b)
        .expect("b")
        .add_static(&a_enode)
        .expect("dialable");
    let mut connected = false;
    while !connected {
        r.turn(Some(Duration::from_millis(10)), &mut |i, _, e| {
            connected |= i == b && matches!(e, NodeEvent::PeerAdded(_))
        })
        .expect("poll");
    }
    let total: usize = (0..count).map(|i| msgs[i % msgs.len()].len()).sum();
    let (mut sent, mut got) = (0, 0);
    let start = Instant::now();
    while got < total {
        assert!(start.elapsed() < ROUND_LIMIT, "mio round over the limit");
        let d = r.driver_mut(b).expect("b");
        while sent < count {
            match d.send(&to, P, 0, &msgs[sent % msgs.len()]) {
                Ok(()) => sent += 1,
                Err(SendFailure::Refused(SendError::QueueFull { .. })) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        r.turn(Some(Duration::from_millis(10)), &mut |i, _, e| {
            if let (true, NodeEvent::Message { payload, .. }) = (i == a, e) {
                got += payload.len();
            }
        })
        .expect("poll");
    }
    let secs = start.elapsed().as_secs_f64();
    r.remote().stop();
    let _ = r.run(|_, _, _| {});
    secs
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { QUICK_ROUNDS } else { ROUNDS };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    println!(
        "one session on 127.0.0.1, {} MiB per round, {rounds} rounds, medians",
        ROUND_BYTES >> 20
    );
    println!(
        "| message | codec MB/s | tokio post MB/s | post/codec | tokio send MB/s | send/codec \
         | tokio send_batch({BATCH}) MB/s | batch/codec | mio one thread MB/s | mio/codec \
         | mio thread per node MB/s | mio threads/codec |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for size in [1024usize, 64 * 1024] {
        let count = ROUND_BYTES / size;
        let msgs = payloads(size, count, &mut rng);
        let mb = (count * size) as f64 / 1e6;
        // Per kind: MB/s, and the ratio to the codec in the same round.
        const KINDS: usize = 6;
        let mut rates: [Vec<f64>; KINDS] = Default::default();
        let mut ratios: [Vec<f64>; KINDS] = Default::default();
        for round in 0..rounds {
            // Alternate the order, so drift hits every kind alike.
            let mut secs = [0.0; KINDS];
            let mut order: [usize; KINDS] = std::array::from_fn(|k| k);
            if round % 2 == 1 {
                order.reverse();
            }
            for k in order {
                secs[k] = match k {
                    0 => codec_round(&msgs, count),
                    1 => tokio_round(&rt, &msgs, count, Hand::Post),
                    2 => tokio_round(&rt, &msgs, count, Hand::Send),
                    3 => tokio_round(&rt, &msgs, count, Hand::Batch),
                    4 => mio_round(&msgs, count),
                    _ => mio_pair::mio_pair(config, P, msgs.clone(), count, ROUND_LIMIT, false),
                };
            }
            for k in 0..KINDS {
                rates[k].push(mb / secs[k]);
                ratios[k].push(secs[0] / secs[k]);
            }
        }
        let mut row = format!("| {} KiB | {:.0} |", size / 1024, median(&mut rates[0]));
        for k in 1..KINDS {
            row += &format!(
                " {:.0} | **{:.2}** |",
                median(&mut rates[k]),
                median(&mut ratios[k])
            );
        }
        println!("{row}");
    }
}
