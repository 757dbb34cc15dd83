//! What a listener accepts: an exact set of protocol ids, a predicate, or anything else that
//! implements [`Matcher`].

use std::fmt;
use std::sync::Arc;

use lp2p_core::ProtocolId;
use smallvec::SmallVec;

/// Decides which proposals a listener accepts and what it lists in answer to `ls`.
pub trait Matcher {
    /// The protocol to agree on when the remote proposes `proposed`, or `None` to answer
    /// `na`. The listener echoes `proposed` itself, so a returned id should equal it.
    fn select(&self, proposed: &str) -> Option<ProtocolId>;

    /// The protocols listed in answer to `ls`, in preference order. Protocols accepted only
    /// by a predicate cannot be enumerated and are not listed. The default lists nothing.
    fn list(&self) -> Vec<ProtocolId> {
        Vec::new()
    }
}

impl<T: Matcher + ?Sized> Matcher for &T {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        (**self).select(proposed)
    }
    fn list(&self) -> Vec<ProtocolId> {
        (**self).list()
    }
}

impl<T: Matcher + ?Sized> Matcher for Arc<T> {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        (**self).select(proposed)
    }
    fn list(&self) -> Vec<ProtocolId> {
        (**self).list()
    }
}

impl Matcher for [ProtocolId] {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        self.iter().find(|id| id.as_str() == proposed).cloned()
    }
    fn list(&self) -> Vec<ProtocolId> {
        self.to_vec()
    }
}

impl Matcher for Vec<ProtocolId> {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        self.as_slice().select(proposed)
    }
    fn list(&self) -> Vec<ProtocolId> {
        self.clone()
    }
}

impl Matcher for [&'static str] {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        self.iter()
            .find(|id| **id == proposed)
            .map(|id| ProtocolId::from_static(id))
    }
    fn list(&self) -> Vec<ProtocolId> {
        self.iter().map(|id| ProtocolId::from_static(id)).collect()
    }
}

impl<const N: usize> Matcher for [&'static str; N] {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        self.as_slice().select(proposed)
    }
    fn list(&self) -> Vec<ProtocolId> {
        self.as_slice().list()
    }
}

/// A predicate over proposed protocol ids.
type Predicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The usual [`Matcher`]: a set of exact protocol ids, listed by `ls` in the order added,
/// plus an optional predicate for families of ids (say, any `/app/1.x`).
///
/// ```
/// use lp2p_multiselect::{Matcher, Protocols};
///
/// let protocols = Protocols::new()
///     .with("/app/2.0.0")
///     .with_predicate(|id| id.starts_with("/app/1."));
/// assert!(protocols.select("/app/2.0.0").is_some());
/// assert!(protocols.select("/app/1.7").is_some());
/// assert!(protocols.select("/app/3.0.0").is_none());
/// assert_eq!(protocols.list(), ["/app/2.0.0"]); // predicates are not listed
/// ```
#[derive(Clone, Default)]
pub struct Protocols {
    exact: SmallVec<[ProtocolId; 4]>,
    predicate: Option<Predicate>,
}

impl Protocols {
    /// An empty set that accepts nothing.
    pub fn new() -> Self {
        Protocols::default()
    }

    /// Adds an exact protocol id.
    #[must_use]
    pub fn with(mut self, id: impl Into<ProtocolId>) -> Self {
        self.push(id);
        self
    }

    /// Adds an exact protocol id (ignored when already present).
    pub fn push(&mut self, id: impl Into<ProtocolId>) {
        let id = id.into();
        if !self.exact.contains(&id) {
            self.exact.push(id);
        }
    }

    /// Also accepts every proposal for which `predicate` returns true (replacing any previous
    /// predicate).
    #[must_use]
    pub fn with_predicate(
        mut self,
        predicate: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// The exact ids, in the order added.
    pub fn exact(&self) -> &[ProtocolId] {
        &self.exact
    }
}

impl Matcher for Protocols {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        if let Some(id) = self.exact.as_slice().select(proposed) {
            return Some(id);
        }
        match &self.predicate {
            Some(predicate) if predicate(proposed) => Some(ProtocolId::from(proposed.to_owned())),
            _ => None,
        }
    }

    fn list(&self) -> Vec<ProtocolId> {
        self.exact.to_vec()
    }
}

impl<P: Into<ProtocolId>> FromIterator<P> for Protocols {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Self {
        let mut protocols = Protocols::new();
        for id in iter {
            protocols.push(id);
        }
        protocols
    }
}

impl<P: Into<ProtocolId>> Extend<P> for Protocols {
    fn extend<I: IntoIterator<Item = P>>(&mut self, iter: I) {
        for id in iter {
            self.push(id);
        }
    }
}

impl fmt::Debug for Protocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protocols")
            .field("exact", &self.exact)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sets_of_every_shape() {
        let arr = ["/a", "/b"];
        assert_eq!(arr.select("/b"), Some(ProtocolId::from("/b")));
        assert_eq!(arr.select("/c"), None);
        assert_eq!(arr.list(), ["/a", "/b"]);
        let slice: &[&str] = &arr;
        assert_eq!(slice.select("/a"), Some(ProtocolId::from("/a")));
        let ids: Vec<ProtocolId> = vec!["/x".into()];
        assert!(ids.select("/x").is_some());
        assert_eq!(Matcher::list(&&ids), ["/x"]);
        let shared = Arc::new(ids);
        assert!(shared.select("/x").is_some());
    }

    #[test]
    fn protocols_dedupe_and_keep_order() {
        let mut p: Protocols = ["/b", "/a", "/b"].into_iter().collect();
        p.extend(["/c"]);
        assert_eq!(p.exact(), ["/b", "/a", "/c"]);
        assert_eq!(p.list(), ["/b", "/a", "/c"]);
        assert!(p.select("/z").is_none());
        assert!(format!("{p:?}").contains("predicate: false"));
    }

    #[test]
    fn predicate_accepts_families() {
        let p = Protocols::new().with_predicate(|id| id.starts_with("/app/1."));
        assert_eq!(p.select("/app/1.2").unwrap(), "/app/1.2");
        assert!(p.select("/app/2.0").is_none());
        assert!(p.list().is_empty());
    }
}
