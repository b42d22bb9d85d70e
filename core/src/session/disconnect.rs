//! Disconnect reasons ([PROTOCOL.md §6.3](crate::spec::protocol)) and the Disconnect message
//! payload.

use std::fmt;

/// Why a session ended, as carried by the devp2p Disconnect message (0x01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisconnectReason {
    /// 0x00: disconnect requested (by the application).
    Requested,
    /// 0x01: TCP sub-system error.
    TcpError,
    /// 0x02: breach of protocol (malformed or unexpected message).
    BreachOfProtocol,
    /// 0x03: useless peer (no capability in common).
    UselessPeer,
    /// 0x04: too many peers.
    TooManyPeers,
    /// 0x05: already connected.
    AlreadyConnected,
    /// 0x06: incompatible p2p protocol version.
    IncompatibleVersion,
    /// 0x07: null or invalid node identity.
    InvalidIdentity,
    /// 0x08: client quitting.
    ClientQuitting,
    /// 0x09: unexpected identity in the handshake.
    UnexpectedIdentity,
    /// 0x0a: connected to self.
    ConnectedToSelf,
    /// 0x0b: ping / read timeout.
    PingTimeout,
    /// 0x10: some other reason specific to a sub-protocol.
    SubprotocolError,
    /// Any other code (0x0c..=0x0f are unassigned; above 0x10 undefined), kept as received.
    Other(u8),
}

impl DisconnectReason {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            DisconnectReason::Requested => 0x00,
            DisconnectReason::TcpError => 0x01,
            DisconnectReason::BreachOfProtocol => 0x02,
            DisconnectReason::UselessPeer => 0x03,
            DisconnectReason::TooManyPeers => 0x04,
            DisconnectReason::AlreadyConnected => 0x05,
            DisconnectReason::IncompatibleVersion => 0x06,
            DisconnectReason::InvalidIdentity => 0x07,
            DisconnectReason::ClientQuitting => 0x08,
            DisconnectReason::UnexpectedIdentity => 0x09,
            DisconnectReason::ConnectedToSelf => 0x0a,
            DisconnectReason::PingTimeout => 0x0b,
            DisconnectReason::SubprotocolError => 0x10,
            DisconnectReason::Other(c) => c,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x00 => DisconnectReason::Requested,
            0x01 => DisconnectReason::TcpError,
            0x02 => DisconnectReason::BreachOfProtocol,
            0x03 => DisconnectReason::UselessPeer,
            0x04 => DisconnectReason::TooManyPeers,
            0x05 => DisconnectReason::AlreadyConnected,
            0x06 => DisconnectReason::IncompatibleVersion,
            0x07 => DisconnectReason::InvalidIdentity,
            0x08 => DisconnectReason::ClientQuitting,
            0x09 => DisconnectReason::UnexpectedIdentity,
            0x0a => DisconnectReason::ConnectedToSelf,
            0x0b => DisconnectReason::PingTimeout,
            0x10 => DisconnectReason::SubprotocolError,
            c => DisconnectReason::Other(c),
        }
    }

    /// The Disconnect payload we send: the list form `[reason]` that current clients send.
    pub fn encode(self) -> [u8; 2] {
        match self.code() {
            0 => [0xc1, 0x80],
            c if c < 0x80 => [0xc1, c],
            // Codes >= 0x80 need a string header; we never send them, but stay correct.
            _ => [0xc1, 0x80],
        }
    }

    /// Decodes a Disconnect payload. Accepts the list form `[reason]`, the bare integer that
    /// geth sent before December 2024, and an empty payload or empty list (`Ok(None)`: no
    /// reason given). Anything else is `Err`.
    pub fn decode(payload: &[u8]) -> Result<Option<Self>, DisconnectDecodeError> {
        let item = match payload {
            [] | [0xc0] => return Ok(None),
            [0xc1, rest @ ..] => rest,
            // A list with trailing elements: take the first, ignore the rest (EIP-8 style).
            [h, ..] if (0xc2..=0xf7).contains(h) => {
                let list =
                    crate::rlp_ext::leading_list(payload).map_err(|_| DisconnectDecodeError)?;
                let first = list.at(0).map_err(|_| DisconnectDecodeError)?;
                return Self::from_uint(
                    crate::rlp_ext::uint(&first).map_err(|_| DisconnectDecodeError)?,
                )
                .map(Some);
            }
            bare => bare,
        };
        let rlp = crate::rlp_ext::exact_item(item).map_err(|_| DisconnectDecodeError)?;
        Self::from_uint(crate::rlp_ext::uint(&rlp).map_err(|_| DisconnectDecodeError)?).map(Some)
    }

    fn from_uint(v: u64) -> Result<Self, DisconnectDecodeError> {
        u8::try_from(v)
            .map(Self::from_code)
            .map_err(|_| DisconnectDecodeError)
    }
}

