'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { once } = require('node:events');
const WebSocket = require('..');
const { WebSocketServer } = WebSocket;
const RealWS = require('ws');

function listen(opts = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...opts });
  return once(wss, 'listening').then(() => wss);
}
const url = (wss, p = '/') => `ws://127.0.0.1:${wss.address().port}${p}`;
const closeServer = (wss) => new Promise((r) => wss.close(() => r()));

test('echo: text and binary', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  const ws = new WebSocket(url(wss));
  assert.strictEqual(ws.readyState, WebSocket.CONNECTING);
  await once(ws, 'open');
  assert.strictEqual(ws.readyState, WebSocket.OPEN);
  ws.send('hello');
  let [data, isBinary] = await once(ws, 'message');
  assert.strictEqual(data.toString(), 'hello');
  assert.strictEqual(isBinary, false);
  ws.send(Buffer.from([1, 2, 3]));
  [data, isBinary] = await once(ws, 'message');
  assert.deepStrictEqual([...data], [1, 2, 3]);
  assert.strictEqual(isBinary, true);
  ws.binaryType = 'arraybuffer';
  ws.send(new Uint8Array([9]));
  [data] = await once(ws, 'message');
  assert.ok(data instanceof ArrayBuffer);
  ws.close(1000, 'bye');
  const [code, reason] = await once(ws, 'close');
  assert.strictEqual(code, 1000);
  assert.strictEqual(reason.toString(), 'bye');
  assert.strictEqual(ws.readyState, WebSocket.CLOSED);
  await closeServer(wss);
});

test('onmessage-style properties and addEventListener', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => ws.send('hi'));
  const ws = new WebSocket(url(wss));
  const got = await new Promise((resolve) => {
    ws.onmessage = (ev) => resolve(ev.data);
  });
  assert.strictEqual(got, 'hi');
  const closed = new Promise((resolve) => ws.addEventListener('close', (ev) => resolve(ev), { once: true }));
  ws.close(4000, 'x');
  const ev = await closed;
  assert.strictEqual(ev.code, 4000);
  assert.strictEqual(ev.reason, 'x');
  await closeServer(wss);
});

test('chat broadcast with clients.forEach', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => ws.on('message', (msg) => {
    wss.clients.forEach((c) => { if (c.readyState === WebSocket.OPEN) c.send(msg.toString()); });
  }));
  const a = new WebSocket(url(wss));
  const b = new WebSocket(url(wss));
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  while (wss.clients.size < 2) await new Promise((r) => setImmediate(r));
  const gotB = once(b, 'message');
  const gotA = once(a, 'message');
  a.send('to all');
  assert.strictEqual((await gotA)[0].toString(), 'to all');
  assert.strictEqual((await gotB)[0].toString(), 'to all');
  a.close(); b.close();
  await Promise.all([once(a, 'close'), once(b, 'close')]);
  await closeServer(wss);
});

test('verifyClient with a token, sync and callback forms', async () => {
  for (const verifyClient of [
    ({ req }) => req.query('token') === 'allow',
    (info, cb) => setImmediate(() => cb(info.req.query('token') === 'allow', 403)),
  ]) {
    const wss = await listen({ verifyClient });
    wss.on('connection', (ws, req) => ws.send(`${req.path}:${req.query('token')}`));
    const ok = new WebSocket(url(wss, '/ws?token=allow'));
    const [m] = await once(ok, 'message');
    assert.strictEqual(m.toString(), '/ws:allow');
    ok.close();
    await once(ok, 'close');
    const bad = new WebSocket(url(wss, '/ws?token=no'));
    const closed = new Promise((r) => bad.on('close', (...a) => r(a)));
    const [err] = await once(bad, 'error');
    assert.match(err.message, /Unexpected server response: 40[13]/);
    assert.strictEqual((await closed)[0], 1006);
    await closeServer(wss);
  }
});

