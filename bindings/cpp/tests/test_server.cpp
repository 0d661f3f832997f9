// Servers through the binding: verify_client (accept, reject, defer, throwing),
// handle_protocols, the headers hook, request views, broadcast and the client list, origins,
// plain HTTP handlers, standalone servers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "support.hpp"

using support::Env;
using support::Record;
using wsffi::Status;
using wsffi::Verdict;

namespace {

// A plain HTTP GET over a raw socket; returns the whole answer.
std::string http_get(uint16_t port, const std::string &target) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    EXPECT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

TEST(Server, RequestViewInOnConnection) {
    Record client;
    Env env;
    std::promise<std::vector<std::string>> seen;
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView server, wsffi::ConnView c, const wsffi::Request &req) {
        std::vector<std::string> v{std::string(req.method()),
                                   std::string(req.url()),
                                   std::string(req.path()),
                                   std::string(req.query_string()),
                                   std::string(req.query("room").value_or("<none>")),
                                   std::string(req.query("missing").value_or("<none>")),
                                   std::string(req.header("x-custom").value_or("<none>")),
                                   req.has_header("X-CUSTOM") ? "yes" : "no",
                                   std::string(req.http_version()),
                                   std::string(req.host().value_or("<none>")),
                                   std::string(server.path())};
        bool found = false;
        for (auto [name, value] : req.headers())
            if (name == "X-Custom" && value == "42") found = true;
        v.push_back(found ? "raw" : "no raw");
        v.push_back(req.remote_address().substr(0, 10) == "127.0.0.1:" ? "addr" : "no addr");
        EXPECT_THROW(req.header_at(req.header_count()), wsffi::Error);
        // A copy outlives the callback.
        wsffi::RequestCopy copy = req.copy();
        v.push_back(std::string(copy.url()));
        seen.set_value(v);
        c.set_handlers(env.server_side.handlers(true));
    };
    env.start(std::move(h));
    wsffi::ClientOptions o;
    o.header("X-Custom", "42");
    wsffi::Conn conn = wsffi::connect(env.reactor, env.url("ws", "127.0.0.1", "/echo?room=blue+1"), o,
                                      client.handlers());
    auto fut = seen.get_future();
    ASSERT_EQ(fut.wait_for(support::kWait), std::future_status::ready);
    std::vector<std::string> v = fut.get();
    std::string host = "127.0.0.1:" + std::to_string(env.listener->port());
    std::vector<std::string> want{"GET", "/echo?room=blue+1", "/echo", "room=blue+1", "blue 1", "<none>", "42", "yes",
                                  "1.1", host, "/echo", "raw", "addr", "/echo?room=blue+1"};
    EXPECT_EQ(v, want);
    ASSERT_TRUE(client.wait_open());
    conn.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Server, VerifyRejectWithStatusAndHeader) {
    Record client;
    Env env;
    std::atomic<int> client_errors{0};
    wsffi::ServerHandlers h;
    h.verify_client = [](wsffi::Handshake &hs) {
        if (hs.request().query("token") == std::optional<std::string_view>("secret")) return Verdict::Accept;
        hs.set_reject(403, "Bad Token");
        hs.add_header("X-Why", "token");
        return Verdict::Reject;
    };
    h.on_client_error = [&](Status s, std::string_view) {
        if (s == Status::HandshakeRejected) client_errors++;
    };
    env.start(std::move(h));

    wsffi::Conn bad = wsffi::connect(env.reactor, env.url("ws", "127.0.0.1", "/echo?token=wrong"), client.handlers());
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.opens, 0);
        EXPECT_EQ(client.unexpected, 1);
        EXPECT_EQ(client.unexpected_status, 403);
        EXPECT_EQ(client.unexpected_header, std::optional<std::string>("token"));
        ASSERT_EQ(client.errors.size(), 1u);
        EXPECT_EQ(client.errors[0].first, Status::HandshakeRejected);
        EXPECT_EQ(client.close.code, 1006);
    });
    EXPECT_EQ(client_errors.load(), 1);

    Record good;
    wsffi::Conn ok = wsffi::connect(env.reactor, env.url("ws", "127.0.0.1", "/echo?token=secret"), good.handlers());
    ASSERT_TRUE(good.wait_open());
    ok.close();
    ASSERT_TRUE(good.wait_closed());
}

