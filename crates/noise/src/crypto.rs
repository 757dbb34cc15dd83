//! The Noise crypto primitives for `25519_ChaChaPoly_SHA256`: SHA-256, HMAC and HKDF (built
//! on `sha2`), the `CipherState` (ChaCha20-Poly1305 with Noise's nonce layout) and the
//! `SymmetricState` (`MixHash`, `MixKey`, `EncryptAndHash`, `DecryptAndHash`, `Split`).
//!
//! Sans-IO and allocation-free, except that handshake messages are appended to a `Vec`.

use sha2::{Digest, Sha256};

use crate::aead::AeadKey;
use crate::error::{NoiseError, Stage};

/// Length of a SHA-256 output, of the chaining key `ck`, the hash `h` and cipher keys.
pub(crate) const HASH_LEN: usize = 32;
/// Length of the ChaCha20-Poly1305 authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = crate::aead::TAG_LEN;
/// SHA-256's block length, used by HMAC.
const BLOCK_LEN: usize = 64;

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-SHA256 (RFC 2104) with a 32-byte key (the only key size Noise uses) over the
/// concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut ipad = [0x36u8; BLOCK_LEN];
    let mut opad = [0x5cu8; BLOCK_LEN];
    for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(key.iter()) {
        *i ^= k;
        *o ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in parts {
        inner.update(part);
    }
    let inner: [u8; HASH_LEN] = inner.finalize().into();
    sha256(&[&opad, &inner])
}

/// Noise's `HKDF(chaining_key, input_key_material, 2)`: two 32-byte outputs.
pub(crate) fn hkdf2(chaining_key: &[u8; HASH_LEN], ikm: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let temp_key = hmac_sha256(chaining_key, &[ikm]);
    let out1 = hmac_sha256(&temp_key, &[&[0x01]]);
    let out2 = hmac_sha256(&temp_key, &[&out1, &[0x02]]);
    (out1, out2)
}

/// A Noise `CipherState`: an optional key and a 64-bit nonce counter.
///
/// Without a key, encryption and decryption are the identity (handshake message 1).
/// `n = 2^64 - 1` is reserved by Noise: reaching it is [`NoiseError::NonceExhausted`], never
/// a wrap.
pub struct CipherState {
    cipher: Option<AeadKey>,
    n: u64,
}

impl std::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherState")
            .field("has_key", &self.cipher.is_some())
            .field("n", &self.n)
            .finish()
    }
}

impl CipherState {
    /// A cipher state without a key.
    pub(crate) fn empty() -> CipherState {
        CipherState { cipher: None, n: 0 }
    }

    /// A cipher state with key `k` and the nonce at 0.
    pub(crate) fn with_key(k: &[u8; HASH_LEN]) -> CipherState {
        CipherState {
            cipher: Some(AeadKey::new(k)),
            n: 0,
        }
    }

    /// Whether a key is set.
    pub(crate) fn has_key(&self) -> bool {
        self.cipher.is_some()
    }

