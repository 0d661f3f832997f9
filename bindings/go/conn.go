package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"net/http"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// MessageType is the type of a data message.
type MessageType int

const (
	// Text is a UTF-8 text message.
	Text MessageType = C.WSFFI_TEXT
	// Binary is a binary message.
	Binary MessageType = C.WSFFI_BINARY
)

func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "invalid"
}

// Handler holds the callbacks of a connection; nil fields are not called.
// They run on the reactor thread, one at a time and in event order, so they
// must not block. Byte slices passed to them are copies the callee may keep.
// A panic in a handler is recovered, reported to the panic hook (SetPanicHook)
// and closes the connection with 1011.
//
// When OnMessage is nil, messages are queued for Conn.Read instead.
type Handler struct {
	OnOpen    func(c *Conn)
	OnMessage func(c *Conn, typ MessageType, data []byte)
	// OnClose runs exactly once, last.
	OnClose func(c *Conn, ce *CloseError)
	// OnError reports a failure; OnClose follows.
	OnError func(c *Conn, err error)
	// OnPing runs after the automatic pong was queued.
	OnPing func(c *Conn, data []byte)
	OnPong func(c *Conn, data []byte)
	// OnDrain runs when the output buffer fell to the low-water mark after a
	// send failed with ErrBackpressure.
	OnDrain func(c *Conn)
	// OnMessagePart receives messages in parts as they arrive on connections
	// with StreamMessages set (DialOptions or ServerOptions), instead of
	// OnMessage or Read: first and last mark a message's ends (the last part may
	// be empty). Parts of compressed messages are inflated, at most 32 KiB each;
	// MaxPayload does not apply, so a message may be larger than memory.
	OnMessagePart func(c *Conn, typ MessageType, part []byte, first, last bool)
	// OnReconnect (clients with DialOptions.Reconnect): the connection or an
	// attempt was lost and attempt number attempt starts after delay; err says
	// why. OnOpen runs again on success; OnError and OnClose come once, at the end.
	OnReconnect func(c *Conn, attempt int, delay time.Duration, err error)
}

type message struct {
	typ  MessageType
	data []byte
}

// Conn is one WebSocket connection, client or server side. Its methods may be
// called from any goroutine and from handler callbacks.
type Conn struct {
	reactor *Reactor
	handler Handler
	handle  cgo.Handle
	req     *Request // server side
	server  *Server  // server side

	// mu guards c: the library reference, released after the last callback.
	mu        sync.RWMutex
	c         *C.wsffi_conn
	destroyed bool

	opened chan struct{} // closed when open (or never)
	done   chan struct{} // closed after on_close

	// read queue (when handler.OnMessage is nil)
	qmu       sync.Mutex
	q         []message
	qhead     int
	qbytes    int
	qwake     chan struct{}
	paused    bool
	readLimit int

	drainMu sync.Mutex
	drainCh chan struct{}

	// set on the reactor thread before done is closed
	closeErr *CloseError
	lastErr  error
	response *ResponseError
	panicked bool
	final    ConnStats // the counters at the close

	// What the last open told; a reconnect opens again and swaps in a new one.
	info       atomic.Pointer[openInfo]
	openedOnce sync.Once
}

// openInfo is what a connection's open told, read by the getters from any goroutine.
type openInfo struct {
	protocol, extension, remote string
	tls                         TLSState
	upgrade                     *HandshakeResponse
}

// openInfo is the last open's details (zero values before the first).
func (c *Conn) openInfo() *openInfo {
	if p := c.info.Load(); p != nil {
		return p
	}
	return &openInfo{}
}

// HandshakeResponse is the server's 101 answer to a client's upgrade (the
// "upgrade" event of Node's ws): status, reason and headers as received.
type HandshakeResponse struct {
	StatusCode int
	Reason     string
	Header     http.Header
}

// TLSState describes the TLS session of a connection; all fields are ""
// without TLS.
type TLSState struct {
	// NegotiatedProtocol is the ALPN protocol agreed on ("http/1.1" by
	// default), "" when none was.
	NegotiatedProtocol string
	// PeerSubject is the RFC 4514 subject of the peer's certificate: on a
	// client the server's (the one it chose by SNI), on a server the client
	// certificate's ("" without one).
	PeerSubject string
	// ServerName is the SNI name the client asked for (server side only).
	ServerName string
}

const defaultReadLimit = 16 << 20

func newConn(r *Reactor, h *Handler, readLimit int) *Conn {
	c := &Conn{
		reactor: r,
		opened:  make(chan struct{}),
		done:    make(chan struct{}),
		qwake:   make(chan struct{}, 1),
		drainCh: make(chan struct{}),
	}
	if h != nil {
		c.handler = *h
	}
	c.readLimit = readLimit
	if c.readLimit <= 0 {
		c.readLimit = defaultReadLimit
	}
	c.handle = cgo.NewHandle(c)
	return c
}

