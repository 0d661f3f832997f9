/*
 * test_dispatch: dispatch mode. Callbacks wait for the application's thread, which finds
 * them with poll() on wsffi_reactor_fd (or through a wake callback) and runs them with
 * wsffi_reactor_dispatch; ordering, exactly-one close and destroy, handshake hooks, plain
 * HTTP, and freeing the reactor from a dispatched callback.
 */
#include "testutil.h"

/* ---- a dispatching thread ------------------------------------------------------------ */

typedef struct dispatcher {
    wsffi_reactor *reactor;
    pthread_t thread;
    atomic_bool enabled;     /* dispatch when events wait (else only sleep) */
    atomic_bool stop;
    atomic_bool reactor_freed; /* a callback freed the reactor: leave without touching it */
    atomic_size_t ran;
    atomic_int dispatch_calls;
    size_t max;              /* per wsffi_reactor_dispatch call */
    struct waker *waker;     /* wait for wakes instead of polling the descriptor */
    int closes_when_freed;   /* on_close calls seen when the freeing dispatch returned */
    struct tu_rec *watch[4]; /* recorders counted into closes_when_freed */
} dispatcher;

/* The dispatching thread of the case; every callback must run on it. */
static pthread_t g_dispatching;
static atomic_bool g_have_dispatching;

#define ON_DISPATCHING_THREAD() \
    CHECK(atomic_load(&g_have_dispatching) && pthread_equal(pthread_self(), g_dispatching))

/* Answers wakes: the wake callback writes a byte to a pipe the dispatcher waits on. */
typedef struct waker {
    int pipe[2];
    atomic_int wakes;
    atomic_bool outstanding; /* woken and no dispatch started since */
    atomic_int destroys;
} waker;

static void on_wake(void *user) {
    waker *w = user;
    CHECK(!pthread_equal(pthread_self(), g_dispatching)); /* the reactor thread calls it */
    if (atomic_exchange(&w->outstanding, true)) {
        tu_fail(__FILE__, __LINE__, "wake called again before a dispatch answered the last one");
    }
    atomic_fetch_add(&w->wakes, 1);
    char b = 1;
    CHECK(write(w->pipe[1], &b, 1) == 1);
}

static void waker_destroy(void *user) {
    waker *w = user;
    atomic_fetch_add(&w->destroys, 1);
}

/* Waits until events may wait: the descriptor is readable, or a wake arrived. */
static bool wait_for_events(dispatcher *d, int fd) {
    struct pollfd p = {.fd = d->waker ? d->waker->pipe[0] : fd, .events = POLLIN};
    int n = poll(&p, 1, 20);
    if (n < 0 && errno == EINTR) {
        return false;
    }
    CHECK(n >= 0);
    if (n <= 0) {
        return false;
    }
    CHECK(p.revents & POLLIN);
    if (d->waker) {
        char buf[16];
        CHECK(read(d->waker->pipe[0], buf, sizeof buf) >= 1);
    }
    return true;
}

static void *dispatcher_main(void *arg) {
    dispatcher *d = arg;
    g_dispatching = pthread_self();
    atomic_store(&g_have_dispatching, true);
    int fd = wsffi_reactor_fd(d->reactor);
    CHECK(fd >= 0);
    while (!atomic_load(&d->stop)) {
        if (!atomic_load(&d->enabled)) {
            tu_sleep_ms(5);
            continue;
        }
        if (!wait_for_events(d, fd)) {
            continue;
        }
        /* Answer until a call runs fewer than `max`: then nothing is left of the batch. */
        for (;;) {
            size_t ran = 0;
            atomic_fetch_add(&d->dispatch_calls, 1);
            if (d->waker) {
                /* Every dispatch answers the last wake: from its start the library may wake again. */
                atomic_store(&d->waker->outstanding, false);
            }
            CHECK_OK(wsffi_reactor_dispatch(d->reactor, d->max, &ran));
            atomic_fetch_add(&d->ran, ran);
            if (atomic_load(&d->reactor_freed)) {
                TU_LOCK();
                for (int i = 0; i < 4 && d->watch[i]; i++) {
                    d->closes_when_freed += d->watch[i]->closes + d->watch[i]->destroys;
                }
                TU_UNLOCK();
                return NULL;
            }
            if (ran < d->max) {
                break;
            }
        }
    }
    return NULL;
}

