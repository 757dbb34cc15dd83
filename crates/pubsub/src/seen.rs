//! A set of message ids that forgets each id a fixed time after it was added, with a hard
//! cap on its size (the oldest ids go first when it is full).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::types::MessageId;

/// The seen-message cache.
#[derive(Debug)]
pub(crate) struct SeenCache {
    ttl: Duration,
    max_entries: usize,
    /// Id -> expiry.
    entries: HashMap<MessageId, Instant>,
    /// Ids in insertion order (which is expiry order: one TTL for all).
    order: VecDeque<(Instant, MessageId)>,
}

impl SeenCache {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> SeenCache {
        SeenCache {
            ttl,
            max_entries,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Adds `id`; returns false if it was already there (and not expired).
    pub(crate) fn insert(&mut self, id: MessageId, now: Instant) -> bool {
        self.expire(now);
        if self.entries.contains_key(&id) {
            return false;
        }
        while self.entries.len() >= self.max_entries.max(1) {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let expiry = now.checked_add(self.ttl).unwrap_or(now);
        self.entries.insert(id.clone(), expiry);
        self.order.push_back((expiry, id));
        true
    }

    /// Whether `id` is in the cache and not expired.
    pub(crate) fn contains(&self, id: &MessageId, now: Instant) -> bool {
        self.entries.get(id).is_some_and(|expiry| *expiry > now)
    }

    /// Drops expired ids.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.entries.remove(&id);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::new(vec![n])
    }

    #[test]
    fn forgets_after_ttl() {
        let start = Instant::now();
        let mut cache = SeenCache::new(Duration::from_secs(10), 100);
        assert!(cache.insert(id(1), start));
        assert!(!cache.insert(id(1), start + Duration::from_secs(1)));
        assert!(cache.contains(&id(1), start + Duration::from_secs(9)));
        assert!(!cache.contains(&id(1), start + Duration::from_secs(10)));
        assert!(cache.insert(id(1), start + Duration::from_secs(11)));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bounded() {
        let start = Instant::now();
        let mut cache = SeenCache::new(Duration::from_secs(10), 3);
        for n in 0..10 {
            cache.insert(id(n), start);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.contains(&id(9), start));
        assert!(!cache.contains(&id(0), start));
    }
}
