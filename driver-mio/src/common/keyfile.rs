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
/// Bytes in a secret key: a file of exactly this many bytes that is not hex is the raw key.
const RAW_KEY_LEN: usize = 32;

/// Why a key file could not be used.
#[derive(Debug)]
#[non_exhaustive]
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
    /// The file holds the key as 32 raw bytes instead of 64 hex characters.
    RawBytes {
        /// The file.
        path: PathBuf,
    },
    /// The file holds something other than hex text (binary, or other characters).
    NotHex {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: usize,
        /// What is wrong, for the message (e.g. "is not text").
        what: String,
    },
    /// The key file does not exist and neither does the directory it would be created in.
    NoDirectory {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
}

/// What a node key file must hold, for the messages that say it does not.
const KEY_FILE_FORMAT: &str =
    "a node key file holds the secret key as 64 hex characters (geth's nodekey format)";

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
                "key file {} is {size} bytes; {KEY_FILE_FORMAT}",
                path.display()
            ),
            KeyFileError::RawBytes { path } => write!(
                f,
                "key file {p} holds 32 raw bytes; {KEY_FILE_FORMAT}: convert it with \
                 `xxd -p -c 32 {p} > {p}.hex` and use {p}.hex",
                p = path.display()
            ),
            KeyFileError::NotHex { path, size, what } => write!(
                f,
                "key file {} ({size} bytes) {what}; {KEY_FILE_FORMAT}",
                path.display()
            ),
            KeyFileError::NoDirectory { path, dir } => write!(
                f,
                "key file {}: its directory {} does not exist (a missing key file is created, \
                 a missing directory is not): create the directory or fix the path",
                path.display(),
                dir.display()
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
    let bytes = std::fs::read(path).map_err(io_err)?;
    parse(path, &bytes)
}

/// The key in a key file's content, or what is wrong with it.
fn parse(path: &Path, bytes: &[u8]) -> Result<NodeSecretKey, KeyFileError> {
    let not_hex = |what: String| KeyFileError::NotHex {
        path: path.to_path_buf(),
        size: bytes.len(),
        what,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        // 32 bytes that are not text: almost surely the raw secret (how some tools save it).
        if bytes.len() == RAW_KEY_LEN {
            return Err(KeyFileError::RawBytes {
                path: path.to_path_buf(),
            });
        }
        return Err(not_hex("is not text".into()));
    };
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    if let Some((i, c)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        if bytes.len() == RAW_KEY_LEN {
            return Err(KeyFileError::RawBytes {
                path: path.to_path_buf(),
            });
        }
        return Err(not_hex(format!(
            "has {c:?} at character {}, which is not a hex digit",
            i + 1
        )));
    }
    if hex.len() != 2 * RAW_KEY_LEN {
        return Err(not_hex(format!(
            "holds {} hex characters, not {}",
            hex.len(),
            2 * RAW_KEY_LEN
        )));
    }
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

/// The key in `path`, or `None` when there is no such file but its directory exists (so
/// that one can be created there with [`save`]). A file that exists but is unreadable or
/// invalid is an error: silently replacing it would change the node's identity. A missing
/// directory is an error too: it is most often a typo in the path, and creating it would
/// start the node under a new identity nobody asked for.
pub fn load_if_present(path: &Path) -> Result<Option<NodeSecretKey>, KeyFileError> {
    match std::fs::metadata(path) {
        Ok(_) => load(path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if dir.is_dir() {
                Ok(None)
            } else {
                Err(KeyFileError::NoDirectory {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                })
            }
        }
        Err(error) => Err(KeyFileError::Io {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Reads the key in `path`, or, when there is no such file, generates one from `rng` and saves
/// it there (see [`load_if_present`] for what is refused). Returns whether it was created.
pub fn load_or_create<R: CryptoRng + ?Sized>(
    path: &Path,
    rng: &mut R,
) -> Result<(NodeSecretKey, bool), KeyFileError> {
    match load_if_present(path)? {
        Some(k) => Ok((k, false)),
        None => {
            let key = NodeSecretKey::generate(rng);
            save(path, &key)?;
            Ok((key, true))
        }
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

    #[test]
    fn a_key_file_in_a_missing_directory_is_refused_and_nothing_is_created() {
        let dir = crate::common::testutil::temp_dir("keyfile-nodir");
        let path = dir.join("no-such-dir").join("nodekey");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let err = load_or_create(&path, &mut rng).unwrap_err();
        assert!(matches!(err, KeyFileError::NoDirectory { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!dir.join("no-such-dir").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn raw_and_non_hex_key_files_say_what_they_hold_and_what_a_key_file_must_hold() {
        let dir = crate::common::testutil::temp_dir("keyfile-raw");
        let path = dir.join("nodekey");
        std::fs::write(&path, [0xab; 32]).unwrap();
        let raw = load(&path).unwrap_err().to_string();
        assert!(
            raw.contains("32 raw bytes") && raw.contains("xxd -p -c 32"),
            "{raw}"
        );
        // 32 bytes that happen to be text but not hex are still the raw form.
        std::fs::write(&path, [b'z'; 32]).unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::RawBytes { .. })));
        std::fs::write(&path, "hello, world\n").unwrap();
        let text = load(&path).unwrap_err().to_string();
        assert!(
            text.contains("'h' at character 1") && text.contains("64 hex characters"),
            "{text}"
        );
        std::fs::write(&path, "abcd\n").unwrap();
        let short = load(&path).unwrap_err().to_string();
        assert!(short.contains("4 hex characters, not 64"), "{short}");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("is not text"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
