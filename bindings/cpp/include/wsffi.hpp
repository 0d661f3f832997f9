// wsffi.hpp: header-only C++17 binding of the wsffi C API (include/wsffi.h).
//
// Ownership, in one place:
//   Reactor, Listener, Server, ClientOptions, ServerOptions, ListenerOptions, ReactorOptions,
//   RequestCopy, DeferredHandshake: move-only owners; the destructor gives the C handle back.
//   Conn: a counted reference to a connection (copy = wsffi_conn_retain, move = steal,
//   destructor = wsffi_conn_release). Releasing never closes the connection.
//   ConnView, ServerView, Request, Response, Handshake, HttpResponse, Message, ByteView,
//   CloseInfo and every std::string_view this header returns: borrowed, never owning. Inside a
//   callback they are valid until the callback returns; copy what you keep (Conn for a
//   connection, RequestCopy for a request, std::string / to_vector() for data).
//
// Errors: every failing call throws wsffi::Error (a std::runtime_error) carrying the
// library's status and its sentence. Nothing returns a status to be checked.
//
// Handlers: std::function values stored in heap objects that the library owns through its
// `destroy` callbacks, so a connection's handlers live exactly as long as the connection
// (until after its on_close) and a server's as long as the server (until after its on_close).
// An exception that escapes a handler never enters C: it is caught at the boundary, reported
// to the exception reporter (set_exception_reporter; stderr by default), and the connection
// concerned is closed with 1011 (see README.md for each callback's fallback).
#ifndef WSFFI_HPP
#define WSFFI_HPP

#include <wsffi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsffi {

// ---- status and errors ----------------------------------------------------------------------

// The library's status values (wsffi_status), same numbers.
enum class Status : uint32_t {
    Ok = WSFFI_STATUS_OK,
    NullParameter = WSFFI_STATUS_ERR_NULL_PARAMETER,
    InvalidParameter = WSFFI_STATUS_ERR_INVALID_PARAMETER,
    InvalidUtf8 = WSFFI_STATUS_ERR_INVALID_UTF8,
    InvalidUrl = WSFFI_STATUS_ERR_INVALID_URL,
    TooBig = WSFFI_STATUS_ERR_TOO_BIG,
    Unsupported = WSFFI_STATUS_ERR_UNSUPPORTED,
    NotOpen = WSFFI_STATUS_ERR_NOT_OPEN,
    Closed = WSFFI_STATUS_ERR_CLOSED,
    Backpressure = WSFFI_STATUS_ERR_BACKPRESSURE,
    CalledFromCallback = WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK,
    ShutDown = WSFFI_STATUS_ERR_SHUT_DOWN,
    AlreadyDone = WSFFI_STATUS_ERR_ALREADY_DONE,
    QueueFull = WSFFI_STATUS_ERR_QUEUE_FULL,
    Reconnecting = WSFFI_STATUS_ERR_RECONNECTING,
    Dropped = WSFFI_STATUS_ERR_DROPPED,
    Protocol = WSFFI_STATUS_ERR_PROTOCOL,
    Handshake = WSFFI_STATUS_ERR_HANDSHAKE,
    HandshakeRejected = WSFFI_STATUS_ERR_HANDSHAKE_REJECTED,
    MessageTooBig = WSFFI_STATUS_ERR_MESSAGE_TOO_BIG,
    Io = WSFFI_STATUS_ERR_IO,
    Dns = WSFFI_STATUS_ERR_DNS,
    ConnectionRefused = WSFFI_STATUS_ERR_CONNECTION_REFUSED,
    Timeout = WSFFI_STATUS_ERR_TIMEOUT,
    AddressInUse = WSFFI_STATUS_ERR_ADDRESS_IN_USE,
    ConnectionReset = WSFFI_STATUS_ERR_CONNECTION_RESET,
    Tls = WSFFI_STATUS_ERR_TLS,
    Internal = WSFFI_STATUS_ERR_INTERNAL,
    Panic = WSFFI_STATUS_ERR_PANIC,
};

// A static description of a status ("unknown status" for values the library does not know).
inline std::string_view status_str(Status s) noexcept { return wsffi_status_str(static_cast<uint32_t>(s)); }

// What every failing call throws: the library's status and sentence. what() is the
// sentence: the library's own detail when it gave one ("bind 127.0.0.1:80: ..."), else
// "<function>: <status description>".
class Error : public std::runtime_error {
public:
    Error(Status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

// The library version ("MAJOR.MINOR.PATCH") and number (MAJOR << 16 | MINOR << 8 | PATCH).
inline std::string_view version() noexcept { return wsffi_version(); }
inline uint32_t version_number() noexcept { return wsffi_version_number(); }

// ---- exceptions escaping handlers -----------------------------------------------------------

// Receives every exception that escaped a handler: `where` names the callback
// ("on_message", "verify_client", ...), `error` the exception (rethrow it to inspect it).
// Runs on the thread that ran the handler (the reactor thread, or the dispatching thread).
using ExceptionReporter = std::function<void(std::string_view where, std::exception_ptr error)>;

namespace detail {

struct ReporterSlot {
    std::mutex mutex;
    std::shared_ptr<const ExceptionReporter> reporter;
};

inline ReporterSlot &reporter_slot() {
    static ReporterSlot slot;
    return slot;
}

inline void default_report(std::string_view where, std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "wsffi: exception in %.*s handler: %s\n", static_cast<int>(where.size()), where.data(),
                     e.what());
    } catch (...) {
        std::fprintf(stderr, "wsffi: exception in %.*s handler (not a std::exception)\n",
                     static_cast<int>(where.size()), where.data());
    }
}

// Never throws: a reporter that throws is itself ignored.
inline void report(const char *where, std::exception_ptr error) noexcept {
    try {
        std::shared_ptr<const ExceptionReporter> r;
        {
            std::lock_guard<std::mutex> lock(reporter_slot().mutex);
            r = reporter_slot().reporter;
        }
        if (r && *r) {
            (*r)(where, error);
        } else {
            default_report(where, error);
        }
    } catch (...) {
    }
}

// Runs `f`; an exception is reported and turns into `false`.
template <class F> bool guarded(const char *where, F &&f) noexcept {
    try {
        f();
        return true;
    } catch (...) {
        report(where, std::current_exception());
        return false;
    }
}

}  // namespace detail

// Replaces the process-wide reporter (an empty function restores the default, which writes
// a line to stderr). Thread-safe.
inline void set_exception_reporter(ExceptionReporter reporter) {
    auto p = reporter ? std::make_shared<const ExceptionReporter>(std::move(reporter)) : nullptr;
    std::lock_guard<std::mutex> lock(detail::reporter_slot().mutex);
    detail::reporter_slot().reporter = std::move(p);
}

enum class LogLevel : uint32_t {
    Off = WSFFI_LOG_OFF,
    Error = WSFFI_LOG_ERROR,
    Warn = WSFFI_LOG_WARN,
    Info = WSFFI_LOG_INFO,
    Debug = WSFFI_LOG_DEBUG,
};

// Sends the library's log records at `level` and above to `handler` (process-wide; an
// empty handler or LogLevel::Off turns the log off). Called from library threads,
// possibly concurrently; the message is valid during the call.
inline void set_log_handler(LogLevel level, std::function<void(LogLevel, std::string_view)> handler) {
    using Handler = std::function<void(LogLevel, std::string_view)>;
    if (!handler || level == LogLevel::Off) {
        wsffi_set_log_callback(WSFFI_LOG_OFF, nullptr, nullptr, nullptr);
        return;
    }
    auto *owned = new Handler(std::move(handler));
    wsffi_status s = wsffi_set_log_callback(
        static_cast<uint32_t>(level),
        [](uint32_t lvl, const char *message, void *user) {
            detail::guarded("log handler", [&] { (*static_cast<Handler *>(user))(static_cast<LogLevel>(lvl), message); });
        },
        owned, [](void *user) { delete static_cast<Handler *>(user); });
    if (s != WSFFI_STATUS_OK) {
        delete owned;
        throw Error(static_cast<Status>(s), "wsffi_set_log_callback");
    }
}

namespace detail {

[[noreturn]] inline void throw_status(wsffi_status s, const char *what) {
    throw Error(static_cast<Status>(s), std::string(what) + ": " + wsffi_status_str(static_cast<uint32_t>(s)));
}

inline void check(wsffi_status s, const char *what) {
    if (s != WSFFI_STATUS_OK) throw_status(s, what);
}

// An optional `wsffi_error **out_err`, freed on scope exit.
class ErrorOut {
public:
    ErrorOut() = default;
    ErrorOut(const ErrorOut &) = delete;
    ErrorOut &operator=(const ErrorOut &) = delete;
    ~ErrorOut() { wsffi_error_free(err_); }
    wsffi_error **out() noexcept { return &err_; }
    // Throws for a failed status, with the library's sentence when it gave one.
    void check(wsffi_status s, const char *what) const {
        if (s == WSFFI_STATUS_OK) return;
        if (err_ != nullptr) throw Error(static_cast<Status>(s), wsffi_error_message(err_));
        throw_status(s, what);
    }

private:
    wsffi_error *err_ = nullptr;
};

inline std::string_view sv(const char *s) noexcept { return s ? std::string_view(s) : std::string_view(); }
inline std::optional<std::string_view> opt_sv(const char *s) {
    if (s == nullptr) return std::nullopt;
    return std::string_view(s);
}

inline uint32_t to_ms(std::chrono::milliseconds ms, const char *what) {
    if (ms.count() < 0 || static_cast<unsigned long long>(ms.count()) > std::numeric_limits<uint32_t>::max()) {
        throw Error(Status::InvalidParameter, std::string(what) + ": duration out of range (0 ms .. 2^32-1 ms)");
    }
    return static_cast<uint32_t>(ms.count());
}

}  // namespace detail

// ---- borrowed data ------------------------------------------------------------------------------

// A borrowed run of bytes (C++17 has no std::span). It never owns: data handed to a callback
// is valid until the callback returns; data handed to the library is copied before the call
// returns.
class ByteView {
public:
    constexpr ByteView() noexcept = default;
    constexpr ByteView(const uint8_t *data, std::size_t size) noexcept : data_(data), size_(size) {}
    ByteView(const void *data, std::size_t size) noexcept : data_(static_cast<const uint8_t *>(data)), size_(size) {}
    ByteView(std::string_view s) noexcept : ByteView(s.data(), s.size()) {}
    ByteView(const std::string &s) noexcept : ByteView(s.data(), s.size()) {}
    ByteView(const char *s) noexcept : ByteView(std::string_view(s)) {}
    ByteView(const std::vector<uint8_t> &v) noexcept : ByteView(v.data(), v.size()) {}
    ByteView(const std::vector<char> &v) noexcept : ByteView(v.data(), v.size()) {}

