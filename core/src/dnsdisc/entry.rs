//! Tree entries and `enrtree://` URLs ([DNSDISC_NAT.md §A.2–A.5](crate::spec::dnsdisc_nat)):
//! parsing them as geth does (with geth's error for each bad case), the root signature, and
//! the hash labels that name entries.

use std::fmt;
use std::str::FromStr;

use base64::Engine;

use super::base32;
use super::MAX_ENTRY_TEXT_LEN;
use crate::enr::{Enr, EnrError};
use crate::identity::{NodePublicKey, NodeSecretKey};
use crate::keccak::keccak256;

/// The prefix of a root entry.
pub const ROOT_PREFIX: &str = "enrtree-root:v1";
/// The prefix of a link entry and of a tree URL.
pub const LINK_PREFIX: &str = "enrtree://";
/// The prefix of a branch entry.
pub const BRANCH_PREFIX: &str = "enrtree-branch:";
/// The prefix of an ENR leaf.
pub const ENR_PREFIX: &str = "enr:";
/// Bytes of Keccak-256 a label made by [`Label::of`] keeps (26 base32 characters).
pub const LABEL_HASH_LEN: usize = 16;
/// Shortest and longest hash a label may carry once decoded (geth `isValidHash`: 12 to 32
/// bytes, 20 to 52 characters); a client checks that the entry's Keccak-256 starts with it.
pub const MIN_LABEL_BYTES: usize = 12;
/// See [`MIN_LABEL_BYTES`].
pub const MAX_LABEL_BYTES: usize = 32;
/// Characters of a label that name it in a client's cache (geth: the first 20, 12 bytes).
pub const LABEL_CACHE_KEY_LEN: usize = 20;
/// Length of the root signature, `r || s || v` (geth `crypto.SignatureLength`).
pub const ROOT_SIGNATURE_LEN: usize = 65;

/// Why an entry or URL did not parse; the messages are geth's (`p2p/dnsdisc` errors), so that
/// logs read alike.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// The text has none of the known prefixes (geth `errUnknownEntry`).
    UnknownEntry,
    /// A root whose fields are missing or malformed (geth `errSyntax`).
    Syntax,
    /// A hash label that is not 12 to 32 bytes of base32 (geth `errInvalidChild`).
    InvalidChild(String),
    /// A root signature that is not 65 bytes of unpadded base64url (geth `errInvalidSig`).
    InvalidSignature,
    /// A link or URL without the `@` between key and domain (geth `errNoPubkey`).
    NoPublicKey,
    /// A link or URL whose key is not a compressed secp256k1 point in base32 (geth
    /// `errBadPubkey`).
    BadPublicKey,
    /// A link or URL with nothing after the `@`.
    EmptyDomain,
    /// An `enr:` leaf that is not a valid record (geth `errInvalidENR`).
    InvalidEnr(EnrError),
    /// The text is longer than [`MAX_ENTRY_TEXT_LEN`].
    TooLong(usize),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::UnknownEntry => f.write_str("unknown entry type"),
            EntryError::Syntax => f.write_str("invalid syntax"),
            EntryError::InvalidChild(c) => write!(f, "invalid child hash {c:?}"),
            EntryError::InvalidSignature => f.write_str("invalid base64 signature"),
            EntryError::NoPublicKey => f.write_str("missing public key"),
            EntryError::BadPublicKey => f.write_str("invalid public key"),
            EntryError::EmptyDomain => f.write_str("missing domain after the public key"),
            EntryError::InvalidEnr(e) => write!(f, "invalid node record ({e})"),
            EntryError::TooLong(n) => write!(
                f,
                "entry is {n} characters, over the {MAX_ENTRY_TEXT_LEN}-character limit"
            ),
        }
    }
}

impl std::error::Error for EntryError {}

/// A hash label: the name of an entry below a tree's domain, base32 of (a prefix of) the
/// Keccak-256 of the entry's text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(String);

impl Label {
    /// The label geth gives `text`: base32 of the first [`LABEL_HASH_LEN`] bytes of its
    /// Keccak-256.
    pub fn of(text: &str) -> Label {
        Label(base32::encode(
            &keccak256(text.as_bytes())[..LABEL_HASH_LEN],
        ))
    }

