//! Discovery v5 (wire version 5.1): the wire layer ([DISCV5.md §2–§5](crate::spec::discv5)) —
//! packets, messages and the handshake cryptography, without state — and on it the session
//! layer ([DISCV5.md §4–§7](crate::spec::discv5)), [`Sessions`]: sessions, handshakes and
//! requests as one sans-IO machine. The table and lookups are built on top of that.
//!
//! | module | what it is |
//! |---|---|
//! | [`packet`] | masking, the static header, the three packet kinds: encode, and decode in two steps |
//! | [`message`] | PING, PONG, FINDNODE, NODES, TALKREQ, TALKRESP as `type || rlp` plaintexts |
//! | [`crypto`] | ECDH, HKDF key agreement, the id-nonce signature, AES-GCM message keys |
//! | [`sessions`] | [`Sessions`]: the session cache, both sides of the handshake, requests with timeouts and retries, the limits |
//!
//! # How a session machine uses the wire layer
//! [`Sessions`] is that machine; this is what it does with the three modules.
//! Everything random (masking IVs, nonces, id-nonces, ephemeral keys) and everything
//! remembered (session keys, sent challenges, known records) is an argument, so the caller
//! owns both. Receiving is two steps, because the key depends on the header:
//!
//! 1. [`Packet::decode`] with our own node id unmasks and checks the header. An error means
//!    drop (and with [`PacketError::is_not_discv5`], perhaps hand the datagram to discv4).
//! 2. By [`Packet::kind`]: for an ordinary message, look up the session of its src-id and
//!    source address and [`Packet::open`] it; [`OpenError::Decrypt`] (or no session) means
//!    answer with a WHOAREYOU ([`encode_whoareyou`]). For a handshake, find the challenge sent
//!    to that id and address and [`Packet::accept_handshake`]. For a WHOAREYOU, match
//!    [`Packet::nonce`] to a pending request and re-send it with [`encode_handshake`], signing
//!    over [`Packet::header`] (the challenge-data).
//!
//! # Example
//! A PING as an ordinary packet under an existing session, and back:
//!
//! ```
//! use devp2p_core::discv5::{encode_message, Message, Packet, PacketKind, Ping, RequestId, SessionKeys};
//! use devp2p_core::NodeSecretKey;
//! use rand_core::{Rng, SeedableRng};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
//! let (alice, bob) = (NodeSecretKey::generate(&mut rng), NodeSecretKey::generate(&mut rng));
//! // The two ends of one session (normally from a handshake).
//! let (k1, k2) = ([1u8; 16], [2u8; 16]);
//! let (at_alice, at_bob) = (SessionKeys::new(k1, k2), SessionKeys::new(k2, k1));
//!
//! let ping = Message::Ping(Ping { request_id: RequestId::from_u64(rng.next_u64()), enr_seq: 3 });
//! let (mut iv, mut nonce) = ([0u8; 16], [0u8; 12]);
//! rng.fill_bytes(&mut iv);
//! rng.fill_bytes(&mut nonce); // never twice under one key
//! let mut datagram = Vec::new();
//! encode_message(&mut datagram, &bob.id(), &alice.id(), &iv, &nonce, &at_alice.write, &ping)?;
//!
//! // Bob unmasks the header with his own id, finds the session by the sender's id, opens it.
//! let packet = Packet::decode(&bob.id(), &datagram)?;
//! assert_eq!(packet.kind(), PacketKind::Message { src_id: alice.id() });
//! assert_eq!(packet.open(&at_bob.read)?, ping);
//! // Under a wrong key the message does not open: Bob would answer with a WHOAREYOU.
//! assert!(packet.open(&at_bob.write).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where geth and the spec text differ
//! We follow geth, which every other client interoperates with:
//! - HKDF takes salt = challenge-data and IKM = the ECDH secret; the spec text had them
//!   swapped until devp2p#271 ([`crypto::derive_keys`]).
//! - Any version ≥ 1 is read, not only 1 ([`packet::MIN_PROTOCOL_VERSION`]).
//! - Bytes after a WHOAREYOU's header are ignored rather than refused (nim-eth refuses them;
//!   they are outside the challenge-data, so they change nothing).
//! - The masking counter is 128 bits wide, as in Go's CTR mode; sigp/discv5 uses 64.
//! - A NODES record that is well-formed but fails verification is dropped on its own
//!   ([`Nodes::invalid_records`]); sigp fails the whole message.
//! - A handshake whose sig-size / eph-key-size are not 64 / 33 fails at header decoding
//!   ([`PacketError::HandshakeSizes`]); geth reads any sizes and fails the signature or key
//!   check later, deleting the challenge, which a session machine may do on this error too.

pub mod crypto;
pub mod discovery;
pub mod message;
pub mod packet;
pub mod sessions;

pub use crypto::{
    derive_keys, ecdh, DecryptError, HandshakeKeys, HandshakeProof, MessageKey, Nonce, SessionKeys,
};
pub use discovery::Discovery;
pub use message::{
    pack_nodes, FindNode, Message, MessageError, Nodes, Ping, Pong, RequestId, TalkReq, TalkResp,
};
pub use packet::{
    encode_handshake, encode_handshake_with, encode_message, encode_random, encode_whoareyou,
    resend_whoareyou, AcceptedHandshake, EncodeError, HandshakeAuth, HandshakeError, IdNonce,
    MaskingIv, OpenError, Packet, PacketError, PacketKind, Whoareyou,
};
pub use sessions::{
    Contact, Direction, DropReason, Event, NodeAddress, NodesResponse, Request, RequestFailure,
    Response, SendError, Sessions, SessionsConfig, Transmit,
};
