package wsffi

// The functions the C bridge calls from the reactor thread. Each looks up its
// Go object by cgo.Handle and recovers panics of user code.

/*
#include "bridge.h"
*/
import "C"

import (
	"net/http"
	"runtime/cgo"
	"time"
	"unsafe"
)

func connOf(user unsafe.Pointer) *Conn {
	return cgo.Handle(uintptr(user)).Value().(*Conn)
}

func serverOf(user unsafe.Pointer) *Server {
	return cgo.Handle(uintptr(user)).Value().(*Server)
}

// guard runs a user callback, turning a panic into a 1011 close.
func (c *Conn) guard(name string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.fail(name, v)
		}
	}()
	f()
}

//export goConnOpen
func goConnOpen(user unsafe.Pointer, conn *C.struct_wsffi_conn) {
	c := connOf(user)
	c.reactor.noteThread()
	c.adopt(conn)
	info := &openInfo{
		protocol:  C.GoString(C.wsffi_protocol(conn)),
		extension: C.GoString(C.wsffi_extensions(conn)),
		remote:    C.GoString(C.wsffi_remote_address(conn)),
		tls: TLSState{
			NegotiatedProtocol: C.GoString(C.wsffi_tls_alpn(conn)),
			PeerSubject:        C.GoString(C.wsffi_tls_peer_subject(conn)),
		},
	}
	if c.req != nil {
		info.tls.ServerName = c.req.TLSServerName
	}
	if r := C.wsffi_conn_handshake_response(conn); r != nil {
		code, reason, h := responseHead(r)
		info.upgrade = &HandshakeResponse{StatusCode: code, Reason: reason, Header: h}
	}
	c.info.Store(info)
	// With reconnect the library opens the same connection again.
	c.openedOnce.Do(func() { close(c.opened) })
	if f := c.handler.OnOpen; f != nil {
		c.guard("OnOpen", func() { f(c) })
	}
}

//export goConnMessage
func goConnMessage(user unsafe.Pointer, conn *C.struct_wsffi_conn, kind C.uint32_t, data *C.uint8_t, n C.size_t) {
	c := connOf(user)
	c.adopt(conn)
	if c.panicked {
		return
	}
	b := cbytes(unsafe.Pointer(data), int(n))
	if f := c.handler.OnMessage; f != nil {
		c.guard("OnMessage", func() { f(c, MessageType(kind), b) })
		return
	}
	c.push(MessageType(kind), b)
}

//export goConnMessagePart
func goConnMessagePart(user unsafe.Pointer, conn *C.struct_wsffi_conn, kind C.uint32_t, data *C.uint8_t, n C.size_t,
	first, last C.bool) {
	c := connOf(user)
	c.adopt(conn)
	if c.panicked {
		return
	}
	if f := c.handler.OnMessagePart; f != nil {
		b := cbytes(unsafe.Pointer(data), int(n))
		c.guard("OnMessagePart", func() { f(c, MessageType(kind), b, bool(first), bool(last)) })
	}
}

//export goConnControl
func goConnControl(user unsafe.Pointer, conn *C.struct_wsffi_conn, pong C.int, data *C.uint8_t, n C.size_t) {
	c := connOf(user)
	c.adopt(conn)
	f, name := c.handler.OnPing, "OnPing"
	if pong != 0 {
		f, name = c.handler.OnPong, "OnPong"
	}
	if f == nil || c.panicked {
		return
	}
	b := cbytes(unsafe.Pointer(data), int(n))
	c.guard(name, func() { f(c, b) })
}

//export goConnDrain
func goConnDrain(user unsafe.Pointer, conn *C.struct_wsffi_conn) {
	c := connOf(user)
	c.adopt(conn)
	c.drainMu.Lock()
	close(c.drainCh)
	c.drainCh = make(chan struct{})
	c.drainMu.Unlock()
	if f := c.handler.OnDrain; f != nil && !c.panicked {
		c.guard("OnDrain", func() { f(c) })
	}
}

