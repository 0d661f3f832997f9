//! The reactor's and its servers' counters in the Prometheus text exposition format
//! (version 0.0.4): a HELP and a TYPE line per metric family, then its samples.

use std::fmt::Write;

use super::{ReactorCounters, Refusal, ServerCounters, TrafficCounts, CLOSE_CODES, CLOSE_SLOTS};

/// A server as the exposition names it.
#[derive(Clone, Debug)]
pub struct ServerEntry {
    /// A number unique within the reactor, in attach order (paths may repeat across
    /// listeners).
    pub id: u64,
    /// The path it answers.
    pub path: String,
    /// Its counters.
    pub counters: ServerCounters,
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    /// A sample with `labels` (already `name="value"` pairs, comma separated; "" for none).
    fn sample(&mut self, labels: &str, value: u64) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{} {value}", self.name);
        } else {
            let _ = writeln!(self.out, "{}{{{labels}}} {value}", self.name);
        }
    }
}

fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn server_labels(s: &ServerEntry) -> String {
    format!("server=\"{}\",path=\"{}\"", s.id, escape(&s.path))
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a},{b}")
    }
}

fn code_label(slot: usize) -> String {
    match CLOSE_CODES.get(slot) {
        Some(code) => format!("code=\"{code}\""),
        None => "code=\"other\"".to_string(),
    }
}

/// Picks one figure out of the traffic counts.
type Pick = fn(&TrafficCounts) -> u64;

