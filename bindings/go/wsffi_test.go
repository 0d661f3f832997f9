package wsffi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if err := CloseDefault(); err != nil {
			fmt.Println("close default reactor:", err)
		}
	}))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type testServer struct {
	l   *Listener
	s   *Server
	url string
}

// serve listens on a free port, attaches a server and closes both at cleanup.
func serve(t *testing.T, lo *ListenOptions, path string, so *ServerOptions, h *Handler) *testServer {
	t.Helper()
	l, err := Listen("127.0.0.1:0", lo)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Attach(path, so, h)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	scheme := "ws"
	if lo != nil && (lo.TLSCertFile != "" || lo.TLSCertificate != nil) {
		scheme = "wss"
	}
	return &testServer{l: l, s: s, url: fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, l.Port(), path)}
}

var echoHandler = &Handler{
	OnMessage: func(c *Conn, typ MessageType, data []byte) {
		_ = c.Write(typ, data)
	},
}

func dial(t *testing.T, url string, o *DialOptions) *Conn {
	t.Helper()
	c, err := Dial(ctxT(t), url, o)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() {
		_ = c.Terminate()
		<-c.Done()
	})
	return c
}

func expectMessage(t *testing.T, c *Conn, typ MessageType, want []byte) {
	t.Helper()
	gt, got, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gt != typ || !bytes.Equal(got, want) {
		t.Fatalf("read %v %q, want %v %q", gt, got, typ, want)
	}
}

func TestEchoHandlerServer(t *testing.T) {
	ts := serve(t, nil, "/echo", nil, echoHandler)
	c := dial(t, ts.url, nil)
	if err := c.SendText("hello"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("hello"))
	if err := c.Send([]byte{0, 1, 2, 255}); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Binary, []byte{0, 1, 2, 255})
	if err := c.Send(nil); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Binary, []byte{})
	if c.URL() == "" || c.State() != Open {
		t.Fatalf("url %q state %v", c.URL(), c.State())
	}
}

func TestAcceptAndReadGoroutinePerConnection(t *testing.T) {
	ts := serve(t, nil, "/", nil, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			sc, err := ts.s.Accept(context.Background())
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("accept: %v", err)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					typ, data, err := sc.Read(context.Background())
					if err != nil {
						return
					}
					_ = sc.Write(typ, bytes.ToUpper(data))
				}
			}()
		}
	}()
	for i := 0; i < 3; i++ {
		c := dial(t, ts.url, nil)
		msg := fmt.Sprintf("msg %d", i)
		if err := c.SendText(msg); err != nil {
			t.Fatal(err)
		}
		expectMessage(t, c, Text, []byte(strings.ToUpper(msg)))
		if err := c.Close(CloseNormal, ""); err != nil {
			t.Fatal(err)
		}
		<-c.Done()
	}
	ts.l.Close()
	ts.s.Close()
	wg.Wait()
}

func TestReadHonoursContext(t *testing.T) {
	ts := serve(t, nil, "/", nil, &Handler{OnOpen: func(*Conn) {}})
	c := dial(t, ts.url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read: %v, want deadline", err)
	}
}

