//! The `devp2p` binary as a user runs it: exit codes, JSON output, a node answering probes
//! and shutting down on SIGTERM, and a small localnet on each driver. 127.0.0.1 only.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn devp2p(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devp2p"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running devp2p")
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn bad_arguments_exit_2_with_a_message_naming_the_problem() {
    for (args, needle) in [
        (
            &["rlpx", "ping", "enode://abc@1.2.3.4:1"][..],
            "invalid public key",
        ),
        (&["discv4", "ping", "notanenode"][..], "enode://"),
        (&["localnet", "--nodes", "1"][..], "2..=256"),
        (&["localnet", "--duration", "5x"][..], "unit"),
        (&["node", "--caps", "eth"][..], "name/version"),
        (&["node", "--nodekey-hex", "zz"][..], "64 hex"),
        (&["node", "--max-peers", "x3"][..], "--max-peers"),
        (&["discv4", "crawl"][..], "--bootnodes"),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let out = devp2p(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_generated_key_becomes_an_enode_and_a_record_that_decodes_verified() {
    let dir = std::env::temp_dir().join(format!("devp2p-cli-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("nodekey");
    let key = key.to_str().unwrap();
    assert!(devp2p(&["key", "generate", "--out", key]).status.success());
    let again = devp2p(&["key", "generate", "--out", key]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing key is never overwritten"
    );

    let enode = devp2p(&[
        "key", "to-enode", key, "--ip", "10.1.2.3", "--tcp", "30303", "--udp", "30301",
    ]);
    let enode = String::from_utf8(enode.stdout).unwrap();
    assert!(
        enode.trim().ends_with("@10.1.2.3:30303?discport=30301"),
        "{enode}"
    );

    let enr = devp2p(&[
        "key", "to-enr", key, "--ip", "10.1.2.3", "--tcp", "30303", "--seq", "7",
    ]);
    let enr = String::from_utf8(enr.stdout).unwrap();
    let decoded = devp2p(&["enr", "decode", enr.trim()]);
    let text = String::from_utf8(decoded.stdout).unwrap();
    assert!(decoded.status.success());
    assert!(
        text.contains("(valid, scheme v4)") && text.contains("Seq:         7"),
        "{text}"
    );
    assert!(
        text.contains(enode.trim().split('?').next().unwrap()),
        "{text}"
    );

    let bad = devp2p(&["enr", "decode", "enr:AAAA"]);
    assert_eq!(bad.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_answers_rlpx_and_discv4_pings_and_stops_cleanly_on_sigterm() {
    let mut node = Command::new(env!("CARGO_BIN_EXE_devp2p"))
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--caps",
            "eth/68",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting devp2p node");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let first = json(&lines.next().unwrap().unwrap());
    assert_eq!(first["event"], "listening");
    let enode = first["enode"].as_str().unwrap().to_string();
    assert!(first["enr"].as_str().unwrap().starts_with("enr:"));
    let id = enode
        .parse::<devp2p_core::Enode>()
        .unwrap()
        .id()
        .to_string();

    let ping = devp2p(&["rlpx", "ping", &enode, "--json", "--caps", "eth/68"]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    let hello = json(String::from_utf8(ping.stdout).unwrap().trim());
    assert_eq!(hello["id"], id);
    assert_eq!(hello["caps"], serde_json::json!(["eth/68"]));
    assert_eq!(hello["version"], 5);
    assert!(hello["rtt_ms"].as_f64().unwrap() >= 0.0);

    let useless = devp2p(&["rlpx", "ping", &enode, "--caps", "snap/1"]);
    assert_eq!(useless.status.code(), Some(1));

    let pong = devp2p(&["discv4", "ping", &enode, "--json"]);
    assert!(
        pong.status.success(),
        "{}",
        String::from_utf8_lossy(&pong.stderr)
    );
    let pong = json(String::from_utf8(pong.stdout).unwrap().trim());
    assert_eq!(pong["id"], id);
    assert_eq!(pong["enr_seq"], first_seq(&first));

    let enr = devp2p(&["discv4", "requestenr", &enode]);
    assert!(
        enr.status.success(),
        "{}",
        String::from_utf8_lossy(&enr.stderr)
    );
    assert!(String::from_utf8(enr.stdout)
        .unwrap()
        .starts_with(first["enr"].as_str().unwrap()));

    let killed = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .expect("sending SIGTERM");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    for l in lines.map_while(Result::ok) {
        last = l;
        assert!(Instant::now() < deadline);
    }
    assert_eq!(json(&last)["event"], "stopped");
    assert_eq!(json(&last)["forced_closes"], 0);
    assert!(node.wait().unwrap().success());
}

/// The record's sequence number from the listening line's `enr:` text.
fn first_seq(listening: &serde_json::Value) -> u64 {
    let r: devp2p_core::Enr = listening["enr"].as_str().unwrap().parse().unwrap();
    r.seq()
}

#[test]
fn a_small_localnet_converges_on_both_drivers() {
    for driver in ["tokio", "mio"] {
        let out = devp2p(&[
            "localnet",
            "--nodes",
            "4",
            "--duration",
            "15s",
            "--driver",
            driver,
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{driver}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("OK: every one of 4 nodes"), "{stdout}");
        assert_eq!(
            stdout.lines().filter(|l| l.contains("3/3")).count(),
            4,
            "{stdout}"
        );
    }
}

#[test]
fn sim_prints_recall_and_a_digest_that_the_same_command_repeats() {
    let args = [
        "sim",
        "--nodes",
        "60",
        "--seed",
        "5",
        "--duration",
        "3m",
        "--json",
    ];
    let runs: Vec<serde_json::Value> = (0..2)
        .map(|_| {
            let out = devp2p(&args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            json(String::from_utf8_lossy(&out.stdout).trim())
        })
        .collect();
    let digest = runs[0]["digest"].as_str().expect("a digest");
    assert_eq!(digest.len(), 64);
    assert_eq!(runs[1]["digest"].as_str(), Some(digest));
    let recall = runs[0]["recall"].as_f64().expect("a recall");
    assert!(recall >= 0.95, "60 nodes after 3 minutes: recall {recall}");
    assert_eq!(runs[0]["nodes"], 60);
    let other = devp2p(&[
        "sim",
        "--nodes",
        "60",
        "--seed",
        "6",
        "--duration",
        "3m",
        "--json",
    ]);
    let other = json(String::from_utf8_lossy(&other.stdout).trim());
    assert_ne!(
        other["digest"].as_str(),
        Some(digest),
        "another seed, another digest"
    );

    let text = devp2p(&["sim", "--nodes", "60", "--seed", "5", "--duration", "3m"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("digest       {digest}")), "{text}");
    assert!(text.contains("recall"), "{text}");
}
