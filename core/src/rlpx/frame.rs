//! RLPx framing ([PROTOCOL.md §5](crate::spec::protocol)): AES-256-CTR encryption, the
//! Keccak-256/AES MAC chain, the frame size limit and EIP-706 snappy compression.
//!
//! The codec is symmetric: [`FrameCodec::encode`] seals one message into a frame and
//! [`FrameCodec::decode`] reads frames back out of a byte stream fed in any chunking.

use aes::cipher::array::Array;
use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
    ParBlocks,
};
use aes::Aes256Enc;

use super::secrets::Secrets;
use crate::keccak::Keccak256;
use crate::rlp_ext::{encode_uint, read_uint_prefix, uint_len};

/// Largest frame the 24-bit size field can carry, and so the largest we send or accept by
/// default (geth `maxUint24`).
pub const MAX_FRAME_SIZE: usize = 0xff_ffff;
/// Largest decompressed message we accept or compress (geth `errPlainMessageTooLarge`: one
/// byte below the 16 MiB of EIP-706's text).
pub const MAX_UNCOMPRESSED_SIZE: usize = 0xff_ffff;
/// Longest RLP encoding of a message id (a `u64`: one prefix byte and eight bytes).
const MAX_ID_LEN: usize = 9;
/// Most bytes snappy adds to a payload that does not compress: [`FrameCodec::encode`] then
/// writes it as one literal, behind a varint length and a literal tag of at most four bytes
/// each for anything up to [`MAX_UNCOMPRESSED_SIZE`].
const MAX_SNAPPY_OVERHEAD: usize = 8;
/// Largest payload [`FrameCodec::encode`] always takes, whatever its content, its message id
/// and whether snappy is on: 16,777,198 bytes. Payloads above it, up to
/// [`MAX_UNCOMPRESSED_SIZE`], are taken when they compress enough to fit one frame.
pub const MAX_MESSAGE_SIZE: usize = MAX_FRAME_SIZE - MAX_ID_LEN - MAX_SNAPPY_OVERHEAD;
/// Bytes the largest frame takes on the wire: header and header MAC, the body padded to 16
/// bytes, and the frame MAC (16,777,264 bytes).
pub const MAX_FRAME_WIRE_LEN: usize = 2 * BLOCK + MAX_FRAME_SIZE.div_ceil(BLOCK) * BLOCK + BLOCK;
/// The snappy block format cannot expand input by more than this factor (a 3-byte copy
/// element yields at most 64 bytes), so a claimed length above it is a lie and is refused
/// before anything is allocated for it.
const MAX_SNAPPY_EXPANSION: usize = 22;
/// Length of the encrypted header and of each MAC.
const BLOCK: usize = 16;
/// The devp2p Disconnect message id, the one message [`FrameCodec::decode`] also takes
/// uncompressed when snappy is on.
const DISCONNECT_ID: u64 = 0x01;
/// Header data: `rlp([capability-id = 0, context-id = 0])`, which receivers ignore.
const HEADER_DATA: [u8; 3] = [0xc2, 0x80, 0x80];
/// Buffers that grew beyond this for one large frame are released after it, even mid-burst
/// (between bursts [`FrameCodec::release_read_buffers`] and
/// [`FrameCodec::release_write_buffers`] give back everything).
const RETAINED_BUFFER: usize = 64 * 1024;
/// Payloads shorter than this go out as one snappy literal without running the compressor:
/// snappy itself emits a literal for them (`MIN_NON_LITERAL_BLOCK_SIZE` in the snap crate and
/// in Google's C++ snappy), so the bytes are the same, and a Ping or Pong needs no encoder.
const SNAPPY_MIN_COMPRESSIBLE: usize = 17;

