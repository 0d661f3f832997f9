// TLS through the binding: wss:// against a TLS listener (certificate files, PEM and DER in
// memory), an untrusted CA, mutual TLS with the subject on the request, SNI override,
// insecure mode, and TLS setter errors as exceptions. Certificates are made per test by
// build/tls-test-certs.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>

#include "support.hpp"

using support::Env;
using support::Record;
using wsffi::Status;

namespace {

class Certs {
public:
    Certs() {
        char tmpl[] = "/tmp/wsffi-cpp-tls-XXXXXX";
        const char *d = mkdtemp(tmpl);
        if (d == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = d;
        std::string cmd = std::string("'") + WSFFI_TLS_CERTS_TOOL + "' '" + dir_ + "'";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("tls-test-certs failed: " + cmd);
    }
    ~Certs() {
        std::string cmd = "rm -rf '" + dir_ + "'";
        if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir_.c_str());
    }
    std::string operator()(const std::string &name) const { return dir_ + "/" + name; }
    std::string read(const std::string &name) const {
        std::ifstream f((*this)(name), std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }

private:
    std::string dir_;
};

// Echo over wss://, then a clean close.
void round_trip(Env &env, const std::string &host, const wsffi::ClientOptions &co) {
    Record client;
    wsffi::Conn c = wsffi::connect(env.reactor, env.url("wss", host), co, client.handlers());
    ASSERT_TRUE(client.wait_open()) << (client.errors.empty() ? "" : client.errors[0].second);
    c.send_text("over tls");
    std::string big(1 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>(i * 13 + (i >> 10));
    c.send_binary(big);
    ASSERT_TRUE(client.wait_messages(2));
    client.read([&] {
        EXPECT_EQ(client.messages[0], "over tls");
        EXPECT_TRUE(client.messages[1] == big);
    });
    c.close();
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_TRUE(client.close.was_clean);
        EXPECT_TRUE(client.errors.empty());
    });
}

TEST(Tls, CertificateFiles) {
    Certs certs;
    Env env;
    wsffi::ListenerOptions lo;
    lo.tls_cert_files(certs("server.pem"), certs("server.key"));
    env.start({}, nullptr, &lo);
    wsffi::ClientOptions co;
    co.tls_ca_file(certs("ca.pem"));
    round_trip(env, "localhost", co);
    round_trip(env, "127.0.0.1", co);
}

TEST(Tls, PemAndDerInMemory) {
    Certs certs;
    {
        Env env;
        wsffi::ListenerOptions lo;
        lo.tls_cert_pem(certs.read("server.pem"), certs.read("server.key"));
        env.start({}, nullptr, &lo);
        wsffi::ClientOptions co;
        co.tls_ca_file(certs("ca.pem"));
        round_trip(env, "localhost", co);
    }
    {
        Env env;
        wsffi::ListenerOptions lo;
        lo.tls_cert_der(certs.read("server.der"), certs.read("server.key.der"));
        env.start({}, nullptr, &lo);
        wsffi::ClientOptions co;
        co.tls_ca_dir(certs(""));
        round_trip(env, "localhost", co);
    }
}

TEST(Tls, UntrustedCaFailsWithTlsError) {
    Certs certs;
    Record client;
    Env env;
    wsffi::ListenerOptions lo;
    lo.tls_cert_files(certs("other-server.pem"), certs("other-server.key"));
    env.start({}, nullptr, &lo);
    wsffi::ClientOptions co;
    co.tls_ca_file(certs("ca.pem"));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url("wss", "localhost"), co, client.handlers());
    ASSERT_TRUE(client.wait_closed());
    client.read([&] {
        EXPECT_EQ(client.opens, 0);
        ASSERT_EQ(client.errors.size(), 1u);
        EXPECT_EQ(client.errors[0].first, Status::Tls);
        EXPECT_EQ(client.close.code, 1006);
    });
    // Insecure mode (tests only) accepts it.
    wsffi::ClientOptions insecure;
    insecure.tls_insecure(true);
    round_trip(env, "localhost", insecure);
}

TEST(Tls, MutualTlsSubjectOnRequest) {
    Certs certs;
    Record client;
    Env env;
    std::mutex m;
    std::string subject = "<unset>";
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &req) {
        {
            std::lock_guard<std::mutex> lock(m);
            subject = std::string(req.tls_subject());
        }
        c.set_handlers(env.server_side.handlers(true));
    };
    wsffi::ListenerOptions lo;
    lo.tls_cert_files(certs("server.pem"), certs("server.key")).tls_client_ca_file(certs("client-ca.pem"), true);
    env.start(std::move(h), nullptr, &lo);
    wsffi::ClientOptions co;
    co.tls_ca_file(certs("ca.pem")).tls_client_cert(certs("client.pem"), certs("client.key"));
    wsffi::Conn c = wsffi::connect(env.reactor, env.url("wss", "localhost"), co, client.handlers());
    ASSERT_TRUE(client.wait_open());
    {
        std::lock_guard<std::mutex> lock(m);
        EXPECT_EQ(subject, "CN=client,O=Example");
    }
    c.close();
    ASSERT_TRUE(client.wait_closed());
}

