//! What a driver is started with, and the start-up both drivers share: entropy, the node key,
//! the node database, and the sockets bound on one port for TCP and UDP.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use devp2p_core::node::NodeConfig;
use devp2p_core::NodeSecretKey;
use rand_chacha::ChaCha20Rng;

use crate::common::dns::{DnsResolver, DnsResolverConfig};
use crate::common::engine::{log, LogTarget};
use crate::common::keyfile::{self, KeyFileError};
use crate::common::nodedb_file::NodeDbFile;

/// The key file's name inside a data directory (geth's name too).
pub const KEY_FILE_NAME: &str = "nodekey";
/// The lock file's name inside a data directory (geth's name too), locked while a node uses
/// the directory so that a second node on it is refused rather than sharing its database.
pub const LOCK_FILE_NAME: &str = "LOCK";
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
    /// This file, created with a fresh key when missing; its directory must exist.
    File(PathBuf),
}

/// How to start a driver.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The node. `node.listen` with port 0 picks a free port (the same for TCP and UDP);
    /// `node.node_db` is replaced by the data directory's database when there is one;
    /// `node.enr_seq` defaults to the wall clock in milliseconds, as geth does, so a record
    /// signed after a wiped database still supersedes older ones; the node raises it above
    /// the seq the database saved (`local_seq`), so a clock set back cannot lower it either.
    pub node: NodeConfig,
    /// The node key.
    pub key: KeySource,
    /// Where the node key (by default) and the node database live; `None`: nothing is kept.
    pub data_dir: Option<PathBuf>,
    /// How often the node database is saved while the node runs (it is saved at shutdown
    /// too), so that a crash or a kill loses at most this much; `None`: every 5 minutes.
    /// Raised to 100 ms if shorter.
    pub db_save_interval: Option<Duration>,
    /// Who resolves the TXT names of DNS discovery (`node.dns`): the system's resolver
    /// configuration (the default), or given name servers. Unused without trees.
    pub dns_resolver: DnsResolverConfig,
}

/// The shortest [`DriverConfig::db_save_interval`] honoured: saving is a file write and a
/// sync, not something to do on every turn of the loop.
pub const MIN_DB_SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// Which of the two sockets on the listen port a [`StartError::Bind`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The RLPx listener.
    Tcp,
    /// The discovery socket.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        })
    }
}

/// Why a driver did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The OS entropy source failed.
    Entropy(String),
    /// The node key file.
    Key(KeyFileError),
    /// The data directory could not be created or its lock file opened.
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        error: io::Error,
    },
    /// The data directory names something that is not a directory (a file, say).
    NotADirectory {
        /// The path given as data directory.
        path: PathBuf,
    },
    /// Another node (in this process or another) holds the data directory's lock.
    DataDirInUse {
        /// The directory.
        path: PathBuf,
    },
    /// A socket could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which socket: the TCP listener or the UDP discovery socket.
        transport: Transport,
        /// What the OS said.
        error: io::Error,
    },
    /// A bootnode discovery could never reach: its enode has no IP address (a DNS name, or
    /// the key-only form) or UDP port 0. geth refuses such bootnodes at start too.
    Bootnode {
        /// The enode as given.
        enode: String,
    },
    /// DNS discovery has trees to walk but no resolver: the system's configuration could
    /// not be read, or no name servers were given.
    DnsResolver(io::Error),
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
            StartError::NotADirectory { path } => write!(
                f,
                "data directory {} exists and is not a directory: name a directory (it is \
                 created when missing)",
                path.display()
            ),
            StartError::DataDirInUse { path } => write!(
                f,
                "data directory {} is in use by another node (its {LOCK_FILE_NAME} file is \
                 locked): stop that node, or give this one another data directory",
                path.display()
            ),
            StartError::Bind {
                addr,
                transport,
                error,
            } => {
                write!(f, "could not bind {transport} on {addr}: {error}")?;
                if error.kind() == io::ErrorKind::AddrInUse {
                    write!(
                        f,
                        " (another program, maybe another node, uses {transport} port {}: \
                         stop it or listen on another port; port 0 picks a free one)",
                        addr.port()
                    )?;
                }
                Ok(())
            }
            StartError::Bootnode { enode } => write!(
                f,
                "bootnode {enode} cannot be reached: a bootnode needs an IP address and a UDP \
                 port (enode://<key>@<ip>:<port>)"
            ),
            StartError::DnsResolver(e) => write!(
                f,
                "DNS discovery has no resolver: {e}; name the servers to ask \
                 (DriverConfig::dns_resolver, the tool's --dns-server IP:PORT)"
            ),
            StartError::Io(e) => write!(f, "setting up sockets: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The data directory's lock, held for as long as the node runs: dropping it (with the
/// engine) releases the directory to the next node.
#[derive(Debug)]
pub struct DataDirLock {
    /// Open and locked; the lock lives as long as this handle.
    _file: File,
}

impl DataDirLock {
    /// Takes the exclusive lock on [`LOCK_FILE_NAME`] in `dir` (an advisory OS lock, as geth
    /// takes on its LOCK file), without waiting: a directory already locked is refused.
    pub fn acquire(dir: &Path) -> Result<Self, StartError> {
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| StartError::DataDir {
                path: path.clone(),
                error,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StartError::DataDirInUse {
                path: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(error)) => Err(StartError::DataDir { path, error }),
        }
    }
}

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
    /// The data directory's lock, when there is a data directory: keep it as long as the node.
    pub lock: Option<DataDirLock>,
    /// The resolver for DNS discovery, when the node has trees to walk.
    pub dns: Option<DnsResolver>,
}

