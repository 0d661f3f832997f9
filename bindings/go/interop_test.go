package wsffi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

func TestGorillaClientAgainstOurServer(t *testing.T) {
	ts := serve(t, nil, "/", &ServerOptions{
		Headers: func(h *Handshake) { _ = h.AddHeader("X-Greeting", "welcome") },
	}, echoHandler)
	ws, resp, err := websocket.DefaultDialer.Dial(ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if resp.Header.Get("X-Greeting") != "welcome" {
		t.Fatalf("headers hook: %v", resp.Header)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("gorilla")); err != nil {
		t.Fatal(err)
	}
	typ, data, err := ws.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(data) != "gorilla" {
		t.Fatalf("%v %q %v", typ, data, err)
	}
	if err := ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done")); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4000 {
		t.Fatalf("close echo: %v", err)
	}
}

func TestOurClientAgainstGorillaServer(t *testing.T) {
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(data) == "close" {
				_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "gorilla bye"))
				continue
			}
			_ = ws.WriteMessage(typ, data)
		}
	}))
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	c := dial(t, url, nil)
	if err := c.Send([]byte("bin")); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Binary, []byte("bin"))
	if err := c.SendText("close"); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctxT(t))
	ce, ok := err.(*CloseError)
	if !ok || ce.Code != 4100 || ce.Reason != "gorilla bye" {
		t.Fatalf("close: %v", err)
	}
}

func TestCoderClientAgainstOurServer(t *testing.T) {
	ts := serve(t, nil, "/", &ServerOptions{Compression: true}, echoHandler)
	ctx := ctxT(t)
	ws, _, err := coder.Dial(ctx, ts.url, &coder.DialOptions{CompressionMode: coder.CompressionContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	msg := []byte(strings.Repeat("coder ", 1000))
	if err := ws.Write(ctx, coder.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	typ, data, err := ws.Read(ctx)
	if err != nil || typ != coder.MessageText || string(data) != string(msg) {
		t.Fatalf("%v %d %v", typ, len(data), err)
	}
	if err := ws.Close(coder.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
}

func TestOurClientAgainstCoderServer(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := coder.Accept(w, r, &coder.AcceptOptions{Subprotocols: []string{"echo"}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			typ, data, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if string(data) == "close" {
				_ = ws.Close(4200, "coder bye")
				return
			}
			if err := ws.Write(r.Context(), typ, data); err != nil {
				return
			}
		}
	}))
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	c := dial(t, url, &DialOptions{Protocols: []string{"echo"}})
	if c.Subprotocol() != "echo" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	if err := c.SendText("hi coder"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("hi coder"))
	if err := c.SendText("close"); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctxT(t))
	ce, ok := err.(*CloseError)
	if !ok || ce.Code != 4200 || ce.Reason != "coder bye" {
		t.Fatalf("close: %v", err)
	}
}

// testCerts writes a CA certificate and a leaf for 127.0.0.1 signed by it.
func testCerts(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsffi test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile = filepath.Join(dir, "ca.pem")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", caDER)
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "PRIVATE KEY", kder)
	return caFile, certFile, keyFile
}

func TestTLS(t *testing.T) {
	caFile, certFile, keyFile := testCerts(t)
	ts := serve(t, &ListenOptions{TLSCertFile: certFile, TLSKeyFile: keyFile}, "/", nil, echoHandler)
	c := dial(t, ts.url, &DialOptions{TLSCAFiles: []string{caFile}})
	if err := c.SendText("secret"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("secret"))

	// Without the CA the system roots do not know the certificate.
	if _, err := Dial(ctxT(t), ts.url, nil); !isTLSErr(err) {
		t.Fatalf("untrusted: %v", err)
	}
	// Insecure mode (tests only) connects anyway.
	dial(t, ts.url, &DialOptions{InsecureSkipVerify: true})

	// The same certificate as a tls.Certificate.
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ts2 := serve(t, &ListenOptions{TLSCertificate: &pair}, "/", nil, echoHandler)
	c2 := dial(t, ts2.url, &DialOptions{TLSCAFiles: []string{caFile}})
	if err := c2.Send([]byte("pem")); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c2, Binary, []byte("pem"))

	if _, err := Listen("127.0.0.1:0", &ListenOptions{TLSCertFile: certFile, TLSKeyFile: certFile}); err == nil {
		t.Fatal("a key file without a key was accepted")
	}
}

func isTLSErr(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Status == Status(500)
}
