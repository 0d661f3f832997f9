// Echo server on the wsffi Go binding, handler-callback style: OnMessage runs on
// the reactor thread and writes the message straight back.
//
//	wsffi-echo [HOST:PORT]     (prints "listening on ADDR")
package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	wsffi "github.com/wsffi/wsffi/bindings/go"
)

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[len(os.Args)-1]
	}
	l, err := wsffi.Listen(addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = l.Attach("/", &wsffi.ServerOptions{MaxPayload: 64 << 20}, &wsffi.Handler{
		OnMessage: func(c *wsffi.Conn, typ wsffi.MessageType, data []byte) {
			_ = c.Write(typ, data)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	wsffi.CloseDefault()
}