/// Creates the data directory if needed, after checking that the path is not a file.
fn create_data_dir(dir: &Path) -> Result<(), StartError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(StartError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(StartError::DataDir {
                path: dir.to_path_buf(),
                error,
            })
        }
    }
    std::fs::create_dir_all(dir).map_err(|error| StartError::DataDir {
        path: dir.to_path_buf(),
        error,
    })
}

/// Sets up the DNS resolver when the node has trees, seeds the randomness, locks the data
/// directory, reads the key (if it exists), binds the sockets, loads the node database, and
/// only then creates a missing key file: a start that fails (a port in use, a directory
/// locked) leaves no new key behind.
pub fn prepare(config: DriverConfig, log: LogTarget) -> Result<Prepared, StartError> {
    if !config.node.no_discovery {
        if let Some(e) = config
            .node
            .bootnodes
            .iter()
            .find(|e| e.ip().is_none() || e.udp_port == 0)
        {
            return Err(StartError::Bootnode {
                enode: e.to_string(),
            });
        }
    }
    let dns = if config.node.dns.is_empty() {
        None
    } else {
        Some(DnsResolver::from_config(&config.dns_resolver).map_err(StartError::DnsResolver)?)
    };
    let mut rng =
        crate::common::entropy::os_seeded_rng().map_err(|e| StartError::Entropy(e.to_string()))?;
    let lock = match &config.data_dir {
        Some(dir) => {
            create_data_dir(dir)?;
            Some(DataDirLock::acquire(dir)?)
        }
        None => None,
    };
    let key_file = match (&config.key, &config.data_dir) {
        (KeySource::Secret(_), _) => None,
        (KeySource::File(p), _) => Some(p.clone()),
        (KeySource::Default, Some(dir)) => Some(dir.join(KEY_FILE_NAME)),
        (KeySource::Default, None) => None,
    };
    // Some(key), or None with `key_file` set: to be created once the sockets are bound.
    let existing = match (&config.key, &key_file) {
        (KeySource::Secret(k), _) => Some(k.clone()),
        (_, Some(path)) => keyfile::load_if_present(path).map_err(StartError::Key)?,
        (_, None) => None,
    };
    let mut node = config.node;
    let (listener, udp) = bind(node.listen, !node.no_discovery)?;
    node.listen = listener.local_addr().map_err(StartError::Io)?;
    let key = match (existing, key_file) {
        (Some(k), _) => k,
        (None, Some(path)) => {
            let key = NodeSecretKey::generate(&mut rng);
            keyfile::save(&path, &key).map_err(StartError::Key)?;
            log!(log, info, path = %path.display(), id = %key.id(), "generated a new node key");
            key
        }
        (None, None) => NodeSecretKey::generate(&mut rng),
    };
    let db_file = config
        .data_dir
        .as_deref()
        .map(|d| NodeDbFile::in_dir(d).with_log_target(log));
    if let Some(f) = &db_file {
        node.node_db = f.load();
    }
    if node.enr_seq.is_none() {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        node.enr_seq = Some(unix_ms);
    }
    Ok(Prepared {
        key,
        node,
        rng,
        listener,
        udp,
        db_file,
        lock,
        dns,
    })
}

/// Binds TCP and (with `udp`) UDP on the same port, both non-blocking. Port 0 picks one.
pub fn bind(addr: SocketAddr, udp: bool) -> Result<(TcpListener, Option<UdpSocket>), StartError> {
    let attempts = if addr.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let listener = TcpListener::bind(addr).map_err(|error| StartError::Bind {
            addr,
            transport: Transport::Tcp,
            error,
        })?;
        let bound = listener.local_addr().map_err(StartError::Io)?;
        let socket = if udp {
            match UdpSocket::bind(bound) {
                Ok(s) => Some(s),
                Err(error) => {
                    last = Some(StartError::Bind {
                        addr: bound,
                        transport: Transport::Udp,
                        error,
                    });
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
