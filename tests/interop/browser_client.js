'use strict';
// A real browser's WebSocket against an echo server: headless Chromium driven by
// playwright-core.
//
//   node browser_client.js WS_URL
//
// The page is served by a tiny HTTP server on 127.0.0.1 (so it is a secure context with a
// real Origin); the page opens `new WebSocket(WS_URL)`, echoes a set of text and binary
// messages, sends a burst of small messages back-to-back, then closes with 1000. Prints one
// JSON line {"result": {...}} (or {"error": "..."}) and exits 0 when the run reached its end,
// 1 on an error, 2 when the whole run exceeded its time limit.
//
// Environment: CHROMIUM (default /usr/bin/chromium), BROWSER_CLIENT_TIMEOUT_MS (default 30000).

const http = require('http');
const fs = require('fs');

const [wsUrl] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.BROWSER_CLIENT_TIMEOUT_MS || 30000);
const STEP_TIMEOUT_MS = 10000;
const BURST = 200;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Runs inside the page. Returns a plain object describing everything observed.
async function pageScenario({ url, stepTimeoutMs, burst }) {
  const log = [];
  const withTimeout = (promise, what) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), stepTimeoutMs);
      promise.then(
        (v) => { clearTimeout(t); resolve(v); },
        (e) => { clearTimeout(t); reject(e); },
      );
    });

  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  const sha256 = async (data) => {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
    return hex(await crypto.subtle.digest('SHA-256', bytes));
  };
  const sameBytes = (a, b) => {
    const x = new Uint8Array(a);
    const y = new Uint8Array(b);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  };

  // Deterministic pseudo-random generator (xorshift32) for the "random-ish" text.
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed;
  };
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_{}[]"';
  const randomText = (n) => {
    const parts = new Array(n);
    for (let i = 0; i < n; i++) parts[i] = alphabet[rand() % alphabet.length];
    return parts.join('');
  };
  const patterned = (n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
    return b.buffer;
  };
  const randomBytes = (n) => {
    const b = new Uint8Array(n);
    for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, Math.min(n, off + 65536)));
    return b.buffer;
  };

  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  const waiters = [];
  let closeEvent = null;
  let errors = 0;
  ws.onmessage = (ev) => {
    const w = waiters.shift();
    if (w) w.resolve(ev.data);
    else queue.push(ev.data);
  };
  ws.onerror = () => { errors += 1; };
  const closed = new Promise((resolve) => {
    ws.onclose = (ev) => {
      closeEvent = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
      for (const w of waiters.splice(0)) w.reject(new Error(`closed (${ev.code}) while waiting for a message`));
      resolve(closeEvent);
    };
  });
  const next = (what) =>
    withTimeout(
      new Promise((resolve, reject) => {
        if (queue.length) return resolve(queue.shift());
        if (closeEvent) return reject(new Error(`closed (${closeEvent.code}) while waiting for a message`));
        waiters.push({ resolve, reject });
      }),
      what,
    );

  await withTimeout(
    new Promise((resolve, reject) => {
      ws.onopen = resolve;
      closed.then((c) => reject(new Error(`closed (${c.code}) before open`)));
    }),
    'open',
  );
  const result = { extensions: ws.extensions, protocol: ws.protocol, echoes: [] };

  const messages = [
    ['json', JSON.stringify({ type: 'tick', symbol: 'WSFI', price: 123.45, tags: ['a', 'b'], ok: true, note: 'caf\u00e9' })],
    // 6553 x (1+2+3+4 bytes) + 6 bytes = 65536 bytes of UTF-8; the same string as the Python side.
    ['text-64k', 'a\u00e9\u2713\u{1F680}'.repeat(6553) + 'abcdef'],
    ['text-1mib-random', randomText(1 << 20)],
    ['binary-small', new Uint8Array([0, 1, 2, 3, 0xfe, 0xff, 0x80, 0x7f]).buffer],
    ['binary-100k-patterned', patterned(100 * 1024)],
    ['binary-1mib-random', randomBytes(1 << 20)],
    ['text-empty', ''],
    ['binary-empty', new ArrayBuffer(0)],
  ];
  for (const [name, data] of messages) {
    const sentType = typeof data === 'string' ? 'text' : 'binary';
    ws.send(data);
    const got = await next(`the echo of ${name}`);
    const gotType = typeof got === 'string' ? 'text' : got instanceof ArrayBuffer ? 'binary' : typeof got;
    const equal =
      sentType === gotType && (sentType === 'text' ? got === data : sameBytes(got, data));
    const length = (d) => (typeof d === 'string' ? new TextEncoder().encode(d).length : d.byteLength);
    result.echoes.push({
      name,
      sentType,
      gotType,
      sentLength: length(data),
      gotLength: gotType === 'text' || gotType === 'binary' ? length(got) : null,
      sentSha256: await sha256(data),
      gotSha256: gotType === 'text' || gotType === 'binary' ? await sha256(got) : null,
      equal,
    });
  }

  const burstSent = [];
  for (let i = 0; i < burst; i++) {
    const m = `burst ${i} \u2713 ${'x'.repeat(i % 17)}`;
    burstSent.push(m);
    ws.send(m);
  }
  const burstGot = [];
  for (let i = 0; i < burst; i++) {
    const got = await next(`burst echo ${i}`);
    burstGot.push(typeof got === 'string' ? got : { nonText: String(got) });
  }
  result.burst = {
    sent: burstSent.length,
    received: burstGot.length,
    inOrder: burstGot.every((m, i) => m === burstSent[i]),
    firstMismatch: burstGot.findIndex((m, i) => m !== burstSent[i]),
  };

  result.unexpectedBeforeClose = queue.length;
  ws.close(1000, 'browser done');
  result.close = await withTimeout(closed, 'the close event');
  result.unexpectedAfterClose = queue.length - result.unexpectedBeforeClose;
  result.errors = errors;
  result.readyState = ws.readyState;
  return result;
}

async function main() {
  if (!wsUrl) throw new Error('usage: node browser_client.js WS_URL');
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run \`make test-interop\` (its interop-browser step installs chromium)`);
  }
  const { chromium } = require('playwright-core');

  const pageHtml = '<!doctype html><meta charset="utf-8"><title>wsffi browser interop</title><p>wsffi</p>';
  const httpServer = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(pageHtml);
  });
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', resolve);
  });
  const pageUrl = `http://127.0.0.1:${httpServer.address().port}/`;

  let browser = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox'],
      timeout: STEP_TIMEOUT_MS,
    });
    const page = await browser.newPage();
    const consoleErrors = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(String(err && err.message)));
    await page.goto(pageUrl, { timeout: STEP_TIMEOUT_MS });
    const result = await page.evaluate(pageScenario, { url: wsUrl, stepTimeoutMs: STEP_TIMEOUT_MS, burst: BURST });
    result.browserVersion = browser.version();
    result.pageOrigin = new URL(pageUrl).origin;
    result.isSecureContext = await page.evaluate(() => window.isSecureContext);
    result.consoleErrors = consoleErrors;
    return result;
  } finally {
    if (browser) await browser.close().catch(() => {});
    httpServer.close();
  }
}

const deadline = setTimeout(() => {
  emit({ error: `browser run exceeded ${TIMEOUT_MS} ms` });
  process.exit(2); // playwright-core kills the browser it launched when the process exits
}, TIMEOUT_MS);

main().then(
  (result) => {
    clearTimeout(deadline);
    emit({ result });
    process.exit(0);
  },
  (err) => {
    clearTimeout(deadline);
    emit({ error: String((err && err.stack) || err) });
    process.exit(1);
  },
);