/// Why a frame could not be sent or read. Any error on the read side is fatal: the codec
/// refuses further input and the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header MAC did not match.
    HeaderMac,
    /// The frame MAC did not match.
    FrameMac,
    /// A frame larger than the limit (sent or announced).
    FrameTooLarge {
        /// The frame size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A message whose uncompressed size is above [`MAX_UNCOMPRESSED_SIZE`] or the configured
    /// limit, or a snappy block claiming more than its compressed size can hold.
    MessageTooLarge {
        /// The (claimed) uncompressed size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The frame does not start with a canonical RLP integer message id.
    InvalidMessageId,
    /// The snappy payload is corrupt.
    Snappy(String),
    /// An earlier read error killed the codec.
    Failed,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::HeaderMac => f.write_str("frame header MAC mismatch"),
            FrameError::FrameMac => f.write_str("frame body MAC mismatch"),
            FrameError::FrameTooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the {limit}-byte limit")
            }
            FrameError::MessageTooLarge { size, limit } => {
                write!(
                    f,
                    "message of {size} uncompressed bytes exceeds the {limit}-byte limit"
                )
            }
            FrameError::InvalidMessageId => {
                f.write_str("frame does not start with a canonical message id")
            }
            FrameError::Snappy(e) => write!(f, "invalid snappy payload: {e}"),
            FrameError::Failed => f.write_str("frame stream already failed"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The AES work of one direction's frames, set up once for a frame instead of once per
/// block operation: the aes crate prepares its backend on every call into it (on AVX-512
/// machines it broadcasts all 15 round keys into vector registers), which for a small frame
/// cost more than the encryption itself when each of a frame's four AES steps paid it.
trait Ciphers {
    /// XORs the next bytes of this direction's AES-256-CTR keystream into `data`, a whole
    /// number of blocks long.
    fn ctr(&mut self, data: &mut [u8]);
    /// Encrypts one block with the MAC key (AES-256, the MAC secret).
    fn mac_block(&self, block: &mut [u8; BLOCK]);
}

/// Keystream blocks made at once below a backend's parallel batch.
const TAIL_BLOCKS: usize = 8;

/// Runs `f` with the CTR cipher (`ctr_cipher` at block `counter`, which it advances) and the
/// MAC cipher each set up once.
fn with_ciphers<R>(
    ctr_cipher: &Aes256Enc,
    mac_cipher: &Aes256Enc,
    counter: &mut u128,
    f: impl FnOnce(&mut dyn Ciphers) -> R,
) -> R {
    struct Outer<'a, F, R> {
        mac_cipher: &'a Aes256Enc,
        counter: &'a mut u128,
        f: F,
        out: &'a mut Option<R>,
    }
    impl<F, R> BlockSizeUser for Outer<'_, F, R> {
        type BlockSize = U16;
    }
    impl<F: FnOnce(&mut dyn Ciphers) -> R, R> BlockCipherEncClosure for Outer<'_, F, R> {
        fn call<C: BlockCipherEncBackend<BlockSize = U16>>(self, ctr: &C) {
            self.mac_cipher.encrypt_with_backend(Inner {
                ctr,
                counter: self.counter,
                f: self.f,
                out: self.out,
            });
        }
    }
    struct Inner<'a, C, F, R> {
        ctr: &'a C,
        counter: &'a mut u128,
        f: F,
        out: &'a mut Option<R>,
    }
    impl<C, F, R> BlockSizeUser for Inner<'_, C, F, R> {
        type BlockSize = U16;
    }
    impl<C, F, R> BlockCipherEncClosure for Inner<'_, C, F, R>
    where
        C: BlockCipherEncBackend<BlockSize = U16>,
        F: FnOnce(&mut dyn Ciphers) -> R,
    {
        fn call<M: BlockCipherEncBackend<BlockSize = U16>>(self, mac: &M) {
            let mut both = Backends {
                ctr: self.ctr,
                counter: self.counter,
                mac,
            };
            *self.out = Some((self.f)(&mut both));
        }
    }
    struct Backends<'a, C, M> {
        ctr: &'a C,
        counter: &'a mut u128,
        mac: &'a M,
    }
    impl<C, M> Ciphers for Backends<'_, C, M>
    where
        C: BlockCipherEncBackend<BlockSize = U16>,
        M: BlockCipherEncBackend<BlockSize = U16>,
    {
        fn ctr(&mut self, data: &mut [u8]) {
            debug_assert_eq!(data.len() % BLOCK, 0, "CTR runs on whole blocks here");
            // Keystream blocks are the encrypted big-endian 128-bit counter (IV zero), as
            // `ctr::Ctr128BE` makes them: as many at once as the backend encrypts in parallel,
            // and the rest (a small frame is all rest) through a small buffer, so that a
            // header's block does not clear a whole parallel batch (1 KiB with VAES-512).
            let par = C::ParBlocksSize::USIZE;
            let mut next = || {
                let block = Array(self.counter.to_be_bytes());
                *self.counter = self.counter.wrapping_add(1);
                block
            };
            let mut chunks = data.chunks_exact_mut(par * BLOCK);
            if chunks.len() > 0 {
                let mut ks: ParBlocks<C> = Default::default();
                for chunk in &mut chunks {
                    ks.iter_mut().for_each(|b| *b = next());
                    self.ctr.encrypt_par_blocks_inplace(&mut ks);
                    xor(chunk, Array::slice_as_flattened(&ks));
                }
            }
            // Fewer than `par` blocks remain: in groups that the tail call takes (it needs
            // fewer than `par`; a backend with `par == 1` never gets here).
            let group = (par - 1).clamp(1, TAIL_BLOCKS);
            let mut ks = [Array([0u8; BLOCK]); TAIL_BLOCKS];
            for chunk in chunks.into_remainder().chunks_mut(group * BLOCK) {
                let ks = &mut ks[..chunk.len() / BLOCK];
                ks.iter_mut().for_each(|b| *b = next());
                self.ctr.encrypt_tail_blocks_inplace(ks);
                xor(chunk, Array::slice_as_flattened(ks));
            }
        }

        fn mac_block(&self, block: &mut [u8; BLOCK]) {
            self.mac.encrypt_block_inplace(block.into());
        }
    }
    fn xor(data: &mut [u8], keystream: &[u8]) {
        for (d, k) in data.iter_mut().zip(keystream) {
            *d ^= k;
        }
    }
    let mut out = None;
    ctr_cipher.encrypt_with_backend(Outer {
        mac_cipher,
        counter,
        f,
        out: &mut out,
    });
    out.expect("the aes crate runs the closure")
}

