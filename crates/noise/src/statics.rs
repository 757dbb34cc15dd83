//! Noise static keys that outlive one handshake: ours, signed once per identity, and the
//! remotes' signed static keys already verified.
//!
//! The spec lets the X25519 static key be generated per connection or per process (it must not
//! be persisted); rust-libp2p keeps one per configuration. Keeping ours for the upgrader's
//! life saves, on every handshake, the key generation and the identity key's signature over
//! it. Forward secrecy does not depend on it: the session keys also mix the ephemeral `ee`
//! secret, fresh for each handshake.
//!
//! A remote that does the same sends the same (identity key, static key, signature) triple on
//! every connection. The signature check is a pure function of that triple, so a triple that
//! verified once verifies again; [`RemoteStatics`](crate::RemoteStatics) (in `remembered`)
//! remembers a bounded number of them.

use lp2p_core::{Keypair, PeerId};

use crate::NoiseError;
use crate::payload::signed_message;
use crate::xx::DhKeypair;

/// Our static key with the identity key's signature over it, shared by every handshake of
/// one identity.
#[derive(Clone)]
pub struct LocalStatic {
    pub(crate) keypair: DhKeypair,
    pub(crate) signature: Vec<u8>,
    peer: PeerId,
}

impl LocalStatic {
    /// A fresh static key for `identity`, signed by it.
    pub fn generate(identity: &Keypair) -> Result<LocalStatic, NoiseError> {
        let keypair = DhKeypair::generate();
        let signature = identity
            .sign(&signed_message(keypair.public()))
            .map_err(NoiseError::Signing)?;
        Ok(LocalStatic {
            keypair,
            signature,
            peer: identity.public().to_peer_id(),
        })
    }

    /// The identity the static key is signed by.
    pub fn peer_id(&self) -> PeerId {
        self.peer
    }
}

impl std::fmt::Debug for LocalStatic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStatic")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}
