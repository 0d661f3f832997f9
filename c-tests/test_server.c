/*
 * test_server: servers and listeners: paths, verify_client (accept, reject, defer from other
 * threads), headers, allowed origins, max connections, the request view, client tracking and
 * broadcast, server close, plain HTTP handling, adopt_fd, handle_upgrade, Unix sockets.
 */
#include "testutil.h"

#include <ctype.h>

/* Case-insensitive substring search. */
static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    return false;
}

/* Sends `request` on a new TCP connection and reads the whole answer (until the server
 * closes); returns the HTTP status. */
static int raw_http(uint16_t port, const char *request, char *out, size_t cap) {
    int fd = tu_tcp_connect(port);
    tu_send_str(fd, request);
    bool eof = false;
    tu_recv_to_eof(fd, out, cap, TU_WAIT_MS, &eof);
    CHECK(eof); /* the server closes after a plain answer */
    close(fd);
    return tu_http_status(out);
}

/* A client that must be refused: waits for its on_close, checks error then close 1006. */
static void expect_refused(tu_rec *c, uint16_t status) {
    WAIT_UNTIL(c->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c->opens, 0);
    CHECK_EQ(c->unexpected, 1);
    CHECK_EQ(c->resp_status, status);
    CHECK_EQ(c->errors_at_close, 1);
    CHECK_STATUS(c->error_status, WSFFI_STATUS_ERR_HANDSHAKE_REJECTED);
    CHECK_EQ(c->close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK(!c->was_clean);
    TU_UNLOCK();
}

/* ---- paths --------------------------------------------------------------------------- */

TEST(two_paths) {
    tu_env env;
    tu_env_start(&env, "/a");
    tu_server_fx fxb;
    tu_fx_init(&fxb, "server b");
    wsffi_server *b = tu_attach(env.reactor, env.listener, "/b", NULL, NULL, &fxb);
    CHECK_STR(wsffi_server_path(env.server), "/a");
    CHECK_STR(wsffi_server_path(b), "/b");

    tu_rec ca, cb;
    tu_rec_init(&ca, "client a");
    tu_rec_init(&cb, "client b");
    tu_url ua = tu_make_url(env.port, "/a");
    tu_url ub = tu_make_url(env.port, "/b?q=1"); /* the query is not part of the path */
    wsffi_conn *a = tu_open(env.reactor, ua.s, NULL, &ca);
    wsffi_conn *bb = tu_open(env.reactor, ub.s, NULL, &cb);
    WAIT_UNTIL(env.fx.connections == 1 && fxb.connections == 1, TU_WAIT_MS);
    CHECK_STR(env.fx.last_url, "/a");
    CHECK_STR(fxb.last_url, "/b?q=1");
    CHECK_EQ(wsffi_server_client_count(env.server), 1);
    CHECK_EQ(wsffi_server_client_count(b), 1);
    CHECK_OK(wsffi_send_text(a, "to a", 4));
    CHECK_OK(wsffi_send_text(bb, "to b", 4));
    WAIT_UNTIL(ca.messages == 1 && cb.messages == 1, TU_WAIT_MS);
    CHECK_STR(env.fx.conns[0].log[0], "to a");
    CHECK_STR(fxb.conns[0].log[0], "to b");

    /* Paths match exactly: "/a/" and "/A" are unknown. */
    tu_rec cx;
    tu_rec_init(&cx, "client x");
    tu_url ux = tu_make_url(env.port, "/a/");
    wsffi_conn *x = tu_connect(env.reactor, ux.s, NULL, &cx);
    expect_refused(&cx, 404);

    CHECK_OK(wsffi_server_close(b));
    WAIT_UNTIL(fxb.closes == 1 && fxb.destroys == 1, TU_WAIT_MS);
    WAIT_UNTIL(cb.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(cb.close_code), WSFFI_CLOSE_GOING_AWAY);
    /* Server a is unaffected. */
    CHECK_OK(wsffi_send_text(a, "again", 5));
    WAIT_UNTIL(ca.messages == 2, TU_WAIT_MS);
    tu_env_stop(&env);
    for (int i = 0; i < fxb.connections; i++) {
        TU_REC_DONE(&fxb.conns[i]);
    }
    TU_REC_DONE(&ca);
    TU_REC_DONE(&cb);
    TU_REC_DONE(&cx);
    wsffi_conn_release(a);
    wsffi_conn_release(bb);
    wsffi_conn_release(x);
}

TEST(unknown_path_404) {
    tu_env env;
    tu_env_start(&env, "/chat");
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/nothing-here");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    expect_refused(&c, 404);
    TU_LOCK();
    CHECK(c.resp_body_len > 0);
    CHECK(c.resp_header_count > 0);
    CHECK(strlen(c.resp_reason) > 0);
    TU_UNLOCK();
    CHECK_EQ(LOCKED_INT(env.fx.connections), 0);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- verify_client ------------------------------------------------------------------- */

static int verify_calls;

/* Decides by the X-Mode request header. */
static wsffi_verdict verify_by_mode(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_CALLBACK_GUARD();
    const wsffi_request *req = wsffi_handshake_request(hs);
    CHECK(req != NULL);
    CHECK_STR(wsffi_request_method(req), "GET");
    const char *mode = wsffi_request_header(req, "x-mode");
    TU_LOCK();
    verify_calls++;
    TU_UNLOCK_SIGNAL();
    if (mode == NULL || strcmp(mode, "accept") == 0) {
        /* The library writes the framing and the Sec-WebSocket-* answers itself. */
        const char *reserved[] = {"Content-Length", "transfer-encoding",      "CONNECTION",
                                  "Upgrade",        "Sec-WebSocket-Accept",   "sec-websocket-protocol",
                                  "Sec-WebSocket-Extensions", "Sec-WebSocket-Version"};
        for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
            if (!CHECK_STATUS(wsffi_handshake_add_header(hs, reserved[i], "x"), WSFFI_STATUS_ERR_INVALID_PARAMETER)) {
                fprintf(stderr, "  (header %s)\n", reserved[i]);
            }
        }
        CHECK_OK(wsffi_handshake_add_header(hs, "X-Verified", "yes"));
        return WSFFI_VERDICT_ACCEPT;
    }
    if (strcmp(mode, "reject") == 0) {
        CHECK_STATUS(wsffi_handshake_set_reject(hs, 200, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_set_reject(hs, 399, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_set_reject(hs, 600, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_set_reject(hs, 403, "bad\r\nreason"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_add_header(hs, "Bad Name", "v"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_add_header(hs, "X-Test", "a\r\nb"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_add_header(hs, NULL, "v"), WSFFI_STATUS_ERR_NULL_PARAMETER);
        CHECK_OK(wsffi_handshake_set_reject(hs, 403, "Go away"));
        CHECK_OK(wsffi_handshake_add_header(hs, "X-Test", "rejected"));
        return WSFFI_VERDICT_REJECT;
    }
    if (strcmp(mode, "redirect") == 0) {
        /* Redirects are allowed refusals; 300 and 304-306 are not. */
        CHECK_STATUS(wsffi_handshake_set_reject(hs, 300, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_handshake_set_reject(hs, 304, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_OK(wsffi_handshake_set_reject(hs, 301, NULL));
        CHECK_OK(wsffi_handshake_set_reject(hs, 307, NULL));
        CHECK_OK(wsffi_handshake_add_header(hs, "Location", "/elsewhere?x=1"));
        return WSFFI_VERDICT_REJECT;
    }
    if (strcmp(mode, "default") == 0) {
        return WSFFI_VERDICT_REJECT;
    }
    return 77; /* out of range: a rejection */
}

static wsffi_client_options *mode_options(const char *mode) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_add_header(o, "X-Mode", mode));
    return o;
}

TEST(verify_client) {
    tu_env env;
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = verify_by_mode;
    verify_calls = 0;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    tu_url u = tu_make_url(env.port, "/");

    /* Accept; the header added by verify_client is in the 101. */
    int fd = tu_tcp_connect(env.port);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    CHECK(strstr(head, "X-Verified: yes\r\n") != NULL);
    CHECK(strstr(head, TU_WS_ACCEPT) != NULL);
    close(fd);

    tu_rec a;
    tu_rec_init(&a, "accepted");
    wsffi_conn *ca = tu_open(env.reactor, u.s, NULL, &a);

    /* Reject with a status, reason and header of our choosing. */
    wsffi_client_options *o = mode_options("reject");
    tu_rec r;
    tu_rec_init(&r, "rejected");
    wsffi_conn *cr = tu_connect(env.reactor, u.s, o, &r);
    wsffi_client_options_free(o);
    expect_refused(&r, 403);
    TU_LOCK();
    CHECK_STR(r.resp_reason, "Go away");
    CHECK_STR(r.resp_x_test, "rejected");
    CHECK(strstr(r.resp_headers, "X-Test: rejected\n") != NULL);
    TU_UNLOCK();

    /* A redirect answer: 307 with the Location verify_client added, seen by a client that
     * does not follow redirects as an unexpected response. */
    o = mode_options("redirect");
    tu_rec rd;
    tu_rec_init(&rd, "redirected");
    wsffi_conn *crd = tu_connect(env.reactor, u.s, o, &rd);
    wsffi_client_options_free(o);
    expect_refused(&rd, 307);
    TU_LOCK();
    CHECK_STR(rd.resp_reason, "Temporary Redirect");
    CHECK(strstr(rd.resp_headers, "Location: /elsewhere?x=1\n") != NULL);
    TU_UNLOCK();
    {
        int rfd = tu_tcp_connect(env.port);
        tu_send_upgrade(rfd, "/", "X-Mode: redirect\r\n");
        char rhead[2048];
        tu_recv_head(rfd, rhead, sizeof rhead);
        CHECK(strstr(rhead, "HTTP/1.1 307 Temporary Redirect\r\n") == rhead);
        CHECK(strstr(rhead, "\r\nLocation: /elsewhere?x=1\r\n") != NULL);
        close(rfd);
    }

    /* Reject without set_reject: 401. */
    o = mode_options("default");
    tu_rec d;
    tu_rec_init(&d, "default reject");
    wsffi_conn *cd = tu_connect(env.reactor, u.s, o, &d);
    wsffi_client_options_free(o);
    expect_refused(&d, 401);

    /* A verdict out of range is a rejection too. */
    o = mode_options("garbage");
    tu_rec g;
    tu_rec_init(&g, "garbage verdict");
    wsffi_conn *cg = tu_connect(env.reactor, u.s, o, &g);
    wsffi_client_options_free(o);
    WAIT_UNTIL(g.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(g.opens, 0);
    CHECK_EQ(g.unexpected, 1);
    CHECK(g.resp_status >= 400 && g.resp_status <= 599);
    TU_UNLOCK();

    CHECK_EQ(LOCKED_INT(verify_calls), 7);
    CHECK_EQ(LOCKED_INT(env.fx.connections), 2);
    tu_env_stop(&env);
    TU_REC_DONE(&a);
    TU_REC_DONE(&r);
    TU_REC_DONE(&rd);
    TU_REC_DONE(&d);
    TU_REC_DONE(&g);
    wsffi_conn_release(ca);
    wsffi_conn_release(cr);
    wsffi_conn_release(crd);
    wsffi_conn_release(cd);
    wsffi_conn_release(cg);
}

/* ---- following redirects ------------------------------------------------------------ */

static uint16_t redirect_port;
static char final_cookie[64]; /* Cookie header seen by step=final, "-" for none */
static char final_auth[64];

/* Routes by the query: step=final accepts, others answer a redirect. */
static wsffi_verdict verify_redirects(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_CALLBACK_GUARD();
    const wsffi_request *req = wsffi_handshake_request(hs);
    const char *q = wsffi_request_query_string(req);
    char loc[128];
    TU_LOCK();
    verify_calls++;
    TU_UNLOCK_SIGNAL();
    if (strcmp(q, "step=final") == 0) {
        const char *cookie = wsffi_request_header(req, "cookie");
        const char *auth = wsffi_request_header(req, "authorization");
        TU_LOCK();
        snprintf(final_cookie, sizeof final_cookie, "%s", cookie ? cookie : "-");
        snprintf(final_auth, sizeof final_auth, "%s", auth ? auth : "-");
        TU_UNLOCK();
        return WSFFI_VERDICT_ACCEPT;
    }
    uint16_t status = 302;
    if (strcmp(q, "step=relative") == 0) {
        snprintf(loc, sizeof loc, "?step=final");
    } else if (strcmp(q, "step=chain") == 0) {
        status = 308; /* then an absolute http:// Location, read as ws:// */
        snprintf(loc, sizeof loc, "http://127.0.0.1:%u/?step=relative", (unsigned)redirect_port);
    } else if (strcmp(q, "step=otherhost") == 0) {
        status = 307;
        snprintf(loc, sizeof loc, "ws://localhost:%u/?step=final", (unsigned)redirect_port);
    } else if (strcmp(q, "step=loop1") == 0) {
        snprintf(loc, sizeof loc, "/?step=loop2");
    } else if (strcmp(q, "step=loop2") == 0) {
        status = 301;
        snprintf(loc, sizeof loc, "/?step=loop1");
    } else if (strcmp(q, "step=nolocation") == 0) {
        CHECK_OK(wsffi_handshake_set_reject(hs, 303, NULL));
        return WSFFI_VERDICT_REJECT;
    } else if (strncmp(q, "n=", 2) == 0) {
        snprintf(loc, sizeof loc, "/?n=%d", atoi(q + 2) + 1); /* an endless chain */
    } else {
        return WSFFI_VERDICT_REJECT;
    }
    CHECK_OK(wsffi_handshake_set_reject(hs, status, NULL));
    CHECK_OK(wsffi_handshake_add_header(hs, "Location", loc));
    return WSFFI_VERDICT_REJECT;
}

static wsffi_client_options *follow_options(bool follow, int max) {
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_follow_redirects(o, follow));
    if (max >= 0) {
        CHECK_OK(wsffi_client_options_set_max_redirects(o, (uint32_t)max));
    }
    CHECK_OK(wsffi_client_options_add_header(o, "Cookie", "sid=1"));
    CHECK_OK(wsffi_client_options_add_header(o, "Authorization", "Bearer t"));
    return o;
}

static void expect_failed(tu_rec *c, const char *needle) {
    WAIT_UNTIL(c->closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c->opens, 0);
    CHECK_STATUS(c->error_status, WSFFI_STATUS_ERR_HANDSHAKE_REJECTED);
    if (strstr(c->error_message, needle) == NULL) {
        fprintf(stderr, "  (message %s, wanted %s)\n", c->error_message, needle);
    }
    CHECK(strstr(c->error_message, needle) != NULL);
    TU_UNLOCK();
}

TEST(follow_redirects) {
    CHECK_STATUS(wsffi_client_options_set_follow_redirects(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_max_redirects(NULL, 3), WSFFI_STATUS_ERR_NULL_PARAMETER);
    tu_env env;
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = verify_redirects;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    redirect_port = env.port;
    char url[128];

    /* Off (the default): the 302 is an unexpected response. */
    tu_rec off;
    tu_rec_init(&off, "not following");
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/?step=relative", (unsigned)env.port);
    wsffi_client_options *o = wsffi_client_options_new();
    wsffi_conn *c_off = tu_connect(env.reactor, url, o, &off);
    wsffi_client_options_free(o);
    expect_refused(&off, 302);

    /* 308 to an absolute http:// URL, then 302 to a relative one, then open; same host so
     * the credentials stay. */
    tu_rec ok;
    tu_rec_init(&ok, "chain");
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/?step=chain", (unsigned)env.port);
    o = follow_options(true, -1);
    wsffi_conn *c_ok = tu_connect(env.reactor, url, o, &ok);
    wsffi_client_options_free(o);
    WAIT_UNTIL(ok.opens == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(final_cookie, "sid=1");
    CHECK_STR(final_auth, "Bearer t");
    TU_UNLOCK();
    CHECK_OK(wsffi_close(c_ok, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(ok.closes == 1, TU_WAIT_MS);

    /* Another host (localhost instead of 127.0.0.1): Cookie and Authorization dropped. */
    tu_rec far;
    tu_rec_init(&far, "other host");
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/?step=otherhost", (unsigned)env.port);
    o = follow_options(true, -1);
    wsffi_conn *c_far = tu_connect(env.reactor, url, o, &far);
    wsffi_client_options_free(o);
    WAIT_UNTIL(far.opens == 1 || far.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(far.opens, 1);
    CHECK_STR(final_cookie, "-");
    CHECK_STR(final_auth, "-");
    TU_UNLOCK();
    CHECK_OK(wsffi_close(c_far, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(far.closes == 1, TU_WAIT_MS);

    /* A loop, a redirect without Location, and the hop cap. */
    tu_rec loop, noloc, cap, cap0;
    tu_rec_init(&loop, "loop");
    tu_rec_init(&noloc, "no location");
    tu_rec_init(&cap, "cap");
    tu_rec_init(&cap0, "cap 0");
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/?step=loop1", (unsigned)env.port);
    o = follow_options(true, -1);
    wsffi_conn *c_loop = tu_connect(env.reactor, url, o, &loop);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/?step=nolocation", (unsigned)env.port);
    wsffi_conn *c_noloc = tu_connect(env.reactor, url, o, &noloc);
    wsffi_client_options_free(o);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/?n=0", (unsigned)env.port);
    o = follow_options(true, 3);
    wsffi_conn *c_cap = tu_connect(env.reactor, url, o, &cap);
    wsffi_client_options_free(o);
    o = follow_options(true, 0);
    wsffi_conn *c_cap0 = tu_connect(env.reactor, url, o, &cap0);
    wsffi_client_options_free(o);
    expect_failed(&loop, "redirect loop");
    expect_failed(&noloc, "without a Location");
    expect_failed(&cap, "too many redirects (more than 3)");
    expect_failed(&cap0, "too many redirects (more than 0)");

    tu_env_stop(&env);
    TU_REC_DONE(&off);
    TU_REC_DONE(&ok);
    TU_REC_DONE(&far);
    TU_REC_DONE(&loop);
    TU_REC_DONE(&noloc);
    TU_REC_DONE(&cap);
    TU_REC_DONE(&cap0);
    wsffi_conn_release(c_off);
    wsffi_conn_release(c_ok);
    wsffi_conn_release(c_far);
    wsffi_conn_release(c_loop);
    wsffi_conn_release(c_noloc);
    wsffi_conn_release(c_cap);
    wsffi_conn_release(c_cap0);
}

/* ---- deferred decisions -------------------------------------------------------------- */

static wsffi_handshake *pending;
static pthread_t verify_thread;

static wsffi_verdict verify_defer(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_CALLBACK_GUARD();
    TU_LOCK();
    pending = hs;
    verify_thread = pthread_self();
    TU_UNLOCK_SIGNAL();
    return WSFFI_VERDICT_DEFER;
}

static wsffi_handshake *wait_pending(void) {
    WAIT_UNTIL(pending != NULL, TU_WAIT_MS);
    TU_LOCK();
    wsffi_handshake *hs = pending;
    pending = NULL;
    TU_UNLOCK();
    REQUIRE(hs != NULL);
    return hs;
}

typedef struct decider {
    wsffi_handshake *hs;
    bool accept;
    wsffi_status status;
    pthread_t self;
} decider;

static void *decider_main(void *arg) {
    decider *d = arg;
    d->self = pthread_self();
    tu_sleep_ms(50);
    /* The request is readable from here too, until the decision. */
    CHECK_STR(wsffi_request_path(wsffi_handshake_request(d->hs)), "/");
    if (d->accept) {
        CHECK_OK(wsffi_handshake_add_header(d->hs, "X-Decided", "thread"));
        d->status = wsffi_handshake_accept(d->hs);
    } else {
        d->status = wsffi_handshake_reject(d->hs, 409, "Conflict here");
    }
    return NULL;
}

static void start_deferring(tu_env *env, const wsffi_listener_options *lo) {
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = verify_defer;
    pending = NULL;
    tu_env_start_with(env, "/", lo, NULL, &cbs);
}

TEST(defer_accept_from_thread) {
    tu_env env;
    start_deferring(&env, NULL);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    decider d = {wait_pending(), true, WSFFI_STATUS_ERR_INTERNAL, tu_main_thread};
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CONNECTING);
    pthread_t t = tu_thread_start(decider_main, &d);
    tu_thread_join(t);
    CHECK_OK(d.status);
    CHECK(!pthread_equal(d.self, verify_thread));
    WAIT_UNTIL(c.opens == 1, TU_WAIT_MS);
    WAIT_UNTIL(env.fx.connections == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_send_text(conn, "deferred", 8));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(defer_reject_from_thread) {
    tu_env env;
    start_deferring(&env, NULL);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    decider d = {wait_pending(), false, WSFFI_STATUS_ERR_INTERNAL, tu_main_thread};
    pthread_t t = tu_thread_start(decider_main, &d);
    tu_thread_join(t);
    CHECK_OK(d.status);
    expect_refused(&c, 409);
    CHECK_STR(c.resp_reason, "Conflict here");
    CHECK_EQ(LOCKED_INT(env.fx.connections), 0);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* The usual pattern: verify_client hands the handshake to a worker and returns DEFER; the
 * worker may decide before verify_client has returned (here it always does). */
typedef struct worker_queue {
    wsffi_handshake *hs;
    bool decided;
    wsffi_status status;
} worker_queue;
static worker_queue wq;

static void *worker_main(void *arg) {
    (void)arg;
    WAIT_UNTIL(wq.hs != NULL, TU_WAIT_MS);
    TU_LOCK();
    wsffi_handshake *hs = wq.hs;
    TU_UNLOCK();
    wsffi_status s = wsffi_handshake_accept(hs);
    TU_LOCK();
    wq.status = s;
    wq.decided = true;
    TU_UNLOCK_SIGNAL();
    return NULL;
}

static wsffi_verdict verify_via_worker(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_LOCK();
    wq.hs = hs;
    TU_UNLOCK_SIGNAL();
    /* Give the worker time to decide before DEFER is returned. */
    bool decided;
    WAIT_FOR(decided, wq.decided, 200 * tu_slow);
    (void)decided;
    return WSFFI_VERDICT_DEFER;
}

TEST(defer_decided_before_verify_returns) {
    memset(&wq, 0, sizeof wq);
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = verify_via_worker;
    tu_env env;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    pthread_t t = tu_thread_start(worker_main, NULL);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    tu_thread_join(t);
    CHECK_OK(wq.status);
    WAIT_UNTIL(c.opens == 1 || c.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c.opens), 1);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* verify_client may also decide on its own thread before returning DEFER. */
static wsffi_status decided_inside_status;

static wsffi_verdict verify_decides_itself(void *user, wsffi_handshake *hs) {
    (void)user;
    decided_inside_status = wsffi_handshake_reject(hs, 403, "decided in verify_client");
    return WSFFI_VERDICT_DEFER;
}

TEST(defer_decided_inside_verify) {
    decided_inside_status = WSFFI_STATUS_ERR_INTERNAL;
    wsffi_listener_options *lo = wsffi_listener_options_new();
    /* Long enough that a lost decision shows as a timeout, not as the refusal. */
    CHECK_OK(wsffi_listener_options_set_handshake_timeout_ms(lo, 10000));
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.verify_client = verify_decides_itself;
    tu_env env;
    tu_env_start_with(&env, "/", lo, NULL, &cbs);
    wsffi_listener_options_free(lo);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    expect_refused(&c, 403);
    CHECK_STR(c.resp_reason, "decided in verify_client");
    CHECK_OK(decided_inside_status);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* The listener's handshake timeout applies while a decision is pending. */
TEST(defer_timeout) {
    wsffi_listener_options *lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_handshake_timeout_ms(lo, 150));
    tu_env env;
    start_deferring(&env, lo);
    wsffi_listener_options_free(lo);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_connect(env.reactor, u.s, NULL, &c);
    wsffi_handshake *hs = wait_pending();
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    CHECK_STATUS(env.fx.client_error_status, WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_STATUS(wsffi_handshake_accept(hs), WSFFI_STATUS_ERR_TIMEOUT);
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.opens, 0);
    CHECK_EQ(c.errors_at_close, 1);
    CHECK_EQ(c.close_code, WSFFI_CLOSE_ABNORMAL);
    TU_UNLOCK();
    CHECK_EQ(LOCKED_INT(env.fx.connections), 0);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* ---- headers callback, origins, connection limit ------------------------------------- */

static int headers_calls;
static void add_headers(void *user, wsffi_handshake *hs) {
    (void)user;
    TU_CALLBACK_GUARD();
    const wsffi_request *req = wsffi_handshake_request(hs);
    CHECK_STR(wsffi_request_path(req), "/");
    CHECK_OK(wsffi_handshake_add_header(hs, "X-Hello", "world"));
    CHECK_OK(wsffi_handshake_add_header(hs, "Set-Cookie", "id=1"));
    CHECK_STATUS(wsffi_handshake_add_header(hs, "Bad Name", "x"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    TU_LOCK();
    headers_calls++;
    TU_UNLOCK_SIGNAL();
}

TEST(headers_callback) {
    tu_env env;
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.headers = add_headers;
    headers_calls = 0;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    int fd = tu_tcp_connect(env.port);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    CHECK(strstr(head, "\r\nX-Hello: world\r\n") != NULL);
    CHECK(strstr(head, "\r\nSet-Cookie: id=1\r\n") != NULL);
    CHECK(strstr(head, "Sec-WebSocket-Accept: " TU_WS_ACCEPT "\r\n") != NULL);
    CHECK(contains_ci(head, "upgrade: websocket"));
    CHECK_EQ(LOCKED_INT(headers_calls), 1);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    close(fd);
    WAIT_UNTIL(env.fx.conns[0].closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(env.fx.conns[0].close_code), WSFFI_CLOSE_ABNORMAL);
    tu_env_stop(&env);
}

/* The client reads the 101 answer, with the headers the server's callback added. */
TEST(client_reads_the_101_response) {
    tu_env env;
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.headers = add_headers;
    headers_calls = 0;
    tu_env_start_with(&env, "/", NULL, NULL, &cbs);
    CHECK(wsffi_conn_handshake_response(NULL) == NULL);
    /* Before open there is none. */
    uint16_t quiet_port = 0;
    int quiet = tu_tcp_listen(&quiet_port, 4);
    tu_url qu = tu_make_url(quiet_port, "/");
    tu_rec q;
    tu_rec_init(&q, "unanswered");
    wsffi_conn *waiting = tu_connect(env.reactor, qu.s, NULL, &q);
    CHECK(wsffi_conn_handshake_response(waiting) == NULL);

    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    const wsffi_response *resp = wsffi_conn_handshake_response(conn);
    REQUIRE(resp != NULL);
    CHECK_EQ(wsffi_response_status(resp), 101);
    CHECK_STR(wsffi_response_reason(resp), "Switching Protocols");
    CHECK_STR(wsffi_response_header(resp, "x-hello"), "world");
    CHECK_STR(wsffi_response_header(resp, "Set-Cookie"), "id=1");
    CHECK_STR(wsffi_response_header(resp, "Sec-WebSocket-Accept") ? "present" : "missing", "present");
    bool found_upgrade = false;
    for (size_t i = 0; i < wsffi_response_header_count(resp); i++) {
        const char *name = NULL, *value = NULL;
        CHECK_OK(wsffi_response_header_at(resp, i, &name, &value));
        if (strcmp(name, "Upgrade") == 0 || strcmp(name, "upgrade") == 0) {
            found_upgrade = strcmp(value, "websocket") == 0;
        }
    }
    CHECK(found_upgrade);
    size_t body_len = 99;
    wsffi_response_body(resp, &body_len);
    CHECK_EQ(body_len, 0);
    /* A server-side connection has no 101 of its own to read. */
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK(wsffi_conn_handshake_response(env.fx.conns[0].retained) == NULL);
    TU_UNLOCK();
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    TU_REC_DONE(&c);
    /* Still readable while the caller holds its reference, after close. */
    CHECK_EQ(wsffi_response_status(wsffi_conn_handshake_response(conn)), 101);
    wsffi_conn_release(conn);
    CHECK_OK(wsffi_terminate(waiting));
    TU_REC_DONE(&q);
    wsffi_conn_release(waiting);
    close(quiet);
    tu_env_stop(&env);
}

TEST(allowed_origins) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_add_allowed_origin(so, "http://good.example"));
    CHECK_OK(wsffi_server_options_add_allowed_origin(so, "https://also.example"));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    tu_url u = tu_make_url(env.port, "/");

    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_origin(o, "http://GOOD.example"));
    tu_rec ok;
    tu_rec_init(&ok, "good origin");
    wsffi_conn *cok = tu_open(env.reactor, u.s, o, &ok);
    wsffi_client_options_free(o);

    o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_origin(o, "http://evil.example"));
    tu_rec bad;
    tu_rec_init(&bad, "bad origin");
    wsffi_conn *cbad = tu_connect(env.reactor, u.s, o, &bad);
    wsffi_client_options_free(o);
    expect_refused(&bad, 403);
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(env.fx.connections), 1);
    tu_env_stop(&env);
    TU_REC_DONE(&ok);
    TU_REC_DONE(&bad);
    wsffi_conn_release(cok);
    wsffi_conn_release(cbad);
}

TEST(max_connections) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_max_connections(so, 1));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec a, b, c;
    tu_rec_init(&a, "first");
    tu_rec_init(&b, "second");
    tu_rec_init(&c, "third");
    wsffi_conn *ca = tu_open(env.reactor, u.s, NULL, &a);
    wsffi_conn *cb = tu_connect(env.reactor, u.s, NULL, &b);
    expect_refused(&b, 503);
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    /* Once the first is gone there is room again. */
    CHECK_OK(wsffi_close(ca, 1000, NULL, 0));
    WAIT_UNTIL(env.fx.conns[0].closes == 1 && a.closes == 1, TU_WAIT_MS);
    wsffi_conn *cc = tu_open(env.reactor, u.s, NULL, &c);
    CHECK_EQ(LOCKED_INT(env.fx.connections), 2);
    tu_env_stop(&env);
    TU_REC_DONE(&a);
    TU_REC_DONE(&b);
    TU_REC_DONE(&c);
    wsffi_conn_release(ca);
    wsffi_conn_release(cb);
    wsffi_conn_release(cc);
}

/* ---- the request view ---------------------------------------------------------------- */

typedef struct seen_request {
    bool done;
    const wsffi_request *copy;
    uint16_t port;
} seen_request;
static seen_request seen;

static void check_request(const wsffi_request *req, uint16_t port) {
    CHECK_STR(wsffi_request_method(req), "GET");
    CHECK_STR(wsffi_request_url(req), "/chat?room=1&name=a+b&enc=%41%20c&flag&room=2");
    CHECK_STR(wsffi_request_path(req), "/chat");
    CHECK_STR(wsffi_request_query_string(req), "room=1&name=a+b&enc=%41%20c&flag&room=2");
    CHECK_STR(wsffi_request_query(req, "room"), "1"); /* first occurrence */
    CHECK_STR(wsffi_request_query(req, "name"), "a b");
    CHECK_STR(wsffi_request_query(req, "enc"), "A c");
    CHECK_STR(wsffi_request_query(req, "flag"), "");
    CHECK(wsffi_request_query(req, "missing") == NULL);
    CHECK(wsffi_request_query(req, NULL) == NULL);
    CHECK_STR(wsffi_request_http_version(req), "1.1");
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", (unsigned)port);
    CHECK_STR(wsffi_request_host(req), host);
    CHECK_STR(wsffi_request_header(req, "HOST"), host);
    CHECK(tu_starts_with(wsffi_request_remote_address(req), "127.0.0.1:"));
    CHECK_STR(wsffi_request_header(req, "x-custom"), "hello there");
    CHECK_STR(wsffi_request_header(req, "X-CUSTOM"), "hello there");
    CHECK_STR(wsffi_request_header(req, "x-twice"), "first");
    CHECK_STR(wsffi_request_header(req, "origin"), "http://origin.example");
    CHECK(wsffi_request_has_header(req, "x-Custom"));
    CHECK(wsffi_request_has_header(req, "sec-websocket-key"));
    CHECK(!wsffi_request_has_header(req, "x-absent"));
    CHECK(wsffi_request_header(req, "x-absent") == NULL);
    CHECK(wsffi_request_header(req, NULL) == NULL);
    CHECK(!wsffi_request_has_header(req, NULL));
    /* The raw list: received order and spelling, duplicates kept. */
    size_t n = wsffi_request_header_count(req);
    CHECK(n >= 8);
    int custom_at = -1, twice = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        const char *value = NULL;
        CHECK_OK(wsffi_request_header_at(req, i, &name, &value));
        if (!name || !value) {
            continue;
        }
        if (strcmp(name, "X-Custom") == 0) {
            custom_at = (int)i;
            CHECK_STR(value, "hello there");
        }
        if (strcmp(name, "X-Twice") == 0) {
            CHECK_STR(value, twice == 0 ? "first" : "second");
            twice++;
        }
    }
    CHECK(custom_at >= 0);
    CHECK_EQ(twice, 2);
    const char *name = "untouched";
    const char *value = "untouched";
    /* Past the end: refused, and both outputs NULL rather than stale. */
    CHECK_STATUS(wsffi_request_header_at(req, n, &name, &value), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK(name == NULL && value == NULL);
    CHECK_STATUS(wsffi_request_header_at(req, 0, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
}

static void request_on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    tu_server_fx *fx = user;
    TU_LOCK();
    uint16_t port = seen.port;
    TU_UNLOCK();
    check_request(req, port);
    const wsffi_request *copy = wsffi_request_copy(req);
    CHECK(copy != NULL);
    tu_fx_on_connection(fx, server, conn, req);
    TU_LOCK();
    seen.copy = copy;
    seen.done = true;
    TU_UNLOCK_SIGNAL();
}

TEST(request_view) {
    tu_env env;
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.on_connection = request_on_connection;
    memset(&seen, 0, sizeof seen);
    tu_env_start_with(&env, "/chat", NULL, NULL, &cbs);
    TU_LOCK();
    seen.port = env.port;
    TU_UNLOCK();
    wsffi_client_options *o = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_add_header(o, "X-Custom", "hello there"));
    CHECK_OK(wsffi_client_options_add_header(o, "X-Twice", "first"));
    CHECK_OK(wsffi_client_options_add_header(o, "X-Twice", "second"));
    CHECK_OK(wsffi_client_options_set_origin(o, "http://origin.example"));
    tu_url u = tu_make_url(env.port, "/chat?room=1&name=a+b&enc=%41%20c&flag&room=2");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, u.s, o, &c);
    wsffi_client_options_free(o);
    WAIT_UNTIL(seen.done, TU_WAIT_MS);
    /* The copy outlives the callback, the connection and the reactor. */
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
    check_request(seen.copy, env.port);
    wsffi_request_free(seen.copy);
}

/* ---- client tracking and broadcast --------------------------------------------------- */

typedef struct visit {
    wsffi_conn *seen[8];
    int count;
    int open;
} visit;

static void visit_client(void *user, wsffi_conn *conn) {
    visit *v = user;
    /* Called on the calling thread (not a reactor callback). */
    CHECK(pthread_equal(pthread_self(), tu_main_thread));
    if (v->count < 8) {
        v->seen[v->count] = conn;
    }
    v->count++;
    v->open += wsffi_ready_state(conn) == WSFFI_OPEN;
}

TEST(clients_and_broadcast) {
    tu_env env;
    tu_env_start(&env, "/");
    env.fx.echo = false;
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c[3];
    wsffi_conn *conn[3];
    for (int i = 0; i < 3; i++) {
        tu_rec_init(&c[i], "client");
        conn[i] = tu_open(env.reactor, u.s, NULL, &c[i]);
    }
    WAIT_UNTIL(env.fx.connections == 3 && env.fx.conns[2].opens == 1, TU_WAIT_MS);
    WAIT_UNTIL(wsffi_server_client_count(env.server) == 3, TU_WAIT_MS);

    visit v;
    memset(&v, 0, sizeof v);
    CHECK_OK(wsffi_server_clients(env.server, visit_client, &v));
    CHECK_EQ(v.count, 3);
    CHECK_EQ(v.open, 3);
    for (int i = 0; i < 3 && i < v.count; i++) {
        bool known = false;
        for (int j = 0; j < 3; j++) {
            known = known || v.seen[i] == env.fx.conns[j].conn;
        }
        CHECK(known);
    }

    /* With out_sent: waits and counts. */
    size_t sent = 0;
    CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_TEXT, (const uint8_t *)"hello all", 9, &sent));
    CHECK_EQ(sent, 3);
    /* Without: returns at once. */
    CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_BINARY, (const uint8_t *)"\x01\x02", 2, NULL));
    CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_TEXT, NULL, 0, NULL));
    WAIT_UNTIL(c[0].messages == 3 && c[1].messages == 3 && c[2].messages == 3, TU_WAIT_MS);
    TU_LOCK();
    for (int i = 0; i < 3; i++) {
        CHECK_STR(c[i].log[0], "hello all");
        CHECK_EQ(c[i].log_kind[0], WSFFI_TEXT);
        CHECK(c[i].log_len[1] == 2 && c[i].log_kind[1] == WSFFI_BINARY);
        CHECK(c[i].log_len[2] == 0 && c[i].log_kind[2] == WSFFI_TEXT);
    }
    TU_UNLOCK();
    sent = 99;
    CHECK_STATUS(wsffi_server_broadcast(env.server, WSFFI_TEXT, (const uint8_t *)"\xff", 1, &sent), WSFFI_STATUS_ERR_INVALID_UTF8);
    CHECK_STATUS(wsffi_server_broadcast(env.server, 5, (const uint8_t *)"x", 1, &sent), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_EQ(sent, 99);

    /* One leaves: two remain. */
    CHECK_OK(wsffi_close(conn[1], 1000, NULL, 0));
    WAIT_UNTIL(c[1].closes == 1 && env.fx.conns[1].closes == 1, TU_WAIT_MS);
    WAIT_UNTIL(wsffi_server_client_count(env.server) == 2, TU_WAIT_MS);
    memset(&v, 0, sizeof v);
    CHECK_OK(wsffi_server_clients(env.server, visit_client, &v));
    CHECK_EQ(v.count, 2);
    CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_TEXT, (const uint8_t *)"two", 3, &sent));
    CHECK_EQ(sent, 2);
    WAIT_UNTIL(c[0].messages == 4 && c[2].messages == 4, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c[1].messages), 3);

    tu_env_stop(&env);
    for (int i = 0; i < 3; i++) {
        TU_REC_DONE(&c[i]);
        wsffi_conn_release(conn[i]);
    }
}

TEST(client_tracking_off) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_client_tracking(so, false));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    visit v;
    memset(&v, 0, sizeof v);
    CHECK_STATUS(wsffi_server_clients(env.server, visit_client, &v), WSFFI_STATUS_ERR_UNSUPPORTED);
    CHECK_EQ(v.count, 0);
    size_t sent = 42;
    CHECK_STATUS(wsffi_server_broadcast(env.server, WSFFI_TEXT, (const uint8_t *)"x", 1, &sent), WSFFI_STATUS_ERR_UNSUPPORTED);
    CHECK_EQ(sent, 42);
    CHECK_STATUS(wsffi_server_broadcast(env.server, WSFFI_TEXT, (const uint8_t *)"x", 1, NULL), WSFFI_STATUS_ERR_UNSUPPORTED);
    /* The connection itself works. */
    CHECK_OK(wsffi_send_text(conn, "x", 1));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(server_close) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c[2];
    wsffi_conn *conn[2];
    for (int i = 0; i < 2; i++) {
        tu_rec_init(&c[i], "client");
        conn[i] = tu_open(env.reactor, u.s, NULL, &c[i]);
    }
    WAIT_UNTIL(env.fx.connections == 2 && env.fx.conns[1].opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_server_close(env.server));
    env.server = NULL;
    WAIT_UNTIL(env.fx.closes == 1 && env.fx.destroys == 1, TU_WAIT_MS);
    TU_LOCK();
    /* on_close of the server comes after the last client's on_close. */
    CHECK_EQ(env.fx.clients_open_at_close, 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(env.fx.conns[i].closes, 1);
        CHECK_EQ(env.fx.conns[i].close_code, WSFFI_CLOSE_GOING_AWAY);
    }
    TU_UNLOCK();
    for (int i = 0; i < 2; i++) {
        WAIT_UNTIL(c[i].closes == 1, TU_WAIT_MS);
        CHECK_EQ(LOCKED_INT(c[i].close_code), WSFFI_CLOSE_GOING_AWAY);
        CHECK(LOCKED_INT(c[i].was_clean));
    }
    STAYS_TRUE(env.fx.closes == 1 && env.fx.destroys == 1, 50);
    /* The path is free again: upgrades there now get 404; the listener still answers. */
    tu_rec late;
    tu_rec_init(&late, "late");
    wsffi_conn *cl = tu_connect(env.reactor, u.s, NULL, &late);
    expect_refused(&late, 404);
    /* A server without clients closes at once. */
    tu_server_fx empty;
    tu_fx_init(&empty, "empty");
    wsffi_server *s2 = tu_attach(env.reactor, env.listener, "/", NULL, NULL, &empty);
    CHECK_OK(wsffi_server_close(s2));
    WAIT_UNTIL(empty.closes == 1 && empty.destroys == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    for (int i = 0; i < 2; i++) {
        TU_REC_DONE(&c[i]);
        wsffi_conn_release(conn[i]);
    }
    TU_REC_DONE(&late);
    wsffi_conn_release(cl);
}

/* ---- plain HTTP ---------------------------------------------------------------------- */

static int http_calls;
static void http_handler(void *user, const wsffi_request *req, wsffi_http_response *resp) {
    CHECK(user == &http_calls);
    TU_CALLBACK_GUARD();
    TU_LOCK();
    http_calls++;
    TU_UNLOCK_SIGNAL();
    const char *method = wsffi_request_method(req);
    CHECK(method != NULL && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0));
    const char *path = wsffi_request_path(req);
    if (path && strcmp(path, "/status") == 0) {
        /* Only final answers: a 1xx, above all 101, is refused. */
        CHECK_STATUS(wsffi_http_response_set_status(resp, 100, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_http_response_set_status(resp, 101, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_http_response_set_status(resp, 199, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STR(wsffi_request_query(req, "x"), "1");
        CHECK_STR(wsffi_request_header(req, "x-req"), "yes");
        CHECK_STATUS(wsffi_http_response_set_status(resp, 99, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_http_response_set_status(resp, 600, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_http_response_add_header(resp, "Bad Name", "x"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_http_response_add_header(resp, "X-A", "a\r\nb"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_STATUS(wsffi_http_response_set_body(resp, NULL, 3), WSFFI_STATUS_ERR_NULL_PARAMETER);
        CHECK_OK(wsffi_http_response_set_status(resp, 418, "I'm a teapot"));
        CHECK_OK(wsffi_http_response_add_header(resp, "X-Handler", "yes"));
        CHECK_OK(wsffi_http_response_add_header(resp, "Content-Type", "text/plain"));
        char body[] = "hello http";
        CHECK_OK(wsffi_http_response_set_body(resp, (const uint8_t *)body, 10));
        memset(body, 'X', 10); /* copied */
    } else if (path && strcmp(path, "/standard") == 0) {
        CHECK_OK(wsffi_http_response_set_status(resp, 404, NULL));
    }
    /* "/default": nothing set, 200 with an empty body. */
}

TEST(http_handler) {
    tu_env env;
    tu_env_start(&env, "/ws");
    http_calls = 0;
    CHECK_OK(wsffi_listener_set_http_handler(env.listener, http_handler, &http_calls));
    char out[4096];
    int st = raw_http(env.port, "GET /status?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Req: yes\r\n\r\n", out, sizeof out);
    CHECK_EQ(st, 418);
    CHECK(tu_starts_with(out, "HTTP/1.1 418 I'm a teapot\r\n"));
    CHECK(strstr(out, "\r\nX-Handler: yes\r\n") != NULL);
    CHECK(contains_ci(out, "\r\ncontent-length: 10\r\n"));
    const char *body = strstr(out, "\r\n\r\n");
    CHECK(body != NULL && strcmp(body + 4, "hello http") == 0);
    /* HEAD: the same head, GET's Content-Length, no body. */
    st = raw_http(env.port, "HEAD /status?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Req: yes\r\n\r\n", out, sizeof out);
    CHECK_EQ(st, 418);
    CHECK(contains_ci(out, "\r\ncontent-length: 10\r\n"));
    body = strstr(out, "\r\n\r\n");
    CHECK(body != NULL && body[4] == '\0');

    st = raw_http(env.port, "GET /default HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", out, sizeof out);
    CHECK_EQ(st, 200);
    CHECK(contains_ci(out, "\r\ncontent-length: 0\r\n"));
    st = raw_http(env.port, "GET /standard HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", out, sizeof out);
    CHECK(tu_starts_with(out, "HTTP/1.1 404 Not Found\r\n"));
    /* A plain GET on the WebSocket path goes to the handler too. */
    st = raw_http(env.port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", out, sizeof out);
    CHECK_EQ(st, 200);
    CHECK_EQ(LOCKED_INT(http_calls), 5);

    /* Upgrades still reach the server. */
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/ws");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    CHECK_EQ(LOCKED_INT(http_calls), 5);

    /* Without the handler: 404 off the WebSocket path. */
    CHECK_OK(wsffi_listener_set_http_handler(env.listener, NULL, NULL));
    st = raw_http(env.port, "GET /status?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", out, sizeof out);
    CHECK_EQ(st, 404);
    CHECK_EQ(LOCKED_INT(http_calls), 5);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(plain_get_without_handler) {
    tu_env env;
    tu_env_start(&env, "/ws");
    char out[4096];
    CHECK_EQ(raw_http(env.port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", out, sizeof out), 426);
    CHECK(contains_ci(out, "\r\nupgrade: websocket\r\n"));
    CHECK_EQ(raw_http(env.port, "GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", out, sizeof out), 404);
    /* HEAD gets the built-in answers without their bodies. */
    const char *heads[] = {"HEAD /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "HEAD /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"};
    int statuses[] = {426, 404};
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ(raw_http(env.port, heads[i], out, sizeof out), statuses[i]);
        CHECK(contains_ci(out, "\r\ncontent-length: "));
        CHECK(!contains_ci(out, "\r\ncontent-length: 0\r\n"));
        const char *end = strstr(out, "\r\n\r\n");
        CHECK(end != NULL && end[4] == '\0');
    }
    CHECK_EQ(LOCKED_INT(env.fx.connections), 0);
    tu_env_stop(&env);
}

/* A malformed upgrade (no key) gets 400 and is reported to on_client_error; a head larger
 * than max_header_bytes gets 431. */
TEST(bad_requests) {
    wsffi_listener_options *lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_max_header_bytes(lo, 512));
    tu_env env;
    tu_env_start_with(&env, "/", lo, NULL, NULL);
    wsffi_listener_options_free(lo);
    char out[4096];
    CHECK_EQ(raw_http(env.port,
                      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      out, sizeof out),
             400);
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    char req[2048];
    char filler[1001];
    memset(filler, 'a', 1000);
    filler[1000] = '\0';
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: %s\r\n\r\n", filler);
    CHECK_EQ(raw_http(env.port, req, out, sizeof out), 431);
    /* Version 8 is not supported: 426 with the supported version. */
    CHECK_EQ(raw_http(env.port,
                      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: " TU_WS_KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n",
                      out, sizeof out),
             426);
    CHECK(contains_ci(out, "sec-websocket-version: 13"));
    /* Content on an upgrade would be read as frames: 400, and no connection. */
    CHECK_EQ(raw_http(env.port,
                      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: " TU_WS_KEY "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 6\r\n\r\n"
                      "\x81\x80\0\0\0\0",
                      out, sizeof out),
             400);
    CHECK(strstr(out, "must not carry content") != NULL);
    CHECK_EQ(LOCKED_INT(env.fx.connections), 0);
    tu_env_stop(&env);
}

/* ---- listeners ----------------------------------------------------------------------- */

TEST(listener_close) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_url u = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    CHECK_OK(wsffi_listener_close(env.listener));
    env.listener = NULL;
    /* No longer accepting. */
    bool refused = false;
    for (int i = 0; i < 100 && !refused; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(env.port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        refused = connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno == ECONNREFUSED;
        close(fd);
        if (!refused) {
            tu_sleep_ms(10);
        }
    }
    CHECK(refused);
    /* The accepted connection and its server go on. */
    CHECK_OK(wsffi_send_text(conn, "still here", 10));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    CHECK_EQ(wsffi_server_client_count(env.server), 1);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(adopt_fd) {
    uint16_t port = 0;
    int fd = tu_tcp_listen(&port, 16);
    wsffi_reactor *r = tu_reactor_new();
    wsffi_listener *l = NULL;
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listener_adopt_fd(r, fd, NULL, &l, &err));
    wsffi_error_free(err);
    REQUIRE(l != NULL);
    CHECK_EQ(wsffi_listener_port(l), port);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    CHECK_STR(wsffi_listener_address(l), addr);
    tu_server_fx fx;
    tu_fx_init(&fx, "server");
    wsffi_server *s = tu_attach(r, l, "/", NULL, NULL, &fx);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(port, "/");
    wsffi_conn *conn = tu_open(r, u.s, NULL, &c);
    CHECK_OK(wsffi_send_text(conn, "adopted", 7));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    /* A descriptor that is not a listening socket: an error, and the fd is closed. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    wsffi_listener *bad = NULL;
    err = NULL;
    wsffi_status st = wsffi_listener_adopt_fd(r, p[0], NULL, &bad, &err);
    CHECK(st != WSFFI_STATUS_OK);
    CHECK(bad == NULL);
    CHECK(err != NULL && wsffi_error_status(err) == st);
    wsffi_error_free(err);
    CHECK(fcntl(p[0], F_GETFD) == -1 && errno == EBADF);
    close(p[1]);

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_server_close(s));
    WAIT_UNTIL(fx.closes == 1 && fx.destroys == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_listener_close(l));
    tu_reactor_free(r);
    TU_REC_DONE(&c);
    TU_REC_DONE(&fx.conns[0]);
    wsffi_conn_release(conn);
}

/* ---- handle_upgrade: an application's own HTTP server hands sockets over -------------- */

/* A masked client frame (FIN set) of a short payload. */
static size_t client_frame(uint8_t *out, uint8_t opcode, const char *payload) {
    size_t n = strlen(payload);
    REQUIRE(n < 126);
    const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    out[0] = (uint8_t)(0x80 | opcode);
    out[1] = (uint8_t)(0x80 | n);
    memcpy(out + 2, mask, 4);
    for (size_t i = 0; i < n; i++) {
        out[6 + i] = (uint8_t)payload[i] ^ mask[i % 4];
    }
    return 6 + n;
}

typedef struct app_server {
    int listen_fd;
    wsffi_server *server;
    int accepted;
    wsffi_status status;
} app_server;

/* Accepts one connection, reads until the end of the request head (maybe more) and hands
 * everything over. */
static void *app_server_main(void *arg) {
    app_server *a = arg;
    int fd = accept(a->listen_fd, NULL, NULL);
    CHECK(fd >= 0);
    if (fd < 0) {
        return NULL;
    }
    tu_set_timeouts(fd, TU_WAIT_MS);
    char buf[4096];
    size_t used = 0;
    while (used < sizeof buf && (used < 4 || strstr(buf, "\r\n\r\n") == NULL)) {
        ssize_t n = recv(fd, buf + used, sizeof buf - 1 - used, 0);
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
        buf[used] = '\0';
    }
    CHECK(strstr(buf, "\r\n\r\n") != NULL);
    a->accepted++;
    a->status = wsffi_server_handle_upgrade(a->server, fd, (const uint8_t *)buf, used);
    return NULL;
}

TEST(handle_upgrade) {
    wsffi_reactor *r = tu_reactor_new();
    tu_server_fx fx;
    tu_fx_init(&fx, "standalone");
    /* A standalone server: no listener. */
    wsffi_server *s = tu_attach(r, NULL, "/up", NULL, NULL, &fx);
    CHECK_STR(wsffi_server_path(s), "/up");
    CHECK_EQ(wsffi_server_client_count(s), 0);
    app_server app = {-1, s, 0, WSFFI_STATUS_ERR_INTERNAL};
    uint16_t port = 0;
    app.listen_fd = tu_tcp_listen(&port, 4);

    /* Our client through the application's socket. */
    pthread_t t = tu_thread_start(app_server_main, &app);
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(port, "/up?via=app");
    wsffi_conn *conn = tu_connect(r, u.s, NULL, &c);
    tu_thread_join(t);
    CHECK_OK(app.status);
    WAIT_UNTIL(c.opens == 1, TU_WAIT_MS);
    WAIT_UNTIL(fx.connections == 1, TU_WAIT_MS);
    CHECK_STR(fx.last_url, "/up?via=app");
    CHECK_OK(wsffi_send_text(conn, "handed over", 11));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    CHECK_STR(c.log[0], "handed over");
    CHECK_EQ(wsffi_server_client_count(s), 1);

    /* A raw client whose first frame arrives in the same read as the head: the bytes after
     * the head are part of what is handed over. */
    t = tu_thread_start(app_server_main, &app);
    int fd = tu_tcp_connect(port);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " TU_WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n");
    uint8_t frame[64];
    size_t flen = client_frame(frame, 0x1, "early");
    memcpy(req + n, frame, flen);
    tu_send_all(fd, req, (size_t)n + flen);
    tu_thread_join(t);
    CHECK_OK(app.status);
    char head[2048];
    size_t got = tu_recv_head(fd, head, sizeof head);
    CHECK(got > 0);
    CHECK_EQ(tu_http_status(head), 101);
    uint8_t echo[16];
    ssize_t en = recv(fd, echo, 7, MSG_WAITALL);
    CHECK(en == 7 && echo[0] == 0x81 && echo[1] == 5 && memcmp(echo + 2, "early", 5) == 0);
    close(fd);

    close(app.listen_fd);
    CHECK_OK(wsffi_server_close(s));
    WAIT_UNTIL(fx.closes == 1 && fx.destroys == 1, TU_WAIT_MS);
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c.close_code), WSFFI_CLOSE_GOING_AWAY);
    tu_reactor_free(r);
    TU_REC_DONE(&c);
    for (int i = 0; i < fx.connections; i++) {
        TU_REC_DONE(&fx.conns[i]);
    }
    wsffi_conn_release(conn);
}

/* ---- Unix sockets -------------------------------------------------------------------- */

TEST(unix_socket) {
    char path[108];
    snprintf(path, sizeof path, "/tmp/wsffi-ctest-%ld.sock", (long)getpid());
    unlink(path);
    char addr[128];
    snprintf(addr, sizeof addr, "unix:%s", path);
    wsffi_reactor *r = tu_reactor_new();
    wsffi_listener *l = NULL;
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listen(r, addr, NULL, &l, &err));
    if (err) {
        fprintf(stderr, "  %s\n", wsffi_error_message(err));
    }
    wsffi_error_free(err);
    REQUIRE(l != NULL);
    CHECK_EQ(wsffi_listener_port(l), 0);
    CHECK_STR(wsffi_listener_address(l), addr);
    tu_server_fx fx;
    tu_fx_init(&fx, "unix server");
    wsffi_server *s = tu_attach(r, l, "/", NULL, NULL, &fx);
    char url[256];
    snprintf(url, sizeof url, "ws+unix://%s:/", path);
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(r, url, NULL, &c);
    CHECK_OK(wsffi_send_text(conn, "over unix", 9));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    CHECK_STR(c.log[0], "over unix");
    WAIT_UNTIL(fx.connections == 1, TU_WAIT_MS);
    CHECK(tu_starts_with(wsffi_remote_address(conn), "unix"));
    CHECK(tu_starts_with(wsffi_remote_address(fx.conns[0].retained), "unix"));
    CHECK_STR(fx.last_url, "/");

    /* Listening twice on the same path: address in use. */
    wsffi_listener *l2 = NULL;
    CHECK_STATUS(wsffi_listen(r, addr, NULL, &l2, NULL), WSFFI_STATUS_ERR_ADDRESS_IN_USE);

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_server_close(s));
    WAIT_UNTIL(fx.closes == 1 && fx.destroys == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_listener_close(l));
    tu_reactor_free(r);
    TU_REC_DONE(&c);
    TU_REC_DONE(&fx.conns[0]);
    wsffi_conn_release(conn);
    unlink(path);
}

TU_MAIN(TU_CASE(two_paths), TU_CASE(unknown_path_404), TU_CASE(verify_client), TU_CASE(follow_redirects), TU_CASE(defer_accept_from_thread),
        TU_CASE(defer_reject_from_thread), TU_CASE(defer_decided_before_verify_returns), TU_CASE(defer_decided_inside_verify),
        TU_CASE(defer_timeout), TU_CASE(headers_callback), TU_CASE(client_reads_the_101_response),
        TU_CASE(allowed_origins), TU_CASE(max_connections), TU_CASE(request_view), TU_CASE(clients_and_broadcast),
        TU_CASE(client_tracking_off), TU_CASE(server_close), TU_CASE(http_handler), TU_CASE(plain_get_without_handler),
        TU_CASE(bad_requests), TU_CASE(listener_close), TU_CASE(adopt_fd), TU_CASE(handle_upgrade), TU_CASE(unix_socket))
