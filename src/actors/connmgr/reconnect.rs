//! The reconnect state machine of seed 003 (`reconnect.c`), without I/O: the
//! controller loop tells it what happened and asks it how long to wait.
//!
//! States: VOID (not started), BACKOFF (waiting before the next attempt),
//! CONNECTING, ACTIVE (traffic seen recently), IDLE (probe sent, awaiting an
//! answer). Backoff starts at `min_backoff` and doubles up to `max_backoff`; a
//! connection that stayed up at least `max_backoff` resets it.

use serde::Serialize;

/// FSM states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Not started.
    Void,
    /// Waiting before reconnecting.
    Backoff,
    /// Connection attempt in progress.
    Connecting,
    /// Connected, traffic recently.
    Active,
    /// Connected, probe outstanding.
    Idle,
}

/// Reconnect bookkeeping for one controller target.
#[derive(Clone, Debug, Serialize)]
pub struct Reconnect {
    /// Target, e.g. `tcp:127.0.0.1:6653`.
    pub target: String,
    /// Current state.
    pub state: State,
    /// When the state was entered (ms).
    pub state_entered_ms: u64,
    /// Current backoff (ms); 0 before the first failure.
    pub backoff_ms: u64,
    /// Smallest backoff.
    pub min_backoff_ms: u64,
    /// Largest backoff.
    pub max_backoff_ms: u64,
    /// Connection attempts.
    pub attempts: u64,
    /// Successful connections.
    pub successes: u64,
    /// Times a connection was lost.
    pub disconnects: u64,
    /// Total time connected (ms), completed connections only.
    pub total_connected_ms: u64,
    /// Changes whenever the connection comes or goes.
    pub seqno: u64,
    /// Last error.
    pub last_error: Option<String>,
}

impl Reconnect {
    /// A new FSM in VOID.
    pub fn new(target: &str, min_backoff_ms: u64, max_backoff_ms: u64, now_ms: u64) -> Reconnect {
        Reconnect {
            target: target.to_string(),
            state: State::Void,
            state_entered_ms: now_ms,
            backoff_ms: 0,
            min_backoff_ms,
            max_backoff_ms: max_backoff_ms.max(min_backoff_ms),
            attempts: 0,
            successes: 0,
            disconnects: 0,
            total_connected_ms: 0,
            seqno: 0,
            last_error: None,
        }
    }

    fn enter(&mut self, s: State, now_ms: u64) {
        self.state = s;
        self.state_entered_ms = now_ms;
    }

    /// An attempt starts.
    pub fn connecting(&mut self, now_ms: u64) {
        self.attempts += 1;
        self.enter(State::Connecting, now_ms);
    }

    /// The attempt succeeded.
    pub fn connected(&mut self, now_ms: u64) {
        self.successes += 1;
        self.seqno += 1;
        self.last_error = None;
        self.enter(State::Active, now_ms);
    }

    /// Grows the backoff and enters BACKOFF; returns the wait in ms.
    fn back_off(&mut self, now_ms: u64) -> u64 {
        self.backoff_ms = if self.backoff_ms == 0 {
            self.min_backoff_ms
        } else {
            (self.backoff_ms * 2).min(self.max_backoff_ms)
        };
        self.enter(State::Backoff, now_ms);
        self.backoff_ms
    }

    /// The attempt failed; returns how long to wait before the next one.
    pub fn connect_failed(&mut self, err: &str, now_ms: u64) -> u64 {
        self.last_error = Some(err.to_string());
        self.back_off(now_ms)
    }

    /// An established connection ended; returns how long to wait.
    pub fn disconnected(&mut self, err: &str, now_ms: u64) -> u64 {
        let up = now_ms.saturating_sub(self.state_entered_ms);
        if matches!(self.state, State::Active | State::Idle) {
            self.total_connected_ms += up;
            self.disconnects += 1;
            self.seqno += 1;
            if up >= self.max_backoff_ms {
                // It stayed up long enough: start over from the smallest backoff.
                self.backoff_ms = 0;
            }
        }
        self.last_error = Some(err.to_string());
        self.back_off(now_ms)
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Active | State::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_one_to_eight_seconds_and_resets() {
        let mut r = Reconnect::new("tcp:127.0.0.1:6653", 1000, 8000, 0);
        r.connecting(0);
        assert_eq!(r.connect_failed("refused", 10), 1000);
        r.connecting(1010);
        assert_eq!(r.connect_failed("refused", 1020), 2000);
        r.connecting(3020);
        assert_eq!(r.connect_failed("refused", 3030), 4000);
        r.connecting(7030);
        assert_eq!(r.connect_failed("refused", 7040), 8000);
        r.connecting(15040);
        assert_eq!(r.connect_failed("refused", 15050), 8000);
        r.connecting(23050);
        r.connected(23060);
        assert!(r.is_connected());
        // Up for 60 s: the next failure starts again at 1 s.
        assert_eq!(r.disconnected("eof", 83060), 1000);
        assert_eq!(r.attempts, 6);
        assert_eq!(r.successes, 1);
        assert_eq!(r.disconnects, 1);
        assert_eq!(r.total_connected_ms, 60000);
    }
}
