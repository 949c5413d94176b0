"""Versioned schema migrations, applied in order at start (and by `pitchey-comms migrate`).

Each module `mNNNN_name.py` defines `STATEMENTS` (portable SQL) and optionally
`SQLITE` / `POSTGRES` lists for dialect-specific statements. Numbers are never reused.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from types import ModuleType

from storage.db import Database

log = logging.getLogger("pitchey.migrations")

# Any constant works; it only has to be the same in every process of a deployment.
_PG_LOCK_KEY = 7_311_001


def _modules() -> list[tuple[int, str, ModuleType]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append((int(info.name[1:5]), info.name[6:], module))
    found.sort(key=lambda item: item[0])
    return found


async def migrate(db: Database) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now."""
    applied_now: list[int] = []
    async with db.transaction() as tx:
        if db.dialect == "postgres":
            # Several processes may start at once: one migrates, the others wait.
            await tx.execute("SELECT pg_advisory_xact_lock(?)", _PG_LOCK_KEY)
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        done = {row[0] for row in await tx.fetch("SELECT version FROM schema_migrations")}
        for version, name, module in _modules():
            if version in done:
                continue
            statements = list(getattr(module, "STATEMENTS", []))
            statements += getattr(module, "SQLITE" if db.dialect == "sqlite" else "POSTGRES", [])
            for statement in statements:
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                version,
                name,
                int(time.time() * 1000),
            )
            applied_now.append(version)
            log.info("applied migration %04d_%s", version, name)
    return applied_now
