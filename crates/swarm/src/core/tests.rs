//! `SwarmCore` driven in virtual time: every input is given `now`, every output is an action.
//! No sockets, no tasks, no sleeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId};

use super::*;
use crate::{CloseReason, LimitKind, Stage, SwarmConfig, SwarmError};

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn config() -> SwarmConfig {
    SwarmConfig {
        dial_stagger: Duration::from_millis(250),
        dial_concurrency: 3,
        transport_timeout: Duration::from_secs(10),
        upgrade_timeout: Duration::from_secs(15),
        dial_timeout: Duration::from_secs(30),
        dial_backoff: Duration::from_secs(5),
        idle_timeout: Some(Duration::from_secs(60)),
        ..SwarmConfig::default()
    }
}

/// A core and a virtual clock.
struct Sim {
    core: SwarmCore,
    now: Instant,
}

impl Sim {
    fn new(config: SwarmConfig) -> Sim {
        let now = Instant::now();
        Sim {
            core: SwarmCore::new(config, PeerId::random(), now),
            now,
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.core.handle_timeout(self.now);
    }

    /// Advances to the core's next deadline (at most `limit` ahead).
    fn advance_to_next(&mut self, limit: Duration) -> Duration {
        let next = self.core.poll_timeout().unwrap();
        let by = next.saturating_duration_since(self.now).min(limit);
        self.advance(by);
        by
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.core.poll_action()).collect()
    }

    fn dial(&mut self, peer: PeerId, addrs: &[&str]) -> DialId {
        match self
            .core
            .dial(
                DialRequest {
                    reuse: true,
                    ..DialRequest::new(
                        Some(peer),
                        addrs.iter().map(|a| ma(a)).collect(),
                        Vec::new(),
                    )
                },
                self.now,
            )
            .unwrap()
        {
            DialStart::Dialing(id) => id,
            DialStart::Connected(c) => panic!("unexpected existing connection {c}"),
        }
    }

    fn fail(&mut self, attempt: AttemptId) {
        self.core.attempt_failed(
            attempt,
            Stage::Transport,
            Arc::new(SwarmError::Timeout {
                what: "test",
                after: Duration::ZERO,
            }),
            true,
            self.now,
        );
    }

    fn succeed(&mut self, attempt: AttemptId, peer: PeerId) -> Option<Admitted> {
        self.core
            .attempt_succeeded(attempt, peer, ma("/ip4/1.2.3.4/tcp/1"), false, self.now)
    }

    fn inbound(&mut self, peer: PeerId, port: u16) -> Result<Admitted, SwarmError> {
        let remote = ma(&format!("/ip4/10.0.0.1/tcp/{port}"));
        let pending = self.core.inbound_attempt(remote.clone(), self.now)?;
        self.core.inbound_secured(&remote, peer)?;
        self.core
            .inbound_established(pending, peer, remote, false, self.now)
    }
}

fn started(actions: &[Action]) -> Vec<(AttemptId, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StartAttempt { attempt, addr, .. } => Some((*attempt, addr.to_string())),
            _ => None,
        })
        .collect()
}

fn cancelled(actions: &[Action]) -> Vec<AttemptId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CancelAttempt { attempt } => Some(*attempt),
            _ => None,
        })
        .collect()
}

fn finished(actions: &[Action]) -> Option<&Result<ConnectionId, DialFailure>> {
    actions.iter().find_map(|a| match a {
        Action::DialFinished { outcome, .. } => Some(outcome),
        _ => None,
    })
}

#[test]
fn dials_in_rank_order_with_a_stagger() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    sim.dial(
        peer,
        &[
            "/ip4/8.8.8.8/tcp/1",
            "/ip4/8.8.8.8/udp/1/quic-v1",
            "/ip6/2001:db8::1/udp/1/quic-v1",
            "/ip4/127.0.0.1/tcp/1",
        ],
    );
    // Only the best address starts at once.
    let first = started(&sim.actions());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "/ip4/127.0.0.1/tcp/1");
    // Nothing more before the stagger elapses.
    sim.advance(Duration::from_millis(249));
    assert!(started(&sim.actions()).is_empty());
    sim.advance(Duration::from_millis(1));
    let second = started(&sim.actions());
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].1, "/ip6/2001:db8::1/udp/1/quic-v1");
    sim.advance(Duration::from_millis(250));
    assert_eq!(started(&sim.actions())[0].1, "/ip4/8.8.8.8/udp/1/quic-v1");
    // Concurrency 3: the fourth waits even after the stagger.
    sim.advance(Duration::from_millis(250));
    assert!(started(&sim.actions()).is_empty());
}

