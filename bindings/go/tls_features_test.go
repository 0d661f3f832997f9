package wsffi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA issues certificates for the TLS tests, generated at test time.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pool   *x509.CertPool
	file   string
	serial atomic.Int64
	dir    string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsffi test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), dir: t.TempDir()}
	ca.pool.AddCert(cert)
	ca.serial.Store(1)
	ca.file = filepath.Join(ca.dir, "ca.pem")
	if err := os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a certificate for cn (and names: DNS names or IP addresses);
// client selects the client-auth usage. chain appends the CA certificate.
func (ca *testCA) issue(t *testing.T, cn string, client, chain bool, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	if chain {
		c.Certificate = append(c.Certificate, ca.cert.Raw)
	}
	return c
}

// files writes a certificate's chain and key as PEM files.
func (ca *testCA) files(t *testing.T, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	chain, key := tlsPEM(c.Certificate, k)
	n := ca.serial.Add(1)
	certFile = filepath.Join(ca.dir, "cert"+big.NewInt(n).String()+".pem")
	keyFile = filepath.Join(ca.dir, "key"+big.NewInt(n).String()+".pem")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// peerCN does a Go TLS handshake with the listener asking for serverName and
// returns the common name of the certificate it presented.
func peerCN(t *testing.T, addr, serverName string, cfg *tls.Config) (string, tls.ConnectionState) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.ServerName = serverName
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls dial %s as %q: %v", addr, serverName, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0].Subject.CommonName, st
}

func TestTLSServerNameIndication(t *testing.T) {
	ca := newTestCA(t)
	def := ca.issue(t, "default", false, false, "127.0.0.1")
	aCert, aKey := ca.files(t, ca.issue(t, "a.test", false, false, "a.test"))
	wild := ca.issue(t, "wildcard", false, true, "*.wild.test")
	exact := ca.issue(t, "exact", false, false, "x.wild.test")
	names := make(chan [2]string, 4)
	states := make(chan TLSState, 4)
	ts := serve(t, &ListenOptions{
		TLSCertificate: &def,
		TLSSNI: []SNICertificate{
			{ServerName: "a.test", CertFile: aCert, KeyFile: aKey},
			{ServerName: "*.wild.test", Certificate: &wild},
			{ServerName: "X.Wild.Test", Certificate: &exact},
		},
	}, "/", &ServerOptions{OnConnection: func(c *Conn, r *Request) {
		names <- [2]string{r.TLSServerName, r.TLSALPN}
	}}, &Handler{OnOpen: func(c *Conn) { states <- c.TLS() }})
	addr := ts.l.Addr()
	trusted := func() *tls.Config { return &tls.Config{RootCAs: ca.pool} }

	for name, want := range map[string]string{
		"a.test":      "a.test",
		"A.TEST":      "a.test",
		"y.wild.test": "wildcard",
		"x.wild.test": "exact", // an exact name wins over the wildcard
	} {
		if cn, _ := peerCN(t, addr, name, trusted()); cn != want {
			t.Errorf("SNI %q: certificate %q, want %q", name, cn, want)
		}
	}
	// No or an unknown name: the default certificate.
	if cn, _ := peerCN(t, addr, "127.0.0.1", trusted()); cn != "default" {
		t.Errorf("no SNI: %q", cn)
	}
	if cn, _ := peerCN(t, addr, "other.test", &tls.Config{InsecureSkipVerify: true}); cn != "default" {
		t.Errorf("unknown SNI: %q", cn)
	}
	// The wildcard's chain (leaf and CA) is presented as given.
	if _, st := peerCN(t, addr, "y.wild.test", trusted()); len(st.PeerCertificates) != 2 {
		t.Errorf("wildcard chain has %d certificates", len(st.PeerCertificates))
	}

	// Our own client: the name chooses the certificate, both sides see it.
	c := dial(t, ts.url, &DialOptions{TLSCAFiles: []string{ca.file}, TLSServerName: "a.test"})
	st := c.TLS()
	if !strings.Contains(st.PeerSubject, "CN=a.test") || st.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("client TLS state %+v", st)
	}
	if got := <-names; got != [2]string{"a.test", "http/1.1"} {
		t.Fatalf("server saw SNI/ALPN %q", got)
	}
	if got := <-states; got != (TLSState{NegotiatedProtocol: "http/1.1", ServerName: "a.test"}) {
		t.Fatalf("server-side TLS state %+v", got)
	}

	if _, err := Listen("127.0.0.1:0", &ListenOptions{TLSCertificate: &def, TLSSNI: []SNICertificate{{ServerName: "127.0.0.1", Certificate: &def}}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("IP address as SNI name: %v", err)
	}
	if _, err := Listen("127.0.0.1:0", &ListenOptions{TLSSNI: []SNICertificate{{ServerName: "b.test", CertFile: aCert, KeyFile: aCert}}}); !errors.Is(err, ErrTLS) {
		t.Fatalf("SNI key file without a key: %v", err)
	}
}

