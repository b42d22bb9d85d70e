//! NAT-PMP (RFC 6886): the messages as a sans-IO codec, and one request's exchange with the
//! gateway (retransmission, matching the answer) as a small machine
//! ([DNSDISC_NAT.md §B.11](crate::spec::dnsdisc_nat)).
//!
//! Written here rather than taken from the `natpmp` crate: that crate reads its 16-byte
//! receive buffer whatever the datagram's length (a 2-byte datagram decodes as a mapping of
//! zeros), casts unaligned byte slices to integers through raw pointers, does not match an
//! answer to the request it answers, and finds the gateway through C code. The format is small
//! and fixed, so the codec below checks every length before it reads.
//!
//! The driver owns a UDP socket and does what an [`Exchange`] asks:
//!
//! ```
//! use devp2p_core::nat::pmp::{Exchange, Request, Response};
//! use devp2p_core::nat::Protocol;
//! use devp2p_core::Instant;
//!
//! let request = Request::Map { protocol: Protocol::Tcp, internal_port: 30303, external_port: 30303, lifetime_secs: 600 };
//! let mut ex = Exchange::new(request, Instant::ZERO);
//! let datagram = ex.poll_transmit(Instant::ZERO).expect("the first attempt is due at once").to_vec();
//! assert_eq!(datagram.len(), 12);
//! // The gateway's answer: TCP (130), success, epoch 7, internal 30303, granted 30303, 600 s.
//! let mut answer = vec![0, 130, 0, 0, 0, 0, 0, 7];
//! answer.extend_from_slice(&[0x76, 0x5f, 0x76, 0x5f, 0, 0, 0x02, 0x58]);
//! ex.handle_datagram(&answer);
//! let granted = ex.poll_result().unwrap().unwrap();
//! assert!(matches!(granted, Response::Mapping { external_port: 30303, lifetime_secs: 600, .. }));
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::Protocol;
use crate::time::Instant;

/// The UDP port NAT-PMP gateways listen on (RFC 6886 §3.1).
pub const GATEWAY_PORT: u16 = 5351;
/// The protocol version NAT-PMP messages carry (RFC 6886 §3).
pub const VERSION: u8 = 0;
/// Responses have the request's opcode plus this (RFC 6886 §3.2).
pub const RESPONSE_BIT: u8 = 128;
/// Wait before the first retransmission, doubled after each (RFC 6886 §3.1; jackpal/go-nat-pmp,
/// which geth uses, and libnatpmp too).
pub const INITIAL_RETRANSMIT_INTERVAL: Duration = Duration::from_millis(250);
/// Transmissions of one request at most before giving up: about 128 s in all (RFC 6886 §3.1;
/// go-nat-pmp's default, which geth keeps).
pub const MAX_ATTEMPTS: u32 = 9;
/// The largest datagram a gateway sends: RFC 6886 §3.5 lets a gateway echo up to 1100 bytes of
/// a request it does not understand. A receive buffer this long plus one byte tells an
/// oversized datagram from a valid one.
pub const MAX_DATAGRAM_SIZE: usize = 1100;

const OP_EXTERNAL_ADDRESS: u8 = 0;
const OP_MAP_UDP: u8 = 1;
const OP_MAP_TCP: u8 = 2;
/// Length of an external-address response (RFC 6886 §3.2).
const EXTERNAL_ADDRESS_RESPONSE_LEN: usize = 12;
/// Length of a mapping response (RFC 6886 §3.3).
const MAPPING_RESPONSE_LEN: usize = 16;

/// A request to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// "What is your external IPv4 address?"
    ExternalAddress,
    /// "Forward `external_port` (a suggestion) to my `internal_port` for `lifetime_secs`."
    /// With `lifetime_secs` 0 and `external_port` 0 it deletes the mapping of `internal_port`
    /// (RFC 6886 §3.4).
    Map {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port.
        internal_port: u16,
        /// The external port we would like; the gateway may grant another.
        external_port: u16,
        /// Requested lifetime in seconds.
        lifetime_secs: u32,
    },
}

