/*
 * testutil.h: shared helpers of the wsffi C tests (header only; one test program per file).
 *
 * - CHECK*: record a failure with file:line and go on (safe on any thread, also inside
 *   callbacks); REQUIRE: same, then end the program (main thread only, for preconditions).
 * - WAIT_UNTIL(cond, ms): waits until `cond` holds, evaluated under tu_mutex; callbacks
 *   change shared state inside TU_LOCK()/TU_UNLOCK_SIGNAL(), which wakes the waiters. The
 *   wait also re-checks every few milliseconds, so `cond` may call library getters too.
 * - tu_rec: a recorder for every connection callback, with ordering checks built in.
 * - tu_env: a reactor + a listener on 127.0.0.1:0 + an echo server at a path.
 * - raw sockets: plain TCP clients and listeners to play a misbehaving peer.
 * - tu_main: runs one named case (argv[1]) or all of them; CMake registers each case.
 */
#ifndef WSFFI_TESTUTIL_H
#define WSFFI_TESTUTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "wsffi.h"

/* ---- failures ------------------------------------------------------------------------ */

static atomic_int tu_failures;
static const char *tu_current_case = "";

static inline void tu_vfail(const char *file, int line, const char *fmt, va_list ap) {
    atomic_fetch_add(&tu_failures, 1);
    flockfile(stderr);
    fprintf(stderr, "%s:%d: [%s] FAILED: ", file, line, tu_current_case);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}

static inline void tu_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tu_vfail(file, line, fmt, ap);
    va_end(ap);
}

#define CHECK(cond) ((cond) ? (void)0 : tu_fail(__FILE__, __LINE__, "%s", #cond))

#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        if (!(cond)) {                                                                \
            tu_fail(__FILE__, __LINE__, "required: %s (stopping this case)", #cond);  \
            fflush(stderr);                                                           \
            _Exit(1);                                                                 \
        }                                                                             \
    } while (0)

static inline bool tu_check_int(const char *file, int line, const char *ea, const char *eb, long long a, long long b) {
    if (a == b) {
        return true;
    }
    tu_fail(file, line, "%s == %s (%lld != %lld)", ea, eb, a, b);
    return false;
}
#define CHECK_EQ(a, b) tu_check_int(__FILE__, __LINE__, #a, #b, (long long)(a), (long long)(b))

static inline bool tu_check_status(const char *file, int line, const char *expr, wsffi_status got, wsffi_status want) {
    if (got == want) {
        return true;
    }
    tu_fail(file, line, "%s: got %u (%s), expected %u (%s)", expr, (unsigned)got, wsffi_status_str(got),
            (unsigned)want, wsffi_status_str(want));
    return false;
}
#define CHECK_STATUS(expr, want) tu_check_status(__FILE__, __LINE__, #expr, (expr), (want))
#define CHECK_OK(expr) CHECK_STATUS(expr, WSFFI_STATUS_OK)

static inline bool tu_check_str(const char *file, int line, const char *ea, const char *a, const char *b) {
    if (a != NULL && b != NULL && strcmp(a, b) == 0) {
        return true;
    }
    tu_fail(file, line, "%s: got \"%s\", expected \"%s\"", ea, a ? a : "(null)", b ? b : "(null)");
    return false;
}
#define CHECK_STR(a, b) tu_check_str(__FILE__, __LINE__, #a, (a), (b))

/* A string getter documented as "" for NULL or none: accept "" (and NULL where noted). */
#define CHECK_EMPTY_STR(a) tu_check_str(__FILE__, __LINE__, #a, (a), "")
#define CHECK_NULL_OR_EMPTY(a) CHECK((a) == NULL || (a)[0] == '\0')

