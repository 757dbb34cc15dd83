//! AutoNAT v1 (libp2p/specs `autonat/autonat-v1.md`, `/libp2p/autonat/1.0.0`): the older
//! protocol most deployed peers still serve, as the client's fallback and as a server.
//!
//! - **Client**: [`AutonatClient`](crate::AutonatClient) asks v1 servers (peers that
//!   announced `/libp2p/autonat/1.0.0`, on a direct connection) when no connected peer
//!   serves v2, one candidate address per request; explicit probes go through
//!   [`AutonatClient::probe_v1`](crate::AutonatClient::probe_v1). v1 has no nonce, so a
//!   server's `OK` is taken on its word: only an `OK` naming an address we sent counts as
//!   reachable, only an `E_DIAL_ERROR` as unreachable, and the confidence rule (distinct
//!   servers, shared with v2) decides. Timeouts, refusals and errors never change a status.
//!   [`AutonatEvent::Probed`](crate::AutonatEvent::Probed) says which version was used.
//! - **Server**: [`AutonatV1Server`] dials back only addresses on the IP it sees the client
//!   on (never a third party; loopback and private addresses only with
//!   [`V1ServerConfig::allowing_private_addrs`]), from a new connection, and answers with
//!   the address that connected. It refuses requests over relayed connections and
//!   requests naming another peer, and rate limits in total and per client, with one
//!   request per client at a time ([`V1ServerConfig`]).
//!
//! [`message`] is the codec, [`server::core`] and [`client::core`] the sans-IO decisions.

pub mod client;
pub mod message;
pub mod server;

mod proto;
pub(crate) mod status;

pub use message::{PROTOCOL_V1, V1Status};
pub use server::core::{V1ServerConfig, V1ServerStats};
pub use server::service::AutonatV1Server;
