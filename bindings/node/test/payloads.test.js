'use strict';
// Payload copies and send paths: received Buffers share pools, small sends go through a
// scratch area, large ones and big strings take the Buffer path; none may show another
// message's bytes.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const { once } = require('node:events');
const WebSocket = require('..');
const { WebSocketServer } = WebSocket;
const RealWS = require('ws');

function listen(opts = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...opts });
  return once(wss, 'listening').then(() => wss);
}
const url = (wss) => `ws://127.0.0.1:${wss.address().port}/`;
const closeServer = (wss) => new Promise((r) => wss.close(() => r()));

// Sizes around the pool's and the scratch area's limits (4 and 8 KiB, 64 KiB), and many small ones.
function payloads() {
  const sizes = [];
  for (let i = 0; i < 3000; i++) sizes.push(1 + (i * 37) % 300);
  sizes.push(4095, 4096, 4097, 4090, 8191, 8192, 8193, 65535, 65536, 65537, 300000);
  return sizes.map((n) => crypto.randomBytes(n));
}

test('received messages keep their own bytes after later ones arrive (wsffi client, ws server)', { timeout: 30000 }, async (t) => {
  const sent = payloads();
  const wss = new RealWS.WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (peer) => { for (const p of sent) peer.send(p); });
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  t.after(() => { ws.terminate(); wss.close(); });
  const got = [];
  await new Promise((resolve) => ws.on('message', (d, isBinary) => {
    assert.strictEqual(isBinary, true);
    got.push(d);
    if (got.length === sent.length) resolve();
  }));
  // Checked only now: every earlier Buffer must still hold its message.
  assert.strictEqual(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.ok(got[i].equals(sent[i]), `message ${i} (${sent[i].length} B)`);
});

test('echo of every size and kind: Buffers, typed arrays, short and long strings', async (t) => {
  const wss = await listen();
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  const peer = new RealWS(url(wss));
  t.after(() => { peer.terminate(); return closeServer(wss); });
  await once(peer, 'open');
  const cases = payloads().filter((_, i) => i % 50 === 0 || i >= 3000);
  cases.push(Buffer.from(new Uint16Array([1, 0x203, 0xffff]).buffer));
  const texts = ['', 'é', 'x'.repeat(21845), 'ü'.repeat(30000), '\u{1F600}'.repeat(20000), 'y'.repeat(200000)];
  const replies = [];
  peer.on('message', (d, isBinary) => replies.push([d, isBinary]));
  for (const c of cases) peer.send(c);
  for (const t of texts) peer.send(t);
  while (replies.length < cases.length + texts.length) await new Promise((r) => setTimeout(r, 5));
  cases.forEach((c, i) => {
    assert.strictEqual(replies[i][1], true);
    assert.ok(Buffer.from(replies[i][0]).equals(c), `binary ${i} (${c.length} B)`);
  });
  texts.forEach((text, i) => {
    const [d, isBinary] = replies[cases.length + i];
    assert.strictEqual(isBinary, false);
    assert.strictEqual(d.toString(), text, `text ${i} (${text.length} chars)`);
  });
});

test('sends from the wsffi client: typed array views send their bytes, strings of every length arrive whole', async (t) => {
  const wss = new RealWS.WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const got = [];
  wss.on('connection', (peer) => peer.on('message', (d, isBinary) => got.push([d, isBinary])));
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  t.after(() => { ws.terminate(); wss.close(); });
  const u16 = new Uint16Array([1, 2, 0xfffe]);
  const view = new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4);
  const big = 'z'.repeat(100000);
  await once(ws, 'open');
  ws.send(u16);
  ws.send(view);
  ws.send(big);
  ws.send(42);
  ws.send(new ArrayBuffer(3));
  while (got.length < 5) await new Promise((r) => setTimeout(r, 5));
  assert.deepStrictEqual([...got[0][0]], [...Buffer.from(u16.buffer)]);
  assert.deepStrictEqual([...got[1][0]], [8, 7, 6]);
  assert.strictEqual(got[2][0].toString(), big);
  assert.deepStrictEqual([got[3][0].toString(), got[3][1]], ['42', false]);
  assert.deepStrictEqual([...got[4][0]], [0, 0, 0]);
});

test('a closed connection has left wss.clients before its own close listeners run', async () => {
  const wss = await listen();
  const seen = new Promise((resolve) => wss.on('connection', (ws) => {
    assert.ok(wss.clients.has(ws));
    ws.on('close', () => resolve(wss.clients.has(ws)));
  }));
  const peer = new RealWS(url(wss));
  await once(peer, 'open');
  peer.close();
  assert.strictEqual(await seen, false);
  await closeServer(wss);
});

test('protocol and extensions, read once at the open, stay readable after the close', async (t) => {
  const wss = await listen({ perMessageDeflate: {}, handleProtocols: (set) => (set.has('b') ? 'b' : false) });
  t.after(() => closeServer(wss));
  const serverSide = new Promise((resolve) => wss.on('connection', (ws) => {
    ws.on('close', () => resolve([ws.protocol, ws.extensions]));
  }));
  const ws = new WebSocket(url(wss), ['a', 'b']);
  await once(ws, 'open');
  assert.strictEqual(ws.protocol, 'b');
  assert.match(ws.extensions, /permessage-deflate/);
  ws.close();
  await once(ws, 'close');
  assert.strictEqual(ws.protocol, 'b');
  assert.match(ws.extensions, /permessage-deflate/);
  const [p, e] = await serverSide;
  assert.strictEqual(p, 'b');
  assert.match(e, /permessage-deflate/);
});

test('sends refused for backpressure wait for drain and go out whole, in order, each callback once', { timeout: 30000 }, async (t) => {
  const wss = await listen();
  let peer = null;
  // One hook, in this order: the server's close waits for its connections.
  t.after(() => { if (peer) peer.terminate(); return closeServer(wss); });
  const chunk = crypto.randomBytes(256 * 1024);
  const count = 128; // 32 MiB, twice the default high-water mark (16 MiB)
  const done = new Promise((resolve, reject) => wss.on('connection', (ws) => {
    let calls = 0;
    let sawQueue = false;
    for (let i = 0; i < count; i++) {
      const msg = Buffer.from(chunk);
      msg.writeUInt32BE(i, 0);
      ws.send(msg, (err) => {
        if (err) reject(err);
        if (++calls === count) resolve(sawQueue);
      });
      if (ws._queue !== null) sawQueue = true; // the library refused one: the queue path ran
    }
  }));
  peer = new RealWS(url(wss));
  const got = [];
  peer.on('message', (d) => got.push(d));
  assert.strictEqual(await done, true);
  while (got.length < count) await new Promise((r) => setTimeout(r, 5));
  got.forEach((d, i) => {
    assert.strictEqual(d.length, chunk.length);
    assert.strictEqual(d.readUInt32BE(0), i);
    assert.ok(d.subarray(4).equals(chunk.subarray(4)), `message ${i}`);
  });
});
