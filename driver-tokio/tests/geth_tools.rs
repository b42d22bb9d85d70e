//! go-ethereum's own `devp2p` tool (v1.17.10, built from the pinned module by
//! `tests/harness/go_build.rs`) against our `devp2p node` on each driver, and our probes
//! against geth's discovery nodes (`devp2p discv4 listen`): geth's `discv4 test` suite, its
//! `rlpx ping`, `discv4 ping`, `requestenr`, `resolve` and `crawl`, ours against geth, and
//! `nodes.json` files read by geth's `nodeset info` and `discv4 crawl`; geth's `discv4 test`
//! against our `discv4 listen`, and geth's `discv4 resolve-json` and ours writing the same
//! set from the same input; `devp2p node` bootstrapping from a tree geth's `dns sign` signed,
//! served by dnsmasq. 127.0.0.1 and
//! 127.0.0.2 only (geth's tools are always given `--bootnodes`, else they would start from
//! the mainnet bootnodes). `DEVP2P_SKIP_GETH=1` skips these tests. See `tests/INTEROP.md`.

#[path = "support/dns_walk.rs"]
mod dns_walk;
#[path = "support/dnsmasq.rs"]
mod dnsmasq;
#[path = "../../tests/harness/geth.rs"]
mod geth_peer;
#[path = "../../tests/harness/interop.rs"]
mod interop;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use devp2p_core::{Enode, Enr, NodeSecretKey};
use geth_peer::go_build::GETH_DEVP2P;
use geth_peer::{geth_binary, geth_enabled};
use interop::{run_bounded, Finished};
use serde_json::Value;

/// Longest one command (a probe, a crawl, the whole `discv4 test` suite) may run; each has
/// its own shorter timeout where it takes one.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// Longest a node may take to print its address.
const START_LIMIT: Duration = Duration::from_secs(20);
/// Longest a resolve or a crawl is repeated until it finds the second node through the
/// first: the first serves a node that pinged it in its Neighbours only once it has
/// revalidated it (geth's rule and ours), which takes a few seconds (one random entry every
/// 3 s on average).
const FIND_LIMIT: Duration = Duration::from_secs(30);
/// The cases of geth v1.17.10's `discv4 test` (`cmd/devp2p/internal/v4test`).
const V4TEST_CASES: usize = 15;
/// The cases of geth v1.17.10's `discv5 test` (`cmd/devp2p/internal/v5test`).
const V5TEST_CASES: usize = 10;
/// The second address geth's `discv4 test` sends from (loopback on Linux).
const LISTEN2: &str = "127.0.0.2";

fn geth(args: &[&str]) -> Finished {
    let mut cmd = Command::new(geth_binary(GETH_DEVP2P));
    cmd.args(args);
    run_bounded(cmd, COMMAND_LIMIT).unwrap_or_else(|e| panic!("geth's devp2p {args:?}: {e}"))
}

/// geth's `devp2p discv4 <sub>`, always with `--bootnodes` (empty for none: geth's tools
/// fall back to the mainnet bootnodes without it) and a socket on 127.0.0.1. `rest` holds
/// the subcommand's flags and then its arguments (urfave/cli reads no flags after an
/// argument).
fn geth_discv4(sub: &str, bootnodes: &str, rest: &[&str]) -> Finished {
    let boot = format!("--bootnodes={bootnodes}");
    let mut args = vec!["discv4", sub, &boot, "--addr", "127.0.0.1:0"];
    args.extend_from_slice(rest);
    geth(&args)
}

fn ours(args: &[&str]) -> Finished {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_devp2p"));
    cmd.args(args).env("RUST_LOG", "warn");
    run_bounded(cmd, COMMAND_LIMIT).unwrap_or_else(|e| panic!("devp2p {args:?}: {e}"))
}

fn ok(out: &Finished, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout.clone()
}

/// A child process whose first stdout line is its address; killed on drop. The rest of its
/// stdout is drained so that it never blocks on a full pipe.
struct Running {
    child: Child,
    first: String,
}

impl Running {
    fn start(mut cmd: Command, what: &str) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let first = match rx.recv_timeout(START_LIMIT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("{what} printed no address within {START_LIMIT:?}: {other:?}");
            }
        };
        Running { child, first }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our `devp2p node --json` on `driver`.
struct OurNode {
    _proc: Running,
    enode: String,
    enr: String,
    id: String,
}

impl OurNode {
    fn start(driver: &str, extra: &[&str]) -> OurNode {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devp2p"));
        cmd.args([
            "node",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--driver",
            driver,
        ])
        .args(extra)
        .env("RUST_LOG", "warn");
        let proc = Running::start(cmd, &format!("devp2p node --driver {driver}"));
        let line: Value = serde_json::from_str(&proc.first)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", proc.first));
        assert_eq!(line["event"], "listening", "{line}");
        let enode = line["enode"].as_str().expect("an enode").to_string();
        let enr = line["enr"].as_str().expect("a record").to_string();
        let id = enode.parse::<Enode>().unwrap().id().to_string();
        OurNode {
            _proc: proc,
            enode,
            enr,
            id,
        }
    }