static wsffi_reactor *dispatch_reactor(waker *w) {
    wsffi_reactor_options *o = wsffi_reactor_options_new();
    REQUIRE(o != NULL);
    if (w) {
        CHECK_OK(wsffi_reactor_options_set_wake(o, on_wake, w, waker_destroy));
    } else {
        CHECK_OK(wsffi_reactor_options_set_dispatch(o, true));
    }
    wsffi_reactor *r = tu_reactor_new_opts(o);
    wsffi_reactor_options_free(o);
    return r;
}

static void dispatcher_start_max(dispatcher *d, wsffi_reactor *r, bool enabled, size_t max) {
    memset(d, 0, sizeof *d);
    d->reactor = r;
    d->max = max;
    atomic_store(&d->enabled, enabled);
    d->thread = tu_thread_start(dispatcher_main, d);
    WAIT_UNTIL(atomic_load(&g_have_dispatching), TU_WAIT_MS);
}

static void dispatcher_start(dispatcher *d, wsffi_reactor *r, bool enabled) {
    dispatcher_start_max(d, r, enabled, 16);
}

static void dispatcher_stop(dispatcher *d) {
    atomic_store(&d->stop, true);
    tu_thread_join(d->thread);
    atomic_store(&g_have_dispatching, false);
}

/* Hooks that check the thread of every open and message. */
static void open_on_dispatching_thread(tu_rec *rec, wsffi_conn *conn) {
    (void)rec;
    (void)conn;
    ON_DISPATCHING_THREAD();
}

static void message_on_dispatching_thread(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    (void)conn;
    (void)kind;
    (void)data;
    (void)len;
    ON_DISPATCHING_THREAD();
}

/* A reactor in dispatch mode with a listener and an echo server at /ws. */
static void env_start(tu_env *env, dispatcher *d, waker *w, const wsffi_server_callbacks *cbs) {
    memset(env, 0, sizeof *env);
    tu_fx_init(&env->fx, "server");
    env->fx.open_hook = open_on_dispatching_thread;
    env->fx.message_hook = message_on_dispatching_thread;
    env->reactor = dispatch_reactor(w);
    dispatcher_start(d, env->reactor, true);
    env->listener = tu_listen(env->reactor, NULL, &env->port);
    env->server = tu_attach(env->reactor, env->listener, "/ws", NULL, cbs, &env->fx);
}

/* Stops the dispatching thread once everything is closed, then frees the reactor (nothing
 * is left to dispatch, so no callback runs on the freeing thread). */
static void env_stop(tu_env *env, dispatcher *d) {
    CHECK_OK(wsffi_server_close(env->server));
    WAIT_UNTIL(env->fx.closes == 1 && env->fx.destroys == 1, TU_WAIT_MS);
    env->server = NULL;
    dispatcher_stop(d);
    tu_env_stop(env);
}

/* ---- cases --------------------------------------------------------------------------- */