// with runs f with the library reference, or returns ErrClosed once the
// connection is gone.
func (c *Conn) with(op string, f func(p *C.wsffi_conn) C.wsffi_status) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		if c.destroyed {
			return &Error{Op: op, Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
		}
		return &Error{Op: op, Status: Status(C.WSFFI_STATUS_ERR_NOT_OPEN)}
	}
	return statusErr(op, f(c.c))
}

// adopt is called at the start of each callback: it makes sure the Conn holds
// a reference even before Dial stored the one wsffi_connect returned.
func (c *Conn) adopt(p *C.wsffi_conn) {
	c.mu.RLock()
	ok := c.c != nil || c.destroyed
	c.mu.RUnlock()
	if ok {
		return
	}
	c.mu.Lock()
	if c.c == nil && !c.destroyed {
		c.c = C.wsffi_conn_retain(p)
	}
	c.mu.Unlock()
}

// store keeps the reference wsffi_connect returned, unless one is held already
// or the connection is gone.
func (c *Conn) store(p *C.wsffi_conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil || c.destroyed {
		C.wsffi_conn_release(p)
		return
	}
	c.c = p
}

func (c *Conn) destroy() {
	c.mu.Lock()
	p := c.c
	c.c = nil
	c.destroyed = true
	c.mu.Unlock()
	if p != nil {
		C.wsffi_conn_release(p)
	}
	c.handle.Delete()
}

func cbytes(p unsafe.Pointer, n int) []byte {
	if n == 0 {
		return []byte{}
	}
	return C.GoBytes(p, C.int(n))
}

// Send sends one binary message. The data is copied before Send returns.
// ErrBackpressure: more than the high-water mark is buffered and nothing was
// queued (see SendContext); ErrNotOpen while connecting; ErrClosed once closing.
func (c *Conn) Send(data []byte) error {
	return c.with("send", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_send_binary(p, bytesPtr(data), C.size_t(len(data)))
	})
}

// SendText sends one text message (ErrInvalidUTF8 unless it is valid UTF-8).
func (c *Conn) SendText(s string) error {
	return c.with("send", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_send_text(p, (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s)))
	})
}

// Write sends one message of type typ.
func (c *Conn) Write(typ MessageType, data []byte) error {
	return c.with("send", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_send(p, C.uint32_t(typ), bytesPtr(data), C.size_t(len(data)))
	})
}

// WriteFragment sends one fragment of a message; the first sets the type,
// the one with final set ends the message.
func (c *Conn) WriteFragment(typ MessageType, data []byte, final bool) error {
	return c.with("send fragment", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_send_fragment(p, C.uint32_t(typ), bytesPtr(data), C.size_t(len(data)), C.bool(final))
	})
}

// SendContext is Write that waits for the output buffer to drain instead of
// failing with ErrBackpressure, until ctx is done. Do not call it from a
// handler callback (the drain it waits for would never come).
func (c *Conn) SendContext(ctx context.Context, typ MessageType, data []byte) error {
	for {
		c.drainMu.Lock()
		ch := c.drainCh
		c.drainMu.Unlock()
		err := c.Write(typ, data)
		if err == nil || !isStatus(err, C.WSFFI_STATUS_ERR_BACKPRESSURE) {
			return err
		}
		select {
		case <-ch:
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func isStatus(err error, st C.wsffi_status) bool {
	e, ok := err.(*Error)
	return ok && e.Status == Status(st)
}

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// Ping sends a ping with up to 125 bytes of payload (ErrTooBig beyond).
func (c *Conn) Ping(data []byte) error {
	return c.with("ping", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_ping(p, bytesPtr(data), C.size_t(len(data)))
	})
}

// Pong sends an unsolicited pong (pings are answered automatically).
func (c *Conn) Pong(data []byte) error {
	return c.with("pong", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_pong(p, bytesPtr(data), C.size_t(len(data)))
	})
}

// Close starts the close handshake with code (0 for none, then reason must
// be empty; otherwise 1000-1003, 1007-1014 or 3000-4999, else
// ErrInvalidParameter) and a reason of at most 123 bytes. It returns at once;
// Done is closed when the handshake ends.
func (c *Conn) Close(code int, reason string) error {
	if code < 0 || code > 0xffff {
		return &Error{Op: "close", Status: Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER)}
	}
	return c.with("close", func(p *C.wsffi_conn) C.wsffi_status {
		return C.wsffi_close(p, C.uint16_t(code), (*C.char)(unsafe.Pointer(unsafe.StringData(reason))), C.size_t(len(reason)))
	})
}

