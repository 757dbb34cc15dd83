//! The service on a host: [`RequestResponse`] sends requests and hands inbound ones to the
//! application.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::{mpsc, oneshot};
use futures::{AsyncWriteExt, SinkExt, Stream, StreamExt};
use lp2p_core::{PeerId, ProtocolId, RuntimeHandle};
use lp2p_host::{Host, HostError, HostStream, WeakHost};
use tracing::{debug, warn};

use crate::codec::Codec;
use crate::config::{Config, ProtocolSupport};
use crate::error::RequestError;
use crate::message::{ReadError, read_message};
use crate::slots::{PeerSlot, PerPeer, Slot, Slots};

/// Counters of what the service refused or lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inbound streams reset because their peer had `max_inbound_per_peer` requests held.
    pub inbound_refused: u64,
    /// Inbound requests reset because they were over the codec's size limit.
    pub inbound_too_large: u64,
    /// Inbound requests reset because the codec could not decode them.
    pub inbound_malformed: u64,
    /// Inbound exchanges that ran out of time (reading, queueing or answering).
    pub inbound_timeouts: u64,
    /// Inbound requests closed without a response (the application dropped the channel).
    pub responses_omitted: u64,
    /// Responses that could not be written (the stream broke).
    pub responses_failed: u64,
}

#[derive(Default)]
struct Counters {
    inbound_refused: AtomicU64,
    inbound_too_large: AtomicU64,
    inbound_malformed: AtomicU64,
    inbound_timeouts: AtomicU64,
    responses_omitted: AtomicU64,
    responses_failed: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }
}

struct Inner<C: Codec> {
    host: WeakHost,
    runtime: RuntimeHandle,
    codec: C,
    config: Config,
    /// The protocols we send requests with, in preference order.
    outbound: Vec<ProtocolId>,
    inbound_tx: mpsc::Sender<InboundRequest<C>>,
    inbound_rx: Mutex<Option<mpsc::Receiver<InboundRequest<C>>>>,
    outbound_slots: Arc<Slots>,
    inbound_per_peer: Arc<PerPeer>,
    counters: Counters,
}

/// A request-response protocol on a [`Host`]: one stream per request, the request written
/// and the stream half-closed, the response read to the end (rust-libp2p's
/// `request_response` on the wire). Cheap to clone (a handle).
///
/// ```
/// use futures::StreamExt;
/// use lp2p_host::Host;
/// use lp2p_request_response::{Config, LengthPrefixed, ProtocolSupport, RequestResponse};
///
/// # lp2p_core::runtime::block_on(async {
/// async fn host() -> Host {
///     Host::builder()
///         .transport(lp2p_memory::MemoryTransport::default())
///         .security(lp2p_noise::Noise::new())
///         .muxer(lp2p_yamux::Yamux::default())
///         .listen_on("/memory/0".parse().unwrap())
///         .build()
///         .await
///         .unwrap()
/// }
/// let (server, client) = (host().await, host().await);
/// let protocols = [("/shout/1.0.0", ProtocolSupport::Full)];
/// let service = RequestResponse::new(&server, protocols, LengthPrefixed::default(), Config::default())?;
/// service.serve(|_peer, request: Vec<u8>| async move { Some(request.to_ascii_uppercase()) });
///
/// let requester = RequestResponse::new(&client, protocols, LengthPrefixed::default(), Config::default())?;
/// client.connect(server.local_peer_id(), server.listen_addrs()).await?;
/// let answer = requester.send_request(&server.local_peer_id(), b"hello".to_vec()).await?;
/// assert_eq!(answer, b"HELLO");
/// # client.close().await;
/// # server.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct RequestResponse<C: Codec> {
    inner: Arc<Inner<C>>,
}

