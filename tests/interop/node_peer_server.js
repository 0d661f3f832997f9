'use strict';
// A Node `ws` server that the wsffi client (build/probe-client) talks to.
//
//   node node_peer_server.js [HOST:PORT]     (default 127.0.0.1:0)
//
// Prints "listening on HOST:PORT" once ready, then one JSON object per line for every
// event ({"event": "open" | "message" | "closed", "target": request target, ...}). Stops on
// SIGTERM or SIGINT. The paths behave as in py_peer_server.py (anything else echoes).

const http = require('http');
const { WebSocketServer } = require('ws');

const [host, port] = (process.argv[2] || '127.0.0.1:0').split(/:(?=[^:]*$)/);
const BIG = Buffer.alloc(1 << 20).map((_, i) => i % 251);
const INVALID_UTF8 = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');
const REJECT_BODY = 'forbidden by test server';

function log(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

const wss = new WebSocketServer({
  noServer: true,
  // PEER_DEFLATE: a JSON object of ws perMessageDeflate options; unset means no compression.
  perMessageDeflate: process.env.PEER_DEFLATE ? JSON.parse(process.env.PEER_DEFLATE) : false,
  maxPayload: 256 * 1024 * 1024,
  handleProtocols: (offered) => (offered.has('v1.probe') ? 'v1.probe' : false),
});

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket only\n');
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'ws://localhost');
  if (url.pathname === '/reject') {
    log({ event: 'rejected', target: req.url });
    socket.end(
      'HTTP/1.1 403 Forbidden\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(REJECT_BODY)}\r\n` +
        'Connection: close\r\n\r\n' +
        REJECT_BODY,
    );
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => handle(ws, req, url));
});

function handle(ws, req, url) {
  const target = req.url;
  const q = url.searchParams;
  log({
    event: 'open',
    target,
    origin: req.headers.origin || null,
    token: req.headers['x-probe-token'] || null,
    protocols: req.headers['sec-websocket-protocol'] ? [req.headers['sec-websocket-protocol']] : [],
    extensions: req.headers['sec-websocket-extensions'] ? [req.headers['sec-websocket-extensions']] : [],
    subprotocol: ws.protocol || null,
    answer: ws.extensions || null,
  });
  ws.on('close', (code, reason) => {
    // ws reports 1006 when no close frame arrived and 1005 for an empty one.
    log({
      event: 'closed',
      target,
      code: code === 1006 ? null : code,
      reason: code === 1006 ? null : reason.toString('utf8'),
      close_code: code,
    });
  });
  ws.on('error', (err) => log({ event: 'error', target, message: String(err.message) }));
  const echo = () =>
    ws.on('message', (data, isBinary) => {
      log({ event: 'message', target, type: isBinary ? 'binary' : 'text', length: data.length });
      ws.send(data, { binary: isBinary });
    });

  switch (url.pathname) {
    case '/big':
      ws.send(BIG);
      break;
    case '/fragments':
      // The check mark is split across two fragments.
      ws.send(Buffer.from('frag'), { binary: false, fin: false });
      ws.send(Buffer.from('mented \xe2\x9c', 'latin1'), { binary: false, fin: false });
      ws.send(Buffer.from('\x93 text', 'latin1'), { binary: false, fin: true });
      ws.send(Buffer.from([0, 1]), { binary: true, fin: false });
      ws.send(Buffer.alloc(0), { binary: true, fin: false });
      ws.send(Buffer.from([2, 3, 0xff]), { binary: true, fin: true });
      break;
    case '/ping':
      ws.once('pong', (data) => {
        log({ event: 'pong', target, data: data.toString('utf8') });
        if (data.toString('utf8') === 'server-ping') ws.send('pong received: server-ping');
      });
      ws.ping('server-ping');
      break;
    case '/close':
      ws.close(Number(q.get('code') || 4001), q.has('reason') ? q.get('reason') : 'server bye');
      break;
    case '/close-empty':
      ws.close();
      break;
    case '/drop':
      ws.once('pong', () => {
        ws.terminate();
        log({ event: 'dropped', target });
      });
      ws.ping('before-drop');
      return;
    case '/proto':
      ws.send(`protocol=${ws.protocol}`);
      break;
    case '/headers':
      ws.send(`origin=${req.headers.origin};x-probe-token=${req.headers['x-probe-token']}`);
      break;
    case '/invalid-utf8':
      ws.send(INVALID_UTF8, { binary: false });
      break;
    default:
      break;
  }
  echo();
}

server.listen(Number(port), host, () => {
  const a = server.address();
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});

function stop() {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