test('handleProtocols picks a subprotocol', async () => {
  const wss = await listen({
    handleProtocols: (protocols) => (protocols.has('machbase.rpc') ? 'machbase.rpc' : false),
  });
  wss.on('connection', (ws) => ws.send(ws.protocol));
  const ws = new WebSocket(url(wss), ['chat', 'machbase.rpc']);
  const [m] = await once(ws, 'message');
  assert.strictEqual(m.toString(), 'machbase.rpc');
  assert.strictEqual(ws.protocol, 'machbase.rpc');
  ws.close();
  await once(ws, 'close');
  await closeServer(wss);
});

test('heartbeat: ping/pong, then terminate a dead client', async () => {
  const wss = await listen();
  const [conn] = await Promise.all([
    once(wss, 'connection').then(([ws]) => ws),
    (async () => { const c = new WebSocket(url(wss)); await once(c, 'open'); return c; })(),
  ]).then(([s, c]) => [{ s, c }]);
  const { s, c } = conn;
  s.isAlive = false;
  s.on('pong', () => { s.isAlive = true; });
  const ping = once(c, 'ping');
  const pong = once(s, 'pong');
  s.ping('hb');
  assert.strictEqual((await ping)[0].toString(), 'hb');
  await pong;
  assert.strictEqual(s.isAlive, true);
  s.isAlive = false;
  const cClosed = once(c, 'close');
  wss.clients.forEach((ws) => { if (!ws.isAlive) ws.terminate(); });
  const [code] = await cClosed;
  assert.strictEqual(code, 1006);
  await closeServer(wss);
});

test('interop: ws client against wsffi server, wsffi client against ws server', async () => {
  const wss = await listen();
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`wsffi:${d}`)));
  const rc = new RealWS(url(wss));
  await once(rc, 'open');
  rc.send('x');
  assert.strictEqual((await once(rc, 'message'))[0].toString(), 'wsffi:x');
  rc.close(1000);
  await once(rc, 'close');
  await closeServer(wss);

  const rs = new RealWS.WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(rs, 'listening');
  rs.on('connection', (ws) => ws.on('message', (d) => ws.send(`ws:${d}`)));
  const c = new WebSocket(`ws://127.0.0.1:${rs.address().port}/`);
  await once(c, 'open');
  c.send('y');
  assert.strictEqual((await once(c, 'message'))[0].toString(), 'ws:y');
  c.close(1000, 'done');
  const [code] = await once(c, 'close');
  assert.strictEqual(code, 1000);
  await new Promise((r) => rs.close(r));
});

test('bad input: send after close, oversize message, invalid close codes', async () => {
  const wss = await listen({ maxPayload: 1024 });
  const serverSide = once(wss, 'connection');
  const ws = new WebSocket(url(wss));
  assert.throws(() => ws.send('early'), /readyState 0 \(CONNECTING\)/);
  await once(ws, 'open');
  const [s] = await serverSide;
  s.on('error', () => {});
  assert.throws(() => ws.close(1005), TypeError);
  assert.throws(() => ws.close(999), TypeError);
  assert.throws(() => ws.close(1000, 'x'.repeat(124)), RangeError);
  assert.throws(() => ws.ping(Buffer.alloc(126)), RangeError);
  ws.send(Buffer.alloc(2048));
  const [code] = await once(ws, 'close');
  assert.strictEqual(code, 1009);
  const err = await new Promise((resolve) => ws.send('late', resolve));
  assert.match(err.message, /readyState 3 \(CLOSED\)/);
  assert.throws(() => new WebSocket('ftp://x'), SyntaxError);
  assert.throws(() => new WebSocket('ws://x/#frag'), SyntaxError);
  assert.throws(() => new WebSocket('ws://x/', ['a', 'a']), SyntaxError);
  await closeServer(wss);
});

test('noServer with handleUpgrade on an existing http.Server', async () => {
  const http = require('http');
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws, r) => {
      ws.send(`${r.method} ${r.url} ${r.headers['x-test']}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}/up?q=1`, { headers: { 'X-Test': 'yes' } });
  const [m] = await once(ws, 'message');
  assert.strictEqual(m.toString(), 'GET /up?q=1 yes');
  ws.close();
  await once(ws, 'close');
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});
