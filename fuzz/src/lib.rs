//! Fuzz targets for `devp2p-core`, one function per target. libFuzzer runs them through the
//! binaries in `fuzz_targets/` (nightly, `--features libfuzzer`); `cargo test` replays every
//! committed corpus file through the same functions on stable (`tests/replay.rs`), so a crash
//! found once, committed as a corpus file, stays a regression test.
//!
//! Each target asserts what must hold for any input: no panic, bounded memory, and where an
//! encoder exists, `decode(encode(x)) == x`.
#![forbid(unsafe_code)]

mod decoders;
mod discv5;
mod discv5_discovery;
mod discv5_sessions;
mod dnsdisc;
mod handshake;
mod nat;
mod records;
mod stateful;

pub use decoders::{disconnect, discv4_packet, enode, enr, hello, snappy};
pub use discv5::{discv5_message, discv5_packet};
pub use discv5_discovery::discv5_discovery;
pub use discv5_sessions::discv5_sessions;
pub use dnsdisc::dnsdisc;
pub use handshake::{ack, auth_eip8, auth_legacy, frame_stream};
pub use nat::nat;
pub use stateful::{node, session, table};

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its `fuzz_targets/` binary and `corpus/` folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("auth_eip8", auth_eip8),
    ("auth_legacy", auth_legacy),
    ("ack", ack),
    ("frame_stream", frame_stream),
    ("snappy", snappy),
    ("hello", hello),
    ("disconnect", disconnect),
    ("discv4_packet", discv4_packet),
    ("discv5_packet", discv5_packet),
    ("discv5_message", discv5_message),
    ("discv5_sessions", discv5_sessions),
    ("discv5_discovery", discv5_discovery),
    ("enr", enr),
    ("dnsdisc", dnsdisc),
    ("nat", nat),
    ("enode", enode),
    ("session", session),
    ("node", node),
    ("table", table),
];

/// Fixed keys the targets use, so inputs that need a recipient key (handshake messages) can
/// be built for it by the corpus generator. Each is derived once per process: deriving a
/// public key costs as much as a signature, and targets ask for keys in every input.
pub mod keys {
    use std::sync::OnceLock;

    use devp2p_core::{NodeSecretKey, SignatureScheme};

    fn cached(cell: &'static OnceLock<NodeSecretKey>, hex: &str) -> NodeSecretKey {
        cell.get_or_init(|| NodeSecretKey::from_hex(hex).expect("valid key"))
            .clone()
    }

    /// The recipient of auth messages and the sender of frames (the EIP-8 vectors' key B).
    pub fn recipient() -> NodeSecretKey {
        static K: OnceLock<NodeSecretKey> = OnceLock::new();
        cached(
            &K,
            "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
        )
    }

    /// The initiator (the EIP-8 vectors' key A).
    pub fn initiator() -> NodeSecretKey {
        static K: OnceLock<NodeSecretKey> = OnceLock::new();
        cached(
            &K,
            "49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee",
        )
    }

    fn all() -> &'static [NodeSecretKey] {
        static KEYS: OnceLock<Vec<NodeSecretKey>> = OnceLock::new();
        KEYS.get_or_init(|| {
            (0..=255u8)
                .map(|i| {
                    let mut b = [0x5au8; 32];
                    b[31] = i;
                    b[0] = 1;
                    NodeSecretKey::from_bytes(&b).expect("valid key")
                })
                .collect()
        })
    }

    /// The `i`-th of a fixed set of keys, for nodes in stateful targets.
    pub fn nth(i: u8) -> NodeSecretKey {
        all()[usize::from(i)].clone()
    }

    /// [`nth`] signing under [`SignatureScheme::InsecureSimulation`], for the stateful
    /// targets that fuzz a state machine's logic rather than its cryptography (the decoder
    /// targets keep real signatures): a secp256k1 signature or recovery costs more than the
    /// rest of a step, and it stood between those targets and 1,000 inputs/s. Packets,
    /// records and handshakes are still encoded, framed, hashed, encrypted and decoded in
    /// full; only the ECDSA and ECDH are stand-ins.
    pub fn sim(i: u8) -> NodeSecretKey {
        nth(i).with_signature_scheme(SignatureScheme::InsecureSimulation)
    }
}
