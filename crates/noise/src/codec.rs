//! The transport codec, sans-IO: 2-byte big-endian length frames of ChaCha20-Poly1305
//! ciphertext, encrypted and decrypted in buffers the codec owns (no allocation per frame).
//!
//! [`FrameEncoder`] coalesces small writes into one frame until it is sealed (on flush, or
//! when it is full) and encrypts large writes straight from the caller's buffer into its
//! frame buffer. [`FrameDecoder`] takes raw bytes into its buffer and decrypts complete
//! frames in place, or straight into the caller's buffer when the plaintext fits there.

use crate::config::{MAX_FRAME_LEN, MAX_FRAME_PLAINTEXT};
use crate::crypto::{CipherState, TAG_LEN};
use crate::error::{NoiseError, Stage};
use lp2p_core::shrink::ShrinkRule;

/// Length of the frame length prefix.
pub const LEN_PREFIX: usize = 2;
/// A whole frame on the wire at its largest: prefix and 65535 bytes of ciphertext.
const MAX_WIRE_FRAME: usize = LEN_PREFIX + MAX_FRAME_LEN;
/// The decoder's buffer at its largest: two largest frames, so one read from the connection
/// can take a whole frame even while the tail of a previous one is still buffered (128 KiB).
pub const DECODE_BUFFER_LEN: usize = 2 * MAX_WIRE_FRAME;

/// The encoder's buffer to begin with, and what it returns to once the connection is quiet
/// again. What most connections send after the handshake (multistream-select, identify,
/// ping, Kademlia and gossip control messages, yamux window updates) fits in frames of a
/// KiB or two; the first large write grows the buffer to a whole frame (64 KiB). Starting
/// small keeps an idle connection's memory down and saves zeroing 64 KiB per connection
/// (about 5 % of a connection's set-up instructions, measured with callgrind on `lp2p-node
/// conn-bench`). 2 KiB rather than 4 (issue 18): with the decoder's 2 KiB, an idle
/// connection's listener memory went from 21.8 to 14.0 KiB (`lp2p-node hold`, 1,000
/// connections; the `whole_stack` bench's RSS row measures the same).
pub const INITIAL_ENCODE_BUFFER_LEN: usize = 2 * 1024;

/// The decoder's buffer to begin with, for the same reasons (it was 8 KiB). It grows
/// (doubling, up to [`DECODE_BUFFER_LEN`]) when a frame does not fit or when a read filled
/// it: the sign of a bulk transfer, where larger reads mean fewer system calls.
pub const INITIAL_DECODE_BUFFER_LEN: usize = 2 * 1024;

/// A partial frame of at most this many bytes is moved to the front of the decoder's buffer
/// to make room for its rest (a cheap copy that keeps the buffer small); a longer one stays
/// in place and the buffer grows behind it instead, if it can.
const MOVE_RATHER_THAN_GROW: usize = 4 * 1024;

/// Encrypts outgoing bytes into frames.
pub struct FrameEncoder {
    cipher: CipherState,
    /// `[len: 2][plaintext/ciphertext: ≤ 65519][tag: 16]`; starts at
    /// [`INITIAL_ENCODE_BUFFER_LEN`] and grows to what a frame needs.
    buf: Vec<u8>,
    max_plaintext: usize,
    /// Plaintext bytes staged at `buf[2..2 + staged]` (when no frame is sealed).
    staged: usize,
    /// Length on the wire of the sealed frame waiting to be sent (0: none).
    sealed: usize,
    /// How much of the sealed frame has been taken by [`advance`](Self::advance).
    sent: usize,
    /// When the grown buffer returns to [`INITIAL_ENCODE_BUFFER_LEN`]: after a run of small
    /// sealed frames ([`ShrinkRule`]); a quiet connection gives back up to 64 KiB.
    shrink: ShrinkRule,
}

