//! The sans-IO handshake: our exchange out, the remote's exchange in, checked.

use lp2p_core::{PeerId, PublicKey, varint};
use prost::Message as _;

use crate::PlaintextError;
use crate::proto::Exchange;

/// The largest exchange message (after the length prefix) we accept.
///
/// An Ed25519 exchange is 78 bytes; an RSA-4096 one, the largest key in use, about 600 bytes
/// (a 550-byte DER key plus its 34-byte sha256 peer id and framing); RSA-8192 would be about
/// 1.1 KiB. 4 KiB takes all of them with room for unknown fields, and caps what a peer can
/// make us buffer before it has proven anything.
pub const MAX_EXCHANGE_LEN: usize = 4 * 1024;

/// Where a [`Handshake`] is in reading the remote's message.
#[derive(Debug)]
enum State {
    /// Reading the length prefix; `prefix[..len]` holds the bytes so far.
    Length {
        prefix: [u8; varint::MAX_LEN],
        len: usize,
    },
    /// Reading the body; `want` is its full length.
    Body { body: Vec<u8>, want: usize },
    /// The remote is verified.
    Done { key: PublicKey },
    /// An error ended the handshake.
    Failed,
}

/// The `/plaintext/2.0.0` handshake as a state machine: no socket, no clock.
///
/// Send what [`poll_transmit`](Handshake::poll_transmit) gives (our exchange, at once),
/// feed the remote's bytes to [`handle_input`](Handshake::handle_input), and read no more
/// than [`wanted`](Handshake::wanted) bytes at a time so nothing past the remote's message
/// is ever consumed: the bytes after it belong to the next protocol.
///
/// ```
/// use lp2p_core::Keypair;
/// use lp2p_plaintext::{Handshake, MAX_EXCHANGE_LEN};
///
/// let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
/// let mut a = Handshake::new(&alice.public(), Some(bob.public().to_peer_id()), MAX_EXCHANGE_LEN);
/// let mut b = Handshake::new(&bob.public(), None, MAX_EXCHANGE_LEN);
/// let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
/// a.poll_transmit(&mut a_out);
/// b.poll_transmit(&mut b_out);
/// assert_eq!(b.handle_input(&a_out)?, a_out.len());
/// assert_eq!(a.handle_input(&b_out)?, b_out.len());
/// assert_eq!(a.remote_key(), Some(&bob.public()));
/// assert_eq!(b.remote_key(), Some(&alice.public()));
/// # Ok::<(), lp2p_plaintext::PlaintextError>(())
/// ```
#[derive(Debug)]
pub struct Handshake {
    expected: Option<PeerId>,
    max_len: usize,
    transmit: Vec<u8>,
    state: State,
    /// Bytes of the remote's message consumed so far (for error reports).
    received: usize,
}

impl Handshake {
    /// A handshake that shows `local_key` and, when `expected` is set, requires the remote
    /// to be that peer. Remote exchanges longer than `max_len` bytes are refused.
    pub fn new(local_key: &PublicKey, expected: Option<PeerId>, max_len: usize) -> Handshake {
        let exchange = Exchange {
            id: Some(local_key.to_peer_id().to_bytes()),
            pubkey: Some(local_key.encode_protobuf()),
        };
        let mut transmit =
            Vec::with_capacity(exchange.encoded_len().saturating_add(varint::MAX_LEN));
        // Writing into a Vec cannot run out of room.
        let _ = exchange.encode_length_delimited(&mut transmit);
        Handshake {
            expected,
            max_len,
            transmit,
            state: State::Length {
                prefix: [0; varint::MAX_LEN],
                len: 0,
            },
            received: 0,
        }
    }