#[test]
fn first_success_wins_and_losers_are_cancelled() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    sim.dial(
        peer,
        &[
            "/ip4/1.1.1.1/tcp/1",
            "/ip4/1.1.1.2/tcp/1",
            "/ip4/1.1.1.3/tcp/1",
        ],
    );
    let mut attempts = started(&sim.actions());
    sim.advance(Duration::from_millis(250));
    attempts.extend(started(&sim.actions()));
    sim.advance(Duration::from_millis(250));
    attempts.extend(started(&sim.actions()));
    assert_eq!(attempts.len(), 3);
    // The second one answers first.
    let admitted = sim.succeed(attempts[1].0, peer).unwrap();
    let actions = sim.actions();
    let mut losers = cancelled(&actions);
    losers.sort();
    assert_eq!(losers, vec![attempts[0].0, attempts[2].0]);
    assert!(matches!(finished(&actions), Some(Ok(id)) if *id == admitted.id));
    // A loser that answers late is not admitted.
    assert!(sim.succeed(attempts[0].0, peer).is_none());
    assert_eq!(sim.core.counts().outbound, 1);
}

#[test]
fn a_failure_starts_the_next_address_without_waiting() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    sim.dial(peer, &["/ip4/1.1.1.1/tcp/1", "/ip4/1.1.1.2/tcp/1"]);
    let first = started(&sim.actions());
    sim.fail(first[0].0);
    let next = started(&sim.actions());
    assert_eq!(next.len(), 1, "the next address starts at once");
    assert_eq!(next[0].1, "/ip4/1.1.1.2/tcp/1");
    sim.fail(next[0].0);
    let actions = sim.actions();
    let Some(Err(failure)) = finished(&actions) else {
        panic!("the dial must fail: {actions:?}");
    };
    assert_eq!(failure.attempts.len(), 2);
    assert!(failure.attempts.iter().all(|a| a.stage == Stage::Transport));
}

#[test]
fn attempt_and_dial_timeouts() {
    let mut sim = Sim::new(SwarmConfig {
        transport_timeout: Duration::from_secs(1),
        upgrade_timeout: Duration::from_secs(1),
        dial_timeout: Duration::from_secs(5),
        dial_stagger: Duration::from_secs(10),
        dial_concurrency: 1,
        ..config()
    });
    let peer = PeerId::random();
    sim.dial(
        peer,
        &[
            "/ip4/1.1.1.1/tcp/1",
            "/ip4/1.1.1.2/tcp/1",
            "/ip4/1.1.1.3/tcp/1",
        ],
    );
    let first = started(&sim.actions());
    // Each attempt gets transport + upgrade timeout (2 s), then the next starts.
    assert_eq!(
        sim.advance_to_next(Duration::from_secs(60)),
        Duration::from_secs(2)
    );
    let actions = sim.actions();
    assert_eq!(cancelled(&actions), vec![first[0].0]);
    assert_eq!(started(&actions)[0].1, "/ip4/1.1.1.2/tcp/1");
    sim.advance_to_next(Duration::from_secs(60));
    let third = started(&sim.actions());
    assert_eq!(third[0].1, "/ip4/1.1.1.3/tcp/1");
    // The whole dial ends at 5 s, with the attempt still running cancelled.
    sim.advance_to_next(Duration::from_secs(60));
    let actions = sim.actions();
    assert_eq!(cancelled(&actions), vec![third[0].0]);
    let Some(Err(failure)) = finished(&actions) else {
        panic!("timed out dial: {actions:?}");
    };
    let stages: Vec<Stage> = failure.attempts.iter().map(|a| a.stage).collect();
    assert_eq!(stages, [Stage::Timeout, Stage::Timeout, Stage::Timeout]);
    assert!(
        failure.attempts[2]
            .error
            .to_string()
            .contains("dial timed out")
    );
    assert!(sim.core.attempts.is_empty(), "timed-out attempts forgotten");
}

#[test]
fn a_dial_nobody_waits_for_is_cancelled_without_backoff() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    let id = sim.dial(peer, &["/ip4/1.1.1.1/tcp/1", "/ip4/1.1.1.2/tcp/1"]);
    let mut running = started(&sim.actions());
    sim.advance(Duration::from_millis(250));
    running.extend(started(&sim.actions()));
    assert_eq!(running.len(), 2);
    assert!(sim.core.cancel_dial(id, sim.now));
    let actions = sim.actions();
    let mut stopped = cancelled(&actions);
    stopped.sort();
    assert_eq!(stopped, [running[0].0, running[1].0]);
    let Some(Err(failure)) = finished(&actions) else {
        panic!("cancelled dial: {actions:?}");
    };
    let stages: Vec<Stage> = failure.attempts.iter().map(|a| a.stage).collect();
    assert_eq!(stages, [Stage::Cancelled, Stage::Cancelled]);
    assert!(failure.attempts[0].error.to_string().contains("cancelled"));
    assert!(sim.core.attempts.is_empty());
    assert_eq!(
        sim.core
            .backoff_remaining(&ma("/ip4/1.1.1.1/tcp/1"), sim.now),
        None
    );
    // A late report from a cancelled attempt changes nothing; a second cancel is a no-op.
    sim.fail(running[0].0);
    assert!(sim.actions().is_empty());
    assert!(!sim.core.cancel_dial(id, sim.now));
    // The peer is dialed afresh at once, from the first address again.
    let again = sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    assert_ne!(again, id);
    assert_eq!(started(&sim.actions())[0].1, "/ip4/1.1.1.1/tcp/1");
}

