"""Settings are validated at start with clear messages; the CLI prints working tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from server.settings import SettingsError, load_settings
from tests.servers import ROOT, ServerProcess


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MESSAGE_RATE_LIMIT_PER_MINUTE"):
        load_settings({"MESSAGE_RATE_LIMIT_PER_MINUTE": "-3", "JWT_SECRET": "x" * 32})


def test_non_numeric_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="WS_MAX_FRAME_BYTES"):
        load_settings({"WS_MAX_FRAME_BYTES": "big", "JWT_SECRET": "x" * 32})


def test_production_requires_jwt_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings({"ENVIRONMENT": "production", "DATA_DIR": str(tmp_path)})


def test_development_secret_is_created_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"DATA_DIR": str(tmp_path)})
    second = load_settings({"DATA_DIR": str(tmp_path)})
    assert first.jwt_secret == second.jwt_secret and len(first.jwt_secret) >= 32
    assert (tmp_path / "jwt_secret").read_text() == first.jwt_secret


def test_allowed_origins_is_a_comma_list() -> None:
    settings = load_settings(
        {"ALLOWED_ORIGINS": "https://a.example, https://b.example", "JWT_SECRET": "s"}
    )
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


def test_cli_refuses_bad_settings_with_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        cwd=ROOT,
        env={**os.environ, "WS_PING_INTERVAL": "0", "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "WS_PING_INTERVAL" in result.stderr


def test_cli_workers_without_redis_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "DATA_DIR": str(tmp_path), "REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "REDIS_URL" in result.stderr


async def test_cli_token_is_accepted_by_the_server(server: ServerProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "token", "carol", "--name", "Carol", "--ttl", "60"],
        cwd=ROOT,
        env={**os.environ, "JWT_SECRET": server.secret},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    token = result.stdout.strip()
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(
            "/api/messages/conversations", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200


def test_upstash_rest_url_alone_earns_one_warning_naming_redis_url(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(UPSTASH_REDIS_REST_URL="https://eu1-example.upstash.io")

    log = server.log_tail(200_000)

    assert log.count("UPSTASH_REDIS_REST_URL is set but REDIS_URL is not") == 1
    assert "rediss://" in log


def test_data_dir_holds_the_sqlite_file_when_database_url_is_unset(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path / "elsewhere"), "JWT_SECRET": "x" * 32})

    assert settings.database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'pitchey.db'}"


def test_database_url_wins_over_data_dir(tmp_path: Path) -> None:
    url = "postgresql://pitchey@db.internal/pitchey"
    settings = load_settings({"DATA_DIR": str(tmp_path), "DATABASE_URL": url, "JWT_SECRET": "x"})

    assert settings.database_url == url
