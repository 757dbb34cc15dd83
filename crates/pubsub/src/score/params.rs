//! Peer-score parameters and thresholds (gossipsub v1.1 "Peer Scoring"). The spec gives no
//! universal defaults: applications tune them. The defaults here are a coherent starting
//! point, documented per field.

// The checks are written as negated comparisons on purpose: they also reject NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::error::PubsubError;
use crate::types::Topic;

/// Score thresholds: what a peer loses as its score falls.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerScoreThresholds {
    /// Below it: no gossip to or from the peer. Must be < 0.
    pub gossip_threshold: f64,
    /// Below it: our own messages are not flood-published to the peer. Must be ≤ the gossip
    /// threshold.
    pub publish_threshold: f64,
    /// Below it: all the peer's RPCs are ignored. Must be < the publish threshold.
    pub graylist_threshold: f64,
    /// PX from a peer is accepted only above it. Must be ≥ 0.
    pub accept_px_threshold: f64,
    /// A median mesh score below it triggers opportunistic grafting. Must be ≥ 0.
    pub opportunistic_graft_threshold: f64,
}

impl Default for PeerScoreThresholds {
    fn default() -> Self {
        PeerScoreThresholds {
            gossip_threshold: -10.0,
            publish_threshold: -50.0,
            graylist_threshold: -80.0,
            accept_px_threshold: 10.0,
            opportunistic_graft_threshold: 20.0,
        }
    }
}

impl PeerScoreThresholds {
    /// Checks the constraints of the spec.
    pub fn validate(&self) -> Result<(), PubsubError> {
        let bad = |what: &str| Err(PubsubError::InvalidConfig(what.to_string()));
        if !(self.gossip_threshold < 0.0) {
            return bad("gossip_threshold must be negative");
        }
        if !(self.publish_threshold <= self.gossip_threshold) {
            return bad("publish_threshold must be at most gossip_threshold");
        }
        if !(self.graylist_threshold < self.publish_threshold) {
            return bad("graylist_threshold must be below publish_threshold");
        }
        if !(self.accept_px_threshold >= 0.0) {
            return bad("accept_px_threshold must be non-negative");
        }
        if !(self.opportunistic_graft_threshold >= 0.0) {
            return bad("opportunistic_graft_threshold must be non-negative");
        }
        Ok(())
    }
}

/// Per-topic score parameters (P₁–P₄). Topics without parameters add nothing to a score.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScoreParams {
    /// The weight of this topic's contribution.
    pub topic_weight: f64,
    /// P₁ weight (small, positive).
    pub time_in_mesh_weight: f64,
    /// P₁ quantum: time in mesh per point.
    pub time_in_mesh_quantum: Duration,
    /// P₁ cap.
    pub time_in_mesh_cap: f64,
    /// P₂ weight (positive).
    pub first_message_deliveries_weight: f64,
    /// P₂ decay factor, in (0, 1).
    pub first_message_deliveries_decay: f64,
    /// P₂ cap, applied when counting.
    pub first_message_deliveries_cap: f64,
    /// P₃ weight (negative; 0 turns P₃ off).
    pub mesh_message_deliveries_weight: f64,
    /// P₃ counter decay factor, in (0, 1).
    pub mesh_message_deliveries_decay: f64,
    /// P₃ counter cap, ≥ the threshold.
    pub mesh_message_deliveries_cap: f64,
    /// P₃ threshold: fewer deliveries than this is a deficit.
    pub mesh_message_deliveries_threshold: f64,
    /// After first delivery, how long a copy still counts as "near-first" for P₃.
    pub mesh_message_deliveries_window: Duration,
    /// Time in the mesh before P₃ applies.
    pub mesh_message_deliveries_activation: Duration,
    /// P₃b weight (negative).
    pub mesh_failure_penalty_weight: f64,
    /// P₃b decay factor, in (0, 1).
    pub mesh_failure_penalty_decay: f64,
    /// P₄ weight (negative).
    pub invalid_message_deliveries_weight: f64,
    /// P₄ decay factor, in (0, 1).
    pub invalid_message_deliveries_decay: f64,
}

