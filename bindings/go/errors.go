package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/http"
)

// Status is a wsffi_status value. Every non-zero Status is an error; the Err*
// variables are the Status values to use as errors.Is targets.
type Status uint32

// Error returns the library's description of the status.
func (s Status) Error() string { return C.GoString(C.wsffi_status_str(C.uint32_t(s))) }

// The statuses of wsffi_status, usable as errors.Is targets: every error this
// package returns for a failed library call wraps one of them.
var (
	ErrNullParameter      error = Status(C.WSFFI_STATUS_ERR_NULL_PARAMETER)
	ErrInvalidParameter   error = Status(C.WSFFI_STATUS_ERR_INVALID_PARAMETER)
	ErrInvalidUTF8        error = Status(C.WSFFI_STATUS_ERR_INVALID_UTF8)
	ErrInvalidURL         error = Status(C.WSFFI_STATUS_ERR_INVALID_URL)
	ErrTooBig             error = Status(C.WSFFI_STATUS_ERR_TOO_BIG)
	ErrUnsupported        error = Status(C.WSFFI_STATUS_ERR_UNSUPPORTED)
	ErrNotOpen            error = Status(C.WSFFI_STATUS_ERR_NOT_OPEN)
	ErrClosed             error = Status(C.WSFFI_STATUS_ERR_CLOSED)
	ErrBackpressure       error = Status(C.WSFFI_STATUS_ERR_BACKPRESSURE)
	ErrCalledFromCallback error = Status(C.WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK)
	ErrShutDown           error = Status(C.WSFFI_STATUS_ERR_SHUT_DOWN)
	ErrAlreadyDone        error = Status(C.WSFFI_STATUS_ERR_ALREADY_DONE)
	ErrQueueFull          error = Status(C.WSFFI_STATUS_ERR_QUEUE_FULL)
	ErrReconnecting       error = Status(C.WSFFI_STATUS_ERR_RECONNECTING)
	ErrDropped            error = Status(C.WSFFI_STATUS_ERR_DROPPED)
	ErrProtocol           error = Status(C.WSFFI_STATUS_ERR_PROTOCOL)
	ErrHandshake          error = Status(C.WSFFI_STATUS_ERR_HANDSHAKE)
	ErrHandshakeRejected  error = Status(C.WSFFI_STATUS_ERR_HANDSHAKE_REJECTED)
	ErrMessageTooBig      error = Status(C.WSFFI_STATUS_ERR_MESSAGE_TOO_BIG)
	ErrIO                 error = Status(C.WSFFI_STATUS_ERR_IO)
	ErrDNS                error = Status(C.WSFFI_STATUS_ERR_DNS)
	ErrConnectionRefused  error = Status(C.WSFFI_STATUS_ERR_CONNECTION_REFUSED)
	ErrTimeout            error = Status(C.WSFFI_STATUS_ERR_TIMEOUT)
	ErrAddressInUse       error = Status(C.WSFFI_STATUS_ERR_ADDRESS_IN_USE)
	ErrConnectionReset    error = Status(C.WSFFI_STATUS_ERR_CONNECTION_RESET)
	ErrTLS                error = Status(C.WSFFI_STATUS_ERR_TLS)
	ErrInternal           error = Status(C.WSFFI_STATUS_ERR_INTERNAL)
	ErrPanic              error = Status(C.WSFFI_STATUS_ERR_PANIC)
)

// Error is a failed library call or a failure the library reported: the
// operation, the status (errors.Is(err, ErrTimeout) and so on) and the
// library's sentence when it gave one.
type Error struct {
	Op      string
	Status  Status
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Status.Error()
	}
	if e.Op == "" {
		return "wsffi: " + msg
	}
	return "wsffi: " + e.Op + ": " + msg
}

// Unwrap returns the Status, so errors.Is works with the Err* variables.
func (e *Error) Unwrap() error { return e.Status }

