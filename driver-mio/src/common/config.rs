//! What a driver is started with, and the start-up both drivers share: entropy, the node key,
//! the node database, and the sockets bound on one port for TCP and UDP.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use devp2p_core::node::NodeConfig;
use devp2p_core::NodeSecretKey;
use rand_chacha::ChaCha20Rng;

use crate::common::keyfile::{self, KeyFileError};
use crate::common::nodedb_file::NodeDbFile;

/// The key file's name inside a data directory (geth's name too).
pub const KEY_FILE_NAME: &str = "nodekey";
/// With listen port 0, how many OS-chosen TCP ports are tried before giving up on finding one
/// whose UDP twin is free as well (our choice: a busy UDP port is rare, eight misses rarer).
pub const BIND_ATTEMPTS: usize = 8;

/// Where the node key comes from.
#[derive(Debug, Clone, Default)]
pub enum KeySource {
    /// `<data_dir>/nodekey`, created on first start; a fresh key each run without a data dir.
    #[default]
    Default,
    /// This key.
    Secret(NodeSecretKey),
    /// This file, created with a fresh key when missing.
    File(PathBuf),
}

/// How to start a driver.
#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// The node. `node.listen` with port 0 picks a free port (the same for TCP and UDP);
    /// `node.node_db` is replaced by the data directory's database when there is one;
    /// `node.enr_seq` defaults to the wall clock in milliseconds, as geth does, so a record
    /// signed after a wiped database still supersedes older ones.
    pub node: NodeConfig,
    /// The node key.
    pub key: KeySource,
    /// Where the node key (by default) and the node database live; `None`: nothing is kept.
    pub data_dir: Option<PathBuf>,
    /// How often the node database is saved while the node runs (it is saved at shutdown
    /// too), so that a crash or a kill loses at most this much; `None`:
    /// [`NODE_DB_SAVE_INTERVAL`](crate::common::engine::NODE_DB_SAVE_INTERVAL). Raised to
    /// [`MIN_DB_SAVE_INTERVAL`] if shorter.
    pub db_save_interval: Option<Duration>,
}

/// The shortest [`DriverConfig::db_save_interval`] honoured: saving is a file write and a
/// sync, not something to do on every turn of the loop.
pub const MIN_DB_SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// Why a driver did not start.
#[derive(Debug)]
pub enum StartError {
    /// The OS entropy source failed.
    Entropy(String),
    /// The node key file.
    Key(KeyFileError),
    /// The data directory could not be created.
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        error: io::Error,
    },
    /// A socket could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        error: io::Error,
    },
    /// Setting up the event loop failed.
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Entropy(e) => write!(f, "reading OS entropy: {e}"),
            StartError::Key(e) => write!(f, "{e}"),
            StartError::DataDir { path, error } => {
                write!(f, "data directory {}: {error}", path.display())
            }
            StartError::Bind { addr, error } => write!(f, "binding {addr}: {error}"),
            StartError::Io(e) => write!(f, "setting up sockets: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Everything a driver needs to build its [`Engine`](crate::common::Engine) and sockets.
pub struct Prepared {
    /// The node key.
    pub key: NodeSecretKey,
    /// The node config, with the bound port and the loaded database filled in.
    pub node: NodeConfig,
    /// The node's randomness, seeded from the OS once.
    pub rng: ChaCha20Rng,
    /// The TCP listener, non-blocking.
    pub listener: TcpListener,
    /// The UDP socket on the same port, non-blocking; `None` without discovery.
    pub udp: Option<UdpSocket>,
    /// The node database file, when there is a data directory.
    pub db_file: Option<NodeDbFile>,
}

/// Seeds the randomness, loads or creates the key, loads the node database and binds the
/// sockets.
pub fn prepare(config: DriverConfig) -> Result<Prepared, StartError> {
    let mut rng =
        crate::common::entropy::os_seeded_rng().map_err(|e| StartError::Entropy(e.to_string()))?;
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir).map_err(|error| StartError::DataDir {
            path: dir.clone(),
            error,
        })?;
    }
    let key_file = match (&config.key, &config.data_dir) {
        (KeySource::Secret(_), _) => None,
        (KeySource::File(p), _) => Some(p.clone()),
        (KeySource::Default, Some(dir)) => Some(dir.join(KEY_FILE_NAME)),
        (KeySource::Default, None) => None,
    };
    let key = match (&config.key, key_file) {
        (KeySource::Secret(k), _) => k.clone(),
        (_, Some(path)) => {
            let (key, created) =
                keyfile::load_or_create(&path, &mut rng).map_err(StartError::Key)?;
            if created {
                tracing::info!(path = %path.display(), "generated a new node key");
            }
            key
        }
        (_, None) => NodeSecretKey::generate(&mut rng),
    };
    let mut node = config.node;
    let db_file = config.data_dir.as_deref().map(NodeDbFile::in_dir);
    if let Some(f) = &db_file {
        node.node_db = f.load();
    }
    if node.enr_seq.is_none() {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        node.enr_seq = Some(unix_ms);
    }
    let (listener, udp) = bind(node.listen, !node.no_discovery)?;
    node.listen = listener.local_addr().map_err(StartError::Io)?;
    Ok(Prepared {
        key,
        node,
        rng,
        listener,
        udp,
        db_file,
    })
}

/// Binds TCP and (with `udp`) UDP on the same port, both non-blocking. Port 0 picks one.
pub fn bind(addr: SocketAddr, udp: bool) -> Result<(TcpListener, Option<UdpSocket>), StartError> {
    let attempts = if addr.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let listener = TcpListener::bind(addr).map_err(|error| StartError::Bind { addr, error })?;
        let bound = listener.local_addr().map_err(StartError::Io)?;
        let socket = if udp {
            match UdpSocket::bind(bound) {
                Ok(s) => Some(s),
                Err(error) => {
                    last = Some(StartError::Bind { addr: bound, error });
                    continue;
                }
            }
        } else {
            None
        };
        listener.set_nonblocking(true).map_err(StartError::Io)?;
        if let Some(s) = &socket {
            s.set_nonblocking(true).map_err(StartError::Io)?;
        }
        return Ok((listener, socket));
    }
    Err(last.unwrap_or(StartError::Io(io::Error::other("no port could be bound"))))
}
