package wsffi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTimers(t *testing.T) {
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	start := time.Now()
	fired := make(chan time.Duration, 2)
	once, err := r.AfterFunc(30*time.Millisecond, func() { fired <- time.Since(start) })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-fired:
		if d < 30*time.Millisecond {
			t.Fatalf("fired after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("one-shot timer did not fire")
	}
	if once.Stop() {
		t.Fatal("Stop of a fired one-shot timer reported true")
	}

	var never atomic.Bool
	late, err := r.AfterFunc(time.Hour, func() { never.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	if !late.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if late.Stop() {
		t.Fatal("second Stop reported true")
	}

	// A repeating timer stops itself from its callback on the third run.
	var runs atomic.Int32
	stopped := make(chan bool, 1)
	var tick *Timer
	ready := make(chan struct{})
	tick, err = r.Every(5*time.Millisecond, func() {
		<-ready
		if runs.Add(1) == 3 {
			stopped <- tick.Stop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	select {
	case ok := <-stopped:
		if !ok {
			t.Fatal("Stop from the callback reported false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("repeating timer did not run three times")
	}
	time.Sleep(30 * time.Millisecond)
	if n := runs.Load(); n != 3 {
		t.Fatalf("ran %d times after Stop", n)
	}

	// Panics are reported, the reactor goes on.
	panics := make(chan *PanicError, 1)
	SetPanicHook(func(p *PanicError) { panics <- p })
	defer SetPanicHook(nil)
	if _, err := r.AfterFunc(0, func() { panic("timer boom") }); err != nil {
		t.Fatal(err)
	}
	if p := <-panics; p.Callback != "Timer" || p.Value != "timer boom" {
		t.Fatalf("panic %+v", p)
	}

	if _, err := r.Every(0, func() {}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("Every(0): %v", err)
	}
	if _, err := r.AfterFunc(time.Second, nil); !errors.Is(err, ErrNullParameter) {
		t.Fatalf("nil func: %v", err)
	}

	// Close cancels pending timers; afterwards nothing can be scheduled.
	pending, err := r.AfterFunc(time.Hour, func() { never.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if pending.Stop() {
		t.Fatal("Stop after Close reported true")
	}
	if _, err := r.AfterFunc(0, func() {}); !errors.Is(err, ErrShutDown) {
		t.Fatalf("AfterFunc on a closed reactor: %v", err)
	}
	if never.Load() {
		t.Fatal("a stopped timer ran")
	}
}

func TestTimerOnReactorThreadSends(t *testing.T) {
	r, err := DefaultReactor()
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, nil, "/", nil, &Handler{OnOpen: func(c *Conn) {
		// Timers run on the reactor thread like handlers and may send.
		if _, err := r.AfterFunc(10*time.Millisecond, func() { _ = c.SendText("tick") }); err != nil {
			t.Errorf("timer: %v", err)
		}
	}})
	c := dial(t, ts.url, nil)
	expectMessage(t, c, Text, []byte("tick"))
}

// recordHandler keeps the slog records it receives.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) snapshot() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.recs...)
}

// waitRecord waits until a record satisfies ok.
func (h *recordHandler) waitRecord(ok func(slog.Record) bool) (slog.Record, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range h.snapshot() {
			if ok(r) {
				return r, true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return slog.Record{}, false
}

func TestLogger(t *testing.T) {
	defer SetLogger(nil, 0)
	h := &recordHandler{}
	if err := SetLogger(slog.New(h), slog.LevelDebug); err != nil {
		t.Fatal(err)
	}
	ts := serve(t, nil, "/", &ServerOptions{VerifyClient: func(hs *Handshake) Verdict {
		_ = hs.SetReject(403, "no entry")
		return Reject
	}}, echoHandler)
	if _, err := Dial(ctxT(t), ts.url, nil); !errors.Is(err, ErrHandshakeRejected) {
		t.Fatalf("dial: %v", err)
	}
	rec, ok := h.waitRecord(func(r slog.Record) bool {
		return r.Level == slog.LevelInfo && strings.Contains(r.Message, "403")
	})
	if !ok {
		t.Fatalf("no info record of the refusal; records: %v", h.snapshot())
	}
	t.Logf("refusal record: %s %q", rec.Level, rec.Message)

	// At warn, nothing below it arrives.
	hw := &recordHandler{}
	if err := SetLogger(slog.New(hw), slog.LevelWarn); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(ctxT(t), ts.url, nil); !errors.Is(err, ErrHandshakeRejected) {
		t.Fatalf("dial: %v", err)
	}
	if r, ok := hw.waitRecord(func(r slog.Record) bool { return r.Level == slog.LevelWarn }); !ok {
		t.Fatalf("no warn record of the client's failed handshake: %v", hw.snapshot())
	} else {
		t.Logf("client record: %s %q", r.Level, r.Message)
	}
	for _, r := range hw.snapshot() {
		if r.Level < slog.LevelWarn {
			t.Fatalf("record below warn: %s %q", r.Level, r.Message)
		}
	}

	// Off: nothing more arrives.
	if err := SetLogger(nil, 0); err != nil {
		t.Fatal(err)
	}
	n := len(hw.snapshot())
	if _, err := Dial(ctxT(t), ts.url, nil); err == nil {
		t.Fatal("dial succeeded")
	}
	time.Sleep(20 * time.Millisecond)
	if got := len(hw.snapshot()); got != n {
		t.Fatalf("%d records after the log was turned off", got-n)
	}
}

func TestVersion(t *testing.T) {
	v := VersionNumber()
	if v != HeaderVersion {
		t.Fatalf("library %#x, header %#x", v, HeaderVersion)
	}
	if want := fmt.Sprintf("%d.%d.%d", v>>16, v>>8&0xff, v&0xff); Version() != want {
		t.Fatalf("Version() %q, number says %q", Version(), want)
	}
}
