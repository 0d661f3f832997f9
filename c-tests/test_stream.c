/* Streaming receive through the header: wsffi_*_options_set_stream_messages and the
 * on_message_part callback. Messages larger than max_payload arrive in parts, compressed
 * ones as bounded inflated parts, text is validated across parts, a part callback may close
 * its own connection, and an older callback table (without on_message_part) still works. */
#include "testutil.h"

#include <stddef.h>

#define MAX_MSGS 8

/* The streaming side's connection: what its callbacks saw. */
typedef struct sink {
    int opens, whole_messages, parts, closes, errors, destroys;
    int parts_after_close_call;
    int close_after; /* wsffi_close(conn, 4000, "enough") from this part (0: never) */
    bool closed_by_us;
    bool in_message;
    size_t max_part;
    size_t total;
    int done;                       /* messages whose last part arrived */
    uint32_t kind[MAX_MSGS];
    size_t len[MAX_MSGS];
    uint64_t sum[MAX_MSGS];         /* FNV-1a of each message */
    uint8_t head[MAX_MSGS][16];     /* first bytes of each message */
    uint16_t close_code;
    bool was_clean;
    wsffi_close_origin origin;
    wsffi_status error_status;
    char error_message[256];
} sink;

static sink S;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}
#define FNV_START 0xcbf29ce484222325ULL

static void sink_open(void *user, wsffi_conn *conn) {
    (void)conn;
    TU_LOCK();
    ((sink *)user)->opens++;
    TU_UNLOCK_SIGNAL();
}

static void sink_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)conn, (void)kind, (void)data, (void)len;
    TU_LOCK();
    ((sink *)user)->whole_messages++;
    TU_UNLOCK_SIGNAL();
}

static void sink_part(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len, bool is_first,
                      bool is_last) {
    sink *s = user;
    TU_CALLBACK_GUARD();
    CHECK(data != NULL || len == 0);
    CHECK(kind == WSFFI_TEXT || kind == WSFFI_BINARY);
    TU_LOCK();
    if (s->closed_by_us) {
        s->parts_after_close_call++;
    }
    CHECK_EQ(is_first, !s->in_message);
    REQUIRE(s->done < MAX_MSGS);
    int m = s->done;
    if (is_first) {
        s->kind[m] = kind;
        s->len[m] = 0;
        s->sum[m] = FNV_START;
    }
    CHECK_EQ(s->kind[m], kind);
    for (size_t i = 0; i < len && s->len[m] + i < sizeof s->head[m]; i++) {
        s->head[m][s->len[m] + i] = data[i];
    }
    s->sum[m] = fnv(s->sum[m], data, len);
    s->len[m] += len;
    s->total += len;
    s->parts++;
    if (len > s->max_part) {
        s->max_part = len;
    }
    s->in_message = !is_last;
    if (is_last) {
        s->done++;
    }
    bool close_now = s->close_after > 0 && s->parts == s->close_after;
    if (close_now) {
        s->closed_by_us = true;
    }
    TU_UNLOCK_SIGNAL();
    if (close_now) {
        CHECK_OK(wsffi_close(conn, 4000, "enough", 6));
        /* A second close is refused; nothing else changes. */
        CHECK_STATUS(wsffi_close(conn, 1000, "", 0), WSFFI_STATUS_ERR_CLOSED);
    }
}

static void sink_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
    sink *s = user;
    (void)conn;
    TU_LOCK();
    s->errors++;
    s->error_status = status;
    snprintf(s->error_message, sizeof s->error_message, "%s", message ? message : "");
    TU_UNLOCK_SIGNAL();
}

static void sink_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    sink *s = user;
    (void)conn;
    TU_LOCK();
    s->closes++;
    s->close_code = info->code;
    s->was_clean = info->was_clean;
    s->origin = info->origin;
    TU_UNLOCK_SIGNAL();
}

static void sink_destroy(void *user) {
    TU_LOCK();
    ((sink *)user)->destroys++;
    TU_UNLOCK_SIGNAL();
}

static wsffi_conn_callbacks sink_callbacks(void) {
    wsffi_conn_callbacks cbs;
    CHECK_OK(wsffi_conn_callbacks_init(&cbs, sizeof cbs));
    CHECK(cbs.on_message_part == NULL);
    cbs.on_open = sink_open;
    cbs.on_message = sink_message;
    cbs.on_message_part = sink_part;
    cbs.on_error = sink_error;
    cbs.on_close = sink_close;
    return cbs;
}

/* The server's on_connection: the connection streams into S. */
static void stream_on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    tu_server_fx *fx = user;
    (void)server, (void)req;
    TU_LOCK();
    fx->connections++;
    TU_UNLOCK_SIGNAL();
    wsffi_conn_callbacks cbs = sink_callbacks();
    CHECK_OK(wsffi_conn_set_callbacks(conn, &cbs, &S, sink_destroy));
}

