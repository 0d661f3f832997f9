// verifyClient: only requests carrying ?token=<TOKEN> are upgraded; others get 401.
//   node examples/verify_token.js [PORT] [TOKEN]
'use strict';
const { WebSocketServer } = require('wsffi');

const token = process.argv[3] || 'secret';
const wss = new WebSocketServer({
  port: Number(process.argv[2] || 8080),
  host: '127.0.0.1',
  // The callback form: the answer may come later (a database lookup, say).
  verifyClient: (info, done) => {
    const ok = info.req.query('token') === token;
    setImmediate(() => (ok ? done(true) : done(false, 401, 'bad token')));
  },
});

wss.on('connection', (ws, req) => {
  ws.send(`welcome ${req.remoteAddress} to ${req.path}`);
});

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
