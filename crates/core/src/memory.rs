//! Memory accounting between muxers and a resource manager.
//!
//! A muxer buffers what its remote sends, up to the receive windows it granted. Each muxed
//! connection holds one [`MemoryAccount`] and grows it *before* it grants more window (or
//! buffers more bytes, for a muxer without flow control); a refused growth makes the muxer
//! refuse the stream or keep the window small, never panic. The account shrinks when a stream
//! ends, and dropping it (with the connection) returns whatever it still held, so nothing
//! leaks and nothing is returned twice.
//!
//! A [`MemoryBudget`] hands out the accounts: `lp2p-rcmgr` implements it with node-wide and
//! per-peer limits. Without one, connections get an [`UnlimitedMemory`] account and only the
//! muxer's own per-connection caps apply.
//!
//! Services above the muxer (pubsub's send queues, identify's and Kademlia's message buffers)
//! take a [`MemoryBudget::service_account`] per peer and use it the same way: grow before the
//! buffer or queue grows, shrink when it drains, drop it when done.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use crate::Role;

/// Why a memory reservation was refused: the scope whose limit it would cross, what that
/// scope held, what was asked for, and the limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryDenied {
    /// The scope that refused, e.g. `"system"`, `"peer 12D3KooW…"`, `"connection"`.
    pub scope: String,
    /// Bytes the scope held when asked.
    pub used: usize,
    /// Bytes asked for.
    pub requested: usize,
    /// The scope's limit in bytes.
    pub limit: usize,
}

impl fmt::Display for MemoryDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory limit of the {} scope reached: {} B more asked with {} B of {} B in use",
            self.scope, self.requested, self.used, self.limit
        )
    }
}

impl std::error::Error for MemoryDenied {}

/// One connection's memory account, held by its muxer for the connection's life.
///
/// Grow it before buffering more, shrink it after; dropping it returns everything it still
/// holds. Implementations are cheap to call (a muxer calls them per stream and per window
/// growth, not per frame).
pub trait MemoryAccount: Send + Sync + fmt::Debug + 'static {
    /// Reserves `bytes` more, or says which scope refused.
    fn try_grow(&mut self, bytes: usize) -> Result<(), MemoryDenied>;

    /// Returns `bytes` of what this account holds (at most what it holds).
    fn shrink(&mut self, bytes: usize);

    /// Bytes this account holds now.
    fn reserved(&self) -> usize;
}

/// An account with no limit: it counts what it holds and never refuses. What connections get
/// when no [`MemoryBudget`] is configured.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnlimitedMemory {
    reserved: usize,
}

impl UnlimitedMemory {
    /// A new, empty account, boxed for a muxer.
    pub fn boxed() -> Box<dyn MemoryAccount> {
        Box::new(UnlimitedMemory::default())
    }
}

impl MemoryAccount for UnlimitedMemory {
    fn try_grow(&mut self, bytes: usize) -> Result<(), MemoryDenied> {
        self.reserved = self.reserved.saturating_add(bytes);
        Ok(())
    }

    fn shrink(&mut self, bytes: usize) {
        self.reserved = self.reserved.saturating_sub(bytes);
    }

    fn reserved(&self) -> usize {
        self.reserved
    }
}

/// One memory limit shared by every account taken from it: the simplest [`MemoryBudget`],
/// for a node-wide cap without per-peer scopes (those are `lp2p-rcmgr`'s), or to give muxers
/// a known budget in tests. Clones share the limit and the usage.
#[derive(Clone, Debug)]
pub struct SharedLimit {
    limit: usize,
    used: Arc<AtomicUsize>,
}

