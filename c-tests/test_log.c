/*
 * test_log: wsffi_set_log_callback. Levels filter records; protocol errors carry the close
 * code, refusals their reason, timeouts and TLS failures are named; close records at debug;
 * a log function may call back into the library; destroy runs once on replace and off.
 */
#include "testutil.h"

#define LOG_MAX 256

typedef struct log_rec {
    int count;
    uint32_t levels[LOG_MAX];
    char lines[LOG_MAX][256];
    int destroys;
    bool bad_level;
    bool turn_off_on_first; /* the log function turns the log off from inside itself */
    wsffi_status turn_off_status;
} log_rec;

static log_rec g_log;

static void on_log(uint32_t level, const char *message, void *user) {
    log_rec *l = user;
    CHECK(message != NULL);
    /* Callbacks may call into the library. */
    CHECK(wsffi_status_str(WSFFI_STATUS_OK)[0] != '\0');
    TU_LOCK();
    if (level < WSFFI_LOG_ERROR || level > WSFFI_LOG_DEBUG) {
        l->bad_level = true;
    }
    if (l->count < LOG_MAX) {
        l->levels[l->count] = level;
        snprintf(l->lines[l->count], sizeof l->lines[0], "%s", message);
    }
    l->count++;
    bool off = l->turn_off_on_first && l->count == 1;
    TU_UNLOCK_SIGNAL();
    if (off) {
        wsffi_status s = wsffi_set_log_callback(WSFFI_LOG_OFF, NULL, NULL, NULL);
        TU_LOCK();
        l->turn_off_status = s;
        TU_UNLOCK_SIGNAL();
    }
}

static void log_destroy(void *user) {
    log_rec *l = user;
    TU_LOCK();
    l->destroys++;
    TU_UNLOCK_SIGNAL();
}

/* Index of the first record at `level` containing all of `a` and `b` (NULL: any), or -1.
 * Called with the lock held. */
static int find_line(const log_rec *l, uint32_t level, const char *a, const char *b) {
    for (int i = 0; i < l->count && i < LOG_MAX; i++) {
        if (l->levels[i] == level && strstr(l->lines[i], a) && (!b || strstr(l->lines[i], b))) {
            return i;
        }
    }
    return -1;
}

static bool has_line(uint32_t level, const char *a, const char *b) {
    return find_line(&g_log, level, a, b) >= 0;
}

static void dump_log(void) {
    TU_LOCK();
    for (int i = 0; i < g_log.count && i < LOG_MAX; i++) {
        fprintf(stderr, "  log[%d] level %u: %s\n", i, (unsigned)g_log.levels[i], g_log.lines[i]);
    }
    TU_UNLOCK();
}

static void log_on(uint32_t level) {
    memset(&g_log, 0, sizeof g_log);
    CHECK_OK(wsffi_set_log_callback(level, on_log, &g_log, log_destroy));
}

static void log_off(void) {
    CHECK_OK(wsffi_set_log_callback(WSFFI_LOG_OFF, NULL, NULL, NULL));
    CHECK_EQ(LOCKED_INT(g_log.destroys), 1);
    CHECK(!g_log.bad_level);
}

/* Upgrades a raw TCP connection and sends an unmasked frame: the server fails it with 1002. */
TEST(protocol_error_is_a_warning_with_its_close_code) {
    log_on(WSFFI_LOG_WARN);
    tu_env env;
    tu_env_start(&env, "/");
    int fd = tu_tcp_connect(env.port);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    tu_send_all(fd, "\x81\x02hi", 4);
    bool eof = false;
    char rest[512];
    tu_recv_to_eof(fd, rest, sizeof rest, TU_WAIT_MS, &eof);
    CHECK(eof);
    /* The server waits for our end of TCP before it lets the connection go. */
    close(fd);
    bool ok;
    WAIT_FOR(ok, has_line(WSFFI_LOG_WARN, "server connection from 127.0.0.1:", "closing with 1002"), TU_WAIT_MS);
    if (!ok) {
        dump_log();
    }
    CHECK(ok);
    /* Records more detailed than the level are not delivered. */
    TU_LOCK();
    for (int i = 0; i < g_log.count && i < LOG_MAX; i++) {
        CHECK(g_log.levels[i] <= WSFFI_LOG_WARN);
    }
    TU_UNLOCK();
    tu_env_stop(&env);
    log_off();
}

