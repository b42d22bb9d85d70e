//! The discv4 packet codec ([PROTOCOL.md §7.1–§7.3, §7.10](crate::spec::protocol)): six packet
//! types, signed with the node key, decoded forward-compatibly.
//!
//! ```text
//! packet = hash(32) || signature(65) || type(1) || rlp-list [|| ignored bytes]
//! hash   = keccak256(signature || type || list...)
//! signature over keccak256(type || list...)
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rlp::DecoderError;

use crate::enr::rlp_items::{bytes, is_data, list_items, split_item, uint};
use crate::enr::{Enr, EnrError};
use crate::fastmix::Mix128;
use crate::identity::{KeyError, NodePublicKey, NodeSecretKey, SignatureScheme, PUBLIC_KEY_LEN};
use crate::keccak::keccak256;
use crate::rlp_ext::{begin_list, encode_bytes, encode_uint, end_list};

/// Largest datagram (discv4 spec "Maximum packet size"; geth `maxPacketSize`).
pub const MAX_PACKET_SIZE: usize = 1280;
/// Hash plus signature in front of the type byte (discv4 spec "Wire Encoding").
pub const HEAD_SIZE: usize = 32 + 65;
/// Smallest datagram worth looking at: the head plus a type byte (geth `headSize + 1`).
pub const MIN_PACKET_SIZE: usize = HEAD_SIZE + 1;
/// Most nodes in one Neighbors packet: 12 IPv6 entries with maximal fields take 1205 bytes,
/// 13 would take 1296 ([PROTOCOL.md §7.6](crate::spec::protocol); geth `v4wire.MaxNeighbors`).
pub const MAX_NEIGHBORS: usize = 12;
/// The protocol version we put in Ping (discv4 spec "Ping Packet").
pub const PING_VERSION: u64 = 4;

/// Packet type bytes (discv4 spec).
mod ptype {
    pub const PING: u8 = 0x01;
    pub const PONG: u8 = 0x02;
    pub const FIND_NODE: u8 = 0x03;
    pub const NEIGHBORS: u8 = 0x04;
    pub const ENR_REQUEST: u8 = 0x05;
    pub const ENR_RESPONSE: u8 = 0x06;
}

/// An address triple as carried in Ping, Pong and Neighbors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The IP, or `None` when the sender left it empty or sent a length that is neither 4 nor
    /// 16 bytes (geth accepts both on decode and validates where the IP is used).
    pub ip: Option<IpAddr>,
    /// UDP (discovery) port.
    pub udp: u16,
    /// TCP (RLPx) port.
    pub tcp: u16,
}

/// One entry of a Neighbors packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// Where the node is.
    pub endpoint: Endpoint,
    /// Its raw64 public key, not yet checked to be on the curve (that is
    /// [PROTOCOL.md §7.8](crate::spec::protocol) validation).
    pub key: [u8; PUBLIC_KEY_LEN],
}

/// Ping (0x01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Protocol version; receivers ignore it.
    pub version: u64,
    /// The sender's endpoint as it believes it to be (only `tcp` is used).
    pub from: Endpoint,
    /// The recipient's endpoint as the sender sees it.
    pub to: Endpoint,
    /// Unix seconds after which the packet is void.
    pub expiration: u64,
    /// The sender's ENR sequence number (EIP-868), if present.
    pub enr_seq: Option<u64>,
}

/// Pong (0x02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// The Ping's source address as the Pong's sender saw it.
    pub to: Endpoint,
    /// The hash of the Ping being answered.
    pub ping_hash: [u8; 32],
    /// Unix seconds after which the packet is void.
    pub expiration: u64,
    /// The sender's ENR sequence number (EIP-868), if present.
    pub enr_seq: Option<u64>,
}

/// FindNode (0x03).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindNode {
    /// The 64-byte lookup target; distances use its Keccak-256 hash.
    pub target: [u8; PUBLIC_KEY_LEN],
    /// Unix seconds after which the packet is void.
    pub expiration: u64,
}

/// Neighbors (0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbors {
    /// Nodes close to the requested target.
    pub nodes: Vec<Neighbor>,
    /// Unix seconds after which the packet is void.
    pub expiration: u64,
}

/// ENRRequest (0x05, EIP-868).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrRequest {
    /// Unix seconds after which the packet is void.
    pub expiration: u64,
}

/// ENRResponse (0x06, EIP-868). It carries no expiration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrResponse {
    /// The hash of the ENRRequest being answered.
    pub request_hash: [u8; 32],
    /// The sender's record, verified during decoding.
    pub record: Enr,
}

/// Any discv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// 0x01
    Ping(Ping),
    /// 0x02
    Pong(Pong),
    /// 0x03
    FindNode(FindNode),
    /// 0x04
    Neighbors(Neighbors),
    /// 0x05
    EnrRequest(EnrRequest),
    /// 0x06
    EnrResponse(EnrResponse),
}

