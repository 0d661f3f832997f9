/*
 * test_lifecycle: wsffi_reactor_free with things still open: every connection gets its one
 * on_close and destroy before it returns, servers their on_close and destroy, nothing runs
 * afterwards, and handles kept past it stay safe.
 */
#include "testutil.h"

/* What closing a handle of a freed reactor may answer (it frees the handle either way). */
static bool after_shutdown(wsffi_status s) {
    return s == WSFFI_STATUS_OK || s == WSFFI_STATUS_ERR_CLOSED || s == WSFFI_STATUS_ERR_SHUT_DOWN;
}

/* Client and server on one reactor, nothing closed by hand. */
TEST(free_with_open_connections) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c[3];
    wsffi_conn *conn[3];
    for (int i = 0; i < 3; i++) {
        tu_rec_init(&c[i], "client");
        conn[i] = tu_open(env.reactor, u.s, NULL, &c[i]);
    }
    WAIT_UNTIL(env.fx.connections == 3 && env.fx.conns[2].opens == 1, TU_WAIT_MS);
    /* Some traffic in flight at the time of the free. */
    for (int i = 0; i < 3; i++) {
        CHECK_OK(wsffi_send_text(conn[i], "in flight", 9));
    }
    tu_reactor_free(env.reactor);
    /* Everything was delivered before free returned: no waiting here. */
    TU_LOCK();
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(c[i].closes, 1);
        CHECK_EQ(c[i].destroys, 1);
        CHECK_EQ(env.fx.conns[i].closes, 1);
        CHECK_EQ(env.fx.conns[i].destroys, 1);
    }
    CHECK_EQ(env.fx.closes, 1);
    CHECK_EQ(env.fx.destroys, 1);
    TU_UNLOCK();
    /* Nothing more runs (every callback checks it, see TU_CALLBACK_GUARD). */
    tu_sleep_ms(100);
    /* The server and listener handles still need their close; they report the shutdown. */
    CHECK(after_shutdown(wsffi_server_close(env.server)));
    CHECK(after_shutdown(wsffi_listener_close(env.listener)));
    wsffi_status s;
    for (int i = 0; i < 3; i++) {
        /* Retained handles outlive the reactor. */
        CHECK_EQ(wsffi_ready_state(conn[i]), WSFFI_CLOSED);
        s = wsffi_send_text(conn[i], "late", 4);
        CHECK(s == WSFFI_STATUS_ERR_CLOSED || s == WSFFI_STATUS_ERR_SHUT_DOWN);
        s = wsffi_close(conn[i], 1000, NULL, 0);
        CHECK(s == WSFFI_STATUS_ERR_CLOSED || s == WSFFI_STATUS_ERR_SHUT_DOWN);
        CHECK_EQ(wsffi_buffered_amount(conn[i]), 0);
        TU_REC_DONE(&c[i]);
        wsffi_conn_release(conn[i]);
        TU_REC_DONE(&env.fx.conns[i]);
    }
}

/* Server and client on different reactors: freeing the server's reactor closes its side
 * with 1001, and the client (on the other reactor) sees a clean 1001. */
TEST(free_server_reactor_first) {
    tu_env env;
    tu_env_start(&env, "/");
    wsffi_reactor *cr = tu_reactor_new();
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(cr, u.s, NULL, &c);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    tu_reactor_free(env.reactor);
    TU_LOCK();
    CHECK_EQ(env.fx.conns[0].closes, 1);
    CHECK_EQ(env.fx.conns[0].destroys, 1);
    CHECK_EQ(env.fx.conns[0].close_code, WSFFI_CLOSE_GOING_AWAY); /* the client echoed it */
    CHECK(env.fx.conns[0].was_clean);
    CHECK_EQ(env.fx.closes, 1);
    CHECK_EQ(env.fx.destroys, 1);
    TU_UNLOCK();
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.close_code, WSFFI_CLOSE_GOING_AWAY);
    CHECK(c.was_clean);
    TU_UNLOCK();
    /* The client reactor still works. */
    tu_rec c2;
    tu_rec_init(&c2, "refused");
    wsffi_conn *conn2 = tu_connect(cr, u.s, NULL, &c2);
    WAIT_UNTIL(c2.closes == 1, TU_WAIT_MS);
    CHECK_STATUS(LOCKED_INT(c2.error_status), WSFFI_STATUS_ERR_CONNECTION_REFUSED);
    tu_reactor_free(cr);
    CHECK(after_shutdown(wsffi_server_close(env.server)));
    CHECK(after_shutdown(wsffi_listener_close(env.listener)));
    TU_REC_DONE(&c);
    TU_REC_DONE(&c2);
    TU_REC_DONE(&env.fx.conns[0]);
    wsffi_conn_release(conn);
    wsffi_conn_release(conn2);
}