func TestTLSSNIWithoutDefault(t *testing.T) {
	ca := newTestCA(t)
	a := ca.issue(t, "a.test", false, false, "a.test")
	clientErrs := make(chan error, 4)
	ts := serve(t, &ListenOptions{TLSSNI: []SNICertificate{{ServerName: "a.test", Certificate: &a}}}, "/",
		&ServerOptions{OnClientError: func(err error) { clientErrs <- err }}, echoHandler)
	if cn, _ := peerCN(t, ts.l.Addr(), "a.test", &tls.Config{RootCAs: ca.pool}); cn != "a.test" {
		t.Fatalf("a.test: %q", cn)
	}
	// An unknown name has no certificate: the handshake fails on both sides.
	if c, err := tls.Dial("tcp", ts.l.Addr(), &tls.Config{ServerName: "b.test", InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Fatal("handshake without a certificate succeeded")
	}
	select {
	case err := <-clientErrs:
		if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "b.test") {
			t.Fatalf("server error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no client error on the server")
	}
}

func TestTLSSetCertificates(t *testing.T) {
	ca := newTestCA(t)
	old := ca.issue(t, "old", false, false, "127.0.0.1")
	a := ca.issue(t, "a.test", false, false, "a.test")
	ts := serve(t, &ListenOptions{TLSCertificate: &old, TLSSNI: []SNICertificate{{ServerName: "a.test", Certificate: &a}}}, "/", nil, echoHandler)
	trusted := func() *tls.Config { return &tls.Config{RootCAs: ca.pool} }
	before := dial(t, ts.url, &DialOptions{TLSCAFiles: []string{ca.file}})
	if !strings.Contains(before.TLS().PeerSubject, "CN=old") {
		t.Fatalf("before: %+v", before.TLS())
	}

	renewedFile, renewedKey := ca.files(t, ca.issue(t, "renewed", false, false, "127.0.0.1"))
	b := ca.issue(t, "b.test", false, false, "b.test")
	if err := ts.l.SetCertificates(&Certificates{CertFile: renewedFile, KeyFile: renewedKey, SNI: []SNICertificate{{ServerName: "b.test", Certificate: &b}}}); err != nil {
		t.Fatal(err)
	}
	if cn, _ := peerCN(t, ts.l.Addr(), "127.0.0.1", trusted()); cn != "renewed" {
		t.Fatalf("default after replacement: %q", cn)
	}
	if cn, _ := peerCN(t, ts.l.Addr(), "b.test", trusted()); cn != "b.test" {
		t.Fatalf("new SNI name: %q", cn)
	}
	// The whole set was replaced: a.test now gets the default.
	if cn, _ := peerCN(t, ts.l.Addr(), "a.test", &tls.Config{InsecureSkipVerify: true}); cn != "renewed" {
		t.Fatalf("old SNI name: %q", cn)
	}
	after := dial(t, ts.url, &DialOptions{TLSCAFiles: []string{ca.file}})
	if !strings.Contains(after.TLS().PeerSubject, "CN=renewed") {
		t.Fatalf("after: %+v", after.TLS())
	}
	// The connection from before goes on with its certificate.
	if err := before.SendText("still here"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, before, Text, []byte("still here"))

	if err := ts.l.SetCertificates(&Certificates{}); !errors.Is(err, ErrTLS) {
		t.Fatalf("empty set: %v", err)
	}
	if cn, _ := peerCN(t, ts.l.Addr(), "127.0.0.1", trusted()); cn != "renewed" {
		t.Fatalf("after a failed replacement: %q", cn)
	}
	plain := serve(t, nil, "/", nil, echoHandler)
	if err := plain.l.SetCertificates(&Certificates{Certificate: &old}); !errors.Is(err, ErrTLS) {
		t.Fatalf("plain listener: %v", err)
	}
	ts.l.Close()
	if err := ts.l.SetCertificates(&Certificates{Certificate: &old}); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed listener: %v", err)
	}
}

