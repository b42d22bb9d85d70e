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
/// be built for it by the corpus generator.
pub mod keys {
    use devp2p_core::NodeSecretKey;

    /// The recipient of auth messages and the sender of frames (the EIP-8 vectors' key B).
    pub fn recipient() -> NodeSecretKey {
        NodeSecretKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
            .expect("valid key")
    }

    /// The initiator (the EIP-8 vectors' key A).
    pub fn initiator() -> NodeSecretKey {
        NodeSecretKey::from_hex("49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee")
            .expect("valid key")
    }

    /// The `i`-th of a fixed set of keys, for nodes in stateful targets.
    pub fn nth(i: u8) -> NodeSecretKey {
        let mut b = [0x5au8; 32];
        b[31] = i;
        b[0] = 1;
        NodeSecretKey::from_bytes(&b).expect("valid key")
    }
}
