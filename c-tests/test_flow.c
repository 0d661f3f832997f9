/*
 * test_flow: output flow control (water marks, BACKPRESSURE, on_drain) and input flow
 * control (wsffi_conn_pause / wsffi_conn_resume).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "testutil.h"

#define CHUNK 16384
/* A server frame of CHUNK bytes: 2 header bytes + 2 bytes of extended length. */
#define CHUNK_FRAME (CHUNK + 4)

/* A raw client's reader: counts bytes until EOF once `go` is set. */
typedef struct reader {
    int fd;
    atomic_bool go;
    atomic_size_t bytes;
    bool eof;
} reader;

static void *reader_main(void *arg) {
    reader *r = arg;
    while (!atomic_load(&r->go)) {
        tu_sleep_ms(5);
    }
    char buf[65536];
    for (;;) {
        ssize_t n = recv(r->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            r->eof = n == 0;
            break;
        }
        atomic_fetch_add(&r->bytes, (size_t)n);
    }
    return NULL;
}

/* Sends CHUNK-byte binary messages until BACKPRESSURE lasts (the kernel buffers are full
 * too, so the output cannot drain): a refused send is retried after a pause, and once
 * 300 ms pass with neither an accepted send nor an on_drain the output is stuck. Returns
 * the messages accepted. */
static size_t fill_until_stuck(wsffi_conn *conn, const tu_rec *rec, const uint8_t *chunk) {
    size_t accepted = 0;
    int64_t refused_since = -1;
    long long drains_then = 0;
    int64_t deadline = tu_now_ms() + 6 * TU_WAIT_MS;
    while (tu_now_ms() < deadline) {
        wsffi_status s = wsffi_send_binary(conn, chunk, CHUNK);
        if (s == WSFFI_STATUS_OK) {
            accepted++;
            refused_since = -1;
            continue;
        }
        if (!CHECK_STATUS(s, WSFFI_STATUS_ERR_BACKPRESSURE)) {
            break;
        }
        long long drains = LOCKED_INT(rec->drains);
        if (refused_since < 0 || drains != drains_then) {
            refused_since = tu_now_ms();
            drains_then = drains;
        } else if (tu_now_ms() - refused_since >= 300 * tu_slow) {
            return accepted;
        }
        tu_sleep_ms(10);
    }
    tu_fail(__FILE__, __LINE__, "the output never stayed above the high-water mark");
    return accepted;
}

/* A server connection whose peer (a raw socket with a small receive buffer) sends the
 * upgrade and then does not read: sends from the server fill the buffer up to the high-water
 * mark and are refused with BACKPRESSURE; once the peer reads, on_drain fires. */
