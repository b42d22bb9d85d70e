//! Node identity: secp256k1 keys, the 64-byte public key form the wire uses, the 32-byte node id
//! (its Keccak-256 hash) and the XOR metric over node ids
//! ([PROTOCOL.md §1](crate::spec::protocol)).

use std::cmp::Ordering;
use std::fmt;

use rand_core::CryptoRng;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::Message;

use crate::keccak::keccak256;

/// Length of a public key in the `raw64` form: X || Y, 32 bytes each, big-endian.
pub const PUBLIC_KEY_LEN: usize = 64;
/// Length of a node id, the Keccak-256 hash of the raw64 public key.
pub const NODE_ID_LEN: usize = 32;
/// Length of a recoverable signature: r || s || v with v in {0, 1}.
pub const RECOVERABLE_SIGNATURE_LEN: usize = 65;

/// Why bytes could not be used as a key or signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The input had the wrong number of bytes.
    WrongLength {
        /// How many bytes the form needs.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// A secret key outside `1..n` (zero or not below the curve order).
    InvalidSecretKey,
    /// The bytes do not describe a point on secp256k1.
    NotOnCurve,
    /// The text was not valid hexadecimal.
    BadHex,
    /// A signature from which no public key can be recovered.
    InvalidSignature,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::WrongLength { expected, got } => {
                write!(f, "wrong length: expected {expected} bytes, got {got}")
            }
            KeyError::InvalidSecretKey => {
                f.write_str("secret key is zero or not below the curve order")
            }
            KeyError::NotOnCurve => f.write_str("public key is not a point on secp256k1"),
            KeyError::BadHex => f.write_str("invalid hex"),
            KeyError::InvalidSignature => {
                f.write_str("no public key can be recovered from the signature")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// A node's public key, validated to lie on the curve, kept as the 64 wire bytes and as its
/// node id, so neither is recomputed (discovery asks for ids constantly). The parsed point is
/// rebuilt on the rare occasions it is needed (ECDH, encryption, verification), which keeps
/// this small: tables and databases hold many.
#[derive(Clone, Copy)]
pub struct NodePublicKey {
    raw: [u8; PUBLIC_KEY_LEN],
    id: NodeId,
}

impl NodePublicKey {
    /// Parses the raw64 form (X || Y), rejecting points that are not on the curve.
    pub fn from_raw(raw: &[u8]) -> Result<Self, KeyError> {
        let raw: [u8; PUBLIC_KEY_LEN] = raw.try_into().map_err(|_| KeyError::WrongLength {
            expected: PUBLIC_KEY_LEN,
            got: raw.len(),
        })?;
        if let Some(known) = crate::known_keys::lookup_raw(&raw) {
            return Ok(known);
        }
        let mut full = [0u8; 65];
        full[0] = 0x04;
        full[1..].copy_from_slice(&raw);
        secp256k1::PublicKey::from_byte_array_uncompressed(full)
            .map_err(|_| KeyError::NotOnCurve)?;
        Ok(Self {
            raw,
            id: NodeId(keccak256(&raw)),
        })
    }

    /// Parses the 65-byte uncompressed SEC1 form (0x04 || X || Y).
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 65 {
            return Err(KeyError::WrongLength {
                expected: 65,
                got: bytes.len(),
            });
        }
        if bytes[0] != 0x04 {
            return Err(KeyError::NotOnCurve);
        }
        Self::from_raw(&bytes[1..])
    }

    /// Parses the 33-byte compressed SEC1 form (as in the ENR `secp256k1` entry).
    pub fn from_compressed(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 33] = bytes.try_into().map_err(|_| KeyError::WrongLength {
            expected: 33,
            got: bytes.len(),
        })?;
        if let Some(known) = crate::known_keys::lookup_compressed(&arr) {
            return Ok(known);
        }
        let key = secp256k1::PublicKey::from_byte_array_compressed(arr)
            .map_err(|_| KeyError::NotOnCurve)?;
        Ok(Self::from_secp(key))
    }

    /// Parses 128 hex characters of the raw64 form.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut raw = [0u8; PUBLIC_KEY_LEN];
        if s.len() != 2 * PUBLIC_KEY_LEN {
            return Err(KeyError::WrongLength {
                expected: PUBLIC_KEY_LEN,
                got: s.len() / 2,
            });
        }
        hex::decode_to_slice(s, &mut raw).map_err(|_| KeyError::BadHex)?;
        Self::from_raw(&raw)
    }

    /// Wraps an already-parsed secp256k1 key.
    pub fn from_secp(key: secp256k1::PublicKey) -> Self {
        let full = key.serialize_uncompressed();
        let mut raw = [0u8; PUBLIC_KEY_LEN];
        raw.copy_from_slice(&full[1..]);
        Self {
            raw,
            id: NodeId(keccak256(&raw)),
        }
    }

    /// The raw64 wire form.
    pub fn raw(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.raw
    }

    /// The 65-byte uncompressed form (0x04 || X || Y).
    pub fn uncompressed(&self) -> [u8; 65] {
        let mut full = [0u8; 65];
        full[0] = 0x04;
        full[1..].copy_from_slice(&self.raw);
        full
    }

    /// The 33-byte compressed form: 0x02 or 0x03 by the parity of Y, then X.
    pub fn compressed(&self) -> [u8; 33] {
        let mut c = [0u8; 33];
        c[0] = 0x02 | (self.raw[PUBLIC_KEY_LEN - 1] & 1);
        c[1..].copy_from_slice(&self.raw[..32]);
        c
    }

    /// The parsed secp256k1 point.
    pub fn secp(&self) -> secp256k1::PublicKey {
        secp256k1::PublicKey::from_byte_array_uncompressed(self.uncompressed())
            .expect("every constructor checks the key is on the curve")
    }

    /// The node id: Keccak-256 of the raw64 form.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Recovers the key that made a recoverable signature `r || s || v` over a 32-byte digest.
    pub fn recover(signature: &[u8], digest: &[u8; 32]) -> Result<Self, KeyError> {
        if signature.len() != RECOVERABLE_SIGNATURE_LEN {
            return Err(KeyError::WrongLength {
                expected: RECOVERABLE_SIGNATURE_LEN,
                got: signature.len(),
            });
        }
        let recid = RecoveryId::try_from(i32::from(signature[64]))
            .map_err(|_| KeyError::InvalidSignature)?;
        let sig = RecoverableSignature::from_compact(&signature[..64], recid)
            .map_err(|_| KeyError::InvalidSignature)?;
        let key = sig
            .recover_ecdsa(Message::from_digest(*digest))
            .map_err(|_| KeyError::InvalidSignature)?;
        Ok(Self::from_secp(key))
    }

    /// [`NodePublicKey::recover`] under `scheme`.
    pub fn recover_with(
        scheme: SignatureScheme,
        signature: &[u8],
        digest: &[u8; 32],
    ) -> Result<Self, KeyError> {
        match scheme {
            SignatureScheme::Secp256k1 => Self::recover(signature, digest),
            SignatureScheme::InsecureSimulation => {
                if signature.len() != RECOVERABLE_SIGNATURE_LEN {
                    return Err(KeyError::WrongLength {
                        expected: RECOVERABLE_SIGNATURE_LEN,
                        got: signature.len(),
                    });
                }
                if signature[PUBLIC_KEY_LEN] != SIMULATED_SIGNATURE_MARKER {
                    return Err(KeyError::InvalidSignature);
                }
                Self::from_raw(&signature[..PUBLIC_KEY_LEN])
            }
        }
    }
}

