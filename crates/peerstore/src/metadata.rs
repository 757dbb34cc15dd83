//! One peer's free-form metadata, agent and protocol version included.

use lp2p_core::PeerId;

use crate::error::PeerstoreError;

/// The metadata key the agent version is kept under (go-libp2p's key, so the same entry
/// answers `metadata(peer, "AgentVersion")`).
pub const AGENT_VERSION_KEY: &str = "AgentVersion";

/// The metadata key the protocol version is kept under (go-libp2p's key).
pub const PROTOCOL_VERSION_KEY: &str = "ProtocolVersion";

/// One peer's metadata entries with their running size (keys and values summed).
///
/// A few entries per peer, so a `Vec` with linear search.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metadata {
    entries: Vec<(String, Vec<u8>)>,
    bytes: usize,
}

fn entry_size(key: &str, value: &[u8]) -> usize {
    key.len().saturating_add(value.len())
}

impl Metadata {
    /// Stores `value` under `key`, replacing any previous value. All or nothing: fails if a
    /// new key would exceed `max_entries` or the total would exceed `max_bytes`.
    pub(crate) fn put(
        &mut self,
        peer: &PeerId,
        key: &str,
        value: Vec<u8>,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<(), PeerstoreError> {
        let position = self.entries.iter().position(|(k, _)| k == key);
        let replaced = position
            .and_then(|i| self.entries.get(i))
            .map_or(0, |(k, v)| entry_size(k, v));
        if position.is_none() && self.entries.len() >= max_entries {
            return Err(PeerstoreError::TooManyMetadataEntries {
                peer: Box::new(*peer),
                max: max_entries,
            });
        }
        let size = self
            .bytes
            .saturating_sub(replaced)
            .saturating_add(entry_size(key, &value));
        if size > max_bytes {
            return Err(PeerstoreError::MetadataTooLarge {
                peer: Box::new(*peer),
                size,
                max: max_bytes,
            });
        }
        match position.and_then(|i| self.entries.get_mut(i)) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((key.to_owned(), value)),
        }
        self.bytes = size;
        Ok(())
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Removes the value under `key`; returns it.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let (k, v) = self.entries.swap_remove(i);
        self.bytes = self.bytes.saturating_sub(entry_size(&k, &v));
        Some(v)
    }

    /// The value under `key` as UTF-8 text, if it is.
    pub(crate) fn get_text(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    }

    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The running size, keys and values summed.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The size recomputed from scratch (tests: must equal the running size).
    #[cfg(test)]
    pub(crate) fn recount(&self) -> usize {
        self.entries.iter().map(|(k, v)| entry_size(k, v)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_replace_remove() {
        let peer = PeerId::random();
        let mut md = Metadata::default();
        md.put(&peer, "k", b"one".to_vec(), 4, 64).unwrap();
        assert_eq!(md.get("k"), Some(&b"one"[..]));
        assert_eq!(md.bytes(), 4);
        md.put(&peer, "k", b"three".to_vec(), 4, 64).unwrap();
        assert_eq!(md.get("k"), Some(&b"three"[..]));
        assert_eq!((md.len(), md.bytes()), (1, 6));
        assert_eq!(md.remove("k"), Some(b"three".to_vec()));
        assert_eq!(md.remove("k"), None);
        assert!(md.is_empty());
        assert_eq!(md.bytes(), 0);
    }

    #[test]
    fn entry_cap_counts_only_new_keys() {
        let peer = PeerId::random();
        let mut md = Metadata::default();
        md.put(&peer, "a", vec![1], 2, 64).unwrap();
        md.put(&peer, "b", vec![2], 2, 64).unwrap();
        let err = md.put(&peer, "c", vec![3], 2, 64).unwrap_err();
        assert!(matches!(
            err,
            PeerstoreError::TooManyMetadataEntries { max: 2, .. }
        ));
        md.put(&peer, "b", vec![9], 2, 64).unwrap();
        assert_eq!(md.get("c"), None);
        assert_eq!(md.get("b"), Some(&[9u8][..]));
    }

    #[test]
    fn byte_cap_counts_the_replacement() {
        let peer = PeerId::random();
        let mut md = Metadata::default();
        md.put(&peer, "k", vec![0; 9], 4, 10).unwrap();
        // Replacing 10 bytes by 10 bytes fits; by 11 does not, and leaves the old value.
        md.put(&peer, "k", vec![1; 9], 4, 10).unwrap();
        let err = md.put(&peer, "k", vec![2; 10], 4, 10).unwrap_err();
        assert!(matches!(
            err,
            PeerstoreError::MetadataTooLarge {
                size: 11,
                max: 10,
                ..
            }
        ));
        assert_eq!(md.get("k"), Some(&[1u8; 9][..]));
        assert_eq!(md.bytes(), md.recount());
    }

    #[test]
    fn text_requires_utf8() {
        let peer = PeerId::random();
        let mut md = Metadata::default();
        md.put(&peer, AGENT_VERSION_KEY, b"lp2p/0.1".to_vec(), 4, 64)
            .unwrap();
        md.put(&peer, PROTOCOL_VERSION_KEY, vec![0xff, 0xfe], 4, 64)
            .unwrap();
        assert_eq!(md.get_text(AGENT_VERSION_KEY).as_deref(), Some("lp2p/0.1"));
        assert_eq!(md.get_text(PROTOCOL_VERSION_KEY), None);
    }
}
