//! The one error type of this crate.

use crate::config::PROTOCOL_ID;
use crate::id::StreamId;

/// Everything that can go wrong in an mplex connection or stream.
///
/// Variants marked "fatal" end the whole connection; the others concern one stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MplexError {
    /// Fatal: a frame header carried flag 7, which mplex does not define.
    #[error("frame for stream {stream} has unknown flag {flag}")]
    UnknownFlag {
        /// The stream number in the header.
        stream: u64,
        /// The flag value.
        flag: u8,
    },
    /// Fatal: a frame announced a payload over the maximum message size.
    #[error("frame of {len} bytes exceeds the maximum message size of {max} bytes")]
    MessageTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// Fatal: a frame header's varint was longer than 9 bytes or not minimally encoded.
    #[error("invalid varint in frame header: {0}")]
    InvalidVarint(#[source] lp2p_core::Error),
    /// Fatal: the remote opened a stream with a number it already has open.
    #[error("remote opened stream {0} which it already has open")]
    DuplicateStream(u64),
    /// Fatal: the connection ended in the middle of a frame.
    #[error("connection ended in the middle of a frame")]
    TruncatedFrame,
    /// Fatal: the underlying connection failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection is closed (locally, by the remote, or after a fatal error).
    #[error("connection closed")]
    ConnectionClosed,
    /// The stream was reset, by the remote or locally (including when its receive buffer
    /// overflowed).
    #[error("stream {0} was reset")]
    StreamReset(StreamId),
    /// The stream's write side is already closed.
    #[error("stream {0} is closed for writing")]
    WriteClosed(StreamId),
    /// The stream is not known to this connection.
    #[error("unknown stream {0}")]
    UnknownStream(StreamId),
    /// Opening a stream would exceed the configured number of open streams.
    #[error("too many open streams (limit {0})")]
    TooManyStreams(usize),
    /// Every stream number that fits an mplex header has been used.
    #[error("stream numbers exhausted")]
    StreamIdsExhausted,
}

impl From<MplexError> for lp2p_core::Error {
    fn from(err: MplexError) -> Self {
        match err {
            MplexError::ConnectionClosed => lp2p_core::Error::ConnectionClosed,
            other => lp2p_core::Error::Muxer {
                protocol: PROTOCOL_ID,
                source: Box::new(other),
            },
        }
    }
}

impl From<MplexError> for std::io::Error {
    fn from(err: MplexError) -> Self {
        use std::io::ErrorKind;
        let kind = match &err {
            MplexError::StreamReset(_) => ErrorKind::ConnectionReset,
            MplexError::WriteClosed(_) => ErrorKind::BrokenPipe,
            MplexError::ConnectionClosed => ErrorKind::ConnectionAborted,
            MplexError::Io(io) => io.kind(),
            MplexError::UnknownStream(_) => ErrorKind::NotFound,
            _ => ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, err)
    }
}
