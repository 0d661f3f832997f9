// Command nethttp serves a page and a WebSocket echo endpoint from one
// net/http server: the mux hands upgrade requests on /ws to wsffi.
package main

import (
	"flag"
	"io"
	"log"
	"log/slog"
	"net/http"

	wsffi "github.com/wsffi/wsffi/bindings/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	if err := wsffi.SetLogger(slog.Default(), slog.LevelInfo); err != nil {
		log.Fatal(err)
	}
	srv, err := wsffi.NewServer(&wsffi.ServerOptions{Compression: true}, &wsffi.Handler{
		OnMessage: func(c *wsffi.Conn, typ wsffi.MessageType, data []byte) {
			_ = c.Write(typ, data)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "WebSocket echo at /ws\n")
	})
	mux.Handle("/ws", srv)
	log.Printf("listening on http://%s (WebSocket at ws://%s/ws)", *addr, *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
