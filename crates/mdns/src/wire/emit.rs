//! [`Message`](super::Message) building under a size limit, with name compression.

use super::{
    HEADER_LEN, Name, QCLASS_UNICAST_RESPONSE, Question, RCLASS_CACHE_FLUSH, RData, Record, Section,
};
use crate::MdnsError;

/// Offsets a compression pointer can reach (14 bits).
const MAX_POINTER_TARGET: usize = 0x3FFF;

/// Builds one packet: the header, then questions, answers, authority and additional records
/// in that order. A question or record that would take the packet over its limit is refused
/// with [`MdnsError::PacketFull`] and leaves the packet as it was, so a caller can start the
/// next packet with it.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    buf: Vec<u8>,
    limit: usize,
    /// Names (and their suffixes) already written: where each starts and its labels, for
    /// compression pointers.
    names: Vec<(u16, Vec<u8>)>,
    counts: [u16; 4],
    /// The section of the last thing written; 0 = questions.
    section: usize,
}

impl MessageWriter {
    /// A packet with this id and flags, at most `limit` bytes long.
    pub fn new(id: u16, flags: u16, limit: usize) -> MessageWriter {
        let mut buf = Vec::with_capacity(limit.min(1500));
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        MessageWriter {
            buf,
            limit,
            names: Vec::new(),
            counts: [0; 4],
            section: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but the header was written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HEADER_LEN
    }

    /// Bytes left under the limit.
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }

    /// Questions and records written so far.
    pub fn entries(&self) -> usize {
        self.counts.iter().map(|&c| usize::from(c)).sum()
    }

    /// Bytes `name` would take if written now (compressed when `compress`).
    pub fn name_len(&self, name: &Name, compress: bool) -> usize {
        let wire = name.wire_labels();
        if compress {
            for (start, _) in label_starts(wire) {
                let suffix = wire.get(start..).unwrap_or_default();
                if self.find(suffix).is_some() {
                    return start.saturating_add(2);
                }
            }
        }
        name.wire_len()
    }

    /// Adds a question.
    pub fn question(&mut self, question: &Question) -> Result<(), MdnsError> {
        self.enter(0)?;
        self.transaction(0, |w| {
            w.write_name(&question.name, true);
            w.buf.extend_from_slice(&question.qtype.to_be_bytes());
            let mut class = question.qclass & !QCLASS_UNICAST_RESPONSE;
            if question.unicast_response {
                class |= QCLASS_UNICAST_RESPONSE;
            }
            w.buf.extend_from_slice(&class.to_be_bytes());
            Ok(())
        })
    }

    /// Adds a record to `section` (sections must come in order).
    pub fn record(&mut self, section: Section, record: &Record) -> Result<(), MdnsError> {
        let index = match section {
            Section::Answer => 1,
            Section::Authority => 2,
            Section::Additional => 3,
        };
        self.enter(index)?;
        self.transaction(index, |w| {
            w.write_name(&record.name, true);
            w.buf.extend_from_slice(&record.data.rtype().to_be_bytes());
            let mut class = record.class & !RCLASS_CACHE_FLUSH;
            if record.cache_flush {
                class |= RCLASS_CACHE_FLUSH;
            }
            w.buf.extend_from_slice(&class.to_be_bytes());
            w.buf.extend_from_slice(&record.ttl.to_be_bytes());
            let len_at = w.buf.len();
            w.buf.extend_from_slice(&[0, 0]);
            let data_at = w.buf.len();
            match &record.data {
                RData::A(ip) => w.buf.extend_from_slice(&ip.octets()),
                RData::Aaaa(ip) => w.buf.extend_from_slice(&ip.octets()),
                RData::Ptr(target) => w.write_name(target, true),
                RData::Txt(strings) => {
                    if strings.is_empty() {
                        // RFC 6763 §6.1: an empty TXT record holds one empty string.
                        w.buf.push(0);
                    }
                    for string in strings {
                        let len = u8::try_from(string.len())
                            .map_err(|_| MdnsError::TxtTooLong { len: string.len() })?;
                        w.buf.push(len);
                        w.buf.extend_from_slice(string);
                    }
                }
                RData::Srv(srv) => {
                    w.buf.extend_from_slice(&srv.priority.to_be_bytes());
                    w.buf.extend_from_slice(&srv.weight.to_be_bytes());
                    w.buf.extend_from_slice(&srv.port.to_be_bytes());
                    // RFC 2782: no compression in the SRV target (decoders may not expect it).
                    w.write_name(&srv.target, false);
                }
                RData::Other { data, .. } => w.buf.extend_from_slice(data),
            }
            let data_len = w.buf.len().saturating_sub(data_at);
            let len = u16::try_from(data_len).map_err(|_| MdnsError::PacketFull {
                len: w.buf.len(),
                limit: w.limit,
            })?;
            if let Some(slot) = w.buf.get_mut(len_at..data_at) {
                slot.copy_from_slice(&len.to_be_bytes());
            }
            Ok(())
        })
    }

