//! The six discv5 messages ([DISCV5.md §3](crate::spec::discv5)): `message-type || rlp-list`,
//! the plaintext inside every ordinary and handshake packet.
//!
//! Decoding is strict, as in geth and sigp: exactly one list with exactly the message's
//! elements, nothing after it, canonical integers, request ids of at most 8 bytes. discv4's
//! EIP-8 leniency does not carry over.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rlp::DecoderError;

use crate::enr::{Enr, EnrError};
use crate::identity::SignatureScheme;
use crate::rlp_ext::{begin_list, encode_bytes, encode_uint, end_list};

/// Longest request id (spec "Protocol Messages"; geth `ErrInvalidReqID`, hive
/// `PingLargeRequestID`). A request with a longer one is dropped unanswered.
pub const MAX_REQUEST_ID_SIZE: usize = 8;
/// Largest log distance a FINDNODE can ask for: ids that differ in the top bit
/// ([DISCV5.md §1](crate::spec::discv5)). Larger ones decode (geth `[]uint`) and a responder
/// skips them.
pub const MAX_DISTANCE: u64 = 256;
/// Distances a lookup puts in one FINDNODE: `d`, then `d ± 1`, … (geth `lookupRequestLimit`,
/// sigp `DISTANCES_TO_REQUEST_PER_PEER`). Decoding accepts any number, as geth does: the
/// packet size bounds it (at most ~1190 one-byte distances fit).
pub const FINDNODE_DISTANCES: usize = 3;
/// Most records a FINDNODE answer carries in all its NODES messages together (spec
/// recommendation; geth `findnodeResultLimit`, sigp and ChainSafe alike).
pub const FINDNODE_RESULT_LIMIT: usize = 16;
/// Most NODES messages a requester waits for per FINDNODE: a `total` above it is cut to it
/// ([DISCV5.md §3.3](crate::spec::discv5)). geth waits for 5 (`totalNodesResponseLimit`);
/// we wait for 6, the most an answer of [`FINDNODE_RESULT_LIMIT`] records needs when packed
/// for the largest records (300 bytes, 3 to a packet), as @chainsafe/discv5 packs every
/// answer: with 5, the 16th record of a full ChainSafe answer was lost (seen in the interop
/// tests). geth's conformance suite accepts a `total` of 1 to 6 from a responder likewise.
pub const MAX_NODES_RESPONSES: usize = 6;
/// Encoded record bytes [`pack_nodes`] puts in one NODES message, leaving room in a 1280-byte
/// packet for the header, the tag and the rest of the message (geth `packNodes`).
pub const NODES_RECORD_BYTES: usize = 1000;

/// Message type bytes (spec "Protocol Messages"). 0x07 and above (the topic drafts) are not
/// implemented by any client and decode as [`MessageError::UnknownType`]
/// ([DISCV5.md §3.6](crate::spec::discv5)).
pub mod kind {
    /// PING
    pub const PING: u8 = 0x01;
    /// PONG
    pub const PONG: u8 = 0x02;
    /// FINDNODE
    pub const FINDNODE: u8 = 0x03;
    /// NODES
    pub const NODES: u8 = 0x04;
    /// TALKREQ
    pub const TALKREQ: u8 = 0x05;
    /// TALKRESP
    pub const TALKRESP: u8 = 0x06;
}

/// A request id: 0 to 8 bytes chosen by the requester and echoed byte for byte by the answer
/// (never compared as an integer: `00000001` and `01` differ; ChainSafe/discv5#312).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID_SIZE],
}

impl RequestId {
    /// `bytes` as a request id, if it is at most 8 bytes long.
    pub fn new(bytes: &[u8]) -> Result<Self, MessageError> {
        if bytes.len() > MAX_REQUEST_ID_SIZE {
            return Err(MessageError::RequestIdTooLong(bytes.len()));
        }
        let mut id = Self {
            len: bytes.len() as u8,
            bytes: [0; MAX_REQUEST_ID_SIZE],
        };
        id.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(id)
    }

    /// The 8-byte id of a 64-bit number, big-endian (geth sends 8 random bytes).
    pub fn from_u64(v: u64) -> Self {
        Self {
            len: MAX_REQUEST_ID_SIZE as u8,
            bytes: v.to_be_bytes(),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", hex::encode(self.as_bytes()))
    }
}

/// PING (0x01): `[request-id, enr-seq]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Echoed by the PONG.
    pub request_id: RequestId,
    /// The sender's current record seq.
    pub enr_seq: u64,
}

/// PONG (0x02): `[request-id, enr-seq, recipient-ip, recipient-port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// The PING's id.
    pub request_id: RequestId,
    /// The responder's current record seq.
    pub enr_seq: u64,
    /// The UDP source address of the PING as the responder saw it; `None` when the field is
    /// neither 4 nor 16 bytes long (geth decodes any length and ignores the statement then).
    /// A sender should write IPv4 and IPv4-mapped IPv6 sources as 4 bytes (geth `handlePing`).
    pub recipient_ip: Option<IpAddr>,
    /// The UDP source port of the PING.
    pub recipient_port: u16,
}

