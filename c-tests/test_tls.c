/*
 * test_tls: the TLS options through the header: each setter, its errors with a status and a
 * sentence, and wss:// round trips against a TLS listener (certificates in files, PEM and
 * DER in memory, mutual TLS with the client's subject on the request, unknown CA, SNI
 * override, insecure). Certificates are generated for each case by build/tls-test-certs.
 */
#include "testutil.h"

#ifndef WSFFI_TLS_CERTS_TOOL
#error WSFFI_TLS_CERTS_TOOL must name the certificate generator
#endif

/* A directory with fresh certificates (see tests/support/certs.rs for the set). */
typedef struct certs {
    char dir[128];
} certs;

static void certs_make(certs *c) {
    snprintf(c->dir, sizeof c->dir, "/tmp/wsffi-c-tls-XXXXXX");
    REQUIRE(mkdtemp(c->dir) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' '%s'", WSFFI_TLS_CERTS_TOOL, c->dir);
    REQUIRE(system(cmd) == 0);
}

static void certs_remove(certs *c) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    CHECK(system(cmd) == 0);
}

typedef struct path {
    char s[256];
} path;

static path in(const certs *c, const char *name) {
    path p;
    snprintf(p.s, sizeof p.s, "%s/%s", c->dir, name);
    return p;
}

static uint8_t *read_all(const char *file, size_t *len) {
    FILE *f = fopen(file, "rb");
    REQUIRE(f != NULL);
    uint8_t *buf = malloc(65536);
    REQUIRE(buf != NULL);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

/* Runs `call`, expecting `want`; on failure the sentence must start with `prefix`. */
#define CHECK_TLS_ERROR(call_with_err, prefix)                                        \
    do {                                                                              \
        wsffi_error *err = NULL;                                                      \
        CHECK_STATUS(call_with_err, WSFFI_STATUS_ERR_TLS);                            \
        CHECK(err != NULL);                                                           \
        if (err != NULL) {                                                            \
            CHECK_EQ(wsffi_error_status(err), WSFFI_STATUS_ERR_TLS);                  \
            if (!tu_starts_with(wsffi_error_message(err), prefix)) {                  \
                tu_fail(__FILE__, __LINE__, "message \"%s\" does not start with \"%s\"", \
                        wsffi_error_message(err), prefix);                            \
            }                                                                         \
            wsffi_error_free(err);                                                    \
        }                                                                             \
    } while (0)

/* Subject of the last client certificate the server saw. */
static char last_subject[256];
/* ALPN protocol and SNI name of the last request. */
static char last_alpn[64];
static char last_server_name[256];

static void on_connection_subject(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
    const char *subject = wsffi_request_tls_subject(req);
    CHECK(subject != NULL);
    TU_LOCK();
    snprintf(last_subject, sizeof last_subject, "%s", subject ? subject : "(null)");
    snprintf(last_alpn, sizeof last_alpn, "%s", wsffi_request_tls_alpn(req));
    snprintf(last_server_name, sizeof last_server_name, "%s", wsffi_request_tls_server_name(req));
    TU_UNLOCK();
    tu_fx_on_connection(user, server, conn, req);
}

/* A TLS listener configured by the caller's options, with an echo server at /echo. */
static void start_tls(tu_env *env, wsffi_listener_options *lo) {
    wsffi_server_callbacks cbs = tu_server_callbacks();
    cbs.on_connection = on_connection_subject;
    tu_env_start_with(env, "/echo", lo, NULL, &cbs);
    wsffi_listener_options_free(lo);
}

static wsffi_listener_options *cert_files(const certs *c, const char *cert, const char *key) {
    wsffi_listener_options *lo = wsffi_listener_options_new();
    REQUIRE(lo != NULL);
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listener_options_set_tls_cert_files(lo, in(c, cert).s, in(c, key).s, &err));
    CHECK(err == NULL);
    return lo;
}

