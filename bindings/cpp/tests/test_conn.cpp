// Client connections through the binding: echo, close codes, errors as exceptions,
// Conn's reference counting, handler lifetime, and exceptions escaping handlers.
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "support.hpp"

using support::Env;
using support::Record;
using wsffi::MessageType;
using wsffi::Status;

namespace {

// Runs `f`, expecting wsffi::Error with `status`.
template <class F> void expect_error(Status status, F &&f) {
    try {
        f();
        ADD_FAILURE() << "no wsffi::Error thrown";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), status) << e.what();
        EXPECT_STRNE(e.what(), "");
    }
}

TEST(Conn, EchoTextAndBinary) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    EXPECT_EQ(conn.ready_state(), wsffi::ReadyState::Open);
    EXPECT_EQ(conn.url(), env.url());
    EXPECT_FALSE(conn.remote_address().empty());

    conn.send_text("hello");
    std::vector<uint8_t> bin(70000);
    for (std::size_t i = 0; i < bin.size(); i++) bin[i] = static_cast<uint8_t>(i * 7);
    conn.send_binary(bin);
    conn.send(MessageType::Text, std::string_view("third"));
    ASSERT_TRUE(client.wait_messages(3));
    client.read([&] {
        EXPECT_EQ(client.messages[0], "hello");
        EXPECT_EQ(client.kinds[0], MessageType::Text);
        EXPECT_EQ(client.kinds[1], MessageType::Binary);
        EXPECT_EQ(wsffi::ByteView(client.messages[1]), wsffi::ByteView(bin));
        EXPECT_EQ(client.messages[2], "third");
    });
    conn.close();
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.close.code, 1000);
        EXPECT_TRUE(client.close.was_clean);
        EXPECT_TRUE(client.errors.empty());
    });
}

TEST(Conn, FragmentsAndPing) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.send_fragment(MessageType::Text, std::string_view("frag"), false);
    conn.send_fragment(MessageType::Text, std::string_view("ment"), true);
    conn.ping(std::string_view("are you there"));
    ASSERT_TRUE(client.wait([&] { return client.messages.size() == 1 && client.pongs.size() == 1; }));
    client.read([&] {
        EXPECT_EQ(client.messages[0], "fragment");
        EXPECT_EQ(client.pongs[0], "are you there");
    });
    expect_error(Status::TooBig, [&] { conn.ping(std::string(126, 'x')); });
    conn.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Conn, CloseCodesBothWays) {
    Record client;
    Env env;
    env.start();
    // The client closes with an application code.
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.close(4001, "bye now");
    ASSERT_TRUE(client.wait_closed());
    ASSERT_TRUE(env.server_side.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.close.code, 4001);
        EXPECT_EQ(client.close.reason, "bye now");
        EXPECT_EQ(client.close.origin, wsffi::CloseOrigin::Local);
        EXPECT_EQ(client.close.local_code, 4001);
        EXPECT_EQ(client.close.peer_code, 4001);  // the echo
        EXPECT_TRUE(client.close.was_clean);
    });
    env.server_side.read([&] {
        EXPECT_EQ(env.server_side.close.code, 4001);
        EXPECT_EQ(env.server_side.close.reason, "bye now");
        EXPECT_EQ(env.server_side.close.origin, wsffi::CloseOrigin::Peer);
        EXPECT_EQ(env.server_side.close.peer_reason, std::optional<std::string>("bye now"));
    });
}

TEST(Conn, ServerClosesWithPolicyViolation) {
    Record client;
    Env env;
    wsffi::ServerHandlers h;
    h.on_connection = [](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
        wsffi::ConnHandlers ch;
        ch.on_message = [](wsffi::ConnView c2, wsffi::Message m) {
            if (m.text() == "quit") c2.close(wsffi::close_code::policy_violation, "no quitting");
        };
        c.set_handlers(std::move(ch));
    };
    env.start(std::move(h));
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.send_text("quit");
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.close.code, 1008);
        EXPECT_EQ(client.close.reason, "no quitting");
        EXPECT_EQ(client.close.origin, wsffi::CloseOrigin::Peer);
        EXPECT_TRUE(client.close.was_clean);
    });
}

TEST(Conn, TerminateIsAbnormal) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.terminate();
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.close.code, wsffi::close_code::abnormal);
        EXPECT_EQ(client.close.origin, wsffi::CloseOrigin::None);
        EXPECT_FALSE(client.close.was_clean);
        EXPECT_FALSE(client.close.peer_reason.has_value());
    });
}

