"""TemplateRenderer: built-ins, escaping, overrides, reloads and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from delivery.render import MissingVariable, TemplateRenderer, UnknownTemplate

BUILTIN_SAMPLES: dict[str, dict[str, object]] = {
    "welcome": {"name": "Ann"},
    # The generic template for /api/notifications/send and types without their own.
    "notification": {
        "recipient_name": "Ann",
        "title": "Your pitch was shortlisted",
        "message": "Night Owl made the festival shortlist.",
        "url": "https://pitchey.test/p/1",
    },
    "nda_request": {
        "recipient_name": "Ann",
        "requester_name": "Bo",
        "pitch_title": "Night Owl",
        "review_url": "https://pitchey.test/nda/1",
    },
    "nda_approved": {
        "recipient_name": "Bo",
        "owner_name": "Ann",
        "pitch_title": "Night Owl",
        "pitch_url": "https://pitchey.test/p/1",
    },
    "nda_rejected": {"recipient_name": "Bo", "pitch_title": "Night Owl"},
    "investment_received": {
        "recipient_name": "Ann",
        "investor_name": "Cy",
        "amount": "$25,000",
        "pitch_title": "Night Owl",
        "dashboard_url": "https://pitchey.test/d",
    },
    "investment_confirmed": {
        "recipient_name": "Cy",
        "amount": "$25,000",
        "pitch_title": "Night Owl",
        "reference": "INV-7",
    },
    "production_update": {
        "recipient_name": "Cy",
        "pitch_title": "Night Owl",
        "update_title": "Casting done",
        "update_summary": "We cast the lead.",
        "pitch_url": "https://pitchey.test/p/1",
    },
    "marketplace_alert": {
        "recipient_name": "Cy",
        "pitches": [{"title": "Night Owl", "genre": "Thriller", "url": "https://p.test/1"}],
    },
    "unread_messages": {
        "recipient_name": "Ann",
        "inbox_url": "https://pitchey.test/inbox",
        "sender": "Bo",
        "others": 1,
        "count": 3,
        "senders": [{"name": "Bo", "count": 2}, {"name": "Cy", "count": 1}],
        "messages": [
            {"sender": "Bo", "conversation": "Night Owl NDA", "preview": "Signed!"},
            {"sender": "Cy", "conversation": "Funding", "preview": "Call tomorrow?"},
        ],
    },
    "notification_digest": {
        "recipient_name": "Ann",
        "notifications": [{"title": "New NDA request"}, {"title": "Pitch viewed 12 times"}],
    },
}


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


def test_unread_messages_names_the_senders_and_counts_and_lists_quoted_messages() -> None:
    rendered = TemplateRenderer().render("unread_messages", BUILTIN_SAMPLES["unread_messages"])

    assert rendered.subject == "New messages from Bo and 1 other"
    assert "You have 3 unread messages" in rendered.text
    assert "- Bo: 2 messages" in rendered.text and "- Cy: 1 message" in rendered.text
    assert "Bo in Night Owl NDA: Signed!" in rendered.text
    assert "Cy in Funding: Call tomorrow?" in rendered.text


def test_unread_messages_without_quoted_messages_name_sender_and_count_only() -> None:
    data = {**BUILTIN_SAMPLES["unread_messages"], "messages": []}

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
    with pytest.raises(MissingVariable, match=r"nda_request.*requester_name"):
        TemplateRenderer().render("nda_request", {"recipient_name": "Ann"})


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