static inline bool tu_starts_with(const char *s, const char *prefix) {
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- timing -------------------------------------------------------------------------- */

/* 1 normally; larger under valgrind (WSFFI_TEST_SLOW), for waits and tolerances. */
static int tu_slow = 1;

static inline int64_t tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tu_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Default upper bound of a wait for something that must happen. */
#define TU_WAIT_MS (5000 * tu_slow)

/* ---- synchronisation with the reactor thread ------------------------------------------ */

static pthread_mutex_t tu_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tu_cond;
static pthread_t tu_main_thread;

#define TU_LOCK() pthread_mutex_lock(&tu_mutex)
#define TU_UNLOCK_SIGNAL()                  \
    do {                                    \
        pthread_cond_broadcast(&tu_cond);   \
        pthread_mutex_unlock(&tu_mutex);    \
    } while (0)
#define TU_UNLOCK() pthread_mutex_unlock(&tu_mutex)

static inline struct timespec tu_abs_after(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits (tu_mutex held) for a signal or at most 5 ms; returns false once past `deadline`. */
static inline bool tu_wait_step(int64_t deadline) {
    if (tu_now_ms() >= deadline) {
        return false;
    }
    struct timespec step = tu_abs_after(5);
    pthread_cond_timedwait(&tu_cond, &tu_mutex, &step);
    return true;
}

/* Waits until `cond` (evaluated with tu_mutex held) holds; stores the outcome in `ok`. */
#define WAIT_FOR(ok, cond, ms)                            \
    do {                                                  \
        int64_t tu_deadline_ = tu_now_ms() + (ms);        \
        TU_LOCK();                                        \
        while (!((ok) = (cond))) {                        \
            if (!tu_wait_step(tu_deadline_)) {            \
                (ok) = (cond);                            \
                break;                                    \
            }                                             \
        }                                                 \
        TU_UNLOCK();                                      \
    } while (0)

/* Waits until `cond` holds; a timeout is a failure. */
#define WAIT_UNTIL(cond, ms)                                                                  \
    do {                                                                                      \
        bool tu_ok_;                                                                          \
        WAIT_FOR(tu_ok_, cond, ms);                                                           \
        if (!tu_ok_) {                                                                        \
            tu_fail(__FILE__, __LINE__, "timed out after %d ms waiting for %s", (int)(ms), #cond); \
        }                                                                                     \
    } while (0)

/* Checks that `cond` keeps holding for `ms` (for "nothing more happens"). */
#define STAYS_TRUE(cond, ms)                                                          \
    do {                                                                              \
        int64_t tu_deadline_ = tu_now_ms() + (ms);                                    \
        bool tu_held_ = true;                                                         \
        TU_LOCK();                                                                    \
        for (;;) {                                                                    \
            if (!(cond)) {                                                            \
                tu_held_ = false;                                                     \
                break;                                                                \
            }                                                                         \
            if (!tu_wait_step(tu_deadline_)) {                                        \
                break;                                                                \
            }                                                                         \
        }                                                                             \
        TU_UNLOCK();                                                                  \
        if (!tu_held_) {                                                              \
            tu_fail(__FILE__, __LINE__, "%s stopped holding within %d ms", #cond, (int)(ms)); \
        }                                                                             \
    } while (0)

/* Reads an int (or any scalar) written by callbacks. */
#define LOCKED_INT(expr) tu_locked_int_((TU_LOCK(), (long long)(expr)))
static inline long long tu_locked_int_(long long v) {
    TU_UNLOCK();
    return v;
}

/* ---- reactors ------------------------------------------------------------------------ */

/* Reactors created by tu_reactor_new and not freed yet; once it drops to 0 every callback
 * that still runs is a failure ("no callback after wsffi_reactor_free returns"). */
static atomic_int tu_live_reactors;
static atomic_bool tu_all_freed;

static inline wsffi_reactor *tu_reactor_new_opts(const wsffi_reactor_options *opts) {
    wsffi_reactor *r = NULL;
    wsffi_error *err = NULL;
    wsffi_status s = wsffi_reactor_new(opts, &r, &err);
    if (s != WSFFI_STATUS_OK) {
        tu_fail(__FILE__, __LINE__, "wsffi_reactor_new: %s: %s", wsffi_status_str(s), wsffi_error_message(err));
        wsffi_error_free(err);
    }
    REQUIRE(s == WSFFI_STATUS_OK && r != NULL);
    CHECK(err == NULL);
    atomic_fetch_add(&tu_live_reactors, 1);
    atomic_store(&tu_all_freed, false);
    return r;
}

static inline wsffi_reactor *tu_reactor_new(void) {
    return tu_reactor_new_opts(NULL);
}

static inline void tu_reactor_free(wsffi_reactor *r) {
    CHECK_OK(wsffi_reactor_free(r));
    if (atomic_fetch_sub(&tu_live_reactors, 1) == 1) {
        atomic_store(&tu_all_freed, true);
    }
}

/* Every callback calls this: it must not run after the last reactor is freed, and never
 * on the main test thread. */
#define TU_CALLBACK_GUARD()                                                        \
    do {                                                                           \
        CHECK(!atomic_load(&tu_all_freed));                                        \
        CHECK(!pthread_equal(pthread_self(), tu_main_thread));                     \
    } while (0)

/* ---- a recorder of connection callbacks ---------------------------------------------- */

#define TU_LOG_MAX 256
#define TU_LOG_BYTES 64

typedef struct tu_rec tu_rec;
typedef void (*tu_open_hook)(tu_rec *rec, wsffi_conn *conn);
typedef void (*tu_message_hook)(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len);

struct tu_rec {
    const char *name;
    tu_open_hook open_hook;       /* called by on_open after recording (lock not held) */
    tu_message_hook message_hook; /* called by on_message after recording (lock not held) */
    void *hook_arg;
    bool echo;                 /* send every message back from on_message */
    bool quiet_order;          /* do not check open-before-message (set for special cases) */
    wsffi_conn *conn;          /* the conn seen by the callbacks */
    wsffi_conn *retained;      /* server side: a reference taken in on_connection */
    int opens, messages, closes, errors, pings, pongs, drains, unexpected, destroys;
    int events_after_close;
    uint32_t state_in_open, state_in_close;
    uint16_t close_code;       /* on_close: the code that decided the close */
    bool was_clean;
    char close_reason[128];
    size_t close_reason_len;
    wsffi_close_origin close_origin;
    uint16_t peer_close_code;  /* 0: the peer sent no close frame */
    char peer_close_reason[128];
    bool peer_reason_null;
    uint16_t local_close_code; /* 0: we sent no close frame */
    char local_close_reason[128];
    bool local_reason_null;
    wsffi_status error_status;
    char error_message[256];
    wsffi_status echo_status;  /* first failed echo */
    uint32_t last_kind;
    uint8_t *last_data;        /* malloc'd copy of the last message */
    size_t last_len;
    size_t total_bytes;
    uint32_t log_kind[TU_LOG_MAX];
    size_t log_len[TU_LOG_MAX];
    char log[TU_LOG_MAX][TU_LOG_BYTES + 1]; /* first bytes of the first messages */
    uint8_t ping_data[128];
    size_t ping_len;
    uint8_t pong_data[128];
    size_t pong_len;
    uint16_t resp_status;
    char resp_reason[128];
    char resp_headers[2048];   /* "name: value\n" per header, in order */
    size_t resp_header_count;
    char resp_x_test[128];     /* wsffi_response_header(resp, "x-test") */
    uint8_t *resp_body;
    size_t resp_body_len;
    int errors_at_close;       /* on_error calls seen before on_close */
};

static inline void tu_rec_init(tu_rec *rec, const char *name) {
    memset(rec, 0, sizeof *rec);
    rec->name = name;
}

static inline void tu_rec_see_conn(tu_rec *rec, wsffi_conn *conn) {
    if (rec->conn == NULL) {
        rec->conn = conn;
    } else if (rec->conn != conn) {
        tu_fail(__FILE__, __LINE__, "%s: callback got conn %p, expected %p", rec->name, (void *)conn, (void *)rec->conn);
    }
    if (rec->closes > 0) {
        rec->events_after_close++;
        tu_fail(__FILE__, __LINE__, "%s: callback after on_close", rec->name);
    }
}

static inline void tu_on_open(void *user, wsffi_conn *conn) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    uint32_t state = wsffi_ready_state(conn);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->opens++;
    rec->state_in_open = state;
    if (rec->opens != 1) {
        tu_fail(__FILE__, __LINE__, "%s: on_open ran %d times", rec->name, rec->opens);
    }
    tu_open_hook hook = rec->open_hook;
    TU_UNLOCK_SIGNAL();
    if (hook) {
        hook(rec, conn);
    }
}

static inline void tu_on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK(kind == WSFFI_TEXT || kind == WSFFI_BINARY);
    CHECK(len == 0 || data != NULL);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    if (rec->opens == 0 && !rec->quiet_order) {
        tu_fail(__FILE__, __LINE__, "%s: on_message before on_open", rec->name);
    }
    if (rec->messages < TU_LOG_MAX) {
        size_t n = len < TU_LOG_BYTES ? len : TU_LOG_BYTES;
        memcpy(rec->log[rec->messages], data, n);
        rec->log[rec->messages][n] = '\0';
        rec->log_kind[rec->messages] = kind;
        rec->log_len[rec->messages] = len;
    }
    free(rec->last_data);
    rec->last_data = malloc(len ? len : 1);
    REQUIRE(rec->last_data != NULL);
    if (len) {
        memcpy(rec->last_data, data, len);
    }
    rec->last_len = len;
    rec->last_kind = kind;
    rec->total_bytes += len;
    rec->messages++;
    bool echo = rec->echo;
    tu_message_hook hook = rec->message_hook;
    TU_UNLOCK_SIGNAL();
    if (hook) {
        hook(rec, conn, kind, data, len);
    }
    if (echo) {
        wsffi_status s = wsffi_send(conn, kind, data, len);
        if (s != WSFFI_STATUS_OK) {
            TU_LOCK();
            if (rec->echo_status == WSFFI_STATUS_OK) {
                rec->echo_status = s;
            }
            TU_UNLOCK_SIGNAL();
        }
    }
}

/* Copies a borrowed close reason (NULL allowed) into `dst`, checking its NUL byte. */
static inline void tu_copy_reason(char *dst, size_t cap, const char *reason, size_t len) {
    dst[0] = '\0';
    if (reason == NULL) {
        CHECK_EQ(len, 0);
        return;
    }
    CHECK(reason[len] == '\0');
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(dst, reason, n);
    dst[n] = '\0';
}

static inline void tu_on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    REQUIRE(info != NULL);
    CHECK(info->size >= sizeof *info);
    CHECK(info->reason != NULL);
    /* A side has a reason exactly when it has a code. */
    CHECK((info->peer_reason == NULL) == (info->peer_code == 0));
    CHECK((info->local_reason == NULL) == (info->local_code == 0));
    CHECK(info->origin != WSFFI_CLOSE_ORIGIN_NONE || info->code == WSFFI_CLOSE_ABNORMAL);
    uint32_t state = wsffi_ready_state(conn);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->closes++;
    rec->close_code = info->code;
    rec->was_clean = info->was_clean;
    rec->close_origin = info->origin;
    rec->state_in_close = state;
    tu_copy_reason(rec->close_reason, sizeof rec->close_reason, info->reason, info->reason_len);
    rec->close_reason_len = info->reason_len;
    rec->peer_close_code = info->peer_code;
    rec->peer_reason_null = info->peer_reason == NULL;
    tu_copy_reason(rec->peer_close_reason, sizeof rec->peer_close_reason, info->peer_reason, info->peer_reason_len);
    rec->local_close_code = info->local_code;
    rec->local_reason_null = info->local_reason == NULL;
    tu_copy_reason(rec->local_close_reason, sizeof rec->local_close_reason, info->local_reason, info->local_reason_len);
    rec->errors_at_close = rec->errors;
    TU_UNLOCK_SIGNAL();
}

static inline void tu_on_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK(message != NULL);
    CHECK(status != WSFFI_STATUS_OK);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->errors++;
    rec->error_status = status;
    snprintf(rec->error_message, sizeof rec->error_message, "%s", message ? message : "");
    TU_UNLOCK_SIGNAL();
}

