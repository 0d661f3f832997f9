'use strict';
// Node `ws` client scenarios against an echo server.
//
//   node node_client.js URL SCENARIO
//
// Prints progress lines as JSON objects ({"event": ...}) and ends with one JSON object
// {"result": {...}} describing what was observed; the Python tests assert on it. Exit code
// 0 when the scenario ran to its end, 1 on an unexpected error or timeout.

const crypto = require('crypto');
const WebSocket = require('ws');

const [url, scenario] = process.argv.slice(2);
const TIMEOUT_MS = Number(process.env.NODE_CLIENT_TIMEOUT_MS || 15000);

// 6553 x (1+2+3+4 bytes) + 6 bytes = 65536 bytes of UTF-8; the same string as the Python side.
const TEXT_64K = 'a\u00e9\u2713\u{1F680}'.repeat(6553) + 'abcdef';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function open(options = {}) {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  const messages = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    const w = waiters.shift();
    if (w) w.resolve(m);
    else messages.push(m);
  });
  ws.on('close', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`closed with ${code} while waiting for a message`));
  });
  ws.nextMessage = () =>
    new Promise((resolve, reject) => {
      const m = messages.shift();
      if (m) return resolve(m);
      if (ws.readyState === WebSocket.CLOSED) return reject(new Error('closed while waiting for a message'));
      waiters.push({ resolve, reject });
    });
  ws.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  ws.on('error', (err) => emit({ event: 'error', message: String(err && err.message) }));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function echo(ws, data, options) {
  ws.send(data, options);
  const m = await ws.nextMessage();
  return m;
}

function describe(m) {
  return { isBinary: m.isBinary, length: m.data.length, sha256: sha256(m.data), text: m.isBinary ? null : m.data.toString('utf8') };
}

async function closeAndWait(ws, code, reason) {
  const started = Date.now();
  ws.close(code, reason);
  const closed = await ws.closed;
  return { ...closed, elapsedMs: Date.now() - started };
}

