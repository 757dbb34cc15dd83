//! The gossipsub v1.1 peer score: P₁–P₄ per topic, P₅–P₇ global, periodic decay, and the
//! message delivery records that tell first, near-first, duplicate and invalid deliveries
//! apart.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lp2p_core::PeerId;
use smallvec::SmallVec;

use crate::types::{MessageId, Topic};

pub mod params;

pub use params::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};

/// Default cap on the scores kept for disconnected peers. Retention stops a peer from
/// shedding a bad score by reconnecting; the cap stops a stream of throw-away identities
/// from growing the table (past it, the entry that would expire first goes).
pub const DEFAULT_MAX_RETAINED_SCORES: usize = 10_000;

/// A peer's counters in one scored topic.
#[derive(Debug, Clone, Default)]
struct TopicStats {
    /// When the peer was grafted, while it is in our mesh.
    graft_time: Option<Instant>,
    first_message_deliveries: f64,
    mesh_message_deliveries: f64,
    mesh_failure_penalty: f64,
    invalid_message_deliveries: f64,
}

/// Everything scored about one peer.
#[derive(Debug, Clone)]
struct PeerStats {
    connected: bool,
    /// When a disconnected peer's stats are dropped.
    expire: Instant,
    topics: HashMap<Topic, TopicStats>,
    ip: Option<IpAddr>,
    behaviour_penalty: f64,
    application_score: f64,
}

/// What validation concluded about a message, for scoring later copies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeliveryStatus {
    /// Still being validated.
    Unknown,
    /// Valid, validated at this time.
    Valid(Instant),
    Invalid,
    Ignored,
}

#[derive(Debug, Clone)]
struct DeliveryRecord {
    status: DeliveryStatus,
    /// Peers that delivered a copy (other than the first) while it was validated or after.
    peers: SmallVec<[PeerId; 4]>,
}

/// Delivery records by message id, forgotten after a TTL, capped in number.
#[derive(Debug)]
struct DeliveryRecords {
    ttl: Duration,
    max: usize,
    records: HashMap<MessageId, DeliveryRecord>,
    order: VecDeque<(Instant, MessageId)>,
}

impl DeliveryRecords {
    fn get_or_create(&mut self, id: &MessageId, now: Instant) -> &mut DeliveryRecord {
        if !self.records.contains_key(id) {
            while self.records.len() >= self.max.max(1) {
                let Some((_, oldest)) = self.order.pop_front() else {
                    break;
                };
                self.records.remove(&oldest);
            }
            let expiry = now.checked_add(self.ttl).unwrap_or(now);
            self.order.push_back((expiry, id.clone()));
        }
        self.records
            .entry(id.clone())
            .or_insert_with(|| DeliveryRecord {
                status: DeliveryStatus::Unknown,
                peers: SmallVec::new(),
            })
    }

    fn expire(&mut self, now: Instant) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.records.remove(&id);
            }
        }
    }
}

/// The score keeper.
#[derive(Debug)]
pub(crate) struct PeerScore {
    params: PeerScoreParams,
    max_retained: usize,
    peer_stats: HashMap<PeerId, PeerStats>,
    peer_ips: HashMap<IpAddr, HashSet<PeerId>>,
    deliveries: DeliveryRecords,
    next_decay: Option<Instant>,
}

impl PeerScore {
    pub(crate) fn new(params: PeerScoreParams, max_retained: usize) -> PeerScore {
        PeerScore {
            params,
            max_retained,
            peer_stats: HashMap::new(),
            peer_ips: HashMap::new(),
            deliveries: DeliveryRecords {
                ttl: crate::config::DEFAULT_SEEN_TTL,
                max: crate::config::DEFAULT_MAX_SEEN_MESSAGES,
                records: HashMap::new(),
                order: VecDeque::new(),
            },
            next_decay: None,
        }
    }

    /// Keeps delivery records as long as (and as many as) the seen cache keeps ids.
    pub(crate) fn set_delivery_limits(&mut self, ttl: Duration, max: usize) {
        self.deliveries.ttl = ttl;
        self.deliveries.max = max;
    }

    pub(crate) fn start(&mut self, now: Instant) {
        self.next_decay = now.checked_add(self.params.decay_interval);
    }

