/*
 * Automatic reconnect (wsffi_client_options_set_reconnect) against a real server process:
 * this program started again as `test_reconnect --serve PORT` runs a wsffi echo server
 * until it is killed. Cases kill it with SIGKILL, let the client reconnect with growing
 * delays, start it again on the same port, and check the same conn handle opens and
 * echoes again; a server that accepts TCP and never answers the upgrade during a reconnect
 * times each attempt out; attempts run out; close and stop during the wait; sends while
 * reconnecting are refused with WSFFI_STATUS_ERR_RECONNECTING.
 */
#include "testutil.h"

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>

static char self_path[4096];

/* ---- the server process --------------------------------------------------------------- */

static void serve_on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)user;
    (void)wsffi_send(conn, kind, data, len);
}

static void serve_on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    (void)user;
    (void)server;
    (void)req;
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_message = serve_on_message;
    (void)wsffi_conn_set_callbacks(conn, &cbs, NULL, NULL);
}

/* Runs an echo server on 127.0.0.1:`port`, prints its port, waits to be killed. The socket
 * listens only once the server is attached: a client that connects in between would be
 * answered 404 (no server at the path), which is final. */
static int serve(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        return 2;
    }
    wsffi_reactor *r = NULL;
    wsffi_listener *l = NULL;
    wsffi_server *s = NULL;
    if (wsffi_reactor_new(NULL, &r, NULL) != WSFFI_STATUS_OK || wsffi_listener_adopt_fd(r, fd, NULL, &l, NULL) != WSFFI_STATUS_OK) {
        return 3;
    }
    wsffi_server_callbacks cbs;
    wsffi_server_callbacks_init(&cbs, sizeof cbs);
    cbs.on_connection = serve_on_connection;
    if (wsffi_server_attach(r, l, "/", NULL, &cbs, NULL, NULL, &s, NULL) != WSFFI_STATUS_OK || listen(fd, 128) != 0) {
        return 4;
    }
    printf("%u\n", (unsigned)wsffi_listener_port(l));
    fflush(stdout);
    for (;;) {
        pause();
    }
}

typedef struct server_proc {
    pid_t pid;
    uint16_t port;
} server_proc;

