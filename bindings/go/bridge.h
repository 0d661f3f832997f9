// C side of the Go binding: callback tables that point at the exported Go
// functions, and wrappers that take the cgo.Handle as a uintptr_t so that no Go
// pointer is ever stored by the library.
#ifndef WSFFI_GO_BRIDGE_H
#define WSFFI_GO_BRIDGE_H

#include <stdint.h>
#include <stdlib.h>
#include <wsffi.h>

enum {
	WSFFI_GO_VERIFY = 1,
	WSFFI_GO_PROTOCOLS = 2,
	WSFFI_GO_HEADERS = 4,
};

wsffi_status wsffi_go_connect(struct wsffi_reactor *reactor, const char *url,
			      const struct wsffi_client_options *options, uintptr_t handle,
			      struct wsffi_conn **out_conn, struct wsffi_error **out_err);

wsffi_status wsffi_go_conn_set_callbacks(struct wsffi_conn *conn, uintptr_t handle);

wsffi_status wsffi_go_server_attach(struct wsffi_reactor *reactor, struct wsffi_listener *listener,
				    const char *path, const struct wsffi_server_options *options,
				    unsigned hooks, uintptr_t handle, struct wsffi_server **out_server,
				    struct wsffi_error **out_err);

wsffi_status wsffi_go_listener_set_http_handler(struct wsffi_listener *listener, uintptr_t handle);

wsffi_status wsffi_go_add_timer(const struct wsffi_reactor *reactor, uint64_t delay_ms, uint64_t repeat_ms,
				uintptr_t handle, uint64_t *out_timer);

wsffi_status wsffi_go_set_log(uint32_t level, uintptr_t handle);

wsffi_status wsffi_go_reactor_options_set_wake(struct wsffi_reactor_options *options, uintptr_t handle);

#endif
