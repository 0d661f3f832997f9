'use strict';
// libwsffi through koffi, and the hand-over of reactor events to Node's main thread.
//
// The reactor runs in dispatch mode. Its wake function is libuv's own uv_async_send (a C
// function, exported by the node binary): it never blocks the reactor thread, whatever the
// JS thread is doing. The uv_async handle then runs `pump` on the main thread, which calls
// wsffi_reactor_dispatch until a batch comes back short. The handle is referenced only while
// connections live, so a process exits when they close.
const fs = require('fs');
const path = require('path');
const koffi = require('koffi');

function libraryPath() {
  if (process.env.WSFFI_LIBRARY) return process.env.WSFFI_LIBRARY;
  const inRepo = path.resolve(__dirname, '..', '..', '..', 'target', 'release', 'libwsffi.so');
  if (fs.existsSync(inRepo)) return inRepo;
  return 'libwsffi.so.0.1';
}

const lib = koffi.load(libraryPath());
const self = koffi.load(null);
const libc = koffi.load('libc.so.6');

const U = 'uintptr_t';
// Handles the binding only passes back (connections) and payload pointers travel as numbers:
// a `void *` argument costs koffi an External object (with a weak global handle) per call.
const P = {
  open: koffi.proto(`void wsffi_open_cb(${U} user, ${U} conn)`),
  message: koffi.proto(`void wsffi_message_cb(${U} user, ${U} conn, uint32_t kind, ${U} data, size_t len)`),
  close: koffi.proto(`void wsffi_close_cb(${U} user, ${U} conn, void *info)`),
  error: koffi.proto(`void wsffi_error_cb(${U} user, ${U} conn, uint32_t status, const char *message)`),
  control: koffi.proto(`void wsffi_control_cb(${U} user, ${U} conn, ${U} data, size_t len)`),
  drain: koffi.proto(`void wsffi_drain_cb(${U} user, ${U} conn)`),
  unexpected: koffi.proto(`void wsffi_unexpected_cb(${U} user, ${U} conn, void *resp)`),
  destroy: koffi.proto(`void wsffi_destroy_cb(${U} user)`),
  verify: koffi.proto(`uint32_t wsffi_verify_cb(${U} user, void *hs)`),
  protocols: koffi.proto(`int wsffi_protocols_cb(${U} user, void *req, void *offered, size_t count)`),
  headers: koffi.proto(`void wsffi_headers_cb(${U} user, void *hs)`),
  connection: koffi.proto(`void wsffi_connection_cb(${U} user, void *server, ${U} conn, void *req)`),
  serror: koffi.proto(`void wsffi_server_error_cb(${U} user, void *server, uint32_t status, const char *message)`),
  sclose: koffi.proto(`void wsffi_server_close_cb(${U} user, void *server)`),
  asyncCb: koffi.proto('void wsffi_uv_async_cb(void *handle)'),
};

const CloseInfo = koffi.struct('wsffi_close_info', {
  size: 'size_t', code: 'uint16_t', reason: U, reason_len: 'size_t', was_clean: 'bool',
  origin: 'uint32_t', peer_code: 'uint16_t', peer_reason: U, peer_reason_len: 'size_t',
  local_code: 'uint16_t', local_reason: U, local_reason_len: 'size_t',
});
const ConnCallbacks = koffi.struct('wsffi_conn_callbacks', {
  size: 'size_t', on_open: 'void *', on_message: 'void *', on_close: 'void *', on_error: 'void *',
  on_ping: 'void *', on_pong: 'void *', on_drain: 'void *', on_unexpected_response: 'void *',
});
const ServerCallbacks = koffi.struct('wsffi_server_callbacks', {
  size: 'size_t', verify_client: 'void *', handle_protocols: 'void *', headers: 'void *',
  on_connection: 'void *', on_client_error: 'void *', on_error: 'void *', on_close: 'void *',
});
const DeflateParams = koffi.struct('wsffi_deflate_params', {
  size: 'size_t', server_no_context_takeover: 'bool', client_no_context_takeover: 'bool',
  server_max_window_bits: 'uint8_t', client_max_window_bits: 'uint8_t', threshold: 'size_t',
  level: 'uint32_t', mem_level: 'uint8_t',
});

