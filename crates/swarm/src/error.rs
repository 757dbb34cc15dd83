use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lp2p_core::{Multiaddr, PeerId};

/// Where a connection attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The address was skipped: it failed recently and is in dial backoff.
    Backoff,
    /// No transport can dial the address.
    UnsupportedAddress,
    /// A name in the address (`/dns*`, `/dnsaddr`) could not be resolved.
    Resolve,
    /// The transport could not connect.
    Transport,
    /// multistream-select for the security protocol.
    SecurityNegotiation,
    /// The security handshake itself (includes a peer id mismatch).
    Security,
    /// multistream-select for the stream muxer.
    MuxerNegotiation,
    /// A connection limit refused the connection.
    Limit,
    /// A connection gate refused the connection.
    Denied,
    /// The attempt ran out of time.
    Timeout,
    /// The attempt was stopped because every caller of its dial stopped waiting.
    Cancelled,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Backoff => "in dial backoff",
            Stage::UnsupportedAddress => "unsupported address",
            Stage::Resolve => "name resolution",
            Stage::Transport => "transport",
            Stage::SecurityNegotiation => "security negotiation",
            Stage::Security => "security handshake",
            Stage::MuxerNegotiation => "muxer negotiation",
            Stage::Limit => "connection limit",
            Stage::Denied => "denied by a connection gate",
            Stage::Timeout => "timeout",
            Stage::Cancelled => "cancelled",
        })
    }
}

/// One address tried during a dial, and why it failed.
#[derive(Debug, Clone)]
pub struct DialAttempt {
    /// The address tried.
    pub addr: Multiaddr,
    /// The stage that failed.
    pub stage: Stage,
    /// The cause.
    pub error: Arc<SwarmError>,
}

impl fmt::Display for DialAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.addr, self.stage, self.error)
    }
}

/// Which connection limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Established inbound connections.
    Inbound,
    /// Established outbound connections.
    Outbound,
    /// Connections to one peer.
    PerPeer,
    /// Inbound connections still handshaking.
    PendingInbound,
    /// Inbound handshakes from one IP address.
    PendingInboundPerIp,
    /// Inbound connections (established and handshaking) from one IP address.
    InboundPerIp,
    /// Inbound handshakes from one subnet.
    PendingInboundPerSubnet,
    /// Inbound connections (established and handshaking) from one subnet.
    InboundPerSubnet,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Inbound => "inbound connections",
            LimitKind::Outbound => "outbound connections",
            LimitKind::PerPeer => "connections per peer",
            LimitKind::PendingInbound => "pending inbound connections",
            LimitKind::PendingInboundPerIp => "pending inbound connections from one IP address",
            LimitKind::InboundPerIp => "inbound connections from one IP address",
            LimitKind::PendingInboundPerSubnet => "pending inbound connections from one subnet",
            LimitKind::InboundPerSubnet => "inbound connections from one subnet",
        })
    }
}