impl Default for TopicScoreParams {
    /// Rewards time in the mesh and first deliveries, and penalises invalid messages hard;
    /// P₃ (mesh delivery rate) is off because its threshold depends on the topic's traffic.
    fn default() -> Self {
        TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.01,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 3600.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_decay: 0.5,
            first_message_deliveries_cap: 100.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_message_deliveries_decay: 0.5,
            mesh_message_deliveries_cap: 100.0,
            mesh_message_deliveries_threshold: 20.0,
            mesh_message_deliveries_window: Duration::from_millis(10),
            mesh_message_deliveries_activation: Duration::from_secs(5),
            mesh_failure_penalty_weight: 0.0,
            mesh_failure_penalty_decay: 0.5,
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.3,
        }
    }
}

fn is_decay(x: f64) -> bool {
    x > 0.0 && x < 1.0
}

impl TopicScoreParams {
    /// Checks the constraints of the spec.
    pub fn validate(&self) -> Result<(), PubsubError> {
        let bad = |what: &str| Err(PubsubError::InvalidConfig(what.to_string()));
        if !(self.topic_weight >= 0.0) {
            return bad("topic_weight must be non-negative");
        }
        if !(self.time_in_mesh_weight >= 0.0) || self.time_in_mesh_quantum.is_zero() {
            return bad("time_in_mesh_weight must be non-negative and its quantum positive");
        }
        if !(self.time_in_mesh_cap >= 0.0) {
            return bad("time_in_mesh_cap must be non-negative");
        }
        if !(self.first_message_deliveries_weight >= 0.0)
            || !is_decay(self.first_message_deliveries_decay)
            || !(self.first_message_deliveries_cap >= 0.0)
        {
            return bad("first_message_deliveries: weight ≥ 0, decay in (0, 1), cap ≥ 0");
        }
        if !(self.mesh_message_deliveries_weight <= 0.0)
            || !is_decay(self.mesh_message_deliveries_decay)
            || !(self.mesh_message_deliveries_threshold >= 0.0)
            || !(self.mesh_message_deliveries_cap >= self.mesh_message_deliveries_threshold)
        {
            return bad(
                "mesh_message_deliveries: weight ≤ 0, decay in (0, 1), threshold ≥ 0, cap ≥ threshold",
            );
        }
        if !(self.mesh_failure_penalty_weight <= 0.0) || !is_decay(self.mesh_failure_penalty_decay)
        {
            return bad("mesh_failure_penalty: weight ≤ 0, decay in (0, 1)");
        }
        if !(self.invalid_message_deliveries_weight <= 0.0)
            || !is_decay(self.invalid_message_deliveries_decay)
        {
            return bad("invalid_message_deliveries: weight ≤ 0, decay in (0, 1)");
        }
        Ok(())
    }
}

/// The peer-score parameters: per-topic parameters and the global ones (P₅–P₇, decay,
/// retention).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerScoreParams {
    /// Per-topic parameters.
    pub topics: BTreeMap<Topic, TopicScoreParams>,
    /// Cap on the sum of the topic contributions (0: no cap).
    pub topic_score_cap: f64,
    /// P₅ weight (positive).
    pub app_specific_weight: f64,
    /// P₆ weight (negative).
    pub ip_colocation_factor_weight: f64,
    /// P₆: peers on one IP beyond this many are penalised (≥ 1).
    pub ip_colocation_factor_threshold: f64,
    /// IPs exempt from P₆.
    pub ip_colocation_factor_whitelist: BTreeSet<IpAddr>,
    /// P₇ weight (negative).
    pub behaviour_penalty_weight: f64,
    /// P₇: penalties up to this count are free.
    pub behaviour_penalty_threshold: f64,
    /// P₇ decay factor, in (0, 1).
    pub behaviour_penalty_decay: f64,
    /// How often the counters decay.
    pub decay_interval: Duration,
    /// Counters that decay below this become 0.
    pub decay_to_zero: f64,
    /// How long a disconnected peer's score is kept.
    pub retain_score: Duration,
}

