'use strict';
const { EventEmitter } = require('events');
const { Readable } = require('stream');
const ffi = require('./ffi');
const { api, koffi } = ffi;

const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;
const STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const objects = new Map(); // user id -> WebSocket
let nextId = 1;

function isValidStatusCode(code) {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999);
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(String(data));
}

// Each callback looks its WebSocket up by the user id; explicit parameters (no rest/spread
// arrays) keep the per-event cost down. An exception is reported on the main thread later:
// it must not unwind through the library.
function lookup(user) { return objects.get(user); }
const cb = {
  open: ffi.register((user, conn) => {
    try { const ws = lookup(user); if (ws) ws._onOpen(conn); } catch (e) { ffi.report(e); }
  }, ffi.P.open),
  message: ffi.register((user, conn, kind, data, len) => {
    try { const ws = lookup(user); if (ws) ws._onMessage(conn, kind, data, len); } catch (e) { ffi.report(e); }
  }, ffi.P.message),
  close: ffi.register((user, conn, info) => {
    try { const ws = lookup(user); if (ws) ws._onClose(conn, info); } catch (e) { ffi.report(e); }
  }, ffi.P.close),
  error: ffi.register((user, conn, status, message) => {
    try { const ws = lookup(user); if (ws) ws._onError(conn, status, message); } catch (e) { ffi.report(e); }
  }, ffi.P.error),
  ping: ffi.register((user, conn, data, len) => {
    try { const ws = lookup(user); if (ws) ws._onPing(conn, data, len); } catch (e) { ffi.report(e); }
  }, ffi.P.control),
  pong: ffi.register((user, conn, data, len) => {
    try { const ws = lookup(user); if (ws) ws._onPong(conn, data, len); } catch (e) { ffi.report(e); }
  }, ffi.P.control),
  drain: ffi.register((user) => {
    try { const ws = lookup(user); if (ws) ws._onDrain(); } catch (e) { ffi.report(e); }
  }, ffi.P.drain),
  unexpected: ffi.register((user, conn, resp) => {
    try { const ws = lookup(user); if (ws) ws._onUnexpected(conn, resp); } catch (e) { ffi.report(e); }
  }, ffi.P.unexpected),
  destroy: ffi.register((user) => { objects.delete(user); }, ffi.P.destroy),
};
const callbacks = {
  size: koffi.sizeof(ffi.ConnCallbacks), on_open: cb.open, on_message: cb.message, on_close: cb.close,
  on_error: cb.error, on_ping: cb.ping, on_pong: cb.pong, on_drain: cb.drain,
  on_unexpected_response: cb.unexpected,
};

function deflateParams(o) {
  const p = {};
  api.deflateInit(p, koffi.sizeof(ffi.DeflateParams));
  if (o && typeof o === 'object') {
    if (o.serverNoContextTakeover) p.server_no_context_takeover = true;
    if (o.clientNoContextTakeover) p.client_no_context_takeover = true;
    if (typeof o.serverMaxWindowBits === 'number') p.server_max_window_bits = o.serverMaxWindowBits;
    if (typeof o.clientMaxWindowBits === 'number') p.client_max_window_bits = o.clientMaxWindowBits;
    if (typeof o.threshold === 'number') p.threshold = o.threshold;
    const z = o.zlibDeflateOptions || {};
    if (typeof z.level === 'number') p.level = z.level;
    if (typeof z.memLevel === 'number') p.mem_level = z.memLevel;
  }
  return p;
}

// Headers of a wsffi_response as Node's http module shows them: `headers` with lower-case
// names (repeated ones joined with ", "), `rawHeaders` as received.
function responseHeaders(resp) {
  const headers = {};
  const rawHeaders = [];
  const n = api.responseHeaderCount(resp);
  for (let i = 0; i < n; i++) {
    const name = [null], value = [null];
    api.responseHeaderAt(resp, i, name, value);
    rawHeaders.push(name[0], value[0]);
    const k = name[0].toLowerCase();
    headers[k] = headers[k] === undefined ? value[0] : `${headers[k]}, ${value[0]}`;
  }
  return { headers, rawHeaders };
}

