package wsffi

/*
#include "bridge.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// CloseCodes counts close frames by code; Other is every code not listed.
type CloseCodes struct {
	Normal, GoingAway, ProtocolError, UnsupportedData, NoStatus, Abnormal, InvalidPayload,
	PolicyViolation, MessageTooBig, MandatoryExtension, InternalError, Other uint64
}

func closeCodes(c C.struct_wsffi_close_counts) CloseCodes {
	return CloseCodes{uint64(c.code_1000), uint64(c.code_1001), uint64(c.code_1002), uint64(c.code_1003),
		uint64(c.code_1005), uint64(c.code_1006), uint64(c.code_1007), uint64(c.code_1008), uint64(c.code_1009),
		uint64(c.code_1010), uint64(c.code_1011), uint64(c.other)}
}

// Traffic is messages and bytes each way.
type Traffic struct {
	MessagesIn, MessagesOut, BytesIn, BytesOut uint64
}

// ConnStats are a connection's counters (read without stopping the reactor).
type ConnStats struct {
	Traffic
	BufferedBytes uint64
	// LastPingRTT is the round trip of the last ping answered; 0 until one was.
	LastPingRTT     time.Duration
	MessagesDropped uint64 // above the high-water mark (see ServerOptions.Backpressure)
}

// Refusals are handshakes refused, by reason.
type Refusals struct {
	BadRequest, NotFound, Origin, MaxConnections, VerifyClient, Timeout, ServerClosing uint64
}

// ServerStats are a server's counters.
type ServerStats struct {
	Traffic
	ConnectionsOpen, HandshakesAccepted uint64
	Refused                             Refusals // NotFound is counted on the reactor only
	ClosesSent, ClosesReceived          CloseCodes
	MessagesDropped                     uint64
}

// ReactorStats are a reactor's counters: every connection, both sides.
type ReactorStats struct {
	Traffic
	ConnectionsOpen, ConnectionsOpened, HandshakesAccepted, HTTPRequests uint64
	TLSFailuresServer, TLSFailuresClient                                 uint64
	Refused                                                              Refusals
	ClosesSent, ClosesReceived                                           CloseCodes
}

// Stats reads the connection's counters; after the close, the final ones.
func (c *Conn) Stats() (ConnStats, error) {
	var out ConnStats
	err := c.with("stats", func(p *C.wsffi_conn) C.wsffi_status {
		var st C.wsffi_status
		out, st = connStats(p)
		return st
	})
	select {
	case <-c.done:
		return c.final, nil // taken in the close callback, before the reference went
	default:
	}
	return out, err
}

func connStats(p *C.wsffi_conn) (ConnStats, C.wsffi_status) {
	var s C.struct_wsffi_conn_stats
	s.size = C.size_t(unsafe.Sizeof(s))
	if st := C.wsffi_conn_get_stats(p, &s); st != C.WSFFI_STATUS_OK {
		return ConnStats{}, st
	}
	out := ConnStats{
		Traffic:         Traffic{uint64(s.messages_in), uint64(s.messages_out), uint64(s.bytes_in), uint64(s.bytes_out)},
		BufferedBytes:   uint64(s.buffered_bytes),
		MessagesDropped: uint64(s.messages_dropped),
	}
	if s.last_ping_rtt_us >= 0 {
		out.LastPingRTT = time.Duration(s.last_ping_rtt_us) * time.Microsecond
	}
	return out, C.WSFFI_STATUS_OK
}

// Stats reads the server's counters.
func (s *Server) Stats() (ServerStats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return ServerStats{}, &Error{Op: "stats", Status: Status(C.WSFFI_STATUS_ERR_CLOSED)}
	}
	var st C.struct_wsffi_server_stats
	st.size = C.size_t(unsafe.Sizeof(st))
	if err := statusErr("stats", C.wsffi_server_get_stats(s.s, &st)); err != nil {
		return ServerStats{}, err
	}
	return ServerStats{
		Traffic:            Traffic{uint64(st.messages_in), uint64(st.messages_out), uint64(st.bytes_in), uint64(st.bytes_out)},
		ConnectionsOpen:    uint64(st.connections_open),
		HandshakesAccepted: uint64(st.handshakes_accepted),
		Refused: Refusals{BadRequest: uint64(st.refused_bad_request), Origin: uint64(st.refused_origin),
			MaxConnections: uint64(st.refused_max_connections), VerifyClient: uint64(st.refused_verify_client),
			Timeout: uint64(st.refused_timeout), ServerClosing: uint64(st.refused_server_closing)},
		ClosesSent:      closeCodes(st.closes_sent),
		ClosesReceived:  closeCodes(st.closes_received),
		MessagesDropped: uint64(st.messages_dropped),
	}, nil
}

// Stats reads the reactor's counters.
func (r *Reactor) Stats() (ReactorStats, error) {
	p, err := r.acquire()
	if err != nil {
		return ReactorStats{}, err
	}
	defer r.release()
	var st C.struct_wsffi_reactor_stats
	st.size = C.size_t(unsafe.Sizeof(st))
	if err := statusErr("stats", C.wsffi_reactor_get_stats(p, &st)); err != nil {
		return ReactorStats{}, err
	}
	return ReactorStats{
		Traffic:            Traffic{uint64(st.messages_in), uint64(st.messages_out), uint64(st.bytes_in), uint64(st.bytes_out)},
		ConnectionsOpen:    uint64(st.connections_open),
		ConnectionsOpened:  uint64(st.connections_opened),
		HandshakesAccepted: uint64(st.handshakes_accepted),
		HTTPRequests:       uint64(st.http_requests),
		TLSFailuresServer:  uint64(st.tls_failures_server),
		TLSFailuresClient:  uint64(st.tls_failures_client),
		Refused: Refusals{BadRequest: uint64(st.refused_bad_request), NotFound: uint64(st.refused_not_found),
			Origin: uint64(st.refused_origin), MaxConnections: uint64(st.refused_max_connections),
			VerifyClient: uint64(st.refused_verify_client), Timeout: uint64(st.refused_timeout),
			ServerClosing: uint64(st.refused_server_closing)},
		ClosesSent:     closeCodes(st.closes_sent),
		ClosesReceived: closeCodes(st.closes_received),
	}, nil
}

// PrometheusText is the reactor's and its servers' counters in the Prometheus text
// exposition format, for a /metrics handler.
func (r *Reactor) PrometheusText() (string, error) {
	p, err := r.acquire()
	if err != nil {
		return "", err
	}
	defer r.release()
	size := C.size_t(16 << 10)
	for {
		buf := C.malloc(size)
		var n C.size_t
		st := C.wsffi_reactor_stats_prometheus(p, (*C.char)(buf), size, &n)
		if st == C.WSFFI_STATUS_OK {
			text := C.GoStringN((*C.char)(buf), C.int(n))
			C.free(buf)
			return text, nil
		}
		C.free(buf)
		if st != C.WSFFI_STATUS_ERR_TOO_BIG {
			return "", statusErr("prometheus", st)
		}
		size = n + 4096 // counters may grow between the two calls
	}
}