    constexpr const uint8_t *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const uint8_t *begin() const noexcept { return data_; }
    constexpr const uint8_t *end() const noexcept { return data_ + size_; }
    constexpr uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }
    std::string_view as_string_view() const noexcept {
        return size_ ? std::string_view(reinterpret_cast<const char *>(data_), size_) : std::string_view();
    }
    std::string to_string() const { return std::string(as_string_view()); }
    std::vector<uint8_t> to_vector() const { return std::vector<uint8_t>(begin(), end()); }

    friend bool operator==(ByteView a, ByteView b) noexcept {
        return a.size_ == b.size_ && (a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
    }
    friend bool operator!=(ByteView a, ByteView b) noexcept { return !(a == b); }

private:
    const uint8_t *data_ = nullptr;
    std::size_t size_ = 0;
};

enum class MessageType : uint32_t { Text = WSFFI_TEXT, Binary = WSFFI_BINARY };

enum class ReadyState : uint32_t {
    Connecting = WSFFI_CONNECTING,
    Open = WSFFI_OPEN,
    Closing = WSFFI_CLOSING,
    Closed = WSFFI_CLOSED,
};

// Close codes of RFC 6455 section 7.4 (application codes 3000-4999 are plain numbers).
namespace close_code {
constexpr uint16_t normal = WSFFI_CLOSE_NORMAL;
constexpr uint16_t going_away = WSFFI_CLOSE_GOING_AWAY;
constexpr uint16_t protocol_error = WSFFI_CLOSE_PROTOCOL_ERROR;
constexpr uint16_t unsupported_data = WSFFI_CLOSE_UNSUPPORTED_DATA;
constexpr uint16_t no_status = WSFFI_CLOSE_NO_STATUS;
constexpr uint16_t abnormal = WSFFI_CLOSE_ABNORMAL;
constexpr uint16_t invalid_payload = WSFFI_CLOSE_INVALID_PAYLOAD;
constexpr uint16_t policy_violation = WSFFI_CLOSE_POLICY_VIOLATION;
constexpr uint16_t message_too_big = WSFFI_CLOSE_MESSAGE_TOO_BIG;
constexpr uint16_t mandatory_extension = WSFFI_CLOSE_MANDATORY_EXTENSION;
constexpr uint16_t internal_error = WSFFI_CLOSE_INTERNAL_ERROR;
constexpr uint16_t service_restart = WSFFI_CLOSE_SERVICE_RESTART;
constexpr uint16_t try_again_later = WSFFI_CLOSE_TRY_AGAIN_LATER;
constexpr uint16_t bad_gateway = WSFFI_CLOSE_BAD_GATEWAY;
constexpr uint16_t tls_handshake = WSFFI_CLOSE_TLS_HANDSHAKE;
}  // namespace close_code

// One received message; `data` is borrowed until the handler returns.
struct Message {
    MessageType type;
    ByteView data;
    bool is_text() const noexcept { return type == MessageType::Text; }
    bool is_binary() const noexcept { return type == MessageType::Binary; }
    // The payload as text (valid UTF-8 when is_text()).
    std::string_view text() const noexcept { return data.as_string_view(); }
};

// One part of a streamed message (options' stream_messages(true)): the bytes as they
// arrived, inflated when compressed. A text part may end inside a UTF-8 character that the
// next part completes; the last part may be empty.
struct MessagePart {
    MessageType type;
    ByteView data;
    bool first;
    bool last;
    bool is_text() const noexcept { return type == MessageType::Text; }
    bool is_binary() const noexcept { return type == MessageType::Binary; }
};

enum class CloseOrigin : uint32_t {
    None = WSFFI_CLOSE_ORIGIN_NONE,
    Peer = WSFFI_CLOSE_ORIGIN_PEER,
    Local = WSFFI_CLOSE_ORIGIN_LOCAL,
};

// How a connection ended (struct wsffi_close_info); the strings are borrowed until on_close
// returns. Fields the library did not fill (an older library) keep these defaults.
struct CloseInfo {
    uint16_t code = close_code::abnormal;
    std::string_view reason;
    bool was_clean = false;
    CloseOrigin origin = CloseOrigin::None;
    uint16_t peer_code = 0;                        // 0: the peer sent no close frame
    std::optional<std::string_view> peer_reason;   // nullopt: the peer sent no close frame
    uint16_t local_code = 0;                       // 0: we sent no close frame
    std::optional<std::string_view> local_reason;  // nullopt: we sent no close frame
};

namespace detail {

#define WSFFI_HPP_HAS(info, field) \
    (offsetof(wsffi_close_info, field) + sizeof(static_cast<const wsffi_close_info *>(nullptr)->field) <= (info)->size)

inline CloseInfo close_info_of(const wsffi_close_info *in) {
    CloseInfo out;
    if (in == nullptr) return out;
    if (WSFFI_HPP_HAS(in, code)) out.code = in->code;
    if (WSFFI_HPP_HAS(in, reason_len) && in->reason) out.reason = std::string_view(in->reason, in->reason_len);
    if (WSFFI_HPP_HAS(in, was_clean)) out.was_clean = in->was_clean;
    if (WSFFI_HPP_HAS(in, origin)) out.origin = static_cast<CloseOrigin>(in->origin);
    if (WSFFI_HPP_HAS(in, peer_code)) out.peer_code = in->peer_code;
    if (WSFFI_HPP_HAS(in, peer_reason_len) && in->peer_reason)
        out.peer_reason = std::string_view(in->peer_reason, in->peer_reason_len);
    if (WSFFI_HPP_HAS(in, local_code)) out.local_code = in->local_code;
    if (WSFFI_HPP_HAS(in, local_reason_len) && in->local_reason)
        out.local_reason = std::string_view(in->local_reason, in->local_reason_len);
    return out;
}

#undef WSFFI_HPP_HAS

}  // namespace detail

// ---- request and response views -----------------------------------------------------------------

class RequestCopy;

// A borrowed view of an HTTP request (the upgrade, or a plain request): valid during the
// callback that received it (or while a deferred handshake is pending); keep it longer with
// copy(). Every string_view belongs to the view.
class Request {
public:
    explicit Request(const wsffi_request *req) noexcept : req_(req) {}

    std::string_view method() const noexcept { return detail::sv(wsffi_request_method(req_)); }
    // The target as sent ("/chat?room=1").
    std::string_view url() const noexcept { return detail::sv(wsffi_request_url(req_)); }
    std::string_view path() const noexcept { return detail::sv(wsffi_request_path(req_)); }
    std::string_view query_string() const noexcept { return detail::sv(wsffi_request_query_string(req_)); }
    std::string_view http_version() const noexcept { return detail::sv(wsffi_request_http_version(req_)); }
    std::string_view remote_address() const noexcept { return detail::sv(wsffi_request_remote_address(req_)); }
    // RFC 4514 subject of the client's TLS certificate, "" without one.
    std::string_view tls_subject() const noexcept { return detail::sv(wsffi_request_tls_subject(req_)); }
    // The ALPN protocol agreed on and the SNI name the client sent, "" without them.
    std::string_view tls_alpn() const noexcept { return detail::sv(wsffi_request_tls_alpn(req_)); }
    std::string_view tls_server_name() const noexcept { return detail::sv(wsffi_request_tls_server_name(req_)); }
    std::optional<std::string_view> host() const { return detail::opt_sv(wsffi_request_host(req_)); }
    // The decoded value of query parameter `name` (first occurrence), nullopt when absent.
    std::optional<std::string_view> query(const std::string &name) const {
        return detail::opt_sv(wsffi_request_query(req_, name.c_str()));
    }
    // The first value of header `name` (case-insensitive), nullopt when absent.
    std::optional<std::string_view> header(const std::string &name) const {
        return detail::opt_sv(wsffi_request_header(req_, name.c_str()));
    }
    bool has_header(const std::string &name) const noexcept { return wsffi_request_has_header(req_, name.c_str()); }
    std::size_t header_count() const noexcept { return wsffi_request_header_count(req_); }
    // Header `index` of the raw list, in received order and spelling.
    std::pair<std::string_view, std::string_view> header_at(std::size_t index) const {
        const char *name = nullptr;
        const char *value = nullptr;
        detail::check(wsffi_request_header_at(req_, index, &name, &value), "wsffi_request_header_at");
        return {name, value};
    }
    std::vector<std::pair<std::string_view, std::string_view>> headers() const {
        std::vector<std::pair<std::string_view, std::string_view>> out;
        std::size_t n = header_count();
        out.reserve(n);
        for (std::size_t i = 0; i < n; i++) out.push_back(header_at(i));
        return out;
    }
    // An owned copy, valid until it is destroyed.
    inline RequestCopy copy() const;

    const wsffi_request *native() const noexcept { return req_; }
    explicit operator bool() const noexcept { return req_ != nullptr; }

protected:
    const wsffi_request *req_;
};

// A request kept beyond its callback (wsffi_request_copy); move-only, freed on destruction.
class RequestCopy : public Request {
public:
    RequestCopy() noexcept : Request(nullptr) {}
    explicit RequestCopy(const wsffi_request *owned) noexcept : Request(owned) {}
    RequestCopy(const RequestCopy &) = delete;
    RequestCopy &operator=(const RequestCopy &) = delete;
    RequestCopy(RequestCopy &&o) noexcept : Request(std::exchange(o.req_, nullptr)) {}
    RequestCopy &operator=(RequestCopy &&o) noexcept {
        if (this != &o) {
            wsffi_request_free(req_);
            req_ = std::exchange(o.req_, nullptr);
        }
        return *this;
    }
    ~RequestCopy() { wsffi_request_free(req_); }
};

inline RequestCopy Request::copy() const {
    const wsffi_request *c = wsffi_request_copy(req_);
    if (c == nullptr && req_ != nullptr) throw Error(Status::Internal, "wsffi_request_copy failed");
    return RequestCopy(c);
}

// A server's answer to a client's upgrade: the refusal lent to on_unexpected_response, or
// the 101 of an open client connection (ConnView::handshake_response).
class Response {
public:
    explicit Response(const wsffi_response *resp) noexcept : resp_(resp) {}
    uint16_t status() const noexcept { return wsffi_response_status(resp_); }
    std::string_view reason() const noexcept { return detail::sv(wsffi_response_reason(resp_)); }
    std::optional<std::string_view> header(const std::string &name) const {
        return detail::opt_sv(wsffi_response_header(resp_, name.c_str()));
    }
    std::size_t header_count() const noexcept { return wsffi_response_header_count(resp_); }
    std::pair<std::string_view, std::string_view> header_at(std::size_t index) const {
        const char *name = nullptr;
        const char *value = nullptr;
        detail::check(wsffi_response_header_at(resp_, index, &name, &value), "wsffi_response_header_at");
        return {name, value};
    }
    std::vector<std::pair<std::string_view, std::string_view>> headers() const {
        std::vector<std::pair<std::string_view, std::string_view>> out;
        for (std::size_t i = 0, n = header_count(); i < n; i++) out.push_back(header_at(i));
        return out;
    }
    // Up to 1 MiB of the body.
    ByteView body() const noexcept {
        std::size_t len = 0;
        const uint8_t *p = wsffi_response_body(resp_, &len);
        return ByteView(p, len);
    }
    const wsffi_response *native() const noexcept { return resp_; }

private:
    const wsffi_response *resp_;
};

