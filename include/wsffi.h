/*
 * wsffi: WebSocket (RFC 6455) client and server, C API.
 *
 * Generated from the Rust sources by cbindgen; do not edit. Run `make header`.
 *
 * Threading: every function may be called from any thread, including from inside
 * callbacks. Callbacks of a reactor run on its reactor thread, one at a time. Data passed
 * into callbacks is borrowed for the duration of the call; data passed to the library is
 * copied before the call returns. See docs/THREADING.md.
 *
 * Defaults: max_payload 64 MiB; handshake timeout 10 s; close timeout 5 s; output
 * high-water mark 16 MiB (low-water 4 MiB); max handshake head 16 KiB. Servers: a ping
 * after 60 s without input and an idle timeout of 120 s, so silent clients are dropped and
 * healthy ones stay. Clients: no automatic ping and no idle timeout (as browsers).
 *
 * Structs that grow: `struct wsffi_conn_callbacks`, `struct wsffi_server_callbacks` and
 * `struct wsffi_deflate_params` begin with `size_t size`, which the caller sets to the
 * struct's `sizeof` (their `*_init(&s, sizeof s)` functions do that). Fields are only ever
 * appended, and the library reads `size` bytes: fields beyond a smaller size (a program
 * built against an older header) read as NULL or their default; a larger size (a newer
 * header) is accepted when every byte beyond the fields this library knows is zero, and
 * refused with WSFFI_STATUS_ERR_INVALID_PARAMETER otherwise; so is a size too small to
 * hold the `size` field (0: a struct that was only zeroed) or one that ends inside a field.
 * `struct wsffi_close_info` grows the same way in the other direction: the library fills it
 * and sets `size` to its own `sizeof`, and a program reads a field only when the field lies
 * within `size`. The stats snapshots `struct wsffi_conn_stats`, `struct wsffi_server_stats`
 * and `struct wsffi_reactor_stats` are allocated by the program with `size` set to their
 * `sizeof` and filled by the library: it writes the fields that lie within `size`, zeroes
 * bytes beyond the fields it knows, and lowers `size` to its own `sizeof` when that is
 * smaller (so a program built against a newer header sees which fields were filled); a
 * `size` too small for the `size` field or ending inside a field is refused as above.
 *
 * Status values are explicit and never renumbered; new ones may be added.
 *
 * SIGPIPE: the library never raises it. Its socket writes pass MSG_NOSIGNAL, so a peer that
 * went away shows as an error (`on_error`, then `on_close` with 1006), whatever the
 * application's SIGPIPE disposition; there is no need to ignore the signal for the library.
 *
 * No ABI stability before 1.0.
 */

#ifndef WSFFI_H
#define WSFFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#define WSFFI_VERSION_MAJOR 0
#define WSFFI_VERSION_MINOR 1
#define WSFFI_VERSION_PATCH 0
#define WSFFI_VERSION_NUMBER ((WSFFI_VERSION_MAJOR << 16) | (WSFFI_VERSION_MINOR << 8) | WSFFI_VERSION_PATCH)
#define WSFFI_VERSION "0.1.0"


/*
 Log level: nothing (the default).
 */
#define WSFFI_LOG_OFF 0

/*
 Log level: the library cannot do its job (a listener that cannot accept connections).
 */
#define WSFFI_LOG_ERROR 1

/*
 Log level: a connection failed (protocol errors with the close code sent, TLS failures,
 DNS, refused or reset connections, failed client handshakes).
 */
#define WSFFI_LOG_WARN 2

/*
 Log level: connections opening (with protocol and extensions), clients refused by a
 server and why, timeouts.
 */
#define WSFFI_LOG_INFO 3

/*
 Log level: every close (code, reason, who closed first, clean or not) and every HTTP
 answer a listener writes.
 */
#define WSFFI_LOG_DEBUG 4

/*
 Ready state: connecting or handshaking.
 */
#define WSFFI_CONNECTING 0

/*
 Ready state: open.
 */
#define WSFFI_OPEN 1

/*
 Ready state: close handshake under way.
 */
#define WSFFI_CLOSING 2

/*
 Ready state: closed.
 */
#define WSFFI_CLOSED 3

/*
 Message type: UTF-8 text.
 */
#define WSFFI_TEXT 1

/*
 Message type: binary.
 */
#define WSFFI_BINARY 2

/*
 Opcode: continuation frame.
 */
#define WSFFI_OPCODE_CONTINUE 0

/*
 Opcode: text frame.
 */
#define WSFFI_OPCODE_TEXT 1

/*
 Opcode: binary frame.
 */
#define WSFFI_OPCODE_BINARY 2

/*
 Opcode: close frame.
 */
#define WSFFI_OPCODE_CLOSE 8

/*
 Opcode: ping frame.
 */
#define WSFFI_OPCODE_PING 9

/*
 Opcode: pong frame.
 */
#define WSFFI_OPCODE_PONG 10

/*
 Close code: normal closure.
 */
#define WSFFI_CLOSE_NORMAL 1000

/*
 Close code: endpoint going away.
 */
#define WSFFI_CLOSE_GOING_AWAY 1001

/*
 Close code: protocol error.
 */
#define WSFFI_CLOSE_PROTOCOL_ERROR 1002

/*
 Close code: unsupported data type.
 */
#define WSFFI_CLOSE_UNSUPPORTED_DATA 1003

/*
 Close code (reported only): no status code in the close frame.
 */
#define WSFFI_CLOSE_NO_STATUS 1005

/*
 Close code (reported only): no close frame at all.
 */
#define WSFFI_CLOSE_ABNORMAL 1006

/*
 Close code: invalid payload data (bad UTF-8).
 */
#define WSFFI_CLOSE_INVALID_PAYLOAD 1007

/*
 Close code: policy violation.
 */
#define WSFFI_CLOSE_POLICY_VIOLATION 1008

/*
 Close code: message too big.
 */
#define WSFFI_CLOSE_MESSAGE_TOO_BIG 1009

/*
 Close code: a required extension is missing.
 */
#define WSFFI_CLOSE_MANDATORY_EXTENSION 1010

/*
 Close code: internal server error.
 */
#define WSFFI_CLOSE_INTERNAL_ERROR 1011

/*
 Close code: service restart.
 */
#define WSFFI_CLOSE_SERVICE_RESTART 1012

/*
 Close code: try again later.
 */
#define WSFFI_CLOSE_TRY_AGAIN_LATER 1013

/*
 Close code: bad gateway.
 */
#define WSFFI_CLOSE_BAD_GATEWAY 1014

/*
 Close code (reported only): TLS handshake failure.
 */
#define WSFFI_CLOSE_TLS_HANDSHAKE 1015

/*
 The longest topic name, in bytes (`wsffi_conn_subscribe`, `wsffi_server_publish`).
 */
#define WSFFI_MAX_TOPIC_BYTES 1024

/*
 Result of a wsffi call. 0 is success; the hundreds digit tells the group. Every value is
 fixed: none is ever renumbered or reused, new ones may be added.
 */
enum wsffi_status
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /*
   Success.
   */
  WSFFI_STATUS_OK = 0,
  /*
   A required pointer argument was NULL.
   */
  WSFFI_STATUS_ERR_NULL_PARAMETER = 100,
  /*
   An argument is out of range or malformed (see the function's documentation).
   */
  WSFFI_STATUS_ERR_INVALID_PARAMETER = 101,
  /*
   A text message or close reason is not valid UTF-8.
   */
  WSFFI_STATUS_ERR_INVALID_UTF8 = 102,
  /*
   A URL could not be parsed or uses an unsupported scheme.
   */
  WSFFI_STATUS_ERR_INVALID_URL = 103,
  /*
   A payload or a name is larger than allowed (control frames: 125 bytes, topic names
   `WSFFI_MAX_TOPIC_BYTES`), or a count reached its limit (subscriptions per connection).
   */
  WSFFI_STATUS_ERR_TOO_BIG = 104,
  /*
   The feature is not available.
   */
  WSFFI_STATUS_ERR_UNSUPPORTED = 105,
  /*
   The connection is still connecting.
   */
  WSFFI_STATUS_ERR_NOT_OPEN = 200,
  /*
   The connection (or server, listener, handshake) is closing or closed.
   */
  WSFFI_STATUS_ERR_CLOSED = 201,
  /*
   The output buffer is above its high-water mark; nothing was queued. Retry after `drain`.
   */
  WSFFI_STATUS_ERR_BACKPRESSURE = 202,
  /*
   A blocking function was called from a callback on the reactor thread, or
   `wsffi_reactor_dispatch` from a callback it is running.
   */
  WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK = 203,
  /*
   The reactor is shutting down or gone.
   */
  WSFFI_STATUS_ERR_SHUT_DOWN = 204,
  /*
   The operation was already done (a handshake decided twice).
   */
  WSFFI_STATUS_ERR_ALREADY_DONE = 205,
  /*
   Too many commands are queued for the reactor.
   */
  WSFFI_STATUS_ERR_QUEUE_FULL = 206,
  /*
   The connection was lost and waits to reconnect (reconnect on): nothing was queued.
   Send again after the next `on_open`.
   */
  WSFFI_STATUS_ERR_RECONNECTING = 207,
  /*
   The output buffer is above its high-water mark and the server's back-pressure
   policy is `WSFFI_BACKPRESSURE_DROP`: the message was dropped (not queued, not to be
   sent again).
   */
  WSFFI_STATUS_ERR_DROPPED = 208,
  /*
   The peer broke the WebSocket protocol.
   */
  WSFFI_STATUS_ERR_PROTOCOL = 300,
  /*
   The opening handshake failed (malformed or invalid answer or request).
   */
  WSFFI_STATUS_ERR_HANDSHAKE = 301,
  /*
   The server answered the upgrade with a non-101 status.
   */
  WSFFI_STATUS_ERR_HANDSHAKE_REJECTED = 302,
  /*
   A message exceeded max_payload.
   */
  WSFFI_STATUS_ERR_MESSAGE_TOO_BIG = 303,
  /*
   A socket operation failed.
   */
  WSFFI_STATUS_ERR_IO = 400,
  /*
   The host name could not be resolved.
   */
  WSFFI_STATUS_ERR_DNS = 401,
  /*
   The peer refused the connection.
   */
  WSFFI_STATUS_ERR_CONNECTION_REFUSED = 402,
  /*
   A timeout expired (connect, handshake, close, ping, idle).
   */
  WSFFI_STATUS_ERR_TIMEOUT = 403,
  /*
   The address is already in use.
   */
  WSFFI_STATUS_ERR_ADDRESS_IN_USE = 404,
  /*
   The peer went away without a close handshake.
   */
  WSFFI_STATUS_ERR_CONNECTION_RESET = 405,
  /*
   TLS failed.
   */
  WSFFI_STATUS_ERR_TLS = 500,
  /*
   A bug inside wsffi.
   */
  WSFFI_STATUS_ERR_INTERNAL = 900,
  /*
   A Rust panic was caught at the boundary.
   */
  WSFFI_STATUS_ERR_PANIC = 901,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum wsffi_status wsffi_status;
#else
typedef uint32_t wsffi_status;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/*
 Who started the close handshake (the `origin` of `struct wsffi_close_info`).
 */
enum wsffi_close_origin
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /*
   No close frame went either way: `wsffi_terminate`, a reset or EOF without a close
   frame, a failed connect or opening handshake, a ping or connect timeout, reactor
   shutdown of a connection that was not open. `code` is 1006 (WSFFI_CLOSE_ABNORMAL).
   */
  WSFFI_CLOSE_ORIGIN_NONE = 0,
  /*
   The peer's close frame arrived before we sent one; `code` and `reason` are the
   peer's.
   */
  WSFFI_CLOSE_ORIGIN_PEER = 1,
  /*
   We sent the first close frame: `wsffi_close`, a server close or reactor shutdown
   (1001), the idle timeout (1001), or the library failing the connection because the
   peer broke the protocol (1002), sent invalid UTF-8 (1007), exceeded max_payload or
   max_fragments (1009), or an internal error (1011). `code` and `reason` are ours.
   */
  WSFFI_CLOSE_ORIGIN_LOCAL = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum wsffi_close_origin wsffi_close_origin;
#else
typedef uint32_t wsffi_close_origin;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/*
 The C `wsffi_conn`: reference counted, usable from any thread.
 */
typedef struct wsffi_conn wsffi_conn;

/*
 The C `wsffi_handshake`: a server-side upgrade waiting for a decision.
 */
typedef struct wsffi_handshake wsffi_handshake;

/*
 The C `wsffi_http_response`: what a plain HTTP handler answers.
 */
typedef struct wsffi_http_response wsffi_http_response;

/*
 The C `wsffi_listener`.
 */
typedef struct wsffi_listener wsffi_listener;

/*
 The C `wsffi_request`: an HTTP upgrade (or plain) request as received: method, target,
 headers, peer address and TLS client subject.
 */
typedef struct wsffi_request wsffi_request;

/*
 The C `wsffi_response`: a server's answer to a client's upgrade (a refusal, or the 101
 kept for `wsffi_conn_handshake_response`).
 */
typedef struct wsffi_response wsffi_response;

/*
 The C `wsffi_server`.
 */
typedef struct wsffi_server wsffi_server;

/*
 Client connection options.
 */
typedef struct wsffi_client_options wsffi_client_options;

/*
 Error detail: a status plus a sentence. Free with `wsffi_error_free`.
 */