impl PartialEq for NodePublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for NodePublicKey {}
impl PartialOrd for NodePublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NodePublicKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.raw.cmp(&other.raw)
    }
}
impl std::hash::Hash for NodePublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}

impl fmt::Display for NodePublicKey {
    /// 128 lowercase hex characters, as in an enode URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.raw))
    }
}

impl fmt::Debug for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePublicKey({}…)", &hex::encode(&self.raw[..8]))
    }
}

/// How discovery packets are signed, and how their signer is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureScheme {
    /// ECDSA over secp256k1, as on the wire of every client.
    #[default]
    Secp256k1,
    /// **Insecure, for simulations only.** The "signature" is the signer's public key and a
    /// marker byte; it proves nothing. A secp256k1 signature costs tens of microseconds, a
    /// whole network of nodes pinging each other for a virtual hour needs tens of millions of
    /// them, and a simulation of honest nodes learns nothing from real ones. For the same
    /// reason a datagram's head is a fast checksum instead of Keccak-256
    /// ([`crate::discv4::wire::packet_hash`]) and record signatures go unchecked. discv5's
    /// handshake uses stand-ins too: a hash for the ephemeral key and for ECDH, and one for
    /// the id-nonce signature ([`crate::discv5::crypto::simulated_ecdh`]). Nodes using it
    /// reject real packets and real nodes reject theirs, so the two never mix.
    InsecureSimulation,
}

