package wsffi

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStatsCountTrafficAndCloses(t *testing.T) {
	r, err := NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := l.Attach("/", nil, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", l.Port()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c.SendText("twelve bytes")
		expectMessage(t, c, Text, []byte("twelve bytes"))
	}
	// A received message is counted once its callback returned, so the third may still be
	// on its way into the counters when Read hands it over.
	var cs ConnStats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if cs, err = c.Stats(); err != nil {
			t.Fatal(err)
		}
		if cs.MessagesIn == 3 || time.Now().After(deadline) {
			break
		}
	}
	if cs.MessagesIn != 3 || cs.MessagesOut != 3 || cs.BytesIn < 3*14 || cs.BytesOut < 3*18 {
		t.Fatalf("client stats %+v", cs)
	}
	// The server counts the third after its echo callback, which may be after the echo.
	var ss ServerStats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ss, err = s.Stats(); err != nil {
			t.Fatal(err)
		}
		if ss.MessagesIn == 3 || time.Now().After(deadline) {
			break
		}
	}
	if ss.HandshakesAccepted != 1 || ss.ConnectionsOpen != 1 || ss.MessagesIn != 3 {
		t.Fatalf("server stats %+v", ss)
	}
	c.Close(CloseNormal, "")
	<-c.Done()
	// Final after the close.
	if cs, err = c.Stats(); err != nil || cs.MessagesIn != 3 {
		t.Fatalf("after close: %+v %v", cs, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := r.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if rs.ConnectionsOpen == 0 {
			if rs.ConnectionsOpened != 2 || rs.ClosesSent.Normal != 2 || rs.ClosesReceived.Normal != 2 {
				t.Fatalf("reactor stats %+v", rs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still open: %+v", rs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	text, err := r.PrometheusText()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# TYPE wsffi_connections_opened_total counter", "wsffi_connections_opened_total 2",
		"wsffi_server_handshakes_accepted_total{"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q missing from:\n%s", want, text)
		}
	}
}
