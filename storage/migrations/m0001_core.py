"""Users, conversations, participants, messages and read positions."""

STATEMENTS = [
    """CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT,
        name TEXT,
        timezone TEXT,
        locale TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT,
        metadata TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        -- last_seq is the sequence allocator: incremented under the row lock, so
        -- seq stays gap-free and unique with several writers.
        last_seq BIGINT NOT NULL DEFAULT 0,
        last_message_id TEXT,
        last_activity_at BIGINT NOT NULL,
        -- "a|b" for an untitled two-person conversation, so it is found instead of duplicated.
        direct_key TEXT UNIQUE
    )""",
    """CREATE TABLE participants (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        user_id TEXT NOT NULL,
        read_seq BIGINT NOT NULL DEFAULT 0,
        joined_at BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, user_id)
    )""",
    "CREATE INDEX participants_user ON participants (user_id)",
    """CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq BIGINT NOT NULL,
        sender_id TEXT NOT NULL,
        content TEXT NOT NULL,
        client_msg_id TEXT,
        attachments TEXT,
        created_at BIGINT NOT NULL,
        UNIQUE (conversation_id, seq)
    )""",
    "CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_msg_id)",
    "CREATE INDEX conversations_activity ON conversations (last_activity_at, id)",
]
