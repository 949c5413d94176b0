"""Notifications: REST bodies, responses and the two WebSocket frames (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from schemas.bounds import FreeJson
from schemas.frames import ServerFrame
from schemas.messages import Base, Id

NotificationType = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Channel = Literal["in-app", "email", "push"]
Priority = Literal["low", "normal", "high", "critical"]
Frequency = Literal["instant", "daily", "weekly", "off"]
Title = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=2000)]
# "HH:MM", 24-hour clock, in the user's timezone.
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Locale = Annotated[str, Meta(max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# A platform call addresses at most this many users; larger audiences are split by the caller.
MAX_RECIPIENTS = 5000
# Types in one preferences PUT: far more than the known types, far less than a flood.
MAX_PREFERENCE_TYPES = 100


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Request bodies: an unknown field is a client bug worth a 422."""


# ---- views ------------------------------------------------------------------


class Notification(Base, kw_only=True):
    id: str
    user_id: str
    type: str
    title: str
    message: str
    data: dict[str, Any] | None
    priority: str
    created_at: str
    read_at: str | None = None
    # What happened to the email channel (see README "Notifications").
    email_status: str = "none"


class NotificationPage(Base, kw_only=True):
    items: list[Notification]
    next_cursor: str | None
    unread_count: int


class Accepted(Base, kw_only=True):
    ids: list[str]
    # Recipients over NOTIFICATION_RATE_LIMIT_PER_MINUTE: stored and pushed, email folded.
    rate_limited: list[str] = msgspec.field(default_factory=list)


class InboxCount(Base, kw_only=True):
    unread_count: int


class TypePreference(Base, kw_only=True):
    in_app: bool
    email: bool
    frequency: Frequency
    # Web Push to the user's subscribed browsers (README "Web Push").
    push: bool = False
    critical: bool = False


class QuietHours(Strict, kw_only=True):
    start: ClockTime
    end: ClockTime


class Preferences(Base, kw_only=True):
    types: dict[str, TypePreference]
    quiet_hours: QuietHours | None
    timezone: str


class UserProfile(Base, kw_only=True):
    id: str
    email: str | None
    name: str | None
    timezone: str | None
    locale: str | None


# ---- frames -----------------------------------------------------------------


class NotificationFrame(ServerFrame, tag="notification", kw_only=True):
    notification: Notification
    unread_count: int


class InboxFrame(ServerFrame, tag="inbox", kw_only=True):
    unread_count: int


# ---- requests ---------------------------------------------------------------


class SendNotification(Strict, kw_only=True):
    type: NotificationType
    title: Title
    message: Text
    user_id: Id | None = None
    user_ids: Annotated[list[Id], Meta(max_length=MAX_RECIPIENTS)] | None = None
    data: FreeJson | None = None
    channels: Annotated[list[Channel], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["in-app", "email", "push"]
    )
    priority: Priority = "normal"


class TypePreferencePatch(Strict, kw_only=True):
    in_app: bool | UnsetType = UNSET
    email: bool | UnsetType = UNSET
    push: bool | UnsetType = UNSET
    frequency: Frequency | UnsetType = UNSET
    # Read-only: GET shows it, and a PUT of what GET returned must succeed, so it is
    # accepted here and ignored (criticality is the service's rule, not a preference).
    critical: bool | UnsetType = UNSET


TypePatches = Annotated[
    dict[NotificationType, TypePreferencePatch], Meta(max_length=MAX_PREFERENCE_TYPES)
]


class PreferencesUpdate(Strict, kw_only=True):
    types: (
        Annotated[
            dict[NotificationType, TypePreferencePatch], Meta(max_length=MAX_PREFERENCE_TYPES)
        ]
        | UnsetType
    ) = UNSET
    # null clears the quiet hours.
    quiet_hours: QuietHours | UnsetType | None = UNSET
    timezone: Annotated[str, Meta(max_length=64)] | UnsetType | None = UNSET


class UserUpdate(Strict, kw_only=True):
    email: Email | UnsetType | None = UNSET
    name: Annotated[str, Meta(max_length=200)] | UnsetType | None = UNSET
    timezone: Annotated[str, Meta(max_length=64)] | UnsetType | None = UNSET
    locale: Locale | UnsetType | None = UNSET


class NdaRequest(Strict, kw_only=True):
    pitch_id: Id
    pitch_title: Title
    requester_id: Id
    owner_id: Id
    message: Text | None = None


class NdaDecision(Strict, kw_only=True):
    pitch_id: Id
    pitch_title: Title
    requester_id: Id
    owner_id: Id
    reason: Text | None = None


InvestmentStatus = Literal["pending", "received", "confirmed", "declined", "cancelled", "refunded"]


class InvestmentEvent(Strict, kw_only=True):
    investment_id: Id
    pitch_id: Id
    investor_id: Id
    creator_id: Id
    amount: Annotated[float, Meta(gt=0)]
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
    status: InvestmentStatus
    pitch_title: Title | None = None


class ProductionUpdate(Strict, kw_only=True):
    production_id: Id
    pitch_id: Id
    pitch_title: Title
    stage: Annotated[str, Meta(min_length=1, max_length=100)]
    team_ids: Annotated[list[Id], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    previous_stage: Annotated[str, Meta(max_length=100)] | None = None
    summary: Text | None = None


class MarketplaceAlert(Strict, kw_only=True):
    pitch_id: Id
    pitch_title: Title
    user_ids: Annotated[list[Id], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    genre: Annotated[str, Meta(max_length=100)] | None = None
    alert_name: Annotated[str, Meta(max_length=200)] | None = None