impl<C: Codec> Clone for RequestResponse<C> {
    fn clone(&self) -> Self {
        RequestResponse {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Codec> fmt::Debug for RequestResponse<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestResponse")
            .field("outbound", &self.inner.outbound)
            .finish_non_exhaustive()
    }
}

/// A request a peer sent us. Answer it with [`InboundRequest::respond`]; dropping it closes
/// the stream without an answer (the requester sees "closed without answering").
pub struct InboundRequest<C: Codec> {
    /// Who asked.
    pub peer: PeerId,
    /// The protocol it asked with.
    pub protocol: ProtocolId,
    /// The request.
    pub request: C::Request,
    channel: ResponseChannel<C>,
}

impl<C: Codec> fmt::Debug for InboundRequest<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundRequest")
            .field("peer", &self.peer)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> InboundRequest<C> {
    /// Sends the response (encoded now; written by the stream's task). Fails when it is over
    /// the codec's response limit or cannot be encoded (the stream is then reset), or when
    /// the stream is gone (timed out, or the connection closed).
    pub fn respond(self, response: C::Response) -> Result<(), RequestError> {
        self.channel.respond(response)
    }

    /// Splits off the channel, to answer after handing the request elsewhere.
    pub fn into_parts(self) -> (PeerId, C::Request, ResponseChannel<C>) {
        (self.peer, self.request, self.channel)
    }
}

/// What a stream's task does with the request's stream once the application decided.
enum Answer {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Reset the stream (the response could not be produced).
    Reset,
}

/// Where the response to one inbound request goes.
pub struct ResponseChannel<C: Codec> {
    peer: PeerId,
    tx: oneshot::Sender<Answer>,
    inner: Arc<Inner<C>>,
}

impl<C: Codec> fmt::Debug for ResponseChannel<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseChannel")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> ResponseChannel<C> {
    /// Whether the requester's stream is still waiting for the answer.
    pub fn is_open(&self) -> bool {
        !self.tx.is_canceled()
    }

    /// See [`InboundRequest::respond`].
    // By value: the response is the caller's to give away, as with a channel send.
    #[allow(clippy::needless_pass_by_value)]
    pub fn respond(self, response: C::Response) -> Result<(), RequestError> {
        let peer = self.peer;
        let mut bytes = Vec::new();
        let encoded = self.inner.codec.encode_response(&response, &mut bytes);
        let max = self.inner.codec.max_response_size();
        let (answer, result) = match encoded {
            Err(source) => (
                Answer::Reset,
                Err(RequestError::Codec {
                    peer,
                    what: "response",
                    source,
                }),
            ),
            Ok(()) if bytes.len() > max => (
                Answer::Reset,
                Err(RequestError::MessageTooLarge {
                    peer,
                    what: "response",
                    size: bytes.len(),
                    max,
                }),
            ),
            Ok(()) => (Answer::Bytes(bytes), Ok(())),
        };
        if self.tx.send(answer).is_err() {
            return Err(RequestError::ConnectionClosed {
                peer,
                cause: "the request's stream is gone (timed out or closed)".to_owned(),
            });
        }
        result
    }
}

/// The inbound requests, in arrival order (see [`RequestResponse::requests`]). Ends when the
/// host closes.
///
/// It keeps the service running: the protocol stays answered while this stream (or the
/// task of [`RequestResponse::serve`], which owns it) lives, even once every
/// [`RequestResponse`] handle is dropped. Without it, the host would keep advertising the
/// protocol and close each request's stream unanswered.
pub struct InboundRequests<C: Codec> {
    rx: mpsc::Receiver<InboundRequest<C>>,
    _service: Arc<Inner<C>>,
}

impl<C: Codec> fmt::Debug for InboundRequests<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundRequests").finish_non_exhaustive()
    }
}

impl<C: Codec> Stream for InboundRequests<C> {
    type Item = InboundRequest<C>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_next_unpin(cx)
    }
}

/// Closes the inbound queue when the host's service tasks are aborted (host closed).
struct CloseOnDrop<C: Codec>(mpsc::Sender<InboundRequest<C>>);