/* A reactor and a streaming server (max_payload 1 MiB, which streamed messages ignore). */
typedef struct env {
    wsffi_reactor *reactor;
    wsffi_listener *listener;
    wsffi_server *server;
    uint16_t port;
    tu_server_fx fx;
} env;

static void env_start(env *e, bool deflate) {
    memset(e, 0, sizeof *e);
    memset(&S, 0, sizeof S);
    tu_fx_init(&e->fx, "stream server");
    e->reactor = tu_reactor_new();
    e->listener = tu_listen(e->reactor, NULL, &e->port);
    wsffi_server_options *so = wsffi_server_options_new();
    REQUIRE(so != NULL);
    CHECK_OK(wsffi_server_options_set_stream_messages(so, true));
    CHECK_OK(wsffi_server_options_set_max_payload(so, 1 << 20));
    CHECK_OK(wsffi_server_options_set_max_fragments(so, 4));
    CHECK_OK(wsffi_server_options_set_per_message_deflate(so, deflate));
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.on_connection = stream_on_connection;
    e->server = tu_attach(e->reactor, e->listener, "/", so, &cbs, &e->fx);
    wsffi_server_options_free(so);
}

static void env_stop(env *e) {
    CHECK_OK(wsffi_server_close(e->server));
    WAIT_UNTIL(e->fx.closes == 1 && e->fx.destroys == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_listener_close(e->listener));
    tu_reactor_free(e->reactor);
    CHECK_EQ(S.closes, e->fx.connections);
    CHECK_EQ(S.destroys, e->fx.connections);
}

/* The bytes the senders send: text-like (compressible) or noise. */
static uint8_t pattern_byte(size_t i, bool compressible) {
    return compressible ? (uint8_t)("streaming "[i % 10] + (i / 100000) % 3) : (uint8_t)((i * 2654435761u) >> 13);
}

/* Sends `len` pattern bytes as one binary message in fragments of `frag` bytes, waiting
 * out back-pressure; with `may_close` a close by the peer ends the sending quietly. */
static uint64_t send_pattern(wsffi_conn *conn, size_t len, size_t frag, bool compressible, bool may_close) {
    uint8_t *buf = malloc(frag);
    REQUIRE(buf != NULL);
    uint64_t sum = FNV_START;
    for (size_t at = 0; at < len; at += frag) {
        size_t n = len - at < frag ? len - at : frag;
        for (size_t i = 0; i < n; i++) {
            buf[i] = pattern_byte(at + i, compressible);
        }
        sum = fnv(sum, buf, n);
        wsffi_status st;
        int64_t deadline = tu_now_ms() + TU_WAIT_MS;
        while ((st = wsffi_send_fragment(conn, WSFFI_BINARY, buf, n, at + n == len)) == WSFFI_STATUS_ERR_BACKPRESSURE &&
               tu_now_ms() < deadline) {
            tu_sleep_ms(2);
        }
        if (may_close && st == WSFFI_STATUS_ERR_CLOSED) {
            break;
        }
        if (!CHECK_OK(st)) {
            break;
        }
    }
    free(buf);
    return sum;
}

