'use strict';
const { Duplex } = require('stream');

// A Duplex over a WebSocket: written chunks become messages, messages become readable data.
function createWebSocketStream(ws, options) {
  const duplex = new Duplex({ ...options, autoDestroy: false, emitClose: false, objectMode: false, writableObjectMode: false });
  ws.on('message', (msg, isBinary) => {
    const data = !isBinary && duplex._readableState.objectMode ? msg.toString() : msg;
    if (!duplex.push(data)) ws.pause();
  });
  ws.once('error', (err) => duplex.destroy(err));
  ws.once('close', () => { duplex.push(null); duplex.destroy(); });
  duplex._read = () => { if (ws.isPaused) ws.resume(); };
  duplex._write = (chunk, enc, cb) => {
    if (ws.readyState === ws.CONNECTING) { ws.once('open', () => duplex._write(chunk, enc, cb)); return; }
    ws.send(chunk, cb);
  };
  duplex._final = (cb) => {
    if (ws.readyState === ws.CONNECTING) { ws.once('open', () => duplex._final(cb)); return; }
    ws.once('close', () => cb());
    ws.close();
  };
  duplex._destroy = (err, cb) => {
    if (ws.readyState !== ws.CLOSED) ws.terminate();
    cb(err);
  };
  return duplex;
}

module.exports = { createWebSocketStream };
