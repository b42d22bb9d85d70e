//! Session secrets derived from a completed handshake ([PROTOCOL.md §4.5](crate::spec::protocol)).

use crate::identity::{ecdh_x, NodePublicKey};
use crate::keccak::{keccak256_concat, Keccak256};

/// The keys and MAC states that key a [`FrameCodec`](super::FrameCodec).
#[derive(Clone)]
pub struct Secrets {
    /// AES-256-CTR key for frame encryption (both directions).
    pub aes_secret: [u8; 32],
    /// AES-256 key for the MAC's single-block steps.
    pub mac_secret: [u8; 32],
    /// Sponge for the MACs of frames we send.
    pub egress_mac: Keccak256,
    /// Sponge for the MACs of frames we receive.
    pub ingress_mac: Keccak256,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

impl Secrets {
    /// Derives the secrets from both sides' contributions.
    ///
    /// `auth` and `ack` are the messages exactly as they crossed the wire (EIP-8: including the
    /// size prefix); `initiator` says which side we are.
    pub fn derive(
        initiator: bool,
        own_ephemeral: &secp256k1::SecretKey,
        remote_ephemeral: &NodePublicKey,
        initiator_nonce: &[u8; 32],
        recipient_nonce: &[u8; 32],
        auth: &[u8],
        ack: &[u8],
    ) -> Self {
        let ephemeral_key = ecdh_x(&remote_ephemeral.secp(), own_ephemeral);
        let nonce_hash = keccak256_concat(&[recipient_nonce, initiator_nonce]);
        let shared_secret = keccak256_concat(&[&ephemeral_key, &nonce_hash]);
        let aes_secret = keccak256_concat(&[&ephemeral_key, &shared_secret]);
        let mac_secret = keccak256_concat(&[&ephemeral_key, &aes_secret]);

        // MAC of what the initiator sends: keyed with the recipient nonce, seeded with auth.
        let mut initiator_to_recipient = Keccak256::new();
        initiator_to_recipient.update(&xor32(&mac_secret, recipient_nonce));
        initiator_to_recipient.update(auth);
        let mut recipient_to_initiator = Keccak256::new();
        recipient_to_initiator.update(&xor32(&mac_secret, initiator_nonce));
        recipient_to_initiator.update(ack);

        let (egress_mac, ingress_mac) = if initiator {
            (initiator_to_recipient, recipient_to_initiator)
        } else {
            (recipient_to_initiator, initiator_to_recipient)
        };
        Secrets {
            aes_secret,
            mac_secret,
            egress_mac,
            ingress_mac,
        }
    }
}
