/*
 * test_stats: wsffi_conn_get_stats, wsffi_server_get_stats, wsffi_reactor_get_stats and
 * wsffi_reactor_stats_prometheus. Counters after known echo traffic on both sides, the ping
 * round trip, final counters read on a closed conn still held, the size rule for smaller
 * (older) and larger (newer) structs, NULL and bad sizes, and the Prometheus text's buffer
 * contract.
 */
#include "testutil.h"

#include <stddef.h>

static wsffi_conn_stats conn_stats(const wsffi_conn *conn) {
    wsffi_conn_stats s;
    memset(&s, 0xab, sizeof s);
    s.size = sizeof s;
    CHECK_OK(wsffi_conn_get_stats(conn, &s));
    CHECK_EQ(s.size, sizeof s);
    return s;
}

static wsffi_server_stats server_stats(const wsffi_server *server) {
    wsffi_server_stats s = {.size = sizeof s};
    CHECK_OK(wsffi_server_get_stats(server, &s));
    return s;
}

static wsffi_reactor_stats reactor_stats(const wsffi_reactor *reactor) {
    wsffi_reactor_stats s = {.size = sizeof s};
    CHECK_OK(wsffi_reactor_get_stats(reactor, &s));
    return s;
}

/* Three echoes: every level counts them, and bytes agree between the two ends. */
TEST(echo_traffic_is_counted_on_every_level) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_rec rec;
    tu_rec_init(&rec, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &rec);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(wsffi_send_text(conn, "hello", 5));
    }
    WAIT_UNTIL(rec.messages == 3, TU_WAIT_MS);
    /* Received messages count just after their callbacks, at the end of the read. */
    WAIT_UNTIL(conn_stats(conn).messages_in == 3, TU_WAIT_MS);
    wsffi_conn_stats c = conn_stats(conn);
    CHECK_EQ(c.messages_out, 3);
    CHECK_EQ(c.buffered_bytes, 0);
    CHECK_EQ(c.last_ping_rtt_us, -1);
    /* The server's side of the stream: what we wrote, it read, and the other way round. */
    WAIT_UNTIL(reactor_stats(env.reactor).bytes_in == c.bytes_in + c.bytes_out, TU_WAIT_MS);
    wsffi_reactor_stats r = reactor_stats(env.reactor);
    CHECK_EQ(r.bytes_out, r.bytes_in);
    CHECK_EQ(r.messages_in, 6);
    CHECK_EQ(r.messages_out, 6);
    CHECK_EQ(r.connections_open, 2);
    CHECK_EQ(r.connections_opened, 2);
    CHECK_EQ(r.handshakes_accepted, 1);
    /* 3 masked frames of 5 bytes (2 + 4 + 5) came in after the request. */
    wsffi_server_stats s = server_stats(env.server);
    CHECK_EQ(s.connections_open, 1);
    CHECK_EQ(s.handshakes_accepted, 1);
    CHECK_EQ(s.messages_in, 3);
    CHECK_EQ(s.messages_out, 3);
    CHECK_EQ(s.bytes_in, 3 * 11);
    CHECK(s.bytes_out > 3 * 7); /* the 101 answer and the echoes */
    CHECK_EQ(s.refused_bad_request + s.refused_origin + s.refused_verify_client, 0);

    /* The round trip of our ping, in microseconds. */
    CHECK_OK(wsffi_ping(conn, (const uint8_t *)"rtt", 3));
    WAIT_UNTIL(rec.pongs == 1, TU_WAIT_MS);
    c = conn_stats(conn);
    CHECK(c.last_ping_rtt_us >= 0 && c.last_ping_rtt_us < 5 * 1000 * 1000 * tu_slow);

    CHECK_OK(wsffi_close(conn, WSFFI_CLOSE_NORMAL, "bye", 3));
    WAIT_UNTIL(rec.closes == 1, TU_WAIT_MS);
    WAIT_UNTIL(reactor_stats(env.reactor).connections_open == 0, TU_WAIT_MS);
    r = reactor_stats(env.reactor);
    CHECK_EQ(r.closes_sent.code_1000, 2);     /* ours and the server's echo */
    CHECK_EQ(r.closes_received.code_1000, 2); /* seen from both ends */
    CHECK_EQ(r.closes_received.code_1006, 0);
    /* The server's count drops after its connection's on_close has run. */
    WAIT_UNTIL(server_stats(env.server).connections_open == 0, TU_WAIT_MS);
    s = server_stats(env.server);
    CHECK_EQ(s.closes_received.code_1000, 1);
    wsffi_conn_release(conn);
    TU_REC_DONE(&rec);
    tu_env_stop(&env);
}