/// One direction's MAC: a Keccak-256 sponge kept open for the whole connection (its AES-256
/// block cipher, keyed with the MAC secret, is the codec's MAC cipher, the same for both
/// directions).
struct MacState {
    sponge: Keccak256,
    /// The sponge's digest as of now. The header MAC of a frame starts from the digest the
    /// previous frame MAC ended with, so caching it saves one of four Keccak finalisations per
    /// frame: three remain, the fewest the construction allows.
    current: [u8; 32],
}

impl MacState {
    fn new(sponge: Keccak256) -> Self {
        let current = sponge.digest();
        Self { sponge, current }
    }

    /// `seed = AES(digest[:16]) ^ header_ct; absorb(seed); digest[:16]`.
    fn header(&mut self, aes: &dyn Ciphers, header_ct: &[u8]) -> [u8; BLOCK] {
        let mut seed: [u8; BLOCK] = self.current[..BLOCK].try_into().expect("16 of 32 bytes");
        aes.mac_block(&mut seed);
        for (s, c) in seed.iter_mut().zip(header_ct) {
            *s ^= c;
        }
        self.sponge.update(&seed);
        self.current = self.sponge.digest();
        self.current[..BLOCK].try_into().expect("16 of 32 bytes")
    }

    /// `absorb(ct); f = digest[:16]; absorb(AES(f) ^ f); digest[:16]`.
    fn frame(&mut self, aes: &dyn Ciphers, frame_ct: &[u8]) -> [u8; BLOCK] {
        self.sponge.update(frame_ct);
        let f = self.sponge.digest();
        let mut seed: [u8; BLOCK] = f[..BLOCK].try_into().expect("16 of 32 bytes");
        aes.mac_block(&mut seed);
        for (s, x) in seed.iter_mut().zip(&f[..BLOCK]) {
            *s ^= x;
        }
        self.sponge.update(&seed);
        self.current = self.sponge.digest();
        self.current[..BLOCK].try_into().expect("16 of 32 bytes")
    }
}

/// Compares two MACs without an early exit.
fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn padded(size: usize) -> usize {
    size.div_ceil(BLOCK) * BLOCK
}

/// Bytes of `n` as a snappy varint (the uncompressed length that starts a block).
fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Bytes of the tag of a snappy literal of `n > 0` bytes: one, plus one to four bytes of
/// `n - 1` when it is 60 or more.
fn literal_tag_len(n: usize) -> usize {
    match n.saturating_sub(1) {
        0..60 => 1,
        60..0x100 => 2,
        0x100..0x1_0000 => 3,
        0x1_0000..0x100_0000 => 4,
        _ => 5,
    }
}

/// Bytes of a snappy block that holds `n` bytes as one literal.
fn snappy_literal_len(n: usize) -> usize {
    varint_len(n) + if n == 0 { 0 } else { literal_tag_len(n) } + n
}

/// Writes `payload` as a snappy block of one literal (snappy's format description, "Literals").
fn write_snappy_literal(payload: &[u8], out: &mut Vec<u8>) {
    let mut n = payload.len();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    if payload.is_empty() {
        return;
    }
    let m = payload.len() - 1;
    let extra = literal_tag_len(payload.len()) - 1;
    if extra == 0 {
        out.push((m as u8) << 2);
    } else {
        // Tags 60..=63 say that 1..=4 little-endian bytes of `len - 1` follow.
        out.push(((59 + extra) as u8) << 2);
        out.extend_from_slice(&(m as u64).to_le_bytes()[..extra]);
    }
    out.extend_from_slice(payload);
}

