/*
 * Pub/sub topics inside a server: wsffi_conn_subscribe / unsubscribe / is_subscribed,
 * wsffi_server_publish (from the main thread, from callbacks, from many threads at once),
 * wsffi_server_subscriber_count, the end of subscriptions at close, and bad arguments.
 */
#include "testutil.h"

#define TOPIC_CLIENTS 3

typedef struct topic_env {
    tu_env env;
    tu_rec c[TOPIC_CLIENTS];
    wsffi_conn *conn[TOPIC_CLIENTS];
} topic_env;

static void topics_start(topic_env *t, const wsffi_server_options *so) {
    tu_env_start_with(&t->env, "/", NULL, so, NULL);
    t->env.fx.echo = false;
    tu_url u = tu_make_url(t->env.port, "/");
    for (int i = 0; i < TOPIC_CLIENTS; i++) {
        tu_rec_init(&t->c[i], "client");
        t->conn[i] = tu_open(t->env.reactor, u.s, NULL, &t->c[i]);
        /* One at a time, so server connection i belongs to client i. */
        WAIT_UNTIL(t->env.fx.connections == i + 1 && t->env.fx.conns[i].opens == 1, TU_WAIT_MS);
    }
}

static void topics_stop(topic_env *t) {
    tu_env_stop(&t->env);
    for (int i = 0; i < TOPIC_CLIENTS; i++) {
        TU_REC_DONE(&t->c[i]);
        wsffi_conn_release(t->conn[i]);
    }
}

static wsffi_conn *server_conn(topic_env *t, int i) {
    return t->env.fx.conns[i].conn;
}

static wsffi_status publish_text(wsffi_server *s, const char *topic, const char *text, const wsffi_conn *except) {
    return wsffi_server_publish(s, topic, WSFFI_TEXT, (const uint8_t *)text, strlen(text), except);
}

TEST(publish_reaches_subscribers_only) {
    topic_env t;
    topics_start(&t, NULL);
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 0), "room"));
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 1), "room"));
    CHECK_STATUS(wsffi_conn_subscribe(server_conn(&t, 1), "room"), WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 2), "other"));
    CHECK(wsffi_conn_is_subscribed(server_conn(&t, 0), "room"));
    CHECK(!wsffi_conn_is_subscribed(server_conn(&t, 2), "room"));
    CHECK(!wsffi_conn_is_subscribed(server_conn(&t, 0), "Room")); /* names are exact */
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "room"), 2);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "other"), 1);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "nobody"), 0);

    CHECK_OK(publish_text(t.env.server, "room", "to the room", NULL));
    CHECK_OK(wsffi_server_publish(t.env.server, "room", WSFFI_BINARY, (const uint8_t *)"\x00\x01", 2, NULL));
    /* Everyone but the publisher's own connection. */
    CHECK_OK(publish_text(t.env.server, "room", "not to 0", server_conn(&t, 0)));
    CHECK_OK(publish_text(t.env.server, "other", "to 2", NULL));
    CHECK_OK(publish_text(t.env.server, "nobody", "lost on nobody", NULL));
    WAIT_UNTIL(t.c[0].messages == 2 && t.c[1].messages == 3 && t.c[2].messages == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(t.c[0].log[0], "to the room");
    CHECK(t.c[0].log_kind[1] == WSFFI_BINARY && t.c[0].log_len[1] == 2);
    CHECK_STR(t.c[1].log[0], "to the room");
    CHECK_STR(t.c[1].log[2], "not to 0");
    CHECK_STR(t.c[2].log[0], "to 2");
    TU_UNLOCK();

    /* Unsubscribed: no more. */
    CHECK_OK(wsffi_conn_unsubscribe(server_conn(&t, 1), "room"));
    CHECK_STATUS(wsffi_conn_unsubscribe(server_conn(&t, 1), "room"), WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_STATUS(wsffi_conn_unsubscribe(server_conn(&t, 2), "room"), WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "room"), 1);
    CHECK_OK(publish_text(t.env.server, "room", "last", NULL));
    CHECK_OK(publish_text(t.env.server, "other", "marker", NULL));
    WAIT_UNTIL(t.c[0].messages == 3 && t.c[2].messages == 2, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(t.c[1].messages), 3);
    topics_stop(&t);
}