    /// The finished packet, with the counts filled in.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, count) in self.counts.iter().enumerate() {
            let at = 4usize.saturating_add(i.saturating_mul(2));
            if let Some(slot) = self.buf.get_mut(at..at.saturating_add(2)) {
                slot.copy_from_slice(&count.to_be_bytes());
            }
        }
        self.buf
    }

    fn enter(&mut self, section: usize) -> Result<(), MdnsError> {
        if section < self.section {
            return Err(MdnsError::BadRecord {
                offset: self.buf.len(),
                reason: "sections written out of order",
            });
        }
        Ok(())
    }

    /// Runs `write`; rolls back if it failed or went over the limit or the count overflowed.
    fn transaction(
        &mut self,
        section: usize,
        write: impl FnOnce(&mut Self) -> Result<(), MdnsError>,
    ) -> Result<(), MdnsError> {
        let len = self.buf.len();
        let names = self.names.len();
        let outcome = write(self).and_then(|()| {
            let (len, limit) = (self.buf.len(), self.limit);
            if len > limit {
                Err(MdnsError::PacketFull { len, limit })
            } else {
                Ok(())
            }
        });
        let counted = outcome.and_then(|()| {
            let slot = self.counts.get_mut(section).ok_or(MdnsError::BadRecord {
                offset: len,
                reason: "no such section",
            })?;
            *slot = slot.checked_add(1).ok_or(MdnsError::PacketFull {
                len: self.buf.len(),
                limit: self.limit,
            })?;
            Ok(())
        });
        match counted {
            Ok(()) => {
                self.section = section;
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(len);
                self.names.truncate(names);
                Err(e)
            }
        }
    }

    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.names
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(suffix))
            .map(|(offset, _)| *offset)
    }

    /// Writes `name`, as a pointer to an earlier copy of its longest known suffix when
    /// `compress`, and remembers where its suffixes start.
    fn write_name(&mut self, name: &Name, compress: bool) {
        let wire = name.wire_labels();
        let base = self.buf.len();
        let mut pointer = None;
        let mut written = wire.len();
        if compress {
            for (start, _) in label_starts(wire) {
                let suffix = wire.get(start..).unwrap_or_default();
                if let Some(offset) = self.find(suffix) {
                    pointer = Some(offset);
                    written = start;
                    break;
                }
            }
        }
        self.buf
            .extend_from_slice(wire.get(..written).unwrap_or_default());
        match pointer {
            Some(offset) => self.buf.extend_from_slice(&(0xC000 | offset).to_be_bytes()),
            None => self.buf.push(0),
        }
        for (start, _) in label_starts(wire) {
            if start >= written {
                break;
            }
            let at = base.saturating_add(start);
            if at <= MAX_POINTER_TARGET
                && let Ok(at) = u16::try_from(at)
            {
                let suffix = wire.get(start..).unwrap_or_default().to_vec();
                self.names.push((at, suffix));
            }
        }
    }
}

/// Offsets of each label in length-prefixed wire labels, with the label length.
fn label_starts(wire: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(pos)?);
        let start = pos;
        pos = pos.saturating_add(1).saturating_add(len);
        Some((start, len))
    })
}
