/*
 * chat-client: a command-line client for chat-server (or any WebSocket text service).
 *
 *   build/chat-client URL [--name NAME] [--reconnect]
 *
 * Sends every line read from stdin as a text message and prints every message received,
 * one per line, as it arrives. On end of input (or Ctrl-C) it closes with 1000 "bye",
 * waits for the server's answer and prints "closed CODE REASON". --name adds
 * "name=NAME" to the URL's query, as chat-server expects. --reconnect dials again when the
 * connection is lost (waits from 250 ms doubling to 8 s, jittered, no limit), printing each
 * attempt on stderr; lines typed while reconnecting are not sent (and said so).
 *
 * Exit status: 0 after a normal close (code 1000, 1001 or none), 1 when the connection
 * fails, breaks or is closed with an error code (such as 1009, message too big).
 *
 * Two threads: the library's reactor thread runs the callbacks (printing what arrives),
 * the main thread reads stdin and sends. They meet in struct client, under its mutex.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsffi.h"

struct client {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* signalled on open, close and drain */
    bool open;
    bool closed;
    unsigned drains; /* on_drain count, so a sender can wait for the next one */
    uint16_t close_code; /* the server's close code, or 1006 */
    bool close_clean;
    char close_reason[124]; /* a close reason has at most 123 bytes */
    char *error;            /* first on_error message */
};

/* The main thread waits in poll() for stdin or this pipe; on_close and the SIGINT handler
 * write to it so that a closed connection or Ctrl-C does not wait for the next line. */
static int wake_pipe[2] = {-1, -1};

static void wake_main(void) {
    char byte = 1;
    ssize_t n = write(wake_pipe[1], &byte, 1);
    (void)n; /* a full pipe is already awake */
}

static void on_sigint(int sig) {
    (void)sig;
    wake_main();
}

static void on_open(void *user, wsffi_conn *conn) {
    (void)conn;
    struct client *c = user;
    pthread_mutex_lock(&c->lock);
    c->open = true;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static void on_reconnect(void *user, wsffi_conn *conn, uint32_t attempt, uint32_t delay_ms, wsffi_status status,
                         const char *message, const wsffi_close_info *info) {
    (void)user;
    (void)conn;
    (void)status;
    (void)info;
    fprintf(stderr, "chat-client: %s; reconnecting in %u ms (attempt %u)\n", message, (unsigned)delay_ms,
            (unsigned)attempt);
}

static void on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)user;
    (void)conn;
    /* data is borrowed and not NUL-terminated; write it out before returning. The lock keeps
     * the line whole if the main thread prints at the same time. */
    flockfile(stdout);
    if (kind == WSFFI_TEXT) {
        fwrite(data, 1, len, stdout);
        putc('\n', stdout);
    } else {
        printf("[binary message, %zu bytes]\n", len);
    }
    fflush(stdout);
    funlockfile(stdout);
}

static void on_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
    (void)conn;
    (void)status;
    struct client *c = user;
    pthread_mutex_lock(&c->lock);
    if (c->error == NULL) {
        c->error = strdup(message); /* message is borrowed */
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_drain(void *user, wsffi_conn *conn) {
    (void)conn;
    struct client *c = user;
    pthread_mutex_lock(&c->lock);
    c->drains++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static void on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    (void)conn;
    struct client *c = user;
    /* What the server said: its close frame (its answer to ours, or its own close), or the
     * code that decided the close (1006 when no close frame came). */
    bool from_server = info->peer_reason != NULL;
    const char *reason = from_server ? info->peer_reason : info->reason;
    size_t reason_len = from_server ? info->peer_reason_len : info->reason_len;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    c->close_code = from_server ? info->peer_code : info->code;
    c->close_clean = info->was_clean;
    if (reason_len >= sizeof c->close_reason) {
        reason_len = sizeof c->close_reason - 1;
    }
    if (reason_len > 0) {
        memcpy(c->close_reason, reason, reason_len); /* reason is borrowed */
    }
    c->close_reason[reason_len] = '\0';
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    wake_main();
}

static bool is_closed(struct client *c) {
    pthread_mutex_lock(&c->lock);
    bool closed = c->closed;
    pthread_mutex_unlock(&c->lock);
    return closed;
}

/* Sends one line; false once the connection can take no more. */
static bool send_line(struct client *c, wsffi_conn *conn, const char *line, size_t len) {
    for (;;) {
        pthread_mutex_lock(&c->lock);
        unsigned drains = c->drains;
        pthread_mutex_unlock(&c->lock);

        wsffi_status s = wsffi_send_text(conn, line, len);
        if (s == WSFFI_STATUS_OK) {
            return true;
        }
        if (s == WSFFI_STATUS_ERR_INVALID_UTF8) {
            fprintf(stderr, "chat-client: skipped a line that is not UTF-8\n");
            return true;
        }
        if (s == WSFFI_STATUS_ERR_RECONNECTING) {
            fprintf(stderr, "chat-client: not sent, reconnecting\n");
            return true;
        }
        if (s != WSFFI_STATUS_ERR_BACKPRESSURE) {
            return false; /* closing or closed: on_close tells the rest */
        }
        /* Too much is waiting for the network: read no more input until on_drain. */
        pthread_mutex_lock(&c->lock);
        while (c->drains == drains && !c->closed) {
            pthread_cond_wait(&c->changed, &c->lock);
        }
        pthread_mutex_unlock(&c->lock);
    }
}

/* Reads stdin and sends each line (without its newline) until end of input, Ctrl-C or the
 * end of the connection. read(2) rather than stdio, so that poll() sees every byte. */
static void pump_stdin(struct client *c, wsffi_conn *conn) {
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return;
    }
    struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = wake_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (fds[1].revents != 0) {
            break; /* connection ended, or Ctrl-C */
        }
        if (used == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(STDIN_FILENO, buf + used, cap - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (used > 0) {
                send_line(c, conn, buf, used); /* a last line without a newline */
            }
            break;
        }
        used += (size_t)n;

        size_t start = 0;
        char *nl;
        bool ok = true;
        while (ok && (nl = memchr(buf + start, '\n', used - start)) != NULL) {
            size_t len = (size_t)(nl - (buf + start));
            if (len > 0 && buf[start + len - 1] == '\r') {
                len--;
            }
            ok = send_line(c, conn, buf + start, len);
            start = (size_t)(nl - buf) + 1;
        }
        if (!ok) {
            break;
        }
        memmove(buf, buf + start, used - start);
        used -= start;
    }
    free(buf);
}

