// Chat: the first message of a connection is its name; every later one goes to everybody,
// with join and leave notices.
//   node examples/chat_server.js [PORT]
'use strict';
const { WebSocketServer, OPEN } = require('wsffi');

const wss = new WebSocketServer({ port: Number(process.argv[2] || 8080), host: '127.0.0.1', path: '/chat' });

function broadcast(text) {
  wss.clients.forEach((client) => {
    if (client.readyState === OPEN) client.send(text);
  });
}

wss.on('connection', (ws) => {
  let name = null;
  ws.on('message', (data) => {
    const text = data.toString();
    if (name === null) {
      name = text;
      broadcast(`* ${name} joined`);
    } else {
      broadcast(`${name}: ${text}`);
    }
  });
  ws.on('close', () => { if (name !== null) broadcast(`* ${name} left`); });
});

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
