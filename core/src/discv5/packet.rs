//! The discv5 packet codec ([DISCV5.md §2, §4, §5](crate::spec::discv5)): masking, the static
//! header, the three packet kinds and message encryption.
//!
//! ```text
//! packet        = masking-iv(16) || masked-header || message
//! masked-header = aes128-ctr(key = dest-id[..16], iv = masking-iv, static-header || authdata)
//! static-header = "discv5" || version(2) || flag(1) || nonce(12) || authdata-size(2)
//! message       = aes128-gcm(key, nonce, message-pt, aad = masking-iv || static-header || authdata)
//! ```
//!
//! This layer holds no state: a session machine keeps the keys and challenges and passes them
//! in. Decoding runs in two steps because what to decrypt with depends on the header:
//! [`Packet::decode`] unmasks and checks the header; then the caller looks up the session of
//! [`Packet::src_id`] and calls [`Packet::open`] (ordinary packet), or finds the challenge it
//! sent and calls [`Packet::accept_handshake`] (handshake packet), or matches a WHOAREYOU's
//! nonce to its own request. Randomness (masking IV, nonce, id-nonce, ephemeral key) is always
//! an argument.

use std::fmt;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::Aes128;

use super::crypto::{
    derive_keys, ecdh, simulated_ecdh, verify_id_signature_with, DecryptError, HandshakeProof,
    MessageKey, Nonce, SessionKeys, COMPRESSED_KEY_SIZE, ID_SIGNATURE_SIZE, NONCE_SIZE, TAG_SIZE,
};
use super::message::{Message, MessageError, MessageRef};
use crate::enr::rlp_items::{list_items, split_item, uint};
use smallvec::SmallVec;

use crate::enr::{Enr, EnrError, MAX_RECORD_SIZE};
use crate::identity::{NodeId, NodePublicKey, NodeSecretKey, SignatureScheme, NODE_ID_LEN};

/// Largest datagram (spec "Packet Encoding"; geth `maxPacketSize`, sigp, ChainSafe). geth
/// reads into a buffer of this size, so longer datagrams fail there; we refuse them outright.
pub const MAX_PACKET_SIZE: usize = 1280;
/// Smallest datagram: a WHOAREYOU (spec "Packet Encoding"; geth `minPacketSize`, geth#25740).
pub const MIN_PACKET_SIZE: usize = MASKING_IV_SIZE + STATIC_HEADER_SIZE + WHOAREYOU_AUTHDATA_SIZE;
/// Bytes a non-WHOAREYOU packet needs after the static header: a src-id and a GCM tag (geth
/// `minMessageSize`). An 87-byte minimum in all.
pub const MIN_MESSAGE_DATA_SIZE: usize = NODE_ID_LEN + TAG_SIZE;
/// Size of the masking IV, the clear first bytes of every packet.
pub const MASKING_IV_SIZE: usize = 16;
/// Size of the static header: protocol-id, version, flag, nonce, authdata-size.
pub const STATIC_HEADER_SIZE: usize = 6 + 2 + 1 + NONCE_SIZE + 2;
/// The protocol id every packet starts with once unmasked (spec "Packet Encoding").
pub const PROTOCOL_ID: [u8; 6] = *b"discv5";
/// The version we write: v5.1.
pub const PROTOCOL_VERSION: u16 = 1;
/// The lowest version we read. geth accepts any version from 1 up (sigp only 1): a later
/// minor version is expected to keep the layout ([DISCV5.md §2.4](crate::spec::discv5)).
pub const MIN_PROTOCOL_VERSION: u16 = 1;
/// Size of a WHOAREYOU's id-nonce.
pub const ID_NONCE_SIZE: usize = 16;
/// Authdata of an ordinary message packet: the src-id.
pub const MESSAGE_AUTHDATA_SIZE: usize = NODE_ID_LEN;
/// Authdata of a WHOAREYOU: id-nonce and enr-seq.
pub const WHOAREYOU_AUTHDATA_SIZE: usize = ID_NONCE_SIZE + 8;
/// The fixed head of a handshake's authdata: src-id, sig-size, eph-key-size.
pub const HANDSHAKE_AUTHDATA_HEAD_SIZE: usize = NODE_ID_LEN + 2;
/// A handshake's authdata without a record, for the "v4" scheme (64-byte signature, 33-byte
/// key): 131 bytes.
pub const HANDSHAKE_AUTHDATA_MIN_SIZE: usize =
    HANDSHAKE_AUTHDATA_HEAD_SIZE + ID_SIGNATURE_SIZE + COMPRESSED_KEY_SIZE;
/// The largest authdata: a handshake carrying a maximal record (EIP-778's 300 bytes).
pub const MAX_AUTHDATA_SIZE: usize = HANDSHAKE_AUTHDATA_MIN_SIZE + MAX_RECORD_SIZE;
/// A WHOAREYOU is exactly this long, and so is its challenge-data.
pub const WHOAREYOU_SIZE: usize = MIN_PACKET_SIZE;
/// Largest message plaintext in an ordinary packet: 1193 bytes
/// ([DISCV5.md §2.3](crate::spec::discv5)). In a handshake packet it is 1094 without a record
/// and 794 with a 300-byte one.
pub const MAX_MESSAGE_PLAINTEXT: usize =
    MAX_PACKET_SIZE - MASKING_IV_SIZE - STATIC_HEADER_SIZE - MESSAGE_AUTHDATA_SIZE - TAG_SIZE;
