/*
 * test_conn: our client against our server over loopback: messages, fragments, ping/pong,
 * the close handshake and its validation, ready states, accessors, subprotocols,
 * retain/release, replacing callbacks, connect failures, max_payload/max_fragments,
 * calls from inside callbacks and from several threads.
 */
#include "testutil.h"

/* A client connected to an echo server at /echo; both recorders ready. */
typedef struct pair {
    tu_env env;
    tu_rec client;
    wsffi_conn *conn;
    tu_rec *server;   /* the server side's recorder */
    wsffi_conn *sconn; /* the server side's conn (retained by the fixture) */
} pair;

static void pair_open_with(pair *p, const char *path, const wsffi_client_options *copts, const wsffi_server_options *sopts,
                           bool echo) {
    memset(p, 0, sizeof *p);
    tu_env_start_with(&p->env, "/echo", NULL, sopts, NULL);
    p->env.fx.echo = echo;
    tu_rec_init(&p->client, "client");
    tu_url url = tu_make_url(p->env.port, path);
    p->conn = tu_open(p->env.reactor, url.s, copts, &p->client);
    WAIT_UNTIL(p->env.fx.connections == 1 && p->env.fx.conns[0].opens == 1, TU_WAIT_MS);
    REQUIRE(LOCKED_INT(p->env.fx.connections) == 1);
    p->server = &p->env.fx.conns[0];
    p->sconn = p->server->retained;
}

static void pair_open(pair *p) {
    pair_open_with(p, "/echo", NULL, NULL, true);
}

/* Closes the client if still open, stops everything, checks one close/destroy each. */
static void pair_close(pair *p) {
    if (wsffi_ready_state(p->conn) == WSFFI_OPEN) {
        CHECK_OK(wsffi_close(p->conn, WSFFI_CLOSE_NORMAL, NULL, 0));
    }
    WAIT_UNTIL(p->client.closes == 1, TU_WAIT_MS);
    tu_env_stop(&p->env);
    TU_REC_DONE(&p->client);
    wsffi_conn_release(p->conn);
}

/* ---- messages ------------------------------------------------------------------------ */

static void send_and_wait_echo(pair *p, uint32_t kind, const uint8_t *data, size_t len) {
    int before = (int)LOCKED_INT(p->client.messages);
    CHECK_OK(wsffi_send(p->conn, kind, data, len));
    WAIT_UNTIL(p->client.messages == before + 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p->client.last_kind, kind);
    CHECK_EQ(p->client.last_len, len);
    CHECK(p->client.last_data != NULL && (len == 0 || memcmp(p->client.last_data, data, len) == 0));
    CHECK_EQ(p->server->last_kind, kind);
    CHECK_EQ(p->server->last_len, len);
    TU_UNLOCK();
}

TEST(echo_messages) {
    pair p;
    pair_open(&p);
    CHECK(wsffi_conn_user_data(p.conn) == &p.client);
    CHECK(wsffi_conn_user_data(p.sconn) == p.server);

    send_and_wait_echo(&p, WSFFI_TEXT, (const uint8_t *)"hello", 5);
    send_and_wait_echo(&p, WSFFI_BINARY, (const uint8_t *)"\x00\x01\x02\xff", 4);
    send_and_wait_echo(&p, WSFFI_TEXT, NULL, 0);
    send_and_wait_echo(&p, WSFFI_BINARY, NULL, 0);
    const char *utf8 = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80";
    send_and_wait_echo(&p, WSFFI_TEXT, (const uint8_t *)utf8, strlen(utf8));

    /* 1 MiB binary with a pattern, then 1 MiB of multi-byte UTF-8 text. */
    size_t big = (size_t)1 << 20;
    uint8_t *buf = malloc(big);
    REQUIRE(buf != NULL);
    for (size_t i = 0; i < big; i++) {
        buf[i] = (uint8_t)(i * 31 + (i >> 8));
    }
    send_and_wait_echo(&p, WSFFI_BINARY, buf, big);
    for (size_t i = 0; i + 2 <= big; i += 2) {
        buf[i] = 0xc3;
        buf[i + 1] = 0xa9; /* é */
    }
    send_and_wait_echo(&p, WSFFI_TEXT, buf, big);
    /* The data was copied: changing the buffer right after the call changes nothing. */
    memset(buf, 'a', 1000);
    CHECK_OK(wsffi_send_binary(p.conn, buf, 1000));
    memset(buf, 'b', 1000);
    WAIT_UNTIL(p.client.messages == 8, TU_WAIT_MS);
    TU_LOCK();
    CHECK(p.client.last_len == 1000 && p.client.last_data[0] == 'a' && p.client.last_data[999] == 'a');
    TU_UNLOCK();
    free(buf);

    /* send_text and send_binary are send() with a fixed type. */
    CHECK_OK(wsffi_send_text(p.conn, "txt", 3));
    WAIT_UNTIL(p.client.messages == 9, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.last_kind), WSFFI_TEXT);

    /* Order of many small messages. */
    for (int i = 0; i < 100; i++) {
        char m[16];
        int n = snprintf(m, sizeof m, "m%d", i);
        CHECK_OK(wsffi_send_text(p.conn, m, (size_t)n));
    }
    WAIT_UNTIL(p.client.messages == 109, TU_WAIT_MS);
    TU_LOCK();
    for (int i = 0; i < 100; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        if (strcmp(p.client.log[9 + i], m) != 0) {
            tu_fail(__FILE__, __LINE__, "message %d arrived as %s", i, p.client.log[9 + i]);
            break;
        }
    }
    CHECK_EQ(p.server->echo_status, WSFFI_STATUS_OK);
    TU_UNLOCK();

    /* Everything was written: nothing buffered on either side. */
    WAIT_UNTIL(wsffi_buffered_amount(p.conn) == 0 && wsffi_buffered_amount(p.sconn) == 0, TU_WAIT_MS);
    pair_close(&p);
}