/* A client still connecting when its reactor goes: error then close 1006, destroy once. */
TEST(free_while_connecting) {
    uint16_t port = 0;
    int lfd = tu_tcp_listen(&port, 16); /* never answers */
    wsffi_reactor *r = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(port, "/");
    wsffi_conn *conn = tu_connect(r, u.s, NULL, &c);
    tu_sleep_ms(50);
    tu_reactor_free(r);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.closes, 1);
    CHECK_EQ(c.destroys, 1);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c.was_clean);
    TU_UNLOCK();
    wsffi_status s = wsffi_send_text(conn, "x", 1);
    CHECK(s == WSFFI_STATUS_ERR_CLOSED || s == WSFFI_STATUS_ERR_SHUT_DOWN);
    close(lfd);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* A handshake deferred by verify_client and not decided when the reactor goes: the client
 * is closed, and deciding afterwards is safe (refused). */
static wsffi_handshake *pending;
static wsffi_verdict defer(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_LOCK();
    pending = hs;
    TU_UNLOCK_SIGNAL();
    return WSFFI_VERDICT_DEFER;
}

TEST(free_with_deferred_handshake) {
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = defer;
    pending = NULL;
    tu_env env;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    WAIT_UNTIL(pending != NULL, TU_WAIT_MS);
    tu_reactor_free(env.reactor);
    TU_LOCK();
    CHECK_EQ(c.closes, 1);
    CHECK_EQ(c.destroys, 1);
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(env.fx.connections, 0);
    CHECK_EQ(env.fx.destroys, 1);
    TU_UNLOCK();
    wsffi_status s = wsffi_handshake_accept(pending);
    CHECK(s == WSFFI_STATUS_ERR_TIMEOUT || s == WSFFI_STATUS_ERR_SHUT_DOWN || s == WSFFI_STATUS_ERR_CLOSED);
    CHECK(after_shutdown(wsffi_server_close(env.server)));
    CHECK(after_shutdown(wsffi_listener_close(env.listener)));
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* wsffi_reactor_free from inside callbacks of several kinds: refused every time, and the
 * reactor keeps running. */
typedef struct inside {
    wsffi_reactor *reactor;
    wsffi_status in_open, in_message, in_close, in_server_close;
} inside;
static inside in;

static void free_in_open(tu_rec *rec, wsffi_conn *conn) {
    (void)rec;
    (void)conn;
    wsffi_status s = wsffi_reactor_free(in.reactor);
    TU_LOCK();
    in.in_open = s;
    TU_UNLOCK_SIGNAL();
}

static void free_in_message(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    (void)kind;
    (void)data;
    (void)len;
    wsffi_status s = wsffi_reactor_free(in.reactor);
    TU_LOCK();
    in.in_message = s;
    TU_UNLOCK_SIGNAL();
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
}

static void free_in_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    tu_on_close(user, conn, info);
    wsffi_status s = wsffi_reactor_free(in.reactor);
    TU_LOCK();
    in.in_close = s;
    TU_UNLOCK_SIGNAL();
}

static void free_in_server_close(void *user, wsffi_server *server) {
    tu_fx_on_close(user, server);
    wsffi_status s = wsffi_reactor_free(in.reactor);
    TU_LOCK();
    in.in_server_close = s;
    TU_UNLOCK_SIGNAL();
}

