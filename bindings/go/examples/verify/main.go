// verify_client: only clients with the right token (?token=... or an
// Authorization: Bearer header) get in; others get 401.
//
//	go run ./examples/verify -addr 127.0.0.1:9003 -token s3cret
package main

import (
	"flag"
	"log"
	"strings"

	wsffi "github.com/wsffi/wsffi/bindings/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9003", "listen address")
	token := flag.String("token", "s3cret", "accepted token")
	flag.Parse()

	l, err := wsffi.Listen(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = l.Attach("/", &wsffi.ServerOptions{
		VerifyClient: func(h *wsffi.Handshake) wsffi.Verdict {
			got := h.Request.Query.Get("token")
			if auth := h.Request.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
				got = strings.TrimPrefix(auth, "Bearer ")
			}
			if got != *token {
				h.SetReject(401, "bad token")
				h.AddHeader("WWW-Authenticate", "Bearer")
				return wsffi.Reject
			}
			return wsffi.Accept
		},
		OnClientError: func(err error) { log.Printf("handshake: %v", err) },
	}, &wsffi.Handler{
		OnOpen: func(c *wsffi.Conn) { c.SendText("welcome") },
		OnMessage: func(c *wsffi.Conn, typ wsffi.MessageType, data []byte) {
			c.Write(typ, data)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ws://%s/?token=%s", l.Addr(), *token)
	select {}
}
