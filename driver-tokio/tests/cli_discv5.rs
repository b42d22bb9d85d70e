//! `devp2p discv5 …` and `devp2p node`'s discovery flags as a user runs them: a `listen`
//! bootnode answers `ping` and `resolve`, a `crawl` writes geth's nodes.json, probes that
//! reach nobody exit 1 saying what they tried, and a v5-only `node` and a default one
//! (both versions) find and connect to each other. 127.0.0.1 only.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use devp2p_core::Enr;

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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A running `devp2p … --json` whose first line said `listening`; killed when dropped.
struct Running {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
    listening: serde_json::Value,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
            .args(args)
            .arg("--json")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting devp2p");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = json(&lines.next().expect("a listening line").unwrap());
        assert_eq!(listening["event"], "listening", "{args:?}");
        Running {
            child,
            lines,
            listening,
        }
    }

    fn enr(&self) -> String {
        self.listening["enr"].as_str().unwrap().to_string()
    }

    fn enode(&self) -> String {
        self.listening["enode"].as_str().unwrap().to_string()
    }

    /// Reads lines until one satisfies `want`, for at most `limit` (then kills the child,
    /// which ends the read, and fails).
    fn wait_for(&mut self, want: impl Fn(&serde_json::Value) -> bool, limit: Duration) {
        let pid = self.child.id().to_string();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        });
        let mut seen = Vec::new();
        for line in self.lines.by_ref() {
            let Ok(line) = line else { break };
            if want(&json(&line)) {
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            seen.push(line);
        }
        panic!("no such line within {limit:?}; saw {seen:#?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_listening_bootnode_answers_ping_and_resolve_and_a_crawl_writes_nodes_json() {
    let boot = Running::start(&["discv5", "listen", "--listen", "127.0.0.1:0"]);
    let record: Enr = boot.enr().parse().unwrap();
    let id = record.node_id().to_string();
    let second = Running::start(&[
        "discv5",
        "listen",
        "--listen",
        "127.0.0.1:0",
        "--bootnodes",
        &boot.enr(),
    ]);

    let out = devp2p(&["discv5", "ping", &boot.enr(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pong = json(text(&out.stdout).trim());
    assert_eq!(pong["id"], id);
    assert_eq!(pong["enr_seq"], record.seq());
    assert!(pong["seen_as"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(pong["rtt_ms"].as_f64().unwrap() >= 0.0);
    // By enode URL too: the handshake then needs only the key.
    let out = devp2p(&["discv5", "ping", &boot.enode()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("id:      {id}")));

    let out = devp2p(&["discv5", "resolve", &boot.enode()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().next(), Some(boot.enr().as_str()));

    // The crawl starts from the first and finds the second through it; both answer
    // FINDNODE [0] and are written in geth's nodes.json format.
    let dir = std::env::temp_dir().join(format!("devp2p-cli-v5-crawl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nodes.json");
    let out = devp2p(&[
        "discv5",
        "crawl",
        "--bootnodes",
        &boot.enr(),
        "--timeout",
        "3s",
        "--out",
        file.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 answered FINDNODE [0] (written)"), "{err}");
    let doc = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(doc.as_object().unwrap().len(), 2, "{doc}");
    assert_eq!(doc[&id]["record"], boot.enr());
    let second_id = second.enr().parse::<Enr>().unwrap().node_id().to_string();
    assert_eq!(doc[&second_id]["record"], second.enr());
    assert_eq!(doc[&id]["score"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn probes_that_reach_nobody_exit_1_saying_what_they_tried() {
    // A UDP socket that never answers stands in for a dead node.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    let key = devp2p_core::NodeSecretKey::from_bytes(&[7; 32]).unwrap();
    let record = Enr::builder()
        .ip("127.0.0.1".parse().unwrap())
        .udp4(port)
        .sign(&key)
        .unwrap()
        .to_string();
    let out = devp2p(&["discv5", "ping", &record, "--timeout", "500ms"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no PONG from 127.0.0.1:{port} within 500ms")),
        "{err}"
    );
    for args in [
        &["discv5", "crawl", "--bootnodes", &record, "--timeout", "1s"][..],
        &[
            "discv5",
            "resolve",
            &record,
            "--bootnodes",
            &record,
            "--timeout",
            "1s",
        ][..],
    ] {
        let out = devp2p(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("no bootnode answered within 1s") && err.contains(&record),
            "{args:?}: {err}"
        );
    }
    drop(dead);
    // Bad arguments are usage errors (status 2) naming the problem.
    for (args, needle) in [
        (&["discv5", "ping", "notanode"][..], "enode://"),
        (&["discv5", "crawl"][..], "--bootnodes"),
        (
            &["discv5", "ping", "enode://a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c@127.0.0.1:30303?discport=0"][..],
            "no UDP port",
        ),
    ] {
        let out = devp2p(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_v5_only_node_and_a_node_running_both_versions_connect() {
    let v5 = Running::start(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "--no-discv4",
        "--caps",
        "eth/68",
    ]);
    // discv4 does not run there; discv5 does.
    let out = devp2p(&["discv4", "ping", &v5.enode(), "--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = devp2p(&["discv5", "ping", &v5.enr()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A default node (both versions) with the v5-only one as its bootnode finds it over
    // v5 and dials it; both report the peer.
    let mut both = Running::start(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "--caps",
        "eth/68",
        "--bootnodes",
        &v5.enr(),
    ]);
    let v5_id = v5.enr().parse::<Enr>().unwrap().node_id().to_string();
    both.wait_for(
        |v| v["event"] == "peer_added" && v["id"] == v5_id,
        Duration::from_secs(20),
    );
    let started = Instant::now();
    let mut v5 = v5;
    v5.wait_for(|v| v["event"] == "peer_added", Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn sim_over_discv5_converges_and_the_same_command_repeats_its_digest() {
    let args = [
        "sim",
        "--nodes",
        "30",
        "--seed",
        "4",
        "--duration",
        "3m",
        "--discovery",
        "v5",
        "--json",
    ];
    let runs: Vec<serde_json::Value> = (0..2)
        .map(|_| {
            let out = devp2p(&args);
            assert!(out.status.success(), "{}", text(&out.stderr));
            json(text(&out.stdout).trim())
        })
        .collect();
    assert_eq!(runs[0]["discovery"], "discv5");
    assert_eq!(runs[0]["digest"], runs[1]["digest"]);
    let recall = runs[0]["recall"].as_f64().unwrap();
    assert!(
        recall >= 0.95,
        "30 v5 nodes after 3 minutes: recall {recall}"
    );
    let v4 = devp2p(&[
        "sim",
        "--nodes",
        "30",
        "--seed",
        "4",
        "--duration",
        "3m",
        "--json",
    ]);
    let v4 = json(text(&v4.stdout).trim());
    assert_eq!(v4["discovery"], "discv4");
    assert_ne!(v4["digest"], runs[0]["digest"]);
    let bad = devp2p(&["sim", "--discovery", "v6"]);
    assert_eq!(bad.status.code(), Some(2));
}
