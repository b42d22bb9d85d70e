//! Strict, forward-compatible RLP reading on top of the `rlp` crate.
//!
//! devp2p messages are decoded "EIP-8 style": a message is one RLP list whose known leading
//! elements must be present and well-formed, while further elements (and, for handshake
//! bodies and discovery packets, bytes after the list) are ignored.

use rlp::{DecoderError, Rlp};

/// The encoded length (header and payload) of the RLP item at the start of `bytes`, as its
/// header claims it; not checked against `bytes.len()`.
fn first_item_len(bytes: &[u8]) -> Result<usize, DecoderError> {
    let info = rlp::PayloadInfo::from(bytes)?;
    info.header_len
        .checked_add(info.value_len)
        .ok_or(DecoderError::RlpInvalidLength)
}

/// Reads the RLP list at the start of `bytes`, ignoring anything after it.
pub fn leading_list(bytes: &[u8]) -> Result<Rlp<'_>, DecoderError> {
    let total = first_item_len(bytes)?;
    if total > bytes.len() {
        return Err(DecoderError::RlpIsTooShort);
    }
    let rlp = Rlp::new(&bytes[..total]);
    if !rlp.is_list() {
        return Err(DecoderError::RlpExpectedToBeList);
    }
    Ok(rlp)
}

/// Reads `bytes` as exactly one RLP item, rejecting trailing bytes.
pub fn exact_item(bytes: &[u8]) -> Result<Rlp<'_>, DecoderError> {
    match first_item_len(bytes)?.cmp(&bytes.len()) {
        std::cmp::Ordering::Less => Err(DecoderError::RlpIsTooBig),
        std::cmp::Ordering::Greater => Err(DecoderError::RlpIsTooShort),
        std::cmp::Ordering::Equal => Ok(Rlp::new(bytes)),
    }
}

/// Checks that `bytes` is exactly one canonical RLP item, recursively: minimal length
/// prefixes without leading zeros, single bytes below 0x80 never wrapped, and every nested item
/// exactly filling its list. Iterative, so hostile nesting cannot exhaust the stack.
pub fn validate(bytes: &[u8]) -> Result<(), DecoderError> {
    // Stack of the end offsets of the lists we are inside.
    let mut ends: Vec<usize> = Vec::new();
    let mut pos = 0usize;
    loop {
        let container_end = ends.last().copied().unwrap_or(bytes.len());
        let rest = &bytes[pos..container_end];
        let info = rlp::PayloadInfo::from(rest)?;
        let total = info
            .header_len
            .checked_add(info.value_len)
            .ok_or(DecoderError::RlpInvalidLength)?;
        if total > rest.len() {
            return Err(DecoderError::RlpIsTooShort);
        }
        if ends.is_empty() && total < rest.len() {
            return Err(DecoderError::RlpIsTooBig);
        }
        let is_list = rest[0] >= 0xc0;
        if rest[0] == 0x81 && rest[1] < 0x80 {
            return Err(DecoderError::RlpInvalidIndirection);
        }
        if is_list {
            ends.push(pos + total);
            pos += info.header_len;
        } else {
            pos += total;
        }
        // Close every list that ends here.
        while let Some(&end) = ends.last() {
            if pos == end {
                ends.pop();
            } else {
                break;
            }
        }
        if ends.is_empty() && pos == bytes.len() {
            return Ok(());
        }
    }
}

/// Reads element `index` of `list` as a byte string of exactly `N` bytes.
pub fn fixed_at<const N: usize>(list: &Rlp<'_>, index: usize) -> Result<[u8; N], DecoderError> {
    let item = list.at(index)?;
    let data = item.data()?;
    data.try_into()
        .map_err(|_| DecoderError::Custom("byte string of the wrong length"))
}

