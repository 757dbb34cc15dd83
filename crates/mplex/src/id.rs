//! Stream ids: the one name every layer (wire, core, errors) uses for a stream.

use std::fmt;

/// A stream of one connection: its number and which side opened it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    number: u64,
    opened_locally: bool,
}

impl StreamId {
    /// The stream `number` opened by us (`opened_locally`) or by the remote.
    pub fn new(number: u64, opened_locally: bool) -> StreamId {
        StreamId {
            number,
            opened_locally,
        }
    }

    /// The number on the wire.
    pub fn number(self) -> u64 {
        self.number
    }

    /// Whether we opened the stream (so we send the Initiator flags on it).
    pub fn opened_locally(self) -> bool {
        self.opened_locally
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = if self.opened_locally {
            "local"
        } else {
            "remote"
        };
        write!(f, "{}/{by}", self.number)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
