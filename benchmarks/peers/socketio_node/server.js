// Peer (d): Node socket.io with rooms. Same events as benchmarks/peers/socketio_server.py:
// "join" (room) -> socket joins the room, server emits "joined"; "publish" ({room, content})
// -> server emits "message" to the room. Stores nothing. GET /healthz answers 200.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function parsePort(argv) {
  const i = argv.indexOf("--port");
  if (i < 0 || !argv[i + 1]) throw new Error("usage: node server.js --port PORT [--host HOST]");
  return Number(argv[i + 1]);
}

const port = parsePort(process.argv);
const hostIndex = process.argv.indexOf("--host");
const host = hostIndex >= 0 ? process.argv[hostIndex + 1] : "127.0.0.1";

const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
  }
});

// websocket only: the harness never long-polls. perMessageDeflate is off by default.
const io = new Server(httpServer, { transports: ["websocket"], serveClient: false });

io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.join(room);
    socket.emit("joined", room);
  });
  socket.on("publish", (data) => {
    io.to(data.room).emit("message", data);
  });
});

httpServer.listen(port, host);
process.on("SIGTERM", () => process.exit(0));