// ---- connections --------------------------------------------------------------------------------

class Conn;
class ConnView;

// The handlers of one connection. An empty function means "not interested" (the library is
// told NULL). Every handler runs on the reactor thread (or the dispatching thread in dispatch
// mode), one at a time per connection; every borrowed argument is valid until it returns.
struct ConnHandlers {
    std::function<void(ConnView)> on_open;
    std::function<void(ConnView, Message)> on_message;
    // Exactly one per connection, the last handler; the handlers are destroyed after it.
    std::function<void(ConnView, const CloseInfo &)> on_close;
    std::function<void(ConnView, Status, std::string_view message)> on_error;
    std::function<void(ConnView, ByteView)> on_ping;  // the pong is already queued
    std::function<void(ConnView, ByteView)> on_pong;
    std::function<void(ConnView)> on_drain;
    // Client only: the server answered the upgrade with a non-101 status.
    std::function<void(ConnView, const Response &)> on_unexpected_response;
    // Connections whose options set stream_messages(true) get parts here, never on_message.
    std::function<void(ConnView, MessagePart)> on_message_part;
    // Client with ClientOptions::reconnect: the connection (or an attempt) was lost and
    // attempt `attempt` starts after `delay`; `status`/`message` say why the last one ended,
    // `lost` how it closed. on_open follows on success; on_error/on_close come once, at the
    // very end. Sends meanwhile throw Status::Reconnecting.
    std::function<void(ConnView, uint32_t attempt, std::chrono::milliseconds delay, Status status,
                       std::string_view message, const CloseInfo &lost)>
        on_reconnect;
};

namespace detail {
inline void set_conn_handlers(wsffi_conn *conn, ConnHandlers handlers);
}

// A borrowed connection: what handlers receive. Valid until that connection's on_close
// returns; to keep it longer or use it from another thread, take a Conn with retain().
// Every operation throws wsffi::Error on failure (Closed once closing, NotOpen while
// connecting, Backpressure above the high-water mark, ...).
class ConnView {
public:
    ConnView() noexcept = default;
    explicit ConnView(wsffi_conn *conn) noexcept : conn_(conn) {}

    void send(MessageType type, ByteView data) const {
        detail::check(wsffi_send(conn_, static_cast<uint32_t>(type), data.data(), data.size()), "wsffi_send");
    }
    void send_text(std::string_view text) const {
        detail::check(wsffi_send_text(conn_, text.data(), text.size()), "wsffi_send_text");
    }
    void send_binary(ByteView data) const {
        detail::check(wsffi_send_binary(conn_, data.data(), data.size()), "wsffi_send_binary");
    }
    // One fragment; the first sets the type, later ones continue until `is_final`.
    void send_fragment(MessageType type, ByteView data, bool is_final) const {
        detail::check(wsffi_send_fragment(conn_, static_cast<uint32_t>(type), data.data(), data.size(), is_final),
                      "wsffi_send_fragment");
    }
    void ping(ByteView data = {}) const { detail::check(wsffi_ping(conn_, data.data(), data.size()), "wsffi_ping"); }
    void pong(ByteView data = {}) const { detail::check(wsffi_pong(conn_, data.data(), data.size()), "wsffi_pong"); }
    // Starts the close handshake. Code 0 sends no status code (then the reason must be empty).
    void close(uint16_t code = close_code::normal, std::string_view reason = {}) const {
        detail::check(wsffi_close(conn_, code, reason.data(), reason.size()), "wsffi_close");
    }
    // Drops the connection without a close handshake.
    void terminate() const { detail::check(wsffi_terminate(conn_), "wsffi_terminate"); }
    void pause() const { detail::check(wsffi_conn_pause(conn_), "wsffi_conn_pause"); }
    // Reconnect on: the current connection (or attempt) is the last; during the wait the
    // connection ends now.
    void stop_reconnect() const { detail::check(wsffi_conn_stop_reconnect(conn_), "wsffi_conn_stop_reconnect"); }
    void resume() const { detail::check(wsffi_conn_resume(conn_), "wsffi_conn_resume"); }

    // Topics (server-side connections): true when the subscription is new, false when it
    // already existed; ends at unsubscribe or close. Names: 1 to WSFFI_MAX_TOPIC_BYTES bytes.
    bool subscribe(const std::string &topic) const {
        wsffi_status s = wsffi_conn_subscribe(conn_, topic.c_str());
        if (s == WSFFI_STATUS_ERR_ALREADY_DONE) return false;
        detail::check(s, "wsffi_conn_subscribe");
        return true;
    }
    // True when there was such a subscription.
    bool unsubscribe(const std::string &topic) const {
        wsffi_status s = wsffi_conn_unsubscribe(conn_, topic.c_str());
        if (s == WSFFI_STATUS_ERR_ALREADY_DONE) return false;
        detail::check(s, "wsffi_conn_unsubscribe");
        return true;
    }
    bool is_subscribed(const std::string &topic) const noexcept {
        return wsffi_conn_is_subscribed(conn_, topic.c_str());
    }

    ReadyState ready_state() const noexcept { return static_cast<ReadyState>(wsffi_ready_state(conn_)); }
    std::size_t buffered_amount() const noexcept { return wsffi_buffered_amount(conn_); }
    // Messages and bytes each way, the buffered amount and the last ping round trip (see
    // struct wsffi_conn_stats); also after the connection closed (final counters).
    wsffi_conn_stats stats() const {
        wsffi_conn_stats s{};
        s.size = sizeof s;
        detail::check(wsffi_conn_get_stats(conn_, &s), "wsffi_conn_get_stats");
        return s;
    }
    // These strings belong to the connection: valid while a reference is held (or, in a
    // handler, until it returns).
    std::string_view protocol() const noexcept { return wsffi_protocol(conn_); }
    std::string_view extensions() const noexcept { return wsffi_extensions(conn_); }
    std::string_view remote_address() const noexcept { return wsffi_remote_address(conn_); }
    std::string_view url() const noexcept { return wsffi_url(conn_); }
    // TLS: the ALPN protocol agreed on and the peer certificate's subject, "" without them.
    std::string_view tls_alpn() const noexcept { return wsffi_tls_alpn(conn_); }
    std::string_view tls_peer_subject() const noexcept { return wsffi_tls_peer_subject(conn_); }
    // A client's 101 answer (status, headers), from on_open on; nullopt on the server side.
    std::optional<Response> handshake_response() const noexcept {
        const wsffi_response *r = wsffi_conn_handshake_response(conn_);
        if (r == nullptr) return std::nullopt;
        return Response(r);
    }

    // Replaces the connection's handlers (server code calls it from on_connection). The old
    // handlers are destroyed by the library once no callback can use them any more.
    void set_handlers(ConnHandlers handlers) const { detail::set_conn_handlers(conn_, std::move(handlers)); }

    // A counted reference of one's own.
    inline Conn retain() const;

    wsffi_conn *native() const noexcept { return conn_; }
    explicit operator bool() const noexcept { return conn_ != nullptr; }
    friend bool operator==(const ConnView &a, const ConnView &b) noexcept { return a.conn_ == b.conn_; }
    friend bool operator!=(const ConnView &a, const ConnView &b) noexcept { return a.conn_ != b.conn_; }

protected:
    wsffi_conn *conn_ = nullptr;
};

// A counted reference to a connection: copy retains, move steals, destruction releases.
// Usable from any thread, before and after the connection closed (calls then throw Closed).
class Conn : public ConnView {
public:
    Conn() noexcept = default;
    // Takes over a reference the caller owns (from wsffi_connect or wsffi_conn_retain).
    static Conn adopt(wsffi_conn *owned) noexcept { return Conn(owned); }
    // Takes a new reference to `conn`.
    static Conn retain(wsffi_conn *conn) noexcept { return Conn(wsffi_conn_retain(conn)); }
    // Another reference to this connection (as copying does).
    using ConnView::retain;

    Conn(const Conn &o) noexcept : ConnView(wsffi_conn_retain(o.conn_)) {}
    Conn(Conn &&o) noexcept : ConnView(std::exchange(o.conn_, nullptr)) {}
    Conn &operator=(const Conn &o) noexcept {
        if (this != &o) {
            wsffi_conn *c = wsffi_conn_retain(o.conn_);
            wsffi_conn_release(conn_);
            conn_ = c;
        }
        return *this;
    }
    Conn &operator=(Conn &&o) noexcept {
        if (this != &o) {
            wsffi_conn_release(conn_);
            conn_ = std::exchange(o.conn_, nullptr);
        }
        return *this;
    }
    ~Conn() { wsffi_conn_release(conn_); }

    // Gives the reference back now (the Conn becomes empty).
    void reset() noexcept { wsffi_conn_release(std::exchange(conn_, nullptr)); }
    // Hands the reference to the caller, who must wsffi_conn_release it.
    wsffi_conn *release() noexcept { return std::exchange(conn_, nullptr); }

private:
    explicit Conn(wsffi_conn *owned) noexcept : ConnView(owned) {}
};

inline Conn ConnView::retain() const { return Conn::retain(conn_); }

namespace detail {

struct ConnState {
    ConnHandlers h;

    static ConnState *of(void *user) noexcept { return static_cast<ConnState *>(user); }
    static void destroy(void *user) noexcept { delete of(user); }

    // A handler threw: report it (done by guarded) and fail the connection with 1011.
    static void fail(wsffi_conn *conn) noexcept {
        static const char reason[] = "handler failed";
        (void)wsffi_close(conn, close_code::internal_error, reason, sizeof reason - 1);
    }

    static void on_open(void *user, wsffi_conn *conn) {
        if (!guarded("on_open", [&] { of(user)->h.on_open(ConnView(conn)); })) fail(conn);
    }
    static void on_message(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, std::size_t len) {
        if (!guarded("on_message", [&] {
                of(user)->h.on_message(ConnView(conn), Message{static_cast<MessageType>(kind), ByteView(data, len)});
            }))
            fail(conn);
    }
    static void on_message_part(void *user, wsffi_conn *conn, uint32_t kind, const uint8_t *data, std::size_t len,
                                bool first, bool last) {
        if (!guarded("on_message_part", [&] {
                of(user)->h.on_message_part(
                    ConnView(conn), MessagePart{static_cast<MessageType>(kind), ByteView(data, len), first, last});
            }))
            fail(conn);
    }
    static void on_close(void *user, wsffi_conn *conn, const wsffi_close_info *info) {
        guarded("on_close", [&] { of(user)->h.on_close(ConnView(conn), close_info_of(info)); });
    }
    static void on_error(void *user, wsffi_conn *conn, wsffi_status status, const char *message) {
        guarded("on_error", [&] { of(user)->h.on_error(ConnView(conn), static_cast<Status>(status), sv(message)); });
    }
    static void on_ping(void *user, wsffi_conn *conn, const uint8_t *data, std::size_t len) {
        if (!guarded("on_ping", [&] { of(user)->h.on_ping(ConnView(conn), ByteView(data, len)); })) fail(conn);
    }
    static void on_pong(void *user, wsffi_conn *conn, const uint8_t *data, std::size_t len) {
        if (!guarded("on_pong", [&] { of(user)->h.on_pong(ConnView(conn), ByteView(data, len)); })) fail(conn);
    }
    static void on_drain(void *user, wsffi_conn *conn) {
        if (!guarded("on_drain", [&] { of(user)->h.on_drain(ConnView(conn)); })) fail(conn);
    }
    static void on_unexpected_response(void *user, wsffi_conn *conn, const wsffi_response *response) {
        guarded("on_unexpected_response",
                [&] { of(user)->h.on_unexpected_response(ConnView(conn), Response(response)); });
    }

