//! Identify's limits and defaults, each with the reason for its value.

use std::time::Duration;

use lp2p_peerstore::record::RecordFormat;

/// The protocol family we announce. Informational only: a mismatch is no reason to close
/// (the spec revoked that rule); every major implementation sends this value.
pub const DEFAULT_PROTOCOL_VERSION: &str = "ipfs/0.1.0";

/// How long one identify or push exchange may take, stream negotiation included. go-libp2p
/// uses 5 s; an answer is one or two small messages, so a peer slower than that is stalling.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest message we accept. go-libp2p accepts 8 KiB per message (its `signedIDSize`)
/// and sends up to that much to peers it knows read it; rust-libp2p sends at most 4 KiB.
/// Accepting 8 KiB reads every real peer; the cap bounds what one message can make us hold.
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;

/// The largest message we send: rust-libp2p rejects identify messages over 4096 bytes, and
/// go-libp2p keeps its own under 4 KiB for rust's sake. Larger contents are split (the signed
/// record in a second message, as go does) and then trimmed (addresses, then protocols).
pub const MAX_SEND_MESSAGE_LEN: usize = 4096;

/// Messages accepted on one stream. go-libp2p splits a large answer into two and accepts up
/// to 10; the bound keeps one exchange within `MAX_MESSAGES * MAX_MESSAGE_LEN` bytes.
pub const MAX_MESSAGES: usize = 10;

/// Addresses we advertise (listen and external, deduplicated). More is rarely useful to a
/// remote and costs message space; this many typical addresses fit in one 4 KiB message.
pub const MAX_ADVERTISED_ADDRS: usize = 32;

/// After a change of our protocols or addresses, wait this long before pushing, so that a
/// burst of changes (several handlers registered at start) makes one push, not many.
pub const DEFAULT_PUSH_DEBOUNCE: Duration = Duration::from_millis(100);

/// Pushes in flight at once. A push is one small stream; a node with many peers sends them
/// in waves of this many rather than opening thousands of streams at once.
pub const MAX_CONCURRENT_PUSHES: usize = 32;

/// Pushes one peer may have in flight to us at once; more are reset. A peer pushes after a
/// change and has no reason to overlap two pushes; without a bound, one peer could hold up
/// to the host's per-protocol stream limit of buffers of `MAX_MESSAGES * MAX_MESSAGE_LEN`.
pub const MAX_INBOUND_PUSHES_PER_PEER: usize = 2;

/// Distinct observers that must report the same address of ours before we adopt it as an
/// external address: go-libp2p's `ActivationThresh` is 4. One or two peers can be wrong or
/// lying; four independent ones agreeing is strong evidence while still being reached
/// quickly on a real network.
pub const DEFAULT_OBSERVED_ADDR_THRESHOLD: usize = 4;

/// Distinct observed addresses tracked at once (with their observers). Observations are
/// dropped when their connection closes, so this only bounds what live peers can make us
/// hold; a new address beyond it is ignored (logged).
pub const MAX_OBSERVED_CANDIDATES: usize = 128;

/// External addresses identify adopts at most. A node has a few public addresses; many more
/// would mean observers are fooling us, and every one of them goes into our records.
pub const MAX_EXTERNAL_ADDRS: usize = 8;

/// Identify's configuration. Every field has a named default in this module.
#[derive(Debug, Clone)]
pub struct IdentifyConfig {
    /// See [`DEFAULT_PROTOCOL_VERSION`].
    pub protocol_version: String,
    /// What we call ourselves; `lp2p/<crate version>` by default.
    pub agent_version: String,
    /// See [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// See [`MAX_MESSAGE_LEN`].
    pub max_message_len: usize,
    /// See [`MAX_SEND_MESSAGE_LEN`].
    pub max_send_message_len: usize,
    /// See [`MAX_MESSAGES`].
    pub max_messages: usize,
    /// See [`MAX_ADVERTISED_ADDRS`].
    pub max_advertised_addrs: usize,
    /// Whether to send a signed peer record with our addresses (on by default).
    pub signed_peer_record: bool,
    /// How to sign our record: [`RecordFormat::Standard`] (go, js; the default) or
    /// [`RecordFormat::Legacy`], the only one rust-libp2p 0.57's identify verifies (it falls
    /// back to the plain `listenAddrs` for any other). We verify both either way.
    pub record_format: RecordFormat,
    /// Whether to push our changes to connected peers (on by default).
    pub push: bool,
    /// See [`DEFAULT_PUSH_DEBOUNCE`].
    pub push_debounce: Duration,
    /// See [`MAX_CONCURRENT_PUSHES`].
    pub max_concurrent_pushes: usize,
    /// See [`MAX_INBOUND_PUSHES_PER_PEER`].
    pub max_inbound_pushes_per_peer: usize,
    /// See [`DEFAULT_OBSERVED_ADDR_THRESHOLD`]; zero disables adoption.
    pub observed_addr_threshold: usize,
    /// Whether loopback observed addresses count (off: we know our loopback addresses
    /// already, as go-libp2p reasons; tests on 127.0.0.1 turn it on).
    pub observe_loopback: bool,
    /// See [`MAX_OBSERVED_CANDIDATES`].
    pub max_observed_candidates: usize,
    /// See [`MAX_EXTERNAL_ADDRS`].
    pub max_external_addrs: usize,
}

impl Default for IdentifyConfig {
    fn default() -> Self {
        IdentifyConfig {
            protocol_version: DEFAULT_PROTOCOL_VERSION.to_owned(),
            agent_version: default_agent_version(),
            timeout: DEFAULT_TIMEOUT,
            max_message_len: MAX_MESSAGE_LEN,
            max_send_message_len: MAX_SEND_MESSAGE_LEN,
            max_messages: MAX_MESSAGES,
            max_advertised_addrs: MAX_ADVERTISED_ADDRS,
            signed_peer_record: true,
            record_format: RecordFormat::Standard,
            push: true,
            push_debounce: DEFAULT_PUSH_DEBOUNCE,
            max_concurrent_pushes: MAX_CONCURRENT_PUSHES,
            max_inbound_pushes_per_peer: MAX_INBOUND_PUSHES_PER_PEER,
            observed_addr_threshold: DEFAULT_OBSERVED_ADDR_THRESHOLD,
            observe_loopback: false,
            max_observed_candidates: MAX_OBSERVED_CANDIDATES,
            max_external_addrs: MAX_EXTERNAL_ADDRS,
        }
    }
}

/// `lp2p/<version of this crate>`.
pub fn default_agent_version() -> String {
    format!("lp2p/{}", env!("CARGO_PKG_VERSION"))
}
