/*
 * test_timeouts: handshake timeouts (listener and client), connect timeout, automatic ping
 * (keep-alive and dead peers), idle timeout and close timeout, with small values.
 */
#include "testutil.h"

/* Lower and upper bounds of an elapsed time (upper bounds scale under valgrind). */
#define CHECK_ELAPSED(ms, lo, hi)                                      \
    do {                                                               \
        long long tu_e_ = (long long)(ms);                             \
        if (tu_e_ < (lo) || tu_e_ > (long long)(hi) * tu_slow) {       \
            tu_fail(__FILE__, __LINE__, "took %lld ms, expected %d..%d", tu_e_, (int)(lo), (int)(hi) * tu_slow); \
        }                                                              \
    } while (0)

/* ---- handshake timeouts -------------------------------------------------------------- */

TEST(listener_handshake_timeout) {
    wsffi_listener_options *lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_handshake_timeout_ms(lo, 150));
    tu_env env;
    tu_env_start_with(&env, "/", lo, NULL, NULL);
    wsffi_listener_options_free(lo);

    /* Sends nothing at all. */
    int64_t t0 = tu_now_ms();
    int silent = tu_tcp_connect(env.port);
    /* Sends half a request head. */
    int slow = tu_tcp_connect(env.port);
    tu_send_str(slow, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");

    WAIT_UNTIL(env.fx.client_errors == 2, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 140, 3000);
    CHECK_STATUS(env.fx.client_error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK(strlen(env.fx.client_error_message) > 0);
    /* Both sockets were dropped by the server. */
    char buf[256];
    bool eof = false;
    tu_recv_to_eof(silent, buf, sizeof buf, TU_WAIT_MS, &eof);
    CHECK(eof);
    tu_recv_to_eof(slow, buf, sizeof buf, TU_WAIT_MS, &eof);
    CHECK(eof);
    close(silent);
    close(slow);
    /* A prompt client is unaffected. */
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    tu_sleep_ms(300);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_OPEN);
    CHECK_EQ(LOCKED_INT(env.fx.client_errors), 2);
    CHECK_EQ(LOCKED_INT(env.fx.connections), 1);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* A listening socket that never accepts: TCP connects (the kernel completes it), but no
 * answer to the upgrade ever comes. */
TEST(client_handshake_timeout) {
    uint16_t port = 0;
    int lfd = tu_tcp_listen(&port, 16);
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_handshake_timeout_ms(o, 150));
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(port, "/");
    int64_t t0 = tu_now_ms();
    wsffi_conn *conn = tu_connect(r, u.s, o, &c);
    wsffi_client_options_free(o);
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 140, 3000);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_STATUS(c.error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c.was_clean);
    TU_UNLOCK();
    tu_reactor_free(r);
    close(lfd);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* A listener with a backlog of 0 whose queue is already full: SYNs are dropped, so the TCP
 * connect itself never completes. */
TEST(client_connect_timeout) {
    uint16_t port = 0;
    int lfd = tu_tcp_listen(&port, 0);
    int filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(filler, (struct sockaddr *)&sa, sizeof sa);
    struct pollfd pf = {filler, POLLOUT, 0};
    CHECK(poll(&pf, 1, 1000) == 1);
    /* Check that the trick works on this kernel: one more connect stays pending. */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    connect(probe, (struct sockaddr *)&sa, sizeof sa);
    struct pollfd pp = {probe, POLLOUT, 0};
    bool pending = poll(&pp, 1, 200) == 0;
    close(probe);
    if (!pending) {
        printf("SKIP: a full accept queue does not block connects here\n");
        close(filler);
        close(lfd);
        return;
    }

    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_connect_timeout_ms(o, 150));
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(port, "/");
    int64_t t0 = tu_now_ms();
    wsffi_conn *conn = tu_connect(r, u.s, o, &c);
    wsffi_client_options_free(o);
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    /* Well before the 10 s default handshake timeout. */
    CHECK_ELAPSED(tu_now_ms() - t0, 140, 3000);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_STATUS(c.error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    TU_UNLOCK();
    tu_reactor_free(r);
    close(filler);
    close(lfd);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- automatic ping ------------------------------------------------------------------ */

/* The server pings a raw client that never answers (and never reads): after the interval a
 * ping goes out, after another interval without input the connection is dropped. */
TEST(server_ping_drops_dead_client) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_ping_interval_ms(so, 100));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    int fd = tu_tcp_connect(env.port);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    int64_t t0 = tu_now_ms();
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 150, 3000);
    tu_rec *srv = &env.fx.conns[0];
    TU_LOCK();
    CHECK_EQ(srv->errors_at_close, 1);
    CHECK_STATUS(srv->error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_EQ(srv->close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!srv->was_clean);
    TU_UNLOCK();
    /* What the raw client got: a ping frame, then the end of the stream. */
    uint8_t buf[512];
    bool eof = false;
    size_t n = tu_recv_to_eof(fd, (char *)buf, sizeof buf, TU_WAIT_MS, &eof);
    CHECK(eof);
    CHECK(n >= 2 && buf[0] == 0x89);
    close(fd);
    tu_env_stop(&env);
}