    pub(crate) fn add_peer(&mut self, peer: PeerId, ip: Option<IpAddr>, now: Instant) {
        let stats = self.peer_stats.entry(peer).or_insert_with(|| PeerStats {
            connected: true,
            expire: now,
            topics: HashMap::new(),
            ip: None,
            behaviour_penalty: 0.0,
            application_score: 0.0,
        });
        stats.connected = true;
        if stats.ip != ip {
            if let Some(old) = stats.ip {
                remove_ip(&mut self.peer_ips, old, &peer);
            }
            stats.ip = ip;
            if let Some(ip) = ip {
                self.peer_ips.entry(ip).or_default().insert(peer);
            }
        }
    }

    pub(crate) fn remove_peer(&mut self, peer: &PeerId, now: Instant) {
        // A positive score is not retained: only non-positive ones, to stop a peer resetting a
        // bad score by reconnecting.
        if self.score(peer, now) > 0.0 {
            self.forget(peer);
            return;
        }
        let Some(stats) = self.peer_stats.get_mut(peer) else {
            return;
        };
        for (topic, ts) in &mut stats.topics {
            ts.first_message_deliveries = 0.0;
            if let Some(tp) = self.params.topics.get(topic)
                && let Some(deficit) = mesh_deficit(ts, tp, now)
            {
                ts.mesh_failure_penalty += deficit * deficit;
            }
            ts.graft_time = None;
        }
        stats.connected = false;
        stats.expire = now.checked_add(self.params.retain_score).unwrap_or(now);
        self.enforce_retention_cap();
    }

    fn enforce_retention_cap(&mut self) {
        let retained = self.peer_stats.values().filter(|s| !s.connected).count();
        if retained <= self.max_retained {
            return;
        }
        let first_to_expire = self
            .peer_stats
            .iter()
            .filter(|(_, s)| !s.connected)
            .min_by_key(|(_, s)| s.expire)
            .map(|(p, _)| *p);
        if let Some(peer) = first_to_expire {
            self.forget(&peer);
        }
    }

    fn forget(&mut self, peer: &PeerId) {
        if let Some(stats) = self.peer_stats.remove(peer)
            && let Some(ip) = stats.ip
        {
            remove_ip(&mut self.peer_ips, ip, peer);
        }
    }

    fn topic_stats(&mut self, peer: &PeerId, topic: &Topic) -> Option<&mut TopicStats> {
        if !self.params.topics.contains_key(topic) {
            return None;
        }
        let stats = self.peer_stats.get_mut(peer)?;
        Some(stats.topics.entry(topic.clone()).or_default())
    }

    pub(crate) fn graft(&mut self, peer: &PeerId, topic: &Topic, now: Instant) {
        if let Some(ts) = self.topic_stats(peer, topic) {
            ts.graft_time = Some(now);
        }
    }

    pub(crate) fn prune(&mut self, peer: &PeerId, topic: &Topic, now: Instant) {
        let Some(tp) = self.params.topics.get(topic).cloned() else {
            return;
        };
        if let Some(ts) = self.topic_stats(peer, topic) {
            // P₃b: pruned with an active delivery deficit.
            if let Some(deficit) = mesh_deficit(ts, &tp, now) {
                ts.mesh_failure_penalty += deficit * deficit;
            }
            ts.graft_time = None;
        }
    }

    /// The first copy of a message entered validation.
    pub(crate) fn validate_message(&mut self, id: &MessageId, now: Instant) {
        self.deliveries.get_or_create(id, now);
    }

    /// A message validated as valid; `from` delivered it first.
    pub(crate) fn deliver_message(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &Topic,
        now: Instant,
    ) {
        let record = self.deliveries.get_or_create(id, now);
        if record.status != DeliveryStatus::Unknown {
            return;
        }
        record.status = DeliveryStatus::Valid(now);
        let near_first = record.peers.clone();
        self.mark_first_delivery(from, topic);
        for peer in near_first.iter().filter(|p| *p != from) {
            self.mark_duplicate_delivery(peer, topic, None, now);
        }
    }

    /// A message failed validation (Reject): `from` and everyone who delivered a copy during
    /// validation get P₄.
    pub(crate) fn reject_message(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &Topic,
        now: Instant,
    ) {
        let record = self.deliveries.get_or_create(id, now);
        if record.status != DeliveryStatus::Unknown {
            return;
        }
        record.status = DeliveryStatus::Invalid;
        let peers = std::mem::take(&mut record.peers);
        self.mark_invalid(from, topic);
        for peer in peers.iter().filter(|p| *p != from) {
            self.mark_invalid(peer, topic);
        }
    }