impl Pong {
    /// Our address as the responder saw the PING (its source IP and port), if the PONG
    /// named a valid IP.
    pub fn recipient(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.recipient_ip?, self.recipient_port))
    }
}

/// FINDNODE (0x03): `[request-id, [distance, ...]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindNode {
    /// Echoed by every NODES answer.
    pub request_id: RequestId,
    /// Log distances from the responder's id; 0 asks for its own record. Neither checked
    /// against [`MAX_DISTANCE`] nor deduplicated here: a responder skips what it cannot serve
    /// (geth `handleFindnode`).
    pub distances: Vec<u64>,
}

/// NODES (0x04): `[request-id, total, [ENR, ...]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes {
    /// The FINDNODE's id.
    pub request_id: RequestId,
    /// How many NODES messages answer the request (geth reads it as a `uint8`, so a larger
    /// value fails the message; 0 is to be read as 1, [DISCV5.md §3.3](crate::spec::discv5)).
    pub total: u8,
    /// The records whose signatures verified.
    pub records: Vec<Enr>,
    /// How many well-formed records were left out of `records` because their identity scheme,
    /// key or signature did not verify. geth drops such records one by one and keeps the rest
    /// (`verifyResponseNode`); a malformed record fails the whole message, as in geth's RLP
    /// decoder. Always 0 in what we encode.
    pub invalid_records: usize,
}

/// TALKREQ (0x05): `[request-id, protocol, request]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkReq {
    /// Echoed by the TALKRESP.
    pub request_id: RequestId,
    /// The application protocol's name (bytes; geth does not require UTF-8).
    pub protocol: Vec<u8>,
    /// The application's request.
    pub request: Vec<u8>,
}

/// TALKRESP (0x06): `[request-id, response]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkResp {
    /// The TALKREQ's id.
    pub request_id: RequestId,
    /// The application's answer; empty for an unknown protocol.
    pub response: Vec<u8>,
}

/// Any discv5 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 0x01
    Ping(Ping),
    /// 0x02
    Pong(Pong),
    /// 0x03
    FindNode(FindNode),
    /// 0x04
    Nodes(Nodes),
    /// 0x05
    TalkReq(TalkReq),
    /// 0x06
    TalkResp(TalkResp),
}

/// Why a message plaintext does not decode. A session drops such a message without an
/// answer, and without a WHOAREYOU: it did decrypt ([DISCV5.md §2.4](crate::spec::discv5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The plaintext is empty (geth `errMessageTooShort`).
    Empty,
    /// A type byte other than 0x01..=0x06.
    UnknownType(u8),
    /// The body is not well-formed RLP of the message's shape.
    Rlp(DecoderError),
    /// Bytes follow the message's list (geth's `rlp.DecodeBytes` refuses them too).
    TrailingBytes,
    /// The list has the wrong number of elements.
    FieldCount {
        /// Elements the message type has.
        expected: usize,
        /// Elements found.
        got: usize,
    },
    /// A field has the wrong shape or range.
    BadField(&'static str),
    /// The request id is longer than [`MAX_REQUEST_ID_SIZE`].
    RequestIdTooLong(usize),
    /// A record in NODES is malformed (not merely unverifiable; see [`Nodes::invalid_records`]).
    Record(EnrError),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Empty => f.write_str("empty message"),
            MessageError::UnknownType(t) => write!(f, "unknown message type {t}"),
            MessageError::Rlp(e) => write!(f, "malformed message RLP: {e}"),
            MessageError::TrailingBytes => f.write_str("bytes after the message"),
            MessageError::FieldCount { expected, got } => {
                write!(f, "message has {got} fields, expected {expected}")
            }
            MessageError::BadField(n) => write!(f, "invalid field {n}"),
            MessageError::RequestIdTooLong(n) => {
                write!(f, "request id of {n} bytes, over {MAX_REQUEST_ID_SIZE}")
            }
            MessageError::Record(e) => write!(f, "malformed record in NODES: {e}"),
        }
    }
}

impl std::error::Error for MessageError {}

impl From<DecoderError> for MessageError {
    fn from(e: DecoderError) -> Self {
        MessageError::Rlp(e)
    }
}