    /// The next nonce to be used.
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// Moves the nonce counter (tests use it to reach the end of the nonce space).
    #[cfg(test)]
    pub(crate) fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }

    fn next_nonce(&mut self, stage: Stage) -> Result<u64, NoiseError> {
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted { stage });
        }
        let nonce = self.n;
        // Below u64::MAX (checked above): no overflow.
        self.n = self.n.saturating_add(1);
        Ok(nonce)
    }

    /// Encrypts `buffer` in place with associated data `ad` and returns the tag.
    ///
    /// Requires a key; callers check [`has_key`](Self::has_key) first.
    pub(crate) fn encrypt_in_place(
        &mut self,
        ad: &[u8],
        buffer: &mut [u8],
        stage: Stage,
    ) -> Result<[u8; TAG_LEN], NoiseError> {
        let len = buffer.len();
        let (cipher, n) = self.sealing(stage)?;
        cipher
            .seal_in_place(n, ad, buffer)
            .map_err(|_| too_large(stage, len))
    }

    /// Encrypts `input` into `output` (same length) with associated data `ad`, returning the
    /// tag: one pass, no intermediate copy (with the default backend).
    pub(crate) fn encrypt_into(
        &mut self,
        ad: &[u8],
        input: &[u8],
        output: &mut [u8],
        stage: Stage,
    ) -> Result<[u8; TAG_LEN], NoiseError> {
        if input.len() != output.len() {
            return Err(NoiseError::OutOfTurn("encrypt_into lengths differ"));
        }
        let (cipher, n) = self.sealing(stage)?;
        cipher
            .seal_into(n, ad, input, output)
            .map_err(|_| too_large(stage, input.len()))
    }

    /// The key and the nonce for the next encryption (the counter moves on).
    fn sealing(&mut self, stage: Stage) -> Result<(&AeadKey, u64), NoiseError> {
        let n = self.next_nonce(stage)?;
        let cipher = self
            .cipher
            .as_ref()
            .ok_or(NoiseError::OutOfTurn("encrypt without a key"))?;
        Ok((cipher, n))
    }

    /// Verifies `tag` and decrypts `buffer` in place with associated data `ad`.
    pub(crate) fn decrypt_in_place(
        &mut self,
        ad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
        stage: Stage,
    ) -> Result<(), NoiseError> {
        let n = self.opening_nonce(stage)?;
        self.key()?
            .open_in_place(n, ad, buffer, tag)
            .map_err(|_| NoiseError::Decrypt { stage })?;
        self.opened();
        Ok(())
    }

    /// Verifies `tag` and decrypts `input` into `output` (same length).
    pub(crate) fn decrypt_into(
        &mut self,
        ad: &[u8],
        input: &[u8],
        output: &mut [u8],
        tag: &[u8; TAG_LEN],
        stage: Stage,
    ) -> Result<(), NoiseError> {
        if input.len() != output.len() {
            return Err(NoiseError::OutOfTurn("decrypt_into lengths differ"));
        }
        let n = self.opening_nonce(stage)?;
        self.key()?
            .open_into(n, ad, input, output, tag)
            .map_err(|_| NoiseError::Decrypt { stage })?;
        self.opened();
        Ok(())
    }

    /// The nonce for the next decryption; the counter moves only once it succeeded.
    fn opening_nonce(&self, stage: Stage) -> Result<u64, NoiseError> {
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted { stage });
        }
        Ok(self.n)
    }

    fn key(&self) -> Result<&AeadKey, NoiseError> {
        self.cipher
            .as_ref()
            .ok_or(NoiseError::OutOfTurn("decrypt without a key"))
    }

    fn opened(&mut self) {
        // Below u64::MAX (checked by `opening_nonce`): no overflow.
        self.n = self.n.saturating_add(1);
    }
}

/// Sealing fails only for messages beyond ChaCha20's 256 GiB limit; ours are at most 64 KiB.
fn too_large(stage: Stage, len: usize) -> NoiseError {
    NoiseError::MessageTooLarge {
        stage,
        len,
        max: usize::from(u16::MAX),
    }
}