TEST(options) {
    wsffi_client_options *co = wsffi_client_options_new();
    wsffi_server_options *so = wsffi_server_options_new();
    REQUIRE(co != NULL && so != NULL);
    CHECK_STATUS(wsffi_client_options_set_stream_messages(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_stream_messages(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_OK(wsffi_client_options_set_stream_messages(co, true));
    CHECK_OK(wsffi_client_options_set_stream_messages(co, false));
    CHECK_OK(wsffi_server_options_set_stream_messages(so, true));
    wsffi_client_options_free(co);
    wsffi_server_options_free(so);
    /* The field was appended after on_unexpected_response (a table of the older size ends
     * right before it); init clears it. */
    CHECK_EQ(offsetof(wsffi_conn_callbacks, on_message_part),
             offsetof(wsffi_conn_callbacks, on_unexpected_response) + sizeof(wsffi_unexpected_response_cb));
    wsffi_conn_callbacks cbs;
    memset(&cbs, 0xff, sizeof cbs);
    CHECK_OK(wsffi_conn_callbacks_init(&cbs, sizeof cbs));
    CHECK(cbs.on_message_part == NULL);
}

/* 8 MiB through a server whose max_payload is 1 MiB: many parts, no on_message. */
static void large_message(bool deflate) {
    env e;
    env_start(&e, deflate);
    tu_rec client;
    tu_rec_init(&client, "client");
    tu_url url = tu_make_url(e.port, "/");
    wsffi_conn *conn = tu_open(e.reactor, url.s, NULL, &client);
    const char *ext = wsffi_extensions(conn);
    CHECK_EQ(ext != NULL && strstr(ext, "permessage-deflate") != NULL, deflate);
    size_t len = (size_t)8 << 20;
    uint64_t sum = send_pattern(conn, len, 256 * 1024, deflate, false);
    /* A text message split inside the euro sign, across frames. */
    CHECK_OK(wsffi_send_fragment(conn, WSFFI_TEXT, (const uint8_t *)"a\xe2", 2, false));
    CHECK_OK(wsffi_send_fragment(conn, WSFFI_TEXT, (const uint8_t *)"\x82\xac" "b", 3, true));
    WAIT_UNTIL(S.done == 2, TU_WAIT_MS * 4);
    TU_LOCK();
    CHECK_EQ(S.done, 2);
    CHECK_EQ(S.kind[0], WSFFI_BINARY);
    CHECK_EQ(S.len[0], len);
    CHECK(S.sum[0] == sum);
    CHECK_EQ(S.kind[1], WSFFI_TEXT);
    CHECK_EQ(S.len[1], 5);
    CHECK(memcmp(S.head[1], "a\xe2\x82\xac" "b", 5) == 0);
    CHECK(S.parts > 8 * 4);
    CHECK(S.max_part <= (deflate ? 32u * 1024 : 64u * 1024));
    CHECK_EQ(S.whole_messages, 0);
    CHECK_EQ(S.errors, 0);
    TU_UNLOCK();
    CHECK_OK(wsffi_close(conn, 1000, "done", 4));
    WAIT_UNTIL(S.closes == 1 && client.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(S.close_code), 1000);
    CHECK(LOCKED_INT(S.was_clean));
    wsffi_conn_release(conn);
    TU_REC_DONE(&client);
    env_stop(&e);
}

TEST(large_message_in_parts) {
    large_message(false);
}

TEST(compressed_message_in_bounded_parts) {
    large_message(true);
}

/* The client side streams too: an echo of 4 MiB comes back in parts. */
TEST(client_streams) {
    memset(&S, 0, sizeof S);
    tu_env env;
    tu_env_start(&env, "/");
    wsffi_client_options *co = wsffi_client_options_new();
    REQUIRE(co != NULL);
    CHECK_OK(wsffi_client_options_set_stream_messages(co, true));
    CHECK_OK(wsffi_client_options_set_max_payload(co, 4096));
    wsffi_conn_callbacks cbs = sink_callbacks();
    wsffi_conn *conn = NULL;
    tu_url url = tu_make_url(env.port, "/");
    CHECK_OK(wsffi_connect(env.reactor, url.s, co, &cbs, &S, sink_destroy, &conn, NULL));
    wsffi_client_options_free(co);
    REQUIRE(conn != NULL);
    WAIT_UNTIL(S.opens == 1, TU_WAIT_MS);
    size_t len = (size_t)4 << 20;
    uint8_t *buf = malloc(len);
    REQUIRE(buf != NULL);
    for (size_t i = 0; i < len; i++) {
        buf[i] = pattern_byte(i, true);
    }
    CHECK_OK(wsffi_send_binary(conn, buf, len));
    WAIT_UNTIL(S.done == 1, TU_WAIT_MS * 4);
    CHECK_EQ(LOCKED_INT(S.len[0]), len);
    CHECK(S.sum[0] == fnv(FNV_START, buf, len));
    CHECK(LOCKED_INT(S.parts) > 1);
    CHECK_EQ(LOCKED_INT(S.whole_messages), 0);
    free(buf);
    CHECK_OK(wsffi_close(conn, 1000, "", 0));
    WAIT_UNTIL(S.closes == 1 && S.destroys == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    tu_env_stop(&env);
}

/* A part callback that closes its own connection: no part after it, a clean close with
 * its code, nothing leaked (the valgrind pass runs this too). */
TEST(close_from_a_part_callback) {
    env e;
    env_start(&e, false);
    S.close_after = 2;
    tu_rec client;
    tu_rec_init(&client, "client");
    tu_url url = tu_make_url(e.port, "/");
    wsffi_conn *conn = tu_open(e.reactor, url.s, NULL, &client);
    send_pattern(conn, (size_t)16 << 20, 64 * 1024, false, true);
    WAIT_UNTIL(S.closes == 1 && client.closes == 1, TU_WAIT_MS * 4);
    TU_LOCK();
    CHECK_EQ(S.parts, 2);
    CHECK_EQ(S.parts_after_close_call, 0);
    CHECK_EQ(S.close_code, 4000);
    CHECK(S.was_clean);
    CHECK_EQ(S.origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(S.errors, 0);
    CHECK_EQ(client.close_code, 4000);
    CHECK_STR(client.close_reason, "enough");
    CHECK(client.was_clean);
    TU_UNLOCK();
    wsffi_conn_release(conn);
    TU_REC_DONE(&client);
    env_stop(&e);
}

/* Masked text frame header for `len` payload bytes (64-bit length). */
static size_t text_header(uint8_t *h, uint64_t len, const uint8_t key[4]) {
    h[0] = 0x80 | WSFFI_OPCODE_TEXT;
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) {
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    }
    memcpy(h + 10, key, 4);
    return 14;
}

/* Valid text arrives in parts; the later invalid bytes fail the connection with 1007 and
 * the part holding them is not delivered. */
TEST(invalid_utf8_in_a_later_part) {
    env e;
    env_start(&e, false);
    int fd = tu_tcp_connect(e.port);
    tu_send_upgrade(fd, "/", "");
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    const size_t good = 100000, rest = 1000;
    const uint8_t key[4] = {9, 8, 7, 6};
    uint8_t *payload = malloc(good + rest);
    REQUIRE(payload != NULL);
    memset(payload, 'a', good + rest);
    payload[good] = 0xED; /* a surrogate: never valid */
    payload[good + 1] = 0xA0;
    payload[good + 2] = 0x80;
    for (size_t i = 0; i < good + rest; i++) {
        payload[i] ^= key[i % 4];
    }
    uint8_t h[14];
    tu_send_all(fd, h, text_header(h, good + rest, key));
    tu_send_all(fd, payload, good);
    /* The valid part is delivered before the rest of the frame is sent. */
    WAIT_UNTIL(S.total == good, TU_WAIT_MS);
    tu_send_all(fd, payload + good, rest);
    /* The close frame on the wire says 1007; the server ends the connection after it. */
    char wire[512];
    bool eof = false;
    size_t n = tu_recv_to_eof(fd, wire, sizeof wire, TU_WAIT_MS, &eof);
    CHECK(eof);
    REQUIRE(n >= 4);
    CHECK_EQ((uint8_t)wire[0], 0x88);
    CHECK_EQ(((uint8_t)wire[2] << 8) | (uint8_t)wire[3], 1007);
    close(fd);
    WAIT_UNTIL(S.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(S.total, good);
    CHECK_EQ(S.done, 0);
    CHECK_EQ(S.errors, 1);
    CHECK_EQ(S.error_status, WSFFI_STATUS_ERR_PROTOCOL);
    CHECK(strstr(S.error_message, "UTF-8") != NULL);
    CHECK_EQ(S.close_code, 1007);
    TU_UNLOCK();
    free(payload);
    env_stop(&e);
}

/* A table from an older header (no on_message_part) is accepted: a plain connection gets
 * on_message as before, a streaming one reads the missing field as NULL (its messages are
 * dropped) and never calls what lies beyond the declared size. */
TEST(older_callback_table) {
    tu_env env;
    tu_env_start(&env, "/");
    for (int streaming = 0; streaming < 2; streaming++) {
        wsffi_client_options *co = wsffi_client_options_new();
        REQUIRE(co != NULL);
        CHECK_OK(wsffi_client_options_set_stream_messages(co, streaming == 1));
        tu_rec rec;
        tu_rec_init(&rec, "old table");
        wsffi_conn_callbacks cbs = tu_callbacks();
        cbs.size = offsetof(wsffi_conn_callbacks, on_message_part);
        cbs.on_message_part = (wsffi_message_part_cb)(uintptr_t)1; /* beyond size: not read */
        wsffi_conn *conn = NULL;
        tu_url url = tu_make_url(env.port, "/");
        CHECK_OK(wsffi_connect(env.reactor, url.s, co, &cbs, &rec, tu_rec_destroy, &conn, NULL));
        wsffi_client_options_free(co);
        REQUIRE(conn != NULL);
        WAIT_UNTIL(rec.opens == 1, TU_WAIT_MS);
        CHECK_OK(wsffi_send_text(conn, "ping me", 7));
        CHECK_OK(wsffi_send_text(conn, "last", 4));
        if (streaming) {
            /* The echo of both arrives and is dropped; a ping round trip shows the
               connection is past them. */
            CHECK_OK(wsffi_ping(conn, (const uint8_t *)"x", 1));
            WAIT_UNTIL(rec.pongs == 1, TU_WAIT_MS);
            CHECK_EQ(LOCKED_INT(rec.messages), 0);
        } else {
            WAIT_UNTIL(rec.messages == 2, TU_WAIT_MS);
            CHECK_STR(rec.log[0], "ping me");
        }
        CHECK_OK(wsffi_close(conn, 1000, "", 0));
        wsffi_conn_release(conn);
        TU_REC_DONE(&rec);
    }
    tu_env_stop(&env);
}

TU_MAIN(TU_CASE(options), TU_CASE(large_message_in_parts), TU_CASE(compressed_message_in_bounded_parts),
        TU_CASE(client_streams), TU_CASE(close_from_a_part_callback), TU_CASE(invalid_utf8_in_a_later_part),
        TU_CASE(older_callback_table))
