//! The Noise XX handshake pattern for `Noise_XX_25519_ChaChaPoly_SHA256`, sans-IO.
//!
//! ```text
//! XX:
//!   -> e
//!   <- e, ee, s, es
//!   -> s, se
//! ```
//!
//! This is the bare Noise framework (any prologue, opaque payloads); the libp2p handshake in
//! [`crate::handshake`] runs on top of it. Keys are injected so the published test vectors
//! can be reproduced.

use lp2p_core::Role;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::crypto::{CipherState, HASH_LEN, SymmetricState, TAG_LEN};
use crate::error::{NoiseError, Stage};

/// The Noise protocol name: exactly 32 bytes, so it is `h` as it is.
pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_XX_25519_ChaChaPoly_SHA256";
/// Length of an X25519 public key (`e` and `s` on the wire).
pub(crate) const DH_LEN: usize = 32;
/// The least a message 1 can be: `e`.
pub const MESSAGE1_MIN_LEN: usize = DH_LEN;
/// The least a message 2 can be: `e`, encrypted `s` and an encrypted (empty) payload.
pub const MESSAGE2_MIN_LEN: usize = DH_LEN + DH_LEN + TAG_LEN + TAG_LEN;
/// The least a message 3 can be: encrypted `s` and an encrypted (empty) payload.
pub const MESSAGE3_MIN_LEN: usize = DH_LEN + TAG_LEN + TAG_LEN;

/// An X25519 key pair.
#[derive(Clone)]
pub(crate) struct DhKeypair {
    secret: StaticSecret,
    public: PublicKey,
}

impl DhKeypair {
    /// The key pair of a secret scalar (clamped by X25519 itself).
    pub(crate) fn from_secret(secret: [u8; 32]) -> DhKeypair {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret);
        DhKeypair { secret, public }
    }

    /// A fresh random key pair.
    pub(crate) fn generate() -> DhKeypair {
        DhKeypair::from_secret(rand::random())
    }

    /// The public key.
    pub(crate) fn public(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// X25519 with `remote`; a non-contributory (all-zero) result means the remote sent a
    /// low-order point and is rejected.
    fn dh(&self, remote: &PublicKey, stage: Stage) -> Result<[u8; 32], NoiseError> {
        let shared = self.secret.diffie_hellman(remote);
        if !shared.was_contributory() {
            return Err(NoiseError::InvalidKey { stage });
        }
        Ok(shared.to_bytes())
    }
}

/// The XX handshake state of one side.
pub(crate) struct XxHandshake {
    role: Role,
    symmetric: SymmetricState,
    s: DhKeypair,
    e: DhKeypair,
    re: Option<PublicKey>,
    rs: Option<PublicKey>,
    /// Index of the next message (0, 1, 2); 3 once the handshake is complete.
    next: usize,
}

impl std::fmt::Debug for XxHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XxHandshake")
            .field("role", &self.role)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Reads a 32-byte public key at the front of `bytes`.
fn take_key(bytes: &[u8], stage: Stage, min: usize) -> Result<(PublicKey, &[u8]), NoiseError> {
    let (key, rest) = bytes
        .split_first_chunk::<DH_LEN>()
        .ok_or(NoiseError::MessageTooShort {
            stage,
            len: bytes.len(),
            min,
        })?;
    Ok((PublicKey::from(*key), rest))
}

impl XxHandshake {
    /// `Initialize` with the given static and ephemeral key pairs and prologue.
    pub(crate) fn new(role: Role, prologue: &[u8], s: DhKeypair, e: DhKeypair) -> XxHandshake {
        let mut symmetric = SymmetricState::new(PROTOCOL_NAME);
        symmetric.mix_hash(prologue);
        XxHandshake {
            role,
            symmetric,
            s,
            e,
            re: None,
            rs: None,
            next: 0,
        }
    }

    /// Our role.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// Index of the next message, 0 to 2, or 3 when complete.
    pub(crate) fn next_message(&self) -> usize {
        self.next
    }

    /// Whether the next message is ours to write.
    pub(crate) fn is_our_turn(&self) -> bool {
        match self.role {
            Role::Initiator => self.next == 0 || self.next == 2,
            Role::Responder => self.next == 1,
        }
    }

    /// Whether all three messages have been processed.
    pub(crate) fn is_complete(&self) -> bool {
        self.next >= 3
    }

    /// Our static public key.
    pub(crate) fn local_static(&self) -> &[u8; 32] {
        self.s.public()
    }

    /// The remote's static public key, once received.
    pub(crate) fn remote_static(&self) -> Option<&[u8; 32]> {
        self.rs.as_ref().map(PublicKey::as_bytes)
    }

