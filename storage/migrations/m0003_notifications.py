"""Notifications: inbox, preferences, the email job queue, unread-message and digest bookkeeping."""

STATEMENTS = [
    """CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        type TEXT NOT NULL,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT,
        priority TEXT NOT NULL,
        -- 0 when the user switched the in-app channel off: kept for email and audit,
        -- never listed, counted or pushed.
        in_app INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        read_at BIGINT,
        -- What happened to the email channel: none, queued, delayed, folded, digest_daily,
        -- digest_weekly, digested, skipped_preference, skipped_no_address, sent, failed.
        email_status TEXT NOT NULL,
        email_id TEXT
    )""",
    "CREATE INDEX notifications_user ON notifications (user_id, in_app, created_at, id)",
    "CREATE INDEX notifications_unread ON notifications (user_id, in_app, read_at)",
    "CREATE INDEX notifications_email ON notifications (email_status, user_id)",
    """CREATE TABLE notification_preferences (
        user_id TEXT NOT NULL,
        type TEXT NOT NULL,
        in_app INTEGER NOT NULL,
        email INTEGER NOT NULL,
        frequency TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, type)
    )""",
    """CREATE TABLE notification_settings (
        user_id TEXT PRIMARY KEY,
        -- Minutes after local midnight; both NULL means no quiet hours.
        quiet_start INTEGER,
        quiet_end INTEGER,
        -- NULL: the user directory's timezone, else UTC.
        timezone TEXT,
        updated_at BIGINT NOT NULL
    )""",
    # The durable email job queue: a row exists before the API answers 202.
    """CREATE TABLE notification_jobs (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        notification_id TEXT,
        template TEXT NOT NULL,
        data TEXT NOT NULL,
        category TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        due_at BIGINT NOT NULL,
        claimed_by TEXT,
        claimed_until BIGINT NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    "CREATE INDEX notification_jobs_due ON notification_jobs (status, due_at)",
    # Unread-message emails: how far each participant has been emailed about ...
    """CREATE TABLE unread_email_marks (
        user_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        notified_seq BIGINT NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    )""",
    # ... and when each user was last emailed (at most one email per delay window).
    """CREATE TABLE unread_email_users (
        user_id TEXT PRIMARY KEY,
        last_sent_at BIGINT NOT NULL
    )""",
    # One row per user, period and window, inserted before the digest is queued:
    # the unique key is what makes a digest period impossible to send twice.
    """CREATE TABLE notification_digests (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        period TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        notification_count INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (user_id, period, window_start)
    )""",
    # Leases for work exactly one process may do at a time (the scheduler).
    """CREATE TABLE scheduler_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )""",
]
