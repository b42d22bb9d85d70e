//! The discv5 handshake and message cryptography ([DISCV5.md §4.3–§4.5, §5](crate::spec::discv5)):
//! ECDH to a compressed point, HKDF-SHA256 key agreement, the id-nonce signature and
//! AES-128-GCM message keys.
//!
//! Nothing here draws randomness: ephemeral keys come from the caller, so a session machine
//! decides where they come from and the vectors reproduce bit for bit.

use std::fmt;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use secp256k1::Message as Digest;
use sha2::{Digest as _, Sha256};

use crate::identity::{NodeId, NodePublicKey, NodeSecretKey, SignatureScheme};

/// Size of an AES-128 key: session keys and the masking key (spec "Protocol Constants").
pub const KEY_SIZE: usize = 16;
/// Size of the AES-GCM nonce, the packet header's `nonce` field (spec "Packet Encoding").
pub const NONCE_SIZE: usize = 12;
/// Size of the AES-GCM authentication tag appended to every message ciphertext.
pub const TAG_SIZE: usize = 16;
/// Size of a compressed secp256k1 point: the ECDH output and the handshake's ephemeral key
/// ("v4" identity scheme; [DISCV5.md §4.3](crate::spec::discv5)).
pub const COMPRESSED_KEY_SIZE: usize = 33;
/// Size of the id-nonce signature: `r || s`, no recovery id ("v4" scheme, geth `makeIDSignature`).
pub const ID_SIGNATURE_SIZE: usize = 64;

/// The fixed prefix of the HKDF `info` ([DISCV5.md §4.4](crate::spec::discv5)).
const KEY_AGREEMENT_INFO: &[u8] = b"discovery v5 key agreement";
/// The fixed prefix of the signed id-nonce input ([DISCV5.md §4.5](crate::spec::discv5)).
const ID_PROOF_PREFIX: &[u8] = b"discovery v5 identity proof";

/// An AES-GCM nonce: the header's 12-byte `nonce` field.
pub type Nonce = [u8; NONCE_SIZE];

/// `ecdh(pub, priv)`: the shared point `pub · priv` in compressed form (`02|03 || x`), neither
/// hashed nor cut to `x` ([DISCV5.md §4.3](crate::spec::discv5); geth `ecdh`).
pub fn ecdh(
    public: &secp256k1::PublicKey,
    secret: &secp256k1::SecretKey,
) -> [u8; COMPRESSED_KEY_SIZE] {
    let xy = secp256k1::ecdh::shared_secret_point(public, secret);
    let mut out = [0u8; COMPRESSED_KEY_SIZE];
    out[0] = 0x02 | (xy[63] & 1);
    out[1..].copy_from_slice(&xy[..32]);
    out
}

/// The two keys a handshake agrees on, named by role: the initiator (the node that answered
/// the WHOAREYOU) writes with `initiator_key` and reads with `recipient_key`; the recipient
/// the other way round ([DISCV5.md §4.4](crate::spec::discv5)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HandshakeKeys {
    /// `okm[0..16]`.
    pub initiator_key: [u8; KEY_SIZE],
    /// `okm[16..32]`.
    pub recipient_key: [u8; KEY_SIZE],
}

impl HandshakeKeys {
    /// The session as the initiator holds it.
    pub fn initiator(&self) -> SessionKeys {
        SessionKeys {
            write: MessageKey::new(self.initiator_key),
            read: MessageKey::new(self.recipient_key),
        }
    }

    /// The session as the recipient holds it.
    pub fn recipient(&self) -> SessionKeys {
        SessionKeys {
            write: MessageKey::new(self.recipient_key),
            read: MessageKey::new(self.initiator_key),
        }
    }
}

impl fmt::Debug for HandshakeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeKeys(..)")
    }
}