/// Where [`Packet::open_in`] decrypts a message: room for the largest plaintext.
pub type PlaintextBuffer = [u8; MAX_MESSAGE_PLAINTEXT];
/// Filler bytes after the header of a "random" packet, the ordinary packet sent when there is
/// no session yet to provoke a WHOAREYOU (geth `randomPacketMsgSize`; sigp sends 44).
pub const RANDOM_PACKET_FILLER: usize = 20;

/// Offsets of the static header's fields in an unmasked header.
const PROTOCOL_ID_AT: usize = MASKING_IV_SIZE;
const VERSION_AT: usize = PROTOCOL_ID_AT + 6;
const FLAG_AT: usize = VERSION_AT + 2;
const NONCE_AT: usize = FLAG_AT + 1;
const AUTH_SIZE_AT: usize = NONCE_AT + NONCE_SIZE;
const AUTHDATA_AT: usize = AUTH_SIZE_AT + 2;

/// The 16 clear bytes in front of the masked header; also the CTR initial counter block.
pub type MaskingIv = [u8; MASKING_IV_SIZE];
/// A WHOAREYOU's id-nonce.
pub type IdNonce = [u8; ID_NONCE_SIZE];

/// The header `flag` byte.
pub mod flag {
    /// Ordinary message packet.
    pub const MESSAGE: u8 = 0;
    /// WHOAREYOU.
    pub const WHOAREYOU: u8 = 1;
    /// Handshake message packet.
    pub const HANDSHAKE: u8 = 2;
}

/// Masks (or, being its own inverse, unmasks) `data`, the bytes after a packet's IV: AES-128-CTR
/// with key `dest[..16]` and the IV as the whole initial 128-bit counter block, incremented
/// big-endian across all 128 bits as Go's `cipher.NewCTR` does. sigp/discv5 uses a 64-bit
/// counter instead, which differs only if the IV's low 64 bits wrap within the ≤ 80 blocks of
/// a packet (a chance of about 2⁻⁵⁸ per random IV); we follow geth. The encoders call it;
/// it is public for tests and fuzzers that build packets by hand.
pub fn apply_mask(dest: &NodeId, iv: &MaskingIv, data: &mut [u8]) {
    mask_at(&masking_cipher(dest), iv, 0, data);
}

/// The AES-128 key schedule of the masking key for packets to `dest`.
fn masking_cipher(dest: &NodeId) -> Aes128 {
    let key: [u8; 16] = dest.0[..16].try_into().expect("16 of 32 bytes");
    Aes128::new(&key.into())
}

/// Keystream blocks [`Packet::decode`] computes before it knows the authdata size.
const FIRST_BLOCKS: usize = 4;
/// Header bytes a [`Packet`] holds without allocating: room for an ordinary packet's (71) and
/// a WHOAREYOU's (63).
const INLINE_HEADER: usize = 96;

/// `data ^= keystream`, over the shorter of the two.
fn xor(data: &mut [u8], keystream: &[u8]) {
    for (d, k) in data.iter_mut().zip(keystream) {
        *d ^= k;
    }
}

/// XORs `data` with the CTR keystream from byte `pos` on. Written out over the block cipher
/// (eight blocks at a time) rather than through `ctr`'s stream wrapper, whose buffering of a
/// partial block made the two-step unmasking of a header (static part, then authdata) cost
/// twice the keystream itself.
fn mask_at(cipher: &Aes128, iv: &MaskingIv, pos: usize, data: &mut [u8]) {
    const BATCH: usize = 8;
    let iv = u128::from_be_bytes(*iv);
    let mut block = pos / 16;
    let mut skip = pos % 16;
    let mut rest = data;
    while !rest.is_empty() {
        let n = (skip + rest.len()).div_ceil(16).min(BATCH);
        let mut ks = [aes::Block::default(); BATCH];
        for (i, b) in ks[..n].iter_mut().enumerate() {
            *b = iv.wrapping_add((block + i) as u128).to_be_bytes().into();
        }
        cipher.encrypt_blocks(&mut ks[..n]);
        let stream = ks[..n].iter().flat_map(|b| b.iter()).skip(skip);
        let take = (n * 16 - skip).min(rest.len());
        let (now, later) = rest.split_at_mut(take);
        for (d, k) in now.iter_mut().zip(stream) {
            *d ^= k;
        }
        rest = later;
        block += n;
        skip = 0;
    }
}

/// A WHOAREYOU's authdata ([DISCV5.md §2.2](crate::spec::discv5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whoareyou {
    /// Fresh random bytes the initiator must sign over (as part of challenge-data).
    pub id_nonce: IdNonce,
    /// The highest seq of the challenged node's record the challenger holds, 0 for none: the
    /// initiator includes its record iff its own seq is higher ([DISCV5.md §4.6](crate::spec::discv5)).
    pub enr_seq: u64,
}

/// A handshake packet's authdata, borrowed from the decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeAuth<'h> {
    /// The initiator's node id (not yet proven: [`Packet::accept_handshake`] proves it).
    pub src_id: NodeId,
    /// The id-nonce signature.
    pub id_signature: &'h [u8; ID_SIGNATURE_SIZE],
    /// The compressed ephemeral public key, not yet checked to be on the curve.
    pub ephemeral_key: &'h [u8; COMPRESSED_KEY_SIZE],
    /// The initiator's RLP record, if it sent one; not yet decoded.
    pub record: Option<&'h [u8]>,
}

