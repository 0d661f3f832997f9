/*
 * lws-echo: echo server on libwebsockets (Debian's libwebsockets-dev), one service thread.
 * Every message goes back with its type. Written like the library's minimal echo example:
 * received fragments are assembled into a message, queued, and written one message per
 * WRITEABLE callback; reading pauses while too many messages wait.
 *
 *   lws-echo [--deflate] HOST:PORT      (port 0 allowed; prints "listening on ADDR")
 */
#define _POSIX_C_SOURCE 200809L
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX 64
#define QUEUE_RESUME 16

struct msg {
    unsigned char *buf; /* LWS_PRE bytes of headroom, then the payload */
    size_t len;
    int binary;
};

struct session {
    struct msg queue[QUEUE_MAX];
    unsigned head, count;
    unsigned char *rx; /* message being assembled (with LWS_PRE headroom) */
    size_t rx_len, rx_cap;
    int rx_binary;
    int paused;
};

static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static int rx_append(struct session *s, const void *in, size_t len) {
    if (LWS_PRE + s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : LWS_PRE + 4096;
        while (cap < LWS_PRE + s->rx_len + len)
            cap *= 2;
        unsigned char *p = realloc(s->rx, cap);
        if (!p)
            return -1;
        s->rx = p;
        s->rx_cap = cap;
    }
    memcpy(s->rx + LWS_PRE + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    struct session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        break;
    case LWS_CALLBACK_RECEIVE: {
        if (lws_is_first_fragment(wsi)) {
            s->rx_len = 0;
            s->rx_binary = lws_frame_is_binary(wsi);
        }
        if (len && rx_append(s, in, len))
            return -1;
        if (!lws_is_final_fragment(wsi))
            break;
        if (s->count == QUEUE_MAX)
            return -1; /* flow control failed */
        /* Hand the assembled buffer to the queue; the next message starts a new one. */
        struct msg *m = &s->queue[(s->head + s->count) % QUEUE_MAX];
        if (s->rx == NULL && rx_append(s, "", 0)) /* empty message: still needs a buffer */
            return -1;
        m->buf = s->rx;
        m->len = s->rx_len;
        m->binary = s->rx_binary;
        s->rx = NULL;
        s->rx_len = s->rx_cap = 0;
        s->count++;
        if (s->count >= QUEUE_MAX - 1 && !s->paused) {
            lws_rx_flow_control(wsi, 0);
            s->paused = 1;
        }
        lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (s->count == 0)
            break;
        struct msg *m = &s->queue[s->head];
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        free(m->buf);
        m->buf = NULL;
        s->head = (s->head + 1) % QUEUE_MAX;
        s->count--;
        if (n < (int)m->len)
            return -1;
        if (s->paused && s->count <= QUEUE_RESUME) {
            lws_rx_flow_control(wsi, 1);
            s->paused = 0;
        }
        if (s->count)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLOSED:
        while (s->count) {
            free(s->queue[s->head].buf);
            s->head = (s->head + 1) % QUEUE_MAX;
            s->count--;
        }
        free(s->rx);
        s->rx = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(struct session), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; server_no_context_takeover"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) {
    const char *address = NULL;
    int deflate = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deflate") == 0)
            deflate = 1;
        else
            address = argv[i];
    }
    if (!address)
        address = "127.0.0.1:0";
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host) {
        fprintf(stderr, "usage: lws-echo [--deflate] HOST:PORT\n");
        return 2;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = atoi(colon + 1);
    info.iface = host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.pt_serv_buf_size = 65536;
    if (deflate)
        info.extensions = extensions;
    context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws-echo: cannot create the context on %s\n", address);
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(context, "default");
    int port = vh ? lws_get_vhost_listen_port(vh) : info.port;
    printf("listening on %s:%d\n", host, port);
    fflush(stdout);
    while (!interrupted) {
        if (lws_service(context, 0) < 0)
            break;
    }
    lws_context_destroy(context);
    return 0;
}