TEST(Server, VerifyDeferDecidedOnAnotherThread) {
    Record accepted, rejected;
    Env env;
    std::mutex m;
    std::vector<std::thread> deciders;
    wsffi::ServerHandlers h;
    h.verify_client = [&](wsffi::Handshake &hs) {
        wsffi::DeferredHandshake pending = hs.defer();
        std::lock_guard<std::mutex> lock(m);
        // An "auth service" answers later, from its own thread.
        deciders.emplace_back([p = std::move(pending)]() mutable {
            std::string token(p.request().query("token").value_or(""));
            if (token == "good") {
                p.add_header("X-Auth", "ok");
                p.accept();
            } else {
                p.reject(401, "Who Are You");
            }
            EXPECT_FALSE(p.pending());
            EXPECT_THROW(p.accept(), wsffi::Error);  // decided once
        });
        return Verdict::Defer;
    };
    env.start(std::move(h));
    wsffi::Conn a = wsffi::connect(env.reactor, env.url("ws", "127.0.0.1", "/echo?token=good"), accepted.handlers());
    wsffi::Conn b = wsffi::connect(env.reactor, env.url("ws", "127.0.0.1", "/echo?token=bad"), rejected.handlers());
    ASSERT_TRUE(accepted.wait_open());
    ASSERT_TRUE(rejected.wait_closed());
    rejected.read([&] {
        EXPECT_EQ(rejected.unexpected_status, 401);
    });
    a.send_text("after defer");
    ASSERT_TRUE(accepted.wait_messages(1));
    a.close();
    ASSERT_TRUE(accepted.wait_closed());
    std::lock_guard<std::mutex> lock(m);
    for (auto &t : deciders) t.join();
}

TEST(Server, DeferredHandshakeDroppedUndecidedRejects503) {
    Record client;
    Env env;
    wsffi::ServerHandlers h;
    h.verify_client = [](wsffi::Handshake &hs) {
        wsffi::DeferredHandshake pending = hs.defer();
        return Verdict::Defer;  // `pending` goes out of scope undecided
    };
    env.start(std::move(h));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.unexpected_status, 503);
    });
}

TEST(Server, DeferredHandshakeDecidedInsideVerify) {
    Record accepted, rejected;
    Env env;
    wsffi::ServerHandlers h;
    h.verify_client = [](wsffi::Handshake &hs) {
        wsffi::DeferredHandshake pending = hs.defer();
        if (pending.request().query("ok"))
            pending.accept();
        else
            pending.reject(429, "Slow Down");
        return Verdict::Defer;
    };
    env.start(std::move(h));
    wsffi::Conn a = wsffi::connect(env.reactor, env.url("ws", "127.0.0.1", "/echo?ok"), accepted.handlers());
    wsffi::Conn b = wsffi::connect(env.reactor, env.url(), rejected.handlers());
    ASSERT_TRUE(accepted.wait_open());
    ASSERT_TRUE(rejected.wait_closed());
    rejected.read([&] { EXPECT_EQ(rejected.unexpected_status, 429); });
    a.close();
    ASSERT_TRUE(accepted.wait_closed());
}

TEST(Server, DeferredHandshakeOutlivesTheReactor) {
    Record client;
    std::mutex m;
    std::condition_variable cv;
    std::optional<wsffi::DeferredHandshake> kept;
    {
        Env env;
        wsffi::ServerHandlers h;
        h.verify_client = [&](wsffi::Handshake &hs) {
            {
                std::lock_guard<std::mutex> lock(m);
                kept.emplace(hs.defer());
            }
            cv.notify_all();
            return Verdict::Defer;
        };
        env.start(std::move(h));
        wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
        std::unique_lock<std::mutex> lock(m);
        ASSERT_TRUE(cv.wait_for(lock, support::kWait, [&] { return kept.has_value(); }));
    }  // the reactor is freed with the handshake pending
    ASSERT_TRUE(client.wait_closed());
    ASSERT_TRUE(kept->pending());
    EXPECT_THROW(kept->accept(), wsffi::Error);  // consumed all the same
    EXPECT_FALSE(kept->pending());
}

