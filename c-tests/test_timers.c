/*
 * test_timers: wsffi_reactor_add_timer / wsffi_reactor_cancel_timer. One-shot and repeating
 * timers on the reactor thread, cancelling (also from the timer's own callback), destroy
 * exactly once (after the last run, on cancel, on wsffi_reactor_free), a heartbeat that
 * sends from its callback, and timers in dispatch mode.
 */
#include "testutil.h"

typedef struct ticker {
    wsffi_reactor *reactor;
    int runs;
    int destroys;
    uint64_t id;           /* as stored by wsffi_reactor_add_timer */
    uint64_t seen_id;      /* as passed to the callback */
    int64_t first_run_ms;
    bool on_main_thread;   /* a callback or destroy ran on the main thread */
    pthread_t destroy_thread;
    int cancel_after;      /* the callback cancels its own timer at this run (0: never) */
    wsffi_status self_cancel_status;
    int destroys_seen_in_last_run;
    wsffi_conn *conn;      /* the heartbeat sends on it */
} ticker;

static void ticker_run(uint64_t timer, void *user) {
    ticker *t = user;
    TU_LOCK();
    t->runs++;
    t->seen_id = timer;
    if (t->runs == 1) {
        t->first_run_ms = tu_now_ms();
    }
    if (pthread_equal(pthread_self(), tu_main_thread)) {
        t->on_main_thread = true;
    }
    int run = t->runs;
    TU_UNLOCK_SIGNAL();
    if (t->conn) {
        char text[32];
        snprintf(text, sizeof text, "beat %d", run);
        CHECK_OK(wsffi_send_text(t->conn, text, strlen(text)));
    }
    if (t->cancel_after == run) {
        wsffi_status s = wsffi_reactor_cancel_timer(t->reactor, timer);
        TU_LOCK();
        t->self_cancel_status = s;
        /* Destroy waits until this run returns. */
        t->destroys_seen_in_last_run = t->destroys;
        TU_UNLOCK_SIGNAL();
    }
}

static void ticker_destroy(void *user) {
    ticker *t = user;
    TU_LOCK();
    t->destroys++;
    t->destroy_thread = pthread_self();
    TU_UNLOCK_SIGNAL();
}

static void ticker_add(ticker *t, uint64_t delay_ms, uint64_t repeat_ms) {
    t->id = 0;
    CHECK_OK(wsffi_reactor_add_timer(t->reactor, delay_ms, repeat_ms, ticker_run, t, ticker_destroy, &t->id));
    CHECK(t->id != 0);
}

TEST(one_shot_runs_once_on_the_reactor_thread) {
    ticker t = {.reactor = tu_reactor_new()};
    int64_t start = tu_now_ms();
    ticker_add(&t, 50, 0);
    WAIT_UNTIL(t.runs == 1 && t.destroys == 1, TU_WAIT_MS);
    STAYS_TRUE(t.runs == 1, 150);
    TU_LOCK();
    CHECK(t.first_run_ms - start >= 45); /* not before its delay (the clock's rounding aside) */
    CHECK_EQ(t.seen_id, t.id);
    CHECK(!t.on_main_thread);
    TU_UNLOCK();
    /* It ran its last time: there is nothing to cancel. */
    CHECK_STATUS(wsffi_reactor_cancel_timer(t.reactor, t.id), WSFFI_STATUS_ERR_ALREADY_DONE);
    tu_reactor_free(t.reactor);
    CHECK_EQ(t.destroys, 1);
}

TEST(repeating_timer_runs_until_cancelled) {
    ticker t = {.reactor = tu_reactor_new()};
    ticker_add(&t, 0, 10);
    WAIT_UNTIL(t.runs >= 5, TU_WAIT_MS);
    CHECK_EQ(LOCKED_INT(t.destroys), 0);
    CHECK_OK(wsffi_reactor_cancel_timer(t.reactor, t.id));
    /* After cancel returns no run starts, and destroy has run on the reactor thread. */
    int runs = LOCKED_INT(t.runs);
    CHECK_EQ(LOCKED_INT(t.destroys), 1);
    STAYS_TRUE(t.runs == runs, 100);
    CHECK(!pthread_equal(t.destroy_thread, tu_main_thread));
    CHECK_STATUS(wsffi_reactor_cancel_timer(t.reactor, t.id), WSFFI_STATUS_ERR_ALREADY_DONE);
    tu_reactor_free(t.reactor);
    CHECK_EQ(t.destroys, 1);
    CHECK(!t.on_main_thread);
}

TEST(callback_cancels_its_own_timer) {
    ticker t = {.reactor = tu_reactor_new(), .cancel_after = 3};
    ticker_add(&t, 5, 5);
    WAIT_UNTIL(t.destroys == 1, TU_WAIT_MS);
    STAYS_TRUE(t.runs == 3, 100);
    TU_LOCK();
    CHECK_STATUS(t.self_cancel_status, WSFFI_STATUS_OK);
    CHECK_EQ(t.destroys_seen_in_last_run, 0);
    TU_UNLOCK();
    tu_reactor_free(t.reactor);
    CHECK_EQ(t.destroys, 1);
}