class WebSocket extends EventEmitter {
  constructor(address, protocols, options) {
    super();
    this._id = nextId++;
    this._conn = null;
    this._state = CONNECTING;
    this._protocol = '';
    this._extensions = '';
    this._binaryType = 'nodebuffer';
    this._queue = null; // see _push
    this._fragmenting = false;
    this._owner = null; // the WebSocketServer of an accepted connection
    this._libOpen = false;
    this._isServer = false;
    this._url = '';
    this._refd = false;
    if (address === null) return; // server side: see _adopt
    if (Array.isArray(protocols) || typeof protocols === 'string') {
      protocols = typeof protocols === 'string' ? [protocols] : protocols;
    } else {
      if (protocols && typeof protocols === 'object') options = protocols;
      protocols = [];
    }
    this._connect(address, protocols, options || {});
  }

  _connect(address, protocols, options) {
    let parsed;
    if (address instanceof URL) parsed = address;
    else {
      try { parsed = new URL(address); } catch { throw new SyntaxError(`Invalid URL: ${address}`); }
    }
    if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
    else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
    if (!['ws:', 'wss:', 'ws+unix:'].includes(parsed.protocol)) {
      throw new SyntaxError('The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"');
    }
    if (parsed.hash) throw new SyntaxError('The URL contains a fragment identifier');
    const seen = new Set();
    for (const p of protocols) {
      if (typeof p !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p) || seen.has(p)) {
        throw new SyntaxError('An invalid or duplicated subprotocol was specified');
      }
      seen.add(p);
    }
    this._url = parsed.href;
    const o = api.copt.new();
    try {
      for (const p of protocols) api.copt.addProtocol(o, p);
      if (options.origin) api.copt.origin(o, String(options.origin));
      if (options.headers) {
        for (const [k, v] of Object.entries(options.headers)) {
          const st = api.copt.addHeader(o, k, String(v));
          if (st !== 0) throw ffi.statusError(st, `Invalid header ${k}`);
        }
      }
      if (options.handshakeTimeout) api.copt.handshakeTimeout(o, options.handshakeTimeout);
      if (options.maxPayload) api.copt.maxPayload(o, options.maxPayload);
      if (options.perMessageDeflate === false) api.copt.deflate(o, false);
      else if (typeof options.perMessageDeflate === 'object') api.copt.deflateParams(o, deflateParams(options.perMessageDeflate));
      if (options.rejectUnauthorized === false) api.copt.insecure(o, true);
      objects.set(this._id, this);
      const out = [null];
      const err = [null];
      const st = api.connect(ffi.getReactor(), this._url, o, callbacks, this._id, cb.destroy, out, err);
      if (st !== 0) {
        const msg = ffi.takeError(err);
        objects.delete(this._id);
        throw new SyntaxError(msg || api.statusStr(st));
      }
      this._conn = out[0];
      this._owned = true;
      this._ref();
    } finally {
      api.copt.free(o);
    }
  }

  // Server side: a connection the library accepted.
  _adopt(conn, url) {
    this._isServer = true;
    this._conn = conn;
    this._url = url;
    this._state = OPEN;
    objects.set(this._id, this);
    this._ref();
    api.setCallbacks(conn, callbacks, this._id, cb.destroy);
    this._protocol = api.protocol(conn);
    this._extensions = api.extensions(conn);
  }

  _ref() { if (!this._refd) { this._refd = true; ffi.ref(); } }
  _unref() { if (this._refd) { this._refd = false; ffi.unref(); } }

  get CONNECTING() { return CONNECTING; }
  get OPEN() { return OPEN; }
  get CLOSING() { return CLOSING; }
  get CLOSED() { return CLOSED; }
  get readyState() { return this._state; }
  get url() { return this._url; }
  // Both are fixed by the handshake: read from the library once, at the open.
  get protocol() { return this._protocol; }
  get extensions() { return this._extensions; }
  get isPaused() { return !!this._paused; }
  get bufferedAmount() {
    let n = this._conn ? api.bufferedAmount(this._conn) : 0;
    if (this._queue !== null) for (const q of this._queue) n += typeof q.data === 'string' ? Buffer.byteLength(q.data) : q.data.length;
    return n;
  }
  get binaryType() { return this._binaryType; }
  set binaryType(t) {
    if (['nodebuffer', 'arraybuffer', 'fragments', 'blob'].includes(t)) this._binaryType = t;
  }

  _notOpen(data, cb) {
    if (this._state === CONNECTING) {
      throw new Error(`WebSocket is not open: readyState 0 (CONNECTING)`);
    }
    if (cb) {
      const err = new Error(`WebSocket is not open: readyState ${this._state} (${STATES[this._state]})`);
      process.nextTick(cb, err);
    }
  }

  send(data, options, cb) {
    if (typeof options === 'function') { cb = options; options = undefined; }
    if (this._state !== OPEN) return this._notOpen(data, cb);
    let binary = typeof data !== 'string' && typeof data !== 'number';
    let fin = true;
    if (options) {
      if (options.binary !== undefined) binary = !!options.binary;
      if (options.fin !== undefined) fin = !!options.fin;
    }
    if (typeof data !== 'string') data = toBuffer(data);
    const kind = binary ? 2 : 1;
    // The common case goes straight to the library, without a queue item.
    if (this._queue === null && fin && !this._fragmenting && (this._libOpen || this._isServer)) {
      const st = ffi.sendBytes(this._conn, kind, data, true, false);
      if (st !== 202 && st !== 200) { this._sent(st, cb); return; }
      this._queue = [{ kind, data, fin, cb }]; // refused: it waits for drain
      return;
    }
    this._push({ kind, data, fin, cb });
  }

  _sent(st, cb) {
    if (cb) process.nextTick(cb, st === 0 ? null : ffi.statusError(st));
    else if (st !== 0 && st !== 201) ffi.report(ffi.statusError(st));
  }

  // Sends refused for backpressure (or made before the client's open) wait here for drain.
  _push(item) {
    if (this._queue !== null || !this._libOpen && !this._isServer) {
      if (this._queue === null) this._queue = [];
      this._queue.push(item);
      return;
    }
    this._write(item);
  }

  _write(item) {
    const { kind, data, fin, cb } = item;
    const fragment = !fin || this._fragmenting;
    const st = ffi.sendBytes(this._conn, kind, data, fin, fragment);
    if (st === 202 || st === 200) {
      if (this._queue === null) this._queue = [];
      this._queue.unshift(item);
      return false;
    }
    if (fragment && st === 0) this._fragmenting = !fin;
    this._sent(st, cb);
    return true;
  }

  _flush() {
    while (this._queue !== null && this._conn) {
      const item = this._queue.shift();
      if (this._queue.length === 0) this._queue = null;
      if (!this._write(item)) return;
    }
  }

  _control(fn, data, mask, cb) {
    if (typeof data === 'function') { cb = data; data = undefined; } else if (typeof mask === 'function') { cb = mask; }
    if (this._state !== OPEN) return this._notOpen(data, cb);
    const buf = data === undefined ? Buffer.alloc(0) : toBuffer(data);
    if (buf.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    const st = fn(this._conn, buf, buf.length);
    if (cb) process.nextTick(cb, st === 0 ? null : ffi.statusError(st));
  }

  ping(data, mask, cb) { this._control(api.ping, data, mask, cb); }
  pong(data, mask, cb) { this._control(api.pong, data, mask, cb); }

  close(code, data) {
    if (this._state === CLOSED) return;
    if (code !== undefined && (typeof code !== 'number' || !isValidStatusCode(code))) {
      throw new TypeError('First argument must be a valid error code number');
    }
    const reason = data === undefined ? Buffer.alloc(0) : toBuffer(data);
    if (reason.length > 123) throw new RangeError('The message must not be greater than 123 bytes');
    if (this._state === CONNECTING) {
      this._abortMessage = 'WebSocket was closed before the connection was established';
      this._state = CLOSING;
      api.terminate(this._conn);
      return;
    }
    if (this._state === CLOSING) return;
    this._state = CLOSING;
    this._flush();
    if (code === undefined) api.close(this._conn, 0, null, 0);
    else api.close(this._conn, code, reason, reason.length);
  }

  terminate() {
    if (this._state === CLOSED) return;
    if (this._state === CONNECTING) {
      this._abortMessage = 'WebSocket was closed before the connection was established';
    }
    this._state = CLOSING;
    api.terminate(this._conn);
  }

  // Topics (server-side sockets): the server's publish(topic, ...) reaches this socket until
  // unsubscribe or close. true when something changed.
  subscribe(topic) { return this._topic(api.subscribe, topic); }
  unsubscribe(topic) { return this._topic(api.unsubscribe, topic); }
  isSubscribed(topic) {
    return typeof topic === 'string' && !!this._conn && this._state !== CLOSED && api.isSubscribed(this._conn, topic);
  }

  _topic(fn, topic) {
    if (typeof topic !== 'string') throw new TypeError('The topic must be a string');
    if (!this._conn || this._state === CLOSED) return false;
    const st = fn(this._conn, topic);
    if (st === 205) return false; // WSFFI_STATUS_ERR_ALREADY_DONE
    if (st !== 0) throw ffi.statusError(st);
    return true;
  }

  pause() { if (this._conn && this._state !== CONNECTING) { this._paused = true; api.pause(this._conn); } }
  resume() { if (this._conn && this._state !== CONNECTING) { this._paused = false; api.resume(this._conn); } }

  // ---- library events ----
  _onOpen(conn) {
    this._libOpen = true;
    this._protocol = api.protocol(conn);
    this._extensions = api.extensions(conn);
    if (this._isServer) { this._flush(); return; }
    if (this._state === CONNECTING) this._state = OPEN;
    if (this.listenerCount('upgrade') > 0) {
      // The server's 101, as Node's http.IncomingMessage would show it.
      const resp = api.handshakeResponse(conn);
      const { headers, rawHeaders } = responseHeaders(resp);
      this.emit('upgrade', {
        statusCode: api.responseStatus(resp),
        statusMessage: api.responseReason(resp) || '',
        headers,
        rawHeaders,
      });
    }
    this.emit('open');
    this._flush();
  }

  _onMessage(conn, kind, ptr, len) {
    const buf = ffi.bytes(ptr, len);
    const isBinary = kind === 2;
    let data = buf;
    if (isBinary) {
      if (this._binaryType === 'arraybuffer') data = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
      else if (this._binaryType === 'fragments') data = [buf];
      else if (this._binaryType === 'blob') data = new Blob([buf]);
    }
    this.emit('message', data, isBinary);
  }

  _onPing(conn, ptr, len) { this.emit('ping', ffi.bytes(ptr, len)); }
  _onPong(conn, ptr, len) { this.emit('pong', ffi.bytes(ptr, len)); }
  _onDrain() { this._flush(); }

  _onError(conn, status, message) {
    // The refusal was given to an 'unexpected-response' listener (which may have been a once()).
    if (status === 302 && this._unexpectedHandled) return;
    // Like ws: a peer that goes away without a close frame is reported by 'close' (1006) only.
    if (status === 405 && !this._abortMessage) return;
    if (this._abortMessage) {
      const err = new Error(this._abortMessage);
      this._abortMessage = null;
      this.emit('error', err);
      return;
    }
    let msg = message;
    if (status === 302 && this._rejectStatus) msg = `Unexpected server response: ${this._rejectStatus}`;
    if (status === 303) {
      const err = new RangeError('Max payload size exceeded');
      err.code = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      err.status = status;
      this.emit('error', err);
      return;
    }
    this.emit('error', ffi.statusError(status, msg));
  }

  _onUnexpected(conn, resp) {
    const statusCode = api.responseStatus(resp);
    this._rejectStatus = statusCode;
    if (this.listenerCount('unexpected-response') === 0) return;
    this._unexpectedHandled = true;
    const { headers, rawHeaders } = responseHeaders(resp);
    const len = [0];
    const body = api.responseBody(resp, len);
    const res = new Readable({ read() {} });
    res.statusCode = statusCode;
    res.statusMessage = api.responseReason(resp) || '';
    res.headers = headers;
    res.rawHeaders = rawHeaders;
    res.push(ffi.bytes(body, len[0]));
    res.push(null);
    this.emit('unexpected-response', { method: 'GET', path: new URL(this._url).pathname }, res);
  }

  _onClose(conn, infoPtr) {
    const info = koffi.decode(infoPtr, ffi.CloseInfo);
    const reason = ffi.bytes(info.reason, Number(info.reason_len));
    this._state = CLOSED;
    this._closeInfo = { code: info.code, wasClean: info.was_clean };
    if (this._owned && this._conn) api.release(this._conn);
    this._conn = null;
    const queue = this._queue;
    this._queue = null;
    if (queue !== null) {
      for (const item of queue) {
        if (item.cb) process.nextTick(item.cb, new Error('WebSocket is not open: readyState 3 (CLOSED)'));
      }
    }
    this._unref();
    if (this._owner) { const owner = this._owner; this._owner = null; owner._untrack(this); }
    this.emit('close', info.code, reason);
  }
}