TEST(backpressure_and_drain) {
    const size_t high = 64 * 1024;
    const size_t low = 16 * 1024;
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_water_marks(so, high, low));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);

    int fd = tu_tcp_connect_buf(env.port, 4096);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    tu_rec *srv = &env.fx.conns[0];
    wsffi_conn *sconn = srv->retained;

    uint8_t *chunk = malloc(CHUNK);
    REQUIRE(chunk != NULL);
    memset(chunk, 0x5a, CHUNK);
    size_t accepted = fill_until_stuck(sconn, srv, chunk);
    printf("%zu chunks accepted before the output stayed full\n", accepted);
    /* Refused sends queued nothing; the buffer is above the high-water mark. */
    CHECK(wsffi_buffered_amount(sconn) > high);
    CHECK_STATUS(wsffi_send_binary(sconn, chunk, CHUNK), WSFFI_STATUS_ERR_BACKPRESSURE);
    CHECK_EQ(wsffi_ready_state(sconn), WSFFI_OPEN);
    int drains = (int)LOCKED_INT(srv->drains);
    STAYS_TRUE(srv->drains == drains && srv->closes == 0, 100);

    /* The peer starts reading: on_drain, then sends go through again. */
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.fd = fd;
    pthread_t t = tu_thread_start(reader_main, &rd);
    atomic_store(&rd.go, true);
    WAIT_UNTIL(srv->drains == drains + 1, TU_WAIT_MS);
    WAIT_UNTIL(wsffi_buffered_amount(sconn) <= low, TU_WAIT_MS);
    CHECK_OK(wsffi_send_binary(sconn, chunk, CHUNK));
    accepted++;
    CHECK_OK(wsffi_close(sconn, 1000, NULL, 0));
    /* The raw peer never answers the close; the server gives up after the close timeout,
     * or when we close the socket below. Every accepted byte, then the close frame (from
     * this thread, so asynchronous), reaches the peer before we end our side. */
    const size_t need = accepted * CHUNK_FRAME + 2;
    WAIT_UNTIL(atomic_load(&rd.bytes) >= need, TU_WAIT_MS);
    CHECK_EQ(wsffi_buffered_amount(sconn), 0);
    shutdown(fd, SHUT_WR);
    tu_thread_join(t);
    CHECK(rd.eof);
    if (atomic_load(&rd.bytes) < need) {
        tu_fail(__FILE__, __LINE__, "peer got %zu bytes, %zu accepted messages need %zu", atomic_load(&rd.bytes),
                accepted, need);
    }
    close(fd);
    WAIT_UNTIL(srv->closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(srv->drains), drains + 1);
    free(chunk);
    tu_env_stop(&env);
}

/* Client side: the server connection is paused (reads nothing), so the client's output
 * backs up to its high-water mark; resuming the server drains it. */
TEST(client_backpressure_with_paused_peer) {
    wsffi_client_options *co = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_water_marks(co, 32 * 1024, 8 * 1024));
    tu_env env;
    tu_env_start(&env, "/");
    env.fx.echo = false;
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, co, &c);
    wsffi_client_options_free(co);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    tu_rec *srv = &env.fx.conns[0];
    CHECK_OK(wsffi_conn_pause(srv->retained));
    tu_sleep_ms(20);

    uint8_t *chunk = malloc(CHUNK);
    REQUIRE(chunk != NULL);
    memset(chunk, 1, CHUNK);
    size_t accepted = fill_until_stuck(conn, &c, chunk);
    CHECK(wsffi_buffered_amount(conn) > 32 * 1024);
    int drains = (int)LOCKED_INT(c.drains);
    STAYS_TRUE(c.drains == drains, 50);
    CHECK_OK(wsffi_conn_resume(srv->retained));
    WAIT_UNTIL(c.drains == drains + 1, TU_WAIT_MS);
    WAIT_UNTIL(srv->messages == (int)accepted, 2 * TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(srv->total_bytes), (long long)accepted * CHUNK);
    free(chunk);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

