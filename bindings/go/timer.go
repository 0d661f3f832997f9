package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"runtime/cgo"
	"sync/atomic"
	"time"
	"unsafe"
)

// Timer is a function scheduled on a reactor by AfterFunc or Every. It runs
// where the reactor's other callbacks run (the reactor thread, or the
// dispatching goroutine in dispatch mode), so it must not block and may call
// every Conn and Server method.
type Timer struct {
	r  *Reactor
	f  func()
	id atomic.Uint64
}

// AfterFunc runs f once after d (d <= 0: at the reactor's next turn).
// ErrShutDown once the reactor is closing.
func (r *Reactor) AfterFunc(d time.Duration, f func()) (*Timer, error) {
	return r.addTimer(d, 0, f)
}

// Every runs f every d, the first time after d, until Stop or the reactor's
// Close. A run that falls behind (a slow f) is not repeated to catch up.
// d must be at least a millisecond (else ErrInvalidParameter).
func (r *Reactor) Every(d time.Duration, f func()) (*Timer, error) {
	if d < time.Millisecond {
		return nil, &Error{Op: "timer", Status: Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER), Message: "interval below 1 ms"}
	}
	return r.addTimer(d, d, f)
}

func (r *Reactor) addTimer(delay, repeat time.Duration, f func()) (*Timer, error) {
	if f == nil {
		return nil, &Error{Op: "timer", Status: Status(C.WSFFI_STATUS_ERR_NULL_PARAMETER)}
	}
	rp, err := r.acquire()
	if err != nil {
		return nil, err
	}
	defer r.release()
	t := &Timer{r: r, f: f}
	h := cgo.NewHandle(t)
	var id C.uint64_t
	st := C.wsffi_go_add_timer(rp, C.uint64_t(msec(delay)), C.uint64_t(msec(repeat)), C.uintptr_t(h), &id)
	if st != C.WSFFI_STATUS_OK {
		h.Delete() // destroy is not called on failure
		return nil, statusErr("timer", st)
	}
	t.id.CompareAndSwap(0, uint64(id))
	return t, nil
}

// Stop cancels the timer: once it returns f does not start again (called
// from f itself, that run completes). It reports whether it stopped the
// timer: false when a one-shot timer already ran, it was stopped before, or
// the reactor is closed.
func (t *Timer) Stop() bool {
	id := t.id.Load()
	rp, err := t.r.acquire()
	if err != nil {
		return false
	}
	defer t.r.release()
	return C.wsffi_reactor_cancel_timer(rp, C.uint64_t(id)) == C.WSFFI_STATUS_OK
}

//export goTimerFire
func goTimerFire(user unsafe.Pointer, id C.uint64_t) {
	t := cgo.Handle(uintptr(user)).Value().(*Timer)
	t.r.noteThread()
	t.id.CompareAndSwap(0, uint64(id)) // a 0 ms timer may fire before addTimer stored it
	defer func() {
		if v := recover(); v != nil {
			reportPanic("Timer", v)
		}
	}()
	t.f()
}

//export goTimerDestroy
func goTimerDestroy(user unsafe.Pointer) {
	cgo.Handle(uintptr(user)).Delete()
}