static wsffi_client_options *trusting(const certs *c, const char *ca) {
    wsffi_client_options *co = wsffi_client_options_new();
    REQUIRE(co != NULL);
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_client_options_set_tls_ca_file(co, in(c, ca).s, &err));
    CHECK(err == NULL);
    return co;
}

typedef struct tu_wss_url {
    char s[128];
} tu_wss_url;

static tu_wss_url wss(const char *host, uint16_t port) {
    tu_wss_url u;
    snprintf(u.s, sizeof u.s, "wss://%s:%u/echo", host, (unsigned)port);
    return u;
}

/* Opens, echoes a text and a 1 MiB binary message, closes cleanly. */
static void round_trip(tu_env *env, const char *host, const wsffi_client_options *co) {
    tu_rec client;
    tu_rec_init(&client, "client");
    wsffi_conn *conn = tu_open(env->reactor, wss(host, env->port).s, co, &client);
    CHECK_OK(wsffi_send_text(conn, "over tls", 8));
    WAIT_UNTIL(client.messages == 1, TU_WAIT_MS);
    size_t big = (size_t)1 << 20;
    uint8_t *buf = malloc(big);
    REQUIRE(buf != NULL);
    for (size_t i = 0; i < big; i++) {
        buf[i] = (uint8_t)(i * 13 + (i >> 10));
    }
    CHECK_OK(wsffi_send_binary(conn, buf, big));
    WAIT_UNTIL(client.messages == 2, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(client.log[0], "over tls");
    CHECK_EQ(client.last_kind, WSFFI_BINARY);
    CHECK_EQ(client.last_len, big);
    CHECK(client.last_data != NULL && memcmp(client.last_data, buf, big) == 0);
    TU_UNLOCK();
    free(buf);
    CHECK_OK(wsffi_close(conn, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(client.close_code, WSFFI_CLOSE_NORMAL);
    CHECK(client.was_clean);
    CHECK_EQ(client.errors, 0);
    TU_UNLOCK();
    wsffi_conn_release(conn);
    TU_REC_DONE(&client);
}

/* Connects and expects error `status` (message starting with `prefix`) then close 1006. */
static void fails(tu_env *env, const char *host, const wsffi_client_options *co, wsffi_status status, const char *prefix) {
    tu_rec client;
    tu_rec_init(&client, "client");
    wsffi_conn *conn = tu_connect(env->reactor, wss(host, env->port).s, co, &client);
    WAIT_UNTIL(client.closes == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(client.opens, 0);
    CHECK_EQ(client.errors, 1);
    CHECK_EQ(client.error_status, status);
    if (!tu_starts_with(client.error_message, prefix)) {
        tu_fail(__FILE__, __LINE__, "client error \"%s\" does not start with \"%s\"", client.error_message, prefix);
    }
    CHECK_EQ(client.close_code, 1006);
    CHECK(!client.was_clean);
    TU_UNLOCK();
    wsffi_conn_release(conn);
    TU_REC_DONE(&client);
}

/* ---- cases ----------------------------------------------------------------------------- */

TEST(echo_over_tls_with_certificate_files) {
    certs c;
    certs_make(&c);
    tu_env env;
    start_tls(&env, cert_files(&c, "server.pem", "server.key"));
    wsffi_client_options *co = trusting(&c, "ca.pem");
    round_trip(&env, "localhost", co);
    round_trip(&env, "127.0.0.1", co);
    TU_LOCK();
    CHECK_STR(last_subject, "");
    TU_UNLOCK();
    wsffi_client_options_free(co);
    tu_env_stop(&env);
    certs_remove(&c);
}

TEST(mutual_tls_shows_the_client_subject) {
    certs c;
    certs_make(&c);
    wsffi_listener_options *lo = cert_files(&c, "server.pem", "server.key");
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listener_options_set_tls_client_ca_file(lo, in(&c, "client-ca.pem").s, true, &err));
    CHECK(err == NULL);
    tu_env env;
    start_tls(&env, lo);
    wsffi_client_options *co = trusting(&c, "ca.pem");
    /* Without a client certificate: refused during TLS, reported to on_client_error. */
    fails(&env, "localhost", co, WSFFI_STATUS_ERR_TLS, "TLS: ");
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(env.fx.client_error_status, WSFFI_STATUS_ERR_TLS);
    CHECK_STR(env.fx.client_error_message, "TLS: client certificate required but none was presented");
    TU_UNLOCK();
    CHECK_OK(wsffi_client_options_set_tls_client_cert(co, in(&c, "client.pem").s, in(&c, "client.key").s, &err));
    CHECK(err == NULL);
    round_trip(&env, "localhost", co);
    TU_LOCK();
    CHECK_STR(last_subject, "CN=client,O=Example");
    TU_UNLOCK();
    wsffi_client_options_free(co);
    tu_env_stop(&env);
    certs_remove(&c);
}

TEST(certificates_from_memory) {
    certs c;
    certs_make(&c);
    size_t cert_len = 0, key_len = 0;
    uint8_t *cert = read_all(in(&c, "server.pem").s, &cert_len);
    uint8_t *key = read_all(in(&c, "server.key").s, &key_len);
    wsffi_listener_options *lo = wsffi_listener_options_new();
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listener_options_set_tls_cert_pem(lo, cert, cert_len, key, key_len, &err));
    CHECK(err == NULL);
    free(cert);
    free(key);
    tu_env env;
    start_tls(&env, lo);
    wsffi_client_options *co = wsffi_client_options_new();
    /* A CA directory: every test CA, the server's among them. */
    CHECK_OK(wsffi_client_options_set_tls_ca_dir(co, c.dir, &err));
    CHECK(err == NULL);
    round_trip(&env, "localhost", co);
    tu_env_stop(&env);

    cert = read_all(in(&c, "server.der").s, &cert_len);
    key = read_all(in(&c, "server.key.der").s, &key_len);
    lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_tls_cert_der(lo, cert, cert_len, key, key_len, &err));
    CHECK(err == NULL);
    free(cert);
    free(key);
    start_tls(&env, lo);
    round_trip(&env, "localhost", co);
    wsffi_client_options_free(co);
    tu_env_stop(&env);
    certs_remove(&c);
}

TEST(verification_failures_and_their_overrides) {
    certs c;
    certs_make(&c);
    tu_env env;
    start_tls(&env, cert_files(&c, "sni.pem", "sni.key"));
    wsffi_client_options *co = trusting(&c, "other-ca.pem");
    fails(&env, "localhost", co, WSFFI_STATUS_ERR_TLS, "TLS: invalid certificate: unknown issuer");
    wsffi_client_options_free(co);
    co = trusting(&c, "ca.pem");
    fails(&env, "localhost", co, WSFFI_STATUS_ERR_TLS, "TLS: certificate not valid for name \"localhost\"");
    /* The SNI override names the certificate's host. */
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, "wsffi.test"));
    round_trip(&env, "127.0.0.1", co);
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, NULL));
    fails(&env, "127.0.0.1", co, WSFFI_STATUS_ERR_TLS, "TLS: certificate not valid for name \"127.0.0.1\"");
    wsffi_client_options_free(co);
    /* Insecure: no verification at all. */
    co = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_tls_insecure(co, true));
    round_trip(&env, "localhost", co);
    wsffi_client_options_free(co);
    tu_env_stop(&env);
    certs_remove(&c);
}

