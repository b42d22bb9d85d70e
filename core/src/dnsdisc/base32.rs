//! Base32 of RFC 4648 (standard alphabet `A–Z2–7`, upper case, no padding), as EIP-1459 uses
//! it for hash labels and tree keys ([DNSDISC_NAT.md §A.2, §A.5](crate::spec::dnsdisc_nat)).
//!
//! Decoding follows Go's `base32.StdEncoding.WithPadding(NoPadding)`, which geth uses: only
//! upper-case alphabet characters, a final group of 2, 4, 5 or 7 characters (1, 3 and 6 cannot
//! end a group), and the unused low bits of the last character are not checked.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The base32 text of `data`.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The bytes of base32 `text`, or `None` if it is not valid unpadded base32.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn rfc4648_examples() {
        for (plain, coded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in ["M", "MZX", "MZXW6Y", "mzxw6", "MZXW1", "MZ=="] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    quickcheck! {
        fn round_trip(data: Vec<u8>) -> bool {
            decode(&encode(&data)) == Some(data)
        }
        fn decode_never_panics(text: String) -> bool {
            let _ = decode(&text);
            true
        }
    }
}