const f = (sig) => lib.func(sig);
const api = {
  connect: f(`uint32_t wsffi_connect(void *reactor, const char *url, void *options, wsffi_conn_callbacks *cb, ${U} user, void *destroy, _Out_ ${U} *conn, _Out_ void **err)`),
  send: f(`uint32_t wsffi_send(${U} conn, uint32_t kind, const uint8_t *data, size_t len)`),
  sendFragment: f(`uint32_t wsffi_send_fragment(${U} conn, uint32_t kind, const uint8_t *data, size_t len, bool fin)`),
  ping: f(`uint32_t wsffi_ping(${U} conn, const uint8_t *data, size_t len)`),
  pong: f(`uint32_t wsffi_pong(${U} conn, const uint8_t *data, size_t len)`),
  close: f(`uint32_t wsffi_close(${U} conn, uint16_t code, const uint8_t *reason, size_t len)`),
  terminate: f(`uint32_t wsffi_terminate(${U} conn)`),
  pause: f(`uint32_t wsffi_conn_pause(${U} conn)`),
  resume: f(`uint32_t wsffi_conn_resume(${U} conn)`),
  readyState: f(`uint32_t wsffi_ready_state(${U} conn)`),
  bufferedAmount: f(`size_t wsffi_buffered_amount(${U} conn)`),
  protocol: f(`const char *wsffi_protocol(${U} conn)`),
  extensions: f(`const char *wsffi_extensions(${U} conn)`),
  remoteAddress: f(`const char *wsffi_remote_address(${U} conn)`),
  setCallbacks: f(`uint32_t wsffi_conn_set_callbacks(${U} conn, wsffi_conn_callbacks *cb, ${U} user, void *destroy)`),
  release: f(`void wsffi_conn_release(${U} conn)`),
  deflateInit: f('uint32_t wsffi_deflate_params_init(_Out_ wsffi_deflate_params *p, size_t size)'),
  copt: {
    new: f('void *wsffi_client_options_new(void)'),
    free: f('void wsffi_client_options_free(void *o)'),
    addProtocol: f('uint32_t wsffi_client_options_add_protocol(void *o, const char *p)'),
    addHeader: f('uint32_t wsffi_client_options_add_header(void *o, const char *n, const char *v)'),
    origin: f('uint32_t wsffi_client_options_set_origin(void *o, const char *v)'),
    handshakeTimeout: f('uint32_t wsffi_client_options_set_handshake_timeout_ms(void *o, uint32_t ms)'),
    maxPayload: f('uint32_t wsffi_client_options_set_max_payload(void *o, size_t n)'),
    deflate: f('uint32_t wsffi_client_options_set_per_message_deflate(void *o, bool on)'),
    deflateParams: f('uint32_t wsffi_client_options_set_deflate_params(void *o, wsffi_deflate_params *p)'),
    insecure: f('uint32_t wsffi_client_options_set_tls_insecure(void *o, bool on)'),
  },
  sopt: {
    new: f('void *wsffi_server_options_new(void)'),
    free: f('void wsffi_server_options_free(void *o)'),
    maxPayload: f('uint32_t wsffi_server_options_set_max_payload(void *o, size_t n)'),
    deflate: f('uint32_t wsffi_server_options_set_per_message_deflate(void *o, bool on)'),
    deflateParams: f('uint32_t wsffi_server_options_set_deflate_params(void *o, wsffi_deflate_params *p)'),
    pingInterval: f('uint32_t wsffi_server_options_set_ping_interval_ms(void *o, uint32_t ms)'),
    idleTimeout: f('uint32_t wsffi_server_options_set_idle_timeout_ms(void *o, uint32_t ms)'),
    clientTracking: f('uint32_t wsffi_server_options_set_client_tracking(void *o, bool on)'),
  },
  serverAttach: f(`uint32_t wsffi_server_attach(void *reactor, void *listener, const char *path, void *options, wsffi_server_callbacks *cb, ${U} user, void *destroy, _Out_ void **server, _Out_ void **err)`),
  handleUpgrade: f('uint32_t wsffi_server_handle_upgrade(void *server, int fd, const uint8_t *head, size_t len)'),
  serverClose: f('uint32_t wsffi_server_close(void *server)'),
  subscribe: f(`uint32_t wsffi_conn_subscribe(${U} conn, const char *topic)`),
  unsubscribe: f(`uint32_t wsffi_conn_unsubscribe(${U} conn, const char *topic)`),
  isSubscribed: f(`bool wsffi_conn_is_subscribed(${U} conn, const char *topic)`),
  publish: f(`uint32_t wsffi_server_publish(void *server, const char *topic, uint32_t kind, const uint8_t *data, size_t len, ${U} except)`),
  subscriberCount: f('size_t wsffi_server_subscriber_count(void *server, const char *topic)'),
  handshakeRequest: f('void *wsffi_handshake_request(void *hs)'),
  handshakeAddHeader: f('uint32_t wsffi_handshake_add_header(void *hs, const char *n, const char *v)'),
  requestHeader: f('const char *wsffi_request_header(void *req, const char *name)'),
  handshakeResponse: f(`void *wsffi_conn_handshake_response(${U} conn)`),
  responseStatus: f('uint16_t wsffi_response_status(void *r)'),
  responseReason: f('const char *wsffi_response_reason(void *r)'),
  responseHeaderCount: f('size_t wsffi_response_header_count(void *r)'),
  responseHeaderAt: f('uint32_t wsffi_response_header_at(void *r, size_t i, _Out_ const char **n, _Out_ const char **v)'),
  responseBody: f(`${U} wsffi_response_body(void *r, _Out_ size_t *len)`),
  statusStr: f('const char *wsffi_status_str(uint32_t s)'),
  errorMessage: f('const char *wsffi_error_message(void *e)'),
  errorFree: f('void wsffi_error_free(void *e)'),
  version: f('const char *wsffi_version(void)'),
  fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
  // The same sends with the data as an address (see `sendBytes`).
  sendAt: f(`uint32_t wsffi_send(${U} conn, uint32_t kind, ${U} data, size_t len)`),
  sendFragmentAt: f(`uint32_t wsffi_send_fragment(${U} conn, uint32_t kind, ${U} data, size_t len, bool fin)`),
};
const memcpyAt = libc.func(`void memcpy(${U} dst, ${U} src, size_t n)`);
const memcpyTo = libc.func(`void memcpy(uint8_t *dst, ${U} src, size_t n)`);