    /// A message was ignored by validation: no score effect, now or for later copies.
    pub(crate) fn ignore_message(&mut self, id: &MessageId, now: Instant) {
        let record = self.deliveries.get_or_create(id, now);
        if record.status == DeliveryStatus::Unknown {
            record.status = DeliveryStatus::Ignored;
            record.peers.clear();
        }
    }

    /// Another copy of a known message arrived from `peer`.
    pub(crate) fn duplicate_message(
        &mut self,
        peer: &PeerId,
        id: &MessageId,
        topic: &Topic,
        now: Instant,
    ) {
        let record = self.deliveries.get_or_create(id, now);
        if record.peers.contains(peer) {
            return;
        }
        match record.status {
            DeliveryStatus::Unknown => record.peers.push(*peer),
            DeliveryStatus::Valid(validated) => {
                record.peers.push(*peer);
                self.mark_duplicate_delivery(peer, topic, Some(validated), now);
            }
            DeliveryStatus::Invalid => self.mark_invalid(peer, topic),
            DeliveryStatus::Ignored => {}
        }
    }

    /// P₄ for a message that failed the checks before validation (no record kept).
    pub(crate) fn mark_invalid(&mut self, peer: &PeerId, topic: &Topic) {
        if let Some(ts) = self.topic_stats(peer, topic) {
            ts.invalid_message_deliveries += 1.0;
        }
    }

    fn mark_first_delivery(&mut self, peer: &PeerId, topic: &Topic) {
        let Some(tp) = self.params.topics.get(topic).cloned() else {
            return;
        };
        if let Some(ts) = self.topic_stats(peer, topic) {
            ts.first_message_deliveries =
                (ts.first_message_deliveries + 1.0).min(tp.first_message_deliveries_cap);
            if ts.graft_time.is_some() {
                ts.mesh_message_deliveries =
                    (ts.mesh_message_deliveries + 1.0).min(tp.mesh_message_deliveries_cap);
            }
        }
    }

    fn mark_duplicate_delivery(
        &mut self,
        peer: &PeerId,
        topic: &Topic,
        validated: Option<Instant>,
        now: Instant,
    ) {
        let Some(tp) = self.params.topics.get(topic).cloned() else {
            return;
        };
        if let Some(ts) = self.topic_stats(peer, topic)
            && ts.graft_time.is_some()
        {
            // A copy long after validation is not "near-first".
            if let Some(validated) = validated
                && now.saturating_duration_since(validated) > tp.mesh_message_deliveries_window
            {
                return;
            }
            ts.mesh_message_deliveries =
                (ts.mesh_message_deliveries + 1.0).min(tp.mesh_message_deliveries_cap);
        }
    }

    /// Adds behavioural penalties (P₇).
    pub(crate) fn add_penalty(&mut self, peer: &PeerId, count: usize) {
        if let Some(stats) = self.peer_stats.get_mut(peer) {
            #[allow(clippy::cast_precision_loss)]
            let count = count as f64;
            stats.behaviour_penalty += count;
        }
    }

    pub(crate) fn set_application_score(&mut self, peer: &PeerId, score: f64) -> bool {
        match self.peer_stats.get_mut(peer) {
            Some(stats) if score.is_finite() => {
                stats.application_score = score;
                true
            }
            _ => false,
        }
    }

    /// When the counters next decay.
    pub(crate) fn next_decay(&self) -> Option<Instant> {
        self.next_decay
    }

    /// Decays the counters if due; drops retained scores past their time.
    pub(crate) fn refresh(&mut self, now: Instant) {
        let Some(due) = self.next_decay else {
            return;
        };
        if now < due {
            return;
        }
        self.next_decay = now.checked_add(self.params.decay_interval);
        self.deliveries.expire(now);
        let decay_to_zero = self.params.decay_to_zero;
        let decay = |value: &mut f64, factor: f64| {
            *value *= factor;
            if *value < decay_to_zero {
                *value = 0.0;
            }
        };
        let mut expired = Vec::new();
        for (peer, stats) in &mut self.peer_stats {
            if !stats.connected {
                if now >= stats.expire {
                    expired.push(*peer);
                }
                // Retained scores do not decay: the peer is not active.
                continue;
            }
            for (topic, ts) in &mut stats.topics {
                let Some(tp) = self.params.topics.get(topic) else {
                    continue;
                };
                decay(
                    &mut ts.first_message_deliveries,
                    tp.first_message_deliveries_decay,
                );
                decay(
                    &mut ts.mesh_message_deliveries,
                    tp.mesh_message_deliveries_decay,
                );
                decay(&mut ts.mesh_failure_penalty, tp.mesh_failure_penalty_decay);
                decay(
                    &mut ts.invalid_message_deliveries,
                    tp.invalid_message_deliveries_decay,
                );
            }
            decay(
                &mut stats.behaviour_penalty,
                self.params.behaviour_penalty_decay,
            );
        }
        for peer in expired {
            self.forget(&peer);
        }
    }

