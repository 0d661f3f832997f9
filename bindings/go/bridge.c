#include "bridge.h"
#include "_cgo_export.h"

static void tr_open(void *user, struct wsffi_conn *conn) { goConnOpen(user, conn); }

static void tr_message(void *user, struct wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len)
{
	goConnMessage(user, conn, kind, (uint8_t *)data, len);
}

static void tr_close(void *user, struct wsffi_conn *conn, const struct wsffi_close_info *info)
{
	goConnClose(user, conn, (struct wsffi_close_info *)info);
}

static void tr_error(void *user, struct wsffi_conn *conn, wsffi_status status, const char *message)
{
	goConnError(user, conn, status, (char *)message);
}

static void tr_ping(void *user, struct wsffi_conn *conn, const uint8_t *data, size_t len)
{
	goConnControl(user, conn, 0, (uint8_t *)data, len);
}

static void tr_pong(void *user, struct wsffi_conn *conn, const uint8_t *data, size_t len)
{
	goConnControl(user, conn, 1, (uint8_t *)data, len);
}

static void tr_drain(void *user, struct wsffi_conn *conn) { goConnDrain(user, conn); }

static void tr_unexpected(void *user, struct wsffi_conn *conn, const struct wsffi_response *resp)
{
	goConnUnexpected(user, conn, (struct wsffi_response *)resp);
}

static void tr_reconnect(void *user, struct wsffi_conn *conn, uint32_t attempt, uint32_t delay_ms, wsffi_status status,
			 const char *message, const struct wsffi_close_info *info)
{
	goConnReconnect(user, conn, attempt, delay_ms, status, (char *)message, (struct wsffi_close_info *)info);
}

static void tr_message_part(void *user, struct wsffi_conn *conn, uint32_t kind, const uint8_t *data, size_t len,
			    bool is_first, bool is_last)
{
	goConnMessagePart(user, conn, kind, (uint8_t *)data, len, is_first, is_last);
}

static void tr_conn_destroy(void *user) { goConnDestroy(user); }

static void fill_conn_callbacks(struct wsffi_conn_callbacks *cb)
{
	wsffi_conn_callbacks_init(cb, sizeof *cb);
	cb->on_open = tr_open;
	cb->on_message = tr_message;
	cb->on_close = tr_close;
	cb->on_error = tr_error;
	cb->on_ping = tr_ping;
	cb->on_pong = tr_pong;
	cb->on_drain = tr_drain;
	cb->on_unexpected_response = tr_unexpected;
	cb->on_reconnect = tr_reconnect;
	cb->on_message_part = tr_message_part;
}

wsffi_status wsffi_go_connect(struct wsffi_reactor *reactor, const char *url,
			      const struct wsffi_client_options *options, uintptr_t handle,
			      struct wsffi_conn **out_conn, struct wsffi_error **out_err)
{
	struct wsffi_conn_callbacks cb;
	fill_conn_callbacks(&cb);
	return wsffi_connect(reactor, url, options, &cb, (void *)handle, tr_conn_destroy, out_conn, out_err);
}

wsffi_status wsffi_go_conn_set_callbacks(struct wsffi_conn *conn, uintptr_t handle)
{
	struct wsffi_conn_callbacks cb;
	fill_conn_callbacks(&cb);
	return wsffi_conn_set_callbacks(conn, &cb, (void *)handle, tr_conn_destroy);
}

static wsffi_verdict tr_verify(void *user, struct wsffi_handshake *hs) { return goServerVerify(user, hs); }

static int tr_protocols(void *user, const struct wsffi_request *req, const char *const *offered, size_t count)
{
	return goServerProtocols(user, (struct wsffi_request *)req, (char **)offered, count);
}

static void tr_headers(void *user, struct wsffi_handshake *hs) { goServerHeaders(user, hs); }

static void tr_connection(void *user, struct wsffi_server *server, struct wsffi_conn *conn,
			  const struct wsffi_request *req)
{
	goServerConnection(user, server, conn, (struct wsffi_request *)req);
}

static void tr_client_error(void *user, struct wsffi_server *server, wsffi_status status, const char *message)
{
	goServerError(user, server, 0, status, (char *)message);
}

static void tr_server_error(void *user, struct wsffi_server *server, wsffi_status status, const char *message)
{
	goServerError(user, server, 1, status, (char *)message);
}

static void tr_server_close(void *user, struct wsffi_server *server) { goServerClose(user, server); }

static void tr_server_destroy(void *user) { goServerDestroy(user); }

wsffi_status wsffi_go_server_attach(struct wsffi_reactor *reactor, struct wsffi_listener *listener,
				    const char *path, const struct wsffi_server_options *options,
				    unsigned hooks, uintptr_t handle, struct wsffi_server **out_server,
				    struct wsffi_error **out_err)
{
	struct wsffi_server_callbacks cb;
	wsffi_server_callbacks_init(&cb, sizeof cb);
	if (hooks & WSFFI_GO_VERIFY)
		cb.verify_client = tr_verify;
	if (hooks & WSFFI_GO_PROTOCOLS)
		cb.handle_protocols = tr_protocols;
	if (hooks & WSFFI_GO_HEADERS)
		cb.headers = tr_headers;
	cb.on_connection = tr_connection;
	cb.on_client_error = tr_client_error;
	cb.on_error = tr_server_error;
	cb.on_close = tr_server_close;
	return wsffi_server_attach(reactor, listener, path, options, &cb, (void *)handle, tr_server_destroy,
				   out_server, out_err);
}

static void tr_http(void *user, const struct wsffi_request *req, struct wsffi_http_response *resp)
{
	goListenerHTTP(user, (struct wsffi_request *)req, resp);
}

wsffi_status wsffi_go_listener_set_http_handler(struct wsffi_listener *listener, uintptr_t handle)
{
	return wsffi_listener_set_http_handler(listener, handle ? tr_http : NULL, (void *)handle);
}

static void tr_timer(uint64_t timer, void *user) { goTimerFire(user, timer); }

static void tr_timer_destroy(void *user) { goTimerDestroy(user); }

wsffi_status wsffi_go_add_timer(const struct wsffi_reactor *reactor, uint64_t delay_ms, uint64_t repeat_ms,
				uintptr_t handle, uint64_t *out_timer)
{
	return wsffi_reactor_add_timer(reactor, delay_ms, repeat_ms, tr_timer, (void *)handle, tr_timer_destroy,
				       out_timer);
}

static void tr_log(uint32_t level, const char *message, void *user) { goLog(user, level, (char *)message); }

static void tr_log_destroy(void *user) { goLogDestroy(user); }

wsffi_status wsffi_go_set_log(uint32_t level, uintptr_t handle)
{
	if (!handle)
		return wsffi_set_log_callback(WSFFI_LOG_OFF, NULL, NULL, NULL);
	return wsffi_set_log_callback(level, tr_log, (void *)handle, tr_log_destroy);
}

static void tr_wake(void *user) { goReactorWake(user); }

static void tr_wake_destroy(void *user) { goReactorWakeDestroy(user); }

wsffi_status wsffi_go_reactor_options_set_wake(struct wsffi_reactor_options *options, uintptr_t handle)
{
	return wsffi_reactor_options_set_wake(options, tr_wake, (void *)handle, tr_wake_destroy);
}