const STATUS = {
  0: 'OK', 100: 'ERR_NULL_PARAMETER', 101: 'ERR_INVALID_PARAMETER', 102: 'ERR_INVALID_UTF8',
  103: 'ERR_INVALID_URL', 104: 'ERR_TOO_BIG', 105: 'ERR_UNSUPPORTED', 200: 'ERR_NOT_OPEN',
  201: 'ERR_CLOSED', 202: 'ERR_BACKPRESSURE', 203: 'ERR_CALLED_FROM_CALLBACK', 204: 'ERR_SHUT_DOWN',
  205: 'ERR_ALREADY_DONE', 206: 'ERR_QUEUE_FULL', 207: 'ERR_RECONNECTING', 208: 'ERR_DROPPED',
  300: 'WS_ERR_PROTOCOL', 301: 'WS_ERR_HANDSHAKE',
  302: 'WS_ERR_HANDSHAKE_REJECTED', 303: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 400: 'EIO', 401: 'ENOTFOUND',
  402: 'ECONNREFUSED', 403: 'ETIMEDOUT', 404: 'EADDRINUSE', 405: 'ECONNRESET', 500: 'ERR_TLS',
  900: 'ERR_INTERNAL', 901: 'ERR_PANIC',
};

function statusError(status, message) {
  const err = new Error(message || api.statusStr(status));
  err.code = STATUS[status] || `WSFFI_${status}`;
  err.status = status;
  return err;
}

function takeError(errOut) {
  if (!errOut[0]) return null;
  const msg = api.errorMessage(errOut[0]);
  api.errorFree(errOut[0]);
  return msg;
}

// The address of a Buffer's memory, as a number; null where it does not fit one (the
// callers then take the slower paths that hand koffi the Buffer itself). Buffers made by
// allocUnsafeSlow live outside the V8 heap and never move.
function addressOf(buf) {
  let a;
  try { a = koffi.address(buf); } catch { return null; }
  return typeof a === 'bigint' && a > 0n && a <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(a) : null;
}

// Received payloads are lent for the length of the callback, so each is copied once, with
// one memcpy, into the next slice of a shared pool: no ArrayBuffer per message. Sized as
// Node's own Buffer.allocUnsafe pool, so a kept message holds at most 8 KiB; the GC drops a
// pool with its last slice.
const POOL_SIZE = 8 * 1024;
const POOL_MAX = POOL_SIZE >>> 1; // larger payloads get a Buffer of their own
let pool = null;
let poolAt = null;
let poolOffset = POOL_SIZE;

function bytes(ptr, len) {
  if (!len) return Buffer.alloc(0);
  if (len > POOL_MAX) {
    const buf = Buffer.allocUnsafe(len);
    memcpyTo(buf, ptr, len);
    return buf;
  }
  if (poolOffset + len > POOL_SIZE) {
    pool = Buffer.allocUnsafeSlow(POOL_SIZE);
    poolAt = addressOf(pool);
    poolOffset = 0;
  }
  if (poolAt === null) {
    const buf = Buffer.allocUnsafe(len);
    memcpyTo(buf, ptr, len);
    return buf;
  }
  const start = poolOffset;
  memcpyAt(poolAt + start, ptr, len);
  poolOffset = (start + len + 7) & ~7; // 8-byte aligned slices, as Node's pool
  return pool.subarray(start, start + len);
}

// Outgoing data is copied by the library before wsffi_send returns, so small messages go
// through one scratch area whose address is known: a string is encoded straight into it and
// koffi passes a number instead of taking a Buffer apart on every call.
const SCRATCH_SIZE = 64 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE);
const scratchAt = addressOf(scratch);

