//! A real DNS server for the DNS discovery tests: dnsmasq (Debian's `dnsmasq-base`, which
//! `.ci/run` installs) serving TXT records on 127.0.0.1, every text longer than 255 bytes
//! split into several character-strings as real zones publish them; optionally inside a
//! network namespace of its own on port 53, for programs that only use the system resolver.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn dnsmasq_path() -> Option<PathBuf> {
    if std::env::var_os("DEVP2P_SKIP_DNSMASQ").is_some() {
        eprintln!("DEVP2P_SKIP_DNSMASQ is set: skipping the tests against a real DNS server");
        return None;
    }
    for p in ["/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"] {
        if Path::new(p).exists() {
            return Some(p.into());
        }
    }
    panic!(
        "dnsmasq not found: these tests serve DNS trees from a real DNS server on 127.0.0.1. \
         Install it (Debian: apt-get install dnsmasq-base), or set DEVP2P_SKIP_DNSMASQ=1 to skip"
    );
}

/// A dnsmasq serving `txt` (name → text) on 127.0.0.1, stopped on drop.
pub struct Dnsmasq {
    child: Child,
    /// The port it serves on (UDP and TCP).
    pub port: u16,
    /// The network namespace it runs in, removed on drop, if any.
    netns: Option<String>,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
    }
}

impl Dnsmasq {
    /// `program` run inside the server's network namespace (where the system resolver is
    /// this server), or as is when it has none.
    pub fn command(&self, program: &Path) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// dnsmasq on 127.0.0.1:53 of a network namespace made for it, whose resolv.conf
/// (`/etc/netns/<ns>/resolv.conf`, which `ip netns exec` puts in place) names it: for
/// programs that only ask the system resolver, such as geth's `devp2p dns sync`. Nothing in
/// the namespace reaches outside it. Needs root (`ip netns add`); fails saying so.
pub fn serve_in_netns(bin: &Path, dir: &Path, txt: &BTreeMap<String, String>) -> Dnsmasq {
    let ns = format!("devp2p-dns-{}", std::process::id());
    // One left over by an earlier run that was killed, if any (quietly: usually none).
    let _ = Command::new("ip")
        .args(["netns", "del", &ns])
        .stderr(Stdio::null())
        .status();
    let made = Command::new("ip")
        .args(["netns", "add", &ns])
        .output()
        .expect("running ip");
    assert!(
        made.status.success(),
        "cannot create a network namespace (needs root and iproute2): {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let up = Command::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success(), "loopback up in {ns}");
    let etc = Path::new("/etc/netns").join(&ns);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n",
    )
    .unwrap();
    start(bin, dir, txt, Some(&ns))
}

pub fn serve(bin: &Path, dir: &Path, txt: &BTreeMap<String, String>) -> Dnsmasq {
    start(bin, dir, txt, None)
}

/// Writes the configuration and starts dnsmasq: on a free port of 127.0.0.1, or, in `netns`,
/// on 127.0.0.1:53 of that namespace.
fn start(bin: &Path, dir: &Path, txt: &BTreeMap<String, String>, netns: Option<&str>) -> Dnsmasq {
    // One TXT record per name; texts over 255 bytes go as several character-strings.
    let mut conf = String::new();
    for (name, text) in txt {
        assert!(!text.contains('"'), "entries never hold quotes");
        let pieces: Vec<String> = text
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
            .collect();
        conf.push_str(&format!("txt-record={name},{}\n", pieces.join(",")));
    }
    let conf_path = dir.join("dnsmasq.conf");
    std::fs::write(&conf_path, conf).unwrap();
    // A free UDP port (dnsmasq serves TCP on the same one), or 53 in a namespace of its own.
    let port = match netns {
        Some(_) => 53,
        None => UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let child = cmd
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--except-interface=nonexistent0",
            &format!("--port={port}"),
            &format!("--conf-file={}", conf_path.display()),
            &format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
            "--user=root",
            "--log-facility=-",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting dnsmasq");
    let mut d = Dnsmasq {
        child,
        port,
        netns: netns.map(str::to_owned),
    };
    // Ready once it answers on its port.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = d.child.try_wait() {
            let mut err = String::new();
            d.child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("dnsmasq exited ({status}): {err}");
        }
        let ready = match &d.netns {
            None => std::net::TcpStream::connect(("127.0.0.1", d.port)).is_ok(),
            Some(ns) => Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    ns,
                    "bash",
                    "-c",
                    "exec 3<>/dev/tcp/127.0.0.1/53",
                ])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        };
        if ready {
            return d;
        }
        assert!(Instant::now() < deadline, "dnsmasq did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}
