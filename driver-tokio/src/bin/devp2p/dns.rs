//! `devp2p dns sync|sign|to-txt`, after geth's `cmd/devp2p` (DNSDISC_NAT.md §A.15): a tree
//! definition is a directory holding `enrtree-info.json` (url, seq, signature, links,
//! lastModified) and `nodes.json` (geth's node set format).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use devp2p_core::dnsdisc::{ClientConfig, Tree, TreeUrl};
use devp2p_core::Enr;
use devp2p_tokio::dns::{sync_tree, DnsResolver};
use serde_json::{json, Value};

use crate::Failure;

const INFO_FILE: &str = "enrtree-info.json";
const NODES_FILE: &str = "nodes.json";

/// What `enrtree-info.json` holds.
#[derive(Debug, Default)]
struct Info {
    url: Option<TreeUrl>,
    seq: u64,
    signature: Option<String>,
    links: Vec<TreeUrl>,
}

/// `dns sync <url> [dir]`: the whole tree into a definition directory (default: the tree's
/// domain), with the system's resolver or the name servers given.
pub async fn sync(
    url: &str,
    dir: Option<&Path>,
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<ExitCode, Failure> {
    let url: TreeUrl = url
        .parse()
        .map_err(|e| format!("{url:?} is not an enrtree:// URL: {e}"))?;
    let resolver = if servers.is_empty() {
        DnsResolver::system()?
    } else {
        DnsResolver::with_servers(servers)
    };
    let mut config = ClientConfig::default();
    config.lookup_timeout = timeout;
    let synced = sync_tree(&resolver, url.clone(), config)
        .await
        .map_err(|e| format!("syncing {url}: {e}"))?;
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(url.domain()));
    let tree = &synced.tree;
    let info = Info {
        url: Some(url.clone()),
        seq: tree.root().seq,
        signature: Some(b64(&tree.root().sig)),
        links: tree.links(),
    };
    write_definition(&dir, &info, &tree.records())?;
    eprintln!(
        "synced {url}: seq {}, {} nodes, {} links, written to {}",
        tree.root().seq,
        tree.records().len(),
        tree.links().len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `dns sign <dir> <keyfile> [--domain D] [--seq N]`: signs the tree of the directory's nodes
/// and links; the domain is `--domain`, else the stored URL's, else the directory's name; the
/// seq is `--seq`, else the stored one plus one.
pub fn sign(
    dir: &Path,
    keyfile: &Path,
    domain: Option<&str>,
    seq: Option<u64>,
) -> Result<ExitCode, Failure> {
    let key = devp2p_mio::common::keyfile::load(keyfile)
        .map_err(|e| format!("reading the signing key {}: {e}", keyfile.display()))?;
    let info = read_info(dir, false)?;
    let records = read_nodes(dir)?;
    let domain = match (domain, &info.url) {
        (Some(d), _) => d.to_owned(),
        (None, Some(u)) => u.domain().to_owned(),
        (None, None) => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| format!("no domain for {}: pass --domain", dir.display()))?,
    };
    let seq = seq.unwrap_or(info.seq + 1);
    let (tree, url) = Tree::build(seq, &records, &info.links)
        .sign(&key, &domain)
        .map_err(|e| format!("domain {domain:?}: {e}"))?;
    let signed = Info {
        url: Some(url.clone()),
        seq,
        signature: Some(b64(&tree.root().sig)),
        links: info.links,
    };
    write_info(dir, &signed)?;
    eprintln!("signed {url} at seq {seq}: {} nodes", records.len());
    outln!("{url}");
    Ok(ExitCode::SUCCESS)
}

/// `dns to-txt <dir> [out]`: the TXT records of the signed tree as JSON (name → text), after
/// checking that the stored signature is the stored URL key's over the tree rebuilt from the
/// directory (that nothing changed since signing).
pub fn to_txt(dir: &Path, out: Option<&Path>) -> Result<ExitCode, Failure> {
    let info = read_info(dir, true)?;
    let url = info.url.clone().ok_or_else(|| {
        format!(
            "{}: no url; sign the tree first (devp2p dns sign)",
            dir.display()
        )
    })?;
    let sig = info
        .signature
        .as_deref()
        .ok_or_else(|| format!("{}: no signature; sign the tree first", dir.display()))?;
    let sig: [u8; 65] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            format!(
                "{}: the signature is not 65 bytes of base64url",
                dir.display()
            )
        })?;
    let records = read_nodes(dir)?;
    let tree = Tree::build(info.seq, &records, &info.links).with_signature(sig);
    if !tree.root().verify(url.public_key()) {
        return Err(format!(
            "{}: the signature does not match the tree (nodes or links changed since it was \
             signed, or it was signed by another key); sign it again",
            dir.display()
        )
        .into());
    }
    let txt: BTreeMap<String, String> = tree.to_txt(url.domain());
    let text = serde_json::to_string_pretty(&txt)? + "\n";
    match out {
        Some(path) => {
            devp2p_mio::common::fsutil::write_atomic(path, text.as_bytes(), false)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!("wrote {} records to {}", txt.len(), path.display());
        }
        None => {
            outln!("{}", text.trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn b64(sig: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
}

fn read_info(dir: &Path, required: bool) -> Result<Info, Failure> {
    let path = dir.join(INFO_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Info::default())
        }
        Err(e) => return Err(format!("reading {}: {e}", path.display()).into()),
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let bad = |what: &str| format!("{}: {what}", path.display());
    let url = match v.get("url").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => Some(
            u.parse::<TreeUrl>()
                .map_err(|e| bad(&format!("url {u:?}: {e}")))?,
        ),
        _ => None,
    };
    let mut links = Vec::new();
    for l in v
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = l
            .as_str()
            .ok_or_else(|| bad("a link that is not a string"))?;
        links.push(
            s.parse::<TreeUrl>()
                .map_err(|e| bad(&format!("link {s:?}: {e}")))?,
        );
    }
    Ok(Info {
        url,
        seq: v.get("seq").and_then(Value::as_u64).unwrap_or(0),
        signature: v
            .get("signature")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        links,
    })
}

