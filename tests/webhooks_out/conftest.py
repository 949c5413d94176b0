"""Fixtures of tests/webhooks_out/support.py (shared with tests/security)."""

from tests.webhooks_out.support import make_hooked, receiver, sendgrid

__all__ = ["make_hooked", "receiver", "sendgrid"]
