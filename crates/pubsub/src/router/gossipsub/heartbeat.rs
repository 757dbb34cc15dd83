//! The heartbeat: penalties for broken promises, mesh maintenance (score-aware, with the
//! outbound quota and opportunistic grafting), fanout maintenance, gossip emission, and the
//! message-cache shift.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use lp2p_core::PeerId;
use rand::seq::SliceRandom;
use tracing::{debug, warn};

use super::{GossipsubRouter, select_peers};
use crate::context::RouterContext;
use crate::event::Event;
use crate::proto;
use crate::types::{Direction, PeerKind, Topic};

/// GRAFTs and PRUNEs decided during a heartbeat, sent at its end.
#[derive(Default)]
struct Decisions {
    graft: Vec<(PeerId, Topic)>,
    /// Peer, topic, and whether peer exchange may be offered.
    prune: Vec<(PeerId, Topic, bool)>,
}

impl GossipsubRouter {
    pub(super) fn heartbeat(&mut self, ctx: &mut RouterContext<'_>) {
        let now = ctx.now();
        self.heartbeat_ticks = self.heartbeat_ticks.saturating_add(1);
        let tick = self.heartbeat_ticks;

        self.peer_have.clear();
        self.iasked.clear();
        self.iwant_replied.clear();
        let retention = self.config.idontwant_retention_heartbeats;
        self.dont_send.retain(|_, dont_send| {
            dont_send.heartbeat(tick, retention);
            !dont_send.ids.is_empty()
        });

        // Broken IWANT promises: P₇ for each.
        for (peer, broken) in self.promises.take_broken(now) {
            debug!(%peer, broken, "gossipsub: broken IWANT promises penalised");
            let counters = ctx.counters_mut();
            counters.broken_promises = counters.broken_promises.saturating_add(broken as u64);
            if let Some(score) = &mut self.score {
                score.add_penalty(&peer, broken);
            }
        }

        self.backoff.clear_expired(now, self.backoff_slack());

        if tick == 1 || tick.is_multiple_of(self.config.explicit_peer_ticks) {
            for peer in &self.config.explicit_peers {
                if !ctx.is_connected(peer) {
                    ctx.emit(Event::ConnectExplicitPeer { peer: *peer });
                }
            }
        }

        // Scores once per heartbeat.
        let scores: HashMap<PeerId, f64> =
            ctx.peers().map(|p| (p, self.score_of(&p, now))).collect();
        let score = |p: &PeerId| scores.get(p).copied().unwrap_or(0.0);
        for (peer, s) in &scores {
            if *s < self.thresholds.graylist_threshold && !self.is_explicit(peer) {
                if self.graylisted.insert(*peer) {
                    warn!(%peer, score = *s, "gossipsub: peer graylisted, ignoring its RPCs");
                    ctx.emit(Event::Graylisted {
                        peer: *peer,
                        score: *s,
                    });
                }
            } else {
                self.graylisted.remove(peer);
            }
        }

        let mut decisions = Decisions::default();
        let topics: Vec<Topic> = self.mesh.keys().cloned().collect();
        for topic in topics {
            let mut mesh = self.mesh.remove(&topic).unwrap_or_default();
            self.maintain_mesh(ctx, &topic, &mut mesh, &score, &mut decisions);
            self.emit_gossip(ctx, &topic, &mesh, &score);
            self.mesh.insert(topic, mesh);
        }

        // Fanout: forget topics we stopped publishing to; keep the rest topped up.
        let ttl = self.config.fanout_ttl;
        let expired: Vec<Topic> = self
            .fanout_last_pub
            .iter()
            .filter(|(_, last)| last.checked_add(ttl).is_none_or(|end| end < now))
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in expired {
            self.fanout.remove(&topic);
            self.fanout_last_pub.remove(&topic);
        }
        let topics: Vec<Topic> = self.fanout.keys().cloned().collect();
        for topic in topics {
            let mut fanout = self.fanout.remove(&topic).unwrap_or_default();
            let publish_threshold = self.thresholds.publish_threshold;
            fanout.retain(|p| ctx.is_peer_subscribed(p, &topic) && score(p) >= publish_threshold);
            if fanout.len() < self.config.mesh_n {
                let need = self.config.mesh_n.saturating_sub(fanout.len());
                let explicit = &self.config.explicit_peers;
                let more = select_peers(ctx, &topic, need, |_, p| {
                    !fanout.contains(p) && !explicit.contains(p) && score(p) >= publish_threshold
                });
                fanout.extend(more);
            }
            self.emit_gossip(ctx, &topic, &fanout, &score);
            self.fanout.insert(topic, fanout);
        }

        for (peer, topic) in decisions.graft {
            ctx.send_graft(peer, &topic);
        }
        for (peer, topic, do_px) in decisions.prune {
            let prune = self.make_prune(ctx, peer, &topic, do_px, false);
            ctx.send_prune(peer, prune);
        }

        self.mcache.shift();
    }

