"""Prometheus metrics of the real-time side. Counted once per event, never per session."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

connections = Gauge("pitchey_ws_connections", "Open WebSocket connections")
rooms_active = Gauge("pitchey_rooms_active", "Room actors running in this process")
messages_stored = Counter("pitchey_messages_stored_total", "Messages stored (group commits)")
commit_batch = Histogram(
    "pitchey_message_commit_batch_size",
    "Messages per group-commit transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
frames_in = Counter("pitchey_ws_frames_in_total", "Frames received from clients")
frames_out = Counter("pitchey_ws_frames_out_total", "Frames queued or written to clients")
fanout_seconds = Histogram(
    "pitchey_fanout_seconds",
    "Time to hand one event to every local session of a room",
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
slow_consumer_disconnects = Counter(
    "pitchey_slow_consumer_disconnects_total", "Sessions closed because their send queue was full"
)
send_queue_drops = Counter(
    "pitchey_send_queue_dropped_frames_total", "Queued frames discarded when a session closed"
)
rate_limited = Counter("pitchey_rate_limited_total", "Requests refused by a rate limit", ["limit"])
