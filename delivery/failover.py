"""Which provider gets an attempt, and what to do after a failure. Pure logic, no I/O.

The worker asks ``choose()`` for a new send, then reports ``on_success`` or
``on_failure``; the latter returns a ``Decision`` (retry where, after how long, or stop).

Circuit breaker on the primary provider::

    closed --(threshold consecutive retryable failures, or an auth error)--> open
    open   --(cool-down elapsed)--> one probe goes to the primary (half-open)
    probe succeeds --> closed;   probe fails --> open again for another cool-down

Only the primary has a breaker: with no fallback there is nowhere else to route.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from delivery.providers.base import EmailProvider, ErrorKind, ProviderError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    # Seed values: 1 s doubling to at most 5 min, 5 attempts; 5 failures in a row open
    # the circuit for 60 s, long enough for a provider blip, short enough to return soon.
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    max_attempts: int = 5
    breaker_threshold: int = 5
    cooldown_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    """``provider`` is None when the email has failed for good; ``reason`` says why."""

    provider: EmailProvider | None
    delay: float
    reason: str

    @property
    def final(self) -> bool:
        return self.provider is None


class ProviderRouter:
    def __init__(
        self,
        primary: EmailProvider,
        fallback: EmailProvider | None = None,
        policy: RetryPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started: float | None = None

    @property
    def circuit_open(self) -> bool:
        return self._opened_at is not None

    def choose(self) -> EmailProvider:
        """The provider for a new send (not a retry, which follows its Decision)."""
        if self.fallback is None or self._opened_at is None:
            return self.primary
        now = self._clock()
        if now - self._opened_at < self.policy.cooldown_seconds:
            return self.fallback
        # A probe whose outcome never came back (worker crashed) must not block the next one.
        probe_pending = (
            self._probe_started is not None
            and now - self._probe_started < self.policy.cooldown_seconds
        )
        if probe_pending:
            return self.fallback
        self._probe_started = now
        return self.primary

    def on_success(self, provider: EmailProvider) -> None:
        if provider is self.primary:
            self._failures = 0
            self._opened_at = None
            self._probe_started = None

    def on_failure(self, provider: EmailProvider, error: ProviderError, attempt: int) -> Decision:
        """``attempt`` counts the attempts made so far for this email, starting at 1."""
        kind = error.kind
        if kind is ErrorKind.REJECTED:
            return Decision(None, 0.0, f"rejected by {provider.name}: {error.message}")
        if attempt >= self.policy.max_attempts:
            return Decision(None, 0.0, f"gave up after {attempt} attempts: {error.message}")
        if kind is ErrorKind.AMBIGUOUS:
            # It may have been sent; another provider would surely duplicate it.
            return Decision(provider, self.next_delay(attempt), "ambiguous, same provider")
        if kind is ErrorKind.RATE_LIMITED:
            delay = error.retry_after if error.retry_after is not None else self.next_delay(attempt)
            return Decision(provider, min(delay, self.policy.cap_seconds), "rate limited")
        if kind is ErrorKind.AUTH:
            return self._switch_after_auth(provider, error)
        self._record_retryable_failure(provider)
        return Decision(self.choose(), self.next_delay(attempt), "retryable error")

    def next_delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so retries of a burst spread out."""
        ceiling = min(self.policy.cap_seconds, self.policy.base_seconds * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def _switch_after_auth(self, provider: EmailProvider, error: ProviderError) -> Decision:
        other = self._other(provider)
        if provider is self.primary:
            self._trip()
        if other is None:
            return Decision(None, 0.0, f"auth failure at {provider.name}: {error.message}")
        return Decision(other, 0.0, f"auth failure at {provider.name}, switching")

    def _record_retryable_failure(self, provider: EmailProvider) -> None:
        if provider is not self.primary:
            return
        if self._probe_started is not None:
            self._trip()  # the probe failed: another full cool-down
            return
        self._failures += 1
        if self._failures >= self.policy.breaker_threshold:
            self._trip()

    def _trip(self) -> None:
        if self.fallback is None:
            return
        self._opened_at = self._clock()
        self._probe_started = None
        self._failures = 0

    def _other(self, provider: EmailProvider) -> EmailProvider | None:
        if provider is self.primary:
            return self.fallback
        return self.primary if self.fallback is not None else None
