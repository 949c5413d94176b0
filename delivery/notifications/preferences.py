"""Preferences: defaults per type, the pure email policy, and the cached per-user lookup.

`plan_email` is a pure function of (preference, criticality, quiet hours, timezone,
time): every cell of the type x channel x frequency x quiet-hours matrix is a call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from base.errors import Invalid
from schemas.notifications import (
    Preferences,
    PreferencesUpdate,
    QuietHours,
    TypePreference,
    TypePreferencePatch,
)
from state.cache import Cache
from storage.messages import now_ms
from storage.notifications import FOLD_CATEGORY, NotificationStore, PreferenceRow

UTC = ZoneInfo("UTC")

# Business events a user must not miss: never digested, never held by quiet hours;
# they stop only when the user switches them off explicitly.
CRITICAL_TYPES = frozenset(
    {
        "nda_request",
        "nda_approved",
        "nda_rejected",
        "investment_received",
        "investment_confirmed",
        "investment_status",
    }
)

# (in-app, email, frequency, push) per known type; any other type gets DEFAULT.
# Push interrupts whatever the user is doing: on only for what must not wait (critical
# types) and for messages someone is waiting on an answer to.
DEFAULT = (True, True, "instant", False)
DEFAULTS: dict[str, tuple[bool, bool, str, bool]] = {
    **{name: (True, True, "instant", True) for name in CRITICAL_TYPES},
    # Progress news: worth reading, not worth an email each time.
    "production_update": (True, True, "daily", False),
    "marketplace_alert": (True, True, "daily", False),
    # Unread messages are an email about the inbox, never an inbox entry themselves.
    "unread_messages": (False, True, "instant", True),
}


# Types a user may set a preference for before receiving one: the built-in ones and the
# platform's generic announcements. Any other type becomes settable once the user has been
# sent a notification of it, so a user cannot store rows for types that do not exist.
KNOWN_TYPES = frozenset(DEFAULTS) | {"system"}


def is_critical(kind: str, priority: str = "normal") -> bool:
    return kind in CRITICAL_TYPES or priority == "critical"


def default_preference(kind: str) -> TypePreference:
    in_app, email, frequency, push = DEFAULTS.get(kind, DEFAULT)
    return TypePreference(
        in_app=in_app,
        email=email,
        frequency=frequency,  # type: ignore[arg-type]
        push=push,
        critical=kind in CRITICAL_TYPES,
    )


def zone(name: str | None) -> ZoneInfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"timezone {name!r} is not an IANA timezone (e.g. Europe/Paris)") from None
    return name


# ---- the policy ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailPlan:
    """What to do with a notification's email: `status` is recorded on the notification."""

    send: bool
    due_at: int  # epoch ms; later than now when quiet hours hold it back
    status: str  # queued, delayed, digest_daily, digest_weekly, skipped_preference


