/* A program built outside the source tree against an installed wsffi: a server on a
 * loopback port echoes one message back to a client. Prints what the client received and
 * exits 0 only when the echo arrived and both sides closed cleanly. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <wsffi.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int client_closed, clean;
static char echoed[64];

static void server_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)user;
    wsffi_send(conn, kind, data, len);
}

static void on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *request) {
    (void)user, (void)server, (void)request;
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_message = server_message;
    wsffi_conn_set_callbacks(conn, &cbs, NULL, NULL);
}

static void client_open(void *user, wsffi_conn *conn) {
    (void)user;
    wsffi_send_text(conn, "hello", 5);
}

static void client_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)user, (void)kind;
    pthread_mutex_lock(&lock);
    snprintf(echoed, sizeof echoed, "%.*s", (int)len, (const char *)data);
    pthread_mutex_unlock(&lock);
    wsffi_close(conn, WSFFI_CLOSE_NORMAL, "done", 4);
}

static void client_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    (void)user, (void)conn;
    pthread_mutex_lock(&lock);
    client_closed = 1;
    clean = info->was_clean && info->code == WSFFI_CLOSE_NORMAL;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

int main(void) {
    wsffi_reactor *reactor = NULL;
    wsffi_listener *listener = NULL;
    wsffi_server *server = NULL;
    wsffi_conn *client = NULL;
    if (wsffi_reactor_new(NULL, &reactor, NULL) != WSFFI_STATUS_OK ||
        wsffi_listen(reactor, "127.0.0.1:0", NULL, &listener, NULL) != WSFFI_STATUS_OK) {
        fprintf(stderr, "echo_check: no reactor or listener\n");
        return 1;
    }
    wsffi_server_callbacks scbs;
    wsffi_server_callbacks_init(&scbs, sizeof scbs);
    scbs.on_connection = on_connection;
    if (wsffi_server_attach(reactor, listener, "/", NULL, &scbs, NULL, NULL, &server, NULL) != WSFFI_STATUS_OK) {
        fprintf(stderr, "echo_check: attach failed\n");
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)wsffi_listener_port(listener));
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_open = client_open;
    cbs.on_message = client_message;
    cbs.on_close = client_close;
    if (wsffi_connect(reactor, url, NULL, &cbs, NULL, NULL, &client, NULL) != WSFFI_STATUS_OK) {
        fprintf(stderr, "echo_check: connect failed\n");
        return 1;
    }
    pthread_mutex_lock(&lock);
    while (!client_closed)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    wsffi_conn_release(client);
    wsffi_server_close(server);
    wsffi_listener_close(listener);
    wsffi_reactor_free(reactor);
    printf("wsffi %s: echoed \"%s\", %s close\n", wsffi_version(), echoed, clean ? "clean" : "unclean");
    return strcmp(echoed, "hello") == 0 && clean ? 0 : 1;
}
