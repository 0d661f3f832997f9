"""handle_protocols: pick "machbase.rpc" when offered, else none. python protocols.py [port]"""
import sys

import wsffi

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080


def handle_protocols(protocols, request):
    return "machbase.rpc" if "machbase.rpc" in protocols else False


wss = wsffi.WebSocketServer(port=port, handle_protocols=handle_protocols)
wss.on("connection", lambda ws, req: ws.on("open", lambda: ws.send(f"protocol: {ws.protocol or '(none)'}")))

# a client in the same process, on the same loop
client = wsffi.WebSocket(f"ws://127.0.0.1:{wss.port}/", ["chat", "machbase.rpc"])
client.on("message", lambda e: (print(e.data), client.close()))
client.on("close", lambda: wss.close())
wsffi.run()