typedef struct wsffi_error wsffi_error;

/*
 Listener options.
 */
typedef struct wsffi_listener_options wsffi_listener_options;

/*
 A reactor: one thread that owns all sockets, timers and callbacks of its connections.
 */
typedef struct wsffi_reactor wsffi_reactor;

/*
 Reactor options. Not safe for concurrent mutation; the reactor copies them.
 */
typedef struct wsffi_reactor_options wsffi_reactor_options;

/*
 Server options.
 */
typedef struct wsffi_server_options wsffi_server_options;

/*
 The connection is open; messages may follow. With reconnect on, again after every
 successful reconnect (the getters then describe the new connection).
 */
typedef void (*wsffi_open_cb)(void *user, struct wsffi_conn *conn);

/*
 A complete message. `data` is borrowed until the callback returns (it points into the
 library's read buffer); text messages are valid UTF-8 and not NUL-terminated.
 */
typedef void (*wsffi_message_cb)(void *user, struct wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len);

/*
 How a connection ended, passed to `wsffi_close_cb`. Borrowed: the struct and every
 pointer in it are valid only until the callback returns (copy what you keep).

 The library fills it and sets `size` to the `sizeof` it was built with. Fields are only
 ever appended: a program built against a newer header reads a field only when
 `offsetof(struct wsffi_close_info, field) + sizeof field <= info->size`.

 Reasons are UTF-8, `*_len` bytes long (no NUL counted), and followed by a NUL byte, so a
 reason without embedded NULs can also be read as a C string. `reason` is never NULL
 (an empty reason is ""); `peer_reason` and `local_reason` are NULL exactly when that
 side sent no close frame.
 */
typedef struct wsffi_close_info {
  /*
   `sizeof(struct wsffi_close_info)` as the library declares it.
   */
  size_t size;
  /*
   The code that decided the close: that of the first close frame (the one `origin`
   names; 1005 WSFFI_CLOSE_NO_STATUS when it carried no code), or 1006
   (WSFFI_CLOSE_ABNORMAL) when `origin` is WSFFI_CLOSE_ORIGIN_NONE. 1006 never goes on
   the wire.
   */
  uint16_t code;
  /*
   The reason of that frame; "" for 1006 or a frame without one. Never NULL.
   */
  const char *reason;
  /*
   Bytes in `reason`.
   */
  size_t reason_len;
  /*
   The close handshake completed before the socket closed: the peer's close frame
   arrived and all of ours was written. A timeout, reset or EOF before that, a
   terminated connection and one failed without the peer's answer are not clean; a
   reset after both frames went over the wire is (and reports no error).
   */
  bool was_clean;
  /*
   Who sent the first close frame.
   */
  wsffi_close_origin origin;
  /*
   The code of the peer's close frame (1005 when it carried none); 0 when the peer
   sent no close frame.
   */
  uint16_t peer_code;
  /*
   The reason of the peer's close frame; NULL when the peer sent no close frame.
   */
  const char *peer_reason;
  /*
   Bytes in `peer_reason`; 0 when NULL.
   */
  size_t peer_reason_len;
  /*
   The code of the close frame we sent (our own close, or the echo of the peer's
   code; 1005 for an empty frame); 0 when we sent none. Sent means queued: when it
   could not be written before the connection ended, `was_clean` is false.
   */
  uint16_t local_code;
  /*
   The reason of our close frame ("" for an echo); NULL when we sent none.
   */
  const char *local_reason;
  /*
   Bytes in `local_reason`; 0 when NULL.
   */
  size_t local_reason_len;
} wsffi_close_info;

/*
 The connection ended; `info` (never NULL) says how: the code and reason that decided
 the close, whether the peer or we sent them, both sides' close frames when known, and
 whether the close was clean (see `struct wsffi_close_info`). `info` and its strings are
 borrowed until the callback returns. Exactly one per connection; nothing but `destroy`
 follows it. With reconnect on, one per conn handle: at the very end, not per lost
 connection (those are reported by `on_reconnect`).
 */
typedef void (*wsffi_close_cb)(void *user, struct wsffi_conn *conn, const struct wsffi_close_info *info);

/*
 Something failed; `message` is a borrowed NUL-terminated sentence. A `close` follows.
 */
typedef void (*wsffi_error_cb)(void *user, struct wsffi_conn *conn, wsffi_status status, const char *message);

/*
 A ping or pong payload (at most 125 bytes), borrowed. Pings are answered automatically.
 */
typedef void (*wsffi_control_cb)(void *user, struct wsffi_conn *conn, const uint8_t *data, size_t len);

/*
 The buffered amount fell to the low-water mark after having passed the high-water mark.
 */
typedef void (*wsffi_drain_cb)(void *user, struct wsffi_conn *conn);

/*
 The server answered the upgrade with a non-101 status. The response view is borrowed.
 */
typedef void (*wsffi_unexpected_response_cb)(void *user, struct wsffi_conn *conn, const struct wsffi_response *response);

/*
 With `wsffi_client_options_set_stream_messages` / `wsffi_server_options_set_stream_messages`
 on, the next part of a message as it arrived, instead of one `on_message` call per
 message. `data` (`len` bytes) is borrowed until the callback returns; for a compressed
 message it is inflated output (at most 32 KiB per part). `is_first` marks a message's
 first part, `is_last` its final one, which may be empty (`len` 0); an empty message is
 one empty part with both set. Parts of text messages are validated as they arrive and
 may end inside a UTF-8 character that the next part completes; invalid UTF-8 closes
 the connection with 1007 and the part holding it is not delivered. No part is
 delivered after `wsffi_close` or `wsffi_terminate` on the connection.
 */
typedef void (*wsffi_message_part_cb)(void *user, struct wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len, bool is_first, bool is_last);

/*
 Reconnect on (`wsffi_client_options_set_reconnect`): the connection or an attempt was
 lost and attempt number `attempt` (1 for the first after an open connection or the first
 dial) starts in `delay_ms`. `status` and `message` (borrowed, NUL-terminated) say why
 the last one ended: WSFFI_STATUS_ERR_CLOSED when the server closed it with a close
 frame, else the failure's status. `info` (borrowed, never NULL) is how the lost
 connection closed (1006 for an attempt that never opened). Until the next `on_open`
 the ready state is WSFFI_CONNECTING and sends return WSFFI_STATUS_ERR_RECONNECTING;
 `wsffi_close` or `wsffi_conn_stop_reconnect` from here ends the connection instead
 (`on_error`, then `on_close`).
 */
typedef void (*wsffi_reconnect_cb)(void *user, struct wsffi_conn *conn, uint32_t attempt, uint32_t delay_ms, wsffi_status status, const char *message, const struct wsffi_close_info *info);

/*
 Per-connection callbacks; NULL means "not interested". The library copies the table.
 Set `size` to `sizeof(struct wsffi_conn_callbacks)` and leave the callbacks you do not
 want NULL: `wsffi_conn_callbacks_init(&cb, sizeof cb)`, or in C99
 `struct wsffi_conn_callbacks cb = { .size = sizeof cb, .on_message = f };`. The size
 rule of the header's introduction applies: fields beyond a smaller `size` read as NULL.
 */
typedef struct wsffi_conn_callbacks {
  /*
   `sizeof(struct wsffi_conn_callbacks)` as the caller's header declares it.
   */
  size_t size;
  /*
   See `wsffi_open_cb`.
   */
  wsffi_open_cb on_open;
  /*
   See `wsffi_message_cb`.
   */
  wsffi_message_cb on_message;
  /*
   See `wsffi_close_cb`.
   */
  wsffi_close_cb on_close;
  /*
   See `wsffi_error_cb`.
   */
  wsffi_error_cb on_error;
  /*
   A ping arrived (the pong is already queued).
   */
  wsffi_control_cb on_ping;
  /*
   A pong arrived.
   */
  wsffi_control_cb on_pong;
  /*
   See `wsffi_drain_cb`.
   */
  wsffi_drain_cb on_drain;
  /*
   Client only: see `wsffi_unexpected_response_cb`.
   */
  wsffi_unexpected_response_cb on_unexpected_response;
  /*
   See `wsffi_message_part_cb`: called only on connections whose options turned
   message streaming on; on those `on_message` is never called.
   */
  wsffi_message_part_cb on_message_part;
  /*
   Client only: see `wsffi_reconnect_cb`. Appended last: a caller built against a header
   without it passes a smaller `size` and gets none.
   */
  wsffi_reconnect_cb on_reconnect;
} wsffi_conn_callbacks;

/*
 Runs once when user data can no longer be seen by any callback.
 */
typedef void (*wsffi_destroy_cb)(void *user);

/*
 permessage-deflate parameters. Fill one with `wsffi_deflate_params_init(&p, sizeof p)`
 first, then change the fields you care about, so fields added later keep their defaults.
 The size rule of the header's introduction applies: fields beyond a smaller `size` take
 their defaults.
 */
typedef struct wsffi_deflate_params {
  /*
   `sizeof(struct wsffi_deflate_params)` as the caller's header declares it (set by
   `wsffi_deflate_params_init`).
   */
  size_t size;
  /*
   Server: always reset the compressor after each message (clients are told so).
   Client: ask the server to. Default false.
   */
  bool server_no_context_takeover;
  /*
   Client: reset our compressor after each message (and say so in the offer).
   Server: require clients to. Default false.
   */
  bool client_no_context_takeover;
  /*
   Largest LZ77 window (log2 bytes, 8..=15) the server compresses with. Server: its
   limit. Client: requested from the server when below 15. Default 15.
   */
  uint8_t server_max_window_bits;
  /*
   Largest window (8..=15) the client compresses with. Client: offered. Server: imposed
   on clients that accept a limit (offers that cannot be limited are declined when this
   is below 15). Default 15.
   */
  uint8_t client_max_window_bits;
  /*
   Messages shorter than this many bytes are sent uncompressed. Default 64.
   */
  size_t threshold;
  /*
   zlib compression level 0..=9 (1 fastest, 9 smallest). Default 6.
   */
  uint32_t level;
  /*
   zlib memory level 1..=9: lower saves memory per connection, costs ratio. Default 8.
   */
  uint8_t mem_level;
} wsffi_deflate_params;

/*
 Dispatch mode: events wait for `wsffi_reactor_dispatch`. Called on the reactor thread;
 see `wsffi_reactor_options_set_wake`.
 */
typedef void (*wsffi_wake_cb)(void *user);

/*
 What `verify_client` returns: one of the `WSFFI_VERDICT_*` values. (A plain integer,
 so an out-of-range value from C is a rejection, not undefined behaviour.)
 */
typedef uint32_t wsffi_verdict;

/*
 Decide whether to accept an upgrade. The handshake is borrowed unless the callback
 returns `WSFFI_VERDICT_DEFER`, which hands the caller one reference that
 `wsffi_handshake_accept`/`wsffi_handshake_reject` consume. That reference exists from
 the moment of the call, so the callback may give the handshake to another thread that
 decides it before the callback returns DEFER; deciding it and returning anything else
 is a use after free.
 */
typedef wsffi_verdict (*wsffi_verify_client_cb)(void *user, struct wsffi_handshake *handshake);

/*
 Pick a subprotocol: return an index into `offered` (borrowed NUL-terminated strings), or -1
 for none. Without this callback the first offered protocol is chosen.
 */
typedef int (*wsffi_handle_protocols_cb)(void *user, const struct wsffi_request *request, const char *const *offered, size_t count);

/*
 Add response headers with `wsffi_handshake_add_header` before the 101 is sent.
 */
typedef void (*wsffi_headers_cb)(void *user, struct wsffi_handshake *handshake);

/*
 A new connection: install its callbacks with `wsffi_conn_set_callbacks` here. The conn is
 borrowed (valid until its close callback returns); the request is borrowed for this call.
 */
typedef void (*wsffi_connection_cb)(void *user, struct wsffi_server *server, struct wsffi_conn *conn, const struct wsffi_request *request);

/*
 A handshake failed (bad request, rejected origin, too many connections, timeout).
 */
typedef void (*wsffi_server_error_cb)(void *user, struct wsffi_server *server, wsffi_status status, const char *message);

/*
 The server stopped: it has no more clients and no callback of it follows but `destroy`.
 */
typedef void (*wsffi_server_close_cb)(void *user, struct wsffi_server *server);

/*
 Server callbacks; NULL means "not interested". The library copies the table. Set `size`
 to `sizeof(struct wsffi_server_callbacks)` and leave the callbacks you do not want NULL:
 `wsffi_server_callbacks_init(&cb, sizeof cb)`, or in C99
 `struct wsffi_server_callbacks cb = { .size = sizeof cb, .on_connection = f };`. The
 size rule of the header's introduction applies: fields beyond a smaller `size` read as
 NULL.
 */
typedef struct wsffi_server_callbacks {
  /*
   `sizeof(struct wsffi_server_callbacks)` as the caller's header declares it.
   */
  size_t size;
  /*
   See `wsffi_verify_client_cb`. NULL accepts every client that passes the origin check.
   */
  wsffi_verify_client_cb verify_client;
  /*
   See `wsffi_handle_protocols_cb`.
   */
  wsffi_handle_protocols_cb handle_protocols;
  /*
   See `wsffi_headers_cb`.
   */
  wsffi_headers_cb headers;
  /*
   See `wsffi_connection_cb`.
   */
  wsffi_connection_cb on_connection;
  /*
   See `wsffi_server_error_cb`: handshakes that failed.
   */
  wsffi_server_error_cb on_client_error;
  /*
   See `wsffi_server_error_cb`: the server itself failed.
   */
  wsffi_server_error_cb on_error;
  /*
   See `wsffi_server_close_cb`.
   */
  wsffi_server_close_cb on_close;
} wsffi_server_callbacks;