impl Request {
    /// The deletion of the mapping of `internal_port` (RFC 6886 §3.4; geth's `DeleteMapping`).
    pub fn unmap(protocol: Protocol, internal_port: u16) -> Self {
        Request::Map {
            protocol,
            internal_port,
            external_port: 0,
            lifetime_secs: 0,
        }
    }

    fn opcode(&self) -> u8 {
        match self {
            Request::ExternalAddress => OP_EXTERNAL_ADDRESS,
            Request::Map {
                protocol: Protocol::Udp,
                ..
            } => OP_MAP_UDP,
            Request::Map {
                protocol: Protocol::Tcp,
                ..
            } => OP_MAP_TCP,
        }
    }

    /// The request on the wire: 2 bytes for the external address, 12 for a mapping.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Request::ExternalAddress => vec![VERSION, OP_EXTERNAL_ADDRESS],
            Request::Map {
                internal_port,
                external_port,
                lifetime_secs,
                ..
            } => {
                let mut b = Vec::with_capacity(12);
                b.extend_from_slice(&[VERSION, self.opcode(), 0, 0]);
                b.extend_from_slice(&internal_port.to_be_bytes());
                b.extend_from_slice(&external_port.to_be_bytes());
                b.extend_from_slice(&lifetime_secs.to_be_bytes());
                b
            }
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The gateway's external address.
    ExternalAddress {
        /// Seconds since the gateway's mapping table was (re)started.
        epoch: u32,
        /// The address.
        ip: Ipv4Addr,
    },
    /// A mapping granted (or, asked with lifetime 0, deleted).
    Mapping {
        /// TCP or UDP.
        protocol: Protocol,
        /// Seconds since the gateway's mapping table was (re)started.
        epoch: u32,
        /// Our port.
        internal_port: u16,
        /// The external port granted: not necessarily the one asked for.
        external_port: u16,
        /// The lifetime granted, in seconds: not necessarily the one asked for.
        lifetime_secs: u32,
    },
}

/// A non-zero result code (RFC 6886 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// 1: the gateway speaks another version.
    UnsupportedVersion,
    /// 2: mappings are refused (NAT-PMP turned off, or not for this client).
    NotAuthorized,
    /// 3: the gateway has no external address itself (its uplink is down).
    NetworkFailure,
    /// 4: no ports left.
    OutOfResources,
    /// 5: the gateway does not know the request.
    UnsupportedOpcode,
    /// Any other value.
    Other(u16),
}

impl ResultCode {
    fn from_u16(v: u16) -> Self {
        match v {
            1 => ResultCode::UnsupportedVersion,
            2 => ResultCode::NotAuthorized,
            3 => ResultCode::NetworkFailure,
            4 => ResultCode::OutOfResources,
            5 => ResultCode::UnsupportedOpcode,
            v => ResultCode::Other(v),
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultCode::UnsupportedVersion => f.write_str("unsupported version (1)"),
            ResultCode::NotAuthorized => {
                f.write_str("not authorized (2): NAT-PMP is off, or refused to this host")
            }
            ResultCode::NetworkFailure => {
                f.write_str("network failure (3): the gateway has no external address")
            }
            ResultCode::OutOfResources => f.write_str("out of resources (4): no ports left"),
            ResultCode::UnsupportedOpcode => f.write_str("unsupported opcode (5)"),
            ResultCode::Other(v) => write!(f, "result code {v}"),
        }
    }
}