/// The last byte of a [`SignatureScheme::InsecureSimulation`] signature (a real one ends in
/// a recovery id, 0..=3).
pub const SIMULATED_SIGNATURE_MARKER: u8 = 0x5a;

/// A node's long-lived secret key together with its public key, computed once.
#[derive(Clone)]
pub struct NodeSecretKey {
    secret: secp256k1::SecretKey,
    public: NodePublicKey,
    scheme: SignatureScheme,
}

impl NodeSecretKey {
    /// Parses 32 big-endian bytes; rejects zero and values not below the curve order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::WrongLength {
            expected: 32,
            got: bytes.len(),
        })?;
        let secret =
            secp256k1::SecretKey::from_secret_bytes(arr).map_err(|_| KeyError::InvalidSecretKey)?;
        Ok(Self::from_secp(secret))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let mut raw = [0u8; 32];
        if s.len() != 64 {
            return Err(KeyError::WrongLength {
                expected: 32,
                got: s.len() / 2,
            });
        }
        hex::decode_to_slice(s, &mut raw).map_err(|_| KeyError::BadHex)?;
        Self::from_bytes(&raw)
    }

    /// Wraps a secp256k1 secret key, deriving its public key.
    pub fn from_secp(secret: secp256k1::SecretKey) -> Self {
        let public = NodePublicKey::from_secp(secp256k1::PublicKey::from_secret_key(&secret));
        Self {
            secret,
            public,
            scheme: SignatureScheme::Secp256k1,
        }
    }

    /// The same key, signing discovery packets with `scheme`. Only a simulation has reason
    /// to pick [`SignatureScheme::InsecureSimulation`]; see its warning.
    pub fn with_signature_scheme(mut self, scheme: SignatureScheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// How [`NodeSecretKey::sign_recoverable`] signs (and how a node with this key recovers
    /// signers).
    pub fn signature_scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// Draws a fresh key from the injected entropy source.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secp(random_secret(rng))
    }

    /// The 32 secret bytes (for saving the node key to a file).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_secret_bytes()
    }

    /// A secret seed for one of the node's hash tables: unpredictable to peers (who could
    /// otherwise choose keys that collide), the same in every run with the same key, and
    /// drawn without touching the node's random stream. Each kind of table has its own
    /// `label`.
    pub(crate) fn hash_seed(&self, label: &[u8]) -> u64 {
        let h = crate::keccak::keccak256_concat(&[label, &self.to_bytes()]);
        u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
    }

    /// The public key.
    pub fn public(&self) -> &NodePublicKey {
        &self.public
    }

    /// The node id of the public key.
    pub fn id(&self) -> NodeId {
        self.public.id()
    }

    /// The parsed secp256k1 secret key.
    pub fn secp(&self) -> &secp256k1::SecretKey {
        &self.secret
    }

    /// Signs a 32-byte digest, returning `r || s || v` (v in {0, 1}), deterministic (RFC 6979);
    /// under [`SignatureScheme::InsecureSimulation`], the public key and the marker byte.
    pub fn sign_recoverable(&self, digest: &[u8; 32]) -> [u8; RECOVERABLE_SIGNATURE_LEN] {
        match self.scheme {
            SignatureScheme::Secp256k1 => sign_recoverable(&self.secret, digest),
            SignatureScheme::InsecureSimulation => {
                let mut sig = [0u8; RECOVERABLE_SIGNATURE_LEN];
                sig[..PUBLIC_KEY_LEN].copy_from_slice(self.public.raw());
                sig[PUBLIC_KEY_LEN] = SIMULATED_SIGNATURE_MARKER;
                sig
            }
        }
    }
}

