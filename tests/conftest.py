"""Shared fixtures: a real Dovecot on 127.0.0.1 (and, added by the SMTP tests, an aiosmtpd receiver)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dovecot import Dovecot, dovecot_binary
from smtp_receiver import smtp_receiver  # noqa: F401  (fixture: a recording aiosmtpd receiver on 127.0.0.1)

IMAP_PASSWORD_ENV = "LISTBOT_TEST_IMAP_PASSWORD"


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """A Dovecot started for this test (user `listbot`, password in $LISTBOT_TEST_IMAP_PASSWORD)."""
    if dovecot_binary() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("dovecot is not installed, and CI must run the IMAP tests (apt-get install dovecot-imapd)")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd) - IMAP integration tests skipped")
    server = Dovecot()
    monkeypatch.setenv(IMAP_PASSWORD_ENV, server.password)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def imap_section(server: Dovecot, **overrides: object) -> dict[str, object]:
    """The [imap] table of a config that reaches `server` (fast timeouts and backoff for tests)."""
    section: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "password_env": IMAP_PASSWORD_ENV,
        "security": "none",
        "idle_seconds": 30,
        "timeout_seconds": 5,
        "backoff_seconds": 0.05,
        "backoff_max_seconds": 0.3,
    }
    section.update(overrides)
    return section
