package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"net/http"
	"time"
	"unsafe"
)

// Deflate holds permessage-deflate parameters; zero fields keep the library
// defaults (no-context-takeover off, window bits 15, threshold 64 bytes,
// level 6, memory level 8).
type Deflate struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int // 8..15
	ClientMaxWindowBits     int // 8..15
	Threshold               int // messages shorter than this are not compressed; negative: compress all
	Level                   int // 1..9; negative: 0 (store only)
	MemLevel                int // 1..9
}

func (d *Deflate) params() C.struct_wsffi_deflate_params {
	var p C.struct_wsffi_deflate_params
	C.wsffi_deflate_params_init(&p, C.size_t(unsafe.Sizeof(p)))
	p.server_no_context_takeover = C.bool(d.ServerNoContextTakeover)
	p.client_no_context_takeover = C.bool(d.ClientNoContextTakeover)
	if d.ServerMaxWindowBits != 0 {
		p.server_max_window_bits = C.uint8_t(d.ServerMaxWindowBits)
	}
	if d.ClientMaxWindowBits != 0 {
		p.client_max_window_bits = C.uint8_t(d.ClientMaxWindowBits)
	}
	if d.Threshold > 0 {
		p.threshold = C.size_t(d.Threshold)
	} else if d.Threshold < 0 {
		p.threshold = 0
	}
	if d.Level > 0 {
		p.level = C.uint32_t(d.Level)
	} else if d.Level < 0 {
		p.level = 0
	}
	if d.MemLevel != 0 {
		p.mem_level = C.uint8_t(d.MemLevel)
	}
	return p
}

// Reconnect configures automatic reconnect: after a lost connection (network
// errors, timeouts, 5xx answers, most server close codes) the client waits a
// random time in the upper half of InitialDelay × Factor^(n-1), capped at
// MaxDelay, and dials again on the same *Conn. Zero values: 1 s, factor 2, 30 s,
// no limit on attempts. While lost, sends fail with ErrReconnecting. A close
// with code 1002, 1003, 1007-1010, 4xx answers, TLS failures and Close end it.
type Reconnect struct {
	InitialDelay time.Duration
	Factor       float64
	MaxDelay     time.Duration
	MaxAttempts  int
}

// DialOptions configure Dial. The zero value (or nil) keeps the library's
// client defaults: permessage-deflate offered, connect and handshake timeouts
// 10 s, max payload 64 MiB, close timeout 5 s, no ping, no idle timeout.
type DialOptions struct {
	// Reactor runs the connection; nil for the default reactor.
	Reactor *Reactor
	// Handler receives the connection's events. Without OnMessage, messages
	// are queued for Read.
	Handler *Handler

	Protocols []string    // subprotocols offered, in order of preference
	Header    http.Header // extra request headers
	Origin    string

	ConnectTimeout   time.Duration
	HandshakeTimeout time.Duration
	CloseTimeout     time.Duration
	PingInterval     time.Duration // ping after this long without input; 0 off
	IdleTimeout      time.Duration // close with 1001 after this long without input; 0 off

	MaxPayload int // largest incoming message; larger ones close with 1009
	// StreamMessages delivers messages in parts to Handler.OnMessagePart.
	StreamMessages bool
	MaxFragments   int
	MaxHeaderBytes int
	HighWaterMark  int // sends fail with ErrBackpressure above this many buffered bytes
	LowWaterMark   int // OnDrain fires when the buffer falls to this
	// ReadLimit is how many bytes of queued messages Read may fall behind
	// before the connection stops reading from the socket (default 16 MiB).
	ReadLimit int

	DisableCompression bool
	Deflate            *Deflate // deflate parameters (implies compression)

	// TLS for wss://: CA files or directories to trust instead of the system's,
	// a client certificate, the name to verify instead of the URL host.
	TLSCAFiles         []string
	TLSCADirs          []string
	TLSClientCertFile  string
	TLSClientKeyFile   string
	TLSServerName      string
	InsecureSkipVerify bool // tests only
	// ALPN protocols offered in the TLS handshake, in order of preference;
	// nil keeps the default ("http/1.1"), an empty non-nil slice offers none.
	// The agreed one is Conn.TLS().NegotiatedProtocol.
	ALPN []string

	// Proxy sends the connection through a proxy, as curl's CURLOPT_PROXY:
	// "http://[user:pass@]host[:port]" (an HTTP CONNECT tunnel), "socks5://"
	// or "socks5h://" (the proxy resolves the name). TLS for wss:// runs
	// inside the tunnel, verified against the target host. A refusal (407,
	// 403, ...) fails Dial with ErrHandshakeRejected and a message starting
	// "proxy:". "" for none.
	Proxy string
	// ProxyFromEnvironment takes the proxy from https_proxy/HTTPS_PROXY
	// (wss), http_proxy (ws), all_proxy/ALL_PROXY and no_proxy/NO_PROXY
	// with curl's rules, when Proxy is "". Read at each Dial.
	ProxyFromEnvironment bool

	// FollowRedirects follows 301, 302, 303, 307 and 308 answers to the
	// upgrade (Authorization and Cookie headers are dropped when the host
	// changes). Without it such an answer is a *ResponseError. A loop, a bad
	// Location or more than MaxRedirects hops fail with ErrHandshakeRejected.
	FollowRedirects bool
	// Reconnect, when set, redials the same URL after a lost connection on the
	// same *Conn, with jittered exponential backoff (see Reconnect).
	Reconnect *Reconnect
	// MaxRedirects bounds the hops followed (0 keeps the default 10; negative
	// refuses the first redirect).
	MaxRedirects int
}

