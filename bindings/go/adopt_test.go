package wsffi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// standalone makes a server fed by HandleUpgrade and shuts it down at cleanup.
func standalone(t *testing.T, so *ServerOptions, h *Handler) *Server {
	t.Helper()
	s, err := NewServer(so, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return s
}

func TestServeHTTPWithNetHTTPMux(t *testing.T) {
	reqs := make(chan *Request, 4)
	srv := standalone(t, &ServerOptions{
		VerifyClient: func(h *Handshake) Verdict {
			if h.Request.Query.Get("deny") != "" {
				_ = h.SetReject(403, "denied")
				return Reject
			}
			return Accept
		},
		OnConnection: func(c *Conn, r *Request) { reqs <- r },
	}, echoHandler)
	if srv.Path() != "/" {
		t.Fatalf("standalone path %q", srv.Path())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a normal page") })
	mux.Handle("/ws", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"

	resp, err := http.Get(hs.URL + "/index")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "a normal page" {
		t.Fatalf("page: %d %q", resp.StatusCode, body)
	}
	// A plain request to the WebSocket path stays with net/http: 426.
	resp, err = http.Get(hs.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET on the ws path: %d", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()

	c := dial(t, wsURL+"?room=1", &DialOptions{Header: http.Header{"X-Client": {"ours"}}})
	if err := c.SendText("via net/http"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("via net/http"))
	r := <-reqs
	if r.Path != "/ws" || r.Query.Get("room") != "1" || r.Header.Get("X-Client") != "ours" || r.RemoteAddr == "" {
		t.Fatalf("request as the server saw it: %+v", r)
	}

	// The refusal is the library's, on the handed-over socket.
	_, err = Dial(ctxT(t), wsURL+"?deny=1", nil)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("refused: %v", err)
	}

	// Another client library.
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("gorilla")); err != nil {
		t.Fatal(err)
	}
	if typ, data, err := ws.ReadMessage(); err != nil || typ != websocket.BinaryMessage || string(data) != "gorilla" {
		t.Fatalf("gorilla echo: %v %q %v", typ, data, err)
	}
	<-reqs
	if n := srv.ClientCount(); n != 2 {
		t.Fatalf("client count %d", n)
	}

	// A closed server: net/http answers 503, nothing is hijacked.
	srv.Close()
	_, resp, err = websocket.DefaultDialer.Dial(wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("closed server: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Bytes the client sent right after the request head (read ahead by
// net/http's buffer) reach the library too.
func TestHandleUpgradeKeepsBufferedBytes(t *testing.T) {
	srv := standalone(t, nil, echoHandler)
	errs := make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs <- srv.HandleUpgrade(w, r)
	}))
	defer hs.Close()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := []byte("pipelined")
	mask := []byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))}
	frame = append(frame, mask...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := "GET /anything HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("HandleUpgrade: %v", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("answer %d %v", resp.StatusCode, resp.Header)
	}
	got := make([]byte, 2+len(payload))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 0x81 || int(got[1]) != len(payload) || string(got[2:]) != string(payload) {
		t.Fatalf("echo frame %q", got)
	}
}

func TestHandleUpgradeRefusesTLS(t *testing.T) {
	srv := standalone(t, nil, echoHandler)
	errs := make(chan error, 1)
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := srv.HandleUpgrade(w, r)
		errs <- err
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotImplemented)
		}
	}))
	defer hs.Close()
	d := websocket.Dialer{TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig}
	if ws, _, err := d.Dial("wss"+strings.TrimPrefix(hs.URL, "https")+"/", nil); err == nil {
		ws.Close()
		t.Fatal("upgrade over net/http TLS succeeded")
	}
	if err := <-errs; !errors.Is(err, ErrUnsupported) {
		t.Fatalf("HandleUpgrade over TLS: %v", err)
	}
	hs.Client().CloseIdleConnections()
}

func TestListenOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	l, err := ListenOn(ln.(*net.TCPListener), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The Go listener is ours to close; the library has its own descriptor.
	ln.Close()
	if l.Port() != port {
		t.Fatalf("port %d, want %d", l.Port(), port)
	}
	s, err := l.Attach("/", nil, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if err := c.SendText("adopted"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("adopted"))

	// An *os.File, as systemd socket activation hands over.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln2.(*net.TCPListener).File()
	ln2.Close()
	if err != nil {
		t.Fatal(err)
	}
	l2, err := ListenOn(f, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	s2, err := l2.Attach("/", nil, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	dial(t, fmt.Sprintf("ws://%s/", l2.Addr()), nil)

	// With TLS options: an adopted socket serves wss://.
	ca := newTestCA(t)
	cert := ca.issue(t, "adopted", false, false, "127.0.0.1")
	ln3, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l4, err := ListenOn(ln3.(*net.TCPListener), &ListenOptions{TLSCertificate: &cert})
	ln3.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	s4, err := l4.Attach("/", nil, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	defer s4.Close()
	tc := dial(t, fmt.Sprintf("wss://%s/", l4.Addr()), &DialOptions{TLSCAFiles: []string{ca.file}})
	if !strings.Contains(tc.TLS().PeerSubject, "CN=adopted") {
		t.Fatalf("adopted TLS listener: %+v", tc.TLS())
	}

	// Not a listening socket.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if l3, err := ListenOn(devnull, nil); err == nil {
		l3.Close()
		t.Fatal("adopted /dev/null")
	}
	// Bad options: the duplicate is closed, nothing leaks into the library.
	ln4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	if _, err := ListenOn(ln4.(*net.TCPListener), &ListenOptions{TLSALPN: []string{""}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("bad options: %v", err)
	}
}
