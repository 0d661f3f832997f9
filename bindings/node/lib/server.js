'use strict';
const { EventEmitter } = require('events');
const http = require('http');
const crypto = require('crypto');
const ffi = require('./ffi');
const { api, koffi } = ffi;
const { WebSocket, deflateParams, toBuffer } = require('./websocket');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MARK = `x-wsffi-upgrade-${crypto.randomBytes(6).toString('hex')}`;
const servers = new Map();
let nextId = 1;
let nextUpgrade = 1;

const guard = (fn) => (...a) => { try { return fn(...a); } catch (e) { ffi.report(e); return 0; } };
const sv = (name, dflt) => guard((user, ...rest) => { const s = servers.get(user); return s ? s[name](...rest) : dflt; });
const cb = {
  protocols: ffi.register(sv('_onProtocols', -1), ffi.P.protocols),
  headers: ffi.register(sv('_onHeaders'), ffi.P.headers),
  connection: ffi.register(sv('_onConnection'), ffi.P.connection),
  clientError: ffi.register(sv('_onClientError'), ffi.P.serror),
  error: ffi.register(sv('_onError'), ffi.P.serror),
  close: ffi.register(sv('_onClose'), ffi.P.sclose),
  destroy: ffi.register(guard((user) => servers.delete(user)), ffi.P.destroy),
};

function decorate(req) {
  const u = new URL(req.url, 'http://localhost');
  req.path = u.pathname;
  req.host = req.headers.host;
  req.remoteAddress = req.socket.remoteAddress;
  req.query = (name) => u.searchParams.get(name);
  req.getHeader = (name) => req.headers[String(name).toLowerCase()];
  req.hasHeader = (name) => req.headers[String(name).toLowerCase()] !== undefined;
  return req;
}

function abortHandshake(socket, code, message, headers) {
  message = message || http.STATUS_CODES[code];
  headers = { Connection: 'close', 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(message), ...headers };
  socket.once('finish', socket.destroy);
  socket.end(`HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\n` +
    Object.keys(headers).map((h) => `${h}: ${headers[h]}`).join('\r\n') + '\r\n\r\n' + message);
}

