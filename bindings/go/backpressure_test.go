package wsffi

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stuckClient upgrades and then never reads; its small receive buffer fills at once.
func stuckClient(t *testing.T, url string) net.Conn {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	t.Cleanup(func() { c.Close() })
	return c
}

func flood(c *Conn, until error) bool {
	payload := make([]byte, 4096)
	for i := 0; i < 20000; i++ {
		if err := c.Send(payload); errors.Is(err, until) {
			return true
		}
	}
	return false
}

func TestBackpressurePolicies(t *testing.T) {
	for _, tc := range []struct {
		policy BackpressurePolicy
		err    error
	}{{BackpressureDrop, ErrDropped}, {BackpressureRefuse, ErrBackpressure}} {
		t.Run(fmt.Sprint(tc.policy), func(t *testing.T) {
			opened := make(chan *Conn, 1)
			ts := serve(t, nil, "/", &ServerOptions{Backpressure: tc.policy, HighWaterMark: 64 << 10, LowWaterMark: 16 << 10},
				&Handler{OnOpen: func(c *Conn) { opened <- c }})
			stuckClient(t, ts.url)
			c := <-opened
			if !flood(c, tc.err) {
				t.Fatalf("no %v after 80 MB", tc.err)
			}
			if n := c.BufferedAmount(); n > 64<<10+4096+16 {
				t.Fatalf("buffered %d", n)
			}
		})
	}
}

func TestBackpressureCloses1013AfterTheGrace(t *testing.T) {
	opened := make(chan *Conn, 1)
	ts := serve(t, nil, "/", &ServerOptions{
		Backpressure: BackpressureClose1013, BackpressureGrace: 100 * time.Millisecond,
		HighWaterMark: 64 << 10, LowWaterMark: 16 << 10, CloseTimeout: 300 * time.Millisecond,
	}, &Handler{OnOpen: func(c *Conn) { opened <- c }})
	stuckClient(t, ts.url)
	c := <-opened
	// Keep it above its mark (the kernel takes megabytes before the library's queue grows).
	payload := make([]byte, 4096)
	deadline := time.After(10 * time.Second)
	for closed := false; !closed; {
		select {
		case <-c.Done():
			closed = true
		case <-deadline:
			t.Fatal("the stuck client was never closed")
		default:
			if err := c.Send(payload); errors.Is(err, ErrBackpressure) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if ce := c.CloseError(); ce == nil || ce.Code != 1013 || ce.Reason != "slow consumer" {
		t.Fatalf("close %+v", ce)
	}
}