/// What a decoded header says the packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind<'h> {
    /// Flag 0: a message under an existing session (or a random packet: then
    /// [`Packet::open`] fails and the answer is a WHOAREYOU).
    Message {
        /// The sender's claimed node id.
        src_id: NodeId,
    },
    /// Flag 1: a challenge to one of our packets, named by [`Packet::nonce`].
    Whoareyou(Whoareyou),
    /// Flag 2: a message under keys from the handshake it carries.
    Handshake(HandshakeAuth<'h>),
}

/// Why a datagram is not a discv5 packet, or not one we can read
/// ([DISCV5.md §2.4](crate::spec::discv5), in geth's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than [`MIN_PACKET_SIZE`] (geth `errTooShort`).
    TooShort(usize),
    /// Longer than [`MAX_PACKET_SIZE`].
    TooLarge(usize),
    /// The unmasked protocol id is not "discv5": not for us, or not discv5 at all (geth
    /// `errInvalidHeader`).
    ProtocolId,
    /// A version below [`MIN_PROTOCOL_VERSION`] (geth `errMinVersion`).
    Version(u16),
    /// Not a WHOAREYOU and fewer than [`MIN_MESSAGE_DATA_SIZE`] bytes after the static header
    /// (geth `errMsgTooShort`).
    MessageTooShort,
    /// The authdata-size reaches past the end of the datagram (geth `errAuthSize`).
    AuthdataPastEnd(u16),
    /// A flag other than 0, 1 and 2 (geth `errInvalidFlag`).
    UnknownFlag(u8),
    /// An authdata-size that the flag does not allow.
    AuthdataSize {
        /// The header flag.
        flag: u8,
        /// The authdata-size.
        size: u16,
    },
    /// A handshake whose sig-size or eph-key-size is not the "v4" scheme's 64 and 33.
    HandshakeSizes {
        /// The sig-size field.
        sig_size: u8,
        /// The eph-key-size field.
        key_size: u8,
    },
}

impl PacketError {
    /// Whether the datagram is most likely not discv5 at all, so that a socket shared with
    /// discv4 should hand it there (geth `IsInvalidHeader`; [DISCV5.md §10](crate::spec::discv5)).
    pub fn is_not_discv5(&self) -> bool {
        matches!(
            self,
            PacketError::TooShort(_) | PacketError::ProtocolId | PacketError::MessageTooShort
        )
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::TooShort(n) => write!(f, "packet of {n} bytes, below {MIN_PACKET_SIZE}"),
            PacketError::TooLarge(n) => write!(f, "packet of {n} bytes, over {MAX_PACKET_SIZE}"),
            PacketError::ProtocolId => f.write_str("protocol id is not discv5 after unmasking"),
            PacketError::Version(v) => write!(f, "protocol version {v} below {MIN_PROTOCOL_VERSION}"),
            PacketError::MessageTooShort => f.write_str("message packet below minimum size"),
            PacketError::AuthdataPastEnd(n) => write!(f, "authdata size {n} beyond packet end"),
            PacketError::UnknownFlag(x) => write!(f, "unknown packet flag {x}"),
            PacketError::AuthdataSize { flag, size } => {
                write!(f, "authdata size {size} invalid for flag {flag}")
            }
            PacketError::HandshakeSizes { sig_size, key_size } => write!(
                f,
                "handshake sig-size {sig_size} / eph-key-size {key_size}, expected {ID_SIGNATURE_SIZE} / {COMPRESSED_KEY_SIZE}"
            ),
        }
    }
}

impl std::error::Error for PacketError {}