static inline void tu_on_ping(void *user, wsffi_conn *conn, const uint8_t *data, size_t len) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK(len <= 125);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->pings++;
    rec->ping_len = len;
    if (len && len <= 125) {
        memcpy(rec->ping_data, data, len);
    }
    TU_UNLOCK_SIGNAL();
}

static inline void tu_on_pong(void *user, wsffi_conn *conn, const uint8_t *data, size_t len) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK(len <= 125);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->pongs++;
    rec->pong_len = len;
    if (len && len <= 125) {
        memcpy(rec->pong_data, data, len);
    }
    TU_UNLOCK_SIGNAL();
}

static inline void tu_on_drain(void *user, wsffi_conn *conn) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->drains++;
    TU_UNLOCK_SIGNAL();
}

static inline void tu_on_unexpected_response(void *user, wsffi_conn *conn, const wsffi_response *resp) {
    tu_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK(resp != NULL);
    uint16_t status = wsffi_response_status(resp);
    const char *reason = wsffi_response_reason(resp);
    const char *x_test = wsffi_response_header(resp, "x-test");
    size_t count = wsffi_response_header_count(resp);
    size_t body_len = 0;
    const uint8_t *body = wsffi_response_body(resp, &body_len);
    CHECK(body_len == 0 || body != NULL);
    TU_LOCK();
    tu_rec_see_conn(rec, conn);
    rec->unexpected++;
    rec->resp_status = status;
    snprintf(rec->resp_reason, sizeof rec->resp_reason, "%s", reason ? reason : "(null)");
    snprintf(rec->resp_x_test, sizeof rec->resp_x_test, "%s", x_test ? x_test : "");
    rec->resp_header_count = count;
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const char *n = NULL;
        const char *v = NULL;
        CHECK_OK(wsffi_response_header_at(resp, i, &n, &v));
        CHECK(n != NULL && v != NULL);
        if (n && v && used < sizeof rec->resp_headers) {
            int w = snprintf(rec->resp_headers + used, sizeof rec->resp_headers - used, "%s: %s\n", n, v);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    const char *n = NULL;
    const char *v = NULL;
    CHECK_STATUS(wsffi_response_header_at(resp, count, &n, &v), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    free(rec->resp_body);
    rec->resp_body = malloc(body_len + 1);
    REQUIRE(rec->resp_body != NULL);
    if (body_len) {
        memcpy(rec->resp_body, body, body_len);
    }
    rec->resp_body[body_len] = 0;
    rec->resp_body_len = body_len;
    TU_UNLOCK_SIGNAL();
}

static inline void tu_rec_destroy(void *user) {
    tu_rec *rec = user;
    TU_LOCK();
    rec->destroys++;
    if (rec->destroys != 1) {
        tu_fail(__FILE__, __LINE__, "%s: destroy ran %d times", rec->name, rec->destroys);
    }
    TU_UNLOCK_SIGNAL();
}

static inline wsffi_conn_callbacks tu_callbacks(void) {
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = tu_on_open;
    cbs.on_message = tu_on_message;
    cbs.on_close = tu_on_close;
    cbs.on_error = tu_on_error;
    cbs.on_ping = tu_on_ping;
    cbs.on_pong = tu_on_pong;
    cbs.on_drain = tu_on_drain;
    cbs.on_unexpected_response = tu_on_unexpected_response;
    return cbs;
}

/* Frees what a recorder holds and releases its retained conn. */
static inline void tu_rec_free(tu_rec *rec) {
    free(rec->last_data);
    rec->last_data = NULL;
    free(rec->resp_body);
    rec->resp_body = NULL;
    if (rec->retained) {
        wsffi_conn_release(rec->retained);
        rec->retained = NULL;
    }
}

/* A finished connection: exactly one close and one destroy; then frees the recorder. */
#define TU_REC_DONE(rec)                                         \
    do {                                                         \
        WAIT_UNTIL((rec)->closes >= 1 && (rec)->destroys >= 1, TU_WAIT_MS); \
        CHECK_EQ(LOCKED_INT((rec)->closes), 1);                  \
        CHECK_EQ(LOCKED_INT((rec)->destroys), 1);                \
        tu_rec_free(rec);                                        \
    } while (0)

/* ---- URLs and connecting ------------------------------------------------------------- */

typedef struct tu_url {
    char s[256];
} tu_url;

static inline tu_url tu_make_url(uint16_t port, const char *path) {
    tu_url u;
    snprintf(u.s, sizeof u.s, "ws://127.0.0.1:%u%s", (unsigned)port, path);
    return u;
}

/* Connects with the recorder's callbacks; a synchronous failure ends the case. */
static inline wsffi_conn *tu_connect(wsffi_reactor *r, const char *url, const wsffi_client_options *opts, tu_rec *rec) {
    wsffi_conn_callbacks cbs = tu_callbacks();
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    wsffi_status s = wsffi_connect(r, url, opts, &cbs, rec, tu_rec_destroy, &conn, &err);
    if (s != WSFFI_STATUS_OK) {
        tu_fail(__FILE__, __LINE__, "wsffi_connect(%s): %s: %s", url, wsffi_status_str(s), wsffi_error_message(err));
        wsffi_error_free(err);
    }
    REQUIRE(s == WSFFI_STATUS_OK && conn != NULL);
    CHECK(err == NULL);
    return conn;
}

/* Connects and waits for on_open. */
static inline wsffi_conn *tu_open(wsffi_reactor *r, const char *url, const wsffi_client_options *opts, tu_rec *rec) {
    wsffi_conn *conn = tu_connect(r, url, opts, rec);
    bool ok;
    WAIT_FOR(ok, rec->opens == 1 || rec->closes > 0, TU_WAIT_MS);
    if (!ok || LOCKED_INT(rec->opens) != 1) {
        tu_fail(__FILE__, __LINE__, "%s did not open (error %s: %s)", url, wsffi_status_str(rec->error_status), rec->error_message);
    }
    REQUIRE(ok && rec->opens == 1);
    return conn;
}

/* ---- a server fixture ---------------------------------------------------------------- */

#define TU_MAX_CONNS 16

typedef struct tu_server_fx {
    const char *name;
    bool echo;                     /* server conns echo */
    tu_open_hook open_hook;        /* copied into each connection's recorder */
    tu_message_hook message_hook;
    void *hook_arg;
    tu_rec conns[TU_MAX_CONNS];    /* one recorder per accepted connection */
    int connections;               /* on_connection calls */
    int client_errors;
    wsffi_status client_error_status;
    char client_error_message[256];
    int errors;
    int closes;
    int destroys;
    int clients_open_at_close;     /* connections whose on_close had not run yet */
    char last_url[256];
} tu_server_fx;

static inline void tu_fx_init(tu_server_fx *fx, const char *name) {
    memset(fx, 0, sizeof *fx);
    fx->name = name;
    fx->echo = true;
}

static inline void tu_fx_on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    tu_server_fx *fx = user;
    TU_CALLBACK_GUARD();
    CHECK(server != NULL && conn != NULL && req != NULL);
    const char *url = wsffi_request_url(req);
    TU_LOCK();
    if (fx->closes > 0) {
        tu_fail(__FILE__, __LINE__, "%s: on_connection after the server's on_close", fx->name);
    }
    REQUIRE(fx->connections < TU_MAX_CONNS);
    tu_rec *rec = &fx->conns[fx->connections++];
    tu_rec_init(rec, "server conn");
    rec->echo = fx->echo;
    rec->open_hook = fx->open_hook;
    rec->message_hook = fx->message_hook;
    rec->hook_arg = fx->hook_arg;
    rec->conn = conn;
    rec->retained = wsffi_conn_retain(conn);
    CHECK(rec->retained == conn);
    snprintf(fx->last_url, sizeof fx->last_url, "%s", url ? url : "(null)");
    TU_UNLOCK_SIGNAL();
    wsffi_conn_callbacks cbs = tu_callbacks();
    CHECK_OK(wsffi_conn_set_callbacks(conn, &cbs, rec, tu_rec_destroy));
    CHECK(wsffi_conn_user_data(conn) == rec);
}

static inline void tu_fx_on_client_error(void *user, wsffi_server *server, wsffi_status status, const char *message) {
    tu_server_fx *fx = user;
    TU_CALLBACK_GUARD();
    CHECK(server != NULL);
    CHECK(message != NULL);
    TU_LOCK();
    fx->client_errors++;
    fx->client_error_status = status;
    snprintf(fx->client_error_message, sizeof fx->client_error_message, "%s", message ? message : "");
    TU_UNLOCK_SIGNAL();
}

static inline void tu_fx_on_error(void *user, wsffi_server *server, wsffi_status status, const char *message) {
    tu_server_fx *fx = user;
    TU_CALLBACK_GUARD();
    (void)server;
    TU_LOCK();
    fx->errors++;
    tu_fail(__FILE__, __LINE__, "%s: server on_error %s: %s", fx->name, wsffi_status_str(status), message ? message : "");
    TU_UNLOCK_SIGNAL();
}

static inline void tu_fx_on_close(void *user, wsffi_server *server) {
    tu_server_fx *fx = user;
    TU_CALLBACK_GUARD();
    CHECK(server != NULL);
    TU_LOCK();
    fx->closes++;
    /* "It has no more clients": checked by the server_close cases, not by every teardown. */
    fx->clients_open_at_close = 0;
    for (int i = 0; i < fx->connections; i++) {
        if (fx->conns[i].closes == 0 && fx->conns[i].opens > 0) {
            fx->clients_open_at_close++;
        }
    }
    TU_UNLOCK_SIGNAL();
}

static inline void tu_fx_destroy(void *user) {
    tu_server_fx *fx = user;
    TU_LOCK();
    fx->destroys++;
    if (fx->destroys != 1) {
        tu_fail(__FILE__, __LINE__, "%s: server destroy ran %d times", fx->name, fx->destroys);
    }
    TU_UNLOCK_SIGNAL();
}

static inline wsffi_server_callbacks tu_server_callbacks(void) {
    wsffi_server_callbacks cbs;
    wsffi_server_callbacks_init(&cbs, sizeof cbs);
    cbs.on_connection = tu_fx_on_connection;
    cbs.on_client_error = tu_fx_on_client_error;
    cbs.on_error = tu_fx_on_error;
    cbs.on_close = tu_fx_on_close;
    return cbs;
}

/* Attaches a server whose user data is `fx`; ends the case on failure. */
static inline wsffi_server *tu_attach(wsffi_reactor *r, wsffi_listener *l, const char *path, const wsffi_server_options *opts,
                               const wsffi_server_callbacks *cbs, tu_server_fx *fx) {
    wsffi_server *server = NULL;
    wsffi_error *err = NULL;
    wsffi_server_callbacks defaults = tu_server_callbacks();
    wsffi_status s = wsffi_server_attach(r, l, path, opts, cbs ? cbs : &defaults, fx, tu_fx_destroy, &server, &err);
    if (s != WSFFI_STATUS_OK) {
        tu_fail(__FILE__, __LINE__, "wsffi_server_attach(%s): %s: %s", path ? path : "NULL", wsffi_status_str(s),
                wsffi_error_message(err));
        wsffi_error_free(err);
    }
    REQUIRE(s == WSFFI_STATUS_OK && server != NULL);
    CHECK(err == NULL);
    return server;
}

/* Listens on 127.0.0.1:0 and returns the port. */
static inline wsffi_listener *tu_listen(wsffi_reactor *r, const wsffi_listener_options *opts, uint16_t *port) {
    wsffi_listener *l = NULL;
    wsffi_error *err = NULL;
    wsffi_status s = wsffi_listen(r, "127.0.0.1:0", opts, &l, &err);
    if (s != WSFFI_STATUS_OK) {
        tu_fail(__FILE__, __LINE__, "wsffi_listen: %s: %s", wsffi_status_str(s), wsffi_error_message(err));
        wsffi_error_free(err);
    }
    REQUIRE(s == WSFFI_STATUS_OK && l != NULL);
    CHECK(err == NULL);
    *port = wsffi_listener_port(l);
    CHECK(*port != 0);
    char expect[64];
    snprintf(expect, sizeof expect, "127.0.0.1:%u", (unsigned)*port);
    CHECK_STR(wsffi_listener_address(l), expect);
    return l;
}

/* A reactor, a listener on 127.0.0.1:0 and one server (echo by default) at `path`. */
typedef struct tu_env {
    wsffi_reactor *reactor;
    wsffi_listener *listener;
    uint16_t port;
    wsffi_server *server;
    tu_server_fx fx;
} tu_env;

static inline void tu_env_start_with(tu_env *env, const char *path, const wsffi_listener_options *lopts,
                              const wsffi_server_options *sopts, const wsffi_server_callbacks *cbs) {
    memset(env, 0, sizeof *env);
    tu_fx_init(&env->fx, "server");
    env->reactor = tu_reactor_new();
    env->listener = tu_listen(env->reactor, lopts, &env->port);
    env->server = tu_attach(env->reactor, env->listener, path, sopts, cbs, &env->fx);
}

static inline void tu_env_start(tu_env *env, const char *path) {
    tu_env_start_with(env, path, NULL, NULL, NULL);
}

/* Closes the server (waiting for its on_close and destroy), the listener and the reactor,
 * then checks every server-side connection got exactly one close and one destroy. */
static inline void tu_env_stop(tu_env *env) {
    if (env->server) {
        CHECK_OK(wsffi_server_close(env->server));
        WAIT_UNTIL(env->fx.closes == 1 && env->fx.destroys == 1, TU_WAIT_MS);
        env->server = NULL;
    }
    if (env->listener) {
        CHECK_OK(wsffi_listener_close(env->listener));
        env->listener = NULL;
    }
    tu_reactor_free(env->reactor);
    env->reactor = NULL;
    CHECK_EQ(env->fx.closes, 1);
    CHECK_EQ(env->fx.destroys, 1);
    for (int i = 0; i < env->fx.connections; i++) {
        tu_rec *rec = &env->fx.conns[i];
        CHECK_EQ(rec->closes, 1);
        CHECK_EQ(rec->destroys, 1);
        if (rec->retained) {
            /* A retained conn outlives its reactor: every call is refused, nothing crashes. */
            CHECK_EQ(wsffi_ready_state(rec->retained), WSFFI_CLOSED);
            wsffi_status s = wsffi_send_text(rec->retained, "x", 1);
            CHECK(s == WSFFI_STATUS_ERR_CLOSED || s == WSFFI_STATUS_ERR_SHUT_DOWN);
        }
        tu_rec_free(rec);
    }
}

/* ---- raw sockets --------------------------------------------------------------------- */

/* The RFC 6455 example key and its accept value. */
#define TU_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define TU_WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static inline void tu_set_timeouts(int fd, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A blocking TCP connection to 127.0.0.1:port (reads time out after the default wait).
 * `rcvbuf` > 0 sets SO_RCVBUF before connecting. */
static inline int tu_tcp_connect_buf(uint16_t port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf > 0) {
        CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0) {
        tu_fail(__FILE__, __LINE__, "connect to port %u: %s", (unsigned)port, strerror(errno));
    }
    REQUIRE(rc == 0);
    tu_set_timeouts(fd, TU_WAIT_MS);
    return fd;
}

