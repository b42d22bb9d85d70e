//! `devp2p nodeset info|filter`, after geth's `cmd/devp2p`: statistics and filters over a
//! `nodes.json` node set (geth's format: an object keyed by node id, each entry `seq`,
//! `record`, `score`, `firstResponse`, `lastResponse`, `lastCheck`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use devp2p_core::Enr;
use serde_json::{json, Value};

use crate::args::parse_duration;
use crate::Failure;

/// One entry of a node set.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The node's record (its `seq` is written beside it).
    pub(crate) record: Enr,
    /// Liveness checks passed: +1 per answer, halved per silence (geth's crawler).
    pub(crate) score: i64,
    /// RFC 3339 times, as geth writes them ([`ZERO_TIME`] when never set).
    pub(crate) first_response: String,
    pub(crate) last_response: String,
    pub(crate) last_check: String,
}

/// Go's zero `time.Time`, which geth writes for times never set.
pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Reads a node set, with geth's checks (each key the record's id, `seq` the record's).
pub(crate) fn load(path: &Path) -> Result<BTreeMap<String, Entry>, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let obj = v.as_object().ok_or_else(|| {
        format!(
            "{}: not a node set (an object keyed by node id)",
            path.display()
        )
    })?;
    let mut set = BTreeMap::new();
    for (id, n) in obj {
        let bad = |what: String| format!("{}: node {id}: {what}", path.display());
        let text = n
            .get("record")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no record".into()))?;
        let record: Enr = text.parse().map_err(|e| bad(format!("{e}")))?;
        // geth's checks on load: the key is the record's id, the seq the record's.
        if record.node_id().to_string() != *id {
            return Err(bad(format!("holds the record of {}", record.node_id())).into());
        }
        if let Some(seq) = n.get("seq").and_then(Value::as_u64) {
            if seq != record.seq() {
                return Err(bad(format!("seq {seq}, but the record's is {}", record.seq())).into());
            }
        }
        let time = |k: &str| {
            n.get(k)
                .and_then(Value::as_str)
                .unwrap_or(ZERO_TIME)
                .to_owned()
        };
        set.insert(
            id.clone(),
            Entry {
                score: n.get("score").and_then(Value::as_i64).unwrap_or(0),
                first_response: time("firstResponse"),
                last_response: time("lastResponse"),
                last_check: time("lastCheck"),
                record,
            },
        );
    }
    Ok(set)
}

/// The set as geth writes it: ids sorted, fields in geth's order, four-space indents,
/// `score` left out when 0.
pub(crate) fn write(set: &BTreeMap<String, &Entry>) -> String {
    if set.is_empty() {
        return "{}".into();
    }
    let entries: Vec<String> = set
        .iter()
        .map(|(id, e)| {
            let score = if e.score != 0 {
                format!("\n        \"score\": {},", e.score)
            } else {
                String::new()
            };
            format!(
                "    {}: {{\n        \"seq\": {},\n        \"record\": {},{score}\n        \
                 \"firstResponse\": {},\n        \"lastResponse\": {},\n        \"lastCheck\": {}\n    }}",
                json!(id),
                e.record.seq(),
                json!(e.record.to_string()),
                json!(e.first_response),
                json!(e.last_response),
                json!(e.last_check),
            )
        })
        .collect();
    format!("{{\n{}\n}}", entries.join(",\n"))
}

/// `nodeset info <nodes.json>`: the node count and how many records carry each key.
pub fn info(path: &Path) -> Result<ExitCode, Failure> {
    let set = load(path)?;
    outln!("Set contains {} nodes.", set.len());
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in set.values() {
        for (k, _) in e.record.pairs() {
            *counts
                .entry(String::from_utf8_lossy(k).into_owned())
                .or_default() += 1;
        }
    }
    outln!("ENR attribute counts:");
    let width = counts.keys().map(String::len).max().unwrap_or(0);
    for (k, n) in &counts {
        outln!("{:>w$}: {n}", k, w = width + 1);
    }
    Ok(ExitCode::SUCCESS)
}

/// One parsed filter.
enum Filter {
    Ip(IpAddr, u8),
    MinAge(Duration),
    Has(&'static str),
    Dialable,
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
        match self {
            Filter::Ip(net, bits) => e.record.ip().is_some_and(|ip| in_prefix(&ip, net, *bits)),
            Filter::MinAge(min) => match (
                rfc3339_secs(&e.first_response),
                rfc3339_secs(&e.last_response),
            ) {
                (Some(first), Some(last)) => last - first >= min.as_secs() as i64,
                _ => false,
            },
            Filter::Has(key) => e.record.get_raw(key.as_bytes()).is_some(),
            Filter::Dialable => {
                e.record.tcp4().is_some_and(|p| p != 0)
                    || e.record.tcp6().is_some_and(|p| p != 0)
                    || ["quic", "quic6"]
                        .iter()
                        .any(|k| e.record.get_raw(k.as_bytes()).is_some())
            }
        }
    }
}

