// Chat peer `socketio-node-pg`: what most teams build instead of us. Node socket.io rooms
// with the `pg` package; every message is INSERTed into PostgreSQL (one statement, committed
// on its own) and only then emitted to the room, the sender included (io.to, not
// socket.to), exactly as benchmarks/peers/socketio_node/server.js does without storage.
// "join" (room) -> the socket joins the room, server emits "joined";
// "publish" ({room, content}) -> INSERT ... awaited -> io.to(room).emit("message", data).
// DATABASE_URL: postgresql://... (the harness creates a fresh database and drops it after).
// GET /healthz answers 200 once the table exists.
"use strict";

const http = require("node:http");
const { Pool } = require("pg");
const { Server } = require("socket.io");

function parsePort(argv) {
  const i = argv.indexOf("--port");
  if (i < 0 || !argv[i + 1]) throw new Error("usage: node server_pg.js --port PORT [--host HOST]");
  return Number(argv[i + 1]);
}

const port = parsePort(process.argv);
const hostIndex = process.argv.indexOf("--host");
const host = hostIndex >= 0 ? process.argv[hostIndex + 1] : "127.0.0.1";

// pg's own default pool size, stated: ten connections keep commits of concurrent messages
// in flight together (PostgreSQL then flushes them with one WAL fsync), and more would only
// add backends competing for the same two cores.
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 });

// A named statement is parsed and planned once per connection, then only bound: pg's
// fastest path for a query repeated with new values.
const INSERT = {
  name: "insert-message",
  text: "INSERT INTO messages (room, content) VALUES ($1, $2)",
};

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS messages (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
`;

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
  socket.on("publish", async (data) => {
    try {
      await pool.query({ ...INSERT, values: [data.room, data.content] });
    } catch (err) {
      // Not stored, so not delivered: the load generator counts it as lost.
      console.error(`insert failed: ${err.message}`);
      return;
    }
    io.to(data.room).emit("message", data);
  });
});

pool
  .query(SCHEMA)
  .then(() => httpServer.listen(port, host))
  .catch((err) => {
    console.error(`schema failed: ${err.message}`);
    process.exit(1);
  });

// The harness drops the database after SIGTERM (WITH (FORCE)): no need to drain the pool.
process.on("SIGTERM", () => process.exit(0));
