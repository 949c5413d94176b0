"""Servers for the attachment tests: every test runs on the local folder and on S3 (moto).

moto's standalone server runs in its own process and speaks real HTTP; each server
under test gets its own pair of buckets, so servers never see each other's objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, moto_process, uid

STORAGE_BACKENDS = ("local", "s3")
# A small limit for the shared server: the size tests reach it with a 1 MiB + 1 body.
SMALL_LIMIT = 1024 * 1024

MakeServer = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    with moto_process() as url:
        yield url


def s3_client(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module", params=STORAGE_BACKENDS)
def storage_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def _env(storage_backend: str, moto_s3: str, env: dict[str, str]) -> dict[str, str]:
    settings = {**TEST_ENV, "STORAGE_BACKEND": storage_backend, **env}
    if storage_backend == "s3":
        client = s3_client(moto_s3)
        buckets = {"MESSAGE_ATTACHMENTS_BUCKET": uid("msg"), "EMAIL_ATTACHMENTS_BUCKET": uid("eml")}
        for bucket in buckets.values():
            client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        settings.update(buckets)
        settings.update(
            S3_ENDPOINT_URL=moto_s3,
            S3_REGION="us-east-1",
            S3_ACCESS_KEY="testing",
            S3_SECRET_KEY="testing",
        )
    return settings


@pytest.fixture(scope="module")
def att_server(
    tmp_path_factory: pytest.TempPathFactory, storage_backend: str, moto_s3: str
) -> Iterator[ServerProcess]:
    env = _env(storage_backend, moto_s3, {"ATTACHMENT_MAX_BYTES": str(SMALL_LIMIT)})
    proc = ServerProcess(tmp_path_factory.mktemp(f"attachments-{storage_backend}"), env)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def make_att_server(tmp_path: Path, storage_backend: str, moto_s3: str) -> Iterator[MakeServer]:
    """Servers with custom settings on the module's storage backend; stopped after the test."""
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        proc = ServerProcess(tmp_path / f"s{len(started)}", _env(storage_backend, moto_s3, env))
        started.append(proc)
        proc.start()
        return proc

    yield make
    for proc in started:
        proc.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`s3_only` tests (direct uploads, expiring links) are not collected for the local folder.

    Deselected rather than skipped: on the local backend there is nothing to test, and a
    skip would read as a missing service.
    """
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        local = params.get("storage_backend") == "local"
        (drop if local and item.get_closest_marker("s3_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
