package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// MaxTopicBytes is the longest topic name, in bytes.
const MaxTopicBytes = int(C.WSFFI_MAX_TOPIC_BYTES)

// topicCall runs f with the topic as a C string (the library checks the name).
func topicCall(topic string, f func(t *C.char) C.wsffi_status) C.wsffi_status {
	ct := C.CString(topic)
	defer C.free(unsafe.Pointer(ct))
	return f(ct)
}

// Subscribe subscribes a server-side connection to topic, so that
// (*Server).Publish to that topic reaches it, until Unsubscribe or the
// connection's close. It reports whether the subscription is new. Names are 1
// to MaxTopicBytes bytes of UTF-8; past ServerOptions.MaxSubscriptions it fails
// with ErrTooBig, on a client connection with ErrUnsupported, once closed with
// ErrClosed.
func (c *Conn) Subscribe(topic string) (bool, error) {
	err := c.with("subscribe", func(p *C.wsffi_conn) C.wsffi_status {
		return topicCall(topic, func(t *C.char) C.wsffi_status { return C.wsffi_conn_subscribe(p, t) })
	})
	if errors.Is(err, ErrAlreadyDone) {
		return false, nil
	}
	return err == nil, err
}

// Unsubscribe ends a subscription; it reports whether there was one.
func (c *Conn) Unsubscribe(topic string) (bool, error) {
	err := c.with("unsubscribe", func(p *C.wsffi_conn) C.wsffi_status {
		return topicCall(topic, func(t *C.char) C.wsffi_status { return C.wsffi_conn_unsubscribe(p, t) })
	})
	if errors.Is(err, ErrAlreadyDone) {
		return false, nil
	}
	return err == nil, err
}

// IsSubscribed reports whether the connection is subscribed to topic (false
// once it closed).
func (c *Conn) IsSubscribed(topic string) bool {
	yes := false
	_ = c.with("is subscribed", func(p *C.wsffi_conn) C.wsffi_status {
		ct := C.CString(topic)
		defer C.free(unsafe.Pointer(ct))
		yes = bool(C.wsffi_conn_is_subscribed(p, ct))
		return C.WSFFI_STATUS_OK
	})
	return yes
}

// Publish sends one message to every connection subscribed to topic, except
// except (nil: none), with the frame encoded once. Subscribers above their
// high-water mark are skipped for this message. From a handler the message is
// queued before Publish returns; from other goroutines it is handed to the
// reactor, and one goroutine's publishes reach every subscriber in order.
func (s *Server) Publish(topic string, typ MessageType, data []byte, except *Conn) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return &Error{Op: "publish", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	var skip *C.wsffi_conn
	if except != nil {
		except.mu.RLock()
		defer except.mu.RUnlock()
		skip = except.c
	}
	return statusErr("publish", topicCall(topic, func(t *C.char) C.wsffi_status {
		return C.wsffi_server_publish(s.s, t, C.uint32_t(typ), bytesPtr(data), C.size_t(len(data)), skip)
	}))
}

// SubscriberCount is the number of connections subscribed to topic (0 once
// the server closed).
func (s *Server) SubscriberCount(topic string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return 0
	}
	ct := C.CString(topic)
	defer C.free(unsafe.Pointer(ct))
	return int(C.wsffi_server_subscriber_count(s.s, ct))
}
