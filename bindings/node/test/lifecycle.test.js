'use strict';
// Process lifetime: a program exits when its connections close, process.exit never hangs,
// and an exception in a handler reaches 'uncaughtException' without stopping the library.
const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const lib = JSON.stringify(path.join(__dirname, '..'));
function run(script) {
  const r = spawnSync(process.execPath, ['-e', `const WebSocket = require(${lib});\n${script}`], {
    encoding: 'utf8', timeout: 20000,
  });
  assert.notStrictEqual(r.signal, 'SIGTERM', `the child did not exit by itself: ${r.stdout} ${r.stderr}`);
  return r;
}

test('a program exits once its server and connections are closed', () => {
  const r = run(`
    const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
    wss.on('listening', () => {
      const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
      ws.on('open', () => ws.send('x'));
      ws.on('message', (m) => { console.log('got ' + m); ws.close(); });
      ws.on('close', (code) => { console.log('closed ' + code); wss.close(); });
    });
  `);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.deepStrictEqual(r.stdout.trim().split('\n'), ['got x', 'closed 1005']);
});

test('process.exit with open connections returns at once', () => {
  const r = run(`
    const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('listening', () => {
      const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
      ws.on('open', () => { console.log('open'); process.exit(3); });
    });
  `);
  assert.strictEqual(r.status, 3, r.stderr);
  assert.strictEqual(r.stdout.trim(), 'open');
});

test('an open connection keeps the program alive until it closes', () => {
  const r = run(`
    const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('connection', (ws) => setTimeout(() => ws.close(4001, 'later'), 300));
    wss.on('listening', () => {
      const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
      ws.on('close', (code, reason) => { console.log(code + ' ' + reason); wss.close(); });
    });
  `);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.strictEqual(r.stdout.trim(), '4001 later');
});

test('a throwing handler reaches uncaughtException and the connection goes on', () => {
  const r = run(`
    process.on('uncaughtException', (e) => console.log('caught ' + e.message));
    const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('connection', (ws) => ws.on('message', (m) => {
      if (String(m) === 'boom') throw new Error('boom in handler');
      ws.send('echo ' + m);
    }));
    wss.on('listening', () => {
      const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
      ws.on('open', () => { ws.send('boom'); ws.send('after'); });
      ws.on('message', (m) => { console.log(String(m)); ws.close(); });
      ws.on('close', () => wss.close());
    });
  `);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.deepStrictEqual(r.stdout.trim().split('\n').sort(), ['caught boom in handler', 'echo after']);
});
