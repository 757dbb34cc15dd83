//! The async shell: serves `/libp2p/dcutr` over relayed connections, starts an upgrade for
//! every relayed connection we receive, runs the `CONNECT`/`SYNC` exchange and the
//! simultaneous dials, and closes the relayed connection once a direct one exists.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::{Either, MaybeDone, maybe_done, select};
use futures::stream::FuturesUnordered;
use futures::{AsyncWriteExt, FutureExt, StreamExt};
use lp2p_core::events::{EventBus, EventStream};
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::{DialOpts, Multiaddr, PeerId, Role, Stream};
use lp2p_host::{HandlerOptions, Host, HostStream, WeakHost};
use lp2p_identify::Identify;
use lp2p_swarm::{Connection, ConnectionEvent, ConnectionEvents, Direction};

use crate::DcutrError;
use crate::core::{
    DcutrConfig, DcutrStats, IDENTIFY_WAIT, RETRY_PAUSE, Side, Upgrades, head_start,
    select as select_addrs, sync_delay,
};
use crate::message::{HolePunch, MAX_MESSAGE_SIZE, PROTOCOL};

/// Events a subscriber may fall behind by. Why 64: one or two events per relayed
/// connection.
const EVENT_BUFFER: usize = 64;

/// How long the answering side, its exchange reset, waits for a direct connection the
/// initiator's plain dial may be completing. Why 1 s: that connection's handshake is done on
/// the initiator's side when it resets, so ours finishes within a round trip; a genuine
/// failure is reported this much later.
const REMOTE_DIRECT_WAIT: Duration = Duration::from_secs(1);

/// What the service reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcutrEvent {
    /// A direct connection to `peer` exists now.
    Upgraded {
        /// The remote.
        peer: PeerId,
        /// The direct connection's remote address.
        addr: Multiaddr,
        /// Hole-punching attempts it took (ours when we initiated; 1 when we answered; 0
        /// for a unilateral upgrade).
        attempts: u32,
        /// A plain dial to the remote's advertised addresses made it, before any hole
        /// punch (the spec's unilateral connection upgrade;
        /// [`DcutrConfig::unilateral_dial_timeout`]).
        unilateral: bool,
        /// From the start of the upgrade to the direct connection.
        elapsed: Duration,
    },
    /// The upgrade with `peer` failed; the relayed connection stays.
    Failed {
        /// The remote.
        peer: PeerId,
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        error: String,
    },
}

struct Inner {
    host: WeakHost,
    config: DcutrConfig,
    upgrades: Mutex<Upgrades>,
    events: EventBus<DcutrEvent>,
}

impl Inner {
    fn upgrades(&self) -> MutexGuard<'_, Upgrades> {
        self.upgrades.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running DCUtR service (see the crate docs). Cheap to clone.
#[derive(Clone)]
pub struct Dcutr {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dcutr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dcutr")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Dcutr {
    /// Starts the service on `host` and registers it there (`host.service::<Dcutr>()`). Every
    /// relayed connection we receive from now on (and those open now) is upgraded; the
    /// exchanges that peers we reached through a relay start are answered.
    pub fn new(host: &Host, config: DcutrConfig) -> Dcutr {
        let inner = Arc::new(Inner {
            host: host.downgrade(),
            config,
            upgrades: Mutex::new(Upgrades::default()),
            events: EventBus::new(EVENT_BUFFER),
        });
        let owned = inner.clone();
        host.set_stream_handler_with(
            PROTOCOL,
            HandlerOptions::allow_limited(),
            move |stream: HostStream| answer(owned.clone(), stream),
        );
        let watcher = inner.clone();
        let mut connections = host.connection_events();
        host.spawn(async move {
            while let Some(event) = connections.next().await {
                if let ConnectionEvent::Established(conn) = event
                    && conn.is_limited()
                    && conn.direction() == Direction::Inbound
                    && let Some(host) = watcher.host.upgrade()
                {
                    host.spawn(initiate(watcher.clone(), conn));
                }
            }
        });
        let dcutr = Dcutr { inner };
        host.insert_service(dcutr.clone());
        dcutr
    }

