//! The `/ipfs/id/1.0.0` and `/ipfs/id/push/1.0.0` protocols for lp2p, with signed peer
//! records.
//!
//! [`Identify::new`] attaches the service to a [`Host`](lp2p_host::Host):
//!
//! - **On every new connection** it asks the remote (`/ipfs/id/1.0.0`), and answers the
//!   remote's question with our protocol and agent versions, key, listen addresses, the
//!   remote's address as we see it, our protocols, and a signed peer record.
//! - **What arrives is checked before anything is stored** ([`verify()`]): the public key
//!   must be the peer's (else the whole answer is refused); the signed record must verify,
//!   be signed by that key, describe that peer and not be older than the last one (else it
//!   is ignored and the plain `listenAddrs` are used). Then the peerstore gets the key,
//!   protocols, agent and protocol versions and the addresses, [`Identify::info`] the
//!   latest [`IdentifyInfo`], and identify's own event stream ([`Identify::events`], or
//!   [`subscribe`] before the service starts) an [`IdentifyEvent::Identified`]. Oversized, malformed, truncated or too many messages, or no
//!   answer within [`IdentifyConfig::timeout`], fail the exchange; nothing is stored.
//! - **Push**: when our protocols or addresses change, after a short debounce, our
//!   information goes to every connected peer that supports `/ipfs/id/push/1.0.0`; pushes
//!   received are checked the same way and applied (fields a push leaves out stay as they
//!   were). When the host closes, a change not yet pushed is pushed before the connections
//!   close (a `Host::on_close` hook, within the host's close grace).
//! - **Addresses we advertise**: listen addresses and confirmed external ones; a listener on
//!   `0.0.0.0` or `::` is advertised as one address per interface IP of its family
//!   ([`interfaces`]), never as the unspecified address.
//! - **Observed addresses** ([`observed`]): an address peers see us at is adopted as an
//!   external address (`host.add_external_addr`, which emits
//!   `HostEvent::ExternalAddrConfirmed`) once [`IdentifyConfig::observed_addr_threshold`]
//!   distinct observers on live connections agree.
//!
//! Messages we send stay within 4096 bytes (what rust-libp2p reads; a larger answer is split
//! as go-libp2p does); we read up to 8 KiB per message and 10 messages per stream
//! ([`config`] has every limit with its reason). Signed envelopes and peer records live in
//! [`lp2p_peerstore::record`], shared with pubsub.
//!
//! What an answer or a push brings is reserved, chunk by chunk as it is read, from the
//! host's resource manager in a [`MEMORY_SERVICE`] (`"identify"`) account for the peer,
//! returned when the exchange ends; a refused reservation resets the stream and fails the
//! exchange with [`IdentifyError::OutOfMemory`] (counted in [`IdentifyStats::out_of_memory`]).
//!
//! The sans-IO parts ([`message`], [`verify()`], [`observed`]) own no socket and read no
//! clock; [`Identify`] is the thin async shell around them.
//!
//! # Example
//!
//! ```
//! use futures::StreamExt;
//! use lp2p_host::Host;
//! use lp2p_identify::{Identify, IdentifyConfig, IdentifyEvent};
//! use lp2p_memory::MemoryTransport;
//! use lp2p_plaintext::Plaintext;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let builder = || {
//!     Host::builder()
//!         .transport(MemoryTransport::default())
//!         .security(Plaintext::new())
//!         .muxer(Yamux::default())
//! };
//! let server = builder().listen_on("/memory/0".parse()?).build().await?;
//! let _server_identify = Identify::new(&server, IdentifyConfig::default());
//! let client = builder().build().await?;
//! let identify = Identify::new(&client, IdentifyConfig::default());
//! let mut events = identify.events();
//!
//! client.connect(server.local_peer_id(), server.listen_addrs()).await?;
//! let info = loop {
//!     if let Some(IdentifyEvent::Identified { peer, info }) = events.next().await {
//!         if peer == server.local_peer_id() {
//!             break info;
//!         }
//!     }
//! };
//! assert!(info.agent_version.starts_with("lp2p/"));
//! assert!(info.signed_record);
//! assert_eq!(info.listen_addrs, server.listen_addrs());
//! assert_eq!(identify.info(&server.local_peer_id()), Some(info));
//! assert_eq!(
//!     client.peerstore().agent_version(&server.local_peer_id()).as_deref(),
//!     Some(lp2p_identify::default_agent_version().as_str())
//! );
//!
//! client.close().await;
//! server.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod config;
mod error;
mod events;
pub mod interfaces;
pub mod message;
pub mod observed;
mod pushes;
mod service;
pub mod verify;

/// The protobuf types generated from `proto/identify.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/identify.rs"));
}

pub use config::{
    DEFAULT_OBSERVED_ADDR_THRESHOLD, DEFAULT_PROTOCOL_VERSION, DEFAULT_PUSH_DEBOUNCE,
    DEFAULT_TIMEOUT, IdentifyConfig, MAX_ADVERTISED_ADDRS, MAX_CONCURRENT_PUSHES,
    MAX_EXTERNAL_ADDRS, MAX_INBOUND_PUSHES_PER_PEER, MAX_MESSAGE_LEN, MAX_MESSAGES,
    MAX_OBSERVED_CANDIDATES, MAX_SEND_MESSAGE_LEN, default_agent_version,
};
pub use error::IdentifyError;
pub use events::{IdentifyEvent, IdentifyInfo, subscribe};
pub use lp2p_peerstore::record::{RecordError, RecordFormat};
pub use message::{EncodeReport, IdentifyDecoder, LocalInfo, ReceivedIdentify};
pub use service::{ID_PROTOCOL, Identify, IdentifyStats, MEMORY_SERVICE, PUSH_PROTOCOL};
pub use verify::{
    DEFAULT_VERIFIED_RECORDS, MAX_REMEMBERED_RECORD_LEN, VerifiedIdentify, VerifiedRecords, verify,
    verify_remembering,
};
