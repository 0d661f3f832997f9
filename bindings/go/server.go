package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Request is an HTTP request as the server received it (copied out of the
// library, so it may be kept).
type Request struct {
	Method     string
	URL        string // the request target as sent ("/chat?room=1")
	Path       string // without the query
	RawQuery   string
	Query      url.Values
	Proto      string // "1.1"
	Host       string
	RemoteAddr string
	TLSSubject string // RFC 4514 subject of the client certificate, "" without one
	// TLSALPN is the ALPN protocol agreed on with the client ("http/1.1" by
	// default; "" without TLS or when none was).
	TLSALPN string
	// TLSServerName is the name the client asked for with SNI, as sent ("" without TLS or SNI).
	TLSServerName string
	Header        http.Header
	HeaderOrder   [][2]string // headers in received order and spelling
}

func gostr(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

func newRequest(r *C.struct_wsffi_request) *Request {
	if r == nil {
		return nil
	}
	req := &Request{
		Method:        gostr(C.wsffi_request_method(r)),
		URL:           gostr(C.wsffi_request_url(r)),
		Path:          gostr(C.wsffi_request_path(r)),
		RawQuery:      gostr(C.wsffi_request_query_string(r)),
		Proto:         gostr(C.wsffi_request_http_version(r)),
		Host:          gostr(C.wsffi_request_host(r)),
		RemoteAddr:    gostr(C.wsffi_request_remote_address(r)),
		TLSSubject:    gostr(C.wsffi_request_tls_subject(r)),
		TLSALPN:       gostr(C.wsffi_request_tls_alpn(r)),
		TLSServerName: gostr(C.wsffi_request_tls_server_name(r)),
		Header:        http.Header{},
	}
	req.Query, _ = url.ParseQuery(req.RawQuery)
	n := int(C.wsffi_request_header_count(r))
	for i := 0; i < n; i++ {
		var name, value *C.char
		if C.wsffi_request_header_at(r, C.size_t(i), &name, &value) == C.WSFFI_STATUS_OK {
			k, v := C.GoString(name), C.GoString(value)
			req.Header.Add(k, v)
			req.HeaderOrder = append(req.HeaderOrder, [2]string{k, v})
		}
	}
	return req
}

// Verdict is what VerifyClient decides.
type Verdict uint32

const (
	// Accept goes on with the handshake.
	Accept Verdict = C.WSFFI_VERDICT_ACCEPT
	// Reject refuses with the status set by Handshake.SetReject (default 401).
	Reject Verdict = C.WSFFI_VERDICT_REJECT
	// Defer decides later, from any goroutine, with Handshake.Accept or
	// Handshake.Reject (before the listener's handshake timeout).
	Defer Verdict = C.WSFFI_VERDICT_DEFER
)

// Handshake is a server-side upgrade waiting for a decision. It is valid
// during the VerifyClient or Headers call that received it and, after a
// Defer verdict, until Accept or Reject.
type Handshake struct {
	Request *Request
	mu      sync.Mutex
	h       *C.wsffi_handshake
	live    bool
}

func (h *Handshake) use(op string, f func(*C.wsffi_handshake) C.wsffi_status) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h == nil {
		return &Error{Op: op, Status: Status(C.WSFFI_STATUS_ERR_ALREADY_DONE)}
	}
	return statusErr(op, f(h.h))
}

func (h *Handshake) invalidate() {
	h.mu.Lock()
	h.h = nil
	h.mu.Unlock()
}

// AddHeader adds a header to the response (the 101 or the refusal).
func (h *Handshake) AddHeader(name, value string) error {
	cn, cv := cstr(name), cstr(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	return h.use("handshake header", func(p *C.wsffi_handshake) C.wsffi_status {
		return C.wsffi_handshake_add_header(p, cn, cv)
	})
}

// SetReject sets the HTTP status (400-599) and reason ("" for the standard
// phrase) that a Reject verdict sends.
func (h *Handshake) SetReject(status int, reason string) error {
	var cr *C.char
	if reason != "" {
		cr = cstr(reason)
		defer C.free(unsafe.Pointer(cr))
	}
	return h.use("handshake reject", func(p *C.wsffi_handshake) C.wsffi_status {
		return C.wsffi_handshake_set_reject(p, C.uint16_t(status), cr)
	})
}

// Accept accepts a deferred handshake. ErrTimeout when the client left or the
// handshake timed out meanwhile; ErrAlreadyDone when decided already.
func (h *Handshake) Accept() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h == nil {
		return &Error{Op: "handshake accept", Status: Status(C.WSFFI_STATUS_ERR_ALREADY_DONE)}
	}
	p := h.h
	h.h = nil
	return statusErr("handshake accept", C.wsffi_handshake_accept(p))
}

// Reject refuses a deferred handshake with an HTTP status 400-599.
func (h *Handshake) Reject(status int, reason string) error {
	var cr *C.char
	if reason != "" {
		cr = cstr(reason)
		defer C.free(unsafe.Pointer(cr))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h == nil {
		return &Error{Op: "handshake reject", Status: Status(C.WSFFI_STATUS_ERR_ALREADY_DONE)}
	}
	p := h.h
	h.h = nil
	return statusErr("handshake reject", C.wsffi_handshake_reject(p, C.uint16_t(status), cr))
}

// ListenOptions configure Listen. Zero values keep the library defaults
// (backlog 1024, request head 16 KiB, handshake timeout 10 s).
type ListenOptions struct {
	Reactor          *Reactor
	Backlog          int
	MaxHeaderBytes   int
	HandshakeTimeout time.Duration
	ReusePort        bool

	// TLS: a certificate chain and key as PEM files, or a tls.Certificate
	// (a single certificate goes over as DER, a chain as PEM; the key must
	// be PKCS#8-encodable). Every connection then speaks TLS.
	TLSCertFile    string
	TLSKeyFile     string
	TLSCertificate *tls.Certificate
	// TLSSNI holds certificates for clients that ask for a server name by
	// SNI; the certificate above is the default for the others (without
	// one their handshake fails).
	TLSSNI []SNICertificate
	// TLSALPN are the ALPN protocols accepted, the server's order deciding;
	// nil keeps the default ("http/1.1"), an empty non-nil slice accepts
	// none (clients' offers are ignored). Needs a certificate.
	TLSALPN []string
	// Mutual TLS: verify client certificates against this CA file; with
	// TLSClientCertRequired clients without a valid one fail the handshake.
	TLSClientCAFile       string
	TLSClientCertRequired bool
}

// SNICertificate is presented to TLS clients that ask for ServerName: a
// DNS name ("chat.example.com") or a wildcard one label deep
// ("*.example.com"), compared case-insensitively; an exact name wins over a
// wildcard. The chain and key come from PEM files or a tls.Certificate.
type SNICertificate struct {
	ServerName  string
	CertFile    string
	KeyFile     string
	Certificate *tls.Certificate
}

// Certificates is the certificate set of a TLS listener, for
// (*Listener).SetCertificates: a default certificate (PEM files or a
// tls.Certificate) and certificates by server name.
type Certificates struct {
	CertFile    string
	KeyFile     string
	Certificate *tls.Certificate
	SNI         []SNICertificate
}

// setCertificates puts a default certificate and SNI certificates on listener
// options. A tls.Certificate with one certificate goes over as DER, a chain
// as PEM.
func setCertificates(o *C.wsffi_listener_options, certFile, keyFile string, cert *tls.Certificate, sni []SNICertificate) error {
	if certFile != "" || keyFile != "" {
		cc, ck := cstr(certFile), cstr(keyFile)
		var d *C.wsffi_error
		st := C.wsffi_listener_options_set_tls_cert_files(o, cc, ck, &d)
		C.free(unsafe.Pointer(cc))
		C.free(unsafe.Pointer(ck))
		if err := detailErr("tls cert files", st, d); err != nil {
			return err
		}
	}
	if cert != nil {
		if err := withCertificate(cert, func(c *C.uint8_t, cn C.size_t, k *C.uint8_t, kn C.size_t, der bool, d **C.wsffi_error) C.wsffi_status {
			if der {
				return C.wsffi_listener_options_set_tls_cert_der(o, c, cn, k, kn, d)
			}
			return C.wsffi_listener_options_set_tls_cert_pem(o, c, cn, k, kn, d)
		}); err != nil {
			return err
		}
	}
	for _, sc := range sni {
		name := cstr(sc.ServerName)
		var err error
		if sc.Certificate != nil {
			err = withCertificate(sc.Certificate, func(c *C.uint8_t, cn C.size_t, k *C.uint8_t, kn C.size_t, der bool, d **C.wsffi_error) C.wsffi_status {
				if der {
					return C.wsffi_listener_options_add_tls_sni_cert_der(o, name, c, cn, k, kn, d)
				}
				return C.wsffi_listener_options_add_tls_sni_cert_pem(o, name, c, cn, k, kn, d)
			})
		} else {
			cc, ck := cstr(sc.CertFile), cstr(sc.KeyFile)
			var d *C.wsffi_error
			st := C.wsffi_listener_options_add_tls_sni_cert_files(o, name, cc, ck, &d)
			C.free(unsafe.Pointer(cc))
			C.free(unsafe.Pointer(ck))
			err = detailErr("tls sni cert files", st, d)
		}
		C.free(unsafe.Pointer(name))
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Op = "tls sni " + sc.ServerName
			}
			return err
		}
	}
	return nil
}

