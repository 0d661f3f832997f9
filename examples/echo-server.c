/*
 * echo-server: echoes every message back with its type.
 *
 *   build/echo-server [--deflate] [--tls CERT KEY] [--tls-sni NAME CERT KEY]...
 *                     [--handshake-timeout-ms N] [--ping-interval-ms N] [--max-connections N]
 *                     [--dispatch] [--stream] [--fanout] HOST:PORT
 *
 * --stream echoes each message as it arrives: its parts (wsffi_server_options_set_stream_messages)
 * go back at once as fragments, so a message of any size passes through in constant memory.
 *
 * --fanout turns the echo into a topic: every client subscribes to "fan" and each message a
 * client sends is published to all the others (not back to the sender), the fan-out
 * scenario of `make bench`.
 *
 * --tls-sni adds a certificate for clients asking for NAME ("*.example.com" for a
 * wildcard); with TLS, SIGHUP reads the certificate files again and replaces the
 * listener's certificates (open connections keep theirs; "reloaded" or the error is
 * printed on stderr).
 *
 * Prints "listening on HOST:PORT" once ready and runs until SIGINT or SIGTERM, then closes
 * its clients cleanly. With --dispatch the reactor queues its events and the main thread
 * runs them from a pselect() loop on wsffi_reactor_fd (dispatch mode). Flow control: when a client's output passes the high-water mark the
 * server stops reading from that client until the output drains, so a client that sends
 * without reading cannot grow the server's memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "wsffi.h"

/* Per-client output bound: reading pauses above it. */
#define ECHO_HIGH_WATER ((size_t)1 << 20)

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig) {
    if (sig == SIGHUP) {
        reload_requested = 1;
    } else {
        stop_requested = 1;
    }
}

#define MAX_SNI 16
static const char *sni_args[MAX_SNI][3];
static int sni_count;

/* Listener options with the certificates of the command line; NULL (message printed) on
 * failure. */
static wsffi_listener_options *tls_options(const char *cert, const char *key) {
    wsffi_listener_options *lopts = wsffi_listener_options_new();
    wsffi_error *err = NULL;
    if (cert != NULL && wsffi_listener_options_set_tls_cert_files(lopts, cert, key, &err) != WSFFI_STATUS_OK) {
        goto fail;
    }
    for (int i = 0; i < sni_count; i++) {
        if (wsffi_listener_options_add_tls_sni_cert_files(lopts, sni_args[i][0], sni_args[i][1], sni_args[i][2], &err) !=
            WSFFI_STATUS_OK) {
            goto fail;
        }
    }
    return lopts;
fail:
    fprintf(stderr, "echo-server: %s\n", wsffi_error_message(err));
    wsffi_error_free(err);
    wsffi_listener_options_free(lopts);
    return NULL;
}

static void reload(wsffi_listener *listener, const char *cert, const char *key) {
    wsffi_listener_options *lopts = tls_options(cert, key);
    if (lopts == NULL) {
        return;
    }
    wsffi_error *err = NULL;
    if (wsffi_listener_set_tls_certificates(listener, lopts, &err) == WSFFI_STATUS_OK) {
        fprintf(stderr, "echo-server: reloaded\n");
    } else {
        fprintf(stderr, "echo-server: %s\n", wsffi_error_message(err));
        wsffi_error_free(err);
    }
    wsffi_listener_options_free(lopts);
}

static void on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)user;
    wsffi_status s = wsffi_send(conn, kind, data, len);
    if (s == WSFFI_STATUS_ERR_BACKPRESSURE || wsffi_buffered_amount(conn) > ECHO_HIGH_WATER) {
        /* Hold the sender until the receiver catches up (on_drain resumes). */
        wsffi_conn_pause(conn);
    }
}

