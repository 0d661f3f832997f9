//! Counters of connections, servers and the reactor, readable from any thread while the
//! reactor runs.
//!
//! Only the reactor thread writes them, so a counter is a relaxed atomic that the writer bumps
//! with a plain load and store (no locked instruction on the hot path); readers on other
//! threads see each counter's latest value with a relaxed load. A snapshot of several counters
//! is not taken at one instant: two counters read together may differ by the events of one
//! wake-up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub mod prometheus;

/// A counter (or gauge) written by the reactor thread alone.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Called on the reactor thread only: a load and a store, not a locked add.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n` (gauges). Reactor thread only.
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }

    /// The current value, from any thread.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Messages and bytes in both directions.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Whole messages received (a fragmented message counts once, when complete).
    pub messages_in: Counter,
    /// Whole messages queued for sending (a fragmented message counts at its final fragment),
    /// counted when the wake-up that queued them flushes.
    pub messages_out: Counter,
    /// Bytes read from the connection's stream: the HTTP handshake and every frame, after TLS
    /// decryption.
    pub bytes_in: Counter,
    /// Bytes written to the connection's stream (before TLS encryption).
    pub bytes_out: Counter,
}

/// A snapshot of [`Traffic`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficCounts {
    /// See [`Traffic::messages_in`].
    pub messages_in: u64,
    /// See [`Traffic::messages_out`].
    pub messages_out: u64,
    /// See [`Traffic::bytes_in`].
    pub bytes_in: u64,
    /// See [`Traffic::bytes_out`].
    pub bytes_out: u64,
}

impl Traffic {
    /// The current values.
    pub fn snapshot(&self) -> TrafficCounts {
        TrafficCounts {
            messages_in: self.messages_in.get(),
            messages_out: self.messages_out.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
        }
    }
}

/// The close codes counted one by one; every other code counts as "other".
pub const CLOSE_CODES: [u16; 11] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011];
/// Slots of a close code table: [`CLOSE_CODES`] then "other".
pub const CLOSE_SLOTS: usize = CLOSE_CODES.len() + 1;

/// Close codes by [`CLOSE_CODES`], then "other".
#[derive(Debug, Default)]
pub struct CloseCodes([Counter; CLOSE_SLOTS]);

/// Where `code` counts in a close code table.
pub fn close_slot(code: u16) -> usize {
    CLOSE_CODES.iter().position(|&c| c == code).unwrap_or(CLOSE_CODES.len())
}

impl CloseCodes {
    /// Counts one close with `code`.
    pub fn count(&self, code: u16) {
        self.0[close_slot(code)].add(1);
    }

    /// The current values, in the order of [`CLOSE_CODES`], "other" last.
    pub fn snapshot(&self) -> [u64; CLOSE_SLOTS] {
        std::array::from_fn(|i| self.0[i].get())
    }
}

/// Why the server side refused an opening handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A request that is not a valid WebSocket upgrade (unparsable HTTP, a missing or bad
    /// header, an unsupported version, a malformed extension offer): 400 or 426.
    BadRequest,
    /// An upgrade for a path no server is attached at: 404 (reactor only).
    NotFound,
    /// The Origin is not in the server's allowed origins: 403.
    Origin,
    /// The server has max_connections open: 503.
    MaxConnections,
    /// `verify_client` rejected the client (its status, a redirect included).
    VerifyClient,
    /// The handshake timed out (reading the request, or waiting for a deferred decision).
    Timeout,
    /// The server closed while a deferred decision was pending: 503.
    ServerClosing,
}

impl Refusal {
    /// Every reason, in table order.
    pub const ALL: [Refusal; 7] = [
        Refusal::BadRequest,
        Refusal::NotFound,
        Refusal::Origin,
        Refusal::MaxConnections,
        Refusal::VerifyClient,
        Refusal::Timeout,
        Refusal::ServerClosing,
    ];

    /// The label used in the Prometheus text.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::NotFound => "not_found",
            Refusal::Origin => "origin",
            Refusal::MaxConnections => "max_connections",
            Refusal::VerifyClient => "verify_client",
            Refusal::Timeout => "timeout",
            Refusal::ServerClosing => "server_closing",
        }
    }
}

/// Refused handshakes by [`Refusal`].
#[derive(Debug, Default)]
pub struct Refusals([Counter; Refusal::ALL.len()]);