TEST(setters_report_bad_material) {
    certs c;
    certs_make(&c);
    wsffi_listener_options *lo = wsffi_listener_options_new();
    wsffi_client_options *co = wsffi_client_options_new();
    const char *missing = "/nonexistent/wsffi.pem";

    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_files(lo, missing, in(&c, "server.key").s, &err),
                    "TLS: cannot read certificate file /nonexistent/wsffi.pem: ");
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_files(lo, in(&c, "server.pem").s, missing, &err),
                    "TLS: cannot read key file /nonexistent/wsffi.pem: ");
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_files(lo, in(&c, "server.key").s, in(&c, "server.key").s, &err),
                    "TLS: no PEM certificate in ");
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_files(lo, in(&c, "server.pem").s, in(&c, "server.pem").s, &err),
                    "TLS: no PEM private key in ");
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_pem(lo, (const uint8_t *)"junk", 4, (const uint8_t *)"junk", 4, &err),
                    "TLS: no PEM certificate in the certificate PEM");
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_der(lo, (const uint8_t *)"junk", 4, (const uint8_t *)"junk", 4, &err),
                    "TLS: the DER certificate is not a valid X.509 certificate");
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_client_ca_file(lo, missing, true, &err), "TLS: cannot read certificate file ");
    CHECK_STATUS(wsffi_listener_options_set_tls_cert_files(lo, NULL, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_set_tls_cert_files(NULL, missing, missing, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    CHECK_TLS_ERROR(wsffi_client_options_set_tls_ca_file(co, missing, &err), "TLS: cannot read certificate file ");
    CHECK_TLS_ERROR(wsffi_client_options_set_tls_ca_dir(co, "/nonexistent", &err), "TLS: cannot read CA directory /nonexistent: ");
    CHECK_TLS_ERROR(wsffi_client_options_set_tls_client_cert(co, in(&c, "client.pem").s, missing, &err),
                    "TLS: cannot read key file ");
    CHECK_STATUS(wsffi_client_options_set_tls_server_name(co, "not a host name!"), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_tls_insecure(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_tls_ca_file(NULL, missing, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK(wsffi_request_tls_subject(NULL) == NULL);

    /* A key that belongs to another certificate. */
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_files(lo, in(&c, "server.pem").s, in(&c, "client.key").s, &err),
                    "TLS: the private key does not belong to the certificate");
    CHECK_TLS_ERROR(wsffi_client_options_set_tls_client_cert(co, in(&c, "client.pem").s, in(&c, "server.key").s, &err),
                    "TLS: the private key does not belong to the certificate");
    /* Settings that only fail together are found by wsffi_listen: client CAs without a
     * certificate. */
    wsffi_listener_options_free(lo);
    lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_set_tls_client_ca_file(lo, in(&c, "client-ca.pem").s, false, NULL));
    wsffi_reactor *r = tu_reactor_new();
    wsffi_listener *l = NULL;
    CHECK_TLS_ERROR(wsffi_listen(r, "127.0.0.1:0", lo, &l, &err), "TLS: a client CA was set but no server certificate and key");
    CHECK(l == NULL);
    tu_reactor_free(r);
    wsffi_listener_options_free(lo);
    wsffi_client_options_free(co);
    certs_remove(&c);
}

/* Opens a wss:// conn to `host` and checks the server certificate's subject and ALPN. */
static void opens_with(tu_env *env, const char *host, const wsffi_client_options *co, const char *subject,
                       const char *alpn) {
    tu_rec client;
    tu_rec_init(&client, "client");
    wsffi_conn *conn = tu_open(env->reactor, wss(host, env->port).s, co, &client);
    CHECK_STR(wsffi_tls_peer_subject(conn), subject);
    CHECK_STR(wsffi_tls_alpn(conn), alpn);
    CHECK_OK(wsffi_close(conn, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(client.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    TU_REC_DONE(&client);
}

TEST(sni_chooses_the_certificate) {
    certs c;
    certs_make(&c);
    wsffi_listener_options *lo = cert_files(&c, "server.pem", "server.key");
    wsffi_error *err = NULL;
    CHECK_OK(wsffi_listener_options_add_tls_sni_cert_files(lo, "WSFFI.test", in(&c, "sni.pem").s, in(&c, "sni.key").s, &err));
    size_t cert_len = 0, key_len = 0;
    uint8_t *cert = read_all(in(&c, "wrong-host.pem").s, &cert_len);
    uint8_t *key = read_all(in(&c, "wrong-host.key").s, &key_len);
    CHECK_OK(wsffi_listener_options_add_tls_sni_cert_pem(lo, "example.com", cert, cert_len, key, key_len, &err));
    free(cert);
    free(key);
    cert = read_all(in(&c, "server.der").s, &cert_len);
    key = read_all(in(&c, "server.key.der").s, &key_len);
    CHECK_OK(wsffi_listener_options_add_tls_sni_cert_der(lo, "localhost", cert, cert_len, key, key_len, &err));
    free(cert);
    free(key);
    CHECK(err == NULL);
    CHECK(wsffi_request_tls_alpn(NULL) == NULL);
    CHECK(wsffi_request_tls_server_name(NULL) == NULL);
    CHECK_STATUS(wsffi_listener_options_add_tls_sni_cert_files(lo, "127.0.0.1", in(&c, "sni.pem").s, in(&c, "sni.key").s, NULL),
                 WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_add_tls_sni_cert_files(lo, NULL, in(&c, "sni.pem").s, in(&c, "sni.key").s, NULL),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    tu_env env;
    start_tls(&env, lo);
    wsffi_client_options *co = trusting(&c, "ca.pem");
    opens_with(&env, "localhost", co, "CN=localhost", "http/1.1");
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, "wsffi.test"));
    opens_with(&env, "127.0.0.1", co, "CN=wsffi.test", "http/1.1");
    TU_LOCK();
    CHECK_STR(last_server_name, "wsffi.test");
    TU_UNLOCK();
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, "example.com"));
    opens_with(&env, "127.0.0.1", co, "CN=example.com", "http/1.1");
    /* An unknown name gets the default, which the client refuses for that name. */
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, "unknown.test"));
    fails(&env, "127.0.0.1", co, WSFFI_STATUS_ERR_TLS, "TLS: certificate not valid for name \"unknown.test\"");
    wsffi_client_options_free(co);
    tu_env_stop(&env);

    /* Without a default, an unknown name fails the handshake on both sides. */
    lo = wsffi_listener_options_new();
    CHECK_OK(wsffi_listener_options_add_tls_sni_cert_files(lo, "wsffi.test", in(&c, "sni.pem").s, in(&c, "sni.key").s, NULL));
    start_tls(&env, lo);
    co = trusting(&c, "ca.pem");
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, "unknown.test"));
    fails(&env, "127.0.0.1", co, WSFFI_STATUS_ERR_TLS, "TLS: peer sent alert \"access denied\"");
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(env.fx.client_error_status, WSFFI_STATUS_ERR_TLS);
    CHECK_STR(env.fx.client_error_message, "TLS: no certificate for server name \"unknown.test\" and no default certificate");
    TU_UNLOCK();
    CHECK_OK(wsffi_client_options_set_tls_server_name(co, "wsffi.test"));
    opens_with(&env, "127.0.0.1", co, "CN=wsffi.test", "http/1.1");
    wsffi_client_options_free(co);
    tu_env_stop(&env);
    certs_remove(&c);
}

