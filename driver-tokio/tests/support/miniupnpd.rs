//! A real home router for the port-mapping tests: Debian's `miniupnpd` (UPnP IGD and NAT-PMP,
//! nftables backend), which `.ci/run` installs, in network namespaces the test creates and
//! removes. No packet reaches a real interface:
//!
//! ```text
//!   [lan ns]  vcl 10.201.0.2/24 ── veth ── vgw 10.201.0.1/24  [gw ns: miniupnpd]
//!   (the node; default route via 10.201.0.1)                    ext0 45.45.45.45/24
//!                                                                   │ veth
//!                                                               wan0 45.45.45.1/24 [wan ns]
//! ```
//!
//! The node runs in `lan`, whose only interfaces are its loopback and the veth to `gw`; the
//! `gw` namespace's only other link is a veth to `wan`, an empty namespace standing for the
//! internet. The external address is public-looking because miniupnpd refuses to forward from
//! a private or documentation address (its `addr_is_reserved` list covers RFC 1918, RFC 5737
//! and the rest); it exists only on that veth inside `gw`, and nothing is ever sent to it.
//! Needs root (`ip netns`, nftables).
#![allow(dead_code)]

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The router's address on the LAN.
pub const GATEWAY_LAN_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// The node's address on the LAN.
pub const NODE_LAN_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
/// The router's external (WAN) address, what the node should advertise.
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(45, 45, 45, 45);

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn miniupnpd_path() -> Option<PathBuf> {
    if std::env::var_os("DEVP2P_SKIP_MINIUPNPD").is_some() {
        eprintln!("DEVP2P_SKIP_MINIUPNPD is set: skipping the tests against a real router");
        return None;
    }
    let p = Path::new("/usr/sbin/miniupnpd");
    if p.exists() {
        return Some(p.into());
    }
    panic!(
        "miniupnpd not found: these tests map ports on a real UPnP / NAT-PMP router in a \
         network namespace. Install it (Debian: apt-get install miniupnpd-nftables nftables \
         miniupnpc), or set DEVP2P_SKIP_MINIUPNPD=1 to skip"
    );
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {} (these tests need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the router lets the LAN do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Forward any port of 1024 and above to the LAN.
    Allow,
    /// Forward only external ports from [`OTHER_PORT`] on (to any internal port): a request
    /// for another port is granted one of those (NAT-PMP), or refused (UPnP AddPortMapping,
    /// after which AddAnyPortMapping gets one).
    OtherPort,
    /// UPnP refuses every mapping. (Not for NAT-PMP: miniupnpd 2.3.1 then tries every port
    /// before answering, logging each, for minutes.)
    Deny,
    /// UPnP only: NAT-PMP is off, its port closed.
    UpnpOnly,
    /// No miniupnpd at all: a router without UPnP and NAT-PMP.
    Off,
}

/// The first external port [`Policy::OtherPort`] forwards: close above the node's 30303,
/// since miniupnpd's NAT-PMP looks for a free port one by one from the one asked for.
pub const OTHER_PORT: u16 = 30310;

/// The three namespaces and, unless [`Policy::Off`], miniupnpd; all removed on drop.
pub struct Router {
    child: Option<Child>,
    /// The node's namespace.
    pub lan: String,
    pub gw: String,
    pub wan: String,
    pub dir: PathBuf,
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.lan, &self.gw, &self.wan] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Router {
    pub fn start(bin: &Path, policy: Policy) -> Router {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("devp2p-nat-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Router {
            child: None,
            lan: format!("devp2p-lan-{tag}"),
            gw: format!("devp2p-gw-{tag}"),
            wan: format!("devp2p-wan-{tag}"),
            dir,
        };
        for ns in [&r.lan, &r.gw, &r.wan] {
            // One left over by an earlier run that was killed, if any (quietly: usually none).
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // The links are made inside the namespaces, so their names never meet the host's.
        ip(&[
            "-n", &r.gw, "link", "add", "vgw", "type", "veth", "peer", "name", "vcl", "netns",
            &r.lan,
        ]);
        ip(&[
            "-n", &r.gw, "link", "add", "ext0", "type", "veth", "peer", "name", "wan0", "netns",
            &r.wan,
        ]);
        ip(&[
            "-n",
            &r.gw,
            "addr",
            "add",
            &format!("{GATEWAY_LAN_IP}/24"),
            "dev",
            "vgw",
        ]);
        ip(&[
            "-n",
            &r.gw,
            "addr",
            "add",
            &format!("{EXTERNAL_IP}/24"),
            "dev",
            "ext0",
        ]);
        ip(&[
            "-n",
            &r.lan,
            "addr",
            "add",
            &format!("{NODE_LAN_IP}/24"),
            "dev",
            "vcl",
        ]);
        ip(&["-n", &r.wan, "addr", "add", "45.45.45.1/24", "dev", "wan0"]);
        for (ns, dev) in [
            (&r.gw, "vgw"),
            (&r.gw, "ext0"),
            (&r.lan, "vcl"),
            (&r.wan, "wan0"),
        ] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&[
            "-n",
            &r.lan,
            "route",
            "add",
            "default",
            "via",
            &GATEWAY_LAN_IP.to_string(),
        ]);
        r.check_isolated();
        if policy != Policy::Off {
            r.child = Some(r.miniupnpd(bin, policy));
        }
        r
    }

    /// The node's namespace holds its loopback and the veth to the router, nothing else.
    fn check_isolated(&self) {
        let out = Command::new("ip")
            .args(["-n", &self.lan, "-o", "link", "show"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or(""))
            .collect();
        assert_eq!(names, ["lo", "vcl"], "the node's namespace: {links}");
    }

    fn miniupnpd(&self, bin: &Path, policy: Policy) -> Child {
        // The chains miniupnpd fills (its nftables backend's default names), in the router's
        // namespace only.
        let rules = "table inet filter {\n\
             chain miniupnpd {\n}\n\
             chain prerouting_miniupnpd {\n}\n\
             chain postrouting_miniupnpd {\n}\n\
             chain forward {\n type filter hook forward priority 0; policy drop;\n jump miniupnpd\n}\n\
             chain prerouting {\n type nat hook prerouting priority -100; policy accept;\n jump prerouting_miniupnpd\n}\n\
             chain postrouting {\n type nat hook postrouting priority 100; policy accept;\n jump postrouting_miniupnpd\n}\n\
             }\n";
        let rules_file = self.dir.join("rules.nft");
        std::fs::write(&rules_file, rules).unwrap();
        let out = self
            .exec("nft")
            .args(["-f", rules_file.to_str().unwrap()])
            .output()
            .expect("running nft (Debian: apt-get install nftables)");
        assert!(
            out.status.success(),
            "nft in the router's namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let permission = match policy {
            Policy::Allow | Policy::UpnpOnly => {
                "allow 1024-65535 10.201.0.0/24 1024-65535\n".to_string()
            }
            Policy::OtherPort => format!(
                "allow {OTHER_PORT}-{} 10.201.0.0/24 1024-65535\n",
                OTHER_PORT + 9
            ),
            Policy::Deny | Policy::Off => String::new(),
        };
        let natpmp = if policy == Policy::UpnpOnly {
            "no"
        } else {
            "yes"
        };
        let conf = format!(
            "ext_ifname=ext0\n\
             listening_ip=vgw\n\
             port=0\n\
             enable_natpmp={natpmp}\n\
             enable_upnp=yes\n\
             secure_mode=yes\n\
             system_uptime=no\n\
             min_lifetime=2\n\
             lease_file={}\n\
             uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\n\
             {permission}\
             deny 0-65535 0.0.0.0/0 0-65535\n",
            self.lease_file().display()
        );
        let conf_file = self.dir.join("miniupnpd.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let mut child = self
            .exec_path(bin)
            .args(["-f", conf_file.to_str().unwrap(), "-d"])
            .args(["-P", self.dir.join("miniupnpd.pid").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting miniupnpd");
        // Ready once both services listen (its log says so; stderr is read to the end below,
        // so the log goes to a file through a thread).
        let mut stderr = child.stderr.take().unwrap();
        let log_path = self.log_file();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut f = std::fs::File::create(log_path).unwrap();
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = std::io::Write::write_all(&mut f, &buf[..n]);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let natpmp_up = policy == Policy::UpnpOnly || log.contains("NAT-PMP");
            if log.contains("HTTP listening") && natpmp_up {
                return child;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("miniupnpd exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "miniupnpd did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `program` in the router's namespace.
    fn exec(&self, program: &str) -> Command {
        self.exec_path(Path::new(program))
    }

    fn exec_path(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.gw]).arg(program);
        c
    }

    /// `program` in the node's namespace.
    pub fn on_lan(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.lan]).arg(program);
        c
    }

    pub fn lease_file(&self) -> PathBuf {
        self.dir.join("leases")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("miniupnpd.log")
    }

    /// What miniupnpd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// The router's mappings from its lease file: (protocol, external port, internal
    /// address, internal port, expiry in unix seconds, description).
    pub fn leases(&self) -> Vec<Lease> {
        std::fs::read_to_string(self.lease_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.splitn(6, ':').collect();
                if f.len() != 6 {
                    return None;
                }
                Some(Lease {
                    protocol: f[0].to_string(),
                    external_port: f[1].parse().ok()?,
                    internal: format!("{}:{}", f[2], f[3]),
                    expires: f[4].parse().ok()?,
                    description: f[5].to_string(),
                })
            })
            .collect()
    }

    /// The mappings as a UPnP client on the LAN lists them (`upnpc -l`, from miniupnpc):
    /// "TCP 30303->10.201.0.2:30303" each.
    pub fn upnpc_list(&self) -> Vec<String> {
        let out = self
            .on_lan(Path::new("upnpc"))
            .arg("-l")
            .output()
            .expect("running upnpc (Debian: apt-get install miniupnpc)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[0].parse::<u32>().is_ok() && (f[1] == "TCP" || f[1] == "UDP"))
                    .then(|| format!("{} {}", f[1], f[2]))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub protocol: String,
    pub external_port: u16,
    pub internal: String,
    pub expires: u64,
    pub description: String,
}
