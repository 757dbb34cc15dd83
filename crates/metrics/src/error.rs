//! The crate's error.

use std::net::SocketAddr;

/// What went wrong with the metrics endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The HTTP listener could not bind its address.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host these metrics belong to was dropped.
    #[error("the host is gone")]
    HostGone,
}