TEST(accessors) {
    pair p;
    memset(&p, 0, sizeof p);
    tu_env_start(&p.env, "/echo");
    tu_rec_init(&p.client, "client");
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo?x=1&y=two", (unsigned)p.env.port);
    p.conn = tu_open(p.env.reactor, url, NULL, &p.client);
    WAIT_UNTIL(p.env.fx.connections == 1 && p.env.fx.conns[0].opens == 1, TU_WAIT_MS);
    p.server = &p.env.fx.conns[0];
    p.sconn = p.server->retained;

    /* wsffi_url: the normalized URL on the client, the request target on the server. */
    CHECK_STR(wsffi_url(p.conn), url);
    CHECK_STR(wsffi_url(p.sconn), "/echo?x=1&y=two");
    /* Remote addresses: the server's port on the client; 127.0.0.1:<other> on the server. */
    char expect[64];
    snprintf(expect, sizeof expect, "127.0.0.1:%u", (unsigned)p.env.port);
    CHECK_STR(wsffi_remote_address(p.conn), expect);
    const char *peer = wsffi_remote_address(p.sconn);
    CHECK(tu_starts_with(peer, "127.0.0.1:"));
    if (tu_starts_with(peer, "127.0.0.1:")) {
        int port = atoi(peer + strlen("127.0.0.1:"));
        CHECK(port > 0 && port < 65536 && port != p.env.port);
    }
    /* No subprotocol offered, no extensions. */
    CHECK_EMPTY_STR(wsffi_protocol(p.conn));
    CHECK_EMPTY_STR(wsffi_protocol(p.sconn));
    CHECK_EMPTY_STR(wsffi_extensions(p.conn));
    CHECK_EMPTY_STR(wsffi_extensions(p.sconn));
    CHECK_EQ(wsffi_ready_state(p.conn), WSFFI_OPEN);
    CHECK_EQ(wsffi_ready_state(p.sconn), WSFFI_OPEN);
    CHECK_EQ(wsffi_buffered_amount(p.conn), 0);
    pair_close(&p);

    /* A URL without a path is normalized with "/"; the server sees "/". */
    tu_env env;
    tu_env_start(&env, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    snprintf(url, sizeof url, "ws://127.0.0.1:%u", (unsigned)env.port);
    wsffi_conn *conn = tu_open(env.reactor, url, NULL, &c);
    snprintf(expect, sizeof expect, "ws://127.0.0.1:%u/", (unsigned)env.port);
    CHECK_STR(wsffi_url(conn), expect);
    WAIT_UNTIL(env.fx.connections == 1, TU_WAIT_MS);
    CHECK_STR(wsffi_url(env.fx.conns[0].retained), "/");
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- fragments ----------------------------------------------------------------------- */

TEST(fragments) {
    pair p;
    pair_open(&p);
    const uint8_t ping[] = "p1";
    /* "Hello wörld" in three fragments, the ö split between the last two; a ping and a
     * refused whole message in between. */
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"Hello", 5, false));
    CHECK_OK(wsffi_ping(p.conn, ping, 2));
    CHECK_STATUS(wsffi_send_text(p.conn, "whole", 5), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_send_binary(p.conn, (const uint8_t *)"whole", 5), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_BINARY /* ignored */, (const uint8_t *)" w\xc3", 3, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"\xb6rld", 4, true));
    WAIT_UNTIL(p.server->messages == 1 && p.client.messages == 1 && p.client.pongs == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->last_kind, WSFFI_TEXT);
    CHECK(p.server->last_len == 12 && memcmp(p.server->last_data, "Hello w\xc3\xb6rld", 12) == 0);
    /* The ping went through in the middle of the message. */
    CHECK_EQ(p.server->pings, 1);
    CHECK(p.server->ping_len == 2 && memcmp(p.server->ping_data, "p1", 2) == 0);
    CHECK(p.client.pong_len == 2 && memcmp(p.client.pong_data, "p1", 2) == 0);
    TU_UNLOCK();

    /* Binary: first fragment sets the type, an empty final fragment ends it. */
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_BINARY, (const uint8_t *)"\x01\x02", 2, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_BINARY, (const uint8_t *)"\x03", 1, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_BINARY, NULL, 0, true));
    WAIT_UNTIL(p.server->messages == 2, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->last_kind, WSFFI_BINARY);
    CHECK(p.server->last_len == 3 && memcmp(p.server->last_data, "\x01\x02\x03", 3) == 0);
    TU_UNLOCK();

    /* A single final fragment is a whole message; whole messages work again afterwards. */
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"one", 3, true));
    CHECK_OK(wsffi_send_text(p.conn, "after", 5));
    WAIT_UNTIL(p.server->messages == 4, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(p.server->log[2], "one");
    CHECK_STR(p.server->log[3], "after");
    TU_UNLOCK();
    CHECK_STATUS(wsffi_send_fragment(p.conn, 9, (const uint8_t *)"x", 1, true), WSFFI_STATUS_ERR_INVALID_PARAMETER);

    /* Fragments from the server side too. */
    CHECK_OK(wsffi_send_fragment(p.sconn, WSFFI_TEXT, (const uint8_t *)"ab", 2, false));
    CHECK_OK(wsffi_send_fragment(p.sconn, WSFFI_TEXT, (const uint8_t *)"cd", 2, true));
    WAIT_UNTIL(p.client.messages >= 5, TU_WAIT_MS);
    pair_close(&p);
}

/* A text message whose fragments are valid one by one but not as a whole: the receiver
 * closes with 1007. */
TEST(fragments_invalid_utf8) {
    pair p;
    pair_open(&p);
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"ok\xc3", 3, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"(", 1, true));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    /* The server failed the connection: its own 1007, which the client got from it. */
    CHECK_EQ(p.server->close_code, WSFFI_CLOSE_INVALID_PAYLOAD);
    CHECK_EQ(p.server->close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.server->local_close_code, WSFFI_CLOSE_INVALID_PAYLOAD);
    CHECK_EQ(p.server->error_status, WSFFI_STATUS_ERR_PROTOCOL);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_INVALID_PAYLOAD);
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.server->messages, 0);
    TU_UNLOCK();
    pair_close(&p);
}

/* ---- ping and pong ------------------------------------------------------------------- */

TEST(ping_pong) {
    pair p;
    pair_open(&p);
    CHECK_OK(wsffi_ping(p.conn, (const uint8_t *)"abc", 3));
    WAIT_UNTIL(p.server->pings == 1 && p.client.pongs == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK(p.server->ping_len == 3 && memcmp(p.server->ping_data, "abc", 3) == 0);
    CHECK(p.client.pong_len == 3 && memcmp(p.client.pong_data, "abc", 3) == 0);
    TU_UNLOCK();

    /* Server to client, empty payload. */
    CHECK_OK(wsffi_ping(p.sconn, NULL, 0));
    WAIT_UNTIL(p.client.pings == 1 && p.server->pongs == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.ping_len), 0);
    CHECK_EQ(LOCKED_INT(p.server->pong_len), 0);

    /* 125 bytes is the limit. */
    uint8_t big[126];
    memset(big, 'z', sizeof big);
    CHECK_OK(wsffi_ping(p.conn, big, 125));
    CHECK_STATUS(wsffi_ping(p.conn, big, 126), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK_STATUS(wsffi_pong(p.conn, big, 126), WSFFI_STATUS_ERR_TOO_BIG);
    WAIT_UNTIL(p.client.pongs == 2, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.pong_len), 125);

    /* An unsolicited pong arrives as on_pong, and nothing answers it. */
    CHECK_OK(wsffi_pong(p.conn, (const uint8_t *)"unasked", 7));
    WAIT_UNTIL(p.server->pongs == 2, TU_WAIT_MS);
    TU_LOCK();
    CHECK(p.server->pong_len == 7 && memcmp(p.server->pong_data, "unasked", 7) == 0);
    TU_UNLOCK();
    STAYS_TRUE(p.client.pongs == 2 && p.client.pings == 1, 100);
    CHECK_STATUS(wsffi_ping(p.conn, NULL, 3), WSFFI_STATUS_ERR_NULL_PARAMETER);
    pair_close(&p);
}

/* ---- closing ------------------------------------------------------------------------- */

