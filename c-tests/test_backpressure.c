/*
 * test_backpressure: the slow-consumer policies of a server (refuse, drop, close with 1008 or
 * 1013 after a grace time) against raw clients that complete the handshake and never read,
 * and a broadcast to many clients (in a child process) of which one never reads.
 *
 * The many-clients case takes its size from the environment: WSFFI_BROADCAST_CLIENTS
 * (default 1000; 50 under valgrind), WSFFI_BROADCAST_MESSAGES (default 300; 100 under
 * valgrind) and WSFFI_BROADCAST_BYTES (default 16384); `make test-broadcast-10k` runs it
 * with 10000 clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "testutil.h"

#define MSG 4096
/* A server frame of MSG bytes: 2 header bytes + 2 bytes of extended length. */
#define MSG_FRAME (MSG + 4)
/* A server frame of `len` bytes (126 <= len < 65536). */
#define FRAME_OF(len) ((size_t)(len) + 4)

/* Resident memory says something only without a sanitizer: AddressSanitizer keeps freed
 * memory in quarantine (and valgrind runs too short to fill the kernel's buffers). */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEANINGFUL false
#endif
#endif
#ifndef RSS_MEANINGFUL
#define RSS_MEANINGFUL (tu_slow == 1)
#endif

static const size_t high = 256 * 1024;
static const size_t low = 64 * 1024;

/* Resident memory of this process in bytes (VmRSS), 0 if unknown. */
static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return 0;
    }
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = (size_t)strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

/* A server with the test's water marks and `policy`; close timeout `close_ms`. */
static void start_policy_env(tu_env *env, wsffi_backpressure_policy policy, uint32_t grace_ms, uint32_t close_ms) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_water_marks(so, high, low));
    CHECK_OK(wsffi_server_options_set_backpressure_policy(so, policy, grace_ms));
    CHECK_OK(wsffi_server_options_set_close_timeout_ms(so, close_ms));
    tu_env_start_with(env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
}

/* A raw client with a small receive buffer that upgrades and then never reads; returns
 * its socket and stores the server's side of it. */
static int open_non_reader(tu_env *env, int index, wsffi_conn **server_side) {
    int fd = tu_tcp_connect_buf(env->port, 4096);
    tu_send_upgrade(fd, "/", NULL);
    char head[2048];
    tu_recv_head(fd, head, sizeof head);
    CHECK_EQ(tu_http_status(head), 101);
    WAIT_UNTIL(env->fx.connections == index + 1 && env->fx.conns[index].opens == 1, TU_WAIT_MS);
    *server_side = env->fx.conns[index].retained;
    return fd;
}

/* Sends MSG-byte messages until `stop` comes back or `ms` pass; any other refusal is
 * retried after a pause (the output may dip under the mark while the kernel still takes
 * bytes). Returns how many were taken and stores the last refusal. */
static int send_until(wsffi_conn *conn, const uint8_t *msg, wsffi_status stop, int ms, wsffi_status *got) {
    int taken = 0;
    *got = WSFFI_STATUS_OK;
    int64_t deadline = tu_now_ms() + ms;
    while (tu_now_ms() < deadline) {
        wsffi_status s = wsffi_send_binary(conn, msg, MSG);
        if (s == WSFFI_STATUS_OK) {
            /* Give the reactor a turn now and then: its flush decides what stays queued. */
            if (++taken % 64 == 0) {
                tu_sleep_ms(1);
            }
            continue;
        }
        *got = s;
        if (s == stop) {
            break;
        }
        tu_sleep_ms(2);
    }
    return taken;
}

