//! Automatic reconnect of client connections: which ends are retried, the jittered
//! exponential backoff, and the re-dial of the same URL on the same connection handle.
//!
//! A lost connection does not reach `finalize`'s callbacks: the loop resets the connection's
//! per-socket state, reports `on_reconnect` and waits in [`Phase::Backoff`] on the
//! connection's own deadline; when it passes, the URL given to `connect` is dialled again
//! (the proxy chosen again, redirects followed again). The events object stays in place, so
//! `on_open` fires once per successful connection and `on_error`/`on_close` once, at the
//! very end.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{ClientConfig, ReconnectPolicy};
use super::conn::{Conn, OutBuf, Phase};
use super::ending::{CloseHandshake, CloseOrigin, CloseReport, Teardown};
use super::event_loop::EventLoop;
use super::events::ReconnectEvent;
use super::log::{self, Level};
use crate::core::handshake::url::WsUrl;
use crate::core::protocol::close::codes;
use crate::core::session::Writer;
use crate::reactor::error::Error;

/// What a connection with reconnect on keeps for its whole life (the handshake state ends
/// at every open).
pub(super) struct ReconnectState {
    policy: ReconnectPolicy,
    /// The URL and options `connect` was given: every attempt starts from them, whatever
    /// redirects changed last time.
    pub(super) url: WsUrl,
    pub(super) config: Arc<ClientConfig>,
    /// Attempts since the last open (or since the first dial).
    attempt: u32,
    /// The application closed, terminated or stopped reconnecting: the next end is the last.
    pub(super) stopped: bool,
    /// The status of the last non-101 answer, to tell a refusal that may pass (5xx, 429)
    /// from one that will not.
    pub(super) http_status: Option<u16>,
    /// Why the connection was last lost, for an end during the wait.
    last_failure: Option<(Error, String)>,
}

impl ReconnectState {
    pub(super) fn new(policy: ReconnectPolicy, url: WsUrl, config: Arc<ClientConfig>) -> Self {
        ReconnectState { policy, url, config, attempt: 0, stopped: false, http_status: None, last_failure: None }
    }
}

/// The wait before attempt `attempt` (1-based): `initial * factor^(attempt-1)` capped at
/// `max_delay`, with equal jitter: half of it fixed, the other half random, so delays still
/// grow from attempt to attempt and never fall to nothing, while clients that lost the same
/// server spread out.
pub fn backoff_delay(policy: &ReconnectPolicy, attempt: u32, random: u64) -> Duration {
    let initial = policy.initial_delay.as_secs_f64() * 1000.0;
    let cap = policy.max_delay.as_secs_f64() * 1000.0;
    let exp = attempt.saturating_sub(1).min(1000) as i32;
    let base = (initial * policy.factor.powi(exp)).min(cap).max(1.0) as u64;
    let half = base / 2;
    let spread = base - half;
    Duration::from_millis(half + random % (spread + 1))
}

/// Is this end worth another attempt? No when the same request would fail the same way:
/// a refused upgrade other than 5xx, 408 and 429; a redirect not followed; a bad URL or
/// option; TLS (certificates do not fix themselves); the peer breaking the protocol or
/// closing with 1002, 1003, 1007, 1008, 1009 or 1010; a panic. Everything else is retried:
/// network errors, timeouts, resets, a socket closed during the handshake, and the
/// server's own closes (1000 and 1001 included, as Node's reconnecting clients do: a server
/// restarting or deploying closes that way).
pub fn is_retryable(failure: Option<&(Error, String)>, report: &CloseReport, http_status: Option<u16>) -> bool {
    if let Some((error, _)) = failure {
        return match error {
            Error::Dns | Error::ConnectionRefused | Error::Timeout | Error::Io | Error::ConnectionReset => true,
            Error::Handshake => true,
            Error::HandshakeRejected => http_status.is_some_and(|s| (500..600).contains(&s) || s == 408 || s == 429),
            _ => false,
        };
    }
    match report.origin {
        CloseOrigin::Peer => peer_code_retryable(report.code),
        // Without a failure, only the application ends a connection from our side.
        CloseOrigin::Local => false,
        CloseOrigin::None => true,
    }
}