    /// The score of `peer` (0 for a peer we know nothing about).
    pub(crate) fn score(&self, peer: &PeerId, now: Instant) -> f64 {
        let Some(stats) = self.peer_stats.get(peer) else {
            return 0.0;
        };
        let mut topics_score = 0.0;
        for (topic, ts) in &stats.topics {
            let Some(tp) = self.params.topics.get(topic) else {
                continue;
            };
            let mut score = 0.0;
            // P₁: time in mesh, in whole quanta, capped.
            if let Some(graft_time) = ts.graft_time {
                let in_mesh = now.saturating_duration_since(graft_time).as_secs_f64();
                let p1 = (in_mesh / tp.time_in_mesh_quantum.as_secs_f64())
                    .floor()
                    .min(tp.time_in_mesh_cap);
                score += p1 * tp.time_in_mesh_weight;
            }
            // P₂: first deliveries.
            score += ts.first_message_deliveries * tp.first_message_deliveries_weight;
            // P₃: mesh delivery deficit, squared.
            if let Some(deficit) = mesh_deficit(ts, tp, now) {
                score += deficit * deficit * tp.mesh_message_deliveries_weight;
            }
            // P₃b: sticky mesh failure penalty.
            score += ts.mesh_failure_penalty * tp.mesh_failure_penalty_weight;
            // P₄: invalid messages, squared.
            score += ts.invalid_message_deliveries
                * ts.invalid_message_deliveries
                * tp.invalid_message_deliveries_weight;
            topics_score += score * tp.topic_weight;
        }
        if self.params.topic_score_cap > 0.0 && topics_score > self.params.topic_score_cap {
            topics_score = self.params.topic_score_cap;
        }
        let mut score = topics_score;
        // P₅: application-specific.
        score += stats.application_score * self.params.app_specific_weight;
        // P₆: IP colocation.
        if let Some(ip) = stats.ip
            && !self.params.ip_colocation_factor_whitelist.contains(&ip)
        {
            #[allow(clippy::cast_precision_loss)]
            let peers_on_ip = self.peer_ips.get(&ip).map_or(0, HashSet::len) as f64;
            if peers_on_ip > self.params.ip_colocation_factor_threshold {
                let surplus = peers_on_ip - self.params.ip_colocation_factor_threshold;
                score += surplus * surplus * self.params.ip_colocation_factor_weight;
            }
        }
        // P₇: behaviour penalty, squared beyond the free threshold.
        if stats.behaviour_penalty > self.params.behaviour_penalty_threshold {
            let excess = stats.behaviour_penalty - self.params.behaviour_penalty_threshold;
            score += excess * excess * self.params.behaviour_penalty_weight;
        }
        if score.is_nan() { 0.0 } else { score }
    }

    /// Number of peers with stats (connected and retained).
    #[cfg(test)]
    pub(crate) fn tracked_peers(&self) -> usize {
        self.peer_stats.len()
    }
}

/// The P₃ deficit of a mesh peer whose delivery counting is active, if below the threshold.
fn mesh_deficit(ts: &TopicStats, tp: &TopicScoreParams, now: Instant) -> Option<f64> {
    let graft_time = ts.graft_time?;
    let active = now.saturating_duration_since(graft_time) > tp.mesh_message_deliveries_activation;
    (active && ts.mesh_message_deliveries < tp.mesh_message_deliveries_threshold)
        .then_some(tp.mesh_message_deliveries_threshold - ts.mesh_message_deliveries)
}

fn remove_ip(peer_ips: &mut HashMap<IpAddr, HashSet<PeerId>>, ip: IpAddr, peer: &PeerId) {
    if let Entry::Occupied(mut entry) = peer_ips.entry(ip) {
        entry.get_mut().remove(peer);
        if entry.get().is_empty() {
            entry.remove();
        }
    }
}

