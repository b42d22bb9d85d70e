//! Argument parsers: each turns text into a value or a message naming what is wrong, which
//! clap reports as a usage error (exit status 2).

use std::time::Duration;

use devp2p_core::session::Protocol;
use devp2p_core::{Enode, Enr, NodeSecretKey};

/// Longest duration accepted (a day): longer is surely a typo (our choice).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Which driver runs the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// devp2p-tokio: one task per node.
    Tokio,
    /// devp2p-mio: every node in one mio::Poll on one thread.
    Mio,
}

/// `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (want e.g. 500ms, 5s, 2m, 1h)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (want ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "{s:?} is out of range (more than zero, at most {}h)",
            MAX_DURATION.as_secs() / 3600
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration the way [`parse_duration`] reads them.
pub fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// One node to reach: an enode URL with an IP address, or a signed record (`enr:…`) with
/// an IP, as geth's tools take them (geth's `devp2p discv4 listen` prints its node as a
/// record). A record's missing TCP or UDP port becomes 0; the commands that need the port say
/// so.
pub fn parse_enode(s: &str) -> Result<Enode, String> {
    let t = s.trim();
    if t.starts_with("enr:") {
        let r: Enr = t
            .parse()
            .map_err(|e| format!("{s:?}: not a valid record: {e}"))?;
        let ip = r
            .ip()
            .ok_or_else(|| format!("{s:?}: the record has no IP address"))?;
        let (tcp, udp) = if ip.is_ipv4() {
            (r.tcp4(), r.udp4())
        } else {
            (r.tcp6(), r.udp6())
        };
        if tcp.is_none() && udp.is_none() {
            return Err(format!(
                "{s:?}: the record has neither a TCP nor a UDP port"
            ));
        }
        return Ok(Enode::new(
            *r.public_key(),
            ip,
            tcp.unwrap_or(0),
            udp.unwrap_or(0),
        ));
    }
    let e: Enode = t
        .parse()
        .map_err(|e| format!("{s:?}: {e} (a node is an enode://… URL or an enr:… record)"))?;
    if e.ip().is_none() {
        return Err(format!(
            "{s:?} has no IP address (a DNS name or the key-only form cannot be dialled here)"
        ));
    }
    Ok(e)
}

/// A comma-separated list of nodes (enode URLs or records).
#[derive(Debug, Clone, Default)]
pub struct EnodeList(pub Vec<Enode>);

/// A node to reach over discv5: its record when given one (the handshake needs the key, and
/// a record also names the endpoint), else its enode URL (the node's record is then asked
/// for first).
#[derive(Debug, Clone)]
pub struct V5Node {
    /// The node's key, IP and ports (from the record when there is one).
    pub enode: Enode,
    /// Its record, when given as `enr:…`.
    pub record: Option<Enr>,
}

/// `enr:…` or `enode://…`, with an IP address and a UDP port.
pub fn parse_v5_node(s: &str) -> Result<V5Node, String> {
    let enode = parse_enode(s)?;
    if enode.udp_port == 0 {
        return Err(format!(
            "{s:?} has no UDP port: the node does not run discovery"
        ));
    }
    let t = s.trim();
    let record = if t.starts_with("enr:") {
        Some(t.parse::<Enr>().map_err(|e| format!("{s:?}: {e}"))?)
    } else {
        None
    };
    Ok(V5Node { enode, record })
}

/// Bootnodes for discv5 and `devp2p node`: records kept as records (discv5 can use them at
/// once), enode URLs as enodes.
#[derive(Debug, Clone, Default)]
pub struct NodeList {
    /// Those given as enode URLs.
    pub enodes: Vec<Enode>,
    /// Those given as `enr:` records.
    pub records: Vec<Enr>,
}

impl NodeList {
    /// Every node as it was given (enode URL or record), for messages naming them.
    pub fn as_given(&self) -> Vec<String> {
        let enodes = self.enodes.iter().map(ToString::to_string);
        enodes
            .chain(self.records.iter().map(ToString::to_string))
            .collect()
    }

    /// Whether the list names no node.
    pub fn is_empty(&self) -> bool {
        self.enodes.is_empty() && self.records.is_empty()
    }
}