#[test]
fn a_bootstrap_dial_is_not_cancelled() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    let addr = ma(&format!("/ip4/1.1.1.1/tcp/1/p2p/{peer}"));
    sim.core.add_bootstrap(addr.clone(), sim.now);
    sim.advance(Duration::ZERO);
    assert!(
        sim.actions()
            .iter()
            .any(|a| matches!(a, Action::Redial { .. }))
    );
    let id = sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    sim.core
        .bootstrap_dial_started(&addr, DialStart::Dialing(id), sim.now);
    let attempt = started(&sim.actions());
    assert!(!sim.core.cancel_dial(id, sim.now));
    assert!(cancelled(&sim.actions()).is_empty());
    assert!(sim.succeed(attempt[0].0, peer).is_some());
}

#[test]
fn backoff_grows_is_reported_as_backoff_and_clears() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    let addr = "/ip4/1.1.1.1/tcp/1";
    let mut waits = Vec::new();
    for _ in 0..4 {
        sim.dial(peer, &[addr]);
        let a = started(&sim.actions());
        sim.fail(a[0].0);
        sim.actions();
        let left = sim.core.backoff_remaining(&ma(addr), sim.now).unwrap();
        waits.push(left);
        sim.advance(left);
    }
    assert_eq!(
        waits,
        [5, 10, 20, 40].map(Duration::from_secs),
        "exponential from dial_backoff"
    );
    // In backoff: the dial fails at once with a Backoff error, not a timeout.
    sim.dial(peer, &[addr]);
    let a = started(&sim.actions());
    sim.fail(a[0].0);
    sim.actions();
    let err = sim
        .core
        .dial(
            DialRequest {
                reuse: true,
                ..DialRequest::new(Some(peer), vec![ma(addr)], Vec::new())
            },
            sim.now,
        )
        .unwrap_err();
    let attempts = err.attempts();
    assert_eq!(attempts[0].stage, Stage::Backoff);
    assert!(matches!(*attempts[0].error, SwarmError::Backoff { .. }));
    // Cleared: dialable again.
    sim.core.clear_backoff(Some(&ma(addr)));
    sim.dial(peer, &[addr]);
    assert_eq!(started(&sim.actions()).len(), 1);
}

#[test]
fn backoff_is_capped() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    for _ in 0..20 {
        sim.core.clear_backoff(None);
        sim.core
            .backoff
            .record_failure(&ma("/ip4/1.1.1.1/tcp/1"), Duration::from_secs(5), sim.now);
    }
    let _ = peer;
    let left = sim
        .core
        .backoff_remaining(&ma("/ip4/1.1.1.1/tcp/1"), sim.now)
        .unwrap();
    assert!(left <= crate::config::MAX_DIAL_BACKOFF, "{left:?}");
}

#[test]
fn recent_success_is_tried_first_next_time() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    sim.dial(peer, &["/ip4/127.0.0.1/tcp/1", "/ip4/8.8.8.8/tcp/1"]);
    let a = started(&sim.actions());
    sim.fail(a[0].0);
    let b = started(&sim.actions());
    assert_eq!(b[0].1, "/ip4/8.8.8.8/tcp/1");
    let conn = sim.succeed(b[0].0, peer).unwrap();
    sim.actions();
    sim.core.connection_closed(conn.id, sim.now);
    sim.core.clear_backoff(None);
    sim.dial(peer, &["/ip4/127.0.0.1/tcp/1", "/ip4/8.8.8.8/tcp/1"]);
    assert_eq!(started(&sim.actions())[0].1, "/ip4/8.8.8.8/tcp/1");
}

#[test]
fn concurrent_dials_merge_and_a_live_connection_is_reused() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    let d1 = sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    let d2 = sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    assert_eq!(d1, d2);
    let a = started(&sim.actions());
    assert_eq!(a.len(), 1);
    let conn = sim.succeed(a[0].0, peer).unwrap();
    sim.actions();
    let again = sim
        .core
        .dial(
            DialRequest {
                reuse: true,
                ..DialRequest::new(Some(peer), vec![], vec![])
            },
            sim.now,
        )
        .unwrap();
    assert_eq!(again, DialStart::Connected(conn.id));
}