/// Why a datagram is not a valid answer, or why the gateway said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its opcode requires.
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// Longer than its opcode allows, or than any gateway datagram ([`MAX_DATAGRAM_SIZE`]).
    TooLong {
        /// Bytes received.
        len: usize,
    },
    /// Another version than 0 (a PCP gateway answers version 2, say).
    Version(u8),
    /// An opcode without the response bit: a request, not an answer.
    NotAResponse(u8),
    /// A response opcode NAT-PMP does not define.
    UnknownOpcode(u8),
    /// The gateway answered with an error.
    Refused(ResultCode),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { len, needed } => {
                write!(f, "a {len}-byte datagram where {needed} bytes are needed")
            }
            DecodeError::TooLong { len } => write!(f, "an oversized {len}-byte datagram"),
            DecodeError::Version(v) => write!(f, "version {v} (NAT-PMP is version 0)"),
            DecodeError::NotAResponse(op) => write!(f, "opcode {op}, a request, not an answer"),
            DecodeError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            DecodeError::Refused(code) => write!(f, "the gateway refused: {code}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a datagram from the gateway. Every length is checked before it is read: an error
/// answer needs its version, opcode and result code (4 bytes), a success exactly its opcode's
/// length.
pub fn decode(data: &[u8]) -> Result<Response, DecodeError> {
    if data.len() > MAX_DATAGRAM_SIZE {
        return Err(DecodeError::TooLong { len: data.len() });
    }
    let short = |needed| DecodeError::TooShort {
        len: data.len(),
        needed,
    };
    if data.len() < 4 {
        return Err(short(4));
    }
    if data[0] != VERSION {
        return Err(DecodeError::Version(data[0]));
    }
    let opcode = data[1];
    if opcode < RESPONSE_BIT {
        return Err(DecodeError::NotAResponse(opcode));
    }
    let expected = match opcode - RESPONSE_BIT {
        OP_EXTERNAL_ADDRESS => EXTERNAL_ADDRESS_RESPONSE_LEN,
        OP_MAP_UDP | OP_MAP_TCP => MAPPING_RESPONSE_LEN,
        _ => return Err(DecodeError::UnknownOpcode(opcode)),
    };
    let result = be16(data, 2);
    if result != 0 {
        return Err(DecodeError::Refused(ResultCode::from_u16(result)));
    }
    if data.len() < expected {
        return Err(short(expected));
    }
    if data.len() > expected {
        return Err(DecodeError::TooLong { len: data.len() });
    }
    let epoch = be32(data, 4);
    Ok(match opcode - RESPONSE_BIT {
        OP_EXTERNAL_ADDRESS => Response::ExternalAddress {
            epoch,
            ip: Ipv4Addr::new(data[8], data[9], data[10], data[11]),
        },
        op => Response::Mapping {
            protocol: if op == OP_MAP_UDP {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            epoch,
            internal_port: be16(data, 8),
            external_port: be16(data, 10),
            lifetime_secs: be32(data, 12),
        },
    })
}

/// Why an [`Exchange`] ended without a [`Response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    /// The gateway answered this request with an error code.
    Refused(ResultCode),
    /// No valid answer after [`MAX_ATTEMPTS`] transmissions; `last_invalid` is what was wrong
    /// with the last datagram that came back, if any did.
    NoAnswer {
        /// Transmissions made.
        attempts: u32,
        /// The last datagram that was not a valid answer.
        last_invalid: Option<DecodeError>,
    },
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Refused(code) => write!(f, "the NAT-PMP gateway refused: {code}"),
            ExchangeError::NoAnswer {
                attempts,
                last_invalid: None,
            } => write!(
                f,
                "no answer from the NAT-PMP gateway to {attempts} attempts (is NAT-PMP on in \
                 the router, and is this its address?)"
            ),
            ExchangeError::NoAnswer {
                attempts,
                last_invalid: Some(e),
            } => write!(
                f,
                "no valid answer from the NAT-PMP gateway to {attempts} attempts (the last \
                 datagram was {e})"
            ),
        }
    }
}

impl std::error::Error for ExchangeError {}