/*
 A log function: `level` is one of `WSFFI_LOG_ERROR` ... `WSFFI_LOG_DEBUG`, `message` a
 NUL-terminated line without a newline, owned by the library and valid until the
 function returns; `user` the pointer given to `wsffi_set_log_callback`.
 */
typedef void (*wsffi_log_cb)(uint32_t level, const char *message, void *user);

/*
 What a server does with a client whose output passed the high-water mark: one of the
 `WSFFI_BACKPRESSURE_*` values (a plain integer, so an unknown value is an error, not
 undefined behaviour).
 */
typedef uint32_t wsffi_backpressure_policy;

/*
 A plain (non-upgrade) HTTP request on a listener. Fill the borrowed response with the
 `wsffi_http_response_*` functions; it is sent when the callback returns, then the
 connection closes.
 */
typedef void (*wsffi_http_handler_cb)(void *user, const struct wsffi_request *request, struct wsffi_http_response *response);

/*
 Called once per client by `wsffi_server_clients`; the conn is borrowed for the call.
 */
typedef void (*wsffi_client_visit_cb)(void *user, struct wsffi_conn *conn);

/*
 One connection's counters, filled by `wsffi_conn_get_stats`. Set `size` to
 `sizeof(struct wsffi_conn_stats)` first; see the header's introduction for how the struct
 grows. Messages count whole (a fragmented one once); bytes are those of the WebSocket
 stream (the HTTP handshake and every frame, headers included; with TLS, before encryption
 and after decryption). Received messages and bytes count once the read that carried them
 is processed (just after their `on_message`); sent ones (sends, broadcasts, publishes)
 when the wake-up that queued them flushes its output.
 */
typedef struct wsffi_conn_stats {
  /*
   `sizeof(struct wsffi_conn_stats)` as the caller's header declares it; the library
   lowers it to its own `sizeof` when that is smaller.
   */
  size_t size;
  /*
   Messages received.
   */
  uint64_t messages_in;
  /*
   Messages sent (queued: `wsffi_send*`, final fragments, broadcasts, publishes).
   */
  uint64_t messages_out;
  /*
   Bytes read, in bytes.
   */
  uint64_t bytes_in;
  /*
   Bytes written, in bytes.
   */
  uint64_t bytes_out;
  /*
   Bytes accepted by sends and not yet written: `wsffi_buffered_amount`.
   */
  uint64_t buffered_bytes;
  /*
   Microseconds from the last ping (the automatic one of `ping_interval`, or
   `wsffi_ping`) to the pong that carried its payload; -1 until a pong answered one.
   */
  int64_t last_ping_rtt_us;
  /*
   Messages dropped for this connection because its output was above the high-water
   mark: sends under `WSFFI_BACKPRESSURE_DROP`, broadcasts and publishes that skipped it.
   */
  uint64_t messages_dropped;
} wsffi_conn_stats;

/*
 Close frames by code, in the stats of servers and reactors. Its fields are fixed (it does
 not grow): codes without a field of their own, the application's 3000-4999 among them,
 count in `other`.
 */
typedef struct wsffi_close_counts {
  /*
   1000, normal closure.
   */
  uint64_t code_1000;
  /*
   1001, going away (a server or reactor closing, the idle timeout).
   */
  uint64_t code_1001;
  /*
   1002, protocol error.
   */
  uint64_t code_1002;
  /*
   1003, unsupported data.
   */
  uint64_t code_1003;
  /*
   1005: a close frame without a code.
   */
  uint64_t code_1005;
  /*
   1006: no close frame (received side only: the connection ended without the peer's).
   */
  uint64_t code_1006;
  /*
   1007, invalid payload (bad UTF-8).
   */
  uint64_t code_1007;
  /*
   1008, policy violation.
   */
  uint64_t code_1008;
  /*
   1009, message too big.
   */
  uint64_t code_1009;
  /*
   1010, mandatory extension.
   */
  uint64_t code_1010;
  /*
   1011, internal error.
   */
  uint64_t code_1011;
  /*
   Every other code.
   */
  uint64_t other;
} wsffi_close_counts;

/*
 A server's counters, filled by `wsffi_server_get_stats`. Set `size` to
 `sizeof(struct wsffi_server_stats)` first; see the header's introduction for how the
 struct grows. Traffic counts its connections from the 101 answer on (the request was read
 before the server was known) and includes connections that have closed. Refusals made
 before a request reached a server (unparsable requests, unknown paths, TLS failures, a
 request that did not arrive in time) count on the reactor only.
 */
typedef struct wsffi_server_stats {
  /*
   `sizeof(struct wsffi_server_stats)` as the caller's header declares it; the library
   lowers it to its own `sizeof` when that is smaller.
   */
  size_t size;
  /*
   Open connections (`wsffi_server_client_count`).
   */
  uint64_t connections_open;
  /*
   Handshakes answered with 101.
   */
  uint64_t handshakes_accepted;
  /*
   Refused: not a valid WebSocket upgrade (400, 426), a malformed extension offer.
   */
  uint64_t refused_bad_request;
  /*
   Refused: Origin not in the allowed origins (403).
   */
  uint64_t refused_origin;
  /*
   Refused: max_connections reached (503).
   */
  uint64_t refused_max_connections;
  /*
   Refused by `verify_client` (its status, redirects included).
   */
  uint64_t refused_verify_client;
  /*
   Refused: a deferred decision did not come within the handshake timeout.
   */
  uint64_t refused_timeout;
  /*
   Refused: the server closed while a decision was deferred (503).
   */
  uint64_t refused_server_closing;
  /*
   Messages received.
   */
  uint64_t messages_in;
  /*
   Messages sent.
   */
  uint64_t messages_out;
  /*
   Bytes read, in bytes.
   */
  uint64_t bytes_in;
  /*
   Bytes written, in bytes.
   */
  uint64_t bytes_out;
  /*
   Codes of the close frames its connections sent (our own closes and echoes).
   */
  struct wsffi_close_counts closes_sent;
  /*
   Codes of the close frames its connections received; `code_1006` counts those that
   ended without one. Every connection that opened counts once here when it ends.
   */
  struct wsffi_close_counts closes_received;
  /*
   Messages dropped for its connections above their high-water mark (see
   `wsffi_server_options_set_backpressure_policy`; broadcasts and publishes skip such
   connections under every policy).
   */
  uint64_t messages_dropped;
} wsffi_server_stats;

/*
 A reactor's counters, filled by `wsffi_reactor_get_stats`: every connection of the
 reactor, client and server side, and every server, also those already closed. Set
 `size` to `sizeof(struct wsffi_reactor_stats)` first; see the header's introduction for
 how the struct grows.
 */
typedef struct wsffi_reactor_stats {
  /*
   `sizeof(struct wsffi_reactor_stats)` as the caller's header declares it; the library
   lowers it to its own `sizeof` when that is smaller.
   */
  size_t size;
  /*
   Open connections (state OPEN or CLOSING), both sides.
   */
  uint64_t connections_open;
  /*
   Connections that reached OPEN, both sides.
   */
  uint64_t connections_opened;
  /*
   Server handshakes answered with 101.
   */
  uint64_t handshakes_accepted;
  /*
   Refused: unparsable HTTP, not a valid WebSocket upgrade, a malformed extension offer.
   */
  uint64_t refused_bad_request;
  /*
   Refused: no server at the request's path (404).
   */
  uint64_t refused_not_found;
  /*
   Refused: Origin not allowed (403).
   */
  uint64_t refused_origin;
  /*
   Refused: max_connections reached (503).
   */
  uint64_t refused_max_connections;
  /*
   Refused by `verify_client`.
   */
  uint64_t refused_verify_client;
  /*
   Refused: the handshake timeout expired (request incomplete, or decision deferred).
   */
  uint64_t refused_timeout;
  /*
   Refused: the server closed while a decision was deferred (503).
   */
  uint64_t refused_server_closing;
  /*
   Plain (non-upgrade) HTTP requests answered (by the listener's HTTP handler, or 404/426).
   */
  uint64_t http_requests;
  /*
   Accepted sockets whose TLS handshake failed.
   */
  uint64_t tls_failures_server;
  /*
   `wss://` client connections whose TLS handshake failed.
   */
  uint64_t tls_failures_client;
  /*
   Messages received.
   */
  uint64_t messages_in;
  /*
   Messages sent.
   */
  uint64_t messages_out;
  /*
   Bytes read, in bytes (handshakes included).
   */
  uint64_t bytes_in;
  /*
   Bytes written, in bytes (handshakes included).
   */
  uint64_t bytes_out;
  /*
   Codes of the close frames sent.
   */
  struct wsffi_close_counts closes_sent;
  /*
   Codes of the close frames received; `code_1006` counts connections that ended
   without one.
   */
  struct wsffi_close_counts closes_received;
} wsffi_reactor_stats;

/*
 A timer's callback: `timer` is the id `wsffi_reactor_add_timer` stored (so a callback can
 cancel itself), `user` the pointer given there.
 */
typedef void (*wsffi_timer_cb)(uint64_t timer, void *user);

/*
 Go on with the handshake.
 */
#define WSFFI_VERDICT_ACCEPT 0

/*
 Refuse: status and reason come from `wsffi_handshake_set_reject` (default 401).
 */
#define WSFFI_VERDICT_REJECT 1

/*
 Decide later, from any thread, with `wsffi_handshake_accept` or `wsffi_handshake_reject`.
 */
#define WSFFI_VERDICT_DEFER 2

/*
 Refuse sends with `WSFFI_STATUS_ERR_BACKPRESSURE` until the output drains (`on_drain`);
 `wsffi_server_broadcast` and `wsffi_server_publish` skip the client. The default.
 */
#define WSFFI_BACKPRESSURE_REFUSE 0

/*
 Drop messages for the client: `wsffi_send` (text, binary, ping, pong) returns
 `WSFFI_STATUS_ERR_DROPPED` and nothing is queued; broadcasts and publishes skip it.
 Fragments are still refused with `WSFFI_STATUS_ERR_BACKPRESSURE` (dropping part of a
 message would corrupt it).
 */
#define WSFFI_BACKPRESSURE_DROP 1

/*
 As REFUSE, and a client that stays above the high-water mark (does not drain to the
 low-water mark) for the grace time is closed with 1008 (policy violation).
 */
#define WSFFI_BACKPRESSURE_CLOSE_1008 2

/*
 As `WSFFI_BACKPRESSURE_CLOSE_1008`, with 1013 (try again later).
 */
#define WSFFI_BACKPRESSURE_CLOSE_1013 3





#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/*
 Opens a client connection to a `ws://` or `wss://` URL (or `ws+unix:///path:/resource`;
 `http://` and `https://` are taken as `ws://` and `wss://`, as browsers do).
 `wss://` verifies the server with the TLS settings of `options` (system CAs by default);
 TLS failures arrive as `on_error` with `WSFFI_STATUS_ERR_TLS`, then `on_close` (1006).

 `options` may be NULL for defaults; `callbacks` may be NULL (no events). `user` is passed
 to every callback; `destroy(user)` runs exactly once after the last of them, also when
 this call fails (then before it returns, on the calling thread). On success
 `*out_conn` receives a reference the caller owns (release it with
 `wsffi_conn_release`); the outcome arrives as `on_open`, or `on_error` then `on_close`
 (with `wsffi_client_options_set_reconnect`: `on_reconnect` per attempt in between, and
 `on_open` once per successful connection).
 Synchronous failures (bad URL, unusable TLS settings, reactor shut down) return a status and
 fill `*out_err` when given.
 NULL `reactor`, `url` or `out_conn`: WSFFI_STATUS_ERR_NULL_PARAMETER (`destroy` still
 runs). `out_err` may be NULL; a detail stored there is the caller's, to free with
 `wsffi_error_free`.
 A `callbacks` table whose `size` breaks the size rule:
 WSFFI_STATUS_ERR_INVALID_PARAMETER with the reason in `*out_err`.
 */
wsffi_status wsffi_connect(struct wsffi_reactor *reactor, const char *url, const struct wsffi_client_options *options, const struct wsffi_conn_callbacks *callbacks, void *user, wsffi_destroy_cb destroy, struct wsffi_conn **out_conn, struct wsffi_error **out_err);