const scenarios = {
  async text() {
    const ws = await open();
    const m = await echo(ws, 'hello from node \u2713');
    await closeAndWait(ws, 1000);
    return describe(m);
  },

  async binary() {
    const ws = await open();
    const data = Buffer.alloc(1024, 0).map((_, i) => i % 256);
    const m = await echo(ws, data);
    await closeAndWait(ws, 1000);
    return { ...describe(m), sentSha256: sha256(data) };
  },

  async 'empty-text'() {
    const ws = await open();
    const m = await echo(ws, '');
    await closeAndWait(ws, 1000);
    return describe(m);
  },

  async 'empty-binary'() {
    const ws = await open();
    const m = await echo(ws, Buffer.alloc(0));
    await closeAndWait(ws, 1000);
    return describe(m);
  },

  async big() {
    const ws = await open();
    const data = crypto.randomBytes(1 << 20);
    const m = await echo(ws, data);
    await closeAndWait(ws, 1000);
    return { ...describe(m), text: null, sentSha256: sha256(data) };
  },

  async 'text-64k'() {
    const ws = await open();
    const m = await echo(ws, TEXT_64K);
    await closeAndWait(ws, 1000);
    return { ...describe(m), text: null, equal: !m.isBinary && m.data.toString('utf8') === TEXT_64K };
  },

  async fragmented() {
    const ws = await open();
    // Text in three frames, the check mark split across the last two.
    ws.send('frag', { fin: false });
    ws.send(Buffer.from('mented \xe2\x9c', 'latin1'), { binary: false, fin: false });
    ws.send(Buffer.from('\x93', 'latin1'), { binary: false, fin: true });
    const t = await ws.nextMessage();
    // Binary in four frames, one of them empty; a ping between fragments.
    ws.send(Buffer.from([0, 1]), { binary: true, fin: false });
    ws.send(Buffer.alloc(0), { binary: true, fin: false });
    ws.ping('between fragments');
    ws.send(Buffer.alloc(70000, 2), { binary: true, fin: false });
    ws.send(Buffer.from([0xff]), { binary: true, fin: true });
    const b = await ws.nextMessage();
    await closeAndWait(ws, 1000);
    return { text: describe(t), binary: describe(b) };
  },

  async ping() {
    const ws = await open();
    const pongs = [];
    const payloads = [Buffer.from('node-ping'), Buffer.alloc(0), Buffer.alloc(125, 7)];
    for (const p of payloads) {
      const got = new Promise((resolve) => ws.once('pong', resolve));
      ws.ping(p);
      pongs.push((await got).toString('hex'));
    }
    const after = await echo(ws, 'after pings');
    await closeAndWait(ws, 1000);
    return { sent: payloads.map((p) => p.toString('hex')), pongs, after: after.data.toString('utf8') };
  },

  async pipelined() {
    const ws = await open();
    const sent = [];
    for (let i = 0; i < 1000; i++) {
      const s = `msg ${String(i).padStart(4, '0')}`;
      sent.push(s);
      ws.send(i % 2 ? Buffer.from(s) : s);
    }
    const received = [];
    for (let i = 0; i < 1000; i++) {
      const m = await ws.nextMessage();
      received.push({ text: m.data.toString('utf8'), isBinary: m.isBinary });
    }
    await closeAndWait(ws, 1000);
    return { sent, received };
  },

  async 'close-1000'() {
    const ws = await open();
    const m = await echo(ws, 'before close');
    const closed = await closeAndWait(ws, 1000, 'bye');
    return { echo: m.data.toString('utf8'), ...closed };
  },

  async 'close-4000'() {
    const ws = await open();
    return closeAndWait(ws, 4000, 'application code');
  },

  async abort() {
    const bystander = await open();
    const before = (await echo(bystander, 'before')).data.toString('utf8');
    const victim = await open();
    const victimEcho = (await echo(victim, 'then vanish')).data.toString('utf8');
    victim.terminate();
    const victimClosed = await victim.closed;
    // One more client vanishes mid-message: a frame header claiming 1 MiB, then a reset.
    const midway = await open();
    midway._socket.write(Buffer.concat([Buffer.from([0x82, 0xff]), Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]), Buffer.alloc(4), Buffer.alloc(1000, 0x78)]));
    midway._socket.resetAndDestroy();
    await midway.closed;
    await new Promise((r) => setTimeout(r, 200));
    const still = (await echo(bystander, 'still here')).data.toString('utf8');
    const fresh = await open();
    const freshEcho = (await echo(fresh, 'new client')).data.toString('utf8');
    await closeAndWait(fresh, 1000);
    await closeAndWait(bystander, 1000);
    return { before, victimEcho, victimCode: victimClosed.code, still, freshEcho };
  },

  async sigterm() {
    const ws = await open();
    const m = await echo(ws, 'ready');
    emit({ event: 'open', echo: m.data.toString('utf8') });
    const closed = await ws.closed;
    return closed;
  },

  async 'deflate-offer'() {
    let responseExtensions = null;
    const ws = new WebSocket(url); // default options: permessage-deflate is offered
    ws.on('upgrade', (res) => {
      responseExtensions = res.headers['sec-websocket-extensions'] || null;
    });
    ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    const offered = ws._req.getHeader('sec-websocket-extensions') || null;
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const text = 'compressible '.repeat(1000);
    const reply = await new Promise((resolve) => {
      ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
      ws.send(text);
    });
    ws.close(1000);
    const closed = await ws.closed;
    return {
      offered,
      responseExtensions,
      extensions: ws.extensions,
      echoEqual: !reply.isBinary && reply.data.toString('utf8') === text,
      closeCode: closed.code,
    };
  },
};

async function main() {
  const run = scenarios[scenario];
  if (!url || !run) {
    process.stderr.write(`usage: node node_client.js URL SCENARIO (${Object.keys(scenarios).join(', ')})\n`);
    process.exit(2);
  }
  const timer = setTimeout(() => {
    emit({ event: 'timeout', ms: TIMEOUT_MS });
    process.exit(1);
  }, TIMEOUT_MS);
  try {
    const result = await run();
    emit({ result });
    clearTimeout(timer);
    process.exit(0);
  } catch (err) {
    emit({ event: 'failed', message: String((err && err.stack) || err) });
    process.exit(1);
  }
}

main();