/* Clients drive their server connections: "sub:T", "unsub:T", "pub:T:text" (to T, except
 * the sender), each answered with "ok" or the status number. */
static wsffi_server *hook_server;

static void command_hook(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    (void)kind;
    char cmd[256];
    size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
    memcpy(cmd, data, n);
    cmd[n] = '\0';
    wsffi_status s = WSFFI_STATUS_ERR_INVALID_PARAMETER;
    if (strncmp(cmd, "sub:", 4) == 0) {
        s = wsffi_conn_subscribe(conn, cmd + 4);
    } else if (strncmp(cmd, "unsub:", 6) == 0) {
        s = wsffi_conn_unsubscribe(conn, cmd + 6);
    } else if (strncmp(cmd, "pub:", 4) == 0) {
        char *text = strchr(cmd + 4, ':');
        if (text != NULL) {
            *text++ = '\0';
            s = publish_text(hook_server, cmd + 4, text, conn);
        }
    }
    if (strncmp(cmd, "pub:", 4) != 0) {
        char reply[32];
        snprintf(reply, sizeof reply, s == WSFFI_STATUS_OK ? "ok" : "status %d", (int)s);
        CHECK_OK(wsffi_send_text(conn, reply, strlen(reply)));
    }
}

static void say(wsffi_conn *conn, const char *text) {
    CHECK_OK(wsffi_send_text(conn, text, strlen(text)));
}

TEST(subscribe_and_publish_from_callbacks) {
    topic_env t;
    tu_env_start(&t.env, "/");
    t.env.fx.echo = false;
    t.env.fx.message_hook = command_hook;
    hook_server = t.env.server;
    tu_url u = tu_make_url(t.env.port, "/");
    for (int i = 0; i < TOPIC_CLIENTS; i++) {
        tu_rec_init(&t.c[i], "client");
        t.conn[i] = tu_open(t.env.reactor, u.s, NULL, &t.c[i]);
    }
    say(t.conn[0], "sub:chat");
    say(t.conn[1], "sub:chat");
    say(t.conn[2], "sub:news");
    WAIT_UNTIL(t.c[0].messages == 1 && t.c[1].messages == 1 && t.c[2].messages == 1, TU_WAIT_MS);
    say(t.conn[1], "sub:chat");
    WAIT_UNTIL(t.c[1].messages == 2, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(t.c[0].log[0], "ok");
    char want[32];
    snprintf(want, sizeof want, "status %d", (int)WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_STR(t.c[1].log[1], want);
    TU_UNLOCK();
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "chat"), 2);

    /* 0 publishes to chat: 1 gets it, 0 (the sender) and 2 (news) do not. A connection
     * that subscribes to nothing may publish: both chat subscribers get 2's message. */
    say(t.conn[0], "pub:chat:hello from 0");
    say(t.conn[2], "pub:chat:from 2");
    WAIT_UNTIL(t.c[1].messages == 4 && t.c[0].messages == 2, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(t.c[1].log[2], "hello from 0");
    CHECK_STR(t.c[1].log[3], "from 2");
    CHECK_STR(t.c[0].log[1], "from 2");
    TU_UNLOCK();
    /* A subscriber publishing to its own topic: the others get it, it does not. */
    say(t.conn[1], "pub:chat:from 1");
    WAIT_UNTIL(t.c[0].messages == 3, TU_WAIT_MS);
    TU_LOCK();
    CHECK_STR(t.c[0].log[2], "from 1");
    TU_UNLOCK();
    say(t.conn[0], "unsub:chat");
    WAIT_UNTIL(t.c[0].messages == 4, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(t.c[1].messages), 4);
    CHECK_EQ(LOCKED_INT(t.c[2].messages), 1);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "chat"), 1);
    topics_stop(&t);
}

