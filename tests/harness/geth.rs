#![allow(dead_code)] // each test crate that includes this uses a different part of it
//! The go-ethereum side of the interop tests: [`GethPeer`] runs the harness program of
//! `tests/interop/geth/harness/` (geth's own `p2p.Server` and `discover` packages, built by
//! [`go_build`] from the Go module pinned to go-ethereum v1.17.10) as a child process. It
//! reads the JSON lines the program prints into a log, sends it commands on stdin, and kills
//! it on drop; every wait is bounded. [`geth_record`] runs the program's one-shot record
//! mode (`enr`, `verify-enr`).
//!
//! Included with `#[path]` by the test crates that need it (the way `interop.rs` is for
//! ethereumjs).

#[path = "go_build.rs"]
pub mod go_build;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use devp2p_core::{Enode, Enr, NodeId};
use serde_json::{json, Value};

pub use go_build::{geth_binary, geth_enabled};

/// The harness package in the Go module.
pub const HARNESS: &str = "./harness";
/// Longest the program may take to start listening (it takes ~50 ms).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The program stops itself after this long whatever happens (`--lifetime`).
pub const LIFETIME_SECS: u64 = 120;
/// At most this many of the last lines go into a failure message.
const DUMP_LINES: usize = 400;

/// The JSON lines the program printed so far, and whether its stdout has closed.
#[derive(Default)]
struct Log {
    events: Vec<Value>,
    closed: bool,
}

/// A go-ethereum node (the harness program) in a child process, killed on drop.
pub struct GethPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<(Mutex<Log>, Condvar)>,
    stderr: Arc<Mutex<String>>,
    listening: Value,
    next_tag: u64,
}