/// Comma-separated enode URLs or records (empty entries ignored), each checked as
/// [`parse_enode`] checks it.
pub fn parse_node_list(s: &str) -> Result<NodeList, String> {
    let mut list = NodeList::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let enode = parse_enode(part)?;
        if part.starts_with("enr:") {
            list.records
                .push(part.parse().map_err(|e| format!("{part:?}: {e}"))?);
        } else {
            list.enodes.push(enode);
        }
    }
    Ok(list)
}

/// Comma-separated enode URLs or records (empty entries ignored).
pub fn parse_enode_list(s: &str) -> Result<EnodeList, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(parse_enode)
        .collect::<Result<_, _>>()
        .map(EnodeList)
}

/// DNS trees to walk (`devp2p node --dns`).
#[derive(Debug, Clone, Default)]
pub struct TreeList(pub Vec<devp2p_core::dnsdisc::TreeUrl>);

/// Comma-separated `enrtree://<key>@<domain>` URLs (empty entries ignored). A bad one is
/// refused, naming it, as geth refuses to start with one (go-ethereum #31233).
pub fn parse_tree_list(s: &str) -> Result<TreeList, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse().map_err(|e| {
                format!("{p:?} is not a DNS tree URL ({e}); the form is enrtree://<key>@<domain>")
            })
        })
        .collect::<Result<_, _>>()
        .map(TreeList)
}

/// A comma-separated list of capabilities.
#[derive(Debug, Clone, Default)]
pub struct Caps(pub Vec<Protocol>);

/// Known capabilities and their message counts (the protocols' specifications).
const KNOWN_CAPS: &[(&str, u64, u64)] = &[
    ("eth", 66, 17),
    ("eth", 67, 17),
    ("eth", 68, 17),
    ("eth", 69, 18),
    ("snap", 1, 8),
];

/// Comma-separated `name/version`, or `name/version:length` for capabilities not in the
/// built-in list.
pub fn parse_caps(s: &str) -> Result<Caps, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|cap| {
            let (spec, length) = match cap.split_once(':') {
                Some((spec, l)) => (
                    spec,
                    Some(l.parse::<u64>().map_err(|_| {
                        format!("{cap:?}: the message count after ':' is not a number")
                    })?),
                ),
                None => (cap, None),
            };
            let (name, version) = spec
                .split_once('/')
                .ok_or_else(|| format!("{cap:?} is not name/version (e.g. eth/68)"))?;
            let version: u64 = version
                .parse()
                .map_err(|_| format!("{cap:?}: version {version:?} is not a number"))?;
            if name.is_empty() || name.len() > 8 || !name.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(format!(
                    "{cap:?}: a capability name is 1 to 8 letters or digits"
                ));
            }
            let known = KNOWN_CAPS
                .iter()
                .find(|(n, v, _)| *n == name && *v == version)
                .map(|(_, _, l)| *l);
            let length = length
                .or(known)
                .ok_or_else(|| unknown_cap(name, version, spec))?;
            if length == 0 {
                return Err(format!("{cap:?}: a capability has at least one message"));
            }
            Ok(Protocol::new(name, version, length))
        })
        .collect::<Result<_, _>>()
        .map(Caps)
}

/// An unknown capability name is taken for a typo of a known one within one edit (insert,
/// delete, substitute, swap two neighbours) per this many characters, and at least one:
/// `eht` for `eth` is one swap, while `shh` (two edits from `eth`) is another protocol.
const CHARS_PER_TYPO: usize = 3;