/// A Noise `SymmetricState`: the chaining key, the handshake hash and a cipher state.
#[derive(Debug)]
pub(crate) struct SymmetricState {
    ck: [u8; HASH_LEN],
    h: [u8; HASH_LEN],
    cipher: CipherState,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)` for a name of exactly 32 bytes (ours is): `h`
    /// is the name itself, `ck = h`.
    pub(crate) fn new(protocol_name: &[u8; HASH_LEN]) -> SymmetricState {
        SymmetricState {
            ck: *protocol_name,
            h: *protocol_name,
            cipher: CipherState::empty(),
        }
    }

    /// The handshake hash `h`.
    pub(crate) fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.h
    }

    /// `MixHash(data)`: `h = SHA-256(h || data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
    }

    /// `MixKey(ikm)`: new chaining key and cipher key from HKDF; the nonce restarts at 0.
    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher = CipherState::with_key(&k);
    }

    /// `EncryptAndHash(plaintext)`, appending the result to `out`.
    pub(crate) fn encrypt_and_hash(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
        stage: Stage,
    ) -> Result<(), NoiseError> {
        let start = out.len();
        out.extend_from_slice(plaintext);
        if self.cipher.has_key() {
            let h = self.h;
            let body = out.get_mut(start..).unwrap_or_default();
            let tag = self.cipher.encrypt_in_place(&h, body, stage)?;
            out.extend_from_slice(&tag);
        }
        let ciphertext = out.get(start..).unwrap_or_default();
        self.h = sha256(&[&self.h, ciphertext]);
        Ok(())
    }

    /// `DecryptAndHash(ciphertext)`, appending the plaintext to `out`. With a key, the
    /// ciphertext must hold at least the 16-byte tag.
    pub(crate) fn decrypt_and_hash(
        &mut self,
        ciphertext: &[u8],
        out: &mut Vec<u8>,
        stage: Stage,
    ) -> Result<(), NoiseError> {
        if !self.cipher.has_key() {
            out.extend_from_slice(ciphertext);
            self.mix_hash(ciphertext);
            return Ok(());
        }
        let body_len =
            ciphertext
                .len()
                .checked_sub(TAG_LEN)
                .ok_or(NoiseError::MessageTooShort {
                    stage,
                    len: ciphertext.len(),
                    min: TAG_LEN,
                })?;
        let (body, tag) = ciphertext.split_at(body_len);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let start = out.len();
        out.resize(start.saturating_add(body_len), 0);
        let h = self.h;
        let dst = out.get_mut(start..).unwrap_or_default();
        self.cipher.decrypt_into(&h, body, dst, &tag_bytes, stage)?;
        self.mix_hash(ciphertext);
        Ok(())
    }

    /// `Split()`: the initiator-to-responder and responder-to-initiator cipher states.
    pub(crate) fn split(&self) -> (CipherState, CipherState) {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        (CipherState::with_key(&k1), CipherState::with_key(&k2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe" (4 bytes, zero-padded to the block like any key
        // shorter than a block, so a 32-byte zero-padded key gives the same MAC).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, &[b"what do ya want for nothing?"]);
        assert_eq!(
            mac.to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        // Input given in parts is the same MAC as the joined input.
        assert_eq!(
            hmac_sha256(&key, &[b"what do ya ", b"want for nothing?"]),
            mac
        );
    }

    #[test]
    fn cipher_state_refuses_the_reserved_nonce() {
        let mut c = CipherState::with_key(&[7u8; 32]);
        c.set_nonce(u64::MAX - 1);
        let mut buf = [1u8; 8];
        assert!(c.encrypt_in_place(&[], &mut buf, Stage::Transport).is_ok());
        assert_eq!(c.nonce(), u64::MAX);
        assert!(matches!(
            c.encrypt_in_place(&[], &mut buf, Stage::Transport),
            Err(NoiseError::NonceExhausted { .. })
        ));
        let mut d = CipherState::with_key(&[7u8; 32]);
        d.set_nonce(u64::MAX);
        assert!(matches!(
            d.decrypt_in_place(&[], &mut buf, &[0; 16], Stage::Transport),
            Err(NoiseError::NonceExhausted { .. })
        ));
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_and_tampering_fails() {
        let mut tx = CipherState::with_key(&[3u8; 32]);
        let mut rx = CipherState::with_key(&[3u8; 32]);
        let mut buf = *b"hello noise";
        let tag = tx
            .encrypt_in_place(b"ad", &mut buf, Stage::Transport)
            .unwrap();
        let mut bad = buf;
        bad[0] ^= 1;
        let mut rx2 = CipherState::with_key(&[3u8; 32]);
        assert!(matches!(
            rx2.decrypt_in_place(b"ad", &mut bad, &tag, Stage::Transport),
            Err(NoiseError::Decrypt { .. })
        ));
        rx.decrypt_in_place(b"ad", &mut buf, &tag, Stage::Transport)
            .unwrap();
        assert_eq!(&buf, b"hello noise");
        assert_eq!(rx.nonce(), 1);
    }
}