/// The four traffic families, named `names`, for the labelled `rows`.
fn traffic(out: &mut String, names: [&'static str; 4], what: &str, rows: &[(String, TrafficCounts)]) {
    let parts: [(&str, Pick); 4] = [
        ("Messages received", |t| t.messages_in),
        ("Messages sent", |t| t.messages_out),
        ("Bytes read from the WebSocket stream (handshake and frames, after TLS)", |t| t.bytes_in),
        ("Bytes written to the WebSocket stream (handshake and frames, before TLS)", |t| t.bytes_out),
    ];
    for (name, (help, pick)) in names.into_iter().zip(parts) {
        let mut f = family(out, name, "counter", &format!("{help} {what}."));
        for (labels, t) in rows {
            f.sample(labels, pick(t));
        }
    }
}

fn closes(out: &mut String, name: &'static str, help: &str, rows: &[(String, [u64; CLOSE_SLOTS])]) {
    let mut f = family(out, name, "counter", help);
    for (labels, table) in rows {
        for (slot, value) in table.iter().enumerate() {
            f.sample(&join(labels, &code_label(slot)), *value);
        }
    }
}

fn refusals(
    out: &mut String,
    name: &'static str,
    help: &str,
    rows: &[(String, super::RefusalCounts)],
    all: &[Refusal],
) {
    let mut f = family(out, name, "counter", help);
    for (labels, counts) in rows {
        for why in all {
            f.sample(&join(labels, &format!("reason=\"{}\"", why.label())), counts.get(*why));
        }
    }
}

/// The text for `reactor` and `servers`.
pub fn exposition(reactor: &ReactorCounters, servers: &[ServerEntry]) -> String {
    let mut out = String::with_capacity(4096 + servers.len() * 3072);
    let r = reactor;
    family(&mut out, "wsffi_connections_open", "gauge", "Open WebSocket connections (client and server side).")
        .sample("", r.connections_open);
    family(&mut out, "wsffi_connections_opened_total", "counter", "WebSocket connections that reached OPEN.")
        .sample("", r.connections_opened);
    family(&mut out, "wsffi_handshakes_accepted_total", "counter", "Server handshakes answered with 101.")
        .sample("", r.accepted);
    refusals(
        &mut out,
        "wsffi_handshakes_refused_total",
        "Server handshakes refused, by reason.",
        &[(String::new(), r.refused)],
        &Refusal::ALL,
    );
    family(&mut out, "wsffi_http_requests_total", "counter", "Plain (non-upgrade) HTTP requests answered.")
        .sample("", r.http_requests);
    let mut f = family(&mut out, "wsffi_tls_handshake_failures_total", "counter", "TLS handshakes that failed.");
    f.sample("side=\"server\"", r.tls_failures_server);
    f.sample("side=\"client\"", r.tls_failures_client);
    traffic(
        &mut out,
        [
            "wsffi_messages_received_total",
            "wsffi_messages_sent_total",
            "wsffi_received_bytes_total",
            "wsffi_sent_bytes_total",
        ],
        "by all connections",
        &[(String::new(), r.traffic)],
    );
    closes(
        &mut out,
        "wsffi_close_codes_sent_total",
        "Close frames sent, by code (1005: an empty close frame).",
        &[(String::new(), r.closes_sent)],
    );
    closes(
        &mut out,
        "wsffi_close_codes_received_total",
        "Close frames received, by code (1005: an empty close frame; 1006: the connection ended without one).",
        &[(String::new(), r.closes_received)],
    );
    if servers.is_empty() {
        return out;
    }
    let rows = |pick: fn(&ServerCounters) -> u64| -> Vec<(String, u64)> {
        servers.iter().map(|s| (server_labels(s), pick(&s.counters))).collect()
    };
    let mut f = family(&mut out, "wsffi_server_connections_open", "gauge", "Open connections of the server.");
    for (labels, v) in rows(|c| c.connections_open) {
        f.sample(&labels, v);
    }
    let mut f = family(
        &mut out,
        "wsffi_server_handshakes_accepted_total",
        "counter",
        "Handshakes the server answered with 101.",
    );
    for (labels, v) in rows(|c| c.accepted) {
        f.sample(&labels, v);
    }
    let refused: Vec<_> = servers.iter().map(|s| (server_labels(s), s.counters.refused)).collect();
    let reasons: Vec<Refusal> = Refusal::ALL.into_iter().filter(|r| *r != Refusal::NotFound).collect();
    refusals(
        &mut out,
        "wsffi_server_handshakes_refused_total",
        "Handshakes the server refused, by reason.",
        &refused,
        &reasons,
    );
    let t: Vec<_> = servers.iter().map(|s| (server_labels(s), s.counters.traffic)).collect();
    traffic(
        &mut out,
        [
            "wsffi_server_messages_received_total",
            "wsffi_server_messages_sent_total",
            "wsffi_server_received_bytes_total",
            "wsffi_server_sent_bytes_total",
        ],
        "by the server's connections, from the 101 answer on",
        &t,
    );
    let sent: Vec<_> = servers.iter().map(|s| (server_labels(s), s.counters.closes_sent)).collect();
    closes(
        &mut out,
        "wsffi_server_close_codes_sent_total",
        "Close frames the server's connections sent, by code.",
        &sent,
    );
    let received: Vec<_> = servers.iter().map(|s| (server_labels(s), s.counters.closes_received)).collect();
    closes(
        &mut out,
        "wsffi_server_close_codes_received_total",
        "Close frames the server's connections received, by code (1006: ended without one).",
        &received,
    );
    let mut f = family(
        &mut out,
        "wsffi_server_messages_dropped_total",
        "counter",
        "Messages dropped for the server's clients above their high-water mark.",
    );
    for (labels, v) in rows(|c| c.dropped) {
        f.sample(&labels, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_and_labelled_samples() {
        let mut r = ReactorCounters { connections_open: 2, http_requests: 5, ..Default::default() };
        r.closes_received[super::super::close_slot(1006)] = 3;
        r.refused.0[Refusal::Origin as usize] = 4;
        let mut c = ServerCounters { connections_open: 1, accepted: 9, ..Default::default() };
        c.traffic.bytes_in = 1234;
        let s = ServerEntry { id: 1, path: "/a\"b\\c\nd".into(), counters: c };
        let text = exposition(&r, &[s]);
        assert!(text.contains("# HELP wsffi_connections_open "));
        assert!(text.contains("# TYPE wsffi_server_messages_dropped_total counter\n"));
        assert!(text.contains("# TYPE wsffi_connections_open gauge\nwsffi_connections_open 2\n"));
        assert!(text.contains("wsffi_http_requests_total 5\n"));
        assert!(text.contains("wsffi_close_codes_received_total{code=\"1006\"} 3\n"));
        assert!(text.contains("wsffi_close_codes_received_total{code=\"other\"} 0\n"));
        assert!(text.contains("wsffi_handshakes_refused_total{reason=\"origin\"} 4\n"));
        assert!(text.contains("wsffi_tls_handshake_failures_total{side=\"client\"} 0\n"));
        let labels = r#"server="1",path="/a\"b\\c\nd""#;
        assert!(text.contains(&format!("wsffi_server_received_bytes_total{{{labels}}} 1234\n")), "{text}");
        assert!(text.contains(&format!("wsffi_server_handshakes_accepted_total{{{labels}}} 9\n")));
        assert!(!text.contains(
            "wsffi_server_handshakes_refused_total{server=\"1\",path=\"/a\\\"b\\\\c\\nd\",reason=\"not_found\"}"
        ));
        // Every family is declared once, and every sample line belongs to the family above it.
        let mut declared = std::collections::HashSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_string();
                assert!(declared.insert(current.clone()), "{current} declared twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "{line}");
            }
        }
    }

    #[test]
    fn without_servers_no_server_family_appears() {
        let text = exposition(&ReactorCounters::default(), &[]);
        assert!(!text.contains("wsffi_server_"));
        assert!(text.ends_with('\n'));
    }
}