/// One request and its answer: sends it, retransmits it at [`INITIAL_RETRANSMIT_INTERVAL`]
/// doubling, and ends with the matching answer, the gateway's error, or after
/// [`MAX_ATTEMPTS`] with none. Datagrams that do not answer this request (another opcode,
/// another internal port: a late answer to an earlier request) are ignored, as are malformed
/// ones; the caller passes only datagrams from the gateway's address and port.
///
/// Drive it like every machine here: after each input, send what
/// [`poll_transmit`](Self::poll_transmit) gives, check [`poll_result`](Self::poll_result),
/// and wait until [`poll_timeout`](Self::poll_timeout) for the next datagram.
#[derive(Debug, Clone)]
pub struct Exchange {
    request: Request,
    bytes: Vec<u8>,
    attempts: u32,
    /// When the next transmission is due (`None` once every attempt is spent).
    next_send: Option<Instant>,
    /// When the last attempt stops being waited for.
    give_up: Option<Instant>,
    interval: Duration,
    last_invalid: Option<DecodeError>,
    result: Option<Result<Response, ExchangeError>>,
    /// Taken by `poll_result`.
    reported: bool,
    max_attempts: u32,
}

impl Exchange {
    /// The exchange of `request`, its first transmission due at `now`.
    pub fn new(request: Request, now: Instant) -> Self {
        Self::with_attempts(request, now, MAX_ATTEMPTS)
    }

