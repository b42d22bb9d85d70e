//! devp2p-tests: the harnesses that run real nodes, shared by the end-to-end, interop and
//! load tests (in `tests/`) and the driver benchmarks (in `benches/`).
//!
//! - [`e2e`]: one synchronous [`Harness`](e2e::Harness) API over both drivers, so each
//!   scenario in [`e2e::scenarios`] is written once and run against devp2p-tokio and
//!   devp2p-mio, on 127.0.0.1 only, every wait bounded in time.
#![forbid(unsafe_code)]

pub mod e2e;