    /// A hook for `HostBuilder::on_start` that starts the service with `config`.
    pub fn hook(config: DcutrConfig) -> impl FnOnce(&Host) + Send + 'static {
        move |host: &Host| {
            let _dcutr = Dcutr::new(host, config);
        }
    }

    /// Upgrades and failures from now on.
    pub fn events(&self) -> EventStream<DcutrEvent> {
        self.inner.events.subscribe()
    }

    /// What the service did so far.
    pub fn stats(&self) -> DcutrStats {
        self.inner.upgrades().stats()
    }

    /// The addresses we would offer in a `CONNECT` now (see [`local_candidates`]).
    pub fn local_candidates(&self) -> Vec<Multiaddr> {
        self.inner
            .host
            .upgrade()
            .map(|h| local_candidates(&h, self.inner.config.allow_private_addrs))
            .unwrap_or_default()
    }
}

/// The addresses we offer: confirmed external addresses, then what peers observed us at
/// (`Identify::observed_addrs`: translated to our listening port when the connection left
/// from another port), then our listen addresses with a specific IP; only usable ones
/// ([`crate::core::usable`]), at most 16.
pub fn local_candidates(host: &Host, allow_private: bool) -> Vec<Multiaddr> {
    let mut addrs = host.external_addrs();
    if let Some(identify) = host.service::<Identify>() {
        addrs.extend(identify.observed_addrs());
    }
    addrs.extend(host.listen_addrs());
    select_addrs(addrs, allow_private)
}

fn has_direct(host: &Host, peer: &PeerId) -> bool {
    host.connections(peer).iter().any(|c| !c.is_limited())
}

/// Upgrades `relayed`, a relayed connection we received (the spec's B): up to
/// `max_attempts` exchanges, each followed by our dial as the TCP server / QUIC
/// hole-punching side.
async fn initiate(inner: Arc<Inner>, relayed: Connection) {
    let Some(host) = inner.host.upgrade() else {
        return;
    };
    let peer = relayed.peer();
    if !inner
        .upgrades()
        .start(peer, Side::Initiator, has_direct(&host, &peer))
    {
        return;
    }
    let started = host.runtime().now();
    // The plain dial (the spec's unilateral upgrade) runs alone for its head start, then
    // beside the hole punch: a firewall that drops it would otherwise cost its whole
    // timeout (D53).
    let mut plain = Box::pin(async {
        match inner.config.unilateral_dial_timeout {
            Some(timeout) => unilateral(&inner, &host, &relayed, timeout).await,
            None => None,
        }
    });
    let plain_won = |direct: Connection| {
        let attempts = inner.upgrades().finish_unilateral(&peer);
        report_upgrade(&inner, &host, &relayed, &direct, started, attempts, true);
    };
    // The first CONNECT exchange runs from the start, beside the identify request and the
    // plain dial: behind a NAT (the usual case) the identify answer only says there is
    // nothing to dial plainly, and waiting for it would cost a round trip (D54). Its SYNC
    // and dials wait for the head start.
    let mut first = Box::pin(maybe_done(exchange(&inner, &host, &relayed)));
    let runtime = host.runtime();
    let ended = {
        let whole = runtime.sleep(head_start(&inner.config, None));
        let mut gate = std::pin::pin!(select(plain.as_mut(), whole).map(HeadStart::from));
        match select(gate.as_mut(), first.as_mut()).await {
            Either::Left((ended, _)) => ended,
            Either::Right(((), _)) => {
                // The exchange measured the round trip: the head start may end sooner (D56).
                let rtt = match first.as_mut().output_mut() {
                    Some(Ok(exchanged)) => Some(exchanged.rtt),
                    _ => None,
                };
                let end = started + head_start(&inner.config, rtt);
                let left = runtime.sleep(end.saturating_duration_since(runtime.now()));
                match select(gate, left).await {
                    Either::Left((ended, _)) => ended,
                    Either::Right(((), _)) => HeadStart::Over,
                }
            }
        }
    };
    let plain_running = match ended {
        HeadStart::PlainWon(direct) => {
            // Dropping the exchange resets its stream; the remote sees our connection.
            drop(first);
            return plain_won(direct);
        }
        HeadStart::NothingPlain => false,
        HeadStart::Over => true,
    };
    let punching = Box::pin(hole_punch(&inner, &host, &relayed, first));
    let outcome = if plain_running {
        match select(plain, punching).await {
            Either::Left((Some(direct), punching)) => {
                // Dropping the hole punch resets its stream and cancels its dials; the
                // remote sees our connection arrive.
                drop(punching);
                return plain_won(direct);
            }
            Either::Left((None, punching)) => punching.await,
            Either::Right((outcome, _plain)) => outcome,
        }
    } else {
        punching.await
    };
    match outcome {
        Ok(direct) => succeeded(&inner, &host, &relayed, &direct, started),
        Err(error) => {
            let attempts = inner.upgrades().finish(&peer, false);
            tracing::info!(%peer, attempts, %error, "DCUtR failed");
            inner.events.emit(&DcutrEvent::Failed {
                peer,
                attempts,
                error,
            });
        }
    }
}

