//! The RLPx encryption handshake ([PROTOCOL.md §4](crate::spec::protocol)) as a sans-IO state
//! machine.
//!
//! The initiator, who knows the recipient's static key, sends `auth`; the recipient answers
//! with `ack`; both then derive the [`Secrets`] that key the frame codec. The initiator always
//! writes EIP-8 messages. Both roles read EIP-8 and legacy (pre-EIP-8) messages, and a
//! recipient answers in the format it was addressed in.
//!
//! ```
//! use devp2p_core::rlpx::Handshake;
//! use devp2p_core::NodeSecretKey;
//! use rand_core::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let (a, b) = (NodeSecretKey::generate(&mut rng), NodeSecretKey::generate(&mut rng));
//! let mut initiator = Handshake::initiator(&a, b.public(), &mut rng);
//! let mut recipient = Handshake::recipient(&b, &mut rng);
//!
//! let auth = initiator.take_output();
//! assert_eq!(recipient.read(&auth).unwrap(), auth.len());
//! let ack = recipient.take_output();
//! assert_eq!(initiator.read(&ack).unwrap(), ack.len());
//!
//! let (i, r) = (initiator.into_outcome().unwrap(), recipient.into_outcome().unwrap());
//! assert_eq!(i.remote, *b.public());
//! assert_eq!(r.remote, *a.public());
//! assert_eq!(i.secrets.aes_secret, r.secrets.aes_secret);
//! ```

use std::fmt;

use rand_core::CryptoRng;

use super::ecies::{self, EciesError, ECIES_OVERHEAD};
use super::secrets::Secrets;
use crate::identity::{
    ecdh_x, random_secret, sign_recoverable, KeyError, NodePublicKey, NodeSecretKey,
    PUBLIC_KEY_LEN, RECOVERABLE_SIGNATURE_LEN,
};
use crate::keccak::keccak256;
use crate::rlp_ext;

/// Largest EIP-8 handshake message we accept, by its 2-byte size prefix (geth `rlpx.go`,
/// "message too big" since 2024).
pub const MAX_HANDSHAKE_SIZE: usize = 2048;
/// Size of a legacy (pre-EIP-8) auth message on the wire (EIP-8: 194-byte plaintext + 113).
pub const LEGACY_AUTH_SIZE: usize = 307;
/// Size of a legacy (pre-EIP-8) ack message on the wire (EIP-8: 97-byte plaintext + 113).
pub const LEGACY_ACK_SIZE: usize = 210;
/// The `auth-vsn` / `ack-vsn` we send (EIP-8).
pub const HANDSHAKE_VERSION: u64 = 4;
/// Fewest zero bytes of EIP-8 padding we append (geth: `rand(100) + 100`).
pub const MIN_PADDING: usize = 100;
/// The padding length is drawn uniformly from `MIN_PADDING..MIN_PADDING + PADDING_SPAN`.
pub const PADDING_SPAN: usize = 100;
/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

const LEGACY_AUTH_PLAINTEXT: usize =
    RECOVERABLE_SIGNATURE_LEN + 32 + PUBLIC_KEY_LEN + NONCE_LEN + 1;
const LEGACY_ACK_PLAINTEXT: usize = PUBLIC_KEY_LEN + NONCE_LEN + 1;

