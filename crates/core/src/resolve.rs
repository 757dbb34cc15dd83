//! Address resolution before dialing: names (`/dns`, `/dns4`, `/dns6`, `/dnsaddr`) become
//! addresses a transport can dial.

use async_trait::async_trait;
use multiaddr::Multiaddr;

use crate::Error;

/// Turns an address that names a host into the addresses to dial.
///
/// The swarm runs every candidate address of a dial through its resolvers before ranking
/// them: an address the resolver [`can_resolve`](AddressResolver::can_resolve) is replaced
/// by what [`resolve`](AddressResolver::resolve) returns (which may itself need resolving,
/// up to a bounded depth). Implemented by `lp2p-dns`.
#[async_trait]
pub trait AddressResolver: Send + Sync + 'static {
    /// Whether this address needs this resolver (it contains a name it resolves). Cheap, no
    /// I/O.
    fn can_resolve(&self, addr: &Multiaddr) -> bool;

    /// The addresses `addr` stands for, in the order to try them. A trailing
    /// `/p2p/<peer id>` is kept on every result, and results naming another peer are
    /// dropped. Fails with [`Error::Resolve`] saying what went wrong with which name.
    async fn resolve(&self, addr: &Multiaddr) -> Result<Vec<Multiaddr>, Error>;
}
