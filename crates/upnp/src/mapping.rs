//! The sans-IO state machine of one port mapping, keyed by (protocol, internal port): which
//! method to try next, the permanent-lease fallback, conflicts, retries with backoff,
//! renewal at half the lifetime, expiry, and removal on shutdown. It owns no socket and
//! reads no clock: the shell asks [`Mapping::poll_action`] what to send, reports the
//! gateway's answer with [`Mapping::handle_result`], calls [`Mapping::handle_timeout`]
//! when [`Mapping::poll_timeout`] is due, and reads [`Mapping::poll_event`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::{Method, Protocol};

/// Default lifetime asked for: 2 hours, the value RFC 6886 §3.3 recommends and a common
/// router maximum; renewed after half of it, so a mapping survives one lost renewal.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);
/// Shortest wait before a renewal when the lifetime leaves room for it: half of a short
/// lifetime would have us asking every few seconds, so a lifetime under a minute is renewed
/// after 30 s (still before it lapses). Lifetimes of 30 s and less are renewed at half, as
/// the RFCs say: the gateway chose them. (PCP's recommended minimum is 120 s.)
pub const MIN_RENEW_INTERVAL: Duration = Duration::from_secs(30);
/// First wait before trying every method again after all failed: long enough not to
/// hammer a router that said no, short enough to catch one that was still booting.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(30);
/// Longest wait between rounds: routers rarely gain UPnP support, but DHCP leases and
/// reboots change things; 30 minutes keeps a node from giving up for good.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30 * 60);
/// How many other external ports we try after a conflict (UPnP fault 718, PCP
/// CANNOT_PROVIDE_EXTERNAL) before moving on to the next method.
pub const DEFAULT_MAX_CONFLICTS: u32 = 3;

/// How the state machine behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingConfig {
    /// Methods in the order tried ([`Method::Pcp`], [`Method::NatPmp`], [`Method::Upnp`]
    /// by default: PCP is NAT-PMP's successor, and both are cheaper and more predictable
    /// than UPnP's HTTP and XML).
    pub methods: Vec<Method>,
    /// The lifetime asked for ([`DEFAULT_LIFETIME`]).
    pub lifetime: Duration,
    /// First wait after a round in which every method failed ([`DEFAULT_RETRY_INITIAL`]);
    /// doubled after each failed round up to [`retry_max`](Self::retry_max).
    pub retry_initial: Duration,
    /// Longest wait between rounds ([`DEFAULT_RETRY_MAX`]).
    pub retry_max: Duration,
    /// Other external ports tried after a conflict ([`DEFAULT_MAX_CONFLICTS`]).
    pub max_conflicts: u32,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            methods: vec![Method::Pcp, Method::NatPmp, Method::Upnp],
            lifetime: DEFAULT_LIFETIME,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            max_conflicts: DEFAULT_MAX_CONFLICTS,
        }
    }
}

/// What the shell must send next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create or renew a mapping with `method`.
    Map {
        /// The method.
        method: Method,
        /// Seconds asked for; 0 asks for a permanent lease (UPnP only).
        lifetime: u32,
        /// The external port to ask for.
        external_port: u16,
        /// Whether this renews a mapping we hold.
        renewal: bool,
    },
    /// Remove the mapping made with `method`.
    Unmap {
        /// The method.
        method: Method,
        /// The external port it has.
        external_port: u16,
    },
}

/// A mapping the gateway granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The external address and port.
    pub external: SocketAddr,
    /// How long it lasts; zero for a permanent lease.
    pub lifetime: Duration,
}

/// Why an action failed, as far as the state machine cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// This method does not work here (no gateway, no answer, not supported, not
    /// authorized): try the next one.
    Unavailable(String),
    /// The gateway only grants permanent leases (UPnP fault 725): ask again with lease 0.
    OnlyPermanentLeases,
    /// The external port is taken (UPnP 718, PCP CANNOT_PROVIDE_EXTERNAL): ask for another.
    Conflict(String),
    /// The gateway speaks another method instead (a PCP request answered in NAT-PMP's
    /// version 0, RFC 6887 §9): try that one next, even when it is not configured.
    UseInstead(Method, String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unavailable(why) => f.write_str(why),
            Failure::OnlyPermanentLeases => f.write_str("only permanent leases supported"),
            Failure::Conflict(why) => write!(f, "port conflict: {why}"),
            Failure::UseInstead(m, why) => write!(f, "{why}; trying {m}"),
        }
    }
}

