//! The resource manager: the scopes' usage behind one lock, the connection accounts it
//! hands to muxers and the service accounts it hands to services.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lp2p_core::addr::{IpSubnet, first_ip};
use lp2p_core::{MemoryAccount, MemoryBudget, MemoryDenied, Multiaddr, PeerId, Role};

use crate::error::RcmgrError;
use crate::limits::MemoryLimits;
use crate::scope::Scope;

/// A snapshot of what the resource manager holds and has refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceStats {
    /// Bytes held by connections and services for peers not on the allowlist.
    pub system_memory: usize,
    /// The system scope's limit.
    pub system_limit: usize,
    /// Bytes held by allowlisted connections and services for allowlisted peers.
    pub allowlisted_memory: usize,
    /// The most the system scope ever held.
    pub peak_system_memory: usize,
    /// Peers with at least one account (a connection's or a service's).
    pub peers: usize,
    /// Accounted connections (muxed connections alive).
    pub connections: usize,
    /// Bytes held by the peer holding the most.
    pub largest_peer_memory: usize,
    /// Bytes each service holds (for peers not on the allowlist), by service name; a service
    /// appears once it has taken an account.
    pub service_memory: BTreeMap<&'static str, usize>,
    /// Reservations refused, per scope, in the order of [`Scope`]'s variants: connection,
    /// peer, system, allowlisted system, service (see [`ResourceStats::denied`]). In dry-run
    /// mode they are counted but granted.
    pub denials: [u64; 5],
    /// Whether the manager only logs denials.
    pub dry_run: bool,
}

impl ResourceStats {
    /// Reservations refused by `scope` (granted anyway in dry-run mode).
    pub fn denied(&self, scope: Scope) -> u64 {
        self.denials[scope.index()]
    }
}

/// What one peer holds.
#[derive(Debug, Default)]
struct PeerUsage {
    memory: usize,
    /// Live accounts for the peer, connections' and services' (the entry goes with the last).
    accounts: usize,
}

/// Every scope's usage. All changes go through [`Usage::grow`] and [`Usage::shrink`], which
/// keep the system, service, peer and connection counters in step.
#[derive(Debug, Default)]
struct Usage {
    system: usize,
    allowlisted: usize,
    peak_system: usize,
    peers: HashMap<PeerId, PeerUsage>,
    services: BTreeMap<&'static str, usize>,
    connections: usize,
    denials: [u64; 5],
}

/// Who an account belongs to.
#[derive(Clone, Copy, Debug)]
struct Owner {
    peer: PeerId,
    allowlisted: bool,
    /// The service holding the account; `None` for a connection's.
    service: Option<&'static str>,
}

impl Usage {
    /// Checks every scope `bytes` more would pass through, narrowest first; the first that
    /// would go over its limit refuses.
    fn check(
        &self,
        limits: &MemoryLimits,
        owner: Owner,
        held: usize,
        bytes: usize,
    ) -> Result<(), (Scope, usize, usize)> {
        let over = |used: usize, limit: usize| used.checked_add(bytes).is_none_or(|n| n > limit);
        if owner.allowlisted {
            if over(self.allowlisted, limits.allowlisted_system) {
                return Err((
                    Scope::AllowlistedSystem,
                    self.allowlisted,
                    limits.allowlisted_system,
                ));
            }
            return Ok(());
        }
        match owner.service {
            None if over(held, limits.connection) => {
                return Err((Scope::Connection, held, limits.connection));
            }
            Some(name) => {
                let service = self.services.get(name).copied().unwrap_or(0);
                if over(service, limits.service) {
                    return Err((Scope::Service, service, limits.service));
                }
            }
            None => {}
        }
        let peer = self.peers.get(&owner.peer).map_or(0, |p| p.memory);
        if over(peer, limits.peer) {
            return Err((Scope::Peer, peer, limits.peer));
        }
        if over(self.system, limits.system) {
            return Err((Scope::System, self.system, limits.system));
        }
        Ok(())
    }

    fn grow(&mut self, owner: Owner, bytes: usize) {
        if owner.allowlisted {
            self.allowlisted = self.allowlisted.saturating_add(bytes);
            return;
        }
        self.system = self.system.saturating_add(bytes);
        self.peak_system = self.peak_system.max(self.system);
        if let Some(peer) = self.peers.get_mut(&owner.peer) {
            peer.memory = peer.memory.saturating_add(bytes);
        }
        if let Some(service) = owner.service.and_then(|name| self.services.get_mut(name)) {
            *service = service.saturating_add(bytes);
        }
    }

