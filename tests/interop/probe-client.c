/*
 * probe-client: runs one interop scenario of the wsffi client against a peer server.
 *
 *   build/probe-client URL SCENARIO
 *
 * Every event is printed as one line on stdout ("open ...", "message ...", "close ...").
 * The last line is "PASS SCENARIO" (exit 0) or "FAIL SCENARIO: why" (exit 1, also on
 * stderr). Usage errors exit 2. The whole run is bounded by PROBE_TIMEOUT_MS (default
 * 20000). For wss:// peers, PROBE_TLS_CA names the PEM file of the CA to trust.
 *
 * Scenarios (the peer path they need in parentheses; the others work on any echo path):
 *   text binary empty big many   echo round-trips, then we close 1000 "done"
 *   send-fragments               wsffi_send_fragment text/binary, a ping between fragments
 *   ping                         our ping, the peer's pong
 *   close close-4000             we close with 1000 "bye" / 4000 "custom close"
 *   recv-big (/big) recv-fragments (/fragments) server-ping (/ping)
 *   server-close (/close) server-close-empty (/close-empty) server-drop (/drop)
 *   subprotocol (/proto) headers (/headers) reject (/reject)
 *   invalid-utf8 fail-1002 fail-1009   the peer breaks the protocol; we fail the connection
 * The peer servers in tests/interop implement those paths.
 *
 * PROBE_DEFLATE changes the permessage-deflate offer (on by default): "off", or a
 * comma-separated list of server_no_context_takeover, client_no_context_takeover,
 * server_max_window_bits=N, client_max_window_bits=N, threshold=N, level=N, mem_level=N.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsffi.h"

#define BIG_SIZE ((size_t)1 << 20)
#define MANY_COUNT 1000

/* What the peer servers send or expect on their special paths. */
#define TEXT_SAMPLE "hello from wsffi: \xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80"
#define SERVER_PING_PAYLOAD "server-ping"
#define SERVER_PING_ACK "pong received: server-ping"
#define PROBE_PING_PAYLOAD "probe-ping"
#define REJECT_BODY "forbidden by test server"
#define PROTOCOL_CHOSEN "v1.probe"
#define HEADER_TOKEN "token-123"
#define ORIGIN "https://probe.example"
#define HEADERS_REPLY "origin=" ORIGIN ";x-probe-token=" HEADER_TOKEN
#define FRAGMENTED_TEXT "fragmented \xe2\x9c\x93 text"
#define SERVER_CLOSE_CODE 4001
#define SERVER_CLOSE_REASON "server bye"

enum scenario {
    S_TEXT,
    S_BINARY,
    S_EMPTY,
    S_BIG,
    S_MANY,
    S_SEND_FRAGMENTS,
    S_PING,
    S_CLOSE,
    S_CLOSE_4000,
    S_RECV_BIG,
    S_RECV_FRAGMENTS,
    S_SERVER_PING,
    S_SERVER_CLOSE,
    S_SERVER_CLOSE_EMPTY,
    S_SERVER_DROP,
    S_SUBPROTOCOL,
    S_HEADERS,
    S_REJECT,
    S_INVALID_UTF8,
    S_FAIL_1002,
    S_FAIL_1009,
    S_COUNT
};

static const char *const scenario_names[S_COUNT] = {
    [S_TEXT] = "text",
    [S_BINARY] = "binary",
    [S_EMPTY] = "empty",
    [S_BIG] = "big",
    [S_MANY] = "many",
    [S_SEND_FRAGMENTS] = "send-fragments",
    [S_PING] = "ping",
    [S_CLOSE] = "close",
    [S_CLOSE_4000] = "close-4000",
    [S_RECV_BIG] = "recv-big",
    [S_RECV_FRAGMENTS] = "recv-fragments",
    [S_SERVER_PING] = "server-ping",
    [S_SERVER_CLOSE] = "server-close",
    [S_SERVER_CLOSE_EMPTY] = "server-close-empty",
    [S_SERVER_DROP] = "server-drop",
    [S_SUBPROTOCOL] = "subprotocol",
    [S_HEADERS] = "headers",
    [S_REJECT] = "reject",
    [S_INVALID_UTF8] = "invalid-utf8",
    [S_FAIL_1002] = "fail-1002",
    [S_FAIL_1009] = "fail-1009",
};

