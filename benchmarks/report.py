"""Results files, the latest.md table and the latest.png chart under benchmarks/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import spec
from benchmarks.spec import DISTURBED_OTHER_CPU
from benchmarks.targets import BENCH_DIR

RESULTS = BENCH_DIR / "results"
LATEST_MD = RESULTS / "latest.md"
LATEST_PNG = RESULTS / "latest.png"
SCENARIO_ORDER = (
    "fanout",
    "fanout10k",
    "chat",
    "idle",
    "recovery",
    "rest",
    "delivery",
    "notify",
    "scaleout",
    "soak",
    "units",
)


def save(document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{document['stamp']}-{document['scenario']}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def newest(scenario: str) -> dict[str, Any] | None:
    paths = sorted(RESULTS.glob(f"*-{scenario}.json"))
    return json.loads(paths[-1].read_text()) if paths else None


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _other(share: float | None) -> str:
    """The other-processes CPU share, flagged when it disturbed the measurement."""
    if share is None:
        return "–"
    return f"**{share:.2f} disturbed**" if share > DISTURBED_OTHER_CPU else f"{share:.2f}"


def _status(entry: dict[str, Any], cell: str) -> str:
    return cell if entry["status"] == "ok" else f"{entry['status']}: {entry.get('reason', '')}"


def _bounded(value: float | None, exact: bool) -> str:
    """A maximum read from /metrics: exact, or the upper bound of a histogram bucket."""
    if value is None:
        return "–"
    return _num(value, 1) if exact else f"≤ {_num(value, 1)}"


def gc_cell(figures: dict[str, Any]) -> str:
    if not figures["gc_collections"]:
        return "no collection"
    return (
        f"{_bounded(figures['gc_pause_max_ms'], figures['gc_pause_max_exact'])} "
        f"({figures['gc_collections']} collections, {figures['gc_full_collections']} full)"
    )


def runtime_cell(step: dict[str, Any]) -> str:
    """Loop lag p99 / max and the longest GC pause of one step (ours only: from /metrics)."""
    figures = step.get("runtime")
    if not figures:
        return "– | –"
    lag = (
        f"≤ {_num(figures['loop_lag_p99_ms'], 1)} / "
        f"{_bounded(figures['loop_lag_max_ms'], figures['loop_lag_max_exact'])}"
    )
    return f"{lag} | {gc_cell(figures)}"


def latency_cell(step: dict[str, Any]) -> str:
    return " / ".join(_num(step.get(key), 1) for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms"))


def fanout_rows(
    doc: dict[str, Any],
    size: str = "subscribers",
    rate: str = "clean delivered msgs/s",
    frames_per_message: int = 0,
) -> list[str]:
    """Fan-out, and the scenarios that climb the same ladder (chat, scale-out). With
    `frames_per_message` (chat) a column gives the server CPU per persisted message too."""
    per_message = " | server CPU µs/persisted msg" if frames_per_message else ""
    rows = [
        f"| server | {size} | {rate} | p50 / p99 / p999 / max ms at that rate "
        f"| server CPU µs/frame{per_message} | loop lag p99 / max ms | GC pause max ms "
        "| loadgen CPU share | other CPU share | first failing step |",
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if frames_per_message else ""),
    ]
    for e in doc["entries"]:
        result = e.get("result") or {}
        best = result.get("best_step") or {}
        failed = [s for s in result.get("steps", []) if not s["passed"]]
        first = failed[0] if failed else {}
        gc = first.get("runtime")
        gc_note = f", GC {gc_cell(gc)}" if gc else ""
        first_fail = (
            f"{first['offered_per_s']:,}/s offered: lost {first['lost']:,}, "
            f"p99 {_num(first['p99_ms'], 1)} ms, max {_num(first['max_ms'], 1)} ms{gc_note}, "
            f"other CPU {_other(first['other_cpu_share'])}"
            if failed
            else "none (ceiling reached)"
        )
        per_frame = best.get("server_cpu_us_per_frame")
        message_cell = ""
        if frames_per_message:
            message_cell = f"{per_message_cpu(result, frames_per_message)} | "
        cells = (
            f"{_num(result.get('best_clean_per_s'))} | {latency_cell(best)} | "
            f"{_num(per_frame, 1)} | {message_cell}{runtime_cell(best)} | "
            f"{_num(best.get('loadgen_cpu_share'), 2)} | "
            f"{_other(best.get('other_cpu_share'))} | {first_fail}"
        )
        label = f"{e['label']}, {e['backend']}" if "backend" in e else e["label"]
        rows.append(f"| {label} | {e['subscribers']:,} | {_status(e, cells)} |")
    return rows


def per_message_cpu(result: dict[str, Any], frames_per_message: int) -> str:
    """Server CPU per persisted message: at the best step, else at the lowest step measured
    (said in the cell), so every target has the figure."""
    step = result.get("best_step")
    note = ""
    if not step and result.get("steps"):
        step = min(result["steps"], key=lambda s: s["offered_per_s"])
        note = f" (at {step['offered_per_s']:,}/s, failed)"
    per_frame = (step or {}).get("server_cpu_us_per_frame")
    return _num(None if per_frame is None else per_frame * frames_per_message, 1) + note


def fanout10k_rows(doc: dict[str, Any]) -> list[str]:
    settings = doc["settings"]
    return [
        f"{settings['rooms']} rooms of {settings['room_size']:,} subscribers, one publisher "
        "per room, publishes spread evenly over the rooms; a step passes with nothing lost "
        "and p99 < 100 ms over every delivery.",
        "",
        *fanout_rows(doc),
    ]


def chat_rows(doc: dict[str, Any]) -> list[str]:
    limit = doc["settings"]["p99_limit_ms"]
    frames = doc["settings"].get("frames_per_message", 2)
    return [
        f"{doc['settings']['conversations']:,} two-person conversations, both sides connected "
        f"and sending; a step passes with nothing lost and p99 < {limit:.0f} ms. Rates are "
        "sent (= persisted) messages/s; every server stores each message before either side "
        f"sees it and delivers it to both sides ({frames} frames). Server CPU is the server "
        "process and its children (aiosqlite's thread included, PostgreSQL's backends not).",
        "",
        *fanout_rows(doc, "connections", "clean persisted msgs/s", frames),
    ]


def scaleout_rows(doc: dict[str, Any]) -> list[str]:
    speedup = doc.get("speedup_2_over_1")
    return [
        f"One room of {doc['settings']['subscribers']:,} subscribers split evenly over the "
        "processes, Redis + PostgreSQL in both configurations. **Nothing is pinned and the "
        "machine has 2 cores**: the processes share them with the load generator, so this is "
        "bounded by the machine, not the issue's one-core-per-process comparison.",
        "",
        *fanout_rows(doc),
        "",
        f"2 processes / 1 process: **{_num(speedup, 2)}**",
    ]


def recovery_rows(doc: dict[str, Any]) -> list[str]:
    settings = doc["settings"]
    rows = [
        f"A publisher sends {settings['rate_per_s']:.0f} msgs/s; after "
        f"{settings['storm_after_s']:.0f} s every subscriber disconnects and reconnects at once "
        "with `since`. Caught up: every client holds every seq up to its `subscribed.seq`.",
        "",
        "| server | subscribers | all resubscribed s | all caught up s "
        "| complete after last publish s | recovered on socket / over REST (pages) "
        "| lost | duplicated | other CPU share | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in doc["entries"]:
        r = e.get("result") or {}
        cells = (
            f"{_num(r.get('reconnect_s'), 2)} | {_num(r.get('caught_up_s'), 2)} | "
            f"{_num(r.get('complete_s'), 2)} | {r.get('recovered_ws', '–')} / "
            f"{r.get('recovered_rest', '–')} ({r.get('rest_pages', '–')}) | "
            f"{r.get('lost', '–')} | {r.get('duplicated', '–')} | "
            f"{_other(r.get('other_cpu_share'))} | {'pass' if r.get('passed') else '**FAIL**'}"
        )
        rows.append(f"| {e['label']} | {e['subscribers']:,} | {_status(e, cells)} |")
    return rows


def rest_rows(doc: dict[str, Any]) -> list[str]:
    rows = [
        f"Closed loop, {doc['settings']['concurrency']} keep-alive HTTP/1.1 clients, "
        f"{doc['settings']['seconds']:.0f} s per operation.",
        "",
        "| server | operation | requests/s | p50 / p99 ms | server CPU µs/request "
        "| loadgen CPU share | other CPU share | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in doc["entries"]:
        if e["status"] != "ok":
            rows.append(f"| {e['label']} | – | {_status(e, '')} |")
            continue
        for p in e["result"]["phases"]:
            rows.append(
                f"| {e['label']} | {p['op']} | {_num(p['per_s'])} | "
                f"{_num(p['p50_ms'], 1)} / {_num(p['p99_ms'], 1)} | "
                f"{_num(p['server_cpu_us_per_request'])} | {p['loadgen_cpu_share']:.2f} | "
                f"{_other(p['other_cpu_share'])} | {p['errors']} |"
            )
    return rows


def delivery_rows(doc: dict[str, Any]) -> list[str]:
    rows = [
        "Ours: emails/s from the first accept to the last provider 202, p50 / p99 from our 202 "
        "to the provider's. httpx-ceiling: the same requests straight from bare httpx "
        "AsyncClients at the same concurrency, nothing stored: requests/s from the first send to "
        "the last 202, p50 / p99 per request; no accept step. Its fastest pool layout is shown "
        "(every layout is in the results JSON).",
        "",
        "| sender | emails | provider delay ms | emails/s | accepted/s "
        "| p50 / p99 ms | provider calls incl. repeats |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in doc["entries"]:
        r = e.get("result") or {}
        cells = (
            f"{_num(r.get('provider_delay_ms'))} | {_num(r.get('emails_per_s'))} | "
            f"{_num(r.get('accept_per_s'))} | "
            f"{_num(r.get('p50_ms'))} / {_num(r.get('p99_ms'))} | "
            f"{r.get('delivered_including_repeats', '–')}"
        )
        label = e["label"]
        if "clients" in r:  # the ceiling: which pool layout was fastest
            label += f" ({r['clients']} × {r['connections_per_client']} connections)"
        rows.append(f"| {label} | {e['subscribers']:,} | {_status(e, cells)} |")
    for r in doc.get("ratios", []):
        if r["peer"] == "httpx-ceiling":
            rows += [
                "",
                f"Ours / httpx-ceiling (emails/s): **{_num(r['ratio'], 2)}**: what the durable "
                "pipeline keeps of what bare httpx and the stand-in allow on this machine.",
            ]
    return rows


def p99_trend(windows: list[dict[str, Any]]) -> float | None:
    """Median p99 of the last third of the windows over that of the first third."""
    return spec.p99_trend([w.get("p99_ms") for w in windows])


def soak_rows(doc: dict[str, Any]) -> list[str]:
    settings = doc["settings"]
    rows = [
        f"{settings['connections']:,} connections in {settings['conversations']:,} two-person "
        f"conversations, {settings['rate_per_s']:,.0f} msgs/s sent open loop for "
        f"{settings['duration_s']:,.0f} s on SQLite, each message stored and delivered to both "
        f"sides. Per {settings['window_s']:.0f}-s window: latency of the frames received in it; "
        "loop lag and GC pauses from /metrics; RSS and WAL size at its end. **Flat** when the "
        "median p99 of the last third of the windows is within "
        f"{settings['flat_p99_growth']}x of the first third's.",
        "",
    ]
    for e in doc["entries"]:
        if e["status"] != "ok":
            rows.append(f"{e['label']}: {_status(e, '')}")
            continue
        r = e["result"]
        trend = p99_trend(r["windows"])
        # Runs before p99_trend existed recorded the last-over-first verdict; judge all alike.
        flat = trend is not None and trend <= settings["flat_p99_growth"]
        verdict = "**flat**" if flat else "**NOT flat**"
        rows += [
            f"{e['label']}: median p99 of the last third of the windows / of the first third "
            f"**{_num(trend, 2)}** ({verdict}); last / first window {_num(r['p99_growth'], 2)} "
            "(one noisy window moves this one); "
            f"sent {r['sent']:,}, lost {r['lost']:,}, error frames {r['error_frames']:,}.",
            "",
            "| window from s | sent | frames | p50 / p99 / max ms | loop lag p99 / max ms "
            "| GC pause max ms | server RSS MB | WAL MB | server CPU share | other CPU share |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for w in r["windows"]:
            wal = None if w["wal_kb"] is None else w["wal_kb"] / 1024
            rows.append(
                f"| {w['start_s']:,.0f} | {w['sent']:,} | {w['delivered']:,} | "
                f"{_num(w['p50_ms'], 1)} / {_num(w['p99_ms'], 1)} / {_num(w['max_ms'], 1)} | "
                f"{runtime_cell(w)} | {_num(w['server_rss_kb'] / 1024, 1)} | {_num(wal, 1)} | "
                f"{w['server_cpu_share']:.2f} | {_other(w['other_cpu_share'])} |"
            )
    return rows


def notify_rows(doc: dict[str, Any]) -> list[str]:
    settings = doc["settings"]
    rows = [
        f"One marketplace alert to {settings['users']:,} users, {settings['online']:,} of them "
        f"online; posted as requests of at most {settings['per_request']:,} user ids, all at "
        "once. Every user chose instant email for marketplace alerts; the SendGrid stand-in "
        f"answers after {settings['provider_delay_ms']} ms. All times from the first POST: "
        "stored = the last 202 (each 202 follows the commit of its notifications and email "
        "jobs); push = the `notification` frame at each online user's socket; emails/s = "
        "users / time to the last email at the stand-in. Loop lag and GC: from the first POST "
        "to the last push.",
        "",
        "| server | users | online | all stored s | push p50 / p99 / max ms | pushes "
        "| loop lag p99 / max ms | GC pause max ms | emails | first / last email s "
        "| emails/s | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    singles = [e for e in doc["entries"] if e.get("kind") == "single_push"]
    for e in doc["entries"]:
        if e in singles:
            continue
        r = e.get("result") or {}
        cells = (
            f"{r.get('online', 0):,} | {_num(r.get('stored_s'), 2)} | "
            f"{_num(r.get('push_p50_ms'), 1)} / {_num(r.get('push_p99_ms'), 1)} / "
            f"{_num(r.get('push_max_ms'), 1)} | {r.get('pushes', 0):,} | "
            f"{runtime_cell(r)} | {r.get('emails', 0):,} | "
            f"{_num(r.get('emails_first_s'), 1)} / {_num(r.get('emails_last_s'), 1)} | "
            f"{_num(r.get('emails_per_s'))} | {r.get('errors', '–')} |"
        )
        rows.append(f"| {e['label']} | {e['subscribers']:,} | {_status(e, cells)}")
    for e in singles:
        r = e.get("result") or {}
        cells = (
            f"{_num(r.get('p50_ms'), 1)} / {_num(r.get('p99_ms'), 1)} / "
            f"{_num(r.get('max_ms'), 1)} |"
        )
        rows += [
            "",
            "One user, one `POST /api/notifications/send` at a time (issue 5, "
            "`notification_push.py`, unpinned): from the request to the `notification` frame.",
            "",
            "| server | pushes | p50 / p99 / max ms |",
            "|---|---|---|",
            f"| {e['label']} | {r.get('pushes', 0):,} | {_status(e, cells)}",
        ]
    return rows


def idle_rows(doc: dict[str, Any]) -> list[str]:
    rows = [
        "| server | connections | server RSS KB / connection | RSS before → after MB "
        "| connect+join /s | failed | other CPU share |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in doc["entries"]:
        r = e.get("result") or {}
        conn = r.get("connect") or {}
        before_mb, after_mb = r.get("rss_before_kb", 0) / 1024, r.get("rss_after_kb", 0) / 1024
        cells = (
            f"{_num(r.get('rss_per_connection_kb'), 1)} | "
            f"{_num(before_mb, 1)} → {_num(after_mb, 1)} | "
            f"{_num(conn.get('per_s'))} | {conn.get('failed', '–')} | "
            f"{_other(r.get('other_cpu_share'))}"
        )
        rows.append(f"| {e['label']} | {e['subscribers']:,} | {_status(e, cells)} |")
    return rows


def ratio_rows(doc: dict[str, Any]) -> list[str]:
    if doc["scenario"] in NO_PEERS:
        return [NO_PEERS[doc["scenario"]]]
    if not doc["ratios"]:
        return ["No ratios: our server was not measured in this run."]
    rows = [
        "| figure | subscribers | peer | ours | peer | ours / peer |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["ratios"]:
        # Chat compares on one database at a time; lower is better for CPU figures.
        figure = f"{r['metric']}, {r['backend']}" if "backend" in r else r["metric"]
        rows.append(
            f"| {figure} | {r['subscribers']:,} | {r['peer']} | {_num(r['ours'], 1)} | "
            f"{_num(r['peer_value'], 1)} | {_num(r['ratio'], 2)} |"
        )
    return rows


def _per(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def units_rows(doc: dict[str, Any]) -> list[str]:
    s = doc["settings"]
    rows = [
        f"Our server only, chat's shape: {s['conversations']:,} two-person conversations, "
        f"{s['rate_per_s']:,} msgs/s sent, each stored and delivered to both sides. Each stack "
        f"is driven twice on one server ({s['durations_s'][0]:.0f} s and "
        f"{s['durations_s'][1]:.0f} s); every figure is (long run - short run) / (messages "
        "stored in long - in short), so connecting and set-up cancel out. CPU is user + system "
        "of our server process, of redis-server and of every PostgreSQL process.",
        "",
        "| stack | messages | server CPU µs/msg | Redis CPU µs/msg | PostgreSQL CPU µs/msg "
        "| Redis commands/msg (top) | Redis bytes in / out per msg "
        "| PostgreSQL commits / rows inserted / updated per msg | PostgreSQL bytes/msg "
        "| step p99 ms | other CPU share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in (e for e in doc["entries"] if e.get("kind") == "stack"):
        if e["status"] != "ok":
            rows.append(f"| {e['label']} | {_status(e, '')} |")
            continue
        r = e["result"]
        m = r["per_message"]
        top = ", ".join(f"{k} {v:.2f}" for k, v in (m.get("redis_commands") or {}).items())
        total = m.get("redis_commands_total")
        redis_cmds = "–" if total is None else f"{total:.2f} ({top})"
        pg = m.get("pg") or {}
        pg_cell = (
            "–"
            if not pg
            else f"{pg.get('xact_commit', 0):.2f} / {pg.get('tup_inserted', 0):.2f} / "
            f"{pg.get('tup_updated', 0):.2f}"
        )
        long_step = r["steps"][-1] if r["steps"] else {}
        rows.append(
            f"| {e['label']} | {m.get('messages', 0):,.0f} | {_per(m.get('server_cpu_us'))} | "
            f"{_per(m.get('redis_cpu_us'))} | {_per(m.get('pg_cpu_us'))} | {redis_cmds} | "
            f"{_per(m.get('redis_in_bytes'), 0)} / {_per(m.get('redis_out_bytes'), 0)} | "
            f"{pg_cell} | {_per(pg.get('database_bytes'), 0)} | "
            f"{_num(long_step.get('p99_ms'), 1)} | {_other(long_step.get('other_cpu_share'))} |"
        )
    memory = [e for e in doc["entries"] if e.get("kind") == "memory" and e["status"] == "ok"]
    if memory:
        rows += [
            "",
            "| idle connections | rooms of | server RSS KB / connection | connect+join /s |",
            "|---|---|---|---|",
        ]
        for e in memory:
            r = e["result"]
            rows.append(
                f"| {e['subscribers']:,} | {e['room_size']:,} | "
                f"{_num(r['rss_per_connection_kb'], 1)} | {_num(r['connect']['per_s'])} |"
            )
        room = per_room_kb(memory)
        if room is not None:
            rows += [
                "",
                f"Per room (from the two rows: KB/conn = c + r / room size): **{room:.1f} KB**.",
            ]
    return rows


def per_room_kb(memory: list[dict[str, Any]]) -> float | None:
    """Solve KB per connection = c + r / room_size for r from two room sizes."""
    sizes = {e["room_size"]: e["result"]["rss_per_connection_kb"] for e in memory}
    if len(sizes) < 2:
        return None
    (small, kb_small), (large, kb_large) = sorted(sizes.items())[:2]
    return float(kb_small - kb_large) / (1 / small - 1 / large)


def _units_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = [e for e in _ok(doc) if e.get("kind") == "stack"]
    _named_bars(
        ax,
        [e["label"].split(", ", 1)[-1] for e in entries],
        [e["result"]["per_message"].get("server_cpu_us") or 0.0 for e in entries],
        "tab:brown",
    )
    ax.set_ylabel("server CPU µs per message (lower is better)")
    ax.set_title(f"Unit costs per message{_disturbance(doc)}", fontsize=10)


ROWS = {
    "fanout": fanout_rows,
    "fanout10k": fanout10k_rows,
    "chat": chat_rows,
    "idle": idle_rows,
    "recovery": recovery_rows,
    "rest": rest_rows,
    "delivery": delivery_rows,
    "notify": notify_rows,
    "scaleout": scaleout_rows,
    "soak": soak_rows,
    "units": units_rows,
}
UNPINNED = {"delivery", "scaleout"}
NO_PEERS = {
    "recovery": "No ratios: no peer recovers a subscription from a sequence number.",
    "scaleout": "No ratios to peers: 2 processes are compared with 1 (above).",
    "notify": "No ratios: no peer sends notifications.",
    "soak": "No ratios: the soak compares our server's last window with its first (above).",
    "units": "No ratios: unit costs of our server, for docs/capacity.md.",
}


def section(doc: dict[str, Any]) -> list[str]:
    body = ROWS[doc["scenario"]](doc)
    m = doc["machine"]
    placement = (
        "nothing pinned (servers and generator share both cores)"
        if doc["scenario"] in UNPINNED
        else f"server {m['server_cpu']}, load generator {m['loadgen_cpu']}"
    )
    return [
        f"## {doc['scenario']} ({doc['stamp']}{', quick' if doc['quick'] else ''})",
        "",
        f"Command: `{doc['command']}`  ",
        f"Machine: {m['nproc']} × {m['cpu_model']}, Linux {m['kernel']}, Python {m['python']}, "
        f"Node {m['node']}; {placement}; "
        f"commit {m['git_commit']}.",
        "",
        *body,
        "",
        "Ratios (ours / peer, same run):",
        "",
        *ratio_rows(doc),
        "",
    ]


def markdown() -> str:
    return LATEST_MD.read_text() if LATEST_MD.exists() else "No results yet.\n"


def regenerate() -> None:
    docs = [d for d in (newest(s) for s in SCENARIO_ORDER) if d]
    lines = [
        "# Latest benchmark results",
        "",
        "Generated by `python -m benchmarks`; see benchmarks/README.md for what each figure "
        "means and what bounds it.",
        "",
    ]
    for doc in docs:
        lines += section(doc)
    LATEST_MD.write_text("\n".join(lines))
    if docs:
        chart(docs)


def chart(docs: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(docs), CHART_COLUMNS)
    rows = -(-len(docs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.8 * rows), squeeze=False)
    panels = list(axes.flat)
    for ax, doc in zip(panels, docs, strict=False):
        BARS[doc["scenario"]](ax, doc)
    for ax in panels[len(docs) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(LATEST_PNG, dpi=110)
    plt.close(fig)


def _fanout_bars(ax: Any, doc: dict[str, Any]) -> None:
    labels = list(dict.fromkeys(e["label"] for e in doc["entries"]))
    sizes = doc["settings"]["sizes"]
    width = 0.8 / len(sizes)
    for k, size in enumerate(sizes):
        values = []
        for label in labels:
            match = [e for e in doc["entries"] if e["label"] == label and e["subscribers"] == size]
            ok = match and match[0]["status"] == "ok"
            values.append(match[0]["result"]["best_clean_per_s"] / 1000 if ok else 0)
        xs = [i + (k - (len(sizes) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=f"{size:,} subscribers")
    ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("k delivered msgs/s (no loss, p99 < 100 ms)")
    rooms = doc["settings"].get("rooms", 1)
    shape = f", {rooms} rooms" if rooms > 1 else ""
    ax.set_title(f"Fan-out{shape}, one core ({doc['stamp']}){_disturbance(doc)}", fontsize=10)
    ax.legend(fontsize=8)


def _idle_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = [e for e in doc["entries"] if e["status"] == "ok"]
    values = [e["result"]["rss_per_connection_kb"] for e in entries]
    ax.bar(range(len(entries)), values, color="tab:green")
    ax.set_xticks(
        range(len(entries)), [e["label"] for e in entries], rotation=15, ha="right", fontsize=8
    )
    ax.set_ylabel("server RSS KB per idle connection (lower is better)")
    title = f"Idle, {doc['settings']['connections']:,} connections ({doc['stamp']})"
    ax.set_title(title + _disturbance(doc), fontsize=10)


def _disturbance(doc: dict[str, Any]) -> str:
    """A second title line when other processes shared the machine during the run."""
    shares = [
        (e["result"].get("best_step") or e["result"]).get("other_cpu_share") or 0.0
        for e in doc["entries"]
        if e["status"] == "ok"
    ]
    worst = max(shares, default=0.0)
    if worst <= DISTURBED_OTHER_CPU:
        return ""
    return f"\nDISTURBED: other processes used up to {worst:.1f} cores"


def _named_bars(ax: Any, names: list[str], values: list[float], color: str) -> None:
    ax.bar(range(len(values)), values, color=color)
    ax.set_xticks(range(len(names)), names, rotation=15, ha="right", fontsize=8)


def _ok(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["entries"] if e["status"] == "ok"]


def _chat_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = _ok(doc)
    _named_bars(
        ax,
        [f"{e['target']}, {e['backend']}" for e in entries],
        [e["result"]["best_clean_per_s"] for e in entries],
        "tab:purple",
    )
    ax.set_ylabel(f"persisted msgs/s (no loss, p99 < {doc['settings']['p99_limit_ms']:.0f} ms)")
    title = f"Chat, {doc['settings']['conversations']:,} conversations ({doc['stamp']})"
    ax.set_title(title + _disturbance(doc), fontsize=10)


def _recovery_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = _ok(doc)
    names, values = [], []
    for e in entries:
        r = e["result"]
        names += ["all resubscribed", "all caught up"]
        values += [r["reconnect_s"], r["caught_up_s"] or 0.0]
    _named_bars(ax, names, values, "tab:orange")
    ax.set_ylabel("seconds after the storm began (lower is better)")
    lost = sum(e["result"]["lost"] for e in entries)
    dup = sum(e["result"]["duplicated"] for e in entries)
    title = f"Recovery, {doc['settings']['subscribers']:,} clients: lost {lost}, duplicated {dup}"
    ax.set_title(title + _disturbance(doc), fontsize=10)


def _rest_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = _ok(doc)
    for k, op in enumerate(("history", "send")):
        values = [next(p["per_s"] for p in e["result"]["phases"] if p["op"] == op) for e in entries]
        ax.bar([i + (k - 0.5) * 0.4 for i in range(len(entries))], values, 0.4, label=op)
    ax.set_xticks(
        range(len(entries)), [e["label"] for e in entries], rotation=15, ha="right", fontsize=8
    )
    ax.set_ylabel("requests/s (closed loop)")
    ax.set_title(f"REST, {doc['settings']['concurrency']} clients ({doc['stamp']})", fontsize=10)
    ax.legend(fontsize=8)


def _delivery_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = _ok(doc)
    _named_bars(
        ax,
        [e["target"] for e in entries],
        [e["result"]["emails_per_s"] for e in entries],
        "tab:red",
    )
    ax.set_ylabel("emails/s to the stand-in")
    settings = doc["settings"]
    title = f"Delivery, {settings['emails']:,} emails, provider answers after"
    ax.set_title(f"{title} {settings['provider_delay_ms']} ms", fontsize=10)


def _scaleout_bars(ax: Any, doc: dict[str, Any]) -> None:
    entries = _ok(doc)
    _named_bars(
        ax,
        [e["label"] for e in entries],
        [e["result"]["best_clean_per_s"] / 1000 for e in entries],
        "tab:cyan",
    )
    ax.set_ylabel("k delivered msgs/s (no loss, p99 < 100 ms)")
    title = f"Scale-out, unpinned on 2 cores: x{_num(doc.get('speedup_2_over_1'), 2)}"
    ax.set_title(title + _disturbance(doc), fontsize=10)


def _soak_lines(ax: Any, doc: dict[str, Any]) -> None:
    for e in _ok(doc):
        windows = e["result"]["windows"]
        starts = [w["start_s"] for w in windows]
        ax.plot(starts, [w["p99_ms"] or 0.0 for w in windows], marker="o", label="p99")
        ax.plot(starts, [w["p50_ms"] or 0.0 for w in windows], marker=".", label="p50")
    ax.set_xlabel("window start, s")
    ax.set_ylabel("latency ms (lower is better)")
    settings = doc["settings"]
    title = f"Soak, {settings['rate_per_s']:.0f} msgs/s, {settings['connections']:,} connections"
    ax.set_title(f"{title}{_disturbance(doc)}", fontsize=10)
    ax.legend(fontsize=8)


def _notify_bars(ax: Any, doc: dict[str, Any]) -> None:
    for e in (e for e in _ok(doc) if e.get("kind") != "single_push"):
        r = e["result"]
        _named_bars(
            ax,
            ["all stored", "push p99", "last email"],
            [r["stored_s"], (r["push_p99_ms"] or 0.0) / 1000, r["emails_last_s"] or 0.0],
            "tab:olive",
        )
    ax.set_ylabel("seconds after the alert was posted (lower is better)")
    title = f"Marketplace alert to {doc['settings']['users']:,} users"
    ax.set_title(f"{title}{_disturbance(doc)}", fontsize=10)


CHART_COLUMNS = 4
BARS = {
    "fanout": _fanout_bars,
    "fanout10k": _fanout_bars,
    "chat": _chat_bars,
    "idle": _idle_bars,
    "recovery": _recovery_bars,
    "rest": _rest_bars,
    "delivery": _delivery_bars,
    "notify": _notify_bars,
    "scaleout": _scaleout_bars,
    "soak": _soak_lines,
    "units": _units_bars,
}
