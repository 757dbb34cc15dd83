//! The per-peer send queue: subscriptions and control first, then our own publishes, then
//! forwards. Bounded in messages and bytes; frames are cut to the maximum RPC size and as
//! many queued items as fit are coalesced into each frame.
//!
//! The bytes of queued messages are also reserved from the peer's memory account (a
//! resource manager's service account) before a message is queued, and returned as messages
//! leave the queue: a refused reservation drops the message as a full queue does.

use std::collections::VecDeque;

use bytes::Bytes;
use lp2p_core::{MemoryAccount, UnlimitedMemory};
use prost::Message as _;

use crate::codec::{field_len, put_len_field, put_message_field};
use crate::proto;
use crate::types::{MessageId, Topic};

/// Which queue a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Our own publish: sent before any forward, and evicts forwards when the queue is full.
    Publish,
    /// A forward or an IWANT reply.
    Forward,
}

/// Limits applied when queueing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    pub(crate) control_ids: usize,
}

/// What happened to a message handed to [`Outbox::push_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushOutcome {
    /// Whether the message was queued.
    pub(crate) queued: bool,
    /// Messages dropped (this one, or older forwards evicted for it).
    pub(crate) dropped: usize,
    /// Whether this push started an overflow episode (the queue had not overflowed since it
    /// last drained): the moment to raise a slow-peer event.
    pub(crate) new_overflow: bool,
    /// Whether the memory account refused the message (it is then among `dropped`).
    pub(crate) refused_for_memory: bool,
}

/// The memory account the queued messages' bytes are reserved from; unlimited unless the
/// owner gives one.
#[derive(Debug)]
pub(crate) struct QueueMemory(Box<dyn MemoryAccount>);

impl Default for QueueMemory {
    fn default() -> Self {
        QueueMemory(UnlimitedMemory::boxed())
    }
}

/// One peer's pending output.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    subscriptions: Vec<proto::rpc::SubOpts>,
    grafts: VecDeque<proto::ControlGraft>,
    prunes: VecDeque<proto::ControlPrune>,
    ihaves: VecDeque<proto::ControlIHave>,
    iwant: VecDeque<Bytes>,
    idontwant: VecDeque<Bytes>,
    control_ids: usize,
    publish: VecDeque<Bytes>,
    forward: VecDeque<(MessageId, Bytes)>,
    queued_bytes: usize,
    overflowing: bool,
    memory: QueueMemory,
}

impl Outbox {
    /// An empty queue whose messages reserve from `memory`.
    pub(crate) fn with_memory(memory: Box<dyn MemoryAccount>) -> Outbox {
        Outbox {
            memory: QueueMemory(memory),
            ..Outbox::default()
        }
    }

    /// Bytes reserved from the memory account: always the queued messages' bytes.
    pub(crate) fn reserved_memory(&self) -> usize {
        self.memory.0.reserved()
    }

    /// Returns to the memory account what left the queue.
    fn release_sent(&mut self) {
        let excess = self.memory.0.reserved().saturating_sub(self.queued_bytes);
        self.memory.0.shrink(excess);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
            && self.grafts.is_empty()
            && self.prunes.is_empty()
            && self.ihaves.is_empty()
            && self.iwant.is_empty()
            && self.idontwant.is_empty()
            && self.publish.is_empty()
            && self.forward.is_empty()
    }

    /// Messages queued (publishes and forwards).
    pub(crate) fn queued_messages(&self) -> usize {
        self.publish.len().saturating_add(self.forward.len())
    }