typedef struct {
    uint32_t kind;
    uint8_t *data;
    size_t len;
} msg;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum scenario sc;
    bool deflate_offered; /* permessage-deflate offered (the default) */
    const char *name;

    bool done;
    bool failed;
    char why[512];

    /* Messages sent on open (echo scenarios) and messages expected, in order. */
    msg *send;
    size_t n_send;
    msg *expect;
    size_t n_expect;
    size_t n_got;

    /* After the last expected message: close with this code (0 = do nothing). */
    uint16_t final_code;
    const char *final_reason;

    /* What on_close must see. */
    uint16_t expect_code;
    int expect_origin;         /* a wsffi_close_origin */
    const char *expect_reason; /* NULL: not checked */
    int expect_clean;          /* -1: not checked */
    bool expect_open;
    bool error_required;
    bool error_allowed;

    /* Event bookkeeping. */
    int seq;
    int seq_open, seq_unexpected, seq_error, seq_close;
    int n_open, n_close, n_error, n_unexpected;
    wsffi_status error_status;
    uint16_t unexpected_status;
    bool unexpected_body_ok;
    bool got_pong, got_ping;
} probe;

static probe P;

static void emit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Printable preview of a payload: at most 60 bytes, non-printables as \xHH. */
static const char *preview(const uint8_t *data, size_t len, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        if (i == 60) {
            o += (size_t)snprintf(buf + o, cap - o, "...");
            break;
        }
        uint8_t c = data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

/* Records the first failure and ends the run. Caller holds the mutex. */
static void fail(const char *fmt, ...) {
    if (!P.failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P.why, sizeof P.why, fmt, ap);
        va_end(ap);
        P.failed = true;
        emit("check failed: %s", P.why);
    }
    P.done = true;
    pthread_cond_broadcast(&P.cv);
}

static void finish(void) {
    P.done = true;
    pthread_cond_broadcast(&P.cv);
}

static msg make_msg(uint32_t kind, const void *data, size_t len) {
    msg m;
    m.kind = kind;
    m.len = len;
    m.data = malloc(len ? len : 1);
    if (m.data == NULL) {
        fprintf(stderr, "probe-client: out of memory\n");
        exit(1);
    }
    if (len) {
        memcpy(m.data, data, len);
    }
    return m;
}

static msg make_pattern(size_t len, unsigned modulus) {
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        fprintf(stderr, "probe-client: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i % modulus);
    }
    msg m = {WSFFI_BINARY, buf, len};
    return m;
}

static void add(msg **list, size_t *n, msg m) {
    msg *grown = realloc(*list, (*n + 1) * sizeof **list);
    if (grown == NULL) {
        fprintf(stderr, "probe-client: out of memory\n");
        exit(1);
    }
    grown[*n] = m;
    *list = grown;
    *n += 1;
}

static void add_echo(msg m) {
    add(&P.send, &P.n_send, m);
    add(&P.expect, &P.n_expect, make_msg(m.kind, m.data, m.len));
}

static const char *kind_name(uint32_t kind) {
    return kind == WSFFI_TEXT ? "text" : kind == WSFFI_BINARY ? "binary" : "?";
}

static void do_close(wsffi_conn *conn, uint16_t code, const char *reason) {
    wsffi_status s = wsffi_close(conn, code, reason, strlen(reason));
    emit("close-sent code=%u reason=%s status=%u", code, reason, s);
    if (s != WSFFI_STATUS_OK) {
        fail("wsffi_close(%u) returned %s", code, wsffi_status_str(s));
    }
}

static void check_send(wsffi_status s, const char *what) {
    if (s != WSFFI_STATUS_OK) {
        fail("%s returned %u (%s)", what, s, wsffi_status_str(s));
    }
}