// cstrings copies strings to a C array (free with freeCStrings).
func cstrings(ss []string) []*C.char {
	out := make([]*C.char, len(ss))
	for i, s := range ss {
		out[i] = cstr(s)
	}
	return out
}

func freeCStrings(cs []*C.char) {
	for _, p := range cs {
		C.free(unsafe.Pointer(p))
	}
}

// cArrayPtr passes a []*C.char to C (Go memory holding only C pointers may be
// passed); nil for an empty slice.
func cArrayPtr(cs []*C.char) **C.char {
	if len(cs) == 0 {
		return nil
	}
	return (**C.char)(unsafe.Pointer(unsafe.SliceData(cs)))
}

func cstr(s string) *C.char { return C.CString(s) }

func clientOptions(o *DialOptions) (*C.wsffi_client_options, error) {
	opts := C.wsffi_client_options_new()
	if opts == nil {
		return nil, &Error{Op: "client options", Status: Status(C.WSFFI_STATUS_ERR_INTERNAL)}
	}
	fail := func(err error) (*C.wsffi_client_options, error) {
		C.wsffi_client_options_free(opts)
		return nil, err
	}
	withStr := func(s string, f func(*C.char) C.wsffi_status) C.wsffi_status {
		cs := cstr(s)
		defer C.free(unsafe.Pointer(cs))
		return f(cs)
	}
	for _, p := range o.Protocols {
		if err := statusErr("protocol "+p, withStr(p, func(cs *C.char) C.wsffi_status { return C.wsffi_client_options_add_protocol(opts, cs) })); err != nil {
			return fail(err)
		}
	}
	for name, values := range o.Header {
		for _, v := range values {
			cn := cstr(name)
			st := withStr(v, func(cs *C.char) C.wsffi_status { return C.wsffi_client_options_add_header(opts, cn, cs) })
			C.free(unsafe.Pointer(cn))
			if err := statusErr("header "+name, st); err != nil {
				return fail(err)
			}
		}
	}
	if o.Origin != "" {
		if err := statusErr("origin", withStr(o.Origin, func(cs *C.char) C.wsffi_status { return C.wsffi_client_options_set_origin(opts, cs) })); err != nil {
			return fail(err)
		}
	}
	type msSetter struct {
		name string
		d    time.Duration
		f    func(*C.wsffi_client_options, C.uint32_t) C.wsffi_status
	}
	for _, s := range []msSetter{
		{"connect timeout", o.ConnectTimeout, func(p *C.wsffi_client_options, v C.uint32_t) C.wsffi_status {
			return C.wsffi_client_options_set_connect_timeout_ms(p, v)
		}},
		{"handshake timeout", o.HandshakeTimeout, func(p *C.wsffi_client_options, v C.uint32_t) C.wsffi_status {
			return C.wsffi_client_options_set_handshake_timeout_ms(p, v)
		}},
		{"close timeout", o.CloseTimeout, func(p *C.wsffi_client_options, v C.uint32_t) C.wsffi_status {
			return C.wsffi_client_options_set_close_timeout_ms(p, v)
		}},
		{"ping interval", o.PingInterval, func(p *C.wsffi_client_options, v C.uint32_t) C.wsffi_status {
			return C.wsffi_client_options_set_ping_interval_ms(p, v)
		}},
		{"idle timeout", o.IdleTimeout, func(p *C.wsffi_client_options, v C.uint32_t) C.wsffi_status {
			return C.wsffi_client_options_set_idle_timeout_ms(p, v)
		}},
	} {
		if s.d > 0 {
			if err := statusErr(s.name, s.f(opts, msec(s.d))); err != nil {
				return fail(err)
			}
		}
	}
	if o.MaxPayload > 0 {
		if err := statusErr("max payload", C.wsffi_client_options_set_max_payload(opts, C.size_t(o.MaxPayload))); err != nil {
			return fail(err)
		}
	}
	if o.StreamMessages {
		C.wsffi_client_options_set_stream_messages(opts, true)
	}
	if o.MaxFragments > 0 {
		if err := statusErr("max fragments", C.wsffi_client_options_set_max_fragments(opts, C.size_t(o.MaxFragments))); err != nil {
			return fail(err)
		}
	}
	if o.MaxHeaderBytes > 0 {
		if err := statusErr("max header bytes", C.wsffi_client_options_set_max_header_bytes(opts, C.size_t(o.MaxHeaderBytes))); err != nil {
			return fail(err)
		}
	}
	if o.HighWaterMark > 0 || o.LowWaterMark > 0 {
		high, low := waterMarks(o.HighWaterMark, o.LowWaterMark)
		if err := statusErr("water marks", C.wsffi_client_options_set_water_marks(opts, high, low)); err != nil {
			return fail(err)
		}
	}
	if o.DisableCompression {
		C.wsffi_client_options_set_per_message_deflate(opts, false)
	} else if o.Deflate != nil {
		p := o.Deflate.params()
		if err := statusErr("deflate", C.wsffi_client_options_set_deflate_params(opts, &p)); err != nil {
			return fail(err)
		}
	}
	for _, f := range o.TLSCAFiles {
		var d *C.wsffi_error
		cs := cstr(f)
		st := C.wsffi_client_options_set_tls_ca_file(opts, cs, &d)
		C.free(unsafe.Pointer(cs))
		if err := detailErr("tls ca file", st, d); err != nil {
			return fail(err)
		}
	}
	for _, f := range o.TLSCADirs {
		var d *C.wsffi_error
		cs := cstr(f)
		st := C.wsffi_client_options_set_tls_ca_dir(opts, cs, &d)
		C.free(unsafe.Pointer(cs))
		if err := detailErr("tls ca dir", st, d); err != nil {
			return fail(err)
		}
	}
	if o.TLSClientCertFile != "" || o.TLSClientKeyFile != "" {
		var d *C.wsffi_error
		cc, ck := cstr(o.TLSClientCertFile), cstr(o.TLSClientKeyFile)
		st := C.wsffi_client_options_set_tls_client_cert(opts, cc, ck, &d)
		C.free(unsafe.Pointer(cc))
		C.free(unsafe.Pointer(ck))
		if err := detailErr("tls client cert", st, d); err != nil {
			return fail(err)
		}
	}
	if o.TLSServerName != "" {
		if err := statusErr("tls server name", withStr(o.TLSServerName, func(cs *C.char) C.wsffi_status { return C.wsffi_client_options_set_tls_server_name(opts, cs) })); err != nil {
			return fail(err)
		}
	}
	if o.InsecureSkipVerify {
		C.wsffi_client_options_set_tls_insecure(opts, true)
	}
	if o.ALPN != nil {
		cs := cstrings(o.ALPN)
		var d *C.wsffi_error
		st := C.wsffi_client_options_set_tls_alpn(opts, cArrayPtr(cs), C.size_t(len(cs)), &d)
		freeCStrings(cs)
		if err := detailErr("tls alpn", st, d); err != nil {
			return fail(err)
		}
	}
	if o.Proxy != "" {
		if err := statusErr("proxy", withStr(o.Proxy, func(cs *C.char) C.wsffi_status { return C.wsffi_client_options_set_proxy(opts, cs) })); err != nil {
			return fail(err)
		}
	} else if o.ProxyFromEnvironment {
		C.wsffi_client_options_set_proxy_from_env(opts, true)
	}
	if r := o.Reconnect; r != nil {
		initial, maxDelay, factor := r.InitialDelay, r.MaxDelay, r.Factor
		if initial <= 0 {
			initial = time.Second
		}
		if maxDelay <= 0 {
			maxDelay = 30 * time.Second
		}
		if factor == 0 {
			factor = 2
		}
		st := C.wsffi_client_options_set_reconnect(opts, C.uint32_t(msec(initial)), C.double(factor),
			C.uint32_t(msec(maxDelay)), C.uint32_t(max(r.MaxAttempts, 0)))
		if err := statusErr("reconnect", st); err != nil {
			return fail(err)
		}
	}
	if o.FollowRedirects {
		C.wsffi_client_options_set_follow_redirects(opts, true)
		if o.MaxRedirects != 0 {
			max := o.MaxRedirects
			if max < 0 {
				max = 0
			}
			C.wsffi_client_options_set_max_redirects(opts, C.uint32_t(max))
		}
	}
	return opts, nil
}