TEST(closing_ends_the_subscriptions) {
    topic_env t;
    topics_start(&t, NULL);
    for (int i = 0; i < TOPIC_CLIENTS; i++) {
        CHECK_OK(wsffi_conn_subscribe(server_conn(&t, i), "all"));
    }
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 0), "zero"));
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "all"), 3);
    CHECK_OK(wsffi_close(t.conn[0], 1000, NULL, 0));
    WAIT_UNTIL(t.c[0].closes == 1 && t.env.fx.conns[0].closes == 1, TU_WAIT_MS);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "all"), 2);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "zero"), 0);
    /* The closed connection's handle is still held by the recorder. */
    wsffi_conn *closed = t.env.fx.conns[0].retained;
    CHECK(!wsffi_conn_is_subscribed(closed, "all"));
    CHECK_STATUS(wsffi_conn_subscribe(closed, "all"), WSFFI_STATUS_ERR_CLOSED);
    CHECK_STATUS(wsffi_conn_unsubscribe(closed, "all"), WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_OK(publish_text(t.env.server, "all", "after one left", NULL));
    WAIT_UNTIL(t.c[1].messages == 1 && t.c[2].messages == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(t.c[0].messages), 0);

    /* A closed server: publish refuses, counts read 0. */
    wsffi_server *server = t.env.server;
    wsffi_conn *still = wsffi_conn_retain(server_conn(&t, 1));
    CHECK_OK(wsffi_server_close(server));
    WAIT_UNTIL(t.env.fx.closes == 1 && t.env.fx.destroys == 1, TU_WAIT_MS);
    t.env.server = NULL;
    CHECK(!wsffi_conn_is_subscribed(still, "all"));
    wsffi_conn_release(still);
    topics_stop(&t);
}

