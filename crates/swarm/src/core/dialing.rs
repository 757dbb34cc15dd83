//! The dial scheduler: ranked candidates started with a stagger, at most
//! `dial_concurrency` at once, first success wins, per-attempt and whole-dial timeouts.

use std::sync::Arc;
use std::time::Instant;

use lp2p_core::{DialOpts, Multiaddr, PeerId};

use super::dial::{Dial, Running};
use super::messages::{Action, Admitted, AttemptId, DialFailure, DialId, DialRequest, DialStart};
use super::{SwarmCore, rank};
use crate::{ConnectionId, DialAttempt, Direction, Stage, SwarmError};

impl SwarmCore {
    fn attempt_timeout(&self) -> std::time::Duration {
        self.config
            .transport_timeout
            .saturating_add(self.config.upgrade_timeout)
    }

    /// Starts a dial (or joins the one running to the same peer, or returns the live
    /// connection). Fails at once when the dial cannot start: the swarm is closed, we dial
    /// ourselves, a limit refuses it, or no candidate is left (each address's reason in the
    /// error).
    pub fn dial(&mut self, req: DialRequest, now: Instant) -> Result<DialStart, SwarmError> {
        if self.closed {
            return Err(SwarmError::Closed);
        }
        if req.peer == Some(self.local_peer) {
            return Err(SwarmError::DialSelf);
        }
        if req.reuse
            && let Some(peer) = req.peer
        {
            if let Some(conn) = self.best_connection(&peer) {
                return Ok(DialStart::Connected(conn));
            }
            if let Some(existing) = self.dial_of_peer.get(&peer).copied() {
                if let Some(d) = self.dials.get_mut(&existing) {
                    for a in req.addrs {
                        let known = d.queue.contains(&a) || d.running.iter().any(|r| r.addr == a);
                        if !known && self.backoff.remaining(&a, now).is_none() {
                            d.queue.push_back(a);
                        }
                    }
                }
                self.step_dial(existing, now);
                return Ok(DialStart::Dialing(existing));
            }
        }
        self.admit_outbound()?;
        if !req.reuse
            && let Some(peer) = &req.peer
        {
            self.admit_peer(peer)?;
        }
        let mut failures = req.failures;
        let mut candidates = Vec::with_capacity(req.addrs.len());
        for addr in req.addrs {
            if candidates.contains(&addr) {
                continue;
            }
            match self.backoff.remaining(&addr, now) {
                Some(remaining) => failures.push(DialAttempt {
                    error: Arc::new(SwarmError::Backoff {
                        addr: addr.clone(),
                        remaining,
                    }),
                    addr,
                    stage: Stage::Backoff,
                }),
                None => candidates.push(addr),
            }
        }
        let waiting_inbound = (candidates.is_empty()
            && !self.config.inbound_wait.is_zero()
            && req.peer.is_some_and(|p| self.inbound_pending_from(&p)))
        .then(|| now + self.config.inbound_wait);
        if candidates.is_empty() && waiting_inbound.is_none() {
            return Err(DialFailure {
                peer: req.peer,
                attempts: failures,
            }
            .into_error());
        }
        let backoff = &self.backoff;
        rank::rank(&mut candidates, |a| backoff.is_recent(a, now));
        let id = DialId(self.next());
        self.dials.insert(
            id,
            Dial {
                peer: req.peer,
                opts: DialOpts {
                    expected_peer: req.peer,
                    port_reuse: req.port_reuse,
                    role: req.role,
                },
                queue: candidates.into(),
                running: Vec::new(),
                failures,
                next_start: None,
                deadline: now + self.config.dial_timeout,
                waiting_inbound,
                bootstrap: None,
            },
        );
        if req.reuse
            && let Some(peer) = req.peer
        {
            self.dial_of_peer.insert(peer, id);
        }
        self.step_dial(id, now);
        Ok(DialStart::Dialing(id))
    }