/* A closed conn still held: the counters are final and the call succeeds. */
TEST(stats_read_after_close) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_rec rec;
    tu_rec_init(&rec, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &rec);
    CHECK_OK(wsffi_send_binary(conn, (const uint8_t *)"\x01\x02", 2));
    WAIT_UNTIL(rec.messages == 1, TU_WAIT_MS);
    CHECK_OK(wsffi_terminate(conn));
    WAIT_UNTIL(rec.closes == 1, TU_WAIT_MS);
    CHECK_EQ(wsffi_ready_state(conn), WSFFI_CLOSED);
    wsffi_conn_stats a = conn_stats(conn);
    CHECK_EQ(a.messages_in, 1);
    CHECK_EQ(a.messages_out, 1);
    CHECK(a.bytes_in > 0 && a.bytes_out > 0);
    CHECK_EQ(a.buffered_bytes, 0);
    tu_sleep_ms(20);
    wsffi_conn_stats b = conn_stats(conn);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    /* Sends on it are refused; the stats stay readable. */
    CHECK_STATUS(wsffi_send_text(conn, "x", 1), WSFFI_STATUS_ERR_CLOSED);
    /* Neither end sent a close frame: both count 1006 received. */
    WAIT_UNTIL(reactor_stats(env.reactor).closes_received.code_1006 == 2, TU_WAIT_MS);
    tu_env_stop(&env);
    /* Still after the reactor is gone, while the reference is held. */
    b = conn_stats(conn);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    wsffi_conn_release(conn);
    TU_REC_DONE(&rec);
}

/* A caller's struct as a newer header would declare it: the known part and more fields. */
typedef struct newer_conn_stats {
    wsffi_conn_stats known;
    uint64_t later[3];
} newer_conn_stats;

