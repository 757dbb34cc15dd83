//! `SwarmCore`: the swarm's decisions, sans I/O.
//!
//! It owns no socket, spawns no task and reads no clock. The shell ([`Swarm`](crate::Swarm))
//! feeds it what happened (a dial was asked for, an attempt succeeded or failed, an inbound
//! attempt arrived, a connection closed, a stream count) together with `now`, and carries out
//! what it asks for ([`Action`]s: start or cancel an attempt, finish a dial, check or close an
//! idle connection, redial a bootstrap peer), waking it at [`SwarmCore::poll_timeout`]. The
//! model is quinn-proto's `Endpoint`.
//!
//! What it decides:
//! - **admission**: inbound, outbound, per-peer and pending-inbound limits;
//! - **dial scheduling**: candidates ranked (see `rank`), started one after another with a
//!   stagger (Happy Eyeballs), at most `dial_concurrency` at once, the first success wins and
//!   the others are cancelled; a per-attempt and a whole-dial timeout; concurrent dials to one
//!   peer merged; a dial finishes early when a connection to the peer appears by any route;
//! - **backoff**: a failed address is skipped for a while (exponential, clearable), reported as
//!   [`SwarmError::Backoff`];
//! - **idle policy**: a connection with no stream for `idle_timeout` is closed (protected and
//!   bootstrap peers exempt);
//! - **bootstrap redial**: bootstrap addresses dialed at start and again with backoff whenever
//!   their peer's last connection closes or a dial fails.

mod backoff;
mod bootstrap;
mod dial;
mod dialing;
mod ip_limits;
mod messages;
pub(crate) mod rank;
mod table;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId};

use crate::{CloseReason, ConnectionId, Direction, LimitKind, SwarmConfig, SwarmError};

use self::backoff::BackoffBook;
use self::bootstrap::Bootstrap;
use self::dial::Dial;
use self::ip_limits::IpLimits;
pub use self::messages::{
    Action, Admitted, AttemptId, Counts, DialFailure, DialId, DialRequest, DialStart, PendingId,
    Removed,
};
use self::table::{Entry, Idle, Table};

#[derive(Debug)]
struct Pending {
    remote_addr: Multiaddr,
    started: Instant,
    deadline: Instant,
    peer: Option<PeerId>,
    /// The address the per-IP limits count it under.
    ip: Option<std::net::IpAddr>,
}

/// The swarm's state machine. See the module docs. Everything it iterates to produce
/// actions is ordered (`BTreeMap`), so the same inputs give the same actions in the same
/// order: whole hosts replay exactly in virtual time.
#[derive(Debug)]
pub struct SwarmCore {
    config: SwarmConfig,
    local_peer: PeerId,
    next_id: u64,
    table: Table,
    pending: BTreeMap<PendingId, Pending>,
    dials: BTreeMap<DialId, Dial>,
    /// The merged (reusable) dial to each peer.
    dial_of_peer: HashMap<PeerId, DialId>,
    attempts: HashMap<AttemptId, DialId>,
    backoff: BackoffBook,
    ip_limits: IpLimits,
    protected: HashSet<PeerId>,
    bootstrap: Bootstrap,
    actions: VecDeque<Action>,
    next_gc: Instant,
    closed: bool,
    evicted_idle: u64,
}

impl SwarmCore {
    /// A core with these limits for the node `local_peer`, starting at `now`.
    pub fn new(config: SwarmConfig, local_peer: PeerId, now: Instant) -> SwarmCore {
        SwarmCore {
            config,
            local_peer,
            next_id: 1,
            table: Table::default(),
            pending: BTreeMap::new(),
            dials: BTreeMap::new(),
            dial_of_peer: HashMap::new(),
            attempts: HashMap::new(),
            backoff: BackoffBook::default(),
            ip_limits: IpLimits::default(),
            protected: HashSet::new(),
            bootstrap: Bootstrap::default(),
            actions: VecDeque::new(),
            next_gc: now + crate::config::MAINTENANCE_INTERVAL,
            closed: false,
            evicted_idle: 0,
        }
    }

