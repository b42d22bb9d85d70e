//! DNS node discovery, EIP-1459 ([DNSDISC_NAT.md Part A](crate::spec::dnsdisc_nat)), without
//! I/O: `enrtree://` URLs and tree entries ([`TreeUrl`], [`Root`], [`Entry`], [`Label`]),
//! building and signing trees as `devp2p dns sign` does ([`Tree`]), and the client that walks
//! trees for dial candidates and syncs them whole ([`Client`]), asking its driver to resolve
//! TXT names and taking the answers.
//!
//! A driver resolves each [`Query`] with its resolver, joins the character-strings of each
//! TXT record (a record longer than 255 bytes arrives in pieces, §A.6) and hands the records
//! to [`Client::handle_answer`]; one name may have several records, and the client picks the
//! first with an EIP-1459 prefix.

mod base32;
pub mod client;
pub mod entry;
pub mod tree;

pub use client::{
    Client, ClientConfig, DnsError, Event, NameError, Query, QueryId, ResolveError, SyncId,
    SyncedTree,
};
pub use entry::{Entry, EntryError, Label, Root, TreeUrl};
pub use tree::{Tree, UnsignedTree};

/// Children of one branch entry when a tree is built (geth `maxChildren`, `370 / (1 + 26)`:
/// a full branch is 365 characters and a TXT answer stays under 512 bytes).
pub const MAX_BRANCH_CHILDREN: usize = 13;
/// Longest entry text taken (our choice: the longest a tree built by geth has is an ENR
/// leaf of 404 characters; branches written by geth before 2021 reach about 500, and this
/// leaves room for trees with several times that many children, well within one TCP answer).
pub const MAX_ENTRY_TEXT_LEN: usize = 4096;
/// TXT records of one answer that are looked at (our choice; a name rarely has more than a
/// few, such as an SPF record beside the root).
pub const MAX_TXT_RECORDS: usize = 32;
/// Trees one client walks, given and linked together (our choice, a bound against a chain of
/// links without end; real deployments link a handful).
pub const MAX_TREES: usize = 64;
/// Entries one full sync collects before it gives up (our choice: 16 times the largest real
/// tree, about 3,000 nodes under some 250 branches).
pub const MAX_SYNC_ENTRIES: usize = 65_536;

/// The base32 of RFC 4648 that labels and keys use (upper case, no padding).
pub fn base32_encode(data: &[u8]) -> String {
    base32::encode(data)
}

/// Decodes [`base32_encode`]'s text; `None` if it is not valid unpadded base32.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    base32::decode(text)
}
