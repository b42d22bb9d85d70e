//! What both drivers share (`devp2p-tokio` uses it from here too), so that each of them is
//! only its event loop. **Not part of the public API** (no semver promise, hidden from the
//! docs): it is public only so that `devp2p-tokio` and the `devp2p` tool can use it.
//! Applications use the items re-exported at the crate root.
//!
//! None of it decides anything about the protocol:
//!
//! - [`Engine`]: a core [`Node`](devp2p_core::node::Node) between non-blocking sockets. It
//!   feeds the node bytes, datagrams, connects and closes, drains it in the documented order
//!   (datagrams, actions, events), and keeps backpressure in bytes. It decides nothing about
//!   the protocol.
//! - [`Clock`]: monotonic milliseconds since start as the core's `Instant`, and unix seconds.
//! - [`os_seeded_rng`]: the one read of OS entropy, seeding the node's ChaCha20 stream.
//! - [`keyfile`]: the node key file (geth's format), created on first start.
//! - [`NodeDbFile`]: the node database as a versioned file; a corrupt one is set aside with a
//!   warning and the node starts empty; writes go through a temporary file and a rename.
//! - [`DriverConfig`] and [`prepare`]: start-up shared by both drivers.
//! - [`nat`] and [`gateway`]: the gateway I/O of port mapping (UPnP, NAT-PMP) on a helper
//!   thread, for the node's requests; the policy is the core's.
//! - [`DnsResolver`]: DNS discovery's TXT lookups (hickory-resolver), which the drivers run
//!   off their loops.

pub mod api;
pub mod clock;
pub mod config;
pub mod dns;
pub mod engine;
pub mod entropy;
pub mod fsutil;
pub mod gateway;
pub mod keyfile;
pub mod nat;
pub mod nodedb_file;

pub use api::{
    AddStaticError, Discv5Failure, LookupError, RecordFailure, SendFailure, Stopped, TalkFailure,
};
pub use clock::Clock;
pub use config::{prepare, DataDirLock, DriverConfig, KeySource, Prepared, StartError, Transport};
pub use dns::{DnsResolver, DnsResolverConfig};
pub use engine::{
    Backlog, DriverStats, Engine, Interest, Io, LogTarget, ShutdownReport, Sockets, Stats, Stream,
};
pub use entropy::os_seeded_rng;
pub use nodedb_file::NodeDbFile;

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, unique per test and process.
    pub fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("devp2p-common-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