/// Why a handshake failed. The connection must be closed; there is no channel yet to tell the
/// peer why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The size prefix announced more than [`MAX_HANDSHAKE_SIZE`] bytes.
    TooLarge {
        /// The announced size.
        size: usize,
    },
    /// The size prefix announced less than the ECIES overhead.
    TooSmall {
        /// The announced size.
        size: usize,
    },
    /// ECIES tag mismatch: the message was not encrypted to our key, or was altered.
    BadMac,
    /// A public key in the message (ECIES ephemeral key, static or ephemeral key in the body)
    /// is not a point on the curve.
    InvalidKey,
    /// The signature in auth does not recover to a public key.
    InvalidSignature,
    /// The legacy auth's hash of the ephemeral key does not match the recovered key.
    EphemeralKeyHashMismatch,
    /// The decrypted body is not the expected RLP structure.
    Malformed(&'static str),
    /// The handshake failed earlier; it takes no more input.
    Failed,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::TooLarge { size } => {
                write!(
                    f,
                    "handshake message of {size} bytes exceeds the {MAX_HANDSHAKE_SIZE}-byte limit"
                )
            }
            HandshakeError::TooSmall { size } => {
                write!(
                    f,
                    "handshake message of {size} bytes is shorter than the ECIES overhead"
                )
            }
            HandshakeError::BadMac => {
                f.write_str("handshake message MAC mismatch (not encrypted to our key, or altered)")
            }
            HandshakeError::InvalidKey => {
                f.write_str("handshake message carries a public key that is not on the curve")
            }
            HandshakeError::InvalidSignature => {
                f.write_str("auth signature does not recover to a public key")
            }
            HandshakeError::EphemeralKeyHashMismatch => {
                f.write_str("legacy auth: ephemeral key hash mismatch")
            }
            HandshakeError::Malformed(what) => write!(f, "malformed handshake message: {what}"),
            HandshakeError::Failed => f.write_str("handshake already failed"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<EciesError> for HandshakeError {
    fn from(e: EciesError) -> Self {
        match e {
            EciesError::TooShort => HandshakeError::Malformed("ECIES message too short"),
            EciesError::InvalidEphemeralKey => HandshakeError::InvalidKey,
            EciesError::BadMac => HandshakeError::BadMac,
        }
    }
}

/// The wire format of a handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormat {
    /// EIP-8: 2-byte size prefix, RLP body, padding.
    Eip8,
    /// Pre-EIP-8 fixed-size messages.
    Legacy,
}

/// Everything one side draws from entropy for a handshake, drawn up front so the state machine
/// needs no entropy source while reading. Public so tests and fuzzers can fix it.
#[derive(Clone)]
pub struct HandshakeRandomness {
    /// Our ephemeral key for this connection.
    pub ephemeral_key: secp256k1::SecretKey,
    /// Our nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The ECIES ephemeral key for the message we send.
    pub ecies_key: secp256k1::SecretKey,
    /// The ECIES IV for the message we send.
    pub ecies_iv: [u8; 16],
    /// Zero bytes of EIP-8 padding.
    pub padding_len: usize,
}

impl HandshakeRandomness {
    /// Draws fresh values from `rng`.
    pub fn draw<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let ephemeral_key = random_secret(rng);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ecies_key = random_secret(rng);
        let mut ecies_iv = [0u8; 16];
        rng.fill_bytes(&mut ecies_iv);
        let padding_len = MIN_PADDING + (rng.next_u32() as usize % PADDING_SPAN);
        Self {
            ephemeral_key,
            nonce,
            ecies_key,
            ecies_iv,
            padding_len,
        }
    }
}

impl fmt::Debug for HandshakeRandomness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeRandomness { .. }")
    }
}

/// A decoded auth message.
#[derive(Debug, Clone)]
pub struct AuthMessage {
    /// Which format it came in.
    pub format: MessageFormat,
    /// The initiator's static public key.
    pub initiator_key: NodePublicKey,
    /// The initiator's ephemeral public key, recovered from the signature.
    pub initiator_ephemeral: NodePublicKey,
    /// The initiator's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `auth-vsn` (4 for legacy messages).
    pub version: u64,
}

/// A decoded ack message.
#[derive(Debug, Clone)]
pub struct AckMessage {
    /// Which format it came in.
    pub format: MessageFormat,
    /// The recipient's ephemeral public key.
    pub recipient_ephemeral: NodePublicKey,
    /// The recipient's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `ack-vsn` (4 for legacy messages).
    pub version: u64,
}

/// The result of a completed handshake.
#[derive(Debug)]
pub struct HandshakeOutcome {
    /// The remote's static public key: for the initiator the key it dialled, for the
    /// recipient the key the auth message proved.
    pub remote: NodePublicKey,
    /// The derived session secrets.
    pub secrets: Secrets,
    /// The format the auth/ack exchange used.
    pub format: MessageFormat,
}

fn parse_key(raw: &[u8]) -> Result<NodePublicKey, HandshakeError> {
    NodePublicKey::from_raw(raw).map_err(|e| match e {
        KeyError::WrongLength { .. } => HandshakeError::Malformed("public key of the wrong length"),
        _ => HandshakeError::InvalidKey,
    })
}

fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = a[i] ^ b[i];
    }
    out
}

fn malformed(_: rlp::DecoderError) -> HandshakeError {
    HandshakeError::Malformed("RLP body")
}

