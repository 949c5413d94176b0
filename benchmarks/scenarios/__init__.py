"""One module per scenario. Each exposes METRICS and `run(targets, quick, stamp) -> dict`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure read from a measurement's result, compared as ours / peer."""

    key: str
    label: str
    higher_is_better: bool
    read: Callable[[dict[str, Any]], float | None]

    def of(self, entry: dict[str, Any]) -> float | None:
        return self.read(entry["result"]) if entry["status"] == "ok" else None