    /// The same, giving up after `max_attempts` transmissions (at least 1). Gateway discovery
    /// uses few: it waits a second, not two minutes.
    pub fn with_attempts(request: Request, now: Instant, max_attempts: u32) -> Self {
        Exchange {
            request,
            bytes: request.encode(),
            attempts: 0,
            next_send: Some(now),
            give_up: None,
            interval: INITIAL_RETRANSMIT_INTERVAL,
            last_invalid: None,
            result: None,
            reported: false,
            max_attempts: max_attempts.max(1),
        }
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Transmissions so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The datagram to send to the gateway now, if a transmission is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        if self.result.is_some() {
            return None;
        }
        let due = self.next_send.filter(|t| *t <= now)?;
        self.attempts += 1;
        let wait = self.interval;
        self.interval = self.interval.saturating_mul(2);
        if self.attempts >= self.max_attempts {
            self.next_send = None;
            self.give_up = Some(now.max(due) + wait);
        } else {
            self.next_send = Some(now.max(due) + wait);
        }
        Some(&self.bytes)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the next transmission, or the end
    /// of the wait for the last one. `None` once the exchange has ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.result.is_some() {
            return None;
        }
        self.next_send.or(self.give_up)
    }

    /// Time passed: ends the exchange when the last attempt's wait is over (the next
    /// transmission, if one is due, is [`poll_transmit`](Self::poll_transmit)'s).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.result.is_none() && self.give_up.is_some_and(|t| t <= now) {
            self.result = Some(Err(ExchangeError::NoAnswer {
                attempts: self.attempts,
                last_invalid: self.last_invalid,
            }));
        }
    }

    /// A datagram from the gateway's address and port. Returns whether it answered this
    /// request (successfully or with an error code).
    pub fn handle_datagram(&mut self, data: &[u8]) -> bool {
        if self.result.is_some() {
            return false;
        }
        let answers = data.len() >= 2 && data[1] == self.request.opcode() | RESPONSE_BIT;
        match decode(data) {
            Ok(r) if answers && self.matches(&r) => {
                self.result = Some(Ok(r));
                true
            }
            Err(DecodeError::Refused(code)) if answers => {
                self.result = Some(Err(ExchangeError::Refused(code)));
                true
            }
            Ok(_) => false,
            Err(e) => {
                self.last_invalid = Some(e);
                false
            }
        }
    }

    /// The end of the exchange, once, when it has ended.
    pub fn poll_result(&mut self) -> Option<Result<Response, ExchangeError>> {
        if self.reported {
            return None;
        }
        let r = self.result?;
        self.reported = true;
        Some(r)
    }

    /// Whether the exchange has ended.
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    fn matches(&self, r: &Response) -> bool {
        match (self.request, r) {
            (Request::ExternalAddress, Response::ExternalAddress { .. }) => true,
            (
                Request::Map {
                    protocol,
                    internal_port,
                    ..
                },
                Response::Mapping {
                    protocol: p,
                    internal_port: i,
                    ..
                },
            ) => protocol == *p && internal_port == *i,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping_answer(op: u8, internal: u16, external: u16, lifetime: u32) -> Vec<u8> {
        let mut b = vec![0, op, 0, 0, 0, 0, 1, 0];
        b.extend_from_slice(&internal.to_be_bytes());
        b.extend_from_slice(&external.to_be_bytes());
        b.extend_from_slice(&lifetime.to_be_bytes());
        b
    }

    #[test]
    fn requests_have_rfc_6886_layout() {
        assert_eq!(Request::ExternalAddress.encode(), [0, 0]);
        let m = Request::Map {
            protocol: Protocol::Udp,
            internal_port: 0x1234,
            external_port: 0x5678,
            lifetime_secs: 600,
        };
        assert_eq!(
            m.encode(),
            [0, 1, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 2, 0x58]
        );
        assert_eq!(
            Request::unmap(Protocol::Tcp, 30303).encode(),
            [0, 2, 0, 0, 0x76, 0x5f, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn responses_decode_and_every_truncation_is_refused_without_panicking() {
        let ext = [0, 128, 0, 0, 0, 0, 0, 9, 45, 45, 45, 45];
        assert_eq!(
            decode(&ext),
            Ok(Response::ExternalAddress {
                epoch: 9,
                ip: Ipv4Addr::new(45, 45, 45, 45)
            })
        );
        let map = mapping_answer(129, 30303, 40000, 300);
        assert_eq!(
            decode(&map),
            Ok(Response::Mapping {
                protocol: Protocol::Udp,
                epoch: 256,
                internal_port: 30303,
                external_port: 40000,
                lifetime_secs: 300
            })
        );
        for whole in [&ext[..], &map[..]] {
            for len in 0..whole.len() {
                assert!(
                    matches!(decode(&whole[..len]), Err(DecodeError::TooShort { .. })),
                    "{len} of {}",
                    whole.len()
                );
            }
            let mut long = whole.to_vec();
            long.push(0);
            assert_eq!(decode(&long), Err(DecodeError::TooLong { len: long.len() }));
        }
        assert_eq!(
            decode(&vec![0; MAX_DATAGRAM_SIZE + 1]),
            Err(DecodeError::TooLong { len: 1101 })
        );
    }

    #[test]
    fn bad_headers_and_error_codes_are_named() {
        assert_eq!(decode(&[2, 128, 0, 0]), Err(DecodeError::Version(2)));
        assert_eq!(decode(&[0, 1, 0, 0]), Err(DecodeError::NotAResponse(1)));
        assert_eq!(
            decode(&[0, 131, 0, 0]),
            Err(DecodeError::UnknownOpcode(131))
        );
        assert_eq!(
            decode(&[0, 130, 0, 2, 0, 0, 0, 0]),
            Err(DecodeError::Refused(ResultCode::NotAuthorized))
        );
        // An error answer may stop after its header.
        assert_eq!(
            decode(&[0, 128, 0, 3]),
            Err(DecodeError::Refused(ResultCode::NetworkFailure))
        );
        assert_eq!(
            decode(&[0, 128, 0xff, 0xff]),
            Err(DecodeError::Refused(ResultCode::Other(65535)))
        );
    }

    #[test]
    fn every_byte_string_up_to_three_bytes_and_random_junk_decodes_without_panicking() {
        for a in 0..=255u8 {
            let _ = decode(&[a]);
            for b in 0..=255u8 {
                let _ = decode(&[a, b]);
                let _ = decode(&[0, b, a]);
            }
        }
        // A cheap deterministic stream of lengths and contents.
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (x >> (i % 4 * 8)) as u8 ^ i as u8)
                .collect();
            let mut patched = bytes.clone();
            if patched.len() > 1 {
                patched[0] = 0;
                patched[1] |= 0x80;
            }
            let _ = decode(&bytes);
            let _ = decode(&patched);
        }
    }

    #[test]
    fn an_unanswered_request_is_sent_nine_times_doubling_the_wait_then_gives_up() {
        let mut ex = Exchange::new(Request::ExternalAddress, Instant::ZERO);
        let mut sent_at = Vec::new();
        let mut now = Instant::ZERO;
        loop {
            while ex.poll_transmit(now).is_some() {
                sent_at.push(now.as_millis());
            }
            ex.handle_timeout(now);
            if let Some(r) = ex.poll_result() {
                assert_eq!(
                    r,
                    Err(ExchangeError::NoAnswer {
                        attempts: 9,
                        last_invalid: None
                    })
                );
                break;
            }
            now = ex.poll_timeout().expect("a deadline while running");
        }
        assert_eq!(
            sent_at,
            [0, 250, 750, 1750, 3750, 7750, 15750, 31750, 63750]
        );
        assert_eq!(now.as_millis(), 127_750, "the last attempt waits 64 s");
        assert!(ex.poll_result().is_none(), "reported once");
    }

    #[test]
    fn answers_to_other_requests_and_junk_are_ignored_and_the_match_ends_the_exchange() {
        let req = Request::Map {
            protocol: Protocol::Tcp,
            internal_port: 30303,
            external_port: 30303,
            lifetime_secs: 600,
        };
        let mut ex = Exchange::new(req, Instant::ZERO);
        assert!(ex.poll_transmit(Instant::ZERO).is_some());
        // Junk, an answer for UDP, an answer for another port, an external-address answer.
        assert!(!ex.handle_datagram(&[1, 2, 3]));
        assert!(!ex.handle_datagram(&mapping_answer(129, 30303, 30303, 600)));
        assert!(!ex.handle_datagram(&mapping_answer(130, 30304, 30304, 600)));
        assert!(!ex.handle_datagram(&[0, 128, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]));
        assert!(!ex.is_done());
        assert!(ex.handle_datagram(&mapping_answer(130, 30303, 41000, 120)));
        assert_eq!(
            ex.poll_result(),
            Some(Ok(Response::Mapping {
                protocol: Protocol::Tcp,
                epoch: 256,
                internal_port: 30303,
                external_port: 41000,
                lifetime_secs: 120
            }))
        );
        assert!(ex.poll_transmit(Instant::from_millis(10_000)).is_none());
        assert!(ex.poll_timeout().is_none());
    }

    #[test]
    fn a_refusal_for_this_request_ends_it_and_a_malformed_datagram_is_named_at_the_end() {
        let mut ex = Exchange::with_attempts(Request::ExternalAddress, Instant::ZERO, 1);
        assert!(ex.poll_transmit(Instant::ZERO).is_some());
        assert!(!ex.handle_datagram(&[0, 128, 0, 0, 0, 0]));
        ex.handle_timeout(Instant::from_millis(250));
        assert_eq!(
            ex.poll_result(),
            Some(Err(ExchangeError::NoAnswer {
                attempts: 1,
                last_invalid: Some(DecodeError::TooShort { len: 6, needed: 12 })
            }))
        );
        let mut ex = Exchange::new(Request::unmap(Protocol::Udp, 9), Instant::ZERO);
        let _ = ex.poll_transmit(Instant::ZERO);
        assert!(ex.handle_datagram(&[0, 129, 0, 2, 0, 0, 0, 0]));
        assert_eq!(
            ex.poll_result(),
            Some(Err(ExchangeError::Refused(ResultCode::NotAuthorized)))
        );
    }
}