impl Refusals {
    /// Counts one refusal.
    pub fn count(&self, why: Refusal) {
        self.0[why as usize].add(1);
    }

    /// The current values, in the order of [`Refusal::ALL`].
    pub fn snapshot(&self) -> RefusalCounts {
        RefusalCounts(std::array::from_fn(|i| self.0[i].get()))
    }
}

/// A snapshot of [`Refusals`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefusalCounts(pub [u64; Refusal::ALL.len()]);

impl RefusalCounts {
    /// Refusals for `why`.
    pub fn get(&self, why: Refusal) -> u64 {
        self.0[why as usize]
    }
}

/// No round trip measured yet.
const NO_RTT: u64 = u64::MAX;

/// One connection's counters (in its `ConnHandle`, so they outlive the connection).
#[derive(Debug)]
pub struct ConnStats {
    /// Messages and bytes.
    pub traffic: Traffic,
    last_rtt_ns: AtomicU64,
}

impl Default for ConnStats {
    fn default() -> Self {
        ConnStats { traffic: Traffic::default(), last_rtt_ns: AtomicU64::new(NO_RTT) }
    }
}

impl ConnStats {
    /// Records the round trip of a ping answered by its pong. Reactor thread only.
    pub fn set_rtt(&self, rtt: Duration) {
        let ns = u64::try_from(rtt.as_nanos()).unwrap_or(NO_RTT - 1).min(NO_RTT - 1);
        self.last_rtt_ns.store(ns, Ordering::Relaxed);
    }

    /// The last measured ping round trip.
    pub fn last_rtt(&self) -> Option<Duration> {
        match self.last_rtt_ns.load(Ordering::Relaxed) {
            NO_RTT => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }
}

/// A snapshot of one connection's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Messages and bytes.
    pub traffic: TrafficCounts,
    /// Bytes accepted by sends and not yet written (the buffered amount).
    pub buffered: u64,
    /// Time from the last ping (automatic or the application's) to the pong with its
    /// payload; `None` until one was answered.
    pub last_ping_rtt: Option<Duration>,
    /// Messages dropped for it above its high-water mark (the `Drop` policy, and broadcasts
    /// or publishes that skipped it).
    pub dropped: u64,
}

/// A server's counters (in its `ServerHandle`).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Messages and bytes of its connections, from the 101 answer on.
    pub traffic: Traffic,
    /// Handshakes answered with 101.
    pub accepted: Counter,
    /// Handshakes refused, by reason (not `NotFound`: those reach no server).
    pub refused: Refusals,
    /// Codes of the close frames its connections sent.
    pub closes_sent: CloseCodes,
    /// Codes of the close frames its connections received; 1006 for a connection that ended
    /// without the peer's close frame.
    pub closes_received: CloseCodes,
}

/// A snapshot of a server's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Open connections.
    pub connections_open: u64,
    /// See [`ServerStats::accepted`].
    pub accepted: u64,
    /// See [`ServerStats::refused`].
    pub refused: RefusalCounts,
    /// Messages and bytes.
    pub traffic: TrafficCounts,
    /// See [`ServerStats::closes_sent`], in the order of [`CLOSE_CODES`], "other" last.
    pub closes_sent: [u64; CLOSE_SLOTS],
    /// See [`ServerStats::closes_received`].
    pub closes_received: [u64; CLOSE_SLOTS],
    /// Messages dropped for its clients above their high-water mark.
    pub dropped: u64,
}

impl ServerStats {
    /// The current values; `connections_open` comes from the server's client count.
    pub fn snapshot(&self, connections_open: u64) -> ServerCounters {
        ServerCounters {
            connections_open,
            accepted: self.accepted.get(),
            refused: self.refused.snapshot(),
            traffic: self.traffic.snapshot(),
            closes_sent: self.closes_sent.snapshot(),
            closes_received: self.closes_received.snapshot(),
            dropped: 0,
        }
    }
}