    /// Appends our exchange message to `out` (once); returns whether it did.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        out.append(&mut self.transmit);
        true
    }

    /// How many more bytes of the remote's message are needed: 1 while reading the length
    /// prefix, then the rest of the body; 0 when the handshake is over.
    pub fn wanted(&self) -> usize {
        match &self.state {
            State::Length { .. } => 1,
            State::Body { body, want } => want.saturating_sub(body.len()),
            State::Done { .. } | State::Failed => 0,
        }
    }

    /// Bytes of the remote's message received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// The remote's verified key, once its exchange has been checked.
    pub fn remote_key(&self) -> Option<&PublicKey> {
        match &self.state {
            State::Done { key } => Some(key),
            _ => None,
        }
    }

    /// Whether the handshake is over, verified or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done { .. } | State::Failed)
    }

    /// Takes bytes of the remote's message from the front of `input` and returns how many
    /// were consumed: never more than the message itself. After an error the handshake is
    /// finished and ignores further input.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, PlaintextError> {
        let mut used: usize = 0;
        while !self.is_finished() {
            let rest = input.get(used..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            match self.step(rest) {
                Ok(n) => {
                    used = used.saturating_add(n);
                    self.received = self.received.saturating_add(n);
                }
                Err(err) => {
                    self.state = State::Failed;
                    return Err(err);
                }
            }
        }
        Ok(used)
    }

    /// Consumes some of `input` (never empty); returns how much.
    fn step(&mut self, input: &[u8]) -> Result<usize, PlaintextError> {
        match &mut self.state {
            State::Length { prefix, len } => {
                let (Some(slot), Some(&byte)) = (prefix.get_mut(*len), input.first()) else {
                    return Err(PlaintextError::InvalidLength(
                        lp2p_core::Error::VarintOverflow,
                    ));
                };
                *slot = byte;
                *len = len.saturating_add(1);
                let so_far = prefix.get(..*len).unwrap_or_default();
                match varint::decode(so_far).map_err(PlaintextError::InvalidLength)? {
                    None => {}
                    Some((announced, _)) => {
                        let want = usize::try_from(announced)
                            .ok()
                            .filter(|&want| want <= self.max_len)
                            .ok_or(PlaintextError::ExchangeTooLarge {
                                len: announced,
                                max: self.max_len,
                            })?;
                        self.state = State::Body {
                            body: Vec::with_capacity(want),
                            want,
                        };
                        self.finish_if_complete()?;
                    }
                }
                Ok(1)
            }
            State::Body { body, want } => {
                let take = want.saturating_sub(body.len()).min(input.len());
                body.extend_from_slice(input.get(..take).unwrap_or_default());
                self.finish_if_complete()?;
                Ok(take)
            }
            State::Done { .. } | State::Failed => Ok(0),
        }
    }

    /// Verifies the body once all of it is in.
    fn finish_if_complete(&mut self) -> Result<(), PlaintextError> {
        let State::Body { body, want } = &self.state else {
            return Ok(());
        };
        if body.len() < *want {
            return Ok(());
        }
        let (peer, key) = decode_exchange(body)?;
        if let Some(expected) = self.expected
            && expected != peer
        {
            return Err(PlaintextError::UnexpectedPeer {
                expected: Box::new(expected),
                actual: Box::new(peer),
            });
        }
        self.state = State::Done { key };
        Ok(())
    }
}