static void send_fragments(wsffi_conn *conn) {
    /* Text split inside the two-byte "\xce\xba" and the three-byte check mark, with a ping
       between fragments and an empty fragment in the middle. */
    static const char t1[] = "frag \xce";
    static const char t2[] = "\xba\xe2\x9c";
    static const char t3[] = "\x93 end";
    check_send(wsffi_send_fragment(conn, WSFFI_TEXT, (const uint8_t *)t1, strlen(t1), false), "send_fragment(text 1)");
    check_send(wsffi_ping(conn, (const uint8_t *)PROBE_PING_PAYLOAD, strlen(PROBE_PING_PAYLOAD)), "ping between fragments");
    check_send(wsffi_send_fragment(conn, WSFFI_TEXT, (const uint8_t *)t2, strlen(t2), false), "send_fragment(text 2)");
    check_send(wsffi_send_fragment(conn, WSFFI_TEXT, NULL, 0, false), "send_fragment(text empty)");
    /* A whole message in the middle of a fragmented one must be refused. */
    wsffi_status s = wsffi_send_text(conn, "x", 1);
    if (s != WSFFI_STATUS_ERR_INVALID_PARAMETER) {
        fail("wsffi_send_text during a fragmented message returned %u, want %u", s,
             WSFFI_STATUS_ERR_INVALID_PARAMETER);
    }
    check_send(wsffi_send_fragment(conn, WSFFI_TEXT, (const uint8_t *)t3, strlen(t3), true), "send_fragment(text final)");

    static const uint8_t b1[] = {0x00, 0x01, 0x02};
    static const uint8_t b2[] = {0xfd, 0xfe, 0xff};
    check_send(wsffi_send_fragment(conn, WSFFI_BINARY, b1, sizeof b1, false), "send_fragment(binary 1)");
    check_send(wsffi_send_fragment(conn, WSFFI_BINARY, b2, sizeof b2, false), "send_fragment(binary 2)");
    check_send(wsffi_send_fragment(conn, WSFFI_BINARY, b1, sizeof b1, true), "send_fragment(binary final)");
    emit("fragments-sent");
}

static void on_open(void *user, wsffi_conn *conn) {
    (void)user;
    pthread_mutex_lock(&P.mu);
    P.n_open++;
    P.seq_open = ++P.seq;
    const char *proto = wsffi_protocol(conn);
    const char *ext = wsffi_extensions(conn);
    emit("open protocol=%s extensions=%s", proto, ext);
    if (!P.expect_open) {
        fail("connection opened, but the scenario expects a refusal");
        goto out;
    }
    if (strcmp(ext, "") != 0 && (!P.deflate_offered || strncmp(ext, "permessage-deflate", 18) != 0)) {
        fail("negotiated extensions \"%s\", offered %s", ext, P.deflate_offered ? "only permessage-deflate" : "none");
    }
    if (P.sc == S_SUBPROTOCOL) {
        if (strcmp(proto, PROTOCOL_CHOSEN) != 0) {
            fail("negotiated protocol \"%s\", want \"%s\"", proto, PROTOCOL_CHOSEN);
        } else {
            emit("check protocol ok");
        }
    } else if (strcmp(proto, "") != 0) {
        fail("negotiated protocol \"%s\", none was offered", proto);
    }
    for (size_t i = 0; i < P.n_send && !P.failed; i++) {
        check_send(wsffi_send(conn, P.send[i].kind, P.send[i].data, P.send[i].len), "wsffi_send");
    }
    if (P.sc == S_SEND_FRAGMENTS) {
        send_fragments(conn);
    }
    if (P.sc == S_PING) {
        /* A control payload over 125 bytes is refused and nothing goes out. */
        static const uint8_t big_ping[126];
        wsffi_status s = wsffi_ping(conn, big_ping, sizeof big_ping);
        if (s != WSFFI_STATUS_ERR_TOO_BIG) {
            fail("wsffi_ping with 126 bytes returned %u, want %u", s, WSFFI_STATUS_ERR_TOO_BIG);
        }
        check_send(wsffi_ping(conn, (const uint8_t *)PROBE_PING_PAYLOAD, strlen(PROBE_PING_PAYLOAD)), "wsffi_ping");
    }
    if (P.sc == S_TEXT) {
        /* Text that is not UTF-8 is refused and nothing goes out: the peer sees only the
           valid message. */
        wsffi_status s = wsffi_send_text(conn, "bad \xff", 5);
        if (s != WSFFI_STATUS_ERR_INVALID_UTF8) {
            fail("wsffi_send_text with invalid UTF-8 returned %u, want %u", s, WSFFI_STATUS_ERR_INVALID_UTF8);
        }
    }
    if (!P.failed && P.n_expect == 0 && P.final_code != 0 && P.sc != S_PING) {
        do_close(conn, P.final_code, P.final_reason);
    }
out:
    pthread_mutex_unlock(&P.mu);
}

static void maybe_final_close(wsffi_conn *conn) {
    bool ready = P.n_got == P.n_expect;
    if (P.sc == S_PING || P.sc == S_SEND_FRAGMENTS) {
        ready = ready && P.got_pong;
    }
    if (P.sc == S_SERVER_PING) {
        ready = ready && P.got_ping;
    }
    if (ready && P.final_code != 0) {
        emit("check all messages ok count=%zu", P.n_got);
        do_close(conn, P.final_code, P.final_reason);
    }
}