TEST(Server, VerifyThrowingRejects500) {
    Record client;
    Env env;
    std::atomic<int> reported{0};
    wsffi::set_exception_reporter([&](std::string_view where, std::exception_ptr) {
        if (where == "verify_client") reported++;
    });
    wsffi::ServerHandlers h;
    h.verify_client = [](wsffi::Handshake &) -> Verdict { throw std::runtime_error("database down"); };
    env.start(std::move(h));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.unexpected_status, 500);
    });
    EXPECT_EQ(reported.load(), 1);
    wsffi::set_exception_reporter(nullptr);
}

TEST(Server, DeferOnlyInsideVerify) {
    Record client;
    Env env;
    std::atomic<int> threw{0};
    wsffi::ServerHandlers h;
    h.headers = [&](wsffi::Handshake &hs) {
        try {
            (void)hs.defer();
        } catch (const wsffi::Error &e) {
            if (e.status() == Status::InvalidParameter) threw++;
        }
        hs.add_header("X-Hook", "ran");
        EXPECT_THROW(hs.add_header("Sec-WebSocket-Accept", "forged"), wsffi::Error);
    };
    env.start(std::move(h));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    EXPECT_EQ(threw.load(), 1);
    c.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Server, HandleProtocolsChoosesAnOffer) {
    Record client;
    Env env;
    std::promise<std::vector<std::string>> offered_seen;
    wsffi::ServerHandlers h;
    h.handle_protocols = [&](const wsffi::Request &req, const std::vector<std::string_view> &offered)
        -> std::optional<std::size_t> {
        EXPECT_EQ(req.path(), "/echo");
        offered_seen.set_value(std::vector<std::string>(offered.begin(), offered.end()));
        for (std::size_t i = 0; i < offered.size(); i++)
            if (offered[i] == "chat.v2") return i;
        return std::nullopt;
    };
    env.start(std::move(h));
    wsffi::ClientOptions o;
    o.protocols({"chat.v1", "chat.v2", "chat.v3"});
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), o, client.handlers());
    ASSERT_TRUE(client.wait_open());
    EXPECT_EQ(c.protocol(), "chat.v2");
    ASSERT_TRUE(env.server_side.wait_open());
    env.server_side.read([&] {
        EXPECT_EQ(env.server_side.protocol, "chat.v2");
    });
    auto want = std::vector<std::string>{"chat.v1", "chat.v2", "chat.v3"};
    EXPECT_EQ(offered_seen.get_future().get(), want);
    c.close();
    ASSERT_TRUE(client.wait_closed());

    // None chosen: no protocol.
    Record other;
    wsffi::ClientOptions o2;
    o2.protocol("something.else");
    wsffi::Conn d = wsffi::connect(env.reactor, env.url(), o2, other.handlers());
    ASSERT_TRUE(other.wait_open() || other.wait_closed());
    other.read([&] {
        EXPECT_EQ(other.protocol, "");
    });
}

