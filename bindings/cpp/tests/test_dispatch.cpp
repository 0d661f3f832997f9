// Dispatch mode through the binding: handlers run on the thread that calls
// Reactor::dispatch, driven by poll(2) on Reactor::fd or by the wake function.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "support.hpp"

using support::Record;

namespace {

// Polls the reactor's descriptor and dispatches until `done` holds.
template <class P> bool pump(wsffi::Reactor &r, P done) {
    auto deadline = std::chrono::steady_clock::now() + support::kWait;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        pollfd p{r.fd(), POLLIN, 0};
        if (poll(&p, 1, 100) > 0) r.dispatch();
    }
    return true;
}

TEST(Dispatch, HandlersRunOnTheDispatchingThread) {
    Record client, server_side;
    std::thread::id me = std::this_thread::get_id();
    std::atomic<int> wrong_thread{0};
    wsffi::ReactorOptions ro;
    ro.dispatch(true);
    wsffi::Reactor reactor(ro);
    ASSERT_GE(reactor.fd(), 0);
    wsffi::Listener listener(reactor, "127.0.0.1:0");
    wsffi::ServerHandlers h;
    h.verify_client = [&](wsffi::Handshake &) {
        if (std::this_thread::get_id() != me) wrong_thread++;
        return wsffi::Verdict::Accept;
    };
    h.on_connection = [&](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
        if (std::this_thread::get_id() != me) wrong_thread++;
        c.set_handlers(server_side.handlers(true));
    };
    wsffi::Server server(reactor, listener, "/echo", std::move(h));
    wsffi::ConnHandlers ch = client.handlers();
    auto record = ch.on_message;
    ch.on_message = [&, record](wsffi::ConnView c, wsffi::Message m) {
        if (std::this_thread::get_id() != me) wrong_thread++;
        record(c, m);
    };
    wsffi::Conn c = wsffi::connect(reactor, "ws://127.0.0.1:" + std::to_string(listener.port()) + "/echo",
                                   std::move(ch));
    // Nothing runs until we dispatch.
    ASSERT_TRUE(pump(reactor, [&] { return client.read([&] { return client.opens == 1; }); }));
    c.send_text("dispatched");
    ASSERT_TRUE(pump(reactor, [&] { return client.read([&] { return client.messages.size() == 1; }); }));
    c.close();
    ASSERT_TRUE(pump(reactor, [&] { return client.read([&] { return client.closes == 1; }); }));
    EXPECT_EQ(wrong_thread.load(), 0);
    EXPECT_EQ(client.read([&] { return client.messages[0]; }), "dispatched");
}

TEST(Dispatch, WakeFunctionAndItsLifetime) {
    Record client;
    auto flag = std::make_shared<support::Sentinel::Flag>();
    std::mutex m;
    std::condition_variable cv;
    int wakes = 0;
    {
        auto sentinel = std::make_shared<support::Sentinel>(flag);
        wsffi::ReactorOptions ro;
        ro.wake([&, sentinel] {
            {
                std::lock_guard<std::mutex> lock(m);
                wakes++;
            }
            cv.notify_all();
        });
        sentinel.reset();
        wsffi::Reactor reactor(ro);
        EXPECT_FALSE(flag->is_gone());  // the options and the reactor hold it
        wsffi::Listener listener(reactor, "127.0.0.1:0");
        wsffi::Server server(reactor, listener, "/", {});
        wsffi::Conn c =
            wsffi::connect(reactor, "ws://127.0.0.1:" + std::to_string(listener.port()) + "/", client.handlers());
        // Each wake is answered by dispatching until a call runs fewer than its max.
        auto deadline = std::chrono::steady_clock::now() + support::kWait;
        while (!client.read([&] { return client.opens == 1; })) {
            std::unique_lock<std::mutex> lock(m);
            ASSERT_TRUE(cv.wait_until(lock, deadline, [&] { return wakes > 0; }));
            wakes = 0;
            lock.unlock();
            while (reactor.dispatch(8) == 8) {
            }
        }
        c.close();
        // Freeing the reactor runs what still waits on this thread.
    }
    EXPECT_TRUE(flag->is_gone());
    EXPECT_EQ(client.read([&] { return client.closes; }), 1);
}

TEST(Dispatch, HttpHandlerRunsOnTheDispatchingThread) {
    std::thread::id me = std::this_thread::get_id();
    wsffi::ReactorOptions ro;
    ro.dispatch(true);
    wsffi::Reactor reactor(ro);
    wsffi::Listener listener(reactor, "127.0.0.1:0");
    std::atomic<bool> on_me{false};
    listener.set_http_handler([&](const wsffi::Request &req, wsffi::HttpResponse &res) {
        on_me = std::this_thread::get_id() == me;
        res.body(std::string("path ") + std::string(req.path()));
    });
    uint16_t port = listener.port();
    std::atomic<bool> done{false};
    std::string answer;
    std::thread client([&] {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
            std::string req = "GET /page HTTP/1.1\r\nHost: x\r\n\r\n";
            if (send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
                char buf[1024];
                ssize_t n;
                while ((n = recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<std::size_t>(n));
            }
        }
        close(fd);
        done = true;
    });
    bool finished = pump(reactor, [&] { return done.load(); });
    client.join();
    ASSERT_TRUE(finished);
    EXPECT_TRUE(on_me.load());
    EXPECT_NE(answer.find("path /page"), std::string::npos) << answer;
    listener.close();  // the handler is kept until the reactor is freed
}

TEST(Dispatch, NotInDispatchMode) {
    wsffi::Reactor reactor;
    EXPECT_EQ(reactor.fd(), -1);
    try {
        reactor.dispatch();
        ADD_FAILURE() << "dispatch accepted";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), wsffi::Status::InvalidParameter);
    }
}

}  // namespace