/// Reads a canonical unsigned integer of at most 64 bits: big-endian, no leading zero bytes,
/// zero as the empty string, a single byte below 0x80 never wrapped in a string header.
pub fn uint(item: &Rlp<'_>) -> Result<u64, DecoderError> {
    // `Rlp::data` already rejects a single byte < 0x80 encoded with a 0x81 header.
    let data = item.data()?;
    if data.len() > 8 {
        return Err(DecoderError::Custom("integer wider than 64 bits"));
    }
    if data.first() == Some(&0) {
        return Err(DecoderError::Custom("integer with a leading zero byte"));
    }
    Ok(data.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Reads element `index` of `list` as a canonical unsigned integer of at most 64 bits.
pub fn uint_at(list: &Rlp<'_>, index: usize) -> Result<u64, DecoderError> {
    uint(&list.at(index)?)
}

/// Appends the RLP encoding of an unsigned integer to `out`.
pub fn encode_uint(value: u64, out: &mut Vec<u8>) {
    match value {
        0 => out.push(0x80),
        1..=0x7f => out.push(value as u8),
        _ => {
            let bytes = value.to_be_bytes();
            let skip = (value.leading_zeros() / 8) as usize;
            out.push(0x80 + (8 - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
}

/// Length of the RLP encoding of an unsigned integer.
pub fn uint_len(value: u64) -> usize {
    match value {
        0..=0x7f => 1,
        _ => 1 + 8 - (value.leading_zeros() / 8) as usize,
    }
}

/// Reads a canonical RLP unsigned integer from the start of `bytes`, returning it and the
/// number of bytes it took. Used for the message id at the start of a frame.
pub fn read_uint_prefix(bytes: &[u8]) -> Result<(u64, usize), DecoderError> {
    let first = *bytes.first().ok_or(DecoderError::RlpIsTooShort)?;
    match first {
        0x00 => Err(DecoderError::Custom("integer zero encoded as 0x00")),
        0x01..=0x7f => Ok((u64::from(first), 1)),
        0x80 => Ok((0, 1)),
        0x81..=0x88 => {
            let n = usize::from(first - 0x80);
            let data = bytes.get(1..1 + n).ok_or(DecoderError::RlpIsTooShort)?;
            if data[0] == 0 {
                return Err(DecoderError::Custom("integer with a leading zero byte"));
            }
            if n == 1 && data[0] < 0x80 {
                return Err(DecoderError::RlpInvalidIndirection);
            }
            Ok((
                data.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
                1 + n,
            ))
        }
        _ => Err(DecoderError::Custom(
            "expected an integer of at most 64 bits",
        )),
    }
}

/// Appends the RLP encoding of a byte string to `out`.
pub fn encode_bytes(value: &[u8], out: &mut Vec<u8>) {
    match value {
        [b] if *b < 0x80 => out.push(*b),
        _ => {
            encode_header(0x80, value.len(), out);
            out.extend_from_slice(value);
        }
    }
}

/// Appends the RLP list header for a payload of `len` bytes.
pub fn encode_list_header(len: usize, out: &mut Vec<u8>) {
    encode_header(0xc0, len, out);
}

/// Appends a string (`base` 0x80) or list (`base` 0xc0) header for a payload of `len` bytes.
fn encode_header(base: u8, len: usize, out: &mut Vec<u8>) {
    if len < 56 {
        out.push(base + len as u8);
    } else {
        let be = (len as u64).to_be_bytes();
        let skip = ((len as u64).leading_zeros() / 8) as usize;
        out.push(base + 55 + (8 - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
}

/// Starts an RLP list in `out`, to be closed by [`end_list`] once its items are appended;
/// returns where it starts.
pub fn begin_list(out: &mut Vec<u8>) -> usize {
    out.push(0xc0);
    out.len() - 1
}

/// Closes the list begun at `start`: writes its header, moving the items along when the
/// header needs more than one byte.
pub fn end_list(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start - 1;
    if len < 56 {
        out[start] = 0xc0 + len as u8;
        return;
    }
    let mut header = Vec::with_capacity(9);
    encode_list_header(len, &mut header);
    out.splice(start..start + 1, header);
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn uint_encoding_matches_the_rlp_crate_and_reads_back(v: u64) -> bool {
            let mut out = Vec::new();
            encode_uint(v, &mut out);
            out == rlp::encode(&v).to_vec()
                && out.len() == uint_len(v)
                && read_uint_prefix(&out) == Ok((v, out.len()))
                && uint(&Rlp::new(&out)) == Ok(v)
        }

        fn list_and_bytes_encoding_matches_the_rlp_crate(items: Vec<Vec<u8>>, nest: bool) -> bool {
            let mut ours = Vec::new();
            let outer = begin_list(&mut ours);
            let mut theirs = rlp::RlpStream::new_list(items.len() + usize::from(nest));
            for i in &items {
                encode_bytes(i, &mut ours);
                theirs.append(&&i[..]);
            }
            if nest {
                let inner = begin_list(&mut ours);
                theirs.begin_list(items.len());
                for i in &items {
                    encode_bytes(i, &mut ours);
                    theirs.append(&&i[..]);
                }
                end_list(&mut ours, inner);
            }
            end_list(&mut ours, outer);
            ours == theirs.out().to_vec()
        }
    }

    #[test]
    fn deep_nesting_is_validated_without_recursion() {
        let mut deep = vec![0xc1u8; 200_000];
        deep.push(0xc0);
        // Each 0xc1 claims one byte of payload but holds more: rejected, and without overflow.
        assert!(validate(&deep).is_err());
        let mut nested = Vec::new();
        for _ in 0..50 {
            let mut s = rlp::RlpStream::new_list(1);
            s.append_raw(
                if nested.is_empty() {
                    &[0xc0][..]
                } else {
                    &nested
                },
                1,
            );
            nested = s.out().to_vec();
        }
        assert_eq!(validate(&nested), Ok(()));
    }

    #[test]
    fn non_canonical_integers_are_rejected() {
        assert!(read_uint_prefix(&[0x00]).is_err());
        assert!(read_uint_prefix(&[0x81, 0x05]).is_err());
        assert!(read_uint_prefix(&[0x82, 0x00, 0x90]).is_err());
        assert!(uint(&Rlp::new(&[0x82, 0x00, 0x90])).is_err());
        assert!(read_uint_prefix(&[0x81]).is_err());
    }

    #[test]
    fn a_leading_list_ignores_trailing_bytes_but_not_truncation() {
        assert!(leading_list(&[0xc2, 0x01, 0x02, 0xff, 0xff]).is_ok());
        assert!(leading_list(&[0xc3, 0x01, 0x02]).is_err());
        assert!(leading_list(&[0x82, 0x01, 0x02]).is_err());
        assert!(exact_item(&[0xc2, 0x01, 0x02, 0xff]).is_err());
    }

    #[test]
    fn list_headers_match_the_rlp_crate() {
        for len in [0usize, 1, 55, 56, 255, 256, 70_000] {
            let mut ours = Vec::new();
            encode_list_header(len, &mut ours);
            let mut s = rlp::RlpStream::new();
            s.begin_unbounded_list();
            s.append_raw(&vec![0x01; len], len);
            s.finalize_unbounded_list();
            let theirs = s.out();
            assert_eq!(&theirs[..ours.len()], &ours[..], "len {len}");
        }
    }
}
