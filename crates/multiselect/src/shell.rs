//! The async shell: moves bytes between a `futures::io` stream and the sans-IO cores.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::future::poll_fn;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{ProtocolId, varint};

use crate::buffer::{ReadBuffer, SendBuffer};
use crate::{
    Config, Dialer, ListRequest, Listener, Matcher, MultiselectError, Negotiated, Version,
};

/// What the shell needs from a sans-IO core.
pub(crate) trait Negotiation {
    /// What a finished negotiation yields.
    type Outcome;
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError>;
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool;
    /// The outcome, once the negotiation is done (may be taken only once).
    fn outcome(&mut self) -> Option<Self::Outcome>;
    /// The largest message the core reads (sizes the receive buffer).
    fn max_message_len(&self) -> usize;
    fn waiting_for(&self) -> &'static str;
}

impl Negotiation for Dialer {
    type Outcome = ProtocolId;
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError> {
        Dialer::handle_input(self, input)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        Dialer::poll_transmit(self, out)
    }
    fn outcome(&mut self) -> Option<ProtocolId> {
        self.selected().cloned()
    }
    fn max_message_len(&self) -> usize {
        Dialer::max_message_len(self)
    }
    fn waiting_for(&self) -> &'static str {
        Dialer::waiting_for(self)
    }
}

impl<M: Matcher> Negotiation for Listener<M> {
    type Outcome = ProtocolId;
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError> {
        Listener::handle_input(self, input)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        Listener::poll_transmit(self, out)
    }
    fn outcome(&mut self) -> Option<ProtocolId> {
        self.selected().cloned()
    }
    fn max_message_len(&self) -> usize {
        Listener::max_message_len(self)
    }
    fn waiting_for(&self) -> &'static str {
        Listener::waiting_for(self)
    }
}

impl Negotiation for ListRequest {
    type Outcome = Vec<ProtocolId>;
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError> {
        ListRequest::handle_input(self, input)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        ListRequest::poll_transmit(self, out)
    }
    fn outcome(&mut self) -> Option<Vec<ProtocolId>> {
        self.take_protocols()
    }
    fn max_message_len(&self) -> usize {
        ListRequest::max_message_len(self)
    }
    fn waiting_for(&self) -> &'static str {
        ListRequest::waiting_for(self)
    }
}

/// A receive buffer that holds any one message `core` accepts.
fn recv_buffer<N: Negotiation>(core: &N) -> ReadBuffer {
    ReadBuffer::new(core.max_message_len().saturating_add(varint::MAX_LEN))
}

/// Runs `core` over `io` until it has an outcome: sends what it queues (flushing after each
/// batch), reads into `recv` and feeds it. Bytes past the negotiation stay in `recv`.
pub(crate) fn poll_negotiate<S, N>(
    io: &mut S,
    core: &mut N,
    recv: &mut ReadBuffer,
    send: &mut SendBuffer,
    cx: &mut Context<'_>,
) -> Poll<Result<N::Outcome, MultiselectError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    N: Negotiation,
{
    loop {
        core.poll_transmit(send.buf_mut());
        ready!(send.poll_send(io, cx))?;
        if let Some(outcome) = core.outcome() {
            return Poll::Ready(Ok(outcome));
        }
        if !recv.is_empty() {
            let used = core.handle_input(recv.filled())?;
            if used > 0 {
                recv.consume(used);
                continue;
            }
        }
        let spare = recv.spare();
        if spare.is_empty() {
            // Cannot happen: the buffer holds a whole message of the largest size the core
            // accepts, and the core consumes every whole message. Fail rather than spin.
            return Poll::Ready(Err(MultiselectError::MessageTooLong {
                len: recv.filled().len() as u64,
                max: core.max_message_len(),
            }));
        }
        let n = ready!(Pin::new(&mut *io).poll_read(cx, spare))?;
        if n == 0 {
            return Poll::Ready(Err(MultiselectError::UnexpectedEof {
                while_waiting_for: core.waiting_for(),
            }));
        }
        recv.advance(n);
    }
}

