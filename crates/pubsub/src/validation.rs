//! Validators and the queue of messages waiting for asynchronous validation.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use lp2p_core::PeerId;

use crate::types::{Acceptance, Message, MessageId, RoutedMessage};

/// A synchronous validator: runs inline when a message arrives (and on our own publishes).
pub type SyncValidator = Box<dyn Fn(&PeerId, &Message) -> Acceptance + Send + Sync>;

/// How a topic's messages are validated.
#[derive(Default)]
pub(crate) struct TopicValidation {
    /// Runs first, inline.
    pub(crate) sync: Option<SyncValidator>,
    /// After the sync validator accepts, ask the owner (an event) and wait for its answer.
    pub(crate) asynchronous: bool,
}

/// A message waiting for its asynchronous validation result.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) routed: RoutedMessage,
    pub(crate) message: Message,
}

/// Messages waiting for asynchronous validation, with their deadlines.
#[derive(Debug, Default)]
pub(crate) struct PendingValidations {
    entries: HashMap<MessageId, (Instant, Pending)>,
    /// Ids in insertion order (deadline order: one timeout for all). Ids already answered
    /// stay until they reach the front or the deque is compacted.
    order: VecDeque<(Instant, MessageId)>,
}

impl PendingValidations {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn insert(&mut self, pending: Pending, now: Instant, timeout: Duration) {
        let deadline = now.checked_add(timeout).unwrap_or(now);
        let id = pending.routed.id.clone();
        self.order.push_back((deadline, id.clone()));
        self.entries.insert(id, (deadline, pending));
        // Keep answered ids from piling up in `order` between deadlines.
        if self.order.len() > self.entries.len().saturating_mul(2).saturating_add(64) {
            let entries = &self.entries;
            self.order.retain(|(_, id)| entries.contains_key(id));
        }
    }

    pub(crate) fn remove(&mut self, id: &MessageId) -> Option<Pending> {
        self.entries.remove(id).map(|(_, pending)| pending)
    }

    /// Takes one message whose deadline has passed.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Pending> {
        while let Some((deadline, _)) = self.order.front() {
            if *deadline > now {
                return None;
            }
            let (_, id) = self.order.pop_front()?;
            if let Some((_, pending)) = self.entries.remove(&id) {
                return Some(pending);
            }
        }
        None
    }

    /// The earliest deadline of a message still waiting.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.order
            .iter()
            .find(|(_, id)| self.entries.contains_key(id))
            .map(|(deadline, _)| *deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Topic;
    use bytes::Bytes;

    fn pending(n: u8) -> Pending {
        let topic = Topic::new("t");
        Pending {
            routed: RoutedMessage {
                id: MessageId::new(vec![n]),
                topic: topic.clone(),
                author: None,
                propagation_source: None,
                encoded: Bytes::new(),
            },
            message: Message {
                source: None,
                data: Bytes::new(),
                sequence_number: None,
                topic,
            },
        }
    }

    #[test]
    fn expire_in_order_and_skip_answered() {
        let start = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut queue = PendingValidations::default();
        queue.insert(pending(1), start, timeout);
        queue.insert(pending(2), start + Duration::from_secs(1), timeout);
        assert_eq!(queue.next_deadline(), Some(start + timeout));
        assert!(queue.remove(&MessageId::new(vec![1])).is_some());
        assert_eq!(queue.next_deadline(), Some(start + Duration::from_secs(6)));
        assert!(queue.pop_expired(start + Duration::from_secs(5)).is_none());
        let expired = queue.pop_expired(start + Duration::from_secs(6)).unwrap();
        assert_eq!(expired.routed.id, MessageId::new(vec![2]));
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.next_deadline(), None);
    }

    #[test]
    fn answered_ids_do_not_pile_up() {
        let start = Instant::now();
        let mut queue = PendingValidations::default();
        for n in 0..=255u8 {
            queue.insert(pending(n), start, Duration::from_secs(5));
            queue.remove(&MessageId::new(vec![n]));
        }
        assert!(queue.order.len() <= 65);
    }
}