impl<C: Codec> Drop for CloseOnDrop<C> {
    fn drop(&mut self) {
        self.0.close_channel();
    }
}

impl<C: Codec> RequestResponse<C> {
    /// Starts the protocol on `host`: registers a stream handler for every protocol that
    /// supports inbound requests (so identify advertises it) and sends requests with those
    /// that support outbound ones, in the order given.
    pub fn new<P: Into<ProtocolId>>(
        host: &Host,
        protocols: impl IntoIterator<Item = (P, ProtocolSupport)>,
        codec: C,
        config: Config,
    ) -> Result<Self, RequestError> {
        if host.is_closed() {
            return Err(RequestError::Closed);
        }
        let protocols: Vec<(ProtocolId, ProtocolSupport)> =
            protocols.into_iter().map(|(p, s)| (p.into(), s)).collect();
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue.saturating_sub(1));
        let inner = Arc::new(Inner {
            host: host.downgrade(),
            runtime: host.runtime().clone(),
            outbound: protocols
                .iter()
                .filter(|(_, s)| s.outbound())
                .map(|(p, _)| p.clone())
                .collect(),
            outbound_slots: Slots::new(config.max_outbound_in_flight.max(1)),
            inbound_per_peer: PerPeer::new(config.max_inbound_per_peer),
            inbound_tx: inbound_tx.clone(),
            inbound_rx: Mutex::new(Some(inbound_rx)),
            codec,
            config,
            counters: Counters::default(),
        });
        for (protocol, support) in &protocols {
            if support.inbound() {
                let handler = Arc::downgrade(&inner);
                host.set_stream_handler(protocol.clone(), move |stream: HostStream| {
                    let inner = handler.upgrade();
                    async move {
                        if let Some(inner) = inner {
                            inner.serve_stream(stream).await;
                        }
                    }
                });
            }
        }
        let closer = CloseOnDrop(inbound_tx);
        host.spawn(async move {
            let _closer = closer;
            futures::future::pending::<()>().await;
        });
        Ok(RequestResponse { inner })
    }

    /// The inbound requests: `Some` the first time, `None` after (one consumer). The stream
    /// keeps the service answering after this handle is dropped (see [`InboundRequests`]).
    pub fn requests(&self) -> Option<InboundRequests<C>> {
        self.inner
            .inbound_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|rx| InboundRequests {
                rx,
                _service: self.inner.clone(),
            })
    }

    /// Answers every inbound request with `handler` (each in its own task; `None` closes the
    /// stream without an answer) until the host closes, also after this handle is dropped.
    /// Takes the [`requests`](Self::requests) stream; does nothing if it was taken already.
    pub fn serve<F, Fut>(&self, handler: F)
    where
        F: Fn(PeerId, C::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<C::Response>> + Send + 'static,
    {
        let Some(mut requests) = self.requests() else {
            return;
        };
        let Some(host) = self.inner.host.upgrade() else {
            return;
        };
        let runtime = self.inner.runtime.clone();
        let handler = Arc::new(handler);
        host.spawn(async move {
            while let Some(request) = requests.next().await {
                let handler = handler.clone();
                runtime.spawn_detached(async move {
                    let (peer, request, channel) = request.into_parts();
                    if let Some(response) = handler(peer, request).await
                        && let Err(err) = channel.respond(response)
                    {
                        debug!(%peer, %err, "request-response: response not sent");
                    }
                });
            }
        });
    }

    /// Sends `request` to `peer` (connecting if needed) on a new stream, with the first of
    /// our outbound protocols it speaks, and waits for the response. Waits first for a free
    /// slot when `max_outbound_in_flight` requests are running (back-pressure).
    pub async fn send_request(
        &self,
        peer: &PeerId,
        request: C::Request,
    ) -> Result<C::Response, RequestError> {
        let inner = &self.inner;
        let peer = *peer;
        if inner.outbound.is_empty() {
            return Err(RequestError::OutboundDisabled);
        }
        let mut bytes = Vec::new();
        inner
            .codec
            .encode_request(&request, &mut bytes)
            .map_err(|source| RequestError::Codec {
                peer,
                what: "request",
                source,
            })?;
        let max = inner.codec.max_request_size();
        if bytes.len() > max {
            return Err(RequestError::MessageTooLarge {
                peer,
                what: "request",
                size: bytes.len(),
                max,
            });
        }
        let _slot: Slot = inner.outbound_slots.acquire().await;
        let host = inner.host.upgrade().ok_or(RequestError::Closed)?;
        let after = inner.config.request_timeout;
        let deadline = inner.runtime.now() + after;
        let opened = inner
            .runtime
            .timeout(
                after,
                host.new_stream(&peer, inner.outbound.iter().cloned()),
            )
            .await;
        let mut stream = match opened {
            Err(_) => return Err(RequestError::Timeout { peer, after }),
            Ok(Err(err)) => {
                let connected = host.connected_peers().contains(&peer);
                return Err(open_error(peer, err, after, connected));
            }
            Ok(Ok(stream)) => stream,
        };
        drop(host);
        let left = deadline.saturating_duration_since(inner.runtime.now());
        let exchanged = inner
            .runtime
            .timeout(
                left,
                exchange(&mut stream, &bytes, inner.codec.max_response_size()),
            )
            .await;
        let closed = stream.connection().is_closed();
        let response = match exchanged {
            Err(_) => {
                lp2p_core::Stream::reset(&mut stream);
                return Err(RequestError::Timeout { peer, after });
            }
            Ok(Err(ExchangeError::Io(err))) => {
                return Err(RequestError::from_io(peer, err, closed));
            }
            Ok(Err(ExchangeError::TooLarge(size))) => {
                lp2p_core::Stream::reset(&mut stream);
                return Err(RequestError::MessageTooLarge {
                    peer,
                    what: "response",
                    size,
                    max: inner.codec.max_response_size(),
                });
            }
            Ok(Ok(response)) => response,
        };
        if response.is_empty() {
            return Err(if closed {
                RequestError::ConnectionClosed {
                    peer,
                    cause: "the stream ended with the connection".to_owned(),
                }
            } else {
                RequestError::RemoteClosedWithoutAnswer { peer }
            });
        }
        inner
            .codec
            .decode_response(&response)
            .map_err(|source| RequestError::Codec {
                peer,
                what: "response",
                source,
            })
    }

    /// Counters of what was refused or lost.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            inbound_refused: c.inbound_refused.load(Ordering::Relaxed),
            inbound_too_large: c.inbound_too_large.load(Ordering::Relaxed),
            inbound_malformed: c.inbound_malformed.load(Ordering::Relaxed),
            inbound_timeouts: c.inbound_timeouts.load(Ordering::Relaxed),
            responses_omitted: c.responses_omitted.load(Ordering::Relaxed),
            responses_failed: c.responses_failed.load(Ordering::Relaxed),
        }
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.inner.codec
    }
}