TEST(info_names_opens_and_refusals) {
    log_on(WSFFI_LOG_INFO);
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_add_allowed_origin(so, "http://good.example"));
    tu_env env;
    tu_env_start_with(&env, "/chat", NULL, so, NULL);
    wsffi_server_options_free(so);
    tu_url u = tu_make_url(env.port, "/chat");

    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_origin(o, "http://good.example"));
    tu_rec good;
    tu_rec_init(&good, "good");
    wsffi_conn *c = tu_open(env.reactor, u.s, o, &good);
    CHECK_OK(wsffi_client_options_set_origin(o, "http://evil.example"));
    tu_rec bad;
    tu_rec_init(&bad, "bad");
    wsffi_conn *cbad = tu_connect(env.reactor, u.s, o, &bad);
    wsffi_client_options_free(o);
    WAIT_UNTIL(bad.closes == 1, TU_WAIT_MS);

    bool ok;
    char client[300];
    snprintf(client, sizeof client, "client \"%s\": open", u.s);
    WAIT_FOR(ok, has_line(WSFFI_LOG_INFO, client, NULL) && has_line(WSFFI_LOG_INFO, "server connection from 127.0.0.1:", ": open") &&
                     has_line(WSFFI_LOG_INFO, "server at \"/chat\": refused a client", "origin not allowed") &&
                     has_line(WSFFI_LOG_WARN, "client \"", "403"),
             TU_WAIT_MS);
    if (!ok) {
        dump_log();
    }
    CHECK(ok);
    CHECK(!LOCKED_INT(has_line(WSFFI_LOG_DEBUG, "", NULL)));
    CHECK_OK(wsffi_close(c, 1000, NULL, 0));
    wsffi_conn_release(c);
    wsffi_conn_release(cbad);
    TU_REC_DONE(&good);
    TU_REC_DONE(&bad);
    tu_env_stop(&env);
    log_off();
}

TEST(debug_reports_every_close) {
    log_on(WSFFI_LOG_DEBUG);
    tu_env env;
    tu_env_start(&env, "/");
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    CHECK_OK(wsffi_close(conn, 4001, "bye\nnow", 7));
    wsffi_conn_release(conn);
    TU_REC_DONE(&c);
    bool ok;
    /* The reason is quoted with its newline escaped: one record stays one line. */
    WAIT_FOR(ok, has_line(WSFFI_LOG_DEBUG, "client \"", "closed with 4001 \"bye\\nnow\" (closed first here, clean)") &&
                     has_line(WSFFI_LOG_DEBUG, "server connection from", "closed with 4001 \"bye\\nnow\" (the peer closed first, clean)"),
             TU_WAIT_MS);
    if (!ok) {
        dump_log();
    }
    CHECK(ok);
    /* A plain HTTP request gets an answer, logged with its status. */
    int fd = tu_tcp_connect(env.port);
    tu_send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    char head[1024];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 426);
    WAIT_FOR(ok, has_line(WSFFI_LOG_DEBUG, "answered 426", NULL), TU_WAIT_MS);
    CHECK(ok);
    close(fd);
    /* Its end is logged with the address accept gave, though the peer has gone by then. */
    WAIT_FOR(ok, has_line(WSFFI_LOG_DEBUG, "server connection from 127.0.0.1:", "closed with 1006"), TU_WAIT_MS);
    if (!ok) {
        dump_log();
    }
    CHECK(ok);
    tu_env_stop(&env);
    log_off();
}