/* A client with a ping interval keeps a quiet connection alive: the server answers. */
TEST(client_ping_keepalive) {
    tu_env env;
    tu_env_start(&env, "/");
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_ping_interval_ms(o, 100));
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, o, &c);
    wsffi_client_options_free(o);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].pings >= 3 && c.pongs >= 3, TU_WAIT_MS);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_OPEN);
    CHECK_EQ(LOCKED_INT(c.errors), 0);
    CHECK_EQ(LOCKED_INT(c.closes), 0);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* The server connection is paused, so it answers no ping: the client gives up. */
TEST(client_ping_timeout) {
    tu_env env;
    tu_env_start(&env, "/");
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_ping_interval_ms(o, 100));
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, o, &c);
    wsffi_client_options_free(o);
    WAIT_UNTIL(env.fx.connections == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_conn_pause(env.fx.conns[0].retained));
    int64_t t0 = tu_now_ms();
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 100, 3000);
    TU_LOCK();
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_STATUS(c.error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c.was_clean);
    TU_UNLOCK();
    CHECK_OK(wsffi_conn_resume(env.fx.conns[0].retained));
    WAIT_UNTIL(env.fx.conns[0].closes == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- idle timeout -------------------------------------------------------------------- */

TEST(client_idle_timeout) {
    tu_env env;
    tu_env_start(&env, "/");
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_idle_timeout_ms(o, 300));
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, o, &c);
    wsffi_client_options_free(o);
    /* Traffic (the echoes are input) keeps it open past the timeout. */
    int64_t t0 = tu_now_ms();
    for (int i = 0; i < 6; i++) {
        CHECK_OK(wsffi_send_text(conn, "tick", 4));
        tu_sleep_ms(100);
    }
    CHECK(tu_now_ms() - t0 >= 600);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_OPEN);
    /* Then silence: closed with 1001 after 300 ms, a clean close on both sides. */
    t0 = tu_now_ms();
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 150, 3000);
    WAIT_UNTIL(env.fx.conns[0].closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.messages, 6);
    CHECK_EQ(env.fx.conns[0].close_code, WSFFI_CLOSE_GOING_AWAY);
    CHECK(env.fx.conns[0].was_clean);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_GOING_AWAY);
    CHECK(c.was_clean);
    TU_UNLOCK();
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(server_idle_timeout) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_idle_timeout_ms(so, 150));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    int64_t t0 = tu_now_ms();
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 140, 3000);
    TU_LOCK();
    CHECK_EQ(c.close_code, WSFFI_CLOSE_GOING_AWAY);
    CHECK(c.was_clean);
    TU_UNLOCK();
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- close timeout ------------------------------------------------------------------- */

/* The peer never answers the close frame (its connection is paused): after the close
 * timeout the connection is dropped: a timeout error, then our close reported as not
 * clean, without a peer close frame. */
TEST(client_close_timeout) {
    tu_env env;
    tu_env_start(&env, "/");
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_close_timeout_ms(o, 150));
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, o, &c);
    wsffi_client_options_free(o);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_conn_pause(env.fx.conns[0].retained));
    tu_sleep_ms(20);
    int64_t t0 = tu_now_ms();
    CHECK_OK(wsffi_close(conn, 1000, "bye", 3));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 140, 3000);
    TU_LOCK();
    CHECK_EQ(c.close_code, 1000);
    CHECK_STR(c.close_reason, "bye");
    CHECK_EQ(c.close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK(c.peer_close_code == 0 && c.peer_reason_null);
    CHECK_EQ(c.local_close_code, 1000);
    CHECK(!c.was_clean);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_EQ(c.error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_STR(c.error_message, "close handshake timed out");
    TU_UNLOCK();
    CHECK_OK(wsffi_conn_resume(env.fx.conns[0].retained));
    WAIT_UNTIL(env.fx.conns[0].closes == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(server_close_timeout) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_close_timeout_ms(so, 150));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_conn_pause(conn));
    tu_sleep_ms(20);
    tu_rec *srv = &env.fx.conns[0];
    int64_t t0 = tu_now_ms();
    CHECK_OK(wsffi_close(srv->retained, 4002, NULL, 0));
    WAIT_UNTIL(srv->closes == 1, TU_WAIT_MS);
    CHECK_ELAPSED(tu_now_ms() - t0, 140, 3000);
    TU_LOCK();
    CHECK_EQ(srv->close_code, 4002);
    CHECK_EQ(srv->close_origin, WSFFI_CLOSE_ORIGIN_LOCAL);
    CHECK_EQ(srv->peer_close_code, 0);
    CHECK(!srv->was_clean);
    CHECK_EQ(srv->error_status, WSFFI_STATUS_ERR_TIMEOUT);
    TU_UNLOCK();
    CHECK_OK(wsffi_conn_resume(conn));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TU_MAIN(TU_CASE(listener_handshake_timeout), TU_CASE(client_handshake_timeout), TU_CASE(client_connect_timeout),
        TU_CASE(server_ping_drops_dead_client), TU_CASE(client_ping_keepalive), TU_CASE(client_ping_timeout),
        TU_CASE(client_idle_timeout), TU_CASE(server_idle_timeout), TU_CASE(client_close_timeout),
        TU_CASE(server_close_timeout))