static void on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)user;
    char pv[400];
    pthread_mutex_lock(&P.mu);
    ++P.seq;
    if (P.n_close) {
        fail("message after close");
        goto out;
    }
    if (P.n_open == 0) {
        fail("message before open");
        goto out;
    }
    if (P.n_expect <= MANY_COUNT / 10 || P.n_got < 3 || P.n_got + 1 == P.n_expect) {
        emit("message %s len=%zu data=%s", kind_name(kind), len, preview(data, len, pv, sizeof pv));
    }
    if (P.n_got >= P.n_expect) {
        fail("unexpected extra message #%zu (%s, %zu bytes)", P.n_got + 1, kind_name(kind), len);
        goto out;
    }
    const msg *want = &P.expect[P.n_got];
    if (kind != want->kind) {
        fail("message #%zu: type %s, want %s", P.n_got + 1, kind_name(kind), kind_name(want->kind));
        goto out;
    }
    if (len != want->len) {
        fail("message #%zu: %zu bytes, want %zu", P.n_got + 1, len, want->len);
        goto out;
    }
    if (len && memcmp(data, want->data, len) != 0) {
        size_t at = 0;
        while (data[at] == want->data[at]) {
            at++;
        }
        fail("message #%zu: content differs at byte %zu", P.n_got + 1, at);
        goto out;
    }
    P.n_got++;
    maybe_final_close(conn);
out:
    pthread_mutex_unlock(&P.mu);
}

static void on_ping(void *user, wsffi_conn *conn, const uint8_t *data, size_t len) {
    (void)user;
    char pv[400];
    pthread_mutex_lock(&P.mu);
    ++P.seq;
    emit("ping len=%zu data=%s", len, preview(data, len, pv, sizeof pv));
    if (P.sc == S_SERVER_PING) {
        if (len != strlen(SERVER_PING_PAYLOAD) || memcmp(data, SERVER_PING_PAYLOAD, len) != 0) {
            fail("ping payload differs from \"%s\"", SERVER_PING_PAYLOAD);
        } else {
            P.got_ping = true;
            maybe_final_close(conn);
        }
    }
    pthread_mutex_unlock(&P.mu);
}

static void on_pong(void *user, wsffi_conn *conn, const uint8_t *data, size_t len) {
    (void)user;
    char pv[400];
    pthread_mutex_lock(&P.mu);
    ++P.seq;
    emit("pong len=%zu data=%s", len, preview(data, len, pv, sizeof pv));
    if (len != strlen(PROBE_PING_PAYLOAD) || memcmp(data, PROBE_PING_PAYLOAD, len) != 0) {
        fail("pong payload differs from the ping's \"%s\"", PROBE_PING_PAYLOAD);
    } else {
        P.got_pong = true;
        maybe_final_close(conn);
    }
    pthread_mutex_unlock(&P.mu);
}

static void on_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
    (void)user;
    (void)conn;
    pthread_mutex_lock(&P.mu);
    P.n_error++;
    P.seq_error = ++P.seq;
    P.error_status = status;
    emit("error status=%u (%s) message=%s", status, wsffi_status_str(status), message ? message : "(null)");
    if (!P.error_required && !P.error_allowed) {
        fail("unexpected error %u (%s): %s", status, wsffi_status_str(status), message ? message : "");
    }
    pthread_mutex_unlock(&P.mu);
}

static void on_unexpected_response(void *user, wsffi_conn *conn, const wsffi_response *resp) {
    (void)user;
    (void)conn;
    char pv[400];
    pthread_mutex_lock(&P.mu);
    P.n_unexpected++;
    P.seq_unexpected = ++P.seq;
    size_t blen = 0;
    const uint8_t *body = wsffi_response_body(resp, &blen);
    P.unexpected_status = wsffi_response_status(resp);
    P.unexpected_body_ok = blen == strlen(REJECT_BODY) && body != NULL && memcmp(body, REJECT_BODY, blen) == 0;
    const char *ctype = wsffi_response_header(resp, "content-type");
    emit("unexpected_response status=%u reason=%s content-type=%s headers=%zu body=%s", P.unexpected_status,
         wsffi_response_reason(resp), ctype ? ctype : "(none)", wsffi_response_header_count(resp),
         preview(body ? body : (const uint8_t *)"", blen, pv, sizeof pv));
    if (P.sc != S_REJECT) {
        fail("unexpected HTTP response %u", P.unexpected_status);
    }
    pthread_mutex_unlock(&P.mu);
}