enum ReadState {
    /// Waiting for the 32 bytes of header ciphertext and header MAC.
    Header,
    /// Header checked; waiting for the padded body and its MAC.
    Body {
        frame_size: usize,
    },
    Failed,
}

/// The codec's two AES-256 ciphers, key schedules expanded (close to 1 KiB each: the aes
/// crate sizes them for its software backend, whatever the CPU uses).
struct KeySchedules {
    /// Keyed with the AES secret: the CTR cipher of both directions (each from block zero,
    /// with its own counter).
    ctr: Aes256Enc,
    /// Keyed with the MAC secret: the MAC cipher of both directions.
    mac: Aes256Enc,
}

/// The key schedules in `slot`, expanded from `keys` (the AES and the MAC secret) if they
/// were released.
fn schedules<'a>(
    keys: &[[u8; 32]; 2],
    slot: &'a mut Option<Box<KeySchedules>>,
) -> &'a KeySchedules {
    slot.get_or_insert_with(|| {
        Box::new(KeySchedules {
            ctr: Aes256Enc::new(&keys[0].into()),
            mac: Aes256Enc::new(&keys[1].into()),
        })
    })
}

/// A decoded message: the wire message id and the (decompressed) payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The message id as on the wire (before subtracting any capability offset).
    pub id: u64,
    /// The payload, decompressed if snappy is on.
    pub payload: &'a [u8],
}

/// Encrypts, authenticates and frames messages in both directions of one RLPx connection.
pub struct FrameCodec {
    /// The AES secret and the MAC secret.
    keys: [[u8; 32]; 2],
    /// Their key schedules, expanded when frames move and released with the buffers when
    /// the connection goes idle: they are the largest part of an idle codec otherwise, and
    /// expanding them again costs less than sealing one small frame.
    schedules: Option<Box<KeySchedules>>,
    /// The next CTR block of each direction.
    egress_counter: u128,
    ingress_counter: u128,
    egress_mac: MacState,
    ingress_mac: MacState,
    snappy: bool,
    max_frame_size: usize,
    max_message_size: usize,
    read_state: ReadState,
    /// Bytes of the current frame when it arrived in pieces.
    read_buf: Vec<u8>,
    /// The decrypted body of the last frame.
    plain: Vec<u8>,
    /// Decompression scratch space.
    scratch: Vec<u8>,
    /// The compressed payload of the message last [`prepare`](FrameCodec::prepare)d, when
    /// snappy is on; its frame is sealed by [`seal_prepared`](FrameCodec::seal_prepared).
    compressed: Vec<u8>,
    /// What `prepare` left for `seal_prepared`: the message id, the payload length, and
    /// whether `compressed` holds its body.
    prepared: Option<(u64, usize, bool)>,
    /// Snappy's compressor, made at the first payload worth compressing and dropped by
    /// [`release_write_buffers`](FrameCodec::release_write_buffers): its hash tables take
    /// 2 KiB, and 32 KiB more once a payload over 1 KiB came by, more than the rest of the
    /// codec.
    encoder: Option<Box<snap::raw::Encoder>>,
    decoder: snap::raw::Decoder,
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCodec")
            .field("snappy", &self.snappy)
            .field("max_frame_size", &self.max_frame_size)
            .finish_non_exhaustive()
    }
}

impl FrameCodec {
    /// A codec keyed with the secrets of a completed handshake; snappy starts off.
    pub fn new(secrets: Secrets) -> Self {
        Self {
            // The IV is zero: both directions' counters start at block 0.
            keys: [secrets.aes_secret, secrets.mac_secret],
            schedules: None,
            egress_counter: 0,
            ingress_counter: 0,
            egress_mac: MacState::new(secrets.egress_mac),
            ingress_mac: MacState::new(secrets.ingress_mac),
            snappy: false,
            max_frame_size: MAX_FRAME_SIZE,
            max_message_size: MAX_UNCOMPRESSED_SIZE,
            read_state: ReadState::Header,
            read_buf: Vec::new(),
            plain: Vec::new(),
            scratch: Vec::new(),
            compressed: Vec::new(),
            prepared: None,
            encoder: None,
            decoder: snap::raw::Decoder::new(),
        }
    }

    /// Switches snappy compression of payloads on or off for both directions (on after a
    /// Hello exchange where both sides speak p2p version 5 or later).
    pub fn set_snappy(&mut self, on: bool) {
        self.snappy = on;
    }

    /// Whether snappy is on.
    pub fn snappy(&self) -> bool {
        self.snappy
    }

