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
	socks   bool
	user    string
	pass    string
	wg      sync.WaitGroup
	mu      sync.Mutex
	targets []string
	conns   map[net.Conn]struct{}
}

func startProxy(t *testing.T, user, pass string) *connectProxy {
	t.Helper()
	return startProxyKind(t, false, user, pass)
}

func startProxyKind(t *testing.T, socks bool, user, pass string) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, socks: socks, user: user, pass: pass, conns: map[net.Conn]struct{}{}}
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
	return p.schemeURL("http", user, pass)
}

func (p *connectProxy) schemeURL(scheme, user, pass string) string {
	if user == "" {
		return scheme + "://" + p.ln.Addr().String()
	}
	return fmt.Sprintf("%s://%s:%s@%s", scheme, user, pass, p.ln.Addr())
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	if p.socks {
		p.serveSOCKS(c, br)
		return
	}
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
	p.tunnel(c, br, req.Host, "HTTP/1.1 200 Connection established\r\n\r\n", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
}

// serveSOCKS speaks SOCKS5 (RFC 1928) with optional user/password
// authentication (RFC 1929), CONNECT only; it records "ip:port" or
// "name:port" as the client sent it.
func (p *connectProxy) serveSOCKS(c net.Conn, br *bufio.Reader) {
	read := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil
		}
		return b
	}
	hello := read(2)
	if hello == nil || hello[0] != 5 {
		return
	}
	methods := read(int(hello[1]))
	want := byte(0)
	if p.user != "" {
		want = 2
	}
	if methods == nil || !strings.Contains(string(methods), string([]byte{want})) {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		v := read(2)
		if v == nil {
			return
		}
		user := read(int(v[1]))
		pl := read(1)
		if pl == nil {
			return
		}
		pass := read(int(pl[0]))
		if string(user) != p.user || string(pass) != p.pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	head := read(4)
	if head == nil || head[1] != 1 {
		return
	}
	var host string
	switch head[3] {
	case 1:
		host = net.IP(read(4)).String()
	case 4:
		host = "[" + net.IP(read(16)).String() + "]"
	case 3:
		l := read(1)
		if l == nil {
			return
		}
		host = string(read(int(l[0])))
	default:
		return
	}
	port := read(2)
	if port == nil {
		return
	}
	target := fmt.Sprintf("%s:%d", host, int(port[0])<<8|int(port[1]))
	p.tunnel(c, br, target, string([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}), string([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}))
}

// tunnel connects to target, answers ok (or fail) and pipes both ways.
func (p *connectProxy) tunnel(c net.Conn, br *bufio.Reader, target, ok, fail string) {
	p.mu.Lock()
	p.targets = append(p.targets, target)
	p.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		io.WriteString(c, fail)
		return
	}
	p.track(up)
	defer up.Close()
	if _, err := io.WriteString(c, ok); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		// Bytes the client sent after the handshake are in br.
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

func TestProxySOCKS5(t *testing.T) {
	ts := serve(t, nil, "/", nil, echoHandler)
	p := startProxyKind(t, true, "bob", "pw")
	c := dial(t, ts.url, &DialOptions{Proxy: p.schemeURL("socks5", "bob", "pw")})
	if err := c.SendText("socks"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("socks"))
	// socks5h: the proxy gets the name to resolve.
	byName := fmt.Sprintf("ws://localhost:%d/", ts.l.Port())
	dial(t, byName, &DialOptions{Proxy: p.schemeURL("socks5h", "bob", "pw")})
	want := []string{ts.l.Addr(), fmt.Sprintf("localhost:%d", ts.l.Port())}
	if got := p.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("SOCKS5 targets %v, want %v", got, want)
	}
	_, err := Dial(ctxT(t), ts.url, &DialOptions{Proxy: p.schemeURL("socks5", "bob", "nope")})
	var e *Error
	if !errors.Is(err, ErrHandshakeRejected) || !errors.As(err, &e) || !strings.HasPrefix(e.Message, "proxy:") {
		t.Fatalf("refused SOCKS5 credentials: %v", err)
	}
}

// wss:// through a tunnel: TLS runs inside it, verified against the target.
func TestProxyTLSInsideTunnel(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, "target", false, false, "127.0.0.1")
	ts := serve(t, &ListenOptions{TLSCertificate: &cert}, "/", nil, echoHandler)
	p := startProxy(t, "", "")
	c := dial(t, ts.url, &DialOptions{Proxy: p.url("", ""), TLSCAFiles: []string{ca.file}})
	if err := c.SendText("tls in tunnel"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("tls in tunnel"))
	if !strings.Contains(c.TLS().PeerSubject, "CN=target") || len(p.seen()) != 1 {
		t.Fatalf("tls %+v, proxy %v", c.TLS(), p.seen())
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