TEST(Server, BroadcastAndClientList) {
    constexpr int kClients = 3;
    Record clients[kClients];
    Record server_opens;
    Env env;
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
        wsffi::ConnHandlers ch;
        ch.on_open = [&](wsffi::ConnView) { server_opens.update([&] { server_opens.opens++; }); };
        c.set_handlers(std::move(ch));
    };
    env.start(std::move(h));
    std::vector<wsffi::Conn> conns;
    for (auto &r : clients) conns.push_back(wsffi::connect(env.reactor, env.url(), r.handlers()));
    for (auto &r : clients) ASSERT_TRUE(r.wait_open());
    // The server side's on_open may trail the clients'.
    ASSERT_TRUE(server_opens.wait([&] { return server_opens.opens == kClients; }));
    EXPECT_EQ(env.server->client_count(), static_cast<std::size_t>(kClients));
    EXPECT_EQ(env.server->broadcast_text("to everyone"), static_cast<std::size_t>(kClients));
    env.server->broadcast_async(wsffi::MessageType::Binary, std::string_view("\x01\x02"));
    for (auto &r : clients) ASSERT_TRUE(r.wait_messages(2));
    // The counters: two broadcasts to every client, on the server and the reactor.
    wsffi_server_stats ss = env.server->stats();
    EXPECT_EQ(ss.messages_out, 2u * kClients);
    EXPECT_EQ(ss.handshakes_accepted, static_cast<uint64_t>(kClients));
    EXPECT_EQ(ss.connections_open, static_cast<uint64_t>(kClients));
    wsffi_reactor_stats rs = env.reactor.stats();
    EXPECT_EQ(rs.connections_open, 2u * kClients);
    EXPECT_EQ(conns[0].stats().messages_out, 0u);
    std::string text = env.reactor.prometheus_text();
    EXPECT_NE(text.find("# TYPE wsffi_connections_open gauge\nwsffi_connections_open 6\n"), std::string::npos) << text;
    for (auto &r : clients) {
        r.read([&] {
            EXPECT_EQ(r.messages[0], "to everyone");
            EXPECT_EQ(r.messages[1], std::string("\x01\x02"));
            EXPECT_EQ(r.kinds[1], wsffi::MessageType::Binary);
        });
    }
    // The client list: counted references, usable after the visit.
    std::vector<wsffi::Conn> list = env.server->clients();
    ASSERT_EQ(list.size(), static_cast<std::size_t>(kClients));
    for (auto &c : list) c.send_text("one by one");
    for (auto &r : clients) ASSERT_TRUE(r.wait_messages(3));
    // An exception from the visitor comes back out of for_each_client.
    int visited = 0;
    EXPECT_THROW(env.server->for_each_client([&](wsffi::ConnView) {
        visited++;
        throw std::runtime_error("stop");
    }),
                 std::runtime_error);
    EXPECT_EQ(visited, 1);
    for (auto &c : conns) c.close();
    for (auto &r : clients) ASSERT_TRUE(r.wait_closed());
}

// Polls `pred` (state the handlers do not signal) for up to the usual wait.
template <class P> static bool eventually(P &&pred) {
    auto deadline = std::chrono::steady_clock::now() + support::kWait;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

TEST(Server, TopicsAsChatRooms) {
    constexpr int kClients = 3;
    Record clients[kClients];
    Env env;
    wsffi::ServerOptions so;
    so.max_subscriptions(2);
    std::promise<std::string> limits;
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView server, wsffi::ConnView c, const wsffi::Request &req) {
        // The room is the request's query: /?lobby.
        std::string room(req.query_string());
        EXPECT_TRUE(c.subscribe(room));
        EXPECT_FALSE(c.subscribe(room));
        EXPECT_TRUE(c.is_subscribed(room));
        if (room == "lobby" && server.subscriber_count("lobby") == 1) {
            EXPECT_TRUE(c.subscribe("second"));
            try {
                c.subscribe("third");
                limits.set_value("no error");
            } catch (const wsffi::Error &e) {
                limits.set_value(e.what());
            }
            EXPECT_TRUE(c.unsubscribe("second"));
            EXPECT_FALSE(c.unsubscribe("second"));
        }
        wsffi::ConnHandlers ch;
        ch.on_message = [server, room](wsffi::ConnView from, wsffi::Message m) {
            server.publish(room, m.type, m.data, from);
        };
        c.set_handlers(std::move(ch));
    };
    env.start(std::move(h), &so);
    std::vector<wsffi::Conn> conns;
    const char *rooms[kClients] = {"lobby", "lobby", "attic"};
    for (int i = 0; i < kClients; i++) {
        conns.push_back(wsffi::connect(env.reactor, env.url() + "?" + rooms[i], clients[i].handlers()));
        ASSERT_TRUE(clients[i].wait_open());
    }
    EXPECT_NE(limits.get_future().get().find("wsffi_conn_subscribe"), std::string::npos);
    ASSERT_TRUE(eventually([&] { return env.server->subscriber_count("lobby") == 2; }));
    EXPECT_EQ(env.server->subscriber_count("attic"), 1u);
    conns[0].send_text("hi lobby");
    conns[2].send_text("hi attic");
    ASSERT_TRUE(clients[1].wait_messages(1));
    clients[1].read([&] { EXPECT_EQ(clients[1].messages[0], "hi lobby"); });
    // From outside the reactor: to everyone in the lobby.
    env.server->publish("lobby", wsffi::MessageType::Text, std::string_view("announcement"));
    ASSERT_TRUE(clients[0].wait_messages(1));
    ASSERT_TRUE(clients[1].wait_messages(2));
    clients[0].read([&] { EXPECT_EQ(clients[0].messages[0], "announcement"); });
    clients[2].read([&] { EXPECT_TRUE(clients[2].messages.empty()); });
    EXPECT_THROW(env.server->publish("", wsffi::MessageType::Text, std::string_view("x")), wsffi::Error);
    for (auto &c : conns) c.close();
    for (auto &r : clients) ASSERT_TRUE(r.wait_closed());
    ASSERT_TRUE(eventually([&] { return env.server->subscriber_count("lobby") == 0; }));
}

