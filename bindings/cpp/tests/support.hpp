// Shared helpers of the C++ binding tests: a thread-safe event record that tests wait on
// (never a sleep), and an echo server on a free loopback port.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wsffi.hpp"

namespace support {

// Generous: the tests also run under sanitizers on a busy machine. Waits end as soon as the
// awaited event happens.
constexpr std::chrono::seconds kWait{20};

// What one side of a connection saw. Handlers fill it on the reactor thread; the test thread
// waits on it.
class Record {
public:
    struct Close {
        uint16_t code = 0;
        std::string reason;
        bool was_clean = false;
        wsffi::CloseOrigin origin = wsffi::CloseOrigin::None;
        uint16_t peer_code = 0;
        std::optional<std::string> peer_reason;
        uint16_t local_code = 0;
        std::optional<std::string> local_reason;
    };

    int opens = 0;
    int closes = 0;
    std::vector<std::string> messages;  // payloads in order
    std::vector<wsffi::MessageType> kinds;
    std::vector<std::pair<wsffi::Status, std::string>> errors;
    std::vector<std::string> pongs;
    int unexpected = 0;
    uint16_t unexpected_status = 0;
    std::string unexpected_body;
    std::optional<std::string> unexpected_header;
    Close close;
    std::string protocol;    // seen at open
    std::string extensions;  // seen at open

    // Runs `f` under the lock and wakes waiters.
    template <class F> void update(F &&f) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            f();
        }
        cv_.notify_all();
    }
    // Waits until `pred` (checked under the lock) holds; false on timeout.
    template <class P> bool wait(P &&pred, std::chrono::milliseconds timeout = kWait) {
        std::unique_lock<std::mutex> lock(mutex_);
        return cv_.wait_for(lock, timeout, pred);
    }
    // Reads under the lock.
    template <class F> auto read(F &&f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return f();
    }

    // Handlers that record everything; `echo` sends each message back.
    wsffi::ConnHandlers handlers(bool echo = false) {
        wsffi::ConnHandlers h;
        h.on_open = [this](wsffi::ConnView c) {
            std::string p(c.protocol()), e(c.extensions());
            update([&] {
                opens++;
                protocol = p;
                extensions = e;
            });
        };
        h.on_message = [this, echo](wsffi::ConnView c, wsffi::Message m) {
            if (echo) c.send(m.type, m.data);
            update([&] {
                messages.push_back(m.data.to_string());
                kinds.push_back(m.type);
            });
        };
        h.on_close = [this](wsffi::ConnView, const wsffi::CloseInfo &info) {
            update([&] {
                closes++;
                close.code = info.code;
                close.reason = std::string(info.reason);
                close.was_clean = info.was_clean;
                close.origin = info.origin;
                close.peer_code = info.peer_code;
                if (info.peer_reason) close.peer_reason = std::string(*info.peer_reason);
                close.local_code = info.local_code;
                if (info.local_reason) close.local_reason = std::string(*info.local_reason);
            });
        };
        h.on_error = [this](wsffi::ConnView, wsffi::Status s, std::string_view msg) {
            update([&] { errors.emplace_back(s, std::string(msg)); });
        };
        h.on_pong = [this](wsffi::ConnView, wsffi::ByteView data) {
            update([&] { pongs.push_back(data.to_string()); });
        };
        h.on_unexpected_response = [this](wsffi::ConnView, const wsffi::Response &r) {
            std::string body = r.body().to_string();
            std::optional<std::string> hdr;
            if (auto v = r.header("X-Why")) hdr = std::string(*v);
            uint16_t status = r.status();
            update([&] {
                unexpected++;
                unexpected_status = status;
                unexpected_body = body;
                unexpected_header = hdr;
            });
        };
        return h;
    }

    bool wait_open() {
        return wait([&] { return opens > 0 || closes > 0; }) && read([&] { return opens == 1; });
    }
    bool wait_closed() {
        return wait([&] { return closes > 0; });
    }
    bool wait_messages(std::size_t n) {
        return wait([&] { return messages.size() >= n; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
};

// Set on construction, signals when destroyed: captured by a handler, it tells when the
// library destroyed that handler.
class Sentinel {
public:
    struct Flag {
        std::mutex mutex;
        std::condition_variable cv;
        bool gone = false;
        bool wait() {
            std::unique_lock<std::mutex> lock(mutex);
            return cv.wait_for(lock, kWait, [&] { return gone; });
        }
        bool is_gone() {
            std::lock_guard<std::mutex> lock(mutex);
            return gone;
        }
    };
    explicit Sentinel(std::shared_ptr<Flag> f) : flag_(std::move(f)) {}
    Sentinel(const Sentinel &) = delete;
    Sentinel &operator=(const Sentinel &) = delete;
    ~Sentinel() {
        {
            std::lock_guard<std::mutex> lock(flag_->mutex);
            flag_->gone = true;
        }
        flag_->cv.notify_all();
    }

private:
    std::shared_ptr<Flag> flag_;
};

// A reactor, a loopback listener and a server at /echo whose connections each record into
// `server_side` (the last one wins) and echo.
// Members are destroyed server, listener, reactor (every callback done), then the record.
// Tests declare their own records before the Env for the same reason.
struct Env {
    Record server_side;
    std::atomic<int> connections{0};
    wsffi::Reactor reactor;
    std::optional<wsffi::Listener> listener;
    std::optional<wsffi::Server> server;

    // Starts with `handlers` (on_connection defaults to recording + echo).
    void start(wsffi::ServerHandlers handlers = {}, const wsffi::ServerOptions *options = nullptr,
               const wsffi::ListenerOptions *lopts = nullptr) {
        listener.emplace(lopts ? wsffi::Listener(reactor, "127.0.0.1:0", *lopts)
                               : wsffi::Listener(reactor, "127.0.0.1:0"));
        if (!handlers.on_connection) {
            handlers.on_connection = [this](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &) {
                connections++;
                c.set_handlers(server_side.handlers(true));
            };
        }
        if (options)
            server.emplace(reactor, *listener, "/echo", std::move(handlers), *options);
        else
            server.emplace(reactor, *listener, "/echo", std::move(handlers));
    }
    std::string url(const std::string &scheme = "ws", const std::string &host = "127.0.0.1",
                    const std::string &rest = "/echo") const {
        return scheme + "://" + host + ":" + std::to_string(listener->port()) + rest;
    }
};

}  // namespace support
