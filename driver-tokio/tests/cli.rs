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
        (&["node", "--caps", "eht/68"][..], "did you mean eth/68?"),
        (
            &["rlpx", "ping", "--caps", "eth/70", "enode://x"][..],
            "known eth versions",
        ),
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
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("expected an RLP list"), "{err}");
    assert!(!err.contains("Rlp"), "no rlp crate names: {err}");

    // The enode scheme in upper case reads as in geth.
    let upper = enode.trim().replacen("enode://", "ENODE://", 1);
    let decoded = devp2p(&["enr", "decode", &upper]);
    assert!(
        decoded.status.success(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let text = String::from_utf8(decoded.stdout).unwrap();
    assert!(text.contains("Host:        10.1.2.3"), "{text}");
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
fn a_localnet_out_of_time_says_what_to_try() {
    let out = devp2p(&["localnet", "--nodes", "4", "--duration", "100ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
    assert!(
        err.contains(
            "not every node found every other and holds a session within 100ms: try --duration 1s"
        ),
        "{err}"
    );
}

#[test]
fn sim_with_a_nat_share_reports_the_nodes_behind_nat_advertising_their_public_endpoint() {
    let args = [
        "sim",
        "--nodes",
        "60",
        "--seed",
        "5",
        "--duration",
        "3m",
        "--nat-share",
        "0.2",
        "--json",
    ];
    let out = devp2p(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(String::from_utf8_lossy(&out.stdout).trim());
    let nat = &v["nat"];
    assert_eq!(nat["nodes"], 11, "20 % of the 57 non-boot nodes: {v}");
    assert_eq!(nat["advertising_public"], 11, "{v}");
    assert_eq!(nat["entries_public"], nat["table_entries"], "{v}");
    assert_eq!(v["nat_share"], 0.2);
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

/// A fresh directory for one test.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("devp2p-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `devp2p node --json …`: its first line read, stderr collected at the end.
struct RunningNode {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    listening: serde_json::Value,
}

impl RunningNode {
    fn start(args: &[&str]) -> RunningNode {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
            .arg("node")
            .arg("--json")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting devp2p node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = match lines.next() {
            Some(Ok(l)) => l,
            other => {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{args:?}: no listening line ({other:?}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        let listening = json(&first);
        assert_eq!(listening["event"], "listening");
        RunningNode {
            child,
            lines,
            listening,
        }
    }

    fn enode(&self) -> String {
        self.listening["enode"].as_str().unwrap().to_string()
    }

    /// SIGTERM, then the exit status and everything it wrote to stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("sending SIGTERM");
        assert!(killed.success());
        for _ in self.lines.by_ref() {}
        let out = self.child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Waits for a child at most `limit`; kills it and fails past that.
fn wait_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_node_on_a_data_directory_in_use_is_refused_naming_it() {
    let dir = temp_dir("lock");
    let d = dir.to_str().unwrap();
    for driver in ["tokio", "mio"] {
        let first = RunningNode::start(&["--listen", "127.0.0.1:0", "--datadir", d]);
        let second = devp2p(&[
            "node",
            "--listen",
            "127.0.0.1:0",
            "--datadir",
            d,
            "--driver",
            driver,
        ]);
        let err = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{driver}: {err}");
        assert!(
            err.contains(d) && err.contains("in use by another node"),
            "{driver}: {err}"
        );
        let (status, _) = first.stop();
        assert!(status.success());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn start_up_failures_say_what_is_wrong_and_create_no_key() {
    let dir = temp_dir("startup");
    // A --nodekey in a directory that does not exist: refused, nothing created.
    let missing = dir.join("no-such-dir").join("nodekey");
    let out = devp2p(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "--nodekey",
        missing.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.join("no-such-dir").exists(), "no directory is created");

    // A --datadir that is a file.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = devp2p(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "--datadir",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a directory"), "{err}");

    // A key file of 32 raw bytes: what it holds, what it must hold, how to convert it.
    let raw = dir.join("raw.key");
    std::fs::write(&raw, [0x11u8; 32]).unwrap();
    let out = devp2p(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "--nodekey",
        raw.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("32 raw bytes") && err.contains("64 hex characters") && err.contains("xxd"),
        "{err}"
    );

    // A port in use: which socket, which address, and no key written in the data directory.
    let node = RunningNode::start(&["--listen", "127.0.0.1:0"]);
    let enode: devp2p_core::Enode = node.enode().parse().unwrap();
    let addr = enode.tcp_addr().unwrap();
    let data = dir.join("data");
    let out = devp2p(&[
        "node",
        "--listen",
        &addr.to_string(),
        "--datadir",
        data.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("could not bind TCP on {addr}")),
        "{err}"
    );
    assert!(
        !data.join("nodekey").exists(),
        "a failed start writes no key"
    );
    let _ = node.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn node_warns_about_a_throwaway_identity_and_an_advertised_loopback() {
    let node = RunningNode::start(&["--listen", "0.0.0.0:0"]);
    assert!(node.enode().contains("@127.0.0.1:"), "{}", node.enode());
    let (status, err) = node.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("advertising 127.0.0.1")
            && err.contains("--nat extip:")
            && err.contains("--nat upnp|pmp|any"),
        "{err}"
    );
    assert!(
        err.contains("throwaway identity") && err.contains("--datadir"),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes in a pipe: {err:?}"
    );

    let dir = temp_dir("nat");
    let node = RunningNode::start(&[
        "--listen",
        "0.0.0.0:0",
        "--nat",
        "extip:10.9.8.7",
        "--datadir",
        dir.to_str().unwrap(),
    ]);
    assert!(node.enode().contains("@10.9.8.7:"), "{}", node.enode());
    let r: devp2p_core::Enr = node.listening["enr"].as_str().unwrap().parse().unwrap();
    assert_eq!(r.ip4(), Some("10.9.8.7".parse().unwrap()));
    let (status, err) = node.stop();
    assert!(status.success(), "{err}");
    assert!(!err.contains("advertising 127.0.0.1"), "{err}");
    assert!(!err.contains("throwaway"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);

    for (nat, needle) in [
        ("stun", "STUN"),
        ("extip:nonsense", "not an IP address"),
        ("pmp:::1", "IPv4"),
        ("foo", "unknown mechanism"),
    ] {
        let out = devp2p(&["node", "--nat", nat]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{nat}: {err}");
        assert!(
            err.contains(needle) && err.contains("accepted: none, extip:<IP>, upnp"),
            "{nat}: {err}"
        );
    }

    // A router is asked only by a node listening on an unspecified or public address: on
    // loopback nothing is mapped, and no router is sent anything (geth's rule).
    let mut node = RunningNode::start(&["--listen", "127.0.0.1:0", "--nat", "any"]);
    let disabled = node.wait_for_line(|v| v["event"] == "nat_disabled", Duration::from_secs(10));
    assert_eq!(disabled["listen"], "127.0.0.1");
    let (status, err) = node.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("no ports are mapped"), "{err}");
}

#[test]
fn a_corrupt_node_database_is_set_aside_without_overwriting_an_earlier_one() {
    let dir = temp_dir("nodedb");
    std::fs::write(dir.join("nodes.json.bad"), "the first bad one").unwrap();
    std::fs::write(dir.join("nodes.json"), "{ not json").unwrap();
    let node = RunningNode::start(&[
        "--listen",
        "127.0.0.1:0",
        "--datadir",
        dir.to_str().unwrap(),
    ]);
    let (status, err) = node.stop();
    assert!(status.success(), "{err}");
    let aside = dir.join("nodes.json.bad.1");
    assert!(
        err.contains(&format!("moved it to {}", aside.display())),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "{ not json");
    assert_eq!(
        std::fs::read_to_string(dir.join("nodes.json.bad")).unwrap(),
        "the first bad one"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_stdout_ends_the_tool_quietly_not_with_a_panic() {
    // `devp2p node --json | head -1`: the reader goes after the first line; the node's next
    // line (a lookup, or a peer brought by a ping) finds stdout closed. It shuts down and
    // exits 0.
    for driver in ["tokio", "mio"] {
        let node = RunningNode::start(&[
            "--listen",
            "127.0.0.1:0",
            "--caps",
            "eth/68",
            "--driver",
            driver,
        ]);
        let enode = node.enode();
        let RunningNode {
            mut child, lines, ..
        } = node;
        drop(lines);
        // It may be gone already (a lookup's line came first): the ping's result is no matter.
        let _ = devp2p(&["rlpx", "ping", &enode, "--caps", "eth/68"]);
        let status = wait_within(&mut child, Duration::from_secs(20));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!err.contains("panicked"), "{driver}: {err}");
        assert_eq!(status.code(), Some(0), "{driver}: {err}");
    }
    // Commands that print their result: stdout closed before they write a line.
    for args in [&["key", "generate"][..], &["localnet", "--nodes", "2"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let status = wait_within(&mut child, Duration::from_secs(30));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
    }
}

/// `enode` with its key replaced by another valid one: the same address, the wrong node.
fn with_wrong_key(enode: &str) -> (String, String) {
    let real: devp2p_core::Enode = enode.parse().unwrap();
    let other = devp2p_core::NodeSecretKey::from_bytes(&[7; 32]).unwrap();
    let fake = devp2p_core::Enode::new(
        *other.public(),
        real.ip().unwrap(),
        real.tcp_port,
        real.udp_port,
    );
    (fake.to_string(), other.id().to_string())
}

#[test]
fn probes_of_a_live_node_under_the_wrong_key_say_so() {
    let node = RunningNode::start(&["--listen", "127.0.0.1:0", "--caps", "eth/68"]);
    let enode = node.enode();
    let real_id = enode
        .parse::<devp2p_core::Enode>()
        .unwrap()
        .id()
        .to_string();
    let (fake, fake_id) = with_wrong_key(&enode);
    let addr = fake.split('@').nth(1).unwrap().to_string();

    for cmd in ["ping", "requestenr"] {
        let out = devp2p(&["discv4", cmd, &fake, "--timeout", "1500ms"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains(&format!(
                "the node at {addr} answered, but as node {real_id}"
            )) && err.contains(&format!("not {fake_id}"))
                && err.contains("wrong or stale"),
            "{cmd}: {err}"
        );
    }

    let out = devp2p(&["rlpx", "ping", &fake, "--timeout", "3s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the node at {addr} closed the connection during the RLPx handshake, before its auth-ack"
        )) && err.contains("stale or wrong"),
        "{err}"
    );

    // No capability in common: both sides' capabilities in the message.
    let out = devp2p(&["rlpx", "ping", &enode, "--caps", "snap/1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no capability in common")
            && err.contains("the remote offers eth/68")
            && err.contains("we offered snap/1"),
        "{err}"
    );
    let _ = node.stop();
}

#[test]
fn rlpx_ping_tells_a_silent_server_and_a_non_rlpx_server_from_a_node() {
    let key = devp2p_core::NodeSecretKey::from_bytes(&[9; 32]).unwrap();
    // A server that accepts and says nothing: the auth-ack never comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let enode = devp2p_core::Enode::new(
        *key.public(),
        silent_addr.ip(),
        silent_addr.port(),
        silent_addr.port(),
    );
    let out = devp2p(&["rlpx", "ping", &enode.to_string(), "--timeout", "500ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no RLPx auth-ack within 500ms"), "{err}");
    drop(silent);

    // An HTTP server: it answers our auth with an HTTP error and closes.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_addr = http.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut c, _)) = http.accept() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let enode = devp2p_core::Enode::new(
        *key.public(),
        http_addr.ip(),
        http_addr.port(),
        http_addr.port(),
    );
    let out = devp2p(&["rlpx", "ping", &enode.to_string(), "--timeout", "5s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the server at {http_addr} does not speak RLPx (its reply is not an RLPx auth-ack"
        )),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn discovery_without_an_answering_bootnode_fails_and_lists_the_bootnodes() {
    // A UDP socket that never answers stands in for a dead bootnode.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    let key = devp2p_core::NodeSecretKey::from_bytes(&[5; 32]).unwrap();
    let boot = devp2p_core::Enode::new(*key.public(), "127.0.0.1".parse().unwrap(), port, port)
        .to_string();
    let target = devp2p_core::Enode::new(
        *devp2p_core::NodeSecretKey::from_bytes(&[6; 32])
            .unwrap()
            .public(),
        "127.0.0.1".parse().unwrap(),
        1,
        1,
    )
    .to_string();
    for args in [
        &["discv4", "crawl", "--bootnodes", &boot, "--timeout", "2s"][..],
        &[
            "discv4",
            "resolve",
            &target,
            "--bootnodes",
            &boot,
            "--timeout",
            "2s",
        ][..],
    ] {
        let out = devp2p(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("no bootnode answered within 2s") && err.contains(&boot),
            "{args:?}: {err}"
        );
    }
    // A ping nobody answers says how long it waited.
    let out = devp2p(&["discv4", "ping", &boot, "--timeout", "500ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no Pong from 127.0.0.1:{port} within 500ms")),
        "{err}"
    );
    drop(dead);

    // A crawl that reaches a live node succeeds and lists it.
    let node = RunningNode::start(&["--listen", "127.0.0.1:0"]);
    let enode = node.enode();
    let out = devp2p(&["discv4", "crawl", "--bootnodes", &enode, "--timeout", "2s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&enode),
        "{err}"
    );
    // With --out, geth's nodes.json format: the node checked with ENRRequest, by id.
    let dir = temp_dir("crawl");
    let file = dir.join("nodes.json");
    let out = devp2p(&[
        "discv4",
        "crawl",
        "--bootnodes",
        &enode,
        "--timeout",
        "2s",
        "--out",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 answered ENRRequest (written)"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let doc = json(&text);
    let id = enode
        .parse::<devp2p_core::Enode>()
        .unwrap()
        .id()
        .to_string();
    let entry = &doc[&id];
    assert_eq!(entry["record"], node.listening["enr"], "{text}");
    assert_eq!(entry["seq"], first_seq(&node.listening), "{text}");
    assert_eq!(entry["score"], 1, "{text}");
    let when = entry["lastCheck"].as_str().unwrap();
    assert!(when.len() == 20 && when.ends_with('Z'), "RFC 3339: {text}");
    assert_eq!(entry["firstResponse"], when);
    assert_eq!(entry["lastResponse"], when);
    assert_eq!(doc.as_object().unwrap().len(), 1, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = node.stop();
}

/// A valid public key nobody on this machine holds.
const STRANGER_KEY: &str = "a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c";

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// How long a node may take to report what a test waits for (a failed dial to 127.0.0.1
/// takes milliseconds).
const WAIT: Duration = Duration::from_secs(10);

impl RunningNode {
    /// The next `--json` line for which `want` holds; fails the test after `limit` (the node
    /// is killed then, which ends the read).
    fn wait_for_line(
        &mut self,
        want: impl Fn(&serde_json::Value) -> bool,
        limit: Duration,
    ) -> serde_json::Value {
        use std::sync::atomic::{AtomicBool, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let (pid, flag) = (self.child.id().to_string(), done.clone());
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if !flag.load(Ordering::SeqCst) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        });
        let mut seen = Vec::new();
        for line in self.lines.by_ref() {
            let Ok(line) = line else { break };
            let v = json(&line);
            if want(&v) {
                done.store(true, Ordering::SeqCst);
                return v;
            }
            seen.push(line);
        }
        panic!("no such line within {limit:?}; saw {seen:#?}");
    }
}

/// A static peer that cannot be reached, and one this node will never dial, are each
/// reported: as a `connection_failed` JSON line, and as an info log line without --json.
#[test]
fn failed_static_dials_are_reported_as_events_and_log_lines_on_both_drivers() {
    let closed = format!("enode://{STRANGER_KEY}@127.0.0.1:{}", closed_port());
    for driver in ["tokio", "mio"] {
        // --json: the event line.
        let mut node = RunningNode::start(&[
            "--listen",
            "127.0.0.1:0",
            "--static",
            &closed,
            "--driver",
            driver,
        ]);
        let line = node.wait_for_line(|v| v["event"] == "connection_failed", WAIT);
        assert_eq!(line["static"], true, "{driver}: {line}");
        assert_eq!(line["direction"], "outbound", "{driver}: {line}");
        let error = line["error"].as_str().unwrap_or_default();
        assert!(error.contains("TCP connect failed"), "{driver}: {line}");
        node.stop();

        // --max-peers 0: the static peer is never dialled, and says so at once.
        let mut node = RunningNode::start(&[
            "--listen",
            "127.0.0.1:0",
            "--static",
            &closed,
            "--max-peers",
            "0",
            "--driver",
            driver,
        ]);
        let line = node.wait_for_line(|v| v["event"] == "connection_failed", WAIT);
        let error = line["error"].as_str().unwrap_or_default();
        assert!(error.contains("dials nobody"), "{driver}: {line}");
        node.stop();

        // Without --json, at the default log level: an info line naming the peer.
        let mut child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
            .args(["node", "--listen", "127.0.0.1:0", "--static", &closed])
            .args(["--driver", driver])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("dial to static peer") && l.contains("INFO") => break true,
                Ok(l) => seen.push(l),
                Err(_) => break false,
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found,
            "{driver}: no info line for the failed dial in {seen:#?}"
        );
    }
}