TEST(size_rule_null_and_bad_sizes) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_rec rec;
    tu_rec_init(&rec, "client");
    tu_url u = tu_make_url(env.port, "/");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &rec);
    CHECK_OK(wsffi_send_text(conn, "hi", 2));
    WAIT_UNTIL(conn_stats(conn).messages_in == 1, TU_WAIT_MS);

    wsffi_conn_stats s = {.size = sizeof s};
    CHECK_STATUS(wsffi_conn_get_stats(NULL, &s), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_get_stats(conn, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_get_stats(NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_get_stats(env.server, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_get_stats(NULL, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_get_stats(env.reactor, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);

    /* A struct only zeroed (size 0), a size below the size field, one inside a field:
     * refused, nothing written. */
    size_t bad[] = {0, sizeof(size_t) - 1, offsetof(wsffi_conn_stats, messages_out) + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&s, 0x5a, sizeof s);
        s.size = bad[i];
        CHECK_STATUS(wsffi_conn_get_stats(conn, &s), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        CHECK_EQ(s.size, bad[i]);
        CHECK_EQ(s.messages_in, 0x5a5a5a5a5a5a5a5aULL);
        wsffi_server_stats ss = {.size = bad[i]};
        CHECK_STATUS(wsffi_server_get_stats(env.server, &ss), WSFFI_STATUS_ERR_INVALID_PARAMETER);
        wsffi_reactor_stats rs = {.size = bad[i]};
        CHECK_STATUS(wsffi_reactor_get_stats(env.reactor, &rs), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    }

    /* An older header's struct ending after bytes_in: only what it covers is written. */
    memset(&s, 0x5a, sizeof s);
    s.size = offsetof(wsffi_conn_stats, bytes_out);
    CHECK_OK(wsffi_conn_get_stats(conn, &s));
    CHECK_EQ(s.size, offsetof(wsffi_conn_stats, bytes_out));
    CHECK_EQ(s.messages_in, 1);
    CHECK_EQ(s.messages_out, 1);
    CHECK(s.bytes_in > 0);
    CHECK_EQ(s.bytes_out, 0x5a5a5a5a5a5a5a5aULL);
    CHECK_EQ(s.last_ping_rtt_us, 0x5a5a5a5a5a5a5a5aLL);

    /* A newer header's larger struct: the unknown tail is zeroed and size says what was
     * filled. */
    newer_conn_stats n;
    memset(&n, 0x5a, sizeof n);
    n.known.size = sizeof n;
    CHECK_OK(wsffi_conn_get_stats(conn, &n.known));
    CHECK_EQ(n.known.size, sizeof(wsffi_conn_stats));
    CHECK_EQ(n.known.messages_in, 1);
    CHECK_EQ(n.later[0] | n.later[1] | n.later[2], 0);

    /* The same for the server and the reactor structs. */
    wsffi_server_stats ss;
    memset(&ss, 0x5a, sizeof ss);
    ss.size = offsetof(wsffi_server_stats, refused_bad_request);
    CHECK_OK(wsffi_server_get_stats(env.server, &ss));
    CHECK_EQ(ss.handshakes_accepted, 1);
    CHECK_EQ(ss.refused_bad_request, 0x5a5a5a5a5a5a5a5aULL);
    wsffi_reactor_stats rs;
    memset(&rs, 0x5a, sizeof rs);
    rs.size = offsetof(wsffi_reactor_stats, closes_sent);
    CHECK_OK(wsffi_reactor_get_stats(env.reactor, &rs));
    CHECK_EQ(rs.connections_open, 2);
    CHECK_EQ(rs.closes_sent.code_1000, 0x5a5a5a5a5a5a5a5aULL);

    CHECK_OK(wsffi_close(conn, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(rec.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    TU_REC_DONE(&rec);
    tu_env_stop(&env);
}

/* Called on the reactor thread: the stats calls do not wait for the reactor. */
static void read_stats_in_callback(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)kind;
    (void)data;
    (void)len;
    wsffi_conn_stats c = {.size = sizeof c};
    CHECK_OK(wsffi_conn_get_stats(conn, &c));
    wsffi_reactor_stats r = {.size = sizeof r};
    CHECK_OK(wsffi_reactor_get_stats(rec->hook_arg, &r));
    size_t len_needed = 0;
    CHECK_STATUS(wsffi_reactor_stats_prometheus(rec->hook_arg, NULL, 0, &len_needed), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK(len_needed > 0);
}

TEST(prometheus_text_buffer_contract) {
    tu_env env;
    tu_env_start(&env, "/room");
    tu_rec rec;
    tu_rec_init(&rec, "client");
    rec.message_hook = read_stats_in_callback;
    rec.hook_arg = env.reactor;
    tu_url u = tu_make_url(env.port, "/room");
    wsffi_conn *conn = tu_open(env.reactor, u.s, NULL, &rec);
    CHECK_OK(wsffi_send_text(conn, "hi", 2));
    WAIT_UNTIL(rec.messages == 1, TU_WAIT_MS);
    WAIT_UNTIL(reactor_stats(env.reactor).messages_in == 2, TU_WAIT_MS);

    size_t need = 0;
    CHECK_STATUS(wsffi_reactor_stats_prometheus(NULL, NULL, 0, &need), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_stats_prometheus(env.reactor, NULL, 10, &need), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_stats_prometheus(env.reactor, NULL, 0, &need), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK(need > 100);
    /* Too small by one (no room for the NUL): refused, the buffer untouched. */
    char *buf = malloc(need + 1024);
    REQUIRE(buf != NULL);
    memset(buf, '#', need + 1024);
    size_t len = 0;
    CHECK_STATUS(wsffi_reactor_stats_prometheus(env.reactor, buf, need, &len), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK_EQ(len, need);
    CHECK_EQ(buf[0], '#');
    CHECK_OK(wsffi_reactor_stats_prometheus(env.reactor, buf, need + 1024, &len));
    CHECK_EQ(strlen(buf), len);
    CHECK(strstr(buf, "# TYPE wsffi_connections_open gauge\nwsffi_connections_open 2\n") != NULL);
    CHECK(strstr(buf, "wsffi_messages_received_total 2\n") != NULL);
    CHECK(strstr(buf, "wsffi_server_messages_received_total{server=\"1\",path=\"/room\"} 1\n") != NULL);
    CHECK(strstr(buf, "wsffi_server_handshakes_accepted_total{server=\"1\",path=\"/room\"} 1\n") != NULL);
    /* out_len may be NULL. */
    CHECK_OK(wsffi_reactor_stats_prometheus(env.reactor, buf, need + 1024, NULL));
    free(buf);

    CHECK_OK(wsffi_close(conn, WSFFI_CLOSE_NORMAL, NULL, 0));
    WAIT_UNTIL(rec.closes == 1, TU_WAIT_MS);
    wsffi_conn_release(conn);
    TU_REC_DONE(&rec);
    tu_env_stop(&env);
}

TU_MAIN(TU_CASE(echo_traffic_is_counted_on_every_level), TU_CASE(stats_read_after_close),
        TU_CASE(size_rule_null_and_bad_sizes), TU_CASE(prometheus_text_buffer_contract))
