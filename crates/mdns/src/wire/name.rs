//! DNS names (RFC 1035 §3.1, §4.1.4): labels on the wire, decompressed on parse.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::MdnsError;

/// The longest name on the wire, length octets and the root's zero included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// The longest label (RFC 1035 §2.3.4): the length octet has six bits.
pub const MAX_LABEL_LEN: usize = 63;

/// Compression pointers followed while reading one name. Every pointer must go further back
/// than the last (so loops are impossible anyway); a real name needs one or two, and a name
/// has at most 127 labels, so anything past this is an attack on the parser's time.
pub const MAX_POINTER_HOPS: usize = 127;

/// A DNS name, kept as its uncompressed wire labels (each a length octet and its bytes,
/// without the root's final zero). Comparison and hashing ignore ASCII case, as DNS does.
#[derive(Clone)]
pub struct Name {
    /// Length-prefixed labels; at most `MAX_NAME_LEN - 1` bytes.
    wire: Vec<u8>,
}

impl Name {
    /// The root name (no labels).
    pub fn root() -> Name {
        Name { wire: Vec::new() }
    }

    /// Parses a dotted name such as `_p2p._udp.local` (a trailing dot is allowed). Labels
    /// must be 1 to 63 bytes long and the whole name at most 255 bytes on the wire; dots
    /// cannot be escaped.
    pub fn new(text: &str) -> Result<Name, MdnsError> {
        let invalid = |reason| MdnsError::InvalidName {
            name: text.to_owned(),
            reason,
        };
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        let mut name = Name::root();
        if trimmed.is_empty() {
            return Ok(name);
        }
        for label in trimmed.split('.') {
            name.push_label(label.as_bytes()).map_err(|_| {
                if label.is_empty() {
                    invalid("empty label")
                } else if label.len() > MAX_LABEL_LEN {
                    invalid("label longer than 63 bytes")
                } else {
                    invalid("name longer than 255 bytes")
                }
            })?;
        }
        Ok(name)
    }

    /// `label` followed by this name, e.g. `peer` + `_p2p._udp.local`.
    pub fn prepend(&self, label: &str) -> Result<Name, MdnsError> {
        let mut name = Name::root();
        name.push_label(label.as_bytes())
            .map_err(|reason| MdnsError::InvalidName {
                name: format!("{label}.{self}"),
                reason,
            })?;
        if name.wire.len().saturating_add(self.wire.len()) >= MAX_NAME_LEN {
            return Err(MdnsError::InvalidName {
                name: format!("{label}.{self}"),
                reason: "name longer than 255 bytes",
            });
        }
        name.wire.extend_from_slice(&self.wire);
        Ok(name)
    }

    /// Appends one label; refuses empty or over-long labels and names.
    fn push_label(&mut self, label: &[u8]) -> Result<(), &'static str> {
        let Ok(len) = u8::try_from(label.len()) else {
            return Err("label longer than 63 bytes");
        };
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("label longer than 63 bytes");
        }
        // + the length octet, + the root's zero.
        let total = self
            .wire
            .len()
            .saturating_add(label.len())
            .saturating_add(2);
        if total > MAX_NAME_LEN {
            return Err("name longer than 255 bytes");
        }
        self.wire.push(len);
        self.wire.extend_from_slice(label);
        Ok(())
    }

    /// The labels, first (leftmost) to last.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// The first (leftmost) label, if any.
    pub fn first_label(&self) -> Option<&[u8]> {
        self.labels().next()
    }

    /// The length-prefixed labels without the final zero.
    pub(crate) fn wire_labels(&self) -> &[u8] {
        &self.wire
    }

    /// Bytes this name takes on the wire without compression (final zero included).
    pub fn wire_len(&self) -> usize {
        self.wire.len().saturating_add(1)
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.wire.is_empty()
    }
}

