//! The client's async shell: serves `/libp2p/autonat/2/dial-back`, runs probes against
//! connected servers (peers that announced `/libp2p/autonat/2/dial-request`), pays dial data,
//! and turns [`ClientCore`]'s status changes into events and external addresses.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lp2p_core::addr::split_peer_id;
use lp2p_core::events::{EventBus, EventStream};
use lp2p_core::{Multiaddr, PeerId, Stream};
use lp2p_host::{Host, HostStream, WeakHost};
use lp2p_identify::Identify;

use crate::AutonatError;
use crate::client::core::{
    ClientConfig, ClientCore, ClientStats, ProbeRequest, ProbeResult, ProtocolVersion,
    Reachability, StatusChange,
};
use crate::client::explain::{Explanation, NotTracked};
use crate::io::{close, open_request_stream, read_message, servers, write_message};
use crate::message::{
    DialResponse, MAX_DATA_CHUNK, MAX_DIAL_BACK_SIZE, MAX_MESSAGE_SIZE, PROTOCOL_DIAL_BACK,
    PROTOCOL_DIAL_REQUEST, Request, Response, ResponseStatus, decode_dial_back,
    encode_dial_back_response,
};
use crate::v1;
use crate::v1::message::V1Status;

/// How often the client looks for new candidates, servers and due probes. Why 1 s: the
/// look is a few lock-protected list reads; the probe intervals themselves are in
/// [`ClientConfig`].
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long the client waits for the nonce on a dial-back stream. Why 10 s: the server
/// sends it right after the stream opens; rust-libp2p allows 10 s too.
pub const DIAL_BACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Events a subscriber may fall behind by. Why 64: status changes are rare (a few per
/// address per hour).
const EVENT_BUFFER: usize = 64;

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutonatEvent {
    /// A probe ended.
    Probed {
        /// The server asked.
        server: PeerId,
        /// What it found.
        result: ProbeResult,
        /// The AutoNAT version the probe used (v1 only when no connected peer serves v2).
        version: ProtocolVersion,
    },
    /// An address's status changed.
    StatusChanged {
        /// The address.
        addr: Multiaddr,
        /// Its new status.
        status: Reachability,
    },
}

struct ClientInner {
    core: Mutex<ClientCore>,
    host: WeakHost,
    events: EventBus<AutonatEvent>,
    /// Test loopback and private addresses too (test networks); never by default.
    allow_private_addrs: bool,
}

impl ClientInner {
    fn core(&self) -> MutexGuard<'_, ClientCore> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running AutoNAT v2 client (see the crate docs). Cheap to clone.
#[derive(Clone)]
pub struct AutonatClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for AutonatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutonatClient")
            .field("candidates", &self.candidates())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AutonatClient {
    /// Starts the client on `host`: it answers dial backs, and every [`CHECK_INTERVAL`]
    /// takes the host's listen and external addresses with a public IP as candidates and
    /// probes the one that is due with a connected server. Registers itself on the host
    /// (`host.service::<AutonatClient>()`).
    pub fn new(host: &Host, config: ClientConfig) -> AutonatClient {
        AutonatClient::start(host, config, false)
    }

    /// Like [`new`](Self::new), but loopback and private addresses are candidates too: for
    /// test networks on one machine or a LAN, with servers that allow them
    /// ([`ServerConfig::allowing_private_addrs`](crate::ServerConfig::allowing_private_addrs)).
    pub fn new_allowing_private_addrs(host: &Host, config: ClientConfig) -> AutonatClient {
        AutonatClient::start(host, config, true)
    }

    fn start(host: &Host, config: ClientConfig, allow_private_addrs: bool) -> AutonatClient {
        let inner = Arc::new(ClientInner {
            core: Mutex::new(ClientCore::new(config)),
            host: host.downgrade(),
            events: EventBus::new(EVENT_BUFFER),
            allow_private_addrs,
        });
        let owned = inner.clone();
        host.set_stream_handler(PROTOCOL_DIAL_BACK, move |stream: HostStream| {
            handle_dial_back(owned.clone(), stream)
        });
        let client = AutonatClient { inner };
        host.insert_service(client.clone());
        let worker = client.clone();
        host.spawn(async move { worker.run().await });
        client
    }

    /// A hook for `HostBuilder::on_start` that starts a client with `config`.
    pub fn hook(config: ClientConfig) -> impl FnOnce(&Host) + Send + 'static {
        move |host: &Host| {
            let _client = AutonatClient::new(host, config);
        }
    }

    /// Probe results and status changes from now on.
    pub fn events(&self) -> EventStream<AutonatEvent> {
        self.inner.events.subscribe()
    }

    /// Tracks `addr` as a candidate (an address a port mapping or the configuration says we
    /// may be reachable at); false when known already or the list is full.
    pub fn add_candidate(&self, addr: &Multiaddr) -> bool {
        self.inner.core().add_candidate(addr)
    }

    /// Every candidate with its status.
    pub fn candidates(&self) -> Vec<(Multiaddr, Reachability)> {
        self.inner.core().candidates()
    }

    /// The status of `addr`.
    pub fn status(&self, addr: &Multiaddr) -> Reachability {
        self.inner.core().status(addr)
    }

    /// Why `addr` is, or is not, confirmed: its verdict, which servers said what, what it
    /// waits for, and whether the host advertises it, in [`Explanation::reason`] as one
    /// sentence. `addr` may carry our `/p2p` suffix.
    pub fn explain(&self, addr: &Multiaddr) -> Explanation {
        let addr = split_peer_id(addr).0;
        let host = self.inner.host.upgrade();
        let now = host
            .as_ref()
            .map_or_else(std::time::Instant::now, |h| h.runtime().now());
        let (report, full) = {
            let core = self.inner.core();
            (core.report(&addr, now), core.is_full())
        };
        let not_tracked = match report {
            Some(_) => None,
            None => Some(
                NotTracked::by_form(&addr, self.inner.allow_private_addrs).unwrap_or(if full {
                    NotTracked::ListFull
                } else {
                    NotTracked::NotOurs
                }),
            ),
        };
        let (external, counts) = host.as_ref().map_or((false, (0, 0)), |h| {
            let v2 = servers(h, PROTOCOL_DIAL_REQUEST);
            let v1 = v1::client::service::v1_servers(h)
                .into_iter()
                .filter(|p| !v2.contains(p))
                .count();
            (h.external_addrs().contains(&addr), (v2.len(), v1))
        });
        Explanation::new(addr, report, not_tracked, external, counts)
    }

    /// The counters so far.
    pub fn stats(&self) -> ClientStats {
        self.inner.core().stats()
    }

    /// Asks `server` (connected or dialable through the peerstore) to dial one of `addrs`
    /// now, whatever the schedule. A verdict also counts toward the status of a tracked
    /// address. An exchange that fails, or a server that dials none of the addresses, is an
    /// error; a dial back that never brought our nonce is [`ProbeResult::Inconclusive`].
    pub async fn probe(
        &self,
        server: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<ProbeResult, AutonatError> {
        let (host, request) = self.start_explicit_probe(server, addrs)?;
        self.run_probe(&host, request).await
    }

    /// Registers a probe of `addrs` with `server` asked for by the user (outside the
    /// schedule).
    fn start_explicit_probe(
        &self,
        server: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<(Host, ProbeRequest), AutonatError> {
        if addrs.is_empty() {
            return Err(AutonatError::NoAddresses);
        }
        let host = self.inner.host.upgrade().ok_or(AutonatError::Stopped)?;
        let nonce = rand::random::<u64>();
        let request = self
            .inner
            .core()
            .start_probe(server, addrs, nonce, host.runtime().now());
        Ok((host, request))
    }

    async fn run_probe(
        &self,
        host: &Host,
        request: ProbeRequest,
    ) -> Result<ProbeResult, AutonatError> {
        let (max_data, timeout) = {
            let core = self.inner.core();
            (core.config().max_dial_data, core.config().request_timeout)
        };
        let server = request.server;
        let response = match host
            .runtime()
            .timeout(timeout, exchange(host, &request, max_data, timeout))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(AutonatError::Timeout {
                peer: server,
                after: timeout,
            }),
        };
        let (result, change) = self.inner.core().finish(
            request.nonce,
            response.as_ref().map(|r| *r).map_err(ToString::to_string),
        );
        self.report(host, server, ProtocolVersion::V2, &result, change);
        match response? {
            r if r.status != ResponseStatus::Ok => Err(AutonatError::NotDialed {
                server,
                status: r.status,
            }),
            _ => Ok(result),
        }
    }

    /// Asks AutoNAT v1 `server` (connected or dialable through the peerstore) to dial us
    /// on `addrs` now, whatever the schedule. A verdict also counts toward the status of a
    /// tracked address. An exchange that fails is an error, and so is an answer other than
    /// `OK` or `E_DIAL_ERROR` ([`AutonatError::V1NotDialed`]). v1 has no nonce: a server's
    /// `OK` is believed if it names an address we sent (send one address to get a verdict
    /// from `E_DIAL_ERROR` too).
    pub async fn probe_v1(
        &self,
        server: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<ProbeResult, AutonatError> {
        let (host, request) = self.start_explicit_probe(server, addrs)?;
        self.run_probe_v1(&host, request).await
    }

    async fn run_probe_v1(
        &self,
        host: &Host,
        request: ProbeRequest,
    ) -> Result<ProbeResult, AutonatError> {
        let timeout = self.inner.core().config().request_timeout;
        let server = request.server;
        let response = match host
            .runtime()
            .timeout(
                timeout,
                v1::client::service::exchange(host, server, &request.addrs, timeout),
            )
            .await
        {
            Ok(r) => r,
            Err(_) => Err(AutonatError::Timeout {
                peer: server,
                after: timeout,
            }),
        };
        let judged = response
            .as_ref()
            .map(Clone::clone)
            .map_err(ToString::to_string);
        let (result, change) = self
            .inner
            .core()
            .finish_judged(request.nonce, |sent| v1::client::core::judge(sent, judged));
        self.report(host, server, ProtocolVersion::V1, &result, change);
        let response = response?;
        match response.status {
            V1Status::Ok | V1Status::DialError => Ok(result),
            status => Err(AutonatError::V1NotDialed {
                server,
                status,
                text: response.text,
            }),
        }
    }

    /// Logs and emits a probe's result and status change; a public address becomes an
    /// external address (only a public verdict ever adds one).
    fn report(
        &self,
        host: &Host,
        server: PeerId,
        version: ProtocolVersion,
        result: &ProbeResult,
        change: Option<StatusChange>,
    ) {
        tracing::debug!(%server, ?version, ?result, "AutoNAT probe");
        self.inner.events.emit(&AutonatEvent::Probed {
            server,
            result: result.clone(),
            version,
        });
        if let Some(change) = change {
            tracing::info!(addr = %change.addr, status = change.status.as_str(), ?version, "reachability");
            if change.status == Reachability::Public
                && self.inner.core().config().update_external_addrs
            {
                host.add_external_addr(change.addr.clone());
            }
            self.inner.events.emit(&AutonatEvent::StatusChanged {
                addr: change.addr,
                status: change.status,
            });
        }
    }

    /// The background loop: refresh candidates, pick a due probe, run it; ends with the host.
    async fn run(self) {
        loop {
            let Some(host) = self.inner.host.upgrade() else {
                return;
            };
            if host.is_closing() {
                return;
            }
            let sleep = host.runtime().sleep(CHECK_INTERVAL);
            self.refresh_candidates(&host);
            // v2 servers first; v1 ones only when no connected peer serves v2.
            let v2 = servers(&host, PROTOCOL_DIAL_REQUEST);
            let (version, servers) = if v2.is_empty() {
                (ProtocolVersion::V1, v1::client::service::v1_servers(&host))
            } else {
                (ProtocolVersion::V2, v2)
            };
            let next = {
                let now = host.runtime().now();
                let mut core = self.inner.core();
                // A v1 request tests one address, so its E_DIAL_ERROR is a verdict on it.
                let max_addrs = match version {
                    ProtocolVersion::V1 => 1,
                    ProtocolVersion::V2 => core.config().max_addrs_per_request,
                };
                core.next_probe_with(&servers, now, rand::random::<u64>(), max_addrs)
            };
            if let Some(request) = next {
                let server = request.server;
                let outcome = match version {
                    ProtocolVersion::V1 => self.run_probe_v1(&host, request).await,
                    ProtocolVersion::V2 => self.run_probe(&host, request).await,
                };
                if let Err(error) = outcome {
                    tracing::debug!(%server, ?version, %error, "AutoNAT probe without verdict");
                }
            }
            drop(host);
            sleep.await;
        }
    }

    /// Candidates: our listen addresses, our external addresses, and where peers see us
    /// (`Identify::observed_addrs`, translated to the listening port), when identify runs.
    fn refresh_candidates(&self, host: &Host) {
        let observed = host
            .service::<Identify>()
            .map(|i| i.observed_addrs())
            .unwrap_or_default();
        let addrs = host
            .listen_addrs()
            .into_iter()
            .chain(host.external_addrs())
            .chain(observed)
            .filter(|a| self.is_candidate(a));
        let mut core = self.inner.core();
        for a in addrs {
            core.add_candidate(&a);
        }
    }

    fn is_candidate(&self, addr: &Multiaddr) -> bool {
        NotTracked::by_form(addr, self.inner.allow_private_addrs).is_none()
    }
}

/// One dial-request exchange: the request, dial data if asked (once, within `max_data`),
/// the response.
async fn exchange(
    host: &Host,
    request: &ProbeRequest,
    max_data: u64,
    timeout: Duration,
) -> Result<DialResponse, AutonatError> {
    let server = request.server;
    let mut s = open_request_stream(host, server, PROTOCOL_DIAL_REQUEST).await?;
    write_message(&mut s, &Request::encode_dial(&request.addrs, request.nonce)).await?;
    let mut paid = false;
    loop {
        let body = read_message(host.runtime(), &mut s, MAX_MESSAGE_SIZE, timeout).await?;
        match Response::decode(&body).map_err(|e| e.with_peer(server))? {
            Response::Dial(response) => {
                close(&mut s).await;
                return Ok(response);
            }
            Response::DialData {
                addr_idx,
                num_bytes,
            } => {
                let known = usize::try_from(addr_idx).is_ok_and(|i| i < request.addrs.len());
                if paid || !known || num_bytes > max_data {
                    s.reset();
                    return Err(AutonatError::DialDataRefused {
                        server,
                        addr_idx,
                        num_bytes,
                    });
                }
                paid = true;
                send_dial_data(&mut s, num_bytes).await?;
            }
        }
    }
}

/// Sends `num_bytes` of zeros in chunks of at most [`MAX_DATA_CHUNK`].
async fn send_dial_data(s: &mut HostStream, num_bytes: u64) -> Result<(), AutonatError> {
    let full = Request::encode_data(MAX_DATA_CHUNK);
    let mut left = num_bytes;
    while left > 0 {
        // Below MAX_DATA_CHUNK, so it fits a usize.
        let n = usize::try_from(left).map_or(MAX_DATA_CHUNK, |l| l.min(MAX_DATA_CHUNK));
        if n == MAX_DATA_CHUNK {
            write_message(s, &full).await?;
        } else {
            write_message(s, &Request::encode_data(n)).await?;
        }
        left -= n as u64;
    }
    Ok(())
}

/// Answers a dial back: the nonce must be one of a probe in flight (recorded with the local
/// address of the connection it came on); anything else is reset.
async fn handle_dial_back(inner: Arc<ClientInner>, mut stream: HostStream) {
    let Some(host) = inner.host.upgrade() else {
        stream.reset();
        return;
    };
    let peer = stream.peer();
    let local = stream.connection().local_addr().clone();
    let nonce = match read_message(
        host.runtime(),
        &mut stream,
        MAX_DIAL_BACK_SIZE,
        DIAL_BACK_TIMEOUT,
    )
    .await
    .and_then(|body| decode_dial_back(&body).map_err(|e| e.with_peer(peer)))
    {
        Ok(nonce) => nonce,
        Err(error) => {
            tracing::debug!(%peer, %error, "AutoNAT dial back unreadable");
            stream.reset();
            return;
        }
    };
    if !inner.core().dial_back(nonce, &local) {
        tracing::debug!(%peer, "AutoNAT dial back with a nonce we did not send");
        stream.reset();
        return;
    }
    if let Err(error) = write_message(&mut stream, &encode_dial_back_response()).await {
        tracing::debug!(%peer, %error, "AutoNAT dial-back answer failed");
        return;
    }
    close(&mut stream).await;
}