TEST(Tls, SniOverride) {
    Certs certs;
    Env env;
    wsffi::ListenerOptions lo;
    lo.tls_cert_files(certs("sni.pem"), certs("sni.key"));
    env.start({}, nullptr, &lo);
    wsffi::ClientOptions co;
    co.tls_ca_file(certs("ca.pem")).tls_server_name(std::string("wsffi.test"));
    round_trip(env, "127.0.0.1", co);
}

TEST(Tls, SetterErrorsCarryTheLibrarySentence) {
    Certs certs;
    wsffi::ClientOptions co;
    try {
        co.tls_ca_file(certs("no-such-file.pem"));
        ADD_FAILURE() << "no error";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), Status::Tls);
        EXPECT_NE(std::string(e.what()).find("no-such-file.pem"), std::string::npos) << e.what();
    }
    wsffi::ListenerOptions lo;
    // A key that does not belong to the certificate.
    EXPECT_THROW(lo.tls_cert_files(certs("server.pem"), certs("client.key")), wsffi::Error);
    EXPECT_THROW(lo.tls_cert_pem(std::string_view("not pem"), std::string_view("nope")), wsffi::Error);
    // Client CAs without a certificate: refused when listening.
    wsffi::Reactor reactor;
    wsffi::ListenerOptions only_ca;
    only_ca.tls_client_ca_file(certs("client-ca.pem"), true);
    try {
        wsffi::Listener l(reactor, "127.0.0.1:0", only_ca);
        ADD_FAILURE() << "listened";
    } catch (const wsffi::Error &e) {
        EXPECT_EQ(e.status(), Status::Tls);
    }
}

// A default certificate and one chosen by SNI, an ALPN protocol agreed on, both seen by
// each side; then the listener's certificates replaced while it runs.
TEST(Tls, SniCertificatesAlpnAndReplacement) {
    Certs certs;
    Env env;
    std::mutex mu;
    std::string seen_name, seen_alpn;
    wsffi::ServerHandlers h;
    h.on_connection = [&](wsffi::ServerView, wsffi::ConnView c, const wsffi::Request &req) {
        std::lock_guard<std::mutex> lock(mu);
        seen_name = std::string(req.tls_server_name());
        seen_alpn = std::string(req.tls_alpn());
        c.set_handlers(env.server_side.handlers(true));
    };
    wsffi::ListenerOptions lo;
    lo.tls_cert_files(certs("server.pem"), certs("server.key"))
        .tls_sni_cert_files("wsffi.test", certs("sni.pem"), certs("sni.key"))
        .tls_alpn({"x-chat/2", "x-chat/1"});
    env.start(std::move(h), nullptr, &lo);
    wsffi::ClientOptions co;
    co.tls_ca_file(certs("ca.pem")).tls_server_name(std::string("wsffi.test")).tls_alpn({"x-chat/1"});
    Record client;
    wsffi::Conn c = wsffi::connect(env.reactor, env.url("wss", "127.0.0.1"), co, client.handlers());
    ASSERT_TRUE(client.wait_open()) << (client.errors.empty() ? "" : client.errors[0].second);
    EXPECT_EQ(c.tls_alpn(), "x-chat/1");
    EXPECT_FALSE(c.tls_peer_subject().empty());
    {
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_EQ(seen_name, "wsffi.test");
        EXPECT_EQ(seen_alpn, "x-chat/1");
    }
    // Certificates without a key are refused and the old ones stay.
    EXPECT_THROW(env.listener->set_tls_certificates(wsffi::ListenerOptions()), wsffi::Error);
    wsffi::ListenerOptions fresh;
    fresh.tls_cert_files(certs("server.pem"), certs("server.key"));
    env.listener->set_tls_certificates(fresh);
    // The connection opened before goes on.
    c.send_text("still here");
    ASSERT_TRUE(client.wait_messages(1));
    c.close();
    ASSERT_TRUE(client.wait_closed());
    // The SNI setters check their input.
    wsffi::ListenerOptions bad;
    EXPECT_THROW(bad.tls_sni_cert_pem("wsffi.test", wsffi::ByteView(std::string("junk")), wsffi::ByteView(std::string("junk"))),
                 wsffi::Error);
    EXPECT_THROW(bad.tls_sni_cert_der("wsffi.test", wsffi::ByteView(std::string("junk")), wsffi::ByteView(std::string("junk"))),
                 wsffi::Error);
}

}  // namespace