impl fmt::Debug for NodeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeSecretKey(public: {:?})", self.public)
    }
}

/// Draws a valid secret scalar from `rng`, retrying in the (astronomically rare) case that 32
/// random bytes are zero or not below the curve order.
pub(crate) fn random_secret<R: CryptoRng + ?Sized>(rng: &mut R) -> secp256k1::SecretKey {
    loop {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        if let Ok(k) = secp256k1::SecretKey::from_secret_bytes(b) {
            return k;
        }
    }
}

/// Signs a 32-byte digest with `secret`, returning `r || s || v`.
pub(crate) fn sign_recoverable(
    secret: &secp256k1::SecretKey,
    digest: &[u8; 32],
) -> [u8; RECOVERABLE_SIGNATURE_LEN] {
    let sig = RecoverableSignature::sign_ecdsa_recoverable(Message::from_digest(*digest), secret);
    let (recid, rs) = sig.serialize_compact();
    let mut out = [0u8; RECOVERABLE_SIGNATURE_LEN];
    out[..64].copy_from_slice(&rs);
    out[64] = u8::from(recid);
    out
}

/// X coordinate of `secret · public`: the ECDH shared secret devp2p uses everywhere.
pub(crate) fn ecdh_x(public: &secp256k1::PublicKey, secret: &secp256k1::SecretKey) -> [u8; 32] {
    let xy = secp256k1::ecdh::shared_secret_point(public, secret);
    let mut x = [0u8; 32];
    x.copy_from_slice(&xy[..32]);
    x
}

