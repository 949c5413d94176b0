"""The benchmark harness reads our loop lag and GC pauses per step, and reports the tail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks import harness, report
from benchmarks.runtime_metrics import Scraper, parse, step_figures
from tests.servers import ServerProcess, uid

LAG_BUCKETS = ("0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "+Inf")


def metrics_text(
    lag_counts: list[int], lag_max: float, gen0_counts: list[int], gc_max: float
) -> str:
    """A /metrics text shaped as server/runtime.py writes it (cumulative buckets)."""
    lines = [
        f'pitchey_event_loop_lag_seconds_bucket{{le="{b}"}} {c}.0'
        for b, c in zip(LAG_BUCKETS, lag_counts, strict=True)
    ]
    lines += [
        f"pitchey_event_loop_lag_seconds_count {lag_counts[-1]}.0",
        f"pitchey_event_loop_lag_max_seconds {lag_max}",
    ]
    lines += [
        f'pitchey_gc_pause_seconds_bucket{{generation="0",le="{b}"}} {c}.0'
        for b, c in zip(LAG_BUCKETS, gen0_counts, strict=True)
    ]
    lines += [
        f'pitchey_gc_pause_seconds_count{{generation="0"}} {gen0_counts[-1]}.0',
        f'pitchey_gc_pause_max_seconds{{generation="0"}} {gc_max}',
    ]
    return "\n".join(lines) + "\n"


def test_a_step_that_sets_a_new_maximum_reports_it_exactly() -> None:
    before = parse(metrics_text([10, 10, 10, 10, 10, 10, 10], 0.0008, [0] * 7, 0.0))
    after = parse(
        metrics_text([10, 60, 99, 110, 110, 110, 110], 0.0042, [0, 0, 1, 2, 2, 2, 2], 0.004)
    )
    assert before and after

    figures = step_figures([before], [after])

    assert figures is not None
    assert figures.loop_lag_p99_ms == 5.0  # 99 of 100 new lags are <= 5 ms
    assert (figures.loop_lag_max_ms, figures.loop_lag_max_exact) == (4.2, True)
    assert (figures.gc_pause_max_ms, figures.gc_pause_max_exact) == (4.0, True)
    assert figures.gc_collections == 2


def test_a_step_below_the_process_maximum_reports_its_highest_bucket() -> None:
    before = parse(metrics_text([0, 5, 5, 5, 5, 6, 6], 0.02, [0, 0, 0, 0, 0, 1, 1], 0.02))
    after = parse(metrics_text([0, 5, 9, 9, 9, 11, 11], 0.02, [0, 0, 0, 1, 1, 2, 2], 0.02))
    assert before and after

    figures = step_figures([before], [after])

    assert figures is not None
    assert (figures.loop_lag_max_ms, figures.loop_lag_max_exact) == (25.0, False)
    assert (figures.gc_pause_max_ms, figures.gc_pause_max_exact) == (5.0, False)
    assert figures.gc_collections == 1


async def test_the_scraper_reads_our_servers_collections_between_two_readings(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(GC_GEN0_THRESHOLD="100")
    scraper = Scraper([server.port])
    before = await scraper.read()
    async with server.client(uid()) as http:
        for _ in range(200):
            await http.get("/api/messages/conversations")
    after = await scraper.read()

    figures = step_figures(before, after)

    assert figures is not None
    assert figures.gc_collections >= 1
    assert figures.gc_pause_max_ms is not None


def fanout_doc(runtime: dict[str, Any] | None) -> dict[str, Any]:
    step = {
        "offered_per_s": 8000,
        "lost": 0,
        "p50_ms": 2.0,
        "p99_ms": 9.5,
        "p999_ms": 31.25,
        "max_ms": 77.5,
        "server_cpu_us_per_frame": 12.0,
        "loadgen_cpu_share": 0.1,
        "other_cpu_share": 0.0,
        "passed": True,
        "runtime": runtime,
    }
    entry = {"target": "pitchey", "label": "ours", "subscribers": 1000, "status": "ok"}
    return {
        "entries": [
            {**entry, "result": {"best_clean_per_s": 8000.0, "best_step": step, "steps": [step]}}
        ]
    }


def test_the_fanout_table_shows_p999_max_loop_lag_and_gc_pauses() -> None:
    runtime = {
        "loop_lag_p99_ms": 2.5,
        "loop_lag_max_ms": 10.0,
        "loop_lag_max_exact": False,
        "gc_pause_max_ms": 3.21,
        "gc_pause_max_exact": True,
        "gc_collections": 4,
        "gc_full_collections": 0,
    }

    row = report.fanout_rows(fanout_doc(runtime))[-1]

    assert "2.0 / 9.5 / 31.2 / 77.5" in row
    assert "≤ 2.5 / ≤ 10.0" in row
    assert "3.2 (4 collections, 0 full)" in row


def test_a_peer_without_metrics_gets_dashes_for_lag_and_gc() -> None:
    row = report.fanout_rows(fanout_doc(None))[-1]

    assert "| – | – |" in row


async def test_the_whole_run_figures_keep_their_names(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(GC_GEN0_THRESHOLD="100")
    async with server.client(uid()) as http:
        for _ in range(200):
            await http.get("/api/messages/conversations")

    figures = harness.scrape_runtime(server.port)

    assert figures is not None
    assert {"gc_gen0_max_ms", "gc_full_collections", "loop_lag_max_ms"} <= set(figures)


def test_a_page_that_is_not_our_metrics_has_no_figures() -> None:
    assert parse("Not Found") is None
    assert parse("<html><body>404 Not Found</body></html>\n") is None
