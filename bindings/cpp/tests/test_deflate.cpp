// permessage-deflate through the binding: negotiation, round trips of compressible and
// incompressible data, parameters, and parameter errors as exceptions.
#include "support.hpp"

using support::Env;
using support::Record;
using wsffi::Status;

namespace {

std::string compressible(std::size_t n) {
    std::string s;
    while (s.size() < n) s += "the quick brown fox jumps over the lazy dog ";
    s.resize(n);
    return s;
}

TEST(Deflate, NegotiatedAndRoundTrips) {
    Record client;
    Env env;
    wsffi::ServerOptions so;
    so.per_message_deflate(true);
    env.start({}, &so);
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());  // clients offer it by default
    ASSERT_TRUE(client.wait_open());
    EXPECT_NE(c.extensions().find("permessage-deflate"), std::string_view::npos) << c.extensions();
    std::string text = compressible(300000);
    std::string noise(100000, '\0');
    uint32_t x = 12345;
    for (auto &ch : noise) {
        x = x * 1103515245u + 12345u;
        ch = static_cast<char>(x >> 24);
    }
    c.send_text(text);
    c.send_binary(noise);
    c.send_text("tiny");  // below the threshold: sent uncompressed
    ASSERT_TRUE(client.wait_messages(3));
    client.read([&] {
        EXPECT_TRUE(client.messages[0] == text);
        EXPECT_TRUE(client.messages[1] == noise);
        EXPECT_EQ(client.messages[2], "tiny");
    });
    c.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Deflate, ParametersNegotiate) {
    Record client;
    Env env;
    wsffi::ServerOptions so;
    so.deflate(wsffi::DeflateParams().server_no_context_takeover(true).server_max_window_bits(10).level(9));
    env.start({}, &so);
    wsffi::ClientOptions co;
    co.deflate(wsffi::DeflateParams().client_no_context_takeover(true).threshold(0).mem_level(4));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), co, client.handlers());
    ASSERT_TRUE(client.wait_open());
    std::string_view ext = c.extensions();
    EXPECT_NE(ext.find("server_no_context_takeover"), std::string_view::npos) << ext;
    EXPECT_NE(ext.find("client_no_context_takeover"), std::string_view::npos) << ext;
    EXPECT_NE(ext.find("server_max_window_bits=10"), std::string_view::npos) << ext;
    std::string text = compressible(50000);
    for (int i = 0; i < 3; i++) c.send_text(text);
    ASSERT_TRUE(client.wait_messages(3));
    client.read([&] {
        for (auto &m : client.messages) EXPECT_TRUE(m == text);
    });
    c.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Deflate, DeclinedWhenOff) {
    Record client;
    Env env;
    env.start();  // servers decline by default
    wsffi::Conn c = wsffi::connect(env.reactor, env.url(), client.handlers());
    ASSERT_TRUE(client.wait_open());
    EXPECT_EQ(c.extensions(), "");
    c.close();
    ASSERT_TRUE(client.wait_closed());
    // A client that does not offer it, against a server that would accept it.
    Record other;
    Env env2;
    wsffi::ServerOptions so;
    so.per_message_deflate(true);
    env2.start({}, &so);
    wsffi::ClientOptions co;
    co.per_message_deflate(false);
    wsffi::Conn d = wsffi::connect(env2.reactor, env2.url(), co, other.handlers());
    ASSERT_TRUE(other.wait_open());
    EXPECT_EQ(d.extensions(), "");
    d.close();
    ASSERT_TRUE(other.wait_closed());
}

TEST(Deflate, BadParametersThrow) {
    wsffi::ClientOptions co;
    try {
        co.deflate(wsffi::DeflateParams().client_max_window_bits(16));
        ADD_FAILURE() << "accepted";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), Status::InvalidParameter);
    }
    wsffi::ServerOptions so;
    EXPECT_THROW(so.deflate(wsffi::DeflateParams().level(10)), wsffi::Error);
    EXPECT_THROW(so.deflate(wsffi::DeflateParams().mem_level(0)), wsffi::Error);
    wsffi::DeflateParams defaults;
    EXPECT_EQ(defaults.native().server_max_window_bits, 15);
    EXPECT_EQ(defaults.native().threshold, 64u);
}

}  // namespace