/// A Disconnect payload that is neither a list holding an integer nor a bare integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectDecodeError;

impl fmt::Display for DisconnectDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("undecodable Disconnect payload")
    }
}

impl std::error::Error for DisconnectDecodeError {}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DisconnectReason::Requested => "disconnect requested",
            DisconnectReason::TcpError => "network error",
            DisconnectReason::BreachOfProtocol => "breach of protocol",
            DisconnectReason::UselessPeer => "useless peer",
            DisconnectReason::TooManyPeers => "too many peers",
            DisconnectReason::AlreadyConnected => "already connected",
            DisconnectReason::IncompatibleVersion => "incompatible p2p protocol version",
            DisconnectReason::InvalidIdentity => "invalid node identity",
            DisconnectReason::ClientQuitting => "client quitting",
            DisconnectReason::UnexpectedIdentity => "unexpected identity",
            DisconnectReason::ConnectedToSelf => "connected to self",
            DisconnectReason::PingTimeout => "read timeout",
            DisconnectReason::SubprotocolError => "subprotocol error",
            DisconnectReason::Other(c) if (0x0c..=0x0f).contains(c) => {
                return write!(f, "unassigned reason 0x{c:02x}")
            }
            DisconnectReason::Other(c) => return write!(f, "unknown reason 0x{c:02x}"),
        };
        write!(f, "{text} (0x{:02x})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_from_0x00_to_0x10_round_trips_and_has_a_name() {
        for code in 0u8..=0x10 {
            let r = DisconnectReason::from_code(code);
            assert_eq!(r.code(), code);
            assert_eq!(DisconnectReason::decode(&r.encode()), Ok(Some(r)));
            assert!(!r.to_string().is_empty());
        }
        assert_eq!(
            DisconnectReason::TooManyPeers.to_string(),
            "too many peers (0x04)"
        );
        assert_eq!(
            DisconnectReason::Other(0x0c).to_string(),
            "unassigned reason 0x0c"
        );
    }

    #[test]
    fn list_bare_and_empty_forms_decode() {
        assert_eq!(
            DisconnectReason::decode(&[0xc1, 0x04]),
            Ok(Some(DisconnectReason::TooManyPeers))
        );
        assert_eq!(
            DisconnectReason::decode(&[0x04]),
            Ok(Some(DisconnectReason::TooManyPeers))
        );
        assert_eq!(
            DisconnectReason::decode(&[0x80]),
            Ok(Some(DisconnectReason::Requested))
        );
        assert_eq!(
            DisconnectReason::decode(&[0xc1, 0x80]),
            Ok(Some(DisconnectReason::Requested))
        );
        assert_eq!(DisconnectReason::decode(&[]), Ok(None));
        assert_eq!(DisconnectReason::decode(&[0xc0]), Ok(None));
        assert_eq!(
            DisconnectReason::decode(&[0xc2, 0x08, 0x01]),
            Ok(Some(DisconnectReason::ClientQuitting))
        );
        // A bare 0x00 is a non-canonical zero; geth decodes it as invalid.
        assert!(DisconnectReason::decode(&[0x00]).is_err());
        assert!(DisconnectReason::decode(&[0xc1]).is_err());
        assert!(DisconnectReason::decode(&[0x82, 0x01, 0x00]).is_err());
    }
}