    fn shrink(&mut self, owner: Owner, bytes: usize) {
        if owner.allowlisted {
            self.allowlisted = self.allowlisted.saturating_sub(bytes);
            return;
        }
        self.system = self.system.saturating_sub(bytes);
        if let Some(peer) = self.peers.get_mut(&owner.peer) {
            peer.memory = peer.memory.saturating_sub(bytes);
        }
        if let Some(service) = owner.service.and_then(|name| self.services.get_mut(name)) {
            *service = service.saturating_sub(bytes);
        }
    }

    /// Counts a new account of `owner`'s (its peer entry lives while it has accounts).
    fn open(&mut self, owner: Owner) {
        if owner.service.is_none() {
            self.connections = self.connections.saturating_add(1);
        }
        if let Some(name) = owner.service {
            self.services.entry(name).or_insert(0);
        }
        if !owner.allowlisted {
            let entry = self.peers.entry(owner.peer).or_default();
            entry.accounts = entry.accounts.saturating_add(1);
        }
    }

    /// Returns what a closing account of `owner`'s held, and ends its count.
    fn close(&mut self, owner: Owner, held: usize) {
        self.shrink(owner, held);
        if owner.service.is_none() {
            self.connections = self.connections.saturating_sub(1);
        }
        if !owner.allowlisted
            && let Some(peer) = self.peers.get_mut(&owner.peer)
        {
            peer.accounts = peer.accounts.saturating_sub(1);
            if peer.accounts == 0 {
                self.peers.remove(&owner.peer);
            }
        }
    }
}

struct Inner {
    limits: MemoryLimits,
    dry_run: bool,
    allowed_peers: HashSet<PeerId>,
    allowed_subnets: Vec<IpSubnet>,
    usage: Mutex<Usage>,
}

impl Inner {
    fn usage(&self) -> MutexGuard<'_, Usage> {
        // The counters stay consistent across a panic elsewhere (every update is one
        // saturating step), so a poisoned lock is still usable.
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_allowlisted(&self, peer: &PeerId, remote: &Multiaddr) -> bool {
        self.allowed_peers.contains(peer)
            || first_ip(remote)
                .is_some_and(|ip| self.allowed_subnets.iter().any(|s| s.contains(ip)))
    }
}

/// The resource manager: node-wide, per-peer and per-connection memory budgets that every
/// muxed connection reserves from before it grants receive window (yamux) or buffers a frame
/// (mplex).
///
/// Cheap to clone (one shared state). Give it to the host or swarm builder as the
/// [`MemoryBudget`], keep a clone to read [`stats`](ResourceManager::stats).
#[derive(Clone)]
pub struct ResourceManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for ResourceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceManager")
            .field("limits", &self.inner.limits)
            .field("dry_run", &self.inner.dry_run)
            .field("allowed_peers", &self.inner.allowed_peers.len())
            .field("allowed_subnets", &self.inner.allowed_subnets)
            .finish_non_exhaustive()
    }
}

impl Default for ResourceManager {
    /// A manager with [`MemoryLimits::for_machine`], enforcing, with an empty allowlist.
    fn default() -> Self {
        // Scaled limits are valid by construction: every one is at least 128 MiB and the
        // peer's and connection's are capped at the system's.
        ResourceManager::builder().assemble()
    }
}