static const char *origin_name(wsffi_close_origin o) {
    switch (o) {
    case WSFFI_CLOSE_ORIGIN_NONE:
        return "none";
    case WSFFI_CLOSE_ORIGIN_PEER:
        return "peer";
    case WSFFI_CLOSE_ORIGIN_LOCAL:
        return "local";
    }
    return "?";
}

static void on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    (void)user;
    char pv[400];
    uint16_t code = info->code;
    const char *reason = info->reason;
    size_t reason_len = info->reason_len;
    bool was_clean = info->was_clean;
    pthread_mutex_lock(&P.mu);
    P.n_close++;
    P.seq_close = ++P.seq;
    emit("close code=%u clean=%d reason=%s origin=%s peer=%u local=%u", code, was_clean ? 1 : 0,
         preview((const uint8_t *)(reason ? reason : ""), reason_len, pv, sizeof pv), origin_name(info->origin),
         info->peer_code, info->local_code);
    if (P.n_close > 1) {
        fail("second close callback");
        goto out;
    }
    if (P.failed) {
        goto out;
    }
    if (code != P.expect_code) {
        fail("close code %u, want %u", code, P.expect_code);
        goto out;
    }
    if ((int)info->origin != P.expect_origin) {
        fail("close origin %s, want %s", origin_name(info->origin), origin_name((wsffi_close_origin)P.expect_origin));
        goto out;
    }
    if (reason == NULL || (info->origin == WSFFI_CLOSE_ORIGIN_LOCAL && info->local_code != code) ||
        (info->origin == WSFFI_CLOSE_ORIGIN_PEER && info->peer_code != code)) {
        fail("close info inconsistent: code %u, peer %u, local %u", code, info->peer_code, info->local_code);
        goto out;
    }
    if (P.expect_reason != NULL &&
        (reason_len != strlen(P.expect_reason) || memcmp(reason, P.expect_reason, reason_len) != 0)) {
        fail("close reason \"%s\", want \"%s\"", pv, P.expect_reason);
        goto out;
    }
    if (P.expect_clean >= 0 && was_clean != (P.expect_clean == 1)) {
        fail("was_clean %d, want %d", was_clean ? 1 : 0, P.expect_clean);
        goto out;
    }
    if (P.expect_open && P.n_open != 1) {
        fail("closed without open");
        goto out;
    }
    if (P.n_got != P.n_expect) {
        fail("closed after %zu of %zu expected messages", P.n_got, P.n_expect);
        goto out;
    }
    if (P.error_required && P.n_error == 0) {
        fail("no error callback before close");
        goto out;
    }
    if (P.n_error && P.seq_error > P.seq_close) {
        fail("error callback after close");
        goto out;
    }
    switch (P.sc) {
    case S_PING:
    case S_SEND_FRAGMENTS:
        if (!P.got_pong) {
            fail("no pong for our ping");
            goto out;
        }
        break;
    case S_SERVER_PING:
        if (!P.got_ping) {
            fail("no ping from the server");
            goto out;
        }
        break;
    case S_REJECT:
        if (P.n_unexpected != 1) {
            fail("%d unexpected_response callbacks, want 1", P.n_unexpected);
            goto out;
        }
        if (P.unexpected_status != 403) {
            fail("unexpected_response status %u, want 403", P.unexpected_status);
            goto out;
        }
        if (!P.unexpected_body_ok) {
            fail("unexpected_response body differs from \"%s\"", REJECT_BODY);
            goto out;
        }
        if (P.error_status != WSFFI_STATUS_ERR_HANDSHAKE_REJECTED) {
            fail("error status %u, want %u (handshake rejected)", P.error_status,
                 WSFFI_STATUS_ERR_HANDSHAKE_REJECTED);
            goto out;
        }
        if (!(P.seq_unexpected < P.seq_error && P.seq_error < P.seq_close)) {
            fail("events out of order: want unexpected_response, error, close");
            goto out;
        }
        emit("check rejection ok");
        break;
    default:
        break;
    }
    if (wsffi_ready_state(conn) != WSFFI_CLOSED) {
        fail("ready state %u inside on_close, want CLOSED", wsffi_ready_state(conn));
        goto out;
    }
    finish();
out:
    pthread_mutex_unlock(&P.mu);
}

