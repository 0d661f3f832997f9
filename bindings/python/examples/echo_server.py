"""Echo server (event-emitter API): python echo_server.py [port]"""
import sys

import wsffi

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
wss = wsffi.WebSocketServer(port=port, host="127.0.0.1", per_message_deflate=True)


def on_connection(ws, request):
    print("connection from", request.remote_address, request.path)
    ws.on("message", lambda event: ws.send(event.data))


wss.on("connection", on_connection)
print(f"listening on ws://{wss.address}/")
wsffi.run()  # events run on this thread until the server is closed (Ctrl-C to stop)
