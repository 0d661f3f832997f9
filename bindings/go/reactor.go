package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
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
	tid      atomic.Int64  // the reactor thread, once a callback has run
	shut     chan struct{} // closed when Close starts

	// dispatch mode: callbacks run in Dispatch, on the caller's goroutine.
	dispatch    bool
	wake        chan struct{} // receives when callbacks wait
	dmu         sync.Mutex    // one Dispatch at a time
	dispatchTid atomic.Int64  // the thread running a Dispatch, 0 when none
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
	// Dispatch delivers every callback (handlers, server hooks, timers) on a
	// goroutine of yours instead of the reactor thread: the one that calls
	// Run or Dispatch. See (*Reactor).Run.
	Dispatch bool
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
	var wake chan struct{}
	if opts != nil && opts.Dispatch {
		wake = make(chan struct{}, 1)
		// The handle is deleted by the destroy callback, when the options
		// and the reactor made from them are gone.
		if err := statusErr("dispatch", C.wsffi_reactor_options_set_dispatch(o, true)); err != nil {
			return nil, err
		}
		h := cgo.NewHandle(wake)
		if err := statusErr("dispatch", C.wsffi_go_reactor_options_set_wake(o, C.uintptr_t(h))); err != nil {
			h.Delete()
			return nil, err
		}
	}
	var r *C.wsffi_reactor
	var detail *C.wsffi_error
	if err := detailErr("reactor", C.wsffi_reactor_new(o, &r, &detail), detail); err != nil {
		return nil, err
	}
	re := &Reactor{r: r, shut: make(chan struct{}), dispatch: wake != nil, wake: wake}
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
	close(r.shut)
	// Calls that use the reactor pointer finish first; none blocks for long,
	// and callbacks never wait here (acquire fails at once once closing).
	// From a dispatched callback, the Dispatch running it is one of them:
	// the library lets a reactor be freed from there.
	busy := 0
	if r.inDispatch() {
		busy = 1
	}
	for r.inflight > busy {
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
	if r.dispatch {
		return false // the reactor thread runs no callbacks
	}
	tid := r.tid.Load()
	return tid != 0 && int64(syscall.Gettid()) == tid
}

// noteThread records the reactor thread (called at the start of callbacks).
func (r *Reactor) noteThread() {
	if r != nil && !r.dispatch && r.tid.Load() == 0 {
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
	if r.closing {
		r.idle.Broadcast()
	}
	r.mu.Unlock()
}

func (r *Reactor) addHTTPHandle(h cgo.Handle) {
	r.mu.Lock()
	r.httpHandles = append(r.httpHandles, h)
	r.mu.Unlock()
}

// inDispatch tells whether the caller is a callback run by Dispatch.
func (r *Reactor) inDispatch() bool {
	tid := r.dispatchTid.Load()
	return tid != 0 && int64(syscall.Gettid()) == tid
}

// Dispatch runs up to max waiting callbacks on the calling goroutine, in
// order, and returns how many ran; when it ran max, more may wait. Only for
// a reactor made with ReactorOptions.Dispatch (else ErrInvalidParameter).
// Calls from several goroutines take turns. From a callback it is running:
// ErrCalledFromCallback. ErrShutDown once the reactor is closing (Close
// then runs the remaining callbacks itself).
func (r *Reactor) Dispatch(max int) (int, error) {
	if !r.dispatch {
		return 0, &Error{Op: "dispatch", Status: Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER), Message: "the reactor is not in dispatch mode"}
	}
	if max <= 0 {
		return 0, nil
	}
	// The callbacks run on this thread: pin it, so inDispatch can tell
	// them from other goroutines.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r.inDispatch() {
		return 0, statusErr("dispatch", C.WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK)
	}
	r.dmu.Lock()
	defer r.dmu.Unlock()
	rp, err := r.acquire()
	if err != nil {
		return 0, err
	}
	defer r.release()
	r.dispatchTid.Store(int64(syscall.Gettid()))
	var ran C.size_t
	st := C.wsffi_reactor_dispatch(rp, C.size_t(max), &ran)
	r.dispatchTid.Store(0)
	return int(ran), statusErr("dispatch", st)
}

// Ready receives when callbacks wait for Dispatch (nil without dispatch
// mode). After each receive, call Dispatch until it runs fewer than its max,
// or no further signal comes. Run does that.
func (r *Reactor) Ready() <-chan struct{} { return r.wake }

const dispatchBatch = 64

// Run delivers the callbacks of a dispatch-mode reactor on the calling
// goroutine as they arrive, until ctx is done (ctx.Err()) or the reactor is
// closed (nil). Everything a Handler or timer does then happens on this one
// goroutine, so state they share needs no locks. Callbacks may call
// blocking methods such as Close and Broadcast, but not Dial, Read, Accept
// or SendContext, which wait for callbacks that only this goroutine could
// run (Dial returns ErrCalledFromCallback there). Call Dial from other
// goroutines while Run runs.
func (r *Reactor) Run(ctx context.Context) error {
	if !r.dispatch {
		return &Error{Op: "run", Status: Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER), Message: "the reactor is not in dispatch mode"}
	}
	for {
		for {
			n, err := r.Dispatch(dispatchBatch)
			if errors.Is(err, ErrShutDown) {
				return nil
			}
			if err != nil {
				return err
			}
			if n < dispatchBatch {
				break
			}
		}
		select {
		case <-r.wake:
		case <-r.shut:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

//export goReactorWake
func goReactorWake(user unsafe.Pointer) {
	ch := cgo.Handle(uintptr(user)).Value().(chan struct{})
	select {
	case ch <- struct{}{}:
	default:
	}
}

//export goReactorWakeDestroy
func goReactorWakeDestroy(user unsafe.Pointer) {
	cgo.Handle(uintptr(user)).Delete()
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

// HeaderVersion is the version of the header the package was built against,
// as MAJOR<<16 | MINOR<<8 | PATCH.
const HeaderVersion = C.WSFFI_VERSION_NUMBER

// VersionNumber is the version of the loaded library as MAJOR<<16 |
// MINOR<<8 | PATCH; it differs from HeaderVersion when the installed library
// is not the one the package was built against (no ABI stability before 1.0).
func VersionNumber() uint32 { return uint32(C.wsffi_version_number()) }

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
