"""Conversation lifecycle: edits, deletions and member changes share the message seq.

`conversation_changes`: one row per change that is not a new message (an edit, a deletion,
a member added, removed or left), keyed by the seq it took from `conversations.last_seq`.
Messages and changes together are gap-free in seq, so a replay reads both and merges them.
A change row holds no content: an edit is replayed with the message as it is now, so a
later deletion leaves no copy of the removed text behind.

`messages.edited_at` / `messages.deleted_at`: the current state that history shows.
`blocks`: who blocked whom. A blocked user cannot open or write in a direct conversation
with the blocker.
`participants.joined_seq`: the seq before which a member added without shared history
sees nothing (0: everything).
"""

STATEMENTS = [
    """CREATE TABLE conversation_changes (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        message_id TEXT,
        user_id TEXT,
        action TEXT,
        actor TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    )""",
    "ALTER TABLE messages ADD COLUMN edited_at BIGINT",
    "ALTER TABLE messages ADD COLUMN deleted_at BIGINT",
    "ALTER TABLE participants ADD COLUMN joined_seq BIGINT NOT NULL DEFAULT 0",
    """CREATE TABLE blocks (
        user_id TEXT NOT NULL,
        blocked_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, blocked_id)
    )""",
]
