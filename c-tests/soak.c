/*
 * soak: many WebSocket connections over loopback for a while, checked end to end.
 *
 *   build/soak [--seconds N] [--threads N] [--conns-per-thread N] [--max-len BYTES]
 *              [--seed N] [--same-reactor] [--rss-limit-mib N] [--progress-seconds N]
 *
 * One process: a server reactor with a listener and an echo server (each message is sent
 * back from the server's on_message callback), a client reactor (or the same one with
 * --same-reactor) and --threads application threads. Each thread keeps --conns-per-thread
 * client connections alive and churns them: connect, send sequence-numbered messages with a
 * checksum (0..--max-len payload bytes, text or binary), then end with wsffi_close or
 * wsffi_terminate, and connect again. Some connections are also fed from inside the client
 * callbacks (on_open, on_message), some only from there.
 *
 * Every message is   "S" id(8 hex) seq(8 hex) len(8 hex) sum(16 hex)   + payload, where
 * sum is a 64-bit FNV-1a style hash of the payload; text payloads are valid UTF-8.
 *
 * Checks (each failure is printed; the exit status is 1 when any failed):
 *   - echoes arrive at the client once each, in order, intact, with their type, and only
 *     for messages wsffi_send accepted; after a clean close that we started, every accepted
 *     message came back; after wsffi_terminate (or an unclean end) a gap-free prefix did;
 *   - the server sees, per connection, a gap-free in-order prefix of what was accepted,
 *     and at least everything that came back;
 *   - per connection, on either side: at most one on_open, exactly one on_close (also when
 *     it never opened), the user data destroy exactly once and after on_close, nothing
 *     after on_close, no message before on_open; callbacks run on the reactor thread;
 *   - no call is refused with ERR_QUEUE_FULL: far fewer commands than the reactor's limit
 *     are ever outstanding here;
 *   - every connect that succeeded ended; wsffi_server_client_count returns to 0; every
 *     reference taken (wsffi_connect, wsffi_conn_retain) was released;
 *   - RSS after the run and a settle period is within --rss-limit-mib (default 64) of the
 *     RSS after warm-up. A leak of one small buffer per connection or per message crosses
 *     that over a full run (tens of thousands of connections, hundreds of thousands of
 *     messages averaging several KiB); allocator noise stays well below it.
 *
 * The last line is a summary; failures go to stderr.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsffi.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* ---- settings ------------------------------------------------------------------------- */

static struct {
    int seconds;
    int threads;
    int conns_per_thread;
    size_t max_len;
    uint64_t seed;
    bool same_reactor;
    long rss_limit_mib;
    int progress_seconds;
} cfg = {20, 4, 64, 65536, 0, false, 64, 10};

#define HDR_LEN 41
#define CLIENT_HIGH_WATER ((size_t)512 << 10)
#define CLIENT_LOW_WATER ((size_t)128 << 10)
#define SERVER_HIGH_WATER ((size_t)1 << 20)
#define SERVER_LOW_WATER ((size_t)256 << 10)
#define MAX_IN_FLIGHT 24 /* accepted, not yet echoed, per connection (thread sends) */
#define END_WAIT_MS 30000

/* ---- failures and counters ----------------------------------------------------------- */

static atomic_long failures;