    fn next(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// The limits in force.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Connection counts.
    pub fn counts(&self) -> Counts {
        Counts {
            inbound: self.table.inbound,
            outbound: self.table.outbound,
            pending_inbound: self.pending.len(),
            dials: self.dials.len(),
            evicted_idle_inbound: self.evicted_idle,
        }
    }

    /// The connections to `peer`, oldest first.
    pub fn connections_of(&self, peer: &PeerId) -> &[ConnectionId] {
        self.table.of_peer(peer)
    }

    /// The connection a new stream to `peer` should use: the newest one not closing,
    /// direct before limited.
    pub fn best_connection(&self, peer: &PeerId) -> Option<ConnectionId> {
        self.table.best_for(peer)
    }

    /// The remote address of a connection in the table.
    pub fn remote_addr(&self, conn: ConnectionId) -> Option<&Multiaddr> {
        self.table.conns.get(&conn).map(|e| &e.remote_addr)
    }

    /// Every peer with a connection.
    pub fn connected_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.table.peers()
    }

    /// Exempts `peer`'s connections from the idle timeout.
    pub fn protect(&mut self, peer: PeerId) {
        self.protected.insert(peer);
    }

    /// Undoes [`protect`](SwarmCore::protect) (bootstrap peers stay exempt).
    pub fn unprotect(&mut self, peer: &PeerId) {
        self.protected.remove(peer);
    }

    /// Whether `peer`'s connections are exempt from the idle timeout.
    pub fn is_protected(&self, peer: &PeerId) -> bool {
        self.protected.contains(peer) || self.bootstrap.is_bootstrap_peer(peer)
    }

    /// Adds a bootstrap address: dialed at the next [`handle_timeout`](SwarmCore::handle_timeout)
    /// (an [`Action::Redial`]) and redialed whenever its peer's last connection closes or a
    /// dial to it fails. Its peer is exempt from the idle timeout.
    pub fn add_bootstrap(&mut self, addr: Multiaddr, now: Instant) {
        self.bootstrap.add(addr, now);
    }

    /// How long `addr` stays in dial backoff, if it is.
    pub fn backoff_remaining(&self, addr: &Multiaddr, now: Instant) -> Option<Duration> {
        self.backoff.remaining(addr, now)
    }

    /// Takes `addr` out of dial backoff, or every address with `None`.
    pub fn clear_backoff(&mut self, addr: Option<&Multiaddr>) {
        self.backoff.clear(addr);
    }

    // ---- admission -------------------------------------------------------------------

    fn limit(kind: LimitKind, limit: usize, current: usize) -> SwarmError {
        SwarmError::Limit {
            kind,
            limit,
            current,
            subject: None,
        }
    }

    /// Whether one more outbound connection may be dialed.
    pub fn admit_outbound(&self) -> Result<(), SwarmError> {
        if self.table.outbound >= self.config.max_outbound {
            return Err(Self::limit(
                LimitKind::Outbound,
                self.config.max_outbound,
                self.table.outbound,
            ));
        }
        Ok(())
    }

    /// Whether one more connection to `peer` is allowed (checked as soon as a handshake
    /// names the peer, and again when the connection is admitted).
    pub fn admit_peer(&self, peer: &PeerId) -> Result<(), SwarmError> {
        let current = self.table.of_peer(peer).len();
        if current >= self.config.max_per_peer {
            return Err(SwarmError::Limit {
                kind: LimitKind::PerPeer,
                limit: self.config.max_per_peer,
                current,
                subject: Some(peer.to_string()),
            });
        }
        Ok(())
    }

    /// Inbound connections (handshaking, established) counted against the per-IP limits for
    /// `ip` (loopback is not counted unless `ip_limits_on_loopback`).
    pub fn inbound_from_ip(&self, ip: std::net::IpAddr) -> (usize, usize) {
        self.ip_limits.usage(ip)
    }

    fn admit(&self, peer: &PeerId, direction: Direction) -> Result<(), SwarmError> {
        if self.closed {
            return Err(SwarmError::Closed);
        }
        self.admit_peer(peer)?;
        let (count, max, kind) = match direction {
            Direction::Inbound => (
                self.open_inbound(),
                self.config.max_inbound,
                LimitKind::Inbound,
            ),
            Direction::Outbound => (
                self.table.outbound,
                self.config.max_outbound,
                LimitKind::Outbound,
            ),
        };
        if count >= max {
            return Err(Self::limit(kind, max, count));
        }
        Ok(())
    }

