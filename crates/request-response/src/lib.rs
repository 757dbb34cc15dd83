//! Generic request-response protocols for lp2p.
//!
//! One stream per request, as rust-libp2p's `request_response` does it: the requester opens
//! a stream for the protocol, writes the encoded request and closes its write side; the
//! responder reads the request to the end, writes the encoded response and closes. No
//! framing is added: the stream's end delimits each message, and each side caps what it
//! reads ([`Codec::max_request_size`], [`Codec::max_response_size`]).
//!
//! - [`Codec`]: how messages look on the wire. [`LengthPrefixed`] (byte strings behind a
//!   uvarint length) is always there; `Json` (feature `json`, serde_json) and `Cbor`
//!   (feature `cbor`, cbor4ii's serde encoding) are byte for byte rust-libp2p's
//!   `request_response::json` and `request_response::cbor`.
//! - [`RequestResponse`]: the service on a host. [`RequestResponse::send_request`] returns
//!   the response or a [`RequestError`] that tells apart "message too large", "protocol not
//!   supported", "timeout", "connection closed", "reset" and "remote closed without
//!   answering"; inbound requests arrive on [`RequestResponse::requests`] (or go to a
//!   handler with [`RequestResponse::serve`]).
//!
//! Limits ([`Config`]): every exchange runs under a timeout (10 s); our requests in flight
//! are capped (1024; past that `send_request` waits: back-pressure); a peer's requests held
//! at once are capped (100; past that its streams are reset and counted in [`Stats`]); the
//! queue to the application is bounded (256; when full, reading tasks wait and their
//! requesters' timeouts run). Nothing is dropped silently. A pending request keeps its
//! stream open, and an open stream keeps the connection from idling out.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "json")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> { lp2p_core::runtime::block_on(async {
//! use lp2p_host::Host;
//! use lp2p_request_response::{Config, Json, ProtocolSupport, RequestResponse};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Add { a: u32, b: u32 }
//!
//! async fn host() -> Host {
//!     Host::builder()
//!         .transport(lp2p_memory::MemoryTransport::default())
//!         .security(lp2p_noise::Noise::new())
//!         .muxer(lp2p_yamux::Yamux::default())
//!         .listen_on("/memory/0".parse().unwrap())
//!         .build()
//!         .await
//!         .unwrap()
//! }
//! let (server, client) = (host().await, host().await);
//! let protocols = [("/add/1", ProtocolSupport::Full)];
//! let adder = RequestResponse::new(&server, protocols, Json::<Add, u64>::default(), Config::default())?;
//! adder.serve(|_peer, Add { a, b }| async move { Some(u64::from(a) + u64::from(b)) });
//!
//! let caller = RequestResponse::new(&client, protocols, Json::<Add, u64>::default(), Config::default())?;
//! client.connect(server.local_peer_id(), server.listen_addrs()).await?;
//! let sum = caller.send_request(&server.local_peer_id(), Add { a: 2, b: 40 }).await?;
//! assert_eq!(sum, 42);
//! # client.close().await;
//! # server.close().await;
//! # Ok(())
//! # }) }
//! # #[cfg(not(feature = "json"))]
//! # fn main() {}
//! ```

#[cfg(feature = "cbor")]
mod cbor;
mod codec;
mod config;
mod error;
#[cfg(feature = "json")]
mod json;
mod message;
mod service;
mod slots;

#[cfg(feature = "cbor")]
pub use cbor::Cbor;
pub use codec::{
    Codec, CodecError, DEFAULT_MAX_REQUEST_SIZE, DEFAULT_MAX_RESPONSE_SIZE, LengthPrefixed,
};
pub use config::{
    Config, DEFAULT_INBOUND_QUEUE, DEFAULT_MAX_INBOUND_PER_PEER, DEFAULT_MAX_OUTBOUND_IN_FLIGHT,
    DEFAULT_REQUEST_TIMEOUT, ProtocolSupport,
};
pub use error::RequestError;
#[cfg(feature = "json")]
pub use json::Json;
pub use service::{InboundRequest, InboundRequests, RequestResponse, ResponseChannel, Stats};
