"""Retention and erasure.

`conversations.retained_after_seq`: the highest seq the retention sweep erased in that
conversation. A subscribe whose `since` is below it cannot be replayed (what it missed is
gone without events) and answers `recovered: false`.

`messages_live_age`: the sweep's index, partial so that the tombstones it leaves behind
are never walked again.

`user_erasures`: one row per erasure request, written before DELETE /api/users/{id} answers
202 and worked off by whichever process holds its lease, so an erasure finishes after a
kill -9. `address` is the directory's address at request time (the outbox is searched by
it after the directory entry is gone); it is cleared when the erasure completes.

The two indexes below serve the erasure: the outbox by recipient, blocks of a user by others.
"""

STATEMENTS = [
    "ALTER TABLE conversations ADD COLUMN retained_after_seq BIGINT NOT NULL DEFAULT 0",
    "CREATE INDEX messages_live_age ON messages (created_at) WHERE deleted_at IS NULL",
    """CREATE TABLE user_erasures (
        user_id TEXT PRIMARY KEY,
        -- pending, done
        status TEXT NOT NULL,
        address TEXT,
        requested_by TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        claimed_by TEXT,
        claimed_until BIGINT NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        completed_at BIGINT
    )""",
    "CREATE INDEX user_erasures_due ON user_erasures (status, claimed_until)",
    "CREATE INDEX emails_recipient ON emails (LOWER(recipient))",
    "CREATE INDEX blocks_blocked ON blocks (blocked_id)",
]
