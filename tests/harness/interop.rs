#![allow(dead_code)] // each test crate that includes this uses a different part of it
//! The ethereumjs side of the interop tests, shared by `tests/tests/interop.rs` and
//! `driver-tokio/tests/interop_cli.rs` (each includes this file with `#[path]`).
//!
//! [`ready`] checks for Node.js and npm and runs `npm ci` in `tests/interop/` once when its
//! `node_modules` is missing or holds another version of any pinned package (serialised across threads by a
//! `OnceLock` and across processes by a lock file). Without `node` or `npm` it fails the test
//! with a message saying what to install; only `DEVP2P_SKIP_INTEROP=1` skips the tests.
//!
//! [`EjsPeer`] runs `tests/interop/peer.mjs`, an @ethereumjs/devp2p node on 127.0.0.1, as a
//! child process: it reads the JSON lines the script prints into a log, sends it commands, and
//! kills it on drop. Every wait is bounded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Set to `1` to skip the interop tests (they say so on stderr).
pub const SKIP_VAR: &str = "DEVP2P_SKIP_INTEROP";
/// The oldest Node.js the pinned packages support (@ethereumjs/devp2p's `engines` field;
/// @chainsafe/discv5 names none, and runs here on Node.js 20).
pub const MIN_NODE_MAJOR: u32 = 18;
/// Longest `npm ci` may take (it takes seconds with a warm cache).
pub const NPM_CI_TIMEOUT: Duration = Duration::from_secs(240);
/// Longest `node --version` or `npm --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the script may take to start listening (loading the package takes ~0.3 s).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The script stops itself after this long whatever happens (`--max-seconds`).
pub const SCRIPT_LIFETIME_SECS: u64 = 90;
/// How often a wait on a child process checks it.
const POLL: Duration = Duration::from_millis(10);

/// `<workspace>/tests/interop`: both including crates sit one level below the workspace root.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the workspace")
        .join("tests")
        .join("interop")
}

/// Whether the interop test `test` should run: `false` (said on stderr) when
/// `DEVP2P_SKIP_INTEROP=1`; `true` once Node.js and the pinned packages are ready. Panics with
/// what is missing otherwise.
pub fn ready(test: &str) -> bool {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        // Written to the stream itself, not through eprintln!, so that the test harness's
        // output capture does not hide it.
        let _ = writeln!(
            std::io::stderr(),
            "interop test {test}: SKIPPED ({SKIP_VAR}=1)"
        );
        return false;
    }
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = SETUP.get_or_init(|| setup(&interop_dir())) {
        panic!("interop test {test} cannot run: {e}\n(set {SKIP_VAR}=1 to skip the interop tests)");
    }
    true
}

/// Checks the tools and installs the packages if needed.
fn setup(dir: &Path) -> Result<(), String> {
    let node = tool_version("node")?;
    let major: Option<u32> = node
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok());
    match major {
        Some(m) if m >= MIN_NODE_MAJOR => {}
        _ => {
            return Err(format!(
                "Node.js {node} is too old or unrecognised: @ethereumjs/devp2p needs v{MIN_NODE_MAJOR} or newer"
            ))
        }
    }
    tool_version("npm")?;
    let wanted = pinned_versions(dir)?;
    if installed_versions(dir, &wanted).is_ok() {
        return Ok(());
    }
    // Another test binary may be installing at the same moment: one at a time, and whoever
    // comes second finds the work done.
    let lock_path = dir.join(".npm-ci.lock");
    let lock =
        File::create(&lock_path).map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if installed_versions(dir, &wanted).is_ok() {
        return Ok(());
    }
    let _ = writeln!(
        std::io::stderr(),
        "interop: running `npm ci` in {} ({})",
        dir.display(),
        wanted
            .iter()
            .map(|(p, v)| format!("{p} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    let out = run_bounded(cmd, NPM_CI_TIMEOUT).map_err(|e| format!("`npm ci`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`npm ci` in {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            out.stdout,
            out.stderr
        ));
    }
    installed_versions(dir, &wanted).map_err(|e| format!("`npm ci` succeeded, but {e}"))
}

/// `<tool> --version`, or an error naming the tool.
fn tool_version(tool: &str) -> Result<String, String> {
    let mut cmd = Command::new(tool);
    cmd.arg("--version");
    let missing = |e: String| {
        format!(
            "the interop tests run @ethereumjs/devp2p under Node.js: `{tool} --version` failed \
             ({e}); install Node.js v{MIN_NODE_MAJOR}+ with npm and put `node` and `npm` on PATH"
        )
    };
    let out = run_bounded(cmd, VERSION_TIMEOUT).map_err(missing)?;
    if !out.status.success() {
        return Err(missing(format!("{}: {}", out.status, out.stderr.trim())));
    }
    Ok(out.stdout.trim().to_string())
}

