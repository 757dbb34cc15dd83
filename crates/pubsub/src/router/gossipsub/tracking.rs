//! Small bookkeeping for gossipsub: PRUNE backoffs, IWANT promises, and the per-peer
//! IDONTWANT sets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use lp2p_core::PeerId;

use crate::types::{MessageId, Topic};

/// Backoff expiries per topic and peer: no GRAFT between the two until then.
#[derive(Debug, Default)]
pub(crate) struct Backoffs {
    map: BTreeMap<Topic, HashMap<PeerId, Instant>>,
}

impl Backoffs {
    /// Sets a backoff until `until`, unless a longer one is in place.
    pub(crate) fn add(&mut self, topic: &Topic, peer: PeerId, until: Instant) {
        let entry = self
            .map
            .entry(topic.clone())
            .or_default()
            .entry(peer)
            .or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// The backoff expiry for a topic and peer, if any.
    pub(crate) fn expiry(&self, topic: &Topic, peer: &PeerId) -> Option<Instant> {
        self.map
            .get(topic)
            .and_then(|peers| peers.get(peer))
            .copied()
    }

    /// Whether we should not graft `peer` for `topic`: its backoff, plus `slack`, has not
    /// passed.
    pub(crate) fn blocks_graft(
        &self,
        topic: &Topic,
        peer: &PeerId,
        now: Instant,
        slack: Duration,
    ) -> bool {
        self.expiry(topic, peer)
            .is_some_and(|until| until.checked_add(slack).unwrap_or(until) > now)
    }

    /// Drops backoffs whose expiry plus `slack` has passed.
    pub(crate) fn clear_expired(&mut self, now: Instant, slack: Duration) {
        self.map.retain(|_, peers| {
            peers.retain(|_, until| until.checked_add(slack).unwrap_or(*until) > now);
            !peers.is_empty()
        });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.values().map(HashMap::len).sum()
    }
}

/// IWANT promises: for each IHAVE we answered with IWANT, one of the ids asked for and the
/// time by which some peer must have delivered it.
#[derive(Debug, Default)]
pub(crate) struct Promises {
    by_id: HashMap<MessageId, Vec<(PeerId, Instant)>>,
}

impl Promises {
    pub(crate) fn add(&mut self, id: MessageId, peer: PeerId, deadline: Instant) {
        let promises = self.by_id.entry(id).or_default();
        if !promises.iter().any(|(p, _)| *p == peer) {
            promises.push((peer, deadline));
        }
    }

    /// The message arrived (from anyone): all promises for it are kept.
    pub(crate) fn delivered(&mut self, id: &MessageId) {
        self.by_id.remove(id);
    }

    /// Removes the promises past their deadline and counts them per peer.
    pub(crate) fn take_broken(&mut self, now: Instant) -> BTreeMap<PeerId, usize> {
        let mut broken = BTreeMap::new();
        self.by_id.retain(|_, promises| {
            promises.retain(|(peer, deadline)| {
                if *deadline <= now {
                    let count: &mut usize = broken.entry(*peer).or_default();
                    *count = count.saturating_add(1);
                    false
                } else {
                    true
                }
            });
            !promises.is_empty()
        });
        broken
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_id.values().map(Vec::len).sum()
    }
}

/// What one peer told us it does not want (IDONTWANT), and how much it said this heartbeat.
#[derive(Debug, Default)]
pub(crate) struct DontSend {
    /// Id -> the heartbeat tick it arrived in.
    pub(crate) ids: HashMap<MessageId, u64>,
    pub(crate) messages_this_heartbeat: usize,
    pub(crate) ids_this_heartbeat: usize,
}

impl DontSend {
    /// Starts a new heartbeat: resets the counters and forgets ids older than `retention`
    /// heartbeats.
    pub(crate) fn heartbeat(&mut self, tick: u64, retention: u64) {
        self.messages_this_heartbeat = 0;
        self.ids_this_heartbeat = 0;
        self.ids
            .retain(|_, added| added.saturating_add(retention) > tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_keeps_the_longest_and_clears_with_slack() {
        let now = Instant::now();
        let topic = Topic::new("t");
        let peer = PeerId::random();
        let mut backoffs = Backoffs::default();
        backoffs.add(&topic, peer, now + Duration::from_secs(10));
        backoffs.add(&topic, peer, now + Duration::from_secs(5));
        assert_eq!(
            backoffs.expiry(&topic, &peer),
            Some(now + Duration::from_secs(10))
        );
        let slack = Duration::from_secs(2);
        assert!(backoffs.blocks_graft(&topic, &peer, now + Duration::from_secs(11), slack));
        assert!(!backoffs.blocks_graft(&topic, &peer, now + Duration::from_secs(12), slack));
        backoffs.clear_expired(now + Duration::from_secs(11), slack);
        assert_eq!(backoffs.len(), 1);
        backoffs.clear_expired(now + Duration::from_secs(12), slack);
        assert_eq!(backoffs.len(), 0);
    }

    #[test]
    fn promises_break_or_are_kept() {
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut promises = Promises::default();
        let id = |n: u8| MessageId::new(vec![n]);
        promises.add(id(1), a, now + Duration::from_secs(3));
        promises.add(id(1), a, now + Duration::from_secs(3));
        promises.add(id(1), b, now + Duration::from_secs(3));
        promises.add(id(2), a, now + Duration::from_secs(3));
        assert_eq!(promises.len(), 3);
        promises.delivered(&id(1));
        assert!(
            promises
                .take_broken(now + Duration::from_secs(2))
                .is_empty()
        );
        let broken = promises.take_broken(now + Duration::from_secs(3));
        assert_eq!(broken.get(&a), Some(&1));
        assert_eq!(broken.get(&b), None);
        assert_eq!(promises.len(), 0);
    }

    #[test]
    fn dont_send_retention() {
        let mut dont = DontSend::default();
        dont.ids.insert(MessageId::new(vec![1]), 1);
        dont.ids.insert(MessageId::new(vec![2]), 3);
        dont.messages_this_heartbeat = 5;
        dont.heartbeat(4, 3);
        assert_eq!(dont.messages_this_heartbeat, 0);
        assert_eq!(dont.ids.len(), 1);
    }
}