#[test]
fn an_inbound_connection_ends_a_running_dial_and_a_dial_waits_for_one() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    let a = started(&sim.actions());
    let inbound = sim.inbound(peer, 7).unwrap();
    let actions = sim.actions();
    assert_eq!(cancelled(&actions), vec![a[0].0]);
    assert!(matches!(finished(&actions), Some(Ok(id)) if *id == inbound.id));

    // A peer with no address but an inbound handshake in progress: the dial waits for it.
    let other = PeerId::random();
    let remote = ma("/ip4/10.0.0.9/tcp/9");
    let pending = sim.core.inbound_attempt(remote.clone(), sim.now).unwrap();
    sim.core.inbound_secured(&remote, other).unwrap();
    let dial = sim.dial(other, &[]);
    assert!(finished(&sim.actions()).is_none());
    let admitted = sim
        .core
        .inbound_established(pending, other, remote, false, sim.now)
        .unwrap();
    let actions = sim.actions();
    assert!(
        actions.iter().any(|a| matches!(a, Action::DialFinished { dial: d, outcome: Ok(id) } if *d == dial && *id == admitted.id)),
        "{actions:?}"
    );

    // Without an inbound attempt it fails at once for lack of addresses.
    let err = sim
        .core
        .dial(
            DialRequest {
                reuse: true,
                ..DialRequest::new(Some(PeerId::random()), vec![], vec![])
            },
            sim.now,
        )
        .unwrap_err();
    assert!(matches!(err, SwarmError::NoAddresses(_)), "{err}");
}

#[test]
fn a_waiting_dial_fails_when_the_inbound_handshake_fails() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    let remote = ma("/ip4/10.0.0.9/tcp/9");
    let pending = sim.core.inbound_attempt(remote.clone(), sim.now).unwrap();
    sim.core.inbound_secured(&remote, peer).unwrap();
    sim.dial(peer, &[]);
    sim.core.inbound_failed(pending, sim.now);
    assert!(matches!(finished(&sim.actions()), Some(Err(_))));
}

#[test]
fn inbound_limits() {
    let mut sim = Sim::new(SwarmConfig {
        max_inbound: 3,
        max_pending_inbound: 2,
        max_per_peer: 2,
        ..config()
    });
    // Pending inbound: 2 handshakes at a time.
    let p1 = sim
        .core
        .inbound_attempt(ma("/ip4/10.0.0.1/tcp/1"), sim.now)
        .unwrap();
    let p2 = sim
        .core
        .inbound_attempt(ma("/ip4/10.0.0.1/tcp/2"), sim.now)
        .unwrap();
    let err = sim
        .core
        .inbound_attempt(ma("/ip4/10.0.0.1/tcp/3"), sim.now)
        .unwrap_err();
    assert!(matches!(
        err,
        SwarmError::Limit {
            kind: LimitKind::PendingInbound,
            limit: 2,
            ..
        }
    ));
    sim.core.inbound_failed(p1, sim.now);
    sim.core.inbound_failed(p2, sim.now);
    // Per peer: 2 connections to one peer; the check runs once the handshake names it.
    let a = PeerId::random();
    sim.inbound(a, 10).unwrap();
    sim.inbound(a, 11).unwrap();
    let err = sim.inbound(a, 12).unwrap_err();
    assert!(matches!(
        err,
        SwarmError::Limit {
            kind: LimitKind::PerPeer,
            limit: 2,
            ..
        }
    ));
    // The refused attempt still holds its pending slot until reported failed.
    assert_eq!(sim.core.counts().pending_inbound, 1);
    // Inbound total: 3, pending attempts count against it.
    let pend: Vec<PendingId> = sim.core.pending.keys().copied().collect();
    for p in pend {
        sim.core.inbound_failed(p, sim.now);
    }
    sim.inbound(PeerId::random(), 13).unwrap();
    let err = sim.inbound(PeerId::random(), 14).unwrap_err();
    assert!(matches!(
        err,
        SwarmError::Limit {
            kind: LimitKind::Inbound,
            limit: 3,
            ..
        }
    ));
}

#[test]
fn outbound_limits() {
    let mut sim = Sim::new(SwarmConfig {
        max_outbound: 1,
        ..config()
    });
    let peer = PeerId::random();
    sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    let a = started(&sim.actions());
    sim.succeed(a[0].0, peer).unwrap();
    sim.actions();
    let err = sim
        .core
        .dial(
            DialRequest {
                reuse: true,
                ..DialRequest::new(
                    Some(PeerId::random()),
                    vec![ma("/ip4/1.1.1.2/tcp/1")],
                    vec![],
                )
            },
            sim.now,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        SwarmError::Limit {
            kind: LimitKind::Outbound,
            limit: 1,
            ..
        }
    ));
}