static void fail(const char *fmt, ...) {
    long n = atomic_fetch_add(&failures, 1);
    if (n >= 100) {
        if (n == 100) {
            fprintf(stderr, "soak: FAILED: (further failures not printed)\n");
        }
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fprintf(stderr, "soak: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}

static struct {
    atomic_long connects, connect_refused, opens, closes, clean_closes, terminated, aborted, unclean, destroys;
    atomic_long client_errors;
    atomic_long attempted, accepted, backpressure, refused_closed, sent_from_callbacks;
    atomic_long echoed, lost, duplicated, out_of_order, corrupt, unaccepted_echo, after_close;
    atomic_long bytes_accepted;
    atomic_long s_connections, s_opens, s_closes, s_destroys, s_received, s_echo_queued, s_echo_closed;
    atomic_long s_pauses;
    atomic_long retains, releases;
    atomic_long drains;
    atomic_long queue_full;
} st;

#define INC(f) atomic_fetch_add(&st.f, 1)
#define ADD(f, n) atomic_fetch_add(&st.f, (long)(n))
#define GET(f) atomic_load(&st.f)

static atomic_bool reactors_freed;

/* ---- time, randomness, RSS ------------------------------------------------------------ */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t rnd(uint64_t *s) {
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

static uint32_t rnd_below(uint64_t *s, uint32_t n) {
    return n ? (uint32_t)(rnd(s) % n) : 0;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return -1;
    }
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* RSS after giving freed heap back to the system, so that only live memory is compared. */
static long settled_rss_kib(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    return rss_kib();
}

/* ---- messages ------------------------------------------------------------------------ */

static uint64_t payload_sum(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ULL;
    }
    for (; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ULL;
    }
    return h ^ (uint64_t)n;
}

static void put_hex(uint8_t *dst, uint64_t v, int digits) {
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        dst[i] = (uint8_t)hex[v & 15];
        v >>= 4;
    }
}

static bool get_hex(const uint8_t *src, int digits, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        uint8_t c = src[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return false;
        }
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return true;
}

typedef struct msg_head {
    uint32_t id, seq, len;
    uint64_t sum;
} msg_head;

static bool parse_head(const uint8_t *data, size_t len, msg_head *h) {
    uint64_t id, seq, plen, sum;
    if (len < HDR_LEN || data[0] != 'S' || !get_hex(data + 1, 8, &id) || !get_hex(data + 9, 8, &seq) ||
        !get_hex(data + 17, 8, &plen) || !get_hex(data + 25, 16, &sum)) {
        return false;
    }
    h->id = (uint32_t)id;
    h->seq = (uint32_t)seq;
    h->len = (uint32_t)plen;
    h->sum = sum;
    return true;
}

/* Random valid UTF-8 of exactly n bytes: mostly ASCII, with 2-, 3- and 4-byte sequences. */
static void fill_text(uint8_t *p, size_t n, uint64_t *rs) {
    size_t i = 0;
    while (i < n) {
        uint64_t r = rnd(rs);
        unsigned cls = (unsigned)(r & 15);
        uint32_t cp = (uint32_t)(r >> 8);
        size_t left = n - i;
        if (cls == 0 && left >= 4) {
            cp = 0x10000 + cp % (0x110000 - 0x10000);
            p[i++] = (uint8_t)(0xf0 | (cp >> 18));
            p[i++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            p[i++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            p[i++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (cls == 1 && left >= 3) {
            cp = 0x800 + cp % (0x10000 - 0x800);
            if (cp >= 0xd800 && cp <= 0xdfff) {
                cp -= 0x800; /* no surrogates */
            }
            p[i++] = (uint8_t)(0xe0 | (cp >> 12));
            p[i++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            p[i++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (cls == 2 && left >= 2) {
            cp = 0x80 + cp % (0x800 - 0x80);
            p[i++] = (uint8_t)(0xc0 | (cp >> 6));
            p[i++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else {
            /* A run of printable ASCII, 8 bytes per random number. */
            size_t run = left < 8 ? left : 8;
            for (size_t k = 0; k < run; k++) {
                p[i++] = (uint8_t)(0x20 + ((r >> (k * 8)) & 0xff) % 95);
            }
        }
    }
}

static void fill_binary(uint8_t *p, size_t n, uint64_t *rs) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t r = rnd(rs);
        memcpy(p + i, &r, 8);
    }
    if (i < n) {
        uint64_t r = rnd(rs);
        memcpy(p + i, &r, n - i);
    }
}

/* Payload length: many small, some medium, some up to max (and the bounds themselves). */
static size_t pick_len(uint64_t *rs, size_t max) {
    uint32_t r = rnd_below(rs, 100);
    size_t n;
    if (r < 3) {
        n = 0;
    } else if (r < 6) {
        n = max;
    } else if (r < 55) {
        n = rnd_below(rs, 257);
    } else if (r < 85) {
        n = rnd_below(rs, 4097);
    } else {
        n = rnd_below(rs, (uint32_t)max + 1);
    }
    return n > max ? max : n;
}

/* Builds a message in buf (HDR_LEN + max_len bytes) with seq 0; returns its length. */
static size_t build_msg(uint8_t *buf, uint32_t id, uint32_t kind, size_t plen, uint64_t *rs, uint64_t *sum_out) {
    uint8_t *p = buf + HDR_LEN;
    if (kind == WSFFI_TEXT) {
        fill_text(p, plen, rs);
    } else {
        fill_binary(p, plen, rs);
    }
    uint64_t sum = payload_sum(p, plen);
    buf[0] = 'S';
    put_hex(buf + 1, id, 8);
    put_hex(buf + 9, 0, 8);
    put_hex(buf + 17, plen, 8);
    put_hex(buf + 25, sum, 16);
    *sum_out = sum;
    return HDR_LEN + plen;
}

/* ---- per-connection records, kept until the end for cross-checks ---------------------- */

enum end_how { END_CLOSE, END_TERMINATE, END_ABORT_CLOSE, END_ABORT_TERMINATE, END_STOP };

typedef struct record {
    uint32_t accepted, echoed, server_received;
    uint8_t client_done, server_seen, server_done, how, was_clean, started_close;
} record;

#define REC_CHUNK 4096
#define REC_CHUNKS 4096
static record *rec_chunks[REC_CHUNKS];
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint next_id = 1;

/* Call with rec_mu held. */
static record *rec_get(uint32_t id) {
    uint32_t c = id / REC_CHUNK;
    if (c >= REC_CHUNKS) {
        return NULL;
    }
    if (!rec_chunks[c]) {
        rec_chunks[c] = calloc(REC_CHUNK, sizeof(record));
        if (!rec_chunks[c]) {
            fprintf(stderr, "soak: out of memory\n");
            exit(1);
        }
    }
    return &rec_chunks[c][id % REC_CHUNK];
}

/* ---- callback thread checks ---------------------------------------------------------- */

static pthread_t client_reactor_thread, server_reactor_thread;
static atomic_bool client_thread_known, server_thread_known;
static pthread_mutex_t thread_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_reactor_thread(bool server_side) {
    if (atomic_load(&reactors_freed)) {
        fail("a callback ran after wsffi_reactor_free returned");
    }
    atomic_bool *known = server_side ? &server_thread_known : &client_thread_known;
    pthread_t *t = server_side ? &server_reactor_thread : &client_reactor_thread;
    if (!atomic_load(known)) {
        pthread_mutex_lock(&thread_mu);
        if (!atomic_load(known)) {
            *t = pthread_self();
            atomic_store(known, true);
        }
        pthread_mutex_unlock(&thread_mu);
    }
    if (!pthread_equal(*t, pthread_self())) {
        fail("%s callback on a thread other than its reactor's", server_side ? "server" : "client");
    }
}

/* ---- client side ---------------------------------------------------------------------- */

enum mode { MODE_THREAD, MODE_MIXED, MODE_CALLBACK };

typedef struct sent_msg {
    uint32_t len;
    uint32_t kind;
    uint64_t sum;
} sent_msg;

typedef struct client {
    pthread_mutex_t mu;
    uint32_t id;
    int mode;
    int how;          /* planned end */
    uint32_t target;  /* messages to send before the end */
    uint64_t rs;      /* randomness for sends from callbacks */
    sent_msg *sent;   /* per accepted seq */
    uint32_t cap;
    uint32_t accepted, echoed;
    int opens, closes, destroys, errors;
    int closes_at_destroy;
    bool ending;      /* close or terminate called (by us) */
    bool ended_before_open;
    bool started_close, terminated;
    bool was_clean;
    uint16_t close_code;
    wsffi_status first_error;
    char error_message[160];
    wsffi_conn *conn; /* our reference from wsffi_connect */
    int64_t created_ms;
} client;

static void release_conn(wsffi_conn *c) {
    wsffi_conn_release(c);
    INC(releases);
}

/* The reactor's command queue holds up to 1,048,576 commands (the default). This program
 * never has more than threads x connections x (MAX_IN_FLIGHT + a close) of them
 * outstanding, so ERR_QUEUE_FULL is always wrong here. */
static void queue_full_failure(uint32_t id, const char *call) {
    INC(queue_full);
    fail("conn %u: %s returned ERR_QUEUE_FULL, but at most %d commands can be queued here (limit 1048576): "
         "the reactor's count of queued commands is wrong",
         id, call, cfg.threads * cfg.conns_per_thread * (MAX_IN_FLIGHT + 2));
}

/* Sends one message with the next seq. Call with c->mu held; buf has the built message. */
static wsffi_status client_send_locked(client *c, wsffi_conn *conn, uint8_t *buf, size_t len, uint32_t kind, uint64_t sum) {
    put_hex(buf + 9, c->accepted, 8);
    INC(attempted);
    wsffi_status s = wsffi_send(conn, kind, buf, len);
    if (s == WSFFI_STATUS_OK) {
        if (c->accepted == c->cap) {
            uint32_t ncap = c->cap ? c->cap * 2 : 16;
            sent_msg *n = realloc(c->sent, ncap * sizeof *n);
            if (!n) {
                fprintf(stderr, "soak: out of memory\n");
                exit(1);
            }
            c->sent = n;
            c->cap = ncap;
        }
        c->sent[c->accepted].len = (uint32_t)(len - HDR_LEN);
        c->sent[c->accepted].kind = kind;
        c->sent[c->accepted].sum = sum;
        c->accepted++;
        INC(accepted);
        ADD(bytes_accepted, len);
    } else if (s == WSFFI_STATUS_ERR_BACKPRESSURE) {
        INC(backpressure);
    } else if (s == WSFFI_STATUS_ERR_CLOSED) {
        INC(refused_closed);
        if (!c->ending && c->closes == 0 && wsffi_ready_state(conn) == WSFFI_OPEN) {
            fail("conn %u: send refused as closed while the connection is open", c->id);
        }
    } else if (s == WSFFI_STATUS_ERR_QUEUE_FULL) {
        queue_full_failure(c->id, "wsffi_send");
    } else {
        fail("conn %u: wsffi_send: %s", c->id, wsffi_status_str(s));
    }
    return s;
}

/* Buffer for sends from client callbacks: they all run on the client reactor thread. */
static uint8_t *cb_buf;

static void callback_send(client *c, wsffi_conn *conn) {
    uint32_t kind = (rnd(&c->rs) & 1) ? WSFFI_TEXT : WSFFI_BINARY;
    size_t plen = pick_len(&c->rs, cfg.max_len);
    if (plen > 8192 && (rnd(&c->rs) & 3)) {
        plen = plen % 8192; /* keep the reactor thread mostly on small messages */
    }
    uint64_t sum;
    size_t len = build_msg(cb_buf, c->id, kind, plen, &c->rs, &sum);
    if (client_send_locked(c, conn, cb_buf, len, kind, sum) == WSFFI_STATUS_OK) {
        INC(sent_from_callbacks);
    }
}

/* Ends a connection the way it planned (from a thread or a callback). c->mu held. */
static void client_end_locked(client *c, wsffi_conn *conn, bool terminate) {
    if (c->ending) {
        return;
    }
    c->ending = true;
    c->ended_before_open = c->opens == 0;
    wsffi_status s;
    if (terminate) {
        c->terminated = true;
        s = wsffi_terminate(conn);
    } else {
        c->started_close = true;
        s = wsffi_close(conn, WSFFI_CLOSE_NORMAL, "bye", 3);
    }
    if (s == WSFFI_STATUS_ERR_QUEUE_FULL) {
        /* Reported; the thread tries again so the run can still end. */
        queue_full_failure(c->id, terminate ? "wsffi_terminate" : "wsffi_close");
        c->ending = c->terminated = c->started_close = false;
        return;
    }
    /* Only we end connections, so CLOSED means it already ended by itself. */
    if (s != WSFFI_STATUS_OK && !(s == WSFFI_STATUS_ERR_CLOSED && (c->closes > 0 || wsffi_ready_state(conn) == WSFFI_CLOSED))) {
        fail("conn %u: wsffi_%s: %s (ready state %u)", c->id, terminate ? "terminate" : "close", wsffi_status_str(s),
             wsffi_ready_state(conn));
    }
}

static void c_on_open(void *user, wsffi_conn *conn) {
    client *c = user;
    on_reactor_thread(false);
    INC(opens);
    pthread_mutex_lock(&c->mu);
    c->opens++;
    if (c->opens != 1) {
        fail("conn %u: on_open ran %d times", c->id, c->opens);
    }
    if (c->closes) {
        fail("conn %u: on_open after on_close", c->id);
        INC(after_close);
    }
    if (c->mode != MODE_THREAD && !c->ending) {
        /* A first burst from the callback. */
        int n = c->mode == MODE_CALLBACK ? 1 + (int)rnd_below(&c->rs, 4) : (int)rnd_below(&c->rs, 3);
        for (int i = 0; i < n && c->accepted < c->target; i++) {
            callback_send(c, conn);
        }
        if (c->mode == MODE_CALLBACK && c->target == 0) {
            client_end_locked(c, conn, c->how == END_TERMINATE);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static void c_on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    client *c = user;
    on_reactor_thread(false);
    pthread_mutex_lock(&c->mu);
    if (c->closes) {
        fail("conn %u: on_message after on_close", c->id);
        INC(after_close);
    }
    if (!c->opens) {
        fail("conn %u: on_message before on_open", c->id);
    }
    msg_head h;
    if (!parse_head(data, len, &h) || h.id != c->id || h.len != len - HDR_LEN) {
        fail("conn %u: echo with a bad header (%zu bytes, \"%.*s\")", c->id, len, (int)(len < HDR_LEN ? len : HDR_LEN),
             (const char *)data);
        INC(corrupt);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (h.seq >= c->accepted) {
        fail("conn %u: echo of seq %u, but only %u messages were accepted", c->id, h.seq, c->accepted);
        INC(unaccepted_echo);
    } else if (h.seq < c->echoed) {
        fail("conn %u: seq %u echoed again (expected %u)", c->id, h.seq, c->echoed);
        INC(duplicated);
    } else {
        if (h.seq > c->echoed) {
            fail("conn %u: echo of seq %u, expected %u (%u missing)", c->id, h.seq, c->echoed, h.seq - c->echoed);
            INC(out_of_order);
            ADD(lost, h.seq - c->echoed);
        }
        const sent_msg *m = &c->sent[h.seq];
        uint64_t sum = payload_sum(data + HDR_LEN, len - HDR_LEN);
        if (m->len != h.len || m->sum != h.sum || sum != h.sum || m->kind != kind) {
            fail("conn %u seq %u: echo differs from what was sent (len %u/%u, kind %u/%u, sum %s)", c->id, h.seq, h.len,
                 m->len, kind, m->kind, sum == m->sum ? "ok" : "wrong");
            INC(corrupt);
        }
        c->echoed = h.seq + 1;
        INC(echoed);
    }
    /* Sends from the callback: always for callback-driven connections, sometimes for mixed
     * ones (only with nothing buffered, so no send of another thread is still queued ahead
     * of this one and seq order equals wire order). */
    if (!c->ending) {
        if (c->mode == MODE_CALLBACK) {
            if (c->accepted < c->target) {
                callback_send(c, conn);
            } else if (c->echoed == c->accepted) {
                client_end_locked(c, conn, c->how == END_TERMINATE);
            }
        } else if (c->mode == MODE_MIXED && c->accepted < c->target && (rnd(&c->rs) & 3) == 0 &&
                   wsffi_buffered_amount(conn) == 0) {
            callback_send(c, conn);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static void c_on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    client *c = user;
    on_reactor_thread(false);
    if (info == NULL || info->reason == NULL) {
        fail("conn %u: on_close without info or reason", c->id);
        return;
    }
    if (wsffi_ready_state(conn) != WSFFI_CLOSED) {
        fail("conn %u: ready state %u in on_close", c->id, wsffi_ready_state(conn));
    }
    pthread_mutex_lock(&c->mu);
    c->closes++;
    if (c->closes != 1) {
        fail("conn %u: on_close ran %d times", c->id, c->closes);
    }
    c->was_clean = info->was_clean;
    c->close_code = info->code;
    pthread_mutex_unlock(&c->mu);
    INC(closes);
}

static void c_on_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
    client *c = user;
    (void)conn;
    on_reactor_thread(false);
    INC(client_errors);
    pthread_mutex_lock(&c->mu);
    if (c->closes) {
        fail("conn %u: on_error after on_close", c->id);
        INC(after_close);
    }
    if (c->errors++ == 0) {
        c->first_error = status;
        snprintf(c->error_message, sizeof c->error_message, "%s", message ? message : "(null)");
    }
    pthread_mutex_unlock(&c->mu);
}

static void c_on_drain(void *user, wsffi_conn *conn) {
    client *c = user;
    (void)conn;
    on_reactor_thread(false);
    INC(drains);
    pthread_mutex_lock(&c->mu);
    if (c->closes) {
        fail("conn %u: on_drain after on_close", c->id);
        INC(after_close);
    }
    pthread_mutex_unlock(&c->mu);
}

static void c_destroy(void *user) {
    client *c = user;
    pthread_mutex_lock(&c->mu);
    c->destroys++;
    if (c->destroys != 1) {
        fail("conn %u: destroy ran %d times", c->id, c->destroys);
    }
    /* Checked in client_finish: a failed wsffi_connect runs destroy without on_close. */
    c->closes_at_destroy = c->closes;
    pthread_mutex_unlock(&c->mu);
    INC(destroys);
}

/* ---- server side ---------------------------------------------------------------------- */

typedef struct pending {
    struct pending *next;
    uint32_t kind;
    size_t len;
    uint8_t data[];
} pending;

typedef struct sconn {
    uint32_t id;
    uint32_t expected;
    int opens, closes, destroys;
    bool paused;
    bool bad;
    pending *head, *tail; /* echoes refused by backpressure, in order */
    wsffi_conn *conn;     /* retained in on_connection */
} sconn;

static wsffi_server *server;
static atomic_long live_sconns;

static void s_pause(sconn *s, wsffi_conn *conn) {
    if (!s->paused) {
        wsffi_status st_ = wsffi_conn_pause(conn);
        if (st_ == WSFFI_STATUS_OK) {
            s->paused = true;
            INC(s_pauses);
        }
    }
}

/* Echo `data`, keeping order behind earlier refused echoes. Reactor thread only. */
static void s_echo(sconn *s, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    if (!s->head) {
        wsffi_status r = wsffi_send(conn, kind, data, len);
        if (r == WSFFI_STATUS_OK) {
            if (wsffi_buffered_amount(conn) > SERVER_HIGH_WATER) {
                s_pause(s, conn);
            }
            return;
        }
        if (r == WSFFI_STATUS_ERR_CLOSED) {
            INC(s_echo_closed);
            return;
        }
        if (r != WSFFI_STATUS_ERR_BACKPRESSURE) {
            fail("server conn %u: echo: %s", s->id, wsffi_status_str(r));
            return;
        }
    }
    pending *p = malloc(sizeof *p + len);
    if (!p) {
        fprintf(stderr, "soak: out of memory\n");
        exit(1);
    }
    p->next = NULL;
    p->kind = kind;
    p->len = len;
    memcpy(p->data, data, len);
    if (s->tail) {
        s->tail->next = p;
    } else {
        s->head = p;
    }
    s->tail = p;
    INC(s_echo_queued);
    s_pause(s, conn);
}

static void s_drop_pending(sconn *s) {
    while (s->head) {
        pending *p = s->head;
        s->head = p->next;
        free(p);
    }
    s->tail = NULL;
}

static void s_on_open(void *user, wsffi_conn *conn) {
    sconn *s = user;
    (void)conn;
    on_reactor_thread(true);
    INC(s_opens);
    if (++s->opens != 1 || s->closes) {
        fail("server conn %u: on_open #%d (closes %d)", s->id, s->opens, s->closes);
    }
}

static void s_on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    sconn *s = user;
    on_reactor_thread(true);
    INC(s_received);
    if (s->closes) {
        fail("server conn %u: on_message after on_close", s->id);
        INC(after_close);
    }
    if (!s->opens) {
        fail("server conn %u: on_message before on_open", s->id);
    }
    msg_head h;
    if (!parse_head(data, len, &h) || h.id != s->id || h.len != len - HDR_LEN) {
        fail("server conn %u: message with a bad header (%zu bytes)", s->id, len);
        s->bad = true;
    } else if (h.seq != s->expected) {
        fail("server conn %u: got seq %u, expected %u", s->id, h.seq, s->expected);
        s->bad = true;
        if (h.seq > s->expected) {
            s->expected = h.seq + 1;
        }
    } else if (payload_sum(data + HDR_LEN, len - HDR_LEN) != h.sum) {
        fail("server conn %u seq %u: payload checksum mismatch", s->id, h.seq);
        s->bad = true;
        s->expected++;
    } else {
        s->expected++;
    }
    s_echo(s, conn, kind, data, len);
}

static void s_on_drain(void *user, wsffi_conn *conn) {
    sconn *s = user;
    on_reactor_thread(true);
    while (s->head) {
        pending *p = s->head;
        wsffi_status r = wsffi_send(conn, p->kind, p->data, p->len);
        if (r == WSFFI_STATUS_ERR_BACKPRESSURE) {
            return; /* another on_drain follows */
        }
        if (r == WSFFI_STATUS_ERR_CLOSED) {
            INC(s_echo_closed);
        } else if (r != WSFFI_STATUS_OK) {
            fail("server conn %u: queued echo: %s", s->id, wsffi_status_str(r));
        }
        s->head = p->next;
        free(p);
    }
    s->tail = NULL;
    if (s->paused && wsffi_buffered_amount(conn) <= SERVER_HIGH_WATER) {
        if (wsffi_conn_resume(conn) == WSFFI_STATUS_OK) {
            s->paused = false;
        }
    }
}

static void s_on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    sconn *s = user;
    (void)conn;
    if (info == NULL) {
        fail("server conn %u: on_close without info", s->id);
    }
    on_reactor_thread(true);
    INC(s_closes);
    if (++s->closes != 1) {
        fail("server conn %u: on_close ran %d times", s->id, s->closes);
    }
    s_drop_pending(s);
    pthread_mutex_lock(&rec_mu);
    record *r = rec_get(s->id);
    if (r) {
        r->server_received = s->expected;
        r->server_done++;
    }
    pthread_mutex_unlock(&rec_mu);
}

static void s_destroy(void *user) {
    sconn *s = user;
    INC(s_destroys);
    if (s->closes != 1) {
        fail("server conn %u: destroy after %d on_close calls", s->id, s->closes);
    }
    release_conn(s->conn);
    s_drop_pending(s);
    free(s);
    atomic_fetch_sub(&live_sconns, 1);
}

static void s_on_connection(void *user, wsffi_server *srv, wsffi_conn *conn, const wsffi_request *req) {
    (void)user;
    on_reactor_thread(true);
    if (srv != server) {
        fail("on_connection: unknown server");
    }
    INC(s_connections);
    const char *q = wsffi_request_query(req, "id");
    long id = q ? strtol(q, NULL, 10) : 0;
    if (id <= 0) {
        fail("on_connection: no id in %s", wsffi_request_url(req));
    }
    sconn *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "soak: out of memory\n");
        exit(1);
    }
    atomic_fetch_add(&live_sconns, 1);
    s->id = (uint32_t)id;
    s->conn = wsffi_conn_retain(conn);
    INC(retains);
    pthread_mutex_lock(&rec_mu);
    record *r = rec_get(s->id);
    if (r) {
        if (r->server_seen) {
            fail("conn %u reached the server twice", s->id);
        }
        r->server_seen = 1;
    }
    pthread_mutex_unlock(&rec_mu);
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = s_on_open;
    cbs.on_message = s_on_message;
    cbs.on_close = s_on_close;
    cbs.on_drain = s_on_drain;
    wsffi_status st_ = wsffi_conn_set_callbacks(conn, &cbs, s, s_destroy);
    if (st_ != WSFFI_STATUS_OK) {
        fail("server conn %u: wsffi_conn_set_callbacks: %s", s->id, wsffi_status_str(st_));
    }
}

static atomic_int server_closed, server_destroyed;

static void srv_on_client_error(void *user, wsffi_server *srv, wsffi_status status, const char *message) {
    (void)user;
    (void)srv;
    on_reactor_thread(true);
    fail("server: handshake failed: %s: %s", wsffi_status_str(status), message ? message : "");
}

static void srv_on_error(void *user, wsffi_server *srv, wsffi_status status, const char *message) {
    (void)user;
    (void)srv;
    on_reactor_thread(true);
    fail("server: %s: %s", wsffi_status_str(status), message ? message : "");
}

static void srv_on_close(void *user, wsffi_server *srv) {
    (void)user;
    (void)srv;
    on_reactor_thread(true);
    atomic_fetch_add(&server_closed, 1);
}

static void srv_destroy(void *user) {
    (void)user;
    atomic_fetch_add(&server_destroyed, 1);
}

/* ---- the application threads ---------------------------------------------------------- */

static wsffi_reactor *client_reactor;
static uint16_t port;
static atomic_bool stopping;

typedef struct worker {
    pthread_t thread;
    int index;
    uint64_t rs;
    client **slots;
    uint8_t *buf;
    long finished;
} worker;

static client *client_start(worker *w) {
    client *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "soak: out of memory\n");
        exit(1);
    }
    pthread_mutex_init(&c->mu, NULL);
    c->id = atomic_fetch_add(&next_id, 1);
    c->rs = rnd(&w->rs) | 1;
    uint32_t r = rnd_below(&w->rs, 100);
    c->mode = r < 55 ? MODE_THREAD : r < 80 ? MODE_MIXED : MODE_CALLBACK;
    r = rnd_below(&w->rs, 100);
    c->how = r < 3 ? END_ABORT_CLOSE : r < 5 ? END_ABORT_TERMINATE : r < 55 ? END_CLOSE : END_TERMINATE;
    r = rnd_below(&w->rs, 100);
    c->target = r < 5 ? 0 : r < 70 ? rnd_below(&w->rs, 20) : r < 95 ? rnd_below(&w->rs, 200) : rnd_below(&w->rs, 1000);
    c->created_ms = now_ms();
    pthread_mutex_lock(&rec_mu);
    record *rec = rec_get(c->id);
    pthread_mutex_unlock(&rec_mu);
    if (!rec) {
        fail("too many connections for the record table");
        free(c);
        return NULL;
    }

    char url[96];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/soak?id=%u", (unsigned)port, c->id);
    wsffi_client_options *opts = wsffi_client_options_new();
    wsffi_client_options_set_per_message_deflate(opts, false);
    wsffi_client_options_set_water_marks(opts, CLIENT_HIGH_WATER, CLIENT_LOW_WATER);
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = c_on_open;
    cbs.on_message = c_on_message;
    cbs.on_close = c_on_close;
    cbs.on_error = c_on_error;
    cbs.on_drain = c_on_drain;
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    /* Callbacks use their conn argument; c->conn is this thread's reference. A failed
     * connect runs destroy on this thread before returning, so no lock is held here. */
    wsffi_status s = wsffi_connect(client_reactor, url, opts, &cbs, c, c_destroy, &conn, &err);
    wsffi_client_options_free(opts);
    if (s != WSFFI_STATUS_OK) {
        INC(connect_refused);
        if (s == WSFFI_STATUS_ERR_QUEUE_FULL) {
            /* The detail text that comes with it may not match; print it anyway. */
            queue_full_failure(c->id, "wsffi_connect");
            fail("wsffi_connect(%s): %s: error detail \"%s\"", url, wsffi_status_str(s), wsffi_error_message(err));
        } else if (!atomic_load(&stopping)) {
            fail("wsffi_connect(%s): %s: %s", url, wsffi_status_str(s), wsffi_error_message(err));
        }
        wsffi_error_free(err);
        /* destroy already ran, on this thread */
        if (c->destroys != 1) {
            fail("conn %u: failed connect ran destroy %d times", c->id, c->destroys);
        }
        atomic_fetch_sub(&st.destroys, c->destroys);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    INC(connects);
    INC(retains);
    pthread_mutex_lock(&c->mu);
    c->conn = conn;
    if (c->how == END_ABORT_CLOSE || c->how == END_ABORT_TERMINATE) {
        client_end_locked(c, conn, c->how == END_ABORT_TERMINATE);
    }
    pthread_mutex_unlock(&c->mu);
    return c;
}

/* Checks a finished client against what it saw; frees it. */
static void client_finish(client *c) {
    int how = c->terminated ? END_TERMINATE : c->started_close ? END_CLOSE : END_STOP;
    bool clean_ours = c->started_close && !c->terminated && c->was_clean;
    if (c->opens > 1 || c->closes != 1 || c->destroys != 1) {
        fail("conn %u: opens %d, closes %d, destroys %d", c->id, c->opens, c->closes, c->destroys);
    }
    if (c->closes_at_destroy != 1) {
        fail("conn %u: destroy ran after %d on_close calls", c->id, c->closes_at_destroy);
    }
    if (c->echoed > c->accepted) {
        fail("conn %u: %u echoed > %u accepted", c->id, c->echoed, c->accepted);
    }
    if (clean_ours && c->echoed != c->accepted) {
        fail("conn %u: closed cleanly by us, but only %u of %u accepted messages came back", c->id, c->echoed,
             c->accepted);
        ADD(lost, c->accepted - c->echoed);
    }
    if (c->errors && !c->terminated && !c->ended_before_open) {
        fail("conn %u: unexpected on_error: %s: %s (mode %d, opened %d, %u/%u echoed, close code %u)", c->id,
             wsffi_status_str(c->first_error), c->error_message, c->mode, c->opens, c->echoed, c->accepted,
             c->close_code);
    }
    if (c->started_close && !c->terminated) {
        if (c->was_clean) {
            INC(clean_closes);
        } else if (c->opens) {
            INC(unclean);
            fail("conn %u: our close did not end cleanly (code %u)", c->id, c->close_code);
        }
    }
    if (c->terminated) {
        INC(terminated);
    }
    if (c->opens == 0) {
        INC(aborted);
    }
    pthread_mutex_lock(&rec_mu);
    record *r = rec_get(c->id);
    r->accepted = c->accepted;
    r->echoed = c->echoed;
    r->client_done++;
    r->how = (uint8_t)how;
    r->was_clean = clean_ours;
    r->started_close = c->started_close;
    pthread_mutex_unlock(&rec_mu);
    release_conn(c->conn);
    free(c->sent);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* One step for one slot: start, feed, end or collect a connection. */
static bool worker_step(worker *w, int i) {
    client *c = w->slots[i];
    bool busy = false;
    if (!c) {
        if (!atomic_load(&stopping)) {
            w->slots[i] = client_start(w);
            return true;
        }
        return false;
    }
    pthread_mutex_lock(&c->mu);
    if (c->destroys) {
        pthread_mutex_unlock(&c->mu);
        client_finish(c);
        w->slots[i] = NULL;
        w->finished++;
        return true;
    }
    if (atomic_load(&stopping)) {
        if (!c->ending) {
            client_end_locked(c, c->conn, false);
        }
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    if (c->opens && !c->closes && !c->ending) {
        if (c->accepted >= c->target) {
            /* Callback-driven connections end themselves once everything came back. */
            if (c->mode != MODE_CALLBACK || now_ms() - c->created_ms > 20000) {
                /* Sometimes wait for the echoes first, sometimes close right behind them. */
                if (c->echoed == c->accepted || (rnd(&w->rs) & 1)) {
                    client_end_locked(c, c->conn, c->how == END_TERMINATE);
                    busy = true;
                }
            }
        } else if (c->mode != MODE_CALLBACK && c->accepted - c->echoed < MAX_IN_FLIGHT) {
            pthread_mutex_unlock(&c->mu);
            /* Build outside the lock; only the seq is written under it. */
            uint32_t kind = (rnd(&w->rs) & 1) ? WSFFI_TEXT : WSFFI_BINARY;
            size_t plen = pick_len(&w->rs, cfg.max_len);
            uint64_t sum;
            size_t len = build_msg(w->buf, c->id, kind, plen, &w->rs, &sum);
            pthread_mutex_lock(&c->mu);
            if (!c->ending && !c->closes) {
                busy = client_send_locked(c, c->conn, w->buf, len, kind, sum) == WSFFI_STATUS_OK;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return busy;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    int n = cfg.conns_per_thread;
    while (!atomic_load(&stopping)) {
        int busy = 0;
        for (int k = 0; k < n && !atomic_load(&stopping); k++) {
            busy += worker_step(w, (int)rnd_below(&w->rs, (uint32_t)n));
        }
        if (!busy) {
            sleep_ms(1); /* everything waits for the reactors */
        }
    }
    /* Close what is left, then wait (bounded) for every connection to finish. */
    int64_t deadline = now_ms() + END_WAIT_MS;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++) {
            if (w->slots[i]) {
                worker_step(w, i);
                left += w->slots[i] != NULL;
            }
        }
        if (!left) {
            break;
        }
        if (now_ms() > deadline) {
            for (int i = 0; i < n; i++) {
                client *c = w->slots[i];
                if (c) {
                    pthread_mutex_lock(&c->mu);
                    fail("conn %u did not finish within %d ms after the end (opens %d, closes %d, destroys %d, state %u)",
                         c->id, END_WAIT_MS, c->opens, c->closes, c->destroys, wsffi_ready_state(c->conn));
                    pthread_mutex_unlock(&c->mu);
                }
            }
            break; /* leaked on purpose: the library still may call into them */
        }
        sleep_ms(2);
    }
    return NULL;
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: soak [--seconds N] [--threads N] [--conns-per-thread N] [--max-len BYTES] [--seed N]\n"
                    "            [--same-reactor] [--rss-limit-mib N] [--progress-seconds N]\n");
    exit(2);
}

static wsffi_reactor *new_reactor(void) {
    wsffi_reactor *r = NULL;
    wsffi_error *err = NULL;
    wsffi_status s = wsffi_reactor_new(NULL, &r, &err);
    if (s != WSFFI_STATUS_OK) {
        fprintf(stderr, "soak: wsffi_reactor_new: %s: %s\n", wsffi_status_str(s), wsffi_error_message(err));
        exit(1);
    }
    return r;
}

static void progress(int64_t t0) {
    printf("soak: %3llds conns %ld (open now %ld) msgs accepted %ld echoed %ld, %.0f MiB, server clients %zu, "
           "RSS %ld MiB, failures %ld\n",
           (long long)((now_ms() - t0) / 1000), GET(connects), GET(connects) - GET(closes), GET(accepted), GET(echoed),
           (double)GET(bytes_accepted) / (1024.0 * 1024.0), wsffi_server_client_count(server), rss_kib() / 1024,
           atomic_load(&failures));
    fflush(stdout);
}

int main(int argc, char **argv) {
    cfg.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--same-reactor") == 0) {
            cfg.same_reactor = true;
            continue;
        }
        if (!v) {
            usage();
        }
        i++;
        if (strcmp(a, "--seconds") == 0) {
            cfg.seconds = atoi(v);
        } else if (strcmp(a, "--threads") == 0) {
            cfg.threads = atoi(v);
        } else if (strcmp(a, "--conns-per-thread") == 0) {
            cfg.conns_per_thread = atoi(v);
        } else if (strcmp(a, "--max-len") == 0) {
            cfg.max_len = (size_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--seed") == 0) {
            cfg.seed = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--rss-limit-mib") == 0) {
            cfg.rss_limit_mib = atol(v);
        } else if (strcmp(a, "--progress-seconds") == 0) {
            cfg.progress_seconds = atoi(v);
        } else {
            usage();
        }
    }
    if (cfg.seconds < 1 || cfg.threads < 1 || cfg.conns_per_thread < 1 || cfg.max_len > 16u << 20) {
        usage();
    }
    if (cfg.seed == 0) {
        cfg.seed = 1;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("soak: %d s, %d threads x %d connections, payloads up to %zu bytes, %s, seed %" PRIu64 "\n", cfg.seconds,
           cfg.threads, cfg.conns_per_thread, cfg.max_len, cfg.same_reactor ? "one reactor" : "two reactors", cfg.seed);
    fflush(stdout);

    /* Server: reactor, listener, echo server at /soak. */
    wsffi_reactor *server_reactor = new_reactor();
    client_reactor = cfg.same_reactor ? server_reactor : new_reactor();
    wsffi_error *err = NULL;
    wsffi_listener *listener = NULL;
    wsffi_status s = wsffi_listen(server_reactor, "127.0.0.1:0", NULL, &listener, &err);
    if (s != WSFFI_STATUS_OK) {
        fprintf(stderr, "soak: wsffi_listen: %s: %s\n", wsffi_status_str(s), wsffi_error_message(err));
        return 1;
    }
    port = wsffi_listener_port(listener);
    wsffi_server_options *sopts = wsffi_server_options_new();
    wsffi_server_options_set_water_marks(sopts, SERVER_HIGH_WATER, SERVER_LOW_WATER);
    wsffi_server_callbacks scbs;
    wsffi_server_callbacks_init(&scbs, sizeof scbs);
    scbs.on_connection = s_on_connection;
    scbs.on_client_error = srv_on_client_error;
    scbs.on_error = srv_on_error;
    scbs.on_close = srv_on_close;
    s = wsffi_server_attach(server_reactor, listener, "/soak", sopts, &scbs, NULL, srv_destroy, &server, &err);
    wsffi_server_options_free(sopts);
    if (s != WSFFI_STATUS_OK) {
        fprintf(stderr, "soak: wsffi_server_attach: %s: %s\n", wsffi_status_str(s), wsffi_error_message(err));
        return 1;
    }

    cb_buf = malloc(HDR_LEN + cfg.max_len);
    if (!cb_buf) {
        return 1;
    }

    /* Application threads. */
    uint64_t rs = cfg.seed;
    worker *workers = calloc((size_t)cfg.threads, sizeof *workers);
    if (!workers) {
        return 1;
    }
    int64_t t0 = now_ms();
    for (int i = 0; i < cfg.threads; i++) {
        worker *w = &workers[i];
        w->index = i;
        w->rs = rnd(&rs) | 1;
        w->slots = calloc((size_t)cfg.conns_per_thread, sizeof *w->slots);
        w->buf = malloc(HDR_LEN + cfg.max_len);
        if (!w->slots || !w->buf || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fprintf(stderr, "soak: cannot start thread %d\n", i);
            return 1;
        }
    }

    /* Warm-up: a sixth of the run, 2..15 s; then the reference RSS. */
    int warm_ms = cfg.seconds * 1000 / 6;
    warm_ms = warm_ms < 2000 ? 2000 : warm_ms > 15000 ? 15000 : warm_ms;
    if (warm_ms > cfg.seconds * 1000) {
        warm_ms = cfg.seconds * 1000;
    }
    int64_t end = t0 + (int64_t)cfg.seconds * 1000;
    int64_t next_progress = t0 + (int64_t)cfg.progress_seconds * 1000;
    long rss_warm = -1, rss_peak = 0;
    while (now_ms() < end) {
        sleep_ms(100);
        int64_t t = now_ms();
        long r = rss_kib();
        rss_peak = r > rss_peak ? r : rss_peak;
        if (rss_warm < 0 && t - t0 >= warm_ms) {
            rss_warm = settled_rss_kib();
            printf("soak: RSS after %d ms warm-up: %ld KiB\n", warm_ms, rss_warm);
        }
        if (cfg.progress_seconds > 0 && t >= next_progress) {
            progress(t0);
            next_progress += (int64_t)cfg.progress_seconds * 1000;
        }
    }
    if (rss_warm < 0) {
        rss_warm = settled_rss_kib();
    }

    /* End: threads close everything they have and wait for it. */
    atomic_store(&stopping, true);
    for (int i = 0; i < cfg.threads; i++) {
        pthread_join(workers[i].thread, NULL);
        free(workers[i].buf);
        free(workers[i].slots);
    }
    int64_t run_ms = now_ms() - t0;

    /* The server lets go of every connection. */
    int64_t deadline = now_ms() + END_WAIT_MS;
    while ((wsffi_server_client_count(server) != 0 || atomic_load(&live_sconns) != 0) && now_ms() < deadline) {
        sleep_ms(10);
    }
    if (wsffi_server_client_count(server) != 0) {
        fail("wsffi_server_client_count is %zu after every client ended", wsffi_server_client_count(server));
    }
    if (atomic_load(&live_sconns) != 0) {
        fail("%ld server connections never got their destroy", atomic_load(&live_sconns));
    }

    /* Settle, then compare RSS with the warm-up value (reactors still running, as then). */
    sleep_ms(2000);
    long rss_end = settled_rss_kib();

    /* Cross-check both sides of every connection. */
    uint32_t ids = atomic_load(&next_id);
    long server_missing = 0;
    pthread_mutex_lock(&rec_mu);
    for (uint32_t id = 1; id < ids; id++) {
        record *r = rec_get(id);
        if (r->client_done > 1 || r->server_done > 1) {
            fail("conn %u: finished %u times on the client, %u on the server", id, r->client_done, r->server_done);
        }
        if (r->server_seen && !r->server_done) {
            fail("conn %u: the server side never closed", id);
        }
        if (!r->client_done) {
            continue; /* reported already (did not finish, or the connect failed) */
        }
        if (!r->server_seen) {
            if (r->accepted) {
                fail("conn %u: %u messages accepted, but the server never saw the connection", id, r->accepted);
            }
            continue;
        }
        if (r->server_received > r->accepted) {
            fail("conn %u: the server got %u messages, the client had %u accepted", id, r->server_received, r->accepted);
        }
        if (r->server_received < r->echoed) {
            fail("conn %u: the server got %u messages, the client %u echoes", id, r->server_received, r->echoed);
        }
        if (r->was_clean && r->server_received != r->accepted) {
            fail("conn %u: closed cleanly, but the server got %u of %u accepted messages", id, r->server_received,
                 r->accepted);
            server_missing += (long)r->accepted - (long)r->server_received;
        }
    }
    pthread_mutex_unlock(&rec_mu);
    if (server_missing > 0) {
        ADD(lost, server_missing);
    }

    /* Lifecycle totals. */
    if (GET(closes) != GET(connects)) {
        fail("%ld connects succeeded, %ld on_close calls", GET(connects), GET(closes));
    }
    if (GET(destroys) != GET(connects)) {
        fail("%ld connects succeeded, %ld destroys", GET(connects), GET(destroys));
    }
    if (GET(opens) > GET(closes)) {
        fail("%ld on_open calls, %ld on_close calls", GET(opens), GET(closes));
    }
    if (GET(s_closes) != GET(s_connections) || GET(s_destroys) != GET(s_connections) || GET(s_opens) > GET(s_connections)) {
        fail("server: %ld connections, %ld opens, %ld closes, %ld destroys", GET(s_connections), GET(s_opens),
             GET(s_closes), GET(s_destroys));
    }
    if (GET(retains) != GET(releases)) {
        fail("references: %ld taken, %ld released", GET(retains), GET(releases));
    }
    if (GET(connects) < 1 || GET(echoed) < 1) {
        fail("nothing happened: %ld connections, %ld echoes", GET(connects), GET(echoed));
    }

    /* Tear down: no callback may run after the reactors are freed. */
    wsffi_listener_close(listener);
    wsffi_server_close(server);
    deadline = now_ms() + END_WAIT_MS;
    while ((atomic_load(&server_closed) == 0 || atomic_load(&server_destroyed) == 0) && now_ms() < deadline) {
        sleep_ms(10);
    }
    if (atomic_load(&server_closed) != 1 || atomic_load(&server_destroyed) != 1) {
        fail("server: on_close ran %d times, destroy %d times", atomic_load(&server_closed),
             atomic_load(&server_destroyed));
    }
    if (!cfg.same_reactor && wsffi_reactor_free(client_reactor) != WSFFI_STATUS_OK) {
        fail("wsffi_reactor_free (client) failed");
    }
    if (wsffi_reactor_free(server_reactor) != WSFFI_STATUS_OK) {
        fail("wsffi_reactor_free (server) failed");
    }
    atomic_store(&reactors_freed, true);

    long growth = rss_end - rss_warm;
    long limit = cfg.rss_limit_mib * 1024;
    if (growth > limit) {
        fail("RSS grew from %ld KiB after warm-up to %ld KiB after the run (+%ld KiB, limit %ld KiB)", rss_warm, rss_end,
             growth, limit);
    }
    if (GET(lost) || GET(duplicated) || GET(out_of_order) || GET(corrupt) || GET(after_close) || GET(unaccepted_echo)) {
        if (!atomic_load(&failures)) {
            fail("message accounting");
        }
    }

    printf("soak: summary: %.1f s, connections %ld (opened %ld, closed cleanly %ld, terminated %ld, never opened %ld), "
           "messages sent %ld accepted %ld (%ld from callbacks, %ld backpressure, %ld after close) echoed %ld, "
           "%.1f MiB accepted, server received %ld, lost %ld, duplicated %ld, out of order %ld, corrupt %ld, "
           "after close %ld, refused as queue full %ld, references %ld/%ld, RSS warm-up %ld KiB end %ld KiB (%+ld KiB, peak %ld KiB), "
           "failures %ld: %s\n",
           (double)run_ms / 1000.0, GET(connects), GET(opens), GET(clean_closes), GET(terminated), GET(aborted),
           GET(attempted), GET(accepted), GET(sent_from_callbacks), GET(backpressure), GET(refused_closed), GET(echoed),
           (double)GET(bytes_accepted) / (1024.0 * 1024.0), GET(s_received), GET(lost), GET(duplicated),
           GET(out_of_order), GET(corrupt), GET(after_close), GET(queue_full), GET(retains), GET(releases), rss_warm, rss_end, growth,
           rss_peak, atomic_load(&failures), atomic_load(&failures) ? "FAILED" : "ok");
    fflush(stdout);
    for (uint32_t c = 0; c < REC_CHUNKS; c++) {
        free(rec_chunks[c]);
    }
    free(workers);
    free(cb_buf);
    return atomic_load(&failures) ? 1 : 0;
}