/*
 Sends one message of `type` (`WSFFI_TEXT` or `WSFFI_BINARY`). The data is copied before
 the call returns; text must be valid UTF-8 (`WSFFI_STATUS_ERR_INVALID_UTF8` otherwise).
 `WSFFI_STATUS_ERR_BACKPRESSURE` means more than the high-water mark is already buffered and
 nothing was queued: wait for `on_drain`. `WSFFI_STATUS_ERR_DROPPED` instead on a server
 whose back-pressure policy is `WSFFI_BACKPRESSURE_DROP`: the message was thrown away (and
 counted), not to be sent again. `WSFFI_STATUS_ERR_NOT_OPEN` while connecting,
 `WSFFI_STATUS_ERR_RECONNECTING` while a lost connection waits to reconnect (nothing is
 queued for the next connection), `WSFFI_STATUS_ERR_CLOSED` once closing. On the reactor thread (inside callbacks) the frame goes
 straight into the output buffer, written once per wake-up.
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_send(struct wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len);

/*
 `wsffi_send(conn, WSFFI_TEXT, data, len)`. NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER;
 `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_send_text(struct wsffi_conn *conn, const char *data, size_t len);

/*
 `wsffi_send(conn, WSFFI_BINARY, data, len)`. NULL `conn`:
 WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_send_binary(struct wsffi_conn *conn, const uint8_t *data, size_t len);

/*
 Sends one fragment. The first fragment of a message sets its `type`; later ones are
 continuation frames (their `type` is ignored) until one with `is_final`. Whole messages
 sent meanwhile are refused with `WSFFI_STATUS_ERR_INVALID_PARAMETER`; control frames may
 interleave. Text fragments are not validated one by one (a code point may span two):
 the whole message must be valid UTF-8 or the peer closes with 1007.
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_send_fragment(struct wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len, bool is_final);

/*
 Sends a ping with up to 125 bytes of payload (`WSFFI_STATUS_ERR_TOO_BIG` beyond).
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_ping(struct wsffi_conn *conn, const uint8_t *data, size_t len);

/*
 Sends an unsolicited pong with up to 125 bytes (pings are answered automatically).
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_pong(struct wsffi_conn *conn, const uint8_t *data, size_t len);

/*
 Starts the close handshake: state CLOSING, then `on_close` when the peer answers (or
 after the close timeout, with 1006). `code` 0 sends no status code (then `reason` must be
 empty); otherwise 1000-1003, 1007-1014 or 3000-4999. `reason` is UTF-8, at most 123 bytes.
 On a connection still connecting it aborts: `on_error` then `on_close` with 1006; so it
 does while a lost connection waits to reconnect (WSFFI_STATUS_ERR_CLOSED, "closed while
 waiting to reconnect"). With reconnect on, a connection closed this way is not dialled
 again.
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `reason` may be NULL only when
 `reason_len` is 0.
 */
wsffi_status wsffi_close(struct wsffi_conn *conn, uint16_t code, const char *reason, size_t reason_len);

/*
 Drops the connection without a close handshake; `on_close` reports 1006 with
 WSFFI_CLOSE_ORIGIN_NONE unless a close frame was already sent or received, and no error.
 With reconnect on, no attempt follows (also when called during the wait).
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_terminate(struct wsffi_conn *conn);

/*
 Reconnect on: makes the current connection the last. During the wait before an attempt
 the connection ends now (`on_error` with the failure that started the wait, "reconnecting
 stopped: ...", then `on_close`); an open connection or an attempt under way goes on, and
 when it ends it ends as without reconnect. No effect on a conn without reconnect.
 WSFFI_STATUS_ERR_CLOSED once closed; NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_conn_stop_reconnect(struct wsffi_conn *conn);

/*
 Stops reading from the peer (flow control). Messages already read may still be
 delivered by the current callback batch; nothing more is read until `wsffi_conn_resume`.
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_conn_pause(struct wsffi_conn *conn);

/*
 Restarts reading after `wsffi_conn_pause`.
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_conn_resume(struct wsffi_conn *conn);

/*
 `WSFFI_CONNECTING`, `WSFFI_OPEN`, `WSFFI_CLOSING` or `WSFFI_CLOSED` (also for NULL).
 */
uint32_t wsffi_ready_state(const struct wsffi_conn *conn);

/*
 Bytes accepted by sends and not yet handed to the kernel (0 for NULL).
 */
size_t wsffi_buffered_amount(const struct wsffi_conn *conn);

/*
 The server's 101 answer to a client connection's upgrade (the `upgrade` event of Node's
 `ws`): read it with `wsffi_response_status`, `wsffi_response_header`,
 `wsffi_response_header_at` and the other `wsffi_response_*` getters (its body is empty).
 It belongs to the conn and is valid as long as `wsffi_protocol`'s string: while the
 caller holds a reference to the conn or, inside a callback, until the callback returns;
 also in dispatch mode. NULL for NULL, for a server-side connection, and before the
 connection opened (from `on_open` on, it is there).
 */
const struct wsffi_response *wsffi_conn_handshake_response(const struct wsffi_conn *conn);

/*
 The negotiated subprotocol, "" when none, before open or for NULL. The string belongs to
 the conn: valid while the caller holds a reference to it (or, inside a callback, until
 the callback returns); never NULL. With reconnect on, this and the other getters of the
 negotiated details describe the connection that opened last; strings returned for an
 earlier one stay valid as long as the conn.
 */
const char *wsffi_protocol(const struct wsffi_conn *conn);

/*
 The negotiated extensions ("permessage-deflate; ..."), "" when none, before open or for
 NULL. Owned by the conn and valid as long as `wsffi_protocol`; never NULL.
 */
const char *wsffi_extensions(const struct wsffi_conn *conn);

/*
 The peer's address ("127.0.0.1:9000", "[::1]:9000", "unix"), "" before open or for NULL.
 Owned by the conn and valid as long as `wsffi_protocol`; never NULL.
 */
const char *wsffi_remote_address(const struct wsffi_conn *conn);

/*
 The ALPN protocol agreed on in the TLS handshake ("http/1.1" by default; see
 `wsffi_client_options_set_tls_alpn` and `wsffi_listener_options_set_tls_alpn`), ""
 without TLS or when none was agreed, before open or for NULL. Owned by the conn and
 valid as long as `wsffi_protocol`; never NULL.
 */
const char *wsffi_tls_alpn(const struct wsffi_conn *conn);

/*
 Subject of the TLS peer's certificate as an RFC 4514 string ("CN=localhost,O=Example"):
 on a client the server's certificate (the one it chose by SNI at the handshake), on the
 server side the client's (as `wsffi_request_tls_subject`). "" without TLS or a peer
 certificate, before open or for NULL. Owned by the conn and valid as long as
 `wsffi_protocol`; never NULL.
 */
const char *wsffi_tls_peer_subject(const struct wsffi_conn *conn);

/*
 The URL (client side, normalized) or the request target (server side); "" for NULL.
 Owned by the conn and valid as long as `wsffi_protocol`; never NULL.
 */
const char *wsffi_url(const struct wsffi_conn *conn);

/*
 Replaces the connection's callbacks (when `callbacks` is non-NULL) and its user data.
 The previous user data's destroy runs on the reactor thread. Server applications call
 this from `on_connection`; `on_open` then follows.
 NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; a table whose `size` breaks the size rule:
 WSFFI_STATUS_ERR_INVALID_PARAMETER (nothing changes, `destroy(user)` runs).
 */
wsffi_status wsffi_conn_set_callbacks(struct wsffi_conn *conn, const struct wsffi_conn_callbacks *callbacks, void *user, wsffi_destroy_cb destroy);

/*
 The user data last set for the connection (NULL for NULL).
 */
void *wsffi_conn_user_data(const struct wsffi_conn *conn);

/*
 Takes another reference to a connection (to keep it past `on_close` or hand it to
 another thread); returns `conn`. Give it back with `wsffi_conn_release`.
 NULL gives NULL.
 */
struct wsffi_conn *wsffi_conn_retain(struct wsffi_conn *conn);

/*
 Gives back one reference (from `wsffi_connect` or `wsffi_conn_retain`). Releasing does
 not close the connection. NULL is a no-op.
 */
void wsffi_conn_release(struct wsffi_conn *conn);

/*
 Fills the `size` bytes at `params` (pass `sizeof *params`) with the defaults listed on
 `wsffi_deflate_params` and sets `params->size`. `WSFFI_STATUS_ERR_NULL_PARAMETER` for a
 NULL `params`; `WSFFI_STATUS_ERR_INVALID_PARAMETER` for a size smaller than the `size`
 field or ending inside a field.
 */
wsffi_status wsffi_deflate_params_init(struct wsffi_deflate_params *params, size_t size);

/*
 Offer permessage-deflate (default: on, with default parameters) or not.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_per_message_deflate(struct wsffi_client_options *options, bool enabled);

/*
 Offers permessage-deflate with these parameters (enables it). Out-of-range values give
 `WSFFI_STATUS_ERR_INVALID_PARAMETER` and change nothing.
 NULL `options` or `params`: WSFFI_STATUS_ERR_NULL_PARAMETER; a `params->size` that
 breaks the size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. The parameters are copied.
 */
wsffi_status wsffi_client_options_set_deflate_params(struct wsffi_client_options *options, const struct wsffi_deflate_params *params);

/*
 Accept permessage-deflate from clients that offer it (default: off).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_per_message_deflate(struct wsffi_server_options *options, bool enabled);

/*
 Accepts permessage-deflate with these parameters (enables it). Out-of-range values give
 `WSFFI_STATUS_ERR_INVALID_PARAMETER` and change nothing.
 NULL `options` or `params`: WSFFI_STATUS_ERR_NULL_PARAMETER; a `params->size` that
 breaks the size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. The parameters are copied.
 */
wsffi_status wsffi_server_options_set_deflate_params(struct wsffi_server_options *options, const struct wsffi_deflate_params *params);

/*
 Dispatch mode on (`true`) or off (the default). In dispatch mode no callback runs on the
 reactor thread: each event waits in a queue until the application calls
 `wsffi_reactor_dispatch` on a thread of its own (the dispatching thread), which runs it
 there. `wsffi_reactor_fd` is readable while events wait; a wake callback
 (`wsffi_reactor_options_set_wake`) serves loops that cannot poll a descriptor.

 What stays the same: per connection and per server, callbacks run one at a time, in the
 order the events happened; `on_close` is the last callback of a connection and runs
 exactly once, then `destroy`; the `conn`, `server` and `handshake` pointers a callback
 receives are live until it returns. What changes: a message's `data`, a ping or pong
 payload, an error message, a close reason and a response view are the library's copies,
 valid until the callback returns; `verify_client`, `handle_protocols` and `headers` run
 on the dispatching thread while the handshake waits (under its handshake timeout), and a
 `verify_client` that returns `WSFFI_VERDICT_DEFER` has `handle_protocols` and `headers`
 called right after it; plain HTTP handlers run there too. Callbacks installed with
 `wsffi_conn_set_callbacks` from `on_connection` receive every event of that connection
 that follows, including those that arrived before the call. Functions that block (such
 as `wsffi_reactor_free`) may be called from dispatched callbacks.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_reactor_options_set_dispatch(struct wsffi_reactor_options *options, bool enabled);

/*
 Turns dispatch mode on and sets a function the reactor thread calls when events start
 waiting, for loops that cannot poll `wsffi_reactor_fd` (it might post a task or signal
 an async handle). It is called at most once per batch of events, and not again until a
 `wsffi_reactor_dispatch` call has started: answer each wake with dispatch calls until one
 runs fewer than its `max`. It runs on the reactor thread, so it must be quick, must not
 block, and may call only `wsffi_reactor_fd` of this library. `user` is handed to it;
 `destroy` (may be NULL) runs once, when neither these options nor a reactor made from
 them can call `wake` any more. NULL `wake` turns the wake function off again (and
 destroys the previous one's user data, once unused).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER (and `destroy` is not called).
 */
wsffi_status wsffi_reactor_options_set_wake(struct wsffi_reactor_options *options, wsffi_wake_cb wake, void *user, wsffi_destroy_cb destroy);

/*
 The descriptor that is readable while dispatched events wait: add it to poll, epoll,
 asyncio's `add_reader` or a GUI loop, and call `wsffi_reactor_dispatch` when it is
 readable. It belongs to the reactor (never read, write or close it) and is valid until
 `wsffi_reactor_free` returns; take it out of your poll set before that.
 Returns -1 for NULL or for a reactor not in dispatch mode.
 */
int wsffi_reactor_fd(const struct wsffi_reactor *reactor);

/*
 Runs up to `max` waiting callbacks on the calling thread, in order, and stores how many
 ran in `*out_ran` (`out_ran` may be NULL). When it ran `max`, more may wait (the
 descriptor stays readable until none does). Calls from several threads take turns.
 `max` 0 runs nothing. The reactor may be freed from one of the callbacks it runs: the
 remaining callbacks then run before this call returns, and it touches the reactor no
 more. NULL `reactor`: WSFFI_STATUS_ERR_NULL_PARAMETER. A reactor not in dispatch mode:
 WSFFI_STATUS_ERR_INVALID_PARAMETER. Called from a callback it is running:
 WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK, and nothing runs.
 */
wsffi_status wsffi_reactor_dispatch(struct wsffi_reactor *reactor, size_t max, size_t *out_ran);

/*
 Fills the `size` bytes at `callbacks` (pass `sizeof *callbacks`) with NULL callbacks and
 sets `callbacks->size`. `WSFFI_STATUS_ERR_NULL_PARAMETER` for a NULL `callbacks`;
 `WSFFI_STATUS_ERR_INVALID_PARAMETER` for a size smaller than the `size` field or ending
 inside a field.
 */
wsffi_status wsffi_conn_callbacks_init(struct wsffi_conn_callbacks *callbacks, size_t size);

