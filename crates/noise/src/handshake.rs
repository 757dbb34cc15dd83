//! The libp2p Noise handshake as a sans-IO state machine: the XX pattern with an empty
//! prologue, each side's identity proven by the handshake payload, and the `stream_muxers`
//! extension.
//!
//! The caller moves messages: [`Handshake::write_message`] gives the next frame to send
//! (2-byte big-endian length included), [`Handshake::read_message`] takes the body of a
//! received frame (the caller has read the length and checked it against
//! [`HandshakeConfig::max_message_size`]). [`Handshake::next_step`] says which one is due.

use std::sync::Arc;

use lp2p_core::{Keypair, PeerId, ProtocolId, PublicKey, Role};

use crate::codec::{FrameDecoder, FrameEncoder};
use crate::config::{DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE, DEFAULT_MAX_STREAM_MUXERS, MAX_FRAME_LEN};
use crate::crypto::HASH_LEN;
use crate::error::{NoiseError, Stage};
use crate::payload::{self, RemotePayload};
use crate::remembered::RemoteStatics;
use crate::statics::LocalStatic;
use crate::xx::{DhKeypair, XxHandshake};

/// What the handshake needs besides the keys.
#[derive(Debug, Clone)]
pub struct HandshakeConfig {
    /// The muxers to offer in the `stream_muxers` extension, in preference order; empty
    /// sends no extension.
    pub muxers: Vec<ProtocolId>,
    /// The largest handshake message accepted or sent (body, without the length prefix).
    pub max_message_size: usize,
    /// The longest `stream_muxers` list taken from a remote; a longer one is ignored.
    pub max_stream_muxers: usize,
    /// When dialing, the peer we expect: any other identity fails the handshake after
    /// message 2, before we reveal ours.
    pub expected_peer: Option<PeerId>,
    /// Remote signed static keys verified before: a remote that presents one again skips
    /// the signature check (see [`RemoteStatics`]). `None` checks every time.
    pub remote_statics: Option<Arc<RemoteStatics>>,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            muxers: Vec::new(),
            max_message_size: DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE,
            max_stream_muxers: DEFAULT_MAX_STREAM_MUXERS,
            expected_peer: None,
            remote_statics: None,
        }
    }
}

/// What the caller must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Call [`Handshake::write_message`] and send the frame.
    Send,
    /// Read one frame and pass its body to [`Handshake::read_message`].
    Receive,
    /// The handshake is complete: call [`Handshake::finish`].
    Done,
}

/// The libp2p Noise handshake of one side.
pub struct Handshake {
    xx: XxHandshake,
    identity: Keypair,
    config: HandshakeConfig,
    remote: Option<RemotePayload>,
    scratch: Vec<u8>,
    /// The identity key's signature over our static key, when made before the handshake.
    local_signature: Option<Vec<u8>>,
    /// A received message was refused: the handshake cannot go on (no message 2 is ever
    /// written for a refused message 1, for instance).
    failed: bool,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("xx", &self.xx)
            .field("local_peer", &self.identity.public().to_peer_id())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The result of a completed handshake.
#[derive(Debug)]
pub struct HandshakeOutcome {
    /// The remote's identity key (its signature over the Noise static key verified).
    pub remote_key: PublicKey,
    /// The muxer agreed inside the handshake, when both sides listed muxers that overlap.
    pub early_muxer: Option<ProtocolId>,
    /// The handshake hash `h`, identical on both sides.
    pub handshake_hash: [u8; HASH_LEN],
    /// Encrypts what we send.
    pub encoder: FrameEncoder,
    /// Decrypts what we receive.
    pub decoder: FrameDecoder,
}

impl Handshake {
    /// A handshake with fresh random static and ephemeral X25519 keys.
    pub fn new(role: Role, identity: Keypair, config: HandshakeConfig) -> Handshake {
        Handshake::build(
            role,
            identity,
            config,
            DhKeypair::generate(),
            DhKeypair::generate(),
        )
    }