fn peer_code_retryable(code: u16) -> bool {
    !matches!(
        code,
        codes::PROTOCOL_ERROR
            | codes::UNSUPPORTED_DATA
            | codes::INVALID_PAYLOAD
            | codes::POLICY_VIOLATION
            | codes::MESSAGE_TOO_BIG
            | codes::MANDATORY_EXTENSION
    )
}

/// The status and sentence `on_reconnect` reports for a loss.
fn loss_text(failure: Option<(Error, String)>, report: &CloseReport) -> (Error, String) {
    match failure {
        Some(f) => f,
        None => {
            let reason =
                if report.reason.is_empty() { String::new() } else { format!(" {}", log::quoted(&report.reason)) };
            (Error::Closed, format!("the server closed the connection with {}{reason}", report.code))
        }
    }
}

impl EventLoop {
    /// Called by `finalize` once the socket is gone: schedules the next attempt and returns
    /// `Ok` when the connection is to be dialled again, or hands back the failure
    /// `on_error` reports (reworded when the attempts ran out).
    pub(super) fn try_reconnect(
        &self,
        conn: &Rc<Conn>,
        failure: Option<(Error, String)>,
        report: &CloseReport,
    ) -> Result<(), Option<(Error, String)>> {
        let (attempt, delay, error, message) = {
            let mut rs = conn.reconnect.borrow_mut();
            let Some(rs) = rs.as_mut() else { return Err(failure) };
            let http_status = rs.http_status.take();
            if rs.stopped || self.is_stopping() || !is_retryable(failure.as_ref(), report, http_status) {
                return Err(failure);
            }
            let max = rs.policy.max_attempts;
            if max != 0 && rs.attempt >= max {
                let (error, message) = loss_text(failure, report);
                let plural = if max == 1 { "" } else { "s" };
                return Err(Some((error, format!("gave up reconnecting after {max} attempt{plural}: {message}"))));
            }
            rs.attempt += 1;
            let delay = backoff_delay(&rs.policy, rs.attempt, rand::random());
            let (error, message) = loss_text(failure, report);
            rs.last_failure = Some((error, message.clone()));
            (rs.attempt, delay, error, message)
        };
        crate::log!(
            Level::Info,
            "{}: {error}: {message}; reconnecting in {} ms (attempt {attempt})",
            self.describe(conn),
            delay.as_millis()
        );
        self.reset_for_backoff(conn, delay);
        if let Some(events) = conn.events() {
            let event = ReconnectEvent { attempt, delay, error, message: &message, close: report };
            events.on_reconnect(&conn.handle, &event);
        }
        Ok(())
    }

    /// Forgets everything of the lost socket and waits `delay` in `Phase::Backoff`.
    fn reset_for_backoff(&self, conn: &Rc<Conn>, delay: Duration) {
        let role = conn.role;
        *conn.input.borrow_mut() = Default::default();
        *conn.output.borrow_mut() = OutBuf { writer: Writer::new(role), buf: Vec::new(), sent: 0 };
        *conn.reader.borrow_mut() = conn.cfg().reader(role);
        *conn.closing.borrow_mut() = CloseHandshake::Idle;
        conn.teardown.set(Teardown::Running);
        conn.throttled.set(false);
        conn.want_writable.set(false);
        conn.want_drain.set(false);
        conn.ping_sent.set(None);
        conn.handle.reconnect_reset();
        conn.phase.set(Phase::Backoff);
        // Stale heap entries of the old socket's deadlines are skipped when they pop.
        conn.armed.set(None);
        conn.phase_deadline.set(Some(Instant::now() + delay));
        self.arm(conn);
    }

    /// The backoff is over: dial the URL again.
    pub(super) fn redial(&self, conn: &Rc<Conn>) {
        let Some((url, config)) = conn.reconnect.borrow().as_ref().map(|rs| (rs.url.clone(), rs.config.clone())) else {
            return;
        };
        crate::log!(Level::Debug, "{}: reconnecting", self.describe(conn));
        self.begin_dial(conn, url, config);
    }

    /// A client connection opened: the next loss starts counting from 1 again.
    pub(super) fn reconnect_opened(&self, conn: &Conn) {
        if let Some(rs) = conn.reconnect.borrow_mut().as_mut() {
            rs.attempt = 0;
            rs.last_failure = None;
        }
        conn.handle.set_reconnecting(false);
    }

