//! The server's async shell: serves `/libp2p/autonat/2/dial-request` on a host, asks
//! [`ServerCore`] for every decision, collects dial data, dials the client back on a new
//! connection (never from our listening port) and hands over the nonce.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lp2p_core::{DialOpts, Multiaddr, PeerId, Stream};
use lp2p_host::{Host, HostStream, WeakHost};

use crate::AutonatError;
use crate::io::{close, read_message, write_message};
use crate::message::{
    DialResponse, DialStatus, MAX_DATA_CHUNK, MAX_DIAL_BACK_SIZE, MAX_MESSAGE_SIZE,
    PROTOCOL_DIAL_BACK, PROTOCOL_DIAL_REQUEST, Request, Response, ResponseStatus,
    decode_dial_back_response, encode_dial_back,
};
use crate::server::core::{Decision, DialOutcome, Families, ServerConfig, ServerCore, ServerStats};

struct ServerInner {
    core: Mutex<ServerCore>,
    host: WeakHost,
}

impl ServerInner {
    fn core(&self) -> MutexGuard<'_, ServerCore> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running AutoNAT v2 server (see the crate docs). Cheap to clone.
#[derive(Clone)]
pub struct AutonatServer {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for AutonatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutonatServer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AutonatServer {
    /// Starts serving dial requests on `host` with `config`, and registers itself on the
    /// host (`host.service::<AutonatServer>()` finds it). Requests over limited (relayed)
    /// connections are not served: the client's address as we see it would be the relay's.
    pub fn new(host: &Host, config: ServerConfig) -> AutonatServer {
        let inner = Arc::new(ServerInner {
            core: Mutex::new(ServerCore::new(config)),
            host: host.downgrade(),
        });
        let owned = inner.clone();
        host.set_stream_handler(PROTOCOL_DIAL_REQUEST, move |stream: HostStream| {
            handle_request(owned.clone(), stream)
        });
        let server = AutonatServer { inner };
        host.insert_service(server.clone());
        server
    }

    /// A hook for `HostBuilder::on_start` that starts a server with `config`.
    pub fn hook(config: ServerConfig) -> impl FnOnce(&Host) + Send + 'static {
        move |host: &Host| {
            let _server = AutonatServer::new(host, config);
        }
    }

    /// What the server did so far.
    pub fn stats(&self) -> ServerStats {
        self.inner.core().stats()
    }
}

/// Holds a request's in-progress slot in the core and gives it back however the request
/// ends (answered, failed, timed out, or dropped with the host).
struct Slot<'a> {
    inner: &'a ServerInner,
    outcome: Option<DialOutcome>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.inner.core().finished(self.outcome);
    }
}

async fn handle_request(inner: Arc<ServerInner>, mut stream: HostStream) {
    let Some(host) = inner.host.upgrade() else {
        stream.reset();
        return;
    };
    let peer = stream.peer();
    let timeout = inner.core().config().request_timeout;
    match host
        .runtime()
        .timeout(timeout, serve(&inner, &host, &mut stream))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "AutoNAT request failed");
            stream.reset();
        }
        Err(_) => {
            tracing::debug!(%peer, ?timeout, "AutoNAT request timed out");
            stream.reset();
        }
    }
}

async fn serve(
    inner: &ServerInner,
    host: &Host,
    stream: &mut HostStream,
) -> Result<(), AutonatError> {
    let peer = stream.peer();
    let runtime = host.runtime().clone();
    let config = inner.core().config().clone();
    let body = read_message(&runtime, stream, MAX_MESSAGE_SIZE, config.request_timeout).await?;
    let Request::Dial { addrs, nonce } = Request::decode(&body).map_err(|e| e.with_peer(peer))?
    else {
        return Err(AutonatError::Malformed {
            peer: Some(peer),
            what: "dial data before a dial request".into(),
        });
    };
    let observed = stream.connection().remote_addr().clone();
    let families = Families::of_listen_addrs(&host.listen_addrs());
    let decision = inner.core().on_request(
        peer,
        &observed,
        &addrs,
        |a| host.swarm().can_dial(a),
        families,
        runtime.now(),
        rand::random_range,
    );
    let (idx, addr, dial_data) = match decision {
        Decision::Reject(why) => {
            tracing::debug!(%peer, ?why, "AutoNAT request rejected");
            return answer(
                stream,
                DialResponse::without_dial(ResponseStatus::RequestRejected),
            )
            .await;
        }
        Decision::Refuse => {
            tracing::debug!(%peer, ?addrs, "AutoNAT request: no address we would dial");
            return answer(
                stream,
                DialResponse::without_dial(ResponseStatus::DialRefused),
            )
            .await;
        }
        Decision::Dial {
            idx,
            addr,
            dial_data,
        } => (idx, addr, dial_data),
    };
    let mut slot = Slot {
        inner,
        outcome: None,
    };
    if let Some(num_bytes) = dial_data {
        collect_dial_data(host, stream, idx, num_bytes, config.request_timeout).await?;
    }
    let outcome = dial_back(host, peer, addr.clone(), nonce, config.dial_timeout).await;
    slot.outcome = Some(outcome);
    tracing::debug!(%peer, %addr, ?outcome, "AutoNAT dial back");
    answer(
        stream,
        DialResponse {
            status: ResponseStatus::Ok,
            addr_idx: idx,
            dial_status: match outcome {
                DialOutcome::Ok => DialStatus::Ok,
                DialOutcome::DialError => DialStatus::DialError,
                DialOutcome::DialBackError => DialStatus::DialBackError,
            },
        },
    )
    .await
}