TEST(Server, AllowedOriginsAndMaxConnections) {
    Record wrong, right;
    Env env;
    wsffi::ServerOptions so;
    so.allowed_origin("https://good.example").max_connections(10).max_payload(1 << 20);
    env.start({}, &so);
    wsffi::ClientOptions bad;
    bad.origin("https://evil.example");
    wsffi::Conn a = wsffi::connect(env.reactor, env.url(), bad, wrong.handlers());
    ASSERT_TRUE(wrong.wait_closed());
    wrong.read([&] {
        EXPECT_EQ(wrong.unexpected_status, 403);
    });
    wsffi::ClientOptions good;
    good.origin("https://GOOD.example");
    wsffi::Conn b = wsffi::connect(env.reactor, env.url(), good, right.handlers());
    ASSERT_TRUE(right.wait_open());
    b.close();
    ASSERT_TRUE(right.wait_closed());
}

TEST(Server, BackpressurePolicyOption) {
    using std::chrono::milliseconds;
    wsffi::ServerOptions so;
    so.water_marks(64 * 1024, 16 * 1024).backpressure_policy(wsffi::BackpressurePolicy::Close1013, milliseconds(250));
    so.backpressure_policy(wsffi::BackpressurePolicy::Drop);
    try {
        so.backpressure_policy(static_cast<wsffi::BackpressurePolicy>(42));
        ADD_FAILURE() << "an unknown policy was accepted";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), Status::InvalidParameter);
    }
    EXPECT_THROW(so.backpressure_policy(wsffi::BackpressurePolicy::Close1008, milliseconds(-1)), wsffi::Error);
    // The server runs with it: a client that reads is served as usual.
    Record client;
    Env env;
    env.start({}, &so);
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    EXPECT_EQ(env.server->broadcast_text("hi"), 1u);
    ASSERT_TRUE(client.wait_messages(1));
    c.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Server, MaxPayloadClosesWith1009) {
    Record client;
    Env env;
    wsffi::ServerOptions so;
    so.max_payload(1000);
    env.start({}, &so);
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    c.send_binary(std::string(2000, 'x'));
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.close.code, wsffi::close_code::message_too_big);
    });
}