/// Why the message of an ordinary (or accepted handshake) packet could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// It does not authenticate under the key: for an ordinary packet, answer with a
    /// WHOAREYOU ([DISCV5.md §4.9](crate::spec::discv5)).
    Decrypt,
    /// It decrypted, but the plaintext is no valid message: drop it, no WHOAREYOU.
    Message(MessageError),
    /// [`Packet::open`] was called on a WHOAREYOU, which carries no message.
    NoMessage,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Decrypt => DecryptError.fmt(f),
            OpenError::Message(e) => e.fmt(f),
            OpenError::NoMessage => f.write_str("a WHOAREYOU carries no message"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Why a handshake packet was refused ([DISCV5.md §4.7](crate::spec::discv5)). On any of them
/// geth deletes the challenge, so that one WHOAREYOU buys at most one signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// [`Packet::accept_handshake`] was called on a packet that is not a handshake.
    NotHandshake,
    /// The carried record does not decode or verify.
    Record(EnrError),
    /// The carried record belongs to another node id than the packet's src-id.
    RecordIdMismatch,
    /// No record was sent and none was known (geth `errNoRecord`).
    NoRecord,
    /// The id-nonce signature does not verify against the record's key (geth
    /// `errInvalidNonceSig`).
    BadSignature,
    /// The ephemeral key is not a point on the curve (geth `errInvalidAuthKey`).
    BadEphemeralKey,
    /// The message did not decrypt or decode under the derived keys.
    Open(OpenError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::NotHandshake => f.write_str("not a handshake packet"),
            HandshakeError::Record(e) => write!(f, "invalid record in handshake: {e}"),
            HandshakeError::RecordIdMismatch => f.write_str("handshake record has another node id"),
            HandshakeError::NoRecord => f.write_str("no record in handshake and none known"),
            HandshakeError::BadSignature => f.write_str("invalid id-nonce signature"),
            HandshakeError::BadEphemeralKey => f.write_str("invalid ephemeral key"),
            HandshakeError::Open(e) => write!(f, "handshake message: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Why a packet could not be encoded. Every other input is valid by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The packet would be longer than [`MAX_PACKET_SIZE`].
    TooLarge(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge(n) => write!(f, "packet of {n} bytes, over {MAX_PACKET_SIZE}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A handshake the recipient accepted: the initiator's verified record, the new session (as
/// the recipient holds it) and the message the handshake carried.
#[derive(Debug, Clone)]
pub struct AcceptedHandshake {
    /// The record the signature verified against: the carried one if it was newer than the
    /// known one (or none was known), else the known one.
    pub record: Enr,
    /// Write = recipient-key, read = initiator-key.
    pub keys: SessionKeys,
    /// The message.
    pub message: Message,
}

/// A datagram whose masked header decoded. It keeps the unmasked header (the GCM associated
/// data, and for a WHOAREYOU the challenge-data) and borrows the message ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Inline for ordinary packets and WHOAREYOUs (71 and 63 bytes); a handshake's spills to
    /// the heap.
    header: SmallVec<[u8; INLINE_HEADER]>,
    message: &'a [u8],
}

impl fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("kind", &self.kind())
            .field("nonce", &hex::encode(self.nonce()))
            .field("message_len", &self.message.len())
            .finish()
    }
}

impl<'a> Packet<'a> {
    /// Unmasks `datagram` with our own id `local_id` and checks its header. Nothing is
    /// decrypted and nothing allocated beyond the header copy (at most 1280 bytes).
    pub fn decode(local_id: &NodeId, datagram: &'a [u8]) -> Result<Self, PacketError> {
        let len = datagram.len();
        if len < MIN_PACKET_SIZE {
            return Err(PacketError::TooShort(len));
        }
        if len > MAX_PACKET_SIZE {
            return Err(PacketError::TooLarge(len));
        }
        let static_end = AUTHDATA_AT;
        let iv: MaskingIv = datagram[..MASKING_IV_SIZE].try_into().expect("16 bytes");
        let cipher = masking_cipher(local_id);
        // The first four keystream blocks in one batch: the static header and the first 41
        // authdata bytes, all of an ordinary packet's or a WHOAREYOU's.
        let mut first = [aes::Block::default(); FIRST_BLOCKS];
        let ctr0 = u128::from_be_bytes(iv);
        for (i, b) in first.iter_mut().enumerate() {
            *b = ctr0.wrapping_add(i as u128).to_be_bytes().into();
        }
        cipher.encrypt_blocks(&mut first);
        // The datagram's first bytes, unmasked as far as that keystream goes. Copied and
        // XORed whole (past the header, if it is shorter): operations of a fixed size cost
        // less than copying exactly the header's bytes.
        let mut head = [0u8; INLINE_HEADER];
        let n = len.min(INLINE_HEADER);
        if n == INLINE_HEADER {
            head.copy_from_slice(&datagram[..INLINE_HEADER]);
        } else {
            head[..n].copy_from_slice(&datagram[..n]);
        }
        let unmasked = MASKING_IV_SIZE + FIRST_BLOCKS * 16;
        for (chunk, b) in head[MASKING_IV_SIZE..unmasked]
            .chunks_exact_mut(16)
            .zip(&first)
        {
            xor(chunk, b);
        }
        if head[PROTOCOL_ID_AT..VERSION_AT] != PROTOCOL_ID {
            return Err(PacketError::ProtocolId);
        }
        let version = u16::from_be_bytes([head[VERSION_AT], head[VERSION_AT + 1]]);
        if version < MIN_PROTOCOL_VERSION {
            return Err(PacketError::Version(version));
        }
        let flag = head[FLAG_AT];
        let remaining = len - static_end;
        if flag != flag::WHOAREYOU && remaining < MIN_MESSAGE_DATA_SIZE {
            return Err(PacketError::MessageTooShort);
        }
        let auth_size = u16::from_be_bytes([head[AUTH_SIZE_AT], head[AUTH_SIZE_AT + 1]]);
        let auth_len = usize::from(auth_size);
        if auth_len > remaining {
            return Err(PacketError::AuthdataPastEnd(auth_size));
        }
        let auth_end = static_end + auth_len;
        let header = if auth_end <= unmasked {
            // An ordinary packet or a WHOAREYOU: unmasked already. The bytes of `head` past
            // `auth_end` are not part of the header and are never read.
            SmallVec::from_buf_and_len(head, auth_end)
        } else {
            // A handshake: the same keystream continues over the rest of the authdata.
            let mut header = SmallVec::with_capacity(auth_end);
            header.extend_from_slice(&head[..unmasked]);
            header.extend_from_slice(&datagram[unmasked..auth_end]);
            mask_at(
                &cipher,
                &iv,
                unmasked - MASKING_IV_SIZE,
                &mut header[unmasked..],
            );
            header
        };
        let bad_size = PacketError::AuthdataSize {
            flag,
            size: auth_size,
        };
        match flag {
            flag::MESSAGE if auth_len != MESSAGE_AUTHDATA_SIZE => return Err(bad_size),
            flag::WHOAREYOU if auth_len != WHOAREYOU_AUTHDATA_SIZE => return Err(bad_size),
            flag::HANDSHAKE => {
                if auth_len < HANDSHAKE_AUTHDATA_HEAD_SIZE {
                    return Err(bad_size);
                }
                let (sig_size, key_size) = (header[static_end + 32], header[static_end + 33]);
                if usize::from(sig_size) != ID_SIGNATURE_SIZE
                    || usize::from(key_size) != COMPRESSED_KEY_SIZE
                {
                    return Err(PacketError::HandshakeSizes { sig_size, key_size });
                }
                // Room for the signature and key; at most a 300-byte record after them.
                if !(HANDSHAKE_AUTHDATA_MIN_SIZE..=MAX_AUTHDATA_SIZE).contains(&auth_len) {
                    return Err(bad_size);
                }
            }
            flag::MESSAGE | flag::WHOAREYOU => {}
            other => return Err(PacketError::UnknownFlag(other)),
        }
        Ok(Packet {
            header,
            message: &datagram[auth_end..],
        })
    }

    /// The unmasked header, `masking-iv || static-header || authdata`: the GCM associated
    /// data, and for a WHOAREYOU the challenge-data to sign over.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The masking IV.
    pub fn masking_iv(&self) -> MaskingIv {
        self.header[..MASKING_IV_SIZE].try_into().expect("16 bytes")
    }

    /// The header's version (1, or a later one).
    pub fn version(&self) -> u16 {
        u16::from_be_bytes([self.header[VERSION_AT], self.header[VERSION_AT + 1]])
    }

    /// The header flag (0, 1 or 2).
    pub fn flag(&self) -> u8 {
        self.header[FLAG_AT]
    }

    /// The header nonce: the GCM nonce, or for a WHOAREYOU the nonce of the packet it
    /// challenges.
    pub fn nonce(&self) -> Nonce {
        self.header[NONCE_AT..AUTH_SIZE_AT]
            .try_into()
            .expect("12 bytes")
    }

    fn authdata(&self) -> &[u8] {
        &self.header[AUTHDATA_AT..]
    }

    /// What kind of packet this is, with its authdata.
    pub fn kind(&self) -> PacketKind<'_> {
        let auth = self.authdata();
        let src = || NodeId(auth[..NODE_ID_LEN].try_into().expect("checked size"));
        match self.flag() {
            flag::WHOAREYOU => PacketKind::Whoareyou(Whoareyou {
                id_nonce: auth[..ID_NONCE_SIZE].try_into().expect("checked size"),
                enr_seq: u64::from_be_bytes(auth[ID_NONCE_SIZE..].try_into().expect("8 bytes")),
            }),
            flag::HANDSHAKE => {
                let sig_end = HANDSHAKE_AUTHDATA_HEAD_SIZE + ID_SIGNATURE_SIZE;
                let record = &auth[HANDSHAKE_AUTHDATA_MIN_SIZE..];
                PacketKind::Handshake(HandshakeAuth {
                    src_id: src(),
                    id_signature: auth[HANDSHAKE_AUTHDATA_HEAD_SIZE..sig_end]
                        .try_into()
                        .expect("checked size"),
                    ephemeral_key: auth[sig_end..HANDSHAKE_AUTHDATA_MIN_SIZE]
                        .try_into()
                        .expect("checked size"),
                    record: (!record.is_empty()).then_some(record),
                })
            }
            _ => PacketKind::Message { src_id: src() },
        }
    }

    /// The sender's claimed node id; `None` for a WHOAREYOU, which names none.
    pub fn src_id(&self) -> Option<NodeId> {
        match self.kind() {
            PacketKind::Message { src_id } => Some(src_id),
            PacketKind::Handshake(h) => Some(h.src_id),
            PacketKind::Whoareyou(_) => None,
        }
    }

    /// The message ciphertext with its tag (what follows the header). A WHOAREYOU has none;
    /// bytes there are ignored, as geth ignores them.
    pub fn message_ciphertext(&self) -> &'a [u8] {
        self.message
    }

    /// Decrypts and decodes the message with the session's read key.
    pub fn open(&self, read: &MessageKey) -> Result<Message, OpenError> {
        self.open_with(read, SignatureScheme::Secp256k1)
    }

    /// [`open`](Self::open), checking a NODES message's records under `scheme` (see
    /// [`Message::decode_with`]).
    pub fn open_with(
        &self,
        read: &MessageKey,
        scheme: SignatureScheme,
    ) -> Result<Message, OpenError> {
        let (ct, tag) = self.sealed()?;
        // Copied, then decrypted in place: cheaper than zeroing an output buffer first, and on
        // the stack for all but the largest messages.
        let mut plain: SmallVec<[u8; 1024]> = SmallVec::from_slice(ct);
        read.open_in_place(&self.nonce(), &self.header, &mut plain, tag)
            .map_err(|_| OpenError::Decrypt)?;
        Message::decode_with(&plain, scheme).map_err(OpenError::Message)
    }

    /// [`open`](Self::open) without copies: decrypts straight from the datagram into `buf`
    /// and decodes the message there, its byte fields borrowing `buf` (the same checks; see
    /// [`MessageRef`]). `buf` can be reused from packet to packet, and nothing is allocated
    /// but a NODES message's records.
    pub fn open_in<'b>(
        &self,
        read: &MessageKey,
        buf: &'b mut PlaintextBuffer,
    ) -> Result<MessageRef<'b>, OpenError> {
        self.open_in_with(read, buf, SignatureScheme::Secp256k1)
    }

    /// [`open_in`](Self::open_in), checking a NODES message's records under `scheme` (see
    /// [`Message::decode_with`]).
    pub fn open_in_with<'b>(
        &self,
        read: &MessageKey,
        buf: &'b mut PlaintextBuffer,
        scheme: SignatureScheme,
    ) -> Result<MessageRef<'b>, OpenError> {
        let (ct, tag) = self.sealed()?;
        // Always room: a datagram of at most MAX_PACKET_SIZE with a header of at least an
        // ordinary packet's leaves at most MAX_MESSAGE_PLAINTEXT for the plaintext.
        let plain = buf.get_mut(..ct.len()).ok_or(OpenError::Decrypt)?;
        read.open_to(&self.nonce(), &self.header, ct, tag, plain)
            .map_err(|_| OpenError::Decrypt)?;
        MessageRef::decode_with(plain, scheme).map_err(OpenError::Message)
    }

    /// The message ciphertext and its tag.
    fn sealed(&self) -> Result<(&'a [u8], &'a [u8; TAG_SIZE]), OpenError> {
        if self.flag() == flag::WHOAREYOU {
            return Err(OpenError::NoMessage);
        }
        let Some(split) = self.message.len().checked_sub(TAG_SIZE) else {
            // Shorter than a tag (a handshake can leave no room for one).
            return Err(OpenError::Decrypt);
        };
        let (ct, tag) = self.message.split_at(split);
        Ok((ct, tag.try_into().expect("split TAG_SIZE from the end")))
    }

    /// The recipient's side of a handshake, in geth's order ([DISCV5.md §4.7](crate::spec::discv5)):
    /// pick the record (the carried one if it is newer than `known` or nothing is known;
    /// verified, and its id must be the src-id), verify the id-nonce signature over
    /// `challenge_data` (the WHOAREYOU we sent this node, unmasked), check the ephemeral key,
    /// derive the keys and open the message. The caller found `challenge_data` by
    /// ([`src_id`](Self::src_id), source address) and deletes it whatever the outcome.
    pub fn accept_handshake(
        &self,
        local: &NodeSecretKey,
        challenge_data: &[u8],
        known: Option<&Enr>,
    ) -> Result<AcceptedHandshake, HandshakeError> {
        let PacketKind::Handshake(auth) = self.kind() else {
            return Err(HandshakeError::NotHandshake);
        };
        let scheme = local.signature_scheme();
        let record = match (auth.record, known) {
            (Some(raw), known) => {
                let newer = match known {
                    None => true,
                    Some(k) => record_seq(raw).map_err(HandshakeError::Record)? > k.seq(),
                };
                if newer {
                    let r = Enr::decode_exact(raw, scheme).map_err(HandshakeError::Record)?;
                    if r.node_id() != auth.src_id {
                        return Err(HandshakeError::RecordIdMismatch);
                    }
                    r
                } else {
                    known.expect("newer is true without one").clone()
                }
            }
            (None, Some(k)) => k.clone(),
            (None, None) => return Err(HandshakeError::NoRecord),
        };
        let local_id = local.id();
        if !verify_id_signature_with(
            scheme,
            record.public_key(),
            auth.id_signature,
            challenge_data,
            auth.ephemeral_key,
            &local_id,
        ) {
            return Err(HandshakeError::BadSignature);
        }
        let secret = match scheme {
            SignatureScheme::Secp256k1 => {
                let ephemeral =
                    secp256k1::PublicKey::from_byte_array_compressed(*auth.ephemeral_key)
                        .map_err(|_| HandshakeError::BadEphemeralKey)?;
                ecdh(&ephemeral, local.secp())
            }
            SignatureScheme::InsecureSimulation => {
                simulated_ecdh(auth.ephemeral_key, local.public())
            }
        };
        let keys = derive_keys(&secret, &auth.src_id, &local_id, challenge_data).recipient();
        let message = self
            .open_with(&keys.read, scheme)
            .map_err(HandshakeError::Open)?;
        Ok(AcceptedHandshake {
            record,
            keys,
            message,
        })
    }
}