/* Starts the server process on 127.0.0.1:`port` (0: any) and waits until it listens. */
static server_proc spawn_server(uint16_t port) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    char port_arg[16];
    snprintf(port_arg, sizeof port_arg, "%u", (unsigned)port);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec: the parent has threads. */
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char *argv[] = {self_path, "--serve", port_arg, NULL};
        execv(self_path, argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t used = 0;
    int64_t deadline = tu_now_ms() + TU_WAIT_MS;
    while (used + 1 < sizeof line && strchr(line, '\n') == NULL && tu_now_ms() < deadline) {
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        ssize_t n = read(fds[0], line + used, sizeof line - 1 - used);
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
    }
    close(fds[0]);
    server_proc sp = {pid, (uint16_t)atoi(line)};
    if (sp.port == 0 || (port != 0 && sp.port != port)) {
        tu_fail(__FILE__, __LINE__, "server process did not start on port %u (got \"%s\")", (unsigned)port, line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    REQUIRE(sp.port != 0);
    return sp;
}

static void kill_server(server_proc *sp) {
    if (sp->pid > 0) {
        CHECK(kill(sp->pid, SIGKILL) == 0);
        int status = 0;
        CHECK(waitpid(sp->pid, &status, 0) == sp->pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        sp->pid = 0;
    }
}

/* ---- a recorder for a reconnecting client --------------------------------------------- */

#define MAX_ATTEMPTS 64

typedef struct rc_rec {
    wsffi_conn *conn;
    int opens, messages, reconnects, errors, closes, destroys, after_close;
    char last_message[64];
    uint32_t attempt[MAX_ATTEMPTS];
    uint32_t delay_ms[MAX_ATTEMPTS];
    wsffi_status status[MAX_ATTEMPTS];
    char message[MAX_ATTEMPTS][160];
    uint16_t lost_code[MAX_ATTEMPTS];
    uint32_t state_in_reconnect;
    wsffi_status send_in_reconnect;
    wsffi_status error_status;
    char error_message[256];
    uint16_t close_code;
    wsffi_close_origin close_origin;
    int errors_at_close;
    /* from on_reconnect: 1 = wsffi_close, 2 = wsffi_conn_stop_reconnect, at this attempt */
    int stop_how;
    uint32_t stop_at;
} rc_rec;

static void rc_seen(rc_rec *rec, wsffi_conn *conn) {
    if (rec->conn == NULL) {
        rec->conn = conn;
    }
    CHECK(rec->conn == conn);
    if (rec->closes > 0) {
        rec->after_close++;
    }
}

static void rc_on_open(void *user, wsffi_conn *conn) {
    rc_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_OPEN);
    TU_LOCK();
    rc_seen(rec, conn);
    rec->opens++;
    TU_UNLOCK_SIGNAL();
}

static void rc_on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    rc_rec *rec = user;
    TU_CALLBACK_GUARD();
    (void)kind;
    TU_LOCK();
    rc_seen(rec, conn);
    rec->messages++;
    size_t n = len < sizeof rec->last_message - 1 ? len : sizeof rec->last_message - 1;
    memcpy(rec->last_message, data, n);
    rec->last_message[n] = '\0';
    TU_UNLOCK_SIGNAL();
}

static void rc_on_reconnect(void *user, wsffi_conn *conn, uint32_t attempt, uint32_t delay_ms, wsffi_status status,
                            const char *message, const wsffi_close_info *info) {
    rc_rec *rec = user;
    TU_CALLBACK_GUARD();
    CHECK(message != NULL && message[0] != '\0');
    CHECK(info != NULL && info->size >= sizeof *info && info->reason != NULL);
    CHECK(status != WSFFI_STATUS_OK);
    uint32_t state = wsffi_ready_state(conn);
    wsffi_status sent = wsffi_send_text(conn, "x", 1);
    TU_LOCK();
    rc_seen(rec, conn);
    int i = rec->reconnects < MAX_ATTEMPTS ? rec->reconnects : MAX_ATTEMPTS - 1;
    rec->attempt[i] = attempt;
    rec->delay_ms[i] = delay_ms;
    rec->status[i] = status;
    snprintf(rec->message[i], sizeof rec->message[i], "%s", message ? message : "");
    rec->lost_code[i] = info ? info->code : 0;
    rec->state_in_reconnect = state;
    rec->send_in_reconnect = sent;
    rec->reconnects++;
    int how = rec->stop_how;
    bool stop = how != 0 && attempt == rec->stop_at;
    TU_UNLOCK_SIGNAL();
    if (stop && how == 1) {
        CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    } else if (stop && how == 2) {
        CHECK_OK(wsffi_conn_stop_reconnect(conn));
    }
}

static void rc_on_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
    rc_rec *rec = user;
    TU_CALLBACK_GUARD();
    TU_LOCK();
    rc_seen(rec, conn);
    rec->errors++;
    rec->error_status = status;
    snprintf(rec->error_message, sizeof rec->error_message, "%s", message ? message : "");
    TU_UNLOCK_SIGNAL();
}

static void rc_on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    rc_rec *rec = user;
    TU_CALLBACK_GUARD();
    TU_LOCK();
    rc_seen(rec, conn);
    rec->closes++;
    rec->close_code = info->code;
    rec->close_origin = info->origin;
    rec->errors_at_close = rec->errors;
    TU_UNLOCK_SIGNAL();
}

static void rc_destroy(void *user) {
    rc_rec *rec = user;
    TU_LOCK();
    rec->destroys++;
    TU_UNLOCK_SIGNAL();
}

static wsffi_conn *rc_connect(wsffi_reactor *r, uint16_t port, const wsffi_client_options *opts, rc_rec *rec) {
    wsffi_conn_callbacks cbs;
    CHECK_OK(wsffi_conn_callbacks_init(&cbs, sizeof cbs));
    cbs.on_open = rc_on_open;
    cbs.on_message = rc_on_message;
    cbs.on_reconnect = rc_on_reconnect;
    cbs.on_error = rc_on_error;
    cbs.on_close = rc_on_close;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)port);
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    wsffi_status s = wsffi_connect(r, url, opts, &cbs, rec, rc_destroy, &conn, &err);
    if (s != WSFFI_STATUS_OK) {
        tu_fail(__FILE__, __LINE__, "connect: %s: %s", wsffi_status_str(s), wsffi_error_message(err));
        wsffi_error_free(err);
    }
    REQUIRE(s == WSFFI_STATUS_OK && conn != NULL);
    return conn;
}