impl Default for PeerScoreParams {
    fn default() -> Self {
        PeerScoreParams {
            topics: BTreeMap::new(),
            topic_score_cap: 3600.0,
            app_specific_weight: 10.0,
            ip_colocation_factor_weight: -5.0,
            ip_colocation_factor_threshold: 10.0,
            ip_colocation_factor_whitelist: BTreeSet::new(),
            behaviour_penalty_weight: -10.0,
            behaviour_penalty_threshold: 0.0,
            behaviour_penalty_decay: 0.2,
            decay_interval: Duration::from_secs(1),
            decay_to_zero: 0.1,
            retain_score: Duration::from_secs(3600),
        }
    }
}

impl PeerScoreParams {
    /// Checks the constraints of the spec.
    pub fn validate(&self) -> Result<(), PubsubError> {
        let bad = |what: &str| Err(PubsubError::InvalidConfig(what.to_string()));
        for (topic, params) in &self.topics {
            params.validate().map_err(|e| {
                PubsubError::InvalidConfig(format!("score parameters of topic {topic}: {e}"))
            })?;
        }
        if !(self.topic_score_cap >= 0.0) {
            return bad("topic_score_cap must be non-negative");
        }
        if !(self.app_specific_weight >= 0.0) {
            return bad("app_specific_weight must be non-negative");
        }
        if !(self.ip_colocation_factor_weight <= 0.0)
            || (self.ip_colocation_factor_weight != 0.0
                && !(self.ip_colocation_factor_threshold >= 1.0))
        {
            return bad("ip_colocation_factor: weight ≤ 0 and threshold ≥ 1");
        }
        if !(self.behaviour_penalty_weight <= 0.0)
            || (self.behaviour_penalty_weight != 0.0 && !is_decay(self.behaviour_penalty_decay))
            || !(self.behaviour_penalty_threshold >= 0.0)
        {
            return bad("behaviour_penalty: weight ≤ 0, decay in (0, 1), threshold ≥ 0");
        }
        if self.decay_interval < Duration::from_millis(1) {
            return bad("decay_interval must be at least 1 ms");
        }
        if !(self.decay_to_zero > 0.0 && self.decay_to_zero < 1.0) {
            return bad("decay_to_zero must be in (0, 1)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PeerScoreThresholds::default().validate().unwrap();
        TopicScoreParams::default().validate().unwrap();
        let mut params = PeerScoreParams::default();
        params
            .topics
            .insert(Topic::new("t"), TopicScoreParams::default());
        params.validate().unwrap();
    }

    #[test]
    fn rejects_bad_values() {
        let t = PeerScoreThresholds {
            gossip_threshold: 1.0,
            ..Default::default()
        };
        assert!(t.validate().is_err());
        let t = PeerScoreThresholds {
            graylist_threshold: -10.0,
            ..Default::default()
        };
        assert!(t.validate().is_err());
        let t = PeerScoreThresholds {
            accept_px_threshold: f64::NAN,
            ..Default::default()
        };
        assert!(t.validate().is_err());
        let p = TopicScoreParams {
            first_message_deliveries_decay: 1.0,
            ..Default::default()
        };
        assert!(p.validate().is_err());
        let p = TopicScoreParams {
            mesh_message_deliveries_cap: 1.0,
            mesh_message_deliveries_threshold: 2.0,
            ..Default::default()
        };
        assert!(p.validate().is_err());
        let mut params = PeerScoreParams {
            decay_to_zero: 0.0,
            ..Default::default()
        };
        assert!(params.validate().is_err());
        params.decay_to_zero = 0.1;
        params.topics.insert(
            Topic::new("t"),
            TopicScoreParams {
                invalid_message_deliveries_weight: 1.0,
                ..Default::default()
            },
        );
        assert!(params.validate().is_err());
    }
}
