//! The v1 server's async shell: serves `/libp2p/autonat/1.0.0` on a host (one request per
//! stream), asks [`V1ServerCore`] for every decision, dials the client back on a new
//! connection (never from our listening port), answers and closes that connection again.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lp2p_core::{DialOpts, Multiaddr, PeerId, Stream};
use lp2p_host::{HandlerOptions, Host, HostStream, WeakHost};

use crate::AutonatError;
use crate::io::{close, read_message, write_message};
use crate::v1::message::{DialRequest, DialResponse, MAX_MESSAGE_SIZE, PROTOCOL_V1, V1Status};
use crate::v1::server::core::{Decision, V1ServerConfig, V1ServerCore, V1ServerStats};

struct ServerInner {
    core: Mutex<V1ServerCore>,
    host: WeakHost,
}

impl ServerInner {
    fn core(&self) -> MutexGuard<'_, V1ServerCore> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running AutoNAT v1 server (see [the module docs](crate::v1)). Cheap to clone.
#[derive(Clone)]
pub struct AutonatV1Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for AutonatV1Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutonatV1Server")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AutonatV1Server {
    /// Starts serving v1 dial requests on `host` with `config`, and registers itself on the
    /// host (`host.service::<AutonatV1Server>()` finds it). The handler also runs on
    /// limited (relayed) connections, only to answer `E_DIAL_REFUSED` there: the IP we
    /// would see is the relay's, so the spec forbids serving them.
    pub fn new(host: &Host, config: V1ServerConfig) -> AutonatV1Server {
        let inner = Arc::new(ServerInner {
            core: Mutex::new(V1ServerCore::new(config)),
            host: host.downgrade(),
        });
        let owned = inner.clone();
        host.set_stream_handler_with(
            PROTOCOL_V1,
            HandlerOptions::allow_limited(),
            move |stream: HostStream| handle_request(owned.clone(), stream),
        );
        let server = AutonatV1Server { inner };
        host.insert_service(server.clone());
        server
    }

    /// A hook for `HostBuilder::on_start` that starts a v1 server with `config`.
    pub fn hook(config: V1ServerConfig) -> impl FnOnce(&Host) + Send + 'static {
        move |host: &Host| {
            let _server = AutonatV1Server::new(host, config);
        }
    }

    /// What the server did so far.
    pub fn stats(&self) -> V1ServerStats {
        self.inner.core().stats()
    }
}

/// Holds a request's in-progress slot in the core and gives it back however the request
/// ends (answered, failed, or dropped with the host).
struct Slot<'a> {
    inner: &'a ServerInner,
    client: PeerId,
    outcome: Option<bool>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.inner.core().finished(self.client, self.outcome);
    }
}

async fn handle_request(inner: Arc<ServerInner>, mut stream: HostStream) {
    let Some(host) = inner.host.upgrade() else {
        stream.reset();
        return;
    };
    let peer = stream.peer();
    if let Err(error) = serve(&inner, &host, &mut stream).await {
        tracing::debug!(%peer, conn = ?stream.connection().id(), %error, "AutoNAT v1 request failed");
        stream.reset();
    }
}

async fn serve(
    inner: &ServerInner,
    host: &Host,
    stream: &mut HostStream,
) -> Result<(), AutonatError> {
    let peer = stream.peer();
    let conn = stream.connection().id();
    let runtime = host.runtime().clone();
    let config = inner.core().config().clone();
    let body = read_message(&runtime, stream, MAX_MESSAGE_SIZE, config.request_timeout).await?;
    let request = match DialRequest::decode(&body).map_err(|e| e.with_peer(peer)) {
        Ok(r) => r,
        Err(error) => {
            inner.core().on_malformed();
            tracing::debug!(%peer, ?conn, %error, "AutoNAT v1 request malformed; answering E_BAD_REQUEST");
            return answer(
                stream,
                &DialResponse::error(V1Status::BadRequest, "malformed request"),
            )
            .await;
        }
    };
    let observed = stream.connection().remote_addr().clone();
    let limited = stream.connection().is_limited();
    let decision = inner.core().on_request(
        peer,
        request.peer,
        &observed,
        limited,
        &request.addrs,
        |a| host.swarm().can_dial(a),
        runtime.now(),
    );
    let addrs = match decision {
        Decision::Refuse(why) => {
            tracing::debug!(%peer, ?conn, %observed, ?why, addrs = ?request.addrs, "AutoNAT v1 request refused");
            return answer(stream, &DialResponse::error(why.status(), why.text())).await;
        }
        Decision::Dial(addrs) => addrs,
    };
    let mut slot = Slot {
        inner,
        client: peer,
        outcome: None,
    };
    let dialed = dial_back(host, peer, addrs, &config).await;
    slot.outcome = Some(dialed.is_some());
    let response = match dialed {
        Some(addr) => DialResponse {
            status: V1Status::Ok,
            text: None,
            addr: Some(addr),
        },
        None => DialResponse::error(V1Status::DialError, "dial failed"),
    };
    answer(stream, &response).await
}

/// Sends the response and closes the stream.
async fn answer(stream: &mut HostStream, response: &DialResponse) -> Result<(), AutonatError> {
    write_message(stream, &response.encode()).await?;
    close(stream).await;
    Ok(())
}

/// Dials `client` on one of `addrs` with a new connection from an ephemeral port (never
/// our listening port, so no accidental hole punch), within the dial timeout; the address
/// that connected, after closing that connection again.
async fn dial_back(
    host: &Host,
    client: PeerId,
    addrs: Vec<Multiaddr>,
    config: &V1ServerConfig,
) -> Option<Multiaddr> {
    let dial = host
        .swarm()
        .dial_new_with_opts(addrs.clone(), DialOpts::to_peer(Some(client)));
    match host.runtime().timeout(config.dial_timeout, dial).await {
        Ok(Ok(conn)) => {
            let addr = conn.remote_addr().clone();
            tracing::debug!(%client, %addr, "AutoNAT v1 dial back connected");
            host.swarm().close_connection(conn.id()).await;
            Some(addr)
        }
        Ok(Err(error)) => {
            tracing::debug!(%client, ?addrs, %error, "AutoNAT v1 dial back failed");
            None
        }
        Err(_) => {
            tracing::debug!(%client, ?addrs, timeout = ?config.dial_timeout, "AutoNAT v1 dial back timed out");
            None
        }
    }
}
