//! Stream ids: the one name every layer (wire, core, errors) uses for a stream.

use std::fmt;

/// A stream id. Odd ids belong to the client (the dialer), even ids to the server; 0 is the
/// session itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u32);

impl StreamId {
    /// The session id, used by Ping and GoAway.
    pub const SESSION: StreamId = StreamId(0);

    /// A stream id from its number.
    pub const fn new(id: u32) -> StreamId {
        StreamId(id)
    }

    /// The id's number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether this is the session id 0.
    pub const fn is_session(self) -> bool {
        self.0 == 0
    }

    /// Whether the client (dialer) opens this id (odd ids).
    pub const fn is_client(self) -> bool {
        self.0 & 1 == 1
    }

    /// Whether the server (listener) opens this id (even ids other than 0).
    pub const fn is_server(self) -> bool {
        self.0 != 0 && self.0 & 1 == 0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