#[cfg(test)]
// The expected scores are exact binary fractions.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn topic() -> Topic {
        Topic::new("t")
    }

    /// Parameters where each component can be read off alone.
    fn params(tp: TopicScoreParams) -> PeerScoreParams {
        let mut params = PeerScoreParams {
            app_specific_weight: 1.0,
            ip_colocation_factor_weight: -1.0,
            ip_colocation_factor_threshold: 1.0,
            behaviour_penalty_weight: -1.0,
            behaviour_penalty_decay: 0.5,
            decay_to_zero: 0.01,
            ..Default::default()
        };
        params.topics.insert(topic(), tp);
        params
    }

    fn zero_topic() -> TopicScoreParams {
        TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.0,
            first_message_deliveries_weight: 0.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: 0.0,
            ..Default::default()
        }
    }

    fn id(n: u8) -> MessageId {
        MessageId::new(vec![n])
    }

    fn setup(tp: TopicScoreParams) -> (PeerScore, PeerId, Instant) {
        let now = Instant::now();
        let mut score = PeerScore::new(params(tp), 10);
        score.start(now);
        let peer = PeerId::random();
        score.add_peer(peer, None, now);
        (score, peer, now)
    }

    #[test]
    fn p1_time_in_mesh() {
        let (mut score, peer, now) = setup(TopicScoreParams {
            time_in_mesh_weight: 2.0,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 10.0,
            ..zero_topic()
        });
        score.graft(&peer, &topic(), now);
        assert_eq!(score.score(&peer, now + Duration::from_millis(2500)), 4.0);
        assert_eq!(score.score(&peer, now + Duration::from_secs(100)), 20.0);
        score.prune(&peer, &topic(), now + Duration::from_secs(100));
        assert_eq!(score.score(&peer, now + Duration::from_secs(100)), 0.0);
    }

    #[test]
    fn p2_first_deliveries_capped_and_decayed() {
        let (mut score, peer, now) = setup(TopicScoreParams {
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_cap: 3.0,
            first_message_deliveries_decay: 0.5,
            ..zero_topic()
        });
        for n in 0..5 {
            score.validate_message(&id(n), now);
            score.deliver_message(&peer, &id(n), &topic(), now);
        }
        assert_eq!(score.score(&peer, now), 3.0);
        score.refresh(now + Duration::from_secs(1));
        assert_eq!(score.score(&peer, now), 1.5);
        // Delivering the same message again is not a first delivery.
        score.deliver_message(&peer, &id(0), &topic(), now);
        assert_eq!(score.score(&peer, now), 1.5);
    }

    #[test]
    fn p3_mesh_delivery_deficit_and_p3b_failure_penalty() {
        let activation = Duration::from_secs(5);
        let (mut score, peer, now) = setup(TopicScoreParams {
            mesh_message_deliveries_weight: -1.0,
            mesh_message_deliveries_threshold: 4.0,
            mesh_message_deliveries_cap: 10.0,
            mesh_message_deliveries_activation: activation,
            mesh_message_deliveries_window: Duration::from_millis(10),
            mesh_failure_penalty_weight: -1.0,
            ..zero_topic()
        });
        let other = PeerId::random();
        score.add_peer(other, None, now);
        score.graft(&peer, &topic(), now);
        // Not active yet.
        assert_eq!(score.score(&peer, now + Duration::from_secs(4)), 0.0);
        // Active, no deliveries: deficit 4, squared.
        let later = now + Duration::from_secs(6);
        assert_eq!(score.score(&peer, later), -16.0);
        // One first delivery and one near-first duplicate (during validation).
        score.validate_message(&id(1), later);
        score.duplicate_message(&peer, &id(1), &topic(), later);
        score.deliver_message(&other, &id(1), &topic(), later);
        assert_eq!(score.score(&peer, later), -9.0);
        // A duplicate within the window after validation counts; one after it does not.
        score.validate_message(&id(2), later);
        score.deliver_message(&other, &id(2), &topic(), later);
        score.duplicate_message(&peer, &id(2), &topic(), later + Duration::from_millis(5));
        assert_eq!(score.score(&peer, later), -4.0);
        score.validate_message(&id(3), later);
        score.deliver_message(&other, &id(3), &topic(), later);
        score.duplicate_message(&peer, &id(3), &topic(), later + Duration::from_millis(50));
        assert_eq!(score.score(&peer, later), -4.0);
        // Pruned with a deficit of 2: P₃b = 4, sticky after leaving the mesh.
        score.prune(&peer, &topic(), later);
        assert_eq!(score.score(&peer, later), -4.0);
        score.refresh(later + Duration::from_secs(1));
        assert_eq!(score.score(&peer, later), -2.0);
    }

    #[test]
    fn p4_invalid_messages_squared() {
        let (mut score, peer, now) = setup(TopicScoreParams {
            invalid_message_deliveries_weight: -1.0,
            invalid_message_deliveries_decay: 0.5,
            ..zero_topic()
        });
        let late = PeerId::random();
        score.add_peer(late, None, now);
        score.validate_message(&id(1), now);
        score.reject_message(&peer, &id(1), &topic(), now);
        score.mark_invalid(&peer, &topic());
        score.mark_invalid(&peer, &topic());
        assert_eq!(score.score(&peer, now), -9.0);
        // A later copy of a rejected message counts as invalid for its sender too.
        score.duplicate_message(&late, &id(1), &topic(), now);
        assert_eq!(score.score(&late, now), -1.0);
        score.refresh(now + Duration::from_secs(1));
        assert_eq!(score.score(&peer, now), -2.25);
        // Ignored messages do not count.
        score.validate_message(&id(2), now);
        score.ignore_message(&id(2), now);
        score.duplicate_message(&late, &id(2), &topic(), now);
        assert_eq!(score.score(&late, now), -0.25);
    }

    #[test]
    fn p5_application_score() {
        let (mut score, peer, now) = setup(zero_topic());
        assert!(score.set_application_score(&peer, -7.5));
        assert_eq!(score.score(&peer, now), -7.5);
        assert!(!score.set_application_score(&PeerId::random(), 1.0));
        assert!(!score.set_application_score(&peer, f64::NAN));
    }

    #[test]
    fn p6_ip_colocation() {
        let (mut score, peer, now) = setup(zero_topic());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        score.add_peer(peer, Some(ip), now);
        assert_eq!(score.score(&peer, now), 0.0);
        let others: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for other in &others {
            score.add_peer(*other, Some(ip), now);
        }
        // 4 peers on the IP, threshold 1: surplus 3, squared.
        assert_eq!(score.score(&peer, now), -9.0);
        score.params.ip_colocation_factor_whitelist.insert(ip);
        assert_eq!(score.score(&peer, now), 0.0);
    }

    #[test]
    fn p7_behaviour_penalty() {
        let (mut score, peer, now) = setup(zero_topic());
        score.add_penalty(&peer, 3);
        assert_eq!(score.score(&peer, now), -9.0);
        score.refresh(now + Duration::from_secs(1));
        assert_eq!(score.score(&peer, now), -2.25);
        score.params.behaviour_penalty_threshold = 1.0;
        assert_eq!(score.score(&peer, now), -0.25);
    }

    #[test]
    fn topic_weight_and_cap() {
        let (mut score, peer, now) = setup(TopicScoreParams {
            topic_weight: 0.5,
            first_message_deliveries_weight: 10.0,
            first_message_deliveries_cap: 100.0,
            ..zero_topic()
        });
        score.validate_message(&id(1), now);
        score.deliver_message(&peer, &id(1), &topic(), now);
        assert_eq!(score.score(&peer, now), 5.0);
        score.params.topic_score_cap = 2.0;
        assert_eq!(score.score(&peer, now), 2.0);
        // Unscored topics add nothing.
        score.mark_invalid(&peer, &Topic::new("other"));
        assert_eq!(score.score(&peer, now), 2.0);
    }

    #[test]
    fn retention() {
        let (mut score, peer, now) = setup(TopicScoreParams {
            invalid_message_deliveries_weight: -1.0,
            first_message_deliveries_weight: 1.0,
            ..zero_topic()
        });
        score.mark_invalid(&peer, &topic());
        score.remove_peer(&peer, now);
        // A negative score is retained through a reconnect.
        score.add_peer(peer, None, now);
        assert_eq!(score.score(&peer, now), -1.0);
        // A positive score is not retained.
        let good = PeerId::random();
        score.add_peer(good, None, now);
        score.validate_message(&id(9), now);
        score.deliver_message(&good, &id(9), &topic(), now);
        score.remove_peer(&good, now);
        assert_eq!(score.score(&good, now), 0.0);
        // Retained scores expire after retain_score.
        score.remove_peer(&peer, now);
        let after = now + score.params.retain_score + Duration::from_secs(1);
        score.refresh(after);
        assert_eq!(score.tracked_peers(), 0);
    }

    #[test]
    fn retention_is_capped() {
        let (mut score, _, now) = setup(zero_topic());
        for n in 0..50u64 {
            let peer = PeerId::random();
            score.add_peer(peer, None, now);
            score.remove_peer(&peer, now + Duration::from_secs(n));
        }
        // 10 retained plus the connected one.
        assert_eq!(score.tracked_peers(), 11);
    }
}