TEST(options_validation) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_STATUS(wsffi_server_options_set_backpressure_policy(NULL, WSFFI_BACKPRESSURE_DROP, 0),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_backpressure_policy(so, 4, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_backpressure_policy(so, 0xffffffffu, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_options_set_backpressure_policy(so, WSFFI_BACKPRESSURE_REFUSE, 0));
    CHECK_OK(wsffi_server_options_set_backpressure_policy(so, WSFFI_BACKPRESSURE_DROP, 12345));
    CHECK_OK(wsffi_server_options_set_backpressure_policy(so, WSFFI_BACKPRESSURE_CLOSE_1008, 0));
    CHECK_OK(wsffi_server_options_set_backpressure_policy(so, WSFFI_BACKPRESSURE_CLOSE_1013, 0xffffffffu));
    wsffi_server_options_free(so);
    CHECK(strstr(wsffi_status_str(WSFFI_STATUS_ERR_DROPPED), "dropped") != NULL);
    CHECK_EQ(WSFFI_STATUS_ERR_DROPPED, 208);
}

/* REFUSE (the default, also when set): sends past the mark are refused, nothing is lost
 * silently, the client stays connected. */
TEST(refuse_keeps_the_client_and_refuses_sends) {
    tu_env env;
    start_policy_env(&env, WSFFI_BACKPRESSURE_REFUSE, 0, 5000);
    wsffi_conn *sconn = NULL;
    int fd = open_non_reader(&env, 0, &sconn);
    uint8_t msg[MSG];
    memset(msg, 0x11, sizeof msg);
    wsffi_status got;
    int taken = 0;
    /* Until the output stays above the mark: the kernel may still take bytes for a while. */
    for (int round = 0; round < 100; round++) {
        taken += send_until(sconn, msg, WSFFI_STATUS_ERR_BACKPRESSURE, TU_WAIT_MS, &got);
        CHECK_STATUS(got, WSFFI_STATUS_ERR_BACKPRESSURE);
        tu_sleep_ms(100 * tu_slow);
        if (wsffi_send_binary(sconn, msg, MSG) == WSFFI_STATUS_ERR_BACKPRESSURE) {
            break;
        }
        taken++;
    }
    CHECK(taken > 0);
    CHECK(wsffi_buffered_amount(sconn) <= high + MSG_FRAME);
    size_t sent = 99;
    CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_BINARY, msg, MSG, &sent));
    CHECK_EQ(sent, 0);
    STAYS_TRUE(env.fx.conns[0].closes == 0, 300);
    CHECK_EQ(wsffi_ready_state(sconn), WSFFI_OPEN);
    close(fd);
    tu_env_stop(&env);
}

/* DROP: once the client is above the mark every send says DROPPED and nothing is queued;
 * memory stays bounded however much is sent. */
TEST(drop_bounds_a_non_reading_client) {
    tu_env env;
    start_policy_env(&env, WSFFI_BACKPRESSURE_DROP, 0, 5000);
    wsffi_conn *sconn = NULL;
    int fd = open_non_reader(&env, 0, &sconn);
    uint8_t msg[MSG];
    memset(msg, 0x22, sizeof msg);
    size_t rss_before = rss_bytes();
    int taken = 0, dropped = 0, other = 0;
    size_t peak = 0;
    size_t broadcast_taken = 0;
    const int rounds = 20000 / tu_slow;
    for (int i = 0; i < rounds; i++) {
        wsffi_status s = wsffi_send_binary(sconn, msg, MSG);
        if (s == WSFFI_STATUS_OK) {
            taken++;
        } else if (s == WSFFI_STATUS_ERR_DROPPED) {
            dropped++;
        } else {
            other++;
        }
        if (i % 64 == 63) {
            size_t sent = 0;
            CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_BINARY, msg, MSG, &sent));
            broadcast_taken += sent;
            size_t b = wsffi_buffered_amount(sconn);
            peak = b > peak ? b : peak;
        }
    }
    size_t rss_after = rss_bytes();
    printf("DROP: %d taken, %d dropped, %zu broadcasts taken; peak buffered %zu; RSS %zu -> %zu KiB\n", taken,
           dropped, broadcast_taken, peak, rss_before / 1024, rss_after / 1024);
    CHECK_EQ(other, 0);
    CHECK(dropped > rounds / 2);
    CHECK(taken > 0);
    CHECK(broadcast_taken < (size_t)rounds / 64);
    /* The mark plus the message that crossed it, plus what the cross-thread sends in flight add. */
    CHECK(peak <= high + 2 * MSG_FRAME);
    CHECK(wsffi_buffered_amount(sconn) <= high + 2 * MSG_FRAME);
    /* 80 MB were offered; the process grew by far less. */
    if (RSS_MEANINGFUL && rss_before && rss_after > rss_before) {
        CHECK(rss_after - rss_before < 8u * 1024 * 1024);
    }
    CHECK_EQ(wsffi_ready_state(sconn), WSFFI_OPEN);
    CHECK_EQ(LOCKED_INT(env.fx.conns[0].closes), 0);
    /* Every drop is counted: the refused direct sends and the broadcasts that skipped it. */
    size_t broadcasts = (size_t)rounds / 64;
    wsffi_conn_stats cs = {.size = sizeof cs};
    CHECK_OK(wsffi_conn_get_stats(sconn, &cs));
    CHECK_EQ(cs.messages_dropped, (uint64_t)dropped + (broadcasts - broadcast_taken));
    wsffi_server_stats ss = {.size = sizeof ss};
    CHECK_OK(wsffi_server_get_stats(env.server, &ss));
    CHECK_EQ(ss.messages_dropped, cs.messages_dropped);
    close(fd);
    tu_env_stop(&env);
}