/// How the unilateral dial's head start ended.
enum HeadStart {
    /// The plain dial made the direct connection.
    PlainWon(Connection),
    /// The plain dial failed or had nothing to dial.
    NothingPlain,
    /// Time is up with the plain dial still running.
    Over,
}

impl<S, F> From<Either<(Option<Connection>, S), ((), F)>> for HeadStart {
    fn from(ended: Either<(Option<Connection>, S), ((), F)>) -> Self {
        match ended {
            Either::Left((Some(direct), _)) => HeadStart::PlainWon(direct),
            Either::Left((None, _)) => HeadStart::NothingPlain,
            Either::Right(_) => HeadStart::Over,
        }
    }
}

/// Up to `max_attempts` hole-punching attempts over `relayed`, [`RETRY_PAUSE`] apart: the
/// direct connection, or why the last attempt failed. The first attempt's CONNECT exchange
/// is `first`, already under way.
async fn hole_punch<F>(
    inner: &Inner,
    host: &Host,
    relayed: &Connection,
    mut first: Pin<Box<MaybeDone<F>>>,
) -> Result<Connection, String>
where
    F: Future<Output = Result<Exchanged, DcutrError>>,
{
    let peer = relayed.peer();
    let mut attempts = 0;
    let mut last_error = None;
    while attempts < inner.config.max_attempts && !relayed.is_closed() {
        attempts = inner.upgrades().attempt(peer);
        let exchanged = if attempts == 1 {
            first.as_mut().await;
            first
                .as_mut()
                .take_output()
                .unwrap_or(Err(DcutrError::Stopped))
        } else {
            exchange(inner, host, relayed).await
        };
        let outcome = match exchanged {
            Ok(exchanged) => punch(inner, host, peer, exchanged).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(direct) => return Ok(direct),
            Err(error) => {
                tracing::debug!(%peer, attempts, %error, "DCUtR attempt failed");
                last_error = Some(error);
                if attempts < inner.config.max_attempts {
                    host.runtime().sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
    Err(last_error.map_or_else(
        || "the relayed connection closed".to_owned(),
        |e| e.to_string(),
    ))
}

/// The spec's unilateral connection upgrade: when the remote advertises addresses a hole
/// punch could use (public ones, unless private ones are allowed), a plain dial to them
/// within `timeout`. `None` when there are none or the dial failed: the hole punch follows.
async fn unilateral(
    inner: &Inner,
    host: &Host,
    relayed: &Connection,
    timeout: Duration,
) -> Option<Connection> {
    let peer = relayed.peer();
    let addrs = select_addrs(
        advertised_addrs(host, relayed).await,
        inner.config.allow_private_addrs,
    );
    if addrs.is_empty() {
        return None;
    }
    tracing::debug!(%peer, ?addrs, "DCUtR: trying a plain dial first (unilateral upgrade)");
    let opts = DialOpts {
        expected_peer: Some(peer),
        port_reuse: false,
        role: Role::Initiator,
    };
    let dial = host.swarm().dial_new_with_opts(addrs, opts);
    match host.runtime().timeout(timeout, dial).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "DCUtR: plain dial failed; hole punching");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, ?timeout, "DCUtR: plain dial timed out; hole punching");
            None
        }
    }
}