TEST(alpn_is_negotiated_or_refused) {
    certs c;
    certs_make(&c);
    wsffi_listener_options *lo = cert_files(&c, "server.pem", "server.key");
    const char *const server_alpn[] = {"x-chat/2", "http/1.1"};
    CHECK_OK(wsffi_listener_options_set_tls_alpn(lo, server_alpn, 2, NULL));
    const char *const dup[] = {"a", "a"};
    CHECK_STATUS(wsffi_listener_options_set_tls_alpn(lo, dup, 2, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_listener_options_set_tls_alpn(lo, NULL, 1, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    tu_env env;
    start_tls(&env, lo);
    wsffi_client_options *co = trusting(&c, "ca.pem");
    opens_with(&env, "localhost", co, "CN=localhost", "http/1.1");
    const char *const chat[] = {"x-chat/1", "x-chat/2"};
    CHECK_OK(wsffi_client_options_set_tls_alpn(co, chat, 2, NULL));
    opens_with(&env, "localhost", co, "CN=localhost", "x-chat/2");
    TU_LOCK();
    CHECK_STR(last_alpn, "x-chat/2");
    TU_UNLOCK();
    CHECK_OK(wsffi_client_options_set_tls_alpn(co, NULL, 0, NULL));
    opens_with(&env, "localhost", co, "CN=localhost", "");
    const char *const other[] = {"h2"};
    CHECK_OK(wsffi_client_options_set_tls_alpn(co, other, 1, NULL));
    fails(&env, "localhost", co, WSFFI_STATUS_ERR_TLS, "TLS: peer sent alert \"no application protocol\"");
    WAIT_UNTIL(env.fx.client_errors == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(env.fx.client_error_message, "TLS: no common ALPN protocol");
    TU_UNLOCK();
    wsffi_client_options_free(co);
    tu_env_stop(&env);
    certs_remove(&c);
}

TEST(certificates_are_replaced_while_running) {
    certs c;
    certs_make(&c);
    tu_env env;
    start_tls(&env, cert_files(&c, "server.pem", "server.key"));
    wsffi_client_options *old_ca = trusting(&c, "ca.pem");
    wsffi_client_options *new_ca = trusting(&c, "other-ca.pem");
    tu_rec before;
    tu_rec_init(&before, "before");
    wsffi_conn *conn = tu_open(env.reactor, wss("localhost", env.port).s, old_ca, &before);

    /* Bad input leaves the certificate in place. */
    wsffi_listener_options *lo = wsffi_listener_options_new();
    wsffi_error *err = NULL;
    CHECK_TLS_ERROR(wsffi_listener_options_set_tls_cert_files(lo, in(&c, "other-server.pem").s, in(&c, "server.key").s, &err),
                    "TLS: the private key does not belong to the certificate");
    CHECK_TLS_ERROR(wsffi_listener_set_tls_certificates(env.listener, lo, &err), "TLS: no server certificate");
    CHECK_STATUS(wsffi_listener_set_tls_certificates(env.listener, NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    round_trip(&env, "localhost", old_ca);

    CHECK_OK(wsffi_listener_options_set_tls_cert_files(lo, in(&c, "other-server.pem").s, in(&c, "other-server.key").s, NULL));
    CHECK_OK(wsffi_listener_set_tls_certificates(env.listener, lo, &err));
    CHECK(err == NULL);
    wsffi_listener_options_free(lo);
    fails(&env, "localhost", old_ca, WSFFI_STATUS_ERR_TLS, "TLS: invalid certificate: unknown issuer");
    round_trip(&env, "localhost", new_ca);
    /* The connection from before still works. */
    CHECK_OK(wsffi_send_text(conn, "still here", 10));
    WAIT_UNTIL(before.messages == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(before.log[0], "still here");
    TU_UNLOCK();
    CHECK_OK(wsffi_close(conn, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(before.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    TU_REC_DONE(&before);
    wsffi_client_options_free(old_ca);
    wsffi_client_options_free(new_ca);
    tu_env_stop(&env);
    certs_remove(&c);
}

TU_MAIN(TU_CASE(echo_over_tls_with_certificate_files), TU_CASE(mutual_tls_shows_the_client_subject),
        TU_CASE(certificates_from_memory), TU_CASE(verification_failures_and_their_overrides),
        TU_CASE(setters_report_bad_material), TU_CASE(sni_chooses_the_certificate),
        TU_CASE(alpn_is_negotiated_or_refused), TU_CASE(certificates_are_replaced_while_running))
