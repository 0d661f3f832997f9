/*
 * chat-server: chat rooms. Every text message a client sends goes to everyone in its room,
 * prefixed with the sender's name; each room is a topic of the server (wsffi_conn_subscribe,
 * wsffi_server_publish), so a message is framed once for the whole room.
 *
 *   build/chat-server [--tls CERT KEY] HOST:PORT     (port 0 picks a free port)
 *
 * Clients connect to ws://HOST:PORT/chat?name=NAME&room=ROOM (without a name they become
 * guestN, without a room they join "lobby");
 * a browser gets a small chat page at http://HOST:PORT/ and Prometheus gets the library's
 * counters at http://HOST:PORT/metrics. With --tls (PEM certificate chain
 * and key) the same port speaks TLS: https:// for the page, wss:// for the room. Prints
 * "listening on ADDR" once ready, then "open URL in a browser", then a log of the room. Runs until SIGINT or SIGTERM; clients then get a 1001
 * ("going away") close.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsffi.h"

#define CHAT_PATH "/chat"
/* Names are part of every line, so keep them short. */
#define MAX_NAME_BYTES 32
/* A chat line needs far less than the 64 MiB default. */
#define MAX_MESSAGE_BYTES (64 * 1024)
/* The seeds' heartbeat: ping idle clients every 30 s, drop those that do not answer. */
#define PING_INTERVAL_MS 30000

/* State of the room. Only callbacks touch it, and they all run on the reactor thread one
 * at a time, so it needs no lock. */
struct chat {
    unsigned next_guest;
};

#define DEFAULT_ROOM "lobby"

/* One per connection, installed as the connection's user data. */
struct client {
    wsffi_server *server; /* borrowed: main keeps the handle until every client is gone */
    char name[MAX_NAME_BYTES + 1];
    char room[MAX_NAME_BYTES + 1]; /* the topic its lines go to */
    bool joined; /* on_open ran: only then is there a "left" to tell */
};

static const char CHAT_PAGE[] =
    "<!DOCTYPE html>\n"
    "<html><head><meta charset=\"utf-8\"><title>wsffi chat</title>\n"
    "<style>body{font:15px sans-serif;max-width:40em;margin:2em auto}"
    "#log{height:20em;overflow-y:auto;border:1px solid #aaa;padding:.5em;margin:1em 0}</style>\n"
    "</head><body>\n"
    "<h1>wsffi chat</h1>\n"
    "<form id=\"join\">Name <input id=\"name\" maxlength=\"32\"> Room <input id=\"room\" maxlength=\"32\" "
    "placeholder=\"lobby\"> <button>Join</button></form>\n"
    "<div id=\"log\"></div>\n"
    "<form id=\"say\"><input id=\"text\" size=\"50\" autocomplete=\"off\"> <button>Send</button></form>\n"
    "<script>\n"
    "const log = document.getElementById('log');\n"
    "function show(line) {\n"
    "  const div = document.createElement('div');\n"
    "  div.textContent = line;\n"
    "  log.appendChild(div);\n"
    "  log.scrollTop = log.scrollHeight;\n"
    "}\n"
    "let socket = null;\n"
    "document.getElementById('join').onsubmit = (event) => {\n"
    "  event.preventDefault();\n"
    "  if (socket) socket.close(1000, 'bye');\n"
    "  const name = document.getElementById('name').value;\n"
    "  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';\n"
    "  const room = document.getElementById('room').value;\n"
    "  const params = new URLSearchParams();\n"
    "  if (name) params.set('name', name);\n"
    "  if (room) params.set('room', room);\n"
    "  const query = params.toString() ? '?' + params : '';\n"
    "  const ws = new WebSocket(scheme + location.host + '" CHAT_PATH "' + query);\n"
    "  ws.onopen = () => show('connected');\n"
    "  ws.onmessage = (event) => show(event.data);\n"
    "  ws.onerror = () => show('connection error');\n"
    "  ws.onclose = (event) => show('closed ' + event.code + ' ' + event.reason);\n"
    "  socket = ws;\n"
    "};\n"
    "document.getElementById('say').onsubmit = (event) => {\n"
    "  event.preventDefault();\n"
    "  const text = document.getElementById('text');\n"
    "  if (socket && socket.readyState === WebSocket.OPEN && text.value) {\n"
    "    socket.send(text.value);\n"
    "    text.value = '';\n"
    "  }\n"
    "};\n"
    "</script>\n"
    "</body></html>\n";

