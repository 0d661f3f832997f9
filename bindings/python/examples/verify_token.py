"""verify_client: only ?token=allow gets in; others get 403. python verify_token.py [port]"""
import sys

import wsffi

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080


def verify_client(info):
    if info.req.query("token") == "allow":
        return True
    return (False, 403, "Forbidden")


wss = wsffi.WebSocketServer(port=port, path="/ws", verify_client=verify_client)
wss.on("connection", lambda ws, req: ws.on("open", lambda: ws.send(f"welcome, token {req.query('token')}")))
print(f"try ws://{wss.address}/ws?token=allow")
wsffi.run()