    /// Our enode URL with the UDP port of a closed socket: a stale address that only a
    /// lookup can correct.
    fn stale_enode(&self) -> String {
        let e: Enode = self.enode.parse().unwrap();
        Enode::new(e.public_key, e.ip().unwrap(), 1, dead_udp_port()).to_string()
    }
}

/// geth's `devp2p discv4 listen`: a discovery-only node (no RLPx), printing its record.
struct GethNode {
    _proc: Running,
    record: Enr,
}

impl GethNode {
    fn start(bootnodes: &str) -> GethNode {
        let mut cmd = Command::new(geth_binary(GETH_DEVP2P));
        cmd.args([
            "discv4",
            "listen",
            &format!("--bootnodes={bootnodes}"),
            "--addr",
            "127.0.0.1:0",
        ]);
        let proc = Running::start(cmd, "geth's devp2p discv4 listen");
        let record: Enr = proc
            .first
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("geth printed no record ({e}): {}", proc.first));
        GethNode {
            _proc: proc,
            record,
        }
    }

    fn enr(&self) -> String {
        self.record.to_string()
    }

    fn id(&self) -> String {
        self.record.node_id().to_string()
    }

    fn udp(&self) -> u16 {
        self.record.udp4().expect("geth's record has a UDP port")
    }
}

/// Runs `attempt` until it gives a value, failing with `what` and the last attempt's story
/// after [`FIND_LIMIT`].
fn until<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + FIND_LIMIT;
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: not within {FIND_LIMIT:?}; the last attempt: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Whether a `nodes.json` holds every one of `ids`.
fn holds_all(path: &Path, ids: &[&str]) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let entries = read_nodes_json(path);
    match ids.iter().find(|id| !entries.contains_key(**id)) {
        Some(missing) => Err(format!("{missing} is missing:\n{text}")),
        None => Ok(()),
    }
}

/// A UDP port on 127.0.0.1 that nothing listens on (bound, then released).
fn dead_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("devp2p-geth-tools-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs geth's `discv4 test` against our node on `driver` and fails listing every case that
/// did not pass.
fn v4test_against_our_node(driver: &str) {
    let node = OurNode::start(driver, &[]);
    let out = geth(&[
        "discv4",
        "test",
        "--tap",
        "--remote",
        &node.enode,
        "--listen1",
        "127.0.0.1",
        "--listen2",
        LISTEN2,
    ]);
    check_suite(&out, "discv4", driver, V4TEST_CASES);
}

/// Runs geth's `discv5 test` against our node (both versions on, the default) on `driver`
/// and fails listing every case that did not pass.
fn v5test_against_our_node(driver: &str) {
    let node = OurNode::start(driver, &[]);
    let out = geth(&[
        "discv5",
        "test",
        "--tap",
        "--listen1",
        "127.0.0.1",
        "--listen2",
        LISTEN2,
        &node.enr,
    ]);
    check_suite(&out, "discv5", driver, V5TEST_CASES);
}

/// Reads a geth test suite's TAP output and fails unless every one of its `cases` passed.
fn check_suite(out: &Finished, suite: &str, driver: &str, cases: usize) {
    // TAP: "1..15", then "ok 1 Ping/Basic" or "not ok 1 Ping/Basic" per case.
    let total: Option<usize> = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("1.."))
        .and_then(|n| n.trim().parse().ok());
    let case = |l: &str, prefix: &str| {
        l.strip_prefix(prefix)
            .and_then(|rest| rest.split_once(' '))
            .filter(|(n, _)| n.parse::<usize>().is_ok())
            .map(|(_, name)| name.trim().to_string())
    };
    let passed: Vec<String> = out.stdout.lines().filter_map(|l| case(l, "ok ")).collect();
    let failed: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| case(l, "not ok "))
        .collect();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "geth's {suite} test against our node ({driver}): {}/{} cases passed\n",
            passed.len(),
            total.unwrap_or(0)
        )
        .as_bytes(),
    );
    assert!(
        failed.is_empty() && total == Some(passed.len()) && out.status.success(),
        "geth's {suite} test against our node ({driver} driver): {}/{} passed; failed: {}\n\
         ({})\nstdout:\n{}\nstderr:\n{}",
        passed.len(),
        total.map_or("?".into(), |t| t.to_string()),
        if failed.is_empty() {
            "none reported".to_string()
        } else {
            failed.join(", ")
        },
        out.status,
        out.stdout,
        out.stderr
    );
    assert_eq!(
        passed.len(),
        cases,
        "geth v1.17.10's {suite} suite has {cases} cases: {}",
        out.stdout
    );
}

#[test]
fn geth_discv5_test_passes_every_case_against_our_node_on_tokio() {
    if geth_enabled("geth_discv5_test_passes_every_case_against_our_node_on_tokio") {
        v5test_against_our_node("tokio");
    }
}

