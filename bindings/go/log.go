package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
	"unsafe"
)

// SetLogger sends the library's log records at level and more severe ones to
// l, for every reactor of the process; nil turns the log off (the default).
// Library levels map to slog's: error to LevelError (a listener that cannot
// accept), warn to LevelWarn (failed connections, TLS, DNS, refused
// handshakes on the client), info to LevelInfo (connections opening, clients
// a server refused and why, timeouts), debug to LevelDebug (every close and
// every HTTP answer). Records are not formatted when below level. They
// arrive on library threads, between events: a slow handler delays the
// reactor.
func SetLogger(l *slog.Logger, level slog.Level) error {
	if l == nil {
		return statusErr("set logger", C.wsffi_go_set_log(C.WSFFI_LOG_OFF, 0))
	}
	h := cgo.NewHandle(l)
	st := C.wsffi_go_set_log(libLogLevel(level), C.uintptr_t(h))
	if st != C.WSFFI_STATUS_OK {
		h.Delete() // destroy is not called on failure
	}
	return statusErr("set logger", st)
}

func libLogLevel(l slog.Level) C.uint32_t {
	switch {
	case l <= slog.LevelDebug:
		return C.WSFFI_LOG_DEBUG
	case l <= slog.LevelInfo:
		return C.WSFFI_LOG_INFO
	case l <= slog.LevelWarn:
		return C.WSFFI_LOG_WARN
	}
	return C.WSFFI_LOG_ERROR
}

func slogLevel(l C.uint32_t) slog.Level {
	switch l {
	case C.WSFFI_LOG_ERROR:
		return slog.LevelError
	case C.WSFFI_LOG_WARN:
		return slog.LevelWarn
	case C.WSFFI_LOG_INFO:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

//export goLog
func goLog(user unsafe.Pointer, level C.uint32_t, msg *C.char) {
	l := cgo.Handle(uintptr(user)).Value().(*slog.Logger)
	defer func() {
		if v := recover(); v != nil {
			reportPanic("Logger", v)
		}
	}()
	l.Log(context.Background(), slogLevel(level), C.GoString(msg))
}

//export goLogDestroy
func goLogDestroy(user unsafe.Pointer) {
	cgo.Handle(uintptr(user)).Delete()
}