//export goConnError
func goConnError(user unsafe.Pointer, conn *C.struct_wsffi_conn, status C.wsffi_status, msg *C.char) {
	c := connOf(user)
	c.reactor.noteThread()
	c.adopt(conn)
	err := &Error{Status: Status(status), Message: C.GoString(msg)}
	if c.lastErr == nil {
		c.lastErr = err
	}
	if f := c.handler.OnError; f != nil {
		c.guard("OnError", func() { f(c, err) })
	}
}

//export goConnReconnect
func goConnReconnect(user unsafe.Pointer, conn *C.struct_wsffi_conn, attempt C.uint32_t, delayMs C.uint32_t,
	status C.wsffi_status, msg *C.char, info *C.struct_wsffi_close_info) {
	c := connOf(user)
	c.adopt(conn)
	err := &Error{Op: "reconnect", Status: Status(status), Message: C.GoString(msg)}
	if f := c.handler.OnReconnect; f != nil {
		delay := time.Duration(delayMs) * time.Millisecond
		c.guard("OnReconnect", func() { f(c, int(attempt), delay, err) })
	}
}

//export goConnUnexpected
func goConnUnexpected(user unsafe.Pointer, conn *C.struct_wsffi_conn, resp *C.struct_wsffi_response) {
	c := connOf(user)
	c.adopt(conn)
	re := &ResponseError{}
	re.StatusCode, re.Reason, re.Header = responseHead(resp)
	var blen C.size_t
	body := C.wsffi_response_body(resp, &blen)
	if body != nil && blen > 0 {
		re.Body = C.GoBytes(unsafe.Pointer(body), C.int(blen))
	}
	c.response = re
}

// responseHead copies the status line and headers of a response view.
func responseHead(resp *C.struct_wsffi_response) (int, string, http.Header) {
	h := http.Header{}
	n := int(C.wsffi_response_header_count(resp))
	for i := 0; i < n; i++ {
		var name, value *C.char
		if C.wsffi_response_header_at(resp, C.size_t(i), &name, &value) == C.WSFFI_STATUS_OK {
			h.Add(C.GoString(name), C.GoString(value))
		}
	}
	return int(C.wsffi_response_status(resp)), gostr(C.wsffi_response_reason(resp)), h
}

func infoHas(info *C.struct_wsffi_close_info, off, size uintptr) bool {
	return uintptr(info.size) >= off+size
}

//export goConnClose
func goConnClose(user unsafe.Pointer, conn *C.struct_wsffi_conn, info *C.struct_wsffi_close_info) {
	c := connOf(user)
	c.reactor.noteThread()
	c.adopt(conn)
	ce := &CloseError{
		Code:   int(info.code),
		Reason: C.GoStringN(info.reason, C.int(info.reason_len)),
		Clean:  bool(info.was_clean),
		Origin: CloseOrigin(info.origin),
		Err:    c.lastErr,
	}
	var i C.struct_wsffi_close_info
	if infoHas(info, unsafe.Offsetof(i.local_reason_len), unsafe.Sizeof(i.local_reason_len)) {
		ce.PeerCode = int(info.peer_code)
		if info.peer_reason != nil {
			ce.PeerReason = C.GoStringN(info.peer_reason, C.int(info.peer_reason_len))
		}
		ce.LocalCode = int(info.local_code)
		if info.local_reason != nil {
			ce.LocalReason = C.GoStringN(info.local_reason, C.int(info.local_reason_len))
		}
	}
	c.closeErr = ce
	c.final, _ = connStats(conn)
	defer func() {
		if s := c.server; s != nil {
			s.forget(c)
		}
		close(c.done)
		c.wakeReader()
	}()
	if f := c.handler.OnClose; f != nil {
		c.guard("OnClose", func() { f(c, ce) })
	}
}

//export goConnDestroy
func goConnDestroy(user unsafe.Pointer) {
	connOf(user).destroy()
}

