//! The per-peer writers: they move the core's queued RPCs onto the peer's stream, answer
//! [`PubSub::flush`](super::PubSub::flush), and finish the link gracefully when the host
//! closes.

use std::sync::Arc;

use futures::channel::{mpsc, oneshot};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use lp2p_core::PeerId;
use lp2p_host::{Connection, HostStream};
use tracing::{debug, trace};

use super::{AnyCore, Flushed, Inner, Link, State, WRITE_BUFFER_KEEP};

/// What a writer does next, decided under the state lock.
enum Next {
    /// A batch was taken into the buffer: write it.
    Write,
    /// Nothing more queued, but the last batches are not flushed yet.
    Flush,
    /// Everything queued has been handed to the stream: wait for more.
    Wait,
    /// Everything queued has been handed to the stream and the host is closing: finish.
    Finish,
    /// The link this writer serves is gone or replaced: stop.
    Stop,
}

/// Bytes read at a time while waiting for a peer to close its end of our stream (it should
/// send nothing on it; whatever it sends is dropped).
const DRAIN_CHUNK: usize = 1024;

impl Inner {
    /// The writer: on each wake-up, pulls the peer's queued RPCs and writes them, taking more
    /// only once the stream accepted the previous batch.
    pub(super) async fn write_outbound(
        self: Arc<Self>,
        peer: PeerId,
        generation: u64,
        mut stream: HostStream,
        mut notified: mpsc::Receiver<()>,
    ) {
        let mut buf = Vec::new();
        let mut unflushed = false;
        loop {
            match self.next(&peer, generation, &mut buf, unflushed) {
                Next::Write => {
                    if let Err(err) = stream.write_all(&buf).await {
                        debug!(%peer, %err, "pubsub: writing to peer failed");
                        self.link_failed(&peer, generation);
                        return;
                    }
                    trace!(%peer, bytes = buf.len(), "pubsub: wrote RPCs");
                    unflushed = true;
                    buf.clear();
                    if buf.capacity() > WRITE_BUFFER_KEEP {
                        buf = Vec::new();
                    }
                }
                Next::Flush => {
                    if let Err(err) = stream.flush().await {
                        debug!(%peer, %err, "pubsub: flushing to peer failed");
                        self.link_failed(&peer, generation);
                        return;
                    }
                    unflushed = false;
                }
                Next::Wait => {
                    if notified.next().await.is_none() {
                        // The link was removed: dropping the stream closes it.
                        return;
                    }
                }
                Next::Stop => return,
                Next::Finish => {
                    let _ = stream.close().await;
                    wait_for_remote_close(&peer, &mut stream).await;
                    self.finished(&peer, generation);
                    return;
                }
            }
        }
    }

    /// The writer for floodsub peers: each batch goes out as one RPC (the batch's RPCs merged)
    /// on a stream of its own, closed after it. rust-libp2p's floodsub reads exactly one RPC
    /// per inbound stream and drops the stream, so a long-lived stream would lose everything
    /// after the first RPC; go-libp2p reads any stream to its end, so it takes these too.
    pub(super) async fn write_floodsub(
        self: Arc<Self>,
        connection: Connection,
        generation: u64,
        first: HostStream,
        mut notified: mpsc::Receiver<()>,
    ) {
        let peer = connection.peer();
        let mut first = Some(first);
        // The most recent batch's stream (closed on our side): finishing waits for its end.
        let mut last: Option<HostStream> = None;
        let mut buf = Vec::new();
        loop {
            // Each batch is written and its stream closed before the next look at the queue,
            // so nothing is ever left unflushed between looks.
            match self.next(&peer, generation, &mut buf, false) {
                Next::Write => {}
                Next::Flush | Next::Wait => {
                    if notified.next().await.is_none() {
                        return;
                    }
                    continue;
                }
                Next::Stop => return,
                Next::Finish => {
                    if let Some(stream) = &mut last {
                        wait_for_remote_close(&peer, stream).await;
                    }
                    self.finished(&peer, generation);
                    return;
                }
            }
            for frame in merge_frames(&buf, self.max_frame) {
                let stream = match first.take() {
                    Some(stream) => Ok(stream),
                    None => match self.host.upgrade() {
                        Some(host) => {
                            host.new_stream_on(&connection, [crate::FLOODSUB_PROTOCOL])
                                .await
                        }
                        None => return,
                    },
                };
                let sent = match stream {
                    Ok(mut stream) => {
                        let written = match stream.write_all(&frame).await {
                            Ok(()) => stream.close().await,
                            Err(err) => Err(err),
                        };
                        last = Some(stream);
                        written
                    }
                    Err(err) => Err(std::io::Error::other(err)),
                };
                if let Err(err) = sent {
                    debug!(%peer, %err, "pubsub: writing to floodsub peer failed");
                    self.link_failed(&peer, generation);
                    return;
                }
            }
            buf.clear();
            if buf.capacity() > WRITE_BUFFER_KEEP {
                buf = Vec::new();
            }
        }
    }

