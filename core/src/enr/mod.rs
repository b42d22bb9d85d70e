//! Ethereum Node Records (EIP-778) with the "v4" identity scheme
//! ([PROTOCOL.md §10](crate::spec::protocol)).
//!
//! A record is `[signature, seq, k1, v1, k2, v2, ...]` in RLP, at most 300 bytes, with keys
//! strictly ascending. Values are kept as raw RLP so keys we do not understand round-trip
//! untouched. [`Enr::decode`] and [`Enr::from_str`](std::str::FromStr) accept only records whose
//! "v4" signature verifies; [`EnrBuilder`] makes and signs our own.
//!
//! Signing is deterministic (RFC 6979, no extra entropy): the same key and content always give
//! the same bytes, which is what lets a simulation replay bit for bit.

mod builder;
mod record;
pub(crate) mod rlp_items;

use std::fmt;

use crate::identity::KeyError;

pub use builder::EnrBuilder;
pub use record::Enr;

/// Largest encoded record (EIP-778 "Encoding": 300 bytes; geth `enr.SizeLimit`).
pub const MAX_RECORD_SIZE: usize = 300;
/// Length of a "v4" signature: `r || s`, no recovery id (EIP-778 "v4" scheme).
pub const V4_SIGNATURE_LEN: usize = 64;
/// The text form's prefix (EIP-778 "Text Encoding").
pub const TEXT_PREFIX: &str = "enr:";

/// Why a record could not be decoded, verified or built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrError {
    /// The encoding is longer than [`MAX_RECORD_SIZE`].
    TooLarge {
        /// Size of the encoding in bytes.
        size: usize,
    },
    /// The bytes are not well-formed RLP of the expected shape.
    Rlp(rlp::DecoderError),
    /// Bytes follow the record's RLP list.
    TrailingBytes,
    /// The list lacks a signature or sequence number.
    TooFewElements,
    /// A key has no value after it.
    DanglingKey,
    /// Two keys are equal.
    DuplicateKey(Vec<u8>),
    /// A key is not greater than the key before it.
    UnsortedKeys(Vec<u8>),
    /// A key's value is not the shape the key requires (an `ip` that is not 4 bytes, say).
    BadValue(&'static str),
    /// There is no `id` key.
    MissingScheme,
    /// The `id` names a scheme other than "v4".
    UnknownScheme(Vec<u8>),
    /// A "v4" record without a valid 33-byte `secp256k1` key.
    InvalidPublicKey(KeyError),
    /// The signature is not 64 bytes, is high-s, or does not verify.
    InvalidSignature,
    /// The text does not start with `enr:`.
    MissingPrefix,
    /// The text after `enr:` is not unpadded base64url.
    InvalidBase64,
}

impl fmt::Display for EnrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnrError::TooLarge { size } => {
                write!(
                    f,
                    "record is {size} bytes, over the {MAX_RECORD_SIZE}-byte limit"
                )
            }
            EnrError::Rlp(e) => write!(f, "malformed record RLP: {}", rlp_error_text(e)),
            EnrError::TrailingBytes => f.write_str("bytes after the record"),
            EnrError::TooFewElements => f.write_str("record lacks signature or sequence number"),
            EnrError::DanglingKey => f.write_str("record key without a value"),
            EnrError::DuplicateKey(k) => write!(f, "duplicate record key {:?}", lossy(k)),
            EnrError::UnsortedKeys(k) => write!(f, "record key {:?} out of order", lossy(k)),
            EnrError::BadValue(what) => write!(f, "invalid record value: {what}"),
            EnrError::MissingScheme => f.write_str("record has no identity scheme"),
            EnrError::UnknownScheme(s) => write!(f, "unknown identity scheme {:?}", lossy(s)),
            EnrError::InvalidPublicKey(e) => write!(f, "invalid secp256k1 entry: {e}"),
            EnrError::InvalidSignature => f.write_str("invalid signature on node record"),
            EnrError::MissingPrefix => f.write_str("missing 'enr:' prefix"),
            EnrError::InvalidBase64 => f.write_str("invalid base64url after 'enr:'"),
        }
    }
}

impl std::error::Error for EnrError {}

impl From<rlp::DecoderError> for EnrError {
    fn from(e: rlp::DecoderError) -> Self {
        EnrError::Rlp(e)
    }
}

/// What an RLP decoding error means, in words: the rlp crate's own Display prints its
/// variant names (`RlpExpectedToBeList`), which tell a user nothing.
fn rlp_error_text(e: &rlp::DecoderError) -> &'static str {
    use rlp::DecoderError as D;
    match e {
        D::RlpIsTooBig => "bytes follow the RLP item",
        D::RlpIsTooShort => "the data ends before the RLP item does (truncated)",
        D::RlpExpectedToBeList => "expected an RLP list, found a byte string",
        D::RlpExpectedToBeData => "expected an RLP byte string, found a list",
        D::RlpIncorrectListLen => "an RLP list has the wrong number of items",
        D::RlpDataLenWithZeroPrefix => "an RLP string length has a leading zero byte",
        D::RlpListLenWithZeroPrefix => "an RLP list length has a leading zero byte",
        D::RlpInvalidIndirection => "non-canonical RLP (a longer encoding than needed)",
        D::RlpInconsistentLengthAndData => "an RLP length disagrees with the data after it",
        D::RlpInvalidLength => "an RLP length is out of range",
        D::Custom(text) => text,
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests;