/// The message for a capability not in [`KNOWN_CAPS`]: a known name with another version
/// lists that name's versions; a name near a known one suggests it.
fn unknown_cap(name: &str, version: u64, spec: &str) -> String {
    let versions = |n: &str| {
        KNOWN_CAPS
            .iter()
            .filter(|(k, _, _)| *k == n)
            .map(|(_, v, _)| v.to_string())
            .collect::<Vec<_>>()
    };
    let known = versions(name);
    let hint = if !known.is_empty() {
        format!(" (known {name} versions: {})", known.join(", "))
    } else {
        let lower = name.to_ascii_lowercase();
        let mut names: Vec<&str> = KNOWN_CAPS.iter().map(|(n, _, _)| *n).collect();
        names.dedup();
        names
            .iter()
            .map(|n| (edit_distance(&lower, n), *n))
            .filter(|(d, _)| *d <= (lower.chars().count() / CHARS_PER_TYPO).max(1))
            .min()
            .map(|(_, n)| {
                let v = versions(n);
                let guess = if v.contains(&version.to_string()) {
                    format!("{n}/{version}")
                } else {
                    format!("{n} ({})", v.join(", "))
                };
                format!(": did you mean {guess}?")
            })
            .unwrap_or_default()
    };
    format!(
        "unknown capability {spec}{hint}; for one not built in, give its message count as {spec}:N"
    )
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters, each one edit. Names are at most 8 characters, so the table is tiny.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A secret key as 64 hex characters (with or without 0x).
pub fn parse_secret_hex(s: &str) -> Result<NodeSecretKey, String> {
    let t = s.trim();
    NodeSecretKey::from_hex(t.strip_prefix("0x").unwrap_or(t))
        .map_err(|e| format!("not a secp256k1 secret key as 64 hex characters: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "s", "-1s", "0s", "5x", "1e9h", "NaNs", "25h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn caps_know_eth_and_snap_and_want_a_length_for_the_rest() {
        let caps = parse_caps("eth/68, snap/1,foo/2:5").unwrap().0;
        assert_eq!(caps[0], Protocol::new("eth", 68, 17));
        assert_eq!(caps[2], Protocol::new("foo", 2, 5));
        assert!(parse_caps("foo/2").unwrap_err().contains("foo/2:N"));
        assert!(parse_caps("eth").is_err());
        assert!(parse_caps("eth/x").is_err());
        assert!(parse_caps("toolongname/1:1").is_err());
        assert_eq!(parse_caps("").unwrap().0, vec![]);
    }

    #[test]
    fn a_node_is_an_enode_url_or_a_record_with_an_ip() {
        let key = NodeSecretKey::from_bytes(&[7; 32]).unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        // geth's `devp2p discv4 listen` prints a record with no `tcp`.
        let udp_only = Enr::builder().ip(ip).udp4(30301).sign(&key).unwrap();
        let e = parse_enode(&udp_only.to_string()).unwrap();
        assert_eq!(e, Enode::new(*key.public(), ip, 0, 30301));
        let both = Enr::builder()
            .ip(ip)
            .tcp4(30303)
            .udp4(30301)
            .sign(&key)
            .unwrap();
        let list = parse_enode_list(&format!("{both},{}", e)).unwrap().0;
        assert_eq!(list[0], Enode::new(*key.public(), ip, 30303, 30301));
        assert_eq!(list[1], e);

        let no_ip = Enr::builder().udp4(30301).sign(&key).unwrap();
        assert!(parse_enode(&no_ip.to_string())
            .unwrap_err()
            .contains("no IP address"));
        let no_ports = Enr::builder().ip(ip).sign(&key).unwrap();
        assert!(parse_enode(&no_ports.to_string())
            .unwrap_err()
            .contains("neither a TCP nor a UDP port"));
        assert!(parse_enode("enr:AAAA")
            .unwrap_err()
            .contains("not a valid record"));
        let e = parse_enode("nonsense").unwrap_err();
        assert!(e.contains("enode://") && e.contains("enr:"), "{e}");
    }

    #[test]
    fn a_mistyped_capability_suggests_the_known_one() {
        let e = parse_caps("eht/68").unwrap_err();
        assert!(e.contains("did you mean eth/68?"), "{e}");
        let e = parse_caps("snp/1").unwrap_err();
        assert!(e.contains("did you mean snap/1?"), "{e}");
        let e = parse_caps("eth/70").unwrap_err();
        assert!(e.contains("known eth versions: 66, 67, 68, 69"), "{e}");
        let e = parse_caps("shh/2").unwrap_err();
        assert!(!e.contains("did you mean"), "nothing close to shh: {e}");
        assert!(e.contains("shh/2:N"), "{e}");
        assert_eq!(edit_distance("eht", "eth"), 1);
        assert_eq!(edit_distance("", "eth"), 3);
    }
}