    /// The writers' one look at the queue, under one lock so that output queued meanwhile is
    /// never mistaken for written: takes the peer's next batch into `buf`, or finds nothing
    /// queued. With nothing queued and nothing unwritten (`unflushed` false), everything
    /// queued before has been handed to the stream: the [`PubSub::flush`](super::PubSub::flush)
    /// callers waiting on this peer are answered, and a closing host's writer finishes.
    fn next(&self, peer: &PeerId, generation: u64, buf: &mut Vec<u8>, unflushed: bool) -> Next {
        let mut state = self.lock();
        let current = state
            .peers
            .get(peer)
            .is_some_and(|e| e.generation == generation);
        if !current {
            // A stale writer (its link moved or ended) takes nothing: what is queued belongs
            // to the peer's current link.
            return Next::Stop;
        }
        let more = with_core!(&mut state.core, c => c.poll_transmit(peer, buf));
        let entry = state
            .peers
            .get_mut(peer)
            .filter(|e| e.generation == generation);
        match entry {
            _ if more => {
                if let Some(entry) = entry {
                    entry.writing = true;
                }
                Next::Write
            }
            _ if unflushed => Next::Flush,
            Some(entry) => {
                entry.writing = false;
                for waiter in entry.drain_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                if entry.finishing {
                    Next::Finish
                } else {
                    Next::Wait
                }
            }
            None => Next::Wait,
        }
    }

    /// The writer finished the link: answers [`finish_links`](Inner::finish_links).
    fn finished(&self, peer: &PeerId, generation: u64) {
        let mut state = self.lock();
        if let Some(entry) = state
            .peers
            .get_mut(peer)
            .filter(|e| e.generation == generation)
        {
            for waiter in entry.finish_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// [`PubSub::flush`](super::PubSub::flush): waits for every linked peer with queued or
    /// unwritten output.
    pub(super) async fn flush_queues(&self) -> Flushed {
        let (waits, linked) = {
            let mut state = self.lock();
            let linked = ready_peers(&state);
            let State { core, peers, .. } = &mut *state;
            let waits: Vec<(PeerId, oneshot::Receiver<()>)> = peers
                .iter_mut()
                .filter(|(_, entry)| matches!(entry.link, Link::Ready { .. }))
                .filter_map(|(peer, entry)| {
                    let queued = with_core!(&*core, c => c.has_pending_output(peer));
                    (queued || entry.writing).then(|| {
                        let (tx, rx) = oneshot::channel();
                        entry.drain_waiters.push(tx);
                        (*peer, rx)
                    })
                })
                .collect();
            (waits, linked)
        };
        settle(waits, linked).await
    }

    /// The close hook: every writer drains its queue, half-closes its stream and waits until
    /// the peer closed its end too. rust-libp2p and go-libp2p read an inbound pubsub stream
    /// to its end before closing their side, and rust-libp2p drops what it has not read yet
    /// when the connection closes: so the peer's close is the proof it has taken every
    /// message, and only then may the host close the connection. Bounded by the host's
    /// close grace.
    pub(super) async fn finish_links(&self) -> Flushed {
        let (waits, linked) = {
            let mut state = self.lock();
            let linked = ready_peers(&state);
            let waits: Vec<(PeerId, oneshot::Receiver<()>)> = state
                .peers
                .iter_mut()
                .filter_map(|(peer, entry)| {
                    let Link::Ready { writer, .. } = &mut entry.link else {
                        return None;
                    };
                    entry.finishing = true;
                    // A full channel means a wake-up is pending already.
                    let _ = writer.try_send(());
                    let (tx, rx) = oneshot::channel();
                    entry.finish_waiters.push(tx);
                    Some((*peer, rx))
                })
                .collect();
            (waits, linked)
        };
        settle(waits, linked).await
    }
}

fn ready_peers(state: &State) -> usize {
    state
        .peers
        .values()
        .filter(|e| matches!(e.link, Link::Ready { .. }))
        .count()
}

/// Waits for every peer's answer; a dropped sender means the link went down first.
async fn settle(waits: Vec<(PeerId, oneshot::Receiver<()>)>, linked: usize) -> Flushed {
    let outcomes = futures::future::join_all(
        waits
            .into_iter()
            .map(|(peer, rx)| rx.map(move |answered| (peer, answered.is_ok()))),
    )
    .await;
    let lost: Vec<PeerId> = outcomes
        .into_iter()
        .filter_map(|(peer, answered)| (!answered).then_some(peer))
        .collect();
    Flushed {
        peers: linked.saturating_sub(lost.len()),
        lost,
    }
}

/// Reads (and drops) until the peer closes or resets its end of our stream.
async fn wait_for_remote_close(peer: &PeerId, stream: &mut HostStream) {
    let mut scratch = [0u8; DRAIN_CHUNK];
    loop {
        match stream.read(&mut scratch).await {
            Ok(0) => {
                trace!(%peer, "pubsub: peer closed its end of our stream");
                return;
            }
            Ok(_) => {}
            Err(err) => {
                trace!(%peer, %err, "pubsub: our stream ended with an error");
                return;
            }
        }
    }
}

/// Merges LP-framed RPCs into as few frames as fit in `max` bytes each: protobuf messages
/// whose fields are all repeated (or embedded messages) merge by concatenation, so the
/// bodies joined are one RPC carrying every subscription and message of the batch.
fn merge_frames(framed: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut rest = framed;
    while let Ok(Some((len, prefix))) = lp2p_core::varint::decode(rest) {
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|len| prefix.checked_add(len))
        else {
            break;
        };
        let (Some(rpc), Some(after)) = (rest.get(prefix..end), rest.get(end..)) else {
            break;
        };
        if !body.is_empty() && body.len().saturating_add(rpc.len()) > max {
            let mut frame = Vec::with_capacity(body.len() + 10);
            lp2p_core::framing::encode_frame(&body, &mut frame);
            frames.push(frame);
            body.clear();
        }
        body.extend_from_slice(rpc);
        rest = after;
    }
    if !body.is_empty() {
        let mut frame = Vec::with_capacity(body.len() + 10);
        lp2p_core::framing::encode_frame(&body, &mut frame);
        frames.push(frame);
    }
    frames
}
