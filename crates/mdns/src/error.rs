//! The crate's one error type.

use std::net::SocketAddr;

/// What went wrong in mDNS: a packet that could not be decoded or built, or a socket,
/// interface or configuration problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MdnsError {
    /// The packet ended inside the header, a name, a question or a record.
    #[error("mDNS packet truncated at byte {offset}")]
    Truncated {
        /// Where the missing bytes should have been.
        offset: usize,
    },
    /// A name in the packet is malformed.
    #[error("bad DNS name at byte {offset}: {reason}")]
    BadName {
        /// Where the name (or the offending label or pointer) is.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record's data does not match its type or its announced length.
    #[error("bad record data at byte {offset}: {reason}")]
    BadRecord {
        /// Where the record data starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The header announces more questions and records than we parse in one packet.
    #[error("mDNS packet announces {count} entries, more than the limit of {max}")]
    TooManyRecords {
        /// Questions plus records announced in the header.
        count: usize,
        /// [`MdnsConfig::max_records_per_packet`](crate::MdnsConfig::max_records_per_packet).
        max: usize,
    },
    /// The packet has a non-zero opcode or response code; RFC 6762 §18.3 and §18.11 say to
    /// ignore it.
    #[error("mDNS packet with opcode {opcode} and response code {rcode} ignored")]
    Unsupported {
        /// The OPCODE field.
        opcode: u8,
        /// The RCODE field.
        rcode: u8,
    },
    /// A name given to us (configuration, label) is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record or question does not fit in the packet being built.
    #[error("the record does not fit in the packet ({len} of {limit} bytes)")]
    PacketFull {
        /// The size the packet would have had.
        len: usize,
        /// The size limit.
        limit: usize,
    },
    /// A TXT string over 255 bytes cannot be encoded.
    #[error("a TXT string of {len} bytes is over the 255-byte limit")]
    TxtTooLong {
        /// Its length.
        len: usize,
    },
    /// A packet from `from` could not be decoded.
    #[error("mDNS packet from {from} dropped: {source}")]
    Packet {
        /// The sender.
        from: SocketAddr,
        /// Why it was dropped.
        #[source]
        source: Box<MdnsError>,
    },
    /// A socket operation on an interface failed.
    #[error("mDNS socket on interface {interface}: {what}: {source}")]
    Socket {
        /// The interface name and address family, e.g. `eth0/ipv4`.
        interface: String,
        /// The operation that failed.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Listing the network interfaces failed.
    #[error("cannot list network interfaces: {0}")]
    Interfaces(#[source] std::io::Error),
    /// The host was closed (or dropped) before the mDNS service could start.
    #[error("the host is closed")]
    HostClosed,
}
