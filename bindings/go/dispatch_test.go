package wsffi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goid is the current goroutine's id (tests only).
func goid() uint64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	n, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return n
}

func TestDispatchModeRunsCallbacksOnOneGoroutine(t *testing.T) {
	r, err := NewReactor(&ReactorOptions{Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	runner := make(chan uint64, 1)
	runDone := make(chan error, 1)
	go func() {
		runner <- goid()
		runDone <- r.Run(context.Background())
	}()
	rid := <-runner

	// Every callback records the goroutine it ran on; no locks needed for
	// state touched only by callbacks, but the test reads it afterwards.
	var mu sync.Mutex
	seen := map[string]uint64{}
	note := func(name string) {
		mu.Lock()
		seen[name] = goid()
		mu.Unlock()
	}
	inner := make(chan error, 3)
	l, err := r.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Attach("/", &ServerOptions{
		VerifyClient: func(h *Handshake) Verdict { note("VerifyClient"); return Accept },
		OnConnection: func(c *Conn, req *Request) { note("OnConnection") },
	}, &Handler{
		OnOpen: func(c *Conn) { note("OnOpen") },
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			note("OnMessage")
			switch string(data) {
			case "timer":
				_, err := r.AfterFunc(5*time.Millisecond, func() {
					note("Timer")
					_ = c.SendText("from timer")
				})
				if err != nil {
					t.Errorf("timer: %v", err)
				}
			case "nested":
				_, err := r.Dispatch(1)
				inner <- err
				_, err = r.Dial(context.Background(), "ws://127.0.0.1:1/", nil)
				inner <- err
				_ = c.SendText("nested done")
			case "quit":
				// Blocking calls are allowed from dispatched callbacks.
				inner <- r.Close()
			default:
				_ = c.Write(typ, data)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("ws://127.0.0.1:%d/", l.Port())
	c, err := r.Dial(ctxT(t), url, &DialOptions{Handler: &Handler{OnOpen: func(*Conn) { note("client OnOpen") }}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendText("echo"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("echo"))
	if err := c.SendText("timer"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("from timer"))
	if err := c.SendText("nested"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, Text, []byte("nested done"))
	if err := <-inner; !errors.Is(err, ErrCalledFromCallback) {
		t.Fatalf("Dispatch from a dispatched callback: %v", err)
	}
	if err := <-inner; !errors.Is(err, ErrCalledFromCallback) {
		t.Fatalf("Dial from a dispatched callback: %v", err)
	}

	mu.Lock()
	for _, name := range []string{"VerifyClient", "OnConnection", "OnOpen", "client OnOpen", "OnMessage", "Timer"} {
		if g, ok := seen[name]; !ok || g != rid {
			t.Errorf("%s ran on goroutine %d (seen %v), want Run's %d", name, g, ok, rid)
		}
	}
	mu.Unlock()

	if err := c.SendText("quit"); err != nil {
		t.Fatal(err)
	}
	if err := <-inner; err != nil {
		t.Fatalf("Close from a dispatched callback: %v", err)
	}
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	<-c.Done()
	if _, err := r.Dispatch(1); !errors.Is(err, ErrShutDown) {
		t.Fatalf("Dispatch after Close: %v", err)
	}
	l.Close()
}

func TestDispatchByHand(t *testing.T) {
	r, err := NewReactor(&ReactorOptions{Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	fired := 0
	if _, err := r.AfterFunc(0, func() { fired++ }); err != nil {
		t.Fatal(err)
	}
	// Nothing runs until dispatched.
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up")
	}
	if fired != 0 {
		t.Fatal("timer ran without Dispatch")
	}
	n, err := r.Dispatch(10)
	if err != nil || n != 1 || fired != 1 {
		t.Fatalf("dispatch: ran %d, fired %d, %v", n, fired, err)
	}
	if n, err := r.Dispatch(0); n != 0 || err != nil {
		t.Fatalf("Dispatch(0): %d %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run until ctx: %v", err)
	}
	// Close from an ordinary goroutine runs what still waits.
	if _, err := r.AfterFunc(0, func() { fired++ }); err != nil {
		t.Fatal(err)
	}
	<-r.Ready()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if fired != 2 {
		t.Fatalf("waiting timer run by Close: fired %d", fired)
	}

	plain, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Dispatch(1); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("Dispatch without dispatch mode: %v", err)
	}
	if plain.Ready() != nil {
		t.Fatal("Ready without dispatch mode")
	}
}

// Without a dispatcher Dial cannot open, but returns when its context ends.
func TestDispatchDialWithoutDispatcher(t *testing.T) {
	r, err := NewReactor(&ReactorOptions{Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, nil, "/", nil, echoHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan *CloseError, 1)
	if _, err := r.Dial(ctx, ts.url, &DialOptions{Handler: &Handler{OnClose: func(c *Conn, ce *CloseError) { closed <- ce }}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v", err)
	}
	// The aborted connection ends at the next dispatch (Close runs it).
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	default:
		t.Fatal("aborted connection's close did not run")
	}
}
