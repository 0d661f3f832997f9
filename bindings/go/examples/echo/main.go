// Echo server: every message goes back to its sender.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"

	wsffi "github.com/wsffi/wsffi/bindings/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	flag.Parse()

	l, err := wsffi.Listen(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := l.Attach("/", &wsffi.ServerOptions{Compression: true}, &wsffi.Handler{
		// Runs on the reactor thread: quick, non-blocking work only.
		OnMessage: func(c *wsffi.Conn, typ wsffi.MessageType, data []byte) {
			if err := c.Write(typ, data); err != nil {
				log.Printf("echo to %s: %v", c.RemoteAddr(), err)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo server on ws://%s/", l.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	l.Close()
	srv.Close()
	wsffi.CloseDefault()
}