    /// Parses a label, checking that it decodes to 12–32 bytes.
    pub fn parse(text: &str) -> Result<Label, EntryError> {
        match base32::decode(text) {
            Some(b) if (MIN_LABEL_BYTES..=MAX_LABEL_BYTES).contains(&b.len()) => {
                Ok(Label(text.to_owned()))
            }
            _ => Err(EntryError::InvalidChild(text.to_owned())),
        }
    }

    /// The label's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` is what this label names: its Keccak-256 starts with the label's bytes.
    pub fn matches(&self, text: &str) -> bool {
        let hash = keccak256(text.as_bytes());
        base32::decode(&self.0).is_some_and(|b| hash.starts_with(&b))
    }

    /// The key a client caches the entry under (its first [`LABEL_CACHE_KEY_LEN`] characters).
    pub fn cache_key(&self) -> &str {
        &self.0[..self.0.len().min(LABEL_CACHE_KEY_LEN)]
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `enrtree://<base32 compressed key>@<domain>` URL: a tree, as a user names it and as a
/// link entry names another tree.
///
/// ```
/// use devp2p_core::dnsdisc::TreeUrl;
/// let url: TreeUrl = "enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.mainnet.ethdisco.net"
///     .parse()
///     .unwrap();
/// assert_eq!(url.domain(), "all.mainnet.ethdisco.net");
/// assert_eq!(url.to_string().len(), 10 + 53 + 1 + 24);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TreeUrl {
    key: NodePublicKey,
    domain: String,
}

impl TreeUrl {
    /// The URL of the tree at `domain` signed by `key`.
    pub fn new(key: NodePublicKey, domain: &str) -> Result<TreeUrl, EntryError> {
        if domain.is_empty() {
            return Err(EntryError::EmptyDomain);
        }
        Ok(TreeUrl {
            key,
            domain: domain.to_owned(),
        })
    }

    /// The key that signs the tree's root.
    pub fn public_key(&self) -> &NodePublicKey {
        &self.key
    }

    /// The domain the root is published at.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The tree's identity: `<key>@<domain>`, what follows `enrtree://` (geth keys trees by it).
    pub fn identity(&self) -> String {
        format!("{}@{}", base32::encode(&self.key.compressed()), self.domain)
    }
}

impl FromStr for TreeUrl {
    type Err = EntryError;

    /// Parses `enrtree://<key>@<domain>` as geth does: the domain is everything after the
    /// first `@`, taken verbatim.
    fn from_str(s: &str) -> Result<TreeUrl, EntryError> {
        let rest = s
            .strip_prefix(LINK_PREFIX)
            .ok_or(EntryError::UnknownEntry)?;
        let (key, domain) = rest.split_once('@').ok_or(EntryError::NoPublicKey)?;
        let bytes = base32::decode(key).ok_or(EntryError::BadPublicKey)?;
        let key = NodePublicKey::from_compressed(&bytes).map_err(|_| EntryError::BadPublicKey)?;
        TreeUrl::new(key, domain)
    }
}

impl fmt::Display for TreeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{LINK_PREFIX}{}", self.identity())
    }
}

impl fmt::Debug for TreeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreeUrl({self})")
    }
}

/// A tree's root entry: the labels of its ENR and link subtrees, its sequence number and the
/// signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Label of the top of the ENR subtree.
    pub e: Label,
    /// Label of the top of the link subtree.
    pub l: Label,
    /// Sequence number; a publisher raises it with every new version.
    pub seq: u64,
    /// `r || s || v` over the Keccak-256 of [`Root::signed_text`].
    pub sig: [u8; ROOT_SIGNATURE_LEN],
}

impl Root {
    /// A root over the two subtrees, signed with `key`.
    pub fn signed(e: Label, l: Label, seq: u64, key: &NodeSecretKey) -> Root {
        let mut root = Root {
            e,
            l,
            seq,
            sig: [0; ROOT_SIGNATURE_LEN],
        };
        root.sig = key.sign_recoverable(&keccak256(root.signed_text().as_bytes()));
        root
    }

