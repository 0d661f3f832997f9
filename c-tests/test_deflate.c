/* permessage-deflate through the header: parameters, negotiation between our client and
 * server, compressed echoes (whole, fragmented, large) and max_payload on the inflated size. */
#include "testutil.h"

static wsffi_deflate_params defaults(void) {
    wsffi_deflate_params p;
    memset(&p, 0xAB, sizeof p);
    CHECK_OK(wsffi_deflate_params_init(&p, sizeof p));
    return p;
}

TEST(params_defaults_and_validation) {
    wsffi_deflate_params p = defaults();
    CHECK(!p.server_no_context_takeover);
    CHECK(!p.client_no_context_takeover);
    CHECK_EQ(p.server_max_window_bits, 15);
    CHECK_EQ(p.client_max_window_bits, 15);
    CHECK_EQ(p.threshold, 64);
    CHECK_EQ(p.level, 6);
    CHECK_EQ(p.mem_level, 8);
    CHECK_EQ(p.size, sizeof p);
    CHECK_STATUS(wsffi_deflate_params_init(NULL, sizeof p), WSFFI_STATUS_ERR_NULL_PARAMETER);

    wsffi_client_options *co = wsffi_client_options_new();
    wsffi_server_options *so = wsffi_server_options_new();
    REQUIRE(co != NULL && so != NULL);
    CHECK_STATUS(wsffi_client_options_set_deflate_params(co, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_deflate_params(so, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_deflate_params(NULL, &p), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_per_message_deflate(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_client_options_set_per_message_deflate(NULL, true), WSFFI_STATUS_ERR_NULL_PARAMETER);

    struct {
        const char *what;
        wsffi_deflate_params p;
    } bad[6];
    for (int i = 0; i < 6; i++) {
        bad[i].p = p;
    }
    bad[0].what = "server window 7", bad[0].p.server_max_window_bits = 7;
    bad[1].what = "server window 16", bad[1].p.server_max_window_bits = 16;
    bad[2].what = "client window 7", bad[2].p.client_max_window_bits = 7;
    bad[3].what = "level 10", bad[3].p.level = 10;
    bad[4].what = "mem_level 0", bad[4].p.mem_level = 0;
    bad[5].what = "mem_level 10", bad[5].p.mem_level = 10;
    for (int i = 0; i < 6; i++) {
        if (!CHECK_STATUS(wsffi_client_options_set_deflate_params(co, &bad[i].p), WSFFI_STATUS_ERR_INVALID_PARAMETER) ||
            !CHECK_STATUS(wsffi_server_options_set_deflate_params(so, &bad[i].p), WSFFI_STATUS_ERR_INVALID_PARAMETER)) {
            printf("accepted: %s\n", bad[i].what);
        }
    }
    /* The extremes are fine. */
    wsffi_deflate_params edge = p;
    edge.server_max_window_bits = 8;
    edge.client_max_window_bits = 8;
    edge.level = 0;
    edge.mem_level = 1;
    edge.threshold = 0;
    CHECK_OK(wsffi_client_options_set_deflate_params(co, &edge));
    CHECK_OK(wsffi_server_options_set_deflate_params(so, &edge));
    edge.level = 9;
    edge.mem_level = 9;
    edge.server_max_window_bits = 15;
    CHECK_OK(wsffi_server_options_set_deflate_params(so, &edge));
    wsffi_client_options_free(co);
    wsffi_server_options_free(so);
}

/* The size rule: fields beyond a smaller size take their defaults (so garbage there is
 * ignored), unknown fields of a larger size must be zero, size 0 is refused. */
typedef struct newer_deflate_params {
    wsffi_deflate_params known;
    uint64_t future_field;
} newer_deflate_params;

TEST(params_size_rule) {
    wsffi_client_options *co = wsffi_client_options_new();
    wsffi_server_options *so = wsffi_server_options_new();
    REQUIRE(co != NULL && so != NULL);

    wsffi_deflate_params old = defaults();
    old.size = offsetof(wsffi_deflate_params, threshold);
    old.server_max_window_bits = 10;
    old.level = 99;    /* beyond the size: not read */
    old.mem_level = 0; /* likewise */
    CHECK_OK(wsffi_client_options_set_deflate_params(co, &old));
    CHECK_OK(wsffi_server_options_set_deflate_params(so, &old));
    old.server_max_window_bits = 7; /* within the size: read and checked */
    CHECK_STATUS(wsffi_client_options_set_deflate_params(co, &old), WSFFI_STATUS_ERR_INVALID_PARAMETER);

    newer_deflate_params newer;
    memset(&newer, 0, sizeof newer);
    CHECK_OK(wsffi_deflate_params_init(&newer.known, sizeof newer));
    CHECK_EQ(newer.known.size, sizeof newer);
    CHECK_EQ(newer.known.level, 6);
    CHECK_OK(wsffi_server_options_set_deflate_params(so, &newer.known));
    newer.future_field = 1;
    CHECK_STATUS(wsffi_server_options_set_deflate_params(so, &newer.known), WSFFI_STATUS_ERR_INVALID_PARAMETER);

    wsffi_deflate_params zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    CHECK_STATUS(wsffi_client_options_set_deflate_params(co, &zeroed), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_deflate_params_init(&zeroed, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_deflate_params_init(&zeroed, offsetof(wsffi_deflate_params, threshold) + 2),
                 WSFFI_STATUS_ERR_INVALID_PARAMETER);
    wsffi_client_options_free(co);
    wsffi_server_options_free(so);
}

/* A server with the given deflate setup (NULL params: just on/off) and a client of ours. */
typedef struct pair {
    tu_env env;
    tu_rec client;
    wsffi_conn *conn;
} pair;

static void pair_open(pair *pr, bool server_on, const wsffi_deflate_params *sp, bool client_on,
                      const wsffi_deflate_params *cp, size_t server_max_payload) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_per_message_deflate(so, server_on));
    if (sp) {
        CHECK_OK(wsffi_server_options_set_deflate_params(so, sp));
    }
    if (server_max_payload) {
        CHECK_OK(wsffi_server_options_set_max_payload(so, server_max_payload));
    }
    tu_env_start_with(&pr->env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    wsffi_client_options *co = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_per_message_deflate(co, client_on));
    if (cp) {
        CHECK_OK(wsffi_client_options_set_deflate_params(co, cp));
    }
    tu_rec_init(&pr->client, "client");
    tu_url u = tu_make_url(pr->env.port, "/");
    pr->conn = tu_open(pr->env.reactor, u.s, co, &pr->client);
    wsffi_client_options_free(co);
    WAIT_UNTIL(pr->env.fx.connections == 1 && pr->env.fx.conns[0].opens == 1, TU_WAIT_MS);
}

static void pair_close(pair *pr) {
    CHECK_OK(wsffi_close(pr->conn, 1000, "bye", 3));
    WAIT_UNTIL(pr->client.closes == 1, TU_WAIT_MS);
    CHECK_EQ(pr->client.close_code, 1000);
    CHECK(pr->client.was_clean);
    wsffi_conn_release(pr->conn);
    TU_REC_DONE(&pr->client);
    tu_env_stop(&pr->env);
}

/* Sends and waits for the echo; checks it byte for byte. */
static void echo(pair *pr, uint32_t kind, const uint8_t *data, size_t len) {
    int before = (int)LOCKED_INT(pr->client.messages);
    CHECK_OK(wsffi_send(pr->conn, kind, data, len));
    WAIT_UNTIL(pr->client.messages == before + 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(pr->client.last_kind, kind);
    CHECK_EQ(pr->client.last_len, len);
    CHECK(len == 0 || memcmp(pr->client.last_data, data, len) == 0);
    TU_UNLOCK();
}

static const char JSON[] = "{\"type\":\"tick\",\"symbol\":\"WSFI\",\"price\":123.45,\"volume\":1000,\"ok\":true}";

TEST(negotiated_by_default_when_the_server_enables_it) {
    pair pr;
    pair_open(&pr, true, NULL, true, NULL, 0);
    const char *ext = wsffi_extensions(pr.conn);
    CHECK_STR(ext, "permessage-deflate");
    CHECK_STR(wsffi_extensions(pr.env.fx.conns[0].retained), "permessage-deflate");

    echo(&pr, WSFFI_TEXT, (const uint8_t *)JSON, strlen(JSON));
    echo(&pr, WSFFI_TEXT, (const uint8_t *)"", 0);
    echo(&pr, WSFFI_BINARY, (const uint8_t *)"", 0);
    size_t big = 3 << 20;
    uint8_t *buf = malloc(big);
    REQUIRE(buf != NULL);
    for (size_t i = 0; i < big; i++) {
        buf[i] = (uint8_t)((i * 7) ^ (i >> 9));
    }
    echo(&pr, WSFFI_BINARY, buf, big);
    /* Random bytes do not compress: still exact. */
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    echo(&pr, WSFFI_BINARY, buf, 1 << 20);
    free(buf);
    /* Many small messages share one compression context in order. */
    for (int i = 0; i < 200; i++) {
        char m[96];
        int n = snprintf(m, sizeof m, "{\"seq\":%d,\"pad\":\"%.*s\"}", i, i % 40, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        echo(&pr, WSFFI_TEXT, (const uint8_t *)m, (size_t)n);
    }
    pair_close(&pr);
}

TEST(fragments_are_compressed_as_one_message) {
    pair pr;
    pair_open(&pr, true, NULL, true, NULL, 0);
    char text[4096];
    size_t len = 0;
    while (len + 12 < sizeof text) {
        memcpy(text + len, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 ", 12);
        len += 12;
    }
    int before = (int)LOCKED_INT(pr.client.messages);
    /* Split inside a multi-byte character, with a ping between the fragments. */
    CHECK_OK(wsffi_send_fragment(pr.conn, WSFFI_TEXT, (const uint8_t *)text, 1001, false));
    CHECK_OK(wsffi_ping(pr.conn, (const uint8_t *)"mid", 3));
    CHECK_OK(wsffi_send_fragment(pr.conn, WSFFI_TEXT, (const uint8_t *)text + 1001, 0, false));
    CHECK_OK(wsffi_send_fragment(pr.conn, WSFFI_TEXT, (const uint8_t *)text + 1001, len - 1001, true));
    WAIT_UNTIL(pr.client.messages == before + 1 && pr.client.pongs == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(pr.client.last_kind, WSFFI_TEXT);
    CHECK_EQ(pr.client.last_len, len);
    CHECK(memcmp(pr.client.last_data, text, len) == 0);
    TU_UNLOCK();
    echo(&pr, WSFFI_TEXT, (const uint8_t *)JSON, strlen(JSON));
    pair_close(&pr);
}

TEST(parameters_reach_the_answer) {
    wsffi_deflate_params cp = defaults();
    cp.server_no_context_takeover = true;
    cp.client_no_context_takeover = true;
    cp.client_max_window_bits = 10;
    cp.server_max_window_bits = 12;
    cp.level = 1;
    cp.mem_level = 2;
    cp.threshold = 0;
    wsffi_deflate_params sp = defaults();
    sp.server_max_window_bits = 11;
    sp.level = 9;
    pair pr;
    pair_open(&pr, true, &sp, true, &cp, 0);
    const char *want =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; "
        "client_max_window_bits=10";
    CHECK_STR(wsffi_extensions(pr.conn), want);
    CHECK_STR(wsffi_extensions(pr.env.fx.conns[0].retained), want);
    for (int i = 0; i < 50; i++) {
        echo(&pr, i % 2 ? WSFFI_BINARY : WSFFI_TEXT, (const uint8_t *)JSON, strlen(JSON) - (size_t)(i % 7));
    }
    pair_close(&pr);
}

TEST(server_limit_on_the_client_window) {
    /* The server imposes client_max_window_bits=9 on a client that offers the parameter. */
    wsffi_deflate_params sp = defaults();
    sp.client_max_window_bits = 9;
    pair pr;
    pair_open(&pr, true, &sp, true, NULL, 0);
    CHECK_STR(wsffi_extensions(pr.conn), "permessage-deflate; client_max_window_bits=9");
    char text[20000];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = (char)('a' + (i * 31 + i / 100) % 26);
    }
    echo(&pr, WSFFI_TEXT, (const uint8_t *)text, sizeof text);
    pair_close(&pr);
}

TEST(declined_unless_both_sides_want_it) {
    pair pr;
    pair_open(&pr, false, NULL, true, NULL, 0);
    CHECK_EMPTY_STR(wsffi_extensions(pr.conn));
    CHECK_EMPTY_STR(wsffi_extensions(pr.env.fx.conns[0].retained));
    echo(&pr, WSFFI_TEXT, (const uint8_t *)JSON, strlen(JSON));
    pair_close(&pr);

    pair_open(&pr, true, NULL, false, NULL, 0);
    CHECK_EMPTY_STR(wsffi_extensions(pr.conn));
    CHECK_EMPTY_STR(wsffi_extensions(pr.env.fx.conns[0].retained));
    echo(&pr, WSFFI_TEXT, (const uint8_t *)JSON, strlen(JSON));
    pair_close(&pr);
}

TEST(max_payload_limits_the_inflated_size) {
    pair pr;
    pair_open(&pr, true, NULL, true, NULL, 4096);
    /* 4096 bytes inflate exactly to the limit: accepted. */
    uint8_t *zeros = calloc(1, 1 << 20);
    REQUIRE(zeros != NULL);
    echo(&pr, WSFFI_BINARY, zeros, 4096);
    /* 1 MiB of zeros is about 1 KiB on the wire, far below 4096, but inflates past it. */
    CHECK_OK(wsffi_send_binary(pr.conn, zeros, 1 << 20));
    WAIT_UNTIL(pr.client.closes == 1, TU_WAIT_MS);
    CHECK_EQ(pr.client.close_code, 1009);
    tu_rec *srv = &pr.env.fx.conns[0];
    WAIT_UNTIL(srv->closes == 1, TU_WAIT_MS);
    CHECK_EQ(srv->error_status, WSFFI_STATUS_ERR_MESSAGE_TOO_BIG);
    CHECK(strstr(srv->error_message, "max_payload") != NULL);
    free(zeros);
    wsffi_conn_release(pr.conn);
    TU_REC_DONE(&pr.client);
    tu_env_stop(&pr.env);
}

TEST(broadcast_compresses_per_connection) {
    tu_env env;
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_OK(wsffi_server_options_set_per_message_deflate(so, true));
    tu_env_start_with(&env, "/", NULL, so, NULL);
    wsffi_server_options_free(so);
    env.fx.echo = false;
    tu_rec a, b;
    tu_rec_init(&a, "compressing client");
    tu_rec_init(&b, "plain client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *ca = tu_open(env.reactor, u.s, NULL, &a);
    wsffi_client_options *co = wsffi_client_options_new();
    CHECK_OK(wsffi_client_options_set_per_message_deflate(co, false));
    wsffi_conn *cb = tu_open(env.reactor, u.s, co, &b);
    wsffi_client_options_free(co);
    WAIT_UNTIL(env.fx.connections == 2, TU_WAIT_MS);
    CHECK_STR(wsffi_extensions(ca), "permessage-deflate");
    CHECK_EMPTY_STR(wsffi_extensions(cb));
    char text[1000];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = (char)('A' + i % 13);
    }
    for (int round = 0; round < 3; round++) {
        size_t sent = 0;
        CHECK_OK(wsffi_server_broadcast(env.server, WSFFI_TEXT, (const uint8_t *)text, sizeof text, &sent));
        CHECK_EQ(sent, 2);
        WAIT_UNTIL(a.messages == round + 1 && b.messages == round + 1, TU_WAIT_MS);
        TU_LOCK();
        CHECK(a.last_len == sizeof text && memcmp(a.last_data, text, sizeof text) == 0);
        CHECK(b.last_len == sizeof text && memcmp(b.last_data, text, sizeof text) == 0);
        TU_UNLOCK();
    }
    CHECK_OK(wsffi_close(ca, 1000, NULL, 0));
    CHECK_OK(wsffi_close(cb, 1000, NULL, 0));
    wsffi_conn_release(ca);
    wsffi_conn_release(cb);
    TU_REC_DONE(&a);
    TU_REC_DONE(&b);
    tu_env_stop(&env);
}

TU_MAIN(TU_CASE(params_defaults_and_validation), TU_CASE(params_size_rule),
        TU_CASE(negotiated_by_default_when_the_server_enables_it),
        TU_CASE(fragments_are_compressed_as_one_message), TU_CASE(parameters_reach_the_answer),
        TU_CASE(server_limit_on_the_client_window), TU_CASE(declined_unless_both_sides_want_it),
        TU_CASE(max_payload_limits_the_inflated_size), TU_CASE(broadcast_compresses_per_connection))