#[test]
fn geth_discv5_test_passes_every_case_against_our_node_on_mio() {
    if geth_enabled("geth_discv5_test_passes_every_case_against_our_node_on_mio") {
        v5test_against_our_node("mio");
    }
}

#[test]
fn geth_discv4_test_passes_every_case_against_our_node_on_tokio() {
    if geth_enabled("geth_discv4_test_passes_every_case_against_our_node_on_tokio") {
        v4test_against_our_node("tokio");
    }
}

#[test]
fn geth_discv4_test_passes_every_case_against_our_node_on_mio() {
    if geth_enabled("geth_discv4_test_passes_every_case_against_our_node_on_mio") {
        v4test_against_our_node("mio");
    }
}

/// Our `devp2p discv4 listen --json` under `key_hex`: its enode URL and record.
fn our_listener(key_hex: &str) -> (Running, String, Enr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_devp2p"));
    cmd.args(["discv4", "listen", "--json", "--listen", "127.0.0.1:0"])
        .args(["--nodekey-hex", key_hex])
        .env("RUST_LOG", "warn");
    let proc = Running::start(cmd, "devp2p discv4 listen");
    let line: Value = serde_json::from_str(&proc.first)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", proc.first));
    let enode = line["enode"].as_str().expect("an enode").to_string();
    let enr = line["enr"].as_str().expect("a record").parse().unwrap();
    (proc, enode, enr)
}

#[test]
fn geth_discv4_test_passes_every_case_against_our_discv4_listen() {
    if !geth_enabled("geth_discv4_test_passes_every_case_against_our_discv4_listen") {
        return;
    }
    let (_proc, enode, _) = our_listener(&"51".repeat(32));
    let out = geth(&[
        "discv4",
        "test",
        "--tap",
        "--remote",
        &enode,
        "--listen1",
        "127.0.0.1",
        "--listen2",
        LISTEN2,
    ]);
    check_suite(&out, "discv4", "discv4 listen", V4TEST_CASES);
}

/// A record of `key` at `port` of 127.0.0.1 with sequence number `seq`.
fn record_at(key: &NodeSecretKey, port: u16, seq: u64) -> Enr {
    Enr::builder()
        .seq(seq)
        .ip([127, 0, 0, 1].into())
        .tcp4(port)
        .udp4(port)
        .sign(key)
        .unwrap()
}

/// A `nodes.json` entry as geth writes it (`score` left out when 0).
fn set_entry(r: &Enr, score: i64, time: &str) -> Value {
    let mut e = serde_json::json!({
        "seq": r.seq(), "record": r.to_string(),
        "firstResponse": time, "lastResponse": time, "lastCheck": time,
    });
    if score != 0 {
        e["score"] = serde_json::json!(score);
    }
    e
}

/// The same input to geth's `discv4 resolve-json` and ours: a live node of ours and one of
/// geth's under old records, and silent nodes that never answered, answered once, and
/// answered five times. Both write the same set: the same entries, records, seqs and scores,
/// and the same times where they did not become "now".
#[test]
fn geth_and_our_resolve_json_write_the_same_set() {
    if !geth_enabled("geth_and_our_resolve_json_write_the_same_set") {
        return;
    }
    let dir = temp_dir("resolve-json");
    let key = NodeSecretKey::from_hex(&"52".repeat(32)).unwrap();
    let (_ours, _, our_live) = our_listener(&"52".repeat(32));
    let geth_live = GethNode::start("");
    let then = "2020-01-02T03:04:05Z";
    let zero = "0001-01-01T00:00:00Z";
    let mut set = serde_json::Map::new();
    let ours_old = record_at(&key, our_live.udp4().unwrap(), 1);
    set.insert(
        ours_old.node_id().to_string(),
        set_entry(&ours_old, 3, then),
    );
    // geth's key is its own; its record as printed, with its times in the past.
    set.insert(geth_live.id(), set_entry(&geth_live.record, 2, then));
    for (byte, score, time) in [(0x61u8, 0, zero), (0x62, 1, then), (0x63, 5, then)] {
        let k = NodeSecretKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap();
        let r = record_at(&k, dead_udp_port(), 3);
        set.insert(r.node_id().to_string(), set_entry(&r, score, time));
    }
    let input = serde_json::to_string_pretty(&set).unwrap();
    let (theirs, mine) = (dir.join("geth.json"), dir.join("ours.json"));
    std::fs::write(&theirs, &input).unwrap();
    std::fs::write(&mine, &input).unwrap();

    ok(
        &geth_discv4("resolve-json", "", &[theirs.to_str().unwrap()]),
        "geth's discv4 resolve-json",
    );
    ok(
        &ours(&["discv4", "resolve-json", mine.to_str().unwrap()]),
        "our discv4 resolve-json",
    );
    let (g, o) = (read_nodes_json(&theirs), read_nodes_json(&mine));
    let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&g),
        keys(&o),
        "geth:
{g:#?}
ours:
{o:#?}"
    );
    assert_eq!(g.len(), 4, "the node that answered once is gone: {g:#?}");
    for (id, ge) in &g {
        let oe = &o[id];
        for field in ["seq", "record", "score"] {
            assert_eq!(ge.get(field), oe.get(field), "{id} {field}: {ge} vs {oe}");
        }
        for field in ["firstResponse", "lastResponse", "lastCheck"] {
            let (gt, ot) = (ge[field].as_str().unwrap(), oe[field].as_str().unwrap());
            // Both "now" (seconds apart), or both unchanged.
            assert_eq!(
                gt == then || gt == zero,
                ot == then || ot == zero,
                "{id} {field}"
            );
            if gt == then || gt == zero {
                assert_eq!(gt, ot, "{id} {field}");
            }
        }
    }
    assert_eq!(
        o[&ours_old.node_id().to_string()]["record"],
        our_live.to_string()
    );
}

