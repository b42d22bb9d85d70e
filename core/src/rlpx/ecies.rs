//! ECIES as RLPx uses it ([PROTOCOL.md §3](crate::spec::protocol)): secp256k1 ECDH, NIST SP 800-56
//! Concat KDF over SHA-256, AES-128-CTR and HMAC-SHA-256 over
//! `iv || ciphertext || shared-mac-data`.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::identity::{ecdh_x, random_secret, NodePublicKey};

/// Length of the ephemeral public key in uncompressed form at the start of a message.
const PUBKEY_LEN: usize = 65;
/// Length of the AES-CTR initialisation vector.
const IV_LEN: usize = 16;
/// Length of the HMAC-SHA-256 tag at the end.
const TAG_LEN: usize = 32;
/// Bytes ECIES adds to a plaintext: ephemeral key, IV and tag (geth `eciesOverhead`).
pub const ECIES_OVERHEAD: usize = PUBKEY_LEN + IV_LEN + TAG_LEN;

type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type HmacSha256 = Hmac<Sha256>;

/// Why an ECIES message could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EciesError {
    /// Shorter than the fixed overhead.
    TooShort,
    /// The ephemeral public key is not an uncompressed point on the curve.
    InvalidEphemeralKey,
    /// The HMAC tag does not match: wrong recipient key, or tampered data.
    BadMac,
}

impl std::fmt::Display for EciesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EciesError::TooShort => "ECIES message shorter than its 113-byte overhead",
            EciesError::InvalidEphemeralKey => "ECIES ephemeral key is not a point on secp256k1",
            EciesError::BadMac => "ECIES MAC mismatch",
        })
    }
}

impl std::error::Error for EciesError {}

/// Derives (AES-128 key, HMAC key) from the ECDH shared X coordinate.
fn derive_keys(shared_x: &[u8; 32]) -> ([u8; 16], [u8; 32]) {
    // Concat KDF with counter 1 and empty s1: one SHA-256 block yields the 32 bytes needed.
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(shared_x);
    let k: [u8; 32] = h.finalize().into();
    let mut ke = [0u8; 16];
    ke.copy_from_slice(&k[..16]);
    let km: [u8; 32] = Sha256::digest(&k[16..]).into();
    (ke, km)
}

fn tag(km: &[u8; 32], iv_and_ct: &[u8], shared_mac_data: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(km).expect("HMAC takes any key length");
    mac.update(iv_and_ct);
    mac.update(shared_mac_data);
    mac
}

/// Encrypts `plaintext` to `recipient`, appending `R || iv || c || tag` to `out`.
pub fn encrypt<R: CryptoRng + ?Sized>(
    rng: &mut R,
    recipient: &NodePublicKey,
    plaintext: &[u8],
    shared_mac_data: &[u8],
    out: &mut Vec<u8>,
) {
    let ephemeral = random_secret(rng);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    encrypt_with(&ephemeral, iv, recipient, plaintext, shared_mac_data, out);
}

/// [`encrypt`] with a given ephemeral key and IV.
pub fn encrypt_with(
    ephemeral: &secp256k1::SecretKey,
    iv: [u8; IV_LEN],
    recipient: &NodePublicKey,
    plaintext: &[u8],
    shared_mac_data: &[u8],
    out: &mut Vec<u8>,
) {
    let ephemeral_pub = secp256k1::PublicKey::from_secret_key(ephemeral);
    let (ke, km) = derive_keys(&ecdh_x(&recipient.secp(), ephemeral));
    let start = out.len();
    out.reserve(ECIES_OVERHEAD + plaintext.len());
    out.extend_from_slice(&ephemeral_pub.serialize_uncompressed());
    out.extend_from_slice(&iv);
    let ct_start = out.len();
    out.extend_from_slice(plaintext);
    Aes128Ctr::new(&ke.into(), &iv.into()).apply_keystream(&mut out[ct_start..]);
    let t = tag(&km, &out[start + PUBKEY_LEN..], shared_mac_data)
        .finalize()
        .into_bytes();
    out.extend_from_slice(&t);
}

/// Decrypts a message addressed to `secret`, returning the plaintext.
///
/// The ephemeral key is checked to be on the curve before any ECDH, so an invalid-curve point
/// is reported as such and never as a MAC failure.
pub fn decrypt(
    secret: &secp256k1::SecretKey,
    message: &[u8],
    shared_mac_data: &[u8],
) -> Result<Vec<u8>, EciesError> {
    if message.len() < ECIES_OVERHEAD {
        return Err(EciesError::TooShort);
    }
    let ephemeral = NodePublicKey::from_uncompressed(&message[..PUBKEY_LEN])
        .map_err(|_| EciesError::InvalidEphemeralKey)?;
    let (ke, km) = derive_keys(&ecdh_x(&ephemeral.secp(), secret));
    let body_end = message.len() - TAG_LEN;
    let iv_and_ct = &message[PUBKEY_LEN..body_end];
    tag(&km, iv_and_ct, shared_mac_data)
        .verify_slice(&message[body_end..])
        .map_err(|_| EciesError::BadMac)?;
    let (iv, ct) = iv_and_ct.split_at(IV_LEN);
    let iv: [u8; IV_LEN] = iv.try_into().expect("split at IV_LEN");
    let mut plain = ct.to_vec();
    Aes128Ctr::new(&ke.into(), &iv.into()).apply_keystream(&mut plain);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeSecretKey;
    use rand_core::SeedableRng;

    #[test]
    fn a_message_decrypts_only_with_the_right_key_and_mac_data() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let to = NodeSecretKey::generate(&mut rng);
        let other = NodeSecretKey::generate(&mut rng);
        let mut msg = Vec::new();
        encrypt(&mut rng, to.public(), b"hello ecies", b"ad", &mut msg);
        assert_eq!(msg.len(), ECIES_OVERHEAD + 11);
        assert_eq!(decrypt(to.secp(), &msg, b"ad").unwrap(), b"hello ecies");
        assert_eq!(decrypt(to.secp(), &msg, b"xx"), Err(EciesError::BadMac));
        assert_eq!(decrypt(other.secp(), &msg, b"ad"), Err(EciesError::BadMac));
        assert_eq!(
            decrypt(to.secp(), &msg[..112], b"ad"),
            Err(EciesError::TooShort)
        );
    }

    #[test]
    fn an_off_curve_ephemeral_key_is_an_invalid_key_not_a_bad_mac() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let to = NodeSecretKey::generate(&mut rng);
        let mut msg = Vec::new();
        encrypt(&mut rng, to.public(), b"x", b"", &mut msg);
        msg[64] ^= 1; // last byte of Y: the point leaves the curve
        assert_eq!(
            decrypt(to.secp(), &msg, b""),
            Err(EciesError::InvalidEphemeralKey)
        );
    }
}