TEST(pause_resume) {
    tu_env env;
    tu_env_start(&env, "/");
    env.fx.echo = false;
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    tu_rec *srv = &env.fx.conns[0];
    wsffi_conn *sconn = srv->retained;

    /* Server side paused: nothing is delivered until resumed, then everything in order. */
    CHECK_OK(wsffi_conn_pause(sconn));
    tu_sleep_ms(20);
    for (int i = 0; i < 10; i++) {
        char m[8];
        int n = snprintf(m, sizeof m, "p%d", i);
        CHECK_OK(wsffi_send_text(conn, m, (size_t)n));
    }
    STAYS_TRUE(srv->messages == 0, 200);
    CHECK_EQ(wsffi_ready_state(sconn), WSFFI_OPEN);
    CHECK_OK(wsffi_conn_resume(sconn));
    WAIT_UNTIL(srv->messages == 10, TU_WAIT_MS);
    TU_LOCK();
    for (int i = 0; i < 10; i++) {
        char m[8];
        snprintf(m, sizeof m, "p%d", i);
        CHECK_STR(srv->log[i], m);
    }
    TU_UNLOCK();

    /* Client side paused: the server's messages wait, pings are not answered meanwhile. */
    CHECK_OK(wsffi_conn_pause(conn));
    tu_sleep_ms(20);
    CHECK_OK(wsffi_send_text(sconn, "to paused", 9));
    CHECK_OK(wsffi_ping(sconn, (const uint8_t *)"hb", 2));
    STAYS_TRUE(c.messages == 0 && c.pings == 0 && srv->pongs == 0, 200);
    CHECK_OK(wsffi_conn_resume(conn));
    WAIT_UNTIL(c.messages == 1 && c.pings == 1 && srv->pongs == 1, TU_WAIT_MS);
    CHECK_STR(c.log[0], "to paused");

    /* Sending still works while paused (pause is about input only). */
    CHECK_OK(wsffi_conn_pause(conn));
    CHECK_OK(wsffi_send_text(conn, "out while paused", 16));
    WAIT_UNTIL(srv->messages == 11, TU_WAIT_MS);
    CHECK_OK(wsffi_conn_resume(conn));

    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* The echo-server pattern, all from callbacks: when an echo is refused with BACKPRESSURE,
 * keep it and pause reading from that client; on drain, send what was kept and resume. The
 * client gets every echo back, in order. */
typedef struct held {
    uint32_t kind[64];
    uint8_t *data[64];
    size_t len[64];
    int count;
    int pauses;
} held;
static held kept;

static void pausing_echo(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    wsffi_status s = kept.count > 0 ? WSFFI_STATUS_ERR_BACKPRESSURE : wsffi_send(conn, kind, data, len);
    if (s == WSFFI_STATUS_OK) {
        return;
    }
    CHECK_STATUS(s, WSFFI_STATUS_ERR_BACKPRESSURE);
    /* Messages already read may still arrive after a pause: keep them all. */
    REQUIRE(kept.count < 64);
    kept.kind[kept.count] = kind;
    kept.data[kept.count] = malloc(len ? len : 1);
    REQUIRE(kept.data[kept.count] != NULL);
    memcpy(kept.data[kept.count], data, len);
    kept.len[kept.count] = len;
    if (kept.count++ == 0) {
        CHECK_OK(wsffi_conn_pause(conn));
        kept.pauses++;
    }
}

static void resume_on_drain(void *user, wsffi_conn *conn) {
    tu_rec *rec = user;
    int sent = 0;
    while (sent < kept.count) {
        wsffi_status s = wsffi_send(conn, kept.kind[sent], kept.data[sent], kept.len[sent]);
        if (s != WSFFI_STATUS_OK) {
            CHECK_STATUS(s, WSFFI_STATUS_ERR_BACKPRESSURE);
            break;
        }
        free(kept.data[sent]);
        sent++;
    }
    memmove(kept.kind, kept.kind + sent, (size_t)(kept.count - sent) * sizeof kept.kind[0]);
    memmove(kept.data, kept.data + sent, (size_t)(kept.count - sent) * sizeof kept.data[0]);
    memmove(kept.len, kept.len + sent, (size_t)(kept.count - sent) * sizeof kept.len[0]);
    kept.count -= sent;
    if (kept.count == 0) {
        CHECK_OK(wsffi_conn_resume(conn));
    }
    TU_LOCK();
    rec->drains++;
    TU_UNLOCK_SIGNAL();
}

static void pausing_on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    tu_fx_on_connection(user, server, conn, req);
    tu_server_fx *fx = user;
    wsffi_conn_callbacks cbs = tu_callbacks();
    cbs.on_drain = resume_on_drain;
    TU_LOCK();
    tu_rec *rec = &fx->conns[fx->connections - 1];
    TU_UNLOCK();
    /* Replacing the user data runs the destroy installed by tu_fx_on_connection (same
     * recorder), so this one gets none: the recorder still sees exactly one destroy. */
    CHECK_OK(wsffi_conn_set_callbacks(conn, &cbs, rec, NULL));
}