/* Appends "name=NAME" to the URL's query, percent-encoding NAME. Caller frees. */
static char *url_with_name(const char *url, const char *name) {
    static const char hex[] = "0123456789ABCDEF";
    size_t url_len = strlen(url);
    char *out = malloc(url_len + 6 + 3 * strlen(name) + 1);
    if (out == NULL) {
        return NULL;
    }
    char *p = out + sprintf(out, "%s%cname=", url, strchr(url, '?') != NULL ? '&' : '?');
    for (const unsigned char *s = (const unsigned char *)name; *s != '\0'; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("-._~", *s) != NULL) {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    *p = '\0';
    return out;
}

/* Connects, then chats until the end of input or of the connection. Returns the exit status. */
static int chat(struct client *c, wsffi_reactor *reactor, const char *url, bool reconnect) {
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = on_open;
    cbs.on_message = on_message;
    cbs.on_error = on_error;
    cbs.on_drain = on_drain;
    cbs.on_close = on_close;
    cbs.on_reconnect = on_reconnect;
    wsffi_client_options *options = wsffi_client_options_new();
    if (options == NULL || (reconnect && wsffi_client_options_set_reconnect(options, 250, 2.0, 8000, 0) != WSFFI_STATUS_OK)) {
        fprintf(stderr, "chat-client: cannot set the options\n");
        wsffi_client_options_free(options);
        return 1;
    }
    wsffi_conn *conn = NULL;
    wsffi_error *err = NULL;
    /* c outlives the reactor (see main), so it needs no destroy callback. */
    wsffi_status connected = wsffi_connect(reactor, url, options, &cbs, c, NULL, &conn, &err);
    wsffi_client_options_free(options);
    if (connected != WSFFI_STATUS_OK) {
        fprintf(stderr, "chat-client: %s\n", wsffi_error_message(err));
        wsffi_error_free(err);
        return 1;
    }

    /* The outcome of the connect: on_open, or on_error then on_close. */
    pthread_mutex_lock(&c->lock);
    while (!c->open && !c->closed) {
        pthread_cond_wait(&c->changed, &c->lock);
    }
    bool opened = c->open;
    pthread_mutex_unlock(&c->lock);
    if (!opened) {
        fprintf(stderr, "chat-client: %s\n", c->error != NULL ? c->error : "connection failed");
        wsffi_conn_release(conn);
        return 1;
    }

    /* From now on Ctrl-C means "leave": close cleanly instead of dying. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    pump_stdin(c, conn);

    if (!is_closed(c)) {
        wsffi_close(conn, WSFFI_CLOSE_NORMAL, "bye", strlen("bye"));
    }
    /* Exactly one on_close ends every connection: after our close, the peer's answer or the
     * close timeout; if the server closed first, it has already run. */
    pthread_mutex_lock(&c->lock);
    while (!c->closed) {
        pthread_cond_wait(&c->changed, &c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    wsffi_conn_release(conn);

    flockfile(stdout);
    printf("closed %u%s%s\n", (unsigned)c->close_code, c->close_reason[0] != '\0' ? " " : "", c->close_reason);
    fflush(stdout);
    funlockfile(stdout);
    if (c->error != NULL) {
        fprintf(stderr, "chat-client: %s\n", c->error);
    }
    bool normal = c->close_code == WSFFI_CLOSE_NORMAL || c->close_code == WSFFI_CLOSE_GOING_AWAY ||
                  c->close_code == WSFFI_CLOSE_NO_STATUS;
    return c->close_clean && normal ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *url = NULL, *name = NULL;
    bool reconnect = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--reconnect") == 0) {
            reconnect = true;
        } else if (url == NULL && argv[i][0] != '-') {
            url = argv[i];
        } else {
            url = NULL;
            break;
        }
    }
    if (url == NULL) {
        fprintf(stderr, "usage: chat-client URL [--name NAME] [--reconnect]\n");
        return 2;
    }
    char *full_url = name != NULL ? url_with_name(url, name) : strdup(url);
    if (full_url == NULL || pipe(wake_pipe) != 0) {
        perror("chat-client");
        free(full_url);
        return 1;
    }

    struct client c = {.error = NULL};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.changed, NULL);
    int status = 1;
    wsffi_reactor *reactor = NULL;
    wsffi_error *err = NULL;
    if (wsffi_reactor_new(NULL, &reactor, &err) == WSFFI_STATUS_OK) {
        status = chat(&c, reactor, full_url, reconnect);
        /* After this no callback runs, so c can go. */
        wsffi_reactor_free(reactor);
    } else {
        fprintf(stderr, "chat-client: %s\n", wsffi_error_message(err));
        wsffi_error_free(err);
    }

    pthread_cond_destroy(&c.changed);
    pthread_mutex_destroy(&c.lock);
    free(c.error);
    free(full_url);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    return status;
}