#[test]
fn a_refused_success_is_a_limit_failure_and_the_dial_goes_on() {
    let mut sim = Sim::new(SwarmConfig {
        max_per_peer: 1,
        ..config()
    });
    let peer = PeerId::random();
    sim.inbound(peer, 1).unwrap();
    // A fresh-connection dial to the same peer hits the per-peer limit at once...
    let err = sim
        .core
        .dial(
            DialRequest {
                reuse: false,
                ..DialRequest::new(Some(peer), vec![ma("/ip4/1.1.1.1/tcp/1")], vec![])
            },
            sim.now,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        SwarmError::Limit {
            kind: LimitKind::PerPeer,
            ..
        }
    ));
    // ...and a bare-address dial that reaches it is refused when it succeeds.
    let DialStart::Dialing(_) = sim
        .core
        .dial(
            DialRequest {
                reuse: false,
                ..DialRequest::new(
                    None,
                    vec![ma("/ip4/1.1.1.1/tcp/1"), ma("/ip4/1.1.1.2/tcp/1")],
                    vec![],
                )
            },
            sim.now,
        )
        .unwrap()
    else {
        panic!()
    };
    let a = started(&sim.actions());
    assert!(sim.succeed(a[0].0, peer).is_none());
    let next = started(&sim.actions());
    assert_eq!(next[0].1, "/ip4/1.1.1.2/tcp/1", "the dial goes on");
}

#[test]
fn idle_connections_close_and_active_or_protected_ones_stay() {
    let mut sim = Sim::new(config());
    let busy = PeerId::random();
    let quiet = PeerId::random();
    let guarded = PeerId::random();
    let c_busy = sim.inbound(busy, 1).unwrap().id;
    let c_quiet = sim.inbound(quiet, 2).unwrap().id;
    let c_guarded = sim.inbound(guarded, 3).unwrap().id;
    sim.core.protect(guarded);
    let mut opened = 0u64;
    let mut closed = Vec::new();
    let mut elapsed = Duration::ZERO;
    while elapsed < Duration::from_secs(200) {
        elapsed += sim.advance_to_next(Duration::from_secs(300));
        for action in sim.actions() {
            match action {
                Action::CheckIdle { conn } if conn == c_busy => {
                    // A short stream opened and closed between two checks still counts.
                    opened += 1;
                    sim.core.idle_report(conn, 0, opened, sim.now);
                }
                Action::CheckIdle { conn } => sim.core.idle_report(conn, 0, 0, sim.now),
                Action::Close { conn, reason } => {
                    assert_eq!(reason, CloseReason::Idle);
                    closed.push((conn, elapsed));
                }
                _ => {}
            }
        }
    }
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].0, c_quiet);
    // Idle from the first check (15 s), closed 60 s later, within one check interval.
    let at = closed[0].1;
    assert!(
        at >= Duration::from_secs(60) && at <= Duration::from_secs(80),
        "{at:?}"
    );
    let _ = c_guarded;
}

/// Answers every idle check with `streams` open streams (the same count of streams ever
/// opened, so only `streams > 0` is activity); returns the connections closed.
fn answer_idle_checks(sim: &mut Sim, busy: &[ConnectionId]) -> Vec<ConnectionId> {
    let mut closed = Vec::new();
    for action in sim.actions() {
        match action {
            Action::CheckIdle { conn } => {
                let open = usize::from(busy.contains(&conn));
                sim.core.idle_report(conn, open, 0, sim.now);
            }
            Action::Close { conn, .. } => closed.push(conn),
            _ => {}
        }
    }
    closed
}

#[test]
fn a_full_inbound_table_closes_the_connection_idle_the_longest_for_a_new_one() {
    let mut sim = Sim::new(SwarmConfig {
        max_inbound: 3,
        inbound_idle_eviction_age: Some(Duration::from_secs(10)),
        ..config()
    });
    let busy = sim.inbound(PeerId::random(), 1).unwrap().id;
    let guarded_peer = PeerId::random();
    let guarded = sim.inbound(guarded_peer, 2).unwrap().id;
    sim.core.protect(guarded_peer);
    sim.advance(Duration::from_secs(3));
    let quiet = sim.inbound(PeerId::random(), 3).unwrap().id;
    // Full, and nobody has been idle for 10 s yet: refused as before.
    let refused = sim.inbound(PeerId::random(), 4).unwrap_err();
    assert!(matches!(
        refused,
        SwarmError::Limit {
            kind: LimitKind::Inbound,
            limit: 3,
            ..
        }
    ));
    let mut elapsed = Duration::ZERO;
    while elapsed < Duration::from_secs(25) {
        elapsed += sim.advance_to_next(Duration::from_secs(1));
        assert!(answer_idle_checks(&mut sim, &[busy]).is_empty());
    }
    // Now the quiet connection has been idle long enough: it is closed for the newcomer;
    // the busy one (a stream open) and the protected one are not candidates.
    let newcomer = sim.inbound(PeerId::random(), 5).unwrap().id;
    assert_eq!(answer_idle_checks(&mut sim, &[busy]), vec![quiet]);
    assert_eq!(sim.core.counts().evicted_idle_inbound, 1);
    sim.core.connection_closed(quiet, sim.now).unwrap();
    // Full again, and only the newcomer could go, once idle long enough.
    assert!(sim.inbound(PeerId::random(), 6).is_err());
    let _ = (guarded, newcomer);
}