/* The seeds' heartbeat: a client sends every 20 ms from a timer, with no thread of its own. */
TEST(heartbeat_sends_from_the_timer) {
    tu_env env;
    tu_env_start(&env, "/");
    tu_url url = tu_make_url(env.port, "/");
    tu_rec c;
    tu_rec_init(&c, "client");
    wsffi_conn *conn = tu_open(env.reactor, url.s, NULL, &c);
    ticker t = {.reactor = env.reactor, .cancel_after = 4, .conn = conn};
    ticker_add(&t, 20, 20);
    WAIT_UNTIL(c.messages == 4, TU_WAIT_MS);
    WAIT_UNTIL(t.destroys == 1, TU_WAIT_MS);
    STAYS_TRUE(c.messages == 4, 100);
    TU_LOCK();
    CHECK_STR(c.log[0], "beat 1");
    CHECK_STR(c.log[3], "beat 4");
    TU_UNLOCK();
    CHECK_OK(wsffi_close(conn, 1000, NULL, 0));
    wsffi_conn_release(conn);
    TU_REC_DONE(&c);
    tu_env_stop(&env);
}

/* Timers a callback adds run too; a timer added with a 0 delay runs at the next turn. */
typedef struct chain {
    ticker inner;
    int outer_runs;
    wsffi_status add_status;
} chain;

static void chain_run(uint64_t timer, void *user) {
    (void)timer;
    chain *c = user;
    wsffi_status s = wsffi_reactor_add_timer(c->inner.reactor, 0, 0, ticker_run, &c->inner, ticker_destroy, NULL);
    TU_LOCK();
    c->outer_runs++;
    c->add_status = s;
    TU_UNLOCK_SIGNAL();
}

TEST(callback_adds_a_timer) {
    chain c = {.inner = {.reactor = tu_reactor_new()}};
    CHECK_OK(wsffi_reactor_add_timer(c.inner.reactor, 1, 0, chain_run, &c, NULL, NULL));
    WAIT_UNTIL(c.inner.runs == 1 && c.inner.destroys == 1, TU_WAIT_MS);
    TU_LOCK();
    CHECK_EQ(c.outer_runs, 1);
    CHECK_STATUS(c.add_status, WSFFI_STATUS_OK);
    TU_UNLOCK();
    tu_reactor_free(c.inner.reactor);
}

TEST(free_destroys_pending_timers_without_running_them) {
    ticker once = {.reactor = tu_reactor_new()};
    ticker every = {.reactor = once.reactor};
    ticker_add(&once, 3600 * 1000, 0);
    ticker_add(&every, 3600 * 1000, 1000);
    CHECK(once.id != every.id);
    /* A delay too long to represent is a timer that never comes due, not an error. */
    ticker never = {.reactor = once.reactor};
    ticker_add(&never, UINT64_MAX, UINT64_MAX);
    tu_reactor_free(once.reactor);
    CHECK_EQ(once.runs + every.runs + never.runs, 0);
    CHECK_EQ(once.destroys, 1);
    CHECK_EQ(every.destroys, 1);
    CHECK_EQ(never.destroys, 1);
}