/// The node ids and entries of a `nodes.json` in geth's format.
fn read_nodes_json(path: &Path) -> serde_json::Map<String, Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        other => panic!("{}: not a JSON object ({other:?}):\n{text}", path.display()),
    }
}

/// `path`, written by our crawl, holds exactly `want` (id → record) in geth's format, and
/// geth reads it: `nodeset info` counts the nodes, and `discv4 crawl` taking it as input
/// writes it back unchanged (it skips re-checking nodes checked in the last 10 minutes, so
/// what it writes is what it parsed).
fn geth_reads_our_nodes_json(path: &Path, want: &[(&str, &str)]) {
    let text = std::fs::read_to_string(path).unwrap();
    let entries = read_nodes_json(path);
    let ids: BTreeSet<&str> = entries.keys().map(String::as_str).collect();
    let wanted: BTreeSet<&str> = want.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, wanted, "our crawl's nodes.json:\n{text}");
    for (id, record) in want {
        let e = &entries[*id];
        assert_eq!(e["record"], *record, "{id}: {text}");
        let seq = record.parse::<Enr>().unwrap().seq();
        assert_eq!(e["seq"], seq, "{id}: {text}");
        assert_eq!(e["score"], 1, "{id}: {text}");
        for field in ["firstResponse", "lastResponse", "lastCheck"] {
            assert!(
                e[field].as_str().is_some_and(|t| t.ends_with('Z')),
                "{field}: {text}"
            );
        }
    }
    let info = geth(&["nodeset", "info", path.to_str().unwrap()]);
    let info = ok(&info, "geth's nodeset info of our nodes.json");
    assert!(
        info.contains(&format!("Set contains {} nodes.", want.len())),
        "{info}"
    );
    assert!(info.contains("secp256k1: "), "{info}");

    let copy = path.with_extension("geth.json");
    std::fs::copy(path, &copy).unwrap();
    let out = geth_discv4("crawl", "", &["--timeout", "1s", copy.to_str().unwrap()]);
    ok(&out, "geth's discv4 crawl reading our nodes.json");
    let rewritten = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(
        rewritten.trim_end(),
        text.trim_end(),
        "geth's crawl wrote our nodes.json back otherwise"
    );
}

