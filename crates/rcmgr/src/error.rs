//! The crate's one error type.

use lp2p_core::Resource;

use crate::scope::Scope;

/// A resource manager configuration that cannot work. (Refused reservations are
/// [`lp2p_core::MemoryDenied`], which the muxers report.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RcmgrError {
    /// A limit of zero bytes: nothing could ever be reserved in the scope.
    #[error("the {scope} memory limit is zero: no connection could open a stream")]
    ZeroLimit {
        /// The scope.
        scope: Scope,
    },
    /// A peer's or a connection's limit above the system's: it could never be reached.
    #[error("the {scope} memory limit of {limit} B is above the system limit of {system} B")]
    AboveSystem {
        /// The scope.
        scope: Scope,
        /// Its limit.
        limit: usize,
        /// The system limit.
        system: usize,
    },
    /// A connection count limit of zero: no connection could ever open.
    #[error("the {scope} limit of {resource} is zero: no connection could open")]
    ZeroCount {
        /// The scope.
        scope: Scope,
        /// The resource.
        resource: Resource,
    },
}
