//! The crate's one error type.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::config::PROTOCOL_ID;
use crate::id::StreamId;

/// Everything that can go wrong on a yamux connection or stream.
///
/// The first group are protocol violations by the remote: the connection answers each with
/// GoAway (protocol error) and closes. The rest are local conditions reported to the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum YamuxError {
    /// A frame header carried a version other than 0.
    #[error("unsupported yamux version {0}")]
    UnsupportedVersion(u8),
    /// A frame header carried a type other than Data, WindowUpdate, Ping or GoAway.
    #[error("unknown yamux frame type {0}")]
    UnknownFrameType(u8),
    /// A session frame (Ping, GoAway) on a stream, or a stream frame on stream 0.
    #[error("{kind} frame on stream {stream}: Ping and GoAway use stream 0, no other frame does")]
    WrongStreamId {
        /// The frame's type, as the spec names it (`Data`, `WindowUpdate`, `Ping`, `GoAway`).
        kind: &'static str,
        /// The stream id it carried.
        stream: StreamId,
    },
    /// A Data frame larger than the receive window we granted.
    #[error("stream {stream}: {len} bytes of data exceed the receive window of {window} bytes")]
    WindowExceeded {
        /// The stream.
        stream: StreamId,
        /// The frame's payload length.
        len: u32,
        /// The window that was left.
        window: u32,
    },
    /// A window update that would take the send window past `u32::MAX`.
    #[error("stream {0}: window update overflows the send window")]
    CreditOverflow(StreamId),
    /// A frame without SYN for a stream id that was never opened.
    #[error("frame for stream {0}, which was never opened")]
    UnknownStream(StreamId),
    /// A SYN for a stream id that is already open.
    #[error("SYN for stream {0}, which is already open")]
    StreamIdReused(StreamId),
    /// A SYN for an id of our parity (or id 0): the remote may only open its own ids.
    #[error("SYN for stream {0}, which is not one of the remote's ids")]
    WrongParity(StreamId),
    /// Data after the remote's FIN on the same stream.
    #[error("stream {0}: data after the remote's FIN")]
    DataAfterFin(StreamId),
    /// The connection ended in the middle of a frame.
    #[error("the connection ended in the middle of a frame")]
    TruncatedFrame,
    /// The remote sent GoAway with an error code (1 protocol error, 2 internal error).
    #[error("the remote closed the connection with GoAway code {0}")]
    RemoteGoAway(u32),
    /// A keep-alive ping was not answered in time.
    #[error("no answer to a keep-alive ping within {0:?}")]
    KeepAliveTimeout(Duration),
    /// The underlying connection failed.
    #[error("I/O error on the underlying connection: {0}")]
    Io(Arc<io::Error>),
    /// The connection is closed (locally, or the remote ended it cleanly).
    #[error("connection closed")]
    ConnectionClosed,
    /// The remote sent GoAway: no new streams may be opened on this connection.
    #[error("the remote sent GoAway: no new streams")]
    GoAwayReceived,
    /// We already opened the maximum number of concurrent streams, or the connection's window
    /// budget has no room for another stream.
    #[error("too many open streams (limit {0})")]
    TooManyStreams(usize),
    /// The connection's memory account (see `lp2p_core::memory`) refused the receive window
    /// a new stream needs; the denial names the scope, its limit and its usage.
    #[error("no memory for a new stream's receive window: {0}")]
    OutOfMemory(lp2p_core::MemoryDenied),
    /// All stream ids of our parity have been used.
    #[error("stream ids exhausted")]
    StreamIdsExhausted,
    /// The stream was reset (by either side).
    #[error("stream {0} was reset")]
    StreamReset(StreamId),
    /// The stream was closed for writing (we sent FIN).
    #[error("stream {0} is closed for writing")]
    WriteClosed(StreamId),
    /// No such stream on this connection (it was dropped or never existed).
    #[error("no stream {0} on this connection")]
    NoSuchStream(StreamId),
}

impl YamuxError {
    /// Whether this error is a protocol violation by the remote (answered with GoAway code 1).
    pub fn is_protocol_violation(&self) -> bool {
        matches!(
            self,
            YamuxError::UnsupportedVersion(_)
                | YamuxError::UnknownFrameType(_)
                | YamuxError::WrongStreamId { .. }
                | YamuxError::WindowExceeded { .. }
                | YamuxError::CreditOverflow(_)
                | YamuxError::UnknownStream(_)
                | YamuxError::StreamIdReused(_)
                | YamuxError::WrongParity(_)
                | YamuxError::DataAfterFin(_)
        )
    }

    /// The `std::io::Error` a stream's `AsyncRead`/`AsyncWrite` reports for this error.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            YamuxError::StreamReset(_) => io::ErrorKind::ConnectionReset,
            YamuxError::WriteClosed(_) => io::ErrorKind::BrokenPipe,
            YamuxError::NoSuchStream(_) => io::ErrorKind::NotConnected,
            YamuxError::KeepAliveTimeout(_) => io::ErrorKind::TimedOut,
            YamuxError::Io(err) => err.kind(),
            _ => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, self)
    }
}

impl From<io::Error> for YamuxError {
    fn from(err: io::Error) -> Self {
        YamuxError::Io(Arc::new(err))
    }
}

impl From<YamuxError> for io::Error {
    fn from(err: YamuxError) -> Self {
        err.into_io()
    }
}

impl From<YamuxError> for lp2p_core::Error {
    fn from(err: YamuxError) -> Self {
        match err {
            YamuxError::ConnectionClosed => lp2p_core::Error::ConnectionClosed,
            other => lp2p_core::Error::Muxer {
                protocol: PROTOCOL_ID,
                source: Box::new(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_into_core_error() {
        assert!(matches!(
            lp2p_core::Error::from(YamuxError::ConnectionClosed),
            lp2p_core::Error::ConnectionClosed
        ));
        match lp2p_core::Error::from(YamuxError::TooManyStreams(3)) {
            lp2p_core::Error::Muxer { protocol, source } => {
                assert_eq!(protocol, "/yamux/1.0.0");
                assert!(matches!(
                    source.downcast_ref::<YamuxError>(),
                    Some(YamuxError::TooManyStreams(3))
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn io_kinds() {
        let id = StreamId::new(1);
        assert_eq!(
            YamuxError::StreamReset(id).into_io().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(
            YamuxError::WriteClosed(id).into_io().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(
            YamuxError::ConnectionClosed.into_io().kind(),
            io::ErrorKind::ConnectionAborted
        );
        assert!(YamuxError::UnknownStream(id).is_protocol_violation());
        assert!(!YamuxError::ConnectionClosed.is_protocol_violation());
    }
}
