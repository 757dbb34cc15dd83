//! The crate's error type.

use std::time::Duration;

use lp2p_core::PeerId;

use crate::status::ResponseStatus;
use crate::v1::status::V1Status;

/// What went wrong in an AutoNAT exchange, and with which peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AutonatError {
    /// A message did not decode, or was of the wrong type at this point of the exchange.
    /// `peer` is `None` only straight out of the decoders in [`message`](crate::message).
    #[error("malformed AutoNAT message{}: {what}", peer_suffix(.peer.as_ref()))]
    Malformed {
        /// The sender, once known.
        peer: Option<PeerId>,
        /// What was wrong.
        what: String,
    },
    /// Opening the stream to the server failed (not connected, protocol not supported).
    #[error("AutoNAT server {server}: {source}")]
    Host {
        /// The server.
        server: PeerId,
        /// The host's error.
        #[source]
        source: Box<lp2p_host::HostError>,
    },
    /// Reading or writing the stream failed (reset, closed, oversized frame).
    #[error("AutoNAT stream with {peer} failed: {source}")]
    Stream {
        /// The remote.
        peer: PeerId,
        /// The I/O or framing error (boxed: keeps the error small).
        #[source]
        source: Box<lp2p_core::Error>,
    },
    /// The remote did not finish the exchange in time.
    #[error("AutoNAT peer {peer} did not answer within {after:?}")]
    Timeout {
        /// The remote.
        peer: PeerId,
        /// How long we waited.
        after: Duration,
    },
    /// The server answered without a dial: it rejected the request, refused every address,
    /// or failed.
    #[error("AutoNAT server {server} answered {status:?}")]
    NotDialed {
        /// The server.
        server: PeerId,
        /// Its answer.
        status: ResponseStatus,
    },
    /// An AutoNAT v1 server answered without a verdict: it refused (relayed connection, rate
    /// limit, no address on the IP it sees us on), found the request bad, or failed.
    #[error("AutoNAT v1 server {server} answered {status:?}{}", text_suffix(.text.as_deref()))]
    V1NotDialed {
        /// The server.
        server: PeerId,
        /// Its answer.
        status: V1Status,
        /// Its status text, if any.
        text: Option<String>,
    },
    /// The server asked for more dial data than we agree to send
    /// ([`ClientConfig::max_dial_data`](crate::ClientConfig::max_dial_data)), or for data
    /// for an address we did not send.
    #[error(
        "AutoNAT server {server} asked for {num_bytes} bytes of dial data for address #{addr_idx}; refused"
    )]
    DialDataRefused {
        /// The server.
        server: PeerId,
        /// The index it named.
        addr_idx: u32,
        /// The amount it asked for.
        num_bytes: u64,
    },
    /// The server named an address index outside the request.
    #[error("AutoNAT server {server} answered for address #{addr_idx} of a {sent}-address request")]
    BadIndex {
        /// The server.
        server: PeerId,
        /// The index it named.
        addr_idx: u32,
        /// How many addresses we sent.
        sent: usize,
    },
    /// The request had no address to test.
    #[error("an AutoNAT request needs at least one address")]
    NoAddresses,
    /// The client or server is gone (its host closed).
    #[error("the AutoNAT service has stopped")]
    Stopped,
}

fn peer_suffix(peer: Option<&PeerId>) -> String {
    peer.map(|p| format!(" from {p}")).unwrap_or_default()
}

fn text_suffix(text: Option<&str>) -> String {
    text.filter(|t| !t.is_empty())
        .map(|t| format!(": {t}"))
        .unwrap_or_default()
}

impl AutonatError {
    /// Fills in the peer of a [`Malformed`](AutonatError::Malformed) error from a decoder.
    pub(crate) fn with_peer(self, from: PeerId) -> AutonatError {
        match self {
            AutonatError::Malformed { peer: None, what } => AutonatError::Malformed {
                peer: Some(from),
                what,
            },
            other => other,
        }
    }
}