TEST(bad_arguments) {
    wsffi_server_options *so = wsffi_server_options_new();
    CHECK_STATUS(wsffi_server_options_set_max_subscriptions(NULL, 3), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_options_set_max_subscriptions(so, 0), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_OK(wsffi_server_options_set_max_subscriptions(so, 3));
    topic_env t;
    topics_start(&t, so);
    wsffi_server_options_free(so);
    wsffi_conn *s0 = server_conn(&t, 0);

    CHECK_STATUS(wsffi_conn_subscribe(NULL, "x"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_subscribe(s0, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_subscribe(s0, ""), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_conn_subscribe(s0, "\xff\xfe"), WSFFI_STATUS_ERR_INVALID_UTF8);
    char longest[WSFFI_MAX_TOPIC_BYTES + 2];
    memset(longest, 'x', sizeof longest);
    longest[WSFFI_MAX_TOPIC_BYTES + 1] = '\0';
    CHECK_STATUS(wsffi_conn_subscribe(s0, longest), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK_STATUS(publish_text(t.env.server, longest, "x", NULL), WSFFI_STATUS_ERR_TOO_BIG);
    longest[WSFFI_MAX_TOPIC_BYTES] = '\0';
    CHECK_OK(wsffi_conn_subscribe(s0, longest));
    CHECK(wsffi_conn_is_subscribed(s0, longest));
    /* The cap of 3 per connection. */
    CHECK_OK(wsffi_conn_subscribe(s0, "b"));
    CHECK_OK(wsffi_conn_subscribe(s0, "c"));
    CHECK_STATUS(wsffi_conn_subscribe(s0, "d"), WSFFI_STATUS_ERR_TOO_BIG);
    CHECK_STATUS(wsffi_conn_subscribe(s0, "c"), WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_OK(wsffi_conn_unsubscribe(s0, "b"));
    CHECK_OK(wsffi_conn_subscribe(s0, "d"));
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 1), "e")); /* per connection, not per server */

    CHECK_STATUS(wsffi_conn_unsubscribe(NULL, "x"), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_unsubscribe(s0, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_conn_unsubscribe(s0, "\xff"), WSFFI_STATUS_ERR_INVALID_UTF8);
    CHECK(!wsffi_conn_is_subscribed(NULL, "c"));
    CHECK(!wsffi_conn_is_subscribed(s0, NULL));
    CHECK(!wsffi_conn_is_subscribed(s0, "\xff"));
    CHECK_EQ(wsffi_server_subscriber_count(NULL, "c"), 0);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, NULL), 0);

    /* Client connections have no server and no topics. */
    CHECK_STATUS(wsffi_conn_subscribe(t.conn[0], "c"), WSFFI_STATUS_ERR_UNSUPPORTED);
    CHECK_STATUS(wsffi_conn_unsubscribe(t.conn[0], "c"), WSFFI_STATUS_ERR_UNSUPPORTED);
    CHECK(!wsffi_conn_is_subscribed(t.conn[0], "c"));

    CHECK_STATUS(wsffi_server_publish(NULL, "c", WSFFI_TEXT, (const uint8_t *)"x", 1, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_publish(t.env.server, NULL, WSFFI_TEXT, (const uint8_t *)"x", 1, NULL),
                 WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_publish(t.env.server, "c", WSFFI_TEXT, NULL, 1, NULL), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_server_publish(t.env.server, "", WSFFI_TEXT, (const uint8_t *)"x", 1, NULL),
                 WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_server_publish(t.env.server, "c", 9, (const uint8_t *)"x", 1, NULL), WSFFI_STATUS_ERR_INVALID_PARAMETER);
    CHECK_STATUS(wsffi_server_publish(t.env.server, "c", WSFFI_TEXT, (const uint8_t *)"\xc3", 1, NULL),
                 WSFFI_STATUS_ERR_INVALID_UTF8);
    CHECK_STATUS(wsffi_server_publish(t.env.server, "\xff", WSFFI_TEXT, (const uint8_t *)"x", 1, NULL),
                 WSFFI_STATUS_ERR_INVALID_UTF8);
    /* Empty messages are messages. */
    CHECK_OK(wsffi_server_publish(t.env.server, "c", WSFFI_BINARY, NULL, 0, NULL));
    WAIT_UNTIL(t.c[0].messages == 1, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(t.c[0].log_len[0]), 0);
    topics_stop(&t);
}

/* ---- many publishers at once -------------------------------------------------------- */

#define PUBLISHERS 4
#define PER_PUBLISHER 300

typedef struct publisher {
    wsffi_server *server;
    int id;
    int failures;
} publisher;

static void *publish_main(void *arg) {
    publisher *p = arg;
    for (int n = 0; n < PER_PUBLISHER; n++) {
        char text[32];
        snprintf(text, sizeof text, "%d:%d", p->id, n);
        wsffi_status s;
        while ((s = publish_text(p->server, "fan", text, NULL)) == WSFFI_STATUS_ERR_QUEUE_FULL) {
            tu_sleep_ms(1);
        }
        if (s != WSFFI_STATUS_OK) {
            p->failures++;
        }
    }
    return NULL;
}

/* Checks that each publisher's messages arrived complete and in order. */
static void check_order(tu_rec *rec, const char *who) {
    int next[PUBLISHERS] = {0};
    TU_LOCK();
    CHECK_EQ(rec->messages, PUBLISHERS * PER_PUBLISHER);
    for (int i = 0; i < rec->messages && i < TU_LOG_MAX; i++) {
        int id = -1, n = -1;
        if (sscanf(rec->log[i], "%d:%d", &id, &n) != 2 || id < 0 || id >= PUBLISHERS) {
            tu_fail(__FILE__, __LINE__, "%s: bad message %s", who, rec->log[i]);
            break;
        }
        if (n != next[id]) {
            tu_fail(__FILE__, __LINE__, "%s: publisher %d sent %d, expected %d", who, id, n, next[id]);
            break;
        }
        next[id]++;
    }
    TU_UNLOCK();
}

TEST(many_threads_publish_in_order) {
    topic_env t;
    topics_start(&t, NULL);
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 0), "fan"));
    CHECK_OK(wsffi_conn_subscribe(server_conn(&t, 1), "fan"));
    pthread_t th[PUBLISHERS];
    publisher p[PUBLISHERS];
    for (int i = 0; i < PUBLISHERS; i++) {
        p[i] = (publisher){.server = t.env.server, .id = i};
        REQUIRE(pthread_create(&th[i], NULL, publish_main, &p[i]) == 0);
    }
    for (int i = 0; i < PUBLISHERS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(p[i].failures, 0);
    }
    WAIT_UNTIL(t.c[0].messages == PUBLISHERS * PER_PUBLISHER && t.c[1].messages == PUBLISHERS * PER_PUBLISHER,
               TU_WAIT_MS * 2);
    /* The log keeps the first TU_LOG_MAX messages: order is checked on those. */
    check_order(&t.c[0], "subscriber 0");
    check_order(&t.c[1], "subscriber 1");
    CHECK_EQ(LOCKED_INT(t.c[2].messages), 0);
    topics_stop(&t);
}

