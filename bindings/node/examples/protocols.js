// handleProtocols: the server prefers "chat.v2", accepts "chat.v1", and refuses the rest.
//   node examples/protocols.js [PORT]
'use strict';
const { WebSocketServer } = require('wsffi');

const wss = new WebSocketServer({
  port: Number(process.argv[2] || 8080),
  host: '127.0.0.1',
  handleProtocols: (protocols) => {
    if (protocols.has('chat.v2')) return 'chat.v2';
    if (protocols.has('chat.v1')) return 'chat.v1';
    return false;
  },
});

wss.on('connection', (ws) => ws.send(`you speak ${ws.protocol || 'nothing'}`));

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