TEST(bad_calls) {
    ticker t = {.reactor = tu_reactor_new()};
    uint64_t id = 77;
    CHECK_STATUS(wsffi_reactor_add_timer(NULL, 1, 0, ticker_run, &t, ticker_destroy, &id), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_add_timer(t.reactor, 1, 0, NULL, &t, ticker_destroy, &id), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_EQ(id, 77);
    CHECK_STATUS(wsffi_reactor_cancel_timer(NULL, 1), WSFFI_STATUS_ERR_NULL_PARAMETER);
    CHECK_STATUS(wsffi_reactor_cancel_timer(t.reactor, 0), WSFFI_STATUS_ERR_ALREADY_DONE);
    CHECK_STATUS(wsffi_reactor_cancel_timer(t.reactor, 12345), WSFFI_STATUS_ERR_ALREADY_DONE);
    /* Failed calls keep the user data with the caller: destroy is not called. */
    CHECK_EQ(LOCKED_INT(t.destroys), 0);
    /* out_timer may be NULL. */
    CHECK_OK(wsffi_reactor_add_timer(t.reactor, 0, 0, ticker_run, &t, ticker_destroy, NULL));
    WAIT_UNTIL(t.runs == 1 && t.destroys == 1, TU_WAIT_MS);
    tu_reactor_free(t.reactor);
}

/* A timer added by the last callbacks of a shutdown (an on_close that wsffi_reactor_free
 * delivers) is destroyed unrun before wsffi_reactor_free returns, never leaked. */
typedef struct refuse_case {
    wsffi_reactor *reactor;
    ticker t;
    wsffi_status add_status;
    int destroys_after_add;
    int closes;
} refuse_case;

static void add_during_shutdown(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
    (void)conn;
    (void)info;
    refuse_case *rc = user;
    rc->add_status = wsffi_reactor_add_timer(rc->reactor, 0, 0, ticker_run, &rc->t, ticker_destroy, NULL);
    rc->destroys_after_add = rc->t.destroys;
    rc->closes++;
}

TEST(add_from_the_last_callbacks_of_a_shutdown) {
    /* A peer that accepts TCP and never answers the upgrade: the connection is still
     * handshaking when the reactor is freed. */
    uint16_t port = 0;
    int lfd = tu_tcp_listen(&port, 4);
    refuse_case rc = {.reactor = tu_reactor_new()};
    wsffi_conn_callbacks cbs;
    wsffi_conn_callbacks_init(&cbs, sizeof cbs);
    cbs.on_close = add_during_shutdown;
    tu_url url = tu_make_url(port, "/");
    wsffi_conn *conn = NULL;
    CHECK_OK(wsffi_connect(rc.reactor, url.s, NULL, &cbs, &rc, NULL, &conn, NULL));
    int peer = accept(lfd, NULL, NULL);
    CHECK(peer >= 0);
    tu_reactor_free(rc.reactor);
    CHECK_EQ(rc.closes, 1);
    CHECK_STATUS(rc.add_status, WSFFI_STATUS_OK);
    CHECK_EQ(rc.destroys_after_add, 0);
    CHECK_EQ(rc.t.destroys, 1);
    CHECK_EQ(rc.t.runs, 0);
    wsffi_conn_release(conn);
    close(peer);
    close(lfd);
}

TEST(dispatch_mode_runs_timers_on_the_dispatching_thread) {
    wsffi_reactor_options *opts = wsffi_reactor_options_new();
    CHECK_OK(wsffi_reactor_options_set_dispatch(opts, true));
    ticker t = {.reactor = tu_reactor_new_opts(opts)};
    wsffi_reactor_options_free(opts);
    int fd = wsffi_reactor_fd(t.reactor);
    REQUIRE(fd >= 0);
    ticker_add(&t, 0, 5);
    /* Nothing runs until this thread dispatches; the descriptor says a run waits. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000 * tu_slow), 1);
    tu_sleep_ms(60);
    CHECK_EQ(LOCKED_INT(t.runs), 0);
    size_t ran = 0;
    CHECK_OK(wsffi_reactor_dispatch(t.reactor, 100, &ran));
    /* A dispatcher that fell behind gets one run, not one per missed interval. */
    CHECK_EQ(ran, 1);
    CHECK_EQ(LOCKED_INT(t.runs), 1);
    CHECK(t.on_main_thread);
    for (int i = 0; i < 500 * tu_slow && LOCKED_INT(t.runs) < 3; i++) {
        CHECK_EQ(poll(&p, 1, 1000 * tu_slow), 1);
        CHECK_OK(wsffi_reactor_dispatch(t.reactor, 100, NULL));
    }
    CHECK_EQ(LOCKED_INT(t.runs), 3);
    /* Cancelled from the dispatching thread: destroy waits for the next dispatch there. */
    CHECK_OK(wsffi_reactor_cancel_timer(t.reactor, t.id));
    int runs = LOCKED_INT(t.runs);
    CHECK_EQ(LOCKED_INT(t.destroys), 0);
    for (int i = 0; i < 200 * tu_slow && LOCKED_INT(t.destroys) == 0; i++) {
        (void)poll(&p, 1, 10);
        CHECK_OK(wsffi_reactor_dispatch(t.reactor, 100, NULL));
    }
    CHECK_EQ(LOCKED_INT(t.destroys), 1);
    CHECK(pthread_equal(t.destroy_thread, tu_main_thread));
    CHECK_EQ(LOCKED_INT(t.runs), runs);

    /* One pending at free: destroyed on the freeing thread. */
    ticker later = {.reactor = t.reactor};
    ticker_add(&later, 3600 * 1000, 0);
    tu_reactor_free(t.reactor);
    CHECK_EQ(later.destroys, 1);
    CHECK(pthread_equal(later.destroy_thread, tu_main_thread));
    CHECK_EQ(later.runs, 0);
}

TU_MAIN(TU_CASE(one_shot_runs_once_on_the_reactor_thread), TU_CASE(repeating_timer_runs_until_cancelled),
        TU_CASE(callback_cancels_its_own_timer), TU_CASE(heartbeat_sends_from_the_timer), TU_CASE(callback_adds_a_timer),
        TU_CASE(free_destroys_pending_timers_without_running_them), TU_CASE(bad_calls),
        TU_CASE(add_from_the_last_callbacks_of_a_shutdown), TU_CASE(dispatch_mode_runs_timers_on_the_dispatching_thread))