/* ---- a client asking for a million topics ------------------------------------------- */

typedef struct flood {
    int ok, too_big, other;
} flood;
static flood flood_result;

static void flood_hook(tu_rec *rec, wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len) {
    (void)rec;
    (void)kind;
    (void)data;
    (void)len;
    /* On the reactor thread: each call is direct, no queueing. */
    int total = 1000000 / tu_slow;
    flood f = {0};
    char name[32];
    for (int i = 0; i < total; i++) {
        snprintf(name, sizeof name, "t%d", i);
        wsffi_status s = wsffi_conn_subscribe(conn, name);
        if (s == WSFFI_STATUS_OK) {
            f.ok++;
        } else if (s == WSFFI_STATUS_ERR_TOO_BIG) {
            f.too_big++;
        } else {
            f.other++;
        }
    }
    TU_LOCK();
    flood_result = f;
    TU_UNLOCK();
    CHECK_OK(wsffi_send_text(conn, "done", 4));
}

TEST(a_million_topics_from_one_client_stop_at_the_cap) {
    topic_env t;
    tu_env_start(&t.env, "/");
    t.env.fx.echo = false;
    t.env.fx.message_hook = flood_hook;
    tu_url u = tu_make_url(t.env.port, "/");
    tu_rec_init(&t.c[0], "client");
    t.conn[0] = tu_open(t.env.reactor, u.s, NULL, &t.c[0]);
    say(t.conn[0], "flood");
    WAIT_UNTIL(t.c[0].messages == 1, TU_WAIT_MS * 6);
    TU_LOCK();
    flood f = flood_result;
    TU_UNLOCK();
    CHECK_EQ(f.ok, 10000); /* the default cap */
    CHECK_EQ(f.too_big, 1000000 / tu_slow - 10000);
    CHECK_EQ(f.other, 0);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "t9999"), 1);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "t10000"), 0);
    /* Closing frees them all. */
    CHECK_OK(wsffi_close(t.conn[0], 1000, NULL, 0));
    WAIT_UNTIL(t.c[0].closes == 1 && t.env.fx.conns[0].closes == 1, TU_WAIT_MS);
    CHECK_EQ(wsffi_server_subscriber_count(t.env.server, "t0"), 0);
    tu_env_stop(&t.env);
    TU_REC_DONE(&t.c[0]);
    wsffi_conn_release(t.conn[0]);
}

TU_MAIN(TU_CASE(publish_reaches_subscribers_only), TU_CASE(subscribe_and_publish_from_callbacks),
        TU_CASE(closing_ends_the_subscriptions), TU_CASE(bad_arguments), TU_CASE(many_threads_publish_in_order),
        TU_CASE(a_million_topics_from_one_client_stop_at_the_cap))