TEST(close_from_client) {
    pair p;
    pair_open(&p);
    CHECK_OK(wsffi_close(p.conn, 4001, "bye now", 7));
    uint32_t st = wsffi_ready_state(p.conn);
    CHECK(st == WSFFI_CLOSING || st == WSFFI_CLOSED);
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->close_code, 4001);
    CHECK_STR(p.server->close_reason, "bye now");
    CHECK_EQ(p.server->close_reason_len, 7);
    CHECK(p.server->was_clean);
    CHECK_EQ(p.server->close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.server->peer_close_code, 4001);
    CHECK_STR(p.server->peer_close_reason, "bye now");
    CHECK_EQ(p.server->local_close_code, 4001); /* its echo, without a reason */
    CHECK_STR(p.server->local_close_reason, "");
    /* The client reports its own close, and the echo it got. */
    CHECK_EQ(p.client.close_code, 4001);
    CHECK_STR(p.client.close_reason, "bye now");
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.client.local_close_code, 4001);
    CHECK_STR(p.client.local_close_reason, "bye now");
    CHECK_EQ(p.client.peer_close_code, 4001);
    CHECK(!p.client.peer_reason_null);
    CHECK_STR(p.client.peer_close_reason, "");
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.errors, 0);
    CHECK_EQ(p.server->errors, 0);
    CHECK_EQ(p.client.state_in_close, WSFFI_CLOSED);
    TU_UNLOCK();
    CHECK_EQ(wsffi_ready_state(p.conn), WSFFI_CLOSED);
    CHECK_EQ(wsffi_ready_state(p.sconn), WSFFI_CLOSED);
    pair_close(&p);
}

TEST(close_from_server) {
    pair p;
    pair_open(&p);
    CHECK_OK(wsffi_close(p.sconn, 3000, "server says bye", 15));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_code, 3000);
    CHECK_STR(p.client.close_reason, "server says bye");
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.peer_close_code, 3000);
    CHECK_EQ(p.client.local_close_code, 3000);
    CHECK_EQ(p.server->close_code, 3000);
    CHECK_STR(p.server->close_reason, "server says bye");
    CHECK_EQ(p.server->close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.server->peer_close_code, 3000);
    CHECK(p.server->was_clean);
    CHECK_EQ(p.client.errors + p.server->errors, 0);
    TU_UNLOCK();
    pair_close(&p);
}

TEST(close_without_status) {
    pair p;
    pair_open(&p);
    CHECK_STATUS(wsffi_close(p.conn, 0, "x", 1), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_close(p.conn, 0, NULL, 0));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->close_code, WSFFI_CLOSE_NO_STATUS);
    CHECK_EQ(p.server->close_reason_len, 0);
    CHECK(p.server->was_clean);
    CHECK_EQ(p.server->local_close_code, WSFFI_CLOSE_NO_STATUS); /* an empty reply */
    CHECK(p.client.was_clean);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_NO_STATUS);
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(p.client.peer_close_code, WSFFI_CLOSE_NO_STATUS);
    TU_UNLOCK();
    pair_close(&p);
}

TEST(close_validation) {
    pair p;
    pair_open(&p);
    const uint16_t bad[] = {1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_STATUS(wsffi_close(p.conn, bad[i], NULL, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER)) {
            fprintf(stderr, "  (code %u)\n", bad[i]);
        }
    }
    char reason[200];
    memset(reason, 'r', sizeof reason);
    CHECK_STATUS(wsffi_close(p.conn, 1000, reason, 124), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK_STATUS(wsffi_close(p.conn, 1000, "\xc3\x28", 2), WSFFI_STATUS_ERR_INVALID_UTF8);
    CHECK_STATUS(wsffi_close(p.conn, 1000, "\xed\xa0\x80", 3), WSFFI_STATUS_ERR_INVALID_UTF8);
    CHECK_STATUS(wsffi_close(p.conn, 1000, NULL, 3), WSFFI_STATUS_ERR_NULL_PARAMETER);
    /* None of these started a close. */
    CHECK_EQ(wsffi_ready_state(p.conn), WSFFI_OPEN);
    send_and_wait_echo(&p, WSFFI_TEXT, (const uint8_t *)"still open", 10);

    /* 123 bytes of reason (multi-byte at the end) is the maximum and arrives intact. */
    memset(reason, 'r', 121);
    memcpy(reason + 121, "\xc3\xa9", 2);
    CHECK_OK(wsffi_close(p.conn, WSFFI_CLOSE_POLICY_VIOLATION, reason, 123));
    WAIT_UNTIL(p.server->closes == 1 && p.client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->close_code, WSFFI_CLOSE_POLICY_VIOLATION);
    CHECK_EQ(p.server->close_reason_len, 123);
    CHECK(memcmp(p.server->close_reason, reason, 123) == 0);
    TU_UNLOCK();
    pair_close(&p);

    /* Every code the header allows is accepted by wsffi_close. */
    const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        pair q;
        pair_open(&q);
        if (!CHECK_OK(wsffi_close(q.conn, good[i], "ok", 2))) {
            fprintf(stderr, "  (code %u)\n", good[i]);
        }
        WAIT_UNTIL(q.server->closes == 1, TU_WAIT_MS);
        CHECK_EQ(LOCKED_INT(q.server->close_code), good[i]);
        pair_close(&q);
    }
}

TEST(send_validation) {
    pair p;
    pair_open(&p);
    const char *bad[] = {"\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xff", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_STATUS(wsffi_send_text(p.conn, bad[i], strlen(bad[i])), WSFFI_STATUS_ERR_INVALID_UTF8)) {
            fprintf(stderr, "  (string %zu)\n", i);
        }
        CHECK_STATUS(wsffi_send(p.conn, WSFFI_TEXT, (const uint8_t *)bad[i], strlen(bad[i])), WSFFI_STATUS_ERR_INVALID_UTF8);
    }
    /* The same bytes are fine as binary. */
    CHECK_OK(wsffi_send_binary(p.conn, (const uint8_t *)bad[0], 2));
    /* An embedded NUL is valid UTF-8. */
    CHECK_OK(wsffi_send_text(p.conn, "a\0b", 3));
    CHECK_STATUS(wsffi_send(p.conn, 0, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_send(p.conn, 3, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_send(p.conn, WSFFI_TEXT, NULL, 5), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_send_binary(p.conn, NULL, 5), WSFFI_STATUS_ERR_NULL_PARAMETER);
    WAIT_UNTIL(p.client.messages == 2, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->messages, 2);
    CHECK(p.client.log_len[1] == 3 && memcmp(p.client.log[1], "a\0b", 3) == 0);
    TU_UNLOCK();
    pair_close(&p);
}

TEST(terminate) {
    pair p;
    pair_open(&p);
    CHECK_OK(wsffi_terminate(p.conn));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!p.client.was_clean);
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_NONE);
    CHECK(p.client.peer_close_code == 0 && p.client.peer_reason_null);
    CHECK(p.client.local_close_code == 0 && p.client.local_reason_null);
    CHECK_EQ(p.client.close_reason_len, 0);
    CHECK_EQ(p.client.errors, 0); /* terminating is no error */
    /* The server saw the connection go without a close frame (reset or EOF). */
    CHECK_EQ(p.server->close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!p.server->was_clean);
    CHECK_EQ(p.server->close_origin, WSFFI_CLOSE_ORIGIN_NONE);
    CHECK(p.server->peer_close_code == 0 && p.server->local_close_code == 0);
    TU_UNLOCK();
    CHECK_EQ(wsffi_ready_state(p.conn), WSFFI_CLOSED);
    CHECK_STATUS(wsffi_send_text(p.conn, "x", 1), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_terminate(p.conn), WSFFI_STATUS_ERR_CLOSED);
    pair_close(&p);

    /* Terminating the server side. */
    pair_open(&p);
    CHECK_OK(wsffi_terminate(p.sconn));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.close_code), WSFFI_CLOSE_ABNORMAL);
    CHECK(!LOCKED_INT(p.client.was_clean));
    pair_close(&p);
}