impl Message {
    /// The message type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::Ping(_) => kind::PING,
            Message::Pong(_) => kind::PONG,
            Message::FindNode(_) => kind::FINDNODE,
            Message::Nodes(_) => kind::NODES,
            Message::TalkReq(_) => kind::TALKREQ,
            Message::TalkResp(_) => kind::TALKRESP,
        }
    }

    /// The request id.
    pub fn request_id(&self) -> &RequestId {
        match self {
            Message::Ping(m) => &m.request_id,
            Message::Pong(m) => &m.request_id,
            Message::FindNode(m) => &m.request_id,
            Message::Nodes(m) => &m.request_id,
            Message::TalkReq(m) => &m.request_id,
            Message::TalkResp(m) => &m.request_id,
        }
    }

    /// Whether this is a request (PING, FINDNODE, TALKREQ), which a node answers; responses
    /// are matched to a call instead.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Message::Ping(_) | Message::FindNode(_) | Message::TalkReq(_)
        )
    }

    /// Appends `type || rlp-list` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.type_byte());
        let list = begin_list(out);
        encode_bytes(self.request_id().as_bytes(), out);
        match self {
            Message::Ping(m) => encode_uint(m.enr_seq, out),
            Message::Pong(m) => {
                encode_uint(m.enr_seq, out);
                match m.recipient_ip {
                    Some(IpAddr::V4(ip)) => encode_bytes(&ip.octets(), out),
                    Some(IpAddr::V6(ip)) => encode_bytes(&ip.octets(), out),
                    None => out.push(0x80),
                }
                encode_uint(m.recipient_port.into(), out);
            }
            Message::FindNode(m) => {
                let d = begin_list(out);
                for &distance in &m.distances {
                    encode_uint(distance, out);
                }
                end_list(out, d);
            }
            Message::Nodes(m) => {
                encode_uint(m.total.into(), out);
                let r = begin_list(out);
                for record in &m.records {
                    out.extend_from_slice(record.as_bytes());
                }
                end_list(out, r);
            }
            Message::TalkReq(m) => {
                encode_bytes(&m.protocol, out);
                encode_bytes(&m.request, out);
            }
            Message::TalkResp(m) => encode_bytes(&m.response, out),
        }
        end_list(out, list);
    }

    /// `type || rlp-list` as a new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode(&mut out);
        out
    }

    /// Decodes a message plaintext. [`MessageRef::decode`] is the same decoder without the
    /// copies: this is it followed by [`MessageRef::to_message`].
    pub fn decode(plaintext: &[u8]) -> Result<Message, MessageError> {
        MessageRef::decode(plaintext).map(MessageRef::into_message)
    }

    /// [`decode`](Self::decode), checking the records of a NODES message under `scheme`
    /// (a simulation's nodes, [`SignatureScheme::InsecureSimulation`], skip their ECDSA check).
    pub fn decode_with(plaintext: &[u8], scheme: SignatureScheme) -> Result<Message, MessageError> {
        MessageRef::decode_with(plaintext, scheme).map(MessageRef::into_message)
    }
}

/// FINDNODE as decoded in place: the distances stay in the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindNodeRef<'a> {
    /// Echoed by every NODES answer.
    pub request_id: RequestId,
    /// The log distances asked for (see [`FindNode::distances`]).
    pub distances: Distances<'a>,
}

/// TALKREQ as decoded in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkReqRef<'a> {
    /// Echoed by the TALKRESP.
    pub request_id: RequestId,
    /// The application protocol's name.
    pub protocol: &'a [u8],
    /// The application's request.
    pub request: &'a [u8],
}

/// TALKRESP as decoded in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkRespRef<'a> {
    /// The TALKREQ's id.
    pub request_id: RequestId,
    /// The application's answer.
    pub response: &'a [u8],
}

/// A FINDNODE's distances, left in the plaintext: an RLP list whose every item was checked to
/// be a canonical integer of at most 64 bits when the message decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Distances<'a> {
    /// The list's payload.
    rlp: &'a [u8],
    len: usize,
}

impl<'a> Distances<'a> {
    /// Checks every item of a list payload and counts them, in one pass. A malformed item
    /// header anywhere in the list is reported before an item of the wrong shape, as a count
    /// of the list followed by reading its integers would report them.
    fn parse(rlp: &'a [u8]) -> Result<Self, DecoderError> {
        let mut items = Items(rlp);
        let mut len = 0;
        let mut not_uint = None;
        while !items.0.is_empty() {
            let (is_list, payload, _) = items.next()?;
            if not_uint.is_none() {
                not_uint = uint_of(is_list, payload).err();
            }
            len += 1;
        }
        match not_uint {
            Some(e) => Err(e),
            None => Ok(Self { rlp, len }),
        }
    }

    /// How many distances there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The distances in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + 'a {
        let mut rest = self.rlp;
        (0..self.len).map(move |_| {
            let (d, after) = quick::uint(rest).expect("checked when the message decoded");
            rest = after;
            d
        })
    }

    /// The distances as a vector.
    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }
}

