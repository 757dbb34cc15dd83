use std::borrow::{Borrow, Cow};
use std::fmt;

/// A protocol identifier such as `/noise`, `/yamux/1.0.0` or `/ipfs/ping/1.0.0`.
///
/// Cheap to build from a `&'static str` (no allocation) and from a `String` read off the
/// wire. Equality, ordering and hashing are those of the string, and it borrows as `str`, so
/// maps keyed by `ProtocolId` can be queried with a `&str`.
///
/// ```
/// use lp2p_core::ProtocolId;
/// const PING: ProtocolId = ProtocolId::from_static("/ipfs/ping/1.0.0");
/// assert_eq!(PING, "/ipfs/ping/1.0.0");
/// assert_eq!(ProtocolId::from(String::from("/x/1")).as_str(), "/x/1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolId(Cow<'static, str>);

impl ProtocolId {
    /// A protocol id from a static string, usable in `const` items.
    pub const fn from_static(id: &'static str) -> Self {
        ProtocolId(Cow::Borrowed(id))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the id is the empty string (never a valid protocol).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&'static str> for ProtocolId {
    fn from(id: &'static str) -> Self {
        ProtocolId(Cow::Borrowed(id))
    }
}

impl From<String> for ProtocolId {
    fn from(id: String) -> Self {
        ProtocolId(Cow::Owned(id))
    }
}

impl From<Cow<'static, str>> for ProtocolId {
    fn from(id: Cow<'static, str>) -> Self {
        ProtocolId(id)
    }
}

impl From<&ProtocolId> for ProtocolId {
    fn from(id: &ProtocolId) -> Self {
        id.clone()
    }
}

impl AsRef<str> for ProtocolId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ProtocolId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ProtocolId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ProtocolId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Which side of a connection or stream we are.
///
/// The initiator is the side that dialed the connection (or opened the stream); it proposes
/// in multistream-select, uses odd stream ids in yamux and starts the Noise handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// We dialed the connection or opened the stream.
    Initiator,
    /// We accepted the connection or the stream.
    Responder,
}

impl Role {
    /// Whether this is [`Role::Initiator`].
    pub fn is_initiator(self) -> bool {
        self == Role::Initiator
    }

    /// The role of the other side.
    #[must_use]
    pub fn opposite(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Initiator => "initiator",
            Role::Responder => "responder",
        })
    }
}