/// The reactor's counters (in its `Shared`): every connection, client and server side.
#[derive(Debug, Default)]
pub struct ReactorStats {
    /// Messages and bytes of every connection, handshakes included.
    pub traffic: Traffic,
    /// Open connections (state OPEN or CLOSING), both sides.
    pub open: Counter,
    /// Connections that reached OPEN, both sides.
    pub opened: Counter,
    /// Server handshakes answered with 101.
    pub accepted: Counter,
    /// Server handshakes refused, by reason.
    pub refused: Refusals,
    /// Plain (non-upgrade) HTTP requests answered by listeners.
    pub http_requests: Counter,
    /// Accepted sockets whose TLS handshake failed.
    pub tls_failures_server: Counter,
    /// Client connections whose TLS handshake failed.
    pub tls_failures_client: Counter,
    /// Codes of the close frames sent.
    pub closes_sent: CloseCodes,
    /// Codes of the close frames received; 1006 for a connection that ended without one.
    pub closes_received: CloseCodes,
}

/// A snapshot of the reactor's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorCounters {
    /// See [`ReactorStats::open`].
    pub connections_open: u64,
    /// See [`ReactorStats::opened`].
    pub connections_opened: u64,
    /// See [`ReactorStats::accepted`].
    pub accepted: u64,
    /// See [`ReactorStats::refused`].
    pub refused: RefusalCounts,
    /// See [`ReactorStats::http_requests`].
    pub http_requests: u64,
    /// See [`ReactorStats::tls_failures_server`].
    pub tls_failures_server: u64,
    /// See [`ReactorStats::tls_failures_client`].
    pub tls_failures_client: u64,
    /// Messages and bytes.
    pub traffic: TrafficCounts,
    /// See [`ReactorStats::closes_sent`], in the order of [`CLOSE_CODES`], "other" last.
    pub closes_sent: [u64; CLOSE_SLOTS],
    /// See [`ReactorStats::closes_received`].
    pub closes_received: [u64; CLOSE_SLOTS],
}

impl ReactorStats {
    /// The current values.
    pub fn snapshot(&self) -> ReactorCounters {
        ReactorCounters {
            connections_open: self.open.get(),
            connections_opened: self.opened.get(),
            accepted: self.accepted.get(),
            refused: self.refused.snapshot(),
            http_requests: self.http_requests.get(),
            tls_failures_server: self.tls_failures_server.get(),
            tls_failures_client: self.tls_failures_client.get(),
            traffic: self.traffic.snapshot(),
            closes_sent: self.closes_sent.snapshot(),
            closes_received: self.closes_received.snapshot(),
        }
    }
}

/// A short hash of a ping payload, to know its pong again without keeping the payload
/// (FNV-1a).
pub fn payload_tag(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ data.len() as u32;
    for &b in data {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_subtract() {
        let c = Counter::default();
        c.add(5);
        c.add(2);
        c.sub(3);
        assert_eq!(c.get(), 4);
    }

    #[test]
    fn close_codes_have_their_slots_and_the_rest_is_other() {
        let t = CloseCodes::default();
        for code in [1000, 1000, 1006, 1011, 4000, 3001, 1015] {
            t.count(code);
        }
        let s = t.snapshot();
        assert_eq!(s[close_slot(1000)], 2);
        assert_eq!(s[close_slot(1006)], 1);
        assert_eq!(s[close_slot(1011)], 1);
        assert_eq!(s[CLOSE_SLOTS - 1], 3);
        assert_eq!(s.iter().sum::<u64>(), 7);
    }

    #[test]
    fn refusals_count_by_reason() {
        let r = Refusals::default();
        r.count(Refusal::Origin);
        r.count(Refusal::Origin);
        r.count(Refusal::Timeout);
        let s = r.snapshot();
        assert_eq!((s.get(Refusal::Origin), s.get(Refusal::Timeout), s.get(Refusal::NotFound)), (2, 1, 0));
        for (i, why) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*why as usize, i, "ALL is in declaration order");
        }
    }

    #[test]
    fn rtt_is_none_until_set() {
        let s = ConnStats::default();
        assert_eq!(s.last_rtt(), None);
        s.set_rtt(Duration::from_micros(250));
        assert_eq!(s.last_rtt(), Some(Duration::from_micros(250)));
    }

    #[test]
    fn payload_tags_tell_payloads_apart() {
        assert_eq!(payload_tag(b"abc"), payload_tag(b"abc"));
        assert_ne!(payload_tag(b""), payload_tag(b"\0"));
        assert_ne!(payload_tag(b"ab"), payload_tag(b"ba"));
    }
}