TEST(calls_after_close) {
    pair p;
    pair_open(&p);
    CHECK_OK(wsffi_close(p.conn, 1000, "done", 4));
    /* Closing: every send is refused at once. */
    CHECK_STATUS(wsffi_send_text(p.conn, "x", 1), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_send(p.conn, WSFFI_BINARY, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_send_binary(p.conn, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"x", 1, true), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_close(p.conn, 1000, NULL, 0), WSFFI_STATUS_ERR_CLOSED);
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    /* Closed: same on both sides, and for control frames too. */
    wsffi_conn *conns[2] = {p.conn, p.sconn};
    for (int i = 0; i < 2; i++) {
        wsffi_conn *c = conns[i];
        CHECK_EQ(wsffi_ready_state(c), WSFFI_CLOSED);
        CHECK_STATUS(wsffi_send_text(c, "x", 1), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_send_binary(c, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_send_fragment(c, WSFFI_BINARY, (const uint8_t *)"x", 1, false), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_ping(c, NULL, 0), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_pong(c, NULL, 0), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_close(c, 1000, NULL, 0), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_terminate(c), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_conn_pause(c), WSFFI_STATUS_ERR_CLOSED);
        CHECK_STATUS(wsffi_conn_resume(c), WSFFI_STATUS_ERR_CLOSED);
        CHECK_EQ(wsffi_buffered_amount(c), 0);
    }
    pair_close(&p);
}

/* ---- a server that defers every handshake: keeps clients CONNECTING -------------------- */

static wsffi_handshake *deferred_hs;
static int deferred_count;

static wsffi_verdict defer_all(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_CALLBACK_GUARD();
    TU_LOCK();
    deferred_hs = hs;
    deferred_count++;
    TU_UNLOCK_SIGNAL();
    return WSFFI_VERDICT_DEFER;
}

static void start_deferring(tu_env *env) {
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = defer_all;
    deferred_hs = NULL;
    deferred_count = 0;
    tu_env_start_with(env, "/", NULL, NULL, &cbs);
}

static wsffi_handshake *take_deferred(void) {
    WAIT_UNTIL(deferred_hs != NULL, TU_WAIT_MS);
    TU_LOCK();
    wsffi_handshake *hs = deferred_hs;
    deferred_hs = NULL;
    TU_UNLOCK();
    REQUIRE(hs != NULL);
    return hs;
}

TEST(ready_states) {
    tu_env env;
    start_deferring(&env);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url url = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_connect(env.reactor, url.s, NULL, &c);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CONNECTING);
    wsffi_handshake *hs = take_deferred();
    /* Still connecting while the server decides. */
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CONNECTING);
    CHECK_STATUS(wsffi_send_text(conn, "x", 1), WSFFI_STATUS_ERR_NOT_OPEN);
    CHECK_STATUS(wsffi_send_binary(conn, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_NOT_OPEN);
    CHECK_STATUS(wsffi_send_fragment(conn, WSFFI_TEXT, (const uint8_t *)"x", 1, false), WSFFI_STATUS_ERR_NOT_OPEN);
    CHECK_STATUS(wsffi_ping(conn, NULL, 0), WSFFI_STATUS_ERR_NOT_OPEN);
    CHECK_STR(wsffi_url(conn), url.s);
    CHECK_EMPTY_STR(wsffi_remote_address(conn));
    CHECK_EMPTY_STR(wsffi_protocol(conn));
    CHECK_EQ(LOCKED_INT(c.opens), 0);

    CHECK_OK(wsffi_handshake_accept(hs));
    WAIT_UNTIL(c.opens == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c.state_in_open), WSFFI_OPEN);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_OPEN);
    CHECK_OK(wsffi_send_text(conn, "now", 3));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    uint32_t st = wsffi_ready_state(conn);
    CHECK(st == WSFFI_CLOSING || st == WSFFI_CLOSED);
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c.state_in_close), WSFFI_CLOSED);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CLOSED);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* wsffi_close on a connection still connecting aborts it: on_error then on_close 1006;
 * the deferred handshake then reports that the client left. */
TEST(close_while_connecting) {
    tu_env env;
    start_deferring(&env);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url url = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_connect(env.reactor, url.s, NULL, &c);
    wsffi_handshake *hs = take_deferred();
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c.was_clean);
    TU_UNLOCK();
    tu_sleep_ms(200 * tu_slow);
    CHECK_STATUS(wsffi_handshake_accept(hs), WSFFI_STATUS_ERR_TIMEOUT);
    tu_sleep_ms(50);
    CHECK_EQ(LOCKED_INT(env.fx.connections), 0);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- subprotocols -------------------------------------------------------------------- */

static wsffi_client_options *offer_chat_superchat(void) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_add_protocol(o, "chat"));
    CHECK_OK(wsffi_client_options_add_protocol(o, "superchat"));
    return o;
}

TEST(protocol_default_first) {
    wsffi_client_options *o = offer_chat_superchat();
    pair p;
    pair_open_with(&p, "/echo", o, NULL, true);
    wsffi_client_options_free(o);
    CHECK_STR(wsffi_protocol(p.conn), "chat");
    CHECK_STR(wsffi_protocol(p.sconn), "chat");
    pair_close(&p);
}

static int protocols_calls;
static int protocols_pick;

static int pick_protocol(void *user, const wsffi_request *req, const char *const *offered, size_t count) {
    (void)user;
    TU_CALLBACK_GUARD();
    CHECK_EQ(count, 2);
    if (count == 2) {
        CHECK_STR(offered[0], "chat");
        CHECK_STR(offered[1], "superchat");
    }
    CHECK_STR(wsffi_request_path(req), "/");
    TU_LOCK();
    protocols_calls++;
    TU_UNLOCK_SIGNAL();
    return protocols_pick;
}

TEST(protocol_callback) {
    tu_env env;
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.handle_protocols = pick_protocol;
    protocols_calls = 0;
    protocols_pick = 1;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    wsffi_client_options *o = offer_chat_superchat();
    tu_url url = tu_make_url(env.port, "/");

    tu_rec a;
    tu_rec_init(&a, "client a");
    wsffi_conn *ca = tu_open(env.reactor, url.s, o, &a);
    CHECK_STR(wsffi_protocol(ca), "superchat");
    WAIT_UNTIL(env.fx.connections == 1, TU_WAIT_MS);
    CHECK_STR(wsffi_protocol(env.fx.conns[0].retained), "superchat");

    /* -1: no subprotocol; the connection still opens. */
    TU_LOCK();
    protocols_pick = -1;
    TU_UNLOCK();
    tu_rec b;
    tu_rec_init(&b, "client b");
    wsffi_conn *cb = tu_connect(env.reactor, url.s, o, &b);
    WAIT_UNTIL(b.opens == 1 || b.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(b.opens), 1);
    CHECK_EMPTY_STR(wsffi_protocol(cb));
    CHECK_EQ(LOCKED_INT(protocols_calls), 2);

    /* Without offered protocols the callback is not needed and nothing is chosen. */
    tu_rec n;
    tu_rec_init(&n, "client n");
    wsffi_conn *cn = tu_open(env.reactor, url.s, NULL, &n);
    CHECK_EMPTY_STR(wsffi_protocol(cn));

    wsffi_client_options_free(o);
    tu_env_stop(&env);
    TU_REC_DONE(&a);
    TU_REC_DONE(&b);
    TU_REC_DONE(&n);
    wsffi_conn_release(ca);
    wsffi_conn_release(cb);
    wsffi_conn_release(cn);
}

