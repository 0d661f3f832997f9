/*
 * test_close: how connections end, against raw TCP peers that control every byte: the
 * close info (code, reason, origin, both sides' frames, was_clean) for a close by the
 * peer, by us, by a protocol failure (1007, 1009), by terminate and by a reset; no
 * on_error for a reset after a completed close handshake; close timeouts; and a peer that
 * streams past max_payload reading our 1009 close frame and a clean EOF, not a reset.
 */
#include "testutil.h"

/* ---- a raw WebSocket server for our client (it needs the accept hash: SHA-1) --------- */

static uint32_t rol32(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

static void sha1(const uint8_t *data, size_t len, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    uint8_t *msg = calloc(total, 1);
    REQUIRE(msg != NULL);
    memcpy(msg, data, len);
    msg[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) {
        msg[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    }
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++) {
            const uint8_t *p = msg + off + 4 * i;
            w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
        for (int i = 16; i < 80; i++) {
            w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d), k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d, k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d, k = 0xCA62C1D6;
            }
            uint32_t t = rol32(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol32(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(msg);
    for (int i = 0; i < 20; i++) {
        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
    }
}

/* Sec-WebSocket-Accept for `key` into `out` (29 bytes with the NUL). */
static void ws_accept(const char *key, char out[29]) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char joined[128];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    uint8_t d[21] = {0};
    sha1((const uint8_t *)joined, strlen(joined), d);
    int o = 0;
    for (int i = 0; i < 21; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)(i + 1 < 21 ? d[i + 1] : 0) << 8 | (i + 2 < 21 ? d[i + 2] : 0);
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < 20 ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < 20 ? b64[v & 63] : '=';
    }
    out[28] = '\0';
}

/* A listening socket on 127.0.0.1:0; `rcvbuf` > 0 sets SO_RCVBUF (inherited by accepted
 * sockets) before listening. */
static int raw_listen(uint16_t *port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf > 0) {
        CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    REQUIRE(listen(fd, 4) == 0);
    socklen_t sl = sizeof sa;
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    *port = ntohs(sa.sin_port);
    tu_set_timeouts(fd, TU_WAIT_MS); /* accept times out too */
    return fd;
}

/* Our client connected to a raw server that answered its upgrade. */
typedef struct raw_pair {
    wsffi_reactor *reactor;
    int listen_fd;
    int fd; /* the raw server's end */
    tu_rec client;
    wsffi_conn *conn;
} raw_pair;

static void raw_pair_open(raw_pair *p, const wsffi_client_options *opts, int rcvbuf) {
    memset(p, 0, sizeof *p);
    uint16_t port = 0;
    p->listen_fd = raw_listen(&port, rcvbuf);
    p->reactor = tu_reactor_new();
    tu_rec_init(&p->client, "client");
    tu_url url = tu_make_url(port, "/");
    p->conn = tu_connect(p->reactor, url.s, opts, &p->client);
    p->fd = accept(p->listen_fd, NULL, NULL);
    REQUIRE(p->fd >= 0);
    tu_set_timeouts(p->fd, TU_WAIT_MS);
    char head[4096];
    tu_recv_head(p->fd, head, sizeof head);
    const char *k = strstr(head, "Sec-WebSocket-Key: ");
    REQUIRE(k != NULL);
    k += strlen("Sec-WebSocket-Key: ");
    char key[64];
    size_t n = strcspn(k, "\r");
    REQUIRE(n < sizeof key);
    memcpy(key, k, n);
    key[n] = '\0';
    char accept_value[29];
    ws_accept(key, accept_value);
    char resp[256];
    snprintf(resp, sizeof resp,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n",
             accept_value);
    tu_send_str(p->fd, resp);
    WAIT_UNTIL(p->client.opens == 1 || p->client.closes == 1, TU_WAIT_MS);
    REQUIRE(LOCKED_INT(p->client.opens) == 1);
}

static void raw_pair_close(raw_pair *p) {
    if (p->fd >= 0) {
        close(p->fd);
    }
    close(p->listen_fd);
    WAIT_UNTIL(p->client.closes == 1, TU_WAIT_MS);
    tu_reactor_free(p->reactor);
    TU_REC_DONE(&p->client);
    wsffi_conn_release(p->conn);
}

/* Closes `fd` with a TCP reset instead of a FIN. */
static void close_with_reset(int fd) {
    struct linger lg = {1, 0};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(fd);
}

/* ---- frames ---------------------------------------------------------------------------- */

static bool recv_exact(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

typedef struct raw_frame {
    int opcode;
    bool masked;
    size_t len;
    uint8_t data[256];
} raw_frame;

/* Reads one frame of at most 256 payload bytes, unmasking it; false on EOF or error. */
static bool raw_read_frame(int fd, raw_frame *f) {
    uint8_t h[2];
    if (!recv_exact(fd, h, 2)) {
        return false;
    }
    f->opcode = h[0] & 0x0f;
    f->masked = (h[1] & 0x80) != 0;
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        uint8_t e[2];
        if (!recv_exact(fd, e, 2)) {
            return false;
        }
        len = (uint64_t)e[0] << 8 | e[1];
    }
    REQUIRE(len <= sizeof f->data);
    uint8_t key[4] = {0};
    if (f->masked && !recv_exact(fd, key, 4)) {
        return false;
    }
    if (!recv_exact(fd, f->data, (size_t)len)) {
        return false;
    }
    for (size_t i = 0; i < len && f->masked; i++) {
        f->data[i] ^= key[i % 4];
    }
    f->len = (size_t)len;
    return true;
}

/* Reads a close frame and checks its code (and reason, unless NULL). */
static void expect_close_frame(int fd, uint16_t code, const char *reason, bool masked) {
    raw_frame f;
    if (!raw_read_frame(fd, &f)) {
        tu_fail(__FILE__, __LINE__, "no close frame (%s)", strerror(errno));
        return;
    }
    CHECK_EQ(f.opcode, WSFFI_OPCODE_CLOSE);
    CHECK_EQ(f.masked, masked);
    REQUIRE(f.len >= 2);
    CHECK_EQ((uint16_t)(f.data[0] << 8 | f.data[1]), code);
    if (reason) {
        CHECK_EQ(f.len - 2, strlen(reason));
        CHECK(memcmp(f.data + 2, reason, f.len - 2) == 0);
    }
}

/* Sends one frame; `masked` as a client must. */
static void raw_send_frame(int fd, int opcode, const void *payload, size_t len, bool masked) {
    uint8_t buf[300];
    REQUIRE(len <= 256);
    size_t n = 0;
    buf[n++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        buf[n++] = (uint8_t)((masked ? 0x80 : 0) | len);
    } else {
        buf[n++] = (uint8_t)((masked ? 0x80 : 0) | 126);
        buf[n++] = (uint8_t)(len >> 8);
        buf[n++] = (uint8_t)len;
    }
    const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    if (masked) {
        memcpy(buf + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++) {
        buf[n + i] = ((const uint8_t *)payload)[i] ^ (masked ? key[i % 4] : 0);
    }
    tu_send_all(fd, buf, n + len);
}

static void raw_send_close(int fd, uint16_t code, const char *reason, bool masked) {
    uint8_t p[125];
    size_t rl = strlen(reason);
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rl);
    raw_send_frame(fd, WSFFI_OPCODE_CLOSE, p, 2 + rl, masked);
}

/* Reads until EOF; true for EOF, false for a reset (or another error, or a timeout). */
static bool reads_to_clean_eof(int fd, int *err) {
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0) {
            return true;
        }
        if (n < 0) {
            *err = errno;
            return false;
        }
    }
}

