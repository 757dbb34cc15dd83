//! The /yamux/1.0.0 stream muxer for lp2p.

mod config;
pub mod connection;
mod error;
pub mod frame;
mod id_hash;
mod shell;

pub use config::*;
pub use connection::{Connection, ConnectionStats, Event, StreamStatus};
pub use error::{PROTOCOL_ID, YamuxError};
pub use frame::{Flags, FrameKind, GoAwayCode, HEADER_LEN, Header, StreamId};
pub use shell::{Yamux, YamuxConnection, YamuxStream};