    /// Bytes of queued messages.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub(crate) fn push_subscription(&mut self, topic: &Topic, subscribe: bool) {
        // A later change for the same topic replaces an unsent earlier one.
        self.subscriptions
            .retain(|s| s.topic_id.as_deref() != Some(topic.as_str()));
        self.subscriptions.push(proto::rpc::SubOpts {
            subscribe: Some(subscribe),
            topic_id: Some(topic.as_str().to_string()),
        });
    }

    pub(crate) fn push_message(
        &mut self,
        id: &MessageId,
        message: &Bytes,
        priority: Priority,
        limits: Limits,
    ) -> PushOutcome {
        let len = message.len();
        let full = |outbox: &Outbox| {
            outbox.queued_messages() >= limits.messages
                || outbox.queued_bytes.saturating_add(len) > limits.bytes
        };
        let mut dropped = 0usize;
        let mut queued = false;
        let mut refused_for_memory;
        loop {
            // Reserve before queueing; our own publish evicts forwards (oldest first) to make
            // room in the queue's caps or in the memory budget.
            let room = !full(self) && self.memory.0.try_grow(len).is_ok();
            if room {
                queued = true;
                refused_for_memory = false;
                self.queued_bytes = self.queued_bytes.saturating_add(len);
                match priority {
                    Priority::Publish => self.publish.push_back(message.clone()),
                    Priority::Forward => self.forward.push_back((id.clone(), message.clone())),
                }
                break;
            }
            refused_for_memory = !full(self);
            let evicted = match priority {
                Priority::Publish => self.forward.pop_front(),
                Priority::Forward => None,
            };
            let Some((_, evicted)) = evicted else {
                dropped = dropped.saturating_add(1);
                break;
            };
            self.queued_bytes = self.queued_bytes.saturating_sub(evicted.len());
            self.release_sent();
            dropped = dropped.saturating_add(1);
        }
        let new_overflow = dropped > 0 && !self.overflowing;
        if dropped > 0 {
            self.overflowing = true;
        }
        PushOutcome {
            queued,
            dropped,
            new_overflow,
            refused_for_memory,
        }
    }

    /// Drops an unsent forward of `id` (the peer said IDONTWANT). Returns whether one was.
    pub(crate) fn cancel_forward(&mut self, id: &MessageId) -> bool {
        let Some(index) = self.forward.iter().position(|(queued, _)| queued == id) else {
            return false;
        };
        if let Some((_, message)) = self.forward.remove(index) {
            self.queued_bytes = self.queued_bytes.saturating_sub(message.len());
            self.release_sent();
        }
        true
    }

    pub(crate) fn push_graft(&mut self, topic: &Topic) {
        let name = topic.as_str();
        // A GRAFT cancels an unsent PRUNE for the topic (the receiver applies GRAFTs before
        // PRUNEs, so sending both would leave it disagreeing with us).
        self.prunes.retain(|p| p.topic_id.as_deref() != Some(name));
        if self
            .grafts
            .iter()
            .any(|g| g.topic_id.as_deref() == Some(name))
        {
            return;
        }
        self.grafts.push_back(proto::ControlGraft {
            topic_id: Some(name.to_string()),
        });
    }

    pub(crate) fn push_prune(&mut self, prune: proto::ControlPrune) {
        let name = prune.topic_id.clone();
        self.grafts.retain(|g| g.topic_id != name);
        self.prunes.retain(|p| p.topic_id != name);
        self.prunes.push_back(prune);
    }

    /// Queues an IHAVE; returns false (dropped) when the control id cap is reached.
    pub(crate) fn push_ihave(&mut self, ihave: proto::ControlIHave, limits: Limits) -> bool {
        let n = ihave.message_ids.len();
        if self.control_ids.saturating_add(n) > limits.control_ids {
            return false;
        }
        self.control_ids = self.control_ids.saturating_add(n);
        self.ihaves.push_back(ihave);
        true
    }

    /// Queues IWANT ids; returns how many did not fit under the control id cap.
    pub(crate) fn push_iwant(
        &mut self,
        ids: impl IntoIterator<Item = Bytes>,
        limits: Limits,
    ) -> usize {
        push_ids(&mut self.iwant, &mut self.control_ids, ids, limits)
    }

    /// Queues IDONTWANT ids; returns how many did not fit under the control id cap.
    pub(crate) fn push_idontwant(
        &mut self,
        ids: impl IntoIterator<Item = Bytes>,
        limits: Limits,
    ) -> usize {
        push_ids(&mut self.idontwant, &mut self.control_ids, ids, limits)
    }

    /// Writes LP-framed RPCs into `out` until the queue is empty or about `budget` bytes were
    /// written. Returns the number of items dropped because they could not fit in any frame.
    pub(crate) fn write(&mut self, max_rpc: usize, budget: usize, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let mut dropped = 0usize;
        while !self.is_empty() && out.len().saturating_sub(start) < budget {
            let before = out.len();
            let dropped_now = self.write_frame(max_rpc, out);
            dropped = dropped.saturating_add(dropped_now);
            if out.len() == before && dropped_now == 0 {
                // No progress is possible (defensive: every path above writes or drops).
                break;
            }
        }
        if self.is_empty() {
            self.overflowing = false;
        }
        self.release_sent();
        dropped
    }

    /// Writes one frame (or drops one item that fits in no frame). Returns items dropped.
    fn write_frame(&mut self, max_rpc: usize, out: &mut Vec<u8>) -> usize {
        let mut len = 0usize;
        let mut subs_n = 0usize;
        for sub in &self.subscriptions {
            let l = field_len(sub.encoded_len());
            if len.saturating_add(l) > max_rpc {
                break;
            }
            len = len.saturating_add(l);
            subs_n = subs_n.saturating_add(1);
        }
        let (control, control_dropped) = self.take_control(max_rpc.saturating_sub(len), len == 0);
        if let Some(control) = &control {
            len = len.saturating_add(field_len(control.encoded_len()));
        }
        let mut publish_n = 0usize;
        for message in &self.publish {
            let l = field_len(message.len());
            if len.saturating_add(l) > max_rpc {
                break;
            }
            len = len.saturating_add(l);
            publish_n = publish_n.saturating_add(1);
        }
        let mut forward_n = 0usize;
        if publish_n == self.publish.len() {
            for (_, message) in &self.forward {
                let l = field_len(message.len());
                if len.saturating_add(l) > max_rpc {
                    break;
                }
                len = len.saturating_add(l);
                forward_n = forward_n.saturating_add(1);
            }
        }
        if len == 0 {
            // Nothing fits even in an empty frame: the head subscription or message is too
            // large on its own. Drop it so the queue cannot get stuck.
            if !self.subscriptions.is_empty() {
                self.subscriptions.remove(0);
                return control_dropped.saturating_add(1);
            }
            return control_dropped.saturating_add(self.drop_head_message());
        }
        prost::encoding::encode_varint(len as u64, out);
        let body_start = out.len();
        for sub in self.subscriptions.drain(..subs_n) {
            put_message_field(1, &sub, out);
        }
        for _ in 0..publish_n {
            if let Some(message) = self.publish.pop_front() {
                self.queued_bytes = self.queued_bytes.saturating_sub(message.len());
                put_len_field(2, &message, out);
            }
        }
        for _ in 0..forward_n {
            if let Some((_, message)) = self.forward.pop_front() {
                self.queued_bytes = self.queued_bytes.saturating_sub(message.len());
                put_len_field(2, &message, out);
            }
        }
        if let Some(control) = &control {
            put_message_field(3, control, out);
        }
        debug_assert_eq!(out.len().saturating_sub(body_start), len);
        control_dropped
    }

    fn drop_head_message(&mut self) -> usize {
        if let Some(message) = self.publish.pop_front() {
            self.queued_bytes = self.queued_bytes.saturating_sub(message.len());
            return 1;
        }
        if let Some((_, message)) = self.forward.pop_front() {
            self.queued_bytes = self.queued_bytes.saturating_sub(message.len());
            return 1;
        }
        0
    }

    /// Takes as much control as fits in `budget` bytes (the whole control field). When the
    /// frame is otherwise empty, an item that fits in no frame is dropped instead.
    fn take_control(
        &mut self,
        budget: usize,
        frame_empty: bool,
    ) -> (Option<proto::ControlMessage>, usize) {
        if self.grafts.is_empty()
            && self.prunes.is_empty()
            && self.ihaves.is_empty()
            && self.iwant.is_empty()
            && self.idontwant.is_empty()
        {
            return (None, 0);
        }
        let mut control = proto::ControlMessage::default();
        let mut inner = 0usize;
        let mut dropped = 0usize;
        let fits = |inner: usize| field_len(inner) <= budget;

        take_whole(
            &mut self.grafts,
            &mut control.graft,
            &mut inner,
            fits,
            frame_empty,
            &mut dropped,
        );
        take_whole(
            &mut self.prunes,
            &mut control.prune,
            &mut inner,
            fits,
            frame_empty,
            &mut dropped,
        );

        // IHAVE entries, split by ids when one does not fit whole.
        while let Some(ihave) = self.ihaves.front_mut() {
            let topic_len = ihave.topic_id.as_ref().map_or(0, |t| field_len(t.len()));
            let mut entry_inner = topic_len;
            let mut n = 0usize;
            for id in &ihave.message_ids {
                let next = entry_inner.saturating_add(field_len(id.len()));
                if !fits(inner.saturating_add(field_len(next))) {
                    break;
                }
                entry_inner = next;
                n = n.saturating_add(1);
            }
            if n == 0 && !ihave.message_ids.is_empty() {
                if inner == 0 && frame_empty {
                    // Even one id does not fit in an empty frame.
                    ihave.message_ids.remove(0);
                    self.control_ids = self.control_ids.saturating_sub(1);
                    dropped = dropped.saturating_add(1);
                    continue;
                }
                break;
            }
            if n == ihave.message_ids.len() {
                if !fits(inner.saturating_add(field_len(entry_inner))) {
                    if inner == 0 && frame_empty {
                        // Not even the entry's topic fits in an empty frame.
                        if let Some(entry) = self.ihaves.pop_front() {
                            self.control_ids =
                                self.control_ids.saturating_sub(entry.message_ids.len());
                            dropped = dropped.saturating_add(1);
                        }
                        continue;
                    }
                    break;
                }
                if let Some(entry) = self.ihaves.pop_front() {
                    self.control_ids = self.control_ids.saturating_sub(entry.message_ids.len());
                    control.ihave.push(entry);
                }
            } else {
                let ids: Vec<Bytes> = ihave.message_ids.drain(..n).collect();
                self.control_ids = self.control_ids.saturating_sub(n);
                control.ihave.push(proto::ControlIHave {
                    topic_id: ihave.topic_id.clone(),
                    message_ids: ids,
                });
                inner = inner.saturating_add(field_len(entry_inner));
                break;
            }
            inner = inner.saturating_add(field_len(entry_inner));
        }

        let (iwant, n) = take_ids(&mut self.iwant, &mut inner, fits, frame_empty, &mut dropped);
        self.control_ids = self.control_ids.saturating_sub(n);
        if !iwant.is_empty() {
            control
                .iwant
                .push(proto::ControlIWant { message_ids: iwant });
        }
        let (idontwant, n) = take_ids(
            &mut self.idontwant,
            &mut inner,
            fits,
            frame_empty,
            &mut dropped,
        );
        self.control_ids = self.control_ids.saturating_sub(n);
        if !idontwant.is_empty() {
            control.idontwant.push(proto::ControlIDontWant {
                message_ids: idontwant,
            });
        }
        if control == proto::ControlMessage::default() {
            (None, dropped)
        } else {
            (Some(control), dropped)
        }
    }
}