    fn insert(
        &mut self,
        peer: PeerId,
        direction: Direction,
        remote_addr: Multiaddr,
        limited: bool,
        ip: Option<std::net::IpAddr>,
        now: Instant,
    ) -> Admitted {
        let id = ConnectionId(self.next());
        let idle = Idle {
            next_check: self
                .config
                .idle_timeout
                .map(|_| now + self.idle_check_every()),
            ..Idle::default()
        };
        let num_established = self.table.insert(
            id,
            Entry {
                peer,
                direction,
                remote_addr,
                limited,
                ip,
                idle,
            },
        );
        self.bootstrap.connected(&peer);
        // A connection to the peer by any route ends a dial running to it.
        if let Some(dial) = self.dial_of_peer.get(&peer).copied() {
            self.finish_dial(dial, Ok(id), now);
        }
        Admitted {
            id,
            num_established,
        }
    }

    // ---- inbound ---------------------------------------------------------------------

    /// An inbound attempt arrived from `remote_addr`: takes a pending-inbound slot (the
    /// upgrade then runs, at most `upgrade_timeout`), or says which limit refuses it.
    pub fn inbound_attempt(
        &mut self,
        remote_addr: Multiaddr,
        now: Instant,
    ) -> Result<PendingId, SwarmError> {
        if self.closed {
            return Err(SwarmError::Closed);
        }
        let ip = ip_limits::key(&self.config, &remote_addr);
        if let Some(ip) = ip {
            self.ip_limits.check(&self.config, ip)?;
        }
        if self.pending.len() >= self.config.max_pending_inbound && !self.evict_pending(now) {
            return Err(Self::limit(
                LimitKind::PendingInbound,
                self.config.max_pending_inbound,
                self.pending.len(),
            ));
        }
        let mut inbound = self.open_inbound().saturating_add(self.pending.len());
        if inbound >= self.config.max_inbound && self.evict_idle_inbound(now) {
            inbound = inbound.saturating_sub(1);
        }
        if inbound >= self.config.max_inbound {
            return Err(Self::limit(
                LimitKind::Inbound,
                self.config.max_inbound,
                inbound,
            ));
        }
        if let Some(ip) = ip {
            self.ip_limits.pending_added(ip);
        }
        let id = PendingId(self.next());
        self.pending.insert(
            id,
            Pending {
                remote_addr,
                started: now,
                deadline: now + self.config.upgrade_timeout,
                peer: None,
                ip,
            },
        );
        Ok(id)
    }

    /// Inbound connections in the table that are not being closed (a closing one leaves
    /// the table when its close completes; its slot is already free).
    fn open_inbound(&self) -> usize {
        let closing = self
            .table
            .conns
            .values()
            .filter(|e| e.direction == Direction::Inbound && e.idle.closing)
            .count();
        self.table.inbound.saturating_sub(closing)
    }

    /// Frees an inbound slot for a new attempt: closes the inbound connection idle the
    /// longest (no stream since), if that is at least the eviction age and its peer is not
    /// protected. False when none may go.
    fn evict_idle_inbound(&mut self, now: Instant) -> bool {
        let Some(min_age) = self.config.inbound_idle_eviction_age else {
            return false;
        };
        let longest = self
            .table
            .conns
            .iter()
            .filter(|(_, e)| e.direction == Direction::Inbound && !e.idle.closing)
            .filter(|(_, e)| !self.is_protected(&e.peer))
            .filter_map(|(id, e)| Some((*id, now.saturating_duration_since(e.idle.since?))))
            .max_by_key(|(_, idle)| *idle);
        let Some((conn, idle)) = longest.filter(|(_, idle)| *idle >= min_age) else {
            return false;
        };
        tracing::debug!(connection = %conn, idle = ?idle, "inbound limit reached: closing the connection idle the longest");
        self.evicted_idle = self.evicted_idle.saturating_add(1);
        self.closing(conn);
        self.actions.push_back(Action::Close {
            conn,
            reason: CloseReason::Idle,
        });
        true
    }