TEST(pause_on_backpressure_from_callbacks) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_water_marks(so, 256 * 1024, 32 * 1024));
    memset(&kept, 0, sizeof kept);
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.on_connection = pausing_on_connection;
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, &cbs);
    wsffi_server_options_free(so);
    env.fx.echo = false;
    env.fx.message_hook = pausing_echo;
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    /* The client itself pauses reading for a while, so the server's output backs up. */
    CHECK_OK(wsffi_conn_pause(conn));
    uint8_t *chunk = malloc(CHUNK);
    REQUIRE(chunk != NULL);
    memset(chunk, 2, CHUNK);
    const int n = 512; /* 8 MiB */
    for (int i = 0; i < n; i++) {
        snprintf((char *)chunk, 8, "%05d", i);
        CHECK_OK(wsffi_send_binary(conn, chunk, CHUNK));
    }
    tu_sleep_ms(100);
    CHECK_OK(wsffi_conn_resume(conn));
    WAIT_UNTIL(c.messages == n, 4 * TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(c.total_bytes), (long long)n * CHUNK);
    WAIT_UNTIL(env.fx.conns[0].drains >= 1, TU_WAIT_MS);
    TU_LOCK();
    for (int i = 0; i < TU_LOG_MAX; i++) {
        char want[8];
        snprintf(want, sizeof want, "%05d", i);
        if (strncmp(c.log[i], want, 5) != 0) {
            tu_fail(__FILE__, __LINE__, "echo %d arrived as %.5s", i, c.log[i]);
            break;
        }
    }
    TU_UNLOCK();
    /* The library stops reading by itself once the output passes the high-water mark, so
     * the callback may never see WSFFI_STATUS_ERR_BACKPRESSURE; either way nothing is lost. */
    printf("server paused %d times\n", kept.pauses);
    free(chunk);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    tu_env_stop(&env);
    TU_REC_DONE(&c);
    wsffi_conn_release(conn);
}

/* A peer that floods pings and never reads: the automatic pongs pile up only to the
 * high-water mark, then the server stops reading from that peer; other clients are served. */