/*
 As `wsffi_conn_callbacks_init`, for `struct wsffi_server_callbacks`: NULL `callbacks`
 gives WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_callbacks_init(struct wsffi_server_callbacks *callbacks, size_t size);

/*
 Sends the library's log records at `level` and more severe ones to `cb`, for every
 reactor of the process; `WSFFI_LOG_OFF` or a NULL `cb` turns the log off (the default).
 While it is off, or for records more detailed than `level`, nothing is formatted.

 Records about connections are delivered on their reactor's thread, between events (also
 in dispatch mode), so `cb` may call any function of the library that a callback may call,
 including this one; records of other threads arrive on those threads. Several reactors
 call `cb` concurrently: it must be thread-safe. Text from peers (URLs, close reasons) is
 quoted with control characters escaped.

 `destroy` (may be NULL) runs once with `user` when the callback is replaced or turned off
 and no call to it is under way (possibly on a library thread); when this call turns the
 log off it runs at once; it is not called when this function fails. A level above `WSFFI_LOG_DEBUG`: WSFFI_STATUS_ERR_INVALID_PARAMETER (the
 current setting stays).
 */
wsffi_status wsffi_set_log_callback(uint32_t level, wsffi_log_cb cb, void *user, wsffi_destroy_cb destroy);

/*
 New client options with the defaults: no subprotocols, no extra headers, no Origin,
 connect timeout 10 s, handshake timeout 10 s, max_payload 64 MiB, at most 131072
 fragments per message, no automatic ping, no idle timeout, close timeout 5 s, high-water
 mark 16 MiB, low-water mark 4 MiB, max response head 16 KiB, permessage-deflate offered
 with default parameters, messages delivered whole (not streamed), no automatic
 reconnect. The caller owns the object: free it with `wsffi_client_options_free`; NULL
 only if the library failed internally.
 */
struct wsffi_client_options *wsffi_client_options_new(void);

/*
 Frees client options. NULL is a no-op.
 */
void wsffi_client_options_free(struct wsffi_client_options *options);

/*
 Offers a subprotocol (an RFC 7230 token), in order of preference. Duplicates are refused.
 NULL `options` or `protocol`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_add_protocol(struct wsffi_client_options *options, const char *protocol);

/*
 Adds a request header. Host, Upgrade, Connection, Content-Length, Transfer-Encoding and
 every Sec-WebSocket-* name (key, version, subprotocol and extension offers come from the
 options) are written by the library and refused here with
 `WSFFI_STATUS_ERR_INVALID_PARAMETER` (any case); names must be tokens, values without
 control characters.
 NULL `options`, `name` or `value`: WSFFI_STATUS_ERR_NULL_PARAMETER. The strings are
 copied.
 */
wsffi_status wsffi_client_options_add_header(struct wsffi_client_options *options, const char *name, const char *value);

/*
 Sets the Origin header.
 NULL `options` or `origin`: WSFFI_STATUS_ERR_NULL_PARAMETER. The string is copied.
 */
wsffi_status wsffi_client_options_set_origin(struct wsffi_client_options *options, const char *origin);

/*
 Sends the connection through a proxy, as curl's `CURLOPT_PROXY`:
 `http://[user:pass@]host[:port]` (an HTTP `CONNECT` tunnel with Basic authentication;
 port 80 by default, a URL without scheme is http), `socks5h://[user:pass@]host[:port]`
 (SOCKS5, the proxy resolves the target's name; port 1080 by default) or `socks5://`
 (SOCKS5; an IP target is sent as an address, a name is sent for the proxy to resolve).
 User name and password may be percent-encoded. TLS for `wss://` runs inside the tunnel,
 with SNI and certificate checks against the target host, never the proxy. The connect
 timeout covers the tunnel. Failures arrive as `on_error` then `on_close`: 407 (or 401) and
 refused SOCKS5 credentials, 403 and other non-2xx answers as
 WSFFI_STATUS_ERR_HANDSHAKE_REJECTED, a target the SOCKS5 proxy cannot reach as
 WSFFI_STATUS_ERR_CONNECTION_REFUSED, a proxy that closes early or does not speak the
 protocol as WSFFI_STATUS_ERR_HANDSHAKE, each with a message starting "proxy:".
 Default: no proxy. NULL or "" `url`: no proxy, also not from the environment.
 `ws+unix://` URLs never use a proxy.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; a URL that does not parse:
 WSFFI_STATUS_ERR_INVALID_URL (options unchanged). The string is copied.
 */
wsffi_status wsffi_client_options_set_proxy(struct wsffi_client_options *options, const char *url);

/*
 Takes the proxy from the environment when `wsffi_client_options_set_proxy` was not
 called, with curl's rules (default off: the environment is ignored). `wss://` uses
 `https_proxy` or `HTTPS_PROXY`, `ws://` uses `http_proxy` (lowercase only, as curl),
 both fall back to `all_proxy` or `ALL_PROXY`. `no_proxy` or `NO_PROXY` lists hosts
 reached directly: comma separated, `*` for all, a name matches itself and its
 subdomains (a leading dot is ignored), IP addresses and `addr/bits` networks match the
 target's literal address. The variables are read at each `wsffi_connect`; a value that
 does not parse fails that connection with WSFFI_STATUS_ERR_INVALID_URL.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_proxy_from_env(struct wsffi_client_options *options, bool enabled);

/*
 Time allowed for name resolution plus TCP connect, and the proxy's tunnel when a proxy
 is used (ms, > 0; default 10000, and never more than the handshake timeout).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_connect_timeout_ms(struct wsffi_client_options *options, uint32_t ms);

/*
 Time allowed from the start of the connect to the end of the opening handshake (ms, > 0).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_handshake_timeout_ms(struct wsffi_client_options *options, uint32_t ms);

/*
 Follows 301, 302, 303, 307 and 308 answers to the upgrade request (default false: such an
 answer is an unexpected response, `on_unexpected_response` then `on_close` with
 WSFFI_STATUS_ERR_HANDSHAKE_REJECTED). When on, the `Location` (absolute, or relative to
 the current URL; `http`/`https` read as `ws`/`wss`) is dialled with a fresh key; URL
 credentials and the Authorization and Cookie headers added with
 `wsffi_client_options_add_header` are dropped when the host or port changes or the hop goes
 from `wss` to `ws`, and a TLS name set with `wsffi_client_options_set_tls_server_name`
 is dropped when the host name changes (the new host is verified by its own name). A
 loop, a missing or unusable Location, or more hops than
 `wsffi_client_options_set_max_redirects` end the connection with
 WSFFI_STATUS_ERR_HANDSHAKE_REJECTED and a message naming the cause. The connect and
 handshake timeouts count from the first dial and cover all hops.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_follow_redirects(struct wsffi_client_options *options, bool follow);

/*
 Reconnects automatically (off by default). When the connection is lost, or a dial or
 opening handshake fails (the first one included), the same URL is dialled again on the
 same conn handle after a wait, the proxy and redirects chosen again: `on_reconnect`
 reports each attempt, `on_open` fires again on success, and `on_error` then `on_close`
 come once, at the very end.

 The wait before attempt n is `initial_delay_ms * factor^(n-1)`, at most `max_delay_ms`,
 with equal jitter (a random point in its upper half, so clients that lost the same
 server spread out while the delays still grow). `max_attempts` attempts in a row that do
 not open give up (0: no limit) with `on_error` (the last failure's status, the message
 saying so) and `on_close`; the count starts again at every open.

 Retried: network errors, DNS, refused connects, timeouts (connect, handshake, ping,
 idle), resets, a socket closed during the handshake, an upgrade answered 5xx, 408 or
 429, and every close frame from the server except 1002, 1003, 1007, 1008, 1009 and 1010
 (1000 and 1001 included, as Node's reconnecting clients do). Permanent (the connection
 ends as without reconnect): any other non-101 answer (4xx, a 3xx not followed), TLS
 failures, invalid URLs or options, proxy refusals, protocol violations of the server,
 `wsffi_close` and `wsffi_terminate` (which end it during the wait too), reactor shutdown.

 While lost and reconnecting the ready state is WSFFI_CONNECTING and every send returns
 WSFFI_STATUS_ERR_RECONNECTING (nothing is queued); what was buffered and not written
 when the connection was lost is lost with it. `initial_delay_ms` 0 turns reconnecting
 off; otherwise `max_delay_ms >= initial_delay_ms` and `factor` finite, 1.0 to 1000.0,
 or WSFFI_STATUS_ERR_INVALID_PARAMETER (nothing changes).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_reconnect(struct wsffi_client_options *options, uint32_t initial_delay_ms, double factor, uint32_t max_delay_ms, uint32_t max_attempts);

/*
 Most redirects followed for one connection when following is on (default 10; 0 refuses
 the first one). NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_max_redirects(struct wsffi_client_options *options, uint32_t max);

/*
 Largest incoming message in bytes (> 0); larger ones close the connection with 1009.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_max_payload(struct wsffi_client_options *options, size_t bytes);

/*
 Deliver incoming messages in parts as they arrive, to the `on_message_part` callback
 (see `wsffi_message_part_cb`), instead of whole to `on_message`; off by default. Parts
 come straight from the read buffer, so a message may be larger than memory: neither
 `max_payload` nor `max_fragments` applies to a streamed message (an application that
 wants a bound counts the bytes and calls `wsffi_close`, e.g. with 1009). Compressed
 messages are inflated part by part, never whole. A connection without an
 `on_message_part` callback then drops its messages.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_stream_messages(struct wsffi_client_options *options, bool enabled);

/*
 Most frames one incoming fragmented message may use (> 0); more close with 1009.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_max_fragments(struct wsffi_client_options *options, size_t n);

/*
 Sends a ping after `ms` without input and drops the connection (1006, `WSFFI_STATUS_ERR_TIMEOUT`)
 when another `ms` pass without any input. 0 turns it off (the client default; servers
 default to 60 s).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_ping_interval_ms(struct wsffi_client_options *options, uint32_t ms);

/*
 Closes the connection with 1001 after `ms` without input. 0 turns it off (the client
 default; servers default to 120 s).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_idle_timeout_ms(struct wsffi_client_options *options, uint32_t ms);

/*
 How long to wait for the peer's side of the close handshake (ms, > 0).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_close_timeout_ms(struct wsffi_client_options *options, uint32_t ms);

/*
 Output flow control: sends are refused with `WSFFI_STATUS_ERR_BACKPRESSURE` while more than
 `high` bytes wait for the socket; `on_drain` fires when it falls to `low` (low <= high).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_water_marks(struct wsffi_client_options *options, size_t high, size_t low);

/*
 Largest response head accepted (bytes, >= 256).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_max_header_bytes(struct wsffi_client_options *options, size_t bytes);

/*
 New server options with the defaults: client tracking on, no connection limit, any
 Origin, max_payload 64 MiB, at most 131072 fragments per message, a ping after 60 s
 without input, idle timeout 120 s, close timeout 5 s, high-water mark 16 MiB,
 low-water mark 4 MiB, back-pressure policy `WSFFI_BACKPRESSURE_REFUSE`,
 permessage-deflate declined, messages delivered whole (not streamed). The caller owns
 the object: free it
 with `wsffi_server_options_free`; NULL only if the library failed internally.
 */
struct wsffi_server_options *wsffi_server_options_new(void);

/*
 Frees server options. NULL is a no-op.
 */
void wsffi_server_options_free(struct wsffi_server_options *options);

/*
 Keep the set of clients for `wsffi_server_clients` and `wsffi_server_broadcast`
 (default on). Off, those two return `WSFFI_STATUS_ERR_UNSUPPORTED`.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_client_tracking(struct wsffi_server_options *options, bool enabled);

/*
 Most simultaneous connections; further upgrades get 503. 0 = no limit (the default).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_max_connections(struct wsffi_server_options *options, size_t n);

/*
 Most topics one connection may subscribe to (`wsffi_conn_subscribe`); past it a
 subscription fails with WSFFI_STATUS_ERR_TOO_BIG. Default 10000; at least 1.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; 0: WSFFI_STATUS_ERR_INVALID_PARAMETER.
 */
wsffi_status wsffi_server_options_set_max_subscriptions(struct wsffi_server_options *options, size_t n);

/*
 Accept only upgrades whose Origin equals one of the added values (ASCII
 case-insensitive); others get 403. Without any, every Origin is accepted.
 NULL `options` or `origin`: WSFFI_STATUS_ERR_NULL_PARAMETER. The string is copied.
 */
wsffi_status wsffi_server_options_add_allowed_origin(struct wsffi_server_options *options, const char *origin);