/// What happened to a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingEvent {
    /// A mapping exists now (new, or the gateway moved it to another external address).
    Mapped {
        /// The method that made it.
        method: Method,
        /// The external address and port.
        external: SocketAddr,
        /// How long it lasts; zero for a permanent lease.
        lifetime: Duration,
    },
    /// A renewal succeeded with the same external address.
    Renewed {
        /// The method.
        method: Method,
        /// The external address and port.
        external: SocketAddr,
        /// The new lifetime.
        lifetime: Duration,
    },
    /// Every method failed this round; the next round starts after `retry_in`.
    Failed {
        /// Each method's reason, in the order tried (`"pcp: ..."`).
        reasons: Vec<String>,
        /// When the next round starts.
        retry_in: Duration,
    },
    /// The mapping lapsed (renewals kept failing until it expired); discovery starts over.
    Expired {
        /// The method that had made it.
        method: Method,
        /// The address it had.
        external: SocketAddr,
    },
    /// The mapping was removed at shutdown (`error` says when the gateway did not confirm).
    Removed {
        /// The method.
        method: Method,
        /// The address it had.
        external: SocketAddr,
        /// Why the removal may not have happened.
        error: Option<String>,
    },
}

/// When to renew a mapping that lasts `lifetime`: at half of it, but not sooner than
/// [`MIN_RENEW_INTERVAL`] when that still comes before it lapses.
fn renew_after(lifetime: Duration) -> Duration {
    let half = lifetime / 2;
    if half < MIN_RENEW_INTERVAL && MIN_RENEW_INTERVAL < lifetime {
        MIN_RENEW_INTERVAL
    } else {
        half
    }
}

#[derive(Debug, Clone)]
struct Held {
    method: Method,
    external: SocketAddr,
    permanent: bool,
    renew_at: Instant,
    expires_at: Option<Instant>,
    failures: u32,
}

#[derive(Debug, Clone)]
enum State {
    Waiting {
        at: Instant,
    },
    Trying {
        idx: usize,
        forced: Option<Method>,
        permanent: bool,
        port: u16,
        conflicts: u32,
        reasons: Vec<String>,
    },
    Mapped(Held),
    Removing(Held),
    Done,
}

/// One port mapping's state machine.
#[derive(Debug, Clone)]
pub struct Mapping {
    protocol: Protocol,
    internal_port: u16,
    config: MappingConfig,
    state: State,
    in_flight: bool,
    backoff: Duration,
    events: VecDeque<MappingEvent>,
    rng: u64,
}

impl Mapping {
    /// A mapping of `protocol`/`internal_port`, to be tried from `now`. `seed` picks the
    /// other external ports tried after conflicts.
    pub fn new(
        protocol: Protocol,
        internal_port: u16,
        config: MappingConfig,
        now: Instant,
        seed: u64,
    ) -> Mapping {
        let backoff = config.retry_initial;
        Mapping {
            protocol,
            internal_port,
            config,
            state: State::Waiting { at: now },
            in_flight: false,
            backoff,
            events: VecDeque::new(),
            rng: seed | 1,
        }
    }

    /// TCP or UDP.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Our port.
    pub fn internal_port(&self) -> u16 {
        self.internal_port
    }

    /// The mapping held now: method and external address.
    pub fn current(&self) -> Option<(Method, SocketAddr)> {
        match &self.state {
            State::Mapped(h) => Some((h.method, h.external)),
            _ => None,
        }
    }