/// Iterator over a [`Name`]'s labels.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        let label = tail.get(..len)?;
        self.rest = tail.get(len..).unwrap_or_default();
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        // Length octets are at most 63, below 'A' (65): lower-casing the whole wire form
        // touches only the letters of the labels.
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in &self.wire {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &byte in label {
                match byte {
                    b'.' | b'\\' => write!(f, "\\{}", char::from(byte))?,
                    0x21..=0x7e => write!(f, "{}", char::from(byte))?,
                    _ => write!(f, "\\{byte:03}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Reads the name starting at `start` in `packet`, following compression pointers. Returns
/// the name and the offset just after it (after its first pointer, or its final zero).
pub(crate) fn read_name(packet: &[u8], start: usize) -> Result<(Name, usize), MdnsError> {
    let mut name = Name::root();
    let mut pos = start;
    // Every pointer must point before the place the current run of labels started, so each
    // hop strictly lowers this bound: no loops, whatever the packet says.
    let mut bound = start;
    let mut after: Option<usize> = None;
    let mut hops = 0usize;
    loop {
        let Some(&len) = packet.get(pos) else {
            return Err(MdnsError::Truncated { offset: pos });
        };
        match len & 0xC0 {
            0x00 if len == 0 => {
                let end = after.unwrap_or_else(|| pos.saturating_add(1));
                return Ok((name, end));
            }
            0x00 => {
                let from = pos.saturating_add(1);
                let to = from.saturating_add(usize::from(len));
                let Some(label) = packet.get(from..to) else {
                    return Err(MdnsError::Truncated { offset: from });
                };
                name.push_label(label)
                    .map_err(|reason| MdnsError::BadName {
                        offset: pos,
                        reason,
                    })?;
                pos = to;
            }
            0xC0 => {
                let Some(&low) = packet.get(pos.saturating_add(1)) else {
                    return Err(MdnsError::Truncated {
                        offset: pos.saturating_add(1),
                    });
                };
                let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                if target >= bound {
                    return Err(MdnsError::BadName {
                        offset: pos,
                        reason: "compression pointer does not point backwards",
                    });
                }
                hops = hops.saturating_add(1);
                if hops > MAX_POINTER_HOPS {
                    return Err(MdnsError::BadName {
                        offset: pos,
                        reason: "too many compression pointers",
                    });
                }
                if after.is_none() {
                    after = Some(pos.saturating_add(2));
                }
                bound = target;
                pos = target;
            }
            _ => {
                return Err(MdnsError::BadName {
                    offset: pos,
                    reason: "reserved label type",
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let name = Name::new("_p2p._udp.local.").unwrap();
        assert_eq!(name.to_string(), "_p2p._udp.local");
        assert_eq!(name.labels().count(), 3);
        assert_eq!(name.wire_len(), 17);
        assert_eq!(name, Name::new("_P2P._UDP.LOCAL").unwrap());
        assert_eq!(Name::new("").unwrap(), Name::root());
        assert_eq!(Name::root().to_string(), ".");
    }

    #[test]
    fn invalid_names_are_refused() {
        assert!(Name::new("a..b").is_err());
        assert!(Name::new(&"x".repeat(64)).is_err());
        let long = vec!["abcdefg"; 40].join(".");
        assert!(Name::new(&long).is_err());
        let base = Name::new(&vec!["a".repeat(60); 4].join(".")).unwrap();
        assert!(base.prepend(&"x".repeat(20)).is_err());
        assert!(base.prepend(&"x".repeat(9)).is_ok());
        assert!(Name::new("x").unwrap().prepend("").is_err());
    }

    #[test]
    fn read_follows_pointers() {
        // 0: "local" root, 7: "_udp" -> ptr 0, 14: "_p2p" -> ptr 7.
        let mut packet = vec![5];
        packet.extend_from_slice(b"local");
        packet.push(0);
        packet.push(4);
        packet.extend_from_slice(b"_udp");
        packet.extend_from_slice(&[0xC0, 0]);
        packet.push(4);
        packet.extend_from_slice(b"_p2p");
        packet.extend_from_slice(&[0xC0, 7]);
        let (name, next) = read_name(&packet, 14).unwrap();
        assert_eq!(name.to_string(), "_p2p._udp.local");
        assert_eq!(next, packet.len());
    }

    #[test]
    fn read_refuses_loops_and_bad_labels() {
        // A pointer to itself.
        assert!(matches!(
            read_name(&[0xC0, 0], 0),
            Err(MdnsError::BadName { .. })
        ));
        // A label, then a pointer back to that label: a loop through a backward pointer.
        assert!(matches!(
            read_name(&[1, b'a', 0xC0, 0], 0),
            Err(MdnsError::BadName { .. })
        ));
        // Forward pointer.
        assert!(read_name(&[0xC0, 4, 0, 0, 0], 0).is_err());
        // Reserved label types 0x40 and 0x80.
        assert!(read_name(&[0x41, b'a', 0], 0).is_err());
        assert!(read_name(&[0x81, b'a', 0], 0).is_err());
        // Truncated label and missing root.
        assert!(matches!(
            read_name(&[5, b'a'], 0),
            Err(MdnsError::Truncated { .. })
        ));
        assert!(matches!(
            read_name(&[1, b'a'], 0),
            Err(MdnsError::Truncated { .. })
        ));
        assert!(matches!(
            read_name(&[0xC0], 0),
            Err(MdnsError::Truncated { .. })
        ));
    }

    #[test]
    fn read_refuses_names_over_255_bytes() {
        let mut packet = Vec::new();
        for _ in 0..5 {
            packet.push(63);
            packet.extend_from_slice(&[b'a'; 63]);
        }
        packet.push(0);
        assert!(matches!(
            read_name(&packet, 0),
            Err(MdnsError::BadName { .. })
        ));
        // Also when the length is reached through pointers.
        let mut packet = Vec::new();
        for _ in 0..3 {
            packet.push(63);
            packet.extend_from_slice(&[b'a'; 63]);
        }
        packet.push(0);
        let start = packet.len();
        packet.push(63);
        packet.extend_from_slice(&[b'b'; 63]);
        packet.extend_from_slice(&[0xC0, 0]);
        assert!(read_name(&packet, start).is_err());
    }
}
