//! multistream-select 1.0.0 for lp2p: agreeing on a protocol over a fresh byte stream.
//!
//! Every libp2p connection and stream starts with it: the dialer proposes protocol ids one
//! at a time, the listener answers each with its echo (agreed) or `na` (try another). The
//! wire format and the rules are in the
//! [multistream-select spec](https://github.com/multiformats/multistream-select).
//!
//! The crate has two layers:
//!
//! - a sans-IO core: the [`message`] codec and the [`Dialer`], [`Listener`] and
//!   [`ListRequest`] state machines, which take bytes in and give bytes and outcomes out,
//!   with no I/O (unit tests and fuzzing drive them directly);
//! - an async shell over `futures::io`: [`dialer_select`], [`listener_select`] and
//!   [`list_protocols`], which return the agreed protocol and a [`Negotiated`] stream.
//!
//! Both directions of the wire are bounded: messages are at most [`MAX_MESSAGE_LEN`] bytes
//! (as go-multistream), a listener answers at most [`MAX_ROUNDS`] proposals, and every limit
//! can be changed through [`Config`].
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_multiselect::{dialer_select, listener_select, Protocols, Version};
//!
//! # lp2p_core::runtime::block_on(async {
//! let (a, b) = MemoryConnection::pair(1024, "/memory/1".parse()?, "/memory/2".parse()?);
//!
//! let dialer = async {
//!     // Prefers /echo/2.0.0, falls back to /echo/1.0.0.
//!     let (protocol, mut io) = dialer_select(a, ["/echo/2.0.0", "/echo/1.0.0"], Version::V1).await?;
//!     io.write_all(b"hi").await?;
//!     Ok::<_, Box<dyn std::error::Error>>(protocol)
//! };
//! let listener = async {
//!     let supported = Protocols::new().with("/echo/1.0.0");
//!     let (protocol, mut io) = listener_select(b, &supported).await?;
//!     let mut buf = [0u8; 2];
//!     io.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"hi");
//!     Ok::<_, Box<dyn std::error::Error>>(protocol)
//! };
//! let (dialed, listened) = futures::try_join!(dialer, listener)?;
//! assert_eq!(dialed, "/echo/1.0.0");
//! assert_eq!(listened, "/echo/1.0.0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

// The sans-IO cores read network bytes: no indexing or arithmetic that can panic.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

mod buffer;
mod config;
mod dialer;
mod engine;
mod error;
mod listener;
mod matcher;
pub mod message;
mod negotiated;
mod shell;

pub use config::{Config, MAX_COALESCED_LEN, MAX_LIST_LEN, MAX_MESSAGE_LEN, MAX_ROUNDS, Version};
pub use dialer::{Dialer, ListRequest};
pub use error::MultiselectError;
pub use listener::Listener;
pub use matcher::{Matcher, Protocols};
pub use negotiated::Negotiated;
pub use shell::{
    dialer_select, dialer_select_with_config, list_protocols, listener_select,
    listener_select_deferred, listener_select_with_config,
};

/// The protocol id of multistream-select 1.0.0, sent as the header of every negotiation.
pub const PROTOCOL_ID: &str = message::HEADER;
