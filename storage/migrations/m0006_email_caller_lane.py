"""Emails remember who submitted them and which send lane they wait in.

`caller`: the service or admin user id that submitted the email through the API; a
service caller sees only its own emails' status. NULL for emails the service made itself
(notifications) and for rows from before this migration: only admins see those.

`lane`: `main` (everything else, NDA and investment emails among them) or `bulk`
(unread-message and digest emails). Workers claim the main lane first and each lane has
its own send budget, so a flood of bulk emails never delays a critical one.
"""

STATEMENTS = [
    "ALTER TABLE emails ADD COLUMN caller TEXT",
    "ALTER TABLE emails ADD COLUMN lane TEXT NOT NULL DEFAULT 'main'",
    "CREATE INDEX emails_lane_due ON emails (lane, status, next_attempt_at)",
]