// statusErr converts a status to nil or an *Error.
func statusErr(op string, st C.wsffi_status) error {
	if st == C.WSFFI_STATUS_OK {
		return nil
	}
	return &Error{Op: op, Status: Status(st)}
}

// detailErr converts a status and an optional wsffi_error detail (which it frees).
func detailErr(op string, st C.wsffi_status, detail *C.wsffi_error) error {
	if detail != nil {
		defer C.wsffi_error_free(detail)
	}
	if st == C.WSFFI_STATUS_OK {
		return nil
	}
	e := &Error{Op: op, Status: Status(st)}
	if detail != nil {
		e.Message = C.GoString(C.wsffi_error_message(detail))
	}
	return e
}

// CloseOrigin says who sent the first close frame.
type CloseOrigin uint32

const (
	// CloseOriginNone: no close frame went either way (code 1006).
	CloseOriginNone CloseOrigin = C.WSFFI_CLOSE_ORIGIN_NONE
	// CloseOriginPeer: the peer closed first.
	CloseOriginPeer CloseOrigin = C.WSFFI_CLOSE_ORIGIN_PEER
	// CloseOriginLocal: we closed first (Close, a server shutdown, a protocol failure).
	CloseOriginLocal CloseOrigin = C.WSFFI_CLOSE_ORIGIN_LOCAL
)

func (o CloseOrigin) String() string {
	switch o {
	case CloseOriginNone:
		return "none"
	case CloseOriginPeer:
		return "peer"
	case CloseOriginLocal:
		return "local"
	}
	return fmt.Sprintf("CloseOrigin(%d)", uint32(o))
}

// Close codes (RFC 6455 section 7.4).
const (
	CloseNormal             = 1000
	CloseGoingAway          = 1001
	CloseProtocolError      = 1002
	CloseUnsupportedData    = 1003
	CloseNoStatus           = 1005
	CloseAbnormal           = 1006
	CloseInvalidPayload     = 1007
	ClosePolicyViolation    = 1008
	CloseMessageTooBig      = 1009
	CloseMandatoryExtension = 1010
	CloseInternalError      = 1011
	CloseServiceRestart     = 1012
	CloseTryAgainLater      = 1013
	CloseBadGateway         = 1014
	CloseTLSHandshake       = 1015
)

// CloseError tells how a connection ended. Read returns it once the queue of
// received messages is empty and the connection is closed; errors.Is(err,
// ErrClosed) is true for it.
type CloseError struct {
	Code   int    // the code that decided the close (1006 when no close frame went either way)
	Reason string // its reason
	Clean  bool   // the close handshake completed
	Origin CloseOrigin
	// Each side's close frame: code 0 when that side sent none.
	PeerCode    int
	PeerReason  string
	LocalCode   int
	LocalReason string
	// Err is the failure the library reported before the close, if any
	// (errors.Is(err, ErrTimeout), ...).
	Err error
}

func (e *CloseError) Error() string {
	s := fmt.Sprintf("wsffi: connection closed: %d", e.Code)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrClosed) true for a CloseError.
func (e *CloseError) Is(target error) bool { return target == ErrClosed }

// Unwrap returns the failure reported before the close, if any.
func (e *CloseError) Unwrap() error { return e.Err }

// ResponseError is a refused upgrade: the server answered with a non-101
// status. errors.Is(err, ErrHandshakeRejected) is true for it.
type ResponseError struct {
	StatusCode int
	Reason     string
	Header     http.Header
	Body       []byte
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("wsffi: upgrade refused: %d %s", e.StatusCode, e.Reason)
}

// Is makes errors.Is(err, ErrHandshakeRejected) true.
func (e *ResponseError) Is(target error) bool { return target == ErrHandshakeRejected }

// PanicError is a panic recovered from a user callback.
type PanicError struct {
	Callback string // which callback panicked ("OnMessage", "VerifyClient", ...)
	Value    any
	Stack    []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("wsffi: panic in %s: %v", e.Callback, e.Value)
}

var errNoConn = errors.New("wsffi: connection not established")