/* CLOSE_1008 / CLOSE_1013: a client that stays above the mark for the grace time is closed
 * with that code; it does not read the close frame either, so the close timeout drops it. */
static void check_close_policy(wsffi_backpressure_policy policy, uint16_t code, int grace_ms) {
    const int close_ms = 300;
    tu_env env;
    start_policy_env(&env, policy, (uint32_t)grace_ms, (uint32_t)close_ms);
    wsffi_conn *sconn = NULL;
    int fd = open_non_reader(&env, 0, &sconn);
    uint8_t msg[MSG];
    memset(msg, 0x33, sizeof msg);
    int64_t t0 = tu_now_ms();
    wsffi_status got;
    send_until(sconn, msg, WSFFI_STATUS_ERR_CLOSED, grace_ms + TU_WAIT_MS, &got);
    CHECK_STATUS(got, WSFFI_STATUS_ERR_CLOSED);
    tu_rec *rec = &env.fx.conns[0];
    WAIT_UNTIL(wsffi_ready_state(sconn) >= WSFFI_CLOSING, TU_WAIT_MS);
    int64_t closing_ms = tu_now_ms() - t0;
    WAIT_UNTIL(rec->closes == 1, TU_WAIT_MS);
    int64_t closed_ms = tu_now_ms() - t0;
    printf("policy %u grace %d ms: closing after %lld ms, on_close after %lld ms\n", (unsigned)policy, grace_ms,
           (long long)closing_ms, (long long)closed_ms);
    TU_LOCK();
    CHECK_EQ(rec->close_code, code);
    CHECK_EQ(rec->local_close_code, code);
    CHECK_STR(rec->local_close_reason, "slow consumer");
    CHECK_EQ(rec->peer_close_code, 0);
    CHECK(!rec->was_clean);
    CHECK_EQ(rec->errors, 1);
    CHECK_STATUS(rec->error_status, WSFFI_STATUS_ERR_BACKPRESSURE);
    CHECK(strstr(rec->error_message, "slow consumer") != NULL);
    TU_UNLOCK();
    CHECK(closed_ms >= grace_ms + close_ms);
    CHECK(closed_ms < grace_ms + close_ms + 3000 * tu_slow);
    CHECK(closing_ms < grace_ms + 2000 * tu_slow);
    close(fd);
    tu_env_stop(&env);
}

TEST(close_1008_after_the_grace_time) {
    check_close_policy(WSFFI_BACKPRESSURE_CLOSE_1008, 1008, 400);
}

TEST(close_1013_at_once) {
    check_close_policy(WSFFI_BACKPRESSURE_CLOSE_1013, 1013, 0);
}

/* ---- many clients in a child process ---------------------------------------------------- */

typedef struct child_plan {
    uint16_t port;
    int clients;
    int messages;
    int bytes; /* per message */
} child_plan;