/* Applies PROBE_DEFLATE (see the top of the file); false on a malformed value. */
static bool apply_deflate_env(wsffi_client_options *opts) {
    const char *env = getenv("PROBE_DEFLATE");
    if (env == NULL || *env == '\0') {
        return true;
    }
    if (strcmp(env, "off") == 0) {
        P.deflate_offered = false;
        return wsffi_client_options_set_per_message_deflate(opts, false) == WSFFI_STATUS_OK;
    }
    wsffi_deflate_params p;
    wsffi_deflate_params_init(&p, sizeof p);
    char *copy = strdup(env);
    bool ok = copy != NULL;
    for (char *save = NULL, *item = ok ? strtok_r(copy, ",", &save) : NULL; ok && item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        long v = eq ? atol(eq + 1) : 0;
        if (eq) {
            *eq = '\0';
        }
        if (strcmp(item, "server_no_context_takeover") == 0) {
            p.server_no_context_takeover = true;
        } else if (strcmp(item, "client_no_context_takeover") == 0) {
            p.client_no_context_takeover = true;
        } else if (strcmp(item, "server_max_window_bits") == 0) {
            p.server_max_window_bits = (uint8_t)v;
        } else if (strcmp(item, "client_max_window_bits") == 0) {
            p.client_max_window_bits = (uint8_t)v;
        } else if (strcmp(item, "threshold") == 0) {
            p.threshold = (size_t)v;
        } else if (strcmp(item, "level") == 0) {
            p.level = (uint32_t)v;
        } else if (strcmp(item, "mem_level") == 0) {
            p.mem_level = (uint8_t)v;
        } else {
            ok = false;
        }
    }
    free(copy);
    return ok && wsffi_client_options_set_deflate_params(opts, &p) == WSFFI_STATUS_OK;
}