// Terminate drops the connection without a close handshake.
func (c *Conn) Terminate() error {
	return c.with("terminate", func(p *C.wsffi_conn) C.wsffi_status { return C.wsffi_terminate(p) })
}

// StopReconnect makes the current connection the last one (Reconnect on):
// during a wait before an attempt the connection ends now.
func (c *Conn) StopReconnect() error {
	return c.with("stop reconnect", func(p *C.wsffi_conn) C.wsffi_status { return C.wsffi_conn_stop_reconnect(p) })
}

// Pause stops reading from the peer until Resume.
func (c *Conn) Pause() error {
	return c.with("pause", func(p *C.wsffi_conn) C.wsffi_status { return C.wsffi_conn_pause(p) })
}

// Resume restarts reading after Pause.
func (c *Conn) Resume() error {
	return c.with("resume", func(p *C.wsffi_conn) C.wsffi_status { return C.wsffi_conn_resume(p) })
}

// Read returns the next message received, blocking until one arrives, the
// connection closes (a *CloseError, after every queued message) or ctx is
// done. Only for connections whose Handler has no OnMessage.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	for {
		c.qmu.Lock()
		if c.qhead < len(c.q) {
			m := c.q[c.qhead]
			c.q[c.qhead] = message{}
			c.qhead++
			if c.qhead == len(c.q) {
				c.q = c.q[:0]
				c.qhead = 0
			}
			c.qbytes -= len(m.data)
			if c.paused && c.qbytes <= c.readLimit/2 {
				c.paused = false
				_ = c.Resume()
			}
			more := c.qhead < len(c.q)
			c.qmu.Unlock()
			if more {
				c.wakeReader()
			}
			return m.typ, m.data, nil
		}
		c.qmu.Unlock()
		select {
		case <-c.qwake:
			continue
		case <-c.done:
			c.qmu.Lock()
			empty := c.qhead == len(c.q)
			c.qmu.Unlock()
			if empty {
				return 0, nil, c.closeErr
			}
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

func (c *Conn) wakeReader() {
	select {
	case c.qwake <- struct{}{}:
	default:
	}
}

// push queues a message for Read (reactor thread).
func (c *Conn) push(typ MessageType, data []byte) {
	c.qmu.Lock()
	c.q = append(c.q, message{typ, data})
	c.qbytes += len(data)
	if !c.paused && c.qbytes > c.readLimit {
		c.paused = true
		_ = c.Pause()
	}
	c.qmu.Unlock()
	c.wakeReader()
}

// Done is closed once the connection has ended (after OnClose).
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseError tells how the connection ended; nil while it has not.
func (c *Conn) CloseError() *CloseError {
	select {
	case <-c.done:
		return c.closeErr
	default:
		return nil
	}
}

// Subprotocol is the negotiated subprotocol ("" when none).
func (c *Conn) Subprotocol() string { return c.openInfo().protocol }

// Extensions is the negotiated extensions header ("" when none).
func (c *Conn) Extensions() string { return c.openInfo().extension }

// RemoteAddr is the peer's address ("127.0.0.1:9000").
func (c *Conn) RemoteAddr() string { return c.openInfo().remote }

// HandshakeResponse is the server's 101 answer for a client connection; nil
// for server-side connections. Set once Dial returned.
func (c *Conn) HandshakeResponse() *HandshakeResponse { return c.openInfo().upgrade }

// TLS describes the connection's TLS session (zero without TLS). Set once
// the connection is open.
func (c *Conn) TLS() TLSState { return c.openInfo().tls }

// Request is the upgrade request of a server-side connection (nil for clients).
func (c *Conn) Request() *Request { return c.req }

// URL is the normalized URL (client) or the request target (server).
func (c *Conn) URL() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return ""
	}
	return C.GoString(C.wsffi_url(c.c))
}

// BufferedAmount is the number of bytes accepted by sends and not yet
// handed to the kernel.
func (c *Conn) BufferedAmount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return int(C.wsffi_buffered_amount(c.c))
}

// ReadyState is one of Connecting, Open, Closing, Closed.
type ReadyState int

const (
	Connecting ReadyState = C.WSFFI_CONNECTING
	Open       ReadyState = C.WSFFI_OPEN
	Closing    ReadyState = C.WSFFI_CLOSING
	Closed     ReadyState = C.WSFFI_CLOSED
)

// State is the connection's ready state.
func (c *Conn) State() ReadyState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		if c.destroyed {
			return Closed
		}
		return Connecting
	}
	return ReadyState(C.wsffi_ready_state(c.c))
}

// fail handles a panic from a user handler: report it, close with 1011.
func (c *Conn) fail(callback string, v any) {
	reportPanic(callback, v)
	c.panicked = true
	if err := c.Close(CloseInternalError, "handler panic"); err != nil {
		_ = c.Terminate()
	}
}
