//! Ephemeral X25519 key pairs made ahead of the handshakes that use them (decision D75).
//!
//! Each side of a Noise XX handshake makes a fresh ephemeral key pair: the initiator for
//! its first message, the responder for its answer. Making it (a base point multiplication)
//! sits on the connection's critical path. The [`Noise`](crate::Noise) upgrader takes a key
//! pair that a background thread at the lowest priority made earlier (lp2p-core's
//! [`MadeAhead`]). Each key pair is still used by one handshake only, so forward secrecy is
//! unchanged; only its making moves earlier.

use lp2p_core::ahead::MadeAhead;

use crate::xx::DhKeypair;

/// Ephemeral key pairs kept ready. A burst of new connections larger than this makes the
/// rest inline, as without the pool. 8, as for TLS's key shares: the dials a node starts at
/// once at bootstrap, and 8 × 64 bytes of memory.
pub const EPHEMERAL_KEYS_AHEAD: usize = 8;

/// The key pairs made ahead, by the thread `lp2p-noise-keys`.
static EPHEMERAL_KEYS: MadeAhead<DhKeypair> =
    MadeAhead::new("lp2p-noise-keys", EPHEMERAL_KEYS_AHEAD, make);

#[allow(clippy::unnecessary_wraps)] // the signature `MadeAhead::new` takes: making cannot fail here
fn make() -> Option<DhKeypair> {
    Some(DhKeypair::generate())
}

/// A fresh ephemeral key pair: one made ahead when ready, else made now.
pub(crate) fn fresh() -> DhKeypair {
    EPHEMERAL_KEYS.take().unwrap_or_else(DhKeypair::generate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_keys_are_never_handed_out_twice() {
        let mut public_keys = std::collections::HashSet::new();
        for _ in 0..3 * EPHEMERAL_KEYS_AHEAD {
            let key = fresh();
            assert!(public_keys.insert(*key.public()), "an ephemeral key reused");
        }
    }
}
