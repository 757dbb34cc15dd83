//! What goes into and out of [`SwarmCore`](super::SwarmCore): dial, attempt and inbound
//! ids, dial requests and outcomes, the actions it asks the shell to carry out, its counts.

use std::fmt;
use std::time::Duration;

use lp2p_core::{DialOpts, Multiaddr, PeerId, Role};

use crate::{CloseReason, ConnectionId, DialAttempt, Direction, SwarmError};

/// A dial's number (one dial may try many addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialId(pub(super) u64);

/// One address attempt's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub(super) u64);

/// An inbound attempt's number, from arrival until it is established or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingId(pub(super) u64);

macro_rules! display_id {
    ($($t:ty => $prefix:literal),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    )*};
}
display_id!(DialId => "dial#", AttemptId => "attempt#", PendingId => "inbound#");

/// What a dial asks for.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// The peer to reach; `None` accepts whoever answers (dialing a bare address).
    pub peer: Option<PeerId>,
    /// Candidate addresses (already resolved, each dialable by some transport). The core
    /// ranks them.
    pub addrs: Vec<Multiaddr>,
    /// Addresses that failed before the dial started (unsupported, unresolvable): they are
    /// listed in the dial's failure report.
    pub failures: Vec<DialAttempt>,
    /// Reuse a live connection to the peer and merge with a dial already running to it.
    /// `false` always makes a new connection (benchmarks, tools, hole punching).
    pub reuse: bool,
    /// Dial from the listening port (hole punching).
    pub port_reuse: bool,
    /// The role to take in the upgrade ([`Role::Responder`] on one side of a simultaneous
    /// open).
    pub role: Role,
}

impl DialRequest {
    /// An ordinary dial: reuse a live connection, dial from an ephemeral port, as initiator.
    pub fn new(peer: Option<PeerId>, addrs: Vec<Multiaddr>, failures: Vec<DialAttempt>) -> Self {
        DialRequest {
            peer,
            addrs,
            failures,
            reuse: true,
            port_reuse: false,
            role: Role::Initiator,
        }
    }
}

/// How a dial started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialStart {
    /// A live connection to the peer exists: use it.
    Connected(ConnectionId),
    /// The dial is running (new, or one already running to that peer); wait for
    /// [`Action::DialFinished`] with this id.
    Dialing(DialId),
}

/// Why a dial failed: every address tried (or skipped), in order.
#[derive(Debug, Clone)]
pub struct DialFailure {
    /// The peer dialed, when known.
    pub peer: Option<PeerId>,
    /// Every address and why it failed.
    pub attempts: Vec<DialAttempt>,
}

impl DialFailure {
    /// The error a caller sees.
    pub fn into_error(self) -> SwarmError {
        if self.attempts.is_empty()
            && let Some(peer) = self.peer
        {
            return SwarmError::NoAddresses(peer);
        }
        SwarmError::DialFailed {
            peer: self.peer,
            attempts: self.attempts,
        }
    }
}

/// A connection the core admitted.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    /// Its id.
    pub id: ConnectionId,
    /// Connections to the peer now, this one included.
    pub num_established: usize,
}

/// A connection that left the table.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The peer.
    pub peer: PeerId,
    /// Its direction.
    pub direction: Direction,
    /// Connections to the peer that remain.
    pub num_remaining: usize,
}

/// What the core asks the shell to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Dial `addr` (expecting `peer` when set) and report the outcome with
    /// [`SwarmCore::attempt_succeeded`](super::SwarmCore::attempt_succeeded) or [`SwarmCore::attempt_failed`](super::SwarmCore::attempt_failed).
    StartAttempt {
        /// The attempt.
        attempt: AttemptId,
        /// The dial it belongs to.
        dial: DialId,
        /// The address.
        addr: Multiaddr,
        /// How to dial it (the peer expected, port reuse, role).
        opts: DialOpts,
    },
    /// Stop this attempt (another one won, or it or its dial timed out). No report is
    /// expected; a late report is ignored.
    CancelAttempt {
        /// The attempt.
        attempt: AttemptId,
    },
    /// A dial ended.
    DialFinished {
        /// The dial.
        dial: DialId,
        /// The connection, or why every address failed.
        outcome: Result<ConnectionId, DialFailure>,
    },
    /// This inbound attempt ran out of time: drop its upgrade.
    CancelInbound {
        /// The attempt.
        pending: PendingId,
    },
    /// This inbound attempt lost its slot to a newer one (see
    /// [`SwarmConfig::pending_inbound_eviction_age`](crate::SwarmConfig::pending_inbound_eviction_age)): drop its upgrade.
    EvictInbound {
        /// The attempt.
        pending: PendingId,
        /// How long its handshake had been running.
        age: Duration,
    },
    /// Report the connection's stream counts with [`SwarmCore::idle_report`](super::SwarmCore::idle_report).
    CheckIdle {
        /// The connection.
        conn: ConnectionId,
    },
    /// Close this connection, for this reason.
    Close {
        /// The connection.
        conn: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
    /// Dial this bootstrap address again (resolve it, then [`SwarmCore::dial`](super::SwarmCore::dial) with
    /// [`SwarmCore::bootstrap_dial_started`](super::SwarmCore::bootstrap_dial_started)).
    Redial {
        /// The bootstrap address.
        addr: Multiaddr,
    },
}

/// Connection counts, for limits and for the curious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Established inbound connections.
    pub inbound: usize,
    /// Established outbound connections.
    pub outbound: usize,
    /// Inbound connections still in their handshake.
    pub pending_inbound: usize,
    /// Dials running.
    pub dials: usize,
    /// Idle inbound connections closed to make room for a new inbound attempt (see
    /// [`SwarmConfig::inbound_idle_eviction_age`](crate::SwarmConfig::inbound_idle_eviction_age)), since the start.
    pub evicted_idle_inbound: u64,
}