    /// A handshake with `local`'s static key and signature (made once per identity) and a
    /// fresh ephemeral key. `local` must belong to `identity`.
    pub fn with_local_static(
        role: Role,
        identity: Keypair,
        config: HandshakeConfig,
        local: &LocalStatic,
    ) -> Handshake {
        Handshake::with_local_static_and_ephemeral(
            role,
            identity,
            config,
            local,
            DhKeypair::generate(),
        )
    }

    /// [`Handshake::with_local_static`] with the ephemeral key pair given (the upgrader's
    /// comes from the keys made ahead, `crate::ephemeral`). `ephemeral` must be fresh.
    pub(crate) fn with_local_static_and_ephemeral(
        role: Role,
        identity: Keypair,
        config: HandshakeConfig,
        local: &LocalStatic,
        ephemeral: DhKeypair,
    ) -> Handshake {
        debug_assert_eq!(local.peer_id(), identity.public().to_peer_id());
        let mut handshake =
            Handshake::build(role, identity, config, local.keypair.clone(), ephemeral);
        handshake.local_signature = Some(local.signature.clone());
        handshake
    }

    /// A handshake with the given X25519 secrets, for reproducing test vectors. Never reuse
    /// an ephemeral secret outside tests: it breaks the handshake's secrecy.
    pub fn with_keys(
        role: Role,
        identity: Keypair,
        config: HandshakeConfig,
        static_secret: [u8; 32],
        ephemeral_secret: [u8; 32],
    ) -> Handshake {
        Handshake::build(
            role,
            identity,
            config,
            DhKeypair::from_secret(static_secret),
            DhKeypair::from_secret(ephemeral_secret),
        )
    }

