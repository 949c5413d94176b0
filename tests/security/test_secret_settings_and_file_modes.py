"""Weak production settings stop the start; the database, the development secret and
uploads are private to the service's user from the moment they exist."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.attachments.helpers import PNG, uploaded
from tests.conftest import TEST_ENV
from tests.servers import ROOT, ServerProcess, conversation, uid

STRONG = "s" * 32
# Every provider key emptied, so the developer's own environment cannot leak in.
NO_PROVIDER = {"SENDGRID_API_KEY": "", "AWS_SES_ACCESS_KEY": "", "AWS_SES_SECRET_KEY": ""}


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "1"],
        cwd=ROOT,
        env={**os.environ, **NO_PROVIDER, "DATA_DIR": str(tmp_path), "EMAIL_PROVIDER": "", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_production_refuses_a_jwt_secret_shorter_than_32_bytes(tmp_path: Path) -> None:
    result = _serve(tmp_path, ENVIRONMENT="production", JWT_SECRET="s" * 31, EMAIL_PROVIDER="dev")
    assert result.returncode == 2 and "JWT_SECRET" in result.stderr


def test_production_refuses_to_run_without_an_email_provider(tmp_path: Path) -> None:
    result = _serve(tmp_path, ENVIRONMENT="production", JWT_SECRET=STRONG)
    assert result.returncode == 2 and "EMAIL_PROVIDER" in result.stderr


@pytest.mark.parametrize(
    ("provider", "variable"),
    [("sendgrid", "SENDGRID_API_KEY"), ("ses", "AWS_SES_SECRET_KEY")],
)
def test_a_named_provider_without_its_keys_is_refused(
    tmp_path: Path, provider: str, variable: str
) -> None:
    result = _serve(tmp_path, JWT_SECRET=STRONG, EMAIL_PROVIDER=provider, AWS_SES_ACCESS_KEY="AKIA")
    assert result.returncode == 2 and variable in result.stderr


def test_production_runs_with_the_dev_provider_when_it_is_named(tmp_path: Path) -> None:
    proc = ServerProcess(
        tmp_path / "prod",
        {**NO_PROVIDER, "ENVIRONMENT": "production", "EMAIL_PROVIDER": "dev"},
    )
    proc.start()
    proc.stop()


async def test_a_fresh_data_dir_keeps_the_database_and_uploads_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    proc = ServerProcess(
        data,
        {**TEST_ENV, "DATABASE_URL": f"sqlite:///{data}/db/pitchey.db"},
    )
    proc.start()
    try:
        alice, bob = uid(), uid()
        conv = await conversation(proc, alice, bob)
        attachment = await uploaded(proc, alice, conv, PNG)
        database = data / "db" / "pitchey.db"
        for file in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert _mode(file) == 0o600, file
        assert _mode(data / "db") == 0o700
        objects = data / "objects"
        assert _mode(objects) == 0o700
        folders = [folder for folder in objects.iterdir() if folder.is_dir()]
        assert folders and all(_mode(folder) == 0o700 for folder in folders)
        stored = [file for folder in folders for file in folder.iterdir()]
        assert any(file.name == attachment for file in stored)
        assert all(_mode(file) == 0o600 for file in stored)
    finally:
        proc.stop()


def test_the_development_secret_is_created_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    subprocess.run(
        [sys.executable, "-m", "server", "token", "alice"],
        cwd=ROOT,
        env={**os.environ, "DATA_DIR": str(data), "JWT_SECRET": ""},
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert _mode(data / "jwt_secret") == 0o600
    assert _mode(data) == 0o700 and _mode(data.parent) == 0o700