/// The seq of a carried record, read without verifying it (geth decodes the record's RLP
/// first and verifies only a record newer than the one it holds). The size limit and the
/// list shape are checked here too.
fn record_seq(raw: &[u8]) -> Result<u64, EnrError> {
    if raw.len() > MAX_RECORD_SIZE {
        return Err(EnrError::TooLarge { size: raw.len() });
    }
    let (item, rest) = split_item(raw)?;
    if !rest.is_empty() {
        return Err(EnrError::TrailingBytes);
    }
    let el = list_items(item)?;
    Ok(uint(el.get(1).ok_or(EnrError::TooFewElements)?)?)
}

/// Appends the unmasked static part of a header (IV and static header) to `out`.
fn write_header(out: &mut Vec<u8>, iv: &MaskingIv, flag: u8, nonce: &Nonce, auth_size: usize) {
    out.extend_from_slice(iv);
    out.extend_from_slice(&PROTOCOL_ID);
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.push(flag);
    out.extend_from_slice(nonce);
    let size = u16::try_from(auth_size).expect("authdata sizes are bounded by MAX_AUTHDATA_SIZE");
    out.extend_from_slice(&size.to_be_bytes());
}

/// Seals `message` after the header already in `out[start..]`, masks the header, and checks
/// the size.
fn seal_and_mask(
    out: &mut Vec<u8>,
    start: usize,
    dest: &NodeId,
    nonce: &Nonce,
    write: &MessageKey,
    message: &Message,
) -> Result<(), EncodeError> {
    let header_end = out.len();
    message.encode(out);
    let total = out.len() - start + TAG_SIZE;
    if total > MAX_PACKET_SIZE {
        out.truncate(start);
        return Err(EncodeError::TooLarge(total));
    }
    let (head, body) = out.split_at_mut(header_end);
    let tag = write.seal_in_place(nonce, &head[start..], body);
    out.extend_from_slice(&tag);
    let iv: MaskingIv = out[start..start + MASKING_IV_SIZE]
        .try_into()
        .expect("16 bytes");
    apply_mask(dest, &iv, &mut out[start + MASKING_IV_SIZE..header_end]);
    Ok(())
}

