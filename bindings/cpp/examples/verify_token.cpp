// verify_client: only clients with a valid ?token= get in. Tokens starting with "sync-"
// are checked at once; others are "looked up" by a worker thread (as a database or token
// service would), the handshake deferred meanwhile. Refused clients get 401.
//
//   verify_token [ADDRESS]     (default 127.0.0.1:8080); valid tokens: sync-ok, async-ok
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "wsffi.hpp"

// A queue of deferred handshakes and the thread that decides them.
class TokenService {
public:
    TokenService() : worker_([this] { run(); }) {}
    ~TokenService() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        worker_.join();
    }
    void check(wsffi::DeferredHandshake hs) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            queue_.push_back(std::move(hs));
        }
        cv_.notify_all();
    }

private:
    void run() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            wsffi::DeferredHandshake hs = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            try {
                if (hs.request().query("token") == std::optional<std::string_view>("async-ok"))
                    hs.accept();
                else
                    hs.reject(401, "Invalid Token");
            } catch (const wsffi::Error &e) {
                // Timeout: the client left, or the handshake timed out meanwhile.
                std::fprintf(stderr, "verify_token: %s\n", e.what());
            }
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<wsffi::DeferredHandshake> queue_;
    bool stopping_ = false;
    std::thread worker_;
};

int main(int argc, char **argv) {
    std::string address = argc > 1 ? argv[1] : "127.0.0.1:8080";
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    try {
        TokenService tokens;  // outlives the reactor: pending handshakes are decided or dropped
        wsffi::Reactor reactor;
        wsffi::Listener listener(reactor, address);
        wsffi::ServerHandlers handlers;
        handlers.verify_client = [&tokens](wsffi::Handshake &hs) {
            std::string token(hs.request().query("token").value_or(""));
            if (token.rfind("sync-", 0) == 0) {
                if (token == "sync-ok") return wsffi::Verdict::Accept;
                hs.set_reject(401, "Invalid Token");
                return wsffi::Verdict::Reject;
            }
            tokens.check(hs.defer());
            return wsffi::Verdict::Defer;
        };
        handlers.on_client_error = [](wsffi::Status, std::string_view message) {
            std::printf("refused: %.*s\n", static_cast<int>(message.size()), message.data());
            std::fflush(stdout);
        };
        handlers.on_connection = [](wsffi::ServerView, wsffi::ConnView conn, const wsffi::Request &req) {
            std::printf("welcome, token %s\n", std::string(req.query("token").value_or("")).c_str());
            std::fflush(stdout);
            wsffi::ConnHandlers h;
            h.on_open = [](wsffi::ConnView c) { c.send_text("authenticated"); };
            conn.set_handlers(std::move(h));
        };
        wsffi::Server server(reactor, listener, "/", std::move(handlers));
        std::printf("listening on %s\n", std::string(listener.address()).c_str());
        std::fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
    } catch (const wsffi::Error &e) {
        std::fprintf(stderr, "verify_token: %s\n", e.what());
        return 1;
    }
    return 0;
}
