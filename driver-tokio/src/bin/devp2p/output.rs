//! Standard output, and how node events are shown: one JSON object per line (`--json`), or a
//! log line.
//!
//! Every line the tool prints goes through `outln!`: a closed stdout (the reader of a pipe
//! went away, as in `devp2p node --json | head -1`) ends the command quietly with status 0,
//! where `println!` would panic. Status 0, not the 141 of a process killed by SIGPIPE: the
//! reader took what it wanted, which is no failure (and a 141 would fail a `set -o pipefail`
//! script that did nothing wrong). `devp2p node` first shuts down gracefully (saving its
//! database), then exits 0.

use devp2p_core::dial::DialKind;
use devp2p_core::discv4::Event as DiscoveryEvent;
use devp2p_core::discv5::discovery::Event as Discv5Event;
use devp2p_core::dnsdisc::Event as DnsEvent;
use devp2p_core::nat::{NatEvent, Protocol as NatProtocol};
use devp2p_core::node::{Direction, NodeEvent};
use devp2p_core::session::Side;
use serde_json::{json, Value};
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prints one line to stdout like `println!`, but a closed stdout ends the process quietly
/// with status 0 (see the [module docs](self)) instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// Set once a write found stdout closed: nothing more is written.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout. Returns false when stdout is closed (now or before). Any other
/// write error (a full disk under `> file`) is reported and exits with status 1: output that
/// was asked for was lost.
pub fn try_line(args: fmt::Arguments<'_>) -> bool {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    // Stdout is line-buffered: the newline flushes, so the error shows here, not later.
    match writeln!(out, "{args}").and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            false
        }
        Err(e) => {
            eprintln!("error: writing to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// [`try_line`], exiting with status 0 when stdout is closed: for commands that only print
/// their result and have nothing to clean up.
pub fn line(args: fmt::Arguments<'_>) {
    if !try_line(args) {
        std::process::exit(0);
    }
}

/// One JSON object with its fields in the given order (serde_json's own maps sort them),
/// so lines read the way the documentation shows them.
pub fn ordered(fields: &[(&str, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// The JSON line for an event worth a line: peers added and removed, lookups finished,
/// failed connections, our endpoint changed, port-mapping reports.
/// failed connections, and DNS discovery's records, roots and failures.
pub fn event_json(e: &NodeEvent) -> Option<String> {
    match e {
        NodeEvent::PeerAdded(p) => Some(ordered(&[
            ("event", json!("peer_added")),
            ("id", json!(p.id.to_string())),
            ("addr", json!(p.addr.to_string())),
            ("direction", json!(direction(p.direction))),
            ("client", json!(p.client_id)),
            (
                "caps",
                json!(p
                    .capabilities
                    .iter()
                    .map(|c| format!("{}/{}", c.name, c.version))
                    .collect::<Vec<_>>()),
            ),
            ("trusted", json!(p.trusted)),
            ("static", json!(p.is_static)),
        ])),
        NodeEvent::PeerRemoved {
            id,
            initiator,
            reason,
            error,
        } => Some(ordered(&[
            ("event", json!("peer_removed")),
            ("id", json!(id.to_string())),
            (
                "initiator",
                json!(match initiator {
                    Side::Local => "local",
                    Side::Remote => "remote",
                }),
            ),
            ("reason", json!(reason.map(|r| r.to_string()))),
            ("reason_code", json!(reason.map(|r| r.code()))),
            ("error", json!(error.as_ref().map(|e| e.to_string()))),
        ])),
        NodeEvent::Discovery(d) => match d.as_ref() {
            DiscoveryEvent::LookupFinished { id, target, nodes } => Some(ordered(&[
                ("event", json!("lookup")),
                ("lookup", json!(id.0)),
                ("target", json!(hex::encode(target))),
                ("found", json!(nodes.len())),
                (
                    "nodes",
                    json!(nodes.iter().map(|n| n.id().to_string()).collect::<Vec<_>>()),
                ),
            ])),
            _ => None,
        },
        NodeEvent::Discv5(d) => match d.as_ref() {
            Discv5Event::LookupFinished { id, target, nodes } => Some(ordered(&[
                ("event", json!("lookup_v5")),
                ("lookup", json!(id.0)),
                ("target", json!(target.to_string())),
                ("found", json!(nodes.len())),
                (
                    "nodes",
                    json!(nodes.iter().map(|n| n.id().to_string()).collect::<Vec<_>>()),
                ),
            ])),
            _ => None,
        },
        NodeEvent::EndpointChanged { old, new, seq } => Some(ordered(&[
            ("event", json!("endpoint_changed")),
            ("old", json!(old.map(|a| a.to_string()))),
            ("new", json!(new.to_string())),
            ("seq", json!(seq)),
        ])),
        NodeEvent::Nat(n) => Some(nat_json(n)),
        NodeEvent::Dns(d) => match d.as_ref() {
            DnsEvent::Node { tree, record } => Some(ordered(&[
                ("event", json!("dns_node")),
                ("tree", json!(tree.to_string())),
                ("id", json!(record.node_id().to_string())),
                ("record", json!(record.to_string())),
            ])),
            DnsEvent::RootUpdated { tree, seq } => Some(ordered(&[
                ("event", json!("dns_root")),
                ("tree", json!(tree.to_string())),
                ("seq", json!(seq)),
            ])),
            DnsEvent::Error(e) => Some(ordered(&[
                ("event", json!("dns_error")),
                ("tree", json!(e.tree.to_string())),
                ("name", json!(e.name)),
                ("error", json!(e.to_string())),
            ])),
            _ => None,
        },
        NodeEvent::ConnectionFailed(f) => Some(ordered(&[
            ("event", json!("connection_failed")),
            ("id", json!(f.remote.map(|k| k.id().to_string()))),
            ("addr", json!(f.addr.map(|a| a.to_string()))),
            ("direction", json!(direction(f.direction))),
            ("static", json!(f.dial == Some(DialKind::Static))),
            ("trusted", json!(f.trusted)),
            ("error", json!(f.error.to_string())),
        ])),
        _ => None,
    }
}

/// The JSON line of a port-mapping report: `nat_disabled`, `nat_external_ip`, `nat_mapped`,
/// `nat_abandoned`, `nat_unmapped` (with `error` null or the failure), or `nat_error` (with
/// the `request` that failed: `external_ip` or `map`).
fn nat_json(e: &NatEvent) -> String {
    let proto = |p: &NatProtocol| json!(p.to_string().to_ascii_lowercase());
    match e {
        NatEvent::MappingDisabled { listen } => ordered(&[
            ("event", json!("nat_disabled")),
            ("listen", json!(listen.to_string())),
        ]),
        NatEvent::ExternalIp { ip } => ordered(&[
            ("event", json!("nat_external_ip")),
            ("ip", json!(ip.to_string())),
        ]),
        NatEvent::ExternalIpFailed { error, failures } => ordered(&[
            ("event", json!("nat_error")),
            ("request", json!("external_ip")),
            ("error", json!(error.to_string())),
            ("failures", json!(failures)),
        ]),
        NatEvent::Mapped {
            protocol,
            internal_port,
            external_port,
        } => ordered(&[
            ("event", json!("nat_mapped")),
            ("protocol", proto(protocol)),
            ("internal_port", json!(internal_port)),
            ("external_port", json!(external_port)),
        ]),
        NatEvent::MappingFailed {
            protocol,
            internal_port,
            error,
            failures,
        } => ordered(&[
            ("event", json!("nat_error")),
            ("request", json!("map")),
            ("protocol", proto(protocol)),
            ("internal_port", json!(internal_port)),
            ("error", json!(error.to_string())),
            ("failures", json!(failures)),
        ]),
        NatEvent::MappingAbandoned {
            protocol,
            internal_port,
            external_port,
        } => ordered(&[
            ("event", json!("nat_abandoned")),
            ("protocol", proto(protocol)),
            ("internal_port", json!(internal_port)),
            ("external_port", json!(external_port)),
        ]),
        NatEvent::Unmapped {
            protocol,
            internal_port,
            external_port,
            error,
        } => ordered(&[
            ("event", json!("nat_unmapped")),
            ("protocol", proto(protocol)),
            ("internal_port", json!(internal_port)),
            ("external_port", json!(external_port)),
            ("error", json!(error.as_ref().map(|e| e.to_string()))),
        ]),
        other => ordered(&[("event", json!("nat")), ("text", json!(other.to_string()))]),
    }
}

/// A log line for the same events.
pub fn log_event(e: &NodeEvent) {
    match e {
        NodeEvent::PeerAdded(p) => tracing::info!(
            id = %p.id, addr = %p.addr, direction = direction(p.direction), client = %p.client_id,
            "peer added"
        ),
        NodeEvent::PeerRemoved {
            id,
            initiator,
            reason,
            error,
        } => tracing::info!(
            %id, ?initiator,
            reason = reason.map(|r| r.to_string()).unwrap_or_else(|| "none".into()),
            error = error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            "peer removed"
        ),
        NodeEvent::Discovery(d) => {
            if let DiscoveryEvent::LookupFinished { id, nodes, .. } = d.as_ref() {
                tracing::debug!(lookup = id.0, found = nodes.len(), "lookup finished");
            }
        }
        NodeEvent::Discv5(d) => match d.as_ref() {
            Discv5Event::LookupFinished { id, nodes, .. } => {
                tracing::debug!(lookup = id.0, found = nodes.len(), "discv5 lookup finished")
            }
            Discv5Event::NodeAdded(n) => {
                tracing::debug!(id = %n.id(), addr = %n.udp_addr(), "discv5 node added")
            }
            _ => {}
        },
        // Failed connections, endpoint changes and port-mapping reports are logged by the
        // driver itself (info for static and trusted peers, endpoint changes and mappings,
        // debug for the rest); messages and writability are the application's.
        _ => {}
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}
