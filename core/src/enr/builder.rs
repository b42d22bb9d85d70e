//! Building and signing our own record.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rlp::RlpStream;
use secp256k1::Message;

use super::rlp_items::split_item;
use super::{Enr, EnrError, MAX_RECORD_SIZE};
use crate::identity::NodeSecretKey;
use crate::keccak::keccak256;
use crate::rlp_ext::encode_list_header;

/// Collects entries for a record and signs it with the "v4" scheme.
///
/// `id` and `secp256k1` are set from the signing key by [`EnrBuilder::sign`]; everything else
/// is up to the caller. Keys are kept sorted, so insertion order never matters.
#[derive(Debug, Clone, Default)]
pub struct EnrBuilder {
    seq: u64,
    pairs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl EnrBuilder {
    /// An empty builder with sequence number 1.
    pub fn new() -> Self {
        EnrBuilder {
            seq: 1,
            pairs: BTreeMap::new(),
        }
    }

    /// Sets the sequence number.
    pub fn seq(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    /// Sets `ip` or `ip6`, depending on the address family.
    pub fn ip(self, ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => self.ip4(v4),
            IpAddr::V6(v6) => self.ip6(v6),
        }
    }

    /// Sets `ip`.
    pub fn ip4(self, ip: Ipv4Addr) -> Self {
        self.raw_unchecked(b"ip".to_vec(), rlp::encode(&&ip.octets()[..]).to_vec())
    }

    /// Sets `ip6`.
    pub fn ip6(self, ip: Ipv6Addr) -> Self {
        self.raw_unchecked(b"ip6".to_vec(), rlp::encode(&&ip.octets()[..]).to_vec())
    }

    /// Sets `tcp`.
    pub fn tcp4(self, port: u16) -> Self {
        self.raw_unchecked(b"tcp".to_vec(), rlp::encode(&port).to_vec())
    }

    /// Sets `udp`.
    pub fn udp4(self, port: u16) -> Self {
        self.raw_unchecked(b"udp".to_vec(), rlp::encode(&port).to_vec())
    }

    /// Sets `tcp6`.
    pub fn tcp6(self, port: u16) -> Self {
        self.raw_unchecked(b"tcp6".to_vec(), rlp::encode(&port).to_vec())
    }

    /// Sets `udp6`.
    pub fn udp6(self, port: u16) -> Self {
        self.raw_unchecked(b"udp6".to_vec(), rlp::encode(&port).to_vec())
    }

    /// Sets `key` to `value`, which must be exactly one RLP item (for example `c0` for the
    /// empty list that `snap` carries).
    pub fn raw(self, key: &[u8], value: &[u8]) -> Result<Self, EnrError> {
        let (_, rest) = split_item(value)?;
        if !rest.is_empty() {
            return Err(EnrError::TrailingBytes);
        }
        Ok(self.raw_unchecked(key.to_vec(), value.to_vec()))
    }

    /// Removes `key`.
    pub fn remove(mut self, key: &[u8]) -> Self {
        self.pairs.remove(key);
        self
    }

    pub(crate) fn raw_unchecked(mut self, key: Vec<u8>, value: Vec<u8>) -> Self {
        self.pairs.insert(key, value);
        self
    }

    /// Sets `id` = "v4" and `secp256k1` from `key`, signs deterministically (RFC 6979) and
    /// returns the record, or [`EnrError::TooLarge`] if it exceeds 300 bytes.
    pub fn sign(&self, key: &NodeSecretKey) -> Result<Enr, EnrError> {
        let mut pairs = self.pairs.clone();
        pairs.insert(b"id".to_vec(), rlp::encode(&"v4").to_vec());
        pairs.insert(
            b"secp256k1".to_vec(),
            rlp::encode(&&key.public().compressed()[..]).to_vec(),
        );
        let mut payload = RlpStream::new();
        payload.append(&self.seq);
        for (k, v) in &pairs {
            payload.append(&k.as_slice());
            payload.append_raw(v, 1);
        }
        let payload = payload.out();
        let mut content = Vec::with_capacity(payload.len() + 3);
        encode_list_header(payload.len(), &mut content);
        content.extend_from_slice(&payload);

        let digest = keccak256(&content);
        let signature =
            secp256k1::ecdsa::sign(Message::from_digest(digest), key.secp()).serialize_compact();

        let mut sig_item = Vec::with_capacity(66);
        sig_item.extend_from_slice(&rlp::encode(&&signature[..]));
        let mut raw = Vec::with_capacity(sig_item.len() + payload.len() + 3);
        encode_list_header(sig_item.len() + payload.len(), &mut raw);
        raw.extend_from_slice(&sig_item);
        raw.extend_from_slice(&payload);
        if raw.len() > MAX_RECORD_SIZE {
            return Err(EnrError::TooLarge { size: raw.len() });
        }
        Enr::from_signed(&raw, key.public())
    }
}
