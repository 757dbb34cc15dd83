//! The resource manager: the scopes' usage behind one lock, the connection accounts it
//! hands to muxers and the service accounts it hands to services.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lp2p_core::addr::{IpSubnet, first_ip};
use lp2p_core::{MemoryAccount, MemoryBudget, MemoryDenied, Multiaddr, PeerId, Role};

use lp2p_core::{LimitDenied, Resource};

use crate::counts::{CountLimits, CountUsage, Counts, Refusal, resource_index};
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
    /// Memory reservations refused, per scope, in the order of [`Scope`]'s variants:
    /// connection, peer, system, allowlisted system, service, transient, protocol (see
    /// [`ResourceStats::denied`]). In dry-run mode they are counted but granted.
    pub denials: [u64; 7],
    /// Connections, streams and descriptors refused, per scope (in the order of
    /// [`Scope`]'s variants) and resource (in the order of [`RESOURCES`](crate::RESOURCES));
    /// see [`ResourceStats::count_denied`].
    pub count_denials: [[u64; 5]; 7],
    /// Connections, streams and descriptors the system scope holds (peers not on the
    /// allowlist).
    pub system_counts: Counts,
    /// The same for allowlisted peers and addresses.
    pub allowlisted_counts: Counts,
    /// Connections still in their handshake and streams still negotiating.
    pub transient_counts: Counts,
    /// Streams per protocol (protocols with at least one open stream).
    pub protocol_counts: BTreeMap<String, Counts>,
    /// The most inbound streams one peer holds.
    pub largest_peer_inbound_streams: usize,
    /// Whether the manager only logs denials.
    pub dry_run: bool,
}

impl ResourceStats {
    /// Reservations refused by `scope` (granted anyway in dry-run mode).
    pub fn denied(&self, scope: Scope) -> u64 {
        self.denials[scope.index()]
    }

    /// Reservations of `resource` refused by `scope` (granted anyway in dry-run mode).
    pub fn count_denied(&self, scope: Scope, resource: Resource) -> u64 {
        self.count_denials[scope.index()][resource_index(resource)]
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
pub(crate) struct Usage {
    system: usize,
    allowlisted: usize,
    peak_system: usize,
    peers: HashMap<PeerId, PeerUsage>,
    services: BTreeMap<&'static str, usize>,
    connections: usize,
    pub(crate) counts: CountUsage,
    denials: [u64; 7],
    count_denials: [[u64; 5]; 7],
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

pub(crate) struct Inner {
    limits: MemoryLimits,
    pub(crate) counts: CountLimits,
    /// Count limits of protocols that have their own (others use `counts.protocol`).
    pub(crate) protocol_counts: HashMap<String, Counts>,
    dry_run: bool,
    allowed_peers: HashSet<PeerId>,
    allowed_subnets: Vec<IpSubnet>,
    usage: Mutex<Usage>,
}

impl Inner {
    pub(crate) fn usage(&self) -> MutexGuard<'_, Usage> {
        // The counters stay consistent across a panic elsewhere (every update is one
        // saturating step), so a poisoned lock is still usable.
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_allowlisted(&self, peer: &PeerId, remote: &Multiaddr) -> bool {
        self.allowed_peers.contains(peer) || self.is_allowlisted_addr(remote)
    }

    pub(crate) fn is_allowlisted_addr(&self, remote: &Multiaddr) -> bool {
        first_ip(remote).is_some_and(|ip| self.allowed_subnets.iter().any(|s| s.contains(ip)))
    }

    pub(crate) fn is_allowlisted_peer(&self, peer: &PeerId) -> bool {
        self.allowed_peers.contains(peer)
    }

    /// The count limits of `protocol`'s scope.
    pub(crate) fn protocol_limits(&self, protocol: &str) -> Counts {
        self.protocol_counts
            .get(protocol)
            .copied()
            .unwrap_or(self.counts.protocol)
    }

    /// Counts a refused count reservation and logs it (sparsely); `None` in dry-run mode,
    /// where the reservation goes ahead.
    pub(crate) fn refuse(&self, usage: &mut Usage, refusal: Refusal) -> Option<LimitDenied> {
        let count = {
            let slot =
                &mut usage.count_denials[refusal.scope.index()][resource_index(refusal.resource)];
            *slot = slot.saturating_add(1);
            *slot
        };
        let denied = refusal.into_denied();
        if self.dry_run {
            if log_this_denial(count) {
                tracing::info!(%denied, denials = count, "dry run: reservation would be refused");
            }
            return None;
        }
        if log_this_denial(count) {
            tracing::debug!(%denied, denials = count, "reservation refused");
        }
        Some(denied)
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
    pub(crate) inner: Arc<Inner>,
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
            counts: CountLimits::for_this_process(),
            protocol_counts: HashMap::new(),
            given: Given::default(),
            dry_run: false,
            allowed_peers: HashSet::new(),
            allowed_subnets: Vec::new(),
        }
    }

    /// The memory limits in force.
    pub fn limits(&self) -> MemoryLimits {
        self.inner.limits
    }

    /// The count limits in force (connections, streams, descriptors); protocols given their
    /// own with [`ResourceManagerBuilder::protocol_counts`] are in
    /// [`protocol_count_limits`](ResourceManager::protocol_count_limits).
    pub fn count_limits(&self) -> CountLimits {
        self.inner.counts
    }

    /// The count limits of `protocol`'s scope.
    pub fn protocol_count_limits(&self, protocol: &str) -> Counts {
        self.inner.protocol_limits(protocol)
    }

    /// What `peer` holds of the counted resources (zero for allowlisted peers, which are
    /// counted in the allowlisted system scope only).
    pub fn peer_counts(&self, peer: &PeerId) -> Counts {
        self.inner
            .usage()
            .counts
            .peers
            .get(peer)
            .copied()
            .unwrap_or_default()
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
            count_denials: usage.count_denials,
            system_counts: usage.counts.system,
            allowlisted_counts: usage.counts.allowlisted,
            transient_counts: usage.counts.transient,
            protocol_counts: usage.counts.protocols.clone(),
            largest_peer_inbound_streams: usage
                .counts
                .peers
                .values()
                .map(|c| c.inbound_streams)
                .max()
                .unwrap_or(0),
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
    counts: CountLimits,
    protocol_counts: HashMap<String, Counts>,
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

    /// Replaces the count limits of every scope (default:
    /// [`CountLimits::for_this_process`]).
    #[must_use]
    pub fn count_limits(mut self, counts: CountLimits) -> Self {
        self.counts = counts;
        self
    }

    /// Gives `protocol` count limits of its own (only its stream fields apply), in place of
    /// the default protocol scope's: e.g. fewer inbound streams for an expensive handler.
    #[must_use]
    pub fn protocol_counts(mut self, protocol: impl Into<String>, counts: Counts) -> Self {
        self.protocol_counts.insert(protocol.into(), counts);
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
        let c = &self.counts;
        for (scope, counts) in [
            (Scope::System, c.system),
            (Scope::Transient, c.transient),
            (Scope::Peer, c.peer),
        ] {
            for resource in [Resource::InboundConnections, Resource::OutboundConnections] {
                if counts.get(resource) == 0 {
                    return Err(RcmgrError::ZeroCount { scope, resource });
                }
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
                counts: self.counts,
                protocol_counts: self.protocol_counts,
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
