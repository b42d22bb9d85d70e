//! The node key file: the 32-byte secret as 64 hex characters and a newline, the format geth's
//! `--nodekey` reads, so a key moves between clients unchanged.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use devp2p_core::{KeyError, NodeSecretKey};
use rand_core::CryptoRng;

use crate::common::fsutil::write_atomic;

/// Largest key file read: 64 hex characters with room for a `0x` prefix and whitespace. A
/// longer file is not a node key, and is refused before it is read into memory.
pub const MAX_KEY_FILE_SIZE: u64 = 256;

/// Why a key file could not be used.
#[derive(Debug)]
pub enum KeyFileError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: io::Error,
    },
    /// The file does not hold a valid secret key.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        error: KeyError,
    },
    /// The file is larger than [`MAX_KEY_FILE_SIZE`].
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io { path, error } => write!(f, "key file {}: {error}", path.display()),
            KeyFileError::Invalid { path, error } => write!(
                f,
                "key file {} does not hold a secp256k1 secret key as 64 hex characters: {error}",
                path.display()
            ),
            KeyFileError::TooLarge { path, size } => write!(
                f,
                "key file {} is {size} bytes; a node key file holds 64 hex characters",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Reads the key in `path`.
pub fn load(path: &Path) -> Result<NodeSecretKey, KeyFileError> {
    let io_err = |error| KeyFileError::Io {
        path: path.to_path_buf(),
        error,
    };
    let size = std::fs::metadata(path).map_err(io_err)?.len();
    if size > MAX_KEY_FILE_SIZE {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io_err)?;
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    NodeSecretKey::from_hex(hex).map_err(|error| KeyFileError::Invalid {
        path: path.to_path_buf(),
        error,
    })
}

/// Writes `key` to `path` (owner-readable only on unix), replacing what was there.
pub fn save(path: &Path, key: &NodeSecretKey) -> Result<(), KeyFileError> {
    let text = format!("{}\n", hex::encode(key.to_bytes()));
    write_atomic(path, text.as_bytes(), true).map_err(|error| KeyFileError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads the key in `path`, or, when there is no such file, generates one from `rng` and saves
/// it there. A file that exists but is unreadable or invalid is an error: silently replacing
/// it would change the node's identity.
pub fn load_or_create<R: CryptoRng + ?Sized>(
    path: &Path,
    rng: &mut R,
) -> Result<(NodeSecretKey, bool), KeyFileError> {
    match std::fs::metadata(path) {
        Ok(_) => load(path).map(|k| (k, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = NodeSecretKey::generate(rng);
            save(path, &key)?;
            Ok((key, true))
        }
        Err(error) => Err(KeyFileError::Io {
            path: path.to_path_buf(),
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn a_missing_key_is_generated_once_and_read_back_the_same() {
        let dir = crate::common::testutil::temp_dir("keyfile");
        let path = dir.join("nodekey");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let (a, created) = load_or_create(&path, &mut rng).unwrap();
        assert!(created);
        let (b, created) = load_or_create(&path, &mut rng).unwrap();
        assert!(!created);
        assert_eq!(a.id(), b.id());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_garbage_key_file_is_an_error_naming_the_file_not_a_new_identity() {
        let dir = crate::common::testutil::temp_dir("keyfile-bad");
        let path = dir.join("nodekey");
        std::fs::write(&path, "not a key").unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let err = load_or_create(&path, &mut rng).unwrap_err();
        assert!(err.to_string().contains("nodekey"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
        std::fs::write(&path, vec![b'a'; 1000]).unwrap();
        assert!(matches!(
            load(&path),
            Err(KeyFileError::TooLarge { size: 1000, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
