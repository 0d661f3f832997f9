package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"unsafe"
)

// dupFD duplicates the descriptor of a socket (close-on-exec), so the library
// can own its copy while the caller closes its own.
func dupFD(sc syscall.Conn) (int, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = errno
			return
		}
		nfd = int(r)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// ListenOn serves on a socket that is already bound and listening: an
// *os.File (systemd socket activation, a socket inherited from a parent) or a
// *net.TCPListener / *net.UnixListener, on the default reactor or
// opts.Reactor. The library works on a duplicate of the descriptor: the
// caller still owns ln and should close it (closing it does not affect the
// Listener). A descriptor that is not a listening socket fails here.
func ListenOn(ln syscall.Conn, opts *ListenOptions) (*Listener, error) {
	if opts == nil {
		opts = &ListenOptions{}
	}
	r, err := pickReactor(opts.Reactor)
	if err != nil {
		return nil, err
	}
	return r.ListenOn(ln, opts)
}

// ListenOn is the package ListenOn on this reactor (opts.Reactor is ignored).
func (r *Reactor) ListenOn(ln syscall.Conn, opts *ListenOptions) (*Listener, error) {
	fd, err := dupFD(ln)
	if err != nil {
		return nil, &Error{Op: "adopt listener", Status: Status(C.WSFFI_STATUS_ERR_IO), Message: err.Error()}
	}
	handed := false
	l, err := r.listen("adopt listener", opts, func(rp *C.wsffi_reactor, o *C.wsffi_listener_options, out **C.wsffi_listener, d **C.wsffi_error) C.wsffi_status {
		handed = true // the library owns (and on failure closes) fd from here
		return C.wsffi_listener_adopt_fd(rp, C.int32_t(fd), o, out, d)
	})
	if !handed {
		syscall.Close(fd)
	}
	return l, err
}

// NewServer makes a server on the default reactor that is not attached to a
// listener: it serves the connections handed to it by HandleUpgrade (an
// http.Handler of your own net/http server). Options and handler work as
// for Attach; the path is "/" and not checked.
func NewServer(opts *ServerOptions, h *Handler) (*Server, error) {
	r, err := DefaultReactor()
	if err != nil {
		return nil, err
	}
	return r.NewServer(opts, h)
}

// NewServer is the package NewServer on this reactor.
func (r *Reactor) NewServer(opts *ServerOptions, h *Handler) (*Server, error) {
	return r.attach(nil, "", opts, h)
}

// requestHead writes the request line and headers of an HTTP/1.x request as
// net/http received them (names canonicalised, order not kept).
func requestHead(r *http.Request) []byte {
	var b strings.Builder
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI() // a request made in Go rather than received
	}
	fmt.Fprintf(&b, "%s %s HTTP/%d.%d\r\n", r.Method, target, r.ProtoMajor, r.ProtoMinor)
	if r.Host != "" {
		fmt.Fprintf(&b, "Host: %s\r\n", r.Host)
	}
	for name, values := range r.Header {
		for _, v := range values {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// HandleUpgrade hands an upgrade request that a net/http server received to
// the library: it hijacks the connection, gives a duplicate of its socket and
// the request (head plus any bytes already read after it) to the server and
// closes the net/http side. The handshake then runs as for a listener
// (VerifyClient, OnConnection, ...), and so does a refusal: the library
// answers on the socket. Errors before the hijack (ErrUnsupported for TLS
// or HTTP/2 connections, whose state net/http keeps, or for a
// ResponseWriter that cannot hijack) leave w untouched; later ones mean the
// connection was dropped.
func (s *Server) HandleUpgrade(w http.ResponseWriter, r *http.Request) error {
	_, err := s.handleUpgrade(w, r)
	return err
}

func unsupported(msg string) error {
	return &Error{Op: "handle upgrade", Status: Status(C.WSFFI_STATUS_ERR_UNSUPPORTED), Message: msg}
}

func (s *Server) handleUpgrade(w http.ResponseWriter, r *http.Request) (hijacked bool, err error) {
	if r.TLS != nil {
		return false, unsupported("a TLS connection of net/http cannot be handed over (serve TLS with a wsffi Listener)")
	}
	if r.ProtoMajor != 1 {
		return false, unsupported("only HTTP/1.x connections can be upgraded")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false, unsupported("the ResponseWriter cannot hijack its connection")
	}
	s.mu.RLock()
	gone := s.s == nil
	s.mu.RUnlock()
	if gone {
		return false, &Error{Op: "handle upgrade", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return false, &Error{Op: "handle upgrade", Status: Status(C.WSFFI_STATUS_ERR_IO), Message: err.Error()}
	}
	defer conn.Close() // the library works on its own duplicate
	head := requestHead(r)
	head = append(head, buffered(brw.Reader)...)
	sc, ok := conn.(syscall.Conn)
	if _, isTLS := conn.(*tls.Conn); isTLS || !ok {
		return true, unsupported("the connection has no socket to hand over")
	}
	fd, err := dupFD(sc)
	if err != nil {
		return true, &Error{Op: "handle upgrade", Status: Status(C.WSFFI_STATUS_ERR_IO), Message: err.Error()}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		syscall.Close(fd)
		return true, &Error{Op: "handle upgrade", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	// fd passes to the library, also on error.
	st := C.wsffi_server_handle_upgrade(s.s, C.int32_t(fd), (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(head))), C.size_t(len(head)))
	return true, statusErr("handle upgrade", st)
}

func buffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// ServeHTTP makes a Server an http.Handler for a WebSocket path of a net/http
// mux: upgrade requests go to HandleUpgrade; other requests get 426 Upgrade
// Required; a request that cannot be handed over (TLS, HTTP/2) gets 501,
// one for a closed server 503.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "426 Upgrade Required: this is a WebSocket endpoint", http.StatusUpgradeRequired)
		return
	}
	if hijacked, err := s.handleUpgrade(w, r); err != nil && !hijacked {
		code := http.StatusNotImplemented
		if errors.Is(err, ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
