//! devp2p-core: the Ethereum peer-to-peer stack as sans-IO state machines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod discv4;
pub mod enode;
pub mod enr;
pub mod identity;
pub mod keccak;
pub mod rlp_ext;
pub mod rlpx;
pub mod time;

pub use enode::{Enode, EnodeError, Host};
pub use enr::{Enr, EnrBuilder, EnrError};
pub use identity::{KeyError, NodeId, NodePublicKey, NodeSecretKey};
pub use time::Instant;