/* Sends one line to everyone in the client's room and logs it. Called on the reactor
 * thread, so the line is queued to every member before this returns. */
static void tell_room(struct client *client, const char *line, size_t len) {
    if (strcmp(client->room, DEFAULT_ROOM) == 0) {
        printf("%.*s\n", (int)len, line);
    } else {
        printf("[%s] %.*s\n", client->room, (int)len, line);
    }
    wsffi_status s = wsffi_server_publish(client->server, client->room, WSFFI_TEXT, (const uint8_t *)line, len, NULL);
    /* ERR_CLOSED and ERR_SHUT_DOWN only mean the server is stopping: nobody is left to tell. */
    if (s != WSFFI_STATUS_OK && s != WSFFI_STATUS_ERR_CLOSED && s != WSFFI_STATUS_ERR_SHUT_DOWN) {
        fprintf(stderr, "chat-server: publish: %s\n", wsffi_status_str(s));
    }
}

static void announce(struct client *client, const char *what) {
    char line[MAX_NAME_BYTES + 16];
    int n = snprintf(line, sizeof line, "%s %s", client->name, what);
    tell_room(client, line, (size_t)n);
}

/* NULL when the name is acceptable, else why not. A name becomes part of every line the
 * others read, so control characters (a newline could forge a line) are refused too. */
static const char *name_problem(const char *name, const char *too_long, const char *control) {
    if (strlen(name) > MAX_NAME_BYTES) {
        return too_long;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return control;
        }
    }
    return NULL;
}

static wsffi_verdict verify_client(void *user, wsffi_handshake *handshake) {
    (void)user;
    const wsffi_request *req = wsffi_handshake_request(handshake);
    const char *name = wsffi_request_query(req, "name");
    const char *room = wsffi_request_query(req, "room");
    const char *problem = name != NULL ? name_problem(name, "name too long", "name contains control characters") : NULL;
    if (problem == NULL && room != NULL) {
        problem = name_problem(room, "room name too long", "room name contains control characters");
    }
    if (problem != NULL) {
        fprintf(stderr, "chat-server: refused %s: %s\n", wsffi_request_remote_address(req), problem);
        /* The reason phrase reaches command-line clients (browsers do not show it). */
        wsffi_handshake_set_reject(handshake, 400, problem);
        return WSFFI_VERDICT_REJECT;
    }
    return WSFFI_VERDICT_ACCEPT;
}

static void on_open(void *user, wsffi_conn *conn) {
    (void)conn;
    struct client *client = user;
    client->joined = true;
    announce(client, "joined");
}

static void on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    struct client *client = user;
    if (kind != WSFFI_TEXT) {
        /* The room is text: a binary message has no "<name>: <text>" form. */
        wsffi_close(conn, WSFFI_CLOSE_UNSUPPORTED_DATA, "text only", strlen("text only"));
        return;
    }
    /* data is borrowed and not NUL-terminated: build "<name>: <text>" in a buffer of our own
     * (max_payload bounds len). */
    size_t name_len = strlen(client->name);
    size_t line_len = name_len + 2 + len;
    char *line = malloc(line_len);
    if (line == NULL) {
        wsffi_close(conn, WSFFI_CLOSE_INTERNAL_ERROR, NULL, 0);
        return;
    }
    memcpy(line, client->name, name_len);
    memcpy(line + name_len, ": ", 2);
    memcpy(line + name_len + 2, data, len);
    tell_room(client, line, line_len);
    free(line);
}

static void on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    (void)conn;
    (void)info;
    struct client *client = user;
    if (client->joined) {
        announce(client, "left");
    }
}