    /// Advances one dial: timeouts, then new attempts, then the end when nothing is left.
    pub(super) fn step_dial(&mut self, id: DialId, now: Instant) {
        let attempt_timeout = self.attempt_timeout();
        let concurrency = self.config.dial_concurrency.max(1);
        let stagger = self.config.dial_stagger;
        let dial_timeout = self.config.dial_timeout;
        let base_backoff = self.config.dial_backoff;
        let Some(mut d) = self.dials.remove(&id) else {
            return;
        };
        if d.deadline <= now {
            let error = Arc::new(SwarmError::Timeout {
                what: "dial",
                after: dial_timeout,
            });
            self.cancel_running(&mut d, Stage::Timeout, &error);
            self.finish_failed(id, d, now);
            return;
        }
        // Attempts out of time free their slot.
        let (expired, live): (Vec<Running>, Vec<Running>) =
            d.running.drain(..).partition(|r| r.deadline <= now);
        d.running = live;
        for r in expired {
            self.attempts.remove(&r.attempt);
            self.actions
                .push_back(Action::CancelAttempt { attempt: r.attempt });
            self.backoff.record_failure(&r.addr, base_backoff, now);
            d.failures.push(DialAttempt {
                addr: r.addr,
                stage: Stage::Timeout,
                error: Arc::new(SwarmError::Timeout {
                    what: "connection attempt",
                    after: attempt_timeout,
                }),
            });
            d.next_start = None;
        }
        while d.running.len() < concurrency
            && (d.running.is_empty() || d.next_start.is_none_or(|t| t <= now))
        {
            let Some(addr) = d.queue.pop_front() else {
                break;
            };
            let attempt = AttemptId(self.next());
            self.attempts.insert(attempt, id);
            d.running.push(Running {
                attempt,
                addr: addr.clone(),
                deadline: now + attempt_timeout,
            });
            d.next_start = Some(now + stagger);
            self.actions.push_back(Action::StartAttempt {
                attempt,
                dial: id,
                addr,
                opts: d.opts,
            });
        }
        if d.running.is_empty() && d.queue.is_empty() {
            // Only a dial that had nothing to try waits (for an inbound connection that may
            // be the peer); one whose addresses all failed fails now.
            let still = d.peer.is_some_and(|p| self.inbound_pending_from(&p));
            if !still || d.waiting_inbound.is_none_or(|until| until <= now) {
                self.finish_failed(id, d, now);
                return;
            }
        }
        self.dials.insert(id, d);
    }

    /// Re-examines dials that wait for an inbound connection that may have failed.
    pub(super) fn wake_waiting_dials(&mut self, now: Instant) {
        let waiting: Vec<DialId> = self
            .dials
            .iter()
            .filter(|(_, d)| d.waiting_inbound.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.step_dial(id, now);
        }
    }

    /// An attempt reached the peer and finished its upgrade: admits the connection. `None`
    /// when it is not admitted (a limit refused it, or its dial already ended): the shell
    /// closes it; a refusal is listed in the dial's failure report and the dial goes on with
    /// its next address.
    pub fn attempt_succeeded(
        &mut self,
        attempt: AttemptId,
        peer: PeerId,
        remote_addr: Multiaddr,
        limited: bool,
        now: Instant,
    ) -> Option<Admitted> {
        let id = self.attempts.remove(&attempt)?;
        let d = self.dials.get_mut(&id)?;
        let pos = d.running.iter().position(|r| r.attempt == attempt)?;
        let addr = d.running.swap_remove(pos).addr;
        if let Err(err) = self.admit(&peer, Direction::Outbound) {
            if let Some(d) = self.dials.get_mut(&id) {
                d.failures.push(DialAttempt {
                    addr,
                    stage: Stage::Limit,
                    error: Arc::new(err),
                });
                d.next_start = None;
            }
            self.step_dial(id, now);
            return None;
        }
        self.backoff.record_success(&addr, now);
        let admitted = self.insert(peer, Direction::Outbound, remote_addr, limited, None, now);
        // `insert` ended the peer's merged dial; a dial to a bare address or a fresh-connection
        // dial ends here.
        if let Some(d) = self.dials.remove(&id) {
            self.finish(id, d, Ok(admitted.id), now);
        }
        Some(admitted)
    }

    /// An attempt failed at `stage`. `address_at_fault` puts the address in backoff (false
    /// for failures that say nothing about the address: a limit, a peer id mismatch).
    pub fn attempt_failed(
        &mut self,
        attempt: AttemptId,
        stage: Stage,
        error: Arc<SwarmError>,
        address_at_fault: bool,
        now: Instant,
    ) {
        let Some(id) = self.attempts.remove(&attempt) else {
            return;
        };
        let Some(d) = self.dials.get_mut(&id) else {
            return;
        };
        let Some(pos) = d.running.iter().position(|r| r.attempt == attempt) else {
            return;
        };
        let addr = d.running.swap_remove(pos).addr;
        if address_at_fault {
            self.backoff
                .record_failure(&addr, self.config.dial_backoff, now);
        }
        d.failures.push(DialAttempt { addr, stage, error });
        // A failure frees a slot: the next address starts without waiting for the stagger.
        d.next_start = None;
        self.step_dial(id, now);
    }

