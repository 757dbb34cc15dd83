//! X25519 key shares made ahead of the handshakes that use them.
//!
//! A TLS 1.3 handshake starts with an ephemeral key pair on each side: the client makes one
//! for its ClientHello, the server one for its answer. Making it (a base point
//! multiplication) sits on the connection's critical path on both sides. [`X25519_AHEAD`]
//! takes a key pair that a background thread made earlier (lp2p-core's
//! [`MadeAhead`](lp2p_core::ahead::MadeAhead)), so the handshake only does the
//! Diffie-Hellman. Each key pair is still used once and dropped after its handshake, so
//! forward secrecy is unchanged; only its creation moves earlier.
//!
//! The thread runs at the lowest priority ([`KEY_SHARE_THREAD_NICE`]), so refilling the pool
//! only takes CPU time that handshakes leave unused.

use std::fmt;

use lp2p_core::ahead::MadeAhead;
use rustls::crypto::{ActiveKeyExchange, SupportedKxGroup};
use rustls::{Error, NamedGroup};

/// Key pairs kept ready. A burst of new connections larger than this makes the rest
/// inline, as without the pool. 8 covers the dials a node starts at once at bootstrap
/// (Kademlia's alpha plus identify and the like) and is 8 small heap objects of memory.
pub const KEY_SHARES_AHEAD: usize = 8;

/// The nice value of the thread that makes key pairs ahead (Linux, where it is per thread):
/// the lowest, as for every [`MadeAhead`] thread (decision D64).
pub const KEY_SHARE_THREAD_NICE: i32 = lp2p_core::ahead::MADE_AHEAD_THREAD_NICE;

/// ring's X25519 group with [`KEY_SHARES_AHEAD`] key pairs made ahead; see the module docs.
pub static X25519_AHEAD: &dyn SupportedKxGroup = &Ahead;

/// The key pairs made ahead, by the thread `lp2p-tls-keyshares`.
static KEY_SHARES: MadeAhead<Box<dyn ActiveKeyExchange>> =
    MadeAhead::new("lp2p-tls-keyshares", KEY_SHARES_AHEAD, make_key_share);

fn make_key_share() -> Option<Box<dyn ActiveKeyExchange>> {
    match rustls::crypto::ring::kx_group::X25519.start() {
        Ok(made) => Some(made),
        Err(err) => {
            // The system's random source failed; handshakes make their own (and fail the
            // same way, visibly).
            tracing::warn!(%err, "cannot make X25519 key shares ahead");
            None
        }
    }
}

struct Ahead;

impl SupportedKxGroup for Ahead {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        match KEY_SHARES.take() {
            Some(made) => Ok(made),
            None => rustls::crypto::ring::kx_group::X25519.start(),
        }
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

impl fmt::Debug for Ahead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519Ahead")
            .field("ready", &KEY_SHARES.ready())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shares_made_ahead_agree_and_are_never_reused() {
        let mut public_keys = std::collections::HashSet::new();
        for _ in 0..3 * KEY_SHARES_AHEAD {
            let ours = X25519_AHEAD.start().expect("key share");
            let theirs = rustls::crypto::ring::kx_group::X25519
                .start()
                .expect("key share");
            assert!(public_keys.insert(ours.pub_key().to_vec()), "a key reused");
            let their_public = theirs.pub_key().to_vec();
            let our_public = ours.pub_key().to_vec();
            let a = ours.complete(&their_public).expect("agree");
            let b = theirs.complete(&our_public).expect("agree");
            assert_eq!(a.secret_bytes(), b.secret_bytes());
        }
    }

    #[test]
    fn the_group_is_x25519() {
        assert_eq!(X25519_AHEAD.name(), NamedGroup::X25519);
        let share = X25519_AHEAD.start().expect("key share");
        assert_eq!(share.group(), NamedGroup::X25519);
        assert_eq!(share.pub_key().len(), 32);
    }
}
