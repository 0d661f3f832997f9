'use strict';
const { WebSocket } = require('./websocket');
const { WebSocketServer } = require('./server');
const { createWebSocketStream } = require('./stream');

WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.createWebSocketStream = createWebSocketStream;
WebSocket.TextMessage = 1;
WebSocket.BinaryMessage = 2;
module.exports = WebSocket;
