//! A decoded, verified node record and its text form.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use secp256k1::Message;

use super::rlp_items::{bytes, list_items, split_item, uint};
use super::{EnrBuilder, EnrError, MAX_RECORD_SIZE, TEXT_PREFIX, V4_SIGNATURE_LEN};
use crate::identity::{NodeId, NodePublicKey, SignatureScheme};
use crate::keccak::keccak256;
use crate::rlp_ext::encode_list_header;

/// Longest `enr:` text that can hold a [`MAX_RECORD_SIZE`] record (4 characters per 3 bytes).
const MAX_TEXT_LEN: usize = TEXT_PREFIX.len() + MAX_RECORD_SIZE.div_ceil(3) * 4;

/// A node record whose "v4" signature has been verified.
///
/// Two records are equal when their encodings are equal. A record is immutable and shared:
/// cloning one (a table entry, the node database and an event may all hold it) copies a
/// pointer. Every way in ([`decode`](Self::decode), [`str::parse`], [`EnrBuilder::sign`])
/// checks the signature, so holding an `Enr` means holding what its key signed.
///
/// ```
/// use devp2p_core::{Enr, EnrError, NodeSecretKey};
/// use rand_core::SeedableRng;
///
/// let key = NodeSecretKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
/// let record = Enr::builder()
///     .seq(7)
///     .ip4([127, 0, 0, 1].into())
///     .tcp4(30303)
///     .udp4(30301)
///     .sign(&key)?;
///
/// // Two encodings: RLP (what an ENRResponse carries) and the `enr:` text.
/// let text = record.to_string();
/// assert!(text.starts_with("enr:"));
/// let decoded = Enr::decode(record.as_bytes())?;
/// assert_eq!(decoded, text.parse::<Enr>()?);
/// assert_eq!((decoded.node_id(), decoded.seq()), (key.id(), 7));
/// assert_eq!(decoded.udp_endpoint(), Some("127.0.0.1:30301".parse()?));
///
/// // A changed record needs a higher seq (peers keep the one they have otherwise) and a new
/// // signature: `to_builder` starts from the next seq.
/// let moved = decoded.to_builder().udp4(30302).sign(&key)?;
/// assert_eq!((moved.seq(), moved.udp4()), (8, Some(30302)));
///
/// // A byte changed after signing: refused.
/// let mut forged = record.as_bytes().to_vec();
/// *forged.last_mut().unwrap() ^= 1; // the low byte of the UDP port
/// assert_eq!(Enr::decode(&forged), Err(EnrError::InvalidSignature));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Enr(Arc<EnrInner>);

impl PartialEq for Enr {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.raw == other.0.raw
    }
}

impl Eq for Enr {}

struct EnrInner {
    raw: Vec<u8>,
    seq: u64,
    /// Where the signature lies in `raw`.
    signature: Span,
    /// Sorted, unique keys with their values as raw RLP items, as spans of `raw` (one
    /// allocation per record instead of two per entry).
    pairs: Vec<(Span, Span)>,
    public_key: NodePublicKey,
}

/// A byte range of a record's encoding (records are at most 300 bytes).
#[derive(Clone, Copy)]
struct Span(u16, u16);

impl Span {
    /// The span of `part`, a subslice of `whole`.
    fn of(whole: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - whole.as_ptr() as usize;
        Span(start as u16, (start + part.len()) as u16)
    }

    fn get(self, raw: &[u8]) -> &[u8] {
        &raw[usize::from(self.0)..usize::from(self.1)]
    }
}

impl Enr {
    /// Starts building a record (see [`EnrBuilder`]).
    pub fn builder() -> EnrBuilder {
        EnrBuilder::new()
    }

    /// Decodes and verifies the RLP encoding of a record; nothing may follow it.
    pub fn decode(input: &[u8]) -> Result<Enr, EnrError> {
        Self::decode_exact(input, SignatureScheme::Secp256k1)
    }

    /// [`decode`](Self::decode) under `scheme`: the whole of `input` is one record, checked
    /// as [`decode_prefix`](Self::decode_prefix) checks it.
    pub(crate) fn decode_exact(input: &[u8], scheme: SignatureScheme) -> Result<Enr, EnrError> {
        let (enr, rest) = Self::decode_prefix(input, scheme, None)?;
        if !rest.is_empty() {
            return Err(EnrError::TrailingBytes);
        }
        Ok(enr)
    }