    /// The handshake hash `h` (the channel binding once complete).
    pub(crate) fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.symmetric.handshake_hash()
    }

    /// Writes our next message with `payload`, appending it to `out`.
    pub(crate) fn write_message(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        if !self.is_our_turn() {
            return Err(NoiseError::OutOfTurn(
                "write_message when a message is expected",
            ));
        }
        let stage = Stage::of_message(self.next);
        match self.next {
            0 => {
                // -> e
                out.extend_from_slice(self.e.public());
                self.symmetric.mix_hash(self.e.public());
            }
            1 => {
                // <- e, ee, s, es
                let re = self
                    .re
                    .ok_or(NoiseError::OutOfTurn("no remote ephemeral"))?;
                out.extend_from_slice(self.e.public());
                self.symmetric.mix_hash(self.e.public());
                let ee = self.e.dh(&re, Stage::Message1)?;
                self.symmetric.mix_key(&ee);
                let s_pub = *self.s.public();
                self.symmetric.encrypt_and_hash(&s_pub, out, stage)?;
                let es = self.s.dh(&re, Stage::Message1)?;
                self.symmetric.mix_key(&es);
            }
            _ => {
                // -> s, se
                let re = self
                    .re
                    .ok_or(NoiseError::OutOfTurn("no remote ephemeral"))?;
                let s_pub = *self.s.public();
                self.symmetric.encrypt_and_hash(&s_pub, out, stage)?;
                let se = self.s.dh(&re, Stage::Message2)?;
                self.symmetric.mix_key(&se);
            }
        }
        self.symmetric.encrypt_and_hash(payload, out, stage)?;
        self.next = self.next.saturating_add(1);
        Ok(())
    }

    /// Reads the remote's next message, appending its decrypted payload to `payload`.
    pub(crate) fn read_message(
        &mut self,
        message: &[u8],
        payload: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        if self.is_our_turn() || self.is_complete() {
            return Err(NoiseError::OutOfTurn(
                "read_message when it is our turn to write",
            ));
        }
        let stage = Stage::of_message(self.next);
        let rest = match self.next {
            0 => {
                // -> e
                let (re, rest) = take_key(message, stage, MESSAGE1_MIN_LEN)?;
                self.symmetric.mix_hash(re.as_bytes());
                self.re = Some(re);
                rest
            }
            1 => {
                // <- e, ee, s, es
                if message.len() < MESSAGE2_MIN_LEN {
                    return Err(NoiseError::MessageTooShort {
                        stage,
                        len: message.len(),
                        min: MESSAGE2_MIN_LEN,
                    });
                }
                let (re, rest) = take_key(message, stage, MESSAGE2_MIN_LEN)?;
                self.symmetric.mix_hash(re.as_bytes());
                let ee = self.e.dh(&re, stage)?;
                self.re = Some(re);
                self.symmetric.mix_key(&ee);
                let rs = self.read_static(rest, stage)?;
                let es = self.e.dh(&rs, stage)?;
                self.rs = Some(rs);
                self.symmetric.mix_key(&es);
                rest.get(DH_LEN + TAG_LEN..).unwrap_or_default()
            }
            _ => {
                // -> s, se
                if message.len() < MESSAGE3_MIN_LEN {
                    return Err(NoiseError::MessageTooShort {
                        stage,
                        len: message.len(),
                        min: MESSAGE3_MIN_LEN,
                    });
                }
                let rs = self.read_static(message, stage)?;
                let se = self.e.dh(&rs, stage)?;
                self.rs = Some(rs);
                self.symmetric.mix_key(&se);
                message.get(DH_LEN + TAG_LEN..).unwrap_or_default()
            }
        };
        self.symmetric.decrypt_and_hash(rest, payload, stage)?;
        self.next = self.next.saturating_add(1);
        Ok(())
    }

    /// Decrypts the remote's encrypted static key at the front of `bytes`.
    fn read_static(&mut self, bytes: &[u8], stage: Stage) -> Result<PublicKey, NoiseError> {
        let encrypted = bytes
            .get(..DH_LEN + TAG_LEN)
            .ok_or(NoiseError::MessageTooShort {
                stage,
                len: bytes.len(),
                min: DH_LEN + TAG_LEN,
            })?;
        let mut key = Vec::with_capacity(DH_LEN);
        self.symmetric
            .decrypt_and_hash(encrypted, &mut key, stage)?;
        let key: [u8; DH_LEN] = key
            .as_slice()
            .try_into()
            .map_err(|_| NoiseError::InvalidKey { stage })?;
        Ok(PublicKey::from(key))
    }

    /// `Split()` once complete: our sending and our receiving cipher states.
    pub(crate) fn split(&self) -> Result<(CipherState, CipherState), NoiseError> {
        if !self.is_complete() {
            return Err(NoiseError::OutOfTurn(
                "split before the handshake is complete",
            ));
        }
        let (initiator_to_responder, responder_to_initiator) = self.symmetric.split();
        Ok(match self.role {
            Role::Initiator => (initiator_to_responder, responder_to_initiator),
            Role::Responder => (responder_to_initiator, initiator_to_responder),
        })
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

    fn key(v: &serde_json::Value, field: &str) -> [u8; 32] {
        hex(v[field].as_str().unwrap()).try_into().unwrap()
    }

    /// The cacophony vector for `Noise_XX_25519_ChaChaPoly_SHA256` (copied verbatim from the
    /// cacophony suite as shipped in snow's `tests/vectors/cacophony.txt`): three handshake
    /// messages then three transport messages, byte for byte, and the handshake hash.
    #[test]
    fn reproduces_the_cacophony_xx_vector() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/vectors/cacophony_xx_25519_chachapoly_sha256.json"
        ))
        .unwrap();
        assert_eq!(v["protocol_name"], "Noise_XX_25519_ChaChaPoly_SHA256");
        let mut init = XxHandshake::new(
            Role::Initiator,
            &hex(v["init_prologue"].as_str().unwrap()),
            DhKeypair::from_secret(key(&v, "init_static")),
            DhKeypair::from_secret(key(&v, "init_ephemeral")),
        );
        let mut resp = XxHandshake::new(
            Role::Responder,
            &hex(v["resp_prologue"].as_str().unwrap()),
            DhKeypair::from_secret(key(&v, "resp_static")),
            DhKeypair::from_secret(key(&v, "resp_ephemeral")),
        );
        let messages = v["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 6);
        let mut transport: Option<[(CipherState, CipherState); 2]> = None;
        for (i, m) in messages.iter().enumerate() {
            let payload = hex(m["payload"].as_str().unwrap());
            let expected = hex(m["ciphertext"].as_str().unwrap());
            // Messages alternate, initiator first.
            let initiator_sends = i % 2 == 0;
            if i < 3 {
                let (writer, reader) = if initiator_sends {
                    (&mut init, &mut resp)
                } else {
                    (&mut resp, &mut init)
                };
                let mut wire = Vec::new();
                writer.write_message(&payload, &mut wire).unwrap();
                assert_eq!(wire, expected, "handshake message {}", i + 1);
                let mut got = Vec::new();
                reader.read_message(&wire, &mut got).unwrap();
                assert_eq!(got, payload, "handshake payload {}", i + 1);
                if i == 2 {
                    assert!(init.is_complete() && resp.is_complete());
                    assert_eq!(init.handshake_hash(), resp.handshake_hash());
                    assert_eq!(
                        init.handshake_hash().to_vec(),
                        hex(v["handshake_hash"].as_str().unwrap())
                    );
                    transport = Some([init.split().unwrap(), resp.split().unwrap()]);
                }
            } else {
                let [(i_send, i_recv), (r_send, r_recv)] = transport.as_mut().unwrap();
                let (send, recv) = if initiator_sends {
                    (i_send, r_recv)
                } else {
                    (r_send, i_recv)
                };
                let mut buf = payload.clone();
                let tag = send
                    .encrypt_in_place(&[], &mut buf, Stage::Transport)
                    .unwrap();
                let mut wire = buf.clone();
                wire.extend_from_slice(&tag);
                assert_eq!(wire, expected, "transport message {}", i + 1);
                recv.decrypt_in_place(&[], &mut buf, &tag, Stage::Transport)
                    .unwrap();
                assert_eq!(buf, payload);
            }
        }
    }

    #[test]
    fn out_of_turn_calls_are_errors_not_panics() {
        let mut init = XxHandshake::new(
            Role::Initiator,
            &[],
            DhKeypair::generate(),
            DhKeypair::generate(),
        );
        assert!(matches!(
            init.read_message(&[0; 32], &mut Vec::new()),
            Err(NoiseError::OutOfTurn(_))
        ));
        assert!(init.split().is_err());
        let mut resp = XxHandshake::new(
            Role::Responder,
            &[],
            DhKeypair::generate(),
            DhKeypair::generate(),
        );
        assert!(matches!(
            resp.write_message(&[], &mut Vec::new()),
            Err(NoiseError::OutOfTurn(_))
        ));
    }

    #[test]
    fn low_order_ephemeral_is_an_invalid_key() {
        let mut resp = XxHandshake::new(
            Role::Responder,
            &[],
            DhKeypair::generate(),
            DhKeypair::generate(),
        );
        // The all-zero point has order 1: every DH with it is zero.
        resp.read_message(&[0u8; 32], &mut Vec::new()).unwrap();
        assert!(matches!(
            resp.write_message(&[], &mut Vec::new()),
            Err(NoiseError::InvalidKey {
                stage: Stage::Message1
            })
        ));
    }
}