impl ResourceManager {
    /// A builder, starting from [`MemoryLimits::for_machine`].
    pub fn builder() -> ResourceManagerBuilder {
        ResourceManagerBuilder {
            limits: MemoryLimits::for_machine(),
            given: Given::default(),
            dry_run: false,
            allowed_peers: HashSet::new(),
            allowed_subnets: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> MemoryLimits {
        self.inner.limits
    }

    /// Whether denials are only logged and counted (the reservation is granted).
    pub fn is_dry_run(&self) -> bool {
        self.inner.dry_run
    }

    /// Bytes `peer` holds over all its connections and service accounts (0 for allowlisted
    /// peers, which are accounted in the allowlisted system scope only).
    pub fn peer_memory(&self, peer: &PeerId) -> usize {
        self.inner.usage().peers.get(peer).map_or(0, |p| p.memory)
    }

    /// A snapshot of usage and denials.
    pub fn stats(&self) -> ResourceStats {
        let usage = self.inner.usage();
        ResourceStats {
            system_memory: usage.system,
            system_limit: self.inner.limits.system,
            allowlisted_memory: usage.allowlisted,
            peak_system_memory: usage.peak_system,
            peers: usage.peers.len(),
            connections: usage.connections,
            largest_peer_memory: usage.peers.values().map(|p| p.memory).max().unwrap_or(0),
            service_memory: usage.services.clone(),
            denials: usage.denials,
            dry_run: self.inner.dry_run,
        }
    }

    /// A new, empty account for a connection with `peer` at `remote` (what
    /// [`MemoryBudget::connection_account`] returns, typed).
    pub fn account(&self, peer: &PeerId, remote: &Multiaddr) -> ScopedMemory {
        self.open(Owner {
            peer: *peer,
            allowlisted: self.inner.is_allowlisted(peer, remote),
            service: None,
        })
    }

    /// A new, empty account for what `service` buffers for `peer` (what
    /// [`MemoryBudget::service_account`] returns, typed). It reserves through the service,
    /// peer and system scopes; for a peer on the allowlist (by peer id: a service does not
    /// know the address) through the allowlisted system scope.
    pub fn service_account(&self, service: &'static str, peer: &PeerId) -> ScopedMemory {
        self.open(Owner {
            peer: *peer,
            allowlisted: self.inner.allowed_peers.contains(peer),
            service: Some(service),
        })
    }

    fn open(&self, owner: Owner) -> ScopedMemory {
        self.inner.usage().open(owner);
        ScopedMemory {
            inner: Arc::clone(&self.inner),
            owner,
            held: 0,
        }
    }
}

impl MemoryBudget for ResourceManager {
    fn connection_account(
        &self,
        peer: &PeerId,
        remote: &Multiaddr,
        _role: Role,
    ) -> Box<dyn MemoryAccount> {
        Box::new(self.account(peer, remote))
    }

    fn service_account(&self, service: &'static str, peer: &PeerId) -> Box<dyn MemoryAccount> {
        Box::new(ResourceManager::service_account(self, service, peer))
    }
}

/// Which limits a builder was given (the others are derived from the system limit).
#[derive(Debug, Clone, Copy, Default)]
struct Given {
    allowlisted: bool,
    peer: bool,
    connection: bool,
    service: bool,
}

/// Builds a [`ResourceManager`].
#[derive(Debug, Clone)]
pub struct ResourceManagerBuilder {
    limits: MemoryLimits,
    /// Which limits were given; the others follow the system limit.
    given: Given,
    dry_run: bool,
    allowed_peers: HashSet<PeerId>,
    allowed_subnets: Vec<IpSubnet>,
}

impl ResourceManagerBuilder {
    /// Replaces all limits.
    #[must_use]
    pub fn limits(mut self, limits: MemoryLimits) -> Self {
        self.limits = limits;
        self.given = Given {
            allowlisted: true,
            peer: true,
            connection: true,
            service: true,
        };
        self
    }

    /// The system scope's limit in bytes (default: 1/8 of the machine's memory, at least
    /// 128 MiB).
    #[must_use]
    pub fn system_memory(mut self, bytes: usize) -> Self {
        self.limits.system = bytes;
        self
    }

    /// The allowlisted system scope's limit in bytes (default: the system limit, also when
    /// that is set here).
    #[must_use]
    pub fn allowlisted_memory(mut self, bytes: usize) -> Self {
        self.limits.allowlisted_system = bytes;
        self.given.allowlisted = true;
        self
    }

    /// One peer's limit in bytes (default 128 MiB, see
    /// [`DEFAULT_PEER_MEMORY`](crate::DEFAULT_PEER_MEMORY), or the system limit when that is
    /// lower, also when it is set here).
    #[must_use]
    pub fn peer_memory(mut self, bytes: usize) -> Self {
        self.limits.peer = bytes;
        self.given.peer = true;
        self
    }

    /// One connection's limit in bytes (default 128 MiB, or the system limit when that is
    /// lower, also when it is set here).
    #[must_use]
    pub fn connection_memory(mut self, bytes: usize) -> Self {
        self.limits.connection = bytes;
        self.given.connection = true;
        self
    }

    /// One service's limit in bytes, over all its peers (default a quarter of the system
    /// limit, see [`DEFAULT_SERVICE_MEMORY_SHARE`](crate::DEFAULT_SERVICE_MEMORY_SHARE),
    /// also when the system limit is set here).
    #[must_use]
    pub fn service_memory(mut self, bytes: usize) -> Self {
        self.limits.service = bytes;
        self.given.service = true;
        self
    }

    /// Only log and count denials, granting every reservation (default off): to learn what
    /// limits a deployment needs before enforcing them.
    #[must_use]
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    /// Accounts `peer` in the allowlisted system scope, with no per-peer or per-connection
    /// limit.
    #[must_use]
    pub fn allow_peer(mut self, peer: PeerId) -> Self {
        self.allowed_peers.insert(peer);
        self
    }

    /// Accounts connections from addresses in `subnet` in the allowlisted system scope.
    #[must_use]
    pub fn allow_subnet(mut self, subnet: IpSubnet) -> Self {
        self.allowed_subnets.push(subnet);
        self
    }

    /// The manager. Fails when a limit is zero (nothing could ever be reserved) or a peer's
    /// or a connection's limit exceeds the system's (it could never be reached).
    pub fn build(mut self) -> Result<ResourceManager, RcmgrError> {
        self.derive_limits();
        let l = self.limits;
        for (scope, limit) in [
            (Scope::System, l.system),
            (Scope::AllowlistedSystem, l.allowlisted_system),
            (Scope::Peer, l.peer),
            (Scope::Connection, l.connection),
            (Scope::Service, l.service),
        ] {
            if limit == 0 {
                return Err(RcmgrError::ZeroLimit { scope });
            }
        }
        for (scope, limit) in [
            (Scope::Peer, l.peer),
            (Scope::Connection, l.connection),
            (Scope::Service, l.service),
        ] {
            if limit > l.system {
                return Err(RcmgrError::AboveSystem {
                    scope,
                    limit,
                    system: l.system,
                });
            }
        }
        Ok(self.assemble())
    }

    /// The limits that were not given follow the system limit, as in
    /// [`MemoryLimits::scaled`]: so setting only the system limit (below the 128 MiB
    /// defaults, say) gives a manager that builds.
    fn derive_limits(&mut self) {
        let derived = MemoryLimits::for_system(self.limits.system);
        if !self.given.allowlisted {
            self.limits.allowlisted_system = derived.allowlisted_system;
        }
        if !self.given.peer {
            self.limits.peer = derived.peer;
        }
        if !self.given.connection {
            self.limits.connection = derived.connection;
        }
        if !self.given.service {
            self.limits.service = derived.service;
        }
    }

    fn assemble(mut self) -> ResourceManager {
        self.derive_limits();
        ResourceManager {
            inner: Arc::new(Inner {
                limits: self.limits,
                dry_run: self.dry_run,
                allowed_peers: self.allowed_peers,
                allowed_subnets: self.allowed_subnets,
                usage: Mutex::new(Usage::default()),
            }),
        }
    }
}

/// One memory account with a [`ResourceManager`]: a connection's, held by its muxer, or a
/// service's for one peer. Growing it reserves in the connection (or service), peer and
/// system scopes at once (or in the allowlisted system scope); dropping it returns what it
/// holds and ends its count.
pub struct ScopedMemory {
    inner: Arc<Inner>,
    owner: Owner,
    held: usize,
}

impl fmt::Debug for ScopedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedMemory")
            .field("peer", &self.owner.peer)
            .field("allowlisted", &self.owner.allowlisted)
            .field("service", &self.owner.service)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

/// Whether the `n`th denial of a scope is logged: the 1st, 2nd, 4th, 8th and so on, so a
/// flood of denials cannot flood the log (the counters in the stats have every one).
fn log_this_denial(n: u64) -> bool {
    n.is_power_of_two()
}

impl MemoryAccount for ScopedMemory {
    fn try_grow(&mut self, bytes: usize) -> Result<(), MemoryDenied> {
        if bytes == 0 {
            return Ok(());
        }
        let limits = self.inner.limits;
        let mut usage = self.inner.usage();
        if let Err((scope, used, limit)) = usage.check(&limits, self.owner, self.held, bytes) {
            let count = {
                let slot = &mut usage.denials[scope.index()];
                *slot = slot.saturating_add(1);
                *slot
            };
            let denied = MemoryDenied {
                scope: match (scope, self.owner.service) {
                    (Scope::Service, Some(name)) => format!("{scope} {name}"),
                    (Scope::Peer | Scope::Connection, _) => {
                        format!("{scope} ({})", self.owner.peer)
                    }
                    _ => scope.to_string(),
                },
                used,
                requested: bytes,
                limit,
            };
            if !self.inner.dry_run {
                if log_this_denial(count) {
                    tracing::debug!(peer = %self.owner.peer, %denied, denials = count, "memory reservation refused");
                }
                return Err(denied);
            }
            if log_this_denial(count) {
                tracing::info!(peer = %self.owner.peer, %denied, denials = count, "dry run: memory reservation would be refused");
            }
        }
        usage.grow(self.owner, bytes);
        drop(usage);
        self.held = self.held.saturating_add(bytes);
        Ok(())
    }

    fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        if bytes == 0 {
            return;
        }
        self.inner.usage().shrink(self.owner, bytes);
        self.held = self.held.saturating_sub(bytes);
    }

    fn reserved(&self) -> usize {
        self.held
    }
}

impl Drop for ScopedMemory {
    fn drop(&mut self) {
        self.inner.usage().close(self.owner, self.held);
    }
}

#[cfg(test)]
mod tests;