    /// Cancels every running attempt of `d`, recording `error` at `stage` for each (no
    /// backoff: a cancelled attempt says nothing about its address).
    pub(super) fn cancel_running(&mut self, d: &mut Dial, stage: Stage, error: &Arc<SwarmError>) {
        for r in d.running.drain(..) {
            self.attempts.remove(&r.attempt);
            self.actions
                .push_back(Action::CancelAttempt { attempt: r.attempt });
            d.failures.push(DialAttempt {
                addr: r.addr,
                stage,
                error: error.clone(),
            });
        }
    }

    /// Ends a dial whose every caller stopped waiting (dropped the future): its running
    /// attempts are cancelled, so their sockets close now instead of at their timeout (a
    /// hole-punch retry dials the same 4-tuple and would find the old socket still bound),
    /// and it fails with [`Stage::Cancelled`] for each. A bootstrap dial, which the swarm
    /// itself waits for, goes on. Returns whether the dial was ended.
    pub fn cancel_dial(&mut self, id: DialId, now: Instant) -> bool {
        if self.dials.get(&id).is_none_or(|d| d.bootstrap.is_some()) {
            return false;
        }
        let Some(mut d) = self.dials.remove(&id) else {
            return false;
        };
        self.cancel_running(
            &mut d,
            Stage::Cancelled,
            &Arc::new(SwarmError::DialCancelled),
        );
        self.finish_failed(id, d, now);
        true
    }

    /// Ends a dial still in the table.
    pub(super) fn finish_dial(
        &mut self,
        id: DialId,
        outcome: Result<ConnectionId, DialFailure>,
        now: Instant,
    ) {
        if let Some(d) = self.dials.remove(&id) {
            self.finish(id, d, outcome, now);
        }
    }

    /// Ends a dial with the failures it collected.
    pub(super) fn finish_failed(&mut self, id: DialId, mut d: Dial, now: Instant) {
        let failure = DialFailure {
            peer: d.peer,
            attempts: std::mem::take(&mut d.failures),
        };
        self.finish(id, d, Err(failure), now);
    }

    /// Ends a dial taken out of the table, cancelling what still runs.
    fn finish(
        &mut self,
        id: DialId,
        mut d: Dial,
        outcome: Result<ConnectionId, DialFailure>,
        now: Instant,
    ) {
        for r in d.running.drain(..) {
            self.attempts.remove(&r.attempt);
            self.actions
                .push_back(Action::CancelAttempt { attempt: r.attempt });
        }
        if let Some(peer) = d.peer
            && self.dial_of_peer.get(&peer) == Some(&id)
        {
            self.dial_of_peer.remove(&peer);
        }
        if let Some(addr) = d.bootstrap.take() {
            let peer = match &outcome {
                Ok(conn) => self.table.conns.get(conn).map(|e| e.peer),
                Err(_) => None,
            };
            self.bootstrap.dial_finished(&addr, peer, &self.config, now);
        }
        self.actions
            .push_back(Action::DialFinished { dial: id, outcome });
    }

    /// Links a dial started for [`Action::Redial`] to its bootstrap address, so its outcome
    /// schedules the next redial.
    pub fn bootstrap_dial_started(&mut self, addr: &Multiaddr, start: DialStart, now: Instant) {
        match start {
            DialStart::Dialing(id) => match self.dials.get_mut(&id) {
                Some(d) => d.bootstrap = Some(addr.clone()),
                None => self.bootstrap.dial_finished(addr, None, &self.config, now),
            },
            DialStart::Connected(conn) => {
                let peer = self.table.conns.get(&conn).map(|e| e.peer);
                self.bootstrap.dial_finished(addr, peer, &self.config, now);
            }
        }
    }

    /// A dial for [`Action::Redial`] could not start (resolution failed, a limit, ...): the
    /// address is redialed later with backoff.
    pub fn bootstrap_dial_failed(&mut self, addr: &Multiaddr, now: Instant) {
        self.bootstrap.dial_finished(addr, None, &self.config, now);
    }
}