impl GethPeer {
    /// Starts the harness with `args` (see `tests/interop/geth/harness/main.go`: `--protocols`,
    /// `--max-peers`, `--no-discovery`, `--bootnodes`, `--verbosity`, …) and waits until it
    /// listens. Call [`geth_enabled`] first.
    pub fn start(args: &[&str]) -> Self {
        let binary = geth_binary(HARNESS);
        let lifetime = LIFETIME_SECS.to_string();
        let mut child = Command::new(&binary)
            .args(args)
            .args(["--lifetime", &lifetime])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        let stdout = child.stdout.take().expect("piped");
        let thread_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // A line that is not JSON is kept as a string, to show in a failure.
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                let (m, cv) = &*thread_log;
                m.lock().unwrap_or_else(|p| p.into_inner()).events.push(v);
                cv.notify_all();
            }
            let (m, cv) = &*thread_log;
            m.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            cv.notify_all();
        });
        let stderr: Arc<Mutex<String>> = Arc::default();
        let mut err_pipe = child.stderr.take().expect("piped");
        let thread_err = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                thread_err
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut peer = GethPeer {
            stdin: child.stdin.take(),
            child,
            log,
            stderr,
            listening: Value::Null,
            next_tag: 0,
        };
        peer.listening = peer.wait_for("the geth harness to listen", START_TIMEOUT, |e| {
            e["event"] == "listening"
        });
        peer
    }

    /// The `listening` line: `id`, `pubkey`, `enode`, `enr`, `rlp`, `seq`, `tcp`, `udp`,
    /// `client`.
    pub fn listening(&self) -> &Value {
        &self.listening
    }

    /// Its node id in hex, as in its events' `peer` and `id` fields.
    pub fn id_hex(&self) -> &str {
        self.listening["id"].as_str().expect("listening has id")
    }

    /// Its node id.
    pub fn id(&self) -> NodeId {
        self.enode().id()
    }

    /// Its enode URL (127.0.0.1, one port for TCP and UDP).
    pub fn enode(&self) -> Enode {
        let s = self.listening["enode"]
            .as_str()
            .expect("listening has enode");
        s.parse()
            .unwrap_or_else(|e| panic!("geth printed an enode URL we cannot parse: {s}: {e:?}"))
    }

    /// Its record at start.
    pub fn record(&self) -> Enr {
        parse_record(&self.listening)
    }

    /// The client id in its Hello.
    pub fn client(&self) -> &str {
        self.listening["client"].as_str().unwrap_or_default()
    }

    /// Sends one command.
    pub fn send(&mut self, cmd: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open until drop");
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("sending {cmd} to the geth harness: {e}\n{}", self.dump()));
    }

    /// Sends `cmd` with a fresh tag and waits for the answer carrying that tag (an `error`
    /// event included); returns it.
    pub fn request(&mut self, cmd: Value, timeout: Duration) -> Value {
        let tag = self.ask(cmd);
        self.answer(tag, timeout)
    }

    /// Sends `cmd` with a fresh tag, which it returns; [`answer`](Self::answer) waits for the
    /// reply, so that several requests can run at once.
    pub fn ask(&mut self, mut cmd: Value) -> u64 {
        self.next_tag += 1;
        let tag = self.next_tag;
        cmd["tag"] = json!(tag);
        self.send(cmd);
        tag
    }

    /// The answer to the request tagged `tag` (see [`ask`](Self::ask)).
    pub fn answer(&self, tag: u64, timeout: Duration) -> Value {
        self.wait_for(&format!("geth's answer to request {tag}"), timeout, |e| {
            e["tag"] == tag
        })
    }

    /// Like [`request`](Self::request), failing the test on an `error` answer.
    pub fn request_ok(&mut self, cmd: Value, timeout: Duration) -> Value {
        let answer = self.request(cmd.clone(), timeout);
        assert_ne!(
            answer["event"],
            "error",
            "geth refused {cmd}: {answer}\n{}",
            self.dump()
        );
        answer
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        let (m, _) = &*self.log;
        m.lock().unwrap_or_else(|p| p.into_inner()).events.clone()
    }

    /// Events so far that satisfy `f`.
    pub fn matching(&self, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        let (m, _) = &*self.log;
        let log = m.lock().unwrap_or_else(|p| p.into_inner());
        log.events.iter().filter(|e| f(e)).cloned().collect()
    }

    /// Waits until `done` holds over the events so far; panics after `timeout` (or when the
    /// program has exited) with what it printed.
    pub fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.log;
        let mut log = m.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if done(&log.events) {
                return;
            }
            let now = Instant::now();
            if now >= deadline || log.closed {
                let why = if log.closed {
                    "the geth harness exited".to_string()
                } else {
                    format!("timed out after {timeout:?}")
                };
                drop(log);
                panic!("{why} waiting for {what}\n{}", self.dump());
            }
            log = cv
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits for the first event satisfying `f` and returns it.
    pub fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        self.wait_nth(what, timeout, 1, f)
    }

    /// Waits for the `n`th (from 1) event satisfying `f` and returns it.
    pub fn wait_nth(
        &self,
        what: &str,
        timeout: Duration,
        n: usize,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_until(what, timeout, |ev| ev.iter().filter(|e| f(e)).count() >= n);
        self.matching(f)
            .into_iter()
            .nth(n - 1)
            .expect("waited for it")
    }

    /// The last lines the program printed and its stderr, for a failure message.
    pub fn dump(&self) -> String {
        let events = self.events();
        let skip = events.len().saturating_sub(DUMP_LINES);
        let mut s = format!(
            "--- geth harness stdout ({} lines{}) ---\n",
            events.len(),
            if skip > 0 {
                format!(", the first {skip} left out")
            } else {
                String::new()
            }
        );
        for e in &events[skip..] {
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s.push_str("--- geth harness stderr ---\n");
        s.push_str(&self.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        s
    }
}

impl Drop for GethPeer {
    fn drop(&mut self) {
        // Closing stdin makes the program exit by itself; kill it anyway, in case it is stuck.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An event `e` of kind `event` about the peer with node id `id`.
pub fn is(e: &Value, event: &str, id: &NodeId) -> bool {
    e["event"] == event && e["peer"] == id.to_string().as_str()
}

/// A `log` event with message `msg`.
pub fn is_log(e: &Value, msg: &str) -> bool {
    e["event"] == "log" && e["msg"] == msg
}

/// The record in an event's `rlp` field, decoded (and so verified) by us.
pub fn parse_record(e: &Value) -> Enr {
    let raw = e["rlp"]
        .as_str()
        .unwrap_or_else(|| panic!("no record in {e}"));
    Enr::decode(&from_hex(raw)).unwrap_or_else(|err| panic!("geth's record {e}: {err}"))
}

/// Runs the harness in its one-shot record mode (`enr …` or `verify-enr …`) and returns
/// the line it printed (`enr`, `enr_verified` or `error`).
pub fn geth_record(args: &[&str]) -> Value {
    let binary = geth_binary(HARNESS);
    let out = Command::new(&binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "the geth harness printed no JSON line for {args:?} ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Hex of `b`, lower case.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes of hex `s`; panics on bad input.
pub fn from_hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex: {s}")))
        .collect()
}

/// The bytes the harness makes for `{"size": len, "seed": seed}`: devp2p-sansio's xorshift
/// test stream, which no compressor shrinks.
pub fn xorshift(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