/* ---- references and user data -------------------------------------------------------- */

static void *release_on_thread(void *conn) {
    wsffi_conn_release(conn);
    return NULL;
}

TEST(retain_release) {
    pair p;
    pair_open(&p);
    /* Extra references from another owner; balanced releases. */
    wsffi_conn *r1 = wsffi_conn_retain(p.conn);
    wsffi_conn *r2 = wsffi_conn_retain(p.conn);
    CHECK(r1 == p.conn && r2 == p.conn);
    wsffi_conn_release(r1);
    CHECK_OK(wsffi_send_text(p.conn, "still mine", 10));
    WAIT_UNTIL(p.client.messages == 1, TU_WAIT_MS);

    /* After on_close the retained server conn is still safe to use. */
    CHECK_OK(wsffi_close(p.conn, 1000, NULL, 0));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1 && p.server->destroys == 1, TU_WAIT_MS);
    CHECK_EQ(wsffi_ready_state(p.sconn), WSFFI_CLOSED);
    CHECK_STATUS(wsffi_send_text(p.sconn, "late", 4), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_ping(p.sconn, NULL, 0), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_close(p.sconn, 1000, NULL, 0), WSFFI_STATUS_ERR_CLOSED);
    CHECK_EQ(wsffi_buffered_amount(p.sconn), 0);
    CHECK_STR(wsffi_url(p.sconn), "/echo");
    CHECK_EQ(wsffi_ready_state(r2), WSFFI_CLOSED);
    CHECK_STATUS(wsffi_send_text(r2, "late", 4), WSFFI_STATUS_ERR_CLOSED);
    /* Releasing from another thread works as well. */
    wsffi_conn *extra = wsffi_conn_retain(p.sconn);
    pthread_t t = tu_thread_start(release_on_thread, extra);
    tu_thread_join(t);
    wsffi_conn_release(r2);
    pair_close(&p);
}

static void set_cb_destroy(void *user) {
    tu_rec *rec = user;
    TU_LOCK();
    rec->destroys++;
    TU_UNLOCK_SIGNAL();
}

TEST(set_callbacks) {
    pair p;
    pair_open(&p);
    tu_rec b;
    tu_rec c;
    tu_rec_init(&b, "client b");
    tu_rec_init(&c, "client c");
    b.opens = c.opens = 1; /* they take over an open connection */

    /* New table and user data: the old user data's destroy runs (once, not on this thread),
     * later events go to the new one. */
    wsffi_conn_callbacks cbs = tu_callbacks();
    CHECK_OK(wsffi_conn_set_callbacks(p.conn, &cbs, &b, set_cb_destroy));
    WAIT_UNTIL(p.client.destroys == 1, TU_WAIT_MS);
    CHECK(wsffi_conn_user_data(p.conn) == &b);
    CHECK_OK(wsffi_send_text(p.conn, "to b", 4));
    WAIT_UNTIL(b.messages == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.messages), 0);

    /* NULL table: keep the callbacks, replace only the user data. */
    CHECK_OK(wsffi_conn_set_callbacks(p.conn, NULL, &c, set_cb_destroy));
    WAIT_UNTIL(b.destroys == 1, TU_WAIT_MS);
    CHECK(wsffi_conn_user_data(p.conn) == &c);
    CHECK_OK(wsffi_send_text(p.conn, "to c", 4));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    CHECK_STR(c.log[0], "to c");

    /* An empty table: no events at all, but destroy still runs at the end. */
    wsffi_conn_callbacks none;
    wsffi_conn_callbacks_init(&none, sizeof none);
    tu_rec d;
    tu_rec_init(&d, "client d");
    CHECK_OK(wsffi_conn_set_callbacks(p.conn, &none, &d, set_cb_destroy));
    WAIT_UNTIL(c.destroys == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_send_text(p.conn, "to nobody", 9));
    WAIT_UNTIL(p.server->messages == 3, TU_WAIT_MS);
    CHECK_OK(wsffi_close(p.conn, 1000, NULL, 0));
    WAIT_UNTIL(d.destroys == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(d.messages + d.closes + d.opens, 0);
    CHECK_EQ(p.client.closes + b.closes + c.closes, 0);
    CHECK_EQ(b.destroys, 1);
    CHECK_EQ(c.destroys, 1);
    CHECK_EQ(p.client.destroys, 1);
    TU_UNLOCK();
    tu_env_stop(&p.env);
    CHECK_EQ(d.destroys, 1);
    tu_rec_free(&p.client);
    tu_rec_free(&b);
    tu_rec_free(&c);
    wsffi_conn_release(p.conn);
}

/* ---- connect failures ---------------------------------------------------------------- */

static atomic_int sync_destroys;
static pthread_t sync_destroy_thread;
static void sync_destroy(void *user) {
    CHECK(user == &sync_destroys);
    sync_destroys++;
    sync_destroy_thread = pthread_self();
}

/* ---- the size rule of callback tables ------------------------------------------------ */

static atomic_int beyond_size_calls;
static void beyond_size_ping(void *user, wsffi_conn *conn, const uint8_t *data, size_t len) {
    (void)user, (void)conn, (void)data, (void)len;
    beyond_size_calls++;
}

/* The table of a newer header: this one's fields, then one this library does not know. */
typedef struct newer_conn_callbacks {
    wsffi_conn_callbacks known;
    void (*on_future_event)(void *user);
} newer_conn_callbacks;