/* --stream: each part goes straight back as a fragment of the echo. */
static void on_message_part(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len, bool is_first,
                            bool is_last) {
    (void)user;
    (void)is_first;
    wsffi_status s = wsffi_send_fragment(conn, kind, data, len, is_last);
    if (s == WSFFI_STATUS_ERR_BACKPRESSURE || wsffi_buffered_amount(conn) > ECHO_HIGH_WATER) {
        wsffi_conn_pause(conn);
    }
}

/* --fanout (set before the server starts). */
static bool fanout;

/* `user` is the connection's server. */
static void on_fanout_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    wsffi_status s = wsffi_server_publish(user, "fan", kind, data, len, conn);
    if (s != WSFFI_STATUS_OK && s != WSFFI_STATUS_ERR_CLOSED) {
        fprintf(stderr, "echo-server: publish: %s\n", wsffi_status_str(s));
    }
}

static void on_drain(void *user, wsffi_conn *conn) {
    (void)user;
    wsffi_conn_resume(conn);
}

static void on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    (void)user;
    (void)req;
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_message = on_message;
    cbs.on_message_part = on_message_part;
    cbs.on_drain = on_drain;
    if (fanout) {
        /* Subscribed before the 101 goes out: the client's first message finds it. */
        wsffi_status s = wsffi_conn_subscribe(conn, "fan");
        if (s != WSFFI_STATUS_OK) {
            fprintf(stderr, "echo-server: subscribe: %s\n", wsffi_status_str(s));
        }
        cbs.on_message = on_fanout_message;
    }
    wsffi_conn_set_callbacks(conn, &cbs, fanout ? server : NULL, NULL);
}

static void on_server_error(void *user, wsffi_server *server, wsffi_status status, const char *message) {
    (void)user;
    (void)server;
    fprintf(stderr, "echo-server: %s: %s\n", wsffi_status_str(status), message);
}

/* Dispatch mode: sleep in pselect() until events wait, then run them here. The signals
 * are blocked everywhere but inside pselect (`waiting` is the mask without them), so one
 * wakes it with EINTR and none is lost between two waits. */
static void run_dispatch_loop(wsffi_reactor *reactor, const sigset_t *waiting) {
    int fd = wsffi_reactor_fd(reactor);
    while (!stop_requested) {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(fd, &readable);
        int n = pselect(fd + 1, &readable, NULL, NULL, NULL, waiting);
        if (n < 0 && errno != EINTR) {
            perror("echo-server: pselect");
            return;
        }
        size_t ran = 0;
        do {
            if (wsffi_reactor_dispatch(reactor, 1024, &ran) != WSFFI_STATUS_OK) {
                return;
            }
        } while (ran == 1024);
    }
}