//export goServerVerify
func goServerVerify(user unsafe.Pointer, hs *C.struct_wsffi_handshake) (verdict C.wsffi_verdict) {
	s := serverOf(user)
	s.reactor.noteThread()
	h := &Handshake{h: hs, Request: newRequest(C.wsffi_handshake_request(hs))}
	defer func() {
		if v := recover(); v != nil {
			reportPanic("VerifyClient", v)
			C.wsffi_handshake_set_reject(hs, 500, nil)
			verdict = C.WSFFI_VERDICT_REJECT
		}
		if verdict != C.WSFFI_VERDICT_DEFER {
			h.invalidate()
		}
	}()
	return C.wsffi_verdict(s.opts.VerifyClient(h))
}

//export goServerProtocols
func goServerProtocols(user unsafe.Pointer, req *C.struct_wsffi_request, offered **C.char, count C.size_t) (idx C.int) {
	s := serverOf(user)
	list := make([]string, int(count))
	ptrs := unsafe.Slice(offered, int(count))
	for i := range list {
		list[i] = C.GoString(ptrs[i])
	}
	defer func() {
		if v := recover(); v != nil {
			reportPanic("HandleProtocols", v)
			idx = -1
		}
	}()
	choice := s.opts.HandleProtocols(newRequest(req), list)
	for i, p := range list {
		if p == choice && choice != "" {
			return C.int(i)
		}
	}
	return -1
}

//export goServerHeaders
func goServerHeaders(user unsafe.Pointer, hs *C.struct_wsffi_handshake) {
	s := serverOf(user)
	h := &Handshake{h: hs, Request: newRequest(C.wsffi_handshake_request(hs))}
	defer func() {
		h.invalidate()
		if v := recover(); v != nil {
			reportPanic("Headers", v)
		}
	}()
	s.opts.Headers(h)
}

//export goServerConnection
func goServerConnection(user unsafe.Pointer, srv *C.struct_wsffi_server, conn *C.struct_wsffi_conn, req *C.struct_wsffi_request) {
	s := serverOf(user)
	s.reactor.noteThread()
	c := newConn(s.reactor, s.handler, s.opts.ReadLimit)
	c.server = s
	c.req = newRequest(req)
	c.c = C.wsffi_conn_retain(conn)
	if st := C.wsffi_go_conn_set_callbacks(conn, C.uintptr_t(c.handle)); st != C.WSFFI_STATUS_OK {
		// destroy already ran for the handle and released the reference.
		return
	}
	s.remember(c)
	if f := s.opts.OnConnection; f != nil {
		c.guard("OnConnection", func() { f(c, c.req) })
	}
	if s.accepting {
		s.enqueue(c)
	}
}

//export goServerError
func goServerError(user unsafe.Pointer, srv *C.struct_wsffi_server, which C.int, status C.wsffi_status, msg *C.char) {
	s := serverOf(user)
	err := &Error{Op: "server", Status: Status(status), Message: C.GoString(msg)}
	f, name := s.opts.OnClientError, "OnClientError"
	if which != 0 {
		f, name = s.opts.OnError, "OnError"
	}
	if f == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			reportPanic(name, v)
		}
	}()
	f(err)
}

//export goServerClose
func goServerClose(user unsafe.Pointer, srv *C.struct_wsffi_server) {
	s := serverOf(user)
	defer s.closed()
	if f := s.opts.OnClose; f != nil {
		defer func() {
			if v := recover(); v != nil {
				reportPanic("OnClose", v)
			}
		}()
		f()
	}
}

//export goServerDestroy
func goServerDestroy(user unsafe.Pointer) {
	s := serverOf(user)
	s.closed()
	s.handle.Delete()
}

//export goListenerHTTP
func goListenerHTTP(user unsafe.Pointer, req *C.struct_wsffi_request, resp *C.struct_wsffi_http_response) {
	l := cgo.Handle(uintptr(user)).Value().(*Listener)
	w := &HTTPResponse{r: resp}
	defer func() {
		w.r = nil
		if v := recover(); v != nil {
			reportPanic("HTTPHandler", v)
			C.wsffi_http_response_set_status(resp, 500, nil)
		}
	}()
	l.httpHandler(w, newRequest(req))
}