#[test]
fn without_an_idle_eviction_age_a_full_inbound_table_refuses() {
    let mut sim = Sim::new(SwarmConfig {
        max_inbound: 1,
        inbound_idle_eviction_age: None,
        ..config()
    });
    sim.inbound(PeerId::random(), 1).unwrap();
    let mut elapsed = Duration::ZERO;
    while elapsed < Duration::from_secs(50) {
        elapsed += sim.advance_to_next(Duration::from_secs(1));
        answer_idle_checks(&mut sim, &[]);
    }
    assert!(sim.inbound(PeerId::random(), 2).is_err());
    assert_eq!(sim.core.counts().evicted_idle_inbound, 0);
}

#[test]
fn bootstrap_redial_schedule() {
    let mut sim = Sim::new(SwarmConfig {
        bootstrap_backoff: Duration::from_secs(1),
        ..config()
    });
    let peer = PeerId::random();
    let addr = ma(&format!("/ip4/1.1.1.1/tcp/1/p2p/{peer}"));
    sim.core.add_bootstrap(addr.clone(), sim.now);
    assert!(sim.core.is_protected(&peer));
    let mut redials = Vec::new();
    let mut t = Duration::ZERO;
    // Every redial fails: 1 s, 2 s, 4 s, ... apart.
    while redials.len() < 5 {
        t += sim.advance_to_next(Duration::from_secs(600));
        for action in sim.actions() {
            if let Action::Redial { addr: a } = action {
                assert_eq!(a, addr);
                redials.push(t);
                sim.core.bootstrap_dial_failed(&a, sim.now);
            }
        }
    }
    let gaps: Vec<u64> = redials
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).as_secs())
        .collect();
    assert_eq!(redials[0], Duration::ZERO, "dialed at start");
    assert_eq!(gaps, [1, 2, 4, 8]);
    // Connected: no redial while the connection lives; its close schedules one after the base.
    t += sim.advance_to_next(Duration::from_secs(600));
    let redial = sim
        .actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Redial { addr } => Some(addr),
            _ => None,
        })
        .unwrap();
    let id = sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    sim.core
        .bootstrap_dial_started(&redial, DialStart::Dialing(id), sim.now);
    let a = started(&sim.actions());
    let conn = sim.succeed(a[0].0, peer).unwrap();
    sim.actions();
    sim.advance(Duration::from_secs(3600));
    assert!(
        !sim.actions()
            .iter()
            .any(|a| matches!(a, Action::Redial { .. })),
        "no redial while connected"
    );
    sim.core.connection_closed(conn.id, sim.now);
    sim.advance(Duration::from_millis(999));
    assert!(
        !sim.actions()
            .iter()
            .any(|a| matches!(a, Action::Redial { .. }))
    );
    sim.advance(Duration::from_millis(1));
    assert!(
        sim.actions()
            .iter()
            .any(|a| matches!(a, Action::Redial { .. }))
    );
    let _ = t;
}

#[test]
fn a_full_set_of_pending_slots_evicts_the_oldest_unproven_handshake() {
    let mut sim = Sim::new(SwarmConfig {
        max_pending_inbound: 3,
        pending_inbound_eviction_age: Some(Duration::from_secs(1)),
        ..config()
    });
    let attempt = |sim: &mut Sim, port: u16| {
        let addr = ma(&format!("/ip4/10.0.0.{port}/tcp/{port}"));
        sim.core.inbound_attempt(addr, sim.now)
    };
    let a1 = attempt(&mut sim, 1).unwrap();
    let a2 = attempt(&mut sim, 2).unwrap();
    sim.advance(Duration::from_millis(500));
    let a3 = attempt(&mut sim, 3).unwrap();
    // Full, and the oldest is younger than the eviction age: refused as before.
    sim.advance(Duration::from_millis(100));
    let err = attempt(&mut sim, 4).unwrap_err();
    assert!(matches!(
        err,
        SwarmError::Limit {
            kind: LimitKind::PendingInbound,
            limit: 3,
            ..
        }
    ));
    assert!(sim.actions().is_empty());
    // A second after it started, the oldest handshake gives its slot to a new one.
    sim.advance(Duration::from_millis(400));
    let b = attempt(&mut sim, 5).unwrap();
    let actions = sim.actions();
    assert!(
        matches!(actions.as_slice(), [Action::EvictInbound { pending, age }]
            if *pending == a1 && *age == Duration::from_secs(1)),
        "{actions:?}"
    );
    assert_eq!(sim.core.counts().pending_inbound, 3);
    // An evicted handshake that finishes anyway is refused.
    assert!(
        sim.core
            .inbound_established(
                a1,
                PeerId::random(),
                ma("/ip4/10.0.0.1/tcp/1"),
                false,
                sim.now
            )
            .is_err()
    );
    // A handshake that proved its peer is never evicted: a2 is older, a3 goes (once old
    // enough).
    sim.core
        .inbound_secured(&ma("/ip4/10.0.0.2/tcp/2"), PeerId::random())
        .unwrap();
    sim.advance(Duration::from_millis(200));
    assert!(attempt(&mut sim, 6).is_err());
    sim.advance(Duration::from_millis(300));
    let c = attempt(&mut sim, 7).unwrap();
    assert!(matches!(
        sim.actions().as_slice(),
        [Action::EvictInbound { pending, .. }] if *pending == a3
    ));
    // The ones left finish normally.
    for (pending, n) in [(a2, 2u16), (b, 5), (c, 7)] {
        let addr = ma(&format!("/ip4/10.0.0.{n}/tcp/{n}"));
        sim.core
            .inbound_established(pending, PeerId::random(), addr, false, sim.now)
            .unwrap();
    }
    assert_eq!(sim.core.counts().pending_inbound, 0);
}