static wsffi_client_options *rc_options(uint32_t initial, double factor, uint32_t max, uint32_t attempts) {
    wsffi_client_options *o = wsffi_client_options_new();
    REQUIRE(o != NULL);
    CHECK_OK(wsffi_client_options_set_reconnect(o, initial, factor, max, attempts));
    return o;
}

/* How many attempts were scheduled after a failure with `status` (tu_mutex held). */
static int count_status(const rc_rec *rec, wsffi_status status) {
    int n = 0;
    for (int i = 0; i < rec->reconnects && i < MAX_ATTEMPTS; i++) {
        n += rec->status[i] == status;
    }
    return n;
}

/* The delays of attempts 1..n lie in the equal-jitter band of initial * factor^(n-1). */
static void check_delays(const rc_rec *rec, int n, uint32_t initial, double factor, uint32_t max) {
    double base = initial;
    for (int i = 0; i < n && i < MAX_ATTEMPTS; i++) {
        uint32_t b = base > max ? max : (uint32_t)base;
        if (!(rec->delay_ms[i] >= b / 2 && rec->delay_ms[i] <= b)) {
            tu_fail(__FILE__, __LINE__, "attempt %d: delay %u ms outside [%u, %u]", i + 1, rec->delay_ms[i], b / 2, b);
        }
        CHECK_EQ(rec->attempt[i], (uint32_t)i + 1);
        base *= factor;
    }
}

/* ---- cases ------------------------------------------------------------------------------ */