/// Appends an ordinary message packet from `src_id` to `dest`, sealed with the session's
/// write key. `nonce` must never repeat under that key: geth and sigp use a 32-bit counter
/// followed by 8 random bytes ([DISCV5.md §5](crate::spec::discv5)).
pub fn encode_message(
    out: &mut Vec<u8>,
    dest: &NodeId,
    src_id: &NodeId,
    masking_iv: &MaskingIv,
    nonce: &Nonce,
    write: &MessageKey,
    message: &Message,
) -> Result<(), EncodeError> {
    let start = out.len();
    write_header(out, masking_iv, flag::MESSAGE, nonce, MESSAGE_AUTHDATA_SIZE);
    out.extend_from_slice(&src_id.0);
    seal_and_mask(out, start, dest, nonce, write, message)
}

/// Appends a "random" ordinary packet: a real header with `filler` where the ciphertext
/// would be. Sent when there is no session, so that the recipient answers with a WHOAREYOU
/// (geth `encodeRandom`; use [`RANDOM_PACKET_FILLER`] random bytes). `filler` shorter than a
/// tag is padded with zeros to make a packet the recipient reads as a message.
pub fn encode_random(
    out: &mut Vec<u8>,
    dest: &NodeId,
    src_id: &NodeId,
    masking_iv: &MaskingIv,
    nonce: &Nonce,
    filler: &[u8],
) -> Result<(), EncodeError> {
    let start = out.len();
    let filler_len = filler.len().max(TAG_SIZE);
    let total = MASKING_IV_SIZE + STATIC_HEADER_SIZE + MESSAGE_AUTHDATA_SIZE + filler_len;
    if total > MAX_PACKET_SIZE {
        return Err(EncodeError::TooLarge(total));
    }
    write_header(out, masking_iv, flag::MESSAGE, nonce, MESSAGE_AUTHDATA_SIZE);
    out.extend_from_slice(&src_id.0);
    apply_mask(dest, masking_iv, &mut out[start + MASKING_IV_SIZE..]);
    out.extend_from_slice(filler);
    out.resize(start + total, 0);
    Ok(())
}