/// HKDF-SHA256 key agreement: salt = `challenge_data`, IKM = the ECDH `shared_secret`,
/// info = `"discovery v5 key agreement" || initiator_id || recipient_id`, 32 bytes out.
///
/// Salt and IKM in that order: the spec text had them the other way round until devp2p#271,
/// while geth and the published vectors always used this order (the vectors file keeps the
/// wrong-order result as a negative case; [DISCV5.md §4.4](crate::spec::discv5)).
pub fn derive_keys(
    shared_secret: &[u8; COMPRESSED_KEY_SIZE],
    initiator_id: &NodeId,
    recipient_id: &NodeId,
    challenge_data: &[u8],
) -> HandshakeKeys {
    let mut info = [0u8; KEY_AGREEMENT_INFO.len() + 64];
    info[..KEY_AGREEMENT_INFO.len()].copy_from_slice(KEY_AGREEMENT_INFO);
    info[KEY_AGREEMENT_INFO.len()..][..32].copy_from_slice(&initiator_id.0);
    info[KEY_AGREEMENT_INFO.len() + 32..].copy_from_slice(&recipient_id.0);
    let mut okm = [0u8; 2 * KEY_SIZE];
    Hkdf::<Sha256>::new(Some(challenge_data), shared_secret)
        .expand(&info, &mut okm)
        .expect("32 bytes is far below HKDF-SHA256's 8160-byte limit");
    let mut keys = HandshakeKeys {
        initiator_key: [0; KEY_SIZE],
        recipient_key: [0; KEY_SIZE],
    };
    keys.initiator_key.copy_from_slice(&okm[..KEY_SIZE]);
    keys.recipient_key.copy_from_slice(&okm[KEY_SIZE..]);
    keys
}

/// SHA-256 of `"discovery v5 identity proof" || challenge_data || ephemeral_key ||
/// recipient_id`: what the id-nonce signature signs ([DISCV5.md §4.5](crate::spec::discv5)).
pub fn id_signature_digest(
    challenge_data: &[u8],
    ephemeral_key: &[u8; COMPRESSED_KEY_SIZE],
    recipient_id: &NodeId,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ID_PROOF_PREFIX);
    h.update(challenge_data);
    h.update(ephemeral_key);
    h.update(recipient_id.0);
    h.finalize().into()
}

/// The id-nonce signature by `key`: deterministic (RFC 6979) and low-s, as libsecp256k1 and
/// geth make it, so that verifiers that refuse high-s signatures (geth) accept it.
///
/// Under [`SignatureScheme::InsecureSimulation`] (the key's scheme) the "signature" is the
/// digest's first half and the signer's public key's first half: it proves nothing
/// ([`verify_id_signature_with`]).
pub fn sign_id_nonce(
    key: &NodeSecretKey,
    challenge_data: &[u8],
    ephemeral_key: &[u8; COMPRESSED_KEY_SIZE],
    recipient_id: &NodeId,
) -> [u8; ID_SIGNATURE_SIZE] {
    let digest = id_signature_digest(challenge_data, ephemeral_key, recipient_id);
    match key.signature_scheme() {
        SignatureScheme::Secp256k1 => {
            secp256k1::ecdsa::sign(Digest::from_digest(digest), key.secp()).serialize_compact()
        }
        SignatureScheme::InsecureSimulation => simulated_id_signature(key.public(), &digest),
    }
}

/// The insecure stand-in for an id-nonce signature (see [`sign_id_nonce`]).
fn simulated_id_signature(signer: &NodePublicKey, digest: &[u8; 32]) -> [u8; ID_SIGNATURE_SIZE] {
    let mut sig = [0u8; ID_SIGNATURE_SIZE];
    sig[..32].copy_from_slice(digest);
    sig[32..].copy_from_slice(&signer.raw()[..32]);
    sig
}

/// Whether `signature` is `signer`'s id-nonce signature over this challenge, ephemeral key
/// and recipient. High-s signatures are refused, as geth's `VerifySignature` refuses them.
pub fn verify_id_signature(
    signer: &NodePublicKey,
    signature: &[u8; ID_SIGNATURE_SIZE],
    challenge_data: &[u8],
    ephemeral_key: &[u8; COMPRESSED_KEY_SIZE],
    recipient_id: &NodeId,
) -> bool {
    let Ok(sig) = secp256k1::ecdsa::Signature::from_compact(signature) else {
        return false;
    };
    let digest = id_signature_digest(challenge_data, ephemeral_key, recipient_id);
    secp256k1::ecdsa::verify(&sig, Digest::from_digest(digest), &signer.secp()).is_ok()
}