/// The addresses the remote on `relayed` advertises: its identify answer (asked for over
/// the relayed connection when not known yet, waiting at most [`IDENTIFY_WAIT`]), then
/// what the peerstore knows.
async fn advertised_addrs(host: &Host, relayed: &Connection) -> Vec<Multiaddr> {
    let peer = relayed.peer();
    let mut addrs = Vec::new();
    if let Some(identify) = host.service::<Identify>() {
        let info = match identify.info(&peer) {
            Some(info) => Some(info),
            None => match host
                .runtime()
                .timeout(IDENTIFY_WAIT, identify.identify(relayed))
                .await
            {
                Ok(Ok(info)) => Some(info),
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "DCUtR: identify over the relayed connection failed");
                    None
                }
                Err(_) => None,
            },
        };
        if let Some(info) = info {
            addrs.extend(info.listen_addrs.iter().cloned());
        }
    }
    addrs.extend(host.peerstore().addrs(&peer));
    addrs
}

/// The first half of an attempt as the initiator: the DCUtR stream over the relayed
/// connection, our CONNECT sent and the remote's read.
struct Exchanged {
    stream: HostStream,
    /// From sending our CONNECT to reading theirs.
    rtt: Duration,
    /// The remote's addresses worth dialing.
    addrs: Vec<Multiaddr>,
}

/// Opens the DCUtR stream over `relayed` and exchanges CONNECT messages.
async fn exchange(
    inner: &Inner,
    host: &Host,
    relayed: &Connection,
) -> Result<Exchanged, DcutrError> {
    let peer = relayed.peer();
    let runtime = host.runtime();
    let mut stream = host
        .new_stream_on_lazily(relayed, PROTOCOL)
        .await
        .map_err(|source| DcutrError::Host {
            peer,
            source: Box::new(source),
        })?;
    let ours = local_candidates(host, inner.config.allow_private_addrs);
    write(&mut stream, &HolePunch::Connect(ours)).await?;
    let sent = runtime.now();
    let theirs = match read(host, &mut stream, inner.config.stream_timeout).await? {
        HolePunch::Connect(addrs) => addrs,
        HolePunch::Sync => return Err(unexpected(peer, "SYNC where CONNECT belongs")),
    };
    Ok(Exchanged {
        stream,
        rtt: runtime.now().saturating_duration_since(sent),
        addrs: select_addrs(theirs, inner.config.allow_private_addrs),
    })
}

/// The second half of an attempt as the initiator: SYNC, and the dials timed by the round
/// trip the exchange measured.
async fn punch(
    inner: &Inner,
    host: &Host,
    peer: PeerId,
    exchanged: Exchanged,
) -> Result<Connection, DcutrError> {
    let Exchanged {
        mut stream,
        rtt,
        addrs,
    } = exchanged;
    tracing::debug!(%peer, ?rtt, ?addrs, "DCUtR: dialing as the server side");
    // The dials start with the first poll, before `SYNC` is written: QUIC punching packets
    // leave at once (see `sync_delay`), TCP dials wait their half round trip from here.
    let dials = direct(inner, host, peer, addrs, Role::Responder, |addr| {
        sync_delay(rtt, addr)
    });
    let sync = async {
        write(&mut stream, &HolePunch::Sync).await?;
        let _ = stream.close().await;
        Ok(())
    };
    futures::future::try_join(dials, sync)
        .await
        .map(|(conn, ())| conn)
}

/// Answers a remote's exchange over a relayed connection we dialed (the spec's A): our
/// addresses for theirs, then on `SYNC` we dial at once as the TCP client / QUIC dialer.
async fn answer(inner: Arc<Inner>, mut stream: HostStream) {
    let Some(host) = inner.host.upgrade() else {
        stream.reset();
        return;
    };
    let peer = stream.peer();
    let relayed = stream.connection().clone();
    let accepted = if relayed.is_limited() {
        inner
            .upgrades()
            .start(peer, Side::Responder, has_direct(&host, &peer))
    } else {
        inner.upgrades().refuse();
        false
    };
    if !accepted {
        tracing::debug!(%peer, "DCUtR stream refused: not relayed, or already upgrading");
        stream.reset();
        return;
    }
    inner.upgrades().attempt(peer);
    let started = host.runtime().now();
    match answer_exchange(&inner, &host, &mut stream).await {
        Ok(direct) => succeeded(&inner, &host, &relayed, &direct, started),
        Err(error) => {
            stream.reset();
            // The initiator gives the exchange up when its plain dial reached us first
            // (D53): a direct connection, not a failure. It may be a moment behind the reset.
            if matches!(error, DcutrError::Stream { .. })
                && let Ok(Some(direct)) = host
                    .runtime()
                    .timeout(
                        REMOTE_DIRECT_WAIT,
                        next_direct(host.connection_events(), peer),
                    )
                    .await
            {
                succeeded(&inner, &host, &relayed, &direct, started);
                return;
            }
            let attempts = inner.upgrades().finish(&peer, false);
            tracing::debug!(%peer, %error, "DCUtR (answering) failed");
            inner.events.emit(&DcutrEvent::Failed {
                peer,
                attempts,
                error: error.to_string(),
            });
        }
    }
}