    /// Decodes and verifies the record at the start of `input`, returning what follows it.
    /// Under [`SignatureScheme::InsecureSimulation`] everything is checked except the ECDSA
    /// signature itself (a simulation's records are real, but checking them is its largest
    /// cost and proves nothing among honest simulated nodes).
    ///
    /// `signer`, when given, is the key the record is expected to carry (an ENRResponse's
    /// sender): if its `secp256k1` entry is that key, the key is taken as is rather than
    /// decompressed and hashed again. Any other key is parsed as usual.
    pub(crate) fn decode_prefix<'a>(
        input: &'a [u8],
        scheme: SignatureScheme,
        signer: Option<&NodePublicKey>,
    ) -> Result<(Enr, &'a [u8]), EnrError> {
        Self::decode_item(input, scheme == SignatureScheme::Secp256k1, signer)
    }

    /// A record the builder has just signed: decoded without checking our own signature.
    pub(crate) fn from_signed(raw: &[u8], signer: &NodePublicKey) -> Result<Enr, EnrError> {
        Ok(Self::decode_item(raw, false, Some(signer))?.0)
    }

    fn decode_item<'a>(
        input: &'a [u8],
        verify: bool,
        signer: Option<&NodePublicKey>,
    ) -> Result<(Enr, &'a [u8]), EnrError> {
        let (item, rest) = split_item(input)?;
        if item.len() > MAX_RECORD_SIZE {
            return Err(EnrError::TooLarge { size: item.len() });
        }
        let elems = list_items(item)?;
        if elems.len() < 2 {
            return Err(EnrError::TooFewElements);
        }
        let signature = bytes(elems[0])?;
        let seq = uint(elems[1])?;
        let kv = &elems[2..];
        if kv.len() % 2 != 0 {
            return Err(EnrError::DanglingKey);
        }
        let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(kv.len() / 2);
        for chunk in kv.chunks_exact(2) {
            let key = bytes(chunk[0])?;
            if let Some((prev, _)) = pairs.last() {
                match (*prev).cmp(key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => return Err(EnrError::DuplicateKey(key.to_vec())),
                    std::cmp::Ordering::Greater => {
                        return Err(EnrError::UnsortedKeys(key.to_vec()))
                    }
                }
            }
            pairs.push((key, chunk[1]));
        }
        let public_key = verify_v4(&pairs, signature, &elems[1..], verify, signer)?;
        let enr = Enr(Arc::new(EnrInner {
            raw: item.to_vec(),
            seq,
            signature: Span::of(item, signature),
            pairs: pairs
                .iter()
                .map(|(k, v)| (Span::of(item, k), Span::of(item, v)))
                .collect(),
            public_key,
        }));
        Ok((enr, rest))
    }

    /// The RLP encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.raw
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    /// The 64-byte `r || s` signature.
    pub fn signature(&self) -> &[u8] {
        self.0.signature.get(&self.0.raw)
    }

    /// The signer's public key (the `secp256k1` entry).
    pub fn public_key(&self) -> &NodePublicKey {
        &self.0.public_key
    }

    /// The node id: Keccak-256 of the raw64 public key.
    pub fn node_id(&self) -> NodeId {
        self.0.public_key.id()
    }

    /// The raw RLP value stored under `key`, if any.
    pub fn get_raw(&self, key: &[u8]) -> Option<&[u8]> {
        let raw = &self.0.raw;
        self.0
            .pairs
            .binary_search_by(|(k, _)| k.get(raw).cmp(key))
            .ok()
            .map(|i| self.0.pairs[i].1.get(raw))
    }

    /// All keys with their raw RLP values, in ascending key order.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let raw = &self.0.raw;
        self.0
            .pairs
            .iter()
            .map(move |(k, v)| (k.get(raw), v.get(raw)))
    }

    /// The `ip` entry, if present and 4 bytes.
    pub fn ip4(&self) -> Option<Ipv4Addr> {
        let b: [u8; 4] = bytes(self.get_raw(b"ip")?).ok()?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    }

    /// The `ip6` entry, if present and 16 bytes.
    pub fn ip6(&self) -> Option<Ipv6Addr> {
        let b: [u8; 16] = bytes(self.get_raw(b"ip6")?).ok()?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    }

    fn port(&self, key: &[u8]) -> Option<u16> {
        u16::try_from(uint(self.get_raw(key)?).ok()?).ok()
    }

    /// The `tcp` entry.
    pub fn tcp4(&self) -> Option<u16> {
        self.port(b"tcp")
    }

    /// The `udp` entry.
    pub fn udp4(&self) -> Option<u16> {
        self.port(b"udp")
    }

    /// The `tcp6` entry, or `tcp` when absent (EIP-778: the IPv4 ports apply to IPv6 too).
    pub fn tcp6(&self) -> Option<u16> {
        self.port(b"tcp6").or_else(|| self.tcp4())
    }

    /// The `udp6` entry, or `udp` when absent.
    pub fn udp6(&self) -> Option<u16> {
        self.port(b"udp6").or_else(|| self.udp4())
    }

    /// The IP to reach the node at: of `ip` and `ip6`, the "more global" one, IPv4 on a tie (geth's
    /// `enode.Node` endpoint choice, [PROTOCOL.md §10.3](crate::spec::protocol)). Multicast is
    /// ignored.
    pub fn ip(&self) -> Option<IpAddr> {
        let v4 = self.ip4().map(IpAddr::V4).filter(|ip| !ip.is_multicast());
        let v6 = self.ip6().map(IpAddr::V6).filter(|ip| !ip.is_multicast());
        match (v4, v6) {
            (Some(a), Some(b)) => Some(if ip_rank(&b) > ip_rank(&a) { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The discovery endpoint: [`Enr::ip`] with the matching UDP port.
    pub fn udp_endpoint(&self) -> Option<SocketAddr> {
        let ip = self.ip()?;
        let port = if ip.is_ipv4() {
            self.udp4()
        } else {
            self.udp6()
        }?;
        Some(SocketAddr::new(ip, port))
    }

    /// The RLPx endpoint: [`Enr::ip`] with the matching TCP port.
    pub fn tcp_endpoint(&self) -> Option<SocketAddr> {
        let ip = self.ip()?;
        let port = if ip.is_ipv4() {
            self.tcp4()
        } else {
            self.tcp6()
        }?;
        Some(SocketAddr::new(ip, port))
    }

    /// A builder holding this record's entries with the sequence number one higher, for
    /// re-signing after a change (EIP-778: every change needs a higher seq).
    pub fn to_builder(&self) -> EnrBuilder {
        let mut b = EnrBuilder::new().seq(self.0.seq.saturating_add(1));
        for (k, v) in self.pairs() {
            b = b.raw_unchecked(k.to_vec(), v.to_vec());
        }
        b
    }
}

/// How "global" an address is: unspecified < loopback < link-local < private < public.
fn ip_rank(ip: &IpAddr) -> u8 {
    if ip.is_unspecified() {
        0
    } else if ip.is_loopback() {
        1
    } else {
        match ip {
            IpAddr::V4(v4) if v4.is_link_local() => 2,
            IpAddr::V6(v6) if v6.is_unicast_link_local() => 2,
            IpAddr::V4(v4) if v4.is_private() => 3,
            IpAddr::V6(v6) if v6.is_unique_local() => 3,
            _ => 4,
        }
    }
}

/// Checks the "v4" identity scheme and returns the signer's key.
fn verify_v4(
    pairs: &[(&[u8], &[u8])],
    signature: &[u8],
    content_items: &[&[u8]],
    verify: bool,
    signer: Option<&NodePublicKey>,
) -> Result<NodePublicKey, EnrError> {
    let find = |key: &[u8]| {
        pairs
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| pairs[i].1)
    };
    let scheme = bytes(find(b"id").ok_or(EnrError::MissingScheme)?)?;
    if scheme != b"v4" {
        return Err(EnrError::UnknownScheme(scheme.to_vec()));
    }
    let key_item = find(b"secp256k1").ok_or(EnrError::InvalidPublicKey(
        crate::identity::KeyError::WrongLength {
            expected: 33,
            got: 0,
        },
    ))?;
    let compressed = bytes(key_item)?;
    let public_key = match signer {
        Some(k) if compressed == k.compressed() => *k,
        _ => NodePublicKey::from_compressed(compressed).map_err(EnrError::InvalidPublicKey)?,
    };
    if signature.len() != V4_SIGNATURE_LEN {
        return Err(EnrError::InvalidSignature);
    }
    if !verify {
        return Ok(public_key);
    }
    // The signed content is the record list without its first element.
    let content_payload: usize = content_items.iter().map(|e| e.len()).sum();
    let mut content = Vec::with_capacity(content_payload + 3);
    encode_list_header(content_payload, &mut content);
    for e in content_items {
        content.extend_from_slice(e);
    }
    let sig = secp256k1::ecdsa::Signature::from_compact(signature)
        .map_err(|_| EnrError::InvalidSignature)?;
    // libsecp256k1 verification rejects high-s signatures, as geth's ENR verifier does.
    secp256k1::ecdsa::verify(
        &sig,
        Message::from_digest(keccak256(&content)),
        &public_key.secp(),
    )
    .map_err(|_| EnrError::InvalidSignature)?;
    Ok(public_key)
}

impl fmt::Display for Enr {
    /// The text form: `enr:` and the unpadded base64url encoding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TEXT_PREFIX)?;
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0.raw))
    }
}

impl fmt::Debug for Enr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Enr({:?}, seq {}, {})", self.node_id(), self.0.seq, self)
    }
}

impl FromStr for Enr {
    type Err = EnrError;

    /// Parses and verifies the `enr:` text form.
    fn from_str(s: &str) -> Result<Enr, EnrError> {
        let b64 = s.strip_prefix(TEXT_PREFIX).ok_or(EnrError::MissingPrefix)?;
        if s.len() > MAX_TEXT_LEN {
            return Err(EnrError::TooLarge {
                size: b64.len() / 4 * 3,
            });
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| EnrError::InvalidBase64)?;
        Enr::decode(&raw)
    }
}