/// [`verify_id_signature`] under `scheme`: a simulation's nodes
/// ([`SignatureScheme::InsecureSimulation`]) check only the stand-in [`sign_id_nonce`] makes
/// for them, and refuse real signatures (as real nodes refuse theirs).
pub fn verify_id_signature_with(
    scheme: SignatureScheme,
    signer: &NodePublicKey,
    signature: &[u8; ID_SIGNATURE_SIZE],
    challenge_data: &[u8],
    ephemeral_key: &[u8; COMPRESSED_KEY_SIZE],
    recipient_id: &NodeId,
) -> bool {
    match scheme {
        SignatureScheme::Secp256k1 => verify_id_signature(
            signer,
            signature,
            challenge_data,
            ephemeral_key,
            recipient_id,
        ),
        SignatureScheme::InsecureSimulation => {
            let digest = id_signature_digest(challenge_data, ephemeral_key, recipient_id);
            *signature == simulated_id_signature(signer, &digest)
        }
    }
}

/// **Insecure, for simulations only** ([`SignatureScheme::InsecureSimulation`]): the
/// ephemeral "public key" a simulated node sends for the secret `ephemeral`, a hash of it
/// behind a compressed-point prefix rather than `ephemeral · G` (which costs as much as a
/// signature). It need not be a point on the curve; only simulated nodes read it.
pub fn simulated_ephemeral_key(ephemeral: &secp256k1::SecretKey) -> [u8; COMPRESSED_KEY_SIZE] {
    let mut out = [0u8; COMPRESSED_KEY_SIZE];
    out[0] = 0x02;
    let h: [u8; 32] = Sha256::new()
        .chain_update(b"simulated ephemeral key")
        .chain_update(ephemeral.to_secret_bytes())
        .finalize()
        .into();
    out[1..].copy_from_slice(&h);
    out
}

/// **Insecure, for simulations only**: the stand-in for [`ecdh`] between a simulated
/// handshake's ephemeral key ([`simulated_ephemeral_key`]) and the recipient's static key.
/// Both sides know both public halves, so both compute it; so could anyone watching.
pub fn simulated_ecdh(
    ephemeral_key: &[u8; COMPRESSED_KEY_SIZE],
    recipient: &NodePublicKey,
) -> [u8; COMPRESSED_KEY_SIZE] {
    let mut out = [0u8; COMPRESSED_KEY_SIZE];
    out[0] = 0x02;
    let h: [u8; 32] = Sha256::new()
        .chain_update(b"simulated shared secret")
        .chain_update(ephemeral_key)
        .chain_update(recipient.raw())
        .finalize()
        .into();
    out[1..].copy_from_slice(&h);
    out
}

/// One direction's AES-128-GCM key, with its key schedule and GHASH key computed once: a
/// session seals or opens every packet with it.
#[derive(Clone)]
pub struct MessageKey {
    key: [u8; KEY_SIZE],
    cipher: Aes128Gcm,
}

/// The message could not be authenticated under the key: wrong key, wrong header, or a
/// tampered ciphertext. For an ordinary packet this is what calls for a WHOAREYOU
/// ([DISCV5.md §4.9](crate::spec::discv5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptError;

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message does not authenticate under the session key")
    }
}

impl std::error::Error for DecryptError {}

impl MessageKey {
    /// Sets up `key`.
    pub fn new(key: [u8; KEY_SIZE]) -> Self {
        Self {
            key,
            cipher: Aes128Gcm::new(&key.into()),
        }
    }

