// Client: sends each argument as a message and prints what comes back.
//   node examples/client.js ws://127.0.0.1:8080/ hello world
'use strict';
const WebSocket = require('wsffi');

const [url, ...messages] = process.argv.slice(2);
const ws = new WebSocket(url || 'ws://127.0.0.1:8080/');
let left = messages.length;
ws.on('open', () => {
  if (left === 0) ws.close(1000);
  for (const m of messages) ws.send(m);
});
ws.on('message', (data) => {
  console.log(data.toString());
  if (--left === 0) ws.close(1000, 'done');
});
ws.on('close', (code) => console.log(`closed ${code}`));
ws.on('error', (err) => { console.error(err.message); process.exitCode = 1; });
