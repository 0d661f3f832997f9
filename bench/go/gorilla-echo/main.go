// Echo server on gorilla/websocket: one goroutine per connection, no compression.
//
//	gorilla-echo [HOST:PORT]     (prints "listening on ADDR")
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadLimit(64 << 20)
	for {
		typ, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[len(os.Args)-1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, http.HandlerFunc(echo)))
}