    static void on_reconnect(void *user, wsffi_conn *conn, uint32_t attempt, uint32_t delay_ms, wsffi_status status,
                             const char *message, const wsffi_close_info *info) {
        guarded("on_reconnect", [&] {
            of(user)->h.on_reconnect(ConnView(conn), attempt, std::chrono::milliseconds(delay_ms),
                                     static_cast<Status>(status), sv(message), close_info_of(info));
        });
    }

    // The C table: only the handlers that are set.
    wsffi_conn_callbacks table() const {
        wsffi_conn_callbacks cb;
        check(wsffi_conn_callbacks_init(&cb, sizeof cb), "wsffi_conn_callbacks_init");
        if (h.on_open) cb.on_open = &ConnState::on_open;
        if (h.on_message) cb.on_message = &ConnState::on_message;
        if (h.on_close) cb.on_close = &ConnState::on_close;
        if (h.on_error) cb.on_error = &ConnState::on_error;
        if (h.on_ping) cb.on_ping = &ConnState::on_ping;
        if (h.on_pong) cb.on_pong = &ConnState::on_pong;
        if (h.on_drain) cb.on_drain = &ConnState::on_drain;
        if (h.on_unexpected_response) cb.on_unexpected_response = &ConnState::on_unexpected_response;
        if (h.on_message_part) cb.on_message_part = &ConnState::on_message_part;
        if (h.on_reconnect) cb.on_reconnect = &ConnState::on_reconnect;
        return cb;
    }
};

inline void set_conn_handlers(wsffi_conn *conn, ConnHandlers handlers) {
    if (conn == nullptr) throw_status(WSFFI_STATUS_ERR_NULL_PARAMETER, "wsffi_conn_set_callbacks");
    auto state = std::make_unique<ConnState>(ConnState{std::move(handlers)});
    wsffi_conn_callbacks cb = state->table();
    // From here the library owns the state (it destroys it also when the call fails).
    check(wsffi_conn_set_callbacks(conn, &cb, state.release(), &ConnState::destroy), "wsffi_conn_set_callbacks");
}

}  // namespace detail

// ---- options ----------------------------------------------------------------------------------

// permessage-deflate parameters, starting from the library's defaults
// (wsffi_deflate_params_init): no context takeover flags, windows 15, threshold 64 bytes,
// level 6, mem_level 8.
class DeflateParams {
public:
    DeflateParams() { detail::check(wsffi_deflate_params_init(&p_, sizeof p_), "wsffi_deflate_params_init"); }
    DeflateParams &server_no_context_takeover(bool v) noexcept { p_.server_no_context_takeover = v; return *this; }
    DeflateParams &client_no_context_takeover(bool v) noexcept { p_.client_no_context_takeover = v; return *this; }
    DeflateParams &server_max_window_bits(uint8_t v) noexcept { p_.server_max_window_bits = v; return *this; }
    DeflateParams &client_max_window_bits(uint8_t v) noexcept { p_.client_max_window_bits = v; return *this; }
    DeflateParams &threshold(std::size_t v) noexcept { p_.threshold = v; return *this; }
    DeflateParams &level(uint32_t v) noexcept { p_.level = v; return *this; }
    DeflateParams &mem_level(uint8_t v) noexcept { p_.mem_level = v; return *this; }
    const wsffi_deflate_params &native() const noexcept { return p_; }

private:
    wsffi_deflate_params p_;
};