TEST(Server, PlainHttpHandler) {
    Env env;
    env.start();
    env.listener->set_http_handler([](const wsffi::Request &req, wsffi::HttpResponse &res) {
        if (req.path() == "/boom") throw std::runtime_error("handler bug");
        res.status(201, "Made").header("X-Path", std::string(req.path())).body(std::string_view("hello http"));
    });
    wsffi::set_exception_reporter([](std::string_view, std::exception_ptr) {});
    std::string answer = http_get(env.listener->port(), "/page");
    EXPECT_NE(answer.find("HTTP/1.1 201 Made"), std::string::npos) << answer;
    EXPECT_NE(answer.find("X-Path: /page"), std::string::npos) << answer;
    EXPECT_NE(answer.find("hello http"), std::string::npos) << answer;
    std::string failed = http_get(env.listener->port(), "/boom");
    EXPECT_NE(failed.find("HTTP/1.1 500"), std::string::npos) << failed;
    wsffi::set_exception_reporter(nullptr);
    // Replaced, then removed: the default answers come back.
    env.listener->set_http_handler([](const wsffi::Request &, wsffi::HttpResponse &res) { res.status(204); });
    EXPECT_NE(http_get(env.listener->port(), "/x").find("HTTP/1.1 204"), std::string::npos);
    env.listener->set_http_handler(nullptr);
    EXPECT_NE(http_get(env.listener->port(), "/x").find("HTTP/1.1 404"), std::string::npos);
    EXPECT_NE(http_get(env.listener->port(), "/echo").find("HTTP/1.1 426"), std::string::npos);
}

TEST(Server, ListenerErrorsThrow) {
    wsffi::Reactor reactor;
    wsffi::Listener first(reactor, "127.0.0.1:0");
    EXPECT_FALSE(first.address().empty());
    try {
        wsffi::Listener second(reactor, std::string(first.address()));
        ADD_FAILURE() << "second bind succeeded";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), Status::AddressInUse);
        EXPECT_NE(std::string(e.what()).find(std::string(first.address())), std::string::npos) << e.what();
    }
    wsffi::Server s(reactor, first, "/a", {});
    EXPECT_THROW(wsffi::Server(reactor, first, "/a", {}), wsffi::Error);  // path taken
    wsffi::ListenerOptions lo;
    EXPECT_THROW(lo.backlog(0), wsffi::Error);
    EXPECT_THROW(lo.max_header_bytes(10), wsffi::Error);
}

TEST(Server, ServerHandlersLiveUntilOnClose) {
    Record client;
    Env env;
    auto flag = std::make_shared<support::Sentinel::Flag>();
    auto sentinel = std::make_shared<support::Sentinel>(flag);
    std::atomic<int> closed{0};
    wsffi::ServerHandlers h;
    h.on_close = [sentinel, &closed] { closed++; };
    sentinel.reset();
    env.start(std::move(h));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    EXPECT_FALSE(flag->is_gone());
    env.server->close();  // open clients get 1001; on_close when the last is gone
    ASSERT_TRUE(client.wait_closed());
    EXPECT_TRUE(flag->wait());
    EXPECT_EQ(closed.load(), 1);
    client.read([&] {
        EXPECT_EQ(client.close.code, wsffi::close_code::going_away);
    });
}

TEST(Server, StandaloneHandleUpgrade) {
    Record client;
    Record server_side;
    wsffi::Reactor reactor;
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
        c.set_handlers(server_side.handlers(true));
    };
    wsffi::Server server = wsffi::Server::standalone(reactor, "/up", std::move(h));
    EXPECT_EQ(server.path(), "/up");
    // Our own accept loop: a raw listening socket whose one connection goes to the server.
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(lfd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    ASSERT_EQ(listen(lfd, 4), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(lfd, reinterpret_cast<sockaddr *>(&addr), &len), 0);
    std::thread acceptor([&] {
        int fd = accept(lfd, nullptr, nullptr);
        server.handle_upgrade(fd, {});  // nothing read yet
    });
    wsffi::Conn c = wsffi::connect(reactor, "ws://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/up",
                                   client.handlers());
    acceptor.join();
    ASSERT_TRUE(client.wait_open());
    c.send_text("through handle_upgrade");
    ASSERT_TRUE(client.wait_messages(1));
    c.close();
    ASSERT_TRUE(client.wait_closed());
    ::close(lfd);
}

}  // namespace
