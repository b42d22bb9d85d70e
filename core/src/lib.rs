//! devp2p-core: the Ethereum peer-to-peer stack as sans-IO state machines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod enode;
pub mod identity;
pub mod keccak;
pub mod rlpx;

pub use enode::{Enode, EnodeError, Host};
pub use identity::{KeyError, NodeId, NodePublicKey, NodeSecretKey};
