"""Fixtures that start real servers.

Every test uses fresh user ids, so one server serves a whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ServerProcess

# Limits low enough for tests to reach, high enough not to trip by accident.
TEST_ENV = {
    "ENVIRONMENT": "test",
    "WS_IDLE_TIMEOUT": "0",
    "TYPING_TTL": "0.5",
    # Tests share users across many sends; the limit itself is tested with its own servers.
    "MESSAGE_RATE_LIMIT_PER_MINUTE": "100000",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("server"), dict(TEST_ENV))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """Start servers with custom settings; all are stopped after the test."""
    started: list[ServerProcess] = []

    def make(data_dir: Path | None = None, **env: str) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / f"s{len(started)}", {**TEST_ENV, **env})
        proc.start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()