TEST(options_and_statuses) {
    wsffi_client_options *o = wsffi_client_options_new();
    REQUIRE(o != NULL);
    CHECK_STATUS(wsffi_client_options_set_reconnect(NULL, 100, 2.0, 1000, 0), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_reconnect(o, 100, 0.5, 1000, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_reconnect(o, 100, 2.0, 50, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_reconnect(o, 100, INFINITY, 1000, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_reconnect(o, 100, NAN, 1000, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_reconnect(o, 100, 1001.0, 1000000, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_client_options_set_reconnect(o, 100, 1.0, 100, 1));
    CHECK_OK(wsffi_client_options_set_reconnect(o, 0, 0.0, 0, 0)); /* off again */
    wsffi_client_options_free(o);
    CHECK_STATUS(wsffi_conn_stop_reconnect(NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(WSFFI_STATUS_ERR_RECONNECTING, 207);
    CHECK(strstr(wsffi_status_str(WSFFI_STATUS_ERR_RECONNECTING), "reconnecting") != NULL);

    /* Without reconnect a failed dial ends at once and stop_reconnect changes nothing. */
    wsffi_reactor *r = tu_reactor_new();
    rc_rec rec;
    memset(&rec, 0, sizeof rec);
    wsffi_conn *conn = rc_connect(r, tu_unused_port(), NULL, &rec);
    wsffi_status stopped = wsffi_conn_stop_reconnect(conn); /* may come after the refusal */
    CHECK(stopped == WSFFI_STATUS_OK || stopped == WSFFI_STATUS_ERR_CLOSED);
    WAIT_UNTIL(rec.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(rec.reconnects, 0);
    CHECK_EQ(rec.errors, 1);
    CHECK_EQ(rec.error_status, WSFFI_STATUS_ERR_CONNECTION_REFUSED);
    CHECK_STATUS(wsffi_conn_stop_reconnect(conn), WSFFI_STATUS_ERR_CLOSED);
    wsffi_conn_release(conn);
    tu_reactor_free(r);
}

TEST(kill_and_restart_the_server) {
    server_proc sp = spawn_server(0);
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = rc_options(50, 2.0, 400, 0);
    rc_rec rec;
    memset(&rec, 0, sizeof rec);
    wsffi_conn *conn = rc_connect(r, sp.port, o, &rec);
    wsffi_client_options_free(o);
    WAIT_UNTIL(rec.opens == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_send_text(conn, "first", 5));
    WAIT_UNTIL(rec.messages == 1, TU_WAIT_MS);
    CHECK_STR(rec.last_message, "first");

    kill_server(&sp);
    WAIT_UNTIL(rec.reconnects >= 4, TU_WAIT_MS * 2);
    TU_LOCK();
    /* The killed process's socket ended without a close frame; the dials after it are refused. */
    CHECK_EQ(rec.lost_code[0], WSFFI_CLOSE_ABNORMAL);
    CHECK(rec.status[0] == WSFFI_STATUS_ERR_CONNECTION_RESET || rec.status[0] == WSFFI_STATUS_ERR_IO);
    for (int i = 1; i < 4; i++) {
        CHECK_EQ(rec.status[i], WSFFI_STATUS_ERR_CONNECTION_REFUSED);
        CHECK(strstr(rec.message[i], "connect to 127.0.0.1:") != NULL);
    }
    check_delays(&rec, 4, 50, 2.0, 400);
    CHECK_EQ(rec.state_in_reconnect, WSFFI_CONNECTING);
    CHECK_EQ(rec.send_in_reconnect, WSFFI_STATUS_ERR_RECONNECTING);
    CHECK_EQ(rec.errors, 0);
    CHECK_EQ(rec.closes, 0);
    TU_UNLOCK();
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CONNECTING);
    CHECK_STATUS(wsffi_send_text(conn, "lost", 4), WSFFI_STATUS_ERR_RECONNECTING);
    CHECK_STATUS(wsffi_ping(conn, NULL, 0), WSFFI_STATUS_ERR_RECONNECTING);

    /* Back on the same port: the same handle opens again and echoes. */
    server_proc again = spawn_server(sp.port);
    WAIT_UNTIL(rec.opens == 2, TU_WAIT_MS * 2);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_OPEN);
    CHECK(strstr(wsffi_remote_address(conn), "127.0.0.1:") != NULL);
    CHECK(wsffi_conn_handshake_response(conn) != NULL);
    CHECK_OK(wsffi_send_text(conn, "second", 6));
    WAIT_UNTIL(rec.messages == 2, TU_WAIT_MS);
    CHECK_STR(rec.last_message, "second");

    CHECK_OK(wsffi_close(conn, 1000, "bye", 3));
    WAIT_UNTIL(rec.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(rec.closes, 1);
    CHECK_EQ(rec.errors, 0);
    CHECK_EQ(rec.close_code, 1000);
    CHECK_EQ(rec.after_close, 0);
    CHECK_STATUS(wsffi_send_text(conn, "x", 1), WSFFI_STATUS_ERR_CLOSED);
    wsffi_conn_release(conn);
    tu_reactor_free(r);
    kill_server(&again);
}

/* A socket bound to 127.0.0.1:`port` and listening that never accepts: the kernel completes
 * the TCP handshake, nobody answers the upgrade. */
static int silent_listener(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    int one = 1;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    REQUIRE(listen(fd, 16) == 0);
    return fd;
}

TEST(server_stops_answering_during_reconnect) {
    server_proc sp = spawn_server(0);
    uint16_t port = sp.port;
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = rc_options(20, 2.0, 80, 0);
    CHECK_OK(wsffi_client_options_set_handshake_timeout_ms(o, (uint32_t)(200 * tu_slow)));
    rc_rec rec;
    memset(&rec, 0, sizeof rec);
    wsffi_conn *conn = rc_connect(r, port, o, &rec);
    wsffi_client_options_free(o);
    WAIT_UNTIL(rec.opens == 1, TU_WAIT_MS);

    /* The port answers TCP again before the client notices the server is gone. */
    kill_server(&sp);
    int silent = silent_listener(port);
    WAIT_UNTIL(count_status(&rec, WSFFI_STATUS_ERR_TIMEOUT) >= 2, TU_WAIT_MS * 2);
    TU_LOCK();
    int base = rec.reconnects;
    for (int i = 0; i < rec.reconnects && i < MAX_ATTEMPTS; i++) {
        if (rec.status[i] == WSFFI_STATUS_ERR_TIMEOUT) {
            CHECK_STR(rec.message[i], "opening handshake timed out");
        }
    }
    CHECK_EQ(rec.errors, 0);
    CHECK_EQ(rec.closes, 0);
    TU_UNLOCK();
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CONNECTING);

    /* The real server comes back on the port: the next attempt opens. */
    close(silent);
    server_proc again = spawn_server(port);
    WAIT_UNTIL(rec.opens == 2, TU_WAIT_MS * 2);
    CHECK(LOCKED_INT(rec.reconnects) >= base);
    CHECK_OK(wsffi_send_text(conn, "back", 4));
    WAIT_UNTIL(rec.messages == 1, TU_WAIT_MS);
    CHECK_STR(rec.last_message, "back");
    wsffi_conn_release(conn);
    /* Freeing the reactor ends the open connection once: shutdown is never retried. */
    tu_reactor_free(r);
    CHECK_EQ(rec.closes, 1);
    CHECK_EQ(rec.destroys, 1);
    kill_server(&again);
}

TEST(server_process_stopped_and_continued) {
    /* SIGSTOP: the process stops answering, but its kernel still completes TCP handshakes.
     * The open connection misses its pong; each attempt connects and times out waiting
     * for the 101; after SIGCONT the next attempt opens. */
    server_proc sp = spawn_server(0);
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = rc_options(20, 2.0, 100, 0);
    CHECK_OK(wsffi_client_options_set_ping_interval_ms(o, (uint32_t)(150 * tu_slow)));
    CHECK_OK(wsffi_client_options_set_handshake_timeout_ms(o, (uint32_t)(250 * tu_slow)));
    rc_rec rec;
    memset(&rec, 0, sizeof rec);
    wsffi_conn *conn = rc_connect(r, sp.port, o, &rec);
    wsffi_client_options_free(o);
    WAIT_UNTIL(rec.opens == 1, TU_WAIT_MS);
    CHECK(kill(sp.pid, SIGSTOP) == 0);
    WAIT_UNTIL(count_status(&rec, WSFFI_STATUS_ERR_TIMEOUT) >= 3, TU_WAIT_MS * 2);
    TU_LOCK();
    CHECK_EQ(rec.status[0], WSFFI_STATUS_ERR_TIMEOUT);
    CHECK_STR(rec.message[0], "no pong within the ping interval");
    CHECK_STR(rec.message[1], "opening handshake timed out");
    CHECK_EQ(rec.opens, 1);
    CHECK_EQ(rec.errors + rec.closes, 0);
    TU_UNLOCK();
    CHECK_STATUS(wsffi_send_text(conn, "x", 1), WSFFI_STATUS_ERR_RECONNECTING);
    CHECK(kill(sp.pid, SIGCONT) == 0);
    WAIT_UNTIL(rec.opens == 2, TU_WAIT_MS * 2);
    CHECK_OK(wsffi_send_text(conn, "awake", 5));
    WAIT_UNTIL(rec.messages == 1, TU_WAIT_MS);
    CHECK_STR(rec.last_message, "awake");
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    WAIT_UNTIL(rec.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(rec.closes, 1);
    CHECK_EQ(rec.errors, 0);
    wsffi_conn_release(conn);
    tu_reactor_free(r);
    kill_server(&sp);
}

TEST(attempts_run_out) {
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = rc_options(10, 3.0, 200, 3);
    rc_rec rec;
    memset(&rec, 0, sizeof rec);
    wsffi_conn *conn = rc_connect(r, tu_unused_port(), o, &rec);
    wsffi_client_options_free(o);
    WAIT_UNTIL(rec.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(rec.reconnects, 3);
    check_delays(&rec, 3, 10, 3.0, 200);
    CHECK_EQ(rec.opens, 0);
    CHECK_EQ(rec.errors, 1);
    CHECK_EQ(rec.errors_at_close, 1);
    CHECK_EQ(rec.error_status, WSFFI_STATUS_ERR_CONNECTION_REFUSED);
    CHECK(tu_starts_with(rec.error_message, "gave up reconnecting after 3 attempts: connect to 127.0.0.1:"));
    CHECK_EQ(rec.closes, 1);
    CHECK_EQ(rec.close_code, WSFFI_CLOSE_ABNORMAL);
    CHECK_EQ(rec.after_close, 0);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CLOSED);
    wsffi_conn_release(conn);
    tu_reactor_free(r);
}

TEST(close_and_stop_during_the_wait) {
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = rc_options(60000, 2.0, 60000, 0);
    uint16_t port = tu_unused_port();

    /* wsffi_close from another thread while waiting. */
    rc_rec a;
    memset(&a, 0, sizeof a);
    wsffi_conn *ca = rc_connect(r, port, o, &a);
    WAIT_UNTIL(a.reconnects == 1, TU_WAIT_MS);
    CHECK_EQ(wsffi_ready_state(ca), WSFFI_CONNECTING);
    CHECK_STATUS(wsffi_send_binary(ca, (const uint8_t *)"x", 1), WSFFI_STATUS_ERR_RECONNECTING);
    CHECK_OK(wsffi_close(ca, 1000, NULL, 0));
    WAIT_UNTIL(a.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(a.errors, 1);
    CHECK_EQ(a.error_status, WSFFI_STATUS_ERR_CLOSED);
    CHECK_STR(a.error_message, "closed while waiting to reconnect");
    CHECK_EQ(a.closes, 1);
    CHECK_EQ(a.close_origin, WSFFI_CLOSE_ORIGIN_NONE);
    wsffi_conn_release(ca);

    /* wsffi_close from on_reconnect itself. */
    rc_rec b;
    memset(&b, 0, sizeof b);
    b.stop_how = 1;
    b.stop_at = 1;
    wsffi_conn *cb = rc_connect(r, port, o, &b);
    WAIT_UNTIL(b.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(b.reconnects, 1);
    CHECK_EQ(b.closes, 1);
    CHECK_EQ(b.error_status, WSFFI_STATUS_ERR_CLOSED);
    wsffi_conn_release(cb);

    /* wsffi_conn_stop_reconnect from on_reconnect: ends with the failure that started it. */
    rc_rec c;
    memset(&c, 0, sizeof c);
    c.stop_how = 2;
    c.stop_at = 1;
    wsffi_conn *cc = rc_connect(r, port, o, &c);
    WAIT_UNTIL(c.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(c.reconnects, 1);
    CHECK_EQ(c.errors, 1);
    CHECK_EQ(c.error_status, WSFFI_STATUS_ERR_CONNECTION_REFUSED);
    CHECK(tu_starts_with(c.error_message, "reconnecting stopped: connect to 127.0.0.1:"));
    CHECK_EQ(c.closes, 1);
    wsffi_conn_release(cc);

    /* wsffi_terminate while waiting: no error, one close. */
    rc_rec d;
    memset(&d, 0, sizeof d);
    wsffi_conn *cd = rc_connect(r, port, o, &d);
    WAIT_UNTIL(d.reconnects == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_terminate(cd));
    WAIT_UNTIL(d.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(d.errors, 0);
    CHECK_EQ(d.closes, 1);
    CHECK_EQ(d.close_code, WSFFI_CLOSE_ABNORMAL);
    wsffi_conn_release(cd);

    /* Freeing the reactor while one waits: on_error (shut down), on_close, destroy. */
    rc_rec e;
    memset(&e, 0, sizeof e);
    wsffi_conn *ce = rc_connect(r, port, o, &e);
    WAIT_UNTIL(e.reconnects == 1, TU_WAIT_MS);
    wsffi_client_options_free(o);
    tu_reactor_free(r);
    CHECK_EQ(e.errors, 1);
    CHECK_EQ(e.error_status, WSFFI_STATUS_ERR_SHUT_DOWN);
    CHECK_EQ(e.closes, 1);
    CHECK_EQ(e.destroys, 1);
    wsffi_conn_release(ce);
}

TEST(old_callback_tables_are_accepted) {
    /* A program built before on_reconnect existed passes the smaller size. */
    wsffi_reactor *r = tu_reactor_new();
    wsffi_client_options *o = rc_options(10, 2.0, 20, 1);
    rc_rec rec;
    memset(&rec, 0, sizeof rec);
    wsffi_conn_callbacks cbs;
    size_t old_size = offsetof(wsffi_conn_callbacks, on_reconnect);
    CHECK_OK(wsffi_conn_callbacks_init(&cbs, old_size));
    cbs.on_error = rc_on_error;
    cbs.on_close = rc_on_close;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)tu_unused_port());
    wsffi_conn *conn = NULL;
    CHECK_OK(wsffi_connect(r, url, o, &cbs, &rec, rc_destroy, &conn, NULL));
    WAIT_UNTIL(rec.destroys == 1, TU_WAIT_MS);
    CHECK_EQ(rec.reconnects, 0);
    CHECK_EQ(rec.errors, 1);
    CHECK(tu_starts_with(rec.error_message, "gave up reconnecting after 1 attempt: "));
    CHECK_EQ(rec.closes, 1);
    wsffi_conn_release(conn);
    wsffi_client_options_free(o);
    tu_reactor_free(r);
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--serve") == 0) {
        return serve((uint16_t)atoi(argv[2]));
    }
    /* ctest starts the program by its full path (so does valgrind's command line). */
    snprintf(self_path, sizeof self_path, "%s", argv[0]);
    static const tu_case cases[] = {
        TU_CASE(options_and_statuses),     TU_CASE(kill_and_restart_the_server),
        TU_CASE(server_stops_answering_during_reconnect), TU_CASE(server_process_stopped_and_continued),
        TU_CASE(attempts_run_out),
        TU_CASE(close_and_stop_during_the_wait), TU_CASE(old_callback_tables_are_accepted),
    };
    return tu_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
