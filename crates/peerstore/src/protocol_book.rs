//! One peer's protocols: the protocol book's per-peer half.

use lp2p_core::{PeerId, ProtocolId};

use crate::error::PeerstoreError;

/// One peer's protocols in the order they were first given, without duplicates.
///
/// At most a hundred-odd entries, so a `Vec` with linear search is the cheapest structure
/// and keeps the peer's own order (identify lists protocols in the peer's order).
#[derive(Clone, Debug, Default)]
pub(crate) struct ProtocolBook {
    protocols: Vec<ProtocolId>,
}

/// Checks each protocol id and collects them without duplicates, failing as soon as there
/// are more than `max` distinct ones (so an endless iterator costs at most `max + 1` ids).
fn collect_checked(
    peer: &PeerId,
    protocols: impl IntoIterator<Item = ProtocolId>,
    max: usize,
    max_len: usize,
) -> Result<Vec<ProtocolId>, PeerstoreError> {
    let mut out: Vec<ProtocolId> = Vec::new();
    for protocol in protocols {
        if protocol.is_empty() || protocol.len() > max_len {
            return Err(PeerstoreError::InvalidProtocol {
                peer: Box::new(*peer),
                len: protocol.len(),
                max: max_len,
            });
        }
        if out.contains(&protocol) {
            continue;
        }
        if out.len() >= max {
            return Err(PeerstoreError::TooManyProtocols {
                peer: Box::new(*peer),
                max,
            });
        }
        out.push(protocol);
    }
    Ok(out)
}

impl ProtocolBook {
    /// Replaces the peer's protocols. All or nothing.
    pub(crate) fn set(
        &mut self,
        peer: &PeerId,
        protocols: impl IntoIterator<Item = ProtocolId>,
        max: usize,
        max_len: usize,
    ) -> Result<(), PeerstoreError> {
        self.protocols = collect_checked(peer, protocols, max, max_len)?;
        Ok(())
    }

    /// Adds protocols to the peer's. All or nothing: fails if the union would exceed `max`.
    pub(crate) fn add(
        &mut self,
        peer: &PeerId,
        protocols: impl IntoIterator<Item = ProtocolId>,
        max: usize,
        max_len: usize,
    ) -> Result<(), PeerstoreError> {
        let given = collect_checked(peer, protocols, max, max_len)?;
        let fresh = given.iter().filter(|p| !self.protocols.contains(p)).count();
        if self.protocols.len().saturating_add(fresh) > max {
            return Err(PeerstoreError::TooManyProtocols {
                peer: Box::new(*peer),
                max,
            });
        }
        for protocol in given {
            if !self.protocols.contains(&protocol) {
                self.protocols.push(protocol);
            }
        }
        Ok(())
    }

    /// Removes the given protocols (unknown ones are ignored).
    pub(crate) fn remove<P: AsRef<str>>(&mut self, protocols: &[P]) {
        self.protocols
            .retain(|have| !protocols.iter().any(|p| p.as_ref() == have.as_str()));
    }

    /// The peer's protocols.
    pub(crate) fn list(&self) -> &[ProtocolId] {
        &self.protocols
    }

    /// Whether the peer supports `protocol`.
    fn find(&self, protocol: &str) -> Option<&ProtocolId> {
        self.protocols.iter().find(|have| have.as_str() == protocol)
    }

    /// Those of `wanted` the peer supports, in `wanted`'s order, without duplicates.
    pub(crate) fn supported<P: AsRef<str>>(&self, wanted: &[P]) -> Vec<ProtocolId> {
        let mut out: Vec<ProtocolId> = Vec::new();
        for protocol in wanted {
            if let Some(have) = self.find(protocol.as_ref())
                && !out.contains(have)
            {
                out.push(have.clone());
            }
        }
        out
    }

    /// The first of `wanted` the peer supports.
    pub(crate) fn first_supported<P: AsRef<str>>(&self, wanted: &[P]) -> Option<ProtocolId> {
        wanted
            .iter()
            .find_map(|protocol| self.find(protocol.as_ref()))
            .cloned()
    }

    /// The number of protocols.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.protocols.len()
    }

    /// Whether the peer has no protocols.
    pub(crate) fn is_empty(&self) -> bool {
        self.protocols.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&'static str]) -> Vec<ProtocolId> {
        list.iter().map(|p| ProtocolId::from(*p)).collect()
    }

    #[test]
    fn set_add_remove() {
        let peer = PeerId::random();
        let mut book = ProtocolBook::default();
        book.set(&peer, ids(&["/a", "/b", "/a"]), 8, 64).unwrap();
        assert_eq!(book.list(), ids(&["/a", "/b"]).as_slice());
        book.add(&peer, ids(&["/b", "/c"]), 8, 64).unwrap();
        assert_eq!(book.list(), ids(&["/a", "/b", "/c"]).as_slice());
        book.remove(&["/a", "/zzz"]);
        assert_eq!(book.list(), ids(&["/b", "/c"]).as_slice());
        book.set(&peer, ids(&["/d"]), 8, 64).unwrap();
        assert_eq!(book.list(), ids(&["/d"]).as_slice());
    }

    #[test]
    fn supported_keeps_the_callers_order() {
        let peer = PeerId::random();
        let mut book = ProtocolBook::default();
        book.set(&peer, ids(&["/a", "/b", "/c"]), 8, 64).unwrap();
        assert_eq!(
            book.supported(&["/c", "/x", "/a", "/c"]),
            ids(&["/c", "/a"])
        );
        assert_eq!(book.first_supported(&["/x", "/b", "/a"]).unwrap(), "/b");
        assert_eq!(book.first_supported(&["/x"]), None);
        assert!(book.supported::<&str>(&[]).is_empty());
    }

    #[test]
    fn caps_are_all_or_nothing() {
        let peer = PeerId::random();
        let mut book = ProtocolBook::default();
        book.set(&peer, ids(&["/a", "/b"]), 3, 64).unwrap();
        let err = book.add(&peer, ids(&["/c", "/d"]), 3, 64).unwrap_err();
        assert!(matches!(
            err,
            PeerstoreError::TooManyProtocols { max: 3, .. }
        ));
        assert_eq!(book.list(), ids(&["/a", "/b"]).as_slice());
        // Already-present ones do not count twice.
        book.add(&peer, ids(&["/a", "/b", "/c"]), 3, 64).unwrap();
        assert_eq!(book.len(), 3);
        let err = book.set(&peer, ids(&["/1", "/2", "/3", "/4"]), 3, 64);
        assert!(err.is_err());
        assert_eq!(book.len(), 3);
    }

    #[test]
    fn bad_ids_are_refused() {
        let peer = PeerId::random();
        let mut book = ProtocolBook::default();
        let err = book.add(&peer, ids(&["/ok", ""]), 8, 64).unwrap_err();
        assert!(matches!(
            err,
            PeerstoreError::InvalidProtocol { len: 0, .. }
        ));
        let long = ProtocolId::from("/".repeat(65));
        let err = book.set(&peer, [long], 8, 64).unwrap_err();
        assert!(matches!(
            err,
            PeerstoreError::InvalidProtocol {
                len: 65,
                max: 64,
                ..
            }
        ));
        assert!(book.is_empty());
    }

    #[test]
    fn an_endless_iterator_stops_at_the_cap() {
        let peer = PeerId::random();
        let mut book = ProtocolBook::default();
        let endless = (0u64..).map(|n| ProtocolId::from(format!("/p/{n}")));
        assert!(book.add(&peer, endless, 16, 64).is_err());
        assert!(book.is_empty());
    }
}