static int find_scenario(const char *name) {
    for (int i = 0; i < S_COUNT; i++) {
        if (strcmp(scenario_names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

static void usage(void) {
    fprintf(stderr, "usage: probe-client URL SCENARIO\nscenarios:");
    for (int i = 0; i < S_COUNT; i++) {
        fprintf(stderr, " %s", scenario_names[i]);
    }
    fprintf(stderr, "\n");
}

static void setup(wsffi_client_options *opts) {
    /* Defaults: an echo round-trip ending with our close 1000, echoed by the peer. */
    P.final_code = 1000;
    P.final_reason = "done";
    P.expect_code = 1000;
    P.expect_origin = WSFFI_CLOSE_ORIGIN_LOCAL;
    P.expect_reason = "done";
    P.expect_clean = 1;
    P.expect_open = true;

    switch (P.sc) {
    case S_TEXT:
        add_echo(make_msg(WSFFI_TEXT, TEXT_SAMPLE, strlen(TEXT_SAMPLE)));
        break;
    case S_BINARY: {
        msg m = make_pattern(1024, 256);
        add_echo(m);
        break;
    }
    case S_EMPTY:
        add_echo(make_msg(WSFFI_TEXT, "", 0));
        add_echo(make_msg(WSFFI_BINARY, "", 0));
        add_echo(make_msg(WSFFI_TEXT, "after empty", 11));
        break;
    case S_BIG:
        add_echo(make_pattern(BIG_SIZE, 251));
        break;
    case S_MANY:
        for (int i = 0; i < MANY_COUNT; i++) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "message %04d", i);
            add_echo(make_msg(i % 2 ? WSFFI_BINARY : WSFFI_TEXT, buf, (size_t)n));
        }
        break;
    case S_SEND_FRAGMENTS: {
        static const char text[] = "frag \xce\xba\xe2\x9c\x93 end";
        static const uint8_t bin[] = {0x00, 0x01, 0x02, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02};
        add(&P.expect, &P.n_expect, make_msg(WSFFI_TEXT, text, strlen(text)));
        add(&P.expect, &P.n_expect, make_msg(WSFFI_BINARY, bin, sizeof bin));
        break;
    }
    case S_PING:
        break;
    case S_CLOSE:
        add_echo(make_msg(WSFFI_TEXT, "before close", 12));
        P.final_reason = P.expect_reason = "bye";
        break;
    case S_CLOSE_4000:
        add_echo(make_msg(WSFFI_TEXT, "before close", 12));
        P.final_code = P.expect_code = 4000;
        P.final_reason = P.expect_reason = "custom close";
        break;
    case S_RECV_BIG:
        /* Path /big: the server sends 1 MiB of i % 251 once open. */
        add(&P.expect, &P.n_expect, make_pattern(BIG_SIZE, 251));
        break;
    case S_RECV_FRAGMENTS: {
        /* Path /fragments: the server sends a text and a binary message in fragments. */
        static const uint8_t bin[] = {0x00, 0x01, 0x02, 0x03, 0xff};
        add(&P.expect, &P.n_expect, make_msg(WSFFI_TEXT, FRAGMENTED_TEXT, strlen(FRAGMENTED_TEXT)));
        add(&P.expect, &P.n_expect, make_msg(WSFFI_BINARY, bin, sizeof bin));
        break;
    }
    case S_SERVER_PING:
        /* Path /ping: the server pings, then confirms our pong with a text message. */
        add(&P.expect, &P.n_expect, make_msg(WSFFI_TEXT, SERVER_PING_ACK, strlen(SERVER_PING_ACK)));
        break;
    case S_SERVER_CLOSE:
        /* Path /close: the server closes with 4001 "server bye". */
        P.final_code = 0;
        P.expect_origin = WSFFI_CLOSE_ORIGIN_PEER;
        P.expect_code = SERVER_CLOSE_CODE;
        P.expect_reason = SERVER_CLOSE_REASON;
        break;
    case S_SERVER_CLOSE_EMPTY:
        /* Path /close-empty: the server's close frame has no payload. */
        P.final_code = 0;
        P.expect_origin = WSFFI_CLOSE_ORIGIN_PEER;
        P.expect_code = WSFFI_CLOSE_NO_STATUS;
        P.expect_reason = "";
        break;
    case S_SERVER_DROP:
        /* Path /drop: the server drops TCP without a close frame. */
        P.final_code = 0;
        P.expect_origin = WSFFI_CLOSE_ORIGIN_NONE;
        P.expect_code = WSFFI_CLOSE_ABNORMAL;
        P.expect_reason = NULL;
        P.expect_clean = 0;
        P.error_allowed = true;
        break;
    case S_SUBPROTOCOL:
        /* Path /proto: the server supports v1.probe only and reports its choice. */
        if (wsffi_client_options_add_protocol(opts, "v2.probe") != WSFFI_STATUS_OK ||
            wsffi_client_options_add_protocol(opts, PROTOCOL_CHOSEN) != WSFFI_STATUS_OK) {
            fprintf(stderr, "probe-client: could not set protocol options\n");
            exit(1);
        }
        add(&P.expect, &P.n_expect, make_msg(WSFFI_TEXT, "protocol=" PROTOCOL_CHOSEN, strlen("protocol=" PROTOCOL_CHOSEN)));
        break;
    case S_HEADERS:
        /* Path /headers: the server answers with the Origin and X-Probe-Token it saw. */
        if (wsffi_client_options_add_header(opts, "X-Probe-Token", HEADER_TOKEN) != WSFFI_STATUS_OK ||
            wsffi_client_options_set_origin(opts, ORIGIN) != WSFFI_STATUS_OK) {
            fprintf(stderr, "probe-client: could not set header options\n");
            exit(1);
        }
        add(&P.expect, &P.n_expect, make_msg(WSFFI_TEXT, HEADERS_REPLY, strlen(HEADERS_REPLY)));
        break;
    case S_REJECT:
        /* Path /reject: the server answers the upgrade with 403 and a body. */
        P.final_code = 0;
        P.expect_open = false;
        P.expect_origin = WSFFI_CLOSE_ORIGIN_NONE;
        P.expect_code = WSFFI_CLOSE_ABNORMAL;
        P.expect_reason = NULL;
        P.expect_clean = 0;
        P.error_required = true;
        break;
    case S_INVALID_UTF8:
    case S_FAIL_1002:
    case S_FAIL_1009:
        /* invalid-utf8 (path /invalid-utf8): the server sends a text frame that is not
           UTF-8, and we must fail the connection with 1007. fail-1002 and fail-1009: the
           raw peer server breaks the protocol or announces a message over max_payload.
           The server checks the code we send; on_close reports it as ours (origin local),
           whether or not the peer answered. */
        P.final_code = 0;
        P.expect_origin = WSFFI_CLOSE_ORIGIN_LOCAL;
        P.expect_code = P.sc == S_FAIL_1002   ? WSFFI_CLOSE_PROTOCOL_ERROR
                        : P.sc == S_FAIL_1009 ? WSFFI_CLOSE_MESSAGE_TOO_BIG
                                              : WSFFI_CLOSE_INVALID_PAYLOAD;
        P.expect_reason = NULL;
        P.expect_clean = -1;
        P.error_required = true;
        break;
    case S_COUNT:
        break;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        usage();
        return 2;
    }
    const char *url = argv[1];
    int sc = find_scenario(argv[2]);
    if (sc < 0) {
        fprintf(stderr, "probe-client: unknown scenario \"%s\"\n", argv[2]);
        usage();
        return 2;
    }
    long timeout_ms = 20000;
    const char *t = getenv("PROBE_TIMEOUT_MS");
    if (t != NULL && atol(t) > 0) {
        timeout_ms = atol(t);
    }
    signal(SIGPIPE, SIG_IGN);

    if (wsffi_version_number() != WSFFI_VERSION_NUMBER) {
        fprintf(stderr, "probe-client: header %s, library %s\n", WSFFI_VERSION, wsffi_version());
        return 1;
    }

    pthread_mutex_init(&P.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&P.cv, &ca);
    pthread_condattr_destroy(&ca);
    P.sc = (enum scenario)sc;
    P.deflate_offered = true;
    P.name = scenario_names[sc];

    wsffi_client_options *opts = wsffi_client_options_new();
    if (opts == NULL) {
        fprintf(stderr, "probe-client: wsffi_client_options_new failed\n");
        return 1;
    }
    wsffi_client_options_set_close_timeout_ms(opts, 3000);
    setup(opts);
    const char *tls_ca = getenv("PROBE_TLS_CA");
    if (tls_ca != NULL) {
        wsffi_error *tls_err = NULL;
        if (wsffi_client_options_set_tls_ca_file(opts, tls_ca, &tls_err) != WSFFI_STATUS_OK) {
            printf("FAIL %s: %s\n", P.name, wsffi_error_message(tls_err));
            wsffi_error_free(tls_err);
            wsffi_client_options_free(opts);
            return 1;
        }
    }
    if (!apply_deflate_env(opts)) {
        fprintf(stderr, "probe-client: bad PROBE_DEFLATE \"%s\"\n", getenv("PROBE_DEFLATE"));
        return 2;
    }

    wsffi_reactor *reactor = NULL;
    wsffi_error *err = NULL;
    if (wsffi_reactor_new(NULL, &reactor, &err) != WSFFI_STATUS_OK) {
        printf("FAIL %s: reactor: %s\n", P.name, wsffi_error_message(err));
        wsffi_error_free(err);
        return 1;
    }

    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = on_open;
    cbs.on_message = on_message;
    cbs.on_close = on_close;
    cbs.on_error = on_error;
    cbs.on_ping = on_ping;
    cbs.on_pong = on_pong;
    cbs.on_unexpected_response = on_unexpected_response;

    wsffi_conn *conn = NULL;
    wsffi_status s = wsffi_connect(reactor, url, opts, &cbs, NULL, NULL, &conn, &err);
    wsffi_client_options_free(opts);
    pthread_mutex_lock(&P.mu);
    if (s != WSFFI_STATUS_OK) {
        fail("wsffi_connect(%s): %s", url, err ? wsffi_error_message(err) : wsffi_status_str(s));
        wsffi_error_free(err);
    }

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!P.done) {
        if (pthread_cond_timedwait(&P.cv, &P.mu, &deadline) == ETIMEDOUT) {
            if (!P.done) {
                fail("timed out after %ld ms (open=%d messages=%zu/%zu close=%d)", timeout_ms, P.n_open, P.n_got,
                     P.n_expect, P.n_close);
            }
        }
    }
    pthread_mutex_unlock(&P.mu);

    wsffi_conn_release(conn);
    wsffi_status fs = wsffi_reactor_free(reactor);

    pthread_mutex_lock(&P.mu);
    if (fs != WSFFI_STATUS_OK) {
        fail("wsffi_reactor_free returned %u", fs);
    }
    if (!P.failed && P.n_close != 1) {
        fail("%d close callbacks, want 1", P.n_close);
    }
    bool ok = !P.failed;
    char why[sizeof P.why];
    memcpy(why, P.why, sizeof why);
    pthread_mutex_unlock(&P.mu);

    for (size_t i = 0; i < P.n_send; i++) {
        free(P.send[i].data);
    }
    for (size_t i = 0; i < P.n_expect; i++) {
        free(P.expect[i].data);
    }
    free(P.send);
    free(P.expect);

    if (ok) {
        emit("PASS %s", P.name);
        return 0;
    }
    emit("FAIL %s: %s", P.name, why);
    fprintf(stderr, "probe-client: FAIL %s: %s\n", P.name, why);
    return 1;
}