static bool connect_fails_with(wsffi_reactor *r, const char *url, const wsffi_conn_callbacks *cbs, const char *words) {
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    sync_destroys = 0;
    wsffi_status s = wsffi_connect(r, url, NULL, cbs, &sync_destroys, sync_destroy, &conn, &err);
    bool ok = CHECK_STATUS(s, WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK(conn == NULL);
    CHECK_EQ(sync_destroys, 1);
    if (err == NULL || strstr(wsffi_error_message(err), words) == NULL) {
        tu_fail(__FILE__, __LINE__, "expected a message with \"%s\", got \"%s\"", words, wsffi_error_message(err));
        ok = false;
    }
    wsffi_error_free(err);
    return ok;
}

TEST(callbacks_size_rule) {
    pair p;
    pair_open(&p);
    tu_url url = tu_make_url(p.env.port, "/echo");

    /* An older (smaller) table: the fields beyond its size are not read, so what lies there
     * is never called. Here the table ends before on_ping. */
    beyond_size_calls = 0;
    tu_rec old;
    tu_rec_init(&old, "old table");
    wsffi_conn_callbacks cbs = tu_callbacks();
    cbs.size = offsetof(wsffi_conn_callbacks, on_ping);
    cbs.on_ping = beyond_size_ping;
    cbs.on_pong = beyond_size_ping;
    wsffi_conn *conn = NULL;
    CHECK_OK(wsffi_connect(p.env.reactor, url.s, NULL, &cbs, &old, tu_rec_destroy, &conn, NULL));
    WAIT_UNTIL(old.opens == 1 && p.env.fx.connections == 2 && p.env.fx.conns[1].opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_send_text(conn, "old", 3));
    WAIT_UNTIL(old.messages == 1, TU_WAIT_MS);
    CHECK_STR(old.log[0], "old");
    CHECK_OK(wsffi_ping(p.env.fx.conns[1].retained, (const uint8_t *)"p", 1));
    CHECK_OK(wsffi_ping(conn, (const uint8_t *)"q", 1));
    WAIT_UNTIL(p.env.fx.conns[1].pongs == 1 && p.env.fx.conns[1].pings == 1, TU_WAIT_MS);
    STAYS_TRUE(beyond_size_calls == 0 && old.pings == 0 && old.pongs == 0, 100);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(old.closes == 1, TU_WAIT_MS);
    TU_REC_DONE(&old);
    wsffi_conn_release(conn);

    /* A newer (larger) table is accepted while the fields this library does not know are
     * zero, and refused with a message once one of them is set. */
    newer_conn_callbacks newer;
    memset(&newer, 0, sizeof newer);
    newer.known = tu_callbacks();
    newer.known.size = sizeof newer;
    tu_rec big;
    tu_rec_init(&big, "newer table");
    CHECK_OK(wsffi_connect(p.env.reactor, url.s, NULL, &newer.known, &big, tu_rec_destroy, &conn, NULL));
    WAIT_UNTIL(big.opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(big.closes == 1, TU_WAIT_MS);
    TU_REC_DONE(&big);
    wsffi_conn_release(conn);
    newer.on_future_event = sync_destroy;
    connect_fails_with(p.env.reactor, url.s, &newer.known, "not zero");
    CHECK_STATUS(wsffi_conn_set_callbacks(p.conn, &newer.known, NULL, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);

    /* Size 0 (a table only zeroed), or one that ends inside a field, is refused. */
    wsffi_conn_callbacks zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    connect_fails_with(p.env.reactor, url.s, &zeroed, "too small");
    zeroed.size = offsetof(wsffi_conn_callbacks, on_message) + 1;
    connect_fails_with(p.env.reactor, url.s, &zeroed, "inside field on_message");
    CHECK_STATUS(wsffi_conn_set_callbacks(p.conn, &zeroed, NULL, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK(wsffi_conn_user_data(p.conn) == &p.client);

    /* The init functions: NULL and sizes that cannot hold the size field are refused. */
    CHECK_STATUS(wsffi_conn_callbacks_init(NULL, sizeof zeroed), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_callbacks_init(&zeroed, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_conn_callbacks_init(&zeroed, sizeof zeroed));
    CHECK(zeroed.size == sizeof zeroed && zeroed.on_open == NULL && zeroed.on_unexpected_response == NULL);

    /* Server tables follow the same rule (checked on a standalone server). */
    wsffi_server_callbacks scbs;
    CHECK_STATUS(wsffi_server_callbacks_init(NULL, sizeof scbs), WSFFI_STATUS_ERR_NULL_PARAMETER);
    memset(&scbs, 0, sizeof scbs);
    wsffi_server *srv = NULL;
    wsffi_error *err = NULL;
    sync_destroys = 0;
    CHECK_STATUS(wsffi_server_attach(p.env.reactor, NULL, "/x", NULL, &scbs, &sync_destroys, sync_destroy, &srv, &err),
                 WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK(srv == NULL && sync_destroys == 1);
    CHECK(err != NULL && strstr(wsffi_error_message(err), "wsffi_server_callbacks: size 0 is too small") != NULL);
    wsffi_error_free(err);
    CHECK_OK(wsffi_server_callbacks_init(&scbs, offsetof(wsffi_server_callbacks, on_connection)));
    CHECK_OK(wsffi_server_attach(p.env.reactor, NULL, "/x", NULL, &scbs, &sync_destroys, sync_destroy, &srv, NULL));
    CHECK_OK(wsffi_server_close(srv));
    WAIT_UNTIL(sync_destroys == 2, TU_WAIT_MS);

    pair_close(&p);
}

TEST(connect_sync_errors) {
    wsffi_reactor *r = tu_reactor_new();
    wsffi_conn_callbacks cbs = tu_callbacks();
    const char *bad[] = {"", "not a url", "ws://", "ws:///path", "ftp://127.0.0.1/", "ws://127.0.0.1:99999/",
                         "ws://127.0.0.1:port/", "ws://exa mple.com/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wsffi_conn *conn = (wsffi_conn *)(uintptr_t)0x1;
        wsffi_error *err = NULL;
        sync_destroys = 0;
        wsffi_status s = wsffi_connect(r, bad[i], NULL, &cbs, &sync_destroys, sync_destroy, &conn, &err);
        if (!CHECK_STATUS(s, WSFFI_STATUS_ERR_INVALID_URL)) {
            fprintf(stderr, "  (url \"%s\")\n", bad[i]);
        }
        CHECK_EQ(sync_destroys, 1);
        CHECK(pthread_equal(sync_destroy_thread, pthread_self()));
        CHECK(conn == (wsffi_conn *)(uintptr_t)0x1);
        CHECK(err != NULL);
        if (err) {
            CHECK_STATUS(wsffi_error_status(err), s);
            CHECK(strlen(wsffi_error_message(err)) > 0);
        }
        wsffi_error_free(err);
        if (s == WSFFI_STATUS_OK && conn != (wsffi_conn *)(uintptr_t)0x1) {
            wsffi_conn_release(conn);
        }
    }
    /* wss:// is accepted; its failures (here: nothing listens) arrive asynchronously. */
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    sync_destroys = 0;
    CHECK_OK(wsffi_connect(r, "wss://127.0.0.1:1/", NULL, NULL, &sync_destroys, sync_destroy, &conn, &err));
    CHECK(conn != NULL);
    CHECK(err == NULL);
    WAIT_UNTIL(sync_destroys == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    /* Without out_err: same status, destroy still once. */
    CHECK_STATUS(wsffi_connect(r, "bad", NULL, &cbs, &sync_destroys, sync_destroy, &conn, NULL), WSFFI_STATUS_ERR_INVALID_URL);
    CHECK_EQ(sync_destroys, 2);
    tu_reactor_free(r);
}

TEST(connect_refused) {
    wsffi_reactor *r = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url url = tu_make_url(tu_unused_port(), "/");
    wsffi_conn *conn = tu_connect(r, url.s, NULL, &c);
    WAIT_UNTIL(c.closes == 1 && c.destroys == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.errors, 1);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_STATUS(c.error_status, WSFFI_STATUS_ERR_CONNECTION_REFUSED);
    CHECK(strlen(c.error_message) > 0);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c.was_clean);
    TU_UNLOCK();
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CLOSED);
    CHECK_STATUS(wsffi_send_text(conn, "x", 1), WSFFI_STATUS_ERR_CLOSED);
    STAYS_TRUE(c.closes == 1 && c.destroys == 1 && c.errors == 1, 50);
    tu_reactor_free(r);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(connect_dns) {
    wsffi_reactor *r = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(r, "ws://nonexistent.invalid/", NULL, &c);
    WAIT_UNTIL(c.closes == 1 && c.destroys == 1, 3 * TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_STATUS(c.error_status, WSFFI_STATUS_ERR_DNS);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c.was_clean);
    TU_UNLOCK();
    tu_reactor_free(r);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- limits -------------------------------------------------------------------------- */

TEST(max_payload) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_max_payload(so, 1000));
    pair p;
    pair_open_with(&p, "/echo", NULL, so, true);
    wsffi_server_options_free(so);
    uint8_t buf[1001];
    memset(buf, 7, sizeof buf);
    send_and_wait_echo(&p, WSFFI_BINARY, buf, 1000); /* exactly the limit */
    CHECK_OK(wsffi_send_binary(p.conn, buf, 1001));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->messages, 1);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.server->close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(p.server->close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_STR(p.server->close_reason, "message exceeds max_payload");
    CHECK_EQ(p.server->error_status, WSFFI_STATUS_ERR_MESSAGE_TOO_BIG);
    TU_UNLOCK();
    pair_close(&p);

    /* Client side: a larger message from the server closes with 1009 as well. */
    wsffi_client_options *co = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_max_payload(co, 100));
    pair_open_with(&p, "/echo", co, NULL, true);
    wsffi_client_options_free(co);
    CHECK_OK(wsffi_send_binary(p.sconn, buf, 100));
    WAIT_UNTIL(p.client.messages == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_send_binary(p.sconn, buf, 101));
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.client.messages, 1);
    CHECK_EQ(p.server->close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(p.server->close_origin, WSFFI_CLOSE_ORIGIN_PEER);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(p.client.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    TU_UNLOCK();
    pair_close(&p);

    /* The limit counts the whole message, also when it comes in fragments. */
    so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_max_payload(so, 10));
    pair_open_with(&p, "/echo", NULL, so, true);
    wsffi_server_options_free(so);
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_BINARY, buf, 6, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_BINARY, buf, 6, true));
    WAIT_UNTIL(p.client.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.close_code), WSFFI_CLOSE_MESSAGE_TOO_BIG);
    CHECK_EQ(LOCKED_INT(p.server->messages), 0);
    pair_close(&p);
}

TEST(max_fragments) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_max_fragments(so, 3));
    pair p;
    pair_open_with(&p, "/echo", NULL, so, true);
    wsffi_server_options_free(so);
    /* Three frames are fine. */
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"a", 1, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"b", 1, false));
    CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"c", 1, true));
    WAIT_UNTIL(p.client.messages == 1, TU_WAIT_MS);
    CHECK_STR(p.client.log[0], "abc");
    /* Four are too many: 1009. */
    for (int i = 0; i < 4; i++) {
        CHECK_OK(wsffi_send_fragment(p.conn, WSFFI_TEXT, (const uint8_t *)"x", 1, i == 3));
    }
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(p.server->messages, 1);
    CHECK_EQ(p.client.close_code, WSFFI_CLOSE_MESSAGE_TOO_BIG);
    TU_UNLOCK();
    pair_close(&p);

    /* Client side limit. */
    wsffi_client_options *co = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_max_fragments(co, 2));
    pair_open_with(&p, "/echo", co, NULL, true);
    wsffi_client_options_free(co);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(wsffi_send_fragment(p.sconn, WSFFI_BINARY, (const uint8_t *)"x", 1, i == 2));
    }
    WAIT_UNTIL(p.client.closes == 1 && p.server->closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(p.client.messages), 0);
    CHECK_EQ(LOCKED_INT(p.server->close_code), WSFFI_CLOSE_MESSAGE_TOO_BIG);
    pair_close(&p);
}

