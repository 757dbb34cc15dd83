//! The DNS message format as mDNS uses it (RFC 1035 §4, RFC 6762 §18): parse any packet
//! into a [`Message`] (checked first: no accessor of the result can panic), and build
//! packets under a size limit with [`MessageWriter`].
//!
//! Only what mDNS discovery needs has a typed form (A, AAAA, PTR, TXT, SRV); every other
//! record type is kept as raw bytes. Names are decompressed on parse and compressed on emit.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod emit;
mod name;
mod parse;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use emit::MessageWriter;
pub use name::{Labels, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_POINTER_HOPS, Name};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;

/// Header flag: this message is a response.
pub const FLAG_RESPONSE: u16 = 0x8000;
/// Header flag: authoritative answer (RFC 6762 §18.4: set in every mDNS response).
pub const FLAG_AUTHORITATIVE: u16 = 0x0400;
/// Header flag: truncated (RFC 6762 §18.5: more known answers follow in another packet).
pub const FLAG_TRUNCATED: u16 = 0x0200;
/// Header flag: recursion desired (RFC 1035 §4.1.1: copied from a query into its answer; only
/// a legacy unicast answer, RFC 6762 §6.7, repeats it).
pub const FLAG_RECURSION_DESIRED: u16 = 0x0100;

/// Record type A (IPv4 address).
pub const TYPE_A: u16 = 1;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Record type AAAA (IPv6 address).
pub const TYPE_AAAA: u16 = 28;
/// Record type SRV.
pub const TYPE_SRV: u16 = 33;
/// Question type ANY.
pub const TYPE_ANY: u16 = 255;

/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Class ANY (questions only).
pub const CLASS_ANY: u16 = 255;
/// The top bit of a question's class: the querier prefers a unicast answer (RFC 6762 §5.4).
pub const QCLASS_UNICAST_RESPONSE: u16 = 0x8000;
/// The top bit of a record's class: cache-flush (RFC 6762 §10.2).
pub const RCLASS_CACHE_FLUSH: u16 = 0x8000;

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Query identifier (zero in mDNS multicast messages).
    pub id: u16,
    /// QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// Questions.
    pub questions: u16,
    /// Answer records.
    pub answers: u16,
    /// Authority records.
    pub authorities: u16,
    /// Additional records.
    pub additionals: u16,
}

impl Header {
    /// Whether the QR bit says response.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// The 4-bit OPCODE.
    pub fn opcode(&self) -> u8 {
        // Masked to four bits: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let opcode = ((self.flags >> 11) & 0x0F) as u8;
        opcode
    }

    /// The 4-bit RCODE.
    pub fn rcode(&self) -> u8 {
        #[allow(clippy::cast_possible_truncation)]
        let rcode = (self.flags & 0x0F) as u8;
        rcode
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// The type asked for (or [`TYPE_ANY`]).
    pub qtype: u16,
    /// The class without the unicast-response bit.
    pub qclass: u16,
    /// The unicast-response ("QU") bit.
    pub unicast_response: bool,
}

/// An SRV record's data (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority.
    pub priority: u16,
    /// Weight.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host name.
    pub target: Name,
}

/// A record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A name pointer.
    Ptr(Name),
    /// Character strings, each at most 255 bytes.
    Txt(Vec<Vec<u8>>),
    /// A service location.
    Srv(Srv),
    /// Any other type, raw.
    Other {
        /// The record type.
        rtype: u16,
        /// The record data as received.
        data: Vec<u8>,
    },
}

impl RData {
    /// The record type of this data.
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Ptr(_) => TYPE_PTR,
            RData::Txt(_) => TYPE_TXT,
            RData::Srv(_) => TYPE_SRV,
            RData::Other { rtype, .. } => *rtype,
        }
    }
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name.
    pub name: Name,
    /// The class without the cache-flush bit.
    pub class: u16,
    /// The cache-flush bit.
    pub cache_flush: bool,
    /// Time to live in seconds (0 = goodbye, RFC 6762 §10.1).
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

/// Which part of a message a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Answer records.
    Answer,
    /// Authority records.
    Authority,
    /// Additional records.
    Additional,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The header as received (its counts match the lists below).
    pub header: Header,
    /// Questions.
    pub questions: Vec<Question>,
    /// Answer records.
    pub answers: Vec<Record>,
    /// Authority records.
    pub authorities: Vec<Record>,
    /// Additional records.
    pub additionals: Vec<Record>,
}

impl Message {
    /// Answer and additional records, in that order (where mDNS puts what it announces).
    pub fn answers_and_additionals(&self) -> impl Iterator<Item = &Record> {
        self.answers.iter().chain(self.additionals.iter())
    }
}

#[cfg(test)]
mod tests;