    /// Whether the mapping is finished (removed after [`shutdown`](Self::shutdown)).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next request to send, if one is due at `now` and none is outstanding.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if self.in_flight {
            return None;
        }
        self.handle_timeout(now);
        let action = match &self.state {
            State::Waiting { .. } | State::Done => return None,
            State::Trying {
                idx,
                forced,
                permanent,
                port,
                ..
            } => Action::Map {
                method: forced.or_else(|| self.config.methods.get(*idx).copied())?,
                lifetime: if *permanent { 0 } else { self.lifetime_secs() },
                external_port: *port,
                renewal: false,
            },
            State::Mapped(h) => {
                if now < h.renew_at {
                    return None;
                }
                Action::Map {
                    method: h.method,
                    lifetime: if h.permanent { 0 } else { self.lifetime_secs() },
                    external_port: h.external.port(),
                    renewal: true,
                }
            }
            State::Removing(h) => Action::Unmap {
                method: h.method,
                external_port: h.external.port(),
            },
        };
        self.in_flight = true;
        Some(action)
    }

    fn lifetime_secs(&self) -> u32 {
        u32::try_from(self.config.lifetime.as_secs())
            .unwrap_or(u32::MAX)
            .max(1)
    }

    /// When [`handle_timeout`](Self::handle_timeout) (or [`poll_action`](Self::poll_action))
    /// has something to do; None while a request is outstanding and nothing expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Waiting { at } => Some(*at),
            State::Mapped(h) if self.in_flight => h.expires_at,
            State::Mapped(h) => Some(match h.expires_at {
                Some(e) => e.min(h.renew_at),
                None => h.renew_at,
            }),
            State::Trying { .. } | State::Removing(_) | State::Done => None,
        }
    }

    /// Moves the clock: starts a due round, or notices an expired mapping.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Waiting { at } if now >= *at => self.start_round(),
            State::Mapped(h) if h.expires_at.is_some_and(|e| now >= e) => {
                self.events.push_back(MappingEvent::Expired {
                    method: h.method,
                    external: h.external,
                });
                // A renewal may still be outstanding; its answer is ignored.
                self.in_flight = false;
                self.start_round();
            }
            _ => {}
        }
    }

    fn start_round(&mut self) {
        self.state = State::Trying {
            idx: 0,
            forced: None,
            permanent: false,
            port: self.internal_port,
            conflicts: 0,
            reasons: Vec::new(),
        };
    }

    /// The answer to the last action. Answers with no action outstanding are ignored.
    pub fn handle_result(&mut self, now: Instant, result: Result<Granted, Failure>) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match state {
            State::Trying {
                idx,
                forced,
                permanent,
                port,
                conflicts,
                mut reasons,
            } => {
                let method = forced.or_else(|| self.config.methods.get(idx).copied());
                match (result, method) {
                    (Ok(g), Some(method)) => {
                        self.backoff = self.config.retry_initial;
                        self.events.push_back(MappingEvent::Mapped {
                            method,
                            external: g.external,
                            lifetime: g.lifetime,
                        });
                        State::Mapped(self.held(method, g, now))
                    }
                    (Err(Failure::OnlyPermanentLeases), Some(_)) if !permanent => State::Trying {
                        idx,
                        forced,
                        permanent: true,
                        port,
                        conflicts,
                        reasons,
                    },
                    (Err(Failure::Conflict(why)), Some(m))
                        if conflicts < self.config.max_conflicts =>
                    {
                        tracing::debug!(method = %m, port, %why, "external port taken; trying another");
                        State::Trying {
                            idx,
                            forced,
                            permanent,
                            port: self.random_port(),
                            conflicts: conflicts.saturating_add(1),
                            reasons,
                        }
                    }
                    (Err(Failure::UseInstead(other, why)), Some(m)) if forced.is_none() => {
                        reasons.push(format!("{m}: {why}"));
                        match self.config.methods.iter().position(|x| *x == other) {
                            Some(j) if j > idx => State::Trying {
                                idx: j,
                                forced: None,
                                permanent: false,
                                port: self.internal_port,
                                conflicts: 0,
                                reasons,
                            },
                            // Tried already this round (or it is this one): move on.
                            Some(_) => self.next_method(idx, reasons, now),
                            None => State::Trying {
                                idx,
                                forced: Some(other),
                                permanent: false,
                                port: self.internal_port,
                                conflicts: 0,
                                reasons,
                            },
                        }
                    }
                    (Err(f), m) => {
                        reasons.push(format!(
                            "{}: {f}",
                            m.map_or_else(|| "?".to_owned(), |m| m.to_string())
                        ));
                        self.next_method(idx, reasons, now)
                    }
                    (Ok(_), None) => self.next_method(idx, reasons, now),
                }
            }
            State::Mapped(mut h) => match result {
                Ok(g) => {
                    let moved = g.external != h.external;
                    let held = self.held(h.method, g, now);
                    self.events.push_back(if moved {
                        MappingEvent::Mapped {
                            method: h.method,
                            external: g.external,
                            lifetime: g.lifetime,
                        }
                    } else {
                        MappingEvent::Renewed {
                            method: h.method,
                            external: g.external,
                            lifetime: g.lifetime,
                        }
                    });
                    State::Mapped(held)
                }
                Err(Failure::OnlyPermanentLeases) if !h.permanent => {
                    h.permanent = true;
                    h.renew_at = now;
                    State::Mapped(h)
                }
                Err(f) => {
                    h.failures = h.failures.saturating_add(1);
                    // Retry sooner than the backoff if the mapping would lapse first.
                    let mut wait = self
                        .config
                        .retry_initial
                        .saturating_mul(1u32 << h.failures.min(8))
                        .min(self.config.retry_max);
                    if let Some(e) = h.expires_at {
                        wait = wait.min(e.saturating_duration_since(now) / 2);
                    }
                    let wait = wait.max(Duration::from_secs(1));
                    tracing::debug!(method = %h.method, external = %h.external, reason = %f, ?wait, "renewal failed");
                    h.renew_at = now + wait;
                    State::Mapped(h)
                }
            },
            State::Removing(h) => {
                self.events.push_back(MappingEvent::Removed {
                    method: h.method,
                    external: h.external,
                    error: result.err().map(|f| f.to_string()),
                });
                State::Done
            }
            other @ (State::Waiting { .. } | State::Done) => other,
        };
    }

    fn held(&self, method: Method, g: Granted, now: Instant) -> Held {
        let permanent = g.lifetime.is_zero();
        // A permanent lease is refreshed as often as a timed one would be renewed, so a
        // router that rebooted and forgot it gets it back.
        let basis = if permanent {
            self.config.lifetime
        } else {
            g.lifetime
        };
        Held {
            method,
            external: g.external,
            permanent,
            renew_at: now + renew_after(basis),
            expires_at: (!permanent).then(|| now + g.lifetime),
            failures: 0,
        }
    }

    fn next_method(&mut self, idx: usize, reasons: Vec<String>, now: Instant) -> State {
        let next = idx.saturating_add(1);
        if next < self.config.methods.len() {
            return State::Trying {
                idx: next,
                forced: None,
                permanent: false,
                port: self.internal_port,
                conflicts: 0,
                reasons,
            };
        }
        let retry_in = self.backoff;
        self.backoff = self
            .backoff
            .saturating_mul(2)
            .min(self.config.retry_max)
            .max(self.config.retry_initial.min(self.config.retry_max));
        self.events
            .push_back(MappingEvent::Failed { reasons, retry_in });
        State::Waiting { at: now + retry_in }
    }

    fn random_port(&mut self) -> u16 {
        // xorshift64: good enough to spread retries over the dynamic range.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = u64::from(u16::MAX - 1024);
        u16::try_from(1024 + self.rng % span).unwrap_or(u16::MAX)
    }

    /// The gateway lost its state (its epoch went back): renew now.
    pub fn gateway_restarted(&mut self, now: Instant) {
        if let State::Mapped(h) = &mut self.state {
            h.renew_at = now;
        }
    }

    /// Stops: a mapping held is removed (the next action is its [`Action::Unmap`]); an
    /// outstanding request is abandoned. Nothing is sent when nothing is held.
    pub fn shutdown(&mut self) {
        self.in_flight = false;
        self.state = match std::mem::replace(&mut self.state, State::Done) {
            State::Mapped(h) | State::Removing(h) => State::Removing(h),
            _ => State::Done,
        };
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MappingEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn ext(port: u16) -> SocketAddr {
        SocketAddr::from(([11, 77, 0, 1], port))
    }

    #[allow(clippy::unnecessary_wraps)] // the shape handle_result takes
    fn granted(port: u16, secs: u64) -> Result<Granted, Failure> {
        Ok(Granted {
            external: ext(port),
            lifetime: Duration::from_secs(secs),
        })
    }

    fn unavailable(why: &str) -> Result<Granted, Failure> {
        Err(Failure::Unavailable(why.to_owned()))
    }

    #[allow(clippy::unnecessary_wraps)] // the shape poll_action returns
    fn map_action(method: Method, lifetime: u32, port: u16, renewal: bool) -> Option<Action> {
        Some(Action::Map {
            method,
            lifetime,
            external_port: port,
            renewal,
        })
    }

    fn new(t0: Instant) -> Mapping {
        Mapping::new(Protocol::Tcp, 4001, MappingConfig::default(), t0, 42)
    }

    #[test]
    fn falls_through_methods_and_maps_with_the_first_that_works() {
        let t0 = Instant::now();
        let mut m = new(t0);
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::Pcp, 7200, 4001, false)
        );
        assert_eq!(m.poll_action(t0), None, "one request at a time");
        m.handle_result(t0, unavailable("no answer"));
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::NatPmp, 7200, 4001, false)
        );
        m.handle_result(t0, granted(4001, 3600));
        assert_eq!(
            m.poll_event(),
            Some(MappingEvent::Mapped {
                method: Method::NatPmp,
                external: ext(4001),
                lifetime: 3600 * SEC
            })
        );
        assert_eq!(m.current(), Some((Method::NatPmp, ext(4001))));
        assert_eq!(m.poll_action(t0), None);
        assert_eq!(m.poll_timeout(), Some(t0 + 1800 * SEC));
    }

    #[test]
    fn renews_at_half_the_lifetime() {
        let t0 = Instant::now();
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, granted(5000, 600));
        m.poll_event();
        assert_eq!(m.poll_action(t0 + 299 * SEC), None);
        let t1 = t0 + 300 * SEC;
        assert_eq!(m.poll_action(t1), map_action(Method::Pcp, 7200, 5000, true));
        m.handle_result(t1, granted(5000, 600));
        assert!(matches!(m.poll_event(), Some(MappingEvent::Renewed { .. })));
        assert_eq!(m.poll_timeout(), Some(t1 + 300 * SEC));
        // The gateway moved us: reported as a new mapping.
        let t2 = t1 + 300 * SEC;
        m.poll_action(t2);
        m.handle_result(t2, granted(5001, 600));
        assert!(matches!(
            m.poll_event(),
            Some(MappingEvent::Mapped { external, .. }) if external == ext(5001)
        ));
    }

    #[test]
    fn short_lifetimes_renew_before_they_lapse() {
        assert_eq!(renew_after(7200 * SEC), 3600 * SEC);
        assert_eq!(renew_after(50 * SEC), 30 * SEC); // not every 25 s
        assert_eq!(renew_after(30 * SEC), 15 * SEC); // 30 s would be too late
        assert_eq!(renew_after(4 * SEC), 2 * SEC);
        let t0 = Instant::now();
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, granted(5000, 4));
        assert_eq!(m.poll_timeout(), Some(t0 + 2 * SEC));
        assert!(matches!(
            m.poll_action(t0 + 2 * SEC),
            Some(Action::Map { renewal: true, .. })
        ));
    }

    #[test]
    fn failed_renewals_retry_before_expiry_then_expire_and_start_over() {
        let t0 = Instant::now();
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, granted(5000, 600));
        m.poll_event();
        let mut now = t0 + 300 * SEC;
        let mut retries = 0;
        while let Some(Action::Map { renewal: true, .. }) = m.poll_action(now) {
            m.handle_result(now, unavailable("timeout"));
            retries += 1;
            now = m.poll_timeout().unwrap();
            assert!(retries < 50, "renewals must be bounded");
        }
        assert!(retries >= 3, "{retries}");
        assert_eq!(
            m.poll_event(),
            Some(MappingEvent::Expired {
                method: Method::Pcp,
                external: ext(5000)
            })
        );
        // A new round, from the first method.
        assert!(now >= t0 + 600 * SEC);
    }

    #[test]
    fn every_method_failing_backs_off_exponentially_up_to_the_cap() {
        let t0 = Instant::now();
        let mut m = new(t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            for _ in 0..3 {
                assert!(m.poll_action(now).is_some());
                m.handle_result(now, unavailable("no"));
            }
            let Some(MappingEvent::Failed { reasons, retry_in }) = m.poll_event() else {
                panic!("no failure event")
            };
            assert_eq!(reasons.len(), 3);
            assert!(reasons[0].starts_with("pcp: "));
            assert!(reasons[1].starts_with("nat-pmp: "));
            assert!(reasons[2].starts_with("upnp: "));
            assert_eq!(m.poll_action(now), None);
            waits.push(retry_in);
            now = m.poll_timeout().unwrap();
        }
        assert_eq!(waits[0], 30 * SEC);
        assert_eq!(waits[1], 60 * SEC);
        assert_eq!(waits[2], 120 * SEC);
        assert_eq!(*waits.last().unwrap(), 30 * 60 * SEC);
        // Success resets the backoff.
        m.poll_action(now);
        m.handle_result(now, granted(1, 100));
        assert_eq!(m.backoff, 30 * SEC);
    }

    #[test]
    fn permanent_lease_fallback() {
        let t0 = Instant::now();
        let cfg = MappingConfig {
            methods: vec![Method::Upnp],
            ..MappingConfig::default()
        };
        let mut m = Mapping::new(Protocol::Udp, 4001, cfg, t0, 1);
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::Upnp, 7200, 4001, false)
        );
        m.handle_result(t0, Err(Failure::OnlyPermanentLeases));
        assert_eq!(m.poll_action(t0), map_action(Method::Upnp, 0, 4001, false));
        m.handle_result(t0, granted(4001, 0));
        assert_eq!(
            m.poll_event(),
            Some(MappingEvent::Mapped {
                method: Method::Upnp,
                external: ext(4001),
                lifetime: Duration::ZERO
            })
        );
        // Never expires; refreshed with lease 0 at half the configured lifetime.
        assert_eq!(m.poll_timeout(), Some(t0 + 3600 * SEC));
        assert_eq!(
            m.poll_action(t0 + 3600 * SEC),
            map_action(Method::Upnp, 0, 4001, true)
        );
        // A second 725 after asking for a permanent lease is a plain failure.
        let mut m = Mapping::new(
            Protocol::Udp,
            4001,
            MappingConfig {
                methods: vec![Method::Upnp],
                ..MappingConfig::default()
            },
            t0,
            1,
        );
        m.poll_action(t0);
        m.handle_result(t0, Err(Failure::OnlyPermanentLeases));
        m.poll_action(t0);
        m.handle_result(t0, Err(Failure::OnlyPermanentLeases));
        assert!(matches!(m.poll_event(), Some(MappingEvent::Failed { .. })));
    }

    #[test]
    fn permanent_fallback_on_renewal() {
        let t0 = Instant::now();
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, granted(4001, 600));
        let t1 = t0 + 300 * SEC;
        m.poll_action(t1);
        m.handle_result(t1, Err(Failure::OnlyPermanentLeases));
        assert_eq!(m.poll_action(t1), map_action(Method::Pcp, 0, 4001, true));
    }

    #[test]
    fn conflicts_try_other_ports_then_the_next_method() {
        let t0 = Instant::now();
        let mut m = new(t0);
        m.poll_action(t0);
        let mut ports = Vec::new();
        for _ in 0..DEFAULT_MAX_CONFLICTS {
            m.handle_result(t0, Err(Failure::Conflict("718".into())));
            match m.poll_action(t0) {
                Some(Action::Map {
                    method: Method::Pcp,
                    external_port,
                    ..
                }) => ports.push(external_port),
                other => panic!("{other:?}"),
            }
        }
        assert!(ports.iter().all(|p| *p >= 1024));
        m.handle_result(t0, Err(Failure::Conflict("718".into())));
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::NatPmp, 7200, 4001, false)
        );
    }

    #[test]
    fn a_nat_pmp_only_server_answering_pcp_sends_us_to_nat_pmp() {
        let t0 = Instant::now();
        let use_natpmp = || Err(Failure::UseInstead(Method::NatPmp, "NAT-PMP only".into()));
        // Configured: NAT-PMP is tried next (and not twice).
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, use_natpmp());
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::NatPmp, 7200, 4001, false)
        );
        m.handle_result(t0, unavailable("no"));
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::Upnp, 7200, 4001, false)
        );
        // Not configured: tried anyway, then the configured list goes on.
        let cfg = MappingConfig {
            methods: vec![Method::Pcp, Method::Upnp],
            ..MappingConfig::default()
        };
        let mut m = Mapping::new(Protocol::Tcp, 4001, cfg, t0, 7);
        m.poll_action(t0);
        m.handle_result(t0, use_natpmp());
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::NatPmp, 7200, 4001, false)
        );
        m.handle_result(t0, granted(4001, 7200));
        assert!(matches!(
            m.poll_event(),
            Some(MappingEvent::Mapped {
                method: Method::NatPmp,
                ..
            })
        ));
        // Renewals go to the method that made it.
        assert_eq!(
            m.poll_action(t0 + 3600 * SEC),
            map_action(Method::NatPmp, 7200, 4001, true)
        );
        let mut m = Mapping::new(
            Protocol::Tcp,
            4001,
            MappingConfig {
                methods: vec![Method::Pcp, Method::Upnp],
                ..MappingConfig::default()
            },
            t0,
            7,
        );
        m.poll_action(t0);
        m.handle_result(t0, use_natpmp());
        m.poll_action(t0);
        m.handle_result(t0, unavailable("no"));
        assert_eq!(
            m.poll_action(t0),
            map_action(Method::Upnp, 7200, 4001, false)
        );
    }

    #[test]
    fn shutdown_removes_what_is_held() {
        let t0 = Instant::now();
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, granted(4001, 600));
        m.poll_event();
        m.shutdown();
        assert_eq!(
            m.poll_action(t0),
            Some(Action::Unmap {
                method: Method::Pcp,
                external_port: 4001
            })
        );
        m.handle_result(t0, granted(4001, 0));
        assert_eq!(
            m.poll_event(),
            Some(MappingEvent::Removed {
                method: Method::Pcp,
                external: ext(4001),
                error: None
            })
        );
        assert!(m.is_done());
        assert_eq!(m.poll_action(t0), None);
        // Nothing held: nothing to send.
        let mut idle = new(t0);
        idle.shutdown();
        assert!(idle.is_done());
        assert_eq!(idle.poll_action(t0), None);
        // A removal the gateway refused is still the end, with the reason.
        let mut m = new(t0);
        m.poll_action(t0);
        m.handle_result(t0, granted(4001, 600));
        m.poll_event();
        m.poll_action(t0 + 300 * SEC); // a renewal outstanding, abandoned
        m.shutdown();
        assert!(matches!(m.poll_action(t0), Some(Action::Unmap { .. })));
        m.handle_result(t0, unavailable("timeout"));
        assert!(matches!(
            m.poll_event(),
            Some(MappingEvent::Removed { error: Some(_), .. })
        ));
    }

    fn result_strategy() -> impl proptest::strategy::Strategy<Value = Result<Granted, Failure>> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<u16>(), 0u64..100_000).prop_map(|(p, l)| granted(p, l)),
            Just(unavailable("no")),
            Just(Err(Failure::OnlyPermanentLeases)),
            Just(Err(Failure::Conflict("718".into()))),
            Just(Err(Failure::UseInstead(Method::NatPmp, "v0".into()))),
        ]
    }

    proptest::proptest! {
        /// Whatever the gateway answers, in any order and at any time: no panic, at most one
        /// request outstanding, the clock never asks for the past, rounds never come faster
        /// than the initial retry, and shutdown always ends.
        #[test]
        fn any_answers_keep_the_machine_sane(
            steps in proptest::collection::vec((result_strategy(), 0u64..5000, proptest::bool::ANY), 1..60)
        ) {
            let t0 = Instant::now();
            let mut m = new(t0);
            let mut now = t0;
            for (result, advance, stray) in steps {
                now += Duration::from_secs(advance);
                if stray {
                    m.handle_result(now, result.clone());
                }
                if m.poll_action(now).is_some() {
                    proptest::prop_assert!(m.poll_action(now).is_none());
                    m.handle_result(now, result);
                }
                while let Some(ev) = m.poll_event() {
                    if let MappingEvent::Failed { retry_in, reasons } = ev {
                        proptest::prop_assert!(retry_in >= DEFAULT_RETRY_INITIAL);
                        proptest::prop_assert!(retry_in <= DEFAULT_RETRY_MAX);
                        proptest::prop_assert!(!reasons.is_empty() && reasons.len() <= 4);
                    }
                }
                if let Some(at) = m.poll_timeout() {
                    m.handle_timeout(at.max(now));
                }
            }
            m.shutdown();
            let mut sent = 0;
            while let Some(a) = m.poll_action(now) {
                proptest::prop_assert!(matches!(a, Action::Unmap { .. }), "not a removal: {:?}", a);
                m.handle_result(now, unavailable("gone"));
                sent += 1;
            }
            proptest::prop_assert!(sent <= 1);
            proptest::prop_assert!(m.is_done());
        }
    }

    #[test]
    fn gateway_restart_renews_at_once_and_stray_answers_are_ignored() {
        let t0 = Instant::now();
        let mut m = new(t0);
        m.handle_result(t0, granted(1, 1)); // nothing outstanding: ignored
        assert_eq!(m.poll_event(), None);
        m.poll_action(t0);
        m.handle_result(t0, granted(4001, 7200));
        m.gateway_restarted(t0 + SEC);
        assert!(matches!(
            m.poll_action(t0 + SEC),
            Some(Action::Map { renewal: true, .. })
        ));
    }
}
