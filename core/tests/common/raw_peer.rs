//! A hand-driven peer for a `Session`: it does the RLPx handshake itself and then sends any
//! frame a test wants, so tests can play a broken or hostile remote.
#![allow(dead_code)]

use std::sync::Arc;

use devp2p_core::rlpx::{FrameCodec, Handshake};
use devp2p_core::session::{Session, SessionConfig, SessionEvent};
use devp2p_core::{Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub struct RawPeer {
    pub key: NodeSecretKey,
    pub codec: FrameCodec,
    /// Frames received from the session: (id, payload).
    pub received: Vec<(u64, Vec<u8>)>,
    pub session: Session,
    pub session_key: NodeSecretKey,
    pub events: Vec<SessionEvent>,
    pub now: Instant,
}

impl RawPeer {
    /// A session (as recipient) with `config`, and a raw peer that has completed the RLPx
    /// handshake with it and read the session's Hello.
    pub fn connect(config: SessionConfig, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = NodeSecretKey::generate(&mut rng);
        let session_key = NodeSecretKey::generate(&mut rng);
        let now = Instant::from_millis(5_000);
        let mut session = Session::recipient(Arc::new(config), &session_key, now, &mut rng);
        let mut hs = Handshake::initiator(&key, session_key.public(), &mut rng);
        let auth = hs.take_output();
        assert_eq!(session.handle_read(now, &auth), auth.len());
        let reply = session.outbound().to_vec();
        session.handle_written(now, reply.len());
        let used = hs.read(&reply).unwrap();
        let codec = FrameCodec::new(hs.into_outcome().unwrap().secrets);
        let mut peer = RawPeer {
            key,
            codec,
            received: Vec::new(),
            session,
            session_key,
            events: Vec::new(),
            now,
        };
        peer.absorb(&reply[used..]);
        assert_eq!(
            peer.received.first().map(|f| f.0),
            Some(0),
            "the session sends Hello first"
        );
        peer
    }

    fn absorb(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (used, frame) = self
                .codec
                .decode(bytes)
                .expect("the session sends valid frames");
            if let Some(f) = frame {
                self.received.push((f.id, f.payload.to_vec()));
            }
            bytes = &bytes[used..];
        }
    }

    /// Sends raw frame data (id and payload as the test encodes them) to the session, then
    /// collects what the session answers.
    pub fn send_frame_data(&mut self, frame_data: &[u8]) {
        let mut wire = Vec::new();
        self.codec.encode_frame_data(frame_data, &mut wire).unwrap();
        self.deliver(&wire);
    }

    /// Sends message `id` with `payload` through the codec (compressed if snappy is on).
    pub fn send(&mut self, id: u64, payload: &[u8]) {
        let mut wire = Vec::new();
        self.codec.encode(id, payload, &mut wire).unwrap();
        self.deliver(&wire);
    }

    /// Sends a well-formed Hello with our own id, `version` and `caps`; switches our codec to
    /// snappy when the session will (both at version 5 or later).
    pub fn send_hello(&mut self, version: u64, caps: &[(&str, u64)]) {
        let hello = devp2p_core::session::Hello {
            protocol_version: version,
            client_id: "raw-peer".into(),
            capabilities: caps
                .iter()
                .map(|(n, v)| devp2p_core::session::Capability::new(*n, *v))
                .collect(),
            listen_port: 0,
            id: self.key.public().raw().to_vec(),
        };
        self.send(0, &hello.encode());
        self.codec
            .set_snappy(version >= devp2p_core::session::P2P_VERSION);
    }

    /// Hands raw bytes to the session and collects its answer.
    pub fn deliver(&mut self, wire: &[u8]) {
        let now = self.now;
        self.session.handle_read(now, wire);
        self.collect();
    }

    /// Reads everything the session queued, and its events.
    pub fn collect(&mut self) {
        let out = self.session.outbound().to_vec();
        self.session.handle_written(self.now, out.len());
        self.absorb(&out);
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// Moves time to `t`, firing the session's deadlines on the way.
    pub fn advance_to(&mut self, t: Instant) {
        while let Some(next) = self.session.poll_timeout() {
            if next > t {
                break;
            }
            self.now = self.now.max(next);
            self.session.handle_timeout(self.now);
            self.collect();
        }
        self.now = self.now.max(t);
    }

    pub fn closed(&self) -> Option<&devp2p_core::session::Closed> {
        self.events.iter().find_map(|e| match e {
            SessionEvent::Closed(c) => Some(c),
            _ => None,
        })
    }
}