/// Moves whole items from `queue` into `into` while they fit.
fn take_whole<T: prost::Message>(
    queue: &mut VecDeque<T>,
    into: &mut Vec<T>,
    inner: &mut usize,
    fits: impl Fn(usize) -> bool,
    frame_empty: bool,
    dropped: &mut usize,
) {
    while let Some(item) = queue.front() {
        let l = field_len(item.encoded_len());
        if !fits(inner.saturating_add(l)) {
            if *inner == 0 && frame_empty {
                queue.pop_front();
                *dropped = dropped.saturating_add(1);
                continue;
            }
            break;
        }
        *inner = inner.saturating_add(l);
        if let Some(item) = queue.pop_front() {
            into.push(item);
        }
    }
}

/// Moves ids into one id-list entry (IWANT or IDONTWANT) while it fits. Returns the ids and
/// how many left the queue (taken or dropped).
fn take_ids(
    queue: &mut VecDeque<Bytes>,
    inner: &mut usize,
    fits: impl Fn(usize) -> bool,
    frame_empty: bool,
    dropped: &mut usize,
) -> (Vec<Bytes>, usize) {
    let mut ids = Vec::new();
    let mut entry_inner = 0usize;
    let mut removed = 0usize;
    while let Some(id) = queue.front() {
        let next = entry_inner.saturating_add(field_len(id.len()));
        if !fits(inner.saturating_add(field_len(next))) {
            if *inner == 0 && entry_inner == 0 && frame_empty {
                queue.pop_front();
                removed = removed.saturating_add(1);
                *dropped = dropped.saturating_add(1);
                continue;
            }
            break;
        }
        entry_inner = next;
        if let Some(id) = queue.pop_front() {
            ids.push(id);
            removed = removed.saturating_add(1);
        }
    }
    if !ids.is_empty() {
        *inner = inner.saturating_add(field_len(entry_inner));
    }
    (ids, removed)
}

