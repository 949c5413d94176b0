"""The validated shape of the service's settings.

`server.settings` reads the environment once and converts it into this Struct;
msgspec checks every constraint, so a bad value fails at start with the
variable's name in the message.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Positive = Annotated[int, Meta(gt=0)]
NonNegative = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(gt=0)]

# REDIS_URL schemes that mean a Redis Cluster (the same as REDIS_CLUSTER=true).
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")

# The one definition of SendGrid's address; the provider and the setting both use it.
SENDGRID_API_URL = "https://api.sendgrid.com"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Where data lives. The default is a SQLite file so one process runs with no other service.
    database_url: str = "sqlite:///./data/pitchey.db"
    data_dir: str = "./data"
    jwt_secret: str = ""
    redis_url: str = ""
    # Redis key and channel prefix, so several deployments (or test runs) share one Redis.
    redis_prefix: str = "pitchey:"
    # "*" allows every Origin; otherwise a comma-separated list. Same-origin is always allowed.
    allowed_origins: tuple[str, ...] = ()
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # JSON lines for log collectors; "text" for a person reading a terminal.
    log_format: Literal["json", "text"] = "json"
    # Errors go to Sentry when set (no secrets, tokens or message bodies are sent).
    sentry_dsn: str = ""

    # WebSocket limits.
    # 64 KiB: a chat message is text; anything bigger is a client bug or an attack.
    ws_max_frame_bytes: Positive = 64 * 1024
    # A session's send queue: a client that cannot keep up is disconnected once
    # either bound is reached, instead of growing the server's memory.
    ws_send_queue_max_frames: Positive = 1000
    ws_send_queue_max_bytes: Positive = 4 * 1024 * 1024
    # Protocol-level ping: detects dead peers behind NATs and idle proxies.
    ws_ping_interval: Seconds = 20.0
    ws_ping_timeout: Seconds = 20.0
    # A connection that sends no frame at all for this long is closed (1001). 0 disables.
    ws_idle_timeout: Annotated[float, Meta(ge=0)] = 300.0
    # Replays larger than this are not sent; the client pages history over REST.
    ws_max_replay: Positive = 500
    # Our uvicorn protocol subclass (server/transport.py) writes prebuilt fan-out frames
    # straight to sockets. False runs uvicorn's own protocol instead (sessions drain
    # through ASGI): slower fan-out, no reliance on uvicorn internals.
    ws_fast_path: bool = True
    # A typing indicator expires by itself unless refreshed:
    # a vanished client never types forever.
    typing_ttl: Seconds = 6.0

    # Messages: the seed's 50 per minute per user. 0 disables the limit.
    message_rate_limit_per_minute: NonNegative = 50
    message_max_chars: Positive = 10_000
    # Group commit: a batch is written once it has this many messages or as soon as the
    # previous commit ends, whichever comes first.
    message_batch_max: Positive = 500
    # The seed caches conversation lists for 5 minutes; every write that changes one invalidates it.
    conversation_cache_ttl: Seconds = 300.0
    # Presence heartbeat (multi-process): a process that dies stops counting as online after this.
    presence_ttl: Seconds = 30.0
    # Presence frames are coalesced: at most one per room per interval, carrying the joins
    # and leaves since the last; above the member bound, only the online count.
    presence_flush_interval: Seconds = 0.25
    presence_broadcast_max_members: Positive = 100
    # A fan-out to a larger room hands the frame to this many sessions, lets the event loop
    # run, then goes on (rooms/actor.py): timers and other connections wait ~1.5 ms at most.
    ws_fanout_slice: Positive = 128

    # Email delivery (seed: 20 per batch or every 15 s; 100/min and 1000/h).
    email_batch_size: Positive = 20
    email_batch_timeout: Seconds = 15.0
    email_max_attempts: Positive = 8
    email_retry_base: Seconds = 2.0
    email_retry_cap: Seconds = 600.0
    email_claim_ttl: Seconds = 120.0
    email_send_concurrency: Positive = 10
    # Circuit breaker on the primary provider: this many failures in a row send mail
    # through the fallback for the cool-down, then one probe tries the primary again.
    email_breaker_threshold: Positive = 5
    email_breaker_cooldown: Seconds = 60.0
    email_rate_limit_per_minute: NonNegative = 100
    email_rate_limit_per_hour: NonNegative = 1000
    # Largest email accepted, as the primary provider counts it (attachments in base64);
    # 0: the provider's own limit (SendGrid 30 MB, SES 10 MB). It can only lower that.
    email_max_message_bytes: NonNegative = 0
    email_template_dir: str = ""
    email_template_ttl: Seconds = 3600.0
    sendgrid_api_key: str = ""
    sendgrid_api_url: str = SENDGRID_API_URL
    sendgrid_from_email: str = "noreply@pitchey.com"
    sendgrid_from_name: str = "Pitchey"
    sendgrid_webhook_public_key: str = ""
    sendgrid_timeout: Seconds = 10.0
    aws_ses_access_key: str = ""
    aws_ses_secret_key: str = ""
    aws_ses_region: str = "us-east-1"
    aws_ses_from_email: str = ""
    aws_ses_from_name: str = ""
    aws_ses_endpoint_url: str = ""
    # SES configuration set named on every send (event publishing to SNS, dedicated IPs).
    aws_ses_configuration_set: str = ""
    ses_sns_topic_arns: tuple[str, ...] = ()
    ses_sns_cert_host_pattern: str = ""

    # Notifications (seed: 10 per batch or every 30 s; 100 per minute per user).
    notification_batch_size: Positive = 10
    notification_batch_timeout: Seconds = 30.0
    notification_rate_limit_per_minute: NonNegative = 100
    preferences_cache_ttl: Seconds = 900.0
    unread_email_delay: Seconds = 600.0
    digest_hour: Annotated[int, Meta(ge=0, le=23)] = 8
    # The web app's address: links in notification emails point into it.
    app_url: str = "https://pitchey.com"

    # Attachments.
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    message_attachments_bucket: str = "pitchey-message-attachments"
    email_attachments_bucket: str = "pitchey-email-attachments"
    attachment_max_bytes: Positive = 25 * 1024 * 1024
    attachment_allowed_types: tuple[str, ...] = ()
    # Presigned links are bearer credentials: a download link lives a minute, an upload
    # link long enough for a slow connection to send ATTACHMENT_MAX_BYTES.
    attachment_url_ttl: Positive = 60
    attachment_upload_url_ttl: Positive = 900
    # Uploads no message took are removed after a day (the seed's rule); checked hourly.
    attachment_unattached_ttl: Seconds = 86400.0
    attachment_sweep_interval: Seconds = 3600.0

    # ---- HTTP edge limits (docs/security.md) ----
    # Bodies are counted while they stream in; past the route's limit the answer is 413.
    max_body_bytes: Positive = 1024 * 1024
    # /api/email/send and /api/email/batch: 1000 templated emails, or attachments in base64.
    email_max_body_bytes: Positive = 30 * 1024 * 1024
    # Provider webhooks (unauthenticated until verified) post a few thousand small events.
    webhook_max_body_bytes: Positive = 5 * 1024 * 1024
    # Free-form JSON fields (conversation metadata, notification and template data):
    # nesting depth and encoded size, checked at decode time (422 above).
    # At most 64: storage shows rows nested deeper than that as null (storage/messages.py).
    json_max_depth: Annotated[int, Meta(gt=0, le=64)] = 8
    json_field_max_bytes: Positive = 16 * 1024
    # Request line plus headers, in total; above it the answer is 431 and the connection closes.
    http_max_header_bytes: Positive = 16 * 1024
    # A request's line and headers must arrive within this; else the connection is closed.
    http_header_timeout: Seconds = 10.0
    # Plain HTTP requests in flight in one process (WebSockets are not counted); past it 503.
    http_max_concurrency: Positive = 2000

    # ---- Real-time abuse limits (docs/security.md) ----
    # Sockets one user may hold open at once, across every node when Redis is configured.
    ws_max_connections_per_user: Positive = 20
    # Conversations one connection may be subscribed to: each costs a room and a task.
    ws_max_subscriptions: Positive = 500
    # A typing frame is relayed at most once per this many seconds per user and
    # conversation; the rest are dropped (the indicator lasts TYPING_TTL anyway).
    typing_relay_interval: Annotated[float, Meta(ge=0)] = 1.0
    # One-use tickets for `/ws?ticket=`: a browser never puts its long-lived token in a URL.
    ws_ticket_ttl: Seconds = 30.0
    # Conversations one user may create per minute (0 disables), and their largest size.
    conversation_create_rate_per_minute: NonNegative = 20
    conversation_max_participants: Annotated[int, Meta(ge=2)] = 1000

    # ---- Delivery abuse limits (docs/security.md) ----
    # The bulk lane (unread-message and digest emails) has a send budget of its own, on top
    # of EMAIL_RATE_LIMIT_*: a flood of it can never delay an NDA or investment email.
    email_bulk_rate_limit_per_minute: NonNegative = 50
    email_bulk_rate_limit_per_hour: NonNegative = 500

    # ---- Storage, webhooks and secrets (docs/security.md) ----
    # Which email provider this deployment means to use. "": chosen from the keys that are
    # set (the dev provider when none; refused in production). "sendgrid" / "ses": that
    # provider's keys must be set. "dev": log emails instead of sending, said explicitly
    # (no provider key may be set), the only way to run production without a provider.
    email_provider: Literal["", "sendgrid", "ses", "dev"] = ""
    # Serve /metrics on this port only (a second, small server; not on the main port).
    # 0: on the main port, open in development and behind an admin token in production.
    metrics_port: Annotated[int, Meta(ge=0, le=65535)] = 0
    # Interface of the metrics server; the default keeps it off every other machine.
    metrics_host: str = "127.0.0.1"

    # ---- Outages (docs/operations.md) ----
    # Every storage and broker call a room makes (its last seq at start, a subscribe's replay,
    # a catch-up, presence): past this the call counts as failed, so a database or Redis that
    # hangs cannot hang a room.
    room_io_timeout: Seconds = 5.0
    # How long a subscribe waits for its room to answer before it is told `unavailable`;
    # longer than ROOM_IO_TIMEOUT, so a slow read is answered by the room itself.
    room_join_timeout: Seconds = 10.0
    # The `retryAfter` hint on `unavailable` answers: a random value between this and
    # twice this, so clients told at the same moment do not come back at the same moment.
    outage_retry_after: Seconds = 2.0
    # How long /readyz waits for its database checks (a read and, after a failed commit,
    # a write probe) before it answers 503.
    readiness_timeout: Seconds = 2.0

    # ---- Runtime: garbage collection (server/runtime.py) ----
    # Freeze long-lived objects (after start-up and after each settled burst of connections)
    # so full collections walk only what is new.
    gc_freeze: bool = True
    gc_gen0_threshold: Positive = 10_000
    gc_freeze_after_connections: Positive = 200

    # ---- Webhooks out (README "Webhooks out"; docs/security.md) ----
    # The first retry of a failed webhook waits about this long; each next one twice as
    # long (with jitter), at most WEBHOOK_RETRY_CAP.
    webhook_retry_base: Seconds = 5.0
    webhook_retry_cap: Seconds = 86400.0
    # How often the sender looks for due webhooks (its batch interval).
    webhook_batch_timeout: Seconds = 1.0
    webhook_batch_size: Positive = 50
    # Per attempt: connect, send and read the answer.
    webhook_timeout: Seconds = 10.0
    # An endpoint failing without a success for this long is disabled (5 days).
    webhook_disable_after: Seconds = 432000.0
    # Let webhooks reach private, loopback and link-local addresses (tests, not production).
    webhook_allow_private: bool = False

    # ---- Email templates and unsubscribe (README "Email templates") ----
    # This service's public base URL, for the List-Unsubscribe link in emails. Empty:
    # APP_URL, for deployments where the web app's origin proxies /api to this service;
    # set it when the service has a host of its own (https://comms.example.com).
    public_url: str = ""

    # ---- Conversation lifecycle (edits, deletions, members) ----
    # How long after sending a message its sender may edit it (seconds; 0: always).
    message_edit_window: Annotated[float, Meta(ge=0)] = 172_800.0

    # ---- Redis Cluster (docs/operations.md "Redis Cluster") ----
    # REDIS_URL names one node of a Redis Cluster (>= 7): commands follow the slot map and
    # pub/sub is sharded (SSUBSCRIBE/SPUBLISH). A `redis+cluster://` URL means the same.
    redis_cluster: bool = False

    @property
    def redis_cluster_mode(self) -> bool:
        return self.redis_cluster or self.redis_url.startswith(CLUSTER_SCHEMES)

    @property
    def redis_node_url(self) -> str:
        """REDIS_URL as redis-py spells it: the `+cluster` of the scheme removed."""
        for scheme in CLUSTER_SCHEMES:
            if self.redis_url.startswith(scheme):
                return scheme.replace("+cluster", "") + self.redis_url[len(scheme) :]
        return self.redis_url

    # ---- Web Push (README "Web Push"; docs/security.md) ----
    # VAPID keys as browsers use them (base64url, unpadded): the 65-byte uncompressed P-256
    # public point and the 32-byte private scalar (`pitchey-comms vapid` makes a pair).
    # Without both, push is off. The subject (mailto: or https:) tells push services whom
    # to contact about this sender.
    vapid_public_key: str = ""
    vapid_private_key: str = ""
    vapid_subject: str = ""
    # At most one unread-message push per user and conversation per this many seconds.
    push_unread_coalesce: Annotated[float, Meta(ge=0)] = 60.0
    # How often the push sender and the unread-message scan look for work (a new
    # notification's push wakes the local sender at once).
    push_batch_timeout: Seconds = 1.0
    # The first retry of a push the push service refused for now (429, 5xx, no answer)
    # waits about this long; each next one twice as long, or what Retry-After asks.
    push_retry_base: Seconds = 5.0
    # Let pushes reach private, loopback and link-local addresses (tests only).
    push_allow_private: bool = False

    # ---- Operations alerts ----
    # Users notified (type `webhook_disabled`, in-app, email, push) when an outgoing
    # webhook endpoint is disabled; comma-separated user ids. Empty: only the log says so.
    admin_user_ids: tuple[str, ...] = ()

    # ---- Retention and erasure (README "Retention and erasure"; docs/security.md) ----
    # Messages older than this many days are erased by a background sweep (fractions
    # allowed: 0.5 is twelve hours). 0 keeps messages forever.
    message_retention_days: Annotated[float, Meta(ge=0)] = 0.0
    # How often each process runs the retention sweep (seconds).
    message_retention_sweep_interval: Seconds = 3600.0
    # An export (GET /api/users/{id}/export) that takes longer is cut off and says so
    # (`"complete": false`): one request cannot hold a connection and the database for long.
    user_export_timeout: Seconds = 120.0

    # ---- Blocks (docs/protocol.md "Blocks") ----
    # Users one user may block. Whom a user blocks is held by every room their sessions are
    # in and carried by the notice of each change, so it must stay small; a thousand is far
    # beyond what a person blocks by hand.
    blocks_max_per_user: Positive = 1000

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def development(self) -> bool:
        return self.environment != "production"
