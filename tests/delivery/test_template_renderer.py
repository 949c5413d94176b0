"""TemplateRenderer: built-ins, escaping, overrides, reloads and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from delivery.render import MissingVariable, TemplateRenderer, UnknownTemplate

# Exactly the required variables of each template (delivery/template_catalog.py), plus
# the optional lists where a test looks at them.
BUILTIN_SAMPLES: dict[str, dict[str, object]] = {
    "welcome": {"name": "Ann"},
    # The generic template for /api/notifications/send and types without their own.
    "notification": {
        "name": "Ann",
        "title": "Your pitch was shortlisted",
        "message": "Night Owl made the festival shortlist.",
    },
    "nda_request": {"name": "Ann", "requesterName": "Bo", "pitchTitle": "Night Owl"},
    "nda_approved": {"name": "Bo", "ownerName": "Ann", "pitchTitle": "Night Owl"},
    "nda_rejected": {"name": "Bo", "ownerName": "Ann", "pitchTitle": "Night Owl"},
    "investment_received": {
        "name": "Ann",
        "investorName": "Cy",
        "pitchTitle": "Night Owl",
        "amount": 25000,
        "currency": "USD",
    },
    "investment_confirmed": {
        "name": "Cy",
        "pitchTitle": "Night Owl",
        "amount": 25000,
        "currency": "USD",
    },
    "production_update": {"name": "Cy", "pitchTitle": "Night Owl", "stage": "casting"},
    "marketplace_alert": {
        "name": "Cy",
        "items": [{"pitchTitle": "Night Owl", "genre": "Thriller", "url": "https://p.test/1"}],
    },
    "unread_messages": {"name": "Ann", "count": 3},
    "notification_digest": {
        "name": "Ann",
        "items": [
            {"title": "New NDA request", "message": "Bo asks", "createdAt": "2026-01-01T00:00Z"},
            {"title": "Pitch viewed", "message": "12 times", "createdAt": "2026-01-02T00:00Z"},
        ],
    },
}
UNREAD_WITH_SENDERS: dict[str, object] = {
    "name": "Ann",
    "sender": "Bo",
    "others": 1,
    "count": 3,
    "senders": [{"name": "Bo", "count": 2}, {"name": "Cy", "count": 1}],
    "messages": [
        {"sender": "Bo", "conversation": "Night Owl NDA", "preview": "Signed!"},
        {"sender": "Cy", "conversation": "Funding", "preview": "Call tomorrow?"},
    ],
}
APP = "https://app.example.test"


def write_template(folder: Path, name: str, subject: str, html: str, text: str) -> None:
    (folder / f"{name}.subject.j2").write_text(subject)
    (folder / f"{name}.html.j2").write_text(html)
    (folder / f"{name}.txt.j2").write_text(text)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_every_builtin_template_renders_subject_html_and_text() -> None:
    renderer = TemplateRenderer()

    assert renderer.names() == sorted(BUILTIN_SAMPLES)
    for name, data in BUILTIN_SAMPLES.items():
        rendered = renderer.render(name, data)
        assert rendered.subject and "\n" not in rendered.subject, name
        assert "<html" in rendered.html and "Pitchey" in rendered.text, name


@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLES))
def test_each_builtin_template_needs_each_of_its_required_variables(name: str) -> None:
    renderer = TemplateRenderer()
    for key in BUILTIN_SAMPLES[name]:
        if key in ("items",) and name in ("marketplace_alert", "notification_digest"):
            data = {**BUILTIN_SAMPLES[name], "items": []}  # may be empty, not absent
            assert renderer.render(name, data).subject
        data = {k: v for k, v in BUILTIN_SAMPLES[name].items() if k != key}
        with pytest.raises(MissingVariable, match=key):
            renderer.render(name, data)


@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLES))
def test_every_link_and_the_preferences_footer_come_from_app_url(name: str) -> None:
    rendered = TemplateRenderer(app_url=APP + "/").render(name, BUILTIN_SAMPLES[name])

    assert "pitchey.com" not in rendered.html + rendered.text
    assert f'href="{APP}/settings/notifications"' in rendered.html
    assert f"Email preferences: {APP}/settings/notifications" in rendered.text


def test_amounts_are_shown_with_their_currency() -> None:
    rendered = TemplateRenderer().render(
        "investment_received", BUILTIN_SAMPLES["investment_received"]
    )

    assert rendered.subject == 'New investment of USD 25,000.00 in "Night Owl"'


def test_a_localized_template_is_chosen_by_locale_and_falls_back_to_the_plain_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "welcome.fr.subject.j2").write_text("Bienvenue, {{ name }}")
    renderer = TemplateRenderer(tmp_path)

    assert renderer.render("welcome", {"name": "Ann"}, locale="fr").subject == "Bienvenue, Ann"
    assert renderer.render("welcome", {"name": "Ann"}, locale="fr-CA").subject == ("Bienvenue, Ann")
    # No French body: the plain one is used for those parts.
    assert "Welcome to Pitchey" in renderer.render("welcome", {"name": "Ann"}, locale="fr").text
    assert renderer.render("welcome", {"name": "Ann"}, locale="de").subject == (
        "Welcome to Pitchey, Ann"
    )
    assert renderer.render("welcome", {"name": "Ann"}, locale="../x").subject == (
        "Welcome to Pitchey, Ann"
    )


def test_unread_messages_names_the_senders_and_counts_and_lists_quoted_messages() -> None:
    rendered = TemplateRenderer().render("unread_messages", UNREAD_WITH_SENDERS)

    assert rendered.subject == "New messages from Bo and 1 other"
    assert "You have 3 unread messages" in rendered.text
    assert "- Bo: 2 messages" in rendered.text and "- Cy: 1 message" in rendered.text
    assert "Bo in Night Owl NDA: Signed!" in rendered.text
    assert "Cy in Funding: Call tomorrow?" in rendered.text


def test_unread_messages_without_quoted_messages_name_sender_and_count_only() -> None:
    data = {**UNREAD_WITH_SENDERS, "messages": []}

    rendered = TemplateRenderer().render("unread_messages", data)

    assert rendered.subject == "New messages from Bo and 1 other"
    assert "Night Owl NDA" not in rendered.html and "Signed!" not in rendered.text


def test_user_data_cannot_inject_markup_into_html() -> None:
    data = {**BUILTIN_SAMPLES["welcome"], "name": "<script>alert(1)</script>"}

    rendered = TemplateRenderer().render("welcome", data)

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text  # plain text is not HTML-escaped


def test_subject_never_contains_line_breaks() -> None:
    data = {"name": "Ann\r\nBcc: victim@example.com"}

    rendered = TemplateRenderer().render("welcome", data)

    assert rendered.subject == "Welcome to Pitchey, Ann Bcc: victim@example.com"


def test_missing_variable_is_a_clear_error() -> None:
    with pytest.raises(MissingVariable, match=r"nda_request.*requesterName, pitchTitle"):
        TemplateRenderer().render("nda_request", {"name": "Ann"})


def test_unknown_template_is_an_error() -> None:
    renderer = TemplateRenderer()

    with pytest.raises(UnknownTemplate, match="no_such"):
        renderer.render("no_such", {})
    assert not renderer.exists("../render")


def test_override_folder_replaces_a_builtin_and_adds_new_templates(tmp_path: Path) -> None:
    write_template(tmp_path, "welcome", "Hey {{ name }}", "<b>{{ name }}</b>", "Hey")
    write_template(tmp_path, "pitch_featured", "Featured", "<p>yes</p>", "yes")
    renderer = TemplateRenderer(tmp_path)

    assert renderer.render("welcome", {"name": "Ann"}).subject == "Hey Ann"
    assert renderer.exists("pitch_featured")
    assert "pitch_featured" in renderer.names()
    assert renderer.render("nda_rejected", BUILTIN_SAMPLES["nda_rejected"]).subject


def test_edited_template_is_reloaded_when_its_mtime_changes(tmp_path: Path) -> None:
    write_template(tmp_path, "note", "First", "<p>1</p>", "1")
    renderer = TemplateRenderer(tmp_path, clock=FakeClock())
    assert renderer.render("note", {}).subject == "First"

    subject = tmp_path / "note.subject.j2"
    subject.write_text("Second")
    stat = subject.stat()
    os.utime(subject, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert renderer.render("note", {}).subject == "Second"


def test_compiled_templates_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = FakeClock()
    write_template(tmp_path, "note", "First", "<p>1</p>", "1")
    renderer = TemplateRenderer(tmp_path, ttl_seconds=3600, clock=clock)
    renderer.render("note", {})
    subject = tmp_path / "note.subject.j2"
    mtime = subject.stat().st_mtime_ns
    subject.write_text("Second")
    os.utime(subject, ns=(mtime, mtime))  # an edit that mtime cannot see

    assert renderer.render("note", {}).subject == "First"
    clock.now += 3600
    assert renderer.render("note", {}).subject == "Second"