/// Appends a WHOAREYOU to `dest` challenging the packet whose nonce was `request_nonce`, and
/// returns its challenge-data (the packet unmasked), which the challenger keeps: to verify
/// the handshake, and to re-send the identical bytes with [`resend_whoareyou`] while the
/// challenge is pending (geth, hive `HandshakeResend`; [DISCV5.md §4.9](crate::spec::discv5)).
pub fn encode_whoareyou(
    out: &mut Vec<u8>,
    dest: &NodeId,
    masking_iv: &MaskingIv,
    request_nonce: &Nonce,
    whoareyou: &Whoareyou,
) -> [u8; WHOAREYOU_SIZE] {
    let mut challenge = Vec::with_capacity(WHOAREYOU_SIZE);
    write_header(
        &mut challenge,
        masking_iv,
        flag::WHOAREYOU,
        request_nonce,
        WHOAREYOU_AUTHDATA_SIZE,
    );
    challenge.extend_from_slice(&whoareyou.id_nonce);
    challenge.extend_from_slice(&whoareyou.enr_seq.to_be_bytes());
    let challenge: [u8; WHOAREYOU_SIZE] = challenge.try_into().expect("63 bytes");
    resend_whoareyou(out, dest, &challenge);
    challenge
}

/// Appends the WHOAREYOU whose challenge-data [`encode_whoareyou`] returned, byte for byte
/// as first sent (same IV, same id-nonce).
pub fn resend_whoareyou(out: &mut Vec<u8>, dest: &NodeId, challenge_data: &[u8; WHOAREYOU_SIZE]) {
    let start = out.len();
    out.extend_from_slice(challenge_data);
    let iv: MaskingIv = challenge_data[..MASKING_IV_SIZE]
        .try_into()
        .expect("16 bytes");
    apply_mask(dest, &iv, &mut out[start + MASKING_IV_SIZE..]);
}

/// Appends a handshake packet: `local` answers the WHOAREYOU it received from `remote`
/// (`challenge_data`, that packet unmasked) with `message` under fresh keys, and includes
/// `record` if given (a caller includes its record iff the WHOAREYOU's enr-seq is below its
/// own seq, [DISCV5.md §4.6](crate::spec::discv5)). Returns the session as the initiator holds
/// it. `ephemeral` must be fresh for every handshake.
#[allow(clippy::too_many_arguments)]
pub fn encode_handshake(
    out: &mut Vec<u8>,
    local: &NodeSecretKey,
    remote: &NodePublicKey,
    challenge_data: &[u8],
    ephemeral: &secp256k1::SecretKey,
    record: Option<&Enr>,
    masking_iv: &MaskingIv,
    nonce: &Nonce,
    message: &Message,
) -> Result<SessionKeys, EncodeError> {
    let proof = HandshakeProof::new(local, remote, challenge_data, ephemeral);
    let keys = proof.keys.initiator();
    encode_handshake_with(
        out,
        &remote.id(),
        &local.id(),
        &proof,
        record,
        masking_iv,
        nonce,
        message,
    )?;
    Ok(keys)
}

