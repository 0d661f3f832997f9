// Chat: every message a client sends is broadcast to every client, prefixed with the
// sender's name (from ws://HOST:PORT/chat?name=NAME); joins and leaves are announced.
// A plain HTTP GET on any other path answers with a short page.
//
//   chat_server [ADDRESS]     (default 127.0.0.1:8080)
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "wsffi.hpp"

int main(int argc, char **argv) {
    std::string address = argc > 1 ? argv[1] : "127.0.0.1:8080";
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    try {
        wsffi::Reactor reactor;
        wsffi::Listener listener(reactor, address);
        listener.set_http_handler([](const wsffi::Request &, wsffi::HttpResponse &res) {
            res.header("Content-Type", "text/plain").body(std::string_view("connect a WebSocket to /chat?name=you\n"));
        });

        wsffi::ServerHandlers handlers;
        handlers.on_connection = [](wsffi::ServerView server, wsffi::ConnView conn, const wsffi::Request &req) {
            // Copied out of the request: the view ends with this callback.
            auto name = std::make_shared<std::string>(req.query("name").value_or("anonymous"));
            wsffi::ConnHandlers h;
            h.on_open = [server, name](wsffi::ConnView) { server.broadcast_async(wsffi::MessageType::Text, *name + " joined"); };
            h.on_message = [server, name](wsffi::ConnView, wsffi::Message m) {
                if (!m.is_text()) return;
                server.broadcast_async(wsffi::MessageType::Text, *name + ": " + std::string(m.text()));
            };
            h.on_close = [server, name](wsffi::ConnView, const wsffi::CloseInfo &) {
                // The server may be closing too: then there is nobody left to tell.
                try {
                    server.broadcast_async(wsffi::MessageType::Text, *name + " left");
                } catch (const wsffi::Error &) {
                }
            };
            conn.set_handlers(std::move(h));
        };
        wsffi::Server server(reactor, listener, "/chat", std::move(handlers));
        std::printf("listening on %s\n", std::string(listener.address()).c_str());
        std::fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
    } catch (const wsffi::Error &e) {
        std::fprintf(stderr, "chat_server: %s\n", e.what());
        return 1;
    }
    return 0;
}