async fn answer_exchange(
    inner: &Inner,
    host: &Host,
    stream: &mut HostStream,
) -> Result<Connection, DcutrError> {
    let peer = stream.peer();
    let timeout = inner.config.stream_timeout;
    let theirs = match read(host, stream, timeout).await? {
        HolePunch::Connect(addrs) => addrs,
        HolePunch::Sync => return Err(unexpected(peer, "SYNC before CONNECT")),
    };
    let ours = local_candidates(host, inner.config.allow_private_addrs);
    write(stream, &HolePunch::Connect(ours)).await?;
    match read(host, stream, timeout).await? {
        HolePunch::Sync => {}
        HolePunch::Connect(_) => return Err(unexpected(peer, "a second CONNECT")),
    }
    let addrs = select_addrs(theirs, inner.config.allow_private_addrs);
    tracing::debug!(%peer, ?addrs, "DCUtR: dialing as the client side");
    direct(inner, host, peer, addrs, Role::Initiator, |_| {
        Duration::ZERO
    })
    .await
}

/// Dials `addrs` from our listening port taking `role`, and meanwhile watches for a direct
/// connection the other side makes: whichever comes first within the dial timeout.
async fn direct(
    inner: &Inner,
    host: &Host,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    role: Role,
    delay: impl Fn(&Multiaddr) -> Duration,
) -> Result<Connection, DcutrError> {
    let runtime = host.runtime();
    let timeout = inner.config.dial_timeout;
    let deadline = runtime.now() + timeout;
    // Subscribed before dialing, so a connection the remote makes meanwhile is not missed
    // (the subscription also starts with the connections open now).
    let incoming = Box::pin(next_direct(host.connection_events(), peer));
    if addrs.is_empty() {
        // Nothing of theirs to dial: the remote may still reach us on ours.
        return match runtime.timeout(timeout, incoming).await {
            Ok(Some(conn)) => Ok(conn),
            Ok(None) => Err(DcutrError::Stopped),
            Err(_) => Err(DcutrError::NoAddresses { peer }),
        };
    }
    let opts = DialOpts {
        expected_peer: Some(peer),
        port_reuse: true,
        role,
    };
    let dial = Box::pin(dial_in_stages(host, peer, addrs, opts, delay));
    match runtime.timeout(timeout, select(dial, incoming)).await {
        Ok(Either::Left((Ok(conn), _)) | Either::Right((Some(conn), _))) => Ok(conn),
        Ok(Either::Right((None, _))) => Err(DcutrError::Stopped),
        Ok(Either::Left((Err(e), incoming))) => {
            // Our dial failed; the remote's may still arrive before the deadline.
            let left = deadline.saturating_duration_since(runtime.now());
            match runtime.timeout(left, incoming).await {
                Ok(Some(conn)) => Ok(conn),
                Ok(None) => Err(DcutrError::Stopped),
                Err(_) => Err(DcutrError::Dial {
                    peer,
                    source: Box::new(e),
                }),
            }
        }
        Err(_) => Err(DcutrError::DialTimeout {
            peer,
            after: timeout,
        }),
    }
}

/// The first direct (not limited) connection with `peer` in `connections`: one open when it
/// was subscribed, or the next established. `None` when the host stops.
async fn next_direct(mut connections: ConnectionEvents, peer: PeerId) -> Option<Connection> {
    while let Some(event) = connections.next().await {
        if let ConnectionEvent::Established(c) = event
            && c.peer() == peer
            && !c.is_limited()
        {
            return Some(c);
        }
    }
    None
}