    /// Frees a pending-inbound slot for a new attempt: the oldest attempt that has not
    /// proved a peer yet goes, if it is at least the eviction age old. False when none may.
    fn evict_pending(&mut self, now: Instant) -> bool {
        let Some(min_age) = self.config.pending_inbound_eviction_age else {
            return false;
        };
        // Ids grow with time, so the first match is the oldest.
        let oldest = self
            .pending
            .iter()
            .find(|(_, p)| p.peer.is_none())
            .map(|(id, p)| (*id, now.saturating_duration_since(p.started)));
        let Some((pending, age)) = oldest.filter(|(_, age)| *age >= min_age) else {
            return false;
        };
        if let Some(ip) = self.pending.remove(&pending).and_then(|p| p.ip) {
            self.ip_limits.pending_ended(ip, false);
        }
        self.actions
            .push_back(Action::EvictInbound { pending, age });
        true
    }

    /// An inbound handshake from `remote_addr` proved `peer`: checks the per-peer limit and
    /// remembers who is coming (a dial to that peer then waits for this connection instead
    /// of failing for lack of addresses).
    pub fn inbound_secured(
        &mut self,
        remote_addr: &Multiaddr,
        peer: PeerId,
    ) -> Result<(), SwarmError> {
        self.admit_peer(&peer)?;
        if let Some(p) = self
            .pending
            .values_mut()
            .find(|p| p.peer.is_none() && &p.remote_addr == remote_addr)
        {
            p.peer = Some(peer);
        }
        Ok(())
    }

    /// The inbound attempt finished its upgrade: admits it (limits permitting).
    pub fn inbound_established(
        &mut self,
        pending: PendingId,
        peer: PeerId,
        remote_addr: Multiaddr,
        limited: bool,
        now: Instant,
    ) -> Result<Admitted, SwarmError> {
        let Some(p) = self.pending.remove(&pending) else {
            // Timed out (and cancelled) while the upgrade was finishing.
            return Err(SwarmError::Timeout {
                what: "inbound connection upgrade",
                after: self.config.upgrade_timeout,
            });
        };
        if let Err(err) = self.admit(&peer, Direction::Inbound) {
            if let Some(ip) = p.ip {
                self.ip_limits.pending_ended(ip, false);
            }
            return Err(err);
        }
        if let Some(ip) = p.ip {
            self.ip_limits.pending_ended(ip, true);
        }
        let admitted = self.insert(peer, Direction::Inbound, remote_addr, limited, p.ip, now);
        self.wake_waiting_dials(now);
        Ok(admitted)
    }

    /// The inbound attempt failed (or was refused after the handshake).
    pub fn inbound_failed(&mut self, pending: PendingId, now: Instant) {
        if let Some(p) = self.pending.remove(&pending) {
            if let Some(ip) = p.ip {
                self.ip_limits.pending_ended(ip, false);
            }
            self.wake_waiting_dials(now);
        }
    }

    /// Whether an inbound connection that is, or may turn out to be, from `peer` is finishing
    /// its upgrade (one whose remote is not authenticated yet may be anyone).
    pub fn inbound_pending_from(&self, peer: &PeerId) -> bool {
        self.pending
            .values()
            .any(|p| p.peer.is_none_or(|known| known == *peer))
    }

    // ---- lifecycle -------------------------------------------------------------------

    /// The connection closed (for any reason): takes it out of the table.
    pub fn connection_closed(&mut self, conn: ConnectionId, now: Instant) -> Option<Removed> {
        let (entry, num_remaining) = self.table.remove(conn)?;
        if let Some(ip) = entry.ip {
            self.ip_limits.established_closed(ip);
        }
        if num_remaining == 0 {
            self.bootstrap.disconnected(&entry.peer, &self.config, now);
        }
        Some(Removed {
            peer: entry.peer,
            direction: entry.direction,
            num_remaining,
        })
    }