const defaultHighWater, defaultLowWater = 16 << 20, 4 << 20

func waterMarks(high, low int) (C.size_t, C.size_t) {
	if high <= 0 {
		high = defaultHighWater
	}
	if low <= 0 {
		low = defaultLowWater
		if low > high {
			low = high / 4
		}
	}
	return C.size_t(high), C.size_t(low)
}

// Dial opens a client connection to a ws://, wss:// or ws+unix:// URL on the
// default reactor (or opts.Reactor) and waits until it is open, failed, or
// ctx is done (then the attempt is aborted and ctx.Err() returned). A refused
// upgrade gives a *ResponseError.
func Dial(ctx context.Context, url string, opts *DialOptions) (*Conn, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	r, err := pickReactor(opts.Reactor)
	if err != nil {
		return nil, err
	}
	return r.Dial(ctx, url, opts)
}

// Dial is the package Dial on this reactor (opts.Reactor is ignored).
func (r *Reactor) Dial(ctx context.Context, url string, opts *DialOptions) (*Conn, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.inDispatch() {
		// The open it would wait for is a callback only this goroutine runs.
		return nil, statusErr("connect", C.WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK)
	}
	co, err := clientOptions(opts)
	if err != nil {
		return nil, err
	}
	defer C.wsffi_client_options_free(co)
	rp, err := r.acquire()
	if err != nil {
		return nil, err
	}
	c := newConn(r, opts.Handler, opts.ReadLimit)
	cu := cstr(url)
	var out *C.wsffi_conn
	var detail *C.wsffi_error
	// On failure destroy has already run (and deleted the handle).
	st := C.wsffi_go_connect(rp, cu, co, C.uintptr_t(c.handle), &out, &detail)
	r.release()
	C.free(unsafe.Pointer(cu))
	if err := detailErr("connect", st, detail); err != nil {
		return nil, err
	}
	c.store(out)
	select {
	case <-c.opened:
		return c, nil
	case <-c.done:
		select {
		case <-c.opened:
			return c, nil // opened, then closed at once: Read reports the close
		default:
		}
		if c.response != nil {
			return nil, c.response
		}
		if c.lastErr != nil {
			return nil, c.lastErr
		}
		return nil, c.closeErr
	case <-ctx.Done():
		_ = c.Terminate()
		if !r.dispatch {
			// In dispatch mode the close is a callback that may wait for a
			// dispatcher; it ends the connection whenever it runs.
			<-c.done
		}
		return nil, ctx.Err()
	}
}
