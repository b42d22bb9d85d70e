//! The devp2p Hello message ([PROTOCOL.md §6.2](crate::spec::protocol)) and capabilities.

use std::fmt;

use rlp::{Rlp, RlpStream};

use crate::identity::PUBLIC_KEY_LEN;
use crate::rlp_ext;

/// The p2p protocol version we speak; snappy is on when both sides speak 5 or later (EIP-706).
pub const P2P_VERSION: u64 = 5;
/// Largest Hello payload accepted (geth `baseProtocolMaxMsgSize`).
pub const MAX_HELLO_SIZE: usize = 2048;

/// A capability as advertised in Hello: a sub-protocol name and version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability {
    /// Protocol name, e.g. `eth`.
    pub name: String,
    /// Protocol version.
    pub version: u64,
}

impl Capability {
    /// A capability from a name and version.
    pub fn new(name: impl Into<String>, version: u64) -> Self {
        Self {
            name: name.into(),
            version,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

/// The Hello message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// p2p protocol version.
    pub protocol_version: u64,
    /// Free-form client name, e.g. `Geth/v1.16.0/linux-amd64/go1.24`.
    pub client_id: String,
    /// Advertised capabilities.
    pub capabilities: Vec<Capability>,
    /// Legacy listening port (geth sends 0).
    pub listen_port: u64,
    /// The sender's public key, raw64. Checked against the handshake identity by the session.
    pub id: Vec<u8>,
}

/// Why a Hello payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloError {
    /// Larger than [`MAX_HELLO_SIZE`].
    TooLarge {
        /// The payload size.
        size: usize,
    },
    /// Not the Hello RLP structure.
    Malformed(&'static str),
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::TooLarge { size } => {
                write!(
                    f,
                    "Hello of {size} bytes exceeds the {MAX_HELLO_SIZE}-byte limit"
                )
            }
            HelloError::Malformed(what) => write!(f, "malformed Hello: {what}"),
        }
    }
}

impl std::error::Error for HelloError {}

fn text(item: &Rlp<'_>, what: &'static str) -> Result<String, HelloError> {
    let data = item.data().map_err(|_| HelloError::Malformed(what))?;
    Ok(String::from_utf8_lossy(data).into_owned())
}

impl Hello {
    /// Encodes the Hello payload (RLP, before framing).
    pub fn encode(&self) -> Vec<u8> {
        let mut s = RlpStream::new_list(5);
        s.append(&self.protocol_version);
        s.append(&self.client_id.as_str());
        s.begin_list(self.capabilities.len());
        for c in &self.capabilities {
            s.begin_list(2);
            s.append(&c.name.as_str());
            s.append(&c.version);
        }
        s.append(&self.listen_port);
        s.append(&self.id.as_slice());
        s.out().to_vec()
    }

    /// Decodes a Hello payload. Extra list elements are ignored (EIP-8); the protocol version
    /// is never a reason to refuse (geth never sends "incompatible version").
    pub fn decode(payload: &[u8]) -> Result<Self, HelloError> {
        if payload.len() > MAX_HELLO_SIZE {
            return Err(HelloError::TooLarge {
                size: payload.len(),
            });
        }
        let list = rlp_ext::exact_item(payload)
            .ok()
            .filter(|l| l.is_list())
            .ok_or(HelloError::Malformed("not an RLP list"))?;
        let m = |what| move |_| HelloError::Malformed(what);
        let protocol_version = rlp_ext::uint_at(&list, 0).map_err(m("protocol version"))?;
        let client_id = text(&list.at(1).map_err(m("client id"))?, "client id")?;
        let caps = list.at(2).map_err(m("capabilities"))?;
        if !caps.is_list() {
            return Err(HelloError::Malformed("capabilities is not a list"));
        }
        let mut capabilities = Vec::new();
        for cap in caps.iter() {
            // geth decodes each entry as exactly [string, uint].
            if cap.item_count().map_err(m("capability"))? != 2 {
                return Err(HelloError::Malformed("capability is not [name, version]"));
            }
            let name = text(&cap.at(0).map_err(m("capability name"))?, "capability name")?;
            let version = rlp_ext::uint_at(&cap, 1).map_err(m("capability version"))?;
            capabilities.push(Capability { name, version });
        }
        let listen_port = rlp_ext::uint_at(&list, 3).map_err(m("listen port"))?;
        let id = list
            .at(4)
            .and_then(|i| i.data().map(<[u8]>::to_vec))
            .map_err(m("node id"))?;
        Ok(Hello {
            protocol_version,
            client_id,
            capabilities,
            listen_port,
            id,
        })
    }

    /// Whether `id` is a usable identity: 64 bytes, not all zero (geth `DiscInvalidIdentity`).
    pub fn has_valid_id(&self) -> bool {
        self.id.len() == PUBLIC_KEY_LEN && self.id.iter().any(|&b| b != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn hello_round_trips(v: u64, client: String, caps: Vec<(String, u64)>, port: u64, id: Vec<u8>) -> bool {
            let h = Hello {
                protocol_version: v,
                client_id: client,
                capabilities: caps.into_iter().take(8).map(|(n, v)| Capability::new(n.chars().take(8).collect::<String>(), v)).collect(),
                listen_port: port,
                id: id.into_iter().take(64).collect(),
            };
            let enc = h.encode();
            match Hello::decode(&enc) {
                Ok(d) => d == h,
                Err(HelloError::TooLarge { .. }) => enc.len() > MAX_HELLO_SIZE,
                Err(_) => false,
            }
        }
    }
}