TEST(Conn, SendsAfterCloseThrow) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.close();
    // Closing: sends are refused at once.
    expect_error(Status::Closed, [&] { conn.send_text("late"); });
    ASSERT_TRUE(client.wait_closed());
    EXPECT_EQ(conn.ready_state(), wsffi::ReadyState::Closed);
    expect_error(Status::Closed, [&] { conn.send_text("later"); });
    expect_error(Status::Closed, [&] { conn.send_binary(std::string_view("x")); });
    expect_error(Status::Closed, [&] { conn.ping(); });
    expect_error(Status::Closed, [&] { conn.close(); });
}

TEST(Conn, BadArgumentsThrow) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    expect_error(Status::InvalidUtf8, [&] { conn.send_text("\xff\xfe"); });
    expect_error(Status::InvalidParameter, [&] { conn.close(999, ""); });
    expect_error(Status::InvalidUrl, [&] { wsffi::connect(env.reactor, "ftp://nope"); });
    expect_error(Status::InvalidParameter, [] { wsffi::ClientOptions().max_payload(0); });
    expect_error(Status::InvalidParameter, [] { wsffi::ClientOptions().header("Upgrade", "x"); });
    expect_error(Status::InvalidParameter, [] {
        wsffi::ClientOptions o;
        o.connect_timeout(std::chrono::milliseconds(-1));
    });
    // An empty Conn: the library's NULL rule, as an exception.
    wsffi::Conn empty;
    expect_error(Status::NullParameter, [&] { empty.send_text("x"); });
    EXPECT_EQ(empty.ready_state(), wsffi::ReadyState::Closed);
    conn.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Conn, ConnectFailureArrivesAsErrorThenClose) {
    Record client;
    wsffi::Reactor reactor;
    // A port nobody listens on: a listener that closes at once leaves it free.
    uint16_t port;
    {
        wsffi::Listener l(reactor, "127.0.0.1:0");
        port = l.port();
    }
    wsffi::ClientOptions options;
    options.connect_timeout(std::chrono::seconds(5)).handshake_timeout(std::chrono::seconds(5));
    wsffi::Conn conn =
        wsffi::connect(reactor, "ws://127.0.0.1:" + std::to_string(port) + "/", options, client.handlers());
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.opens, 0);
        ASSERT_EQ(client.errors.size(), 1u);
        EXPECT_EQ(client.errors[0].first, Status::ConnectionRefused);
        EXPECT_EQ(client.close.code, 1006);
    });
}

TEST(Conn, RetainReleaseSemantics) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn a = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    wsffi_conn *raw = a.native();

    wsffi::Conn b = a;  // copy: a second reference to the same connection
    EXPECT_EQ(b.native(), raw);
    EXPECT_TRUE(a == b);
    wsffi::Conn r = b.retain();  // a third one, explicitly
    EXPECT_EQ(r.native(), raw);
    r.reset();
    a.reset();  // one reference given back: the connection stays open and usable
    EXPECT_FALSE(a);
    EXPECT_EQ(b.ready_state(), wsffi::ReadyState::Open);
    b.send_text("still here");
    ASSERT_TRUE(client.wait_messages(1));

    wsffi::Conn c = std::move(b);  // move: the reference changes hands
    EXPECT_FALSE(b);
    EXPECT_EQ(c.native(), raw);
    a = c;  // copy assignment
    c = wsffi::Conn();
    a = a;  // self-assignment keeps the reference
    EXPECT_EQ(a.native(), raw);

    // A reference kept by a handler outlives on_close; calls on it then throw Closed.
    wsffi::Conn kept;
    std::thread user([&] { a.close(); });
    user.join();
    ASSERT_TRUE(client.wait_closed());
    kept = a;
    a.reset();
    EXPECT_EQ(kept.ready_state(), wsffi::ReadyState::Closed);
    expect_error(Status::Closed, [&] { kept.send_text("x"); });
    // release() hands the reference over to C code.
    wsffi_conn *owned = kept.release();
    EXPECT_EQ(owned, raw);
    EXPECT_FALSE(kept);
    wsffi_conn_release(owned);
    // Leaks (a reference never released) fail the run under LeakSanitizer.
}

