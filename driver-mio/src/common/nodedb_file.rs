//! The node database on disk: the core's [`NodeDbSnapshot`] as a versioned JSON document.
//!
//! ```json
//! { "format": "devp2p-sansio node database", "version": 1, "saved_at": 1800000000,
//!   "local_seq": 1800000000123,
//!   "nodes": [ { "enode": "enode://…@10.0.0.1:30303", "enr": "enr:…" } ],
//!   "endpoints": [ { "id": "<64 hex>", "ip": "10.0.0.1", "last_ping_received": 0,
//!                    "last_pong_received": 1800000000, "find_failures": 0 } ] }
//! ```
//!
//! A missing file is an empty start. A file that cannot be read, is not this format, or has
//! another version is moved aside (to `<name>.bad`, or `<name>.bad.1` … when that exists, see
//! [`MAX_SET_ASIDE`]) with a warning naming where, and the node starts empty:
//! the database only speeds up bootstrapping, so it is never worth failing over. Single entries
//! that do not parse are skipped with a warning. Saving writes a temporary file and renames it.
//! `local_seq` is the seq of the node's own record (absent in files written before it was
//! kept: 0, unknown); the next start signs a higher one.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use devp2p_core::discv4::{EndpointRecord, EndpointSnapshot, Node, NodeDbSnapshot};
use devp2p_core::{Enode, Enr, NodeId};
use serde::{Deserialize, Serialize};

use crate::common::engine::{log, LogTarget};
use crate::common::fsutil::write_atomic;

/// The `format` field: tells this file from any other JSON.
pub const FORMAT_NAME: &str = "devp2p-sansio node database";
/// The version written; files of any other version are set aside, not guessed at.
pub const FORMAT_VERSION: u32 = 1;
/// Largest file read. The core keeps at most 65,536 endpoints and 4,096 nodes
/// (`MAX_DB_ENDPOINTS`, `MAX_DB_NODES`), about 20 MB as JSON; anything much larger is not ours.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// The name of the file inside a data directory.
pub const FILE_NAME: &str = "nodes.json";
/// Unusable files kept side by side (`<name>.bad`, `<name>.bad.1`, …): enough to see a
/// pattern in repeated corruption, few enough that a crash loop cannot fill the disk. Past
/// it the last one is replaced.
pub const MAX_SET_ASIDE: usize = 10;

#[derive(Serialize, Deserialize)]
struct FileV1 {
    format: String,
    version: u32,
    #[serde(default)]
    saved_at: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    local_seq: u64,
    nodes: Vec<NodeV1>,
    endpoints: Vec<EndpointV1>,
}

#[derive(Serialize, Deserialize)]
struct NodeV1 {
    enode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enr: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct EndpointV1 {
    id: String,
    ip: IpAddr,
    last_ping_received: u64,
    last_pong_received: u64,
    find_failures: u32,
}

/// Only the header, to tell a foreign or newer file from a corrupt one.
#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// Why a file was not loaded.
#[derive(Debug)]
pub enum LoadError {
    /// Reading failed.
    Io(io::Error),
    /// Larger than [`MAX_FILE_SIZE`].
    TooLarge(u64),
    /// Not JSON, or not this document.
    Malformed(String),
    /// This document, another version.
    Version(u32),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "unreadable: {e}"),
            LoadError::TooLarge(n) => write!(f, "{n} bytes, over the {MAX_FILE_SIZE}-byte limit"),
            LoadError::Malformed(e) => write!(f, "not a node database: {e}"),
            LoadError::Version(v) => {
                write!(f, "format version {v}, this build reads {FORMAT_VERSION}")
            }
        }
    }
}

/// A node database file.
#[derive(Debug, Clone)]
pub struct NodeDbFile {
    path: PathBuf,
    log: LogTarget,
}