/*
 As `wsffi_client_options_set_max_payload`, for the server's connections.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_max_payload(struct wsffi_server_options *options, size_t bytes);

/*
 As `wsffi_client_options_set_stream_messages`, for the server's connections (off by
 default). NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_stream_messages(struct wsffi_server_options *options, bool enabled);

/*
 As `wsffi_client_options_set_max_fragments`, for the server's connections.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_max_fragments(struct wsffi_server_options *options, size_t n);

/*
 As `wsffi_client_options_set_ping_interval_ms`, for the server's connections: clients
 that stop answering are dropped, like the heartbeat of Node's ws. The server default is
 60 000 (half the default idle timeout, so a client that answers pings is never idle); 0
 turns it off. NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_ping_interval_ms(struct wsffi_server_options *options, uint32_t ms);

/*
 As `wsffi_client_options_set_idle_timeout_ms`, for the server's connections. The server
 default is 120 000 (120 s), so a client that goes silent cannot hold its connection
 forever; 0 turns it off.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_idle_timeout_ms(struct wsffi_server_options *options, uint32_t ms);

/*
 As `wsffi_client_options_set_close_timeout_ms`, for the server's connections.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_close_timeout_ms(struct wsffi_server_options *options, uint32_t ms);

/*
 As `wsffi_client_options_set_water_marks`, for the server's connections.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_options_set_water_marks(struct wsffi_server_options *options, size_t high, size_t low);

/*
 The slow-consumer policy of the server's connections (what uWebSockets calls
 `closeOnBackpressureLimit`), applied when a client's unsent output passes the high-water
 mark (`wsffi_server_options_set_water_marks`). Under every policy nothing is queued for a
 client above the mark, so its output holds at most the mark plus the one message that
 crossed it, and a broadcast or publish to many clients of which some do not read grows
 memory by at most that per slow client. Messages a client misses (dropped sends,
 broadcasts and publishes that skipped it) are counted by the library.

 `policy` is a `WSFFI_BACKPRESSURE_*` value; default `WSFFI_BACKPRESSURE_REFUSE`.
 `grace_ms` is used by the CLOSE policies only (ignored otherwise): how long a client may
 stay above the mark; 0 closes it at once (on the reactor's next turn). The close gets
 `on_error` (`WSFFI_STATUS_ERR_BACKPRESSURE`) then a close frame with reason "slow
 consumer", queued behind what the client has not read yet; a client that still does not
 read is dropped after the close timeout (`wsffi_server_options_set_close_timeout_ms`),
 which frees its queue, and `on_close` reports the code with `was_clean` false.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; an unknown `policy`:
 WSFFI_STATUS_ERR_INVALID_PARAMETER (nothing changes).
 */
wsffi_status wsffi_server_options_set_backpressure_policy(struct wsffi_server_options *options, wsffi_backpressure_policy policy, uint32_t grace_ms);

/*
 New listener options with the defaults: backlog 1024, max request head 16 KiB (431
 beyond), handshake timeout 10 s, no SO_REUSEPORT. The caller owns the object: free it
 with `wsffi_listener_options_free`; NULL only if the library failed internally.
 */
struct wsffi_listener_options *wsffi_listener_options_new(void);

/*
 Frees listener options. NULL is a no-op.
 */
void wsffi_listener_options_free(struct wsffi_listener_options *options);

/*
 listen(2) backlog (> 0).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_listener_options_set_backlog(struct wsffi_listener_options *options, int32_t backlog);

/*
 Largest request head accepted (bytes, >= 256); larger requests get 431.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_listener_options_set_max_header_bytes(struct wsffi_listener_options *options, size_t bytes);

/*
 Time a client has from accept to a decided handshake (ms, > 0); slower clients are
 dropped and reported to `on_client_error` with `WSFFI_STATUS_ERR_TIMEOUT`.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_listener_options_set_handshake_timeout_ms(struct wsffi_listener_options *options, uint32_t ms);

/*
 Set SO_REUSEPORT before binding, so several listeners (processes or reactors) share
 one port and the kernel spreads connections among them.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_listener_options_set_reuse_port(struct wsffi_listener_options *options, bool enabled);

/*
 The library version, "MAJOR.MINOR.PATCH". Static, never NULL.
 */
const char *wsffi_version(void);

/*
 The library version as `MAJOR << 16 | MINOR << 8 | PATCH` (compare with
 `WSFFI_VERSION_NUMBER` to detect a header/library mismatch).
 */
uint32_t wsffi_version_number(void);

/*
 A static description of a status code; "unknown status" for values not in
 `wsffi_status`. Never NULL.
 */
const char *wsffi_status_str(uint32_t status);

/*
 The status of an error detail; WSFFI_STATUS_ERR_NULL_PARAMETER for NULL.
 */
wsffi_status wsffi_error_status(const struct wsffi_error *err);

/*
 The message of an error detail: a NUL-terminated sentence owned by `err`, valid until
 `wsffi_error_free(err)`. "" (static) for NULL; never NULL.
 */
const char *wsffi_error_message(const struct wsffi_error *err);

/*
 Frees an error detail. NULL is a no-op.
 */
void wsffi_error_free(struct wsffi_error *err);

/*
 New reactor options with defaults: at most 1,048,576 queued commands from other threads,
 2000 ms shutdown grace. The caller owns the object: free it with
 `wsffi_reactor_options_free`; NULL only if the library failed internally.
 */
struct wsffi_reactor_options *wsffi_reactor_options_new(void);

/*
 Frees reactor options. NULL is a no-op.
 */
void wsffi_reactor_options_free(struct wsffi_reactor_options *options);

/*
 Most commands (sends, closes...) from other threads that may wait for the reactor;
 beyond it calls return `WSFFI_STATUS_ERR_QUEUE_FULL`. Must be at least 1.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_reactor_options_set_max_queued_commands(struct wsffi_reactor_options *options, size_t n);

/*
 How long `wsffi_reactor_free` lets open connections finish their close handshake
 before dropping them (milliseconds).
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_reactor_options_set_shutdown_grace_ms(struct wsffi_reactor_options *options, uint32_t ms);

/*
 Starts a reactor thread. `options` may be NULL for defaults. On success `*out_reactor`
 receives the reactor, to be freed with `wsffi_reactor_free`.
 NULL `out_reactor`: WSFFI_STATUS_ERR_NULL_PARAMETER. `out_err` may be NULL; a detail
 stored there is the caller's, to free with `wsffi_error_free`.
 */
wsffi_status wsffi_reactor_new(const struct wsffi_reactor_options *options, struct wsffi_reactor **out_reactor, struct wsffi_error **out_err);

/*
 Closes every listener and connection of the reactor (connections get a 1001 close frame
 and up to the shutdown grace to answer), delivers every remaining callback and destroy,
 joins the thread, then frees the reactor. After it returns no callback of this reactor
 runs again. In dispatch mode the callbacks still waiting run on the calling thread before
 it returns; called from a dispatched callback, they run before the
 `wsffi_reactor_dispatch` in progress returns. Called from a callback on the reactor
 thread it does nothing and returns `WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK`. Handles still retained stay valid (every call on them
 returns `WSFFI_STATUS_ERR_CLOSED` or `WSFFI_STATUS_ERR_SHUT_DOWN`) until released. NULL is a no-op.
 */
wsffi_status wsffi_reactor_free(struct wsffi_reactor *reactor);

/*
 Listens on `address`: "127.0.0.1:8080", "0.0.0.0:0" (port 0 picks a free port, see
 `wsffi_listener_port`), "[::1]:9000", "localhost:9000" or "unix:/path/to.sock".
 `options` may be NULL. With a TLS certificate in `options`
 (`wsffi_listener_options_set_tls_cert_*`) every connection speaks TLS; TLS settings that
 do not fit together (client CAs without a certificate) fail here with `WSFFI_STATUS_ERR_TLS`. On
 success `*out_listener` must later go to `wsffi_listener_close`.
 NULL `reactor`, `address` or `out_listener`: WSFFI_STATUS_ERR_NULL_PARAMETER. `out_err`
 may be NULL; a detail stored there is the caller's, to free with `wsffi_error_free`.
 */
wsffi_status wsffi_listen(struct wsffi_reactor *reactor, const char *address, const struct wsffi_listener_options *options, struct wsffi_listener **out_listener, struct wsffi_error **out_err);

/*
 Serves on a socket that is already bound and listening (systemd socket activation, a
 socket inherited from a parent). Ownership of `fd` passes to the listener, also on error
 (then it is closed).
 NULL `reactor` or `out_listener`: WSFFI_STATUS_ERR_NULL_PARAMETER (`fd` is closed);
 `options` may be NULL for defaults, `out_err` NULL for no detail.
 */
wsffi_status wsffi_listener_adopt_fd(struct wsffi_reactor *reactor, int32_t fd, const struct wsffi_listener_options *options, struct wsffi_listener **out_listener, struct wsffi_error **out_err);

/*
 The bound port (0 for Unix sockets and NULL).
 */
uint16_t wsffi_listener_port(const struct wsffi_listener *listener);

/*
 The bound address ("127.0.0.1:43121", "unix:/path"). The string belongs to the listener
 and stays valid until `wsffi_listener_close(listener)`; "" (static) for NULL; never
 NULL.
 */
const char *wsffi_listener_address(const struct wsffi_listener *listener);

/*
 Handles plain (non-upgrade) HTTP requests on this listener: `handler` fills the response,
 which is sent when it returns; then the connection closes. Without a handler such
 requests get 426 on a WebSocket path and 404 elsewhere. NULL `handler` removes it.
 Once `wsffi_listener_close` returns the handler is not called again, and `user` may be
 freed: requests still arriving on connections it accepted are answered as without a handler (in dispatch
 mode, calls already queued still run at the next `wsffi_reactor_dispatch`).
 NULL `listener`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_listener_set_http_handler(struct wsffi_listener *listener, wsffi_http_handler_cb handler, void *user);

/*
 Stops listening and frees the handle (connections already accepted go on; servers
 attached stay until `wsffi_server_close`). NULL is a no-op.
 */
wsffi_status wsffi_listener_close(struct wsffi_listener *listener);

/*
 Attaches a WebSocket server at `path` ("/" when NULL; exact match on the request path)
 to `listener`, or with a NULL listener creates a standalone server fed by
 `wsffi_server_handle_upgrade`. `options` and `callbacks` may be NULL. `destroy(user)` runs
 once after the server's last callback (`on_close`), also when this call fails. On
 success `*out_server` must later go to `wsffi_server_close`.
 NULL `reactor` or `out_server`: WSFFI_STATUS_ERR_NULL_PARAMETER. A `callbacks` table
 whose `size` breaks the size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER with the reason in
 `*out_err`. `out_err` may be NULL; a detail stored there is the caller's, to free with
 `wsffi_error_free`.
 */
wsffi_status wsffi_server_attach(struct wsffi_reactor *reactor, struct wsffi_listener *listener, const char *path, const struct wsffi_server_options *options, const struct wsffi_server_callbacks *callbacks, void *user, wsffi_destroy_cb destroy, struct wsffi_server **out_server, struct wsffi_error **out_err);

/*
 Hands an upgrade request that the application's own HTTP server already read to
 `server`: `fd` is the connected socket (ownership passes to wsffi, also on error) and
 `head` the bytes read so far (the request head and anything after it). The handshake then
 runs as for a listener: `verify_client`, `on_connection`, ...
 NULL `server`: WSFFI_STATUS_ERR_NULL_PARAMETER (`fd` is closed); `head` may be NULL only
 when `head_len` is 0.
 */
wsffi_status wsffi_server_handle_upgrade(struct wsffi_server *server, int32_t fd, const uint8_t *head, size_t head_len);

/*
 The path the server answers. The string belongs to the server and stays valid until
 `wsffi_server_close(server)`; "" (static) for NULL; never NULL.
 */
const char *wsffi_server_path(const struct wsffi_server *server);

/*
 Number of open connections of the server (0 for NULL).
 */
size_t wsffi_server_client_count(const struct wsffi_server *server);

/*
 Calls `visit(user, conn)` for every open client, on the calling thread, from a snapshot
 (clients that close meanwhile are still safe to use; calls on them return
 `WSFFI_STATUS_ERR_CLOSED`). Needs client tracking.
 NULL `server` or `visit`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_server_clients(struct wsffi_server *server, wsffi_client_visit_cb visit, void *user);

/*
 Sends one message to every open client (the frame is encoded once). Clients above their
 high-water mark are skipped, whatever the back-pressure policy (the message counts as
 dropped for them), as are clients in the middle of a fragmented message; nothing is ever
 queued past a client's mark. With `out_sent` non-NULL the call waits for the reactor and
 stores how many clients took the message; with NULL it returns at once (the data is
 copied into the reactor's command queue, so a sender that never waits should bound its
 own rate). Needs client tracking. Text must be valid UTF-8.
 NULL `server`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
 */
wsffi_status wsffi_server_broadcast(struct wsffi_server *server, uint32_t kind, const uint8_t *data, size_t len, size_t *out_sent);

/*
 Stops the server and frees the handle: no new clients, open ones get a 1001 close, and
 `on_close` runs when the last one is gone (then `destroy`). NULL is a no-op.
 */
wsffi_status wsffi_server_close(struct wsffi_server *server);

/*
 The request of a pending handshake, NULL for NULL. The view belongs to the handshake:
 valid while the handshake is (inside `verify_client` or `headers`, or until
 `wsffi_handshake_accept`/`wsffi_handshake_reject` consumes a deferred one); keep it
 longer with `wsffi_request_copy`.
 */
const struct wsffi_request *wsffi_handshake_request(const struct wsffi_handshake *handshake);

/*
 Adds a header to the response of this handshake (the 101, or the refusal). Names the
 library writes are refused with `WSFFI_STATUS_ERR_INVALID_PARAMETER` (any case):
 Content-Length, Transfer-Encoding, Connection, Upgrade and every Sec-WebSocket-* name
 (the accept key, subprotocol and extensions come from the negotiation).
 NULL `handshake`, `name` or `value`: WSFFI_STATUS_ERR_NULL_PARAMETER. The strings are
 copied.
 */
wsffi_status wsffi_handshake_add_header(struct wsffi_handshake *handshake, const char *name, const char *value);

