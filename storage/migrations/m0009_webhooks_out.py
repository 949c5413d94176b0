"""Outgoing webhooks (Standard Webhooks): endpoints, the event outbox, deliveries, attempts.

`webhook_events` holds each event's JSON body once, written in the same transaction as
the change that caused it; `webhook_deliveries` is one row per (endpoint, event) that is
still to be sent or was sent (the event id is the `webhook-id`, the same on every retry).
`webhook_attempts` keeps each try for `GET /api/webhooks/{id}/deliveries`.
"""

STATEMENTS = [
    """CREATE TABLE webhook_endpoints (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        description TEXT,
        -- Subscribed event types, comma separated with a comma at each end (",a,b,").
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        -- After a rotation the previous secret also signs until old_secret_until.
        old_secret TEXT,
        old_secret_until BIGINT,
        enabled INTEGER NOT NULL,
        -- Start of the current run of failures; NULL after a success.
        failing_since BIGINT,
        disabled_reason TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    """CREATE TABLE webhook_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )""",
    """CREATE TABLE webhook_deliveries (
        endpoint_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        -- pending, delivered
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        -- Also the claim: a worker moves it past its lease before sending.
        next_attempt_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (endpoint_id, event_id)
    )""",
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
    """CREATE TABLE webhook_attempts (
        endpoint_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at BIGINT NOT NULL,
        ok INTEGER NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at)",
]