/* ---- our client: what on_close says ----------------------------------------------------- */

TEST(accept_hash_matches_the_rfc_example) {
    char out[29];
    ws_accept(TU_WS_KEY, out);
    CHECK_STR(out, TU_WS_ACCEPT);
}

/* The peer closes: origin PEER with its code and reason; our echo is known; clean. */
TEST(peer_close_is_reported_as_the_peers) {
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    raw_send_close(p.fd, 4100, "raw bye", false);
    expect_close_frame(p.fd, 4100, "", true);
    close(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.close_code, 4100);
    CHECK_STR(p.client.close_reason, "raw bye");
    CHECK_EQ(p.client.close_reason_len, 7);
    CHECK_EQ(p.client.peer_close_code, 4100);
    CHECK_STR(p.client.peer_close_reason, "raw bye");
    CHECK_EQ(p.client.local_close_code, 4100);
    CHECK(!p.client.local_reason_null);
    CHECK_STR(p.client.local_close_reason, "");
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* The peer sends its close frame and leaves without reading our answer: the peer's
 * close, and no error. */
TEST(peer_close_then_gone_is_no_error) {
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    raw_send_close(p.fd, 1001, "gone", false);
    close(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.close_code, 1001);
    CHECK_STR(p.client.close_reason, "gone");
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* We close: origin LOCAL with our code and reason, and the peer's answer as it sent it. */
TEST(our_close_is_reported_with_the_peers_answer) {
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    CHECK_OK(wsffi_close(p.conn, 1000, "done", 4));
    expect_close_frame(p.fd, 1000, "done", true);
    raw_send_close(p.fd, 1000, "answer", false);
    close(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.client.close_code, 1000);
    CHECK_STR(p.client.close_reason, "done");
    CHECK_EQ(p.client.local_close_code, 1000);
    CHECK_STR(p.client.local_close_reason, "done");
    CHECK_EQ(p.client.peer_close_code, 1000);
    CHECK_STR(p.client.peer_close_reason, "answer");
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* Invalid UTF-8 from the peer: we fail the connection with 1007, reported as ours. */
TEST(bad_utf8_fails_with_our_1007) {
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    raw_send_frame(p.fd, WSFFI_OPCODE_TEXT, "ok\xff", 3, false);
    expect_close_frame(p.fd, WSFFI_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message", true);
    /* We half-closed after the close frame and wait for the server to close. */
    int err = 0;
    CHECK(reads_to_clean_eof(p.fd, &err));
    close(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_INVALID_PAYLOAD);
    CHECK_STR(p.client.close_reason, "invalid UTF-8 in text message");
    CHECK_EQ(p.client.local_close_code, WSFFI_CLOSE_INVALID_PAYLOAD);
    CHECK(p.client.peer_close_code == 0 && p.client.peer_reason_null);
    CHECK(!p.client.was_clean);
    CHECK_EQ(p.client.errors_at_close, 1);
    CHECK_EQ(p.client.error_status, WSFFI_STATUS_ERR_PROTOCOL);
    CHECK_EQ(p.client.messages, 0);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* A message over max_payload: we fail the connection with 1009, reported as ours. */
TEST(too_big_fails_with_our_1009) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_max_payload(o, 100));
    raw_pair p;
    raw_pair_open(&p, o, 0);
    wsffi_client_options_free(o);
    uint8_t big[200];
    memset(big, 'b', sizeof big);
    raw_send_frame(p.fd, WSFFI_OPCODE_BINARY, big, sizeof big, false);
    expect_close_frame(p.fd, WSFFI_CLOSE_MESSAGE_TOO_BIG, NULL, true);
    close(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(p.client.local_close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(p.client.peer_close_code, 0);
    CHECK(!p.client.was_clean);
    CHECK_EQ(p.client.error_status, WSFFI_STATUS_ERR_MESSAGE_TOO_BIG);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* A reset while open: no close frame either way, 1006, an error. */
TEST(reset_while_open_is_origin_none) {
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    close_with_reset(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_NONE);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK_EQ(p.client.close_reason_len, 0);
    CHECK(p.client.peer_reason_null && p.client.local_reason_null);
    CHECK(!p.client.was_clean);
    CHECK_EQ(p.client.errors_at_close, 1);
    CHECK_EQ(p.client.error_status, WSFFI_STATUS_ERR_CONNECTION_RESET);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* wsffi_terminate: origin NONE, 1006, no error. */
TEST(terminate_is_origin_none) {
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    CHECK_OK(wsffi_terminate(p.conn));
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_NONE);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(p.client.peer_close_code == 0 && p.client.local_close_code == 0);
    CHECK(!p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* ---- resets and timeouts after close frames --------------------------------------------- */

/* Both close frames went over the wire; the peer then resets instead of closing. That is
 * a clean close, and no error. */
TEST(reset_after_completed_close_is_clean) {
    /* We close first; the peer answers, then resets. */
    raw_pair p;
    raw_pair_open(&p, NULL, 0);
    CHECK_OK(wsffi_close(p.conn, 1000, "bye", 3));
    expect_close_frame(p.fd, 1000, "bye", true);
    raw_send_close(p.fd, 1000, "", false);
    close_with_reset(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.client.peer_close_code, 1000);
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    raw_pair_close(&p);

    /* The peer closes first, reads our answer, then resets. */
    raw_pair_open(&p, NULL, 0);
    raw_send_close(p.fd, 4000, "leaving", false);
    expect_close_frame(p.fd, 4000, "", true);
    close_with_reset(p.fd);
    p.fd = -1;
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.close_code, 4000);
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* The peer's close arrives while our output is stuck behind data the peer does not read:
 * our answer never gets out, the close handshake times out, and that is not clean. */
TEST(close_timeout_with_our_answer_unsent_is_not_clean) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_close_timeout_ms(o, 200));
    raw_pair p;
    raw_pair_open(&p, o, 4096);
    wsffi_client_options_free(o);
    /* Far more than the socket buffers take, less than the high-water mark (so reading
     * goes on). */
    size_t len = 8u << 20;
    uint8_t *big = malloc(len);
    REQUIRE(big != NULL);
    memset(big, 'x', len);
    CHECK_OK(wsffi_send_binary(p.conn, big, len));
    free(big);
    tu_sleep_ms(100);
    REQUIRE(wsffi_buffered_amount(p.conn) > 0);
    raw_send_close(p.fd, 4300, "stop", false);
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.close_code, 4300);
    CHECK_STR(p.client.close_reason, "stop");
    CHECK_EQ(p.client.local_close_code, 4300); /* queued, never written */
    CHECK(!p.client.was_clean);
    CHECK_EQ(p.client.errors_at_close, 1);
    CHECK_EQ(p.client.error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_STR(p.client.error_message, "close handshake timed out");
    TU_UNLOCK();
    raw_pair_close(&p);
}

/* Both close frames went over the wire but the server keeps the socket: after the close
 * timeout we close it ourselves; the close was clean and no error is reported. */
TEST(close_timeout_after_completed_close_is_clean) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_close_timeout_ms(o, 200));
    raw_pair p;
    raw_pair_open(&p, o, 0);
    wsffi_client_options_free(o);
    raw_send_close(p.fd, 4400, "keep", false);
    expect_close_frame(p.fd, 4400, "", true);
    int64_t t0 = tu_now_ms();
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    int64_t waited = tu_now_ms() - t0;
    CHECK(waited >= 150 && waited <= 3000 * tu_slow);
    TU_LOCK();
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.close_code, 4400);
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    TU_UNLOCK();
    /* We closed the socket. */
    int err = 0;
    CHECK(reads_to_clean_eof(p.fd, &err));
    raw_pair_close(&p);
}

/* ---- our server against raw clients ----------------------------------------------------- */

/* A raw client upgraded on our server; returns its socket. */
static int raw_client_open(tu_env *env) {
    int fd = tu_tcp_connect(env->port);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    REQUIRE(tu_http_status(head) == 101);
    WAIT_UNTIL(env->fx.connections == 1 && env->fx.conns[0].opens == 1, TU_WAIT_MS);
    return fd;
}

/* The server answers a client's close, half-closes, and the client sees a clean EOF. */
TEST(server_answers_a_close_and_half_closes) {
    tu_env env;
    tu_env_start(&env, "/");
    int fd = raw_client_open(&env);
    raw_send_close(fd, 4100, "client bye", true);
    expect_close_frame(fd, 4100, "", false);
    int err = 0;
    CHECK(reads_to_clean_eof(fd, &err));
    close(fd);
    tu_rec *srv = &env.fx.conns[0];
    WAIT_UNTIL(srv->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(srv->close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(srv->close_code, 4100);
    CHECK_STR(srv->close_reason, "client bye");
    CHECK_EQ(srv->local_close_code, 4100);
    CHECK(srv->was_clean);
    CHECK_EQ(srv->errors, 0);
    TU_UNLOCK();
    tu_env_stop(&env);
}

/* A client sends its close frame and leaves at once: the server reports the peer's close
 * and no error (only our answer was lost). */
TEST(peer_that_closes_and_leaves_is_no_error) {
    tu_env env;
    tu_env_start(&env, "/");
    int fd = raw_client_open(&env);
    raw_send_close(fd, 1001, "gone", true);
    close(fd);
    tu_rec *srv = &env.fx.conns[0];
    WAIT_UNTIL(srv->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(srv->close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(srv->close_code, 1001);
    CHECK_STR(srv->close_reason, "gone");
    CHECK_EQ(srv->errors, 0);
    TU_UNLOCK();
    tu_env_stop(&env);
}

/* A client announces a huge frame and keeps sending it: it must read our 1009 close frame
 * and then a clean EOF (the server drains what it still sends), not a reset. */
TEST(peer_streaming_past_max_payload_reads_1009_then_eof) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_max_payload(so, 1000));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    int fd = raw_client_open(&env);
    int sndbuf = 64 * 1024;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
    /* FIN, binary, masked, 64-bit length 1 GiB, mask key. */
    const uint8_t header[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4};
    tu_send_all(fd, header, sizeof header);
    REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
    static uint8_t chunk[16384];
    memset(chunk, 'z', sizeof chunk);
    uint8_t in[256];
    size_t got = 0;
    size_t sent = 0;
    bool have_close = false;
    int64_t deadline = tu_now_ms() + TU_WAIT_MS;
    while (!have_close && tu_now_ms() < deadline) {
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            tu_fail(__FILE__, __LINE__, "send after %zu bytes: %s", sent, strerror(errno));
            break;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, n > 0 ? 0 : 10) > 0) {
            ssize_t r = recv(fd, in + got, sizeof in - got, 0);
            if (r <= 0) {
                tu_fail(__FILE__, __LINE__, "recv before the close frame: %s", r == 0 ? "EOF" : strerror(errno));
                break;
            }
            got += (size_t)r;
            have_close = got >= 2 && got >= 2 + (size_t)(in[1] & 0x7f);
        }
    }
    REQUIRE(have_close);
    CHECK_EQ(in[0], 0x88);
    CHECK_EQ((uint16_t)(in[2] << 8 | in[3]), WSFFI_CLOSE_MESSAGE_TOO_BIG);
    /* Stop sending; the server drained everything, so it closes with a FIN. */
    if (shutdown(fd, SHUT_WR) != 0) {
        tu_fail(__FILE__, __LINE__, "shutdown after the close frame: %s (a reset arrived)", strerror(errno));
    }
    REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0);
    int err = 0;
    bool eof = reads_to_clean_eof(fd, &err);
    if (!eof) {
        tu_fail(__FILE__, __LINE__, "after the close frame: %s, not EOF", err ? strerror(err) : "timeout");
    }
    close(fd);
    tu_rec *srv = &env.fx.conns[0];
    WAIT_UNTIL(srv->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(srv->close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(srv->close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(srv->peer_close_code, 0);
    CHECK(!srv->was_clean);
    CHECK_EQ(srv->error_status, WSFFI_STATUS_ERR_MESSAGE_TOO_BIG);
    CHECK_EQ(srv->messages, 0);
    TU_UNLOCK();
    tu_env_stop(&env);
}

TU_MAIN(TU_CASE(accept_hash_matches_the_rfc_example), TU_CASE(peer_close_is_reported_as_the_peers),
        TU_CASE(peer_close_then_gone_is_no_error),
        TU_CASE(our_close_is_reported_with_the_peers_answer), TU_CASE(bad_utf8_fails_with_our_1007),
        TU_CASE(too_big_fails_with_our_1009), TU_CASE(reset_while_open_is_origin_none), TU_CASE(terminate_is_origin_none),
        TU_CASE(reset_after_completed_close_is_clean), TU_CASE(close_timeout_with_our_answer_unsent_is_not_clean),
        TU_CASE(close_timeout_after_completed_close_is_clean), TU_CASE(server_answers_a_close_and_half_closes),
        TU_CASE(peer_that_closes_and_leaves_is_no_error),
        TU_CASE(peer_streaming_past_max_payload_reads_1009_then_eof))
