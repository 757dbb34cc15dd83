//! Packet -> [`Message`]. Every read is bounds-checked; nothing is allocated from a count the
//! packet announces before the bytes behind it were seen.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::read_name;
use super::{
    HEADER_LEN, Header, Message, QCLASS_UNICAST_RESPONSE, Question, RCLASS_CACHE_FLUSH, RData,
    Record, Srv, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT,
};
use crate::MdnsError;

/// A read position in a packet.
struct Cursor<'a> {
    packet: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], MdnsError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(MdnsError::Truncated { offset: self.pos })?;
        let bytes = self
            .packet
            .get(self.pos..end)
            .ok_or(MdnsError::Truncated { offset: self.pos })?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MdnsError> {
        let offset = self.pos;
        self.bytes(N)?
            .try_into()
            .map_err(|_| MdnsError::Truncated { offset })
    }

    fn u16(&mut self) -> Result<u16, MdnsError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, MdnsError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn name(&mut self) -> Result<super::Name, MdnsError> {
        let (name, next) = read_name(self.packet, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

impl Message {
    /// Parses a packet. At most `max_entries` questions and records in all are accepted
    /// (more is an error before anything is allocated for them); bytes after the last
    /// record are ignored.
    pub fn parse(packet: &[u8], max_entries: usize) -> Result<Message, MdnsError> {
        parse_message(packet, max_entries)
    }
}

fn parse_message(packet: &[u8], max_entries: usize) -> Result<Message, MdnsError> {
    let mut cur = Cursor { packet, pos: 0 };
    if packet.len() < HEADER_LEN {
        return Err(MdnsError::Truncated {
            offset: packet.len(),
        });
    }
    let header = Header {
        id: cur.u16()?,
        flags: cur.u16()?,
        questions: cur.u16()?,
        answers: cur.u16()?,
        authorities: cur.u16()?,
        additionals: cur.u16()?,
    };
    if header.opcode() != 0 || header.rcode() != 0 {
        return Err(MdnsError::Unsupported {
            opcode: header.opcode(),
            rcode: header.rcode(),
        });
    }
    let count = usize::from(header.questions)
        .saturating_add(usize::from(header.answers))
        .saturating_add(usize::from(header.authorities))
        .saturating_add(usize::from(header.additionals));
    if count > max_entries {
        return Err(MdnsError::TooManyRecords {
            count,
            max: max_entries,
        });
    }
    // Every entry takes at least 5 bytes (root name + type + class), so a header announcing
    // more than the packet can hold is caught here, before any list is allocated.
    let room = packet.len().saturating_sub(HEADER_LEN) / 5;
    if count > room {
        return Err(MdnsError::Truncated {
            offset: packet.len(),
        });
    }

    let mut questions = Vec::with_capacity(usize::from(header.questions));
    for _ in 0..header.questions {
        let name = cur.name()?;
        let qtype = cur.u16()?;
        let qclass = cur.u16()?;
        questions.push(Question {
            name,
            qtype,
            qclass: qclass & !QCLASS_UNICAST_RESPONSE,
            unicast_response: qclass & QCLASS_UNICAST_RESPONSE != 0,
        });
    }
    let answers = records(&mut cur, header.answers)?;
    let authorities = records(&mut cur, header.authorities)?;
    let additionals = records(&mut cur, header.additionals)?;
    Ok(Message {
        header,
        questions,
        answers,
        authorities,
        additionals,
    })
}

fn records(cur: &mut Cursor<'_>, count: u16) -> Result<Vec<Record>, MdnsError> {
    let mut out = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        out.push(record(cur)?);
    }
    Ok(out)
}

fn record(cur: &mut Cursor<'_>) -> Result<Record, MdnsError> {
    let name = cur.name()?;
    let rtype = cur.u16()?;
    let class = cur.u16()?;
    let ttl = cur.u32()?;
    let rdlen = usize::from(cur.u16()?);
    let start = cur.pos;
    let rdata = cur.bytes(rdlen)?;
    let end = cur.pos;
    let bad = |reason| MdnsError::BadRecord {
        offset: start,
        reason,
    };
    let data = match rtype {
        TYPE_A => RData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| bad("A record data is not 4 bytes"))?,
        )),
        TYPE_AAAA => RData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| bad("AAAA record data is not 16 bytes"))?,
        )),
        TYPE_PTR => {
            let (target, next) = read_name(cur.packet, start)?;
            if next != end {
                return Err(bad("PTR name does not fill the record data"));
            }
            RData::Ptr(target)
        }
        // RFC 6763 §6.1: empty TXT data (invalid) is read as one empty string, as it is
        // written.
        TYPE_TXT if rdata.is_empty() => RData::Txt(vec![Vec::new()]),
        TYPE_TXT => RData::Txt(txt_strings(rdata).ok_or_else(|| bad("TXT string overruns"))?),
        TYPE_SRV => {
            let mut inner = Cursor {
                packet: cur.packet,
                pos: start,
            };
            let priority = inner.u16()?;
            let weight = inner.u16()?;
            let port = inner.u16()?;
            let target = inner.name()?;
            if inner.pos != end {
                return Err(bad("SRV target does not fill the record data"));
            }
            RData::Srv(Srv {
                priority,
                weight,
                port,
                target,
            })
        }
        other => RData::Other {
            rtype: other,
            data: rdata.to_vec(),
        },
    };
    Ok(Record {
        name,
        class: class & !RCLASS_CACHE_FLUSH,
        cache_flush: class & RCLASS_CACHE_FLUSH != 0,
        ttl,
        data,
    })
}

/// Splits TXT data into its length-prefixed strings; `None` if one overruns the data.
fn txt_strings(mut data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut strings = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len);
        strings.push(rest.get(..len)?.to_vec());
        data = rest.get(len..)?;
    }
    Some(strings)
}