/// Everything the swarm reports as failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// A dial failed on every address; each attempt says where and why.
    #[error("{}", describe_dial_failure(*peer, attempts))]
    DialFailed {
        /// The peer dialed, when known.
        peer: Option<PeerId>,
        /// Every address tried, in the order tried.
        attempts: Vec<DialAttempt>,
    },
    /// There was no address to dial for the peer.
    #[error("no known address for peer {0}")]
    NoAddresses(PeerId),
    /// No transport can dial or listen on the address.
    #[error("no transport supports the address {0}")]
    UnsupportedAddress(Multiaddr),
    /// A connection limit refused the connection.
    #[error("connection limit reached: {kind}{}: {current} in use, limit {limit}", subject.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Limit {
        /// Which limit.
        kind: LimitKind,
        /// Its value.
        limit: usize,
        /// What was in use when the connection was refused.
        current: usize,
        /// What the limit applies to, when it is not the whole node: the peer, IP address
        /// or subnet.
        subject: Option<String>,
    },
    /// The resource manager (the swarm's
    /// [`connection_limiter`](crate::SwarmBuilder::connection_limiter)) refused the
    /// connection: the denial names the scope, the resource, its limit and its usage.
    #[error("resource limit reached{}: {denied}", peer.as_ref().map(|p| format!(" for peer {p}")).unwrap_or_default())]
    Resources {
        /// The remote, once known.
        peer: Option<Box<PeerId>>,
        /// Which scope refused, and why.
        denied: Box<lp2p_core::LimitDenied>,
    },
    /// A failure in the transport, security channel or muxer.
    #[error(transparent)]
    Core(#[from] lp2p_core::Error),
    /// The remote proved another identity than the one dialed.
    #[error("peer id mismatch: dialed {expected}, reached {actual}")]
    PeerIdMismatch {
        /// The peer we dialed.
        expected: Box<PeerId>,
        /// The peer we reached.
        actual: Box<PeerId>,
    },
    /// A connection gate refused the connection.
    #[error("connection denied at the {stage} stage: {reason}")]
    Denied {
        /// Where.
        stage: crate::GateStage,
        /// The gate's reason.
        reason: crate::Denied,
    },
    /// The address failed recently and is in dial backoff.
    #[error(
        "{addr} is in dial backoff for another {remaining:?} (it failed recently; clear it with clear_dial_backoff)"
    )]
    Backoff {
        /// The address.
        addr: Multiaddr,
        /// How long it stays in backoff.
        remaining: Duration,
    },
    /// We dialed our own peer id.
    #[error("refusing to dial ourselves")]
    DialSelf,
    /// An operation ran out of time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// An inbound handshake lost its pending slot to a newer connection: every slot was
    /// taken and it was the oldest one that had not proved a peer yet.
    #[error(
        "inbound handshake evicted after {age:?} without proving a peer: all {limit} pending inbound slots were taken and a new connection needed one"
    )]
    Evicted {
        /// How long the handshake had been running.
        age: Duration,
        /// The pending-inbound limit.
        limit: usize,
    },
    /// The swarm is closed.
    #[error("the swarm is closed")]
    Closed,
    /// A dial attempt was stopped because every caller of its dial dropped the future.
    #[error("dial cancelled: every caller stopped waiting for it")]
    DialCancelled,
    /// The builder was missing something.
    #[error("invalid swarm configuration: {0}")]
    InvalidConfig(&'static str),
}

impl SwarmError {
    /// When every failed attempt of a dial (or this error itself) is a peer id mismatch:
    /// the peer dialed and the peer reached.
    pub fn peer_id_mismatch(&self) -> Option<(PeerId, PeerId)> {
        match self {
            SwarmError::PeerIdMismatch { expected, actual } => Some((**expected, **actual)),
            SwarmError::Core(lp2p_core::Error::PeerIdMismatch { expected, actual }) => {
                Some((**expected, **actual))
            }
            SwarmError::DialFailed { attempts, .. } => {
                attempts.iter().find_map(|a| a.error.peer_id_mismatch())
            }
            _ => None,
        }
    }

    /// The attempts of a [`SwarmError::DialFailed`]; empty for other errors.
    pub fn attempts(&self) -> &[DialAttempt] {
        match self {
            SwarmError::DialFailed { attempts, .. } => attempts,
            _ => &[],
        }
    }
}

fn describe_dial_failure(peer: Option<PeerId>, attempts: &[DialAttempt]) -> String {
    let mut text = match peer {
        Some(peer) => format!("dialing {peer} failed"),
        None => "dial failed".to_owned(),
    };
    if attempts.is_empty() {
        text.push_str(": no address was tried");
    }
    for (i, attempt) in attempts.iter().enumerate() {
        text.push_str(if i == 0 { ": " } else { "; " });
        text.push_str(&attempt.to_string());
    }
    text
}