/// The packages `package.json` pins, with their exact versions.
fn pinned_versions(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = dir.join("package.json");
    let v = read_json(&path)?;
    let deps = v["dependencies"]
        .as_object()
        .ok_or_else(|| format!("{} has no dependencies", path.display()))?;
    deps.iter()
        .map(|(p, v)| match v.as_str() {
            Some(v) => Ok((p.clone(), v.to_string())),
            None => Err(format!("{} pins {p} to no version", path.display())),
        })
        .collect()
}

/// `Ok` if `npm ci` completed (npm writes `node_modules/.package-lock.json` last) and every
/// pinned package is installed at its version; `Err` names the first that is not.
fn installed_versions(dir: &Path, wanted: &BTreeMap<String, String>) -> Result<(), String> {
    let nm = dir.join("node_modules");
    if !nm.join(".package-lock.json").is_file() {
        return Err(format!("{} holds no completed install", nm.display()));
    }
    for (package, version) in wanted {
        let manifest = nm.join(package).join("package.json");
        let found = read_json(&manifest)
            .ok()
            .and_then(|v| v["version"].as_str().map(str::to_string));
        if found.as_deref() != Some(version.as_str()) {
            return Err(format!(
                "node_modules holds {package} {found:?}, not {version}"
            ));
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// What a finished command printed.
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `cmd` to completion with its output captured; kills it after `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Finished, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {timeout:?}; killed"));
            }
            Err(e) => return Err(format!("waiting: {e}")),
        }
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The JSON lines a child printed so far, and whether its stdout has closed.
#[derive(Default)]
struct Log {
    events: Vec<Value>,
    closed: bool,
}

/// An @ethereumjs/devp2p node (`tests/interop/peer.mjs`) in a child process, killed on drop.
pub struct EjsPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<(Mutex<Log>, Condvar)>,
    stderr: Arc<Mutex<String>>,
    listening: Value,
}

impl EjsPeer {
    /// Starts `peer.mjs` with `args` (e.g. `--rlpx`, `--dpt`) and waits until it listens.
    /// Call [`ready`] first.
    pub fn start(args: &[&str]) -> Self {
        Self::start_script("peer.mjs", args)
    }

    /// Starts `script` of `tests/interop/` (which takes `--max-seconds` and prints a
    /// `listening` line first, as `peer.mjs` and `discv5.mjs` do) with `args`.
    pub fn start_script(script: &str, args: &[&str]) -> Self {
        let dir = interop_dir();
        let lifetime = SCRIPT_LIFETIME_SECS.to_string();
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .args(["--max-seconds", &lifetime])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {script} in {}: {e}", dir.display()));
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
        let mut peer = EjsPeer {
            stdin: child.stdin.take(),
            child,
            log,
            stderr,
            listening: Value::Null,
        };
        peer.listening = peer.wait_for(&format!("{script} to listen"), START_TIMEOUT, |e| {
            e["event"] == "listening"
        });
        peer
    }

    /// Its 64-byte public key in hex, as in its enode URL and in its events' `pubkey`.
    pub fn pubkey(&self) -> &str {
        self.listening["pubkey"]
            .as_str()
            .expect("listening has pubkey")
    }

    /// Its enode URL (127.0.0.1; `?discport=` when discovery runs on another port).
    pub fn enode(&self) -> &str {
        self.listening["enode"]
            .as_str()
            .expect("listening has enode")
    }

    /// The client id in its Hello (`null` without `--rlpx`).
    pub fn client(&self) -> &str {
        self.listening["client"].as_str().unwrap_or_default()
    }

    /// The `listening` line: `pubkey`, `tcp`, `udp`, `enode`, `client`.
    pub fn listening(&self) -> &Value {
        &self.listening
    }

    /// Sends one command (see `peer.mjs`).
    pub fn send(&mut self, cmd: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open until drop");
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("sending {cmd} to the Node.js peer: {e}\n{}", self.dump()));
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        let (m, _) = &*self.log;
        m.lock().unwrap_or_else(|p| p.into_inner()).events.clone()
    }

    /// Events so far that satisfy `f`.
    pub fn matching(&self, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.events().into_iter().filter(|e| f(e)).collect()
    }

    /// Waits until `done` holds over the events so far; panics after `timeout` (or when the
    /// script has exited) with everything it printed.
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
                    "the Node.js peer exited".to_string()
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
        self.events()
            .into_iter()
            .filter(|e| f(e))
            .nth(n - 1)
            .expect("waited for it")
    }

    /// Everything the script printed, for a failure message.
    pub fn dump(&self) -> String {
        let mut s = String::from("--- Node.js peer stdout ---\n");
        for e in self.events() {
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s.push_str("--- Node.js peer stderr ---\n");
        s.push_str(&self.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        s
    }
}

impl Drop for EjsPeer {
    fn drop(&mut self) {
        // Closing stdin makes the script exit by itself; kill it anyway, in case it is stuck.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An event `e` of kind `event` about the peer with public key `pubkey`.
pub fn is(e: &Value, event: &str, pubkey: &str) -> bool {
    e["event"] == event && e["pubkey"] == pubkey
}
