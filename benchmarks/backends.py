"""Fresh PostgreSQL databases and Redis key prefixes for one measurement, removed after it.

PostgreSQL at 127.0.0.1:5432 as `postgres` with trust authentication, Redis at
127.0.0.1:6379/0: the services a developer machine (and CI) runs for the test suite.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator

PG_ADMIN = ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "postgres", "-qc"]
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_TIMEOUT_S = 60.0
DELETE_BATCH = 500  # keys per DEL while cleaning up a prefix


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        subprocess.run([*PG_ADMIN, "select 1"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"PostgreSQL at 127.0.0.1:5432 unavailable: {exc}"
    return None


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A database of its own for one measurement (DATABASE_URL), dropped afterwards."""
    name = f"pitchey_bench_{secrets.token_hex(4)}"
    subprocess.run([*PG_ADMIN, f"CREATE DATABASE {name}"], check=True, timeout=ADMIN_TIMEOUT_S)
    try:
        yield PG_URL.format(name=name)
    finally:
        subprocess.run(
            [*PG_ADMIN, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            check=False,
            timeout=ADMIN_TIMEOUT_S,
        )


def redis_available() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except (OSError, redis.RedisError) as exc:
        return f"Redis at {REDIS_URL} unavailable: {exc}"
    return None


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A unique REDIS_PREFIX for one measurement; its keys are deleted afterwards."""
    import redis

    prefix = f"pitchey-bench-{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=DELETE_BATCH):
            batch.append(key)
            if len(batch) >= DELETE_BATCH:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        client.close()
