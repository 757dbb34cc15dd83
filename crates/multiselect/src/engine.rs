//! The engine both async front ends share: runs a sans-IO negotiation core over a
//! `futures::io` stream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{ProtocolId, varint};

use crate::buffer::{ReadBuffer, SendBuffer};
use crate::{Dialer, ListRequest, Listener, Matcher, MultiselectError};

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
pub(crate) fn recv_buffer<N: Negotiation>(core: &N) -> ReadBuffer {
    ReadBuffer::new(core.max_message_len().saturating_add(varint::MAX_LEN))
}

/// Runs `core` over `io` until it has an outcome: sends what it queues (flushing after each
/// batch), reads into `recv` and feeds it. Bytes past the negotiation stay in `recv`.
///
/// With `hold_last`, what the core queues together with its outcome (a listener's final
/// answer) is left unsent in `send`, for the caller to send with the first bytes that
/// follow it.
pub(crate) fn poll_negotiate<S, N>(
    io: &mut S,
    core: &mut N,
    recv: &mut ReadBuffer,
    send: &mut SendBuffer,
    hold_last: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<N::Outcome, MultiselectError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    N: Negotiation,
{
    loop {
        core.poll_transmit(send.buf_mut());
        if hold_last && let Some(outcome) = core.outcome() {
            return Poll::Ready(Ok(outcome));
        }
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