/* Only dispatch-mode reactors have a descriptor; bad calls get their status. */
TEST(descriptor_and_bad_calls) {
    wsffi_reactor *plain = tu_reactor_new();
    CHECK_EQ(wsffi_reactor_fd(plain), -1);
    CHECK_EQ(wsffi_reactor_fd(NULL), -1);
    size_t ran = 99;
    CHECK_STATUS(wsffi_reactor_dispatch(plain, 10, &ran), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_reactor_dispatch(NULL, 10, &ran), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_options_set_dispatch(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_options_set_wake(NULL, on_wake, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    tu_reactor_free(plain);

    /* Turned on and off again: a plain reactor. */
    wsffi_reactor_options *o = wsffi_reactor_options_new();
    CHECK_OK(wsffi_reactor_options_set_dispatch(o, true));
    CHECK_OK(wsffi_reactor_options_set_dispatch(o, false));
    wsffi_reactor *r = tu_reactor_new_opts(o);
    CHECK_EQ(wsffi_reactor_fd(r), -1);
    tu_reactor_free(r);
    wsffi_reactor_options_free(o);

    r = dispatch_reactor(NULL);
    int fd = wsffi_reactor_fd(r);
    CHECK(fd >= 0);
    CHECK_EQ(wsffi_reactor_fd(r), fd);
    ran = 99;
    CHECK_OK(wsffi_reactor_dispatch(r, 10, &ran));
    CHECK_EQ(ran, 0);
    CHECK_OK(wsffi_reactor_dispatch(r, 10, NULL));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    tu_reactor_free(r);
}

/* Events wait, the descriptor readable, until the application dispatches; then every
 * callback runs on the dispatching thread, in order, and the descriptor goes quiet. */
TEST(events_wait_for_the_poll_loop) {
    wsffi_reactor *r = dispatch_reactor(NULL);
    dispatcher d;
    dispatcher_start(&d, r, false);
    uint16_t port;
    wsffi_listener *l = tu_listen(r, NULL, &port);
    tu_server_fx fx;
    tu_fx_init(&fx, "server");
    fx.open_hook = open_on_dispatching_thread;
    fx.message_hook = message_on_dispatching_thread;
    wsffi_server *server = tu_attach(r, l, "/ws", NULL, NULL, &fx);

    tu_rec c;
    tu_rec_init(&c, "client");
    c.open_hook = open_on_dispatching_thread;
    c.message_hook = message_on_dispatching_thread;
    tu_url url = tu_make_url(port, "/ws");
    wsffi_conn *conn = tu_connect(r, url.s, NULL, &c);
    int fd = wsffi_reactor_fd(r);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool readable = false;
    for (int i = 0; i < 100 * tu_slow && !readable; i++) {
        readable = poll(&p, 1, 50) == 1;
    }
    CHECK(readable);
    /* Both ends are open inside the reactor, but nobody has been told. */
    STAYS_TRUE(c.opens == 0 && fx.connections == 0, 200);
    CHECK_EQ(poll(&p, 1, 0), 1);

    atomic_store(&d.enabled, true);
    WAIT_UNTIL(c.opens == 1 && fx.connections == 1, TU_WAIT_MS);
    for (int i = 0; i < 50; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "m%02d", i);
        CHECK_OK(wsffi_send_text(conn, msg, strlen(msg)));
    }
    WAIT_UNTIL(c.messages == 50, TU_WAIT_MS);
    TU_LOCK();
    for (int i = 0; i < 50; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "m%02d", i);
        CHECK_STR(c.log[i], msg);
    }
    TU_UNLOCK();
    CHECK_EQ(LOCKED_INT(fx.conns[0].messages), 50);

    CHECK_OK(wsffi_close(conn, 1000, "done", 4));
    WAIT_UNTIL(c.closes == 1 && c.destroys == 1 && fx.conns[0].closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c.close_code), 1000);
    CHECK(c.was_clean);
    CHECK_EQ(LOCKED_INT(c.events_after_close), 0);
    /* Nothing waits any more: the descriptor is quiet. */
    WAIT_UNTIL(poll(&p, 1, 0) == 0, TU_WAIT_MS);

    CHECK_OK(wsffi_server_close(server));
    WAIT_UNTIL(fx.closes == 1 && fx.destroys == 1, TU_WAIT_MS);
    dispatcher_stop(&d);
    CHECK_OK(wsffi_listener_close(l));
    tu_reactor_free(r);
    for (int i = 0; i < fx.connections; i++) {
        CHECK_EQ(fx.conns[i].closes, 1);
        CHECK_EQ(fx.conns[i].destroys, 1);
        tu_rec_free(&fx.conns[i]);
    }
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* A client on a plain reactor sends as soon as it is open, while the dispatch-mode server
 * is not dispatching: the callbacks its on_connection installs later still get every
 * message, in order, and echo them. */
TEST(callbacks_installed_on_connection_see_earlier_messages) {
    wsffi_reactor *r = dispatch_reactor(NULL);
    dispatcher d;
    dispatcher_start(&d, r, false);
    tu_env env;
    memset(&env, 0, sizeof env);
    tu_fx_init(&env.fx, "server");
    env.fx.message_hook = message_on_dispatching_thread;
    env.reactor = r;
    env.listener = tu_listen(r, NULL, &env.port);
    env.server = tu_attach(r, env.listener, "/ws", NULL, NULL, &env.fx);

    wsffi_reactor *client_reactor = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url url = tu_make_url(env.port, "/ws");
    wsffi_conn *conn = tu_open(client_reactor, url.s, NULL, &c);
    for (int i = 0; i < 40; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "early%02d", i);
        CHECK_OK(wsffi_send_text(conn, msg, strlen(msg)));
    }
    STAYS_TRUE(env.fx.connections == 0 && c.messages == 0, 300);
    atomic_store(&d.enabled, true);
    WAIT_UNTIL(c.messages == 40, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(env.fx.conns[0].messages, 40);
    CHECK_STR(env.fx.conns[0].log[0], "early00");
    CHECK_STR(c.log[39], "early39");
    TU_UNLOCK();

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1 && env.fx.conns[0].closes == 1, TU_WAIT_MS);
    env_stop(&env, &d);
    tu_reactor_free(client_reactor);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* The wake callback: called on the reactor thread, never again before a dispatch answered
 * it; a loop that dispatches only when woken still gets everything. */
TEST(wake_callback_drives_a_loop_without_polling) {
    waker w;
    memset(&w, 0, sizeof w);
    REQUIRE(pipe(w.pipe) == 0);
    wsffi_reactor_options *o = wsffi_reactor_options_new();
    CHECK_OK(wsffi_reactor_options_set_wake(o, on_wake, &w, waker_destroy));
    wsffi_reactor *r = tu_reactor_new_opts(o);

    tu_env env;
    memset(&env, 0, sizeof env);
    tu_fx_init(&env.fx, "server");
    env.fx.message_hook = message_on_dispatching_thread;
    env.reactor = r;
    dispatcher d;
    memset(&d, 0, sizeof d);
    d.reactor = r;
    d.max = 4; /* partial runs: the loop must call again until one runs fewer */
    d.waker = &w;
    atomic_store(&d.enabled, true);
    d.thread = tu_thread_start(dispatcher_main, &d);
    WAIT_UNTIL(atomic_load(&g_have_dispatching), TU_WAIT_MS);
    env.listener = tu_listen(r, NULL, &env.port);
    env.server = tu_attach(r, env.listener, "/ws", NULL, NULL, &env.fx);

    tu_rec c;
    tu_rec_init(&c, "client");
    c.message_hook = message_on_dispatching_thread;
    tu_url url = tu_make_url(env.port, "/ws");
    wsffi_conn *conn = tu_open(r, url.s, NULL, &c);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 10; i++) {
            CHECK_OK(wsffi_send_text(conn, "tick", 4));
        }
        tu_sleep_ms(2);
    }
    WAIT_UNTIL(c.messages == 200, TU_WAIT_MS);
    CHECK(atomic_load(&w.wakes) >= 1);
    CHECK(atomic_load(&w.wakes) <= atomic_load(&d.dispatch_calls));

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1 && env.fx.conns[0].closes == 1, TU_WAIT_MS);
    env_stop(&env, &d);
    /* The options still hold the wake function: its user data lives until they go. */
    CHECK_EQ(atomic_load(&w.destroys), 0);
    wsffi_reactor_options_free(o);
    CHECK_EQ(atomic_load(&w.destroys), 1);
    close(w.pipe[0]);
    close(w.pipe[1]);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- handshake hooks ----------------------------------------------------------------- */

