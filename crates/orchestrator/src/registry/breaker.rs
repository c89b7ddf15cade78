//! A deployment's circuit breaker. It is consulted on every request, with
//! the request's own clock reading, so a cool-down ends exactly when it says
//! (no timer re-admits a deployment seconds late, or early).
//!
//! Closed: requests go. After `threshold` consecutive failures it opens:
//! nothing goes until `cooldown` has passed. Then it is half-open: one
//! request (the trial) goes; its success closes the breaker, its failure
//! opens it for another cool-down. A trial that never reports (its caller
//! went away) stops blocking others after one more cool-down.
//!
//! Each request let through holds a [`Ticket`] of the breaker's epoch (the
//! times it has opened): the outcome of a request let in before the breaker
//! opened (a long stream finishing, or timing out, after the failures that
//! opened it) says nothing about the deployment now, and is not counted.

use serde::Serialize;
use std::time::{Duration, Instant};

/// What a breaker lets through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests go.
    Closed,
    /// Nothing goes until the cool-down ends.
    Open,
    /// The cool-down has ended: one trial request goes.
    HalfOpen,
}

impl BreakerState {
    /// The state's name, as reports and metrics say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// What a breaker gave a request it let through; its outcome is reported with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticket {
    epoch: u64,
    trial: bool,
}

/// One deployment's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trial_since: Option<Instant>,
    times_opened: u64,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            consecutive_failures: 0,
            open_until: None,
            trial_since: None,
            times_opened: 0,
        }
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a request would be let through at `now` (without taking the trial).
    pub fn would_admit(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.trial_free(now),
        }
    }

    fn trial_free(&self, now: Instant) -> bool {
        self.trial_since
            .is_none_or(|since| now.duration_since(since) >= self.cooldown)
    }

    /// Lets a request through at `now`, taking the half-open trial when
    /// that is what lets it through; `None` when it may not go.
    pub fn admit(&mut self, now: Instant) -> Option<Ticket> {
        let trial = match self.state(now) {
            BreakerState::Closed => false,
            BreakerState::Open => return None,
            BreakerState::HalfOpen if self.trial_free(now) => {
                self.trial_since = Some(now);
                true
            }
            BreakerState::HalfOpen => return None,
        };
        Some(Ticket {
            epoch: self.times_opened,
            trial,
        })
    }

    /// Whether the outcome of `ticket`'s request tells the state now.
    fn current(&self, ticket: Ticket) -> bool {
        ticket.epoch == self.times_opened && (ticket.trial || self.open_until.is_none())
    }

    /// A request it let through was served (or refused for its own fault):
    /// the deployment works.
    pub fn succeeded(&mut self, ticket: Ticket) {
        if !self.current(ticket) {
            return;
        }
        self.consecutive_failures = 0;
        self.open_until = None;
        self.trial_since = None;
    }

    /// A request it let through failed at `now`.
    pub fn failed(&mut self, ticket: Ticket, now: Instant) {
        if !self.current(ticket) {
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if ticket.trial || self.consecutive_failures >= self.threshold {
            self.open_until = Some(now + self.cooldown);
            self.trial_since = None;
            self.times_opened += 1;
        }
    }

    /// How long it stays open after `now` (zero unless open).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.open_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// How many times it has opened.
    pub fn times_opened(&self) -> u64 {
        self.times_opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        let t = b.admit(t0).unwrap();
        b.failed(t, t0);
        b.failed(t, t0);
        b.succeeded(t);
        b.failed(t, t0);
        b.failed(t, t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        let late = b.admit(t0).unwrap();
        b.failed(t, t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(b.admit(t0 + COOL - Duration::from_millis(1)).is_none());
        assert_eq!(b.times_opened(), 1);
        // Requests let in before it opened report late: neither their
        // success closes it nor their failure extends it.
        b.succeeded(late);
        assert_eq!(b.state(t0), BreakerState::Open);
        b.failed(late, t0 + COOL / 2);
        assert_eq!(b.remaining(t0), COOL);
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn the_cool_down_ends_on_the_request_that_comes_after_it_with_one_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        let t = b.admit(t0).unwrap();
        b.failed(t, t0);
        let after = t0 + COOL;
        assert_eq!(b.state(after), BreakerState::HalfOpen);
        assert!(b.would_admit(after));
        let trial = b
            .admit(after)
            .expect("the first request after the cool-down is the trial");
        assert!(
            b.admit(after).is_none(),
            "a second one waits for the trial's outcome"
        );
        b.failed(trial, after);
        assert_eq!(
            b.state(after),
            BreakerState::Open,
            "a failed trial reopens it"
        );
        let trial = b.admit(after + COOL).unwrap();
        b.succeeded(trial);
        assert_eq!(b.state(after + COOL), BreakerState::Closed);
        assert!(b.admit(after + COOL).is_some());
    }

    #[test]
    fn a_trial_that_never_reports_stops_blocking_after_a_cool_down() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        let t = b.admit(t0).unwrap();
        b.failed(t, t0);
        assert!(b.admit(t0 + COOL).is_some());
        assert!(b.admit(t0 + COOL + Duration::from_secs(1)).is_none());
        assert!(b.admit(t0 + COOL * 2).is_some());
    }
}