class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = { maxPayload: 100 * 1024 * 1024, clientTracking: true, perMessageDeflate: false, ...options };
    if ((options.port == null && !options.server && !options.noServer) ||
      (options.port != null && (options.server || options.noServer)) || (options.server && options.noServer)) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    this.options = options;
    this._id = nextId++;
    this._live = new Set();
    this.clients = options.clientTracking ? new Set() : undefined;
    this._pending = new Map();
    this._state = 0; // 0 running, 1 closing, 2 closed
    const o = api.sopt.new();
    api.sopt.maxPayload(o, options.maxPayload);
    api.sopt.pingInterval(o, 0);
    api.sopt.idleTimeout(o, 0);
    if (options.perMessageDeflate) {
      api.sopt.deflateParams(o, deflateParams(options.perMessageDeflate));
    }
    const table = {
      size: koffi.sizeof(ffi.ServerCallbacks), verify_client: null, handle_protocols: cb.protocols,
      headers: cb.headers, on_connection: cb.connection, on_client_error: cb.clientError,
      on_error: cb.error, on_close: cb.close,
    };
    servers.set(this._id, this);
    const out = [null], err = [null];
    const st = api.serverAttach(ffi.getReactor(), null, null, o, table, this._id, cb.destroy, out, err);
    api.sopt.free(o);
    if (st !== 0) throw ffi.statusError(st, ffi.takeError(err));
    this._native = out[0];

    if (options.port != null) {
      this._server = http.createServer((req, res) => {
        const body = http.STATUS_CODES[426];
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        res.end(body);
      });
      this._server.listen(options.port, options.host, options.backlog, callback);
      this._ownServer = true;
    } else if (options.server) {
      this._server = options.server;
    }
    if (this._server) {
      this._onListening = () => this.emit('listening');
      this._onSrvError = (e) => this.emit('error', e);
      this._onUpgrade = (req, socket, head) => {
        this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req));
      };
      this._server.on('listening', this._onListening);
      this._server.on('error', this._onSrvError);
      this._server.on('upgrade', this._onUpgrade);
    }
  }

  address() {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    if (!this._server) return null;
    return this._server.address();
  }

  shouldHandle(req) {
    if (this.options.path) {
      const i = req.url.indexOf('?');
      const p = i !== -1 ? req.url.slice(0, i) : req.url;
      if (p !== this.options.path) return false;
    }
    return true;
  }

  handleUpgrade(req, socket, head, cb) {
    socket.on('error', () => socket.destroy());
    decorate(req);
    const key = req.headers['sec-websocket-key'];
    const version = +req.headers['sec-websocket-version'];
    const upgrade = req.headers.upgrade;
    let fail = null;
    if (req.method !== 'GET') fail = [405, 'Invalid HTTP method'];
    else if (!upgrade || upgrade.toLowerCase() !== 'websocket') fail = [400, 'Invalid Upgrade header'];
    else if (!key || !/^[+/0-9A-Za-z]{22}==$/.test(key)) fail = [400, 'Missing or invalid Sec-WebSocket-Key header'];
    else if (version !== 8 && version !== 13) fail = [400, 'Missing or invalid Sec-WebSocket-Version header'];
    else if (!this.shouldHandle(req)) { abortHandshake(socket, 400); return; }
    if (fail) {
      if (this.listenerCount('wsClientError')) {
        const err = new Error(fail[1]);
        err.code = 'WS_ERR_INVALID';
        this.emit('wsClientError', err, socket, req);
      } else abortHandshake(socket, fail[0], fail[1]);
      return;
    }
    if (this._state !== 0) { abortHandshake(socket, 503); return; }
    socket.pause();
    const vc = this.options.verifyClient;
    if (vc) {
      const info = {
        origin: req.headers[version === 8 ? 'sec-websocket-origin' : 'origin'],
        secure: !!(req.socket.authorized || req.socket.encrypted), req,
      };
      if (vc.length === 2) {
        vc(info, (ok, code, message, headers) => {
          if (!ok) return abortHandshake(socket, code || 401, message, headers);
          this._complete(req, socket, head, cb);
        });
        return;
      }
      if (!vc(info)) return abortHandshake(socket, 401);
    }
    this._complete(req, socket, head, cb);
  }

  _complete(req, socket, head, cb) {
    if (socket.encrypted) {
      // Node holds the TLS session of this socket: its descriptor alone cannot carry it on.
      abortHandshake(socket, 500, 'WebSocket over an https.Server is not supported by wsffi');
      return;
    }
    if (!socket.readable || !socket.writable || !socket._handle || socket._handle.fd == null || socket._handle.fd < 0) {
      socket.destroy();
      return;
    }
    const id = String(nextUpgrade++);
    // Bytes Node already read past the head, then the request head rebuilt for the library.
    const chunks = [head];
    let c;
    while ((c = socket.read()) !== null) chunks.push(c);
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() === MARK) continue;
      text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    }
    text += `${MARK}: ${id}\r\n\r\n`;
    const buf = Buffer.concat([Buffer.from(text, 'latin1'), ...chunks]);
    // Hand a duplicate of the descriptor to wsffi, then let Node close its own (no shutdown:
    // the connection lives on through the duplicate).
    socket._handle.readStop();
    const fd = api.fcntl(socket._handle.fd, 1030 /* F_DUPFD_CLOEXEC */, 'int', 3);
    if (fd < 0) { socket.destroy(); return; }
    const entry = { req, cb, timer: setTimeout(() => this._dropPending(id), 15000) };
    entry.timer.unref();
    this._pending.set(id, entry);
    ffi.ref();
    socket.destroy();
    const st = api.handleUpgrade(this._native, fd, buf, buf.length);
    if (st !== 0) this._dropPending(id);
  }

  _dropPending(id) {
    const e = this._pending.get(id);
    if (!e) return;
    clearTimeout(e.timer);
    this._pending.delete(id);
    ffi.unref();
  }

  _pendingOf(reqPtr) {
    const id = api.requestHeader(reqPtr, MARK);
    return id ? [id, this._pending.get(id)] : [null, null];
  }

  _onProtocols(reqPtr, offered, count) {
    const hp = this.options.handleProtocols;
    const list = [];
    for (let i = 0; i < Number(count); i++) list.push(koffi.decode(offered, i * koffi.sizeof('void *'), 'const char *'));
    if (!hp) return 0;
    const [, e] = this._pendingOf(reqPtr);
    const chosen = hp(new Set(list), e ? e.req : undefined);
    const i = chosen === false ? -1 : list.indexOf(chosen);
    return i;
  }

  _onHeaders(hs) {
    if (!this.listenerCount('headers')) return;
    const [, e] = this._pendingOf(api.handshakeRequest(hs));
    const req = e ? e.req : undefined;
    const key = req && req.headers['sec-websocket-key'];
    const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
    const headers = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept}`];
    const n = headers.length;
    this.emit('headers', headers, req);
    for (const line of headers.slice(n)) {
      const i = line.indexOf(':');
      if (i > 0) api.handshakeAddHeader(hs, line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
  }

  _onConnection(server, conn, reqPtr) {
    const [id, e] = this._pendingOf(reqPtr);
    const ws = new WebSocket(null);
    ws._adopt(conn, e ? e.req.url : '');
    if (id) this._dropPending(id);
    this._live.add(ws);
    if (this.clients) this.clients.add(ws);
    ws._owner = this; // told by _untrack before the socket's own 'close' listeners run
    if (e) e.cb(ws, e.req);
  }

  // Sends one message to every socket subscribed to `topic` (ws.subscribe), framed once;
  // options: binary (default: not a string), except (a socket that does not get it).
  publish(topic, data, options) {
    if (typeof topic !== 'string') throw new TypeError('The topic must be a string');
    if (!this._native) throw ffi.statusError(201, 'The server is not running');
    let binary = typeof data !== 'string';
    if (options && options.binary !== undefined) binary = !!options.binary;
    const buf = toBuffer(data);
    const except = options && options.except && options.except._conn ? options.except._conn : 0;
    const st = api.publish(this._native, topic, binary ? 2 : 1, buf, buf.length, except);
    if (st !== 0) throw ffi.statusError(st);
  }

  subscriberCount(topic) {
    return this._native && typeof topic === 'string' ? Number(api.subscriberCount(this._native, topic)) : 0;
  }

  _untrack(ws) {
    this._live.delete(ws);
    if (this.clients) this.clients.delete(ws);
    if (this._state === 1 && this._live.size === 0) this._finish();
  }

  _onClientError(server, status, message) {
    const err = ffi.statusError(status, message);
    if (this.listenerCount('wsClientError')) this.emit('wsClientError', err, null, null);
  }

  _onError(server, status, message) { this.emit('error', ffi.statusError(status, message)); }

  _onClose() {
    this._state = 2;
    if (this._closingRef) { this._closingRef = false; ffi.unref(); }
    process.nextTick(() => this.emit('close'));
  }

  _finish() {
    if (this._native) { const n = this._native; this._native = null; api.serverClose(n); }
  }

  close(cb) {
    if (cb) {
      if (this._state === 2) { process.nextTick(cb, new Error('The server is not running')); return; }
      this.once('close', cb);
    }
    if (this._state !== 0) return;
    this._state = 1;
    // Stay alive until the library reports the server closed.
    this._closingRef = true;
    ffi.ref();
    if (this._server) {
      this._server.removeListener('listening', this._onListening);
      this._server.removeListener('error', this._onSrvError);
      this._server.removeListener('upgrade', this._onUpgrade);
      if (this._ownServer) this._server.close();
    }
    if (this._live.size === 0) this._finish();
  }
}

module.exports = { WebSocketServer };
