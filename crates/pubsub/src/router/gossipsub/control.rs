//! Handling of received control messages: IHAVE, IWANT, GRAFT, PRUNE, IDONTWANT, with the
//! v1.1 spam protections (per-heartbeat caps, backoff enforcement, IWANT promises).

use std::collections::HashSet;

use bytes::Bytes;
use lp2p_core::PeerId;
use rand::RngExt;
use rand::seq::SliceRandom;
use tracing::{debug, warn};

use super::GossipsubRouter;
use super::px::verify_signed_peer_record;
use crate::context::RouterContext;
use crate::event::{Event, PxPeer};
use crate::proto;
use crate::types::{MessageId, Topic};

fn count(counter: &mut u64, n: usize) {
    *counter = counter.saturating_add(n as u64);
}

impl GossipsubRouter {
    /// IHAVE: ask (IWANT) for advertised messages we have not seen, within the per-heartbeat
    /// limits, and remember one of them as a promise.
    pub(super) fn handle_ihave(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        ihaves: &[proto::ControlIHave],
    ) {
        if ihaves.is_empty() {
            return;
        }
        let now = ctx.now();
        if self.score_of(&peer, now) < self.thresholds.gossip_threshold {
            count(&mut ctx.counters_mut().ihave_ignored, ihaves.len());
            return;
        }
        let max_ids = self.config.max_ihave_length;
        let asked = self.iasked.get(&peer).copied().unwrap_or(0);
        let have = self.peer_have.entry(peer).or_insert(0);
        let mut want: Vec<Bytes> = Vec::new();
        let mut wanted: HashSet<MessageId> = HashSet::new();
        let mut ignored = 0usize;
        for ihave in ihaves {
            *have = have.saturating_add(1);
            if *have > self.config.max_ihave_messages {
                ignored = ignored.saturating_add(1);
                continue;
            }
            let known_topic = ihave
                .topic_id
                .as_ref()
                .is_some_and(|t| self.mesh.contains_key(t.as_str()));
            if !known_topic {
                continue;
            }
            for id in ihave.message_ids.iter().take(max_ids) {
                if asked.saturating_add(want.len()) >= max_ids {
                    break;
                }
                let id = MessageId::from_wire(id);
                if ctx.has_seen(&id) || wanted.contains(&id) {
                    continue;
                }
                want.push(id.to_bytes());
                wanted.insert(id);
            }
        }
        if ignored > 0 {
            debug!(%peer, ignored, "gossipsub: IHAVE over the per-heartbeat limit ignored");
            count(&mut ctx.counters_mut().ihave_ignored, ignored);
        }
        if want.is_empty() {
            return;
        }
        want.shuffle(ctx.rng());
        self.iasked.insert(peer, asked.saturating_add(want.len()));
        let pick = ctx.rng().random_range(0..want.len());
        if let Some(promised) = want.get(pick) {
            let deadline = now
                .checked_add(self.config.iwant_followup_time)
                .unwrap_or(now);
            self.promises
                .add(MessageId::from_wire(promised), peer, deadline);
        }
        ctx.send_iwant(peer, want);
    }

    /// IWANT: send the cached messages asked for, each at most `gossip_retransmission` times
    /// to a peer, at most `max_iwant_replies` ids per heartbeat.
    pub(super) fn handle_iwant(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        iwants: &[proto::ControlIWant],
    ) {
        if iwants.is_empty() {
            return;
        }
        let total: usize = iwants.iter().map(|w| w.message_ids.len()).sum();
        if self.score_of(&peer, ctx.now()) < self.thresholds.gossip_threshold {
            count(&mut ctx.counters_mut().iwant_ignored, total);
            return;
        }
        let replied = self.iwant_replied.entry(peer).or_insert(0);
        let mut ignored = 0usize;
        for id in iwants.iter().flat_map(|w| w.message_ids.iter()) {
            if *replied >= self.config.max_iwant_replies {
                ignored = ignored.saturating_add(1);
                continue;
            }
            *replied = replied.saturating_add(1);
            let id = MessageId::from_wire(id);
            if self
                .dont_send
                .get(&peer)
                .is_some_and(|d| d.ids.contains_key(&id))
            {
                continue;
            }
            let Some((message, times)) = self.mcache.get_for_peer(&id, peer) else {
                continue;
            };
            if times > self.config.gossip_retransmission {
                ignored = ignored.saturating_add(1);
                continue;
            }
            ctx.send_forward(peer, message);
        }
        if ignored > 0 {
            debug!(%peer, ignored, "gossipsub: IWANT ids over the limits ignored");
            count(&mut ctx.counters_mut().iwant_ignored, ignored);
        }
    }

