"""Push across restarts, without keys, and the service worker as served."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import SettingsError, load_settings
from tests.conftest import TEST_ENV
from tests.push.conftest import (
    VAPID_PRIVATE,
    VAPID_PUBLIC,
    eventually,
    notify,
    pushes_to,
    subscribed,
)
from tests.servers import ROOT, ServerProcess, uid
from tests.standins.push_service import PushServiceStandin


async def test_a_push_waiting_for_its_retry_survives_kill_9(
    make_push_server: Any, pushsvc: PushServiceStandin, tmp_path: Path
) -> None:
    server: ServerProcess = make_push_server(tmp_path / "data")
    user_id, browser = await subscribed(server, pushsvc)
    # The push service is down for the first attempt: the push must wait in storage.
    pushsvc.answer(browser, 503, **{"Retry-After": "1"})
    notification_id = await notify(server, user_id, type="nda_request")

    # Killed once the retry is scheduled (a kill mid-attempt leaves the row leased to the
    # dead process for the lease's 50 s, which is the crash rule, not this test's subject).
    async def scheduled() -> bool:
        with sqlite3.connect(f"file:{server.data_dir}/pitchey.db?mode=ro", uri=True) as db:
            row = db.execute("SELECT attempts, claimed_until FROM push_outbox").fetchone()
        return row == (1, 0)

    await eventually(scheduled, what="the retry to be scheduled")
    server.kill()
    restarted = ServerProcess(server.data_dir, server.env, secret=server.secret)
    restarted.start()
    try:
        pushes = await pushes_to(pushsvc, browser, 2)
    finally:
        restarted.stop()
    assert {p.payload["notificationId"] for p in pushes} == {notification_id}


async def test_without_vapid_keys_push_is_off_and_says_so(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, dict(TEST_ENV))
    server.start()
    try:
        async with server.client(uid()) as http:
            key = await http.get("/api/push/public-key")
            body = {
                "endpoint": "https://push.example.com/x",
                "keys": {"p256dh": "B" * 87, "auth": "A" * 22},
            }
            subscribe = await http.post("/api/push/subscriptions", json=body)
    finally:
        server.stop()
    assert key.status_code == 404 and "VAPID" in key.json()["error"]["message"]
    assert subscribe.status_code == 404
    assert "web push is off" in server.log_tail(100_000)


async def test_the_service_worker_is_served_with_app_url_written_in(
    make_push_server: Any,
) -> None:
    server: ServerProcess = make_push_server(APP_URL="https://app.pitchey.test/")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/api/push/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["service-worker-allowed"] == "/"
    assert 'const APP_URL = "https://app.pitchey.test";' in response.text
    assert "__APP_URL__" not in response.text


def _vapid_env(**overrides: str) -> dict[str, str]:
    env = {
        "JWT_SECRET": "x" * 32,
        "VAPID_PUBLIC_KEY": VAPID_PUBLIC,
        "VAPID_PRIVATE_KEY": VAPID_PRIVATE,
        "VAPID_SUBJECT": "mailto:ops@pitchey.test",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"VAPID_SUBJECT": ""}, "VAPID_SUBJECT"),
        ({"VAPID_PRIVATE_KEY": ""}, "VAPID_PRIVATE_KEY"),
        ({"VAPID_SUBJECT": "ops@pitchey.test"}, "VAPID_SUBJECT"),
        ({"VAPID_PUBLIC_KEY": VAPID_PUBLIC[:-4] + "AAAA"}, "VAPID_PUBLIC_KEY"),
        ({"VAPID_PRIVATE_KEY": "AAAA"}, "VAPID_PRIVATE_KEY"),
    ],
)
def test_bad_vapid_settings_stop_the_start_naming_the_variable(
    overrides: dict[str, str], named: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings({**_vapid_env(**overrides), "DATA_DIR": str(tmp_path)})


def test_the_vapid_command_prints_a_pair_the_server_accepts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "vapid"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pair = dict(line.split("=", 1) for line in result.stdout.split())
    settings = load_settings(
        _vapid_env(
            VAPID_PUBLIC_KEY=pair["VAPID_PUBLIC_KEY"], VAPID_PRIVATE_KEY=pair["VAPID_PRIVATE_KEY"]
        )
    )
    assert settings.vapid_public_key == pair["VAPID_PUBLIC_KEY"]
    assert len(pair["VAPID_PUBLIC_KEY"]) == 87 and len(pair["VAPID_PRIVATE_KEY"]) == 43


async def test_metrics_show_the_push_outbox(
    make_push_server: Any, pushsvc: PushServiceStandin
) -> None:
    server: ServerProcess = make_push_server(PUSH_RETRY_BASE="30")
    user_id, browser = await subscribed(server, pushsvc)
    pushsvc.answer(browser, 503)
    await notify(server, user_id, type="nda_request")
    await pushes_to(pushsvc, browser)  # refused once: now waiting 15 s or more for its retry

    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    assert 'pitchey_delivery_queue_depth{queue="push"} 1.0' in text