    /// Lowers the largest frame accepted from the peer (at most [`MAX_FRAME_SIZE`]).
    pub fn set_max_frame_size(&mut self, limit: usize) {
        self.max_frame_size = limit.min(MAX_FRAME_SIZE);
    }

    /// Lowers the largest uncompressed message accepted from the peer (at most
    /// [`MAX_UNCOMPRESSED_SIZE`]).
    pub fn set_max_message_size(&mut self, limit: usize) {
        self.max_message_size = limit.min(MAX_UNCOMPRESSED_SIZE);
    }

    /// Bytes a frame carrying `payload_len` bytes (after compression) with message id `id`
    /// takes on the wire.
    pub fn frame_len(id: u64, payload_len: usize) -> usize {
        2 * BLOCK + padded(uint_len(id) + payload_len) + BLOCK
    }

    /// The most bytes a frame carrying `payload_len` payload bytes with message id `id` can
    /// take on the wire with the codec as it is (snappy on or off). The frame
    /// [`encode`](Self::encode) writes is never larger.
    pub fn max_frame_len(&self, id: u64, payload_len: usize) -> usize {
        let body = if self.snappy {
            snappy_literal_len(payload_len)
        } else {
            payload_len
        };
        Self::frame_len(id, body)
    }

    /// Seals message `id` with `payload` (compressed first if snappy is on) into one frame
    /// appended to `out`. On error nothing is appended and the stream is unchanged.
    ///
    /// Every payload up to [`MAX_MESSAGE_SIZE`] fits; a larger one up to
    /// [`MAX_UNCOMPRESSED_SIZE`] fits when it compresses to at most [`MAX_FRAME_SIZE`] bytes
    /// with its id. A payload that snappy would make larger goes as one stored literal, which
    /// every snappy decoder reads.
    pub fn encode(&mut self, id: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.prepare(id, payload)?;
        self.seal_prepared(id, payload, out)
    }

    /// The first half of [`encode`](Self::encode): compresses `payload` (with snappy on),
    /// checks the limits, and returns the bytes its frame will take on the wire, so a caller
    /// can check room for exactly that before [`seal_prepared`](Self::seal_prepared) writes
    /// it. The stream is unchanged until then; another `prepare` replaces this one.
    pub(crate) fn prepare(&mut self, id: u64, payload: &[u8]) -> Result<usize, FrameError> {
        self.prepared = None;
        let body = if self.snappy {
            if payload.len() > MAX_UNCOMPRESSED_SIZE {
                return Err(FrameError::MessageTooLarge {
                    size: payload.len(),
                    limit: MAX_UNCOMPRESSED_SIZE,
                });
            }
            self.compress(payload)?;
            self.compressed.len()
        } else {
            payload.len()
        };
        let size = uint_len(id) + body;
        if size > MAX_FRAME_SIZE {
            self.release_compressed();
            return Err(FrameError::FrameTooLarge {
                size,
                limit: MAX_FRAME_SIZE,
            });
        }
        self.prepared = Some((id, payload.len(), self.snappy));
        Ok(Self::frame_len(id, body))
    }

    /// The second half of [`encode`](Self::encode): seals the message last
    /// [`prepare`](Self::prepare)d, which must be `id` with this same `payload`, into one frame
    /// appended to `out`. Without a matching `prepare` it prepares first.
    pub(crate) fn seal_prepared(
        &mut self,
        id: u64,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        if self.prepared.take() != Some((id, payload.len(), self.snappy)) {
            self.prepare(id, payload)?;
            self.prepared = None;
        }
        let compressed = std::mem::take(&mut self.compressed);
        let body: &[u8] = if self.snappy { &compressed } else { payload };
        let result = self.seal(uint_len(id) + body.len(), out, |out| {
            encode_uint(id, out);
            out.extend_from_slice(body);
        });
        self.compressed = compressed;
        self.release_compressed();
        result
    }

    /// Compresses `payload` into `self.compressed`: snappy's output, or one stored literal
    /// when that is shorter (a payload that does not compress).
    fn compress(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        self.compressed.clear();
        if payload.len() < SNAPPY_MIN_COMPRESSIBLE {
            write_snappy_literal(payload, &mut self.compressed);
            return Ok(());
        }
        self.compressed
            .resize(snap::raw::max_compress_len(payload.len()), 0);
        let n = self
            .encoder
            .get_or_insert_with(|| Box::new(snap::raw::Encoder::new()))
            .compress(payload, &mut self.compressed)
            .map_err(|e| FrameError::Snappy(e.to_string()))?;
        if n > snappy_literal_len(payload.len()) {
            self.compressed.clear();
            write_snappy_literal(payload, &mut self.compressed);
        } else {
            self.compressed.truncate(n);
        }
        Ok(())
    }