static wsffi_handshake *g_deferred;

static wsffi_verdict verify_on_dispatching_thread(void *user, wsffi_handshake *hs) {
    (void)user;
    ON_DISPATCHING_THREAD();
    const char *url = wsffi_request_url(wsffi_handshake_request(hs));
    if (strstr(url, "deny")) {
        CHECK_OK(wsffi_handshake_set_reject(hs, 403, "not you"));
        return WSFFI_VERDICT_REJECT;
    }
    if (strstr(url, "later")) {
        TU_LOCK();
        g_deferred = hs;
        TU_UNLOCK_SIGNAL();
        return WSFFI_VERDICT_DEFER;
    }
    return WSFFI_VERDICT_ACCEPT;
}

static int pick_b(void *user, const wsffi_request *req, const char *const *offered, size_t count) {
    (void)user;
    (void)req;
    ON_DISPATCHING_THREAD();
    for (size_t i = 0; i < count; i++) {
        if (strcmp(offered[i], "b") == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void add_header_on_dispatching_thread(void *user, wsffi_handshake *hs) {
    (void)user;
    ON_DISPATCHING_THREAD();
    CHECK_OK(wsffi_handshake_add_header(hs, "X-Dispatched", "yes"));
}

/* An upgrade from a raw socket; returns the response head. */
static int raw_upgrade(uint16_t port, const char *path, char *head, size_t cap) {
    int fd = tu_tcp_connect(port);
    tu_send_upgrade(fd, path, "Sec-WebSocket-Protocol: a, b\r\n");
    tu_recv_head(fd, head, cap);
    return fd;
}

/* verify_client, handle_protocols and headers run on the dispatching thread while the
 * handshake waits: accepted, rejected and deferred clients get what they decided. */
TEST(handshake_hooks_run_on_the_dispatching_thread) {
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = verify_on_dispatching_thread;
    cbs.handle_protocols = pick_b;
    cbs.headers = add_header_on_dispatching_thread;
    tu_env env;
    dispatcher d;
    env_start(&env, &d, NULL, &cbs);
    char head[4096];

    int fd = raw_upgrade(env.port, "/ws", head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    CHECK(strstr(head, "\r\nSec-WebSocket-Protocol: b\r\n") != NULL);
    CHECK(strstr(head, "\r\nX-Dispatched: yes\r\n") != NULL);
    close(fd);

    fd = raw_upgrade(env.port, "/ws?deny=1", head, sizeof head);
    CHECK_EQ(tu_http_status(head), 403);
    close(fd);
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);

    fd = tu_tcp_connect(env.port);
    tu_send_upgrade(fd, "/ws?later=1", "Sec-WebSocket-Protocol: a, b\r\n");
    WAIT_UNTIL(g_deferred != NULL, TU_WAIT_MS);
    /* Decided from the main thread: the hooks already ran on the dispatching one. */
    CHECK_OK(wsffi_handshake_accept(g_deferred));
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    CHECK(strstr(head, "\r\nSec-WebSocket-Protocol: b\r\n") != NULL);
    CHECK(strstr(head, "\r\nX-Dispatched: yes\r\n") != NULL);
    close(fd);

    WAIT_UNTIL(env.fx.connections == 2 && env.fx.conns[0].closes == 1 && env.fx.conns[1].closes == 1, TU_WAIT_MS);
    env_stop(&env, &d);
}

/* ---- plain HTTP ---------------------------------------------------------------------- */

static void http_on_dispatching_thread(void *user, const wsffi_request *req, wsffi_http_response *resp) {
    atomic_int *calls = user;
    ON_DISPATCHING_THREAD();
    atomic_fetch_add(calls, 1);
    CHECK_STR(wsffi_request_url(req), "/hello");
    CHECK_OK(wsffi_http_response_set_status(resp, 202, NULL));
    CHECK_OK(wsffi_http_response_set_body(resp, (const uint8_t *)"from the app thread", 19));
}

/* A plain request waits for the handler on the dispatching thread, then gets its answer. */
TEST(plain_http_handler_runs_on_the_dispatching_thread) {
    tu_env env;
    dispatcher d;
    env_start(&env, &d, NULL, NULL);
    atomic_int calls = 0;
    CHECK_OK(wsffi_listener_set_http_handler(env.listener, http_on_dispatching_thread, &calls));
    int fd = tu_tcp_connect(env.port);
    tu_send_str(fd, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    char out[4096];
    bool eof = false;
    tu_recv_to_eof(fd, out, sizeof out, TU_WAIT_MS, &eof);
    close(fd);
    CHECK(eof);
    CHECK_EQ(tu_http_status(out), 202);
    const char *body = strstr(out, "\r\n\r\n");
    CHECK(body != NULL && strcmp(body + 4, "from the app thread") == 0);
    CHECK_EQ(atomic_load(&calls), 1);
    env_stop(&env, &d);
}

/* ---- freeing ------------------------------------------------------------------------- */

static dispatcher *g_freeing_dispatcher;

static void free_reactor_from_callback(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    (void)conn;
    (void)kind;
    (void)len;
    ON_DISPATCHING_THREAD();
    if (memcmp(data, "free", 4) == 0) {
        CHECK_OK(wsffi_reactor_free(g_freeing_dispatcher->reactor));
        atomic_store(&g_freeing_dispatcher->reactor_freed, true);
    }
}

/* wsffi_reactor_free from a dispatched callback returns; the callbacks it causes (every
 * close and destroy) run before the dispatch in progress returns, exactly once each. */
TEST(free_from_a_dispatched_callback) {
    wsffi_reactor *r = dispatch_reactor(NULL);
    dispatcher d;
    /* max 1: the freeing dispatch must still run everything that follows. */
    dispatcher_start_max(&d, r, true, 1);
    g_freeing_dispatcher = &d;
    uint16_t port;
    wsffi_listener *l = tu_listen(r, NULL, &port);
    tu_server_fx fx;
    tu_fx_init(&fx, "server");
    fx.echo = false;
    fx.message_hook = free_reactor_from_callback;
    wsffi_server *server = tu_attach(r, l, "/ws", NULL, NULL, &fx);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url url = tu_make_url(port, "/ws");
    wsffi_conn *conn = tu_open(r, url.s, NULL, &c);
    WAIT_UNTIL(fx.connections == 1, TU_WAIT_MS);
    TU_LOCK();
    d.watch[0] = &c;
    d.watch[1] = &fx.conns[0];
    TU_UNLOCK();
    CHECK_OK(wsffi_send_text(conn, "free", 4));
    tu_thread_join(d.thread);
    atomic_store(&g_have_dispatching, false);
    CHECK(atomic_load(&d.reactor_freed));
    /* Two closes and two destroys had run when that dispatch returned. */
    CHECK_EQ(d.closes_when_freed, 4);
    CHECK_EQ(fx.closes, 1);
    CHECK_EQ(fx.destroys, 1);
    if (atomic_fetch_sub(&tu_live_reactors, 1) == 1) {
        atomic_store(&tu_all_freed, true);
    }
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CLOSED);
    CHECK_EQ(c.closes, 1);
    CHECK_EQ(c.destroys, 1);
    /* The handles outlive the reactor; giving them back still succeeds. */
    CHECK_OK(wsffi_server_close(server));
    CHECK_OK(wsffi_listener_close(l));
    tu_rec_free(&fx.conns[0]);
    tu_rec_free(&c);
    wsffi_conn_release(conn);
}

typedef struct freeing {
    wsffi_reactor *reactor;
    pthread_t self;
} freeing;

static pthread_t g_freeing_thread;

static void *free_main(void *arg) {
    freeing *f = arg;
    g_freeing_thread = pthread_self();
    /* Events still waiting run here: this thread is the dispatching one now. */
    g_dispatching = pthread_self();
    atomic_store(&g_have_dispatching, true);
    CHECK_OK(wsffi_reactor_free(f->reactor));
    return NULL;
}

/* Freed from a thread while events wait and nobody dispatches: the waiting callbacks and
 * those of the shutdown run on the freeing thread before wsffi_reactor_free returns. */
TEST(free_runs_waiting_callbacks_on_the_freeing_thread) {
    wsffi_reactor *r = dispatch_reactor(NULL);
    uint16_t port;
    wsffi_listener *l = tu_listen(r, NULL, &port);
    tu_server_fx fx;
    tu_fx_init(&fx, "server");
    fx.message_hook = message_on_dispatching_thread;
    wsffi_server *server = tu_attach(r, l, "/ws", NULL, NULL, &fx);
    tu_rec c;
    tu_rec_init(&c, "client");
    c.message_hook = message_on_dispatching_thread;
    tu_url url = tu_make_url(port, "/ws");
    wsffi_conn *conn = tu_connect(r, url.s, NULL, &c);
    /* Opened inside the reactor; the open and connection callbacks wait. */
    WAIT_UNTIL(wsffi_ready_state(conn) == WSFFI_OPEN, TU_WAIT_MS);
    CHECK_OK(wsffi_send_text(conn, "queued", 6));
    tu_sleep_ms(100);
    freeing f = {.reactor = r};
    pthread_t t = tu_thread_start(free_main, &f);
    tu_thread_join(t);
    atomic_store(&g_have_dispatching, false);
    if (atomic_fetch_sub(&tu_live_reactors, 1) == 1) {
        atomic_store(&tu_all_freed, true);
    }
    TU_LOCK();
    CHECK_EQ(c.opens, 1);
    CHECK_EQ(c.closes, 1);
    CHECK_EQ(c.destroys, 1);
    CHECK_EQ(fx.connections, 1);
    CHECK_EQ(fx.conns[0].messages, 1);
    CHECK_EQ(fx.conns[0].closes, 1);
    CHECK_EQ(fx.conns[0].destroys, 1);
    CHECK_EQ(fx.closes, 1);
    CHECK_EQ(fx.destroys, 1);
    TU_UNLOCK();
    /* The handles outlive the reactor; giving them back still succeeds. */
    CHECK_OK(wsffi_server_close(server));
    CHECK_OK(wsffi_listener_close(l));
    tu_rec_free(&fx.conns[0]);
    tu_rec_free(&c);
    wsffi_conn_release(conn);
}

/* A dispatch from inside a dispatched callback is refused and runs nothing. */
static void dispatch_from_callback(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    (void)conn;
    (void)kind;
    (void)data;
    (void)len;
    size_t ran = 99;
    CHECK_STATUS(wsffi_reactor_dispatch(g_freeing_dispatcher->reactor, 10, &ran), WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK);
    CHECK_EQ(ran, 99);
}

TEST(dispatch_from_a_dispatched_callback_is_refused) {
    tu_env env;
    dispatcher d;
    env_start(&env, &d, NULL, NULL);
    g_freeing_dispatcher = &d;
    tu_rec c;
    tu_rec_init(&c, "client");
    c.message_hook = dispatch_from_callback;
    tu_url url = tu_make_url(env.port, "/ws");
    wsffi_conn *conn = tu_open(env.reactor, url.s, NULL, &c);
    CHECK_OK(wsffi_send_text(conn, "x", 1));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1 && env.fx.conns[0].closes == 1, TU_WAIT_MS);
    env_stop(&env, &d);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* `max` bounds one call: a call that runs `max` events leaves the rest for the next, in
 * order, and the descriptor stays readable while anything waits. */
static void *max_bounds_main(void *arg) {
    (void)arg;
    wsffi_reactor *r = dispatch_reactor(NULL);
    uint16_t port;
    wsffi_listener *l = tu_listen(r, NULL, &port);
    tu_server_fx fx;
    tu_fx_init(&fx, "server");
    wsffi_server *server = tu_attach(r, l, "/ws", NULL, NULL, &fx);
    wsffi_reactor *client_reactor = tu_reactor_new();
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url url = tu_make_url(port, "/ws");
    wsffi_conn *conn = tu_open(client_reactor, url.s, NULL, &c);
    int fd = wsffi_reactor_fd(r);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    /* Take the connection's events one call at a time until nothing waits. */
    size_t ran = 0;
    for (int i = 0; i < 200 * tu_slow && LOCKED_INT(fx.connections) == 0; i++) {
        CHECK_OK(wsffi_reactor_dispatch(r, 1, &ran));
        CHECK(ran <= 1);
        tu_sleep_ms(10);
    }
    CHECK_EQ(LOCKED_INT(fx.connections), 1);
    do {
        CHECK_OK(wsffi_reactor_dispatch(r, 1, &ran));
    } while (ran == 1);

    for (int i = 0; i < 10; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "n%d", i);
        CHECK_OK(wsffi_send_text(conn, msg, strlen(msg)));
    }
    bool readable = false;
    for (int i = 0; i < 100 * tu_slow && !readable; i++) {
        readable = poll(&p, 1, 50) == 1;
    }
    CHECK(readable);
    /* Loopback delivers ten small messages in one read; let the reactor queue them all. */
    tu_sleep_ms(100 * tu_slow);
    CHECK_OK(wsffi_reactor_dispatch(r, 3, &ran));
    CHECK_EQ(ran, 3);
    TU_LOCK();
    CHECK_EQ(fx.conns[0].messages, 3);
    CHECK_STR(fx.conns[0].log[2], "n2");
    TU_UNLOCK();
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_OK(wsffi_reactor_dispatch(r, 100, &ran));
    CHECK_EQ(ran, 7);
    TU_LOCK();
    CHECK_EQ(fx.conns[0].messages, 10);
    CHECK_STR(fx.conns[0].log[9], "n9");
    TU_UNLOCK();
    /* The echoes went out from the dispatching thread. */
    WAIT_UNTIL(c.messages == 10, TU_WAIT_MS);
    CHECK_EQ(poll(&p, 1, 0), 0);

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    for (int i = 0; i < 200 * tu_slow && LOCKED_INT(fx.conns[0].closes) == 0; i++) {
        CHECK_OK(wsffi_reactor_dispatch(r, 100, NULL));
        tu_sleep_ms(10);
    }
    CHECK_EQ(LOCKED_INT(fx.conns[0].closes), 1);
    CHECK_OK(wsffi_server_close(server));
    CHECK_OK(wsffi_listener_close(l));
    tu_reactor_free(r);
    CHECK_EQ(fx.closes, 1);
    CHECK_EQ(fx.conns[0].destroys, 1);
    tu_rec_free(&fx.conns[0]);
    tu_reactor_free(client_reactor);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
    return NULL;
}

/* The callbacks of the test records refuse the main thread, so another one dispatches. */
TEST(max_bounds_each_call) {
    tu_thread_join(tu_thread_start(max_bounds_main, NULL));
}

TU_MAIN(TU_CASE(descriptor_and_bad_calls), TU_CASE(events_wait_for_the_poll_loop),
        TU_CASE(callbacks_installed_on_connection_see_earlier_messages), TU_CASE(wake_callback_drives_a_loop_without_polling),
        TU_CASE(handshake_hooks_run_on_the_dispatching_thread), TU_CASE(plain_http_handler_runs_on_the_dispatching_thread),
        TU_CASE(free_from_a_dispatched_callback), TU_CASE(free_runs_waiting_callbacks_on_the_freeing_thread),
        TU_CASE(dispatch_from_a_dispatched_callback_is_refused), TU_CASE(max_bounds_each_call))