for (const [i, name] of STATES.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}

// ---- EventTarget-style API (onopen, addEventListener) ----
function makeEvent(type, target, args) {
  switch (type) {
    case 'message': {
      const [data, isBinary] = args;
      return { type, target, data: isBinary ? data : data.toString() };
    }
    case 'close': {
      const [code, reason] = args;
      return { type, target, code, reason: reason.toString(), wasClean: !!(target._closeInfo && target._closeInfo.wasClean) };
    }
    case 'error': return { type, target, error: args[0], message: args[0] && args[0].message };
    default: return { type, target };
  }
}

const kListener = Symbol('kListener');
WebSocket.prototype.addEventListener = function (type, handler, options = {}) {
  if (typeof handler !== 'function' && !(handler && typeof handler.handleEvent === 'function')) return;
  for (const l of this.listeners(type)) if (l[kListener] === handler && !l._onProp) return;
  const self = this;
  const wrapper = function (...args) {
    const ev = makeEvent(type, self, args);
    if (typeof handler === 'function') handler.call(self, ev);
    else handler.handleEvent(ev);
  };
  wrapper[kListener] = handler;
  if (options.once) this.once(type, wrapper); else this.on(type, wrapper);
};
WebSocket.prototype.removeEventListener = function (type, handler) {
  for (const l of this.listeners(type)) {
    if (l[kListener] === handler && !l._onProp) { this.removeListener(type, l); break; }
  }
};
for (const type of ['open', 'error', 'close', 'message']) {
  Object.defineProperty(WebSocket.prototype, `on${type}`, {
    enumerable: true,
    get() {
      for (const l of this.listeners(type)) if (l._onProp) return l[kListener];
      return null;
    },
    set(handler) {
      for (const l of this.listeners(type)) if (l._onProp) this.removeListener(type, l);
      if (typeof handler !== 'function') return;
      const self = this;
      const wrapper = (...args) => handler.call(self, makeEvent(type, self, args));
      wrapper[kListener] = handler;
      wrapper._onProp = true;
      this.on(type, wrapper);
    },
  });
}

module.exports = { WebSocket, objects, isValidStatusCode, deflateParams, toBuffer, CONNECTING, OPEN, CLOSING, CLOSED };
