package wsffi

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"testing"
)

// A message eight times larger than the server's MaxPayload goes through in parts.
func TestStreamedMessagesArriveInParts(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) {
			var h hash.Hash
			total, parts, biggest := 0, 0, 0
			handler := &Handler{OnMessagePart: func(c *Conn, typ MessageType, part []byte, first, last bool) {
				if first {
					h, total, parts, biggest = sha256.New(), 0, 0, 0
				}
				h.Write(part)
				total += len(part)
				parts++
				biggest = max(biggest, len(part))
				if last {
					c.SendText(fmt.Sprintf("%d %d %d %x", total, parts, biggest, h.Sum(nil)))
				}
			}}
			so := &ServerOptions{MaxPayload: 1 << 20, StreamMessages: true}
			if deflate {
				so.Compression = true
			}
			ts := serve(t, nil, "/", so, handler)
			c := dial(t, ts.url, &DialOptions{DisableCompression: !deflate})
			msg := make([]byte, 8<<20)
			for i := range msg {
				msg[i] = byte(i*7 + i>>12)
			}
			if err := c.Send(msg); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			var n, np, big int
			var sum string
			fmt.Sscanf(string(got), "%d %d %d %s", &n, &np, &big, &sum)
			if n != len(msg) || sum != fmt.Sprintf("%x", sha256.Sum256(msg)) {
				t.Fatalf("server saw %d bytes, sum %s", n, sum)
			}
			// Parts come out of the read buffer (64 KiB) or the inflater (32 KiB).
			if np < 2 || big > 64<<10 || deflate && big > 32<<10 {
				t.Fatalf("%d parts, the largest %d bytes", np, big)
			}
		})
	}
}