static ssize_t read_full(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return (ssize_t)got;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void write_full(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

/* The child: opens `clients` connections (client 0 with a small receive buffer, never read
 * after the handshake), reports 'R' once all are upgraded, then reads the others until each
 * got `messages` frames' worth of bytes and reports 'D'. Never returns. */
static void child_main(int plan_fd, int report_fd) {
    child_plan plan;
    if (read_full(plan_fd, &plan, sizeof plan) != (ssize_t)sizeof plan) {
        _exit(3);
    }
    int *fds = calloc((size_t)plan.clients, sizeof *fds);
    uint64_t *got = calloc((size_t)plan.clients, sizeof *got);
    if (!fds || !got) {
        _exit(4);
    }
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: " TU_WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(plan.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < plan.clients; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            _exit(5);
        }
        if (i == 0) {
            int small = 4096;
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            _exit(6);
        }
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
            _exit(7);
        }
        /* The 101 head, byte by byte so nothing after it is taken. */
        char tail[4] = {0};
        for (;;) {
            char c;
            ssize_t n = recv(fd, &c, 1, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                _exit(8);
            }
            memmove(tail, tail + 1, 3);
            tail[3] = c;
            if (memcmp(tail, "\r\n\r\n", 4) == 0) {
                break;
            }
        }
        fds[i] = fd;
    }
    write_full(report_fd, "R", 1);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 1; i < plan.clients; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    const uint64_t want = (uint64_t)plan.messages * FRAME_OF(plan.bytes);
    int done = 0;
    static char buf[1 << 16];
    struct epoll_event evs[256];
    while (done < plan.clients - 1) {
        int n = epoll_wait(ep, evs, 256, 60000);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            _exit(9); /* a minute without data: the parent gave up */
        }
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            for (;;) {
                ssize_t r = recv(fds[i], buf, sizeof buf, 0);
                if (r > 0) {
                    bool was_done = got[i] >= want;
                    got[i] += (uint64_t)r;
                    if (!was_done && got[i] >= want) {
                        done++;
                    }
                    continue;
                }
                if (r < 0 && errno == EINTR) {
                    continue;
                }
                if (r == 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                }
                break;
            }
        }
    }
    write_full(report_fd, "D", 1);
    /* Stay (and keep every socket) until the parent ends us. */
    for (;;) {
        pause();
    }
}

static atomic_int many_connections;

static void count_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    (void)user, (void)server, (void)conn, (void)req;
    atomic_fetch_add(&many_connections, 1);
}

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : fallback;
}

/* A broadcast of many 4 KiB messages to many clients of which one never reads grows the
 * server's memory by about that client's high-water mark, not by anything per client; every
 * reading client gets every message. */