/// Decrypts and decodes an auth message (either format) addressed to `local`.
///
/// `packet` is the whole message as read from the wire: for EIP-8 including its size prefix.
pub fn decode_auth(local: &NodeSecretKey, packet: &[u8]) -> Result<AuthMessage, HandshakeError> {
    let (format, plain) = decrypt_message(local, packet, LEGACY_AUTH_SIZE)?;
    let (sig, initiator_key, nonce, version, eph_hash) = match format {
        MessageFormat::Legacy => {
            if plain.len() != LEGACY_AUTH_PLAINTEXT {
                return Err(HandshakeError::Malformed("legacy auth of the wrong length"));
            }
            let sig: [u8; 65] = plain[..65].try_into().expect("length checked");
            let eph_hash: [u8; 32] = plain[65..97].try_into().expect("length checked");
            let key = parse_key(&plain[97..161])?;
            let nonce: [u8; 32] = plain[161..193].try_into().expect("length checked");
            (sig, key, nonce, HANDSHAKE_VERSION, Some(eph_hash))
        }
        MessageFormat::Eip8 => {
            let list = rlp_ext::leading_list(&plain).map_err(malformed)?;
            let sig = rlp_ext::fixed_at::<65>(&list, 0).map_err(malformed)?;
            let key = parse_key(list.at(1).and_then(|k| k.data()).map_err(malformed)?)?;
            let nonce = rlp_ext::fixed_at::<32>(&list, 2).map_err(malformed)?;
            let version = rlp_ext::uint_at(&list, 3).map_err(malformed)?;
            (sig, key, nonce, version, None)
        }
    };
    let static_shared = ecdh_x(&initiator_key.secp(), local.secp());
    let signed = xor32(&static_shared, &nonce);
    let initiator_ephemeral =
        NodePublicKey::recover(&sig, &signed).map_err(|_| HandshakeError::InvalidSignature)?;
    if let Some(h) = eph_hash {
        if keccak256(initiator_ephemeral.raw()) != h {
            return Err(HandshakeError::EphemeralKeyHashMismatch);
        }
    }
    Ok(AuthMessage {
        format,
        initiator_key,
        initiator_ephemeral,
        nonce,
        version,
    })
}

/// Decrypts and decodes an ack message (either format) addressed to `local`.
pub fn decode_ack(local: &NodeSecretKey, packet: &[u8]) -> Result<AckMessage, HandshakeError> {
    let (format, plain) = decrypt_message(local, packet, LEGACY_ACK_SIZE)?;
    match format {
        MessageFormat::Legacy => {
            if plain.len() != LEGACY_ACK_PLAINTEXT {
                return Err(HandshakeError::Malformed("legacy ack of the wrong length"));
            }
            let recipient_ephemeral = parse_key(&plain[..64])?;
            let nonce: [u8; 32] = plain[64..96].try_into().expect("length checked");
            Ok(AckMessage {
                format,
                recipient_ephemeral,
                nonce,
                version: HANDSHAKE_VERSION,
            })
        }
        MessageFormat::Eip8 => {
            let list = rlp_ext::leading_list(&plain).map_err(malformed)?;
            let recipient_ephemeral =
                parse_key(list.at(0).and_then(|k| k.data()).map_err(malformed)?)?;
            let nonce = rlp_ext::fixed_at::<32>(&list, 1).map_err(malformed)?;
            let version = rlp_ext::uint_at(&list, 2).map_err(malformed)?;
            Ok(AckMessage {
                format,
                recipient_ephemeral,
                nonce,
                version,
            })
        }
    }
}

/// Decrypts a complete message, deciding its format the way the framing layer does: a
/// message of exactly the legacy size that decrypts without a size prefix is legacy.
fn decrypt_message(
    local: &NodeSecretKey,
    packet: &[u8],
    legacy_size: usize,
) -> Result<(MessageFormat, Vec<u8>), HandshakeError> {
    if packet.len() == legacy_size && packet[0] == 0x04 {
        if let Ok(plain) = ecies::decrypt(local.secp(), packet, &[]) {
            return Ok((MessageFormat::Legacy, plain));
        }
    }
    if packet.len() < 2 {
        return Err(HandshakeError::Malformed("shorter than its size prefix"));
    }
    let size = usize::from(u16::from_be_bytes([packet[0], packet[1]]));
    if size > MAX_HANDSHAKE_SIZE {
        return Err(HandshakeError::TooLarge { size });
    }
    if size != packet.len() - 2 {
        return Err(HandshakeError::Malformed(
            "size prefix does not match the message length",
        ));
    }
    let plain = ecies::decrypt(local.secp(), &packet[2..], &packet[..2])?;
    Ok((MessageFormat::Eip8, plain))
}