    /// The 16 key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_SIZE] {
        &self.key
    }

    /// Encrypts `buf` in place and returns the tag, which goes after it on the wire.
    pub fn seal_in_place(&self, nonce: &Nonce, aad: &[u8], buf: &mut [u8]) -> [u8; TAG_SIZE] {
        self.cipher
            .encrypt_inout_detached(&(*nonce).into(), aad, InOutBuf::from(buf))
            .expect("discv5 packets are far below AES-GCM's length limits")
            .into()
    }

    /// `plaintext` sealed: ciphertext || tag.
    pub fn seal(&self, nonce: &Nonce, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_SIZE);
        out.extend_from_slice(plaintext);
        let tag = self.seal_in_place(nonce, aad, &mut out);
        out.extend_from_slice(&tag);
        out
    }

    /// Decrypts `sealed` (ciphertext || tag) into `out`, which must be exactly
    /// `sealed.len() - TAG_SIZE` bytes long.
    pub fn open_into(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        sealed: &[u8],
        out: &mut [u8],
    ) -> Result<(), DecryptError> {
        let Some(split) = sealed.len().checked_sub(TAG_SIZE) else {
            return Err(DecryptError);
        };
        let (ct, tag) = sealed.split_at(split);
        let tag: &[u8; TAG_SIZE] = tag.try_into().expect("split TAG_SIZE from the end");
        let buf = InOutBuf::new(ct, out).map_err(|_| DecryptError)?;
        self.cipher
            .decrypt_inout_detached(&(*nonce).into(), aad, buf, tag.into())
            .map_err(|_| DecryptError)
    }

    /// Decrypts `ciphertext` into `out` (of the same length) if `tag` authenticates it.
    pub fn open_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_SIZE],
        out: &mut [u8],
    ) -> Result<(), DecryptError> {
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| DecryptError)?;
        self.cipher
            .decrypt_inout_detached(&(*nonce).into(), aad, buf, tag.into())
            .map_err(|_| DecryptError)
    }

    /// Decrypts `buf` in place if `tag` authenticates it.
    pub fn open_in_place(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), DecryptError> {
        self.cipher
            .decrypt_inout_detached(&(*nonce).into(), aad, InOutBuf::from(buf), tag.into())
            .map_err(|_| DecryptError)
    }

    /// [`open_into`](Self::open_into) returning a new buffer.
    pub fn open(&self, nonce: &Nonce, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut out = vec![0u8; sealed.len().saturating_sub(TAG_SIZE)];
        self.open_into(nonce, aad, sealed, &mut out)?;
        Ok(out)
    }
}

impl PartialEq for MessageKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for MessageKey {}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKey(..)")
    }
}

/// The keys of one session, from this node's side: `write` seals what we send, `read` opens
/// what the peer sends (geth `session.writeKey` / `readKey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// Seals our packets to the peer.
    pub write: MessageKey,
    /// Opens the peer's packets to us.
    pub read: MessageKey,
}

impl SessionKeys {
    /// A session from two raw keys (a session machine restoring state, or a test).
    pub fn new(write: [u8; KEY_SIZE], read: [u8; KEY_SIZE]) -> Self {
        Self {
            write: MessageKey::new(write),
            read: MessageKey::new(read),
        }
    }
}

/// Everything the initiator computes from a WHOAREYOU before writing its handshake packet:
/// its ephemeral public key, the id-nonce signature and the session keys
/// ([DISCV5.md §4.4–§4.5](crate::spec::discv5)).
#[derive(Clone, Debug)]
pub struct HandshakeProof {
    /// The compressed ephemeral public key.
    pub ephemeral_key: [u8; COMPRESSED_KEY_SIZE],
    /// The id-nonce signature by the initiator's static key.
    pub id_signature: [u8; ID_SIGNATURE_SIZE],
    /// The agreed keys.
    pub keys: HandshakeKeys,
}

impl HandshakeProof {
    /// The initiator's side: `local` answers `remote`'s challenge (`challenge_data`, the
    /// unmasked WHOAREYOU as received) with the fresh `ephemeral` secret.
    pub fn new(
        local: &NodeSecretKey,
        remote: &NodePublicKey,
        challenge_data: &[u8],
        ephemeral: &secp256k1::SecretKey,
    ) -> Self {
        let (ephemeral_key, secret) = match local.signature_scheme() {
            SignatureScheme::Secp256k1 => (
                secp256k1::PublicKey::from_secret_key(ephemeral).serialize(),
                ecdh(&remote.secp(), ephemeral),
            ),
            SignatureScheme::InsecureSimulation => {
                let key = simulated_ephemeral_key(ephemeral);
                (key, simulated_ecdh(&key, remote))
            }
        };
        let remote_id = remote.id();
        let id_signature = sign_id_nonce(local, challenge_data, &ephemeral_key, &remote_id);
        let keys = derive_keys(&secret, &local.id(), &remote_id, challenge_data);
        Self {
            ephemeral_key,
            id_signature,
            keys,
        }
    }
}