TEST(Conn, ServerSideConnRetainedPastClose) {
    Record client;
    Env env;
    std::mutex m;
    wsffi::Conn server_conn;
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
        std::lock_guard<std::mutex> lock(m);
        server_conn = c.retain();
        c.set_handlers(env.server_side.handlers(true));
    };
    env.start(std::move(h));
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.close();
    ASSERT_TRUE(env.server_side.wait_closed());
    std::lock_guard<std::mutex> lock(m);
    ASSERT_TRUE(server_conn);
    EXPECT_EQ(server_conn.ready_state(), wsffi::ReadyState::Closed);
    expect_error(Status::Closed, [&] { server_conn.send_text("gone"); });
}

TEST(Conn, HandlersDestroyedAfterClose) {
    Record client;
    Env env;
    env.start();
    auto flag = std::make_shared<support::Sentinel::Flag>();
    auto sentinel = std::make_shared<support::Sentinel>(flag);
    wsffi::ConnHandlers h = client.handlers();
    h.on_drain = [sentinel](wsffi::ConnView) {};
    sentinel.reset();  // the handlers now hold the only reference
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), std::move(h));
    ASSERT_TRUE(client.wait_open());
    EXPECT_FALSE(flag->is_gone());
    conn.close();
    ASSERT_TRUE(client.wait_closed());
    // Destroyed by the library after on_close, while we still hold the Conn.
    EXPECT_TRUE(flag->wait());
    EXPECT_TRUE(conn);
}

TEST(Conn, HandlersDestroyedWhenConnectFails) {
    wsffi::Reactor reactor;
    auto flag = std::make_shared<support::Sentinel::Flag>();
    auto sentinel = std::make_shared<support::Sentinel>(flag);
    wsffi::ConnHandlers h;
    h.on_open = [sentinel](wsffi::ConnView) {};
    sentinel.reset();
    EXPECT_THROW(wsffi::connect(reactor, "not a url", std::move(h)), wsffi::Error);
    EXPECT_TRUE(flag->is_gone());  // before connect returned
}

// Records what escaped handlers while alive.
struct ReporterGuard {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::pair<std::string, std::string>> seen;  // where, what
    ReporterGuard() {
        wsffi::set_exception_reporter([this](std::string_view where, std::exception_ptr e) {
            std::string what = "?";
            try {
                std::rethrow_exception(e);
            } catch (const std::exception &x) {
                what = x.what();
            } catch (...) {
            }
            {
                std::lock_guard<std::mutex> lock(m);
                seen.emplace_back(std::string(where), what);
            }
            cv.notify_all();
        });
    }
    ~ReporterGuard() { wsffi::set_exception_reporter(nullptr); }
    bool wait(std::size_t n) {
        std::unique_lock<std::mutex> lock(m);
        return cv.wait_for(lock, support::kWait, [&] { return seen.size() >= n; });
    }
};

TEST(Conn, ThrowingHandlerClosesWith1011AndIsReported) {
    ReporterGuard reporter;
    Record client;
    Env env;
    wsffi::ServerHandlers h;
    h.on_connection = [](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
        wsffi::ConnHandlers ch;
        ch.on_message = [](wsffi::ConnView, wsffi::Message m) {
            throw std::runtime_error("boom: " + std::string(m.text()));
        };
        c.set_handlers(std::move(ch));
    };
    env.start(std::move(h));
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.send_text("payload");
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.close.code, wsffi::close_code::internal_error);
        EXPECT_EQ(client.close.reason, "handler failed");
        EXPECT_EQ(client.close.origin, wsffi::CloseOrigin::Peer);
    });
    ASSERT_TRUE(reporter.wait(1));
    std::lock_guard<std::mutex> lock(reporter.m);
    EXPECT_EQ(reporter.seen[0].first, "on_message");
    EXPECT_EQ(reporter.seen[0].second, "boom: payload");
}

TEST(Conn, ThrowingClientHandlersAreContained) {
    ReporterGuard reporter;
    Record client;
    Env env;
    env.start();
    wsffi::ConnHandlers h = client.handlers();
    auto record_close = h.on_close;
    h.on_open = [](wsffi::ConnView) { throw 42; };  // not a std::exception
    h.on_close = [record_close](wsffi::ConnView c, const wsffi::CloseInfo &info) {
        record_close(c, info);
        throw std::logic_error("in on_close");
    };
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), std::move(h));
    ASSERT_TRUE(client.wait_closed());
    ASSERT_TRUE(reporter.wait(2));
    client.read([&] {
        EXPECT_EQ(client.close.code, wsffi::close_code::internal_error);
        EXPECT_EQ(client.close.origin, wsffi::CloseOrigin::Local);
    });
    std::lock_guard<std::mutex> lock(reporter.m);
    EXPECT_EQ(reporter.seen[0].first, "on_open");
    EXPECT_EQ(reporter.seen[0].second, "?");
    EXPECT_EQ(reporter.seen[1].first, "on_close");
    EXPECT_EQ(reporter.seen[1].second, "in on_close");
}