    /// The application ends the connection (close or terminate): no attempt follows.
    pub(super) fn reconnect_stop(&self, conn: &Conn) {
        if let Some(rs) = conn.reconnect.borrow_mut().as_mut() {
            rs.stopped = true;
        }
    }

    /// `wsffi_conn_stop_reconnect`: the current connection (or attempt) is the last; during
    /// the wait the connection ends now, with the failure that started it.
    pub fn stop_reconnect(&self, handle: &Arc<super::conn::ConnHandle>) {
        let Some(conn) = self.conn_of(handle) else { return };
        let last = {
            let mut rs = conn.reconnect.borrow_mut();
            let Some(rs) = rs.as_mut() else { return };
            rs.stopped = true;
            rs.last_failure.take()
        };
        if conn.phase.get() == Phase::Backoff {
            let (error, message) = last.unwrap_or((Error::Closed, "reconnecting stopped".into()));
            conn.set_failure(error, format!("reconnecting stopped: {message}"));
            conn.terminate();
            self.mark_dirty(&conn);
        }
    }

    /// `wsffi_close` during the wait: ends it.
    pub(super) fn close_during_backoff(&self, conn: &Rc<Conn>) {
        conn.set_failure(Error::Closed, "closed while waiting to reconnect");
        conn.terminate();
        self.mark_dirty(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial: u64, factor: f64, max: u64, attempts: u32) -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(initial),
            factor,
            max_delay: Duration::from_millis(max),
            max_attempts: attempts,
        }
    }

    #[test]
    fn delays_grow_within_the_jitter_band_and_stop_at_the_cap() {
        let p = policy(100, 2.0, 1000, 0);
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            let low = backoff_delay(&p, attempt, 0).as_millis() as u64;
            let high = backoff_delay(&p, attempt, u64::MAX - 1).as_millis() as u64;
            assert_eq!(low, base / 2, "attempt {attempt}");
            assert!(high <= base && high >= base / 2, "attempt {attempt}: {high}");
            for r in [1u64, 7, 12345, 999_999_999] {
                let d = backoff_delay(&p, attempt, r).as_millis() as u64;
                assert!((base / 2..=base).contains(&d), "attempt {attempt}: {d}");
            }
        }
        // A factor of 1 keeps the delay constant; huge attempts do not overflow.
        let flat = policy(50, 1.0, 10_000, 0);
        assert!(backoff_delay(&flat, u32::MAX, 3).as_millis() <= 50);
    }

    #[test]
    fn which_ends_are_retried() {
        let abnormal = CloseReport::abnormal();
        let f = |e: Error| Some((e, String::new()));
        for e in
            [Error::Dns, Error::ConnectionRefused, Error::Timeout, Error::Io, Error::ConnectionReset, Error::Handshake]
        {
            assert!(is_retryable(f(e).as_ref(), &abnormal, None), "{e}");
        }
        for e in [
            Error::Tls,
            Error::InvalidUrl,
            Error::InvalidParameter,
            Error::Protocol,
            Error::MessageTooBig,
            Error::Panic,
        ] {
            assert!(!is_retryable(f(e).as_ref(), &abnormal, None), "{e}");
        }
        let rejected = f(Error::HandshakeRejected);
        assert!(is_retryable(rejected.as_ref(), &abnormal, Some(503)));
        assert!(is_retryable(rejected.as_ref(), &abnormal, Some(429)));
        assert!(!is_retryable(rejected.as_ref(), &abnormal, Some(404)));
        assert!(!is_retryable(rejected.as_ref(), &abnormal, Some(401)));
        assert!(!is_retryable(rejected.as_ref(), &abnormal, None), "proxy refusals and redirect errors");
        let peer = |code: u16| CloseReport { code, origin: CloseOrigin::Peer, ..CloseReport::abnormal() };
        for code in [1000, 1001, 1005, 1011, 1012, 1013, 1014, 4000] {
            assert!(is_retryable(None, &peer(code), None), "{code}");
        }
        for code in [1002, 1003, 1007, 1008, 1009, 1010] {
            assert!(!is_retryable(None, &peer(code), None), "{code}");
        }
        let local = CloseReport { code: 1000, origin: CloseOrigin::Local, ..CloseReport::abnormal() };
        assert!(!is_retryable(None, &local, None));
        assert!(is_retryable(None, &abnormal, None));
    }
}