func TestCloseCodes(t *testing.T) {
	serverClose := make(chan *CloseError, 1)
	ts := serve(t, nil, "/", nil, &Handler{
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			if string(data) == "close me" {
				_ = c.Close(4002, "as asked")
			}
		},
		OnClose: func(c *Conn, ce *CloseError) { serverClose <- ce },
	})

	// We close: the server sees our code, we see a clean local close.
	c := dial(t, ts.url, nil)
	if err := c.Close(4001, "bye"); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if ce.Code != 4001 || ce.Reason != "bye" || !ce.Clean || ce.Origin != CloseOriginLocal || ce.PeerCode != 4001 {
		t.Fatalf("client close %+v", ce)
	}
	sce := <-serverClose
	if sce.Code != 4001 || sce.Reason != "bye" || sce.Origin != CloseOriginPeer || !sce.Clean {
		t.Fatalf("server close %+v", sce)
	}
	if err := c.SendText("late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if err := c.Close(CloseNormal, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("close after close: %v", err)
	}

	// The server closes.
	c2 := dial(t, ts.url, nil)
	if err := c2.SendText("close me"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Read(ctxT(t))
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "as asked" || ce.Origin != CloseOriginPeer {
		t.Fatalf("peer close: %v", err)
	}
	<-serverClose
	if got := c2.CloseError(); got == nil || got.Code != 4002 {
		t.Fatalf("CloseError() = %v", got)
	}

	// Invalid close codes and reasons are refused and change nothing.
	c3 := dial(t, ts.url, nil)
	for _, code := range []int{1005, 1006, 999, 2000, 5000, 70000, -1} {
		if err := c3.Close(code, ""); !errors.Is(err, ErrInvalidParameter) {
			t.Fatalf("close(%d): %v", code, err)
		}
	}
	if err := c3.Close(0, "reason without code"); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("close(0, reason): %v", err)
	}
	if err := c3.Close(CloseNormal, strings.Repeat("x", 124)); !errors.Is(err, ErrInvalidParameter) && !errors.Is(err, ErrTooBig) {
		t.Fatalf("close with long reason: %v", err)
	}
	if err := c3.Ping(make([]byte, 126)); !errors.Is(err, ErrTooBig) {
		t.Fatalf("big ping: %v", err)
	}
	if err := c3.SendText(string([]byte{0xff, 0xfe})); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("bad utf-8: %v", err)
	}
	if c3.State() != Open {
		t.Fatalf("state after refused calls: %v", c3.State())
	}
	if err := c3.Close(0, ""); err != nil {
		t.Fatal(err)
	}
	<-c3.Done()
	if ce := c3.CloseError(); ce.Code != CloseNoStatus {
		t.Fatalf("empty close: %+v", ce)
	}
	<-serverClose

	// Terminate: no close frame, 1006.
	c4 := dial(t, ts.url, nil)
	if err := c4.Terminate(); err != nil {
		t.Fatal(err)
	}
	<-c4.Done()
	if ce := c4.CloseError(); ce.Code != CloseAbnormal || ce.Origin != CloseOriginNone || ce.Clean {
		t.Fatalf("terminate: %+v", ce)
	}
	if sce := <-serverClose; sce.Code != CloseAbnormal {
		t.Fatalf("server after terminate: %+v", sce)
	}
}

func TestConcurrentSends(t *testing.T) {
	const senders, each = 32, 50
	var got atomic.Int64
	ts := serve(t, nil, "/", nil, &Handler{
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			got.Add(1)
			_ = c.Write(typ, data)
		},
	})
	c := dial(t, ts.url, nil)
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.SendContext(context.Background(), Text, []byte(fmt.Sprintf("%d:%d", g, i))); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}(g)
	}
	seen := map[string]bool{}
	next := make([]int, senders)
	for len(seen) < senders*each {
		_, data, err := c.Read(ctxT(t))
		if err != nil {
			t.Fatalf("after %d: %v", len(seen), err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(data), "%d:%d", &g, &i); err != nil {
			t.Fatalf("garbled %q", data)
		}
		if seen[string(data)] {
			t.Fatalf("duplicate %q", data)
		}
		// Sends from one goroutine keep their order.
		if i != next[g] {
			t.Fatalf("sender %d: got %d, want %d", g, i, next[g])
		}
		next[g]++
		seen[string(data)] = true
	}
	wg.Wait()
	if got.Load() != senders*each {
		t.Fatalf("server got %d", got.Load())
	}
}