    /// The text the signature covers, rebuilt from the fields (never the received text):
    /// `enrtree-root:v1 e=<e> l=<l> seq=<seq>`.
    pub fn signed_text(&self) -> String {
        format!("{ROOT_PREFIX} e={} l={} seq={}", self.e, self.l, self.seq)
    }

    /// Whether `key` made the signature. As geth: only `r || s` are checked (the recovery
    /// byte is not), and a high-s signature fails.
    pub fn verify(&self, key: &NodePublicKey) -> bool {
        let Ok(sig) = secp256k1::ecdsa::Signature::from_compact(&self.sig[..64]) else {
            return false;
        };
        let digest = keccak256(self.signed_text().as_bytes());
        secp256k1::ecdsa::verify(&sig, secp256k1::Message::from_digest(digest), &key.secp()).is_ok()
    }

    /// Parses a root entry (geth `parseRoot`). Text after the signature is ignored, as geth
    /// ignores it.
    pub fn parse(text: &str) -> Result<Root, EntryError> {
        if text.len() > MAX_ENTRY_TEXT_LEN {
            return Err(EntryError::TooLong(text.len()));
        }
        let mut words = text.split_ascii_whitespace();
        if words.next() != Some(ROOT_PREFIX) {
            return Err(EntryError::Syntax);
        }
        let mut field = |name: &str| {
            words
                .next()
                .and_then(|w| w.strip_prefix(name))
                .filter(|v| !v.is_empty())
                .ok_or(EntryError::Syntax)
        };
        let (e, l, seq, sig) = (field("e=")?, field("l=")?, field("seq=")?, field("sig=")?);
        if !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EntryError::Syntax);
        }
        let seq = seq.parse::<u64>().map_err(|_| EntryError::Syntax)?;
        let (e, l) = (Label::parse(e)?, Label::parse(l)?);
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|s| <[u8; ROOT_SIGNATURE_LEN]>::try_from(s).ok())
            .ok_or(EntryError::InvalidSignature)?;
        Ok(Root { e, l, seq, sig })
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.sig);
        write!(f, "{} sig={sig}", self.signed_text())
    }
}

/// An entry at a hash label: a branch, a link to another tree, or a node record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `enrtree-branch:<label>,<label>,…` (no children is valid: the empty subtree).
    Branch(Vec<Label>),
    /// `enrtree://<key>@<domain>`.
    Link(TreeUrl),
    /// `enr:<base64url record>`, verified.
    Enr(Enr),
}

impl Entry {
    /// Parses an entry found at a hash label (geth `parseEntry`): the root prefix is not an
    /// entry there.
    pub fn parse(text: &str) -> Result<Entry, EntryError> {
        if text.len() > MAX_ENTRY_TEXT_LEN {
            return Err(EntryError::TooLong(text.len()));
        }
        if let Some(children) = text.strip_prefix(BRANCH_PREFIX) {
            if children.is_empty() {
                return Ok(Entry::Branch(Vec::new()));
            }
            return children
                .split(',')
                .map(Label::parse)
                .collect::<Result<Vec<_>, _>>()
                .map(Entry::Branch);
        }
        if text.starts_with(LINK_PREFIX) {
            return text.parse().map(Entry::Link);
        }
        if text.starts_with(ENR_PREFIX) {
            return text.parse().map(Entry::Enr).map_err(EntryError::InvalidEnr);
        }
        Err(EntryError::UnknownEntry)
    }

    /// What kind of entry a text claims to be by its prefix, if any: `"branch"`, `"link"`,
    /// `"enr"` or `"root"` (geth names entry errors by it).
    pub fn kind_of(text: &str) -> Option<&'static str> {
        if text.starts_with(ROOT_PREFIX) {
            Some("root")
        } else if text.starts_with(BRANCH_PREFIX) {
            Some("branch")
        } else if text.starts_with(LINK_PREFIX) {
            Some("link")
        } else if text.starts_with(ENR_PREFIX) {
            Some("enr")
        } else {
            None
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Branch(children) => {
                f.write_str(BRANCH_PREFIX)?;
                for (i, c) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(c.as_str())?;
                }
                Ok(())
            }
            Entry::Link(url) => url.fmt(f),
            Entry::Enr(r) => r.fmt(f),
        }
    }
}