/// `nodeset filter <nodes.json> [filters…]`: the nodes every filter keeps, at most `-limit N`
/// of them (the highest scores), as a node set on stdout.
pub fn filter(path: &Path, args: &[String]) -> Result<ExitCode, Failure> {
    let mut filters = Vec::new();
    let mut limit: Option<usize> = None;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let value = || {
            args.get(i + 1)
                .map(String::as_str)
                .ok_or_else(|| format!("filter {flag:?} wants 1 argument, have 0"))
        };
        match flag {
            "-limit" => {
                let v = value()?;
                limit = Some(
                    v.parse()
                        .map_err(|_| format!("-limit: {v:?} is not a count"))?,
                );
                i += 2;
            }
            "-ip" => {
                let v = value()?;
                let (net, bits) = parse_prefix(v).map_err(|e| format!("-ip: {e}"))?;
                filters.push(Filter::Ip(net, bits));
                i += 2;
            }
            "-min-age" => {
                let v = value()?;
                filters.push(Filter::MinAge(
                    parse_duration(v).map_err(|e| format!("-min-age: {e}"))?,
                ));
                i += 2;
            }
            "-les-server" => {
                filters.push(Filter::Has("les"));
                i += 1;
            }
            "-snap" => {
                filters.push(Filter::Has("snap"));
                i += 1;
            }
            "-dialable" => {
                filters.push(Filter::Dialable);
                i += 1;
            }
            "-eth-network" => {
                return Err(
                    "filter \"-eth-network\" is not supported: it needs each network's \
                            fork schedule to check the records' eth fork ids, which this tool \
                            does not carry yet (use geth's devp2p for it)"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "invalid filter {other:?} (filters: -limit N, -ip CIDR, -min-age D, \
                     -les-server, -snap, -dialable)"
                )
                .into())
            }
        }
    }
    let set = load(path)?;
    let mut kept: Vec<(&String, &Entry)> = set
        .iter()
        .filter(|(_, e)| filters.iter().all(|f| f.keeps(e)))
        .collect();
    if let Some(n) = limit {
        if n < kept.len() {
            // The highest scores; equal scores in id order (geth's order there is random).
            kept.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(a.0.cmp(b.0)));
            kept.truncate(n);
        }
    }
    let out: BTreeMap<String, &Entry> = kept.into_iter().map(|(k, v)| (k.clone(), v)).collect();
    outln!("{}", write(&out));
    Ok(ExitCode::SUCCESS)
}

/// `a.b.c.d/n` or an IPv6 prefix.
fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (ip, bits) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a prefix (want e.g. 10.0.0.0/8)"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= max)
        .ok_or_else(|| format!("{bits:?} is not a prefix length (0..={max})"))?;
    Ok((ip, bits))
}

fn in_prefix(ip: &IpAddr, net: &IpAddr, bits: u8) -> bool {
    let (a, b, len) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            u128::from(u32::from(*a)) << 96,
            u128::from(u32::from(*b)) << 96,
            bits,
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(*a), u128::from(*b), bits),
        _ => return false,
    };
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(len));
    a & mask == b & mask
}

/// Seconds since 1970 of an RFC 3339 time as Go writes them (`2026-12-01T21:48:25Z`, with
/// optional fractions and a numeric offset); `None` if it is not one.
fn rfc3339_secs(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (H. Hinnant).
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_times_read_back() {
        assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_secs("2026-12-01T21:48:25Z"), Some(1_796_161_705));
        assert_eq!(
            rfc3339_secs("2026-12-01T22:48:25.123+01:00"),
            Some(1_796_161_705)
        );
        assert_eq!(rfc3339_secs(ZERO_TIME), Some(-62_135_596_800));
        assert_eq!(rfc3339_secs("yesterday"), None);
        for t in [0u64, 951_782_400, 1_796_161_705, 4_107_542_399] {
            assert_eq!(rfc3339_secs(&crate::discv4::rfc3339(t)), Some(t as i64));
        }
    }

    #[test]
    fn prefixes() {
        let (n, b) = parse_prefix("10.0.0.0/8").unwrap();
        assert!(in_prefix(&"10.1.2.3".parse().unwrap(), &n, b));
        assert!(!in_prefix(&"11.1.2.3".parse().unwrap(), &n, b));
        assert!(!in_prefix(&"::1".parse().unwrap(), &n, b));
        assert!(parse_prefix("10.0.0.0/33").is_err());
        assert!(parse_prefix("10.0.0.0").is_err());
    }
}
