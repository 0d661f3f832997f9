// Echo server on the wsffi Node binding (echo.js with require of the binding instead of ws): every message goes back with its type.
//   node echo-wsffi.js [HOST:PORT] [--deflate]     (prints "listening on ADDR")
'use strict';
const { WebSocketServer } = require('../../bindings/node');

const args = process.argv.slice(2);
const deflate = args.includes('--deflate');
const addr = args.find((a) => !a.startsWith('--')) || '127.0.0.1:0';
const cut = addr.lastIndexOf(':');
const host = addr.slice(0, cut);
const port = Number(addr.slice(cut + 1));

const wss = new WebSocketServer({
  host,
  port,
  clientTracking: false,
  maxPayload: 64 * 1024 * 1024,
  // With --deflate every message is compressed (no size threshold).
  perMessageDeflate: deflate ? { threshold: 0 } : false,
});

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('error', (e) => {
  console.error(`node-wsffi echo: ${e.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