static inline int tu_tcp_connect(uint16_t port) {
    return tu_tcp_connect_buf(port, 0);
}

/* A TCP socket bound to 127.0.0.1:0 and listening; stores the port. */
static inline int tu_tcp_listen(uint16_t *port, int backlog) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    REQUIRE(listen(fd, backlog) == 0);
    socklen_t sl = sizeof sa;
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A port on which nothing listens (bound once, then closed). */
static inline uint16_t tu_unused_port(void) {
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    socklen_t sl = sizeof sa;
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static inline void tu_send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            tu_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static inline void tu_send_str(int fd, const char *s) {
    tu_send_all(fd, s, strlen(s));
}

/* Reads until the end of an HTTP head ("\r\n\r\n"), EOF or timeout. NUL-terminates `buf`;
 * returns the bytes read (the head and whatever came with it). */
static inline size_t tu_recv_head(int fd, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    while (used + 1 < cap) {
        ssize_t n = recv(fd, buf + used, 1, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
        buf[used] = '\0';
        if (used >= 4 && memcmp(buf + used - 4, "\r\n\r\n", 4) == 0) {
            break;
        }
    }
    return used;
}

/* Reads everything until the peer closes (or `ms` pass). NUL-terminates; *eof tells which. */
static inline size_t tu_recv_to_eof(int fd, char *buf, size_t cap, int ms, bool *eof) {
    size_t used = 0;
    int64_t deadline = tu_now_ms() + ms;
    *eof = false;
    for (;;) {
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0) {
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            *eof = true;
            break;
        }
        if (used + 1 < cap) {
            size_t take = (size_t)n < cap - 1 - used ? (size_t)n : cap - 1 - used;
            memcpy(buf + used, tmp, take);
            used += take;
        }
    }
    buf[used] = '\0';
    return used;
}

/* Sends a WebSocket upgrade request for `path` with extra header lines ("Name: v\r\n"). */
static inline void tu_send_upgrade(int fd, const char *path, const char *extra) {
    char req[1024];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: " TU_WS_KEY "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             path, extra ? extra : "");
    tu_send_str(fd, req);
}

