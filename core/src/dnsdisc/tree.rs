//! Building and signing a tree as geth's `dnsdisc.MakeTree` and `Tree.Sign` do
//! ([DNSDISC_NAT.md §A.7](crate::spec::dnsdisc_nat)), and the TXT records that publish it.

use std::collections::BTreeMap;

use super::entry::{Entry, Label, Root, TreeUrl};
use super::MAX_BRANCH_CHILDREN;
use crate::enr::Enr;
use crate::identity::NodeSecretKey;

/// A tree: its root and every entry under its label.
///
/// ```
/// use devp2p_core::dnsdisc::Tree;
/// use devp2p_core::NodeSecretKey;
/// let key = NodeSecretKey::from_hex(
///     "dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240").unwrap();
/// let (tree, url) = Tree::build(1, &[], &[]).sign(&key, "empty.example.org").unwrap();
/// assert_eq!(tree.root().e, tree.root().l); // both subtrees are the empty branch
/// let txt = tree.to_txt(url.domain());
/// assert_eq!(txt.len(), 2);
/// assert!(txt["empty.example.org"].starts_with("enrtree-root:v1 "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    root: Root,
    entries: BTreeMap<Label, String>,
}

/// A tree before it is signed.
#[derive(Debug, Clone)]
pub struct UnsignedTree {
    seq: u64,
    e: Label,
    l: Label,
    entries: BTreeMap<Label, String>,
}

impl Tree {
    /// The tree of `records` (sorted by node id; geth keeps duplicates, and so do we, to build the same tree) and `links` (in the order given), with
    /// sequence number `seq`: each subtree is the single entry when there is one, a branch of
    /// up to [`MAX_BRANCH_CHILDREN`] otherwise, and branches of branches above that.
    pub fn build(seq: u64, records: &[Enr], links: &[TreeUrl]) -> UnsignedTree {
        let mut entries = BTreeMap::new();
        let mut records = records.to_vec();
        records.sort_by_key(|r| r.node_id());
        let enr_texts: Vec<String> = records
            .iter()
            .map(|r| Entry::Enr(r.clone()).to_string())
            .collect();
        let link_texts: Vec<String> = links
            .iter()
            .map(|u| Entry::Link(u.clone()).to_string())
            .collect();
        let e = build_subtree(enr_texts, &mut entries);
        let l = build_subtree(link_texts, &mut entries);
        UnsignedTree { seq, e, l, entries }
    }

    /// Assembles a tree from a root and entry texts (what a sync collected).
    pub fn from_parts(root: Root, entries: BTreeMap<Label, String>) -> Tree {
        Tree { root, entries }
    }

    /// The root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Every entry text under its label.
    pub fn entries(&self) -> &BTreeMap<Label, String> {
        &self.entries
    }

    /// The node records of the tree, in label order.
    pub fn records(&self) -> Vec<Enr> {
        self.entries
            .values()
            .filter_map(|t| match Entry::parse(t) {
                Ok(Entry::Enr(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The links of the tree, in label order.
    pub fn links(&self) -> Vec<TreeUrl> {
        self.entries
            .values()
            .filter_map(|t| match Entry::parse(t) {
                Ok(Entry::Link(u)) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// The TXT records that publish the tree at `domain`: the root at `domain`, every entry
    /// at `<label>.<domain>` (geth `ToTXT`).
    pub fn to_txt(&self, domain: &str) -> BTreeMap<String, String> {
        let mut txt = BTreeMap::new();
        txt.insert(domain.to_owned(), self.root.to_string());
        for (label, text) in &self.entries {
            txt.insert(format!("{label}.{domain}"), text.clone());
        }
        txt
    }
}

impl UnsignedTree {
    /// Signs the root with `key`; returns the tree and its URL at `domain`.
    pub fn sign(
        self,
        key: &NodeSecretKey,
        domain: &str,
    ) -> Result<(Tree, TreeUrl), super::EntryError> {
        let url = TreeUrl::new(*key.public(), domain)?;
        let root = Root::signed(self.e, self.l, self.seq, key);
        Ok((
            Tree {
                root,
                entries: self.entries,
            },
            url,
        ))
    }

    /// The tree with a signature made elsewhere (`devp2p dns to-txt` rebuilds a tree and
    /// checks the stored signature against it).
    pub fn with_signature(self, sig: [u8; super::entry::ROOT_SIGNATURE_LEN]) -> Tree {
        Tree {
            root: Root {
                e: self.e,
                l: self.l,
                seq: self.seq,
                sig,
            },
            entries: self.entries,
        }
    }

    /// The labels of the two subtrees, `(e, l)`.
    pub fn subtree_labels(&self) -> (&Label, &Label) {
        (&self.e, &self.l)
    }
}

/// Registers the subtree over `texts` and returns the label of its top entry.
fn build_subtree(texts: Vec<String>, entries: &mut BTreeMap<Label, String>) -> Label {
    if texts.len() == 1 {
        let text = texts.into_iter().next().expect("one text");
        let label = Label::of(&text);
        entries.insert(label.clone(), text);
        return label;
    }
    if texts.len() <= MAX_BRANCH_CHILDREN {
        let mut children = Vec::with_capacity(texts.len());
        for text in texts {
            let label = Label::of(&text);
            entries.insert(label.clone(), text);
            children.push(label);
        }
        let branch = Entry::Branch(children).to_string();
        let label = Label::of(&branch);
        entries.insert(label.clone(), branch);
        return label;
    }
    let mut tops = Vec::new();
    for chunk in texts.chunks(MAX_BRANCH_CHILDREN) {
        let label = build_subtree(chunk.to_vec(), entries);
        tops.push(entries[&label].clone());
    }
    build_subtree(tops, entries)
}