/// The records of `nodes.json` (geth's format: an object keyed by node id whose values hold
/// `record`), checking each key against its record as geth does.
fn read_nodes(dir: &Path) -> Result<Vec<Enr>, Failure> {
    let path = dir.join(NODES_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{}: not an object keyed by node id", path.display()))?;
    let mut records = Vec::with_capacity(obj.len());
    for (id, n) in obj {
        let text = n
            .get("record")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: node {id} has no record", path.display()))?;
        let r: Enr = text
            .parse()
            .map_err(|e| format!("{}: node {id}: {e}", path.display()))?;
        if r.node_id().to_string() != *id {
            return Err(format!(
                "{}: node {id} holds the record of {}",
                path.display(),
                r.node_id()
            )
            .into());
        }
        records.push(r);
    }
    Ok(records)
}

fn write_info(dir: &Path, info: &Info) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut v = serde_json::Map::new();
    if let Some(u) = &info.url {
        v.insert("url".into(), json!(u.to_string()));
    }
    v.insert("seq".into(), json!(info.seq));
    if let Some(s) = &info.signature {
        v.insert("signature".into(), json!(s));
    }
    v.insert(
        "links".into(),
        json!(info.links.iter().map(|l| l.to_string()).collect::<Vec<_>>()),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    v.insert("lastModified".into(), json!(crate::discv4::rfc3339(now)));
    let text = indent4(&Value::Object(v));
    let path = dir.join(INFO_FILE);
    devp2p_mio::common::fsutil::write_atomic(&path, text.as_bytes(), false)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn write_definition(dir: &Path, info: &Info, records: &[Enr]) -> Result<(), Failure> {
    write_info(dir, info)?;
    let mut nodes = serde_json::Map::new();
    let zero = "0001-01-01T00:00:00Z";
    let mut sorted: Vec<&Enr> = records.iter().collect();
    sorted.sort_by_key(|r| r.node_id());
    for r in sorted {
        nodes.insert(
            r.node_id().to_string(),
            json!({"seq": r.seq(), "record": r.to_string(), "firstResponse": zero,
                   "lastResponse": zero, "lastCheck": zero}),
        );
    }
    let path = dir.join(NODES_FILE);
    devp2p_mio::common::fsutil::write_atomic(
        &path,
        indent4(&Value::Object(nodes)).as_bytes(),
        false,
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// JSON indented by four spaces, as geth writes its files.
fn indent4(v: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("JSON values serialize");
    String::from_utf8(out).expect("JSON is UTF-8") + "\n"
}