/* The status code of an HTTP response head, or -1. */
static inline int tu_http_status(const char *head) {
    int code = -1;
    if (sscanf(head, "HTTP/1.1 %d", &code) != 1) {
        return -1;
    }
    return code;
}

/* ---- threads ------------------------------------------------------------------------- */

static inline pthread_t tu_thread_start(void *(*fn)(void *), void *arg) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, arg) == 0);
    return t;
}

static inline void tu_thread_join(pthread_t t) {
    CHECK(pthread_join(t, NULL) == 0);
}

/* ---- running cases ------------------------------------------------------------------- */

typedef struct tu_case {
    const char *name;
    void (*fn)(void);
} tu_case;

/* A case: `TEST(name) { ... }` at the start of a line (CMake registers every one). */
#define TEST(name) static void test_##name(void)
#define TU_CASE(name) {#name, test_##name}

static inline int tu_main(int argc, char **argv, const tu_case *cases, size_t n) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&tu_cond, &ca);
    pthread_condattr_destroy(&ca);
    tu_main_thread = pthread_self();
    const char *slow = getenv("WSFFI_TEST_SLOW");
    if (slow && atoi(slow) > 1) {
        tu_slow = atoi(slow);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed_cases = 0;
    bool found = argc < 2;
    for (size_t i = 0; i < n; i++) {
        if (argc >= 2 && strcmp(argv[1], cases[i].name) != 0) {
            continue;
        }
        found = true;
        tu_current_case = cases[i].name;
        int before = atomic_load(&tu_failures);
        int64_t t0 = tu_now_ms();
        cases[i].fn();
        int64_t dt = tu_now_ms() - t0;
        bool ok = atomic_load(&tu_failures) == before;
        printf("%s %s (%lld ms)\n", ok ? "PASS" : "FAIL", cases[i].name, (long long)dt);
        failed_cases += ok ? 0 : 1;
    }
    if (!found) {
        fprintf(stderr, "no case named %s\n", argv[1]);
        return 2;
    }
    pthread_cond_destroy(&tu_cond);
    return failed_cases == 0 ? 0 : 1;
}

#define TU_MAIN(...)                                                                 \
    int main(int argc, char **argv) {                                                \
        static const tu_case tu_cases_[] = {__VA_ARGS__};                            \
        return tu_main(argc, argv, tu_cases_, sizeof tu_cases_ / sizeof tu_cases_[0]); \
    }

#endif /* WSFFI_TESTUTIL_H */
