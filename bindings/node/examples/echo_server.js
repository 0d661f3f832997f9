// Echo server: every message goes back as it came, with a heartbeat that drops dead peers.
//   node examples/echo_server.js [PORT]        (prints "listening on HOST:PORT")
'use strict';
const { WebSocketServer } = require('wsffi');

const wss = new WebSocketServer({ port: Number(process.argv[2] || 8080), host: '127.0.0.1' });

wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.on('pong', () => { ws.isAlive = true; });
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', console.error);
});

// Every 30 s: a peer that did not answer the last ping is gone.
const heartbeat = setInterval(() => {
  wss.clients.forEach((ws) => {
    if (!ws.isAlive) return ws.terminate();
    ws.isAlive = false;
    ws.ping();
  });
}, 30000);
heartbeat.unref();

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
