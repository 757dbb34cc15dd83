//! The crate's error type.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Method;

/// What went wrong while talking to a gateway, and with which one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpnpError {
    /// Bytes from the gateway did not decode (a NAT-PMP or PCP datagram, an SSDP answer, an
    /// HTTP response, a description or SOAP document).
    #[error("malformed {what}: {why}")]
    Malformed {
        /// Which kind of message.
        what: &'static str,
        /// What was wrong with it.
        why: String,
    },
    /// A message, header block or body was larger than its limit.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// Which kind of message.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The gateway answered with an error (a NAT-PMP or PCP result code, a SOAP fault or an
    /// HTTP error status).
    #[error("{method} gateway {gateway} refused: {reason}")]
    Refused {
        /// The method used.
        method: Method,
        /// The gateway.
        gateway: SocketAddr,
        /// The result code or fault, in words.
        reason: String,
    },
    /// The gateway did not answer in time.
    #[error("{method} gateway {gateway} did not answer within {after:?}")]
    Timeout {
        /// The method used.
        method: Method,
        /// The gateway.
        gateway: SocketAddr,
        /// How long we waited.
        after: Duration,
    },
    /// No gateway to ask: no default route (NAT-PMP, PCP) or no SSDP answer (UPnP).
    #[error("no {method} gateway: {why}")]
    NoGateway {
        /// The method.
        method: Method,
        /// Why none was found.
        why: String,
    },
    /// A socket operation failed.
    #[error("{method} I/O with {gateway}: {source}")]
    Io {
        /// The method used.
        method: Method,
        /// The gateway (or the address we tried to reach).
        gateway: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The host is closed (or closing): no new mappings.
    #[error("host closed")]
    HostClosed,
}

impl UpnpError {
    pub(crate) fn malformed(what: &'static str, why: impl Into<String>) -> UpnpError {
        UpnpError::Malformed {
            what,
            why: why.into(),
        }
    }
}