static void on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    struct chat *chat = user;
    struct client *client = calloc(1, sizeof *client);
    if (client == NULL) {
        wsffi_close(conn, WSFFI_CLOSE_INTERNAL_ERROR, NULL, 0);
        return;
    }
    client->server = server;
    /* verify_client already checked the name; "" (as in "?name=") counts as none. */
    const char *name = wsffi_request_query(req, "name");
    if (name != NULL && name[0] != '\0') {
        snprintf(client->name, sizeof client->name, "%s", name);
    } else {
        snprintf(client->name, sizeof client->name, "guest%u", ++chat->next_guest);
    }
    const char *room = wsffi_request_query(req, "room");
    snprintf(client->room, sizeof client->room, "%s", room != NULL && room[0] != '\0' ? room : DEFAULT_ROOM);
    /* Subscribed before the 101 goes out, so the member hears its own "joined". */
    wsffi_status s = wsffi_conn_subscribe(conn, client->room);
    if (s != WSFFI_STATUS_OK) {
        fprintf(stderr, "chat-server: subscribe: %s\n", wsffi_status_str(s));
        free(client);
        wsffi_close(conn, WSFFI_CLOSE_INTERNAL_ERROR, NULL, 0);
        return;
    }

    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = on_open;
    cbs.on_message = on_message;
    cbs.on_close = on_close;
    /* free runs after on_close, the last callback that sees the client. */
    wsffi_conn_set_callbacks(conn, &cbs, client, free);
}

static void on_client_error(void *user, wsffi_server *server, wsffi_status status, const char *message) {
    (void)user;
    (void)server;
    if (status == WSFFI_STATUS_ERR_HANDSHAKE_REJECTED) {
        return; /* our own verify_client said no, and logged why */
    }
    fprintf(stderr, "chat-server: client handshake: %s: %s\n", wsffi_status_str(status), message);
}

static void on_server_error(void *user, wsffi_server *server, wsffi_status status, const char *message) {
    (void)user;
    (void)server;
    fprintf(stderr, "chat-server: %s: %s\n", wsffi_status_str(status), message);
}

/* GET /metrics: the reactor's and the room's counters in the Prometheus text format. */
static void serve_metrics(wsffi_reactor *reactor, wsffi_http_response *resp) {
    size_t cap = 16 * 1024, len = 0;
    char *text = NULL;
    for (int attempt = 0; attempt < 4; attempt++) {
        char *bigger = realloc(text, cap);
        if (bigger == NULL) {
            break;
        }
        text = bigger;
        wsffi_status s = wsffi_reactor_stats_prometheus(reactor, text, cap, &len);
        if (s == WSFFI_STATUS_OK) {
            wsffi_http_response_add_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            wsffi_http_response_set_body(resp, (const uint8_t *)text, len);
            free(text);
            return;
        }
        if (s != WSFFI_STATUS_ERR_TOO_BIG) {
            break;
        }
        cap = len + 4096; /* counters move between the two calls: leave some room */
    }
    free(text);
    wsffi_http_response_set_status(resp, 500, NULL);
}

/* Plain HTTP requests (no upgrade): the chat page at "/", the counters at "/metrics". */
static void http_handler(void *user, const wsffi_request *req, wsffi_http_response *resp) {
    wsffi_reactor *reactor = user;
    const char *path = wsffi_request_path(req);
    const char *method = wsffi_request_method(req);
    if (strcmp(path, "/metrics") == 0 && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
        serve_metrics(reactor, resp);
        return;
    }
    if (strcmp(path, CHAT_PATH) == 0) {
        wsffi_http_response_set_status(resp, 426, NULL); /* a WebSocket lives here */
        wsffi_http_response_add_header(resp, "Upgrade", "websocket");
        return;
    }
    if (strcmp(path, "/favicon.ico") == 0) {
        wsffi_http_response_set_status(resp, 204, NULL); /* browsers ask; there is none */
        return;
    }
    if (strcmp(path, "/") != 0) {
        const char *body = "not found\n";
        wsffi_http_response_set_status(resp, 404, NULL);
        wsffi_http_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
        wsffi_http_response_set_body(resp, (const uint8_t *)body, strlen(body));
        return;
    }
    if (strcmp(wsffi_request_method(req), "GET") != 0) {
        wsffi_http_response_set_status(resp, 405, NULL);
        wsffi_http_response_add_header(resp, "Allow", "GET");
        return;
    }
    wsffi_http_response_add_header(resp, "Content-Type", "text/html; charset=utf-8");
    wsffi_http_response_set_body(resp, (const uint8_t *)CHAT_PAGE, sizeof CHAT_PAGE - 1);
}

