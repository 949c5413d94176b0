"""Attachment metadata; the bytes live in object storage under `object_key`."""

STATEMENTS = [
    """CREATE TABLE attachments (
        id TEXT PRIMARY KEY,
        -- 'message' or 'email': which bucket holds the bytes.
        kind TEXT NOT NULL,
        object_key TEXT NOT NULL,
        uploader_id TEXT NOT NULL,
        -- The conversation a message attachment was uploaded for; NULL for email.
        conversation_id TEXT,
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size BIGINT NOT NULL DEFAULT 0,
        sha256 TEXT,
        created_at BIGINT NOT NULL,
        -- NULL until the bytes are stored and checked (a direct upload: until confirmed).
        uploaded_at BIGINT,
        -- Set when a message (or email) takes the upload; each upload is taken once.
        claimed_at BIGINT,
        -- Who took it: the sender's clientMsgId, so a retried send takes it again.
        claim_ref TEXT,
        message_id TEXT
    )""",
    "CREATE INDEX attachments_unclaimed ON attachments (claimed_at, created_at)",
]