    fn maintain_mesh(
        &mut self,
        ctx: &mut RouterContext<'_>,
        topic: &Topic,
        mesh: &mut BTreeSet<PeerId>,
        score: &impl Fn(&PeerId) -> f64,
        decisions: &mut Decisions,
    ) {
        let now = ctx.now();
        let d = self.config.mesh_n;
        let prune_backoff = self.config.prune_backoff;

        // Negative scores leave the mesh, without PX.
        let negative: Vec<PeerId> = mesh.iter().copied().filter(|p| score(p) < 0.0).collect();
        for peer in negative {
            mesh.remove(&peer);
            self.on_pruned(ctx, topic, peer);
            self.add_backoff(topic, peer, now, prune_backoff);
            decisions.prune.push((peer, topic.clone(), false));
        }

        // Too few: graft random non-negative peers not in backoff.
        if mesh.len() < self.config.mesh_n_low {
            let need = d.saturating_sub(mesh.len());
            let picked = select_peers(ctx, topic, need, |view, p| {
                !mesh.contains(p) && self.graftable(view, topic, p) && score(p) >= 0.0
            });
            for peer in picked {
                mesh.insert(peer);
                self.on_grafted(ctx, topic, peer);
                decisions.graft.push((peer, topic.clone()));
            }
        }

        // Too many: keep the D_score best, the rest of D at random, at least D_out outbound.
        if mesh.len() > self.config.mesh_n_high {
            let keep = self.select_survivors(ctx, mesh, score);
            let excess: Vec<PeerId> = mesh.iter().copied().filter(|p| !keep.contains(p)).collect();
            debug_assert_eq!(keep.len(), d);
            for peer in excess {
                mesh.remove(&peer);
                self.on_pruned(ctx, topic, peer);
                self.add_backoff(topic, peer, now, prune_backoff);
                decisions.prune.push((peer, topic.clone(), true));
            }
        }

        // Enough peers but too few outbound ones: graft outbound peers.
        if mesh.len() >= self.config.mesh_n_low {
            let outbound = mesh
                .iter()
                .filter(|p| ctx.peer_direction(p) == Some(Direction::Outbound))
                .count();
            if outbound < self.config.mesh_outbound_min {
                let need = self.config.mesh_outbound_min.saturating_sub(outbound);
                let picked = select_peers(ctx, topic, need, |view, p| {
                    !mesh.contains(p)
                        && view.peer_direction(p) == Some(Direction::Outbound)
                        && self.graftable(view, topic, p)
                        && score(p) >= 0.0
                });
                for peer in picked {
                    mesh.insert(peer);
                    self.on_grafted(ctx, topic, peer);
                    decisions.graft.push((peer, topic.clone()));
                }
            }
        }

        // Opportunistic grafting: a poor median brings in better-scoring peers.
        if self
            .heartbeat_ticks
            .is_multiple_of(self.config.opportunistic_graft_ticks)
            && mesh.len() > 1
        {
            let mut scores: Vec<f64> = mesh.iter().map(score).collect();
            scores.sort_by(f64::total_cmp);
            let median = scores.get(scores.len() / 2).copied().unwrap_or(0.0);
            if median < self.thresholds.opportunistic_graft_threshold {
                let picked = select_peers(
                    ctx,
                    topic,
                    self.config.opportunistic_graft_peers,
                    |view, p| {
                        !mesh.contains(p) && self.graftable(view, topic, p) && score(p) > median
                    },
                );
                for peer in picked {
                    debug!(%peer, %topic, median, "gossipsub: opportunistic graft");
                    mesh.insert(peer);
                    self.on_grafted(ctx, topic, peer);
                    decisions.graft.push((peer, topic.clone()));
                }
            }
        }
    }