    /// GRAFT: join the sender to our mesh, or answer PRUNE (backoff violations are
    /// penalised; unknown topics are ignored without an answer).
    pub(super) fn handle_graft(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        grafts: &[proto::ControlGraft],
    ) {
        if grafts.is_empty() {
            return;
        }
        let now = ctx.now();
        let score = self.score_of(&peer, now);
        let outbound = ctx.peer_direction(&peer) == Some(crate::types::Direction::Outbound);
        let mut do_px = self.config.do_px;
        let mut prune: Vec<Topic> = Vec::new();
        for graft in grafts {
            let Some(name) = graft.topic_id.as_deref() else {
                continue;
            };
            let Some((topic, mesh)) = self.mesh.get_key_value(name) else {
                // Spam hardening: a GRAFT for a topic we are not in gets no answer (and no
                // PX, which would leak our peers).
                do_px = false;
                count(&mut ctx.counters_mut().graft_unknown_topic, 1);
                continue;
            };
            let topic = topic.clone();
            if mesh.contains(&peer) {
                continue;
            }
            if self.is_explicit(&peer) {
                warn!(%peer, %topic, "gossipsub: GRAFT from an explicit peer, answering PRUNE");
                count(&mut ctx.counters_mut().graft_refused, 1);
                prune.push(topic);
                do_px = false;
                continue;
            }
            if let Some(until) = self.backoff.expiry(&topic, &peer)
                && now < until
            {
                // GRAFT during backoff: P₇, twice if it comes right after the PRUNE.
                debug!(%peer, %topic, "gossipsub: GRAFT during backoff, penalised");
                let counters = ctx.counters_mut();
                count(&mut counters.graft_in_backoff, 1);
                count(&mut counters.graft_refused, 1);
                let flood_cutoff = until
                    .checked_sub(self.config.prune_backoff)
                    .and_then(|pruned| pruned.checked_add(self.config.graft_flood_threshold));
                let penalty = if flood_cutoff.is_some_and(|cutoff| now < cutoff) {
                    2
                } else {
                    1
                };
                if let Some(score) = &mut self.score {
                    score.add_penalty(&peer, penalty);
                }
                do_px = false;
                self.add_backoff(&topic, peer, now, self.config.prune_backoff);
                prune.push(topic);
                continue;
            }
            if score < 0.0 {
                // A PRUNE for protocol correctness, no PX, and a backoff so a recovering score
                // does not let it straight back in.
                count(&mut ctx.counters_mut().graft_refused, 1);
                do_px = false;
                self.add_backoff(&topic, peer, now, self.config.prune_backoff);
                prune.push(topic);
                continue;
            }
            if mesh.len() >= self.config.mesh_n_high && !outbound {
                // A full mesh takes only outbound peers (against inbound sybil floods).
                count(&mut ctx.counters_mut().graft_refused, 1);
                self.add_backoff(&topic, peer, now, self.config.prune_backoff);
                prune.push(topic);
                continue;
            }
            if let Some(mesh) = self.mesh.get_mut(&topic) {
                mesh.insert(peer);
            }
            self.on_grafted(ctx, &topic, peer);
        }
        for topic in prune {
            let message = self.make_prune(ctx, peer, &topic, do_px, false);
            ctx.send_prune(peer, message);
        }
    }

