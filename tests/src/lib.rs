//! devp2p-tests: the deterministic network simulation, and (in `tests/` and `harness/`) the
//! end-to-end, interop and load tests that run real nodes on 127.0.0.1 through both drivers.
//!
//! The driver harness lives in `harness/` and is compiled into each integration test that
//! uses it (`#[path = "../harness/e2e/mod.rs"] mod e2e;`), not into this library: the
//! library is what the `devp2p` command line links, so it must not depend on the drivers.
#![forbid(unsafe_code)]

pub mod sim;