enum ExchangeError {
    Io(std::io::Error),
    TooLarge(usize),
}

/// Writes the request, half-closes, reads the response to its end.
async fn exchange(
    stream: &mut HostStream,
    request: &[u8],
    max_response: usize,
) -> Result<Vec<u8>, ExchangeError> {
    stream.write_all(request).await.map_err(ExchangeError::Io)?;
    stream.close().await.map_err(ExchangeError::Io)?;
    read_message(stream, max_response)
        .await
        .map_err(|e| match e {
            ReadError::Io(err) => ExchangeError::Io(err),
            ReadError::TooLarge { size } => ExchangeError::TooLarge(size),
        })
}

fn open_error(
    peer: PeerId,
    err: HostError,
    after: std::time::Duration,
    connected: bool,
) -> RequestError {
    match err {
        HostError::ProtocolNotSupported { offered, .. } => RequestError::ProtocolNotSupported {
            peer,
            protocols: offered,
        },
        HostError::NegotiationTimeout { .. } => RequestError::Timeout { peer, after },
        HostError::Closed => RequestError::Closed,
        HostError::Negotiation { source, .. } => {
            // A responder that refuses the stream right after accepting its protocol (over
            // its per-peer limit) resets it while our side still reads the confirmation.
            let reset = io_kind(&source) == Some(std::io::ErrorKind::ConnectionReset);
            if reset && connected {
                RequestError::Reset { peer }
            } else {
                RequestError::ConnectionClosed {
                    peer,
                    cause: format!("negotiating the protocol failed: {source}"),
                }
            }
        }
        other => RequestError::Dial {
            peer,
            source: Box::new(other),
        },
    }
}