/// geth's tools against two of our nodes on `driver`, B bootstrapped from A.
fn geth_tools_against_our_nodes(driver: &str) {
    let a = OurNode::start(driver, &["--caps", "eth/68"]);
    let b = OurNode::start(driver, &["--bootnodes", &a.enode]);
    let dir = temp_dir(&format!("ours-{driver}"));

    // geth asks the stale address first, then looks B's key up through A; it prints the
    // record it found, or the node it was given when it found none.
    let stale = b.stale_enode();
    until("geth's discv4 resolve of B through A", || {
        let out = geth_discv4("resolve", &a.enode, &[&stale]);
        let found = ok(&out, "geth's discv4 resolve");
        if found.trim() == b.enr {
            Ok(())
        } else {
            Err(format!("printed {found:?}, not B's record {}", b.enr))
        }
    });

    // geth's crawl from A finds both and checks each with ENRRequest.
    let geth_json = dir.join("geth-crawl.json");
    until("geth's discv4 crawl finding A and B", || {
        // An existing file would be its input.
        let _ = std::fs::remove_file(&geth_json);
        let out = geth_discv4(
            "crawl",
            &a.enode,
            &["--timeout", "2s", geth_json.to_str().unwrap()],
        );
        ok(&out, "geth's discv4 crawl");
        holds_all(&geth_json, &[&a.id, &b.id])
    });
    let crawled = read_nodes_json(&geth_json);
    for n in [&a, &b] {
        assert_eq!(crawled[&n.id]["record"], n.enr, "geth's crawl: {crawled:?}");
    }

    // Our crawl of our nodes, read by geth.
    let ours_json = dir.join("ours.json");
    until("our discv4 crawl finding A and B", || {
        let out = ours(&[
            "discv4",
            "crawl",
            "--bootnodes",
            &a.enode,
            "--timeout",
            "2s",
            "--out",
            ours_json.to_str().unwrap(),
        ]);
        ok(&out, "our discv4 crawl");
        holds_all(&ours_json, &[&a.id, &b.id])
    });
    geth_reads_our_nodes_json(
        &ours_json,
        &[
            (a.id.as_str(), a.enr.as_str()),
            (b.id.as_str(), b.enr.as_str()),
        ],
    );

    // The probes last: each leaves a dead node (geth's throwaway key) in A's table, which
    // would compete with B for A's revalidation above.
    let hello = ok(&geth(&["rlpx", "ping", &a.enode]), "geth's rlpx ping");
    assert!(
        hello.contains("Name:devp2p-sansio/") && hello.contains("Caps:[eth/68]"),
        "{hello}"
    );
    let pong = ok(&geth_discv4("ping", "", &[&a.enode]), "geth's discv4 ping");
    assert!(pong.contains("node responded to ping"), "{pong}");
    let record = ok(
        &geth_discv4("requestenr", "", &[&a.enode]),
        "geth's discv4 requestenr",
    );
    assert_eq!(record.trim(), a.enr, "the record A serves");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn geth_tools_work_against_our_nodes_on_tokio() {
    if geth_enabled("geth_tools_work_against_our_nodes_on_tokio") {
        geth_tools_against_our_nodes("tokio");
    }
}

#[test]
fn geth_tools_work_against_our_nodes_on_mio() {
    if geth_enabled("geth_tools_work_against_our_nodes_on_mio") {
        geth_tools_against_our_nodes("mio");
    }
}

/// Our probes against two geth discovery nodes, G2 bootstrapped from G1. They name geth's
/// nodes by the records geth prints.
#[test]
fn our_tools_work_against_geth_nodes() {
    if !geth_enabled("our_tools_work_against_geth_nodes") {
        return;
    }
    let g1 = GethNode::start("");
    let g2 = GethNode::start(&g1.enr());
    let dir = temp_dir("geth");

    let pong = ok(
        &ours(&["discv4", "ping", &g1.enr(), "--json"]),
        "our discv4 ping",
    );
    let pong: Value = serde_json::from_str(pong.trim()).unwrap();
    assert_eq!(pong["id"], g1.id(), "{pong}");
    assert!(
        pong["enr_seq"].as_u64().is_some(),
        "geth sends its seq: {pong}"
    );

    let out = ok(
        &ours(&["discv4", "requestenr", &g1.enr()]),
        "our discv4 requestenr",
    );
    let record: Enr = out.lines().next().unwrap_or("").parse().unwrap();
    assert_eq!(record.node_id().to_string(), g1.id(), "{out}");
    assert_eq!(record.udp4(), Some(g1.udp()), "{out}");

    // geth's listen node serves no RLPx: its record has no `tcp`, and our ping says so.
    let out = ours(&["rlpx", "ping", &g1.enr()]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("has no TCP port"), "{}", out.stderr);

    let stale = Enode::new(
        *g2.record.public_key(),
        "127.0.0.1".parse().unwrap(),
        1,
        dead_udp_port(),
    )
    .to_string();
    until("our discv4 resolve of G2 through G1", || {
        let out = ours(&[
            "discv4",
            "resolve",
            &stale,
            "--bootnodes",
            &g1.enr(),
            "--timeout",
            "3s",
        ]);
        if !out.status.success() {
            return Err(out.stderr);
        }
        let found: Enode = out.stdout.lines().next().unwrap_or("").parse().unwrap();
        assert_eq!(found.id().to_string(), g2.id(), "{}", out.stdout);
        assert_eq!(found.udp_port, g2.udp(), "{}", out.stdout);
        Ok(())
    });

    let ours_json = dir.join("ours.json");
    let (id1, id2) = (g1.id(), g2.id());
    until("our discv4 crawl finding G1 and G2", || {
        let out = ours(&[
            "discv4",
            "crawl",
            "--bootnodes",
            &g1.enr(),
            "--timeout",
            "2s",
            "--out",
            ours_json.to_str().unwrap(),
        ]);
        ok(&out, "our discv4 crawl");
        holds_all(&ours_json, &[&id1, &id2])
    });
    let (e1, e2) = (g1.enr(), g2.enr());
    geth_reads_our_nodes_json(
        &ours_json,
        &[(id1.as_str(), e1.as_str()), (id2.as_str(), e2.as_str())],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Our `rlpx ping` against a geth RLPx server (geth's `p2p.Server` in the harness): the
/// handshake, and geth's Hello printed as geth sent it.
#[test]
fn our_rlpx_ping_reads_a_geth_servers_hello() {
    if !geth_enabled("our_rlpx_ping_reads_a_geth_servers_hello") {
        return;
    }
    let geth = geth_peer::GethPeer::start(&["--no-discovery", "--protocols", "eth/68/17,snap/1/8"]);
    let enode = geth.enode().to_string();
    let out = ours(&["rlpx", "ping", &enode, "--caps", "eth/68", "--json"]);
    let line = ok(&out, "our rlpx ping of geth");
    let hello: Value = serde_json::from_str(line.trim()).expect("one JSON object");
    assert_eq!(hello["id"], geth.id_hex(), "{hello}");
    // The harness names itself after the geth version it is built on.
    assert_eq!(hello["client"], geth.listening()["client"], "{hello}");
    assert_eq!(hello["version"], 5, "{hello}");
    assert_eq!(
        hello["caps"],
        serde_json::json!(["eth/68", "snap/1"]),
        "{hello}"
    );
}

/// A node set with something for every filter: IPv4 and IPv6 records, with and without TCP,
/// `les` and `snap` entries, scores 0 to 5, and answering spans from none to two days.
fn varied_node_set(dir: &Path) -> PathBuf {
    use devp2p_core::NodeSecretKey;
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let mut entries = Vec::new();
    for i in 0..6u8 {
        let key = NodeSecretKey::generate(&mut rng);
        let mut b = Enr::builder().seq(u64::from(i) + 1);
        b = match i {
            0..=2 => b.ip([10, 0, 0, i].into()).tcp4(30303).udp4(30303),
            3 => b.ip([192, 168, 1, 1].into()).udp4(30303),
            _ => b.ip("fd00::1".parse().unwrap()).tcp6(30303).udp6(30303),
        };
        if i % 2 == 0 {
            b = b.raw(b"snap", &[0xc0]).unwrap();
        }
        if i == 1 {
            b = b.raw(b"les", &[0xc1, 0x01]).unwrap();
        }
        let r = b.sign(&key).unwrap();
        let first = "2026-11-01T00:00:00Z";
        let last = [
            "2026-11-01T00:00:00Z",
            "2026-11-01T12:00:00Z",
            "2026-11-03T00:00:00Z",
        ][usize::from(i % 3)];
        let score = if i == 5 {
            String::new()
        } else {
            format!("\n        \"score\": {i},")
        };
        entries.push((
            r.node_id().to_string(),
            format!(
                "        \"seq\": {},\n        \"record\": \"{r}\",{score}\n        \"firstResponse\": \"{first}\",\n        \"lastResponse\": \"{last}\",\n        \"lastCheck\": \"{last}\"",
                r.seq()
            ),
        ));
    }
    entries.sort();
    let body: Vec<String> = entries
        .iter()
        .map(|(id, e)| format!("    \"{id}\": {{\n{e}\n    }}"))
        .collect();
    let path = dir.join("varied.json");
    std::fs::write(&path, format!("{{\n{}\n}}", body.join(",\n"))).unwrap();
    path
}

/// `key to-id`, `key to-enode` and `key to-enr` (at seq 0, geth's, whose signatures are
/// deterministic as ours are: RFC 6979) print what geth's print for the same key file.
#[test]
fn our_key_commands_print_what_geths_print() {
    if !geth_enabled("our_key_commands_print_what_geths_print") {
        return;
    }
    let dir = temp_dir("key");
    let key = dir.join("nodekey");
    std::fs::write(
        &key,
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
    )
    .unwrap();
    let k = key.to_str().unwrap();
    let same = |ours_args: &[&str], geths_args: &[&str]| {
        let o = ok(&ours(ours_args), "ours");
        let g = ok(&geth(geths_args), "geth's");
        assert_eq!(o, g, "devp2p {ours_args:?} against geth's {geths_args:?}");
        assert!(!o.trim().is_empty());
    };
    same(&["key", "to-id", k], &["key", "to-id", k]);
    same(&["key", "to-enode", k], &["key", "to-enode", k]);
    let flags = ["--ip", "10.3.58.6", "--tcp", "30304", "--udp", "30301"];
    let with = |args: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&flags);
        v.push(k);
        v
    };
    let ours_enode = {
        let mut v = vec!["key", "to-enode", k];
        v.extend_from_slice(&flags);
        v
    };
    same(&ours_enode, &with(&["key", "to-enode"]));
    let ours_enr = {
        let mut v = vec!["key", "to-enr", k, "--seq", "0"];
        v.extend_from_slice(&flags);
        v
    };
    same(&ours_enr, &with(&["key", "to-enr"]));
}

#[test]
fn our_nodeset_info_and_filter_print_what_geths_print() {
    if !geth_enabled("our_nodeset_info_and_filter_print_what_geths_print") {
        return;
    }
    let dir = temp_dir("nodeset");
    let set = varied_node_set(&dir);
    let set = set.to_str().unwrap();
    let info_geth = ok(&geth(&["nodeset", "info", set]), "geth's nodeset info");
    let info_ours = ok(&ours(&["nodeset", "info", set]), "our nodeset info");
    assert_eq!(info_ours, info_geth);
    for filters in [
        &[][..],
        &["-ip", "10.0.0.0/8"],
        &["-ip", "fd00::/8"],
        &["-snap"],
        &["-les-server"],
        &["-dialable"],
        &["-min-age", "24h"],
        &["-min-age", "1h", "-snap"],
        &["-limit", "2"],
        &["-dialable", "-limit", "3"],
    ] {
        let mut args = vec!["nodeset", "filter", set];
        args.extend_from_slice(filters);
        let geth_out = ok(&geth(&args), &format!("geth's nodeset filter {filters:?}"));
        let our_out = ok(&ours(&args), &format!("our nodeset filter {filters:?}"));
        assert_eq!(
            our_out.trim_end(),
            geth_out.trim_end(),
            "nodeset filter {filters:?}"
        );
        let kept = serde_json::from_str::<serde_json::Map<String, Value>>(&our_out)
            .unwrap()
            .len();
        let want = match filters {
            [] => 6,
            ["-ip", "10.0.0.0/8"] | ["-snap"] | ["-dialable", "-limit", "3"] => 3,
            ["-ip", "fd00::/8"] | ["-limit", "2"] | ["-min-age", "24h"] => 2,
            ["-les-server"] => 1,
            ["-dialable"] => 5,
            ["-min-age", "1h", "-snap"] => 2,
            _ => unreachable!(),
        };
        assert_eq!(kept, want, "nodes kept by {filters:?}");
    }
    let bad = ours(&["nodeset", "filter", set, "-frob"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        bad.stderr.contains("invalid filter \"-frob\""),
        "{}",
        bad.stderr
    );
}

/// The DNS tools both ways, through real DNS (dnsmasq): geth's `dns sign` + `dns to-txt`
/// publish a tree that our `dns to-txt` rebuilds byte for byte (our tree building is geth's,
/// so geth's signature verifies over ours) and our `dns sync` reads whole; a tree signed by
/// our tool is read whole by geth's `dns sync`, which only asks the system resolver, so its
/// dnsmasq runs on port 53 of a network namespace whose resolv.conf names it.
#[test]
fn geth_and_our_dns_tools_publish_and_read_each_others_trees() {
    if !geth_enabled("geth_and_our_dns_tools_publish_and_read_each_others_trees") {
        return;
    }
    let Some(dnsmasq_bin) = dnsmasq::dnsmasq_path() else {
        return;
    };
    use devp2p_core::NodeSecretKey;
    use rand_chacha::rand_core::SeedableRng;
    let dir = temp_dir("dns");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let mut nodes = serde_json::Map::new();
    let mut ids = BTreeSet::new();
    for i in 0..30u16 {
        let r = Enr::builder()
            .ip([127, 0, 0, 1].into())
            .tcp4(31000 + i)
            .udp4(31000 + i)
            .sign(&NodeSecretKey::generate(&mut rng))
            .unwrap();
        ids.insert(r.node_id().to_string());
        nodes.insert(
            r.node_id().to_string(),
            serde_json::json!({"seq": r.seq(), "record": r.to_string()}),
        );
    }
    let nodes = serde_json::to_string_pretty(&Value::Object(nodes)).unwrap();
    let hex_key = "dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240";
    let synced_ids =
        |path: &Path| -> BTreeSet<String> { read_nodes_json(path).keys().cloned().collect() };

    // geth signs (its keystore format; its password prompt reads the empty line of a closed
    // stdin) and writes the TXT records.
    let gdef = dir.join("geth-def");
    std::fs::create_dir_all(&gdef).unwrap();
    std::fs::write(gdef.join("nodes.json"), &nodes).unwrap();
    let keystore = dir.join("signer.keystore");
    let mut ks = Command::new(geth_binary("./keystore"));
    ks.args([hex_key, "", keystore.to_str().unwrap()]);
    ok(
        &run_bounded(ks, COMMAND_LIMIT).unwrap(),
        "writing a keystore with geth's package",
    );
    let g = gdef.to_str().unwrap();
    ok(
        &geth(&[
            "dns",
            "sign",
            "--domain",
            "geth.example.org",
            "--seq",
            "5",
            g,
            keystore.to_str().unwrap(),
        ]),
        "geth's dns sign",
    );
    let geth_txt = dir.join("geth-txt.json");
    ok(
        &geth(&["dns", "to-txt", g, geth_txt.to_str().unwrap()]),
        "geth's dns to-txt",
    );
    let geth_records: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&geth_txt).unwrap()).unwrap();
    // Ours reads geth's definition, checks geth's signature over the tree it rebuilds, and
    // writes the same records.
    let ours_of_geth = ok(
        &ours(&["dns", "to-txt", g]),
        "our dns to-txt of geth's definition",
    );
    let ours_of_geth: BTreeMap<String, String> = serde_json::from_str(&ours_of_geth).unwrap();
    assert_eq!(ours_of_geth, geth_records);
    assert!(
        geth_records.values().any(|t| t.len() > 255),
        "entries split into several strings"
    );

    // Our sync reads geth's tree through dnsmasq.
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(gdef.join("enrtree-info.json")).unwrap())
            .unwrap();
    let geth_url = info["url"].as_str().unwrap().to_owned();
    {
        let server = dnsmasq::serve(&dnsmasq_bin, &dir, &geth_records);
        let out = dir.join("ours-of-geth");
        let addr = format!("127.0.0.1:{}", server.port);
        ok(
            &ours(&[
                "dns",
                "sync",
                &geth_url,
                out.to_str().unwrap(),
                "--server",
                &addr,
            ]),
            "our dns sync of geth's tree",
        );
        assert_eq!(synced_ids(&out.join("nodes.json")), ids);
    }

    // Our tool signs the same nodes; geth's sync reads the tree through its system resolver.
    let odef = dir.join("our-def");
    std::fs::create_dir_all(&odef).unwrap();
    std::fs::write(odef.join("nodes.json"), &nodes).unwrap();
    let keyfile = dir.join("signer.key");
    std::fs::write(&keyfile, hex_key).unwrap();
    let o = odef.to_str().unwrap();
    let our_url = ok(
        &ours(&[
            "dns",
            "sign",
            o,
            keyfile.to_str().unwrap(),
            "--domain",
            "ours.example.org",
            "--seq",
            "5",
        ]),
        "our dns sign",
    );
    let our_url = our_url.trim();
    let our_records: BTreeMap<String, String> =
        serde_json::from_str(&ok(&ours(&["dns", "to-txt", o]), "our dns to-txt")).unwrap();
    // The same nodes, key and seq: the same tree as geth's but for the domain.
    assert_eq!(our_records.len(), geth_records.len());
    let server = dnsmasq::serve_in_netns(&dnsmasq_bin, &dir, &our_records);
    let out = dir.join("geth-of-ours");
    let mut sync = server.command(&geth_binary(GETH_DEVP2P));
    sync.args(["dns", "sync", our_url, out.to_str().unwrap()]);
    ok(
        &run_bounded(sync, COMMAND_LIMIT).unwrap(),
        "geth's dns sync of our tree",
    );
    assert_eq!(synced_ids(&out.join("nodes.json")), ids);
    let synced_info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("enrtree-info.json")).unwrap())
            .unwrap();
    assert_eq!(synced_info["seq"], 5);
}

