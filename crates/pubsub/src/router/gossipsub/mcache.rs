//! The message cache: recent messages in heartbeat windows, for answering IWANT and for the
//! ids advertised in IHAVE.

use std::collections::{HashMap, VecDeque};

use lp2p_core::PeerId;
use smallvec::SmallVec;

use crate::types::{MessageId, RoutedMessage, Topic};

#[derive(Debug)]
struct Entry {
    message: RoutedMessage,
    /// Times the message was sent to each peer in answer to IWANT.
    iwant_counts: SmallVec<[(PeerId, u32); 2]>,
}

/// The message cache (`mcache`): `history` windows, the newest `gossip` of them advertised.
#[derive(Debug)]
pub(crate) struct MessageCache {
    gossip: usize,
    /// Window 0 is the newest.
    windows: VecDeque<Vec<(MessageId, Topic)>>,
    entries: HashMap<MessageId, Entry>,
}

impl MessageCache {
    pub(crate) fn new(history: usize, gossip: usize) -> MessageCache {
        let mut windows = VecDeque::with_capacity(history);
        windows.resize_with(history.max(1), Vec::new);
        MessageCache {
            gossip,
            windows,
            entries: HashMap::new(),
        }
    }

    /// Adds a message to the newest window (once).
    pub(crate) fn put(&mut self, message: &RoutedMessage) {
        if self.entries.contains_key(&message.id) {
            return;
        }
        if let Some(window) = self.windows.front_mut() {
            window.push((message.id.clone(), message.topic.clone()));
        }
        self.entries.insert(
            message.id.clone(),
            Entry {
                message: message.clone(),
                iwant_counts: SmallVec::new(),
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: &MessageId) -> bool {
        self.entries.contains_key(id)
    }

    /// The message for an IWANT from `peer`, and how many times it has now been asked for by
    /// that peer (this request included).
    pub(crate) fn get_for_peer(
        &mut self,
        id: &MessageId,
        peer: PeerId,
    ) -> Option<(&RoutedMessage, u32)> {
        let entry = self.entries.get_mut(id)?;
        let count =
            if let Some((_, count)) = entry.iwant_counts.iter_mut().find(|(p, _)| *p == peer) {
                *count = count.saturating_add(1);
                *count
            } else {
                entry.iwant_counts.push((peer, 1));
                1
            };
        Some((&entry.message, count))
    }

    /// The ids of `topic` in the gossip windows.
    pub(crate) fn gossip_ids(&self, topic: &Topic) -> Vec<MessageId> {
        self.windows
            .iter()
            .take(self.gossip)
            .flatten()
            .filter(|(_, t)| t == topic)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Drops the oldest window and opens a new one.
    pub(crate) fn shift(&mut self) {
        if let Some(oldest) = self.windows.pop_back() {
            for (id, _) in oldest {
                self.entries.remove(&id);
            }
        }
        self.windows.push_front(Vec::new());
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(n: u8, topic: &str) -> RoutedMessage {
        RoutedMessage {
            id: MessageId::new(vec![n]),
            topic: Topic::new(topic),
            author: None,
            propagation_source: None,
            encoded: Bytes::from(vec![n]),
        }
    }

    #[test]
    fn windows_gossip_and_expiry() {
        let mut cache = MessageCache::new(5, 3);
        cache.put(&message(1, "a"));
        cache.put(&message(2, "b"));
        cache.put(&message(1, "a"));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.gossip_ids(&Topic::new("a")),
            vec![MessageId::new(vec![1])]
        );
        for _ in 0..2 {
            cache.shift();
        }
        cache.put(&message(3, "a"));
        assert_eq!(cache.gossip_ids(&Topic::new("a")).len(), 2);
        // Out of the gossip windows but still in history.
        cache.shift();
        assert_eq!(
            cache.gossip_ids(&Topic::new("a")),
            vec![MessageId::new(vec![3])]
        );
        assert!(cache.contains(&MessageId::new(vec![1])));
        // Out of history.
        cache.shift();
        cache.shift();
        assert!(!cache.contains(&MessageId::new(vec![1])));
        assert!(cache.contains(&MessageId::new(vec![3])));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn counts_iwant_per_peer() {
        let mut cache = MessageCache::new(5, 3);
        cache.put(&message(1, "a"));
        let (a, b) = (PeerId::random(), PeerId::random());
        let id = MessageId::new(vec![1]);
        assert_eq!(cache.get_for_peer(&id, a).unwrap().1, 1);
        assert_eq!(cache.get_for_peer(&id, a).unwrap().1, 2);
        assert_eq!(cache.get_for_peer(&id, b).unwrap().1, 1);
        assert!(cache.get_for_peer(&MessageId::new(vec![9]), a).is_none());
    }
}