TEST(free_from_callbacks) {
    memset(&in, 0, sizeof in);
    in.in_open = in.in_message = in.in_close = in.in_server_close = WSFFI_STATUS_OK;
    wsffi_server_callbacks scbs = tu_server_callbacks();
    scbs.on_close = free_in_server_close;
    tu_env env;
    tu_env_start_with(&env, "/", NULL, NULL, &scbs);
    env.fx.echo = false;
    env.fx.open_hook = free_in_open;
    env.fx.message_hook = free_in_message;
    in.reactor = env.reactor;

    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn_callbacks cbs = tu_callbacks();
    cbs.on_close = free_in_close;
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = NULL;
    CHECK_OK(wsffi_connect(env.reactor, u.s, NULL, &cbs, &c, tu_rec_destroy, &conn, NULL));
    WAIT_UNTIL(c.opens == 1 && in.in_open != WSFFI_STATUS_OK, TU_WAIT_MS);
    CHECK_STATUS(in.in_open, WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    CHECK_OK(wsffi_send_text(conn, "free?", 5));
    WAIT_UNTIL(c.closes == 1 && in.in_close != WSFFI_STATUS_OK, TU_WAIT_MS);
    CHECK_STATUS(in.in_message, WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    CHECK_STATUS(in.in_close, WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    CHECK_OK(wsffi_server_close(env.server));
    WAIT_UNTIL(env.fx.closes == 1 && in.in_server_close != WSFFI_STATUS_OK, TU_WAIT_MS);
    CHECK_STATUS(in.in_server_close, WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    env.server = NULL;
    /* Still alive: a new connection works. */
    tu_server_fx fx2;
    tu_fx_init(&fx2, "second server");
    wsffi_server *s2 = tu_attach(env.reactor, env.listener, "/", NULL, NULL, &fx2);
    tu_rec c2;
    tu_rec_init(&c2, "client 2");
    wsffi_conn *conn2 = tu_open(env.reactor, u.s, NULL, &c2);
    CHECK_OK(wsffi_send_text(conn2, "alive", 5));
    WAIT_UNTIL(c2.messages == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_server_close(s2));
    WAIT_UNTIL(fx2.closes == 1 && fx2.destroys == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    TU_REC_DONE(&c2);
    TU_REC_DONE(&fx2.conns[0]);
    wsffi_conn_release(conn);
    wsffi_conn_release(conn2);
}

/* Several reactors created and freed from different threads at once. */
static void *reactor_round(void *arg) {
    uint16_t port = *(uint16_t *)arg;
    for (int i = 0; i < 3; i++) {
        wsffi_reactor *r = NULL;
        CHECK_OK(wsffi_reactor_new(NULL, &r, NULL));
        if (!r) {
            return NULL;
        }
        tu_rec *c = malloc(sizeof *c);
        REQUIRE(c != NULL);
        tu_rec_init(c, "round client");
        tu_url u = tu_make_url(port, "/");
        wsffi_conn_callbacks cbs = tu_callbacks();
        wsffi_conn *conn = NULL;
        CHECK_OK(wsffi_connect(r, u.s, NULL, &cbs, c, tu_rec_destroy, &conn, NULL));
        WAIT_UNTIL(c->opens == 1, TU_WAIT_MS);
        CHECK_OK(wsffi_send_text(conn, "hi", 2));
        WAIT_UNTIL(c->messages == 1, TU_WAIT_MS);
        CHECK_OK(wsffi_reactor_free(r));
        TU_LOCK();
        CHECK_EQ(c->closes, 1);
        CHECK_EQ(c->destroys, 1);
        TU_UNLOCK();
        wsffi_conn_release(conn);
        tu_rec_free(c);
        free(c);
    }
    return NULL;
}

TEST(reactors_in_parallel) {
    tu_env env;
    tu_env_start(&env, "/");
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = tu_thread_start(reactor_round, &env.port);
    }
    for (int i = 0; i < 4; i++) {
        tu_thread_join(t[i]);
    }
    WAIT_UNTIL(env.fx.connections == 12, TU_WAIT_MS);
    for (int i = 0; i < 12; i++) {
        WAIT_UNTIL(env.fx.conns[i].closes == 1, TU_WAIT_MS);
    }
    tu_env_stop(&env);
}

TU_MAIN(TU_CASE(free_with_open_connections), TU_CASE(free_server_reactor_first), TU_CASE(free_while_connecting),
        TU_CASE(free_with_deferred_handshake), TU_CASE(free_from_callbacks), TU_CASE(reactors_in_parallel))