/// [`encode_handshake`] from a proof computed beforehand (the keys are `proof.keys`).
#[allow(clippy::too_many_arguments)]
pub fn encode_handshake_with(
    out: &mut Vec<u8>,
    dest: &NodeId,
    src_id: &NodeId,
    proof: &HandshakeProof,
    record: Option<&Enr>,
    masking_iv: &MaskingIv,
    nonce: &Nonce,
    message: &Message,
) -> Result<(), EncodeError> {
    let start = out.len();
    let record = record.map(Enr::as_bytes).unwrap_or_default();
    let auth_size = HANDSHAKE_AUTHDATA_MIN_SIZE + record.len();
    write_header(out, masking_iv, flag::HANDSHAKE, nonce, auth_size);
    out.extend_from_slice(&src_id.0);
    out.push(ID_SIGNATURE_SIZE as u8);
    out.push(COMPRESSED_KEY_SIZE as u8);
    out.extend_from_slice(&proof.id_signature);
    out.extend_from_slice(&proof.ephemeral_key);
    out.extend_from_slice(record);
    let write = MessageKey::new(proof.keys.initiator_key);
    seal_and_mask(out, start, dest, nonce, &write, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discv5::message::{FindNode, Ping, RequestId, TalkReq};

    /// A handshake between two nodes of the simulated scheme completes and agrees on keys;
    /// a real node refuses a simulated handshake and a simulated node a real one.
    #[test]
    fn simulated_handshakes_complete_among_themselves_only() {
        let sim = |b: u8| {
            NodeSecretKey::from_bytes(&[b; 32])
                .unwrap()
                .with_signature_scheme(SignatureScheme::InsecureSimulation)
        };
        let real = |b: u8| NodeSecretKey::from_bytes(&[b; 32]).unwrap();
        let ping = Message::Ping(Ping {
            request_id: RequestId::from_u64(3),
            enr_seq: 1,
        });
        let attempt = |a: &NodeSecretKey, b: &NodeSecretKey| {
            let record = Enr::builder()
                .seq(1)
                .ip("127.0.0.1".parse().unwrap())
                .udp4(30303)
                .sign(a)
                .unwrap();
            let mut w = Vec::new();
            let whoareyou = Whoareyou {
                id_nonce: [4; 16],
                enr_seq: 0,
            };
            let challenge = encode_whoareyou(&mut w, &a.id(), &[3; 16], &[2; 12], &whoareyou);
            let ephemeral = secp256k1::SecretKey::from_secret_bytes([0x77; 32]).unwrap();
            let mut h = Vec::new();
            let keys = encode_handshake(
                &mut h,
                a,
                b.public(),
                &challenge,
                &ephemeral,
                Some(&record),
                &[5; 16],
                &[6; 12],
                &ping,
            )
            .unwrap();
            let p = Packet::decode(&b.id(), &h).unwrap();
            p.accept_handshake(b, &challenge, None).map(|acc| {
                assert_eq!(acc.message, ping);
                assert_eq!(acc.keys.read, keys.write);
            })
        };
        assert_eq!(attempt(&sim(0xa1), &sim(0xb2)), Ok(()));
        assert_eq!(attempt(&real(0xa1), &real(0xb2)), Ok(()));
        assert_eq!(
            attempt(&sim(0xa1), &real(0xb2)),
            Err(HandshakeError::BadSignature)
        );
        assert_eq!(
            attempt(&real(0xa1), &sim(0xb2)),
            Err(HandshakeError::BadSignature)
        );
    }

    #[test]
    fn open_in_opens_what_open_opens_and_refuses_what_it_refuses() {
        let (a, b) = (
            NodeSecretKey::from_bytes(&[0xa1; 32]).unwrap(),
            NodeSecretKey::from_bytes(&[0xb2; 32]).unwrap(),
        );
        let (at_a, at_b) = (
            SessionKeys::new([1; 16], [2; 16]),
            SessionKeys::new([2; 16], [1; 16]),
        );
        let id = RequestId::from_u64(7);
        let messages = [
            Message::Ping(Ping {
                request_id: id,
                enr_seq: 9,
            }),
            Message::FindNode(FindNode {
                request_id: id,
                distances: vec![256, 255, 0],
            }),
            Message::TalkReq(TalkReq {
                request_id: id,
                protocol: b"portal".to_vec(),
                // As large as an ordinary packet holds.
                request: vec![0x5a; MAX_MESSAGE_PLAINTEXT - 23],
            }),
        ];
        let mut buf = [0u8; MAX_MESSAGE_PLAINTEXT];
        for m in &messages {
            let mut d = Vec::new();
            encode_message(&mut d, &b.id(), &a.id(), &[7; 16], &[9; 12], &at_a.write, m).unwrap();
            let p = Packet::decode(&b.id(), &d).unwrap();
            assert_eq!(p.open(&at_b.read).as_ref(), Ok(m));
            assert_eq!(p.open_in(&at_b.read, &mut buf).unwrap().to_message(), *m);
            assert_eq!(p.open_in(&at_b.write, &mut buf), Err(OpenError::Decrypt));
            // A flipped ciphertext bit: neither opens it.
            let last = d.len() - 1;
            d[last] ^= 1;
            let p = Packet::decode(&b.id(), &d).unwrap();
            assert_eq!(p.open(&at_b.read), Err(OpenError::Decrypt));
            assert_eq!(p.open_in(&at_b.read, &mut buf), Err(OpenError::Decrypt));
        }
        let mut w = Vec::new();
        let whoareyou = Whoareyou {
            id_nonce: [4; 16],
            enr_seq: 0,
        };
        encode_whoareyou(&mut w, &a.id(), &[3; 16], &[2; 12], &whoareyou);
        let p = Packet::decode(&a.id(), &w).unwrap();
        assert_eq!(p.open_in(&at_a.read, &mut buf), Err(OpenError::NoMessage));
    }
}