impl std::fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameEncoder")
            .field("nonce", &self.cipher.nonce())
            .field("staged", &self.staged)
            .field("sealed", &self.sealed)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl FrameEncoder {
    /// An encoder with full-size frames (65519 bytes of plaintext).
    pub(crate) fn new(cipher: CipherState) -> FrameEncoder {
        FrameEncoder {
            cipher,
            buf: vec![0u8; INITIAL_ENCODE_BUFFER_LEN],
            max_plaintext: MAX_FRAME_PLAINTEXT,
            staged: 0,
            sealed: 0,
            sent: 0,
            shrink: ShrinkRule::new(INITIAL_ENCODE_BUFFER_LEN),
        }
    }

    /// An encoder keyed directly, for fuzzing and tests that need a transport without
    /// running a handshake. Never use it for a real session: keys must come from a finished
    /// handshake.
    #[doc(hidden)]
    pub fn insecure_with_key(key: [u8; 32]) -> FrameEncoder {
        FrameEncoder::new(CipherState::with_key(&key))
    }

    /// Caps the plaintext per frame (1 to 65519; out of range values are clamped).
    pub fn set_max_plaintext(&mut self, max: usize) {
        self.max_plaintext = max.clamp(1, MAX_FRAME_PLAINTEXT);
    }

    /// The nonce of the next frame.
    pub fn nonce(&self) -> u64 {
        self.cipher.nonce()
    }

    /// Plaintext bytes staged and not sealed yet.
    pub fn staged(&self) -> usize {
        self.staged
    }

    /// Takes bytes from `data` into the current frame and returns how many were taken: 0
    /// while a sealed frame waits to be sent. A frame that becomes full is sealed. When
    /// nothing is staged and `data` fills a whole frame, it is encrypted straight from
    /// `data` (no copy).
    pub fn stage(&mut self, data: &[u8]) -> Result<usize, NoiseError> {
        if self.sealed != 0 || data.is_empty() {
            return Ok(0);
        }
        let max = self.max_plaintext;
        if self.staged == 0 && data.len() >= max {
            self.reserve(max);
            let input = data.get(..max).unwrap_or_default();
            let out = self
                .buf
                .get_mut(LEN_PREFIX..LEN_PREFIX.saturating_add(max))
                .unwrap_or_default();
            let tag = self
                .cipher
                .encrypt_into(&[], input, out, Stage::Transport)?;
            self.finish_frame(max, &tag);
            return Ok(max);
        }
        let room = max.saturating_sub(self.staged);
        let n = room.min(data.len());
        self.reserve(self.staged.saturating_add(n));
        let at = LEN_PREFIX.saturating_add(self.staged);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(at..at.saturating_add(n)), data.get(..n))
        {
            dst.copy_from_slice(src);
        }
        self.staged = self.staged.saturating_add(n);
        if self.staged == max {
            self.seal()?;
        }
        Ok(n)
    }

    /// Seals the staged bytes into a frame (nothing to do when none are staged or a frame
    /// is already sealed).
    pub fn seal(&mut self) -> Result<(), NoiseError> {
        if self.sealed != 0 || self.staged == 0 {
            return Ok(());
        }
        let len = self.staged;
        let body = self
            .buf
            .get_mut(LEN_PREFIX..LEN_PREFIX.saturating_add(len))
            .unwrap_or_default();
        let tag = self.cipher.encrypt_in_place(&[], body, Stage::Transport)?;
        self.finish_frame(len, &tag);
        Ok(())
    }

    /// Seals a frame with no plaintext: just the 16-byte tag. It carries no data (readers
    /// skip it) and is never sent on our own; some peers use one as a keep-alive, and tests
    /// use it to check that readers skip it. Staged bytes are sealed first.
    pub fn seal_empty(&mut self) -> Result<(), NoiseError> {
        if self.sealed != 0 {
            return Err(NoiseError::OutOfTurn(
                "seal_empty while a frame waits to be sent",
            ));
        }
        if self.staged != 0 {
            return self.seal();
        }
        let tag = self
            .cipher
            .encrypt_in_place(&[], &mut [], Stage::Transport)?;
        self.finish_frame(0, &tag);
        Ok(())
    }

    /// Makes the buffer hold a frame of `plaintext_len` bytes (at least doubling, at most a
    /// largest frame), keeping what is staged.
    fn reserve(&mut self, plaintext_len: usize) {
        let needed = LEN_PREFIX
            .saturating_add(plaintext_len)
            .saturating_add(TAG_LEN);
        if self.buf.len() < needed {
            let grown = needed
                .max(self.buf.len().saturating_mul(2))
                .min(MAX_WIRE_FRAME);
            self.buf.resize(grown, 0);
        }
    }

    /// The buffer's size now (it grows with the frames written).
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    fn finish_frame(&mut self, plaintext_len: usize, tag: &[u8; TAG_LEN]) {
        let cipher_len = plaintext_len.saturating_add(TAG_LEN);
        let at = LEN_PREFIX.saturating_add(plaintext_len);
        if let Some(dst) = self.buf.get_mut(at..at.saturating_add(TAG_LEN)) {
            dst.copy_from_slice(tag);
        }
        // cipher_len ≤ 65519 + 16 = 65535, so it fits the prefix.
        let prefix = u16::try_from(cipher_len).unwrap_or(u16::MAX).to_be_bytes();
        if let Some(dst) = self.buf.get_mut(..LEN_PREFIX) {
            dst.copy_from_slice(&prefix);
        }
        self.staged = 0;
        self.sealed = LEN_PREFIX.saturating_add(cipher_len);
        self.sent = 0;
        self.shrink.record(self.sealed);
    }

    /// The sealed bytes still to be sent (empty when there is no sealed frame).
    pub fn pending_output(&self) -> &[u8] {
        self.buf.get(self.sent..self.sealed).unwrap_or_default()
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as sent.
    pub fn advance(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.sealed);
        if self.sent == self.sealed {
            self.sealed = 0;
            self.sent = 0;
            // Nothing is staged while a frame is sealed: the buffer holds nothing now.
            if self.shrink.shrink_now(self.buf.len()) {
                self.buf = vec![0u8; INITIAL_ENCODE_BUFFER_LEN];
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn cipher_mut(&mut self) -> &mut CipherState {
        &mut self.cipher
    }
}

/// Decrypts incoming frames.
pub struct FrameDecoder {
    cipher: CipherState,
    /// Starts at [`INITIAL_DECODE_BUFFER_LEN`], grows up to [`DECODE_BUFFER_LEN`].
    buf: Vec<u8>,
    /// The last read filled the buffer to its end: grow before the next one.
    read_filled: bool,
    /// Undecoded bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Decrypted plaintext not yet consumed: `buf[plain_start..plain_end]`.
    plain_start: usize,
    plain_end: usize,
    /// A frame failed to decrypt: the stream is dead (an AEAD stream cannot resync).
    failed: bool,
    /// When the grown buffer returns to [`INITIAL_DECODE_BUFFER_LEN`]: after a run of small
    /// reads ([`ShrinkRule`]); a quiet connection gives back up to 128 KiB.
    shrink: ShrinkRule,
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("nonce", &self.cipher.nonce())
            .field("buffered", &self.end.saturating_sub(self.start))
            .field(
                "plaintext",
                &self.plain_end.saturating_sub(self.plain_start),
            )
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Where the next complete frame sits in the buffer (all within `buf`, checked when found).
struct FrameAt {
    /// The ciphertext without its tag.
    body: std::ops::Range<usize>,
    /// The 16-byte tag.
    tag: [u8; TAG_LEN],
    /// Where the frame after it starts.
    next: usize,
}

impl FrameDecoder {
    /// A decoder with an empty buffer.
    pub(crate) fn new(cipher: CipherState) -> FrameDecoder {
        FrameDecoder {
            cipher,
            buf: vec![0u8; INITIAL_DECODE_BUFFER_LEN],
            read_filled: false,
            start: 0,
            end: 0,
            plain_start: 0,
            plain_end: 0,
            failed: false,
            shrink: ShrinkRule::new(INITIAL_DECODE_BUFFER_LEN),
        }
    }

    /// A decoder keyed directly, for fuzzing and tests that need a transport without
    /// running a handshake. Never use it for a real session: keys must come from a finished
    /// handshake.
    #[doc(hidden)]
    pub fn insecure_with_key(key: [u8; 32]) -> FrameDecoder {
        FrameDecoder::new(CipherState::with_key(&key))
    }

    /// The nonce of the next frame.
    pub fn nonce(&self) -> u64 {
        self.cipher.nonce()
    }

    /// Decrypted bytes ready to be read.
    pub fn plaintext(&self) -> &[u8] {
        self.buf
            .get(self.plain_start..self.plain_end)
            .unwrap_or_default()
    }

    /// Marks `n` bytes of [`plaintext`](Self::plaintext) as read.
    pub fn consume(&mut self, n: usize) {
        self.plain_start = self.plain_start.saturating_add(n).min(self.plain_end);
    }

    /// Whether raw bytes of an incomplete frame are buffered (EOF now would truncate it).
    pub fn is_mid_frame(&self) -> bool {
        self.end > self.start
    }

    /// Free space to read raw bytes into; report what was written with
    /// [`filled`](Self::filled). Call it only when [`decode`](Self::decode) has nothing
    /// more to decode: then it is never empty.
    ///
    /// The buffered tail of a partial frame is moved to the front only when the rest of
    /// that frame would not fit behind it, so large frames are not copied within the buffer
    /// (a read may then stop exactly at the end of a frame).
    pub fn read_space(&mut self) -> &mut [u8] {
        // Decrypted plaintext lives before `start`: the buffer is only reorganised once it
        // has all been read.
        let reorganise = self.plain_start == self.plain_end;
        if reorganise {
            self.plain_start = 0;
            self.plain_end = 0;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
                if self.shrink.shrink_now(self.buf.len()) {
                    self.buf = vec![0u8; INITIAL_DECODE_BUFFER_LEN];
                    self.read_filled = false;
                }
            }
        }
        let buffered = self.end.saturating_sub(self.start);
        // The whole frame being read must fit behind `start`; before its prefix is complete
        // its length is unknown, so assume a largest one when deciding whether to move it,
        // and only the prefix when deciding how much to grow.
        let prefix = self
            .buf
            .get(self.start..self.end)
            .and_then(|b| b.first_chunk::<LEN_PREFIX>())
            .map(|p| LEN_PREFIX.saturating_add(usize::from(u16::from_be_bytes(*p))));
        let frame_len = prefix.unwrap_or(MAX_WIRE_FRAME);
        let needed = frame_len.saturating_sub(buffered);
        if reorganise && buffered > 0 && self.buf.len().saturating_sub(self.end) < needed {
            // Few bytes are moved to the front; many (the head of a large frame) stay where
            // they are if growing the buffer makes room behind them.
            let fits_by_growing = self.start.saturating_add(frame_len) <= DECODE_BUFFER_LEN;
            if buffered <= MOVE_RATHER_THAN_GROW || !fits_by_growing {
                self.buf.copy_within(self.start..self.end, 0);
                self.end = buffered;
                self.start = 0;
            }
        }
        let known_need = prefix.unwrap_or(LEN_PREFIX).saturating_sub(buffered);
        let mut wanted = self.end.saturating_add(known_need.max(1));
        if self.read_filled {
            // Bulk transfer: larger reads, fewer system calls.
            wanted = wanted.max(self.buf.len().saturating_mul(2));
            self.read_filled = false;
        }
        if wanted > self.buf.len() {
            let grown = wanted
                .max(self.buf.len().saturating_mul(2))
                .min(DECODE_BUFFER_LEN);
            self.buf.resize(grown, 0);
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// The buffer's size now (it grows with the frames read).
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// Records that `n` raw bytes were written into [`read_space`](Self::read_space).
    pub fn filled(&mut self, n: usize) {
        self.end = self.end.saturating_add(n).min(self.buf.len());
        if n > 0 && self.end == self.buf.len() {
            self.read_filled = true;
        }
        if n > 0 {
            self.shrink.record(n);
        }
    }

    /// Copies raw bytes in (for callers that do not read straight into
    /// [`read_space`](Self::read_space)); returns how many fit.
    pub fn input(&mut self, bytes: &[u8]) -> usize {
        // The bytes are here already: make room for as many as the largest buffer takes.
        let _ = self.read_space();
        let wanted = self.end.saturating_add(bytes.len()).min(DECODE_BUFFER_LEN);
        if wanted > self.buf.len() {
            self.buf.resize(wanted, 0);
        }
        let space = self.read_space();
        let n = space.len().min(bytes.len());
        if let (Some(dst), Some(src)) = (space.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.filled(n);
        n
    }

    /// The next complete frame, if one is buffered; a length below the tag size is an error.
    fn next_frame(&self) -> Result<Option<FrameAt>, NoiseError> {
        let buffered = self.buf.get(self.start..self.end).unwrap_or_default();
        let Some((prefix, rest)) = buffered.split_first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let cipher_len = usize::from(u16::from_be_bytes(*prefix));
        let Some(plain_len) = cipher_len.checked_sub(TAG_LEN) else {
            return Err(NoiseError::FrameTooShort { len: cipher_len });
        };
        let Some((body, tag)) = rest
            .get(..cipher_len)
            .and_then(|frame| frame.split_at_checked(plain_len))
        else {
            return Ok(None);
        };
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag.get(..TAG_LEN).unwrap_or(&[0; TAG_LEN]));
        // `start + 2 + cipher_len <= end <= buf.len()`: none of these can overflow.
        let body_start = self.start.saturating_add(LEN_PREFIX);
        let body_end = body_start.saturating_add(body.len());
        Ok(Some(FrameAt {
            body: body_start..body_end,
            tag: tag_bytes,
            next: body_end.saturating_add(TAG_LEN),
        }))
    }

    fn check(&self) -> Result<(), NoiseError> {
        if self.failed {
            return Err(NoiseError::Decrypt {
                stage: Stage::Transport,
            });
        }
        Ok(())
    }

    /// When no plaintext is pending and a complete frame is buffered, decrypts it in place
    /// and makes its plaintext available. Returns whether a frame was decoded (its
    /// plaintext may be empty).
    pub fn decode(&mut self) -> Result<bool, NoiseError> {
        self.check()?;
        if self.plain_start != self.plain_end {
            return Ok(false);
        }
        let Some(frame) = self.next_frame().inspect_err(|_| self.failed = true)? else {
            return Ok(false);
        };
        let body = self.buf.get_mut(frame.body.clone()).unwrap_or_default();
        self.cipher
            .decrypt_in_place(&[], body, &frame.tag, Stage::Transport)
            .inspect_err(|_| self.failed = true)?;
        self.plain_start = frame.body.start;
        self.plain_end = frame.body.end;
        self.start = frame.next;
        Ok(true)
    }

    /// When no plaintext is pending and a complete frame is buffered whose plaintext fits
    /// in `out`, decrypts it straight into `out` and returns its length (possibly 0).
    /// `None` when there is no such frame (then [`decode`](Self::decode) may still decode
    /// a larger one in place).
    pub fn decode_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, NoiseError> {
        self.check()?;
        if self.plain_start != self.plain_end {
            return Ok(None);
        }
        let Some(frame) = self.next_frame().inspect_err(|_| self.failed = true)? else {
            return Ok(None);
        };
        let plain_len = frame.body.len();
        let Some(dst) = out.get_mut(..plain_len) else {
            return Ok(None);
        };
        let src = self.buf.get(frame.body.clone()).unwrap_or_default();
        self.cipher
            .decrypt_into(&[], src, dst, &frame.tag, Stage::Transport)
            .inspect_err(|_| self.failed = true)?;
        self.start = frame.next;
        Ok(Some(plain_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::shrink::SMALL_USES_BEFORE_SHRINK;

    fn pair() -> (FrameEncoder, FrameDecoder) {
        let key = [42u8; 32];
        (
            FrameEncoder::new(CipherState::with_key(&key)),
            FrameDecoder::new(CipherState::with_key(&key)),
        )
    }

    /// Moves everything the encoder has sealed into the decoder.
    fn pump(enc: &mut FrameEncoder, wire: &mut Vec<u8>) {
        let out = enc.pending_output().to_vec();
        enc.advance(out.len());
        wire.extend_from_slice(&out);
    }

    fn drain(dec: &mut FrameDecoder, wire: &mut Vec<u8>) -> Result<Vec<u8>, NoiseError> {
        let mut got = Vec::new();
        loop {
            while dec.decode()? {
                got.extend_from_slice(dec.plaintext());
                let n = dec.plaintext().len();
                dec.consume(n);
            }
            if wire.is_empty() {
                return Ok(got);
            }
            let n = dec.input(wire);
            wire.drain(..n);
        }
    }

    #[test]
    fn small_writes_coalesce_into_one_frame() {
        let (mut enc, mut dec) = pair();
        assert_eq!(enc.stage(b"hello ").unwrap(), 6);
        assert_eq!(enc.stage(b"world").unwrap(), 5);
        assert!(enc.pending_output().is_empty());
        enc.seal().unwrap();
        let mut wire = Vec::new();
        pump(&mut enc, &mut wire);
        assert_eq!(wire.len(), 2 + 11 + 16);
        assert_eq!(&wire[..2], &[0, 27]);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), b"hello world");
        assert_eq!(dec.nonce(), 1);
    }

    #[test]
    fn a_full_frame_seals_itself_and_blocks_staging_until_sent() {
        let (mut enc, mut dec) = pair();
        let data = vec![7u8; MAX_FRAME_PLAINTEXT + 10];
        assert_eq!(enc.stage(&data).unwrap(), MAX_FRAME_PLAINTEXT);
        assert_eq!(enc.pending_output().len(), 2 + 65535);
        assert_eq!(&enc.pending_output()[..2], &[0xff, 0xff]);
        assert_eq!(enc.stage(&data[MAX_FRAME_PLAINTEXT..]).unwrap(), 0);
        let mut wire = Vec::new();
        pump(&mut enc, &mut wire);
        assert_eq!(enc.stage(&data[MAX_FRAME_PLAINTEXT..]).unwrap(), 10);
        enc.seal().unwrap();
        pump(&mut enc, &mut wire);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), data);
    }

    #[test]
    fn staged_then_large_write_fills_the_frame_by_copy() {
        let (mut enc, mut dec) = pair();
        enc.stage(b"abc").unwrap();
        let big = vec![1u8; MAX_FRAME_PLAINTEXT];
        assert_eq!(enc.stage(&big).unwrap(), MAX_FRAME_PLAINTEXT - 3);
        let mut wire = Vec::new();
        pump(&mut enc, &mut wire);
        let mut expected = b"abc".to_vec();
        expected.extend_from_slice(&big[..MAX_FRAME_PLAINTEXT - 3]);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), expected);
    }

    #[test]
    fn decode_into_skips_the_copy_when_the_frame_fits() {
        let (mut enc, mut dec) = pair();
        enc.stage(b"direct").unwrap();
        enc.seal().unwrap();
        let mut wire = Vec::new();
        pump(&mut enc, &mut wire);
        dec.input(&wire);
        let mut small = [0u8; 3];
        assert_eq!(dec.decode_into(&mut small).unwrap(), None);
        let mut out = [0u8; 16];
        assert_eq!(dec.decode_into(&mut out).unwrap(), Some(6));
        assert_eq!(&out[..6], b"direct");
        assert!(!dec.is_mid_frame());
    }

    #[test]
    fn empty_frames_decode_to_nothing() {
        let (_, mut dec) = pair();
        let mut enc = FrameEncoder::new(CipherState::with_key(&[42u8; 32]));
        let tag = enc
            .cipher_mut()
            .encrypt_in_place(&[], &mut [], Stage::Transport)
            .unwrap();
        let mut frame = vec![0, 16];
        frame.extend_from_slice(&tag);
        dec.input(&frame);
        assert!(dec.decode().unwrap());
        assert!(dec.plaintext().is_empty());
    }

    #[test]
    fn tampered_frame_fails_and_stays_failed() {
        let (mut enc, mut dec) = pair();
        enc.stage(b"secret").unwrap();
        enc.seal().unwrap();
        let mut wire = Vec::new();
        pump(&mut enc, &mut wire);
        wire[5] ^= 0x80;
        dec.input(&wire);
        assert!(matches!(
            dec.decode(),
            Err(NoiseError::Decrypt {
                stage: Stage::Transport
            })
        ));
        assert!(dec.decode().is_err());
        assert!(dec.decode_into(&mut [0u8; 64]).is_err());
    }

    #[test]
    fn frames_shorter_than_a_tag_are_rejected() {
        for len in [0u8, 1, 15] {
            let (_, mut dec) = pair();
            let mut frame = vec![0, len];
            frame.extend(std::iter::repeat_n(0u8, usize::from(len)));
            dec.input(&frame);
            assert!(matches!(
                dec.decode(),
                Err(NoiseError::FrameTooShort { len: l }) if l == usize::from(len)
            ));
        }
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let (mut enc, mut dec) = pair();
        enc.stage(b"split across reads").unwrap();
        enc.seal().unwrap();
        let mut wire = Vec::new();
        pump(&mut enc, &mut wire);
        for chunk in wire.chunks(3) {
            assert!(!dec.decode().unwrap());
            dec.input(chunk);
        }
        assert!(dec.decode().unwrap());
        assert_eq!(dec.plaintext(), b"split across reads");
        // One byte of the next frame's prefix: mid-frame.
        let n = dec.plaintext().len();
        dec.consume(n);
        dec.input(&[0]);
        assert!(dec.is_mid_frame());
    }

    #[test]
    fn large_frames_are_not_moved_within_the_buffer() {
        let (mut enc, mut dec) = pair();
        let data = vec![5u8; 3 * MAX_FRAME_PLAINTEXT];
        let mut wire = Vec::new();
        let mut at = 0;
        while at < data.len() {
            at += enc.stage(&data[at..]).unwrap();
            pump(&mut enc, &mut wire);
        }
        // Frame 1 and all of frame 2 but its last 10 bytes (the buffer grows as they come).
        let first = DECODE_BUFFER_LEN - 10;
        let mut fed = 0;
        while fed < first {
            let n = dec.input(&wire[fed..first]);
            assert!(n > 0, "no room after {fed} bytes");
            fed += n;
        }
        assert!(dec.buffer_len() >= first);
        assert!(dec.decode().unwrap());
        dec.consume(MAX_FRAME_PLAINTEXT);
        assert!(!dec.decode().unwrap());
        // The rest of frame 2 fits behind it: no compaction, room for exactly that much.
        let (start, end) = (dec.start, dec.end);
        assert_eq!(dec.read_space().len(), 10);
        assert_eq!((dec.start, dec.end), (start, end));
        let mut rest = wire.split_off(first);
        assert_eq!(
            drain(&mut dec, &mut rest).unwrap(),
            &data[MAX_FRAME_PLAINTEXT..]
        );
    }

    /// Buffers start small: small messages never grow them; a large frame grows each side
    /// to what it needs (and the data still round-trips).
    #[test]
    fn buffers_start_small_and_grow_with_the_frames() {
        let (mut enc, mut dec) = pair();
        assert_eq!(enc.buffer_len(), INITIAL_ENCODE_BUFFER_LEN);
        assert_eq!(dec.buffer_len(), INITIAL_DECODE_BUFFER_LEN);
        let mut wire = Vec::new();
        let mut got = 0;
        for _ in 0..100 {
            enc.stage(b"a small control message").unwrap();
            enc.seal().unwrap();
            pump(&mut enc, &mut wire);
            got += drain(&mut dec, &mut wire).unwrap().len();
        }
        assert_eq!(got, 100 * 23);
        assert_eq!(enc.buffer_len(), INITIAL_ENCODE_BUFFER_LEN);
        assert_eq!(dec.buffer_len(), INITIAL_DECODE_BUFFER_LEN);

        // Staged small writes that add up past the buffer grow it, keeping what is staged.
        let chunk = [9u8; 1000];
        for _ in 0..10 {
            assert_eq!(enc.stage(&chunk).unwrap(), 1000);
        }
        assert!(enc.buffer_len() >= LEN_PREFIX + 10_000 + TAG_LEN);
        enc.seal().unwrap();
        pump(&mut enc, &mut wire);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), vec![9u8; 10_000]);

        // A whole frame: the encoder grows to a largest frame, the decoder takes it in reads
        // of any size.
        let big: Vec<u8> = (0..MAX_FRAME_PLAINTEXT)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        assert_eq!(enc.stage(&big).unwrap(), MAX_FRAME_PLAINTEXT);
        assert_eq!(enc.buffer_len(), MAX_WIRE_FRAME);
        pump(&mut enc, &mut wire);
        let mut got = Vec::new();
        for piece in wire.chunks(1000) {
            let mut at = 0;
            while at < piece.len() {
                at += dec.input(&piece[at..]);
                while dec.decode().unwrap() {
                    got.extend_from_slice(dec.plaintext());
                    let n = dec.plaintext().len();
                    dec.consume(n);
                }
            }
        }
        assert_eq!(got, big);
        assert!(dec.buffer_len() >= MAX_WIRE_FRAME);
        assert!(dec.buffer_len() <= DECODE_BUFFER_LEN);
    }

    /// After a burst, both sides return to their initial buffers once the connection has
    /// sent and read enough small frames; a burst in the middle of small ones starts the
    /// count over.
    #[test]
    fn grown_buffers_shrink_after_the_burst() {
        let (mut enc, mut dec) = pair();
        let mut wire = Vec::new();
        let big = vec![3u8; MAX_FRAME_PLAINTEXT];
        let small = |enc: &mut FrameEncoder, dec: &mut FrameDecoder, wire: &mut Vec<u8>| {
            enc.stage(b"ping").unwrap();
            enc.seal().unwrap();
            pump(enc, wire);
            assert_eq!(drain(dec, wire).unwrap(), b"ping");
        };
        assert_eq!(enc.stage(&big).unwrap(), MAX_FRAME_PLAINTEXT);
        pump(&mut enc, &mut wire);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), big);
        assert_eq!(enc.buffer_len(), MAX_WIRE_FRAME);
        assert!(dec.buffer_len() >= MAX_WIRE_FRAME);
        for _ in 0..SMALL_USES_BEFORE_SHRINK - 1 {
            small(&mut enc, &mut dec, &mut wire);
        }
        assert_eq!(enc.buffer_len(), MAX_WIRE_FRAME);
        // Another burst: the count starts over.
        assert_eq!(enc.stage(&big).unwrap(), MAX_FRAME_PLAINTEXT);
        pump(&mut enc, &mut wire);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), big);
        for _ in 0..SMALL_USES_BEFORE_SHRINK - 1 {
            small(&mut enc, &mut dec, &mut wire);
        }
        assert_eq!(enc.buffer_len(), MAX_WIRE_FRAME);
        assert!(dec.buffer_len() >= MAX_WIRE_FRAME);
        // Two more small frames: the encoder shrinks after the 64th is sent, the decoder when
        // it next looks for room with the 64th read behind it.
        small(&mut enc, &mut dec, &mut wire);
        small(&mut enc, &mut dec, &mut wire);
        assert_eq!(enc.buffer_len(), INITIAL_ENCODE_BUFFER_LEN);
        assert_eq!(dec.buffer_len(), INITIAL_DECODE_BUFFER_LEN);
        // And they still work, and grow again.
        assert_eq!(enc.stage(&big).unwrap(), MAX_FRAME_PLAINTEXT);
        pump(&mut enc, &mut wire);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), big);
    }

    #[test]
    fn encoder_stops_before_the_nonce_would_wrap() {
        let (mut enc, _) = pair();
        enc.cipher_mut().set_nonce(u64::MAX - 1);
        enc.stage(b"last").unwrap();
        enc.seal().unwrap();
        enc.advance(enc.pending_output().len());
        enc.stage(b"one too many").unwrap();
        assert!(matches!(
            enc.seal(),
            Err(NoiseError::NonceExhausted {
                stage: Stage::Transport
            })
        ));
    }

    #[test]
    fn smaller_frame_cap_splits_writes() {
        let (mut enc, mut dec) = pair();
        enc.set_max_plaintext(4);
        let mut wire = Vec::new();
        let data = b"0123456789";
        let mut at = 0;
        while at < data.len() {
            at += enc.stage(&data[at..]).unwrap();
            pump(&mut enc, &mut wire);
        }
        enc.seal().unwrap();
        pump(&mut enc, &mut wire);
        assert_eq!(wire.len(), 3 * 2 + 10 + 3 * 16);
        assert_eq!(drain(&mut dec, &mut wire).unwrap(), data);
    }
}
