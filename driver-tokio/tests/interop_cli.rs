//! The `devp2p` probes against an independent implementation, @ethereumjs/devp2p (pinned in
//! `tests/interop/package.json`): `rlpx ping` and `discv4 ping` print its id. 127.0.0.1
//! only; `DEVP2P_SKIP_INTEROP=1` skips the test. See `tests/INTEROP.md`.

#[path = "../../tests/harness/interop.rs"]
mod interop;

use std::process::Command;
use std::time::Duration;

use devp2p_core::Enode;
use interop::{is, run_bounded, EjsPeer, Finished};
use serde_json::{json, Value};

/// Longest one probe may run (each has its own `--timeout` well below this).
const PROBE_LIMIT: Duration = Duration::from_secs(20);
/// Longest wait for the ethereumjs peer to report what it saw.
const WAIT: Duration = Duration::from_secs(10);

fn devp2p(args: &[&str]) -> Finished {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_devp2p"));
    cmd.args(args).env("RUST_LOG", "warn");
    run_bounded(cmd, PROBE_LIMIT).unwrap_or_else(|e| panic!("devp2p {args:?}: {e}"))
}

fn json_line(out: &Finished, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        out.stderr
    );
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: not one JSON object ({e}): {}", out.stdout))
}

#[test]
fn rlpx_ping_and_discv4_ping_print_the_ethereumjs_id() {
    if !interop::ready("rlpx_ping_and_discv4_ping_print_the_ethereumjs_id") {
        return;
    }
    let js = EjsPeer::start(&["--rlpx", "--dpt"]);
    let enode: Enode = js
        .enode()
        .parse()
        .expect("ethereumjs prints a valid enode URL");
    let id = enode.id().to_string();

    // ethereumjs accepts us only with a capability in common.
    let out = devp2p(&[
        "rlpx",
        "ping",
        js.enode(),
        "--caps",
        "eth/68",
        "--json",
        "--timeout",
        "5s",
    ]);
    let hello = json_line(&out, "rlpx ping");
    assert_eq!(hello["id"], id.as_str(), "{hello}\n{}", js.dump());
    assert_eq!(hello["client"], js.client(), "{hello}");
    assert_eq!(hello["version"], 5, "{hello}");
    assert_eq!(hello["caps"], json!(["eth/68"]), "{hello}");
    assert_eq!(hello["listen_port"], js.listening()["tcp"], "{hello}");
    // What ethereumjs saw: our Hello, then our Disconnect(requested).
    let seen = js.wait_for("ethereumjs to accept the probe", WAIT, |e| {
        e["event"] == "peer_added"
    });
    assert!(
        seen["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("devp2p-sansio/")),
        "{seen}"
    );
    let probe = seen["pubkey"].as_str().expect("a pubkey").to_string();
    let removed = js.wait_for("ethereumjs to hear the probe leave", WAIT, |e| {
        is(e, "peer_removed", &probe)
    });
    assert_eq!(removed["reason"], 0, "{removed}");
    assert_eq!(removed["by_us"], false, "{removed}");

    let out = devp2p(&["discv4", "ping", js.enode(), "--json", "--timeout", "5s"]);
    let pong = json_line(&out, "discv4 ping");
    assert_eq!(pong["id"], id.as_str(), "{pong}\n{}", js.dump());
    assert!(
        pong["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{pong}"
    );
    // ethereumjs does not implement EIP-868: its Pong carries no record sequence number…
    assert_eq!(pong["enr_seq"], Value::Null, "{pong}");
    js.wait_for("ethereumjs to log the probe's Ping", WAIT, |e| {
        e["event"] == "udp_in" && e["type"] == "ping"
    });

    // …and an ENRRequest is a packet type it does not know: no answer.
    let out = devp2p(&["discv4", "requestenr", js.enode(), "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("no ENRResponse"), "{}", out.stderr);
    js.wait_for("ethereumjs to reject the ENRRequest", WAIT, |e| {
        e["event"] == "udp_in_undecodable"
            && e["error"]
                .as_str()
                .is_some_and(|s| s.contains("Invalid type: 5"))
    });
}