/// Decodes an exchange message body and checks that its key hashes to its peer id.
pub fn decode_exchange(body: &[u8]) -> Result<(PeerId, PublicKey), PlaintextError> {
    let exchange = Exchange::decode(body)?;
    let id = exchange.id.ok_or(PlaintextError::MissingField("id"))?;
    let key = exchange
        .pubkey
        .ok_or(PlaintextError::MissingField("pubkey"))?;
    let key = PublicKey::try_decode_protobuf(&key).map_err(PlaintextError::InvalidPublicKey)?;
    let claimed = PeerId::from_bytes(&id).map_err(PlaintextError::InvalidPeerId)?;
    let derived = key.to_peer_id();
    if claimed != derived {
        return Err(PlaintextError::IdMismatch {
            claimed: Box::new(claimed),
            derived: Box::new(derived),
        });
    }
    Ok((derived, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&PlaintextError) -> bool;
    use lp2p_core::Keypair;
    use proptest::prelude::*;

    fn exchange_bytes(id: Option<Vec<u8>>, pubkey: Option<Vec<u8>>) -> Vec<u8> {
        Exchange { id, pubkey }.encode_length_delimited_to_vec()
    }

    fn valid_exchange(key: &Keypair) -> Vec<u8> {
        exchange_bytes(
            Some(key.public().to_peer_id().to_bytes()),
            Some(key.public().encode_protobuf()),
        )
    }

    fn handshake(expected: Option<PeerId>) -> Handshake {
        Handshake::new(
            &Keypair::generate_ed25519().public(),
            expected,
            MAX_EXCHANGE_LEN,
        )
    }

    #[test]
    fn our_exchange_is_the_spec_message() {
        let key = Keypair::generate_ed25519();
        let mut hs = Handshake::new(&key.public(), None, MAX_EXCHANGE_LEN);
        let mut out = Vec::new();
        assert!(hs.poll_transmit(&mut out));
        assert!(!hs.poll_transmit(&mut out));
        // 0x4e = 78 bytes: field 1 (0x0a, 38-byte peer id), field 2 (0x12, 36-byte key).
        assert_eq!(out.len(), 79);
        assert_eq!(&out[..3], &[0x4e, 0x0a, 0x26]);
        assert_eq!(&out[3..41], key.public().to_peer_id().to_bytes().as_slice());
        assert_eq!(&out[41..43], &[0x12, 0x24]);
        assert_eq!(&out[43..], key.public().encode_protobuf().as_slice());
    }

    #[test]
    fn accepts_a_valid_exchange_byte_by_byte_without_over_reading() {
        let remote = Keypair::generate_ed25519();
        let mut hs = handshake(Some(remote.public().to_peer_id()));
        let mut wire = valid_exchange(&remote);
        let len = wire.len();
        wire.extend_from_slice(b"app data");
        let mut fed = 0;
        while !hs.is_finished() {
            assert!(hs.wanted() > 0);
            let n = hs.handle_input(&wire[fed..=fed]).unwrap();
            assert_eq!(n, 1);
            fed += n;
        }
        assert_eq!(fed, len);
        assert_eq!(hs.received(), len);
        assert_eq!(hs.wanted(), 0);
        assert_eq!(hs.remote_key(), Some(&remote.public()));
        // Finished: nothing more is consumed.
        assert_eq!(hs.handle_input(b"app data").unwrap(), 0);
    }

    #[test]
    fn wanted_never_reaches_past_the_message() {
        let remote = Keypair::generate_ed25519();
        let mut hs = handshake(None);
        let wire = valid_exchange(&remote);
        assert_eq!(hs.wanted(), 1);
        hs.handle_input(&wire[..1]).unwrap();
        assert_eq!(hs.wanted(), wire.len() - 1);
        let both = [&wire[1..], b"next"].concat();
        assert_eq!(hs.handle_input(&both).unwrap(), wire.len() - 1);
        assert!(hs.remote_key().is_some());
    }

    #[test]
    fn key_and_id_mismatch() {
        let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let wire = exchange_bytes(
            Some(a.public().to_peer_id().to_bytes()),
            Some(b.public().encode_protobuf()),
        );
        let mut hs = handshake(None);
        match hs.handle_input(&wire) {
            Err(PlaintextError::IdMismatch { claimed, derived }) => {
                assert_eq!(*claimed, a.public().to_peer_id());
                assert_eq!(*derived, b.public().to_peer_id());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(hs.is_finished());
        assert_eq!(hs.remote_key(), None);
    }

    #[test]
    fn expected_peer_mismatch() {
        let (remote, other) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let mut hs = handshake(Some(other.public().to_peer_id()));
        match hs.handle_input(&valid_exchange(&remote)) {
            Err(PlaintextError::UnexpectedPeer { expected, actual }) => {
                assert_eq!(*expected, other.public().to_peer_id());
                assert_eq!(*actual, remote.public().to_peer_id());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_instead_of_protobuf() {
        let mut hs = handshake(None);
        assert!(matches!(
            hs.handle_input(b"\x05\xff\xff\xff\xff\xff"),
            Err(PlaintextError::Decode(_))
        ));
    }

    #[test]
    fn missing_and_invalid_fields() {
        let key = Keypair::generate_ed25519();
        let id = key.public().to_peer_id().to_bytes();
        let pubkey = key.public().encode_protobuf();
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (exchange_bytes(None, Some(pubkey.clone())), |e| {
                matches!(e, PlaintextError::MissingField("id"))
            }),
            (exchange_bytes(Some(id.clone()), None), |e| {
                matches!(e, PlaintextError::MissingField("pubkey"))
            }),
            (
                exchange_bytes(Some(id.clone()), Some(b"\x08\x01\x12\x01x".to_vec())),
                |e| matches!(e, PlaintextError::InvalidPublicKey(_)),
            ),
            (
                exchange_bytes(Some(b"\x00\x01".to_vec()), Some(pubkey.clone())),
                |e| matches!(e, PlaintextError::InvalidPeerId(_)),
            ),
            (exchange_bytes(None, None), |e| {
                matches!(e, PlaintextError::MissingField("id"))
            }),
            (vec![0], |e| matches!(e, PlaintextError::MissingField("id"))),
        ];
        for (wire, check) in cases {
            let mut hs = handshake(None);
            let err = hs.handle_input(&wire).unwrap_err();
            assert!(check(&err), "{wire:?}: {err:?}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let key = Keypair::generate_ed25519();
        let mut body = Exchange {
            id: Some(key.public().to_peer_id().to_bytes()),
            pubkey: Some(key.public().encode_protobuf()),
        }
        .encode_to_vec();
        body.extend_from_slice(&[0x18, 0x07]); // field 3, varint 7
        let mut wire = Vec::new();
        varint::encode_into(body.len() as u64, &mut wire);
        wire.extend_from_slice(&body);
        let mut hs = handshake(None);
        hs.handle_input(&wire).unwrap();
        assert_eq!(hs.remote_key(), Some(&key.public()));
    }

    #[test]
    fn oversized_exchange_is_refused_before_its_body() {
        let mut hs = handshake(None);
        // 4097 announced, nothing behind it.
        assert!(matches!(
            hs.handle_input(&[0x81, 0x20]),
            Err(PlaintextError::ExchangeTooLarge {
                len: 4097,
                max: 4096
            })
        ));
        let mut hs = handshake(None);
        assert!(matches!(
            hs.handle_input(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(PlaintextError::ExchangeTooLarge { .. })
        ));
        // The limit is a knob.
        let mut hs = Handshake::new(&Keypair::generate_ed25519().public(), None, 10);
        assert!(matches!(
            hs.handle_input(&valid_exchange(&Keypair::generate_ed25519())),
            Err(PlaintextError::ExchangeTooLarge { len: 78, max: 10 })
        ));
    }

    #[test]
    fn bad_length_prefixes() {
        let mut hs = handshake(None);
        assert!(matches!(
            hs.handle_input(&[0x80, 0x00]),
            Err(PlaintextError::InvalidLength(
                lp2p_core::Error::VarintNotMinimal
            ))
        ));
        let mut hs = handshake(None);
        assert!(matches!(
            hs.handle_input(&[0x80; 12]),
            Err(PlaintextError::InvalidLength(
                lp2p_core::Error::VarintOverflow
            ))
        ));
    }

    #[test]
    fn truncated_exchange_waits() {
        let wire = valid_exchange(&Keypair::generate_ed25519());
        let mut hs = handshake(None);
        assert_eq!(hs.handle_input(&wire[..40]).unwrap(), 40);
        assert!(!hs.is_finished());
        assert_eq!(hs.wanted(), wire.len() - 40);
        assert_eq!(hs.received(), 40);
    }

    #[test]
    fn rsa_4096_sized_exchange_fits() {
        // An RSA-4096 key is about 550 bytes of DER; with its 34-byte id the exchange is
        // about 600 bytes. The size check passes; decoding then fails only on the fake key.
        let body = Exchange {
            id: Some(vec![0x12; 34]),
            pubkey: Some(vec![0; 560]),
        }
        .encode_length_delimited_to_vec();
        let mut hs = handshake(None);
        let err = hs.handle_input(&body).unwrap_err();
        assert!(
            !matches!(err, PlaintextError::ExchangeTooLarge { .. }),
            "{err:?}"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_never_over_reads(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            chunk in 1usize..16,
        ) {
            let mut hs = handshake(None);
            let mut total = 0;
            for piece in bytes.chunks(chunk) {
                match hs.handle_input(piece) {
                    Ok(n) => {
                        prop_assert!(n <= piece.len());
                        total += n;
                    }
                    Err(_) => break,
                }
            }
            prop_assert!(total <= bytes.len());
            prop_assert!(hs.received() <= bytes.len());
        }
    }
}