func TestTLSALPN(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, "server", false, false, "127.0.0.1")
	alpn := make(chan string, 4)
	ts := serve(t, &ListenOptions{TLSCertificate: &cert, TLSALPN: []string{"x-chat/2", "http/1.1"}}, "/",
		&ServerOptions{OnConnection: func(c *Conn, r *Request) { alpn <- r.TLSALPN }}, echoHandler)
	trust := []string{ca.file}

	// The server's order decides.
	c := dial(t, ts.url, &DialOptions{TLSCAFiles: trust, ALPN: []string{"http/1.1", "x-chat/2"}})
	if got := c.TLS().NegotiatedProtocol; got != "x-chat/2" {
		t.Fatalf("client ALPN %q", got)
	}
	if got := <-alpn; got != "x-chat/2" {
		t.Fatalf("server ALPN %q", got)
	}
	// Default offer: http/1.1.
	c2 := dial(t, ts.url, &DialOptions{TLSCAFiles: trust})
	if got := c2.TLS().NegotiatedProtocol; got != "http/1.1" {
		t.Fatalf("default ALPN %q", got)
	}
	<-alpn
	// No offer at all: served without ALPN.
	c3 := dial(t, ts.url, &DialOptions{TLSCAFiles: trust, ALPN: []string{}})
	if got := c3.TLS().NegotiatedProtocol; got != "" {
		t.Fatalf("ALPN without an offer %q", got)
	}
	<-alpn
	// Nothing in common: the handshake fails.
	if _, err := Dial(ctxT(t), ts.url, &DialOptions{TLSCAFiles: trust, ALPN: []string{"x-none"}}); !errors.Is(err, ErrTLS) {
		t.Fatalf("no common ALPN: %v", err)
	}
	// A Go TLS client sees the same.
	if _, st := peerCN(t, ts.l.Addr(), "127.0.0.1", &tls.Config{RootCAs: ca.pool, NextProtos: []string{"x-chat/2"}}); st.NegotiatedProtocol != "x-chat/2" {
		t.Fatalf("Go client ALPN %q", st.NegotiatedProtocol)
	}

	if _, err := Dial(ctxT(t), ts.url, &DialOptions{ALPN: []string{""}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("empty ALPN name: %v", err)
	}
	if _, err := Listen("127.0.0.1:0", &ListenOptions{TLSALPN: []string{"a", "a"}, TLSCertificate: &cert}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("duplicate ALPN name: %v", err)
	}
	if _, err := Listen("127.0.0.1:0", &ListenOptions{TLSALPN: []string{"x"}}); !errors.Is(err, ErrTLS) {
		t.Fatalf("ALPN without a certificate: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	server := ca.issue(t, "server", false, false, "127.0.0.1")
	clientCert, clientKey := ca.files(t, ca.issue(t, "client one", true, false))
	other := newTestCA(t)
	strangerCert, strangerKey := other.files(t, other.issue(t, "stranger", true, false))
	subjects := make(chan [2]string, 2)
	ts := serve(t, &ListenOptions{TLSCertificate: &server, TLSClientCAFile: ca.file, TLSClientCertRequired: true}, "/",
		nil, &Handler{
			OnOpen: func(c *Conn) { subjects <- [2]string{c.Request().TLSSubject, c.TLS().PeerSubject} },
			OnMessage: func(c *Conn, typ MessageType, data []byte) {
				_ = c.Write(typ, data)
			},
		})
	c := dial(t, ts.url, &DialOptions{TLSCAFiles: []string{ca.file}, TLSClientCertFile: clientCert, TLSClientKeyFile: clientKey})
	if err := c.SendText("mutual"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("mutual"))
	got := <-subjects
	if !strings.Contains(got[0], "CN=client one") || got[0] != got[1] {
		t.Fatalf("client subject on the server: %q", got)
	}
	if !strings.Contains(c.TLS().PeerSubject, "CN=server") {
		t.Fatalf("server subject on the client: %q", c.TLS().PeerSubject)
	}

	// Without a certificate, or with one of another CA: refused.
	for _, o := range []*DialOptions{
		{TLSCAFiles: []string{ca.file}},
		{TLSCAFiles: []string{ca.file}, TLSClientCertFile: strangerCert, TLSClientKeyFile: strangerKey},
	} {
		if _, err := Dial(ctxT(t), ts.url, o); err == nil {
			t.Fatalf("dial with %q accepted", o.TLSClientCertFile)
		} else if !errors.Is(err, ErrTLS) && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrConnectionReset) && !errors.Is(err, ErrHandshake) {
			t.Fatalf("dial with %q: %v", o.TLSClientCertFile, err)
		}
	}
	select {
	case s := <-subjects:
		t.Fatalf("a refused client opened: %q", s)
	default:
	}
}