TEST(ping_flood_from_a_peer_that_never_reads) {
    const size_t high = 64 * 1024;
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_water_marks(so, high, high / 4));
    tu_env env;
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    int fd = tu_tcp_connect_buf(env.port, 4096);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);
    wsffi_conn *sconn = env.fx.conns[0].retained;

    /* Masked pings with 125-byte payloads, sent without blocking until the socket is stuck. */
    uint8_t frame[2 + 4 + 125];
    frame[0] = 0x89;
    frame[1] = 0x80 | 125;
    memset(frame + 2, 0, 4 + 125);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    size_t sent = 0;
    int64_t stuck_since = -1;
    int64_t deadline = tu_now_ms() + 10000 * tu_slow;
    size_t max_buffered = 0;
    size_t off = 0; /* bytes of the current frame already sent */
    while (tu_now_ms() < deadline && sent < (size_t)256 << 20) {
        ssize_t n = send(fd, frame + off, sizeof frame - off, MSG_NOSIGNAL);
        size_t b = wsffi_buffered_amount(sconn);
        max_buffered = b > max_buffered ? b : max_buffered;
        if (n > 0) {
            sent += (size_t)n;
            off = (off + (size_t)n) % sizeof frame;
            stuck_since = -1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (stuck_since < 0) {
                stuck_since = tu_now_ms();
            } else if (tu_now_ms() - stuck_since > 300 * tu_slow) {
                break;
            }
            tu_sleep_ms(1);
        } else {
            tu_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
            break;
        }
    }
    printf("sent %zu bytes of pings; server output peaked at %zu bytes\n", sent, max_buffered);
    /* The flood was stopped by TCP flow control, not by running out of time or data. */
    CHECK(stuck_since >= 0);
    /* Pongs answer what was read; reading stopped once they passed the mark (plus at most
     * one read buffer's worth of pings answered in the same pass). */
    CHECK(max_buffered <= high + 64 * 1024 * 2);
    CHECK(wsffi_buffered_amount(sconn) <= high + 64 * 1024 * 2);
    CHECK_EQ(wsffi_ready_state(sconn), WSFFI_OPEN);

    /* Another client is still served. */
    tu_rec c;
    tu_rec_init(&c, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &c);
    CHECK_OK(wsffi_send_text(conn, "still here", 10));
    WAIT_UNTIL(c.messages == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(c.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    TU_REC_DONE(&c);
    close(fd);
    tu_env_stop(&env);
}

/* ---- SIGPIPE ------------------------------------------------------------------------- */

/* A raw client on a Unix socket at `path`. */
static int unix_connect(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    tu_set_timeouts(fd, TU_WAIT_MS);
    return fd;
}

/* A peer sends large messages to an echo server and resets the connection right away: the
 * server reads them (and the reset), then writes the echoes from its callbacks straight to
 * the dead socket. With SIGPIPE at its default action a single write that raised it would
 * kill the test program; the writes must fail with EPIPE instead. */
static void peer_leaves_mid_send(bool unix_socket) {
    char path[108];
    snprintf(path, sizeof path, "/tmp/wsffi-sigpipe-%d.sock", (int)getpid());
    tu_env env;
    int fd;
    if (unix_socket) {
        unlink(path);
        memset(&env, 0, sizeof env);
        tu_fx_init(&env.fx, "unix server");
        env.reactor = tu_reactor_new();
        char address[128];
        snprintf(address, sizeof address, "unix:%s", path);
        REQUIRE(wsffi_listen(env.reactor, address, NULL, &env.listener, NULL) == WSFFI_STATUS_OK);
        env.server = tu_attach(env.reactor, env.listener, "/", NULL, NULL, &env.fx);
        fd = unix_connect(path);
    } else {
        tu_env_start(&env, "/");
        fd = tu_tcp_connect_buf(env.port, 4096);
    }
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    WAIT_UNTIL(env.fx.connections == 1 && env.fx.conns[0].opens == 1, TU_WAIT_MS);

    /* Echoes of large messages are written from the reactor thread straight to the socket;
     * the peer sends some and resets the connection at once. */
    uint8_t frame[14 + 65536];
    frame[0] = 0x82;
    frame[1] = 0x80 | 127;
    memset(frame + 2, 0, 12 + 65536);
    frame[2 + 5] = 0x01; /* 65536 as a 64-bit length */
    for (int i = 0; i < 4; i++) {
        tu_send_all(fd, frame, sizeof frame);
    }
    /* Small echoes go through the output buffer and a plain write instead. */
    uint8_t small[8 + 1000]; /* header, 16-bit length, zero mask, payload */
    memset(small, 0, sizeof small);
    small[0] = 0x82;
    small[1] = 0x80 | 126;
    small[2] = 1000 >> 8;
    small[3] = 1000 & 0xff;
    for (int i = 0; i < 64; i++) {
        tu_send_all(fd, small, sizeof small);
    }
    struct linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
    WAIT_UNTIL(env.fx.conns[0].closes == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(env.fx.conns[0].close_code), WSFFI_CLOSE_ABNORMAL);
    tu_env_stop(&env);
    if (unix_socket) {
        unlink(path);
    }
}

TEST(no_sigpipe_when_the_peer_leaves_mid_send) {
    /* The default action (terminate), unblocked in this thread and so in the reactor thread
     * that inherits its mask. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    peer_leaves_mid_send(false);
    peer_leaves_mid_send(true);
}

TU_MAIN(TU_CASE(backpressure_and_drain), TU_CASE(client_backpressure_with_paused_peer), TU_CASE(pause_resume),
        TU_CASE(pause_on_backpressure_from_callbacks), TU_CASE(ping_flood_from_a_peer_that_never_reads),
        TU_CASE(no_sigpipe_when_the_peer_leaves_mid_send))
