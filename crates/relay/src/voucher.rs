//! Reservation vouchers: the relay's signed statement "peer P holds a reservation on relay R
//! until T", a signed envelope (domain `libp2p-relay-rsvp`, payload type `03 02`) around a
//! `ReservationVoucher` protobuf.

use lp2p_core::{Keypair, PeerId};
use lp2p_peerstore::record::SignedEnvelope;
use prost::Message;

use crate::proto;

/// Signature domain of reservation vouchers.
pub const VOUCHER_DOMAIN: &str = "libp2p-relay-rsvp";
/// Payload type of reservation vouchers (multicodec `libp2p-relay-rsvp` = 0x0302, as two
/// big-endian bytes, like the peer record's `03 01`).
pub const VOUCHER_PAYLOAD_TYPE: &[u8] = &[0x03, 0x02];

/// A reservation voucher's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Voucher {
    /// The relay that granted the reservation.
    pub relay: PeerId,
    /// The peer holding it.
    pub peer: PeerId,
    /// When it expires, in Unix seconds.
    pub expiration: u64,
}

/// Why a voucher was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VoucherError {
    /// The envelope did not decode or its signature did not verify.
    #[error("voucher envelope: {0}")]
    Envelope(#[from] lp2p_peerstore::record::RecordError),
    /// The payload is not a valid voucher.
    #[error("malformed voucher payload: {0}")]
    Malformed(String),
    /// Signed by a key other than the relay's.
    #[error("voucher signed by {signer}, not by the relay {relay}")]
    WrongSigner {
        /// Who signed it.
        signer: Box<PeerId>,
        /// The relay we reserved on.
        relay: Box<PeerId>,
    },
    /// Names another relay, another peer, or another expiration than the reservation.
    #[error("voucher does not match the reservation: {0}")]
    Mismatch(&'static str),
}

impl Voucher {
    /// Signs the voucher with the relay's key (which must be `self.relay`'s).
    pub fn seal(&self, relay_key: &Keypair) -> Result<Vec<u8>, VoucherError> {
        let payload = proto::ReservationVoucher {
            relay: self.relay.to_bytes(),
            peer: self.peer.to_bytes(),
            expiration: self.expiration,
        }
        .encode_to_vec();
        Ok(
            SignedEnvelope::seal(relay_key, VOUCHER_DOMAIN, VOUCHER_PAYLOAD_TYPE, payload)?
                .encode(),
        )
    }

    /// Decodes and verifies a voucher received from `relay` for a reservation of `peer`
    /// expiring at `expiration`: the envelope's signature, the signer (the relay), and every
    /// field. A forged, replayed or altered voucher fails.
    pub fn verify(
        bytes: &[u8],
        relay: &PeerId,
        peer: &PeerId,
        expiration: u64,
    ) -> Result<Voucher, VoucherError> {
        let envelope = SignedEnvelope::decode(bytes)?;
        let payload = envelope.verify(VOUCHER_DOMAIN, VOUCHER_PAYLOAD_TYPE)?;
        let signer = envelope.public_key().to_peer_id();
        if signer != *relay {
            return Err(VoucherError::WrongSigner {
                signer: Box::new(signer),
                relay: Box::new(*relay),
            });
        }
        let pb = proto::ReservationVoucher::decode(payload)
            .map_err(|e| VoucherError::Malformed(e.to_string()))?;
        let voucher = Voucher {
            relay: PeerId::from_bytes(&pb.relay)
                .map_err(|_| VoucherError::Malformed("relay peer id".into()))?,
            peer: PeerId::from_bytes(&pb.peer)
                .map_err(|_| VoucherError::Malformed("peer id".into()))?,
            expiration: pb.expiration,
        };
        if voucher.relay != *relay {
            return Err(VoucherError::Mismatch("relay"));
        }
        if voucher.peer != *peer {
            return Err(VoucherError::Mismatch("peer"));
        }
        if voucher.expiration != expiration {
            return Err(VoucherError::Mismatch("expiration"));
        }
        Ok(voucher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_verify() {
        let relay_key = Keypair::generate_ed25519();
        let relay = relay_key.public().to_peer_id();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let v = Voucher {
            relay,
            peer,
            expiration: 1_800_000_000,
        };
        let bytes = v.seal(&relay_key).unwrap();
        assert_eq!(
            Voucher::verify(&bytes, &relay, &peer, 1_800_000_000).unwrap(),
            v
        );
    }

    #[test]
    fn voucher_is_a_signed_envelope_of_the_spec() {
        // circuit-v2.md: envelope domain `libp2p-relay-rsvp`, multicodec 0x0302 as the payload
        // type, payload a ReservationVoucher protobuf.
        let relay_key = Keypair::generate_ed25519();
        let relay = relay_key.public().to_peer_id();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let bytes = Voucher {
            relay,
            peer,
            expiration: 1_800_000_000,
        }
        .seal(&relay_key)
        .unwrap();
        let envelope = SignedEnvelope::decode(&bytes).unwrap();
        assert_eq!(envelope.payload_type(), &[0x03, 0x02]);
        assert_eq!(envelope.public_key(), &relay_key.public());
        let payload = envelope.verify("libp2p-relay-rsvp", &[0x03, 0x02]).unwrap();
        let pb = proto::ReservationVoucher::decode(payload).unwrap();
        assert_eq!(pb.relay, relay.to_bytes());
        assert_eq!(pb.peer, peer.to_bytes());
        assert_eq!(pb.expiration, 1_800_000_000);
        // The signature covers the domain: the same payload signed for another domain (a
        // peer record's) is not a voucher.
        let other_domain = SignedEnvelope::seal(
            &relay_key,
            "libp2p-routing-state",
            VOUCHER_PAYLOAD_TYPE,
            payload.to_vec(),
        )
        .unwrap()
        .encode();
        assert!(matches!(
            Voucher::verify(&other_domain, &relay, &peer, 1_800_000_000),
            Err(VoucherError::Envelope(_))
        ));
        // And the payload type.
        let other_type =
            SignedEnvelope::seal(&relay_key, VOUCHER_DOMAIN, &[0x03, 0x01], payload.to_vec())
                .unwrap()
                .encode();
        assert!(Voucher::verify(&other_type, &relay, &peer, 1_800_000_000).is_err());
        // Every truncation fails, none panics.
        for n in 0..bytes.len() {
            assert!(Voucher::verify(&bytes[..n], &relay, &peer, 1_800_000_000).is_err());
        }
    }

    #[test]
    fn forged_vouchers_are_refused() {
        let relay_key = Keypair::generate_ed25519();
        let relay = relay_key.public().to_peer_id();
        let forger = Keypair::generate_ed25519();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        // Signed by someone else but naming the relay.
        let forged = Voucher {
            relay,
            peer,
            expiration: 10,
        }
        .seal(&forger)
        .unwrap();
        assert!(matches!(
            Voucher::verify(&forged, &relay, &peer, 10),
            Err(VoucherError::WrongSigner { .. })
        ));
        // Genuine, but presented for another peer or another expiration.
        let genuine = Voucher {
            relay,
            peer,
            expiration: 10,
        }
        .seal(&relay_key)
        .unwrap();
        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            Voucher::verify(&genuine, &relay, &other, 10),
            Err(VoucherError::Mismatch("peer"))
        ));
        assert!(matches!(
            Voucher::verify(&genuine, &relay, &peer, 11),
            Err(VoucherError::Mismatch("expiration"))
        ));
        // Tampered bytes.
        let mut tampered = genuine.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(Voucher::verify(&tampered, &relay, &peer, 10).is_err());
        assert!(Voucher::verify(&[1, 2, 3], &relay, &peer, 10).is_err());
    }
}
