//! Close status codes of RFC 6455 section 7.4.1 that we send.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The endpoint saw a protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The endpoint received a type of data it cannot accept (a text frame).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A message too big to process.
pub const TOO_BIG: u16 = 1009;