/// The kind of the first I/O error in `err`'s source chain.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

impl<C: Codec> Inner<C> {
    /// Serves one inbound stream: read the request, queue it for the application, write its
    /// answer; all within the request timeout.
    async fn serve_stream(self: Arc<Self>, mut stream: HostStream) {
        let peer = stream.peer();
        let Some(peer_slot) = self.inbound_per_peer.try_acquire(peer) else {
            let n = Counters::bump(&self.counters.inbound_refused);
            warn!(%peer, refused_total = n, limit = self.config.max_inbound_per_peer, "request-response: peer has too many requests held; stream reset");
            lp2p_core::Stream::reset(&mut stream);
            return;
        };
        let after = self.config.request_timeout;
        let served = self
            .runtime
            .timeout(after, self.clone().answer(&mut stream, peer_slot))
            .await;
        if served.is_err() {
            let n = Counters::bump(&self.counters.inbound_timeouts);
            debug!(%peer, timeouts_total = n, ?after, "request-response: inbound exchange timed out; stream reset");
            lp2p_core::Stream::reset(&mut stream);
        }
    }

    async fn answer(self: Arc<Self>, stream: &mut HostStream, _slot: PeerSlot) {
        let peer = stream.peer();
        let bytes = match read_message(stream, self.codec.max_request_size()).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge { size }) => {
                let n = Counters::bump(&self.counters.inbound_too_large);
                debug!(%peer, size, max = self.codec.max_request_size(), too_large_total = n, "request-response: request over the limit; stream reset");
                lp2p_core::Stream::reset(stream);
                return;
            }
            Err(ReadError::Io(err)) => {
                debug!(%peer, %err, "request-response: reading the request failed");
                lp2p_core::Stream::reset(stream);
                return;
            }
        };
        let request = match self.codec.decode_request(&bytes) {
            Ok(request) => request,
            Err(err) => {
                let n = Counters::bump(&self.counters.inbound_malformed);
                debug!(%peer, %err, malformed_total = n, "request-response: undecodable request; stream reset");
                lp2p_core::Stream::reset(stream);
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        let inbound = InboundRequest {
            peer,
            protocol: stream.protocol().clone(),
            request,
            channel: ResponseChannel {
                peer,
                tx,
                inner: self.clone(),
            },
        };
        // Back-pressure: wait while the application's queue is full.
        let mut queue = self.inbound_tx.clone();
        if queue.send(inbound).await.is_err() {
            // The service is closing.
            lp2p_core::Stream::reset(stream);
            return;
        }
        match rx.await {
            Ok(Answer::Bytes(response)) => {
                let written = match stream.write_all(&response).await {
                    Ok(()) => stream.close().await,
                    Err(err) => Err(err),
                };
                if let Err(err) = written {
                    let n = Counters::bump(&self.counters.responses_failed);
                    debug!(%peer, %err, failed_total = n, "request-response: writing the response failed");
                }
            }
            Ok(Answer::Reset) => lp2p_core::Stream::reset(stream),
            Err(oneshot::Canceled) => {
                let n = Counters::bump(&self.counters.responses_omitted);
                debug!(%peer, omitted_total = n, "request-response: request dropped without a response; stream closed");
                let _ = stream.close().await;
            }
        }
    }
}
