'use strict';
// The options and events of ws that the binding carries over.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { once } = require('node:events');
const WebSocket = require('..');
const { WebSocketServer, createWebSocketStream } = WebSocket;
const RealWS = require('ws');

const listen = (opts = {}) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...opts });
  return once(wss, 'listening').then(() => wss);
};
const url = (wss, p = '/') => `ws://127.0.0.1:${wss.address().port}${p}`;
const closeServer = (wss) => new Promise((r) => wss.close(() => r()));

test('perMessageDeflate is negotiated both ways and round-trips', async () => {
  const wss = await listen({ perMessageDeflate: { threshold: 0 } });
  wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
  const ws = new WebSocket(url(wss), { perMessageDeflate: {} });
  await once(ws, 'open');
  assert.match(ws.extensions, /permessage-deflate/);
  const text = 'abc'.repeat(5000);
  ws.send(text);
  assert.strictEqual((await once(ws, 'message'))[0].toString(), text);
  ws.close();
  await once(ws, 'close');
  // Against the real ws client with compression on.
  const rc = new RealWS(url(wss), { perMessageDeflate: true });
  await once(rc, 'open');
  assert.match(rc.extensions, /permessage-deflate/);
  rc.send(text);
  assert.strictEqual((await once(rc, 'message'))[0].toString(), text);
  rc.close();
  await once(rc, 'close');
  await closeServer(wss);
});

test('server: an existing http.Server, and the headers event adds a response header', async () => {
  const server = http.createServer((req, res) => res.end('plain http'));
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('headers', (headers) => headers.push('X-Served-By: wsffi'));
  wss.on('connection', (ws, req) => ws.send(req.headers.host ? 'ok' : 'no host'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = server.address().port;
  const rc = new RealWS(`ws://127.0.0.1:${port}/ws`);
  const upgraded = once(rc, 'upgrade');
  const message = once(rc, 'message'); // may arrive in the same read as the 101
  const [res] = await upgraded;
  assert.strictEqual(res.headers['x-served-by'], 'wsffi');
  assert.strictEqual((await message)[0].toString(), 'ok');
  rc.close();
  await once(rc, 'close');
  const body = await new Promise((r) => http.get(`http://127.0.0.1:${port}/`, (res) => {
    let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => r(b));
  }));
  assert.strictEqual(body, 'plain http');
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});

test('upgrade shows the server\'s 101 with its headers', async () => {
  const wss = new RealWS.WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('headers', (headers) => headers.push('X-Served-By: real ws'));
  await once(wss, 'listening');
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  const opened = once(ws, 'open'); // emitted right after upgrade, in the same turn
  const [res] = await once(ws, 'upgrade');
  assert.strictEqual(res.statusCode, 101);
  assert.strictEqual(res.headers['x-served-by'], 'real ws');
  assert.strictEqual(res.headers.upgrade.toLowerCase(), 'websocket');
  assert.ok(res.headers['sec-websocket-accept']);
  assert.ok(res.rawHeaders.includes('X-Served-By'));
  await opened;
  ws.close();
  await once(ws, 'close');
  await new Promise((r) => wss.close(r));
});

test('unexpected-response carries the refusing answer', async () => {
  const server = http.createServer();
  server.on('upgrade', (req, socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nX-Why: token\r\nContent-Length: 4\r\n\r\nnope');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}/`);
  const closed = new Promise((r) => ws.on('close', (...a) => r(a)));
  const [, res] = await once(ws, 'unexpected-response');
  assert.strictEqual(res.statusCode, 403);
  assert.strictEqual(res.headers['x-why'], 'token');
  let body = '';
  for await (const chunk of res) body += chunk;
  assert.strictEqual(body, 'nope');
  assert.strictEqual((await closed)[0], 1006);
  // Without a listener for it, the refusal is an error event, as in ws.
  const ws2 = new WebSocket(`ws://127.0.0.1:${server.address().port}/`);
  const [err] = await once(ws2, 'error');
  assert.match(err.message, /Unexpected server response: 403/);
  await new Promise((r) => server.close(r));
});

test('client maxPayload closes with 1009 on an oversize message', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => { ws.on('error', () => {}); ws.send(Buffer.alloc(4096)); });
  const ws = new WebSocket(url(wss), { maxPayload: 1000 });
  const errors = [];
  ws.on('error', (e) => errors.push(e));
  const [code] = await new Promise((r) => ws.on('close', (...a) => r(a)));
  assert.strictEqual(code, 1009);
  const [err] = errors;
  assert.strictEqual(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  await closeServer(wss);
});

test('send callbacks, fragments with fin:false, and bufferedAmount', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
  const ws = new WebSocket(url(wss));
  await once(ws, 'open');
  await new Promise((resolve, reject) => ws.send('cb', (err) => (err ? reject(err) : resolve())));
  assert.strictEqual((await once(ws, 'message'))[0].toString(), 'cb');
  ws.send('frag-', { fin: false });
  ws.send('ment', { fin: true });
  assert.strictEqual((await once(ws, 'message'))[0].toString(), 'frag-ment');
  assert.strictEqual(typeof ws.bufferedAmount, 'number');
  ws.close();
  await once(ws, 'close');
  assert.strictEqual(ws.bufferedAmount, 0);
  await closeServer(wss);
});

test('createWebSocketStream: a Duplex over a connection', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => {
    const duplex = createWebSocketStream(ws);
    duplex.pipe(duplex); // echo through the stream
  });
  const ws = new WebSocket(url(wss));
  const duplex = createWebSocketStream(ws);
  duplex.write('through a stream');
  const [chunk] = await once(duplex, 'data');
  assert.strictEqual(chunk.toString(), 'through a stream');
  duplex.end();
  await once(ws, 'close');
  await closeServer(wss);
});

test('server close(cb): clients get 1001-free close, a second close reports not running', async () => {
  const wss = await listen({ clientTracking: true });
  const ws = new WebSocket(url(wss));
  await once(ws, 'open');
  while (wss.clients.size < 1) await new Promise((r) => setImmediate(r));
  wss.clients.forEach((c) => c.close(1001, 'going'));
  const [code] = await once(ws, 'close');
  assert.strictEqual(code, 1001);
  await closeServer(wss);
  const err = await new Promise((r) => wss.close(r));
  assert.match(err.message, /not running/);
  assert.throws(() => new WebSocketServer({}), TypeError);
});

test('wsClientError for a malformed upgrade, when listened for', async () => {
  const wss = await listen();
  const got = once(wss, 'wsClientError');
  const net = require('node:net');
  const sock = net.connect(wss.address().port, '127.0.0.1');
  sock.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const [err, socket] = await got;
  assert.match(err.message, /Sec-WebSocket-Key/);
  socket.destroy();
  sock.destroy();
  await closeServer(wss);
});

test('an https.Server as server: the upgrade is refused with 500, not dropped', async (t) => {
  const os = require('node:os');
  const fs = require('node:fs');
  const path = require('node:path');
  const { execFileSync } = require('node:child_process');
  const https = require('node:https');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsffi-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) });
  const wss = new WebSocketServer({ server });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const rc = new RealWS(`wss://127.0.0.1:${server.address().port}/`, { rejectUnauthorized: false });
  const [, res] = await once(rc, 'unexpected-response');
  assert.strictEqual(res.statusCode, 500);
  rc.on('error', () => {});
  rc.terminate();
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});
