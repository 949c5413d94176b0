"""Repeated failures are logged when they start, as a count per interval, and when they end."""

from __future__ import annotations

import logging

import pytest

from base.failures import RepeatedFailure


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_failure_that_repeats_is_logged_once_then_counted_per_interval_then_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = RepeatedFailure(logging.getLogger("t"), "redis down", interval=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="t"):
        for _ in range(500):  # one burst: one line
            failures.failed("connection refused")
        assert _lines(caplog) == ["redis down: connection refused"]
        clock.now += 10
        failures.failed("connection refused")
        assert (
            _lines(caplog)[-1] == "redis down: 500 more times in 10 s (latest: connection refused)"
        )
        clock.now += 2.5
        failures.succeeded()
        failures.succeeded()  # nothing more: the outage ended once
    assert _lines(caplog)[-1] == "redis down: recovered after 12.5 s and 501 failures"
    assert len(caplog.records) == 3


def test_a_new_failure_after_recovery_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    failures = RepeatedFailure(logging.getLogger("t"), "db down", clock=Clock())
    with caplog.at_level(logging.WARNING, logger="t"):
        failures.failed("first")
        failures.succeeded()
        failures.failed("second")
    assert _lines(caplog)[-1] == "db down: second"