def _minutes(clock_time: str) -> int:
    hours, minutes = clock_time.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_until(quiet: QuietHours | None, tz: ZoneInfo, now: int) -> int | None:
    """The epoch ms at which the current quiet period ends, or None outside quiet hours."""
    if quiet is None:
        return None
    start, end = _minutes(quiet.start), _minutes(quiet.end)
    if start == end:
        return None
    local = datetime.fromtimestamp(now / 1000, tz)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    day = local.date() if minute < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, time(end // 60, end % 60), tzinfo=tz)
    return int(ends.timestamp() * 1000)


def plan_email(
    preference: TypePreference,
    critical: bool,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    now: int,
) -> EmailPlan:
    if not preference.email or preference.frequency == "off":
        return EmailPlan(False, now, "skipped_preference")
    if critical:
        return EmailPlan(True, now, "queued")
    if preference.frequency in ("daily", "weekly"):
        return EmailPlan(False, now, f"digest_{preference.frequency}")
    until = quiet_until(quiet, tz, now)
    if until is not None:
        return EmailPlan(True, until, "delayed")
    return EmailPlan(True, now, "queued")


@dataclass(frozen=True, slots=True)
class PushPlan:
    send: bool
    due_at: int  # later than now when quiet hours hold it back


def plan_push(
    preference: TypePreference,
    critical: bool,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    now: int,
) -> PushPlan:
    """The push channel: the type's switch; quiet hours hold a non-critical push until
    they end, as they hold its email (the frequency is the email's alone)."""
    if not preference.push:
        return PushPlan(False, now)
    if critical:
        return PushPlan(True, now)
    until = quiet_until(quiet, tz, now)
    return PushPlan(True, until if until is not None else now)


# ---- per-user preferences, cached ------------------------------------------------


class UserPreferences(msgspec.Struct):
    """One user's stored choices; types without a stored row use their default."""

    types: dict[str, TypePreference]
    quiet_hours: QuietHours | None
    timezone: str

    def of(self, kind: str) -> TypePreference:
        return self.types.get(kind) or default_preference(kind)

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def view(self) -> Preferences:
        types = {kind: default_preference(kind) for kind in DEFAULTS}
        types.update(self.types)
        return Preferences(
            types=dict(sorted(types.items())), quiet_hours=self.quiet_hours, timezone=self.timezone
        )


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(UserPreferences)


class PreferenceService:
    def __init__(
        self,
        store: NotificationStore,
        cache: Cache,
        ttl: float,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.cache = cache
        self.ttl = ttl
        self.clock = clock

    async def get(self, user_id: str) -> UserPreferences:
        namespace = _namespace(user_id)
        key = f"{namespace}:{await self.cache.version(namespace)}"
        cached = await self.cache.get(key)
        if cached is not None:
            return _decoder.decode(cached)
        rows, settings = await self.store.preferences(user_id)
        quiet = None
        if settings.quiet_start is not None and settings.quiet_end is not None:
            quiet = QuietHours(
                start=_clock_time(settings.quiet_start), end=_clock_time(settings.quiet_end)
            )
        prefs = UserPreferences(
            types={
                r.type: TypePreference(
                    in_app=r.in_app,
                    email=r.email,
                    frequency=r.frequency,  # type: ignore[arg-type]
                    # Stored before push existed (NULL): the type's default.
                    push=default_preference(r.type).push if r.push is None else r.push,
                    critical=r.type in CRITICAL_TYPES,
                )
                for r in rows
            },
            quiet_hours=quiet,
            timezone=settings.timezone or "UTC",
        )
        await self.cache.set(key, _encoder.encode(prefs), self.ttl)
        return prefs

    async def update(self, user_id: str, change: PreferencesUpdate) -> Preferences:
        current = await self.get(user_id)
        rows: list[PreferenceRow] = []
        if not isinstance(change.types, msgspec.UnsetType):
            await self._check_known(user_id, list(change.types))
            for kind, patch in change.types.items():
                base = current.of(kind)
                rows.append(
                    PreferenceRow(
                        type=kind,
                        in_app=base.in_app if patch.in_app is msgspec.UNSET else bool(patch.in_app),
                        email=base.email if patch.email is msgspec.UNSET else bool(patch.email),
                        push=base.push if patch.push is msgspec.UNSET else bool(patch.push),
                        frequency=(
                            base.frequency
                            if isinstance(patch.frequency, msgspec.UnsetType)
                            else patch.frequency
                        ),
                    )
                )
        set_quiet = not isinstance(change.quiet_hours, msgspec.UnsetType)
        quiet = None
        if isinstance(change.quiet_hours, QuietHours):
            quiet = (_minutes(change.quiet_hours.start), _minutes(change.quiet_hours.end))
        set_tz = not isinstance(change.timezone, msgspec.UnsetType)
        tz = change.timezone if isinstance(change.timezone, str) else None
        if tz is not None:
            valid_timezone(tz)
        await self.store.save_preferences(user_id, rows, quiet, set_quiet, tz, set_tz, self.clock())
        await self.invalidate(user_id)
        return (await self.get(user_id)).view()

    async def email_off(self, user_id: str, category: str) -> list[str]:
        """A one-click unsubscribe from an email of `category`: that type's email off; for a
        digest, every non-critical type digested at that period; for the rate limit's
        summary, every non-critical type. Returns the types switched off (none: nothing
        changed, as when the same link is used again)."""
        types = (await self.get(user_id)).view().types
        period = {"digest_daily": "daily", "digest_weekly": "weekly"}.get(category)
        if period is not None:
            kinds = [k for k, p in types.items() if p.frequency == period and not p.critical]
        elif category == FOLD_CATEGORY:
            kinds = [k for k, p in types.items() if not p.critical]
        else:
            kinds = [category]
        kinds = [k for k in kinds if k not in types or types[k].email]
        if kinds:
            patch = {k: TypePreferencePatch(email=False) for k in kinds}
            await self.update(user_id, PreferencesUpdate(types=patch))
        return kinds

    async def _check_known(self, user_id: str, kinds: list[str]) -> None:
        other = sorted(set(kinds) - KNOWN_TYPES)
        unknown = sorted(set(other) - await self.store.received_types(user_id, other))
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise Invalid(
                f"unknown notification type(s): {shown}; known: {', '.join(sorted(KNOWN_TYPES))} "
                "and any type you have received"
            )

    async def invalidate(self, user_id: str) -> None:
        """Bumping the namespace version makes every process's cached copy unreachable."""
        await self.cache.bump([_namespace(user_id)])


def _namespace(user_id: str) -> str:
    # v2: entries cached before the push channel lack it; a new key never reads them.
    return f"prefs:v2:{user_id}"


def _clock_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
