/*
 * test_basics: version, status strings, error objects, option objects and their setters,
 * NULL arguments for every function, reactor options.
 */
#include "testutil.h"

/* ---- version and status ---------------------------------------------------------------- */

TEST(version) {
    CHECK_EQ(WSFFI_VERSION_NUMBER, wsffi_version_number());
    REQUIRE(wsffi_version() != NULL);
    CHECK(strcmp(WSFFI_VERSION, wsffi_version()) == 0);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", WSFFI_VERSION_MAJOR, WSFFI_VERSION_MINOR, WSFFI_VERSION_PATCH);
    CHECK_STR(wsffi_version(), expect);
    /* Static: the same pointer every time. */
    CHECK(wsffi_version() == wsffi_version());
}

static const uint32_t all_statuses[] = {
    WSFFI_STATUS_OK,
    WSFFI_STATUS_ERR_NULL_PARAMETER,
    WSFFI_STATUS_ERR_INVALID_PARAMETER,
    WSFFI_STATUS_ERR_INVALID_UTF8,
    WSFFI_STATUS_ERR_INVALID_URL,
    WSFFI_STATUS_ERR_TOO_BIG,
    WSFFI_STATUS_ERR_UNSUPPORTED,
    WSFFI_STATUS_ERR_NOT_OPEN,
    WSFFI_STATUS_ERR_CLOSED,
    WSFFI_STATUS_ERR_BACKPRESSURE,
    WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK,
    WSFFI_STATUS_ERR_SHUT_DOWN,
    WSFFI_STATUS_ERR_ALREADY_DONE,
    WSFFI_STATUS_ERR_QUEUE_FULL,
    WSFFI_STATUS_ERR_RECONNECTING,
    WSFFI_STATUS_ERR_DROPPED,
    WSFFI_STATUS_ERR_PROTOCOL,
    WSFFI_STATUS_ERR_HANDSHAKE,
    WSFFI_STATUS_ERR_HANDSHAKE_REJECTED,
    WSFFI_STATUS_ERR_MESSAGE_TOO_BIG,
    WSFFI_STATUS_ERR_IO,
    WSFFI_STATUS_ERR_DNS,
    WSFFI_STATUS_ERR_CONNECTION_REFUSED,
    WSFFI_STATUS_ERR_TIMEOUT,
    WSFFI_STATUS_ERR_ADDRESS_IN_USE,
    WSFFI_STATUS_ERR_CONNECTION_RESET,
    WSFFI_STATUS_ERR_TLS,
    WSFFI_STATUS_ERR_INTERNAL,
    WSFFI_STATUS_ERR_PANIC,
};
#define N_STATUSES (sizeof all_statuses / sizeof all_statuses[0])

TEST(status_str) {
    /* The documented numbering: never renumbered. */
    CHECK_EQ(WSFFI_STATUS_ERR_NULL_PARAMETER, 100);
    CHECK_EQ(WSFFI_STATUS_ERR_NOT_OPEN, 200);
    CHECK_EQ(WSFFI_STATUS_ERR_PROTOCOL, 300);
    CHECK_EQ(WSFFI_STATUS_ERR_IO, 400);
    CHECK_EQ(WSFFI_STATUS_ERR_TLS, 500);
    CHECK_EQ(WSFFI_STATUS_ERR_PANIC, 901);

    const char *unknown = wsffi_status_str(12345);
    REQUIRE(unknown != NULL);
    CHECK_STR(unknown, "unknown status");
    for (size_t i = 0; i < N_STATUSES; i++) {
        const char *s = wsffi_status_str(all_statuses[i]);
        CHECK(s != NULL);
        if (s == NULL) {
            continue;
        }
        if (s[0] == '\0' || strcmp(s, "unknown status") == 0) {
            tu_fail(__FILE__, __LINE__, "status %u has no description (\"%s\")", all_statuses[i], s);
        }
        /* Each description is distinct. */
        for (size_t j = 0; j < i; j++) {
            const char *t = wsffi_status_str(all_statuses[j]);
            if (t && strcmp(s, t) == 0) {
                tu_fail(__FILE__, __LINE__, "statuses %u and %u share \"%s\"", all_statuses[i], all_statuses[j], s);
            }
        }
        /* Static: the same pointer on every call. */
        CHECK(wsffi_status_str(all_statuses[i]) == s);
    }
    /* Values between the defined ones, and extremes, are unknown but never NULL. */
    const uint32_t gaps[] = {1, 99, 106, 199, 209, 299, 304, 406, 501, 899, 902, 1000, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof gaps / sizeof gaps[0]; i++) {
        const char *s = wsffi_status_str(gaps[i]);
        CHECK(s != NULL);
        if (s) {
            CHECK_STR(s, "unknown status");
        }
    }
}

