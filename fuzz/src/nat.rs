//! NAT traversal: the NAT-PMP codec and exchange fed a hostile gateway's datagrams, and the
//! port mapper fed a hostile gateway's answers, in any order and at any time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use devp2p_core::nat::pmp::{self, Exchange};
use devp2p_core::nat::{
    GatewayError, Granted, Outcome, PortMapper, PortMappingConfig, Protocol, Request, RequestId,
};
use devp2p_core::Instant;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Time passes.
    Wait(u16),
    /// The outstanding request (or, `stale`, another id) is answered.
    Answer {
        stale: bool,
        kind: u8,
        ok: bool,
        v4: [u8; 4],
        v6: bool,
        port: u16,
        lifetime: Option<u32>,
    },
    /// The node stops.
    Stop,
}

/// Any input: as a datagram, through the codec and an exchange; then as a script for the
/// mapper. Neither may panic; the mapper never has two requests out, never reports an
/// unreachable external IP or port 0, and once stopped asks nothing but deletions.
pub fn nat(data: &[u8]) {
    let _ = pmp::decode(data);
    let mut ex = Exchange::new(
        pmp::Request::Map {
            protocol: Protocol::Tcp,
            internal_port: 30303,
            external_port: 30303,
            lifetime_secs: 600,
        },
        Instant::ZERO,
    );
    let mut now = Instant::ZERO;
    for chunk in data.chunks(17) {
        while ex.poll_transmit(now).is_some() {}
        ex.handle_datagram(chunk);
        ex.handle_timeout(now);
        now += Duration::from_millis(u64::from(chunk[0]) * 100);
    }
    let _ = ex.poll_result();

    let mut u = Unstructured::new(data);
    let config = PortMappingConfig::scaled_to(Duration::from_secs(60));
    let mut m = PortMapper::new(
        config,
        Instant::ZERO,
        &[(Protocol::Tcp, 30303), (Protocol::Udp, 30303)],
    );
    let mut now = Instant::ZERO;
    let mut out: Option<(RequestId, Request)> = None;
    let mut stopped = false;
    for _ in 0..256 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if out.is_none() {
            out = m.poll_request(now);
            if let (true, Some((_, r))) = (stopped, &out) {
                assert!(matches!(r, Request::Unmap { .. }), "{r:?} after stop");
            }
        } else {
            assert!(m.poll_request(now).is_none(), "two requests out");
            assert!(m.poll_timeout().is_none());
        }
        match op {
            Op::Wait(ms) => now += Duration::from_millis(u64::from(ms) * 50),
            Op::Stop => {
                m.stop();
                stopped = true;
            }
            Op::Answer {
                stale,
                kind,
                ok,
                v4,
                v6,
                port,
                lifetime,
            } => {
                let Some((id, _)) = out else { continue };
                let id = if stale { RequestId(id.0 ^ 1) } else { id };
                let err = || GatewayError("refused".into());
                let ip = if v6 {
                    IpAddr::V6(Ipv4Addr::from(v4).to_ipv6_mapped())
                } else {
                    IpAddr::V4(v4.into())
                };
                let outcome = match kind % 3 {
                    0 => Outcome::ExternalIp(if ok { Ok(ip) } else { Err(err()) }),
                    1 => Outcome::Mapped(if ok {
                        Ok(Granted {
                            port,
                            lifetime: lifetime.map(|s| Duration::from_secs(s.into())),
                        })
                    } else {
                        Err(err())
                    }),
                    _ => Outcome::Unmapped(if ok { Ok(()) } else { Err(err()) }),
                };
                m.handle_outcome(now, id, outcome);
                if !m.is_waiting() {
                    out = None;
                }
            }
        }
        while m.poll_event().is_some() {}
        if let Some(ip) = m.external_ip() {
            assert!(!ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast());
            assert_ne!(ip, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        for p in [Protocol::Tcp, Protocol::Udp] {
            assert_ne!(m.external_port(p), Some(0));
        }
    }
}
