// handle_protocols: the server speaks "chat.v2" and "chat.v1" and prefers v2, whatever order
// the client offers them in; the headers hook adds a header to the 101. The program runs
// the server and two clients in one process and prints what each client got.
//
//   protocols
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "wsffi.hpp"

int main() {
    const std::vector<std::string_view> supported = {"chat.v2", "chat.v1"};  // best first
    try {
        wsffi::Reactor reactor;
        wsffi::Listener listener(reactor, "127.0.0.1:0");
        wsffi::ServerHandlers handlers;
        handlers.handle_protocols = [&supported](const wsffi::Request &, const std::vector<std::string_view> &offered)
            -> std::optional<std::size_t> {
            for (std::string_view want : supported)
                for (std::size_t i = 0; i < offered.size(); i++)
                    if (offered[i] == want) return i;
            return std::nullopt;  // no protocol: the client decides whether to stay
        };
        handlers.headers = [](wsffi::Handshake &hs) { hs.add_header("X-Chat-Server", "protocols example"); };
        handlers.on_connection = [](wsffi::ServerView, wsffi::ConnView conn, const wsffi::Request &) {
            wsffi::ConnHandlers h;
            h.on_open = [](wsffi::ConnView c) {
                if (!c.protocol().empty()) c.send_text("you speak " + std::string(c.protocol()));
            };
            conn.set_handlers(std::move(h));
        };
        wsffi::Server server(reactor, listener, "/", std::move(handlers));
        std::string url = "ws://127.0.0.1:" + std::to_string(listener.port()) + "/";

        std::mutex m;
        std::condition_variable cv;
        int done = 0;
        std::vector<wsffi::Conn> clients;
        for (auto offer : {std::vector<std::string>{"chat.v1", "chat.v2"}, std::vector<std::string>{"chat.v0"}}) {
            wsffi::ClientOptions options;
            options.protocols(offer);
            wsffi::ConnHandlers h;
            std::string label = offer.size() == 2 ? "offered chat.v1, chat.v2" : "offered chat.v0";
            h.on_open = [label](wsffi::ConnView c) {
                if (c.protocol().empty()) {
                    std::printf("%s: no common protocol, leaving\n", label.c_str());
                    c.close(wsffi::close_code::policy_violation, "no protocol");
                }
            };
            h.on_message = [label](wsffi::ConnView c, wsffi::Message msg) {
                std::printf("%s: server says \"%.*s\"\n", label.c_str(), static_cast<int>(msg.text().size()),
                            msg.text().data());
                if (c.ready_state() == wsffi::ReadyState::Open) c.close();
            };
            h.on_close = [&](wsffi::ConnView, const wsffi::CloseInfo &) {
                std::lock_guard<std::mutex> lock(m);
                done++;
                cv.notify_all();
            };
            clients.push_back(wsffi::connect(reactor, url, options, std::move(h)));
        }
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return done == 2; });
    } catch (const wsffi::Error &e) {
        std::fprintf(stderr, "protocols: %s\n", e.what());
        return 1;
    }
    return 0;
}