/// Builds an EIP-8 message: size prefix || ECIES(body || zero padding), authenticated with the
/// prefix as shared MAC data.
fn seal_eip8(remote: &NodePublicKey, body: &[u8], rnd: &HandshakeRandomness) -> Vec<u8> {
    let mut plain = Vec::with_capacity(body.len() + rnd.padding_len);
    plain.extend_from_slice(body);
    plain.resize(body.len() + rnd.padding_len, 0);
    let size = (plain.len() + ECIES_OVERHEAD) as u16;
    let mut out = Vec::with_capacity(2 + usize::from(size));
    out.extend_from_slice(&size.to_be_bytes());
    let prefix = size.to_be_bytes();
    ecies::encrypt_with(
        &rnd.ecies_key,
        rnd.ecies_iv,
        remote,
        &plain,
        &prefix,
        &mut out,
    );
    out
}

fn rlp_bytes_list(items: &[&[u8]], version: u64) -> Vec<u8> {
    let mut s = rlp::RlpStream::new_list(items.len() + 1);
    for i in items {
        s.append(i);
    }
    s.append(&version);
    s.out().to_vec()
}

#[derive(Debug)]
enum Role {
    Initiator {
        remote: NodePublicKey,
        auth: Vec<u8>,
    },
    Recipient,
}

#[derive(Debug)]
enum State {
    Reading { legacy_ruled_out: bool },
    Done(Box<HandshakeOutcome>),
    Taken,
    Failed,
}