fn push_ids(
    queue: &mut VecDeque<Bytes>,
    control_ids: &mut usize,
    ids: impl IntoIterator<Item = Bytes>,
    limits: Limits,
) -> usize {
    let mut refused = 0usize;
    for id in ids {
        if *control_ids >= limits.control_ids {
            refused = refused.saturating_add(1);
            continue;
        }
        *control_ids = control_ids.saturating_add(1);
        queue.push_back(id);
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodedRpc, decode_rpc};
    use bytes::BytesMut;
    use lp2p_core::framing::FrameDecoder;

    const LIMITS: Limits = Limits {
        messages: 4,
        bytes: 1000,
        control_ids: 10,
    };

    fn frames(bytes: &[u8], max: usize) -> Vec<DecodedRpc> {
        let mut decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            let mut rpc = DecodedRpc::default();
            decode_rpc(&frame, &mut rpc).unwrap();
            out.push(rpc);
        }
        assert!(buf.is_empty());
        out
    }

    fn id(n: u8) -> MessageId {
        MessageId::new(vec![n])
    }

    /// An encoded message whose payload is `len` bytes of `n`.
    fn msg(n: u8, len: usize) -> Bytes {
        Bytes::from(
            proto::Message {
                data: Some(Bytes::from(vec![n; len])),
                ..Default::default()
            }
            .encode_to_vec(),
        )
    }

    fn first_byte(rpc: &DecodedRpc) -> Vec<u8> {
        rpc.messages
            .iter()
            .map(|(_, m)| m.data.as_ref().unwrap()[0])
            .collect()
    }

    #[test]
    fn publishes_go_before_forwards_and_evict_them() {
        let mut outbox = Outbox::default();
        let msg = |b: u8| msg(b, 10);
        for n in 0..4 {
            let outcome = outbox.push_message(&id(n), &msg(n), Priority::Forward, LIMITS);
            assert_eq!(outcome.dropped, 0);
        }
        // Full: a forward is refused and starts an overflow episode.
        let outcome = outbox.push_message(&id(9), &msg(9), Priority::Forward, LIMITS);
        assert_eq!(
            outcome,
            PushOutcome {
                queued: false,
                dropped: 1,
                new_overflow: true,
                refused_for_memory: false,
            }
        );
        // A publish evicts the oldest forward.
        let outcome = outbox.push_message(&id(10), &msg(10), Priority::Publish, LIMITS);
        assert_eq!(
            outcome,
            PushOutcome {
                queued: true,
                dropped: 1,
                new_overflow: false,
                refused_for_memory: false,
            }
        );
        let mut out = Vec::new();
        outbox.write(1 << 20, 1 << 20, &mut out);
        let rpcs = frames(&out, 1 << 20);
        assert_eq!(rpcs.len(), 1);
        assert_eq!(first_byte(&rpcs[0]), vec![10, 1, 2, 3]);
        assert!(outbox.is_empty());
        assert_eq!(outbox.queued_bytes(), 0);
        // Drained: the next overflow is a new episode.
        for n in 0..4 {
            outbox.push_message(&id(n), &msg(n), Priority::Forward, LIMITS);
        }
        assert!(
            outbox
                .push_message(&id(5), &msg(5), Priority::Forward, LIMITS)
                .new_overflow
        );
    }

    #[test]
    fn queued_bytes_are_reserved_and_a_refusal_drops_like_a_full_queue() {
        let msg = |b: u8| msg(b, 10);
        let len = msg(0).len();
        let budget = lp2p_core::SharedLimit::new(2 * len + len / 2);
        let mut outbox = Outbox::with_memory(Box::new(budget.account()));
        assert!(
            outbox
                .push_message(&id(1), &msg(1), Priority::Forward, LIMITS)
                .queued
        );
        assert!(
            outbox
                .push_message(&id(2), &msg(2), Priority::Forward, LIMITS)
                .queued
        );
        assert_eq!(
            (outbox.reserved_memory(), budget.used()),
            (2 * len, 2 * len)
        );
        // The queue has room (2 of 4), the budget has not: dropped, and said why.
        let outcome = outbox.push_message(&id(3), &msg(3), Priority::Forward, LIMITS);
        assert_eq!(
            outcome,
            PushOutcome {
                queued: false,
                dropped: 1,
                new_overflow: true,
                refused_for_memory: true,
            }
        );
        // Our publish evicts a forward to fit in the budget.
        let outcome = outbox.push_message(&id(4), &msg(4), Priority::Publish, LIMITS);
        assert!(outcome.queued && outcome.dropped == 1 && !outcome.refused_for_memory);
        assert_eq!(budget.used(), 2 * len);
        assert!(outbox.cancel_forward(&id(2)));
        assert_eq!(budget.used(), len);
        let mut out = Vec::new();
        outbox.write(1 << 20, 1 << 20, &mut out);
        assert!(outbox.is_empty());
        assert_eq!(budget.used(), 0, "sent messages return their reservation");
        outbox.push_message(&id(5), &msg(5), Priority::Forward, LIMITS);
        assert_eq!(budget.used(), len);
        drop(outbox);
        assert_eq!(budget.used(), 0, "a dropped queue returns everything");
    }

    #[test]
    fn byte_limit() {
        let mut outbox = Outbox::default();
        let big = Bytes::from(vec![0u8; 600]);
        assert_eq!(
            outbox
                .push_message(&id(1), &big, Priority::Forward, LIMITS)
                .dropped,
            0
        );
        assert_eq!(
            outbox
                .push_message(&id(2), &big, Priority::Forward, LIMITS)
                .dropped,
            1
        );
        assert_eq!(outbox.queued_bytes(), 600);
    }

    #[test]
    fn frames_respect_the_maximum_size() {
        let mut outbox = Outbox::default();
        let limits = Limits {
            messages: 100,
            bytes: 100_000,
            control_ids: 1000,
        };
        for n in 0..20 {
            outbox.push_message(&id(n), &msg(n, 90), Priority::Forward, limits);
        }
        outbox.push_subscription(&Topic::new("a"), true);
        outbox.push_graft(&Topic::new("a"));
        outbox.push_iwant((0..50u8).map(|n| Bytes::from(vec![n; 20])), limits);
        let mut out = Vec::new();
        outbox.write(256, 1 << 20, &mut out);
        let rpcs = frames(&out, 256);
        assert!(rpcs.len() > 5);
        let messages: usize = rpcs.iter().map(|r| r.messages.len()).sum();
        assert_eq!(messages, 20);
        let iwant_ids: usize = rpcs
            .iter()
            .filter_map(|r| r.control.as_ref())
            .flat_map(|c| c.iwant.iter())
            .map(|w| w.message_ids.len())
            .sum();
        assert_eq!(iwant_ids, 50);
        // Subscriptions and control come in the first frame.
        assert_eq!(rpcs[0].subscriptions.len(), 1);
        assert_eq!(rpcs[0].control.as_ref().unwrap().graft.len(), 1);
    }

    #[test]
    fn budget_limits_one_call() {
        let mut outbox = Outbox::default();
        let limits = Limits {
            messages: 100,
            bytes: 100_000,
            control_ids: 10,
        };
        for n in 0..10 {
            outbox.push_message(&id(n), &msg(n, 100), Priority::Forward, limits);
        }
        let mut out = Vec::new();
        outbox.write(120, 300, &mut out);
        assert!(!outbox.is_empty());
        let first = frames(&out, 120).len();
        assert!((3..10).contains(&first));
        out.clear();
        outbox.write(120, 1 << 20, &mut out);
        assert_eq!(first + frames(&out, 120).len(), 10);
    }

    #[test]
    fn oversized_items_are_dropped_not_stuck() {
        let mut outbox = Outbox::default();
        let limits = Limits {
            messages: 100,
            bytes: 100_000,
            control_ids: 10,
        };
        outbox.push_message(&id(1), &msg(1, 500), Priority::Forward, limits);
        outbox.push_iwant([Bytes::from(vec![7; 500])], limits);
        outbox.push_ihave(
            proto::ControlIHave {
                topic_id: Some("t".into()),
                message_ids: vec![Bytes::from(vec![7; 500]), Bytes::from(vec![1; 5])],
            },
            limits,
        );
        let mut out = Vec::new();
        let dropped = outbox.write(100, 1 << 20, &mut out);
        assert_eq!(dropped, 3);
        assert!(outbox.is_empty());
        let rpcs = frames(&out, 100);
        let ihave = &rpcs[0].control.as_ref().unwrap().ihave[0];
        assert_eq!(ihave.message_ids, vec![Bytes::from(vec![1; 5])]);
    }

    #[test]
    fn an_oversized_subscription_is_dropped_not_stuck() {
        let mut outbox = Outbox::default();
        outbox.push_subscription(&Topic::new("x".repeat(200)), true);
        outbox.push_subscription(&Topic::new("ok"), true);
        let mut out = Vec::new();
        assert_eq!(outbox.write(64, 1 << 20, &mut out), 1);
        assert!(outbox.is_empty());
        let rpcs = frames(&out, 64);
        assert_eq!(rpcs[0].subscriptions[0].topic_id.as_deref(), Some("ok"));
    }

    #[test]
    fn an_ihave_whose_topic_fits_no_frame_is_dropped() {
        let mut outbox = Outbox::default();
        let limits = Limits {
            messages: 10,
            bytes: 10_000,
            control_ids: 100,
        };
        outbox.push_ihave(
            proto::ControlIHave {
                topic_id: Some("x".repeat(200)),
                message_ids: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            },
            limits,
        );
        let mut out = Vec::new();
        assert_eq!(outbox.write(64, 1 << 20, &mut out), 3);
        assert!(outbox.is_empty());
        assert!(out.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_queue_drains_into_valid_frames(
            max_rpc in 64usize..2048,
            budget in 1usize..4096,
            messages in proptest::collection::vec(0usize..3000, 0..20),
            topics in proptest::collection::vec(0usize..300, 0..6),
            ids in proptest::collection::vec(0usize..300, 0..40),
        ) {
            let limits = Limits { messages: 16, bytes: 20_000, control_ids: 30 };
            // A memory budget smaller than the byte cap, so both refuse at times.
            let memory = lp2p_core::SharedLimit::new(12_000);
            let mut outbox = Outbox::with_memory(Box::new(memory.account()));
            for (n, len) in (0u8..).zip(messages.iter()) {
                let priority = if n % 3 == 0 { Priority::Publish } else { Priority::Forward };
                outbox.push_message(&id(n), &msg(n, *len), priority, limits);
                proptest::prop_assert_eq!(outbox.reserved_memory(), outbox.queued_bytes());
                proptest::prop_assert!(memory.used() <= 12_000);
            }
            for len in &topics {
                let topic = Topic::new("t".repeat(*len));
                outbox.push_subscription(&topic, true);
                outbox.push_graft(&topic);
                outbox.push_ihave(
                    proto::ControlIHave {
                        topic_id: Some(topic.as_str().to_string()),
                        message_ids: ids.iter().map(|l| Bytes::from(vec![1; *l])).collect(),
                    },
                    limits,
                );
            }
            outbox.push_iwant(ids.iter().map(|l| Bytes::from(vec![2; *l])), limits);
            outbox.push_idontwant(ids.iter().map(|l| Bytes::from(vec![3; *l])), limits);
            let mut out = Vec::new();
            let mut calls = 0;
            while !outbox.is_empty() {
                outbox.write(max_rpc, budget, &mut out);
                proptest::prop_assert_eq!(outbox.reserved_memory(), outbox.queued_bytes());
                calls += 1;
                proptest::prop_assert!(calls < 10_000);
            }
            let mut decoder = FrameDecoder::new(max_rpc);
            let mut buf = BytesMut::from(&out[..]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                let mut rpc = DecodedRpc::default();
                decode_rpc(&frame, &mut rpc).unwrap();
            }
            proptest::prop_assert!(buf.is_empty());
            proptest::prop_assert_eq!(outbox.queued_bytes(), 0);
            proptest::prop_assert_eq!(memory.used(), 0);
        }
    }

    #[test]
    fn graft_and_prune_cancel_each_other() {
        let mut outbox = Outbox::default();
        let topic = Topic::new("t");
        outbox.push_graft(&topic);
        outbox.push_graft(&topic);
        outbox.push_prune(proto::ControlPrune {
            topic_id: Some("t".into()),
            ..Default::default()
        });
        outbox.push_graft(&topic);
        let mut out = Vec::new();
        outbox.write(1000, 1000, &mut out);
        let rpcs = frames(&out, 1000);
        let control = rpcs[0].control.as_ref().unwrap();
        assert_eq!(control.graft.len(), 1);
        assert!(control.prune.is_empty());
    }

    #[test]
    fn control_ids_are_capped_and_idontwant_cancels_forwards() {
        let mut outbox = Outbox::default();
        let refused = outbox.push_idontwant((0..15u8).map(|n| Bytes::from(vec![n])), LIMITS);
        assert_eq!(refused, 5);
        outbox.push_message(&id(1), &msg(1, 1), Priority::Forward, LIMITS);
        assert!(outbox.cancel_forward(&id(1)));
        assert!(!outbox.cancel_forward(&id(1)));
        assert_eq!(outbox.queued_messages(), 0);
        let mut out = Vec::new();
        outbox.write(1000, 1000, &mut out);
        // The cap frees up as ids are sent.
        assert_eq!(outbox.push_iwant([Bytes::from_static(b"x")], LIMITS), 0);
    }
}