impl SharedLimit {
    /// A limit of `limit` bytes, nothing used.
    pub fn new(limit: usize) -> SharedLimit {
        SharedLimit {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Bytes held by all its live accounts.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A new, empty account against this limit.
    pub fn account(&self) -> SharedLimitAccount {
        SharedLimitAccount {
            limit: self.clone(),
            held: 0,
        }
    }
}

impl MemoryBudget for SharedLimit {
    fn connection_account(&self, _: &PeerId, _: &Multiaddr, _: Role) -> Box<dyn MemoryAccount> {
        Box::new(self.account())
    }

    fn service_account(&self, _: &'static str, _: &PeerId) -> Box<dyn MemoryAccount> {
        Box::new(self.account())
    }
}

/// An account against a [`SharedLimit`]; dropping it returns what it holds.
#[derive(Debug)]
pub struct SharedLimitAccount {
    limit: SharedLimit,
    held: usize,
}

impl MemoryAccount for SharedLimitAccount {
    fn try_grow(&mut self, bytes: usize) -> Result<(), MemoryDenied> {
        let limit = self.limit.limit;
        self.limit
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            })
            .map_err(|used| MemoryDenied {
                scope: "shared limit".into(),
                used,
                requested: bytes,
                limit,
            })?;
        self.held = self.held.saturating_add(bytes);
        Ok(())
    }

    fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        self.held = self.held.saturating_sub(bytes);
        self.limit.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn reserved(&self) -> usize {
        self.held
    }
}

impl Drop for SharedLimitAccount {
    fn drop(&mut self) {
        self.shrink(self.held);
    }
}

/// Hands each new muxed connection its [`MemoryAccount`], once the remote peer is known.
/// Implemented by `lp2p-rcmgr`'s resource manager; set on
/// [`TransportContext::memory`](crate::TransportContext::memory).
pub trait MemoryBudget: Send + Sync + 'static {
    /// The account for a connection with `peer` at `remote`, in `role` (the dialer is the
    /// initiator). It starts empty.
    fn connection_account(
        &self,
        peer: &PeerId,
        remote: &Multiaddr,
        role: Role,
    ) -> Box<dyn MemoryAccount>;

    /// The account a service (`"pubsub"`, `"identify"`, `"kad"`, ...) holds for what it
    /// buffers on behalf of `peer`: queued messages, a message being read. It starts empty.
    /// `service` is a fixed name (it may become a metrics label).
    ///
    /// The default is an [`UnlimitedMemory`] account, for budgets that only bound muxers.
    fn service_account(&self, service: &'static str, peer: &PeerId) -> Box<dyn MemoryAccount> {
        let _ = (service, peer);
        UnlimitedMemory::boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_account_counts_and_never_goes_below_zero() {
        let mut account = UnlimitedMemory::default();
        account.try_grow(usize::MAX).unwrap();
        account.try_grow(10).unwrap();
        assert_eq!(account.reserved(), usize::MAX);
        account.shrink(usize::MAX - 5);
        assert_eq!(account.reserved(), 5);
        account.shrink(100);
        assert_eq!(account.reserved(), 0);
    }

    #[test]
    fn accounts_share_a_limit_and_return_what_they_hold_when_dropped() {
        let limit = SharedLimit::new(100);
        let mut a = limit.account();
        let mut b = limit.account();
        a.try_grow(60).unwrap();
        let denied = b.try_grow(41).unwrap_err();
        assert_eq!((denied.used, denied.requested, denied.limit), (60, 41, 100));
        b.try_grow(40).unwrap();
        assert!(b.try_grow(usize::MAX).is_err(), "overflow is a refusal");
        b.shrink(1000);
        assert_eq!((b.reserved(), limit.used()), (0, 60));
        drop(a);
        assert_eq!(limit.used(), 0);
    }

    #[test]
    fn a_denial_names_the_scope_and_the_numbers() {
        let denied = MemoryDenied {
            scope: "system".into(),
            used: 100,
            requested: 20,
            limit: 110,
        };
        assert_eq!(
            denied.to_string(),
            "memory limit of the system scope reached: 20 B more asked with 100 B of 110 B in use"
        );
    }
}