/// A node id: Keccak-256 of the node's raw64 public key. Kademlia distances are XOR distances
/// between node ids read as 256-bit big-endian numbers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl NodeId {
    /// The id of a discovery lookup target given as a 64-byte public key: its Keccak-256 hash.
    /// Unlike [`NodePublicKey::id`], the target need not be a point on the curve.
    pub fn of_target(target: &[u8; PUBLIC_KEY_LEN]) -> Self {
        NodeId(keccak256(target))
    }

    /// The XOR of two ids.
    pub fn xor(&self, other: &NodeId) -> [u8; NODE_ID_LEN] {
        let mut out = [0u8; NODE_ID_LEN];
        for (o, (a, b)) in out.iter_mut().zip(self.0.iter().zip(other.0.iter())) {
            *o = a ^ b;
        }
        out
    }

    /// The logarithmic distance: 256 minus the number of leading zero bits of `self ^ other`;
    /// 0 for equal ids, 256 when the top bits differ.
    pub fn log_distance(&self, other: &NodeId) -> u32 {
        let mut lz = 0u32;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let x = a ^ b;
            if x == 0 {
                lz += 8;
            } else {
                lz += x.leading_zeros();
                break;
            }
        }
        256 - lz
    }

    /// Compares the distances of `a` and `b` to `self`: `Less` means `a` is closer.
    pub fn distance_cmp(&self, a: &NodeId, b: &NodeId) -> Ordering {
        for i in 0..NODE_ID_LEN {
            let da = self.0[i] ^ a.0[i];
            let db = self.0[i] ^ b.0[i];
            match da.cmp(&db) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &hex::encode(&self.0[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    fn id(b: [u8; 32]) -> NodeId {
        NodeId(b)
    }

    quickcheck! {
        /// The SEC1 forms built from the raw bytes are the ones libsecp256k1 serialises, and
        /// parse back to the same key.
        fn sec1_forms_match_libsecp256k1(seed: u64) -> bool {
            use rand_core::SeedableRng;
            let k = NodeSecretKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed));
            let p = k.public();
            let point = secp256k1::PublicKey::from_secret_key(k.secp());
            p.compressed() == point.serialize()
                && p.uncompressed() == point.serialize_uncompressed()
                && p.secp() == point
                && NodePublicKey::from_compressed(&p.compressed()).as_ref() == Ok(p)
        }
    }

    #[test]
    fn eip8_key_b_has_the_published_node_id() {
        let k = NodeSecretKey::from_hex(
            "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
        )
        .unwrap();
        assert_eq!(
            k.id().to_string(),
            "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
        );
    }

    #[test]
    fn secret_key_zero_and_order_are_rejected() {
        assert_eq!(
            NodeSecretKey::from_bytes(&[0u8; 32]).unwrap_err(),
            KeyError::InvalidSecretKey
        );
        assert_eq!(
            NodeSecretKey::from_bytes(&[0xffu8; 32]).unwrap_err(),
            KeyError::InvalidSecretKey
        );
        assert!(matches!(
            NodeSecretKey::from_bytes(&[1u8; 31]),
            Err(KeyError::WrongLength { .. })
        ));
    }

    #[test]
    fn a_point_off_the_curve_is_rejected() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[63] = 1;
        assert_eq!(
            NodePublicKey::from_raw(&raw).unwrap_err(),
            KeyError::NotOnCurve
        );
    }

    #[test]
    fn log_distance_edges() {
        let a = id([0; 32]);
        assert_eq!(a.log_distance(&a), 0);
        let mut b = [0u8; 32];
        b[0] = 0x80;
        assert_eq!(a.log_distance(&id(b)), 256);
        let mut c = [0u8; 32];
        c[31] = 1;
        assert_eq!(a.log_distance(&id(c)), 1);
        c[31] = 0x10;
        assert_eq!(a.log_distance(&id(c)), 5);
    }

    quickcheck! {
        fn log_distance_is_symmetric_and_matches_bit_length(a: Vec<u8>, b: Vec<u8>) -> bool {
            let mut x = [0u8; 32];
            let mut y = [0u8; 32];
            for (i, v) in a.iter().take(32).enumerate() { x[i] = *v; }
            for (i, v) in b.iter().take(32).enumerate() { y[i] = *v; }
            let (x, y) = (id(x), id(y));
            let d = x.xor(&y);
            let bits = d.iter().position(|&v| v != 0)
                .map(|i| 256 - (i as u32 * 8 + d[i].leading_zeros()))
                .unwrap_or(0);
            x.log_distance(&y) == y.log_distance(&x) && x.log_distance(&y) == bits
        }

        fn distance_cmp_agrees_with_xor_order(t: Vec<u8>, a: Vec<u8>, b: Vec<u8>) -> bool {
            let pad = |v: &Vec<u8>| { let mut x = [0u8; 32]; for (i, c) in v.iter().take(32).enumerate() { x[i] = *c; } id(x) };
            let (t, a, b) = (pad(&t), pad(&a), pad(&b));
            t.distance_cmp(&a, &b) == t.xor(&a).cmp(&t.xor(&b))
        }

        fn signatures_recover_the_signer(seed: u64, digest: Vec<u8>) -> bool {
            use rand_core::SeedableRng;
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let k = NodeSecretKey::generate(&mut rng);
            let mut d = [0u8; 32];
            for (i, c) in digest.iter().take(32).enumerate() { d[i] = *c; }
            let sig = k.sign_recoverable(&d);
            NodePublicKey::recover(&sig, &d).unwrap() == *k.public()
        }
    }
}