// withCertificate hands a tls.Certificate to set: DER for a single
// certificate, PEM for a chain; the key as PKCS#8.
func withCertificate(c *tls.Certificate, set func(cert *C.uint8_t, certLen C.size_t, key *C.uint8_t, keyLen C.size_t, der bool, d **C.wsffi_error) C.wsffi_status) error {
	if len(c.Certificate) == 0 {
		return &Error{Op: "tls certificate", Status: Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER), Message: "tls.Certificate without certificates"}
	}
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return &Error{Op: "tls certificate", Status: Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER), Message: err.Error()}
	}
	var d *C.wsffi_error
	var st C.wsffi_status
	if len(c.Certificate) == 1 {
		st = set(bytesPtr(c.Certificate[0]), C.size_t(len(c.Certificate[0])), bytesPtr(k), C.size_t(len(k)), true, &d)
	} else {
		chain, key := tlsPEM(c.Certificate, k)
		st = set(bytesPtr(chain), C.size_t(len(chain)), bytesPtr(key), C.size_t(len(key)), false, &d)
	}
	return detailErr("tls certificate", st, d)
}

// SetCertificates replaces the certificates of a running TLS listener (the
// default one and those by server name, all at once). Handshakes that start
// afterwards present the new ones; open connections keep theirs. ErrTLS when
// c holds no certificate or the listener does not serve TLS; on any error the
// listener keeps its certificates.
func (l *Listener) SetCertificates(c *Certificates) error {
	if c == nil {
		c = &Certificates{}
	}
	o := C.wsffi_listener_options_new()
	if o == nil {
		return &Error{Op: "listener options", Status: Status(C.WSFFI_STATUS_ERR_INTERNAL)}
	}
	defer C.wsffi_listener_options_free(o)
	if err := setCertificates(o, c.CertFile, c.KeyFile, c.Certificate, c.SNI); err != nil {
		return err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.l == nil {
		return &Error{Op: "set certificates", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	var d *C.wsffi_error
	return detailErr("set certificates", C.wsffi_listener_set_tls_certificates(l.l, o, &d), d)
}

// Listener is a listening socket that servers attach to by path.
type Listener struct {
	reactor *Reactor
	mu      sync.RWMutex
	l       *C.wsffi_listener
	addr    string
	port    int

	httpHandler func(w *HTTPResponse, r *Request)
}

// Listen listens on addr ("127.0.0.1:8080", ":0" style "127.0.0.1:0",
// "[::1]:9000", "unix:/path") on the default reactor or opts.Reactor.
func Listen(addr string, opts *ListenOptions) (*Listener, error) {
	if opts == nil {
		opts = &ListenOptions{}
	}
	r, err := pickReactor(opts.Reactor)
	if err != nil {
		return nil, err
	}
	return r.Listen(addr, opts)
}

func tlsPEM(certs [][]byte, pkcs8 []byte) (chain, key []byte) {
	for _, der := range certs {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
}

// Listen is the package Listen on this reactor (opts.Reactor is ignored).
func (r *Reactor) Listen(addr string, opts *ListenOptions) (*Listener, error) {
	ca := cstr(addr)
	defer C.free(unsafe.Pointer(ca))
	return r.listen("listen", opts, func(rp *C.wsffi_reactor, o *C.wsffi_listener_options, l **C.wsffi_listener, d **C.wsffi_error) C.wsffi_status {
		return C.wsffi_listen(rp, ca, o, l, d)
	})
}

// listen builds the listener options of opts and opens the listener with open.
func (r *Reactor) listen(op string, opts *ListenOptions, open func(*C.wsffi_reactor, *C.wsffi_listener_options, **C.wsffi_listener, **C.wsffi_error) C.wsffi_status) (*Listener, error) {
	if opts == nil {
		opts = &ListenOptions{}
	}
	o := C.wsffi_listener_options_new()
	if o == nil {
		return nil, &Error{Op: "listener options", Status: Status(C.WSFFI_STATUS_ERR_INTERNAL)}
	}
	defer C.wsffi_listener_options_free(o)
	if opts.Backlog > 0 {
		if err := statusErr("backlog", C.wsffi_listener_options_set_backlog(o, C.int32_t(opts.Backlog))); err != nil {
			return nil, err
		}
	}
	if opts.MaxHeaderBytes > 0 {
		if err := statusErr("max header bytes", C.wsffi_listener_options_set_max_header_bytes(o, C.size_t(opts.MaxHeaderBytes))); err != nil {
			return nil, err
		}
	}
	if opts.HandshakeTimeout > 0 {
		if err := statusErr("handshake timeout", C.wsffi_listener_options_set_handshake_timeout_ms(o, msec(opts.HandshakeTimeout))); err != nil {
			return nil, err
		}
	}
	if opts.ReusePort {
		C.wsffi_listener_options_set_reuse_port(o, true)
	}
	if err := setCertificates(o, opts.TLSCertFile, opts.TLSKeyFile, opts.TLSCertificate, opts.TLSSNI); err != nil {
		return nil, err
	}
	if opts.TLSALPN != nil {
		cs := cstrings(opts.TLSALPN)
		var d *C.wsffi_error
		st := C.wsffi_listener_options_set_tls_alpn(o, cArrayPtr(cs), C.size_t(len(cs)), &d)
		freeCStrings(cs)
		if err := detailErr("tls alpn", st, d); err != nil {
			return nil, err
		}
	}
	if opts.TLSClientCAFile != "" {
		cp := cstr(opts.TLSClientCAFile)
		var d *C.wsffi_error
		st := C.wsffi_listener_options_set_tls_client_ca_file(o, cp, C.bool(opts.TLSClientCertRequired), &d)
		C.free(unsafe.Pointer(cp))
		if err := detailErr("tls client ca", st, d); err != nil {
			return nil, err
		}
	}
	rp, err := r.acquire()
	if err != nil {
		return nil, err
	}
	defer r.release()
	var l *C.wsffi_listener
	var d *C.wsffi_error
	if err := detailErr(op, open(rp, o, &l, &d), d); err != nil {
		return nil, err
	}
	return &Listener{
		reactor: r,
		l:       l,
		addr:    C.GoString(C.wsffi_listener_address(l)),
		port:    int(C.wsffi_listener_port(l)),
	}, nil
}

// Addr is the bound address ("127.0.0.1:43121", "unix:/path").
func (l *Listener) Addr() string { return l.addr }

// Port is the bound port (0 for Unix sockets).
func (l *Listener) Port() int { return l.port }

// Close stops listening. Connections already accepted go on, and attached
// servers stay until their Close.
func (l *Listener) Close() error {
	l.mu.Lock()
	p := l.l
	l.l = nil
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	return statusErr("listener close", C.wsffi_listener_close(p))
}

// HTTPResponse is the answer to a plain (non-upgrade) HTTP request; valid
// during the handler call.
type HTTPResponse struct {
	r *C.wsffi_http_response
}

// SetStatus sets the status (200-599) and reason ("" for the standard one).
func (w *HTTPResponse) SetStatus(status int, reason string) error {
	var cr *C.char
	if reason != "" {
		cr = cstr(reason)
		defer C.free(unsafe.Pointer(cr))
	}
	return statusErr("http status", C.wsffi_http_response_set_status(w.r, C.uint16_t(status), cr))
}

// AddHeader adds a response header.
func (w *HTTPResponse) AddHeader(name, value string) error {
	cn, cv := cstr(name), cstr(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	return statusErr("http header", C.wsffi_http_response_add_header(w.r, cn, cv))
}

// SetBody sets the response body.
func (w *HTTPResponse) SetBody(b []byte) error {
	return statusErr("http body", C.wsffi_http_response_set_body(w.r, bytesPtr(b), C.size_t(len(b))))
}

// HandleHTTP answers plain HTTP requests on this listener with f (on the
// reactor thread; the response is sent when f returns). nil removes it.
// Set it at most once per listener: the C API gives no moment at which a
// replaced handler is certainly unused, so its state lives until the reactor
// is closed.
func (l *Listener) HandleHTTP(f func(w *HTTPResponse, r *Request)) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.l == nil {
		return &Error{Op: "http handler", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	if f == nil {
		return statusErr("http handler", C.wsffi_go_listener_set_http_handler(l.l, 0))
	}
	l.httpHandler = f
	h := cgo.NewHandle(l)
	l.reactor.addHTTPHandle(h)
	return statusErr("http handler", C.wsffi_go_listener_set_http_handler(l.l, C.uintptr_t(h)))
}

// BackpressurePolicy: see ServerOptions.Backpressure.
type BackpressurePolicy uint32

const (
	BackpressureRefuse    BackpressurePolicy = C.WSFFI_BACKPRESSURE_REFUSE
	BackpressureDrop      BackpressurePolicy = C.WSFFI_BACKPRESSURE_DROP
	BackpressureClose1008 BackpressurePolicy = C.WSFFI_BACKPRESSURE_CLOSE_1008
	BackpressureClose1013 BackpressurePolicy = C.WSFFI_BACKPRESSURE_CLOSE_1013
)

// ServerOptions configure a server. Zero values keep the library's server
// defaults: client tracking on, no connection limit, any Origin, max payload
// 64 MiB, ping after 60 s without input, idle timeout 120 s, close timeout
// 5 s, permessage-deflate declined.
type ServerOptions struct {
	DisableClientTracking bool // Broadcast then fails with ErrUnsupported
	MaxConnections        int
	AllowedOrigins        []string // others get 403
	MaxSubscriptions      int      // topics per connection (Conn.Subscribe); 0 keeps 10000
	// Backpressure is what happens to a client above its high-water mark:
	// BackpressureRefuse (sends fail with ErrBackpressure), BackpressureDrop
	// (the message is dropped for it: ErrDropped, counted), or BackpressureClose1008 /
	// BackpressureClose1013 after BackpressureGrace above the mark.
	Backpressure      BackpressurePolicy
	BackpressureGrace time.Duration

	MaxPayload int
	// StreamMessages delivers messages in parts to Handler.OnMessagePart.
	StreamMessages bool
	MaxFragments   int
	PingInterval   time.Duration // negative turns the ping off
	IdleTimeout    time.Duration // negative turns it off
	CloseTimeout   time.Duration
	HighWaterMark  int
	LowWaterMark   int
	ReadLimit      int // see DialOptions.ReadLimit

	Compression bool     // accept permessage-deflate
	Deflate     *Deflate // parameters (implies Compression)

	// VerifyClient decides on each upgrade (nil accepts every client that
	// passes the origin check).
	VerifyClient func(h *Handshake) Verdict
	// HandleProtocols picks one of the offered subprotocols ("" for none).
	// Without it the first offered one is chosen.
	HandleProtocols func(r *Request, offered []string) string
	// Headers adds response headers before the 101 is sent.
	Headers func(h *Handshake)
	// OnConnection sees each new connection before its OnOpen.
	OnConnection func(c *Conn, r *Request)
	// OnClientError reports failed handshakes, OnError failures of the server.
	OnClientError func(err error)
	OnError       func(err error)
	// OnClose runs when the server stopped and its last client is gone.
	OnClose func()
}

// Server is a WebSocket endpoint attached to a listener path.
type Server struct {
	reactor *Reactor
	handler *Handler
	opts    ServerOptions
	handle  cgo.Handle

	mu sync.RWMutex
	s  *C.wsffi_server

	cmu       sync.Mutex
	conns     map[*Conn]struct{}
	accepting bool
	backlog   []*Conn
	wake      chan struct{}
	done      chan struct{}
	doneOnce  sync.Once
}

func (s *Server) remember(c *Conn) {
	s.cmu.Lock()
	s.conns[c] = struct{}{}
	s.cmu.Unlock()
}

func (s *Server) forget(c *Conn) {
	s.cmu.Lock()
	delete(s.conns, c)
	s.cmu.Unlock()
}

func (s *Server) enqueue(c *Conn) {
	s.cmu.Lock()
	s.backlog = append(s.backlog, c)
	s.cmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Server) closed() { s.doneOnce.Do(func() { close(s.done) }) }

func serverOptions(o *ServerOptions) (*C.wsffi_server_options, error) {
	so := C.wsffi_server_options_new()
	if so == nil {
		return nil, &Error{Op: "server options", Status: Status(C.WSFFI_STATUS_ERR_INTERNAL)}
	}
	var errs []error
	check := func(name string, st C.wsffi_status) {
		if err := statusErr(name, st); err != nil {
			errs = append(errs, err)
		}
	}
	if o.DisableClientTracking {
		check("client tracking", C.wsffi_server_options_set_client_tracking(so, false))
	}
	if o.MaxConnections > 0 {
		check("max connections", C.wsffi_server_options_set_max_connections(so, C.size_t(o.MaxConnections)))
	}
	if o.Backpressure != BackpressureRefuse || o.BackpressureGrace > 0 {
		check("backpressure policy", C.wsffi_server_options_set_backpressure_policy(so, C.uint32_t(o.Backpressure),
			C.uint32_t(msec(o.BackpressureGrace))))
	}
	if o.MaxSubscriptions > 0 {
		check("max subscriptions", C.wsffi_server_options_set_max_subscriptions(so, C.size_t(o.MaxSubscriptions)))
	}
	for _, origin := range o.AllowedOrigins {
		cs := cstr(origin)
		check("allowed origin", C.wsffi_server_options_add_allowed_origin(so, cs))
		C.free(unsafe.Pointer(cs))
	}
	if o.MaxPayload > 0 {
		check("max payload", C.wsffi_server_options_set_max_payload(so, C.size_t(o.MaxPayload)))
	}
	if o.StreamMessages {
		check("stream messages", C.wsffi_server_options_set_stream_messages(so, true))
	}
	if o.MaxFragments > 0 {
		check("max fragments", C.wsffi_server_options_set_max_fragments(so, C.size_t(o.MaxFragments)))
	}
	if o.PingInterval != 0 {
		check("ping interval", C.wsffi_server_options_set_ping_interval_ms(so, msec(o.PingInterval)))
	}
	if o.IdleTimeout != 0 {
		check("idle timeout", C.wsffi_server_options_set_idle_timeout_ms(so, msec(o.IdleTimeout)))
	}
	if o.CloseTimeout > 0 {
		check("close timeout", C.wsffi_server_options_set_close_timeout_ms(so, msec(o.CloseTimeout)))
	}
	if o.HighWaterMark > 0 || o.LowWaterMark > 0 {
		high, low := waterMarks(o.HighWaterMark, o.LowWaterMark)
		check("water marks", C.wsffi_server_options_set_water_marks(so, high, low))
	}
	if o.Deflate != nil {
		p := o.Deflate.params()
		check("deflate", C.wsffi_server_options_set_deflate_params(so, &p))
	} else if o.Compression {
		check("deflate", C.wsffi_server_options_set_per_message_deflate(so, true))
	}
	if len(errs) > 0 {
		C.wsffi_server_options_free(so)
		return nil, errs[0]
	}
	return so, nil
}

// Attach attaches a WebSocket server at path ("/" when empty; exact match on
// the request path). Each connection gets the callbacks of h. When h has
// neither OnOpen nor OnMessage and opts has no OnConnection, connections
// are queued for Accept instead (goroutine-per-connection style).
func (l *Listener) Attach(path string, opts *ServerOptions, h *Handler) (*Server, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.l == nil {
		return nil, &Error{Op: "attach", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	return l.reactor.attach(l.l, path, opts, h)
}

// attach makes a server on listener l, or a standalone one with l nil.
func (r *Reactor) attach(l *C.wsffi_listener, path string, opts *ServerOptions, h *Handler) (*Server, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	so, err := serverOptions(opts)
	if err != nil {
		return nil, err
	}
	defer C.wsffi_server_options_free(so)
	s := &Server{
		reactor: r,
		handler: h,
		opts:    *opts,
		conns:   map[*Conn]struct{}{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.accepting = (h == nil || (h.OnOpen == nil && h.OnMessage == nil)) && opts.OnConnection == nil
	var hooks C.uint
	if opts.VerifyClient != nil {
		hooks |= C.WSFFI_GO_VERIFY
	}
	if opts.HandleProtocols != nil {
		hooks |= C.WSFFI_GO_PROTOCOLS
	}
	if opts.Headers != nil {
		hooks |= C.WSFFI_GO_HEADERS
	}
	rp, err := r.acquire()
	if err != nil {
		return nil, err
	}
	defer r.release()
	var cp *C.char
	if path != "" {
		cp = cstr(path)
		defer C.free(unsafe.Pointer(cp))
	}
	s.handle = cgo.NewHandle(s)
	var out *C.wsffi_server
	var d *C.wsffi_error
	// On failure destroy has run and deleted the handle.
	if err := detailErr("attach", C.wsffi_go_server_attach(rp, l, cp, so, hooks, C.uintptr_t(s.handle), &out, &d), d); err != nil {
		return nil, err
	}
	s.s = out
	return s, nil
}

// Accept returns the next connection (open, or already closed: its Read
// reports how) when the server queues connections (see Attach). It fails
// with ErrClosed once the server has stopped, or with ctx.Err().
func (s *Server) Accept(ctx context.Context) (*Conn, error) {
	for {
		s.cmu.Lock()
		if len(s.backlog) > 0 {
			c := s.backlog[0]
			s.backlog[0] = nil
			s.backlog = s.backlog[1:]
			s.cmu.Unlock()
			select {
			case <-c.opened:
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return c, nil
		}
		s.cmu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
			return nil, &Error{Op: "accept", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Path is the path the server answers.
func (s *Server) Path() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return C.GoString(C.wsffi_server_path(s.s))
}

// ClientCount is the number of open connections.
func (s *Server) ClientCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int(C.wsffi_server_client_count(s.s))
}

// Clients returns the server's connections that have not closed yet.
func (s *Server) Clients() []*Conn {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Broadcast sends one message to every open client (encoded once; clients
// above their high-water mark are skipped) and returns how many took it.
// From a handler callback it does not wait and returns -1.
func (s *Server) Broadcast(typ MessageType, data []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return 0, &Error{Op: "broadcast", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	if s.reactor.onReactorThread() {
		return -1, statusErr("broadcast", C.wsffi_server_broadcast(s.s, C.uint32_t(typ), bytesPtr(data), C.size_t(len(data)), nil))
	}
	var sent C.size_t
	err := statusErr("broadcast", C.wsffi_server_broadcast(s.s, C.uint32_t(typ), bytesPtr(data), C.size_t(len(data)), &sent))
	return int(sent), err
}

// Close stops the server: no new clients, open ones get a 1001 close. It
// returns at once; Done is closed when the last client is gone.
func (s *Server) Close() error {
	s.mu.Lock()
	p := s.s
	s.s = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return statusErr("server close", C.wsffi_server_close(p))
}

// Shutdown is Close, then waits for Done or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Close()
	select {
	case <-s.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the server stopped and its last client is gone.
func (s *Server) Done() <-chan struct{} { return s.done }
