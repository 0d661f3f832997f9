"""Chat broadcast: every message goes to every client. python chat.py [port]"""
import sys

import wsffi

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
wss = wsffi.WebSocketServer(port=port, path="/chat")


def on_connection(ws, request):
    name = request.query("name", request.remote_address)

    def on_message(event):
        for client in wss.clients:
            if client.ready_state == wsffi.OPEN:
                client.send(f"{name}: {event.data}")

    ws.on("message", on_message)
    ws.on("close", lambda code, reason: wss.broadcast(f"{name} left"))
    wss.broadcast(f"{name} joined")


wss.on("connection", on_connection)
print(f"chat on ws://{wss.address}/chat?name=you")
wsffi.run()
