//! The insecure simulation signature scheme: cheap, self-consistent, and never mixed up with
//! real secp256k1 signatures in either direction.

use devp2p_core::discv4::wire::{self, Endpoint, Packet, Ping, WireError};
use devp2p_core::{NodeSecretKey, SignatureScheme};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn ping() -> Packet {
    let e = Endpoint {
        ip: Some("11.0.0.1".parse().unwrap()),
        udp: 30303,
        tcp: 30303,
    };
    Packet::Ping(Ping {
        version: 4,
        from: e,
        to: e,
        expiration: 1_900_000_000,
        enr_seq: Some(1),
    })
}

#[test]
fn simulated_packets_recover_their_signer_only_under_the_simulated_scheme() {
    let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(1))
        .with_signature_scheme(SignatureScheme::InsecureSimulation);
    let (bytes, hash) = wire::encode(&ping(), &key);
    let d = wire::decode_with(&bytes, SignatureScheme::InsecureSimulation).unwrap();
    assert_eq!(d.sender, *key.public());
    assert_eq!(d.hash, hash);
    assert_eq!(d.packet, ping());
    // A real node refuses it: the head is no Keccak hash, and with one it would still be
    // refused, as the last signature byte is no recovery id.
    assert!(matches!(wire::decode(&bytes), Err(WireError::BadHash)));
    assert!(matches!(
        wire::decode(&rehashed(&bytes, SignatureScheme::Secp256k1)),
        Err(WireError::BadSignature(_))
    ));
}

#[test]
fn simulated_nodes_refuse_real_signatures() {
    let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(2));
    assert_eq!(key.signature_scheme(), SignatureScheme::Secp256k1);
    let (bytes, _) = wire::encode(&ping(), &key);
    assert_eq!(wire::decode(&bytes).unwrap().sender, *key.public());
    assert!(matches!(
        wire::decode_with(&bytes, SignatureScheme::InsecureSimulation),
        Err(WireError::BadHash)
    ));
    // Even with the checksum a simulated node expects, the signature is refused.
    let forged = rehashed(&bytes, SignatureScheme::InsecureSimulation);
    assert!(matches!(
        wire::decode_with(&forged, SignatureScheme::InsecureSimulation),
        Err(WireError::BadSignature(_))
    ));
}

/// `bytes` with the head hash that `scheme` checks.
fn rehashed(bytes: &[u8], scheme: SignatureScheme) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let h = wire::packet_hash(scheme, &out[32..]);
    out[..32].copy_from_slice(&h);
    out
}
