//! The protocol references this code was written against, rendered as documentation.
//!
//! Doc comments and comments cite them by section, as `PROTOCOL.md §7.4`; the links in doc
//! comments lead to these pages, whose sidebars list the sections. The Markdown sources are in
//! `core/docs/` and ship with the crate. Nothing here is code.
//!
//! - [`protocol`] (`PROTOCOL.md`): RLPx, the base protocol, discovery v4, ENR and the dialer,
//!   as go-ethereum implements them.
//! - [`discv5`] (`DISCV5.md`): discovery v5; its wire layer is [`crate::discv5`].
//! - [`dnsdisc_nat`] (`DNSDISC_NAT.md`): DNS discovery (EIP-1459), NAT traversal and the
//!   node's own endpoint.

// The sources are Markdown written for a Markdown viewer, where `[GETH]`, `[TRAP]` or `[0]`
// is literal text; rustdoc reads each as an intra-doc link and, finding no item, prints the
// text as it stands, which is what we want. Clippy also asks for list items continued on an
// unindented line to be indented; they render the same either way. Allowing both lints here
// rather than editing the text keeps the copies equal to the shared originals apart from their
// header note and `text` fences, so that refreshing one is a copy and a short diff.

#[doc = include_str!("../docs/PROTOCOL.md")]
#[allow(rustdoc::broken_intra_doc_links, clippy::doc_lazy_continuation)]
pub mod protocol {}

#[doc = include_str!("../docs/DISCV5.md")]
#[allow(rustdoc::broken_intra_doc_links, clippy::doc_lazy_continuation)]
pub mod discv5 {}

#[doc = include_str!("../docs/DNSDISC_NAT.md")]
#[allow(rustdoc::broken_intra_doc_links, clippy::doc_lazy_continuation)]
pub mod dnsdisc_nat {}
