//! An in-memory two-party harness for sessions (the quinn-proto `Pair` idea): it moves bytes
//! between two `Session`s in chunks of a chosen size, jumps virtual time to the next deadline,
//! and turns a livelock into a failing test.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use devp2p_core::session::{Session, SessionConfig, SessionEvent};
use devp2p_core::{Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Steps after which `drive` declares a livelock.
const MAX_STEPS: usize = 1_000_000;

/// One end of the pair and what it has seen.
pub struct End {
    pub session: Session,
    pub key: NodeSecretKey,
    pub events: Vec<SessionEvent>,
    /// Bytes delivered but not yet taken by the session.
    inbox: Vec<u8>,
    /// Whether this end reads from its socket at all.
    pub reads: bool,
    /// Whether the peer's end of the connection has been reported closed to this end.
    eof_sent: bool,
}

pub struct Pair {
    pub now: Instant,
    pub a: End,
    pub b: End,
    /// Chunk sizes for each transfer, cycled; `usize::MAX` moves everything at once.
    pub chunks: Vec<usize>,
    chunk_i: usize,
}

impl Pair {
    /// `a` dials `b`.
    pub fn new(config_a: SessionConfig, config_b: SessionConfig, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ka = NodeSecretKey::generate(&mut rng);
        let kb = NodeSecretKey::generate(&mut rng);
        let now = Instant::from_millis(1_000);
        let a = Session::initiator(Arc::new(config_a), &ka, kb.public(), now, &mut rng);
        let b = Session::recipient(Arc::new(config_b), &kb, now, &mut rng);
        Pair {
            now,
            a: End::new(a, ka),
            b: End::new(b, kb),
            chunks: vec![usize::MAX],
            chunk_i: 0,
        }
    }

    fn next_chunk(&mut self) -> usize {
        let c = self.chunks[self.chunk_i % self.chunks.len()].max(1);
        self.chunk_i += 1;
        c
    }

    /// Moves bytes both ways until nothing moves; does not advance time.
    pub fn drive(&mut self) {
        for _ in 0..MAX_STEPS {
            let c1 = self.next_chunk();
            let c2 = self.next_chunk();
            let now = self.now;
            let p1 = transfer(now, &mut self.a, &mut self.b, c1);
            let p2 = transfer(now, &mut self.b, &mut self.a, c2);
            if !p1 && !p2 {
                return;
            }
        }
        panic!("livelock: the pair kept exchanging bytes for {MAX_STEPS} steps");
    }

    /// Drives, jumping time from deadline to deadline, until `until` (inclusive).
    pub fn run_until(&mut self, until: Instant) {
        for _ in 0..MAX_STEPS {
            self.drive();
            let next = [self.a.session.poll_timeout(), self.b.session.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.a.session.handle_timeout(now);
                    self.b.session.handle_timeout(now);
                    self.a.drain();
                    self.b.drain();
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("livelock: more than {MAX_STEPS} timer rounds");
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Completes the handshake and Hello exchange, asserting both sides are established.
    pub fn establish(&mut self) {
        self.drive();
        assert!(
            self.a.session.is_established(),
            "a not established: {:?}",
            self.a.events
        );
        assert!(
            self.b.session.is_established(),
            "b not established: {:?}",
            self.b.events
        );
    }
}

impl End {
    fn new(session: Session, key: NodeSecretKey) -> Self {
        End {
            session,
            key,
            events: Vec::new(),
            inbox: Vec::new(),
            reads: true,
            eof_sent: false,
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// The `Closed` event, if one came.
    pub fn closed(&self) -> Option<&devp2p_core::session::Closed> {
        self.events.iter().find_map(|e| match e {
            SessionEvent::Closed(c) => Some(c),
            _ => None,
        })
    }

    /// The messages received, as (protocol, code, payload).
    pub fn messages(&self) -> Vec<(usize, u64, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Message {
                    protocol,
                    code,
                    payload,
                } => Some((protocol.index(), *code, payload.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Moves up to `chunk` bytes from `from`'s outbound queue into `to`, lets `to` read what it
/// will, and reports closes. Returns whether anything happened.
fn transfer(now: Instant, from: &mut End, to: &mut End, chunk: usize) -> bool {
    let mut progress = false;
    if to.reads && !from.session.is_finished() {
        let out = from.session.outbound();
        let n = out.len().min(chunk);
        if n > 0 {
            to.inbox.extend_from_slice(&out[..n]);
            from.session.handle_written(now, n);
            progress = true;
        }
    }
    from.drain();
    if to.reads && !to.inbox.is_empty() && !to.session.is_finished() {
        to.drain();
        let used = to.session.handle_read(now, &to.inbox);
        if used > 0 {
            to.inbox.drain(..used);
            progress = true;
        }
        to.drain();
    }
    // A finished session's socket is closed: the peer sees end-of-stream once it has read
    // everything that was sent before.
    if from.session.is_finished() && to.inbox.is_empty() && !to.eof_sent {
        to.eof_sent = true;
        to.session.handle_eof(now);
        to.drain();
        progress = true;
    }
    progress
}
