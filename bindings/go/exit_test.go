package wsffi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The process exits while the default reactor has a listener and open
// connections on both sides: exit must not hang.
func TestProcessExitWithOpenConnections(t *testing.T) {
	if os.Getenv("WSFFI_EXIT_CHILD") == "1" {
		l, err := Listen("127.0.0.1:0", nil)
		if err != nil {
			os.Exit(2)
		}
		if _, err := l.Attach("/", nil, echoHandler); err != nil {
			os.Exit(3)
		}
		c, err := Dial(context.Background(), fmt.Sprintf("ws://127.0.0.1:%d/", l.Port()), nil)
		if err != nil {
			os.Exit(4)
		}
		_ = c.SendText("in flight")
		os.Exit(0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestProcessExitWithOpenConnections$")
	cmd.Env = append(os.Environ(), "WSFFI_EXIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("child hung: %s", out)
	}
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
}

func TestPlainHTTPHandler(t *testing.T) {
	ts := serve(t, nil, "/ws", nil, echoHandler)
	if err := ts.l.HandleHTTP(func(w *HTTPResponse, r *Request) {
		w.SetStatus(200, "")
		w.AddHeader("Content-Type", "text/plain")
		w.SetBody([]byte("plain " + r.Path))
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status", ts.l.Port()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "plain /status" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
}
