'use strict';
// The examples run as programs; a client of the real `ws` package talks to each.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const RealWS = require('ws');

async function start(name, ...args) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', name), '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  const addr = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
  return { child, addr };
}

async function stop(child) {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.strictEqual(code, 0, 'an example exits cleanly on SIGTERM');
}

function messages(ws, n) {
  const got = [];
  return new Promise((resolve) => ws.on('message', (d) => { got.push(d.toString()); if (got.length === n) resolve(got); }));
}

test('echo_server.js echoes text and binary', async () => {
  const { child, addr } = await start('echo_server.js');
  const ws = new RealWS(`ws://${addr}/`);
  await once(ws, 'open');
  ws.send('hello');
  assert.strictEqual((await once(ws, 'message'))[0].toString(), 'hello');
  ws.send(Buffer.from([0, 255]));
  const [data, isBinary] = await once(ws, 'message');
  assert.deepStrictEqual([...data], [0, 255]);
  assert.strictEqual(isBinary, true);
  ws.close(1000);
  assert.strictEqual((await once(ws, 'close'))[0], 1000);
  await stop(child);
});

test('chat_server.js broadcasts with join and leave notices', async () => {
  const { child, addr } = await start('chat_server.js');
  const alice = new RealWS(`ws://${addr}/chat`);
  await once(alice, 'open');
  const aliceSees = messages(alice, 4);
  alice.send('alice');
  const bob = new RealWS(`ws://${addr}/chat`);
  await once(bob, 'open');
  const bobSees = messages(bob, 2);
  bob.send('bob');
  bob.send('hi all');
  assert.deepStrictEqual(await bobSees, ['* bob joined', 'bob: hi all']);
  bob.close();
  await once(bob, 'close');
  assert.deepStrictEqual(await aliceSees, ['* alice joined', '* bob joined', 'bob: hi all', '* bob left']);
  alice.close();
  await once(alice, 'close');
  const wrongPath = new RealWS(`ws://${addr}/other`);
  const [err] = await once(wrongPath, 'error');
  assert.match(err.message, /Unexpected server response: 400/);
  await stop(child);
});

test('verify_token.js upgrades only with the token', async () => {
  const { child, addr } = await start('verify_token.js', 'tok');
  const ok = new RealWS(`ws://${addr}/room?token=tok`);
  assert.strictEqual((await once(ok, 'message'))[0].toString(), 'welcome 127.0.0.1 to /room');
  ok.close();
  await once(ok, 'close');
  const bad = new RealWS(`ws://${addr}/room?token=nope`);
  const [, res] = await once(bad, 'unexpected-response');
  assert.strictEqual(res.statusCode, 401);
  bad.on('error', () => {});
  bad.terminate();
  await stop(child);
});

test('protocols.js picks the preferred subprotocol or refuses', async () => {
  const { child, addr } = await start('protocols.js');
  const v2 = new RealWS(`ws://${addr}/`, ['chat.v1', 'chat.v2']);
  assert.strictEqual((await once(v2, 'message'))[0].toString(), 'you speak chat.v2');
  assert.strictEqual(v2.protocol, 'chat.v2');
  v2.close();
  const v1 = new RealWS(`ws://${addr}/`, ['chat.v1']);
  assert.strictEqual((await once(v1, 'message'))[0].toString(), 'you speak chat.v1');
  v1.close();
  const none = new RealWS(`ws://${addr}/`, ['other']);
  const [err] = await once(none, 'error');
  assert.match(err.message, /Unexpected server response|Server sent no subprotocol|subprotocol/);
  await stop(child);
});

test('client.js talks to the echo example and exits by itself', async () => {
  const { child, addr } = await start('echo_server.js');
  const client = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'client.js'), `ws://${addr}/`, 'one', 'two'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  client.stdout.on('data', (d) => { out += d; });
  const [code] = await once(client, 'exit');
  assert.strictEqual(code, 0);
  assert.deepStrictEqual(out.trim().split('\n'), ['one', 'two', 'closed 1000']);
  await stop(child);
});