/* ---- error objects ------------------------------------------------------------------- */

TEST(error_objects) {
    /* NULL safety. */
    CHECK_EMPTY_STR(wsffi_error_message(NULL));
    CHECK_STATUS(wsffi_error_status(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    wsffi_error_free(NULL);

    wsffi_reactor *r = tu_reactor_new();

    /* A malformed address: a status, and an error object that carries it with a sentence. */
    wsffi_listener *l = (wsffi_listener *)(uintptr_t)0x1; /* must stay untouched on failure */
    wsffi_error *err = NULL;
    wsffi_status s = wsffi_listen(r, "not an address", NULL, &l, &err);
    CHECK(s != WSFFI_STATUS_OK);
    CHECK(l == (wsffi_listener *)(uintptr_t)0x1);
    REQUIRE(err != NULL);
    CHECK_STATUS(wsffi_error_status(err), s);
    CHECK(wsffi_error_message(err) != NULL && strlen(wsffi_error_message(err)) > 0);
    /* The message stays the same pointer until freed. */
    CHECK(wsffi_error_message(err) == wsffi_error_message(err));
    wsffi_error_free(err);

    /* Without out_err the same status comes back. */
    CHECK_STATUS(wsffi_listen(r, "not an address", NULL, &l, NULL), s);

    /* Address in use: bind a port ourselves, then ask wsffi to listen on it. */
    uint16_t port = 0;
    int fd = tu_tcp_listen(&port, 4);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    err = NULL;
    CHECK_STATUS(wsffi_listen(r, addr, NULL, &l, &err), WSFFI_STATUS_ERR_ADDRESS_IN_USE);
    REQUIRE(err != NULL);
    CHECK_STATUS(wsffi_error_status(err), WSFFI_STATUS_ERR_ADDRESS_IN_USE);
    CHECK(strlen(wsffi_error_message(err)) > 0);
    wsffi_error_free(err);
    close(fd);

    /* A bad URL: INVALID_URL with a message naming the problem. */
    wsffi_conn *conn = (wsffi_conn *)(uintptr_t)0x1;
    err = NULL;
    CHECK_STATUS(wsffi_connect(r, "ftp://127.0.0.1/", NULL, NULL, NULL, NULL, &conn, &err), WSFFI_STATUS_ERR_INVALID_URL);
    CHECK(conn == (wsffi_conn *)(uintptr_t)0x1);
    REQUIRE(err != NULL);
    CHECK_STATUS(wsffi_error_status(err), WSFFI_STATUS_ERR_INVALID_URL);
    CHECK(strlen(wsffi_error_message(err)) > 0);
    wsffi_error_free(err);

    /* Success leaves out_err alone. */
    err = NULL;
    wsffi_listener *ok = NULL;
    CHECK_OK(wsffi_listen(r, "127.0.0.1:0", NULL, &ok, &err));
    CHECK(err == NULL);
    CHECK(ok != NULL);
    CHECK_OK(wsffi_listener_close(ok));

    tu_reactor_free(r);
}

/* ---- option objects ------------------------------------------------------------------ */

TEST(client_options) {
    wsffi_client_options *o = wsffi_client_options_new();
    REQUIRE(o != NULL);

    CHECK_OK(wsffi_client_options_add_protocol(o, "chat"));
    CHECK_OK(wsffi_client_options_add_protocol(o, "v2.chat"));
    CHECK_STATUS(wsffi_client_options_add_protocol(o, "chat"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_protocol(o, ""), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_protocol(o, "two words"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_protocol(o, "a,b"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_protocol(o, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    CHECK_OK(wsffi_client_options_add_header(o, "X-Custom", "value with spaces"));
    CHECK_OK(wsffi_client_options_add_header(o, "Authorization", "Bearer abc"));
    CHECK_STATUS(wsffi_client_options_add_header(o, "Bad Name", "v"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_header(o, "", "v"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_header(o, "X:Colon", "v"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_header(o, "X-A", "line\r\nInjected: 1"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_header(o, "X-A", "nul\x01"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    /* Written by the library, or framing for content after the GET; any case. */
    const char *reserved[] = {"Host",           "upgrade",           "CONNECTION",
                              "Sec-WebSocket-Key", "sec-websocket-version", "Content-Length",
                              "transfer-encoding", "Sec-WebSocket-Extensions", "SEC-WEBSOCKET-PROTOCOL"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (!CHECK_STATUS(wsffi_client_options_add_header(o, reserved[i], "x"), WSFFI_STATUS_ERR_INVALID_PARAMETER)) {
            fprintf(stderr, "  (header %s)\n", reserved[i]);
        }
    }
    CHECK_STATUS(wsffi_client_options_add_header(o, NULL, "v"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_header(o, "X-A", NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    CHECK_OK(wsffi_client_options_set_origin(o, "http://example.com"));
    CHECK_STATUS(wsffi_client_options_set_origin(o, "bad\r\norigin"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_origin(o, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    CHECK_STATUS(wsffi_client_options_set_connect_timeout_ms(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_connect_timeout_ms(o, 1));
    CHECK_STATUS(wsffi_client_options_set_handshake_timeout_ms(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_handshake_timeout_ms(o, 5000));
    CHECK_STATUS(wsffi_client_options_set_max_payload(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_max_payload(o, 1));
    CHECK_STATUS(wsffi_client_options_set_max_fragments(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_max_fragments(o, 1));
    CHECK_OK(wsffi_client_options_set_ping_interval_ms(o, 0)); /* 0 = off */
    CHECK_OK(wsffi_client_options_set_ping_interval_ms(o, 1000));
    CHECK_OK(wsffi_client_options_set_idle_timeout_ms(o, 0)); /* 0 = off */
    CHECK_OK(wsffi_client_options_set_idle_timeout_ms(o, 1000));
    CHECK_STATUS(wsffi_client_options_set_close_timeout_ms(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_close_timeout_ms(o, 100));
    CHECK_STATUS(wsffi_client_options_set_water_marks(o, 1000, 2000), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_water_marks(o, 2000, 1000));
    CHECK_OK(wsffi_client_options_set_water_marks(o, 2000, 2000));
    CHECK_STATUS(wsffi_client_options_set_max_header_bytes(o, 255), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_max_header_bytes(o, 256));

    /* NULL options. */
    CHECK_STATUS(wsffi_client_options_add_protocol(NULL, "chat"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_add_header(NULL, "X-A", "b"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_origin(NULL, "http://a"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_connect_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_handshake_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_max_payload(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_max_fragments(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_ping_interval_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_idle_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_close_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_water_marks(NULL, 2, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_max_header_bytes(NULL, 4096), WSFFI_STATUS_ERR_NULL_PARAMETER);

    wsffi_client_options_free(o);
    wsffi_client_options_free(NULL);
}

TEST(server_options) {
    wsffi_server_options *o = wsffi_server_options_new();
    REQUIRE(o != NULL);
    CHECK_OK(wsffi_server_options_set_client_tracking(o, false));
    CHECK_OK(wsffi_server_options_set_client_tracking(o, true));
    CHECK_OK(wsffi_server_options_set_max_connections(o, 0)); /* 0 = no limit */
    CHECK_OK(wsffi_server_options_set_max_connections(o, 10));
    CHECK_OK(wsffi_server_options_add_allowed_origin(o, "http://example.com"));
    CHECK_OK(wsffi_server_options_add_allowed_origin(o, "https://example.org"));
    CHECK_STATUS(wsffi_server_options_add_allowed_origin(o, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_max_payload(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_options_set_max_payload(o, 1));
    CHECK_STATUS(wsffi_server_options_set_max_fragments(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_options_set_max_fragments(o, 2));
    CHECK_OK(wsffi_server_options_set_ping_interval_ms(o, 0));
    CHECK_OK(wsffi_server_options_set_ping_interval_ms(o, 500));
    CHECK_OK(wsffi_server_options_set_idle_timeout_ms(o, 0));
    CHECK_OK(wsffi_server_options_set_idle_timeout_ms(o, 500));
    CHECK_STATUS(wsffi_server_options_set_close_timeout_ms(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_options_set_close_timeout_ms(o, 500));
    CHECK_STATUS(wsffi_server_options_set_water_marks(o, 10, 11), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_options_set_water_marks(o, 11, 10));

    CHECK_STATUS(wsffi_server_options_set_client_tracking(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_max_connections(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_add_allowed_origin(NULL, "http://a"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_max_payload(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_max_fragments(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_ping_interval_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_idle_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_close_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_water_marks(NULL, 2, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    wsffi_server_options_free(o);
    wsffi_server_options_free(NULL);
}

TEST(listener_options) {
    wsffi_listener_options *o = wsffi_listener_options_new();
    REQUIRE(o != NULL);
    CHECK_STATUS(wsffi_listener_options_set_backlog(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_set_backlog(o, -1), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_listener_options_set_backlog(o, 1));
    CHECK_STATUS(wsffi_listener_options_set_max_header_bytes(o, 255), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_listener_options_set_max_header_bytes(o, 256));
    CHECK_STATUS(wsffi_listener_options_set_handshake_timeout_ms(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_listener_options_set_handshake_timeout_ms(o, 1));
    CHECK_OK(wsffi_listener_options_set_reuse_port(o, true));
    CHECK_OK(wsffi_listener_options_set_reuse_port(o, false));

    CHECK_STATUS(wsffi_listener_options_set_backlog(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_set_max_header_bytes(NULL, 4096), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_set_handshake_timeout_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_set_reuse_port(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    wsffi_listener_options_free(o);
    wsffi_listener_options_free(NULL);
}

/* SO_REUSEPORT: two listeners share one port. */
TEST(listener_reuse_port) {
    wsffi_reactor *r = tu_reactor_new();
    wsffi_listener_options *o = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_reuse_port(o, true));
    uint16_t port = 0;
    wsffi_listener *a = tu_listen(r, o, &port);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    wsffi_listener *b = NULL;
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listen(r, addr, o, &b, &err));
    wsffi_error_free(err);
    CHECK_EQ(wsffi_listener_port(b), port);
    /* Without SO_REUSEPORT the same port is in use. */
    wsffi_listener *c = NULL;
    CHECK_STATUS(wsffi_listen(r, addr, NULL, &c, NULL), WSFFI_STATUS_ERR_ADDRESS_IN_USE);
    wsffi_listener_options_free(o);
    CHECK_OK(wsffi_listener_close(a));
    CHECK_OK(wsffi_listener_close(b));
    tu_reactor_free(r);
}

static wsffi_status close_normal(wsffi_conn *conn) {
    return wsffi_close(conn, 1000, NULL, 0);
}

static wsffi_status retry_queue_full(wsffi_status (*fn)(wsffi_conn *), wsffi_conn *conn) {
    wsffi_status s = WSFFI_STATUS_ERR_QUEUE_FULL;
    for (int i = 0; i < 1000 && s == WSFFI_STATUS_ERR_QUEUE_FULL; i++) {
        s = fn(conn);
        if (s == WSFFI_STATUS_ERR_QUEUE_FULL) {
            tu_sleep_ms(1);
        }
    }
    return s;
}

TEST(reactor_options) {
    wsffi_reactor_options *o = wsffi_reactor_options_new();
    REQUIRE(o != NULL);
    CHECK_STATUS(wsffi_reactor_options_set_max_queued_commands(o, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_reactor_options_set_max_queued_commands(o, 1));
    CHECK_OK(wsffi_reactor_options_set_shutdown_grace_ms(o, 0));
    CHECK_OK(wsffi_reactor_options_set_shutdown_grace_ms(o, 100));
    CHECK_STATUS(wsffi_reactor_options_set_max_queued_commands(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_options_set_shutdown_grace_ms(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);

    /* The reactor copies its options: freeing them right away is fine. */
    wsffi_reactor *r = tu_reactor_new_opts(o);
    wsffi_reactor_options_free(o);
    wsffi_reactor_options_free(NULL);
    CHECK_STATUS(wsffi_reactor_new(NULL, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    /* A queue of one command: sends from this thread either go through or report
     * QUEUE_FULL; every accepted one arrives, in order. */
    tu_server_fx fx;
    tu_fx_init(&fx, "server");
    fx.echo = false;
    uint16_t port = 0;
    wsffi_listener *l = tu_listen(r, NULL, &port);
    wsffi_server *srv = tu_attach(r, l, "/", NULL, NULL, &fx);
    tu_rec client;
    tu_rec_init(&client, "client");
    tu_url url = tu_make_url(port, "/");
    wsffi_conn *conn = tu_open(r, url.s, NULL, &client);
    int accepted = 0;
    int full = 0;
    for (int i = 0; i < 2000; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d", accepted);
        wsffi_status s = wsffi_send_text(conn, msg, (size_t)n);
        if (s == WSFFI_STATUS_OK) {
            accepted++;
        } else if (s == WSFFI_STATUS_ERR_QUEUE_FULL) {
            full++;
        } else {
            CHECK_OK(s);
            break;
        }
    }
    printf("max_queued_commands=1: %d sends accepted, %d QUEUE_FULL\n", accepted, full);
    WAIT_UNTIL(fx.connections == 1 && fx.conns[0].messages == accepted, TU_WAIT_MS);
    TU_LOCK();
    for (int i = 0; i < accepted && i < TU_LOG_MAX; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d", i);
        if (strcmp(fx.conns[0].log[i], want) != 0) {
            tu_fail(__FILE__, __LINE__, "message %d is \"%s\"", i, fx.conns[0].log[i]);
            break;
        }
    }
    TU_UNLOCK();

    /* Shutdown grace 100 ms: freeing the reactor does not wait for the default 2 s when
     * the peer never answers the close (the server conn is paused, so it reads nothing). */
    CHECK_OK(retry_queue_full(wsffi_conn_pause, fx.conns[0].retained));
    tu_sleep_ms(50);
    wsffi_reactor_options *o2 = wsffi_reactor_options_new();
    CHECK_OK(wsffi_reactor_options_set_shutdown_grace_ms(o2, 100));
    wsffi_reactor *r2 = tu_reactor_new_opts(o2);
    wsffi_reactor_options_free(o2);
    tu_rec c2;
    tu_rec_init(&c2, "client2");
    wsffi_conn *conn2 = tu_open(r2, url.s, NULL, &c2);
    WAIT_UNTIL(fx.connections == 2 && fx.conns[1].opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_conn_pause(fx.conns[1].retained));
    tu_sleep_ms(50);
    int64_t t0 = tu_now_ms();
    tu_reactor_free(r2);
    int64_t dt = tu_now_ms() - t0;
    CHECK(dt < 1500 * tu_slow);
    CHECK_EQ(c2.closes, 1);
    CHECK_EQ(c2.destroys, 1);
    /* Our 1001 went unanswered: not clean, no peer close frame. */
    CHECK_EQ(c2.close_code, WSFFI_CLOSE_GOING_AWAY);
    CHECK_EQ(c2.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(c2.peer_close_code, 0);
    CHECK(!c2.was_clean);
    wsffi_conn_release(conn2);
    tu_rec_free(&c2);

    /* With a queue of one, back-to-back calls may find it full: retry those. */
    CHECK_OK(retry_queue_full(wsffi_conn_resume, fx.conns[0].retained));
    CHECK_OK(retry_queue_full(wsffi_conn_resume, fx.conns[1].retained));
    CHECK_OK(retry_queue_full(close_normal, conn));
    WAIT_UNTIL(client.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    CHECK_OK(wsffi_listener_close(l));
    CHECK_OK(wsffi_server_close(srv));
    WAIT_UNTIL(fx.closes == 1 && fx.destroys == 1, TU_WAIT_MS);
    tu_reactor_free(r);
    TU_REC_DONE(&client);
    for (int i = 0; i < fx.connections; i++) {
        TU_REC_DONE(&fx.conns[i]);
    }
}

/* ---- NULL arguments everywhere ------------------------------------------------------- */

static int null_destroys;
static void null_destroy(void *user) {
    CHECK(user == &null_destroys);
    null_destroys++;
}

static void null_visit(void *user, wsffi_conn *conn) {
    (void)user;
    (void)conn;
}

static bool fd_is_closed(int fd) {
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

TEST(null_args) {
    const uint8_t data[4] = {1, 2, 3, 4};
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    wsffi_reactor *r = tu_reactor_new();
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);

    /* wsffi_connect: every NULL is refused, and destroy still runs exactly once, before
     * the call returns. */
    null_destroys = 0;
    CHECK_STATUS(wsffi_connect(NULL, "ws://127.0.0.1:1/", NULL, &cbs, &null_destroys, null_destroy, &conn, &err),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(null_destroys, 1);
    CHECK(conn == NULL);
    wsffi_error_free(err);
    err = NULL;
    CHECK_STATUS(wsffi_connect(r, NULL, NULL, &cbs, &null_destroys, null_destroy, &conn, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(null_destroys, 2);
    CHECK_STATUS(wsffi_connect(r, "ws://127.0.0.1:1/", NULL, &cbs, &null_destroys, null_destroy, NULL, NULL),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(null_destroys, 3);
    CHECK(conn == NULL);

    /* Connection functions. */
    CHECK_STATUS(wsffi_send(NULL, WSFFI_TEXT, data, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_send_text(NULL, "a", 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_send_binary(NULL, data, 4), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_send_fragment(NULL, WSFFI_BINARY, data, 4, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_ping(NULL, data, 4), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_pong(NULL, data, 4), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_close(NULL, 1000, "", 0), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_terminate(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_pause(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_resume(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_set_callbacks(NULL, &cbs, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(wsffi_ready_state(NULL), WSFFI_CLOSED);
    CHECK_EQ(wsffi_buffered_amount(NULL), 0);
    /* Connection strings are "" (static) for NULL, as documented. */
    CHECK_EMPTY_STR(wsffi_protocol(NULL));
    CHECK_EMPTY_STR(wsffi_extensions(NULL));
    CHECK_EMPTY_STR(wsffi_remote_address(NULL));
    CHECK_EMPTY_STR(wsffi_url(NULL));
    CHECK(wsffi_conn_user_data(NULL) == NULL);
    CHECK(wsffi_conn_retain(NULL) == NULL);
    wsffi_conn_release(NULL);

    /* Errors, options: see their own cases; frees of NULL are no-ops. */
    wsffi_error_free(NULL);
    wsffi_client_options_free(NULL);
    wsffi_server_options_free(NULL);
    wsffi_listener_options_free(NULL);
    wsffi_reactor_options_free(NULL);
    CHECK_OK(wsffi_reactor_free(NULL));

    /* Reactor and listeners. */
    wsffi_reactor *rr = (wsffi_reactor *)(uintptr_t)0x1;
    CHECK_STATUS(wsffi_reactor_new(NULL, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    wsffi_listener *l = NULL;
    CHECK_STATUS(wsffi_listen(NULL, "127.0.0.1:0", NULL, &l, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_listen(r, NULL, NULL, &l, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_listen(r, "127.0.0.1:0", NULL, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(l == NULL);
    (void)rr;

    /* adopt_fd: the fd is owned by the library also on error (closed). */
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK_STATUS(wsffi_listener_adopt_fd(NULL, p[0], NULL, &l, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(fd_is_closed(p[0]));
    CHECK_STATUS(wsffi_listener_adopt_fd(r, p[1], NULL, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(fd_is_closed(p[1]));
    CHECK(l == NULL);
    CHECK_EQ(wsffi_listener_port(NULL), 0);
    CHECK_EMPTY_STR(wsffi_listener_address(NULL));
    CHECK_STATUS(wsffi_listener_set_http_handler(NULL, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_OK(wsffi_listener_close(NULL));

    /* Servers: destroy runs once when attach fails. */
    wsffi_server *srv = NULL;
    wsffi_server_callbacks scbs;
    wsffi_server_callbacks_init(&scbs, sizeof scbs);
    null_destroys = 0;
    CHECK_STATUS(wsffi_server_attach(NULL, NULL, "/", NULL, &scbs, &null_destroys, null_destroy, &srv, NULL),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(null_destroys, 1);
    CHECK_STATUS(wsffi_server_attach(r, NULL, "/", NULL, &scbs, &null_destroys, null_destroy, NULL, NULL),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(null_destroys, 2);
    CHECK(srv == NULL);
    REQUIRE(pipe(p) == 0);
    close(p[1]);
    CHECK_STATUS(wsffi_server_handle_upgrade(NULL, p[0], data, 4), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(fd_is_closed(p[0]));
    CHECK_EMPTY_STR(wsffi_server_path(NULL));
    CHECK_EQ(wsffi_server_client_count(NULL), 0);
    CHECK_STATUS(wsffi_server_clients(NULL, null_visit, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    size_t sent = 77;
    CHECK_STATUS(wsffi_server_broadcast(NULL, WSFFI_TEXT, data, 1, &sent), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(sent, 77);
    CHECK_OK(wsffi_server_close(NULL));

    /* A standalone server to check NULL visit / data with a live handle. */
    tu_server_fx fx;
    tu_fx_init(&fx, "standalone");
    srv = tu_attach(r, NULL, NULL, NULL, NULL, &fx);
    CHECK_STR(wsffi_server_path(srv), "/");
    CHECK_STATUS(wsffi_server_clients(srv, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_broadcast(srv, WSFFI_BINARY, NULL, 3, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_handle_upgrade(srv, -1, data, 4), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_close(srv));
    WAIT_UNTIL(fx.closes == 1 && fx.destroys == 1, TU_WAIT_MS);

    /* Handshakes, plain HTTP answers, request and response views. */
    CHECK(wsffi_handshake_request(NULL) == NULL);
    CHECK_STATUS(wsffi_handshake_add_header(NULL, "X-A", "b"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_handshake_set_reject(NULL, 403, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_handshake_accept(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_handshake_reject(NULL, 403, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_http_response_set_status(NULL, 200, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_http_response_add_header(NULL, "X-A", "b"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_http_response_set_body(NULL, data, 4), WSFFI_STATUS_ERR_NULL_PARAMETER);

    /* View getters return NULL for a NULL view, never a pointer to nothing. */
    CHECK(wsffi_request_method(NULL) == NULL);
    CHECK(wsffi_request_url(NULL) == NULL);
    CHECK(wsffi_request_path(NULL) == NULL);
    CHECK(wsffi_request_query_string(NULL) == NULL);
    CHECK(wsffi_request_http_version(NULL) == NULL);
    CHECK(wsffi_request_remote_address(NULL) == NULL);
    CHECK(wsffi_request_tls_subject(NULL) == NULL);
    CHECK(wsffi_request_host(NULL) == NULL);
    CHECK(wsffi_request_query(NULL, "a") == NULL);
    CHECK(wsffi_request_header(NULL, "host") == NULL);
    CHECK(!wsffi_request_has_header(NULL, "host"));
    CHECK_EQ(wsffi_request_header_count(NULL), 0);
    const char *name = "untouched";
    const char *value = "untouched";
    /* A failed lookup sets both outputs to NULL; a NULL output is refused. */
    CHECK_STATUS(wsffi_request_header_at(NULL, 0, &name, &value), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(name == NULL && value == NULL);
    CHECK_STATUS(wsffi_request_header_at(NULL, 0, NULL, &value), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(wsffi_request_copy(NULL) == NULL);
    wsffi_request_free(NULL);

    CHECK_EQ(wsffi_response_status(NULL), 0);
    CHECK(wsffi_response_reason(NULL) == NULL);
    CHECK(wsffi_response_header(NULL, "x") == NULL);
    CHECK_EQ(wsffi_response_header_count(NULL), 0);
    name = value = "untouched";
    CHECK_STATUS(wsffi_response_header_at(NULL, 0, &name, &value), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(name == NULL && value == NULL);
    size_t blen = 99;
    CHECK(wsffi_response_body(NULL, &blen) == NULL);
    CHECK_EQ(blen, 0);
    CHECK(wsffi_response_body(NULL, NULL) == NULL);
    CHECK_EMPTY_STR(wsffi_error_message(NULL));
    CHECK_STATUS(wsffi_error_status(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    tu_reactor_free(r);
}

TU_MAIN(TU_CASE(version), TU_CASE(status_str), TU_CASE(error_objects), TU_CASE(client_options), TU_CASE(server_options),
        TU_CASE(listener_options), TU_CASE(listener_reuse_port), TU_CASE(reactor_options), TU_CASE(null_args))