TEST(broadcast_to_many_clients_with_one_that_never_reads) {
    int clients = env_int("WSFFI_BROADCAST_CLIENTS", tu_slow > 1 ? 50 : 1000);
    int messages = env_int("WSFFI_BROADCAST_MESSAGES", tu_slow > 1 ? 100 : 300);
    /* 16 KiB: on loopback the non-reader's kernel buffers take 3-4 MB before the library's
     * output backs up, and 16 KiB writes cost little more than 4 KiB ones. */
    int bytes = env_int("WSFFI_BROADCAST_BYTES", 16384);
    REQUIRE(bytes >= 126 && bytes < 65536);
    /* Client and server sockets both live in this process's table; each side's in its own. */
    struct rlimit rl;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < (rlim_t)clients + 256) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    if (rl.rlim_cur < (rlim_t)clients + 256) {
        tu_fail(__FILE__, __LINE__, "RLIMIT_NOFILE %llu is too low for %d clients", (unsigned long long)rl.rlim_cur,
                clients);
        return;
    }
    int plan_pipe[2], report_pipe[2];
    REQUIRE(pipe(plan_pipe) == 0 && pipe(report_pipe) == 0);
    /* Fork before any reactor thread exists. */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(plan_pipe[1]);
        close(report_pipe[0]);
        child_main(plan_pipe[0], report_pipe[1]);
    }
    close(plan_pipe[0]);
    close(report_pipe[1]);

    wsffi_reactor *reactor = tu_reactor_new();
    wsffi_listener_options *lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_backlog(lo, 4096));
    uint16_t port = 0;
    wsffi_listener *listener = tu_listen(reactor, lo, &port);
    wsffi_listener_options_free(lo);
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_water_marks(so, high, low));
    CHECK_OK(wsffi_server_options_set_backpressure_policy(so, WSFFI_BACKPRESSURE_DROP, 0));
    wsffi_server_callbacks cbs;
    wsffi_server_callbacks_init(&cbs, sizeof cbs);
    cbs.on_connection = count_connection;
    wsffi_server *server = NULL;
    CHECK_OK(wsffi_server_attach(reactor, listener, "/", so, &cbs, NULL, NULL, &server, NULL));
    wsffi_server_options_free(so);
    REQUIRE(server != NULL);

    child_plan plan;
    memset(&plan, 0, sizeof plan); /* no uninitialised padding through the pipe */
    plan.port = port;
    plan.clients = clients;
    plan.messages = messages;
    plan.bytes = bytes;
    write_full(plan_pipe[1], &plan, sizeof plan);
    char r = 0;
    int64_t t0 = tu_now_ms();
    CHECK(read_full(report_pipe[0], &r, 1) == 1 && r == 'R');
    WAIT_UNTIL(wsffi_server_client_count(server) == (size_t)clients, 30000 * tu_slow);
    int64_t t_open = tu_now_ms();
    CHECK_EQ(atomic_load(&many_connections), clients);

    uint8_t *msg = malloc((size_t)bytes);
    REQUIRE(msg != NULL);
    memset(msg, 0x44, (size_t)bytes);
    size_t sent = 0, total = 0;
    size_t rss_before = rss_bytes();
    size_t rss_peak = rss_before;
    for (int i = 0; i < messages; i++) {
        CHECK_OK(wsffi_server_broadcast(server, WSFFI_BINARY, msg, (size_t)bytes, &sent));
        total += sent;
        if (i % 50 == 0) {
            size_t now = rss_bytes();
            rss_peak = now > rss_peak ? now : rss_peak;
        }
    }
    int64_t t_sent = tu_now_ms();
    /* Every reading client gets every message. */
    bool delivered = read_full(report_pipe[0], &r, 1) == 1 && r == 'D';
    int64_t t_done = tu_now_ms();
    size_t rss_after = rss_bytes();
    rss_peak = rss_after > rss_peak ? rss_after : rss_peak;
    size_t growth = rss_peak > rss_before ? rss_peak - rss_before : 0;
    printf("%d clients, %d broadcasts of %d bytes: open in %lld ms, sent in %lld ms, delivered after %lld ms; "
           "%zu taken (%zu missed by the non-reader); RSS %zu KiB before, peak %zu KiB, growth %zu KiB "
           "(high-water mark %zu KiB)\n",
           clients, messages, bytes, (long long)(t_open - t0), (long long)(t_sent - t_open),
           (long long)(t_done - t_open), total, (size_t)clients * (size_t)messages - total, rss_before / 1024,
           rss_peak / 1024, growth / 1024, high / 1024);
    CHECK(delivered);
    /* The reading clients took every broadcast; the non-reader missed some (under valgrind
     * the run is too short to fill its kernel buffers). */
    CHECK(total >= (size_t)(clients - 1) * (size_t)messages);
    if (tu_slow == 1) {
        CHECK(total < (size_t)clients * (size_t)messages);
    }
    if (RSS_MEANINGFUL) {
        /* The non-reader's mark (plus one message), and a fixed margin for the allocator. */
        CHECK(growth < high + FRAME_OF(bytes) + 8u * 1024 * 1024);
    }
    free(msg);

    kill(pid, SIGKILL);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    close(plan_pipe[1]);
    close(report_pipe[0]);
    CHECK_OK(wsffi_server_close(server));
    CHECK_OK(wsffi_listener_close(listener));
    tu_reactor_free(reactor);
}

TU_MAIN(TU_CASE(options_validation), TU_CASE(refuse_keeps_the_client_and_refuses_sends),
        TU_CASE(drop_bounds_a_non_reading_client), TU_CASE(close_1008_after_the_grace_time),
        TU_CASE(close_1013_at_once), TU_CASE(broadcast_to_many_clients_with_one_that_never_reads))