#[test]
fn without_an_eviction_age_a_full_set_of_pending_slots_refuses() {
    let mut sim = Sim::new(SwarmConfig {
        max_pending_inbound: 1,
        pending_inbound_eviction_age: None,
        ..config()
    });
    sim.core
        .inbound_attempt(ma("/ip4/10.0.0.1/tcp/1"), sim.now)
        .unwrap();
    sim.advance(Duration::from_secs(10));
    assert!(
        sim.core
            .inbound_attempt(ma("/ip4/10.0.0.2/tcp/2"), sim.now)
            .is_err()
    );
    assert!(sim.actions().is_empty());
}

#[test]
fn inbound_upgrade_timeout_cancels_the_attempt() {
    let mut sim = Sim::new(config());
    let pending = sim
        .core
        .inbound_attempt(ma("/ip4/10.0.0.1/tcp/1"), sim.now)
        .unwrap();
    sim.advance(Duration::from_secs(14));
    assert!(sim.actions().is_empty());
    sim.advance(Duration::from_secs(1));
    let actions = sim.actions();
    assert!(matches!(actions.as_slice(), [Action::CancelInbound { pending: p }] if *p == pending));
    assert_eq!(sim.core.counts().pending_inbound, 0);
    // A late success is refused.
    let err = sim
        .core
        .inbound_established(
            pending,
            PeerId::random(),
            ma("/ip4/10.0.0.1/tcp/1"),
            false,
            sim.now,
        )
        .unwrap_err();
    assert!(matches!(err, SwarmError::Timeout { .. }));
}

#[test]
fn close_fails_running_dials_and_refuses_new_work() {
    let mut sim = Sim::new(config());
    let peer = PeerId::random();
    sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    let a = started(&sim.actions());
    sim.core.close(sim.now);
    let actions = sim.actions();
    assert_eq!(cancelled(&actions), vec![a[0].0]);
    assert!(matches!(finished(&actions), Some(Err(_))));
    assert!(matches!(
        sim.core.inbound_attempt(ma("/ip4/10.0.0.1/tcp/1"), sim.now),
        Err(SwarmError::Closed)
    ));
}

#[test]
fn one_ip_and_one_subnet_get_a_bounded_share_of_inbound_slots() {
    let mut sim = Sim::new(SwarmConfig {
        max_pending_inbound_per_ip: 2,
        max_inbound_per_ip: 3,
        max_pending_inbound_per_subnet: 4,
        max_inbound_per_subnet: 5,
        ..config()
    });
    let at = |s: &str| ma(s);
    // Pending from one IP: 2.
    let a1 = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.1/tcp/1"), sim.now)
        .unwrap();
    let _a2 = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.1/tcp/2"), sim.now)
        .unwrap();
    let err = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.1/tcp/3"), sim.now)
        .unwrap_err();
    let SwarmError::Limit {
        kind: LimitKind::PendingInboundPerIp,
        limit: 2,
        current: 2,
        subject: Some(subject),
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(subject, "10.0.0.1");
    assert!(err.to_string().contains("10.0.0.1"), "{err}");
    // Another IP of the same /24 is still served, up to the subnet's pending share (4).
    let b1 = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.2/tcp/1"), sim.now)
        .unwrap();
    let _b2 = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.2/tcp/2"), sim.now)
        .unwrap();
    let err = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.3/tcp/1"), sim.now)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SwarmError::Limit {
                kind: LimitKind::PendingInboundPerSubnet,
                ..
            }
        ),
        "{err}"
    );
    // Another subnet is unaffected.
    sim.core
        .inbound_attempt(at("/ip4/10.0.1.1/tcp/1"), sim.now)
        .unwrap();
    // Handshakes that end free their slot; established ones count towards the IP total.
    sim.core
        .inbound_established(
            a1,
            PeerId::random(),
            at("/ip4/10.0.0.1/tcp/1"),
            false,
            sim.now,
        )
        .unwrap();
    sim.core.inbound_failed(b1, sim.now);
    assert_eq!(
        sim.core.inbound_from_ip("10.0.0.1".parse().unwrap()),
        (1, 1)
    );
    let c = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.1/tcp/4"), sim.now)
        .unwrap();
    sim.core
        .inbound_established(
            c,
            PeerId::random(),
            at("/ip4/10.0.0.1/tcp/4"),
            false,
            sim.now,
        )
        .unwrap();
    let err = sim
        .core
        .inbound_attempt(at("/ip4/10.0.0.1/tcp/5"), sim.now)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SwarmError::Limit {
                kind: LimitKind::InboundPerIp,
                limit: 3,
                current: 3,
                ..
            }
        ),
        "{err}"
    );
    // A closed connection gives its share back.
    let conns: Vec<ConnectionId> = sim.core.table.conns.keys().copied().collect();
    for conn in conns {
        sim.core.connection_closed(conn, sim.now);
    }
    assert_eq!(
        sim.core.inbound_from_ip("10.0.0.1".parse().unwrap()),
        (1, 0)
    );
}

