'use strict';
// Topics (an extension beyond ws, shaped like uWebSockets' subscribe/publish): rooms,
// publishing except the sender, the end of subscriptions at close, bad arguments. The
// clients are the real `ws` package.
const test = require('node:test');
const assert = require('node:assert');
const { once } = require('node:events');
const { WebSocketServer } = require('..');
const RealWS = require('ws');

function listen(opts = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...opts });
  return once(wss, 'listening').then(() => wss);
}
const closeServer = (wss) => new Promise((r) => wss.close(() => r()));

async function waitFor(pred) {
  for (let i = 0; i < 1000 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(pred(), 'timed out');
}

test('rooms: messages go to the sender\'s room only, except the sender', async () => {
  const wss = await listen();
  wss.on('connection', (ws, req) => {
    const room = new URL(req.url, 'http://x').searchParams.get('room');
    assert.strictEqual(ws.subscribe(room), true);
    assert.strictEqual(ws.subscribe(room), false);
    assert.strictEqual(ws.isSubscribed(room), true);
    ws.on('message', (data, isBinary) => wss.publish(room, data, { binary: isBinary, except: ws }));
  });
  const port = wss.address().port;
  const join = async (room) => {
    const ws = new RealWS(`ws://127.0.0.1:${port}/?room=${room}`);
    await once(ws, 'open');
    return ws;
  };
  const a = await join('red');
  const b = await join('red');
  const c = await join('blue');
  await waitFor(() => wss.subscriberCount('red') === 2 && wss.subscriberCount('blue') === 1);
  assert.strictEqual(wss.subscriberCount('nowhere'), 0);
  const got = { a: [], b: [], c: [] };
  a.on('message', (d) => got.a.push(d.toString()));
  b.on('message', (d) => got.b.push(d.toString()));
  c.on('message', (d) => got.c.push(d.toString()));
  a.send('hello red');
  c.send('hello blue');
  await waitFor(() => got.b.length === 1);
  // To the whole room from outside a socket's handler.
  wss.publish('red', 'announcement');
  wss.publish('blue', Buffer.from('marker'));
  await waitFor(() => got.a.length === 1 && got.b.length === 2 && got.c.length === 1);
  assert.deepStrictEqual(got, { a: ['announcement'], b: ['hello red', 'announcement'], c: ['marker'] });
  a.close();
  await once(a, 'close');
  await waitFor(() => wss.subscriberCount('red') === 1);
  b.close();
  c.close();
  await Promise.all([once(b, 'close'), once(c, 'close')]);
  await closeServer(wss);
});

test('topics: bad names and closed sockets', async () => {
  const wss = await listen();
  const seen = [];
  wss.on('connection', (ws) => {
    assert.throws(() => ws.subscribe(''), (e) => e.code === 'ERR_INVALID_PARAMETER');
    assert.throws(() => ws.subscribe('x'.repeat(1025)), (e) => e.code === 'ERR_TOO_BIG');
    assert.throws(() => ws.subscribe(42), TypeError);
    assert.strictEqual(ws.unsubscribe('never'), false);
    ws.subscribe('t');
    ws.on('close', () => seen.push([ws.isSubscribed('t'), ws.subscribe('t')]));
  });
  const client = new RealWS(`ws://127.0.0.1:${wss.address().port}/`);
  await once(client, 'open');
  await waitFor(() => wss.subscriberCount('t') === 1);
  assert.throws(() => wss.publish('', 'x'), (e) => e.code === 'ERR_INVALID_PARAMETER');
  assert.throws(() => wss.publish(7, 'x'), TypeError);
  client.close();
  await once(client, 'close');
  await waitFor(() => seen.length === 1);
  assert.deepStrictEqual(seen[0], [false, false]);
  assert.strictEqual(wss.subscriberCount('t'), 0);
  await closeServer(wss);
  assert.throws(() => wss.publish('t', 'x'), (e) => e.code === 'ERR_CLOSED');
});
