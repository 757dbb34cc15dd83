//! Limits and the protocol version.

/// The largest multistream-select message we accept or send, in bytes, counting the
/// trailing newline.
///
/// go-multistream refuses any message over 1024 bytes, so a longer protocol id could never
/// be negotiated with a Go peer anyway; matching it keeps a hostile peer from making us
/// buffer more than about 1 KiB per negotiation.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// The largest `ls` reply (the framed list of protocols, one message) we accept or send.
///
/// rust-libp2p reads messages of up to 16383 bytes (a two-byte varint), so a longer list
/// could not be read by it; that is room for hundreds of protocol ids, and the reply is only
/// read by a dialer that asked for it.
pub const MAX_LIST_LEN: usize = 16 * 1024 - 1;

/// The most proposals (and `ls` requests) a listener answers in one negotiation.
///
/// A real dialer offers a handful of protocols (security channels, muxers, a few versions of
/// an application protocol); 32 is far above that, and it stops a peer from keeping a
/// listener busy with endless proposals.
pub const MAX_ROUNDS: usize = 32;

/// The most application bytes a lazy dialer copies behind its header and proposal so that
/// they leave in one write.
///
/// A first request is usually small; a larger first write sends its first 8 KiB this way
/// and the rest straight through, so the copy stays small and bounded.
pub const MAX_COALESCED_LEN: usize = 8 * 1024;

/// Which flavour of multistream-select 1.0.0 a dialer runs.
///
/// Both are the same on the wire; they differ only in when the dialer considers the
/// negotiation done. A listener behaves the same for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Version {
    /// Propose, wait for the listener's answer, fall back on `na`.
    #[default]
    V1,
    /// With exactly one protocol to propose, do not wait: return at once and send the
    /// header and proposal together with the first application data (0-RTT). The remote's
    /// answer is checked on the first read; an `na` then fails that read. With several
    /// protocols this is the same as [`Version::V1`].
    V1Lazy,
}

/// Limits for one negotiation. Every field has a documented default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest message accepted or sent, newline included. Default [`MAX_MESSAGE_LEN`].
    pub max_message_len: usize,
    /// The largest `ls` reply accepted or sent. Default [`MAX_LIST_LEN`].
    pub max_list_len: usize,
    /// The most proposals and `ls` requests a listener answers. Default [`MAX_ROUNDS`].
    pub max_rounds: usize,
    /// The most bytes of a lazy dialer's first write sent together with its header and
    /// proposal. Default [`MAX_COALESCED_LEN`].
    pub max_coalesced_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_len: MAX_MESSAGE_LEN,
            max_list_len: MAX_LIST_LEN,
            max_rounds: MAX_ROUNDS,
            max_coalesced_len: MAX_COALESCED_LEN,
        }
    }
}

impl Config {
    /// Sets [`max_message_len`](Config::max_message_len).
    #[must_use]
    pub fn with_max_message_len(mut self, len: usize) -> Self {
        self.max_message_len = len;
        self
    }

    /// Sets [`max_list_len`](Config::max_list_len).
    #[must_use]
    pub fn with_max_list_len(mut self, len: usize) -> Self {
        self.max_list_len = len;
        self
    }

    /// Sets [`max_rounds`](Config::max_rounds).
    #[must_use]
    pub fn with_max_rounds(mut self, rounds: usize) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// Sets [`max_coalesced_len`](Config::max_coalesced_len).
    #[must_use]
    pub fn with_max_coalesced_len(mut self, len: usize) -> Self {
        self.max_coalesced_len = len;
        self
    }
}