#[test]
fn loopback_is_spared_the_per_ip_limits_unless_asked() {
    let config = SwarmConfig {
        max_pending_inbound_per_ip: 1,
        ..config()
    };
    let mut sim = Sim::new(config.clone());
    for port in 1..=5 {
        sim.core
            .inbound_attempt(ma(&format!("/ip4/127.0.0.1/tcp/{port}")), sim.now)
            .unwrap();
    }
    let mut strict = Sim::new(SwarmConfig {
        ip_limits_on_loopback: true,
        ..config
    });
    strict
        .core
        .inbound_attempt(ma("/ip4/127.0.0.1/tcp/1"), strict.now)
        .unwrap();
    assert!(
        strict
            .core
            .inbound_attempt(ma("/ip6/::1/tcp/2"), strict.now)
            .is_ok(),
        "another address"
    );
    assert!(
        strict
            .core
            .inbound_attempt(ma("/ip4/127.0.0.1/tcp/3"), strict.now)
            .is_err()
    );
}

#[test]
fn expired_and_cancelled_handshakes_give_their_ip_share_back() {
    let mut sim = Sim::new(SwarmConfig {
        max_pending_inbound_per_ip: 1,
        ..config()
    });
    sim.core
        .inbound_attempt(ma("/ip4/10.9.9.9/tcp/1"), sim.now)
        .unwrap();
    assert!(
        sim.core
            .inbound_attempt(ma("/ip4/10.9.9.9/tcp/2"), sim.now)
            .is_err()
    );
    sim.advance(Duration::from_secs(15));
    sim.actions();
    sim.core
        .inbound_attempt(ma("/ip4/10.9.9.9/tcp/3"), sim.now)
        .unwrap();
    sim.core.close(sim.now);
    assert_eq!(
        sim.core.inbound_from_ip("10.9.9.9".parse().unwrap()),
        (0, 0)
    );
}

#[test]
fn a_dial_with_no_address_waits_briefly_for_unauthenticated_inbound_handshakes() {
    let mut sim = Sim::new(SwarmConfig {
        inbound_wait: Duration::from_secs(2),
        ..config()
    });
    let peer = PeerId::random();
    // Someone is handshaking; who, we learn only at the end (noise XX's responder).
    let remote = ma("/ip4/10.0.0.9/tcp/9");
    let pending = sim.core.inbound_attempt(remote.clone(), sim.now).unwrap();
    let dial = sim.dial(peer, &[]);
    assert!(finished(&sim.actions()).is_none(), "it waits");
    sim.advance(Duration::from_millis(500));
    let admitted = sim
        .core
        .inbound_established(pending, peer, remote, false, sim.now)
        .unwrap();
    let actions = sim.actions();
    assert!(
        actions.iter().any(|a| matches!(a, Action::DialFinished { dial: d, outcome: Ok(id) } if *d == dial && *id == admitted.id)),
        "{actions:?}"
    );
    // A handshake that turns out to be someone else: the dial gives up after the wait.
    let _other = sim
        .core
        .inbound_attempt(ma("/ip4/10.0.0.8/tcp/8"), sim.now)
        .unwrap();
    let stranger = PeerId::random();
    sim.dial(stranger, &[]);
    sim.advance(Duration::from_millis(1999));
    assert!(finished(&sim.actions()).is_none());
    sim.advance(Duration::from_millis(1));
    assert!(matches!(finished(&sim.actions()), Some(Err(_))));
}

#[test]
fn a_dial_whose_addresses_failed_does_not_wait_for_inbound_handshakes() {
    let mut sim = Sim::new(config());
    let _someone = sim
        .core
        .inbound_attempt(ma("/ip4/10.0.0.9/tcp/9"), sim.now)
        .unwrap();
    let peer = PeerId::random();
    sim.dial(peer, &["/ip4/1.1.1.1/tcp/1"]);
    let a = started(&sim.actions());
    sim.fail(a[0].0);
    assert!(matches!(finished(&sim.actions()), Some(Err(_))));
}