/// The chain a mainnet node relies on, with geth as the publisher: geth's `devp2p dns sign`
/// (its keystore, written by geth's own package) and `dns to-txt` publish a tree of live
/// nodes of ours, dnsmasq serves geth's TXT records, and `devp2p node` on each driver, given
/// only the URL geth printed, verifies geth's signature and holds sessions with every node.
#[test]
fn devp2p_node_bootstraps_from_a_tree_signed_by_geths_dns_sign() {
    if !geth_enabled("devp2p_node_bootstraps_from_a_tree_signed_by_geths_dns_sign") {
        return;
    }
    let Some(bin) = dnsmasq::dnsmasq_path() else {
        return;
    };
    let dir = temp_dir("geth-signed");
    let targets = dns_walk::LiveNodes::start(3, 1);

    let def = dir.join("tree");
    std::fs::create_dir_all(&def).unwrap();
    std::fs::write(
        def.join("nodes.json"),
        dns_walk::nodes_json(&targets.records),
    )
    .unwrap();
    let keystore = dir.join("signer.keystore");
    let (def_s, keystore_s) = (def.to_str().unwrap(), keystore.to_str().unwrap());
    // geth's password prompt reads the empty line of a closed stdin: the keystore's password
    // is empty.
    let mut ks = Command::new(geth_binary("./keystore"));
    ks.args([
        "dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240",
        "",
        keystore_s,
    ]);
    ok(
        &run_bounded(ks, COMMAND_LIMIT).unwrap(),
        "writing a keystore with geth's package",
    );
    ok(
        &geth(&[
            "dns",
            "sign",
            "--domain",
            "geth-signed.example.org",
            "--seq",
            "11",
            def_s,
            keystore_s,
        ]),
        "geth's dns sign",
    );
    let txt = dir.join("txt.json");
    ok(
        &geth(&["dns", "to-txt", def_s, txt.to_str().unwrap()]),
        "geth's dns to-txt",
    );
    let geth_records: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&txt).unwrap()).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(def.join("enrtree-info.json")).unwrap())
            .unwrap();
    let url = info["url"].as_str().unwrap().to_owned();
    assert!(
        url.ends_with("@geth-signed.example.org"),
        "geth's URL: {url}"
    );

    let server = dnsmasq::serve(&bin, &dir, &geth_records);
    dns_walk::devp2p_node_reaches_every_node_of_the_tree(&url, server.port, &targets.ids());
    drop(server);
}