    /// Keeps the compression buffer for the next message unless one large message grew it.
    fn release_compressed(&mut self) {
        if self.compressed.capacity() > RETAINED_BUFFER {
            self.compressed = Vec::new();
        } else {
            self.compressed.clear();
        }
    }

    /// Gives back the buffers of the read side: the last frame's plaintext and decompressed
    /// payload (no longer borrowed once this can be called), and the partial-frame buffer
    /// when no frame is half read; and the key schedules (expanded again at the next frame).
    /// A session calls it once it has read all it was given, so an idle connection holds no
    /// read buffer; the next frame allocates what it needs.
    pub fn release_read_buffers(&mut self) {
        self.plain = Vec::new();
        self.scratch = Vec::new();
        if self.read_buf.is_empty() {
            self.read_buf = Vec::new();
        }
        self.schedules = None;
    }

    /// Gives back the buffers of the write side: the compression buffer, snappy's compressor
    /// and the key schedules. A session calls it once its outbound queue has drained; a
    /// message prepared (compressed) but not sealed yet is prepared again when sealed.
    pub fn release_write_buffers(&mut self) {
        self.compressed = Vec::new();
        self.prepared = None;
        self.encoder = None;
        self.schedules = None;
    }

    /// Heap bytes the codec holds beyond its fixed state (secrets, MAC states, counters):
    /// buffers, the key schedules and snappy's compressor (counted at its fixed size), all
    /// released when idle; for tests that check an idle codec holds none.
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        self.read_buf.capacity()
            + self.plain.capacity()
            + self.scratch.capacity()
            + self.compressed.capacity()
            + self
                .encoder
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<snap::raw::Encoder>())
            + self
                .schedules
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<KeySchedules>())
    }

    /// Seals `frame_data` (message id and payload, already encoded and compressed as the
    /// caller wants) into one frame appended to `out`. For tests, fuzzers and callers that
    /// build frame data themselves; [`encode`](Self::encode) is the normal way.
    pub fn encode_frame_data(
        &mut self,
        frame_data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        self.seal(frame_data.len(), out, |out| {
            out.extend_from_slice(frame_data)
        })
    }

    /// Writes header, header MAC, the `size` body bytes that `write_body` appends (then
    /// padding), and the frame MAC.
    fn seal(
        &mut self,
        size: usize,
        out: &mut Vec<u8>,
        write_body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), FrameError> {
        if size > MAX_FRAME_SIZE {
            return Err(FrameError::FrameTooLarge {
                size,
                limit: MAX_FRAME_SIZE,
            });
        }
        let body_len = padded(size);
        out.reserve(2 * BLOCK + body_len + BLOCK);

        let start = out.len();
        let mut header = [0u8; BLOCK];
        header[..3].copy_from_slice(&(size as u32).to_be_bytes()[1..]);
        header[3..6].copy_from_slice(&HEADER_DATA);
        out.extend_from_slice(&header);
        // The header MAC's place, written below.
        out.extend_from_slice(&[0; BLOCK]);
        let body_start = out.len();
        write_body(out);
        debug_assert_eq!(out.len() - body_start, size);
        out.resize(body_start + body_len, 0);
        let (header, rest) = out[start..].split_at_mut(BLOCK);
        let (header_mac, body) = rest.split_at_mut(BLOCK);
        let mac = &mut self.egress_mac;
        let ks = schedules(&self.keys, &mut self.schedules);
        let frame_mac = with_ciphers(&ks.ctr, &ks.mac, &mut self.egress_counter, |aes| {
            aes.ctr(header);
            header_mac.copy_from_slice(&mac.header(aes, header));
            aes.ctr(body);
            mac.frame(aes, body)
        });
        out.extend_from_slice(&frame_mac);
        Ok(())
    }

    /// Reads from `input` until one frame is complete or the input is used up. Returns the
    /// number of bytes consumed and the frame, if one completed. Bytes after a completed frame
    /// are not consumed: call again with the rest.
    ///
    /// With snappy on, a Disconnect (id 0x01) whose payload does not decompress is handed out
    /// as it came: ethereumjs sends its Disconnect uncompressed after Hello, and reth reads
    /// both forms. No uncompressed reason (a bare integer or a one-item list) is valid snappy,
    /// so the two cannot be confused; the session decodes the reason or rejects the payload.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Frame<'_>>), FrameError> {
        let mut consumed = 0;
        if matches!(self.read_state, ReadState::Header) {
            if self.read_buf.is_empty() && self.plain.capacity() > RETAINED_BUFFER {
                self.plain = Vec::new();
                self.read_buf = Vec::new();
                self.scratch = Vec::new();
            }
            let mut header = [0u8; 2 * BLOCK];
            if self.read_buf.is_empty() && input.len() >= 2 * BLOCK {
                header.copy_from_slice(&input[..2 * BLOCK]);
                consumed = 2 * BLOCK;
            } else {
                let take = (2 * BLOCK - self.read_buf.len()).min(input.len());
                self.read_buf.extend_from_slice(&input[..take]);
                consumed = take;
                if self.read_buf.len() < 2 * BLOCK {
                    return Ok((consumed, None));
                }
                header.copy_from_slice(&self.read_buf);
                self.read_buf.clear();
            }
            // One pass through the ciphers for the header and, when it is all here, the body.
            let rest = &input[consumed..];
            let (max_frame_size, mac, plain) =
                (self.max_frame_size, &mut self.ingress_mac, &mut self.plain);
            let ks = schedules(&self.keys, &mut self.schedules);
            let opened = with_ciphers(&ks.ctr, &ks.mac, &mut self.ingress_counter, |aes| {
                let frame_size = open_header(mac, aes, &mut header, max_frame_size)?;
                let need = padded(frame_size) + BLOCK;
                if rest.len() < need {
                    return Ok((frame_size, false));
                }
                open_body(mac, aes, &rest[..need], frame_size, plain)?;
                Ok((frame_size, true))
            });
            let (frame_size, whole) = opened.map_err(|e| self.fail(e))?;
            if whole {
                consumed += padded(frame_size) + BLOCK;
            }
            self.read_state = if whole {
                ReadState::Header
            } else {
                ReadState::Body { frame_size }
            };
        }
        if let ReadState::Body { frame_size } = self.read_state {
            let need = padded(frame_size) + BLOCK;
            let rest = &input[consumed..];
            let direct = self.read_buf.is_empty() && rest.len() >= need;
            if direct {
                consumed += need;
            } else {
                let take = (need - self.read_buf.len()).min(rest.len());
                self.read_buf.extend_from_slice(&rest[..take]);
                consumed += take;
                if self.read_buf.len() < need {
                    return Ok((consumed, None));
                }
            }
            let body = if direct {
                &rest[..need]
            } else {
                &self.read_buf[..]
            };
            let (mac, plain) = (&mut self.ingress_mac, &mut self.plain);
            let ks = schedules(&self.keys, &mut self.schedules);
            let opened = with_ciphers(&ks.ctr, &ks.mac, &mut self.ingress_counter, |aes| {
                open_body(mac, aes, body, frame_size, plain)
            });
            opened.map_err(|e| self.fail(e))?;
            self.read_buf.clear();
        } else if matches!(self.read_state, ReadState::Failed) {
            return Err(FrameError::Failed);
        }
        self.read_state = ReadState::Header;
        let (id, id_len) =
            read_uint_prefix(&self.plain).map_err(|_| self.fail(FrameError::InvalidMessageId))?;
        if !self.snappy {
            return Ok((
                consumed,
                Some(Frame {
                    id,
                    payload: &self.plain[id_len..],
                }),
            ));
        }
        match self.decompress(id_len) {
            Ok(n) => Ok((
                consumed,
                Some(Frame {
                    id,
                    payload: &self.scratch[..n],
                }),
            )),
            // Not snappy, or claiming more than its bytes can expand to: taken as it came.
            Err(_) if id == DISCONNECT_ID => Ok((
                consumed,
                Some(Frame {
                    id,
                    payload: &self.plain[id_len..],
                }),
            )),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Decompresses the payload of the frame in `self.plain` (after its `id_len`-byte message
    /// id) into `self.scratch`; returns its length.
    fn decompress(&mut self, id_len: usize) -> Result<usize, FrameError> {
        let compressed = &self.plain[id_len..];
        let claimed =
            snap::raw::decompress_len(compressed).map_err(|e| FrameError::Snappy(e.to_string()))?;
        let limit = self
            .max_message_size
            .min(compressed.len().saturating_mul(MAX_SNAPPY_EXPANSION));
        if claimed > limit {
            return Err(FrameError::MessageTooLarge {
                size: claimed,
                limit,
            });
        }
        self.scratch.clear();
        self.scratch.resize(claimed, 0);
        match self.decoder.decompress(compressed, &mut self.scratch) {
            Ok(n) if n == claimed => Ok(n),
            Ok(_) => Err(FrameError::Snappy("length mismatch".into())),
            Err(e) => Err(FrameError::Snappy(e.to_string())),
        }
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.read_state = ReadState::Failed;
        self.read_buf = Vec::new();
        e
    }
}

/// Checks the header MAC, decrypts the header and returns the announced frame size.
fn open_header(
    mac: &mut MacState,
    aes: &mut dyn Ciphers,
    header: &mut [u8; 2 * BLOCK],
    max_frame_size: usize,
) -> Result<usize, FrameError> {
    let (ct, header_mac) = header.split_at_mut(BLOCK);
    if !mac_eq(&mac.header(aes, ct), header_mac) {
        return Err(FrameError::HeaderMac);
    }
    aes.ctr(ct);
    let size = (usize::from(ct[0]) << 16) | (usize::from(ct[1]) << 8) | usize::from(ct[2]);
    if size > max_frame_size {
        return Err(FrameError::FrameTooLarge {
            size,
            limit: max_frame_size,
        });
    }
    if size == 0 {
        return Err(FrameError::InvalidMessageId);
    }
    Ok(size)
}

/// Checks the frame MAC of `body` (the padded ciphertext and its MAC) and decrypts it into
/// `plain`, cut to `frame_size`.
fn open_body(
    mac: &mut MacState,
    aes: &mut dyn Ciphers,
    body: &[u8],
    frame_size: usize,
    plain: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let (ct, frame_mac) = body.split_at(body.len() - BLOCK);
    if !mac_eq(&mac.frame(aes, ct), frame_mac) {
        return Err(FrameError::FrameMac);
    }
    plain.clear();
    plain.extend_from_slice(ct);
    aes.ctr(plain);
    plain.truncate(frame_size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctr::cipher::{KeyIvInit, StreamCipher};

    #[test]
    fn the_ctr_keystream_is_aes_256_ctr_with_a_big_endian_counter_from_zero_in_any_chunking() {
        // Chunks below, at and across the backends' parallel batches (8 blocks with AES-NI,
        // 64 with VAES-512), as frames of every size use them.
        let lens = [
            16,
            16,
            80,
            1024,
            1040,
            16,
            128,
            144,
            2064,
            65_552,
            16,
            1 << 20,
            48,
        ];
        let key = [0x5au8; 32];
        let cipher = Aes256Enc::new(&key.into());
        let mac = Aes256Enc::new(&[1u8; 32].into());
        let mut reference = ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into());
        let mut counter = 0u128;
        for (i, len) in lens.into_iter().enumerate() {
            let plain: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            let mut ours = plain.clone();
            with_ciphers(&cipher, &mac, &mut counter, |aes| aes.ctr(&mut ours));
            let mut theirs = plain;
            reference.apply_keystream(&mut theirs);
            assert!(ours == theirs, "chunk {i} of {len} bytes");
        }
        assert_eq!(counter, lens.iter().sum::<usize>() as u128 / 16);
    }

    #[test]
    fn the_mac_block_is_aes_256_of_the_mac_key() {
        let mac_key = [0x33u8; 32];
        let mut block = [0x42u8; BLOCK];
        let mut counter = 0;
        let (ctr, mac) = (
            Aes256Enc::new(&[0u8; 32].into()),
            Aes256Enc::new(&mac_key.into()),
        );
        with_ciphers(&ctr, &mac, &mut counter, |aes| aes.mac_block(&mut block));
        let mut expected = [0x42u8; BLOCK];
        aes::Aes256::new(&mac_key.into()).encrypt_block((&mut expected).into());
        assert_eq!(block, expected);
        assert_eq!(counter, 0, "no keystream used");
    }

    #[test]
    fn a_stored_literal_of_any_length_decodes_with_snappy_and_has_the_length_we_count() {
        // Each boundary where the varint or the literal tag grows a byte.
        for n in [
            0, 1, 59, 60, 61, 127, 128, 256, 257, 16_383, 16_384, 65_536, 65_537,
        ] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let mut block = Vec::new();
            write_snappy_literal(&payload, &mut block);
            assert_eq!(block.len(), snappy_literal_len(n), "length {n}");
            let decoded = snap::raw::Decoder::new().decompress_vec(&block).unwrap();
            assert!(decoded == payload, "length {n}");
        }
        let big = vec![0xabu8; MAX_UNCOMPRESSED_SIZE];
        let mut block = Vec::new();
        write_snappy_literal(&big, &mut block);
        assert_eq!(block.len() - big.len(), MAX_SNAPPY_OVERHEAD);
        assert!(snap::raw::Decoder::new().decompress_vec(&block).unwrap() == big);
    }
}
