package wsffi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type reconnectLog struct {
	mu       sync.Mutex
	attempts []int
	delays   []time.Duration
	errs     []error
	opens    int
}

func (l *reconnectLog) handler() *Handler {
	return &Handler{
		OnOpen: func(*Conn) { l.mu.Lock(); l.opens++; l.mu.Unlock() },
		OnReconnect: func(_ *Conn, attempt int, delay time.Duration, err error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.attempts = append(l.attempts, attempt)
			l.delays = append(l.delays, delay)
			l.errs = append(l.errs, err)
		},
	}
}

func (l *reconnectLog) wait(t *testing.T, pred func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		ok := pred()
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: attempts %v, opens %d", l.attempts, l.opens)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReconnectWhenTheServerComesBack(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	port := l.Port()
	s, err := l.Attach("/", nil, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	var log reconnectLog
	h := log.handler()
	got := make(chan string, 4)
	h.OnMessage = func(_ *Conn, _ MessageType, data []byte) { got <- string(data) }
	c, err := Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", port), &DialOptions{
		Reconnect: &Reconnect{InitialDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond},
		Handler:   h,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Terminate()
	c.SendText("before")
	if m := <-got; m != "before" {
		t.Fatalf("echo %q", m)
	}
	// The server goes away: 1001 to the client, which waits and tries again.
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	log.wait(t, func() bool { return len(log.attempts) >= 2 })
	if err := c.SendText("while away"); !errors.Is(err, ErrReconnecting) {
		t.Fatalf("send while reconnecting: %v", err)
	}
	if c.State() != Connecting {
		t.Fatalf("state %v", c.State())
	}
	// Back on the same port.
	l2, err := Listen(fmt.Sprintf("127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := l2.Attach("/", nil, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l2.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s2.Shutdown(ctx)
	})
	log.wait(t, func() bool { return log.opens == 2 })
	if err := c.SendText("after"); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "after" {
		t.Fatalf("echo %q", m)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.attempts[0] != 1 || log.attempts[1] != 2 {
		t.Errorf("attempts %v", log.attempts)
	}
	for _, d := range log.delays {
		if d <= 0 || d > 200*time.Millisecond {
			t.Errorf("delay %v outside (0, 200ms]", d)
		}
	}
	if c.HandshakeResponse() == nil || c.HandshakeResponse().StatusCode != 101 {
		t.Errorf("handshake response %+v", c.HandshakeResponse())
	}
}

func TestReconnectGivesUpAfterMaxAttempts(t *testing.T) {
	l, _ := Listen("127.0.0.1:0", nil)
	s, _ := l.Attach("/", nil, echoHandler)
	port := l.Port()
	var log reconnectLog
	c, err := Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", port), &DialOptions{
		Reconnect: &Reconnect{InitialDelay: 20 * time.Millisecond, MaxDelay: 40 * time.Millisecond, MaxAttempts: 2},
		Handler:   log.handler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Shutdown(ctx)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("never gave up")
	}
	ce := c.CloseError()
	if ce == nil || ce.Err == nil || !strings.Contains(ce.Err.Error(), "gave up") {
		t.Fatalf("close error %+v", ce)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.attempts) != 2 {
		t.Fatalf("attempts %v", log.attempts)
	}
}

func TestStopReconnectAndBadSettings(t *testing.T) {
	if _, err := Dial(ctxT(t), "ws://127.0.0.1:1/", &DialOptions{Reconnect: &Reconnect{Factor: 0.5}}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("factor 0.5: %v", err)
	}
	c := dial(t, serve(t, nil, "/", nil, echoHandler).url, nil)
	if err := c.StopReconnect(); err != nil { // no reconnect: nothing happens
		t.Fatal(err)
	}
	if err := c.SendText("still open"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("still open"))
}