/* ---- calling the API from inside callbacks ------------------------------------------- */

typedef struct reentrant {
    wsffi_reactor *reactor;
    tu_url url;
    wsffi_status free_status;
    wsffi_status connect_status;
    wsffi_status listen_status;
    wsffi_status attach_status;
    wsffi_status broadcast_status;
    size_t broadcast_sent;
    wsffi_conn *second;
    tu_rec second_rec;
    bool open_hook_done;
    bool message_hook_done;
    wsffi_server *server;
} reentrant;

static void reentrant_on_open(tu_rec *rec, wsffi_conn *conn) {
    reentrant *re = rec->hook_arg;
    (void)conn;
    /* Blocking functions must not deadlock on the reactor thread. */
    wsffi_status fs = wsffi_reactor_free(re->reactor);
    /* Opening another connection from here. */
    wsffi_conn_callbacks cbs = tu_callbacks();
    wsffi_conn *second = NULL;
    wsffi_status cs = wsffi_connect(re->reactor, re->url.s, NULL, &cbs, &re->second_rec, tu_rec_destroy, &second, NULL);
    /* Listeners and servers may be created from a callback (or refused, never a hang). */
    wsffi_listener *l = NULL;
    wsffi_status ls = wsffi_listen(re->reactor, "127.0.0.1:0", NULL, &l, NULL);
    wsffi_status as = WSFFI_STATUS_ERR_INTERNAL;
    if (ls == WSFFI_STATUS_OK) {
        wsffi_server *s = NULL;
        as = wsffi_server_attach(re->reactor, l, "/x", NULL, NULL, NULL, NULL, &s, NULL);
        if (as == WSFFI_STATUS_OK) {
            CHECK_OK(wsffi_server_close(s));
        }
        CHECK_OK(wsffi_listener_close(l));
    }
    TU_LOCK();
    re->free_status = fs;
    re->connect_status = cs;
    re->second = second;
    re->listen_status = ls;
    re->attach_status = as;
    re->open_hook_done = true;
    TU_UNLOCK_SIGNAL();
}

/* Server side: "close-me" closes from on_message, "broadcast" broadcasts, anything else
 * is echoed from here. */
static void reentrant_on_message(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    reentrant *re = rec->hook_arg;
    if (len == 8 && memcmp(data, "close-me", 8) == 0) {
        CHECK_OK(wsffi_close(conn, 4000, "from callback", 13));
        CHECK_STATUS(wsffi_send_text(conn, "late", 4), WSFFI_STATUS_ERR_CLOSED);
    } else if (len == 9 && memcmp(data, "broadcast", 9) == 0) {
        size_t sent = 0;
        wsffi_status s = wsffi_server_broadcast(re->server, WSFFI_TEXT, (const uint8_t *)"all", 3, &sent);
        TU_LOCK();
        re->broadcast_status = s;
        re->broadcast_sent = sent;
        re->message_hook_done = true;
        TU_UNLOCK_SIGNAL();
    } else {
        CHECK_OK(wsffi_send(conn, kind, data, len));
        /* The sends of a callback go straight into the output buffer. */
        CHECK(wsffi_buffered_amount(conn) >= len);
    }
}

