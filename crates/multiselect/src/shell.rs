//! The async shell: moves bytes between a `futures::io` stream and the sans-IO cores.

use futures::future::poll_fn;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::ProtocolId;

use crate::buffer::SendBuffer;
use crate::engine::{poll_negotiate, recv_buffer};
use crate::{
    Config, Dialer, ListRequest, Listener, Matcher, MultiselectError, Negotiated, Version,
};

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
        poll_fn(|cx| poll_negotiate(&mut io, &mut dialer, &mut recv, &mut send, false, cx)).await?;
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
        poll_fn(|cx| poll_negotiate(&mut io, &mut listener, &mut recv, &mut send, false, cx))
            .await?;
    Ok((protocol, Negotiated::completed(io, recv)))
}

/// [`listener_select`], except that the final answer (with our header when the dialer's
/// whole negotiation arrived at once) is not written yet: it leaves with the first write on
/// the returned stream, so a reply the listener sends right away travels in the same
/// segment. Before a read that has to wait for the dialer, and on a flush or close, the
/// answer is sent on its own, so a dialer that waits for it (one that is not lazy) is never
/// kept waiting. The bytes on the wire are the same as with [`listener_select`].
///
/// For a protocol whose listener always reads, writes or closes next (a security
/// handshake): a stream dropped without any of these never sends the answer.
pub async fn listener_select_deferred<S, M>(
    mut io: S,
    matcher: M,
) -> Result<(ProtocolId, Negotiated<S>), MultiselectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Matcher,
{
    let config = Config::default();
    let max_coalesced_len = config.max_coalesced_len;
    let mut listener = Listener::new(matcher, config);
    let mut send = SendBuffer::default();
    let mut recv = recv_buffer(&listener);
    let protocol =
        poll_fn(|cx| poll_negotiate(&mut io, &mut listener, &mut recv, &mut send, true, cx))
            .await?;
    Ok((
        protocol,
        Negotiated::answer_held(io, recv, send, max_coalesced_len),
    ))
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
    poll_fn(|cx| poll_negotiate(&mut io, &mut request, &mut recv, &mut send, false, cx)).await
}
