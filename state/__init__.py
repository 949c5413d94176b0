"""Short-lived state shared by rooms and delivery: caches, rate limits, presence,
connection counts and WebSocket tickets.

Each store is a small Protocol with two twins: in memory (one process) and in Redis
(many processes). `server.wiring` picks one set at start.
"""