static int fail(const char *what, wsffi_error *err) {
    fprintf(stderr, "chat-server: %s: %s\n", what, wsffi_error_message(err));
    wsffi_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    const char *tls_cert = NULL, *tls_key = NULL, *address = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            tls_cert = argv[++i];
            tls_key = argv[++i];
        } else if (argv[i][0] != '-' && address == NULL) {
            address = argv[i];
        } else {
            address = NULL;
            break;
        }
    }
    if (address == NULL) {
        fprintf(stderr, "usage: chat-server [--tls CERT KEY] HOST:PORT\n");
        return 2;
    }
    /* The log is read through pipes too: one line at a time, as it happens. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    /* Block the stop signals before the reactor thread starts, so that it inherits the mask
     * and the main thread alone receives them, in sigwait below. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    wsffi_error *err = NULL;
    wsffi_status s;
    wsffi_reactor *reactor = NULL;
    if (wsffi_reactor_new(NULL, &reactor, &err) != WSFFI_STATUS_OK) {
        return fail("reactor", err);
    }
    wsffi_listener_options *lopts = wsffi_listener_options_new();
    if (tls_cert != NULL &&
        wsffi_listener_options_set_tls_cert_files(lopts, tls_cert, tls_key, &err) != WSFFI_STATUS_OK) {
        wsffi_listener_options_free(lopts);
        wsffi_reactor_free(reactor);
        return fail("TLS certificate", err);
    }
    wsffi_listener *listener = NULL;
    s = wsffi_listen(reactor, address, lopts, &listener, &err);
    wsffi_listener_options_free(lopts);
    if (s != WSFFI_STATUS_OK) {
        wsffi_reactor_free(reactor);
        return fail("listen", err);
    }
    wsffi_listener_set_http_handler(listener, http_handler, reactor);

    struct chat chat = {0};
    wsffi_server_options *opts = wsffi_server_options_new();
    wsffi_server_options_set_max_payload(opts, MAX_MESSAGE_BYTES);
    wsffi_server_options_set_ping_interval_ms(opts, PING_INTERVAL_MS);
    wsffi_server_callbacks scbs;
    wsffi_server_callbacks_init(&scbs, sizeof scbs);
    scbs.verify_client = verify_client;
    scbs.on_connection = on_connection;
    scbs.on_client_error = on_client_error;
    scbs.on_error = on_server_error;
    wsffi_server *server = NULL;
    s = wsffi_server_attach(reactor, listener, CHAT_PATH, opts, &scbs, &chat, NULL, &server, &err);
    wsffi_server_options_free(opts);
    if (s != WSFFI_STATUS_OK) {
        wsffi_listener_close(listener);
        wsffi_reactor_free(reactor);
        return fail("attach", err);
    }
    printf("listening on %s\n", wsffi_listener_address(listener));
    printf("open %s://%s/ in a browser\n", tls_cert != NULL ? "https" : "http", wsffi_listener_address(listener));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    printf("stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");

    /* Freeing the reactor closes every connection with 1001 and waits for their close
     * callbacks (whose "left" broadcasts then go nowhere). Only then give back the server
     * and listener handles: the clients' callbacks use the server until the end. */
    wsffi_reactor_free(reactor);
    wsffi_server_close(server);
    wsffi_listener_close(listener);
    return 0;
}