impl NodeDbFile {
    /// The file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            log: LogTarget::Mio,
        }
    }

    /// The same file, its warnings logged under `log`'s name.
    pub fn with_log_target(mut self, log: LogTarget) -> Self {
        self.log = log;
        self
    }

    /// The file [`FILE_NAME`] in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join(FILE_NAME))
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved snapshot; empty, with a warning, when the file is unusable (see the module
    /// docs). Never fails.
    pub fn load(&self) -> NodeDbSnapshot {
        let log = self.log;
        match self.try_load() {
            Ok(Some((snap, skipped))) => {
                if skipped > 0 {
                    log!(log, warn,
                        path = %self.path.display(),
                        skipped,
                        "node database: skipped entries that do not parse"
                    );
                }
                log!(log, debug,
                    path = %self.path.display(),
                    nodes = snap.nodes.len(),
                    endpoints = snap.endpoints.len(),
                    "node database loaded"
                );
                snap
            }
            Ok(None) => NodeDbSnapshot::default(),
            Err(e) => {
                match self.set_aside() {
                    Ok(aside) => log!(log, warn,
                        path = %self.path.display(),
                        moved_to = %aside.display(),
                        "node database {}: {e}; moved it to {} and starting with an empty one",
                        self.path.display(),
                        aside.display()
                    ),
                    Err(move_error) => log!(log, warn,
                        path = %self.path.display(),
                        "node database {}: {e}; could not move it aside ({move_error}), \
                         starting with an empty one (it is overwritten at the next save)",
                        self.path.display()
                    ),
                }
                NodeDbSnapshot::default()
            }
        }
    }

    /// The snapshot and the number of entries skipped; `None` when there is no file.
    pub fn try_load(&self) -> Result<Option<(NodeDbSnapshot, usize)>, LoadError> {
        let size = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LoadError::Io(e)),
        };
        if size > MAX_FILE_SIZE {
            return Err(LoadError::TooLarge(size));
        }
        let bytes = std::fs::read(&self.path).map_err(LoadError::Io)?;
        let header: Header =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::Malformed(e.to_string()))?;
        if header.format != FORMAT_NAME {
            return Err(LoadError::Malformed(format!(
                "format is {:?}, want {FORMAT_NAME:?}",
                header.format
            )));
        }
        if header.version != FORMAT_VERSION {
            return Err(LoadError::Version(header.version));
        }
        let file: FileV1 =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::Malformed(e.to_string()))?;
        Ok(Some(decode(file)))
    }

    /// Saves `snapshot` (temporary file, then rename).
    pub fn save(&self, snapshot: &NodeDbSnapshot, unix_secs: u64) -> io::Result<()> {
        let file = encode(snapshot, unix_secs);
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes, false)
    }

    /// The name the unusable file is moved to: the first of `<name>.bad`, `<name>.bad.1`, …
    /// that does not exist yet, or the last of [`MAX_SET_ASIDE`] when all do.
    fn aside_name(&self) -> io::Result<PathBuf> {
        let name = self.path.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name")
        })?;
        let candidate = |i: usize| {
            let mut n = name.to_os_string();
            n.push(".bad");
            if i > 0 {
                n.push(format!(".{i}"));
            }
            self.path.with_file_name(n)
        };
        let last = candidate(MAX_SET_ASIDE - 1);
        Ok((0..MAX_SET_ASIDE)
            .map(candidate)
            .find(|p| !p.exists())
            .unwrap_or(last))
    }

    fn set_aside(&self) -> io::Result<PathBuf> {
        let aside = self.aside_name()?;
        std::fs::rename(&self.path, &aside)?;
        Ok(aside)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn encode(snap: &NodeDbSnapshot, unix_secs: u64) -> FileV1 {
    FileV1 {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        saved_at: unix_secs,
        local_seq: snap.local_seq,
        nodes: snap
            .nodes
            .iter()
            .map(|n| NodeV1 {
                enode: Enode::new(*n.public_key(), n.ip(), n.tcp_port(), n.udp_port()).to_string(),
                enr: n.record().map(|r| r.to_string()),
            })
            .collect(),
        endpoints: snap
            .endpoints
            .iter()
            .map(|e| EndpointV1 {
                id: e.id.to_string(),
                ip: e.ip,
                last_ping_received: e.record.last_ping_received,
                last_pong_received: e.record.last_pong_received,
                find_failures: e.record.find_failures,
            })
            .collect(),
    }
}

fn decode(file: FileV1) -> (NodeDbSnapshot, usize) {
    let mut skipped = 0;
    let mut snap = NodeDbSnapshot {
        local_seq: file.local_seq,
        ..NodeDbSnapshot::default()
    };
    for n in file.nodes {
        match decode_node(&n) {
            Some(node) => snap.nodes.push(node),
            None => skipped += 1,
        }
    }
    for e in file.endpoints {
        let mut id = [0u8; 32];
        if hex::decode_to_slice(&e.id, &mut id).is_err() {
            skipped += 1;
            continue;
        }
        snap.endpoints.push(EndpointSnapshot {
            id: NodeId(id),
            ip: e.ip,
            record: EndpointRecord {
                last_ping_received: e.last_ping_received,
                last_pong_received: e.last_pong_received,
                find_failures: e.find_failures,
            },
        });
    }
    (snap, skipped)
}

fn decode_node(n: &NodeV1) -> Option<Node> {
    let enode: Enode = n.enode.parse().ok()?;
    let plain = Node::new(
        enode.public_key,
        enode.ip()?,
        enode.udp_port,
        enode.tcp_port,
    );
    // The record is kept when it is this node's and describes the same endpoint; a record
    // that fails verification only loses the record, not the node.
    let with_record = n
        .enr
        .as_deref()
        .and_then(|text| text.parse::<Enr>().ok())
        .filter(|r| r.public_key() == plain.public_key())
        .and_then(Node::from_enr)
        .filter(|r| r.same_endpoint(&plain) && r.tcp_port() == plain.tcp_port());
    Some(with_record.unwrap_or(plain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use devp2p_core::NodeSecretKey;

    fn sample() -> NodeDbSnapshot {
        let k = NodeSecretKey::from_bytes(&[7; 32]).unwrap();
        let record = devp2p_core::Enr::builder()
            .ip("10.0.0.7".parse().unwrap())
            .udp4(30301)
            .tcp4(30302)
            .sign(&k)
            .unwrap();
        let with_record = Node::from_enr(record).unwrap();
        let k2 = NodeSecretKey::from_bytes(&[8; 32]).unwrap();
        let plain = Node::new(*k2.public(), "10.0.0.8".parse().unwrap(), 30303, 30303);
        NodeDbSnapshot {
            nodes: vec![with_record.clone(), plain],
            endpoints: vec![EndpointSnapshot {
                id: with_record.id(),
                ip: with_record.ip(),
                record: EndpointRecord {
                    last_ping_received: 5,
                    last_pong_received: 6,
                    find_failures: 2,
                },
            }],
            local_seq: 1_800_000_000_123,
        }
    }

    #[test]
    fn a_saved_snapshot_loads_back_equal() {
        let dir = crate::common::testutil::temp_dir("nodedb");
        let f = NodeDbFile::in_dir(&dir);
        let snap = sample();
        f.save(&snap, 1_800_000_000).unwrap();
        assert_eq!(f.load(), snap);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_from_before_local_seq_was_kept_loads_with_seq_unknown() {
        let dir = crate::common::testutil::temp_dir("nodedb-old");
        let f = NodeDbFile::in_dir(&dir);
        f.save(&sample(), 1).unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(text.contains("\"local_seq\": 1800000000123"));
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v.as_object_mut().unwrap().remove("local_seq");
        std::fs::write(f.path(), v.to_string()).unwrap();
        let snap = f.load();
        assert_eq!(snap.local_seq, 0);
        assert_eq!(snap.nodes, sample().nodes);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_is_an_empty_start() {
        let dir = crate::common::testutil::temp_dir("nodedb-missing");
        assert_eq!(NodeDbFile::in_dir(&dir).load(), NodeDbSnapshot::default());
    }

    #[test]
    fn corrupt_foreign_and_future_files_give_an_empty_start_and_are_set_aside() {
        let dir = crate::common::testutil::temp_dir("nodedb-bad");
        let f = NodeDbFile::in_dir(&dir);
        let future =
            format!(r#"{{"format":"{FORMAT_NAME}","version":99,"nodes":[],"endpoints":[]}}"#);
        let contents = [
            b"{ truncated".to_vec(),
            b"\xff\xfe garbage".to_vec(),
            br#"{"format":"something else","version":1}"#.to_vec(),
            future.into_bytes(),
        ];
        for content in &contents {
            std::fs::write(f.path(), content).unwrap();
            assert_eq!(f.load(), NodeDbSnapshot::default());
            assert!(!f.path().exists());
        }
        // Each one kept, none overwriting an earlier one.
        assert_eq!(
            std::fs::read(dir.join("nodes.json.bad")).unwrap(),
            contents[0]
        );
        for (i, content) in contents.iter().enumerate().skip(1) {
            let kept = dir.join(format!("nodes.json.bad.{i}"));
            assert_eq!(&std::fs::read(kept).unwrap(), content);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn entries_that_do_not_parse_are_skipped_and_the_rest_kept() {
        let dir = crate::common::testutil::temp_dir("nodedb-entries");
        let f = NodeDbFile::in_dir(&dir);
        f.save(&sample(), 1).unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["nodes"][1]["enode"] = "enode://nonsense".into();
        v["endpoints"][0]["id"] = "zz".into();
        std::fs::write(f.path(), v.to_string()).unwrap();
        let (snap, skipped) = f.try_load().unwrap().unwrap();
        assert_eq!(skipped, 2);
        assert_eq!(snap.nodes, sample().nodes[..1]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn past_the_cap_the_last_set_aside_file_is_replaced_and_the_first_ones_kept() {
        let dir = crate::common::testutil::temp_dir("nodedb-cap");
        let f = NodeDbFile::in_dir(&dir);
        for i in 0..MAX_SET_ASIDE + 2 {
            std::fs::write(f.path(), format!("bad {i}")).unwrap();
            assert_eq!(f.load(), NodeDbSnapshot::default());
        }
        let kept = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(kept, MAX_SET_ASIDE);
        assert_eq!(
            std::fs::read_to_string(dir.join("nodes.json.bad")).unwrap(),
            "bad 0"
        );
        let last = dir.join(format!("nodes.json.bad.{}", MAX_SET_ASIDE - 1));
        assert_eq!(
            std::fs::read_to_string(last).unwrap(),
            format!("bad {}", MAX_SET_ASIDE + 1)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