/// Negotiates a protocol as the dialer, with the default [`Config`].
///
/// Proposes `protocols` in order, falling back to the next one on `na`; the header and the
/// first proposal leave in one write. Fails with [`MultiselectError::NoCommonProtocol`]
/// (naming every protocol offered) when the listener refuses them all.
///
/// With [`Version::V1Lazy`] and exactly one protocol it returns at once, without any I/O:
/// the header and proposal go out with the first write on the returned stream, and the
/// listener's answer is checked on its first read.
///
/// On failure the stream is dropped, which closes it.
pub async fn dialer_select<S, I>(
    io: S,
    protocols: I,
    version: Version,
) -> Result<(ProtocolId, Negotiated<S>), MultiselectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    I: IntoIterator,
    I::Item: Into<ProtocolId>,
{
    dialer_select_with_config(io, protocols, version, Config::default()).await
}

/// [`dialer_select`] with explicit limits.
pub async fn dialer_select_with_config<S, I>(
    mut io: S,
    protocols: I,
    version: Version,
    config: Config,
) -> Result<(ProtocolId, Negotiated<S>), MultiselectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    I: IntoIterator,
    I::Item: Into<ProtocolId>,
{
    let mut dialer = Dialer::new(protocols, version, config)?;
    let mut send = SendBuffer::default();
    dialer.poll_transmit(send.buf_mut());
    if dialer.is_lazy() {
        let protocol = dialer.proposed().clone();
        tracing::debug!(%protocol, "multistream-select: settled lazily");
        return Ok((protocol, Negotiated::expecting(io, dialer, send)));
    }
    let mut recv = recv_buffer(&dialer);
    let protocol =
        poll_fn(|cx| poll_negotiate(&mut io, &mut dialer, &mut recv, &mut send, cx)).await?;
    Ok((protocol, Negotiated::completed(io, recv)))
}

/// Negotiates a protocol as the listener, with the default [`Config`].
///
/// Answers each proposal that `matcher` does not accept with `na` and keeps listening,
/// answers `ls` with the matcher's list, and returns the first accepted protocol with the
/// stream; bytes the dialer sent right behind its proposal are the first bytes read from
/// it. Our header and our first answer leave in one write. Fails after
/// [`MAX_ROUNDS`](crate::MAX_ROUNDS) proposals, on any malformed message, and when the
/// dialer closes the stream (as a dialer that found no common protocol does).
pub async fn listener_select<S, M>(
    io: S,
    matcher: M,
) -> Result<(ProtocolId, Negotiated<S>), MultiselectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Matcher,
{
    listener_select_with_config(io, matcher, Config::default()).await
}

/// [`listener_select`] with explicit limits.
pub async fn listener_select_with_config<S, M>(
    mut io: S,
    matcher: M,
    config: Config,
) -> Result<(ProtocolId, Negotiated<S>), MultiselectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Matcher,
{
    let mut listener = Listener::new(matcher, config);
    let mut send = SendBuffer::default();
    let mut recv = recv_buffer(&listener);
    let protocol =
        poll_fn(|cx| poll_negotiate(&mut io, &mut listener, &mut recv, &mut send, cx)).await?;
    Ok((protocol, Negotiated::completed(io, recv)))
}

/// Asks the listener for its protocols with `ls` (a diagnostic: the spec makes `ls`
/// optional and go-multistream answers it with `na`, reported as
/// [`MultiselectError::UnexpectedMessage`]). The stream is closed afterwards.
pub async fn list_protocols<S>(
    mut io: S,
    config: Config,
) -> Result<Vec<ProtocolId>, MultiselectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = ListRequest::new(config);
    let mut send = SendBuffer::default();
    let mut recv = recv_buffer(&request);
    poll_fn(|cx| poll_negotiate(&mut io, &mut request, &mut recv, &mut send, cx)).await
}