TEST(timeouts_and_tls_failures_are_named) {
    log_on(WSFFI_LOG_INFO);
    wsffi_listener_options *lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_handshake_timeout_ms(lo, 100));
    tu_env env;
    tu_env_start_with(&env, "/", lo, NULL, NULL);
    wsffi_listener_options_free(lo);
    /* A peer that connects and says nothing. */
    int fd = tu_tcp_connect(env.port);
    bool ok;
    WAIT_FOR(ok, has_line(WSFFI_LOG_INFO, "server connection from 127.0.0.1:", "timed out"), TU_WAIT_MS);
    if (!ok) {
        dump_log();
    }
    CHECK(ok);
    close(fd);
    tu_env_stop(&env);
    /* wss:// to a peer that answers in plain text: the client's TLS handshake fails. */
    uint16_t port = 0;
    int lfd = tu_tcp_listen(&port, 4);
    char url[128];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)port);
    wsffi_reactor *r = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "tls client");
    wsffi_conn *conn = tu_connect(r, url, NULL, &c);
    int peer = accept(lfd, NULL, NULL);
    CHECK(peer >= 0);
    tu_send_str(peer, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    WAIT_FOR(ok, has_line(WSFFI_LOG_WARN, "client \"wss://127.0.0.1:", "Tls"), TU_WAIT_MS);
    if (!ok) {
        dump_log();
    }
    CHECK(ok);
    wsffi_conn_release(conn);
    TU_REC_DONE(&c);
    tu_reactor_free(r);
    close(peer);
    close(lfd);
    log_off();
}

TEST(log_function_may_turn_the_log_off_from_inside) {
    memset(&g_log, 0, sizeof g_log);
    g_log.turn_off_on_first = true;
    CHECK_OK(wsffi_set_log_callback(WSFFI_LOG_DEBUG, on_log, &g_log, log_destroy));
    tu_env env;
    tu_env_start(&env, "/");
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    WAIT_UNTIL(g_log.destroys == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    wsffi_conn_release(conn);
    TU_REC_DONE(&c);
    tu_env_stop(&env);
    TU_LOCK();
    CHECK_EQ(g_log.count, 1);
    CHECK_STATUS(g_log.turn_off_status, WSFFI_STATUS_OK);
    CHECK_EQ(g_log.destroys, 1);
    TU_UNLOCK();
}

TEST(replacing_and_bad_calls) {
    log_rec a = {0}, b = {0}, c = {0};
    CHECK_OK(wsffi_set_log_callback(WSFFI_LOG_WARN, on_log, &a, log_destroy));
    CHECK_STATUS(wsffi_set_log_callback(WSFFI_LOG_DEBUG + 1, on_log, &c, log_destroy), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_EQ(c.destroys, 0);
    CHECK_EQ(a.destroys, 0); /* a failed call keeps the current setting */
    CHECK_OK(wsffi_set_log_callback(WSFFI_LOG_INFO, on_log, &b, log_destroy));
    CHECK_EQ(a.destroys, 1);
    CHECK_EQ(b.destroys, 0);
    /* A NULL function turns the log off; the user data given with it ends at once. */
    CHECK_OK(wsffi_set_log_callback(WSFFI_LOG_INFO, NULL, &c, log_destroy));
    CHECK_EQ(b.destroys, 1);
    CHECK_EQ(c.destroys, 1);
    /* With the log off, a failing connection logs nothing anywhere. */
    wsffi_reactor *r = tu_reactor_new();
    tu_rec rec;
    tu_rec_init(&rec, "refused");
    tu_url u = tu_make_url(tu_unused_port(), "/");
    wsffi_conn *conn = tu_connect(r, u.s, NULL, &rec);
    WAIT_UNTIL(rec.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    TU_REC_DONE(&rec);
    tu_reactor_free(r);
    CHECK_EQ(a.count + b.count + c.count, 0);
}

TU_MAIN(TU_CASE(protocol_error_is_a_warning_with_its_close_code), TU_CASE(info_names_opens_and_refusals),
        TU_CASE(debug_reports_every_close), TU_CASE(timeouts_and_tls_failures_are_named),
        TU_CASE(log_function_may_turn_the_log_off_from_inside), TU_CASE(replacing_and_bad_calls))