    fn idle_check_every(&self) -> Duration {
        // Checks are cheap; often enough that an idle connection closes within a quarter of
        // the timeout of its due time, rarely enough not to matter.
        self.config.idle_timeout.map_or(Duration::MAX, |idle| {
            (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
        })
    }

    /// The shell's answer to [`Action::CheckIdle`]: how many streams are open on `conn` and
    /// how many were ever opened on it.
    pub fn idle_report(
        &mut self,
        conn: ConnectionId,
        open: usize,
        opened_total: u64,
        now: Instant,
    ) {
        let Some(idle_timeout) = self.config.idle_timeout else {
            return;
        };
        let every = self.idle_check_every();
        let protected = match self.table.conns.get(&conn) {
            Some(e) => self.is_protected(&e.peer),
            None => return,
        };
        let Some(entry) = self.table.conns.get_mut(&conn) else {
            return;
        };
        let idle = &mut entry.idle;
        idle.asked = false;
        if idle.closing {
            return;
        }
        let active = open > 0 || opened_total != idle.opened;
        idle.opened = opened_total;
        if protected || active {
            // Active: idle from now at the earliest.
            idle.since = (open == 0).then_some(now);
            idle.next_check = Some(now + every);
            return;
        }
        let since = *idle.since.get_or_insert(now);
        if now.saturating_duration_since(since) >= idle_timeout {
            idle.closing = true;
            idle.next_check = None;
            self.actions.push_back(Action::Close {
                conn,
                reason: CloseReason::Idle,
            });
        } else {
            idle.next_check = Some((since + idle_timeout).min(now + every).max(now));
        }
    }

    /// Marks a connection as closing (a local close): no more idle checks for it, and new
    /// streams avoid it.
    pub fn closing(&mut self, conn: ConnectionId) {
        if let Some(e) = self.table.conns.get_mut(&conn) {
            e.idle.closing = true;
            e.idle.next_check = None;
        }
    }

    // ---- time ------------------------------------------------------------------------

    /// When [`handle_timeout`](SwarmCore::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = Some(self.next_gc);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for d in self.dials.values() {
            consider(Some(d.next_timeout()));
        }
        for p in self.pending.values() {
            consider(Some(p.deadline));
        }
        for e in self.table.conns.values() {
            if !e.idle.asked {
                consider(e.idle.next_check);
            }
        }
        consider(self.bootstrap.next_timeout());
        next
    }

    /// Runs everything due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Inbound upgrades out of time.
        let expired: Vec<PendingId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for pending in expired {
            if let Some(ip) = self.pending.remove(&pending).and_then(|p| p.ip) {
                self.ip_limits.pending_ended(ip, false);
            }
            self.actions.push_back(Action::CancelInbound { pending });
        }
        if !self.pending.is_empty() || !self.dials.is_empty() {
            self.wake_waiting_dials(now);
        }
        // Dials: attempt and dial deadlines, staggered starts.
        let due: Vec<DialId> = self
            .dials
            .iter()
            .filter(|(_, d)| d.next_timeout() <= now)
            .map(|(id, _)| *id)
            .collect();
        for dial in due {
            self.step_dial(dial, now);
        }
        // Idle checks.
        for (id, e) in &mut self.table.conns {
            if !e.idle.asked && !e.idle.closing && e.idle.next_check.is_some_and(|t| t <= now) {
                e.idle.asked = true;
                self.actions.push_back(Action::CheckIdle { conn: *id });
            }
        }
        // Bootstrap redials.
        for addr in self.bootstrap.due(now) {
            // The bootstrap schedule is the one that counts for these addresses: the
            // per-address backoff of an earlier failure must not refuse the redial.
            self.backoff
                .clear(Some(&lp2p_core::addr::split_peer_id(&addr).0));
            self.backoff.clear(Some(&addr));
            self.actions.push_back(Action::Redial { addr });
        }
        if self.next_gc <= now {
            self.backoff.collect_garbage(now);
            self.next_gc = now + crate::config::MAINTENANCE_INTERVAL;
        }
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Stops everything: running dials fail with [`SwarmError::Closed`], nothing new is
    /// admitted, bootstrap redials stop.
    pub fn close(&mut self, now: Instant) {
        self.closed = true;
        self.bootstrap.stop();
        let dials: Vec<DialId> = self.dials.keys().copied().collect();
        let closed = Arc::new(SwarmError::Closed);
        for dial in dials {
            if let Some(mut d) = self.dials.remove(&dial) {
                self.cancel_running(&mut d, crate::Stage::Transport, &closed);
                self.finish_failed(dial, d, now);
            }
        }
        for (pending, p) in std::mem::take(&mut self.pending) {
            if let Some(ip) = p.ip {
                self.ip_limits.pending_ended(ip, false);
            }
            self.actions.push_back(Action::CancelInbound { pending });
        }
    }

    /// Whether [`close`](SwarmCore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