    /// The `D` peers an oversubscribed mesh keeps.
    fn select_survivors(
        &self,
        ctx: &mut RouterContext<'_>,
        mesh: &BTreeSet<PeerId>,
        score: &impl Fn(&PeerId) -> f64,
    ) -> BTreeSet<PeerId> {
        let d = self.config.mesh_n;
        let mut list: Vec<PeerId> = mesh.iter().copied().collect();
        // Shuffle first so that equal scores are kept at random (the sort is stable).
        list.shuffle(ctx.rng());
        list.sort_by(|a, b| score(b).total_cmp(&score(a)));
        if let Some(rest) = list.get_mut(self.config.retain_scores..) {
            rest.shuffle(ctx.rng());
        }
        let is_outbound = |p: &PeerId| ctx.peer_direction(p) == Some(Direction::Outbound);
        let outbound = list.iter().take(d).filter(|p| is_outbound(p)).count();
        let needed = self.config.mesh_outbound_min;
        if outbound < needed {
            // Bubble the outbound peers of the selection to its front, then bring in
            // outbound peers from outside it until the quota is met.
            let mut left = outbound;
            let mut i = 1;
            while i < d.min(list.len()) && left > 0 {
                if list.get(i).is_some_and(&is_outbound) {
                    if let Some(slice) = list.get_mut(..=i) {
                        slice.rotate_right(1);
                    }
                    left -= 1;
                }
                i += 1;
            }
            let mut missing = needed - outbound;
            let mut i = d;
            while i < list.len() && missing > 0 {
                if list.get(i).is_some_and(&is_outbound) {
                    if let Some(slice) = list.get_mut(..=i) {
                        slice.rotate_right(1);
                    }
                    missing -= 1;
                }
                i += 1;
            }
        }
        list.into_iter().take(d).collect()
    }

    /// IHAVE for the topic's recent messages to `max(D_lazy, GossipFactor × eligible)` random
    /// gossipsub peers outside `exclude` with a score at or above the gossip threshold.
    fn emit_gossip(
        &mut self,
        ctx: &mut RouterContext<'_>,
        topic: &Topic,
        exclude: &BTreeSet<PeerId>,
        score: &impl Fn(&PeerId) -> f64,
    ) {
        let ids = self.mcache.gossip_ids(topic);
        if ids.is_empty() {
            return;
        }
        let mut ids: Vec<Bytes> = ids.into_iter().map(|id| id.to_bytes()).collect();
        let gossip_threshold = self.thresholds.gossip_threshold;
        let mut peers: Vec<PeerId> = ctx
            .topic_peers(topic)
            .filter(|p| {
                !exclude.contains(p)
                    && !self.is_explicit(p)
                    && ctx.peer_kind(p).is_some_and(PeerKind::is_gossipsub)
                    && score(p) >= gossip_threshold
            })
            .collect();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let by_factor = (self.config.gossip_factor * peers.len() as f64) as usize;
        let target = self.config.gossip_lazy.max(by_factor).min(peers.len());
        peers.shuffle(ctx.rng());
        peers.truncate(target);
        let max = self.config.max_ihave_length;
        for peer in peers {
            let message_ids = if ids.len() > max {
                // A different random subset for each peer.
                ids.shuffle(ctx.rng());
                ids.iter().take(max).cloned().collect()
            } else {
                ids.clone()
            };
            ctx.send_ihave(
                peer,
                proto::ControlIHave {
                    topic_id: Some(topic.as_str().to_string()),
                    message_ids,
                },
            );
        }
    }
}
