"""Email delivery: the outbox, its event history, suppressions and idempotency keys."""

STATEMENTS = [
    """CREATE TABLE emails (
        id TEXT PRIMARY KEY,
        -- queued, sending, sent, deferred, delivered, opened, clicked, bounced, dropped,
        -- spam_report, failed, suppressed (schemas.delivery.DeliveryStatus).
        status TEXT NOT NULL,
        -- The rendered OutgoingEmail as JSON: what is sent is fixed at accept time.
        payload TEXT NOT NULL,
        recipient TEXT NOT NULL,
        category TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        -- A claim is a lease: once claim_expires_at passes, another worker may take it.
        claimed_by TEXT,
        claim_expires_at BIGINT,
        provider TEXT,
        -- Where the next attempt must go (ambiguous timeouts stay on one provider).
        retry_provider TEXT,
        provider_message_id TEXT,
        last_error TEXT,
        -- Caller-scoped dedupe key of an internal submission ("caller|key").
        idempotency TEXT UNIQUE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    "CREATE INDEX emails_due ON emails (status, next_attempt_at)",
    "CREATE INDEX emails_provider_message ON emails (provider_message_id)",
    "CREATE INDEX emails_dev ON emails (provider, created_at)",
    """CREATE TABLE email_suppressions (
        email TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        provider TEXT,
        created_at BIGINT NOT NULL
    )""",
    """CREATE TABLE email_idempotency (
        caller TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (caller, idem_key)
    )""",
    "CREATE INDEX email_idempotency_age ON email_idempotency (created_at)",
]

# The event history needs an insertion order; the auto-increment syntax differs.
_EVENTS = """CREATE TABLE email_events (
        seq {seq},
        email_id TEXT NOT NULL REFERENCES emails(id),
        type TEXT NOT NULL,
        at BIGINT NOT NULL,
        detail TEXT,
        -- Provider events carry a key stable across webhook retries; ours have none.
        dedupe_key TEXT UNIQUE
    )"""
_EVENTS_INDEX = "CREATE INDEX email_events_email ON email_events (email_id, seq)"

SQLITE = [_EVENTS.format(seq="INTEGER PRIMARY KEY AUTOINCREMENT"), _EVENTS_INDEX]
POSTGRES = [_EVENTS.format(seq="BIGSERIAL PRIMARY KEY"), _EVENTS_INDEX]