/// Dials `addrs` in groups by their `delay`: each group is one dial, started once its delay
/// has passed. The first connection wins and the other dials are cancelled. If every dial
/// fails, the error is the last one's.
async fn dial_in_stages(
    host: &Host,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    opts: DialOpts,
    delay: impl Fn(&Multiaddr) -> Duration,
) -> Result<Connection, lp2p_swarm::SwarmError> {
    let mut stages: Vec<(Duration, Vec<Multiaddr>)> = Vec::new();
    for addr in addrs {
        let wait = delay(&addr);
        match stages.iter_mut().find(|(d, _)| *d == wait) {
            Some((_, group)) => group.push(addr),
            None => stages.push((wait, vec![addr])),
        }
    }
    let runtime = host.runtime();
    let mut dials: FuturesUnordered<_> = stages
        .into_iter()
        .map(|(wait, group)| {
            let runtime = runtime.clone();
            async move {
                if !wait.is_zero() {
                    runtime.sleep(wait).await;
                }
                host.swarm().dial_new_with_opts(group, opts).await
            }
        })
        .collect();
    let mut last = lp2p_swarm::SwarmError::NoAddresses(peer);
    while let Some(outcome) = dials.next().await {
        match outcome {
            Ok(conn) => return Ok(conn),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Counts a hole punch that made a direct connection, reports it and closes the relayed
/// connection after the grace period.
fn succeeded(
    inner: &Arc<Inner>,
    host: &Host,
    relayed: &Connection,
    direct: &Connection,
    started: std::time::Instant,
) {
    let attempts = inner.upgrades().finish(&relayed.peer(), true);
    report_upgrade(inner, host, relayed, direct, started, attempts, false);
}

/// Reports a direct connection and closes the relayed one after the grace period.
fn report_upgrade(
    inner: &Arc<Inner>,
    host: &Host,
    relayed: &Connection,
    direct: &Connection,
    started: std::time::Instant,
    attempts: u32,
    unilateral: bool,
) {
    let peer = relayed.peer();
    let elapsed = host.runtime().now().saturating_duration_since(started);
    tracing::info!(%peer, addr = %direct.remote_addr(), attempts, unilateral, ?elapsed, "DCUtR: direct connection");
    inner.events.emit(&DcutrEvent::Upgraded {
        peer,
        addr: direct.remote_addr().clone(),
        attempts,
        unilateral,
        elapsed,
    });
    if let Some(grace) = inner.config.close_relayed_after {
        let relayed = relayed.clone();
        let weak = host.downgrade();
        let runtime = host.runtime().clone();
        host.spawn(async move {
            runtime.sleep(grace).await;
            if let Some(host) = weak.upgrade()
                && has_direct(&host, &peer)
            {
                tracing::debug!(%peer, "closing the relayed connection");
                host.swarm().close_connection(relayed.id()).await;
            }
        });
    }
}

fn unexpected(peer: PeerId, what: &str) -> DcutrError {
    DcutrError::Malformed {
        peer: Some(peer),
        what: what.to_owned(),
    }
}

async fn read(host: &Host, s: &mut HostStream, timeout: Duration) -> Result<HolePunch, DcutrError> {
    let peer = s.peer();
    let body = match host
        .runtime()
        .timeout(timeout, read_frame(s, MAX_MESSAGE_SIZE))
        .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(source)) => {
            return Err(DcutrError::Stream {
                peer,
                source: Box::new(source),
            });
        }
        Err(_) => {
            return Err(DcutrError::Timeout {
                peer,
                after: timeout,
            });
        }
    };
    HolePunch::decode(&body).map_err(|e| e.with_peer(peer))
}

async fn write(s: &mut HostStream, msg: &HolePunch) -> Result<(), DcutrError> {
    let peer = s.peer();
    let stream_error = |source: lp2p_core::Error| DcutrError::Stream {
        peer,
        source: Box::new(source),
    };
    write_frame(s, &msg.encode()).await.map_err(stream_error)?;
    s.flush().await.map_err(|e| stream_error(e.into()))
}