TEST(calls_from_callbacks) {
    static reentrant re;
    memset(&re, 0, sizeof re);
    tu_env env;
    tu_env_start(&env, "/");
    env.fx.echo = false;
    env.fx.message_hook = reentrant_on_message;
    env.fx.hook_arg = &re;
    re.reactor = env.reactor;
    re.server = env.server;
    re.url = tu_make_url(env.port, "/");
    tu_rec_init(&re.second_rec, "second client");

    tu_rec c;
    tu_rec_init(&c, "client");
    c.open_hook = reentrant_on_open;
    c.hook_arg = &re;
    wsffi_conn *conn = tu_open(env.reactor, re.url.s, NULL, &c);
    WAIT_UNTIL(re.open_hook_done, TU_WAIT_MS);
    CHECK_STATUS(re.free_status, WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    CHECK_OK(re.connect_status);
    CHECK(re.listen_status == WSFFI_STATUS_OK || re.listen_status == WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    if (re.listen_status == WSFFI_STATUS_OK) {
        CHECK(re.attach_status == WSFFI_STATUS_OK || re.attach_status == WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    }
    /* The connection opened from on_open works. */
    WAIT_UNTIL(re.second_rec.opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_send_text(re.second, "second", 6));
    WAIT_UNTIL(re.second_rec.messages == 1, TU_WAIT_MS);
    CHECK_STR(re.second_rec.log[0], "second");

    /* The reactor survived the refused free: echo from on_message. */
    CHECK_OK(wsffi_send_text(conn, "echo", 4));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);

    /* Broadcast with out_sent from a callback: done or refused, never a deadlock. */
    CHECK_OK(wsffi_send_text(conn, "broadcast", 9));
    WAIT_UNTIL(re.message_hook_done, TU_WAIT_MS);
    CHECK(re.broadcast_status == WSFFI_STATUS_OK || re.broadcast_status == WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    if (re.broadcast_status == WSFFI_STATUS_OK) {
        CHECK_EQ(re.broadcast_sent, 2);
        WAIT_UNTIL(c.messages == 2 && re.second_rec.messages == 2, TU_WAIT_MS);
    }

    /* Close from on_message. */
    CHECK_OK(wsffi_send_text(conn, "close-me", 8));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.close_code, 4000);
    CHECK_STR(c.close_reason, "from callback");
    CHECK(c.was_clean);
    TU_UNLOCK();

    tu_env_stop(&env);
    TU_REC_DONE(&c);
    TU_REC_DONE(&re.second_rec);
    wsffi_conn_release(conn);
    wsffi_conn_release(re.second);
}

/* ---- several threads sending on one connection --------------------------------------- */

#define SENDERS 4
#define PER_SENDER 1000

typedef struct order {
    int next[SENDERS];
    int total;
    int bad;
} order;

static void order_on_message(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    order *o = rec->hook_arg;
    (void)conn;
    char m[32];
    size_t n = len < sizeof m - 1 ? len : sizeof m - 1;
    memcpy(m, data, n);
    m[n] = '\0';
    int t = -1;
    int seq = -1;
    TU_LOCK();
    if (kind != WSFFI_TEXT || sscanf(m, "t%d:%d", &t, &seq) != 2 || t < 0 || t >= SENDERS || seq != o->next[t]) {
        if (o->bad++ == 0) {
            tu_fail(__FILE__, __LINE__, "unexpected message \"%s\" (thread %d expected %d)", m, t,
                    t >= 0 && t < SENDERS ? o->next[t] : -1);
        }
    } else {
        o->next[t]++;
    }
    o->total++;
    TU_UNLOCK_SIGNAL();
}

typedef struct sender {
    wsffi_conn *conn;
    int id;
    int failures;
} sender;

static void *sender_main(void *arg) {
    sender *s = arg;
    for (int i = 0; i < PER_SENDER; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "t%d:%d", s->id, i);
        wsffi_status st = wsffi_send_text(s->conn, m, (size_t)n);
        if (st != WSFFI_STATUS_OK) {
            if (s->failures++ == 0) {
                CHECK_OK(st);
            }
        }
    }
    return NULL;
}

TEST(threads_send) {
    static order o;
    memset(&o, 0, sizeof o);
    pair p;
    memset(&p, 0, sizeof p);
    tu_env_start(&p.env, "/");
    p.env.fx.echo = false;
    p.env.fx.message_hook = order_on_message;
    p.env.fx.hook_arg = &o;
    tu_rec_init(&p.client, "client");
    tu_url url = tu_make_url(p.env.port, "/");
    p.conn = tu_open(p.env.reactor, url.s, NULL, &p.client);

    sender s[SENDERS];
    pthread_t t[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        s[i].conn = wsffi_conn_retain(p.conn); /* each thread holds its own reference */
        s[i].id = i;
        s[i].failures = 0;
        t[i] = tu_thread_start(sender_main, &s[i]);
    }
    for (int i = 0; i < SENDERS; i++) {
        tu_thread_join(t[i]);
        CHECK_EQ(s[i].failures, 0);
        wsffi_conn_release(s[i].conn);
    }
    WAIT_UNTIL(o.total == SENDERS * PER_SENDER, 2 * TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(o.bad, 0);
    for (int i = 0; i < SENDERS; i++) {
        CHECK_EQ(o.next[i], PER_SENDER);
    }
    TU_UNLOCK();
    pair_close(&p);
}

/* An HTTP proxy played by a raw socket: the client asks it for a tunnel to the target by
 * name (the proxy resolves it), with Basic credentials decoded from the proxy URL; a 407
 * fails the connection with a message that names the proxy. */
TEST(proxy_tunnel_request_and_refusal) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_STATUS(wsffi_client_options_set_proxy(NULL, "http://127.0.0.1:1"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_proxy_from_env(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_proxy(o, "ftp://127.0.0.1:1"), WSFFI_STATUS_ERR_INVALID_URL);
    CHECK_STATUS(wsffi_client_options_set_proxy(o, "http://"), WSFFI_STATUS_ERR_INVALID_URL);
    CHECK_OK(wsffi_client_options_set_proxy_from_env(o, false));
    uint16_t port = 0;
    int lfd = tu_tcp_listen(&port, 4);
    char proxy[128];
    snprintf(proxy, sizeof proxy, "http://user:pa%%3Ass@127.0.0.1:%u", (unsigned)port);
    CHECK_OK(wsffi_client_options_set_proxy(o, proxy));
    wsffi_reactor *r = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "through a proxy");
    wsffi_conn *conn = tu_connect(r, "ws://example.test:8080/chat", o, &c);
    wsffi_client_options_free(o);
    int peer = accept(lfd, NULL, NULL);
    REQUIRE(peer >= 0);
    tu_set_timeouts(peer, TU_WAIT_MS);
    char head[2048];
    tu_recv_head(peer, head, sizeof head);
    CHECK(tu_starts_with(head, "CONNECT example.test:8080 HTTP/1.1\r\n"));
    CHECK(strstr(head, "\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n") != NULL);
    /* Nothing of the WebSocket handshake goes to the proxy itself. */
    CHECK(strstr(head, "Sec-WebSocket-Key") == NULL);
    tu_send_str(peer, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_STATUS(c.error_status, WSFFI_STATUS_ERR_HANDSHAKE_REJECTED);
    CHECK(tu_starts_with(c.error_message, "proxy:"));
    TU_UNLOCK();
    wsffi_conn_release(conn);
    TU_REC_DONE(&c);
    tu_reactor_free(r);
    close(peer);
    close(lfd);
}

TU_MAIN(TU_CASE(echo_messages), TU_CASE(accessors), TU_CASE(fragments), TU_CASE(fragments_invalid_utf8), TU_CASE(ping_pong),
        TU_CASE(close_from_client), TU_CASE(close_from_server), TU_CASE(close_without_status), TU_CASE(close_validation),
        TU_CASE(send_validation), TU_CASE(terminate), TU_CASE(calls_after_close), TU_CASE(ready_states),
        TU_CASE(close_while_connecting), TU_CASE(protocol_default_first), TU_CASE(protocol_callback), TU_CASE(retain_release),
        TU_CASE(set_callbacks), TU_CASE(callbacks_size_rule), TU_CASE(connect_sync_errors), TU_CASE(connect_refused), TU_CASE(connect_dns),
        TU_CASE(max_payload), TU_CASE(max_fragments), TU_CASE(calls_from_callbacks), TU_CASE(threads_send),
        TU_CASE(proxy_tunnel_request_and_refusal))
