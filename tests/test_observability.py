"""Metrics, request ids, structured logs and Sentry scrubbing."""

from __future__ import annotations

import json

import httpx

from server.sentry import scrub
from tests.servers import ServerProcess, conversation, uid, ws_client


async def test_metrics_show_live_figures(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        await a.send({"type": "send", "conversationId": conv, "content": "count me"})
        await b.messages(1)
        async with httpx.AsyncClient(base_url=server.url) as http:
            text = (await http.get("/metrics")).text
    figures = {
        # The value is after the last space: label values may hold spaces.
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert figures["pitchey_ws_connections"] >= 2
    assert figures["pitchey_rooms_active"] >= 1
    assert figures["pitchey_messages_stored_total"] >= 1
    assert figures["pitchey_ws_frames_out_total"] >= 2
    assert figures["pitchey_fanout_seconds_count"] >= 1
    # Delivery queues are sampled at scrape time (nothing waits in this idle server).
    assert figures['pitchey_delivery_queue_depth{queue="email"}'] == 0
    assert 'pitchey_delivery_queue_oldest_seconds{queue="notification_email"}' in figures


async def test_rest_answers_carry_a_request_id_that_the_logs_repeat(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        mine = await http.get(
            "/api/messages/conversations", headers={"X-Request-Id": "req-abc-123"}
        )
        generated = await http.get("/api/messages/nothing/here/at/all")
    assert mine.headers["x-request-id"] == "req-abc-123"
    assert len(generated.headers["x-request-id"]) == 16


async def test_log_lines_are_json_objects(server: ServerProcess) -> None:
    lines = [line for line in server.log_tail(200_000).splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    entry = json.loads(lines[-1])
    assert {"ts", "level", "logger", "message"} <= set(entry)


def test_sentry_events_lose_bodies_tokens_and_locals() -> None:
    event = {
        "request": {
            "data": '{"content": "secret pitch"}',
            "headers": {"Authorization": "Bearer abc", "User-Agent": "x"},
            "query_string": "token=eyJhbGci.x.y&a=1",
        },
        "exception": {"values": [{"stacktrace": {"frames": [{"vars": {"content": "secret"}}]}}]},
        "extra": {"body": "secret"},
    }
    cleaned = json.dumps(scrub(event))
    assert "secret" not in cleaned and "eyJhbGci" not in cleaned and "Bearer abc" not in cleaned
