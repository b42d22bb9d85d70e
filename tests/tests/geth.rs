//! Interop against go-ethereum, the reference implementation: geth's own packages (through
//! the harness in `tests/interop/geth/`) and geth's `devp2p` tool, both built from the Go
//! module pinned to go-ethereum v1.17.10.

#[path = "../harness/go_build.rs"]
mod go_build;

use std::process::Command;

use go_build::{geth_binary, geth_enabled, GETH_DEVP2P};

/// The pinned module builds geth's tool, and it is the pinned version.
#[test]
fn geth_devp2p_tool_builds_from_the_pinned_module() {
    if !geth_enabled("geth_devp2p_tool_builds_from_the_pinned_module") {
        return;
    }
    let tool = geth_binary(GETH_DEVP2P);
    let out = Command::new(&tool)
        .arg("--version")
        .output()
        .expect("running geth's devp2p");
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{version}");
    assert!(version.contains("1.17.10"), "{version}");
}
