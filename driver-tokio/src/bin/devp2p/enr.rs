//! `devp2p enr decode`: every field of a record, signature verified, or of an enode URL.

use std::process::ExitCode;

use devp2p_core::{Enode, Enr};

use crate::Failure;

pub fn decode(text: &str) -> Result<ExitCode, Failure> {
    let text = text.trim();
    if devp2p_core::enode::has_enode_scheme(text) {
        let e: Enode = text
            .parse()
            .map_err(|e| format!("not a valid enode URL: {e}"))?;
        outln!("Node ID:     {}", e.id());
        outln!("Public key:  {}", e.public_key);
        match &e.host {
            Some(h) => outln!("Host:        {h}"),
            None => outln!("Host:        (none)"),
        }
        outln!("TCP:         {}", e.tcp_port);
        outln!("UDP:         {}", e.udp_port);
        outln!("Signature:   none (enode URLs are not signed)");
        return Ok(ExitCode::SUCCESS);
    }
    let r: Enr = text.parse().map_err(|e| {
        format!(
            "not a valid record: {e} (a record is `enr:` and the unpadded base64url of a \
                 signed RLP list, as `devp2p key to-enr` prints; an enode URL starts with \
                 `enode://`)"
        )
    })?;
    print_record(&r);
    Ok(ExitCode::SUCCESS)
}

/// Prints a verified record, one field per line.
pub fn print_record(r: &Enr) {
    outln!("Node ID:     {}", r.node_id());
    outln!(
        "Public key:  {} (compressed {})",
        r.public_key(),
        hex::encode(r.public_key().compressed())
    );
    outln!(
        "Signature:   {} (valid, scheme v4)",
        hex::encode(r.signature())
    );
    outln!("Seq:         {}", r.seq());
    if let Some(ip) = r.ip4() {
        outln!("IP:          {ip}");
    }
    if let Some(p) = r.tcp4() {
        outln!("TCP:         {p}");
    }
    if let Some(p) = r.udp4() {
        outln!("UDP:         {p}");
    }
    if let Some(ip) = r.ip6() {
        // tcp6/udp6 default to tcp/udp when absent (EIP-778), so they mean something only
        // beside an IPv6 address.
        outln!("IP6:         {ip}");
        if let Some(p) = r.tcp6() {
            outln!("TCP6:        {p}");
        }
        if let Some(p) = r.udp6() {
            outln!("UDP6:        {p}");
        }
    }
    outln!("Pairs ({}):", r.pairs().count());
    for (k, v) in r.pairs() {
        let key = String::from_utf8_lossy(k);
        let shown = devp2p_core::rlp_ext::exact_item(v)
            .ok()
            .filter(|i| i.is_data())
            .and_then(|i| i.data().ok().map(<[u8]>::to_vec));
        let value = match (key.as_ref(), shown) {
            ("id", Some(d)) => format!("{:?}", String::from_utf8_lossy(&d)),
            ("ip", Some(d)) if d.len() == 4 => {
                std::net::Ipv4Addr::new(d[0], d[1], d[2], d[3]).to_string()
            }
            ("ip6", Some(d)) => <[u8; 16]>::try_from(d.as_slice()).map_or_else(
                |_| format!("0x{}", hex::encode(&d)),
                |a| std::net::Ipv6Addr::from(a).to_string(),
            ),
            ("tcp" | "udp" | "tcp6" | "udp6", Some(d)) if d.len() <= 2 => d
                .iter()
                .fold(0u32, |acc, b| acc << 8 | u32::from(*b))
                .to_string(),
            (_, Some(d)) => format!("0x{}", hex::encode(d)),
            (_, None) => format!("{} (raw RLP)", hex::encode(v)),
        };
        outln!("  {key:10} {value}");
    }
    if let (Some(ip), Some(tcp)) = (r.ip(), r.tcp4().or(r.tcp6())) {
        let udp = r.udp4().or(r.udp6()).unwrap_or(tcp);
        outln!("Enode:       {}", Enode::new(*r.public_key(), ip, tcp, udp));
    }
    outln!("Size:        {} bytes", r.as_bytes().len());
}
