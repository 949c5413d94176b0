"""The unit-cost and soak figures of the benchmark report: fixed costs cancel, rooms solve."""

from __future__ import annotations

from typing import Any

from benchmarks import report
from benchmarks.scenarios.units import per_message


def run_delta(stored: float, server_cpu_s: float, publishes: int, commits: int) -> dict[str, Any]:
    return {
        "stored": stored,
        "server_cpu_s": server_cpu_s,
        "redis_cpu_s": None,
        "redis_commands": {"publish": publishes},
        "redis_in_bytes": 0,
        "redis_out_bytes": 0,
        "pg_cpu_s": None,
        "pg_counters": {"xact_commit": commits},
    }


def test_per_message_costs_are_the_difference_of_two_runs_so_fixed_costs_cancel() -> None:
    # Both runs paid 2 s of CPU and 50 commits to connect; then 100 µs and 0.5 commits each.
    short = run_delta(1_000, 2.0 + 1_000 * 100e-6, 1_000, 50 + 500)
    long = run_delta(5_000, 2.0 + 5_000 * 100e-6, 5_000, 50 + 2_500)

    figures = per_message(short, long)

    assert figures["messages"] == 4_000
    assert figures["server_cpu_us"] == 100.0
    assert figures["redis_commands"] == {"publish": 1.0}
    assert figures["pg"] == {"xact_commit": 0.5}
    assert figures["redis_cpu_us"] is None


def test_no_new_messages_gives_no_per_message_figures() -> None:
    same = run_delta(1_000, 2.0, 0, 0)

    assert per_message(same, same) == {"messages": 0}


def test_the_memory_of_a_room_is_solved_from_two_room_sizes() -> None:
    # 20 KB per connection, 8 KB per room: rooms of 2 -> 24 KB, rooms of 1,000 -> 20.008 KB.
    memory = [
        {"room_size": 2, "result": {"rss_per_connection_kb": 24.0}},
        {"room_size": 1_000, "result": {"rss_per_connection_kb": 20.008}},
    ]

    room = report.per_room_kb(memory)

    assert room is not None and abs(room - 8.0) < 1e-9


def test_the_soak_trend_compares_the_middle_of_the_last_third_with_the_first() -> None:
    p99s = [5.0, 4.0, 30.0, 5.0, 5.0, 5.0, 6.0, 6.0, 7.5]
    windows = [{"p99_ms": p} for p in p99s]

    # First third 5, 4, 30 -> median 5; last third 6, 6, 7.5 -> median 6.
    assert report.p99_trend(windows) == round(6.0 / 5.0, 2)


def test_a_soak_too_short_for_thirds_has_no_trend() -> None:
    assert report.p99_trend([{"p99_ms": 5.0}, {"p99_ms": 9.0}]) is None