namespace detail {
// A move-only owner of one C options object.
template <class T, T *(*New)(), void (*Free)(T *)> class OptionsBase {
public:
    OptionsBase() : p_(New()) {
        if (p_ == nullptr) throw Error(Status::Internal, "could not allocate options");
    }
    OptionsBase(const OptionsBase &) = delete;
    OptionsBase &operator=(const OptionsBase &) = delete;
    OptionsBase(OptionsBase &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    OptionsBase &operator=(OptionsBase &&o) noexcept {
        if (this != &o) {
            Free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~OptionsBase() { Free(p_); }
    T *native() const noexcept { return p_; }

protected:
    T *p_;
};
}  // namespace detail

// Client options (wsffi_client_options), a builder: each setter applies at once and throws
// on a value the library refuses. Defaults are the header's (deflate offered, no ping, ...).
class ClientOptions
    : public detail::OptionsBase<wsffi_client_options, wsffi_client_options_new, wsffi_client_options_free> {
public:
    using ms = std::chrono::milliseconds;
    // Offers a subprotocol (in order of preference).
    ClientOptions &protocol(const std::string &name) {
        detail::check(wsffi_client_options_add_protocol(p_, name.c_str()), "wsffi_client_options_add_protocol");
        return *this;
    }
    ClientOptions &protocols(const std::vector<std::string> &names) {
        for (const auto &n : names) protocol(n);
        return *this;
    }
    // Adds a request header.
    ClientOptions &header(const std::string &name, const std::string &value) {
        detail::check(wsffi_client_options_add_header(p_, name.c_str(), value.c_str()),
                      "wsffi_client_options_add_header");
        return *this;
    }
    ClientOptions &origin(const std::string &origin) {
        detail::check(wsffi_client_options_set_origin(p_, origin.c_str()), "wsffi_client_options_set_origin");
        return *this;
    }
    ClientOptions &connect_timeout(ms t) {
        detail::check(wsffi_client_options_set_connect_timeout_ms(p_, detail::to_ms(t, "connect_timeout")),
                      "wsffi_client_options_set_connect_timeout_ms");
        return *this;
    }
    ClientOptions &handshake_timeout(ms t) {
        detail::check(wsffi_client_options_set_handshake_timeout_ms(p_, detail::to_ms(t, "handshake_timeout")),
                      "wsffi_client_options_set_handshake_timeout_ms");
        return *this;
    }
    ClientOptions &max_payload(std::size_t bytes) {
        detail::check(wsffi_client_options_set_max_payload(p_, bytes), "wsffi_client_options_set_max_payload");
        return *this;
    }
    // Messages arrive in parts (ConnHandlers::on_message_part) and max_payload no longer
    // bounds them; off by default.
    ClientOptions &stream_messages(bool on = true) {
        detail::check(wsffi_client_options_set_stream_messages(p_, on), "wsffi_client_options_set_stream_messages");
        return *this;
    }
    ClientOptions &max_fragments(std::size_t n) {
        detail::check(wsffi_client_options_set_max_fragments(p_, n), "wsffi_client_options_set_max_fragments");
        return *this;
    }
    // 0 turns the automatic ping off (the client default).
    ClientOptions &ping_interval(ms t) {
        detail::check(wsffi_client_options_set_ping_interval_ms(p_, detail::to_ms(t, "ping_interval")),
                      "wsffi_client_options_set_ping_interval_ms");
        return *this;
    }
    // 0 turns the idle timeout off (the client default).
    ClientOptions &idle_timeout(ms t) {
        detail::check(wsffi_client_options_set_idle_timeout_ms(p_, detail::to_ms(t, "idle_timeout")),
                      "wsffi_client_options_set_idle_timeout_ms");
        return *this;
    }
    ClientOptions &close_timeout(ms t) {
        detail::check(wsffi_client_options_set_close_timeout_ms(p_, detail::to_ms(t, "close_timeout")),
                      "wsffi_client_options_set_close_timeout_ms");
        return *this;
    }
    ClientOptions &water_marks(std::size_t high, std::size_t low) {
        detail::check(wsffi_client_options_set_water_marks(p_, high, low), "wsffi_client_options_set_water_marks");
        return *this;
    }
    ClientOptions &max_header_bytes(std::size_t bytes) {
        detail::check(wsffi_client_options_set_max_header_bytes(p_, bytes),
                      "wsffi_client_options_set_max_header_bytes");
        return *this;
    }
    // Offer permessage-deflate (the default) or not.
    ClientOptions &per_message_deflate(bool enabled) {
        detail::check(wsffi_client_options_set_per_message_deflate(p_, enabled),
                      "wsffi_client_options_set_per_message_deflate");
        return *this;
    }
    // Offer permessage-deflate with these parameters.
    ClientOptions &deflate(const DeflateParams &params) {
        detail::check(wsffi_client_options_set_deflate_params(p_, &params.native()),
                      "wsffi_client_options_set_deflate_params");
        return *this;
    }
    // Trust only the given CAs (files or directories of PEM files) for wss://.
    ClientOptions &tls_ca_file(const std::string &path) {
        detail::ErrorOut err;
        err.check(wsffi_client_options_set_tls_ca_file(p_, path.c_str(), err.out()),
                  "wsffi_client_options_set_tls_ca_file");
        return *this;
    }
    ClientOptions &tls_ca_dir(const std::string &path) {
        detail::ErrorOut err;
        err.check(wsffi_client_options_set_tls_ca_dir(p_, path.c_str(), err.out()),
                  "wsffi_client_options_set_tls_ca_dir");
        return *this;
    }
    // Mutual TLS: a PEM chain (leaf first) and its key.
    ClientOptions &tls_client_cert(const std::string &cert_path, const std::string &key_path) {
        detail::ErrorOut err;
        err.check(wsffi_client_options_set_tls_client_cert(p_, cert_path.c_str(), key_path.c_str(), err.out()),
                  "wsffi_client_options_set_tls_client_cert");
        return *this;
    }
    // SNI and verification name instead of the URL's host; nullopt restores the URL host.
    ClientOptions &tls_server_name(const std::optional<std::string> &name) {
        detail::check(wsffi_client_options_set_tls_server_name(p_, name ? name->c_str() : nullptr),
                      "wsffi_client_options_set_tls_server_name");
        return *this;
    }
    // ALPN protocols to offer, in order of preference (default "http/1.1"; empty: none).
    ClientOptions &tls_alpn(const std::vector<std::string> &protocols) {
        std::vector<const char *> ptrs;
        for (const auto &p : protocols) ptrs.push_back(p.c_str());
        detail::ErrorOut err;
        err.check(wsffi_client_options_set_tls_alpn(p_, ptrs.data(), ptrs.size(), err.out()),
                  "wsffi_client_options_set_tls_alpn");
        return *this;
    }
    // Follow 3xx answers to the upgrade (default off), at most `max` of them (default 10).
    ClientOptions &follow_redirects(bool follow) {
        detail::check(wsffi_client_options_set_follow_redirects(p_, follow), "wsffi_client_options_set_follow_redirects");
        return *this;
    }
    ClientOptions &max_redirects(uint32_t max) {
        detail::check(wsffi_client_options_set_max_redirects(p_, max), "wsffi_client_options_set_max_redirects");
        return *this;
    }
    // Reconnect automatically (default off): waits of initial * factor^(n-1), at most `max`,
    // with equal jitter; `max_attempts` 0 for no limit. See wsffi_client_options_set_reconnect
    // for which ends are retried; an `initial` of 0 turns it off.
    ClientOptions &reconnect(std::chrono::milliseconds initial, double factor, std::chrono::milliseconds max,
                             uint32_t max_attempts = 0) {
        detail::check(wsffi_client_options_set_reconnect(p_, detail::to_ms(initial, "reconnect"), factor,
                                                         detail::to_ms(max, "reconnect"),
                                                         max_attempts),
                      "wsffi_client_options_set_reconnect");
        return *this;
    }
    // A proxy ("http://user:pass@host:port", "socks5h://host:1080"); "" for none (and no
    // proxy from the environment either).
    ClientOptions &proxy(const std::string &url) {
        detail::check(wsffi_client_options_set_proxy(p_, url.c_str()), "wsffi_client_options_set_proxy");
        return *this;
    }
    // Take the proxy from https_proxy / http_proxy / all_proxy / no_proxy (default off).
    ClientOptions &proxy_from_env(bool enabled) {
        detail::check(wsffi_client_options_set_proxy_from_env(p_, enabled), "wsffi_client_options_set_proxy_from_env");
        return *this;
    }
    // FOR TESTS ONLY: accept any server certificate.
    ClientOptions &tls_insecure(bool insecure) {
        detail::check(wsffi_client_options_set_tls_insecure(p_, insecure), "wsffi_client_options_set_tls_insecure");
        return *this;
    }
};

// What a server does with a client whose output passed the high-water mark (see
// wsffi_server_options_set_backpressure_policy).
enum class BackpressurePolicy : uint32_t {
    Refuse = WSFFI_BACKPRESSURE_REFUSE,
    Drop = WSFFI_BACKPRESSURE_DROP,
    Close1008 = WSFFI_BACKPRESSURE_CLOSE_1008,
    Close1013 = WSFFI_BACKPRESSURE_CLOSE_1013,
};

// Server options (wsffi_server_options). Defaults: client tracking on, no limit, any Origin,
// ping after 60 s, idle timeout 120 s, back-pressure policy Refuse, deflate declined.
class ServerOptions
    : public detail::OptionsBase<wsffi_server_options, wsffi_server_options_new, wsffi_server_options_free> {
public:
    using ms = std::chrono::milliseconds;
    ServerOptions &client_tracking(bool enabled) {
        detail::check(wsffi_server_options_set_client_tracking(p_, enabled),
                      "wsffi_server_options_set_client_tracking");
        return *this;
    }
    // 0: no limit.
    ServerOptions &max_connections(std::size_t n) {
        detail::check(wsffi_server_options_set_max_connections(p_, n), "wsffi_server_options_set_max_connections");
        return *this;
    }
    // Most topics one connection may subscribe to (default 10000).
    ServerOptions &max_subscriptions(std::size_t n) {
        detail::check(wsffi_server_options_set_max_subscriptions(p_, n), "wsffi_server_options_set_max_subscriptions");
        return *this;
    }
    // Accept only these Origins (call once per origin); none added: any Origin.
    ServerOptions &allowed_origin(const std::string &origin) {
        detail::check(wsffi_server_options_add_allowed_origin(p_, origin.c_str()),
                      "wsffi_server_options_add_allowed_origin");
        return *this;
    }
    ServerOptions &max_payload(std::size_t bytes) {
        detail::check(wsffi_server_options_set_max_payload(p_, bytes), "wsffi_server_options_set_max_payload");
        return *this;
    }
    // As ClientOptions::stream_messages, for the server's connections.
    ServerOptions &stream_messages(bool on = true) {
        detail::check(wsffi_server_options_set_stream_messages(p_, on), "wsffi_server_options_set_stream_messages");
        return *this;
    }
    ServerOptions &max_fragments(std::size_t n) {
        detail::check(wsffi_server_options_set_max_fragments(p_, n), "wsffi_server_options_set_max_fragments");
        return *this;
    }
    ServerOptions &ping_interval(ms t) {
        detail::check(wsffi_server_options_set_ping_interval_ms(p_, detail::to_ms(t, "ping_interval")),
                      "wsffi_server_options_set_ping_interval_ms");
        return *this;
    }
    ServerOptions &idle_timeout(ms t) {
        detail::check(wsffi_server_options_set_idle_timeout_ms(p_, detail::to_ms(t, "idle_timeout")),
                      "wsffi_server_options_set_idle_timeout_ms");
        return *this;
    }
    ServerOptions &close_timeout(ms t) {
        detail::check(wsffi_server_options_set_close_timeout_ms(p_, detail::to_ms(t, "close_timeout")),
                      "wsffi_server_options_set_close_timeout_ms");
        return *this;
    }
    ServerOptions &water_marks(std::size_t high, std::size_t low) {
        detail::check(wsffi_server_options_set_water_marks(p_, high, low), "wsffi_server_options_set_water_marks");
        return *this;
    }
    // `grace` is how long a client may stay above the mark under Close1008/Close1013.
    ServerOptions &backpressure_policy(BackpressurePolicy policy, ms grace = ms{0}) {
        detail::check(wsffi_server_options_set_backpressure_policy(p_, static_cast<uint32_t>(policy),
                                                                   detail::to_ms(grace, "grace")),
                      "wsffi_server_options_set_backpressure_policy");
        return *this;
    }
    ServerOptions &per_message_deflate(bool enabled) {
        detail::check(wsffi_server_options_set_per_message_deflate(p_, enabled),
                      "wsffi_server_options_set_per_message_deflate");
        return *this;
    }
    ServerOptions &deflate(const DeflateParams &params) {
        detail::check(wsffi_server_options_set_deflate_params(p_, &params.native()),
                      "wsffi_server_options_set_deflate_params");
        return *this;
    }
};

// Listener options (wsffi_listener_options), TLS included. Defaults: backlog 1024, head
// limit 16 KiB, handshake timeout 10 s, no SO_REUSEPORT, no TLS.
class ListenerOptions
    : public detail::OptionsBase<wsffi_listener_options, wsffi_listener_options_new, wsffi_listener_options_free> {
public:
    using ms = std::chrono::milliseconds;
    ListenerOptions &backlog(int32_t n) {
        detail::check(wsffi_listener_options_set_backlog(p_, n), "wsffi_listener_options_set_backlog");
        return *this;
    }
    ListenerOptions &max_header_bytes(std::size_t bytes) {
        detail::check(wsffi_listener_options_set_max_header_bytes(p_, bytes),
                      "wsffi_listener_options_set_max_header_bytes");
        return *this;
    }
    ListenerOptions &handshake_timeout(ms t) {
        detail::check(wsffi_listener_options_set_handshake_timeout_ms(p_, detail::to_ms(t, "handshake_timeout")),
                      "wsffi_listener_options_set_handshake_timeout_ms");
        return *this;
    }
    ListenerOptions &reuse_port(bool enabled) {
        detail::check(wsffi_listener_options_set_reuse_port(p_, enabled), "wsffi_listener_options_set_reuse_port");
        return *this;
    }
    // Serve TLS: PEM chain (leaf first) and key files, PEM text or DER bytes in memory.
    ListenerOptions &tls_cert_files(const std::string &chain_path, const std::string &key_path) {
        detail::ErrorOut err;
        err.check(wsffi_listener_options_set_tls_cert_files(p_, chain_path.c_str(), key_path.c_str(), err.out()),
                  "wsffi_listener_options_set_tls_cert_files");
        return *this;
    }
    ListenerOptions &tls_cert_pem(ByteView chain, ByteView key) {
        detail::ErrorOut err;
        err.check(wsffi_listener_options_set_tls_cert_pem(p_, chain.data(), chain.size(), key.data(), key.size(),
                                                          err.out()),
                  "wsffi_listener_options_set_tls_cert_pem");
        return *this;
    }
    ListenerOptions &tls_cert_der(ByteView cert, ByteView key) {
        detail::ErrorOut err;
        err.check(
            wsffi_listener_options_set_tls_cert_der(p_, cert.data(), cert.size(), key.data(), key.size(), err.out()),
            "wsffi_listener_options_set_tls_cert_der");
        return *this;
    }
    // A certificate for clients that ask for `server_name` by SNI ("*.example.com" matches
    // one label); the tls_cert_* one serves the rest.
    ListenerOptions &tls_sni_cert_files(const std::string &server_name, const std::string &chain_path,
                                        const std::string &key_path) {
        detail::ErrorOut err;
        err.check(wsffi_listener_options_add_tls_sni_cert_files(p_, server_name.c_str(), chain_path.c_str(),
                                                                key_path.c_str(), err.out()),
                  "wsffi_listener_options_add_tls_sni_cert_files");
        return *this;
    }
    ListenerOptions &tls_sni_cert_pem(const std::string &server_name, ByteView chain, ByteView key) {
        detail::ErrorOut err;
        err.check(wsffi_listener_options_add_tls_sni_cert_pem(p_, server_name.c_str(), chain.data(), chain.size(),
                                                              key.data(), key.size(), err.out()),
                  "wsffi_listener_options_add_tls_sni_cert_pem");
        return *this;
    }
    ListenerOptions &tls_sni_cert_der(const std::string &server_name, ByteView cert, ByteView key) {
        detail::ErrorOut err;
        err.check(wsffi_listener_options_add_tls_sni_cert_der(p_, server_name.c_str(), cert.data(), cert.size(),
                                                              key.data(), key.size(), err.out()),
                  "wsffi_listener_options_add_tls_sni_cert_der");
        return *this;
    }
    // ALPN protocols accepted, in order of preference (default "http/1.1"; empty: none).
    ListenerOptions &tls_alpn(const std::vector<std::string> &protocols) {
        std::vector<const char *> ptrs;
        for (const auto &p : protocols) ptrs.push_back(p.c_str());
        detail::ErrorOut err;
        err.check(wsffi_listener_options_set_tls_alpn(p_, ptrs.data(), ptrs.size(), err.out()),
                  "wsffi_listener_options_set_tls_alpn");
        return *this;
    }
    // Mutual TLS: verify client certificates against these CAs; `required` refuses clients
    // without one.
    ListenerOptions &tls_client_ca_file(const std::string &path, bool required) {
        detail::ErrorOut err;
        err.check(wsffi_listener_options_set_tls_client_ca_file(p_, path.c_str(), required, err.out()),
                  "wsffi_listener_options_set_tls_client_ca_file");
        return *this;
    }
};

// Reactor options (wsffi_reactor_options), dispatch mode included.
class ReactorOptions
    : public detail::OptionsBase<wsffi_reactor_options, wsffi_reactor_options_new, wsffi_reactor_options_free> {
public:
    using ms = std::chrono::milliseconds;
    ReactorOptions &max_queued_commands(std::size_t n) {
        detail::check(wsffi_reactor_options_set_max_queued_commands(p_, n),
                      "wsffi_reactor_options_set_max_queued_commands");
        return *this;
    }
    ReactorOptions &shutdown_grace(ms t) {
        detail::check(wsffi_reactor_options_set_shutdown_grace_ms(p_, detail::to_ms(t, "shutdown_grace")),
                      "wsffi_reactor_options_set_shutdown_grace_ms");
        return *this;
    }
    // Dispatch mode: callbacks wait for Reactor::dispatch on the application's thread.
    ReactorOptions &dispatch(bool enabled) {
        detail::check(wsffi_reactor_options_set_dispatch(p_, enabled), "wsffi_reactor_options_set_dispatch");
        return *this;
    }
    // Dispatch mode with a wake function, called on the reactor thread when events start
    // waiting: it must be quick, must not block and may call nothing of wsffi but
    // Reactor::fd. The library destroys the function once nothing can call it; an empty
    // function turns waking off again.
    ReactorOptions &wake(std::function<void()> fn) {
        if (!fn) {
            detail::check(wsffi_reactor_options_set_wake(p_, nullptr, nullptr, nullptr),
                          "wsffi_reactor_options_set_wake");
            return *this;
        }
        auto *state = new std::function<void()>(std::move(fn));
        wsffi_status s = wsffi_reactor_options_set_wake(
            p_, [](void *user) { detail::guarded("wake", [&] { (*static_cast<std::function<void()> *>(user))(); }); },
            state, [](void *user) { delete static_cast<std::function<void()> *>(user); });
        if (s != WSFFI_STATUS_OK) {
            delete state;  // only a NULL options object fails, and then destroy is not called
            detail::throw_status(s, "wsffi_reactor_options_set_wake");
        }
        return *this;
    }
};

// ---- reactor ----------------------------------------------------------------------------------

namespace detail {
// Shared by a Reactor and the Listeners made on it: handler objects the library may still
// call without telling us when it stops (HTTP handlers) wait here until the reactor is freed.
struct ReactorCore {
    std::mutex mutex;
    bool freed = false;
    std::vector<std::shared_ptr<void>> retired;

    // Keeps `p` until the reactor is freed (at once when it already is).
    void retire(std::shared_ptr<void> p) {
        std::unique_lock<std::mutex> lock(mutex);
        if (!freed) {
            retired.push_back(std::move(p));
            return;
        }
        lock.unlock();
        p.reset();
    }
};
}  // namespace detail

// A reactor: one thread that owns the sockets and runs the callbacks (wsffi_reactor_new).
// The destructor frees it: every connection is closed (1001, up to the shutdown grace),
// every remaining handler runs, the thread is joined; after it no handler runs again.
// Handles still held (Conn, Listener, Server) stay safe: their calls then throw.
class Reactor {
public:
    Reactor() : Reactor(nullptr) {}
    explicit Reactor(const ReactorOptions &options) : Reactor(options.native()) {}
    Reactor(const Reactor &) = delete;
    Reactor &operator=(const Reactor &) = delete;
    Reactor(Reactor &&o) noexcept : reactor_(std::exchange(o.reactor_, nullptr)), core_(std::move(o.core_)) {}
    Reactor &operator=(Reactor &&o) noexcept {
        if (this != &o) {
            free_noexcept();
            reactor_ = std::exchange(o.reactor_, nullptr);
            core_ = std::move(o.core_);
        }
        return *this;
    }
    // Frees the reactor. From one of its own callbacks on the reactor thread the library
    // refuses (CalledFromCallback): that is reported and the reactor is left running.
    ~Reactor() { free_noexcept(); }

    // Frees the reactor now (see the destructor); throws CalledFromCallback from one of
    // its callbacks on the reactor thread.
    void close() {
        if (reactor_ == nullptr) return;
        wsffi_status s = wsffi_reactor_free(reactor_);
        if (s != WSFFI_STATUS_OK) detail::throw_status(s, "wsffi_reactor_free");
        reactor_ = nullptr;
        after_free();
    }

    // Dispatch mode: the descriptor readable while events wait (-1 otherwise).
    int fd() const noexcept { return wsffi_reactor_fd(reactor_); }

    // Counters of every connection and server of the reactor (struct wsffi_reactor_stats),
    // read without waiting for the reactor.
    wsffi_reactor_stats stats() const {
        wsffi_reactor_stats s{};
        s.size = sizeof s;
        detail::check(wsffi_reactor_get_stats(reactor_, &s), "wsffi_reactor_get_stats");
        return s;
    }
    // The reactor's and its servers' counters in the Prometheus text format.
    std::string prometheus_text() const {
        std::string text(8192, '\0');
        for (;;) {
            std::size_t len = 0;
            wsffi_status s = wsffi_reactor_stats_prometheus(reactor_, &text[0], text.size(), &len);
            if (s == WSFFI_STATUS_OK) {
                text.resize(len);
                return text;
            }
            if (s != WSFFI_STATUS_ERR_TOO_BIG) detail::throw_status(s, "wsffi_reactor_stats_prometheus");
            // The counters move between calls: leave room for them to grow.
            text.assign(len + 1024, '\0');
        }
    }
    // Dispatch mode: runs up to `max` waiting callbacks on this thread; returns how many ran.
    std::size_t dispatch(std::size_t max = 64) {
        std::size_t ran = 0;
        detail::check(wsffi_reactor_dispatch(reactor_, max, &ran), "wsffi_reactor_dispatch");
        return ran;
    }

    // Runs `fn(timer_id)` after `delay`, then every `repeat` unless it is zero, where the
    // reactor's callbacks run; returns the id for cancel_timer. An exception from `fn` is
    // reported (set_exception_reporter) and the timer goes on.
    uint64_t add_timer(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
                       std::function<void(uint64_t)> fn) {
        if (delay.count() < 0 || repeat.count() < 0) throw Error(Status::InvalidParameter, "negative timer duration");
        auto *owned = new std::function<void(uint64_t)>(std::move(fn));
        uint64_t id = 0;
        wsffi_status s = wsffi_reactor_add_timer(
            reactor_, static_cast<uint64_t>(delay.count()), static_cast<uint64_t>(repeat.count()),
            [](uint64_t timer, void *user) {
                detail::guarded("timer", [&] { (*static_cast<std::function<void(uint64_t)> *>(user))(timer); });
            },
            owned, [](void *user) { delete static_cast<std::function<void(uint64_t)> *>(user); }, &id);
        if (s != WSFFI_STATUS_OK) {
            delete owned;  // not taken: the library did not call destroy
            detail::throw_status(s, "wsffi_reactor_add_timer");
        }
        return id;
    }
    // Cancels a timer; false when it already ran its last time or was cancelled.
    bool cancel_timer(uint64_t id) {
        wsffi_status s = wsffi_reactor_cancel_timer(reactor_, id);
        if (s == WSFFI_STATUS_ERR_ALREADY_DONE) return false;
        detail::check(s, "wsffi_reactor_cancel_timer");
        return true;
    }

    wsffi_reactor *native() const noexcept { return reactor_; }
    const std::shared_ptr<detail::ReactorCore> &core() const noexcept { return core_; }

private:
    explicit Reactor(const wsffi_reactor_options *options) : core_(std::make_shared<detail::ReactorCore>()) {
        detail::ErrorOut err;
        err.check(wsffi_reactor_new(options, &reactor_, err.out()), "wsffi_reactor_new");
    }
    void free_noexcept() noexcept {
        if (reactor_ == nullptr) return;
        wsffi_status s = wsffi_reactor_free(reactor_);
        if (s != WSFFI_STATUS_OK) {
            detail::report("~Reactor", std::make_exception_ptr(Error(static_cast<Status>(s),
                                                                     std::string("wsffi_reactor_free: ") +
                                                                         wsffi_status_str(s))));
            return;
        }
        reactor_ = nullptr;
        after_free();
    }
    void after_free() noexcept {
        if (!core_) return;
        std::vector<std::shared_ptr<void>> retired;
        {
            std::lock_guard<std::mutex> lock(core_->mutex);
            core_->freed = true;
            retired.swap(core_->retired);
        }
    }

    wsffi_reactor *reactor_ = nullptr;
    std::shared_ptr<detail::ReactorCore> core_;
};

// ---- client -----------------------------------------------------------------------------------

// Opens a client connection (ws://, wss://, ws+unix://). The outcome arrives as on_open, or
// on_error then on_close. Synchronous failures (bad URL, TLS settings, reactor shut down)
// throw; the handlers are destroyed then.
inline Conn connect(Reactor &reactor, const std::string &url, const ClientOptions &options,
                    ConnHandlers handlers = {});
inline Conn connect(Reactor &reactor, const std::string &url, ConnHandlers handlers = {});

namespace detail {
inline Conn connect(wsffi_reactor *reactor, const std::string &url, const wsffi_client_options *options,
                    ConnHandlers handlers) {
    auto state = std::make_unique<ConnState>(ConnState{std::move(handlers)});
    wsffi_conn_callbacks cb = state->table();
    wsffi_conn *conn = nullptr;
    ErrorOut err;
    // The library owns the state from here (destroyed also when the call fails).
    wsffi_status s = wsffi_connect(reactor, url.c_str(), options, &cb, state.release(), &ConnState::destroy, &conn,
                                   err.out());
    err.check(s, "wsffi_connect");
    return Conn::adopt(conn);
}
}  // namespace detail

inline Conn connect(Reactor &reactor, const std::string &url, const ClientOptions &options, ConnHandlers handlers) {
    return detail::connect(reactor.native(), url, options.native(), std::move(handlers));
}
inline Conn connect(Reactor &reactor, const std::string &url, ConnHandlers handlers) {
    return detail::connect(reactor.native(), url, nullptr, std::move(handlers));
}

// ---- handshakes -------------------------------------------------------------------------------

enum class Verdict : uint32_t {
    Accept = WSFFI_VERDICT_ACCEPT,
    Reject = WSFFI_VERDICT_REJECT,  // with the status set_reject chose (default 401)
    Defer = WSFFI_VERDICT_DEFER,    // after Handshake::defer(); decided later, from any thread
};

class DeferredHandshake;

namespace detail {
// The verify_client call running on this thread. A deferred handshake decided while its own
// verify_client still runs on this thread turns into that call's verdict: the library loses
// a decision made there (it only looks for deferred handshakes after verify_client returns).
struct VerifyFrame {
    wsffi_handshake *hs;
    VerifyFrame *outer;
    bool decided = false;
    bool accept = false;

    static VerifyFrame *&current() noexcept {
        static thread_local VerifyFrame *frame = nullptr;
        return frame;
    }
    // The frame of `hs` when its verify_client runs on this thread.
    static VerifyFrame *of(wsffi_handshake *hs) noexcept {
        for (VerifyFrame *f = current(); f != nullptr; f = f->outer)
            if (f->hs == hs) return f;
        return nullptr;
    }
};
}  // namespace detail

// A pending upgrade, borrowed inside verify_client and the headers hook.
class Handshake {
public:
    Handshake(wsffi_handshake *hs, bool can_defer) noexcept : hs_(hs), can_defer_(can_defer) {}
    Handshake(const Handshake &) = delete;
    Handshake &operator=(const Handshake &) = delete;

    Request request() const noexcept { return Request(wsffi_handshake_request(hs_)); }
    // A header for the answer (the 101, or the refusal).
    void add_header(const std::string &name, const std::string &value) {
        detail::check(wsffi_handshake_add_header(hs_, name.c_str(), value.c_str()), "wsffi_handshake_add_header");
    }
    // The refusal a Reject verdict sends (400-599; empty reason: the standard phrase).
    void set_reject(uint16_t status, const std::string &reason = {}) {
        detail::check(wsffi_handshake_set_reject(hs_, status, reason.empty() ? nullptr : reason.c_str()),
                      "wsffi_handshake_set_reject");
    }
    // Inside verify_client only: takes the handshake to decide later (from any thread). Once
    // called, the verdict is Defer whatever the handler returns or throws.
    inline DeferredHandshake defer();
    bool deferred() const noexcept { return deferred_; }
    wsffi_handshake *native() const noexcept { return hs_; }

private:
    wsffi_handshake *hs_;
    bool can_defer_;
    bool deferred_ = false;
};

// A deferred handshake: accept() or reject() exactly once, from any thread (both consume it,
// also when they throw: Timeout when the client left or the handshake timed out meanwhile).
// Destroyed undecided, it rejects with 503. Move-only.
class DeferredHandshake {
public:
    DeferredHandshake() noexcept = default;
    explicit DeferredHandshake(wsffi_handshake *owned) noexcept : hs_(owned) {}
    DeferredHandshake(const DeferredHandshake &) = delete;
    DeferredHandshake &operator=(const DeferredHandshake &) = delete;
    DeferredHandshake(DeferredHandshake &&o) noexcept : hs_(std::exchange(o.hs_, nullptr)) {}
    DeferredHandshake &operator=(DeferredHandshake &&o) noexcept {
        if (this != &o) {
            drop();
            hs_ = std::exchange(o.hs_, nullptr);
        }
        return *this;
    }
    ~DeferredHandshake() { drop(); }

    // Valid until decided.
    Request request() const noexcept { return Request(wsffi_handshake_request(hs_)); }
    void add_header(const std::string &name, const std::string &value) {
        detail::check(wsffi_handshake_add_header(hs_, name.c_str(), value.c_str()), "wsffi_handshake_add_header");
    }
    void accept() {
        if (hs_ == nullptr) throw Error(Status::AlreadyDone, "DeferredHandshake::accept: already decided");
        if (detail::VerifyFrame *f = detail::VerifyFrame::of(hs_)) {
            hs_ = nullptr;
            f->decided = true;
            f->accept = true;
            return;
        }
        detail::check(wsffi_handshake_accept(std::exchange(hs_, nullptr)), "wsffi_handshake_accept");
    }
    void reject(uint16_t status, const std::string &reason = {}) {
        if (hs_ == nullptr) throw Error(Status::AlreadyDone, "DeferredHandshake::reject: already decided");
        const char *r = reason.empty() ? nullptr : reason.c_str();
        if (detail::VerifyFrame *f = detail::VerifyFrame::of(hs_)) {
            wsffi_handshake *hs = std::exchange(hs_, nullptr);
            f->decided = true;
            f->accept = false;
            detail::check(wsffi_handshake_set_reject(hs, status, r), "wsffi_handshake_set_reject");
            return;
        }
        detail::check(wsffi_handshake_reject(std::exchange(hs_, nullptr), status, r), "wsffi_handshake_reject");
    }
    // Still waiting for a decision.
    bool pending() const noexcept { return hs_ != nullptr; }
    explicit operator bool() const noexcept { return pending(); }

private:
    void drop() noexcept {
        if (hs_ == nullptr) return;
        try {
            reject(503);
        } catch (...) {
            // Timeout: the client left meanwhile; nothing to answer.
        }
    }
    wsffi_handshake *hs_ = nullptr;
};

inline DeferredHandshake Handshake::defer() {
    if (!can_defer_) throw Error(Status::InvalidParameter, "Handshake::defer: only inside verify_client");
    if (deferred_) throw Error(Status::AlreadyDone, "Handshake::defer: already deferred");
    deferred_ = true;
    return DeferredHandshake(hs_);
}

// ---- servers ----------------------------------------------------------------------------------

// A borrowed server (what on_connection receives; a Server is one too).
class ServerView {
public:
    ServerView() noexcept = default;
    explicit ServerView(wsffi_server *server) noexcept : server_(server) {}

    // Valid until the server is closed.
    std::string_view path() const noexcept { return wsffi_server_path(server_); }
    std::size_t client_count() const noexcept { return wsffi_server_client_count(server_); }
    // Handshakes accepted and refused by reason, traffic and close codes (struct
    // wsffi_server_stats), read without waiting for the reactor.
    wsffi_server_stats stats() const {
        wsffi_server_stats s{};
        s.size = sizeof s;
        detail::check(wsffi_server_get_stats(server_, &s), "wsffi_server_get_stats");
        return s;
    }
    // Calls `visit` for every open client, on this thread, from a snapshot. An exception
    // from `visit` is rethrown here once the visit is over (the remaining clients are skipped).
    void for_each_client(const std::function<void(ConnView)> &visit) const {
        struct Ctx {
            const std::function<void(ConnView)> *visit;
            std::exception_ptr error;
        } ctx{&visit, nullptr};
        wsffi_status s = wsffi_server_clients(
            server_,
            [](void *user, wsffi_conn *conn) {
                auto *c = static_cast<Ctx *>(user);
                if (c->error) return;
                try {
                    (*c->visit)(ConnView(conn));
                } catch (...) {
                    c->error = std::current_exception();
                }
            },
            &ctx);
        if (ctx.error) std::rethrow_exception(ctx.error);
        detail::check(s, "wsffi_server_clients");
    }
    // Counted references to every open client.
    std::vector<Conn> clients() const {
        std::vector<Conn> out;
        for_each_client([&](ConnView c) { out.push_back(c.retain()); });
        return out;
    }
    // Sends one message to every open client and returns how many took it (waits for the
    // reactor; clients above their high-water mark are skipped).
    std::size_t broadcast(MessageType type, ByteView data) const {
        std::size_t sent = 0;
        detail::check(wsffi_server_broadcast(server_, static_cast<uint32_t>(type), data.data(), data.size(), &sent),
                      "wsffi_server_broadcast");
        return sent;
    }
    std::size_t broadcast_text(std::string_view text) const { return broadcast(MessageType::Text, text); }
    std::size_t broadcast_binary(ByteView data) const { return broadcast(MessageType::Binary, data); }
    // Sends one message to the subscribers of `topic` but `except` (see ConnView::subscribe);
    // from a handler it is queued before this returns, from other threads soon after, in
    // the calling thread's order.
    void publish(const std::string &topic, MessageType type, ByteView data, ConnView except = {}) const {
        detail::check(wsffi_server_publish(server_, topic.c_str(), static_cast<uint32_t>(type), data.data(), data.size(),
                                           except.native()),
                      "wsffi_server_publish");
    }
    std::size_t subscriber_count(const std::string &topic) const noexcept {
        return wsffi_server_subscriber_count(server_, topic.c_str());
    }
    // As broadcast, without waiting for the count.
    void broadcast_async(MessageType type, ByteView data) const {
        detail::check(
            wsffi_server_broadcast(server_, static_cast<uint32_t>(type), data.data(), data.size(), nullptr),
            "wsffi_server_broadcast");
    }
    // Hands over an upgrade that the application's own HTTP server read: `fd` (owned by
    // wsffi from here, also on error) and the bytes read so far.
    void handle_upgrade(int fd, ByteView head) const {
        detail::check(wsffi_server_handle_upgrade(server_, fd, head.data(), head.size()),
                      "wsffi_server_handle_upgrade");
    }

    wsffi_server *native() const noexcept { return server_; }

protected:
    wsffi_server *server_ = nullptr;
};

// The handlers of a server; empty ones are not installed. See README.md for what an
// exception escaping each one does.
struct ServerHandlers {
    // Decide on an upgrade (absent: accept every client that passes the origin check).
    std::function<Verdict(Handshake &)> verify_client;
    // Pick a subprotocol from `offered`: an index, or nullopt for none (absent: the first).
    std::function<std::optional<std::size_t>(const Request &, const std::vector<std::string_view> &offered)>
        handle_protocols;
    // Add headers to the 101 (Handshake::add_header).
    std::function<void(Handshake &)> headers;
    // A new connection: install its handlers here (conn.set_handlers); on_open follows.
    std::function<void(ServerView, ConnView, const Request &)> on_connection;
    // A handshake failed (bad request, rejected, too many connections, timeout).
    std::function<void(Status, std::string_view message)> on_client_error;
    // The server itself failed.
    std::function<void(Status, std::string_view message)> on_error;
    // The server stopped; its handlers are destroyed after this.
    std::function<void()> on_close;
};

namespace detail {
struct ServerState {
    ServerHandlers h;

    static ServerState *of(void *user) noexcept { return static_cast<ServerState *>(user); }
    static void destroy(void *user) noexcept { delete of(user); }

    static wsffi_verdict verify_client(void *user, wsffi_handshake *hs) {
        Handshake handshake(hs, true);
        Verdict v = Verdict::Reject;
        VerifyFrame frame{hs, VerifyFrame::current()};
        VerifyFrame::current() = &frame;
        bool ok = guarded("verify_client", [&] { v = of(user)->h.verify_client(handshake); });
        VerifyFrame::current() = frame.outer;
        // Deferred and decided before returning (on this thread): that decision is the verdict.
        if (frame.decided) return frame.accept ? WSFFI_VERDICT_ACCEPT : WSFFI_VERDICT_REJECT;
        // Once deferred, the reference belongs to the DeferredHandshake (which another thread
        // may even have decided already): the verdict must be Defer.
        if (handshake.deferred()) return WSFFI_VERDICT_DEFER;
        if (!ok) {
            (void)wsffi_handshake_set_reject(hs, 500, nullptr);
            return WSFFI_VERDICT_REJECT;
        }
        if (v == Verdict::Defer) {
            report("verify_client",
                   std::make_exception_ptr(Error(Status::InvalidParameter,
                                                 "verify_client returned Defer without calling Handshake::defer()")));
            (void)wsffi_handshake_set_reject(hs, 500, nullptr);
            return WSFFI_VERDICT_REJECT;
        }
        return v == Verdict::Accept ? WSFFI_VERDICT_ACCEPT : WSFFI_VERDICT_REJECT;
    }
    static int handle_protocols(void *user, const wsffi_request *req, const char *const *offered, std::size_t count) {
        int chosen = -1;
        guarded("handle_protocols", [&] {
            std::vector<std::string_view> list(offered, offered + count);
            std::optional<std::size_t> i = of(user)->h.handle_protocols(Request(req), list);
            if (i && *i < count && *i <= static_cast<std::size_t>(std::numeric_limits<int>::max()))
                chosen = static_cast<int>(*i);
        });
        return chosen;
    }
    static void headers(void *user, wsffi_handshake *hs) {
        Handshake handshake(hs, false);
        guarded("headers", [&] { of(user)->h.headers(handshake); });
    }
    static void on_connection(void *user, wsffi_server *server, wsffi_conn *conn, const wsffi_request *req) {
        if (!guarded("on_connection",
                     [&] { of(user)->h.on_connection(ServerView(server), ConnView(conn), Request(req)); }))
            ConnState::fail(conn);
    }
    static void on_client_error(void *user, wsffi_server *, wsffi_status status, const char *message) {
        guarded("on_client_error", [&] { of(user)->h.on_client_error(static_cast<Status>(status), sv(message)); });
    }
    static void on_error(void *user, wsffi_server *, wsffi_status status, const char *message) {
        guarded("on_error", [&] { of(user)->h.on_error(static_cast<Status>(status), sv(message)); });
    }
    static void on_close(void *user, wsffi_server *) {
        guarded("on_close", [&] { of(user)->h.on_close(); });
    }

    wsffi_server_callbacks table() const {
        wsffi_server_callbacks cb;
        check(wsffi_server_callbacks_init(&cb, sizeof cb), "wsffi_server_callbacks_init");
        if (h.verify_client) cb.verify_client = &ServerState::verify_client;
        if (h.handle_protocols) cb.handle_protocols = &ServerState::handle_protocols;
        if (h.headers) cb.headers = &ServerState::headers;
        if (h.on_connection) cb.on_connection = &ServerState::on_connection;
        if (h.on_client_error) cb.on_client_error = &ServerState::on_client_error;
        if (h.on_error) cb.on_error = &ServerState::on_error;
        if (h.on_close) cb.on_close = &ServerState::on_close;
        return cb;
    }
};
}  // namespace detail

// The answer to a plain HTTP request, borrowed inside the HTTP handler (default 200, empty).
class HttpResponse {
public:
    explicit HttpResponse(wsffi_http_response *resp) noexcept : resp_(resp) {}
    // 200-599; empty reason: the standard phrase.
    HttpResponse &status(uint16_t code, const std::string &reason = {}) {
        detail::check(wsffi_http_response_set_status(resp_, code, reason.empty() ? nullptr : reason.c_str()),
                      "wsffi_http_response_set_status");
        return *this;
    }
    HttpResponse &header(const std::string &name, const std::string &value) {
        detail::check(wsffi_http_response_add_header(resp_, name.c_str(), value.c_str()),
                      "wsffi_http_response_add_header");
        return *this;
    }
    HttpResponse &body(ByteView data) {
        detail::check(wsffi_http_response_set_body(resp_, data.data(), data.size()), "wsffi_http_response_set_body");
        return *this;
    }
    wsffi_http_response *native() const noexcept { return resp_; }

private:
    wsffi_http_response *resp_;
};

// Answers plain (non-upgrade) requests on a listener. An exception makes the answer a 500.
using HttpHandler = std::function<void(const Request &, HttpResponse &)>;

// A listening socket (wsffi_listen). Closing it stops accepting; accepted connections go on
// and attached servers stay until they are closed. Move-only.
class Listener {
public:
    Listener(Reactor &reactor, const std::string &address, const ListenerOptions &options)
        : Listener(reactor, address, options.native()) {}
    Listener(Reactor &reactor, const std::string &address) : Listener(reactor, address, nullptr) {}
    // Serves an already bound and listening socket; `fd` belongs to the listener, also when
    // this throws.
    static Listener adopt_fd(Reactor &reactor, int fd, const ListenerOptions &options) {
        return adopt_fd(reactor, fd, options.native());
    }
    static Listener adopt_fd(Reactor &reactor, int fd) { return adopt_fd(reactor, fd, nullptr); }

    Listener(const Listener &) = delete;
    Listener &operator=(const Listener &) = delete;
    Listener(Listener &&o) noexcept
        : listener_(std::exchange(o.listener_, nullptr)), core_(std::move(o.core_)), http_(std::move(o.http_)) {}
    Listener &operator=(Listener &&o) noexcept {
        if (this != &o) {
            close();
            listener_ = std::exchange(o.listener_, nullptr);
            core_ = std::move(o.core_);
            http_ = std::move(o.http_);
        }
        return *this;
    }
    ~Listener() { close(); }

    // The bound port (0 for Unix sockets) and address ("127.0.0.1:43121", "unix:/path").
    uint16_t port() const noexcept { return wsffi_listener_port(listener_); }
    std::string_view address() const noexcept { return wsffi_listener_address(listener_); }

    // Handles plain HTTP requests (an empty function removes the handler: such requests get
    // 426 on a WebSocket path, 404 elsewhere). The handler is kept until the reactor is freed
    // (the C API gives no signal for when it stops being called).
    void set_http_handler(HttpHandler handler) {
        std::shared_ptr<HttpHandler> next = handler ? std::make_shared<HttpHandler>(std::move(handler)) : nullptr;
        wsffi_status s = next ? wsffi_listener_set_http_handler(listener_, &Listener::on_http, next.get())
                              : wsffi_listener_set_http_handler(listener_, nullptr, nullptr);
        detail::check(s, "wsffi_listener_set_http_handler");
        retire(std::exchange(http_, std::move(next)));
    }

    // Stops listening (idempotent).
    void close() noexcept {
        if (listener_ == nullptr) return;
        // Removing the handler first matters: connections accepted before the close still
        // see the listener's handler.
        if (http_) (void)wsffi_listener_set_http_handler(listener_, nullptr, nullptr);
        (void)wsffi_listener_close(std::exchange(listener_, nullptr));
        retire(std::move(http_));
    }

    // Replaces the TLS certificates (default and SNI ones in `options`) of a running
    // listener: new handshakes use them, open connections keep theirs. On error the old
    // ones stay.
    void set_tls_certificates(const ListenerOptions &options) {
        detail::ErrorOut err;
        err.check(wsffi_listener_set_tls_certificates(listener_, options.native(), err.out()),
                  "wsffi_listener_set_tls_certificates");
    }
    wsffi_listener *native() const noexcept { return listener_; }

private:
    Listener(Reactor &reactor, const std::string &address, const wsffi_listener_options *options)
        : core_(reactor.core()) {
        detail::ErrorOut err;
        err.check(wsffi_listen(reactor.native(), address.c_str(), options, &listener_, err.out()), "wsffi_listen");
    }
    Listener(Reactor &reactor, wsffi_listener *l) noexcept : listener_(l), core_(reactor.core()) {}
    static Listener adopt_fd(Reactor &reactor, int fd, const wsffi_listener_options *options) {
        wsffi_listener *l = nullptr;
        detail::ErrorOut err;
        err.check(wsffi_listener_adopt_fd(reactor.native(), fd, options, &l, err.out()), "wsffi_listener_adopt_fd");
        return Listener(reactor, l);
    }
    void retire(std::shared_ptr<HttpHandler> h) noexcept {
        if (!h) return;
        try {
            if (core_) core_->retire(std::move(h));
        } catch (...) {
            // Out of memory while keeping it: leak rather than free what may still be called.
            new std::shared_ptr<HttpHandler>(std::move(h));
        }
    }
    static void on_http(void *user, const wsffi_request *req, wsffi_http_response *resp) {
        HttpResponse response(resp);
        if (!detail::guarded("http_handler", [&] { (*static_cast<HttpHandler *>(user))(Request(req), response); })) {
            static const char body[] = "internal server error\n";
            (void)wsffi_http_response_set_status(resp, 500, nullptr);
            (void)wsffi_http_response_set_body(resp, reinterpret_cast<const uint8_t *>(body), sizeof body - 1);
        }
    }

    wsffi_listener *listener_ = nullptr;
    std::shared_ptr<detail::ReactorCore> core_;
    std::shared_ptr<HttpHandler> http_;
};

// A WebSocket server (wsffi_server_attach): at `path` of a listener, or standalone (fed by
// handle_upgrade). Destroying it closes it: no new clients, open ones get 1001, then
// on_close; the handlers live until then. Move-only.
class Server : public ServerView {
public:
    Server(Reactor &reactor, Listener &listener, const std::string &path, ServerHandlers handlers,
           const ServerOptions &options)
        : Server(reactor.native(), listener.native(), path, std::move(handlers), options.native()) {}
    Server(Reactor &reactor, Listener &listener, const std::string &path, ServerHandlers handlers)
        : Server(reactor.native(), listener.native(), path, std::move(handlers), nullptr) {}
    // A server without a listener, fed by handle_upgrade.
    static Server standalone(Reactor &reactor, const std::string &path, ServerHandlers handlers,
                             const ServerOptions &options) {
        return Server(reactor.native(), nullptr, path, std::move(handlers), options.native());
    }
    static Server standalone(Reactor &reactor, const std::string &path, ServerHandlers handlers) {
        return Server(reactor.native(), nullptr, path, std::move(handlers), nullptr);
    }

    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    Server(Server &&o) noexcept : ServerView(std::exchange(o.server_, nullptr)) {}
    Server &operator=(Server &&o) noexcept {
        if (this != &o) {
            close();
            server_ = std::exchange(o.server_, nullptr);
        }
        return *this;
    }
    ~Server() { close(); }

    // Stops the server and frees the handle (idempotent).
    void close() noexcept { (void)wsffi_server_close(std::exchange(server_, nullptr)); }

private:
    Server(wsffi_reactor *reactor, wsffi_listener *listener, const std::string &path, ServerHandlers handlers,
           const wsffi_server_options *options) {
        auto state = std::make_unique<detail::ServerState>(detail::ServerState{std::move(handlers)});
        wsffi_server_callbacks cb = state->table();
        detail::ErrorOut err;
        // The library owns the state from here (destroyed also when the call fails).
        wsffi_status s = wsffi_server_attach(reactor, listener, path.c_str(), options, &cb, state.release(),
                                             &detail::ServerState::destroy, &server_, err.out());
        err.check(s, "wsffi_server_attach");
    }
};

}  // namespace wsffi

#endif  // WSFFI_HPP