    /// PRUNE: leave the sender's mesh, obey its backoff, and act on its PX if its score
    /// allows.
    pub(super) fn handle_prune(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        prunes: Vec<proto::ControlPrune>,
    ) {
        if prunes.is_empty() {
            return;
        }
        let now = ctx.now();
        let score = self.score_of(&peer, now);
        for prune in prunes {
            let Some(name) = prune.topic_id.as_deref() else {
                continue;
            };
            let Some(topic) = self.mesh.get_key_value(name).map(|(t, _)| t.clone()) else {
                continue;
            };
            if self
                .mesh
                .get_mut(&topic)
                .is_some_and(|mesh| mesh.remove(&peer))
            {
                self.on_pruned(ctx, &topic, peer);
            }
            let backoff = match prune.backoff {
                Some(secs) if secs > 0 => {
                    std::time::Duration::from_secs(secs).min(self.config.max_remote_backoff)
                }
                _ => self.config.prune_backoff,
            };
            self.add_backoff(&topic, peer, now, backoff);
            if prune.peers.is_empty() || !self.config.do_px {
                continue;
            }
            if score < self.thresholds.accept_px_threshold {
                debug!(%peer, score, "gossipsub: PX from a low-scoring peer ignored");
                count(&mut ctx.counters_mut().px_ignored, 1);
                continue;
            }
            self.peer_exchange(ctx, peer, &topic, prune.peers);
        }
    }

    fn peer_exchange(
        &mut self,
        ctx: &mut RouterContext<'_>,
        from: PeerId,
        topic: &Topic,
        mut offered: Vec<proto::PeerInfo>,
    ) {
        offered.shuffle(ctx.rng());
        let local = ctx.local_peer_id();
        let mut peers = Vec::new();
        let mut refused = 0usize;
        for info in offered {
            if peers.len() >= self.config.prune_peers {
                break;
            }
            let Some(peer_id) = info
                .peer_id
                .as_deref()
                .and_then(|b| PeerId::from_bytes(b).ok())
            else {
                refused = refused.saturating_add(1);
                continue;
            };
            if peer_id == local || ctx.is_connected(&peer_id) {
                continue;
            }
            let addresses = match info.signed_peer_record {
                Some(record) => {
                    match verify_signed_peer_record(&record, &peer_id, self.config.max_px_addresses)
                    {
                        Ok(addresses) => addresses,
                        Err(err) => {
                            debug!(%from, peer = %peer_id, ?err, "gossipsub: bad signed peer record in PX");
                            refused = refused.saturating_add(1);
                            continue;
                        }
                    }
                }
                None => Vec::new(),
            };
            peers.push(PxPeer { peer_id, addresses });
        }
        if refused > 0 {
            count(&mut ctx.counters_mut().px_ignored, refused);
        }
        if !peers.is_empty() {
            ctx.emit(Event::PeerExchange {
                from,
                topic: topic.clone(),
                peers,
            });
        }
    }

    /// IDONTWANT: remember the ids (within the per-heartbeat caps) and drop queued copies.
    pub(super) fn handle_idontwant(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        idontwants: &[proto::ControlIDontWant],
    ) {
        if idontwants.is_empty() {
            return;
        }
        let tick = self.heartbeat_ticks;
        let dont_send = self.dont_send.entry(peer).or_default();
        let mut ignored = 0usize;
        for idontwant in idontwants {
            dont_send.messages_this_heartbeat = dont_send.messages_this_heartbeat.saturating_add(1);
            if dont_send.messages_this_heartbeat > self.config.max_idontwant_messages {
                ignored = ignored.saturating_add(1);
                continue;
            }
            for id in &idontwant.message_ids {
                if dont_send.ids_this_heartbeat >= self.config.max_idontwant_ids {
                    ignored = ignored.saturating_add(1);
                    break;
                }
                dont_send.ids_this_heartbeat = dont_send.ids_this_heartbeat.saturating_add(1);
                let id = MessageId::from_wire(id);
                ctx.cancel_forward(peer, &id);
                dont_send.ids.insert(id, tick);
            }
        }
        if ignored > 0 {
            debug!(%peer, ignored, "gossipsub: IDONTWANT over the per-heartbeat limits ignored");
            count(&mut ctx.counters_mut().idontwant_ignored, ignored);
        }
    }
}