// Sends `data` (a string, or a Buffer / typed array view) as one message or fragment.
function sendBytes(conn, kind, data, fin, fragment) {
  let len;
  if (scratchAt !== null) {
    if (typeof data === 'string') {
      if (data.length * 3 <= SCRATCH_SIZE) len = scratch.write(data);
    } else if (data.length <= SCRATCH_SIZE) {
      scratch.set(data, 0);
      len = data.length;
    }
  }
  if (len !== undefined) {
    return fragment ? api.sendFragmentAt(conn, kind, scratchAt, len, fin) : api.sendAt(conn, kind, scratchAt, len);
  }
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return fragment ? api.sendFragment(conn, kind, buf, buf.length, fin) : api.send(conn, kind, buf, buf.length);
}

// ---- main-thread hand-over -------------------------------------------------------------
const uv = {
  defaultLoop: self.func('void *uv_default_loop(void)'),
  asyncInit: self.func('int uv_async_init(void *loop, void *h, wsffi_uv_async_cb *cb)'),
  ref: self.func('void uv_ref(void *h)'),
  unref: self.func('void uv_unref(void *h)'),
  close: self.func('void uv_close(void *h, void *cb)'),
};
const dl = {
  open: libc.func('void *dlopen(const char *f, int flags)'),
  sym: libc.func('void *dlsym(void *h, const char *name)'),
};

let reactor = null;
let asyncHandle = null;
let live = 0;
const pendingErrors = [];

function report(err) {
  pendingErrors.push(err);
}

// wsffi_reactor_dispatch writes its count here (an address costs koffi less than an out array).
const ranBuf = Buffer.allocUnsafeSlow(8);
const ranAt = koffi.sizeof('size_t') === 8 && require('os').endianness() === 'LE' ? addressOf(ranBuf) : null;
const BATCH = 256;

function dispatchOnce() {
  if (ranAt === null) {
    const ran = [0];
    const st = api.dispatch(reactor, BATCH, ran);
    return st === 0 ? Number(ran[0]) : 0;
  }
  const st = api.dispatchAt(reactor, BATCH, ranAt);
  return st === 0 ? Number(ranBuf.readBigUInt64LE(0)) : 0;
}

function pump() {
  while (dispatchOnce() >= BATCH);
  if (pendingErrors.length) {
    const errs = pendingErrors.splice(0);
    for (const e of errs) process.nextTick(() => { throw e; });
  }
}

api.dispatch = f('uint32_t wsffi_reactor_dispatch(void *r, size_t max, _Out_ size_t *ran)');
api.dispatchAt = f(`uint32_t wsffi_reactor_dispatch(void *r, size_t max, ${U} ran)`);
const reactorNew = f('uint32_t wsffi_reactor_new(void *o, _Out_ void **r, _Out_ void **err)');
const roptNew = f('void *wsffi_reactor_options_new(void)');
const roptFree = f('void wsffi_reactor_options_free(void *o)');
const roptWake = f('uint32_t wsffi_reactor_options_set_wake(void *o, void *wake, void *user, void *destroy)');

const asyncCb = koffi.register(() => {
  try { pump(); } catch (e) { process.nextTick(() => { throw e; }); }
}, koffi.pointer(P.asyncCb));

function getReactor() {
  if (reactor) return reactor;
  asyncHandle = koffi.alloc('uint8_t', 512); // >= sizeof(uv_async_t); never freed
  if (uv.asyncInit(uv.defaultLoop(), asyncHandle, asyncCb) !== 0) throw new Error('uv_async_init failed');
  uv.unref(asyncHandle);
  // Once exiting, no JS may run from the loop: close the handle (its memory stays valid for
  // late wakes from the reactor thread).
  process.once('exit', () => { uv.close(asyncHandle, null); });
  const wake = dl.sym(dl.open(null, 2), 'uv_async_send');
  if (!wake) throw new Error('uv_async_send not found in the node binary');
  const o = roptNew();
  roptWake(o, wake, asyncHandle, null);
  const out = [null];
  const err = [null];
  const st = reactorNew(o, out, err);
  roptFree(o);
  if (st !== 0) throw statusError(st, takeError(err));
  reactor = out[0];
  return reactor;
}

function ref() { if (live++ === 0) uv.ref(asyncHandle); }
function unref() { if (--live === 0) uv.unref(asyncHandle); }

function register(fn, proto) { return koffi.register(fn, koffi.pointer(proto)); }

module.exports = {
  koffi, api, P, CloseInfo, ConnCallbacks, ServerCallbacks, DeflateParams,
  statusError, takeError, bytes, sendBytes, getReactor, ref, unref, register, report, libraryPath,
};
