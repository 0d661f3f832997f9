// handle_protocols: the server picks the newest protocol version the client
// offers, and the handler speaks it.
//
//	go run ./examples/protocols -addr 127.0.0.1:9004
package main

import (
	"flag"
	"log"
	"strings"

	wsffi "github.com/wsffi/wsffi/bindings/go"
)

var supported = []string{"chat.v3", "chat.v2", "chat.v1"} // best first

func main() {
	addr := flag.String("addr", "127.0.0.1:9004", "listen address")
	flag.Parse()

	l, err := wsffi.Listen(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = l.Attach("/", &wsffi.ServerOptions{
		HandleProtocols: func(r *wsffi.Request, offered []string) string {
			for _, want := range supported {
				for _, p := range offered {
					if p == want {
						return p
					}
				}
			}
			return "" // none: the connection opens without a subprotocol
		},
	}, &wsffi.Handler{
		OnMessage: func(c *wsffi.Conn, typ wsffi.MessageType, data []byte) {
			switch c.Subprotocol() {
			case "chat.v3":
				c.SendText(strings.ToUpper(string(data)))
			default:
				c.Write(typ, data)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ws://%s/ speaks %v", l.Addr(), supported)
	select {}
}