impl fmt::Debug for Distances<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A message decoded in place: the same checks as [`Message::decode`] (it is the same
/// decoder), but the byte fields and FINDNODE's distances borrow the plaintext instead of
/// being copied out. NODES is held decoded, its records verified, as in [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// 0x01
    Ping(Ping),
    /// 0x02
    Pong(Pong),
    /// 0x03
    FindNode(FindNodeRef<'a>),
    /// 0x04
    Nodes(Nodes),
    /// 0x05
    TalkReq(TalkReqRef<'a>),
    /// 0x06
    TalkResp(TalkRespRef<'a>),
}

impl<'a> MessageRef<'a> {
    /// Decodes a message plaintext, borrowing from it.
    pub fn decode(plaintext: &'a [u8]) -> Result<Self, MessageError> {
        Self::decode_with(plaintext, SignatureScheme::Secp256k1)
    }

    /// [`decode`](Self::decode), checking the records of a NODES message under `scheme`
    /// (a simulation's nodes, [`SignatureScheme::InsecureSimulation`], skip their ECDSA check).
    pub fn decode_with(plaintext: &'a [u8], scheme: SignatureScheme) -> Result<Self, MessageError> {
        match quick::decode(plaintext) {
            Some(m) => Ok(m),
            None => Self::decode_strictly(plaintext, scheme),
        }
    }

    /// The full decoder, which tells what is wrong with a plaintext; [`quick::decode`]
    /// accepts a subset of what it accepts, decoded alike.
    fn decode_strictly(plaintext: &'a [u8], scheme: SignatureScheme) -> Result<Self, MessageError> {
        let (&ty, body) = plaintext.split_first().ok_or(MessageError::Empty)?;
        let expected = match ty {
            kind::PING | kind::FINDNODE | kind::TALKRESP => 2,
            kind::NODES | kind::TALKREQ => 3,
            kind::PONG => 4,
            other => return Err(MessageError::UnknownType(other)),
        };
        if body.is_empty() {
            return Err(MessageError::Rlp(DecoderError::RlpIsTooShort));
        }
        let mut outer = Items(body);
        let list = outer.list()?;
        if !outer.0.is_empty() {
            return Err(MessageError::TrailingBytes);
        }
        let mut f = Items(list);
        match read_fields(ty, &mut f, scheme) {
            Ok(message) if f.0.is_empty() => Ok(message),
            // Fields are read in order; a list that runs out early, or has more, is counted
            // for the error (reading a field of the wrong shape first would report that).
            Ok(_) | Err(MessageError::Rlp(DecoderError::RlpIncorrectListLen)) => {
                Err(match Items(list).count() {
                    Ok(got) => MessageError::FieldCount { expected, got },
                    Err(e) => MessageError::Rlp(e),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The message type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            MessageRef::Ping(_) => kind::PING,
            MessageRef::Pong(_) => kind::PONG,
            MessageRef::FindNode(_) => kind::FINDNODE,
            MessageRef::Nodes(_) => kind::NODES,
            MessageRef::TalkReq(_) => kind::TALKREQ,
            MessageRef::TalkResp(_) => kind::TALKRESP,
        }
    }

    /// The request id.
    pub fn request_id(&self) -> &RequestId {
        match self {
            MessageRef::Ping(m) => &m.request_id,
            MessageRef::Pong(m) => &m.request_id,
            MessageRef::FindNode(m) => &m.request_id,
            MessageRef::Nodes(m) => &m.request_id,
            MessageRef::TalkReq(m) => &m.request_id,
            MessageRef::TalkResp(m) => &m.request_id,
        }
    }

    /// The owned message, the borrowed fields copied.
    pub fn to_message(&self) -> Message {
        self.clone().into_message()
    }

    /// The owned message, the borrowed fields copied (NODES is moved, not copied).
    pub fn into_message(self) -> Message {
        match self {
            MessageRef::Ping(m) => Message::Ping(m),
            MessageRef::Pong(m) => Message::Pong(m),
            MessageRef::FindNode(m) => Message::FindNode(FindNode {
                request_id: m.request_id,
                distances: m.distances.to_vec(),
            }),
            MessageRef::Nodes(m) => Message::Nodes(m),
            MessageRef::TalkReq(m) => Message::TalkReq(TalkReq {
                request_id: m.request_id,
                protocol: m.protocol.to_vec(),
                request: m.request.to_vec(),
            }),
            MessageRef::TalkResp(m) => Message::TalkResp(TalkResp {
                request_id: m.request_id,
                response: m.response.to_vec(),
            }),
        }
    }
}

/// The common case of decoding, a quarter of the time the full decoder takes for a PING: the
/// four small messages in the usual encodings (short RLP forms, long forms of one or two
/// length bytes), each read in one pass with no error to build. Anything else, NODES and
/// every malformed plaintext included, is left to [`MessageRef::decode_strictly`] (`None`);
/// what this accepts, that accepts too and decodes to the same message.
mod quick {
    use super::*;

    /// An item of at most 65535 bytes, canonical: `(is_list, payload, rest)`.
    #[inline(always)]
    fn item(input: &[u8]) -> Option<(bool, &[u8], &[u8])> {
        let (&first, rest) = input.split_first()?;
        let (is_list, len, rest) = match first {
            0x00..=0x7f => return Some((false, &input[..1], rest)),
            0x80..=0xb7 => (false, usize::from(first - 0x80), rest),
            0xb8 | 0xf8 => {
                let (&n, rest) = rest.split_first()?;
                (first == 0xf8, usize::from(n), rest)
            }
            0xb9 | 0xf9 => {
                let (n, rest) = rest.split_first_chunk::<2>()?;
                (first == 0xf9, usize::from(u16::from_be_bytes(*n)), rest)
            }
            0xc0..=0xf7 => (true, usize::from(first - 0xc0), rest),
            _ => return None,
        };
        // Long forms only for 56 bytes and more (which also refuses a zero first length
        // byte), and never a single byte below 0x80 wrapped.
        let canonical = match first {
            0xb8 | 0xf8 => len >= 56,
            0xb9 | 0xf9 => len > 0xff,
            0x81 => rest.first().is_some_and(|&b| b >= 0x80),
            _ => true,
        };
        if !canonical || rest.len() < len {
            return None;
        }
        let (payload, rest) = rest.split_at(len);
        Some((is_list, payload, rest))
    }

    #[inline(always)]
    fn bytes(input: &[u8]) -> Option<(&[u8], &[u8])> {
        match item(input)? {
            (false, payload, rest) => Some((payload, rest)),
            _ => None,
        }
    }

    #[inline(always)]
    pub(super) fn uint(input: &[u8]) -> Option<(u64, &[u8])> {
        let (b, rest) = bytes(input)?;
        if b.len() > 8 || b.first() == Some(&0) {
            return None;
        }
        Some((
            b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
            rest,
        ))
    }

    pub(super) fn decode(plaintext: &[u8]) -> Option<MessageRef<'_>> {
        let (&ty, body) = plaintext.split_first()?;
        let (true, list, []) = item(body)? else {
            return None;
        };
        let (id, f) = bytes(list)?;
        let request_id = RequestId::new(id).ok()?;
        let (message, rest) = match ty {
            kind::PING => {
                let (enr_seq, f) = uint(f)?;
                (
                    MessageRef::Ping(Ping {
                        request_id,
                        enr_seq,
                    }),
                    f,
                )
            }
            kind::PONG => {
                let (enr_seq, f) = uint(f)?;
                let (ip_bytes, f) = bytes(f)?;
                let (port, f) = uint(f)?;
                let pong = Pong {
                    request_id,
                    enr_seq,
                    recipient_ip: ip(ip_bytes),
                    recipient_port: u16::try_from(port).ok()?,
                };
                (MessageRef::Pong(pong), f)
            }
            kind::FINDNODE => {
                let (true, mut list, f) = item(f)? else {
                    return None;
                };
                let rlp = list;
                let mut len = 0;
                while !list.is_empty() {
                    list = uint(list)?.1;
                    len += 1;
                }
                let distances = Distances { rlp, len };
                (
                    MessageRef::FindNode(FindNodeRef {
                        request_id,
                        distances,
                    }),
                    f,
                )
            }
            kind::TALKREQ => {
                let (protocol, f) = bytes(f)?;
                let (request, f) = bytes(f)?;
                let talk = TalkReqRef {
                    request_id,
                    protocol,
                    request,
                };
                (MessageRef::TalkReq(talk), f)
            }
            kind::TALKRESP => {
                let (response, f) = bytes(f)?;
                let talk = TalkRespRef {
                    request_id,
                    response,
                };
                (MessageRef::TalkResp(talk), f)
            }
            _ => return None,
        };
        rest.is_empty().then_some(message)
    }
}

/// The fields of a message of type `ty`, read in order from its list.
fn read_fields<'a>(
    ty: u8,
    f: &mut Items<'a>,
    scheme: SignatureScheme,
) -> Result<MessageRef<'a>, MessageError> {
    let request_id = RequestId::new(f.bytes()?)?;
    Ok(match ty {
        kind::PING => MessageRef::Ping(Ping {
            request_id,
            enr_seq: f.uint()?,
        }),
        kind::PONG => MessageRef::Pong(Pong {
            request_id,
            enr_seq: f.uint()?,
            recipient_ip: ip(f.bytes()?),
            recipient_port: u16::try_from(f.uint()?)
                .map_err(|_| MessageError::BadField("recipient-port"))?,
        }),
        kind::FINDNODE => MessageRef::FindNode(FindNodeRef {
            request_id,
            distances: Distances::parse(f.list()?)?,
        }),
        kind::NODES => {
            let total = u8::try_from(f.uint()?).map_err(|_| MessageError::BadField("total"))?;
            let mut items = Items(f.list()?);
            let mut records = Vec::new();
            let mut invalid_records = 0;
            while !items.0.is_empty() {
                match Enr::decode_exact(items.raw()?, scheme) {
                    Ok(r) => records.push(r),
                    Err(e) if is_unverifiable(&e) => invalid_records += 1,
                    Err(e) => return Err(MessageError::Record(e)),
                }
            }
            MessageRef::Nodes(Nodes {
                request_id,
                total,
                records,
                invalid_records,
            })
        }
        kind::TALKREQ => MessageRef::TalkReq(TalkReqRef {
            request_id,
            protocol: f.bytes()?,
            request: f.bytes()?,
        }),
        _ => MessageRef::TalkResp(TalkRespRef {
            request_id,
            response: f.bytes()?,
        }),
    })
}

/// A strict reader over consecutive RLP items: canonical headers only (a single byte below
/// 0x80 never wrapped, long forms only for 56 bytes and more, no leading zeros in lengths),
/// every length checked against the input. Written for these small messages: it reads a PING
/// in a fraction of what the general `rlp` parser takes, which matters next to the ~0.4 µs
/// that unmasking and opening a packet cost.
struct Items<'a>(&'a [u8]);

impl<'a> Items<'a> {
    /// The next item: whether it is a list, its payload, and its whole encoding.
    fn next(&mut self) -> Result<(bool, &'a [u8], &'a [u8]), DecoderError> {
        let input = self.0;
        // Running out of items is told apart: in a message's list it means too few fields.
        let &first = input.first().ok_or(DecoderError::RlpIncorrectListLen)?;
        let (is_list, header, len) = match first {
            0x00..=0x7f => (false, 0, 1),
            0x80..=0xb7 => (false, 1, usize::from(first - 0x80)),
            0xc0..=0xf7 => (true, 1, usize::from(first - 0xc0)),
            _ => {
                let is_list = first >= 0xf8;
                let n = usize::from(first - if is_list { 0xf7 } else { 0xb7 });
                let be = input.get(1..1 + n).ok_or(DecoderError::RlpIsTooShort)?;
                if be[0] == 0 {
                    return Err(if is_list {
                        DecoderError::RlpListLenWithZeroPrefix
                    } else {
                        DecoderError::RlpDataLenWithZeroPrefix
                    });
                }
                if n > 4 {
                    // Over 4 GiB: nothing a 1280-byte packet can hold.
                    return Err(DecoderError::RlpIsTooShort);
                }
                let len = be
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                if len < 56 {
                    return Err(DecoderError::RlpInvalidIndirection);
                }
                (is_list, 1 + n, len)
            }
        };
        let end = header + len;
        let item = input.get(..end).ok_or(DecoderError::RlpIsTooShort)?;
        let payload = if header == 0 { item } else { &item[header..] };
        if first == 0x81 && payload[0] < 0x80 {
            return Err(DecoderError::RlpInvalidIndirection);
        }
        self.0 = &input[end..];
        Ok((is_list, payload, item))
    }

    fn count(mut self) -> Result<usize, DecoderError> {
        let mut n = 0;
        while !self.0.is_empty() {
            self.next()?;
            n += 1;
        }
        Ok(n)
    }

    fn list(&mut self) -> Result<&'a [u8], DecoderError> {
        match self.next()? {
            (true, payload, _) => Ok(payload),
            _ => Err(DecoderError::RlpExpectedToBeList),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecoderError> {
        match self.next()? {
            (false, payload, _) => Ok(payload),
            _ => Err(DecoderError::RlpExpectedToBeData),
        }
    }

    fn raw(&mut self) -> Result<&'a [u8], DecoderError> {
        Ok(self.next()?.2)
    }

    /// A canonical unsigned integer of at most 64 bits (geth: no leading zero bytes).
    fn uint(&mut self) -> Result<u64, DecoderError> {
        let (is_list, payload, _) = self.next()?;
        uint_of(is_list, payload)
    }
}

/// The value of an item read as a canonical unsigned integer of at most 64 bits.
fn uint_of(is_list: bool, b: &[u8]) -> Result<u64, DecoderError> {
    if is_list {
        return Err(DecoderError::RlpExpectedToBeData);
    }
    if b.len() > 8 {
        return Err(DecoderError::RlpIsTooBig);
    }
    if b.first() == Some(&0) {
        return Err(DecoderError::RlpInvalidIndirection);
    }
    Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Whether a record error is one geth finds only when it verifies a decoded record
/// (`enode.New`: scheme, key, signature) rather than while decoding its RLP (size, shape,
/// key order).
fn is_unverifiable(e: &EnrError) -> bool {
    matches!(
        e,
        EnrError::MissingScheme
            | EnrError::UnknownScheme(_)
            | EnrError::InvalidPublicKey(_)
            | EnrError::InvalidSignature
            | EnrError::BadValue(_)
    )
}

fn ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// Splits a FINDNODE answer into NODES messages as geth's `packNodes` does: records in order,
/// a message closed before its records would pass [`NODES_RECORD_BYTES`], every message's
/// `total` the number of messages, and one empty message (`total` 1) when there are no
/// records. Cap the records at [`FINDNODE_RESULT_LIMIT`] before calling.
pub fn pack_nodes(request_id: RequestId, records: &[Enr]) -> Vec<Nodes> {
    let mut out = Vec::new();
    let mut rest = records;
    loop {
        let mut size = 0;
        let take = rest
            .iter()
            .take_while(|r| {
                size += r.as_bytes().len();
                size <= NODES_RECORD_BYTES
            })
            .count();
        out.push(Nodes {
            request_id,
            total: 0,
            records: rest[..take].to_vec(),
            invalid_records: 0,
        });
        rest = &rest[take..];
        // A record never exceeds 300 bytes, so every message takes at least one.
        if rest.is_empty() || take == 0 {
            break;
        }
    }
    let total = u8::try_from(out.len()).unwrap_or(u8::MAX);
    for m in &mut out {
        m.total = total;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: &[u8]) -> RequestId {
        RequestId::new(b).unwrap()
    }

    fn hex_of(m: &Message) -> String {
        hex::encode(m.to_vec())
    }

    /// The encodings of [DISCV5.md §3.5], checked there with an independent encoder.
    #[test]
    fn messages_encode_to_the_reference_examples_and_back() {
        let cases = [
            (
                Message::Ping(Ping {
                    request_id: id(&[0, 0, 0, 1]),
                    enr_seq: 2,
                }),
                "01c6840000000102",
            ),
            (
                Message::Pong(Pong {
                    request_id: id(&[1]),
                    enr_seq: 1,
                    recipient_ip: Some([127, 0, 0, 1].into()),
                    recipient_port: 5000,
                }),
                "02ca0101847f000001821388",
            ),
            (
                Message::Pong(Pong {
                    request_id: id(&[1]),
                    enr_seq: 1,
                    recipient_ip: Some(Ipv6Addr::LOCALHOST.into()),
                    recipient_port: 30303,
                }),
                "02d60101900000000000000000000000000000000182765f",
            ),
            (
                Message::FindNode(FindNode {
                    request_id: id(&[1]),
                    distances: vec![256],
                }),
                "03c501c3820100",
            ),
            (
                Message::FindNode(FindNode {
                    request_id: id(&[1]),
                    distances: vec![256, 255, 254],
                }),
                "03c901c782010081ff81fe",
            ),
            (
                Message::FindNode(FindNode {
                    request_id: id(&[1]),
                    distances: vec![0],
                }),
                "03c301c180",
            ),
            (
                Message::Nodes(Nodes {
                    request_id: id(&[1]),
                    total: 1,
                    records: vec![],
                    invalid_records: 0,
                }),
                "04c30101c0",
            ),
            (
                Message::TalkReq(TalkReq {
                    request_id: id(&[1]),
                    protocol: b"test-protocol".to_vec(),
                    request: vec![],
                }),
                "05d0018d746573742d70726f746f636f6c80",
            ),
            (
                Message::TalkResp(TalkResp {
                    request_id: id(&[1]),
                    response: vec![],
                }),
                "06c20180",
            ),
            (
                Message::TalkResp(TalkResp {
                    request_id: id(&[]),
                    response: vec![],
                }),
                "06c28080",
            ),
        ];
        for (m, want) in cases {
            assert_eq!(hex_of(&m), want, "{m:?}");
            assert_eq!(Message::decode(&hex::decode(want).unwrap()), Ok(m));
        }
    }

    #[test]
    fn a_request_id_of_nine_bytes_fails_the_message() {
        // PING [id of 9 bytes, 1], as hive's PingLargeRequestID sends it.
        let pt = hex::decode("01cb89010203040506070809 01".replace(' ', "")).unwrap();
        assert_eq!(Message::decode(&pt), Err(MessageError::RequestIdTooLong(9)));
        assert!(RequestId::new(&[0; 9]).is_err());
    }

    #[test]
    fn malformed_plaintexts_fail_with_what_was_wrong() {
        let dec = |h: &str| Message::decode(&hex::decode(h).unwrap());
        assert_eq!(dec(""), Err(MessageError::Empty));
        assert_eq!(dec("07c20101"), Err(MessageError::UnknownType(7)));
        assert_eq!(dec("00c20101"), Err(MessageError::UnknownType(0)));
        // An extra element, a missing one, bytes after the list.
        assert_eq!(
            dec("01c3010203"),
            Err(MessageError::FieldCount {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            dec("01c101"),
            Err(MessageError::FieldCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(dec("01c2010200"), Err(MessageError::TrailingBytes));
        // A non-canonical enr-seq (leading zero), a truncated list, a port over 16 bits.
        assert!(matches!(dec("01c401820001"), Err(MessageError::Rlp(_))));
        assert!(matches!(dec("01c30102"), Err(MessageError::Rlp(_))));
        assert_eq!(
            dec("02cb0101847f00000183010000"),
            Err(MessageError::BadField("recipient-port"))
        );
        // NODES total 256 does not fit geth's uint8.
        assert_eq!(
            dec("04c50182010 0c0".replace(' ', "").as_str()),
            Err(MessageError::BadField("total"))
        );
        // A request id that is a list.
        assert!(matches!(dec("01c2c002"), Err(MessageError::Rlp(_))));
    }

    #[test]
    fn a_pong_ip_of_odd_length_decodes_as_none() {
        let m = Message::decode(&hex::decode("02c9010183010203 8213 88".replace(' ', "")).unwrap())
            .unwrap();
        let Message::Pong(p) = m else { panic!() };
        assert_eq!((p.recipient_ip, p.recipient_port), (None, 5000));
    }

    #[test]
    fn nodes_keep_good_records_and_count_unverifiable_ones() {
        use crate::NodeSecretKey;
        let key = NodeSecretKey::from_bytes(&[7; 32]).unwrap();
        let good = Enr::builder().udp4(30303).sign(&key).unwrap();
        let mut forged = good.as_bytes().to_vec();
        *forged.last_mut().unwrap() ^= 1; // the port: the signature no longer matches
        let mut pt = vec![kind::NODES];
        let list = begin_list(&mut pt);
        encode_bytes(&[1], &mut pt);
        encode_uint(1, &mut pt);
        let recs = begin_list(&mut pt);
        pt.extend_from_slice(good.as_bytes());
        pt.extend_from_slice(&forged);
        end_list(&mut pt, recs);
        end_list(&mut pt, list);
        let Message::Nodes(n) = Message::decode(&pt).unwrap() else {
            panic!()
        };
        assert_eq!((n.records, n.invalid_records), (vec![good], 1));
    }

    #[test]
    fn pack_nodes_splits_at_a_thousand_record_bytes() {
        use crate::NodeSecretKey;
        assert_eq!(pack_nodes(id(&[9]), &[]).len(), 1);
        assert_eq!(pack_nodes(id(&[9]), &[])[0].total, 1);
        let records: Vec<Enr> = (1..=16u8)
            .map(|i| {
                let key = NodeSecretKey::from_bytes(&[i; 32]).unwrap();
                Enr::builder()
                    .ip4([10, 0, 0, i].into())
                    .udp4(30303)
                    .tcp4(30303)
                    .sign(&key)
                    .unwrap()
            })
            .collect();
        let size = records[0].as_bytes().len();
        let per = NODES_RECORD_BYTES / size;
        let packed = pack_nodes(id(&[9]), &records);
        assert_eq!(packed.len(), 16usize.div_ceil(per));
        assert!(packed.iter().all(|m| usize::from(m.total) == packed.len()));
        let flat: Vec<Enr> = packed.iter().flat_map(|m| m.records.clone()).collect();
        assert_eq!(flat, records);
        for m in &packed {
            let bytes: usize = m.records.iter().map(|r| r.as_bytes().len()).sum();
            assert!(bytes <= NODES_RECORD_BYTES);
        }
    }

    /// The plaintexts of the reference examples, and variants around the quick path's limits:
    /// long forms of one and two length bytes, the smallest and largest integers.
    fn sample_plaintexts() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = [
            "01c6840000000102",
            "02ca0101847f000001821388",
            "02d60101900000000000000000000000000000000182765f",
            "03c501c3820100",
            "03c901c782010081ff81fe",
            "03c301c180",
            "04c30101c0",
            "05d0018d746573742d70726f746f636f6c80",
            "06c20180",
            "06c28080",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect();
        let id = RequestId::from_u64(u64::MAX);
        for len in [0, 1, 55, 56, 255, 256, 1100] {
            out.push(
                Message::TalkReq(TalkReq {
                    request_id: id,
                    protocol: vec![0x80; len.min(60)],
                    request: vec![0x7f; len],
                })
                .to_vec(),
            );
            out.push(
                Message::TalkResp(TalkResp {
                    request_id: id,
                    response: vec![0; len],
                })
                .to_vec(),
            );
        }
        for seq in [0, 1, 0x7f, 0x80, u64::MAX] {
            out.push(
                Message::Ping(Ping {
                    request_id: RequestId::new(&[]).unwrap(),
                    enr_seq: seq,
                })
                .to_vec(),
            );
        }
        out.push(
            Message::FindNode(FindNode {
                request_id: id,
                distances: (0..=256).collect(),
            })
            .to_vec(),
        );
        out
    }

    /// Whatever the quick path accepts, the full decoder accepts and decodes alike.
    fn quick_agrees(pt: &[u8]) -> bool {
        match quick::decode(pt) {
            Some(m) => MessageRef::decode_strictly(pt, SignatureScheme::Secp256k1) == Ok(m),
            None => true,
        }
    }

    #[test]
    fn the_quick_path_takes_every_well_formed_message_but_nodes() {
        for pt in sample_plaintexts() {
            let strict = MessageRef::decode_strictly(&pt, SignatureScheme::Secp256k1).unwrap();
            let quick = (pt[0] != kind::NODES).then(|| strict.clone());
            assert_eq!(quick::decode(&pt), quick, "{}", hex::encode(&pt));
            assert_eq!(Message::decode(&pt), Ok(strict.into_message()));
        }
    }

    quickcheck::quickcheck! {
        fn the_quick_path_decodes_as_the_full_decoder_does(
            which: usize, pos: usize, value: u8, cut: usize
        ) -> bool {
            let samples = sample_plaintexts();
            let pt = &samples[which % samples.len()];
            let mut changed = pt.clone();
            let at = pos % changed.len();
            changed[at] = value;
            quick_agrees(&changed) && quick_agrees(&pt[..cut % (pt.len() + 1)])
        }

        fn the_quick_path_agrees_on_arbitrary_bytes(ty: u8, body: Vec<u8>) -> bool {
            let mut pt = vec![ty % 8];
            pt.extend_from_slice(&body);
            quick_agrees(&pt)
        }
    }
}