/// Sends the final response and closes the stream (the spec: the server closes after it).
async fn answer(stream: &mut HostStream, response: DialResponse) -> Result<(), AutonatError> {
    write_message(stream, &Response::Dial(response).encode()).await?;
    close(stream).await;
    Ok(())
}

/// Asks for `num_bytes` of dial data and reads it: `DialDataResponse` messages only, each
/// with at most [`MAX_DATA_CHUNK`] bytes; the last may overshoot.
async fn collect_dial_data(
    host: &Host,
    stream: &mut HostStream,
    idx: u32,
    num_bytes: u64,
    timeout: Duration,
) -> Result<(), AutonatError> {
    let peer = stream.peer();
    write_message(
        stream,
        &Response::DialData {
            addr_idx: idx,
            num_bytes,
        }
        .encode(),
    )
    .await?;
    let mut received: u64 = 0;
    while received < num_bytes {
        let body = read_message(host.runtime(), stream, MAX_MESSAGE_SIZE, timeout).await?;
        match Request::decode(&body).map_err(|e| e.with_peer(peer))? {
            Request::Data { len } if len <= MAX_DATA_CHUNK => {
                received = received.saturating_add(len as u64);
            }
            Request::Data { len } => {
                return Err(AutonatError::Malformed {
                    peer: Some(peer),
                    what: format!(
                        "a dial-data chunk of {len} bytes (the limit is {MAX_DATA_CHUNK})"
                    ),
                });
            }
            Request::Dial { .. } => {
                return Err(AutonatError::Malformed {
                    peer: Some(peer),
                    what: "a second dial request instead of dial data".into(),
                });
            }
        }
    }
    Ok(())
}

/// Dials `client` on `addr` with a new connection from an ephemeral port (the spec: never
/// from the listening port, so no accidental hole punch), hands over `nonce` on a dial-back
/// stream, waits for the acknowledgement, and closes that connection again.
async fn dial_back(
    host: &Host,
    client: PeerId,
    addr: Multiaddr,
    nonce: u64,
    timeout: Duration,
) -> DialOutcome {
    let runtime = host.runtime();
    let dial = host
        .swarm()
        .dial_new_with_opts(vec![addr.clone()], DialOpts::to_peer(Some(client)));
    let conn = match runtime.timeout(timeout, dial).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => {
            tracing::debug!(%client, %addr, %error, "AutoNAT dial back failed");
            return DialOutcome::DialError;
        }
        Err(_) => {
            tracing::debug!(%client, %addr, ?timeout, "AutoNAT dial back timed out");
            return DialOutcome::DialError;
        }
    };
    let exchange = async {
        let mut s = host
            .new_stream_on(&conn, [PROTOCOL_DIAL_BACK])
            .await
            .map_err(|source| AutonatError::Host {
                server: client,
                source: Box::new(source),
            })?;
        write_message(&mut s, &encode_dial_back(nonce)).await?;
        // The nonce went out: that is the hand-over (the spec's dial-back error is an error
        // "while sending a nonce"), and the client trusts only nonces it received anyway.
        // The answer is awaited, but a stream that ends instead (reset or closed) still
        // counts: rust-libp2p 0.57's client drops the stream right after its answer, which
        // its yamux sends as a reset that our yamux may process before the answer is read
        // (it discards data buffered before a reset). A wrong answer or none in time fails.
        match read_message(runtime, &mut s, MAX_DIAL_BACK_SIZE, timeout).await {
            Ok(body) => decode_dial_back_response(&body).map_err(|e| e.with_peer(client))?,
            Err(AutonatError::Stream { source, .. }) => {
                tracing::debug!(%client, error = %source, "dial-back stream ended after the nonce");
            }
            Err(other) => return Err(other),
        }
        close(&mut s).await;
        Ok::<(), AutonatError>(())
    };
    let outcome = match runtime.timeout(timeout, exchange).await {
        Ok(Ok(())) => DialOutcome::Ok,
        Ok(Err(error)) => {
            tracing::debug!(%client, %addr, %error, "AutoNAT nonce hand-over failed");
            DialOutcome::DialBackError
        }
        Err(_) => DialOutcome::DialBackError,
    };
    host.swarm().close_connection(conn.id()).await;
    outcome
}