/// One side of an RLPx handshake. Feed it bytes with [`read`](Self::read), send what
/// [`take_output`](Self::take_output) returns, and collect the result with
/// [`into_outcome`](Self::into_outcome) once [`is_done`](Self::is_done).
#[derive(Debug)]
pub struct Handshake {
    local: NodeSecretKey,
    rnd: HandshakeRandomness,
    role: Role,
    state: State,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Handshake {
    /// Starts a handshake as the initiator towards `remote`; the auth message is ready in
    /// [`take_output`](Self::take_output) at once.
    pub fn initiator<R: CryptoRng + ?Sized>(
        local: &NodeSecretKey,
        remote: &NodePublicKey,
        rng: &mut R,
    ) -> Self {
        Self::initiator_with(local, remote, HandshakeRandomness::draw(rng))
    }

    /// [`initiator`](Self::initiator) with fixed randomness.
    pub fn initiator_with(
        local: &NodeSecretKey,
        remote: &NodePublicKey,
        rnd: HandshakeRandomness,
    ) -> Self {
        let static_shared = ecdh_x(&remote.secp(), local.secp());
        let sig = sign_recoverable(&rnd.ephemeral_key, &xor32(&static_shared, &rnd.nonce));
        let body = rlp_bytes_list(&[&sig, local.public().raw(), &rnd.nonce], HANDSHAKE_VERSION);
        let auth = seal_eip8(remote, &body, &rnd);
        Self {
            local: local.clone(),
            out: auth.clone(),
            role: Role::Initiator {
                remote: *remote,
                auth,
            },
            rnd,
            state: State::Reading {
                legacy_ruled_out: false,
            },
            buf: Vec::new(),
        }
    }

    /// Starts a handshake as the recipient; it waits for the auth message.
    pub fn recipient<R: CryptoRng + ?Sized>(local: &NodeSecretKey, rng: &mut R) -> Self {
        Self::recipient_with(local, HandshakeRandomness::draw(rng))
    }

    /// [`recipient`](Self::recipient) with fixed randomness.
    pub fn recipient_with(local: &NodeSecretKey, rnd: HandshakeRandomness) -> Self {
        Self {
            local: local.clone(),
            rnd,
            role: Role::Recipient,
            state: State::Reading {
                legacy_ruled_out: false,
            },
            buf: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Whether we are the initiator.
    pub fn is_initiator(&self) -> bool {
        matches!(self.role, Role::Initiator { .. })
    }

    /// Bytes to send to the peer (auth for the initiator, ack for the recipient once auth was
    /// read); empty when there is nothing to send.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the handshake completed.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// The outcome, once [`is_done`](Self::is_done); `None` before.
    pub fn into_outcome(self) -> Option<HandshakeOutcome> {
        match self.state {
            State::Done(o) => Some(*o),
            _ => None,
        }
    }

    /// Takes the outcome out, leaving the handshake spent; `None` if not done.
    pub fn take_outcome(&mut self) -> Option<HandshakeOutcome> {
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Done(o) => Some(*o),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Feeds bytes from the peer, in any chunking. Returns how many were consumed: never more
    /// than the handshake message, so bytes after it (the first frames) stay with the caller.
    /// After an error the handshake is dead and every later call returns
    /// [`HandshakeError::Failed`].
    pub fn read(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let legacy_size = match self.role {
            Role::Initiator { .. } => LEGACY_ACK_SIZE,
            Role::Recipient => LEGACY_AUTH_SIZE,
        };
        let mut consumed = 0;
        loop {
            let legacy_ruled_out = match self.state {
                State::Reading { legacy_ruled_out } => legacy_ruled_out,
                State::Failed => return Err(HandshakeError::Failed),
                State::Done(_) | State::Taken => return Ok(consumed),
            };
            let need = match self.bytes_needed(legacy_size, legacy_ruled_out) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            };
            if self.buf.len() < need {
                let take = (need - self.buf.len()).min(input.len() - consumed);
                if take == 0 {
                    return Ok(consumed);
                }
                self.buf
                    .extend_from_slice(&input[consumed..consumed + take]);
                consumed += take;
                continue;
            }
            // `need` bytes are buffered: either a candidate legacy message or a whole EIP-8 one.
            if !legacy_ruled_out
                && self.buf[0] == 0x04
                && need == legacy_size
                && ecies::decrypt(self.local.secp(), &self.buf, &[]).is_err()
            {
                self.state = State::Reading {
                    legacy_ruled_out: true,
                };
                continue;
            }
            let packet = std::mem::take(&mut self.buf);
            return match self.complete(packet) {
                Ok(()) => Ok(consumed),
                Err(e) => Err(self.fail(e)),
            };
        }
    }

    fn fail(&mut self, e: HandshakeError) -> HandshakeError {
        self.state = State::Failed;
        self.buf = Vec::new();
        e
    }

    /// How many bytes the current message needs in total, from what is buffered so far.
    fn bytes_needed(
        &self,
        legacy_size: usize,
        legacy_ruled_out: bool,
    ) -> Result<usize, HandshakeError> {
        if self.buf.len() < 2 {
            return Ok(2);
        }
        if self.buf[0] == 0x04 && !legacy_ruled_out {
            return Ok(legacy_size);
        }
        let size = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if size > MAX_HANDSHAKE_SIZE {
            return Err(HandshakeError::TooLarge { size });
        }
        if size < ECIES_OVERHEAD {
            return Err(HandshakeError::TooSmall { size });
        }
        Ok(2 + size)
    }

    fn complete(&mut self, packet: Vec<u8>) -> Result<(), HandshakeError> {
        let outcome = match &self.role {
            Role::Initiator { remote, auth } => {
                let ack = decode_ack(&self.local, &packet)?;
                let secrets = Secrets::derive(
                    true,
                    &self.rnd.ephemeral_key,
                    &ack.recipient_ephemeral,
                    &self.rnd.nonce,
                    &ack.nonce,
                    auth,
                    &packet,
                );
                HandshakeOutcome {
                    remote: *remote,
                    secrets,
                    format: ack.format,
                }
            }
            Role::Recipient => {
                let auth = decode_auth(&self.local, &packet)?;
                let eph_pub = NodePublicKey::from_secp(secp256k1::PublicKey::from_secret_key(
                    &self.rnd.ephemeral_key,
                ));
                let ack = match auth.format {
                    MessageFormat::Eip8 => {
                        let body =
                            rlp_bytes_list(&[eph_pub.raw(), &self.rnd.nonce], HANDSHAKE_VERSION);
                        seal_eip8(&auth.initiator_key, &body, &self.rnd)
                    }
                    MessageFormat::Legacy => {
                        let mut plain = Vec::with_capacity(LEGACY_ACK_PLAINTEXT);
                        plain.extend_from_slice(eph_pub.raw());
                        plain.extend_from_slice(&self.rnd.nonce);
                        plain.push(0);
                        let mut out = Vec::with_capacity(LEGACY_ACK_SIZE);
                        ecies::encrypt_with(
                            &self.rnd.ecies_key,
                            self.rnd.ecies_iv,
                            &auth.initiator_key,
                            &plain,
                            &[],
                            &mut out,
                        );
                        out
                    }
                };
                let secrets = Secrets::derive(
                    false,
                    &self.rnd.ephemeral_key,
                    &auth.initiator_ephemeral,
                    &auth.nonce,
                    &self.rnd.nonce,
                    &packet,
                    &ack,
                );
                self.out.extend_from_slice(&ack);
                HandshakeOutcome {
                    remote: auth.initiator_key,
                    secrets,
                    format: auth.format,
                }
            }
        };
        self.state = State::Done(Box::new(outcome));
        Ok(())
    }
}