/*
 Sets the refusal that a `WSFFI_VERDICT_REJECT` verdict sends: an HTTP status 400-599
 (default 401), or a redirect 301, 302, 303, 307 or 308 together with a `Location` header
 added by `wsffi_handshake_add_header` (clients that follow redirects re-dial it), and a
 reason phrase (NULL or "" for the standard one). Other statuses:
 WSFFI_STATUS_ERR_INVALID_PARAMETER.
 NULL `handshake`: WSFFI_STATUS_ERR_NULL_PARAMETER. The reason is copied.
 */
wsffi_status wsffi_handshake_set_reject(struct wsffi_handshake *handshake, uint16_t status, const char *reason);

/*
 Accepts a handshake deferred by `verify_client`, from any thread. Consumes the
 reference the verdict handed out, also on error, so a handshake is decided at most once
 (using the pointer again afterwards is a use after free). `WSFFI_STATUS_ERR_TIMEOUT` when the
 handshake timed out or the client left meanwhile.
 NULL `handshake`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_handshake_accept(struct wsffi_handshake *handshake);

/*
 Rejects a deferred handshake with an HTTP status 400-599 or a redirect 301/302/303/307/308
 (add its `Location` with `wsffi_handshake_add_header` first) and reason (NULL for the
 standard phrase), from any thread. Consumes the reference like `wsffi_handshake_accept`.
 NULL `handshake`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_handshake_reject(struct wsffi_handshake *handshake, uint16_t status, const char *reason);

/*
 Sets the status (200-599) and reason (NULL for the standard phrase) of a plain HTTP
 answer. The default is 200. A 1xx is refused with `WSFFI_STATUS_ERR_INVALID_PARAMETER`:
 it is not a final answer, and a 101 would tell a proxy the connection was upgraded.
 NULL `response`: WSFFI_STATUS_ERR_NULL_PARAMETER. The reason is copied.
 */
wsffi_status wsffi_http_response_set_status(struct wsffi_http_response *response, uint16_t status, const char *reason);

/*
 Adds a header to a plain HTTP answer (Content-Length and Connection are written by the
 library).
 NULL `response`, `name` or `value`: WSFFI_STATUS_ERR_NULL_PARAMETER. The strings are
 copied.
 */
wsffi_status wsffi_http_response_add_header(struct wsffi_http_response *response, const char *name, const char *value);

/*
 Sets the body of a plain HTTP answer (copied).
 NULL `response`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is
 0.
 */
wsffi_status wsffi_http_response_set_body(struct wsffi_http_response *response, const uint8_t *data, size_t len);

/*
 Fills `*out` with the connection's counters (see `struct wsffi_conn_stats`), from any
 thread, without waiting for the reactor. Also after the connection closed, as long as the
 caller holds a reference: then the counters are final (`buffered_bytes` 0) and the status
 is WSFFI_STATUS_OK; `wsffi_ready_state` tells that it closed.
 NULL `conn` or `out`: WSFFI_STATUS_ERR_NULL_PARAMETER; an `out->size` smaller than the
 `size` field (a struct only zeroed) or ending inside a field:
 WSFFI_STATUS_ERR_INVALID_PARAMETER. Nothing is written on error.
 */
wsffi_status wsffi_conn_get_stats(const struct wsffi_conn *conn, struct wsffi_conn_stats *out);

/*
 Fills `*out` with the server's counters (see `struct wsffi_server_stats`), from any
 thread, without waiting for the reactor. The handle is valid until `wsffi_server_close`;
 the reactor's stats keep what its servers counted after they are gone.
 NULL `server` or `out`: WSFFI_STATUS_ERR_NULL_PARAMETER; an `out->size` that breaks the
 size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. Nothing is written on error.
 */
wsffi_status wsffi_server_get_stats(const struct wsffi_server *server, struct wsffi_server_stats *out);

/*
 Fills `*out` with the reactor's counters (see `struct wsffi_reactor_stats`), from any
 thread, without waiting for the reactor (also from callbacks).
 NULL `reactor` or `out`: WSFFI_STATUS_ERR_NULL_PARAMETER; an `out->size` that breaks the
 size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. Nothing is written on error.
 */
wsffi_status wsffi_reactor_get_stats(const struct wsffi_reactor *reactor, struct wsffi_reactor_stats *out);

/*
 Writes the counters of `reactor` and of its servers that are attached (not yet closed)
 in the Prometheus text exposition format (version 0.0.4), each metric family with HELP
 and TYPE lines. The names are those of the stats fields with the library's prefix
 (`connections_open`, `handshakes_refused_total` labelled by `reason`,
 `close_codes_received_total` labelled by `code`, ...); the servers' families add `server_`
 and the labels `server` (the servers of the reactor numbered 1, 2, ... in attach order) and
 `path`. README.md lists them. Serve the text from a listener's HTTP handler as
 `text/plain; version=0.0.4`. From any thread, without waiting for the reactor.

 Like `snprintf`: the text and a NUL go to `buf` when they fit in `cap` bytes; `*out_len`
 (when `out_len` is not NULL) receives the text's length without the NUL either way. When
 `cap` is too small (0 with a NULL `buf` asks only for the length), the status is
 WSFFI_STATUS_ERR_TOO_BIG and `buf` is left as it was; counters keep moving, so give the
 next call some room beyond `*out_len + 1`.
 NULL `reactor`: WSFFI_STATUS_ERR_NULL_PARAMETER; NULL `buf` with `cap` above 0:
 WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_reactor_stats_prometheus(const struct wsffi_reactor *reactor, char *buf, size_t cap, size_t *out_len);

/*
 Runs `cb` once after `delay_ms` milliseconds (0: at the reactor's next turn), then, when
 `repeat_ms` is not 0, every `repeat_ms` milliseconds until cancelled. A repeating timer
 that falls behind (a slow callback) runs once and goes on one interval later; it never
 runs twice in a burst to catch up. Callbacks run where the reactor's other callbacks run:
 on the reactor thread, or in dispatch mode on the dispatching thread (a dispatcher that
 falls behind gets one run per timer, however many intervals passed). From a callback,
 they may send, close, add and cancel timers.

 On success `*out_timer` receives the timer's id (never 0, never reused by this reactor),
 for `wsffi_reactor_cancel_timer`; `out_timer` may be NULL for a timer that is never
 cancelled. `destroy` (may be NULL) runs exactly once with `user`, after the last run of a
 one-shot timer, when the timer is cancelled, or when `wsffi_reactor_free` stops the
 reactor, where callbacks run; it is not called when this function fails.
 NULL `reactor` or `cb`: WSFFI_STATUS_ERR_NULL_PARAMETER. A reactor that is shutting down:
 WSFFI_STATUS_ERR_SHUT_DOWN. May block briefly while the reactor thread takes the timer.
 */
wsffi_status wsffi_reactor_add_timer(const struct wsffi_reactor *reactor, uint64_t delay_ms, uint64_t repeat_ms, wsffi_timer_cb cb, void *user, wsffi_destroy_cb destroy, uint64_t *out_timer);

/*
 Cancels a timer. Once it returns, the callback does not start again; called from the
 timer's own callback, that run completes. `destroy` runs where callbacks run (right away
 on the reactor thread when no run is under way). In dispatch mode, a cancel from a thread
 other than the dispatching one can meet a run that already started there.
 WSFFI_STATUS_ERR_ALREADY_DONE when the timer ran its last time (a one-shot that fired) or
 was cancelled before, or is not one of this reactor's. NULL `reactor`:
 WSFFI_STATUS_ERR_NULL_PARAMETER. A reactor that is shutting down:
 WSFFI_STATUS_ERR_SHUT_DOWN (its timers are cancelled anyway).
 */
wsffi_status wsffi_reactor_cancel_timer(const struct wsffi_reactor *reactor, uint64_t timer);

/*
 Trusts the CA certificates of the PEM file at `path` for `wss://` servers. Once a CA file
 or directory is given, only those CAs are trusted (not the system's); both kinds may be
 combined and each may be called several times. Without any, the system's certificates
 are used.
 NULL `options` or `path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
 detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_client_options_set_tls_ca_file(struct wsffi_client_options *options, const char *path, struct wsffi_error **out_err);

/*
 Trusts every CA certificate found in the PEM files of the directory `path` (files
 without certificates are skipped; a directory without any is an error). See
 `wsffi_client_options_set_tls_ca_file`.
 NULL `options` or `path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
 detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_client_options_set_tls_ca_dir(struct wsffi_client_options *options, const char *path, struct wsffi_error **out_err);

/*
 Presents a client certificate (mutual TLS): `cert_path` is a PEM file with the chain,
 leaf first; `key_path` a PEM file with its private key (PKCS#8, PKCS#1 or SEC1), which
 must belong to the certificate.
 NULL `options`, `cert_path` or `key_path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err`
 may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_client_options_set_tls_client_cert(struct wsffi_client_options *options, const char *cert_path, const char *key_path, struct wsffi_error **out_err);

/*
 Sends `name` as SNI and verifies the server certificate against it instead of the URL's
 host (a DNS name or an IP address). NULL restores the URL host.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_tls_server_name(struct wsffi_client_options *options, const char *name);

/*
 FOR TESTS ONLY: accept any server certificate (no chain, name or date check). The
 connection is encrypted but not authenticated, so anyone in the path can read it.
 NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
 */
wsffi_status wsffi_client_options_set_tls_insecure(struct wsffi_client_options *options, bool insecure);

/*
 The ALPN protocols a `wss://` client offers, in order of preference: `count`
 NUL-terminated names (1 to 255 bytes each, no duplicates, at most 64), copied.
 Default: "http/1.1". `count` 0 offers none. A server that accepts none of them fails the
 handshake (the client's `on_error` gets `WSFFI_STATUS_ERR_TLS`, "TLS: peer sent alert
 "no application protocol""); a server that answers without ALPN is accepted. The
 agreed protocol is `wsffi_tls_alpn` once open.
 NULL `options`, or NULL `protocols` (or a NULL name) with `count` > 0:
 WSFFI_STATUS_ERR_NULL_PARAMETER; a bad name: WSFFI_STATUS_ERR_INVALID_PARAMETER (the
 options are unchanged); `out_err` may be NULL, a detail stored there is the caller's
 (`wsffi_error_free`).
 */
wsffi_status wsffi_client_options_set_tls_alpn(struct wsffi_client_options *options, const char *const *protocols, size_t count, struct wsffi_error **out_err);

/*
 Serves TLS on the listener with the certificate chain of the PEM file `chain_path`
 (leaf first) and the private key of the PEM file `key_path`. Every accepted connection
 then speaks TLS (ALPN "http/1.1" unless `wsffi_listener_options_set_tls_alpn` says
 otherwise); TLS failures reach `on_client_error` of the attached servers with
 `WSFFI_STATUS_ERR_TLS`. A key that does not belong to the certificate is refused.
 With certificates for server names (`wsffi_listener_options_add_tls_sni_cert_*`) this
 one is the default, for clients that send no server name or one without its own
 certificate. Calling it again replaces the default.
 NULL `options`, `chain_path` or `key_path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err`
 may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_set_tls_cert_files(struct wsffi_listener_options *options, const char *chain_path, const char *key_path, struct wsffi_error **out_err);

/*
 As `wsffi_listener_options_set_tls_cert_files`, from PEM text in memory (`chain`:
 certificates, leaf first; `key`: the private key). The bytes are copied.
 NULL `options`, `chain` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be
 NULL, a detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_set_tls_cert_pem(struct wsffi_listener_options *options, const uint8_t *chain, size_t chain_len, const uint8_t *key, size_t key_len, struct wsffi_error **out_err);

/*
 As `wsffi_listener_options_set_tls_cert_files`, from DER in memory: one certificate
 and its private key (PKCS#8, PKCS#1 or SEC1). The bytes are copied.
 NULL `options`, `cert` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL,
 a detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_set_tls_cert_der(struct wsffi_listener_options *options, const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len, struct wsffi_error **out_err);

/*
 Presents the certificate chain of the PEM file `chain_path` (leaf first, with the key
 of the PEM file `key_path`) to clients that ask for `server_name` by SNI. `server_name`
 is a DNS name ("chat.example.com") or a wildcard ("*.example.com": any name exactly one
 label below example.com, not example.com itself), compared case-insensitively; an
 exact name wins over a wildcard. Any number of names may be added; adding one again
 replaces its certificate. Clients that send no server name or an unknown one get the
 default certificate (`wsffi_listener_options_set_tls_cert_*`); without a default their
 handshake fails (rustls sends the alert access_denied) and `on_client_error` of the
 attached servers gets `WSFFI_STATUS_ERR_TLS` with "TLS: no certificate for server name
 ...". The certificate is not checked against the name: clients verify it.
 Errors: a malformed name (or an IP address) is WSFFI_STATUS_ERR_INVALID_PARAMETER;
 unreadable or unusable material WSFFI_STATUS_ERR_TLS; the options are then unchanged.
 NULL `options`, `server_name`, `chain_path` or `key_path`:
 WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a detail stored there is the
 caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_add_tls_sni_cert_files(struct wsffi_listener_options *options, const char *server_name, const char *chain_path, const char *key_path, struct wsffi_error **out_err);

/*
 As `wsffi_listener_options_add_tls_sni_cert_files`, from PEM text in memory (`chain`:
 certificates, leaf first; `key`: the private key). The bytes are copied.
 NULL `options`, `server_name`, `chain` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER;
 `out_err` may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_add_tls_sni_cert_pem(struct wsffi_listener_options *options, const char *server_name, const uint8_t *chain, size_t chain_len, const uint8_t *key, size_t key_len, struct wsffi_error **out_err);

/*
 As `wsffi_listener_options_add_tls_sni_cert_files`, from DER in memory: one
 certificate and its private key (PKCS#8, PKCS#1 or SEC1). The bytes are copied.
 NULL `options`, `server_name`, `cert` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER;
 `out_err` may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_add_tls_sni_cert_der(struct wsffi_listener_options *options, const char *server_name, const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len, struct wsffi_error **out_err);

/*
 The ALPN protocols the listener accepts, in order of preference (the server's order
 decides): `count` NUL-terminated names ("http/1.1", "x-chat/2"; 1 to 255 bytes each, no
 duplicates, at most 64), copied. Default: "http/1.1". A client that offers ALPN but none
 of these fails the handshake (alert no_application_protocol; `on_client_error` gets
 `WSFFI_STATUS_ERR_TLS` "TLS: no common ALPN protocol"); a client that offers no ALPN is
 served without one. `count` 0 accepts no ALPN at all (clients' offers are ignored). The
 agreed protocol is `wsffi_request_tls_alpn` and `wsffi_tls_alpn`. Setting ALPN without
 any certificate makes `wsffi_listen` fail with `WSFFI_STATUS_ERR_TLS`.
 NULL `options`, or NULL `protocols` (or a NULL name) with `count` > 0:
 WSFFI_STATUS_ERR_NULL_PARAMETER; a bad name: WSFFI_STATUS_ERR_INVALID_PARAMETER (the
 options are unchanged); `out_err` may be NULL, a detail stored there is the caller's
 (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_set_tls_alpn(struct wsffi_listener_options *options, const char *const *protocols, size_t count, struct wsffi_error **out_err);

/*
 Verifies client certificates against the CAs of the PEM file `path` (mutual TLS).
 `required`: clients without a valid certificate fail the TLS handshake; otherwise a
 client may present none, but one it presents must be valid. The subject of an
 accepted certificate is `wsffi_request_tls_subject`.
 NULL `options` or `path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
 detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_options_set_tls_client_ca_file(struct wsffi_listener_options *options, const char *path, bool required, struct wsffi_error **out_err);

/*
 Replaces the certificates of a running TLS listener with those of `options`: its
 default certificate (`wsffi_listener_options_set_tls_cert_*`) and its certificates for
 server names (`wsffi_listener_options_add_tls_sni_cert_*`), all at once; the other
 settings in `options` (client CAs, ALPN, timeouts) are not used. Handshakes that start
 afterwards present the new certificates and sessions from before are not resumed; open
 connections (and handshakes past choosing a certificate) keep theirs. Callable from any
 thread, also from callbacks. `options` stays the caller's and may be freed at once.
 Material is checked when set on `options`, so bad files fail there; this call fails
 with `WSFFI_STATUS_ERR_TLS` when `options` holds no certificate or the listener does not
 serve TLS, `WSFFI_STATUS_ERR_CLOSED` once the listener or its reactor stopped; on
 any error the listener keeps its certificates.
 NULL `listener` or `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
 detail stored there is the caller's (`wsffi_error_free`).
 */
