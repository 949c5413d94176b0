"""Web Push: browser subscriptions, the durable push outbox, unread-message push marks.

`push_subscriptions` is one row per browser push endpoint (unique: the same endpoint
registered again updates its row). `push_outbox` holds each push still to be sent, one
row per subscription, written in the transaction that accepted the notification (or the
unread-message scan's mark), and deleted once the push service took it or refused it
for good. `push_unread_marks` records, per user and conversation, the last message seq
a push covered (or that needed none) and when the last push went, for coalescing.
`notification_preferences.push`: NULL means the type's default.
"""

STATEMENTS = [
    """CREATE TABLE push_subscriptions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        endpoint TEXT NOT NULL UNIQUE,
        -- The browser's keys (base64url, unpadded): P-256 public point and auth secret.
        p256dh TEXT NOT NULL,
        auth TEXT NOT NULL,
        user_agent TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    "CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id, updated_at)",
    """CREATE TABLE push_outbox (
        id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        -- The JSON the service worker receives, before encryption.
        payload TEXT NOT NULL,
        urgency TEXT NOT NULL,
        ttl INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at BIGINT NOT NULL,
        -- Past this nobody wants the push any more (due_at + ttl): dropped, not retried.
        expires_at BIGINT NOT NULL,
        -- The sender holding the row until claimed_until (a crashed one's lease lapses).
        claimed_by TEXT,
        claimed_until BIGINT NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at BIGINT NOT NULL
    )""",
    "CREATE INDEX push_outbox_due ON push_outbox (due_at)",
    "CREATE INDEX push_outbox_subscription ON push_outbox (subscription_id)",
    """CREATE TABLE push_unread_marks (
        user_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        pushed_seq BIGINT NOT NULL,
        pushed_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    )""",
    "ALTER TABLE notification_preferences ADD COLUMN push INTEGER",
]
