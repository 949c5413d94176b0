"""Template variables, the template listing and one-click unsubscribe, through the API
and the SendGrid stand-in."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from delivery.template_catalog import BUILTIN, readme_table
from tests.delivery.test_template_renderer import BUILTIN_SAMPLES
from tests.email.support import EmailServer, ServerFactory, eventually, sendgrid_env
from tests.standins.sendgrid import SendGridStandin

README = Path(__file__).resolve().parents[2] / "README.md"


def address(name: str = "ann") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


async def sent_message(standin: SendGridStandin, email_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = [m for m in standin.messages() if m["custom_args"]["email_id"] == email_id]
        return found[0] if found else None

    return await eventually(probe, what=f"{email_id} at the stand-in")


def unsubscribe_url(message: dict[str, Any]) -> str:
    header = message.get("headers", {}).get("List-Unsubscribe", "")
    match = re.fullmatch(r"<(https?://[^>]+)>", header)
    assert match, header
    return match[1]


@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLES))
async def test_each_builtin_template_is_sent_from_exactly_its_documented_variables(
    mail: EmailServer, sendgrid: SendGridStandin, name: str
) -> None:
    email_id = await mail.accept({"to": address(), "template": name, "data": BUILTIN_SAMPLES[name]})

    message = await sent_message(sendgrid, email_id)

    assert message["subject"]
    html = next(c["value"] for c in message["content"] if c["type"] == "text/html")
    assert "Hi " + str(BUILTIN_SAMPLES[name]["name"]) in html


async def test_a_missing_required_variable_is_a_422_naming_it(mail: EmailServer) -> None:
    response = await mail.send(
        {"to": address(), "template": "nda_request", "data": {"name": "Ann", "pitchTitle": "X"}}
    )

    assert response.status_code == 422
    assert "requesterName" in response.json()["error"]["message"]


async def test_the_template_listing_shows_every_builtin_with_its_variables(
    mail: EmailServer,
) -> None:
    response = await mail.http.get("/api/email/templates")

    assert response.status_code == 200, response.text
    listed = {t["name"]: t for t in response.json()["items"]}
    for name, declared in BUILTIN.items():
        assert listed[name]["required"] == list(declared.required)
        assert listed[name]["optional"] == list(declared.optional)
        assert listed[name]["builtin"] is True


async def test_a_user_token_cannot_list_templates(mail: EmailServer) -> None:
    async with mail.proc.client("someone") as http:
        response = await http.get("/api/email/templates")

    assert response.status_code == 403


async def test_an_override_template_is_listed_with_the_variables_it_uses(
    make_email_server: ServerFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "pitch_featured.subject.j2").write_text("{{ pitchTitle }} is featured")
    (folder / "pitch_featured.html.j2").write_text("<p>Hi {{ name }}, see {{ appUrl }}</p>")
    (folder / "pitch_featured.txt.j2").write_text("Hi {{ name }}")
    (folder / "welcome.fr.subject.j2").write_text("Bienvenue, {{ name }}")
    server = await make_email_server(EMAIL_TEMPLATE_DIR=str(folder))

    listed = {t["name"]: t for t in (await server.http.get("/api/email/templates")).json()["items"]}

    assert listed["pitch_featured"]["required"] == ["name", "pitchTitle"]
    assert listed["pitch_featured"]["builtin"] is False
    assert listed["welcome"]["locales"] == ["fr"]


async def test_an_api_email_with_a_locale_uses_the_localized_subject(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "welcome.fr.subject.j2").write_text("Bienvenue, {{ name }}")
    server = await make_email_server(EMAIL_TEMPLATE_DIR=str(folder), **sendgrid_env(sendgrid))
    body = {"to": address(), "template": "welcome", "data": {"name": "Ann"}}

    french = await server.accept({**body, "locale": "fr"})
    plain = await server.accept(body)

    assert (await sent_message(sendgrid, french))["subject"] == "Bienvenue, Ann"
    assert (await sent_message(sendgrid, plain))["subject"] == "Welcome to Pitchey, Ann"


def test_the_readme_table_is_generated_from_the_catalog() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- templates:start -->\n", 1)[1].split("\n<!-- templates:end -->", 1)[0]

    assert table == readme_table()


# ---- one-click unsubscribe -------------------------------------------------------


async def test_a_non_critical_email_carries_one_click_unsubscribe_headers(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    email_id = await mail.accept({"to": address(), "template": "welcome", "data": {"name": "A"}})

    message = await sent_message(sendgrid, email_id)

    url = unsubscribe_url(message)
    assert url.startswith("https://pitchey.com/api/email/unsubscribe?token=")
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = next(c["value"] for c in message["content"] if c["type"] == "text/html")
    assert "Unsubscribe" in html


async def test_a_critical_email_carries_no_unsubscribe_header(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    data = BUILTIN_SAMPLES["nda_request"]
    email_id = await mail.accept({"to": address(), "template": "nda_request", "data": data})

    message = await sent_message(sendgrid, email_id)

    assert "List-Unsubscribe" not in message.get("headers", {})


async def test_posting_the_link_suppresses_the_address_and_a_replay_is_still_200(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    to = address("unsub")
    email_id = await mail.accept({"to": to, "subject": "News", "text": "Hello"})
    query = urlsplit(unsubscribe_url(await sent_message(sendgrid, email_id))).query
    token = parse_qs(query)["token"][0]

    async with httpx.AsyncClient(base_url=mail.proc.url) as anonymous:
        page = await anonymous.get("/api/email/unsubscribe", params={"token": token})
        first = await anonymous.post(
            "/api/email/unsubscribe",
            params={"token": token},
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        again = await anonymous.post("/api/email/unsubscribe", params={"token": token})

    assert page.status_code == 200 and '<form method="post"' in page.text
    assert (first.status_code, again.status_code) == (200, 200)
    later = await mail.accept({"to": to, "subject": "More news", "text": "Hello"})
    assert (await mail.wait_status(later, "suppressed"))["status"] == "suppressed"


async def test_the_confirmation_page_changes_nothing(
    mail: EmailServer, sendgrid: SendGridStandin
) -> None:
    to = address("look")
    email_id = await mail.accept({"to": to, "subject": "News", "text": "Hello"})
    url = unsubscribe_url(await sent_message(sendgrid, email_id))
    token = parse_qs(urlsplit(url).query)["token"][0]

    async with httpx.AsyncClient(base_url=mail.proc.url) as anonymous:
        await anonymous.get("/api/email/unsubscribe", params={"token": token})

    later = await mail.accept({"to": to, "subject": "More news", "text": "Hello"})
    assert (await mail.wait_status(later, "sent"))["status"] == "sent"


async def test_public_url_sets_the_unsubscribe_links_host(
    make_email_server: ServerFactory, sendgrid: SendGridStandin
) -> None:
    server = await make_email_server(
        PUBLIC_URL="https://comms.example.test/", **sendgrid_env(sendgrid)
    )
    email_id = await server.accept({"to": address(), "subject": "Hi", "text": "Hi"})

    url = unsubscribe_url(await sent_message(sendgrid, email_id))

    assert url.startswith("https://comms.example.test/api/email/unsubscribe?token=")
