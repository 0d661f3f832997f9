package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Reactor is one library thread that owns the sockets, timers and callbacks of
// its connections, listeners and servers. Handler callbacks run on it, one at a
// time: they must not block (start a goroutine for slow work); every Conn and
// Server method may be called from them.
type Reactor struct {
	mu       sync.Mutex
	idle     *sync.Cond // signalled when inflight drops to 0
	r        *C.wsffi_reactor
	inflight int
	closing  bool
	closed   bool
	tid      atomic.Int64 // the reactor thread, once a callback has run
	// handles of HTTP handlers, deleted when the reactor is freed (the C API
	// has no destroy callback for them).
	httpHandles []cgo.Handle
}

// ReactorOptions configure NewReactor. Zero values keep the library defaults.
type ReactorOptions struct {
	// MaxQueuedCommands bounds the commands (sends, closes...) from other
	// goroutines waiting for the reactor; beyond it calls fail with ErrQueueFull.
	MaxQueuedCommands int
	// ShutdownGrace is how long Close lets open connections finish their close
	// handshake (default 2 s; negative for none).
	ShutdownGrace time.Duration
}

// NewReactor starts a reactor thread. Close it when done.
func NewReactor(opts *ReactorOptions) (*Reactor, error) {
	o := C.wsffi_reactor_options_new()
	if o == nil {
		return nil, &Error{Op: "reactor options", Status: Status(C.WSFFI_STATUS_ERR_INTERNAL)}
	}
	defer C.wsffi_reactor_options_free(o)
	if opts != nil {
		if opts.MaxQueuedCommands > 0 {
			if err := statusErr("max queued commands", C.wsffi_reactor_options_set_max_queued_commands(o, C.size_t(opts.MaxQueuedCommands))); err != nil {
				return nil, err
			}
		}
		if opts.ShutdownGrace != 0 {
			if err := statusErr("shutdown grace", C.wsffi_reactor_options_set_shutdown_grace_ms(o, msec(opts.ShutdownGrace))); err != nil {
				return nil, err
			}
		}
	}
	var r *C.wsffi_reactor
	var detail *C.wsffi_error
	if err := detailErr("reactor", C.wsffi_reactor_new(o, &r, &detail), detail); err != nil {
		return nil, err
	}
	re := &Reactor{r: r}
	re.idle = sync.NewCond(&re.mu)
	return re, nil
}

// Close closes every listener, server and connection of the reactor
// (connections get a 1001 close and up to the shutdown grace to answer),
// delivers the remaining callbacks and joins the thread. Read and Accept then
// return errors. Called from a callback of this reactor it does nothing and
// returns ErrCalledFromCallback. Closing twice is a no-op.
func (r *Reactor) Close() error {
	if r.onReactorThread() {
		return statusErr("reactor close", C.WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK)
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil
	}
	r.closing = true
	// Calls that use the reactor pointer finish first; none blocks for long,
	// and callbacks never wait here (acquire fails at once once closing).
	for r.inflight > 0 {
		r.idle.Wait()
	}
	ptr := r.r
	r.mu.Unlock()
	st := C.wsffi_reactor_free(ptr)
	r.mu.Lock()
	r.closed = true
	r.r = nil
	hs := r.httpHandles
	r.httpHandles = nil
	r.mu.Unlock()
	for _, h := range hs {
		h.Delete()
	}
	return statusErr("reactor close", st)
}

func (r *Reactor) onReactorThread() bool {
	tid := r.tid.Load()
	return tid != 0 && int64(syscall.Gettid()) == tid
}

// noteThread records the reactor thread (called at the start of callbacks).
func (r *Reactor) noteThread() {
	if r != nil && r.tid.Load() == 0 {
		r.tid.Store(int64(syscall.Gettid()))
	}
}

// acquire returns the reactor pointer for one call, or an error once the
// reactor is closing; release must follow.
func (r *Reactor) acquire() (*C.wsffi_reactor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return nil, &Error{Op: "reactor", Status: Status(C.WSFFI_STATUS_ERR_SHUT_DOWN)}
	}
	r.inflight++
	return r.r, nil
}

func (r *Reactor) release() {
	r.mu.Lock()
	r.inflight--
	if r.inflight == 0 {
		r.idle.Broadcast()
	}
	r.mu.Unlock()
}

func (r *Reactor) addHTTPHandle(h cgo.Handle) {
	r.mu.Lock()
	r.httpHandles = append(r.httpHandles, h)
	r.mu.Unlock()
}

var (
	defaultMu      sync.Mutex
	defaultReactor *Reactor
)

// DefaultReactor returns the process-wide reactor that Dial and Listen use,
// starting it on first use. Its thread ends with the process; CloseDefault
// shuts it down earlier.
func DefaultReactor() (*Reactor, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultReactor != nil {
		return defaultReactor, nil
	}
	r, err := NewReactor(nil)
	if err != nil {
		return nil, err
	}
	defaultReactor = r
	return r, nil
}

// CloseDefault closes the default reactor, if it was started; the next Dial or
// Listen without a Reactor starts a new one.
func CloseDefault() error {
	defaultMu.Lock()
	r := defaultReactor
	defaultReactor = nil
	defaultMu.Unlock()
	if r == nil {
		return nil
	}
	return r.Close()
}

func pickReactor(r *Reactor) (*Reactor, error) {
	if r != nil {
		return r, nil
	}
	return DefaultReactor()
}

// Version is the version of the loaded library ("0.1.0").
func Version() string { return C.GoString(C.wsffi_version()) }

var panicHook atomic.Pointer[func(*PanicError)]

// SetPanicHook sets the function that receives panics recovered from handler
// callbacks (nil restores the default, which prints them to standard error).
// A connection whose handler panicked is closed with 1011; a panicking
// VerifyClient rejects the upgrade with 500. The reactor goes on.
func SetPanicHook(f func(*PanicError)) {
	if f == nil {
		panicHook.Store(nil)
		return
	}
	panicHook.Store(&f)
}

func reportPanic(callback string, v any) {
	pe := &PanicError{Callback: callback, Value: v, Stack: debug.Stack()}
	if f := panicHook.Load(); f != nil {
		func() {
			defer func() { _ = recover() }()
			(*f)(pe)
		}()
		return
	}
	fmt.Fprintf(os.Stderr, "%v\n%s\n", pe, pe.Stack)
}

func msec(d time.Duration) C.uint32_t {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	if ms > 0xffffffff {
		ms = 0xffffffff
	}
	return C.uint32_t(ms)
}