func TestOversizeMessage(t *testing.T) {
	closed := make(chan *CloseError, 1)
	ts := serve(t, nil, "/", &ServerOptions{MaxPayload: 1024}, &Handler{
		OnMessage: echoHandler.OnMessage,
		OnClose:   func(c *Conn, ce *CloseError) { closed <- ce },
	})
	c := dial(t, ts.url, nil)
	if err := c.Send(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Binary, make([]byte, 1024))
	if err := c.Send(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseMessageTooBig {
		t.Fatalf("oversize: %v", err)
	}
	if sce := <-closed; sce.Code != CloseMessageTooBig || sce.Origin != CloseOriginLocal {
		t.Fatalf("server side: %+v", sce)
	}

	// Client side limit too.
	ts2 := serve(t, nil, "/", nil, echoHandler)
	c2 := dial(t, ts2.url, &DialOptions{MaxPayload: 100})
	if err := c2.Send(make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Read(ctxT(t))
	if !errors.As(err, &ce) || ce.Code != CloseMessageTooBig || ce.Origin != CloseOriginLocal {
		t.Fatalf("client limit: %v", err)
	}
}

func TestVerifyClientToken(t *testing.T) {
	clientErrs := make(chan error, 4)
	ts := serve(t, nil, "/", &ServerOptions{
		VerifyClient: func(h *Handshake) Verdict {
			if h.Request.Query.Get("token") == "secret" && h.Request.Header.Get("X-Client") == "test" {
				return Accept
			}
			_ = h.SetReject(403, "bad token")
			_ = h.AddHeader("X-Reason", "token")
			return Reject
		},
		Headers: func(h *Handshake) { _ = h.AddHeader("X-Greeting", "welcome") },
		OnClientError: func(err error) {
			clientErrs <- err
		},
	}, echoHandler)

	c := dial(t, ts.url+"?token=secret", &DialOptions{Header: map[string][]string{"X-Client": {"test"}}})
	if err := c.SendText("in"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("in"))

	_, err := Dial(ctxT(t), ts.url+"?token=wrong", nil)
	var re *ResponseError
	if !errors.As(err, &re) || !errors.Is(err, ErrHandshakeRejected) {
		t.Fatalf("dial with bad token: %v", err)
	}
	if re.StatusCode != 403 || re.Reason != "bad token" || re.Header.Get("X-Reason") != "token" {
		t.Fatalf("refusal %+v", re)
	}
}

func TestVerifyClientDefer(t *testing.T) {
	pending := make(chan *Handshake, 2)
	ts := serve(t, nil, "/", &ServerOptions{
		VerifyClient: func(h *Handshake) Verdict {
			pending <- h
			return Defer
		},
	}, echoHandler)
	go func() {
		h := <-pending
		if h.Request.Query.Get("ok") == "1" {
			if err := h.Accept(); err != nil {
				t.Errorf("accept: %v", err)
			}
		}
		if err := h.Accept(); !errors.Is(err, ErrAlreadyDone) {
			t.Errorf("second accept: %v", err)
		}
	}()
	c := dial(t, ts.url+"?ok=1", nil)
	if err := c.SendText("deferred"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("deferred"))

	go func() {
		h := <-pending
		_ = h.Reject(429, "later")
	}()
	_, err := Dial(ctxT(t), ts.url, nil)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 429 {
		t.Fatalf("deferred reject: %v", err)
	}
}

func TestDialContextCancelled(t *testing.T) {
	pending := make(chan *Handshake, 1)
	ts := serve(t, nil, "/", &ServerOptions{
		VerifyClient: func(h *Handshake) Verdict {
			pending <- h
			return Defer
		},
	}, echoHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, ts.url, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v", err)
	}
	h := <-pending
	if err := h.Accept(); err != nil && !errors.Is(err, ErrTimeout) {
		t.Fatalf("accept of a gone client: %v", err)
	}
}

func TestHandleProtocols(t *testing.T) {
	var offeredSeen []string
	ts := serve(t, nil, "/", &ServerOptions{
		HandleProtocols: func(r *Request, offered []string) string {
			offeredSeen = offered
			for _, p := range offered {
				if p == "chat.v2" {
					return p
				}
			}
			return ""
		},
	}, &Handler{OnMessage: func(c *Conn, typ MessageType, data []byte) {
		_ = c.SendText(c.Subprotocol())
	}})
	c := dial(t, ts.url, &DialOptions{Protocols: []string{"chat.v1", "chat.v2", "chat.v3"}})
	if c.Subprotocol() != "chat.v2" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	if err := c.SendText("which?"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("chat.v2"))
	if strings.Join(offeredSeen, ",") != "chat.v1,chat.v2,chat.v3" {
		t.Fatalf("offered %v", offeredSeen)
	}
	c2 := dial(t, ts.url, &DialOptions{Protocols: []string{"other"}})
	if c2.Subprotocol() != "" {
		t.Fatalf("subprotocol %q, want none", c2.Subprotocol())
	}
	if _, err := Dial(ctxT(t), ts.url, &DialOptions{Protocols: []string{"bad protocol"}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("bad token: %v", err)
	}
}

func TestAllowedOrigins(t *testing.T) {
	ts := serve(t, nil, "/", &ServerOptions{AllowedOrigins: []string{"https://good.example"}}, echoHandler)
	dial(t, ts.url, &DialOptions{Origin: "https://good.example"})
	_, err := Dial(ctxT(t), ts.url, &DialOptions{Origin: "https://evil.example"})
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("bad origin: %v", err)
	}
}

func TestDeflate(t *testing.T) {
	ts := serve(t, nil, "/", &ServerOptions{Compression: true}, echoHandler)
	c := dial(t, ts.url, &DialOptions{Deflate: &Deflate{ClientNoContextTakeover: true}})
	if !strings.Contains(c.Extensions(), "permessage-deflate") {
		t.Fatalf("extensions %q", c.Extensions())
	}
	big := bytes.Repeat([]byte("compressible text "), 10000)
	if err := c.Send(big); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Binary, big)

	off := dial(t, ts.url, &DialOptions{DisableCompression: true})
	if off.Extensions() != "" {
		t.Fatalf("extensions without deflate %q", off.Extensions())
	}
	if _, err := Dial(ctxT(t), ts.url, &DialOptions{Deflate: &Deflate{ServerMaxWindowBits: 20}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("bad window bits: %v", err)
	}
}

func TestPanicInHandlerIsRecovered(t *testing.T) {
	panics := make(chan *PanicError, 4)
	SetPanicHook(func(p *PanicError) { panics <- p })
	defer SetPanicHook(nil)
	ts := serve(t, nil, "/", nil, &Handler{
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			if string(data) == "boom" {
				panic("handler exploded")
			}
			_ = c.Write(typ, data)
		},
	})
	c := dial(t, ts.url, nil)
	if err := c.SendText("boom"); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseInternalError {
		t.Fatalf("after panic: %v", err)
	}
	p := <-panics
	if p.Callback != "OnMessage" || p.Value != "handler exploded" || len(p.Stack) == 0 {
		t.Fatalf("panic report %+v", p)
	}
	// The reactor goes on.
	c2 := dial(t, ts.url, nil)
	if err := c2.SendText("fine"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c2, Text, []byte("fine"))

	// A panicking VerifyClient rejects with 500.
	ts2 := serve(t, nil, "/", &ServerOptions{VerifyClient: func(*Handshake) Verdict { panic("verify") }}, echoHandler)
	_, err = Dial(ctxT(t), ts2.url, nil)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 500 {
		t.Fatalf("verify panic: %v", err)
	}
	if p := <-panics; p.Callback != "VerifyClient" {
		t.Fatalf("panic report %+v", p)
	}
}

func TestDialErrors(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	port := l.Port()
	l.Close()
	_, err = Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if !errors.Is(err, ErrConnectionRefused) {
		t.Fatalf("refused: %v", err)
	}
	if _, err := Dial(ctxT(t), "ftp://127.0.0.1/", nil); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("bad url: %v", err)
	}
	var e *Error
	if _, err := Dial(ctxT(t), "nonsense", nil); !errors.As(err, &e) || e.Status != Status(103) {
		t.Fatalf("nonsense url: %v", err)
	}
	if _, err := Dial(ctxT(t), "ws://127.0.0.1:1/", &DialOptions{Header: map[string][]string{"Upgrade": {"x"}}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("reserved header: %v", err)
	}
	ts := serve(t, nil, "/", nil, echoHandler)
	l2, err := Listen(ts.l.Addr(), nil)
	if err == nil {
		l2.Close()
		t.Fatal("second listen on the same address succeeded")
	}
	if !errors.Is(err, ErrAddressInUse) {
		t.Fatalf("listen twice: %v", err)
	}
}

func TestOwnReactorCloseEndsConnections(t *testing.T) {
	r, err := NewReactor(&ReactorOptions{ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fromCallback := make(chan error, 1)
	l, err := r.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach("/", nil, &Handler{OnMessage: func(c *Conn, _ MessageType, _ []byte) {
		fromCallback <- r.Close()
	}}); err != nil {
		t.Fatal(err)
	}
	c, err := r.Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", l.Port()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendText("x"); err != nil {
		t.Fatal(err)
	}
	if err := <-fromCallback; !errors.Is(err, ErrCalledFromCallback) {
		t.Fatalf("close from callback: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("read after reactor close: %v", err)
	}
	if err := c.SendText("after"); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrShutDown) {
		t.Fatalf("send after reactor close: %v", err)
	}
	if _, err := r.Dial(ctxT(t), "ws://127.0.0.1:1/", nil); !errors.Is(err, ErrShutDown) {
		t.Fatalf("dial on closed reactor: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	l.Close()
}

func TestBroadcast(t *testing.T) {
	opened := make(chan struct{}, 8)
	ts := serve(t, nil, "/", nil, &Handler{OnOpen: func(*Conn) { opened <- struct{}{} }})
	var cs []*Conn
	for i := 0; i < 4; i++ {
		cs = append(cs, dial(t, ts.url, nil))
		<-opened
	}
	n, err := ts.s.Broadcast(Text, []byte("all"))
	if err != nil || n != 4 {
		t.Fatalf("broadcast: %d %v", n, err)
	}
	for _, c := range cs {
		expectMessage(t, c, Text, []byte("all"))
	}
	if got := len(ts.s.Clients()); got != 4 {
		t.Fatalf("clients %d", got)
	}
	if got := ts.s.ClientCount(); got != 4 {
		t.Fatalf("client count %d", got)
	}
}