int main(int argc, char **argv) {
    const char *address = NULL;
    const char *tls_cert = NULL;
    const char *tls_key = NULL;
    bool deflate = false;
    bool dispatch = false;
    bool stream = false;
    long handshake_timeout_ms = 0, ping_interval_ms = 0, max_connections = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deflate") == 0) {
            deflate = true;
        } else if (strcmp(argv[i], "--stream") == 0) {
            stream = true;
        } else if (strcmp(argv[i], "--dispatch") == 0) {
            dispatch = true;
        } else if (strcmp(argv[i], "--fanout") == 0) {
            fanout = true;
        } else if (strcmp(argv[i], "--handshake-timeout-ms") == 0 && i + 1 < argc) {
            handshake_timeout_ms = atol(argv[++i]);
        } else if (strcmp(argv[i], "--ping-interval-ms") == 0 && i + 1 < argc) {
            ping_interval_ms = atol(argv[++i]);
        } else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc) {
            max_connections = atol(argv[++i]);
        } else if (strcmp(argv[i], "--tls") == 0) {
            if (i + 2 >= argc) {
                fprintf(stderr, "echo-server: --tls needs CERT and KEY (PEM files)\n");
                return 2;
            }
            tls_cert = argv[++i];
            tls_key = argv[++i];
        } else if (strcmp(argv[i], "--tls-sni") == 0) {
            if (i + 3 >= argc || sni_count == MAX_SNI) {
                fprintf(stderr, "echo-server: --tls-sni needs NAME, CERT and KEY (at most %d)\n", MAX_SNI);
                return 2;
            }
            sni_args[sni_count][0] = argv[++i];
            sni_args[sni_count][1] = argv[++i];
            sni_args[sni_count][2] = argv[++i];
            sni_count++;
        } else {
            address = argv[i];
        }
    }
    if (address == NULL) {
        fprintf(stderr, "usage: echo-server [--deflate] [--tls CERT KEY] [--tls-sni NAME CERT KEY]... [--handshake-timeout-ms N] "
                        "[--ping-interval-ms N] [--max-connections N] [--dispatch] [--stream] [--fanout] HOST:PORT\n");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Blocked before the library starts its threads, which inherit the mask: the signals
     * then reach only this thread, in the waits below (otherwise one could land on the
     * reactor thread and leave the main thread asleep). */
    sigset_t handled, waiting;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &handled, &waiting);

    wsffi_reactor *reactor = NULL;
    wsffi_error *err = NULL;
    wsffi_reactor_options *ropts = wsffi_reactor_options_new();
    wsffi_reactor_options_set_dispatch(ropts, dispatch);
    wsffi_status rs = wsffi_reactor_new(ropts, &reactor, &err);
    wsffi_reactor_options_free(ropts);
    if (rs != WSFFI_STATUS_OK) {
        fprintf(stderr, "echo-server: %s\n", wsffi_error_message(err));
        wsffi_error_free(err);
        return 1;
    }
    wsffi_listener_options *lopts = tls_options(tls_cert, tls_key);
    if (lopts == NULL) {
        wsffi_reactor_free(reactor);
        return 1;
    }
    if (handshake_timeout_ms > 0) {
        wsffi_listener_options_set_handshake_timeout_ms(lopts, (uint32_t)handshake_timeout_ms);
    }
    wsffi_listener *listener = NULL;
    wsffi_status ls = wsffi_listen(reactor, address, lopts, &listener, &err);
    wsffi_listener_options_free(lopts);
    if (ls != WSFFI_STATUS_OK) {
        fprintf(stderr, "echo-server: %s\n", wsffi_error_message(err));
        wsffi_error_free(err);
        wsffi_reactor_free(reactor);
        return 1;
    }
    wsffi_server_options *opts = wsffi_server_options_new();
    wsffi_server_options_set_water_marks(opts, ECHO_HIGH_WATER, ECHO_HIGH_WATER / 4);
    wsffi_server_options_set_per_message_deflate(opts, deflate);
    wsffi_server_options_set_stream_messages(opts, stream);
    wsffi_server_options_set_ping_interval_ms(opts, (uint32_t)ping_interval_ms);
    wsffi_server_options_set_max_connections(opts, (size_t)max_connections);
    wsffi_server_callbacks scbs;
    wsffi_server_callbacks_init(&scbs, sizeof scbs);
    scbs.on_connection = on_connection;
    scbs.on_error = on_server_error;
    wsffi_server *server = NULL;
    wsffi_status s = wsffi_server_attach(reactor, listener, "/", opts, &scbs, NULL, NULL, &server, &err);
    wsffi_server_options_free(opts);
    if (s != WSFFI_STATUS_OK) {
        fprintf(stderr, "echo-server: %s\n", wsffi_error_message(err));
        wsffi_error_free(err);
        wsffi_reactor_free(reactor);
        return 1;
    }
    printf("listening on %s\n", wsffi_listener_address(listener));
    fflush(stdout);

    if (dispatch) {
        run_dispatch_loop(reactor, &waiting);
    } else {
        while (!stop_requested) {
            sigsuspend(&waiting); /* returns once a handler ran */
            if (reload_requested) {
                reload_requested = 0;
                reload(listener, tls_cert, tls_key);
            }
        }
    }
    wsffi_listener_close(listener);
    wsffi_server_close(server);
    wsffi_reactor_free(reactor);
    return 0;
}
