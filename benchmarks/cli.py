"""``python -m benchmarks run [SCENARIO] [--json] [--quick]`` and ``... report``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import machine, report
from benchmarks.scenarios import (
    Metric,
    chat,
    delivery,
    fanout,
    fanout10k,
    idle,
    notify,
    recovery,
    rest,
    scaleout,
    soak,
    units,
)
from benchmarks.targets import TARGET_NAMES, all_targets, ensure_node_modules

# In the order: `run all` measures them one after the other.
SCENARIOS: dict[str, ModuleType] = {
    "fanout": fanout,
    "fanout10k": fanout10k,
    "chat": chat,
    "idle": idle,
    "recovery": recovery,
    "rest": rest,
    "delivery": delivery,
    "notify": notify,
    "scaleout": scaleout,
    "soak": soak,
    "units": units,
}
OURS = "pitchey"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="measure, write results JSON, regenerate latest.md/png")
    run.add_argument("scenario", nargs="?", default="all", choices=[*SCENARIOS, "all"])
    run.add_argument("--json", action="store_true", help="print the results JSON on stdout")
    run.add_argument("--quick", action="store_true", help="shorter steps, fewer connections")
    run.add_argument(
        "--targets",
        default=",".join(TARGET_NAMES),
        help=f"comma-separated subset of {','.join(TARGET_NAMES)}",
    )
    defaults = soak.Options()
    run.add_argument(
        "--duration",
        type=float,
        help=f"soak: seconds of traffic (default {defaults.duration_s:.0f}; "
        f"{soak.QUICK.duration_s:.0f} with --quick)",
    )
    run.add_argument(
        "--rate", type=float, default=defaults.rate_per_s, help="soak: sent msgs/s, open loop"
    )
    run.add_argument(
        "--connections",
        type=int,
        default=defaults.connections,
        help="soak: connections, two per conversation",
    )
    run.add_argument(
        "--window", type=float, default=defaults.window_s, help="soak: seconds per window"
    )
    commands.add_parser("report", help="regenerate latest.md/png from the newest results")
    return parser.parse_args(argv)


def ratios(metrics: list[Metric], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each figure of ours divided by the same figure of each peer measured in this run, at
    the same size and, where entries name one (chat), on the same database."""
    out = []
    for metric in metrics:
        for ours in (e for e in entries if e["target"] == OURS):
            mine = metric.of(ours)
            for peer in entries:
                if peer["target"] == OURS or peer["subscribers"] != ours["subscribers"]:
                    continue
                if peer.get("backend") != ours.get("backend"):
                    continue
                theirs = metric.of(peer)
                ratio = round(mine / theirs, 3) if mine is not None and theirs else None
                out.append(
                    {
                        "metric": metric.key,
                        "subscribers": ours["subscribers"],
                        **({"backend": ours["backend"]} if "backend" in ours else {}),
                        "peer": peer["target"],
                        "ours": mine,
                        "peer_value": theirs,
                        "ratio": ratio,
                    }
                )
    return out


def soak_options(args: argparse.Namespace) -> soak.Options:
    duration = args.duration
    if duration is None:
        duration = (soak.QUICK if args.quick else soak.Options()).duration_s
    return soak.Options(
        duration_s=duration,
        rate_per_s=args.rate,
        connections=args.connections,
        window_s=args.window,
    )


def run(args: argparse.Namespace) -> int:
    chosen = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = set(chosen) - set(TARGET_NAMES)
    if unknown:
        print(f"unknown targets: {sorted(unknown)}", file=sys.stderr)
        return 2
    if any(name.startswith("socketio-node") for name in chosen):
        ensure_node_modules()
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    documents = []
    targets = [t for t in all_targets() if t.name in chosen]
    for name in names:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        module = SCENARIOS[name]
        if module is soak:
            outcome = soak.run(targets, args.quick, stamp, soak_options(args))
        else:
            outcome = module.run(targets, args.quick, stamp)
        document = {
            "scenario": name,
            "stamp": stamp,
            "quick": args.quick,
            "command": shlex.join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
            "machine": machine.describe(),
            **outcome,
            "ratios": ratios(module.METRICS, outcome["entries"]),
        }
        path = report.save(document)
        print(f"wrote {path}", file=sys.stderr)
        documents.append(document)
    report.regenerate()
    if args.json:
        json.dump(documents if len(documents) > 1 else documents[0], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.markdown())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "report":
        report.regenerate()
        print(report.markdown())
        return 0
    return run(args)