impl Packet {
    /// The packet type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Packet::Ping(_) => ptype::PING,
            Packet::Pong(_) => ptype::PONG,
            Packet::FindNode(_) => ptype::FIND_NODE,
            Packet::Neighbors(_) => ptype::NEIGHBORS,
            Packet::EnrRequest(_) => ptype::ENR_REQUEST,
            Packet::EnrResponse(_) => ptype::ENR_RESPONSE,
        }
    }

    /// The expiration, for the packets that have one.
    pub fn expiration(&self) -> Option<u64> {
        match self {
            Packet::Ping(p) => Some(p.expiration),
            Packet::Pong(p) => Some(p.expiration),
            Packet::FindNode(p) => Some(p.expiration),
            Packet::Neighbors(p) => Some(p.expiration),
            Packet::EnrRequest(p) => Some(p.expiration),
            Packet::EnrResponse(_) => None,
        }
    }
}

/// A packet that decoded and whose signature recovered a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The packet.
    pub packet: Packet,
    /// Its hash (the first 32 bytes), echoed by Pong and ENRResponse.
    pub hash: [u8; 32],
    /// The signer.
    pub sender: NodePublicKey,
}

/// Why a datagram is not a valid discv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than [`MIN_PACKET_SIZE`].
    TooSmall,
    /// Longer than [`MAX_PACKET_SIZE`].
    TooLarge,
    /// The leading hash does not match the rest of the datagram.
    BadHash,
    /// No public key can be recovered from the signature.
    BadSignature(KeyError),
    /// A type byte outside 0x01..=0x06.
    UnknownType(u8),
    /// The packet data is not well-formed RLP of the type's shape.
    Rlp(DecoderError),
    /// A required field is missing.
    MissingField(&'static str),
    /// A field has the wrong length or range.
    BadField(&'static str),
    /// The element in the EIP-868 `enr-seq` position is not an integer. geth rejects such
    /// packets ([PROTOCOL.md §7.10](crate::spec::protocol)) and so do we.
    BadEnrSeq,
    /// The record in an ENRResponse does not decode or verify.
    Enr(EnrError),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooSmall => f.write_str("packet too small"),
            WireError::TooLarge => f.write_str("packet too large"),
            WireError::BadHash => f.write_str("bad packet hash"),
            WireError::BadSignature(e) => write!(f, "bad packet signature: {e}"),
            WireError::UnknownType(t) => write!(f, "unknown packet type {t}"),
            WireError::Rlp(e) => write!(f, "malformed packet RLP: {e}"),
            WireError::MissingField(n) => write!(f, "missing field {n}"),
            WireError::BadField(n) => write!(f, "invalid field {n}"),
            WireError::BadEnrSeq => f.write_str("enr-seq is not an integer"),
            WireError::Enr(e) => write!(f, "bad record in ENRResponse: {e}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<DecoderError> for WireError {
    fn from(e: DecoderError) -> Self {
        WireError::Rlp(e)
    }
}

/// Whether a packet with `expiration` is void at `unix_secs`. As geth does, the expiration is read
/// as a signed 64-bit number, so values of 2^63 and above count as long past
/// ([PROTOCOL.md §7.3](crate::spec::protocol); the conformance suite sends such packets and expects
/// silence).
pub fn is_expired(expiration: u64, unix_secs: u64) -> bool {
    (expiration as i64) < (unix_secs as i64)
}

/// Encodes and signs `packet` with `key`; returns the datagram and its hash.
pub fn encode(packet: &Packet, key: &NodeSecretKey) -> (Vec<u8>, [u8; 32]) {
    // Written in place: header space, type byte, then the RLP list; the signature and hash
    // are filled in last. One allocation per packet (this runs for every datagram sent).
    let capacity = match packet {
        Packet::Neighbors(_) | Packet::EnrResponse(_) => MAX_PACKET_SIZE,
        _ => 192,
    };
    let mut out = Vec::with_capacity(capacity);
    out.resize(HEAD_SIZE, 0);
    out.push(packet.type_byte());
    let list = begin_list(&mut out);
    match packet {
        Packet::Ping(p) => {
            encode_uint(p.version, &mut out);
            append_endpoint(&mut out, &p.from);
            append_endpoint(&mut out, &p.to);
            encode_uint(p.expiration, &mut out);
            if let Some(seq) = p.enr_seq {
                encode_uint(seq, &mut out);
            }
        }
        Packet::Pong(p) => {
            append_endpoint(&mut out, &p.to);
            encode_bytes(&p.ping_hash, &mut out);
            encode_uint(p.expiration, &mut out);
            if let Some(seq) = p.enr_seq {
                encode_uint(seq, &mut out);
            }
        }
        Packet::FindNode(p) => {
            encode_bytes(&p.target, &mut out);
            encode_uint(p.expiration, &mut out);
        }
        Packet::Neighbors(p) => {
            let nodes = begin_list(&mut out);
            for n in &p.nodes {
                let node = begin_list(&mut out);
                append_ip(&mut out, n.endpoint.ip);
                encode_uint(n.endpoint.udp.into(), &mut out);
                encode_uint(n.endpoint.tcp.into(), &mut out);
                encode_bytes(&n.key, &mut out);
                end_list(&mut out, node);
            }
            end_list(&mut out, nodes);
            encode_uint(p.expiration, &mut out);
        }
        Packet::EnrRequest(p) => encode_uint(p.expiration, &mut out),
        Packet::EnrResponse(p) => {
            encode_bytes(&p.request_hash, &mut out);
            out.extend_from_slice(p.record.as_bytes());
        }
    }
    end_list(&mut out, list);
    let sig = match key.signature_scheme() {
        SignatureScheme::Secp256k1 => key.sign_recoverable(&keccak256(&out[HEAD_SIZE..])),
        // The simulated scheme signs nothing: skip hashing what it would have signed.
        SignatureScheme::InsecureSimulation => key.sign_recoverable(&[0; 32]),
    };
    out[32..HEAD_SIZE].copy_from_slice(&sig);
    let hash = packet_hash(key.signature_scheme(), &out[32..]);
    out[..32].copy_from_slice(&hash);
    (out, hash)
}

/// The hash at the head of a datagram, over everything after it: Keccak-256, or under the
/// simulated scheme a fast checksum (its nodes are honest by construction, and two Keccak
/// runs per datagram would be a large share of a simulation's time).
pub fn packet_hash(scheme: SignatureScheme, rest: &[u8]) -> [u8; 32] {
    match scheme {
        SignatureScheme::Secp256k1 => keccak256(rest),
        SignatureScheme::InsecureSimulation => simulated_checksum(rest),
    }
}

/// A 256-bit checksum from a [`Mix128`]: detects accidental change, resists nobody.
fn simulated_checksum(data: &[u8]) -> [u8; 32] {
    let mut m = Mix128::new(0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        m.mix(u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    m.mix(u64::from_le_bytes(last) ^ data.len() as u64);
    // Spread the 128-bit state over 32 bytes (splitmix64 finaliser).
    let mut out = [0u8; 32];
    let mut s = m.a;
    for chunk in out.chunks_exact_mut(8) {
        s = s.wrapping_add(m.b | 1).wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

fn append_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        Some(IpAddr::V4(v4)) => encode_bytes(&v4.octets(), out),
        Some(IpAddr::V6(v6)) => encode_bytes(&v6.octets(), out),
        None => out.push(0x80),
    }
}

fn append_endpoint(out: &mut Vec<u8>, e: &Endpoint) {
    let list = begin_list(out);
    append_ip(out, e.ip);
    encode_uint(e.udp.into(), out);
    encode_uint(e.tcp.into(), out);
    end_list(out, list);
}

/// Whether `datagram` is a discv4 packet as far as its framing tells: a size within
/// [`MIN_PACKET_SIZE`]..=[`MAX_PACKET_SIZE`] and a head that hashes the rest (under
/// `scheme`). A socket shared with discv5 sends what fails this there, as geth does with
/// what its v4 decoder cannot read (`UDPConn` `Unhandled`); a discv5 packet passes it only
/// by a 2^-256 chance. Cheap: one hash, no signature recovery.
pub fn is_packet(datagram: &[u8], scheme: SignatureScheme) -> bool {
    (MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&datagram.len())
        && packet_hash(scheme, &datagram[32..]) == datagram[..32]
}

/// Checks the hash and signature of a datagram and decodes its packet. Expiration is *not*
/// checked here (see [`is_expired`]); the caller knows the time.
pub fn decode(datagram: &[u8]) -> Result<Decoded, WireError> {
    decode_with(datagram, SignatureScheme::Secp256k1)
}

/// [`decode`], recovering the signer under `scheme` (a simulation's nodes use
/// [`SignatureScheme::InsecureSimulation`]).
pub fn decode_with(datagram: &[u8], scheme: SignatureScheme) -> Result<Decoded, WireError> {
    if datagram.len() < MIN_PACKET_SIZE {
        return Err(WireError::TooSmall);
    }
    if datagram.len() > MAX_PACKET_SIZE {
        return Err(WireError::TooLarge);
    }
    let (hash, rest) = datagram.split_at(32);
    if packet_hash(scheme, rest) != hash {
        return Err(WireError::BadHash);
    }
    let (sig, sigdata) = rest.split_at(65);
    let digest = match scheme {
        SignatureScheme::Secp256k1 => keccak256(sigdata),
        SignatureScheme::InsecureSimulation => [0; 32],
    };
    let sender =
        NodePublicKey::recover_with(scheme, sig, &digest).map_err(WireError::BadSignature)?;
    let ty = sigdata[0];
    let body = &sigdata[1..];
    // Bytes after the packet's list are ignored (EIP-8).
    let (list, _) = split_item(body)?;
    let el = list_items(list)?;
    let packet = match ty {
        ptype::PING => Packet::Ping(Ping {
            version: uint(field(&el, 0, "version")?)?,
            from: endpoint(field(&el, 1, "from")?)?,
            to: endpoint(field(&el, 2, "to")?)?,
            expiration: uint(field(&el, 3, "expiration")?)?,
            enr_seq: enr_seq(el.get(4).copied())?,
        }),
        ptype::PONG => Packet::Pong(Pong {
            to: endpoint(field(&el, 0, "to")?)?,
            ping_hash: fixed(field(&el, 1, "ping-hash")?, "ping-hash")?,
            expiration: uint(field(&el, 2, "expiration")?)?,
            enr_seq: enr_seq(el.get(3).copied())?,
        }),
        ptype::FIND_NODE => Packet::FindNode(FindNode {
            target: fixed(field(&el, 0, "target")?, "target")?,
            expiration: uint(field(&el, 1, "expiration")?)?,
        }),
        ptype::NEIGHBORS => {
            let nodes = list_items(field(&el, 0, "nodes")?)?
                .into_iter()
                .map(neighbor)
                .collect::<Result<Vec<_>, _>>()?;
            Packet::Neighbors(Neighbors {
                nodes,
                expiration: uint(field(&el, 1, "expiration")?)?,
            })
        }
        ptype::ENR_REQUEST => Packet::EnrRequest(EnrRequest {
            expiration: uint(field(&el, 0, "expiration")?)?,
        }),
        ptype::ENR_RESPONSE => {
            let request_hash = fixed(field(&el, 0, "request-hash")?, "request-hash")?;
            let (record, rest) =
                Enr::decode_prefix(field(&el, 1, "record")?, scheme, Some(&sender))
                    .map_err(WireError::Enr)?;
            debug_assert!(rest.is_empty(), "list_items yields whole items");
            Packet::EnrResponse(EnrResponse {
                request_hash,
                record,
            })
        }
        other => return Err(WireError::UnknownType(other)),
    };
    let mut h = [0u8; 32];
    h.copy_from_slice(hash);
    Ok(Decoded {
        packet,
        hash: h,
        sender,
    })
}

fn field<'a>(el: &[&'a [u8]], i: usize, name: &'static str) -> Result<&'a [u8], WireError> {
    el.get(i).copied().ok_or(WireError::MissingField(name))
}

fn fixed<const N: usize>(item: &[u8], name: &'static str) -> Result<[u8; N], WireError> {
    bytes(item)?
        .try_into()
        .map_err(|_| WireError::BadField(name))
}

/// EIP-868's optional `enr-seq`: absent is fine, an integer is the value, anything else
/// (the list that the old EIP-8 vectors put there) fails the packet, as in geth.
fn enr_seq(item: Option<&[u8]>) -> Result<Option<u64>, WireError> {
    match item {
        None => Ok(None),
        Some(i) if is_data(i) => uint(i).map(Some).map_err(|_| WireError::BadEnrSeq),
        Some(_) => Err(WireError::BadEnrSeq),
    }
}

fn ip(item: &[u8]) -> Result<Option<IpAddr>, WireError> {
    let b = bytes(item)?;
    Ok(match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    })
}

fn port(item: &[u8], name: &'static str) -> Result<u16, WireError> {
    u16::try_from(uint(item)?).map_err(|_| WireError::BadField(name))
}

fn endpoint(item: &[u8]) -> Result<Endpoint, WireError> {
    let el = list_items(item)?;
    Ok(Endpoint {
        ip: ip(field(&el, 0, "endpoint ip")?)?,
        udp: port(field(&el, 1, "endpoint udp")?, "udp port")?,
        tcp: port(field(&el, 2, "endpoint tcp")?, "tcp port")?,
    })
}

fn neighbor(item: &[u8]) -> Result<Neighbor, WireError> {
    let el = list_items(item)?;
    Ok(Neighbor {
        endpoint: Endpoint {
            ip: ip(field(&el, 0, "node ip")?)?,
            udp: port(field(&el, 1, "node udp")?, "udp port")?,
            tcp: port(field(&el, 2, "node tcp")?, "tcp port")?,
        },
        key: fixed(field(&el, 3, "node id")?, "node id")?,
    })
}