TEST(Conn, SetHandlersFromAnotherThread) {
    Record client;
    Record replaced;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    conn.set_handlers(replaced.handlers());
    conn.send_text("to the new handlers");
    ASSERT_TRUE(replaced.wait_messages(1));
    conn.close();
    ASSERT_TRUE(replaced.wait_closed());
    EXPECT_EQ(client.read([&] { return client.messages.size(); }), 0u);
}

TEST(Library, VersionAndStatusText) {
    EXPECT_EQ(wsffi::version(), WSFFI_VERSION);
    EXPECT_EQ(wsffi::version_number(), static_cast<uint32_t>(WSFFI_VERSION_NUMBER));
    EXPECT_FALSE(wsffi::status_str(Status::Closed).empty());
    wsffi::Error e(Status::Timeout, "took too long");
    EXPECT_EQ(e.status(), Status::Timeout);
    EXPECT_STREQ(e.what(), "took too long");
    const std::runtime_error &base = e;
    EXPECT_STREQ(base.what(), "took too long");
}

TEST(Reactor, CloseIsExplicitAndHandlesStaySafe) {
    Record client;
    Env env;
    env.start();
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    env.reactor.close();  // every connection closed (1001), every handler run
    client.read([&] {
        EXPECT_EQ(client.closes, 1);
    });
    EXPECT_EQ(conn.ready_state(), wsffi::ReadyState::Closed);
    EXPECT_THROW(conn.send_text("x"), wsffi::Error);
    env.reactor.close();  // idempotent
}

// Timers on the reactor: a repeating one cancelled after three runs, a one-shot, and a
// cancel that finds nothing.
TEST(Reactor, TimersRunAndCancel) {
    wsffi::Reactor reactor;
    std::atomic<int> runs{0};
    std::atomic<bool> once{false};
    uint64_t id = reactor.add_timer(std::chrono::milliseconds(0), std::chrono::milliseconds(5),
                                    [&](uint64_t) { runs++; });
    uint64_t one = reactor.add_timer(std::chrono::milliseconds(1), std::chrono::milliseconds(0),
                                     [&](uint64_t) { once = true; });
    for (int i = 0; i < 2000 && (runs < 3 || !once); i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(reactor.cancel_timer(id));
    int seen = runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(runs, seen);
    EXPECT_GE(seen, 3);
    EXPECT_TRUE(once);
    EXPECT_FALSE(reactor.cancel_timer(one));
    expect_error(Status::InvalidParameter,
                 [&] { reactor.add_timer(std::chrono::milliseconds(-1), {}, [](uint64_t) {}); });
}

// The log handler sees an open at info; the 101 response is readable on the client.
TEST(Library, LogHandlerAndHandshakeResponse) {
    std::mutex mu;
    std::vector<std::string> lines;
    wsffi::set_log_handler(wsffi::LogLevel::Info, [&](wsffi::LogLevel, std::string_view line) {
        std::lock_guard<std::mutex> lock(mu);
        lines.emplace_back(line);
    });
    Record client;
    {
        Env env;
        env.start();
        wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), client.handlers());
        ASSERT_TRUE(client.wait_open());
        auto resp = conn.handshake_response();
        ASSERT_TRUE(resp.has_value());
        EXPECT_EQ(resp->status(), 101);
        EXPECT_TRUE(resp->header("Sec-WebSocket-Accept").has_value());
        conn.close();
        ASSERT_TRUE(client.wait_closed());
    }
    wsffi::set_log_handler(wsffi::LogLevel::Off, nullptr);
    std::lock_guard<std::mutex> lock(mu);
    bool open_seen = false;
    for (const auto &l : lines) open_seen = open_seen || l.find(": open (") != std::string::npos;
    EXPECT_TRUE(open_seen);
}

// Proxy and redirect settings are checked when set.
TEST(Conn, ProxyAndRedirectOptions) {
    wsffi::ClientOptions co;
    co.follow_redirects(true).max_redirects(3).proxy("socks5h://127.0.0.1:1080").proxy_from_env(false).proxy("");
    expect_error(Status::InvalidUrl, [&] { co.proxy("gopher://x"); });
}

