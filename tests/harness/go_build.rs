#![allow(dead_code)] // each test crate that includes this uses a different part of it
//! Go programs the interop tests run against: our harness around go-ethereum's own packages
//! (`tests/interop/geth/`, a Go module pinned to go-ethereum v1.17.10) and geth's `devp2p`
//! tool built from the same pinned module. Included with `#[path]` by the test crates that
//! need them.
//!
//! [`geth_binary`] builds a program of that module with `go build` the first time a test asks
//! for it in a process (serialised across threads by a `OnceLock` per program and across
//! processes by a lock file; Go's build cache makes a rebuild of an unchanged program take a
//! second), into cargo's temporary directory for integration tests. Without `go` it fails the
//! test and says what to install; only `DEVP2P_SKIP_GETH=1` skips the tests, and says so.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set to `1` to skip the go-ethereum interop tests (they say so on stderr).
pub const SKIP_VAR: &str = "DEVP2P_SKIP_GETH";
/// The oldest Go the pinned go-ethereum builds with (its go.mod asks for 1.24; the machines
/// have 1.26).
pub const MIN_GO_MINOR: u32 = 24;
/// Longest one `go build` may take: the first one downloads the modules (about 20 s here)
/// and compiles go-ethereum's packages (about 2 min on two cores); later ones take seconds.
pub const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// geth's `devp2p` tool, built from the pinned module.
pub const GETH_DEVP2P: &str = "github.com/ethereum/go-ethereum/cmd/devp2p";

/// `<workspace>/tests/interop/geth`: the including crates sit one level below the root.
pub fn geth_module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the workspace")
        .join("tests")
        .join("interop")
        .join("geth")
}

/// Whether the go-ethereum test `test` should run: `false` (said on stderr) with
/// `DEVP2P_SKIP_GETH=1`, `true` otherwise.
pub fn geth_enabled(test: &str) -> bool {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        // Straight to the stream, so that the test harness's capture does not hide it.
        let _ = writeln!(
            std::io::stderr(),
            "go-ethereum interop test {test}: SKIPPED ({SKIP_VAR}=1)"
        );
        return false;
    }
    true
}

/// The executable of Go package `package` (a path in the module, `./harness` say, or
/// [`GETH_DEVP2P`]), built once per process. Panics, saying what is missing, when it cannot be
/// built.
pub fn geth_binary(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    let result = built
        .entry(package.to_string())
        .or_insert_with(|| build(package))
        .clone();
    result.unwrap_or_else(|e| {
        panic!("the go-ethereum interop tests cannot run: {e}\n(set {SKIP_VAR}=1 to skip them)")
    })
}

fn build(package: &str) -> Result<PathBuf, String> {
    check_go()?;
    let dir = geth_module_dir();
    let name = package.rsplit('/').next().unwrap_or(package).to_string();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("geth-interop");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let out = out_dir.join(format!("{name}-geth"));
    // Another test binary may be building at the same moment: one at a time.
    let lock_path = out_dir.join(format!(".{name}.lock"));
    let lock =
        File::create(&lock_path).map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    let started = Instant::now();
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o"])
        .arg(&out)
        .arg(package)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = run_bounded(cmd, GO_BUILD_TIMEOUT)
        .map_err(|e| format!("`go build {package}` in {}: {e}", dir.display()))?;
    if !output.status.success() {
        return Err(format!(
            "`go build {package}` in {} failed ({}):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if started.elapsed() > Duration::from_secs(5) {
        let _ = writeln!(
            std::io::stderr(),
            "go-ethereum interop: built {package} in {:.0?}",
            started.elapsed()
        );
    }
    Ok(out)
}

/// Checks that `go` runs and is recent enough.
fn check_go() -> Result<(), String> {
    let missing = |e: String| {
        format!(
            "the go-ethereum interop tests build go-ethereum's packages: `go version` failed \
             ({e}); install Go 1.{MIN_GO_MINOR} or newer and put `go` on PATH (with the Go \
             module proxy reachable, or the modules in the module cache)"
        )
    };
    let mut cmd = Command::new("go");
    cmd.arg("version")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_bounded(cmd, Duration::from_secs(30)).map_err(missing)?;
    if !out.status.success() {
        return Err(missing(out.status.to_string()));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "go version go1.26.8 linux/amd64"
    let minor = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("go1."))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match minor {
        Some(m) if m >= MIN_GO_MINOR => Ok(()),
        _ => Err(format!(
            "{} is too old or unrecognised: go-ethereum v1.17 needs Go 1.{MIN_GO_MINOR} or newer",
            text.trim()
        )),
    }
}

/// Runs `cmd` to completion, killing it after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<std::process::Output, String> {
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + limit;
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut v);
        }
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut v);
        }
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}