    fn build(
        role: Role,
        identity: Keypair,
        mut config: HandshakeConfig,
        s: DhKeypair,
        e: DhKeypair,
    ) -> Handshake {
        config.max_message_size = config.max_message_size.min(MAX_FRAME_LEN);
        Handshake {
            xx: XxHandshake::new(role, &[], s, e),
            identity,
            config,
            remote: None,
            scratch: Vec::new(),
            local_signature: None,
            failed: false,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.xx.role()
    }

    /// What to do next.
    pub fn next_step(&self) -> Step {
        if self.xx.is_complete() {
            Step::Done
        } else if self.xx.is_our_turn() {
            Step::Send
        } else {
            Step::Receive
        }
    }

    /// The message being written or awaited (for errors); `Transport` once complete.
    pub fn stage(&self) -> Stage {
        Stage::of_message(self.xx.next_message())
    }

    /// The largest message body accepted from the remote.
    pub fn max_message_size(&self) -> usize {
        self.config.max_message_size
    }

    /// The remote's identity, once its payload has been verified (after message 2 for the
    /// initiator, message 3 for the responder).
    pub fn remote_key(&self) -> Option<&PublicKey> {
        self.remote.as_ref().map(|r| &r.identity)
    }

    /// Appends our next handshake frame (2-byte big-endian length, then the message) to
    /// `out`.
    pub fn write_message(&mut self, out: &mut Vec<u8>) -> Result<(), NoiseError> {
        if self.failed {
            return Err(NoiseError::OutOfTurn("the handshake already failed"));
        }
        if self.next_step() != Step::Send {
            return Err(NoiseError::OutOfTurn("write_message when not our turn"));
        }
        let stage = self.stage();
        // Message 1 carries no payload (libp2p puts nothing in the unencrypted message).
        let payload = match (&self.local_signature, stage) {
            (_, Stage::Message1) => Vec::new(),
            (Some(signature), _) => {
                payload::encode_signed(&self.identity, signature.clone(), &self.config.muxers)
            }
            (None, _) => {
                payload::encode(&self.identity, self.xx.local_static(), &self.config.muxers)?
            }
        };
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        self.xx.write_message(&payload, out)?;
        let len = out.len().saturating_sub(start.saturating_add(2));
        let max = self.config.max_message_size;
        let prefix = u16::try_from(len)
            .ok()
            .filter(|_| len <= max)
            .ok_or(NoiseError::MessageTooLarge { stage, len, max })?;
        if let Some(slot) = out.get_mut(start..start.saturating_add(2)) {
            slot.copy_from_slice(&prefix.to_be_bytes());
        }
        tracing::trace!(%stage, len, "noise: wrote handshake message");
        Ok(())
    }

    /// Processes the body of the remote's next handshake frame.
    pub fn read_message(&mut self, message: &[u8]) -> Result<(), NoiseError> {
        if self.failed {
            return Err(NoiseError::OutOfTurn("the handshake already failed"));
        }
        if self.next_step() != Step::Receive {
            return Err(NoiseError::OutOfTurn("read_message when not expecting one"));
        }
        let result = self.take_message(message);
        self.failed = result.is_err();
        result
    }

    /// [`read_message`](Handshake::read_message) once it is our turn to read.
    fn take_message(&mut self, message: &[u8]) -> Result<(), NoiseError> {
        let stage = self.stage();
        let max = self.config.max_message_size;
        if message.len() > max {
            return Err(NoiseError::MessageTooLarge {
                stage,
                len: message.len(),
                max,
            });
        }
        self.scratch.clear();
        self.xx.read_message(message, &mut self.scratch)?;
        tracing::trace!(%stage, len = message.len(), "noise: read handshake message");
        if stage == Stage::Message1 {
            // `-> e` and nothing else: a payload here is unencrypted, unauthenticated bytes
            // that no libp2p implementation sends. Refused rather than answered.
            if !self.scratch.is_empty() {
                return Err(NoiseError::UnexpectedPayload {
                    stage,
                    len: self.scratch.len(),
                });
            }
            return Ok(());
        }
        let remote_static = *self
            .xx
            .remote_static()
            .ok_or(NoiseError::OutOfTurn("no remote static key"))?;
        let remote = payload::decode_and_verify(
            &self.scratch,
            &remote_static,
            self.config.max_stream_muxers,
            stage,
            self.config.remote_statics.as_deref(),
        )?;
        if let Some(expected) = self.config.expected_peer {
            let actual = remote.identity.to_peer_id();
            if actual != expected {
                return Err(NoiseError::PeerIdMismatch {
                    expected: Box::new(expected),
                    actual: Box::new(actual),
                });
            }
        }
        self.remote = Some(remote);
        Ok(())
    }

    /// Finishes a complete handshake: the remote's identity, the agreed muxer and the
    /// transport codec.
    pub fn finish(self) -> Result<HandshakeOutcome, NoiseError> {
        let remote = self.remote.ok_or(NoiseError::OutOfTurn(
            "finish before the handshake is complete",
        ))?;
        let (send, recv) = self.xx.split()?;
        let ours = (!self.config.muxers.is_empty()).then_some(self.config.muxers.as_slice());
        let theirs = remote.muxers.as_deref();
        let early_muxer = match self.xx.role() {
            Role::Initiator => payload::agree_muxer(ours, theirs),
            Role::Responder => payload::agree_muxer(theirs, ours),
        };
        Ok(HandshakeOutcome {
            remote_key: remote.identity,
            early_muxer,
            handshake_hash: self.xx.handshake_hash(),
            encoder: FrameEncoder::new(send),
            decoder: FrameDecoder::new(recv),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::payload::pb;

    fn run_pair(
        init_cfg: HandshakeConfig,
        resp_cfg: HandshakeConfig,
    ) -> Result<(HandshakeOutcome, HandshakeOutcome), NoiseError> {
        let init = Handshake::new(Role::Initiator, Keypair::generate_ed25519(), init_cfg);
        let resp = Handshake::new(Role::Responder, Keypair::generate_ed25519(), resp_cfg);
        drive(init, resp)
    }

    /// Moves the messages between two handshakes until both are done.
    fn drive(
        mut init: Handshake,
        mut resp: Handshake,
    ) -> Result<(HandshakeOutcome, HandshakeOutcome), NoiseError> {
        let mut wire = Vec::new();
        loop {
            let (writer, reader) = match (init.next_step(), resp.next_step()) {
                (Step::Done, Step::Done) => break,
                (Step::Send, _) => (&mut init, &mut resp),
                (_, Step::Send) => (&mut resp, &mut init),
                steps => panic!("both sides waiting: {steps:?}"),
            };
            wire.clear();
            writer.write_message(&mut wire)?;
            reader.read_message(&wire[2..])?;
        }
        Ok((init.finish()?, resp.finish()?))
    }

    fn muxers(list: &[&'static str]) -> HandshakeConfig {
        HandshakeConfig {
            muxers: list.iter().map(|m| ProtocolId::from(*m)).collect(),
            ..HandshakeConfig::default()
        }
    }

    #[test]
    fn a_signed_static_key_made_once_serves_several_handshakes() {
        use crate::remembered::RemoteStatics;
        use crate::statics::LocalStatic;
        let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (alice_static, bob_static) = (
            LocalStatic::generate(&alice).unwrap(),
            LocalStatic::generate(&bob).unwrap(),
        );
        let remembered = std::sync::Arc::new(RemoteStatics::default());
        let config = HandshakeConfig {
            remote_statics: Some(remembered.clone()),
            ..HandshakeConfig::default()
        };
        let mut hashes = Vec::new();
        for _ in 0..2 {
            let init = Handshake::with_local_static(
                Role::Initiator,
                alice.clone(),
                config.clone(),
                &alice_static,
            );
            let resp = Handshake::with_local_static(
                Role::Responder,
                bob.clone(),
                config.clone(),
                &bob_static,
            );
            let (i, r) = drive(init, resp).unwrap();
            assert_eq!(i.remote_key, bob.public());
            assert_eq!(r.remote_key, alice.public());
            assert_eq!(i.handshake_hash, r.handshake_hash);
            hashes.push(i.handshake_hash);
        }
        // Fresh ephemeral keys: a new session each time, though the static keys stay.
        assert_ne!(hashes[0], hashes[1]);
        // Both remote triples verified once, then came from memory.
        assert_eq!((remembered.len(), remembered.hits()), (2, 2));
    }

    #[test]
    fn both_sides_agree_on_keys_and_hash() {
        let (i, r) = run_pair(HandshakeConfig::default(), HandshakeConfig::default()).unwrap();
        assert_eq!(i.handshake_hash, r.handshake_hash);
        assert_eq!(i.early_muxer, None);
        assert_eq!(r.early_muxer, None);
    }

    #[test]
    fn early_muxer_is_the_initiators_first_common_choice() {
        let (i, r) = run_pair(
            muxers(&["/mplex/6.7.0", "/yamux/1.0.0"]),
            muxers(&["/yamux/1.0.0", "/mplex/6.7.0"]),
        )
        .unwrap();
        assert_eq!(i.early_muxer.as_ref().unwrap(), "/mplex/6.7.0");
        assert_eq!(r.early_muxer.as_ref().unwrap(), "/mplex/6.7.0");

        let (i, r) = run_pair(muxers(&["/a"]), muxers(&["/b"])).unwrap();
        assert_eq!((i.early_muxer, r.early_muxer), (None, None));
        let (i, r) = run_pair(muxers(&["/yamux/1.0.0"]), HandshakeConfig::default()).unwrap();
        assert_eq!((i.early_muxer, r.early_muxer), (None, None));
        let (i, r) = run_pair(HandshakeConfig::default(), muxers(&["/yamux/1.0.0"])).unwrap();
        assert_eq!((i.early_muxer, r.early_muxer), (None, None));
    }

    #[test]
    fn dialing_the_wrong_peer_fails_after_message_2() {
        let cfg = HandshakeConfig {
            expected_peer: Some(PeerId::random()),
            ..HandshakeConfig::default()
        };
        let err = run_pair(cfg, HandshakeConfig::default()).unwrap_err();
        assert!(matches!(err, NoiseError::PeerIdMismatch { .. }));
        assert!(matches!(
            lp2p_core::Error::from(err),
            lp2p_core::Error::PeerIdMismatch { .. }
        ));
    }

    /// A remote responder that answers message 1 with message 2 carrying `payload`
    /// (whatever bytes the test wants), then returns our initiator ready to read it.
    fn initiator_facing(payload: &[u8], tamper: impl FnOnce(&mut Vec<u8>)) -> (Handshake, Vec<u8>) {
        let mut init = Handshake::new(
            Role::Initiator,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        let mut remote = XxHandshake::new(
            Role::Responder,
            &[],
            DhKeypair::generate(),
            DhKeypair::generate(),
        );
        let mut wire = Vec::new();
        init.write_message(&mut wire).unwrap();
        remote.read_message(&wire[2..], &mut Vec::new()).unwrap();
        let mut msg2 = Vec::new();
        remote.write_message(payload, &mut msg2).unwrap();
        tamper(&mut msg2);
        (init, msg2)
    }

    fn signed_payload(identity: &Keypair, static_key: &[u8; 32]) -> Vec<u8> {
        crate::payload::encode(identity, static_key, &[]).unwrap()
    }

    #[test]
    fn message_2_payload_that_is_not_protobuf_is_rejected() {
        let (mut init, msg2) = initiator_facing(&[0xff, 0xff, 0xff, 0xff], |_| {});
        assert!(matches!(
            init.read_message(&msg2),
            Err(NoiseError::PayloadDecode {
                stage: Stage::Message2,
                ..
            })
        ));
    }

    #[test]
    fn message_2_without_identity_is_rejected() {
        let (mut init, msg2) = initiator_facing(&[], |_| {});
        assert!(matches!(
            init.read_message(&msg2),
            Err(NoiseError::MissingIdentityKey {
                stage: Stage::Message2
            })
        ));
    }

    #[test]
    fn message_2_signature_over_another_static_key_is_rejected() {
        // Signed over a static key that is not the one the handshake delivers.
        let payload = signed_payload(&Keypair::generate_ed25519(), &[5u8; 32]);
        let (mut init, msg2) = initiator_facing(&payload, |_| {});
        assert!(matches!(
            init.read_message(&msg2),
            Err(NoiseError::BadSignature {
                stage: Stage::Message2
            })
        ));
    }

    #[test]
    fn message_2_with_a_corrupted_tag_is_rejected() {
        for at in [40usize, 70, 98] {
            let (mut init, msg2) = initiator_facing(&[1, 2, 3], |m| m[at] ^= 1);
            assert!(
                matches!(
                    init.read_message(&msg2),
                    Err(NoiseError::Decrypt {
                        stage: Stage::Message2
                    })
                ),
                "corruption at {at}"
            );
        }
    }

    #[test]
    fn a_first_message_with_a_payload_is_refused() {
        // A hostile initiator: its ephemeral key followed by 100 bytes of "early data".
        let mut remote = XxHandshake::new(
            Role::Initiator,
            &[],
            DhKeypair::generate(),
            DhKeypair::generate(),
        );
        let mut msg1 = Vec::new();
        remote.write_message(&[7u8; 100], &mut msg1).unwrap();
        let mut resp = Handshake::new(
            Role::Responder,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        let err = resp.read_message(&msg1).unwrap_err();
        assert!(
            matches!(
                err,
                NoiseError::UnexpectedPayload {
                    stage: Stage::Message1,
                    len: 100
                }
            ),
            "{err}"
        );
        // Nothing to answer with: the responder never produced message 2.
        let mut wire = Vec::new();
        assert!(resp.write_message(&mut wire).is_err());
        assert!(wire.is_empty());
    }

    #[test]
    fn messages_of_the_wrong_size_are_rejected() {
        let mut resp = Handshake::new(
            Role::Responder,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        assert!(matches!(
            resp.read_message(&[1u8; 31]),
            Err(NoiseError::MessageTooShort {
                stage: Stage::Message1,
                len: 31,
                min: 32
            })
        ));

        let (mut init, msg2) = initiator_facing(&[], |_| {});
        assert!(matches!(
            init.read_message(&msg2[..MESSAGE2_MIN_LEN_FOR_TEST - 1]),
            Err(NoiseError::MessageTooShort {
                stage: Stage::Message2,
                ..
            })
        ));

        // Message 3 too short: a real initiator and responder up to message 3.
        let mut init = Handshake::new(
            Role::Initiator,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        let mut resp = Handshake::new(
            Role::Responder,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        let mut wire = Vec::new();
        init.write_message(&mut wire).unwrap();
        resp.read_message(&wire[2..]).unwrap();
        wire.clear();
        resp.write_message(&mut wire).unwrap();
        init.read_message(&wire[2..]).unwrap();
        wire.clear();
        init.write_message(&mut wire).unwrap();
        assert!(matches!(
            resp.read_message(&wire[2..2 + 63]),
            Err(NoiseError::MessageTooShort {
                stage: Stage::Message3,
                len: 63,
                min: 64
            })
        ));
    }

    const MESSAGE2_MIN_LEN_FOR_TEST: usize = crate::xx::MESSAGE2_MIN_LEN;

    #[test]
    fn messages_over_the_cap_are_rejected_both_ways() {
        let cfg = HandshakeConfig {
            max_message_size: 100,
            ..HandshakeConfig::default()
        };
        let mut resp = Handshake::new(Role::Responder, Keypair::generate_ed25519(), cfg.clone());
        assert!(matches!(
            resp.read_message(&[0u8; 101]),
            Err(NoiseError::MessageTooLarge {
                stage: Stage::Message1,
                len: 101,
                max: 100
            })
        ));
        // A refused message ends the handshake.
        assert!(matches!(
            resp.read_message(&[9u8; 32]),
            Err(NoiseError::OutOfTurn(_))
        ));
        // Our own message 2 (96 + 120 bytes with an Ed25519 payload) exceeds 100 too.
        let mut resp = Handshake::new(Role::Responder, Keypair::generate_ed25519(), cfg);
        resp.read_message(&[9u8; 32]).unwrap();
        assert!(matches!(
            resp.write_message(&mut Vec::new()),
            Err(NoiseError::MessageTooLarge {
                stage: Stage::Message2,
                ..
            })
        ));
    }

    #[test]
    fn out_of_turn_calls_are_errors() {
        let mut init = Handshake::new(
            Role::Initiator,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        assert_eq!(init.next_step(), Step::Send);
        assert!(matches!(
            init.read_message(&[0; 32]),
            Err(NoiseError::OutOfTurn(_))
        ));
        let resp = Handshake::new(
            Role::Responder,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        assert_eq!(resp.next_step(), Step::Receive);
        assert!(matches!(resp.finish(), Err(NoiseError::OutOfTurn(_))));
        let mut wire = Vec::new();
        init.write_message(&mut wire).unwrap();
        assert!(matches!(
            init.write_message(&mut wire),
            Err(NoiseError::OutOfTurn(_))
        ));
    }

    #[test]
    fn unknown_payload_fields_are_ignored() {
        let identity = Keypair::generate_ed25519();
        let mut remote_s = DhKeypair::generate();
        // Rebuild the responder so its static key is known to sign.
        let s_secret: [u8; 32] = rand::random();
        remote_s = {
            let _ = remote_s;
            DhKeypair::from_secret(s_secret)
        };
        let mut payload = pb::NoiseHandshakePayload {
            identity_key: Some(identity.public().encode_protobuf()),
            identity_sig: Some(
                identity
                    .sign(&[crate::payload::STATIC_KEY_DOMAIN, remote_s.public()].concat())
                    .unwrap(),
            ),
            extensions: None,
        }
        .encode_to_vec();
        payload.extend_from_slice(&[0x1a, 0x01, 0x00]); // field 3 (unused), 1 byte
        let mut init = Handshake::new(
            Role::Initiator,
            Keypair::generate_ed25519(),
            HandshakeConfig::default(),
        );
        let mut remote = XxHandshake::new(
            Role::Responder,
            &[],
            DhKeypair::from_secret(s_secret),
            DhKeypair::generate(),
        );
        let mut wire = Vec::new();
        init.write_message(&mut wire).unwrap();
        remote.read_message(&wire[2..], &mut Vec::new()).unwrap();
        let mut msg2 = Vec::new();
        remote.write_message(&payload, &mut msg2).unwrap();
        init.read_message(&msg2).unwrap();
        assert_eq!(init.remote_key(), Some(&identity.public()));
    }
}