wsffi_status wsffi_listener_set_tls_certificates(struct wsffi_listener *listener, const struct wsffi_listener_options *options, struct wsffi_error **out_err);

/*
 Subject of the client's TLS certificate as an RFC 4514 string ("CN=client,O=Example"),
 "" when the connection has no client certificate (or is not TLS), NULL for a NULL view.
 The string belongs to the view and lives as long as it.
 */
const char *wsffi_request_tls_subject(const struct wsffi_request *req);

/*
 The ALPN protocol agreed on with the client ("http/1.1" by default), "" without TLS or
 when none was agreed, NULL for a NULL view. The string belongs to the view and lives as
 long as it.
 */
const char *wsffi_request_tls_alpn(const struct wsffi_request *req);

/*
 The server name the client asked for with SNI, as sent (it chose the certificate; see
 `wsffi_listener_options_add_tls_sni_cert_files`), "" without TLS or when the client sent
 none, NULL for a NULL view. The string belongs to the view and lives as long as it.
 */
const char *wsffi_request_tls_server_name(const struct wsffi_request *req);

/*
 Subscribes a server-side connection to `topic` (a NUL-terminated UTF-8 name of 1 to
 `WSFFI_MAX_TOPIC_BYTES` bytes; any name: "chat/room-1", "prices.EUR"), so that
 `wsffi_server_publish` to that topic reaches it. The subscription ends with
 `wsffi_conn_unsubscribe` or when the connection closes.
 WSFFI_STATUS_ERR_ALREADY_DONE when it already was subscribed.
 NULL `conn` or `topic`: WSFFI_STATUS_ERR_NULL_PARAMETER. Empty `topic`:
 WSFFI_STATUS_ERR_INVALID_PARAMETER; longer than `WSFFI_MAX_TOPIC_BYTES`, or the
 connection has `wsffi_server_options_set_max_subscriptions` topics already:
 WSFFI_STATUS_ERR_TOO_BIG; not UTF-8: WSFFI_STATUS_ERR_INVALID_UTF8. A client connection:
 WSFFI_STATUS_ERR_UNSUPPORTED. A closing or closed connection: WSFFI_STATUS_ERR_CLOSED.
 Callable from any thread (outside the reactor thread it waits for the reactor).
 */
wsffi_status wsffi_conn_subscribe(struct wsffi_conn *conn, const char *topic);

/*
 Ends a subscription made with `wsffi_conn_subscribe`.
 WSFFI_STATUS_ERR_ALREADY_DONE when the connection was not subscribed to `topic` (also
 once it closed: closing ended its subscriptions).
 NULL `conn` or `topic`: WSFFI_STATUS_ERR_NULL_PARAMETER; not UTF-8:
 WSFFI_STATUS_ERR_INVALID_UTF8; a client connection: WSFFI_STATUS_ERR_UNSUPPORTED.
 Callable from any thread.
 */
wsffi_status wsffi_conn_unsubscribe(struct wsffi_conn *conn, const char *topic);

/*
 Is the connection subscribed to `topic`? false for NULL arguments, a name that is not
 UTF-8, a client connection and a closed one. Callable from any thread.
 */
bool wsffi_conn_is_subscribed(const struct wsffi_conn *conn, const char *topic);

/*
 Sends one message to every connection of `server` subscribed to `topic`, except
 `except_conn` (NULL: none; the publisher's own connection, typically). The frame is
 encoded once for all subscribers that do not compress it (each compressing connection
 has its own context). Subscribers above their high-water mark are skipped for this
 message, whatever the back-pressure policy, as `wsffi_server_broadcast` skips them. From the reactor thread (a callback)
 the message is queued to every subscriber before this returns; from another thread it is
 handed to the reactor and this returns at once. Either way the messages of one
 publishing thread reach each subscriber in the order they were published. A topic
 nobody subscribes to: WSFFI_STATUS_OK, nothing is sent. Text must be valid UTF-8.
 NULL `server` or `topic`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when
 `len` is 0; `kind` not WSFFI_TEXT or WSFFI_BINARY, or an empty `topic`:
 WSFFI_STATUS_ERR_INVALID_PARAMETER; a `topic` longer than `WSFFI_MAX_TOPIC_BYTES`:
 WSFFI_STATUS_ERR_TOO_BIG; a closed server: WSFFI_STATUS_ERR_CLOSED; the reactor's command
 queue full: WSFFI_STATUS_ERR_QUEUE_FULL.
 */
wsffi_status wsffi_server_publish(struct wsffi_server *server, const char *topic, uint32_t kind, const uint8_t *data, size_t len, const struct wsffi_conn *except_conn);

/*
 How many connections of `server` subscribe to `topic`; 0 for NULL arguments, a name
 that is not UTF-8, a topic nobody subscribes to and a closed server. Callable from any
 thread (outside the reactor thread it waits for the reactor).
 */
size_t wsffi_server_subscriber_count(const struct wsffi_server *server, const char *topic);

/*
 The request method ("GET"); NULL for a NULL view. The string belongs to the view and
 lives as long as it (the callback that received the view, or until `wsffi_request_free`
 of a copy).
 */
const char *wsffi_request_method(const struct wsffi_request *req);

/*
 The request target as sent ("/chat?room=1"), like `request.url` in Node; NULL for a NULL
 view. The string belongs to the view and lives as long as it (the callback that received
 the view, or until `wsffi_request_free` of a copy).
 */
const char *wsffi_request_url(const struct wsffi_request *req);

/*
 The path without the query ("/chat"); NULL for a NULL view. The string belongs to the
 view and lives as long as it (the callback that received the view, or until
 `wsffi_request_free` of a copy).
 */
const char *wsffi_request_path(const struct wsffi_request *req);

/*
 The raw query string without '?' ("" when none); NULL for a NULL view. The string
 belongs to the view and lives as long as it (the callback that received the view, or
 until `wsffi_request_free` of a copy).
 */
const char *wsffi_request_query_string(const struct wsffi_request *req);

/*
 The HTTP version ("1.1"); NULL for a NULL view. The string belongs to the view and lives
 as long as it (the callback that received the view, or until `wsffi_request_free` of a
 copy).
 */
const char *wsffi_request_http_version(const struct wsffi_request *req);

/*
 The peer's address ("127.0.0.1:53122"); NULL for a NULL view. The string belongs to the
 view and lives as long as it (the callback that received the view, or until
 `wsffi_request_free` of a copy).
 */
const char *wsffi_request_remote_address(const struct wsffi_request *req);

/*
 The Host header, NULL when absent or for a NULL view. The string belongs to the view and
 lives as long as it (the callback that received the view, or until `wsffi_request_free`
 of a copy).
 */
const char *wsffi_request_host(const struct wsffi_request *req);

/*
 The decoded value of query parameter `name` (first occurrence; '+' is a space), NULL
 when absent or when `req` or `name` is NULL. `query("a")` of "?a=1&b" is "1"; of "b" it
 is "". The string belongs to the view and lives as long as it (the callback that
 received the view, or until `wsffi_request_free` of a copy).
 */
const char *wsffi_request_query(const struct wsffi_request *req, const char *name);

/*
 The first value of header `name` (case-insensitive), NULL when absent or when `req` or
 `name` is NULL. The string belongs to the view and lives as long as it (the callback
 that received the view, or until `wsffi_request_free` of a copy).
 */
const char *wsffi_request_header(const struct wsffi_request *req, const char *name);

/*
 Whether header `name` is present (case-insensitive); false when `req` or `name` is NULL.
 */
bool wsffi_request_has_header(const struct wsffi_request *req, const char *name);

/*
 The number of headers in the raw list (0 for NULL).
 */
size_t wsffi_request_header_count(const struct wsffi_request *req);

/*
 Header `index` of the raw list, in received order and spelling: `*out_name` and
 `*out_value` receive strings that belong to the view and live as long as it. On failure
 both are set to NULL: WSFFI_STATUS_ERR_INVALID_PARAMETER when `index` is not below
 `wsffi_request_header_count`, WSFFI_STATUS_ERR_NULL_PARAMETER for a NULL `req`; a NULL
 `out_name` or `out_value` gives WSFFI_STATUS_ERR_NULL_PARAMETER and writes nothing.
 */
wsffi_status wsffi_request_header_at(const struct wsffi_request *req, size_t index, const char **out_name, const char **out_value);

/*
 Keeps a request view beyond the callback that received it: returns a copy the caller
 owns (to free with `wsffi_request_free`), whose strings live until then. NULL for NULL.
 */
const struct wsffi_request *wsffi_request_copy(const struct wsffi_request *req);

/*
 Frees a copy made by `wsffi_request_copy`. NULL is a no-op.
 */
void wsffi_request_free(const struct wsffi_request *req);

/*
 The HTTP status of a refused upgrade (0 for NULL).
 */
uint16_t wsffi_response_status(const struct wsffi_response *resp);

/*
 The reason phrase of a refused upgrade; NULL for a NULL view. The string belongs to the
 view, which is borrowed for the `on_unexpected_response` call.
 */
const char *wsffi_response_reason(const struct wsffi_response *resp);

/*
 The first value of response header `name` (case-insensitive), NULL when absent or when
 `resp` or `name` is NULL. Valid during the `on_unexpected_response` call.
 */
const char *wsffi_response_header(const struct wsffi_response *resp, const char *name);

/*
 The number of response headers (0 for NULL).
 */
size_t wsffi_response_header_count(const struct wsffi_response *resp);

/*
 Response header `index`, in received order: `*out_name` and `*out_value` receive strings
 valid during the `on_unexpected_response` call. On failure both are set to NULL:
 WSFFI_STATUS_ERR_INVALID_PARAMETER when `index` is not below
 `wsffi_response_header_count`, WSFFI_STATUS_ERR_NULL_PARAMETER for a NULL `resp`; a NULL
 `out_name` or `out_value` gives WSFFI_STATUS_ERR_NULL_PARAMETER and writes nothing.
 */
wsffi_status wsffi_response_header_at(const struct wsffi_response *resp, size_t index, const char **out_name, const char **out_value);

/*
 The body of a refused upgrade (up to 1 MiB kept), valid during the
 `on_unexpected_response` call; `*out_len` (when `out_len` is not NULL) receives its
 length. NULL with length 0 when the body is empty or `resp` is NULL.
 */
const uint8_t *wsffi_response_body(const struct wsffi_response *resp, size_t *out_len);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* WSFFI_H */
