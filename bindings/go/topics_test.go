package wsffi

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Rooms: each client joins the room named by its query; its messages go to the
// others in the room.
func TestTopicsAsRooms(t *testing.T) {
	var srv atomic.Pointer[Server]
	opened := make(chan string, 8)
	h := &Handler{
		OnOpen: func(c *Conn) {
			room := c.Request().Query.Get("room")
			if ok, err := c.Subscribe(room); !ok || err != nil {
				t.Errorf("subscribe %q: %v %v", room, ok, err)
			}
			if ok, err := c.Subscribe(room); ok || err != nil {
				t.Errorf("second subscribe %q: %v %v", room, ok, err)
			}
			opened <- room
		},
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			room := c.Request().Query.Get("room")
			if err := srv.Load().Publish(room, typ, data, c); err != nil {
				t.Errorf("publish: %v", err)
			}
		},
	}
	ts := serve(t, nil, "/", &ServerOptions{MaxSubscriptions: 3}, h)
	srv.Store(ts.s)
	var cs []*Conn
	for _, room := range []string{"lobby", "lobby", "attic"} {
		cs = append(cs, dial(t, ts.url+"?room="+room, nil))
		<-opened
	}
	if n := ts.s.SubscriberCount("lobby"); n != 2 {
		t.Fatalf("lobby has %d subscribers", n)
	}
	if n := ts.s.SubscriberCount("attic"); n != 1 {
		t.Fatalf("attic has %d subscribers", n)
	}
	if err := cs[0].SendText("hi lobby"); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, cs[1], Text, []byte("hi lobby"))
	// From a goroutine: to everyone in the room, the sender included.
	if err := ts.s.Publish("lobby", Binary, []byte{1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, cs[0], Binary, []byte{1, 2})
	expectMessage(t, cs[1], Binary, []byte{1, 2})
	// The attic heard nothing: its first message is the marker.
	if err := ts.s.Publish("attic", Text, []byte("marker"), nil); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, cs[2], Text, []byte("marker"))

	// Closing ends the subscription.
	cs[0].Close(CloseNormal, "")
	deadline := time.Now().Add(10 * time.Second)
	for ts.s.SubscriberCount("lobby") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection stayed subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTopicErrors(t *testing.T) {
	results := make(chan error, 8)
	h := &Handler{OnOpen: func(c *Conn) {
		_, err := c.Subscribe("")
		results <- err
		_, err = c.Subscribe(strings.Repeat("x", MaxTopicBytes+1))
		results <- err
		_, err = c.Subscribe("\xff")
		results <- err
		c.Subscribe("a")
		_, err = c.Subscribe("b")
		results <- err // the cap is 1
		if ok, err := c.Unsubscribe("a"); !ok || err != nil {
			t.Errorf("unsubscribe: %v %v", ok, err)
		}
		if ok, err := c.Unsubscribe("a"); ok || err != nil {
			t.Errorf("second unsubscribe: %v %v", ok, err)
		}
		if c.IsSubscribed("a") {
			t.Error("still subscribed")
		}
	}}
	ts := serve(t, nil, "/", &ServerOptions{MaxSubscriptions: 1}, h)
	client := dial(t, ts.url, nil)
	for i, want := range []error{ErrInvalidParameter, ErrTooBig, ErrInvalidUTF8, ErrTooBig} {
		if err := <-results; !errors.Is(err, want) {
			t.Errorf("case %d: got %v, want %v", i, err, want)
		}
	}
	if _, err := client.Subscribe("x"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("client subscribe: %v", err)
	}
	if err := ts.s.Publish("", Text, nil, nil); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("publish to an empty name: %v", err)
	}
	if err := ts.s.Publish("nobody", Text, []byte("x"), nil); err != nil {
		t.Errorf("publish to nobody: %v", err)
	}
	ts.s.Close()
	if err := ts.s.Publish("a", Text, []byte("x"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after close: %v", err)
	}
	if n := ts.s.SubscriberCount("a"); n != 0 {
		t.Errorf("count after close: %d", n)
	}
}
