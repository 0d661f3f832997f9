// Chat: every text message is broadcast to all connected clients. Each
// connection is served by its own goroutine with Accept and Read.
//
//	go run ./examples/chat -addr 127.0.0.1:9002
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	wsffi "github.com/wsffi/wsffi/bindings/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9002", "listen address")
	flag.Parse()

	l, err := wsffi.Listen(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	// A nil Handler: connections are queued for Accept.
	srv, err := l.Attach("/chat", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat on ws://%s/chat", l.Addr())
	for {
		c, err := srv.Accept(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		go serve(srv, c)
	}
}

func serve(srv *wsffi.Server, c *wsffi.Conn) {
	name := c.Request().Query.Get("name")
	if name == "" {
		name = c.RemoteAddr()
	}
	srv.Broadcast(wsffi.Text, []byte(name+" joined"))
	for {
		typ, data, err := c.Read(context.Background())
		if err != nil {
			srv.Broadcast(wsffi.Text, []byte(name+" left"))
			return
		}
		if typ == wsffi.Text {
			srv.Broadcast(wsffi.Text, []byte(fmt.Sprintf("%s: %s", name, data)))
		}
	}
}