TEST(Conn, ReconnectAttemptsAreReportedAndRunOut) {
    wsffi::ClientOptions co;
    expect_error(Status::InvalidParameter,
                 [&] { co.reconnect(std::chrono::milliseconds(100), 0.5, std::chrono::milliseconds(1000)); });
    co.reconnect(std::chrono::milliseconds(10), 2.0, std::chrono::milliseconds(40), 2);
    wsffi::Reactor reactor;
    uint16_t port;
    {
        wsffi::Listener l(reactor, "127.0.0.1:0");
        port = l.port();
    }
    std::mutex m;
    std::condition_variable cv;
    std::vector<uint32_t> attempts;
    std::vector<Status> send_status;
    std::string error;
    bool closed = false;
    wsffi::ConnHandlers h;
    h.on_reconnect = [&](wsffi::ConnView c, uint32_t attempt, std::chrono::milliseconds delay, Status status,
                         std::string_view message, const wsffi::CloseInfo &lost) {
        Status sent = Status::Ok;
        try {
            c.send_text("x");
        } catch (const wsffi::Error &e) {
            sent = e.status();
        }
        std::lock_guard<std::mutex> g(m);
        attempts.push_back(attempt);
        send_status.push_back(sent);
        EXPECT_EQ(status, Status::ConnectionRefused);
        EXPECT_FALSE(message.empty());
        EXPECT_EQ(lost.code, 1006);
        EXPECT_LE(delay.count(), 40);
    };
    h.on_error = [&](wsffi::ConnView, Status, std::string_view message) {
        std::lock_guard<std::mutex> g(m);
        error = std::string(message);
    };
    h.on_close = [&](wsffi::ConnView, const wsffi::CloseInfo &) {
        std::lock_guard<std::mutex> g(m);
        closed = true;
        cv.notify_all();
    };
    wsffi::Conn conn = wsffi::connect(reactor, "ws://127.0.0.1:" + std::to_string(port) + "/", co, std::move(h));
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return closed; }));
    EXPECT_EQ(attempts, (std::vector<uint32_t>{1, 2}));
    EXPECT_EQ(send_status, (std::vector<Status>{Status::Reconnecting, Status::Reconnecting}));
    EXPECT_EQ(error.rfind("gave up reconnecting after 2 attempts: ", 0), 0u) << error;
    lock.unlock();
    expect_error(Status::Closed, [&] { conn.stop_reconnect(); });
}

}  // namespace

namespace {

// A streaming client: an echo of 1 MiB comes back in parts, over a max_payload of 4 KiB;
// a handler that closes from a part ends the parts there.
TEST(Conn, StreamedMessagesArriveInParts) {
    Env env;
    env.start();
    std::mutex m;
    std::condition_variable cv;
    std::string got;
    int parts = 0, firsts = 0, lasts = 0, whole = 0, closes = 0;
    bool close_after_first = false;
    wsffi::ConnHandlers h;
    h.on_message = [&](wsffi::ConnView, wsffi::Message) {
        std::lock_guard<std::mutex> lock(m);
        whole++;
    };
    h.on_message_part = [&](wsffi::ConnView c, wsffi::MessagePart p) {
        std::lock_guard<std::mutex> lock(m);
        EXPECT_TRUE(p.is_binary());
        got += p.data.to_string();
        parts++;
        firsts += p.first;
        lasts += p.last;
        if (close_after_first) c.close(4000, "enough");
        cv.notify_all();
    };
    h.on_close = [&](wsffi::ConnView, const wsffi::CloseInfo &) {
        std::lock_guard<std::mutex> lock(m);
        closes++;
        cv.notify_all();
    };
    wsffi::ClientOptions options;
    options.stream_messages().max_payload(4096);
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url(), options, h);
    std::vector<uint8_t> bin(1 << 20);
    for (std::size_t i = 0; i < bin.size(); i++) bin[i] = static_cast<uint8_t>(i * 13 + i / 1000);
    // Sends are queued until the connection opens.
    while (conn.ready_state() != wsffi::ReadyState::Open) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    conn.send_binary(bin);
    {
        std::unique_lock<std::mutex> lock(m);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return lasts == 1; }));
        EXPECT_EQ(wsffi::ByteView(got), wsffi::ByteView(bin));
        EXPECT_GT(parts, 1);
        EXPECT_EQ(firsts, 1);
        EXPECT_EQ(whole, 0);
        close_after_first = true;
        parts = 0;
    }
    conn.send_binary(bin);
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return closes == 1; }));
    EXPECT_EQ(parts, 1);
    EXPECT_EQ(lasts, 1);
}

}  // namespace
