"""ProviderRouter: failover, circuit breaker and backoff, driven by a fake clock."""

from __future__ import annotations

import random

import pytest

from delivery.failover import ProviderRouter, RetryPolicy
from delivery.providers.base import ErrorKind, OutgoingEmail, ProviderError, SendResult

POLICY = RetryPolicy(
    base_seconds=1.0, cap_seconds=30.0, max_attempts=5, breaker_threshold=3, cooldown_seconds=60.0
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class NamedProvider:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, email: OutgoingEmail) -> SendResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


primary = NamedProvider("sendgrid")
fallback = NamedProvider("ses")


def error(kind: ErrorKind, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, "boom", provider="x", retry_after=retry_after)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def router(clock: FakeClock) -> ProviderRouter:
    return ProviderRouter(primary, fallback, POLICY, clock=clock, rng=random.Random(7))


def fail_primary(router: ProviderRouter, times: int) -> None:
    for _ in range(times):
        router.on_failure(primary, error(ErrorKind.RETRY), attempt=1)


def test_new_sends_go_to_the_primary_while_it_is_healthy(router: ProviderRouter) -> None:
    fail_primary(router, POLICY.breaker_threshold - 1)

    assert router.choose() is primary


def test_consecutive_failures_open_the_circuit_to_the_fallback(router: ProviderRouter) -> None:
    fail_primary(router, POLICY.breaker_threshold)

    assert router.circuit_open
    assert router.choose() is fallback


def test_a_success_resets_the_consecutive_failure_count(router: ProviderRouter) -> None:
    fail_primary(router, POLICY.breaker_threshold - 1)
    router.on_success(primary)
    fail_primary(router, POLICY.breaker_threshold - 1)

    assert router.choose() is primary


def test_after_the_cooldown_one_probe_goes_to_the_primary(
    router: ProviderRouter, clock: FakeClock
) -> None:
    fail_primary(router, POLICY.breaker_threshold)
    clock.advance(POLICY.cooldown_seconds)

    assert router.choose() is primary
    assert router.choose() is fallback  # only one probe at a time


def test_a_successful_probe_closes_the_circuit(router: ProviderRouter, clock: FakeClock) -> None:
    fail_primary(router, POLICY.breaker_threshold)
    clock.advance(POLICY.cooldown_seconds)
    probe = router.choose()

    router.on_success(probe)

    assert not router.circuit_open
    assert router.choose() is primary


def test_a_failed_probe_opens_the_circuit_for_another_cooldown(
    router: ProviderRouter, clock: FakeClock
) -> None:
    fail_primary(router, POLICY.breaker_threshold)
    clock.advance(POLICY.cooldown_seconds)
    probe = router.choose()

    router.on_failure(probe, error(ErrorKind.RETRY), attempt=1)
    clock.advance(POLICY.cooldown_seconds - 1)

    assert router.choose() is fallback


def test_a_lost_probe_does_not_block_the_next_one(router: ProviderRouter, clock: FakeClock) -> None:
    fail_primary(router, POLICY.breaker_threshold)
    clock.advance(POLICY.cooldown_seconds)
    router.choose()  # the probe's outcome is never reported
    clock.advance(POLICY.cooldown_seconds)

    assert router.choose() is primary


def test_retryable_error_retries_with_backoff(router: ProviderRouter) -> None:
    decision = router.on_failure(primary, error(ErrorKind.RETRY), attempt=2)

    assert decision.provider is primary
    assert 0 <= decision.delay <= 2.0


def test_retry_moves_to_the_fallback_once_the_circuit_opens(router: ProviderRouter) -> None:
    fail_primary(router, POLICY.breaker_threshold - 1)

    decision = router.on_failure(primary, error(ErrorKind.RETRY), attempt=1)

    assert decision.provider is fallback


def test_auth_error_switches_to_the_other_provider_at_once(router: ProviderRouter) -> None:
    decision = router.on_failure(primary, error(ErrorKind.AUTH), attempt=1)

    assert decision.provider is fallback
    assert decision.delay == 0
    assert router.choose() is fallback


def test_auth_error_without_a_fallback_is_final(clock: FakeClock) -> None:
    router = ProviderRouter(primary, None, POLICY, clock=clock)

    decision = router.on_failure(primary, error(ErrorKind.AUTH), attempt=1)

    assert decision.final


def test_rejected_is_final_and_never_fails_over(router: ProviderRouter) -> None:
    decision = router.on_failure(primary, error(ErrorKind.REJECTED), attempt=1)

    assert decision.final
    assert "boom" in decision.reason


def test_ambiguous_retries_the_same_provider_even_with_the_circuit_open(
    router: ProviderRouter,
) -> None:
    fail_primary(router, POLICY.breaker_threshold)

    decision = router.on_failure(primary, error(ErrorKind.AMBIGUOUS), attempt=1)

    assert decision.provider is primary


def test_rate_limited_waits_as_long_as_the_provider_asks(router: ProviderRouter) -> None:
    decision = router.on_failure(primary, error(ErrorKind.RATE_LIMITED, 12.0), attempt=1)

    assert decision.provider is primary
    assert decision.delay == 12.0


def test_rate_limits_do_not_open_the_circuit(router: ProviderRouter) -> None:
    for _ in range(POLICY.breaker_threshold * 2):
        router.on_failure(primary, error(ErrorKind.RATE_LIMITED, 1.0), attempt=1)

    assert router.choose() is primary


def test_the_last_attempt_is_final(router: ProviderRouter) -> None:
    decision = router.on_failure(primary, error(ErrorKind.RETRY), attempt=POLICY.max_attempts)

    assert decision.final


def test_without_a_fallback_the_primary_is_always_chosen(clock: FakeClock) -> None:
    router = ProviderRouter(primary, None, POLICY, clock=clock)

    fail_primary(router, POLICY.breaker_threshold * 2)

    assert router.choose() is primary


def test_backoff_is_full_jitter_under_an_exponential_cap(router: ProviderRouter) -> None:
    delays = {attempt: [router.next_delay(attempt) for _ in range(200)] for attempt in (1, 3, 10)}

    assert max(delays[1]) <= 1.0
    assert max(delays[3]) <= 4.0 and max(delays[3]) > 2.0
    assert max(delays[10]) <= POLICY.cap_seconds
    assert min(delays[10]) < POLICY.cap_seconds / 4  # full jitter reaches down to zero
