// Echo server: every message goes back to its sender. Reading pauses while a client's
// output is above 1 MiB and resumes on drain, so a client that sends without reading
// cannot grow the server's memory.
//
//   echo_server [--deflate] [--tls CERT KEY] [ADDRESS]     (default 127.0.0.1:8080)
//
// Prints "listening on ADDRESS" and serves until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "wsffi.hpp"

int main(int argc, char **argv) {
    std::string address = "127.0.0.1:8080";
    bool deflate = false;
    const char *cert = nullptr;
    const char *key = nullptr;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--deflate") == 0) {
            deflate = true;
        } else if (std::strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cert = argv[++i];
            key = argv[++i];
        } else if (argv[i][0] != '-') {
            address = argv[i];
        } else {
            std::fprintf(stderr, "usage: echo_server [--deflate] [--tls CERT KEY] [ADDRESS]\n");
            return 2;
        }
    }
    // The reactor thread inherits this mask, so the signals reach sigwait below.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    constexpr std::size_t high_water = std::size_t(1) << 20;
    try {
        wsffi::Reactor reactor;
        wsffi::ListenerOptions lo;
        if (cert) lo.tls_cert_files(cert, key);
        wsffi::Listener listener(reactor, address, lo);

        wsffi::ServerOptions so;
        so.water_marks(high_water, high_water / 4).per_message_deflate(deflate);
        wsffi::ServerHandlers handlers;
        handlers.on_connection = [](wsffi::ServerView, wsffi::ConnView conn, const wsffi::Request &) {
            wsffi::ConnHandlers h;
            h.on_message = [](wsffi::ConnView c, wsffi::Message m) {
                try {
                    c.send(m.type, m.data);
                } catch (const wsffi::Error &e) {
                    if (e.status() != wsffi::Status::Backpressure) throw;
                }
                // Hold the sender until the receiver catches up (on_drain resumes).
                if (c.buffered_amount() > high_water) c.pause();
            };
            h.on_drain = [](wsffi::ConnView c) { c.resume(); };
            conn.set_handlers(std::move(h));
        };
        handlers.on_error = [](wsffi::Status, std::string_view message) {
            std::fprintf(stderr, "echo_server: %.*s\n", static_cast<int>(message.size()), message.data());
        };
        wsffi::Server server(reactor, listener, "/", std::move(handlers), so);

        std::printf("listening on %s\n", std::string(listener.address()).c_str());
        std::fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
        // Server, listener and reactor close in that order as they go out of scope.
    } catch (const wsffi::Error &e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
    return 0;
}
