//! Strict, allocation-bounded RLP reading shared by the ENR and discv4 decoders.
//!
//! `rlp::Rlp` iteration stops silently at the first malformed element, which would let a
//! truncated list pass as a shorter one. These helpers split items explicitly and report
//! every malformation, and they never allocate more than one slice per input byte.

use rlp::{DecoderError, PayloadInfo};
use smallvec::SmallVec;

/// Splits the first RLP item off `input`, returning `(item, rest)`.
pub(crate) fn split_item(input: &[u8]) -> Result<(&[u8], &[u8]), DecoderError> {
    let info = PayloadInfo::from(input)?;
    let total = info
        .header_len
        .checked_add(info.value_len)
        .ok_or(DecoderError::RlpInvalidLength)?;
    if total > input.len() {
        return Err(DecoderError::RlpIsTooShort);
    }
    // A single byte below 0x80 must encode as itself, not as 0x81 <byte>.
    if input[0] == 0x81 && input[1] < 0x80 {
        return Err(DecoderError::RlpInvalidIndirection);
    }
    Ok(input.split_at(total))
}

/// The payload of a list item (the bytes after its header).
pub(crate) fn list_payload(item: &[u8]) -> Result<&[u8], DecoderError> {
    match item.first() {
        Some(&b) if b >= 0xc0 => {}
        Some(_) => return Err(DecoderError::RlpExpectedToBeList),
        None => return Err(DecoderError::RlpIsTooShort),
    }
    let info = PayloadInfo::from(item)?;
    item.get(info.header_len..info.header_len + info.value_len)
        .ok_or(DecoderError::RlpIsTooShort)
}

/// The raw elements of a list item, each a complete RLP item. Up to 8 without allocating
/// (every discovery packet list and endpoint, and most records).
pub(crate) fn list_items(item: &[u8]) -> Result<SmallVec<[&[u8]; 8]>, DecoderError> {
    let mut payload = list_payload(item)?;
    let mut out = SmallVec::new();
    while !payload.is_empty() {
        let (elem, rest) = split_item(payload)?;
        out.push(elem);
        payload = rest;
    }
    Ok(out)
}

/// The content of a byte-string item.
pub(crate) fn bytes(item: &[u8]) -> Result<&[u8], DecoderError> {
    match item.first() {
        Some(&b) if b < 0x80 => Ok(&item[..1]),
        Some(&b) if b < 0xc0 => {
            let info = PayloadInfo::from(item)?;
            item.get(info.header_len..info.header_len + info.value_len)
                .ok_or(DecoderError::RlpIsTooShort)
        }
        Some(_) => Err(DecoderError::RlpExpectedToBeData),
        None => Err(DecoderError::RlpIsTooShort),
    }
}

/// A canonical unsigned integer of at most 64 bits (no leading zero bytes).
pub(crate) fn uint(item: &[u8]) -> Result<u64, DecoderError> {
    let b = bytes(item)?;
    if b.len() > 8 {
        return Err(DecoderError::RlpIsTooBig);
    }
    if b.first() == Some(&0) {
        return Err(DecoderError::RlpInvalidIndirection);
    }
    Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Whether `item` is a byte string (as opposed to a list).
#[allow(dead_code)]
pub(crate) fn is_data(item: &[u8]) -> bool {
    matches!(item.first(), Some(&b) if b < 0xc0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_list_is_an_error_not_a_shorter_list() {
        // [1, 2, "abc"] with the string cut short.
        assert!(list_items(&[0xc6, 0x01, 0x02, 0x83, b'a', b'b']).is_err());
        assert_eq!(
            list_items(&[0xc5, 0x01, 0x02, 0x82, b'a', b'b'])
                .unwrap()
                .to_vec(),
            vec![&[1u8][..], &[2u8][..], &[0x82, b'a', b'b'][..]]
        );
    }

    #[test]
    fn non_canonical_integers_and_single_bytes_are_rejected() {
        assert_eq!(
            uint(&[0x82, 0x00, 0x01]),
            Err(DecoderError::RlpInvalidIndirection)
        );
        assert!(split_item(&[0x81, 0x05]).is_err());
        assert_eq!(uint(&[0x81, 0x80]), Ok(0x80));
        assert_eq!(uint(&[0x80]), Ok(0));
        assert_eq!(
            uint(&[0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecoderError::RlpIsTooBig)
        );
        // Length prefixes in long form for short strings are non-minimal.
        assert!(split_item(&[0xb8, 0x02, 0x01, 0x02]).is_err());
    }
}
