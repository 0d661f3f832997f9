package wsffi

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// connectProxy is a minimal HTTP CONNECT proxy with Basic authentication
// (empty user: none required). It records the targets it tunnelled to.
type connectProxy struct {
	ln      net.Listener
	user    string
	pass    string
	wg      sync.WaitGroup
	mu      sync.Mutex
	targets []string
	conns   map[net.Conn]struct{}
}

func startProxy(t *testing.T, user, pass string) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, user: user, pass: pass, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *connectProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *connectProxy) url(user, pass string) string {
	if user == "" {
		return "http://" + p.ln.Addr().String()
	}
	return fmt.Sprintf("http://%s:%s@%s", user, pass, p.ln.Addr())
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
		if req.Header.Get("Proxy-Authorization") != want {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
			return
		}
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.Host)
	p.mu.Unlock()
	up, err := net.Dial("tcp", req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	p.track(up)
	defer up.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		// Bytes the client sent after the CONNECT head are in br.
		_, _ = io.Copy(up, br)
		up.Close()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
}

func TestProxyConnectTunnel(t *testing.T) {
	ts := serve(t, nil, "/", nil, echoHandler)
	p := startProxy(t, "alice", "s3cret")
	c := dial(t, ts.url, &DialOptions{Proxy: p.url("alice", "s3cret")})
	if err := c.SendText("through the tunnel"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("through the tunnel"))
	if got := p.seen(); len(got) != 1 || got[0] != ts.l.Addr() {
		t.Fatalf("proxy tunnelled to %v, want %s", got, ts.l.Addr())
	}

	// Wrong credentials: the proxy's 407 is a clear refusal.
	_, err := Dial(ctxT(t), ts.url, &DialOptions{Proxy: p.url("alice", "wrong")})
	var e *Error
	if !errors.Is(err, ErrHandshakeRejected) || !errors.As(err, &e) {
		t.Fatalf("407: %v", err)
	}
	if !strings.HasPrefix(e.Message, "proxy:") || !strings.Contains(e.Message, "407") {
		t.Fatalf("407 message %q", e.Message)
	}
	if len(p.seen()) != 1 {
		t.Fatalf("refused attempt reached the target: %v", p.seen())
	}

	if _, err := Dial(ctxT(t), ts.url, &DialOptions{Proxy: "http://[bad"}); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("bad proxy URL: %v", err)
	}
}

func TestProxyFromEnvironment(t *testing.T) {
	ts := serve(t, nil, "/", nil, echoHandler)
	p := startProxy(t, "", "")
	t.Setenv("http_proxy", p.url("", ""))
	t.Setenv("all_proxy", "")
	t.Setenv("ALL_PROXY", "")
	t.Setenv("no_proxy", "")
	t.Setenv("NO_PROXY", "")

	// Off by default: the environment is ignored.
	dial(t, ts.url, nil)
	if n := len(p.seen()); n != 0 {
		t.Fatalf("proxy used without ProxyFromEnvironment: %v", p.seen())
	}
	c := dial(t, ts.url, &DialOptions{ProxyFromEnvironment: true})
	if err := c.SendText("env"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("env"))
	if n := len(p.seen()); n != 1 {
		t.Fatalf("proxy saw %v", p.seen())
	}
	// no_proxy lists the target: direct.
	t.Setenv("no_proxy", "127.0.0.1")
	dial(t, ts.url, &DialOptions{ProxyFromEnvironment: true})
	if n := len(p.seen()); n != 1 {
		t.Fatalf("no_proxy ignored: %v", p.seen())
	}
}

// redirectServers attaches, next to ts, servers that answer the upgrade with
// a redirect: /old -> /new, /loop -> /loop.
func redirectServers(t *testing.T, ts *testServer) {
	t.Helper()
	redirect := func(to string) *ServerOptions {
		return &ServerOptions{VerifyClient: func(h *Handshake) Verdict {
			_ = h.AddHeader("Location", to)
			_ = h.SetReject(302, "")
			return Reject
		}}
	}
	for path, to := range map[string]string{"/old": "/new", "/loop": "/loop"} {
		s, err := ts.l.Attach(path, redirect(to), echoHandler)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
	}
}

func TestFollowRedirects(t *testing.T) {
	ts := serve(t, nil, "/new", &ServerOptions{
		Headers: func(h *Handshake) { _ = h.AddHeader("X-Served-By", "new") },
	}, echoHandler)
	redirectServers(t, ts)
	base := fmt.Sprintf("ws://127.0.0.1:%d", ts.l.Port())

	// Not followed by default: the 302 is the answer.
	_, err := Dial(ctxT(t), base+"/old", nil)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 302 || re.Header.Get("Location") != "/new" {
		t.Fatalf("unfollowed redirect: %v", err)
	}

	c := dial(t, base+"/old", &DialOptions{FollowRedirects: true})
	if err := c.SendText("moved"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("moved"))
	hr := c.HandshakeResponse()
	if hr == nil || hr.StatusCode != 101 || hr.Header.Get("X-Served-By") != "new" ||
		!strings.EqualFold(hr.Header.Get("Upgrade"), "websocket") || hr.Header.Get("Sec-WebSocket-Accept") == "" {
		t.Fatalf("handshake response %+v", hr)
	}

	_, err = Dial(ctxT(t), base+"/loop", &DialOptions{FollowRedirects: true})
	var e *Error
	if !errors.Is(err, ErrHandshakeRejected) || !errors.As(err, &e) || !strings.Contains(e.Message, "loop") {
		t.Fatalf("redirect loop: %v", err)
	}
	_, err = Dial(ctxT(t), base+"/old", &DialOptions{FollowRedirects: true, MaxRedirects: -1})
	if !errors.Is(err, ErrHandshakeRejected) {
		t.Fatalf("max redirects 0: %v", err)
	}
	// One hop allowed is enough for /old.
	dial(t, base+"/old", &DialOptions{FollowRedirects: true, MaxRedirects: 1})
}

func TestHandshakeResponseServerSide(t *testing.T) {
	got := make(chan *HandshakeResponse, 1)
	ts := serve(t, nil, "/", nil, &Handler{OnOpen: func(c *Conn) { got <- c.HandshakeResponse() }})
	c := dial(t, ts.url, nil)
	if hr := c.HandshakeResponse(); hr == nil || hr.StatusCode != 101 {
		t.Fatalf("client handshake response %+v", hr)
	}
	if hr := <-got; hr != nil {
		t.Fatalf("server-side conn has a handshake response %+v", hr)
	}
	if st := c.TLS(); st != (TLSState{}) {
		t.Fatalf("TLS state without TLS: %+v", st)
	}
}
