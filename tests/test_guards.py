"""The loop/abuse predicate, moderator proof from Authentication-Results, and the roster file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import from_dict
from bot.guards import refusal_reason
from bot.members import authenticated, is_member, is_moderator, load_roster, new_token

BOT = "listbot@example.org"
LIST = "wg@lists.example.org"


def reason(headers: dict[str, str] | None = None, sender: str = "anna@example.org", subject: str = "help") -> str | None:
    return refusal_reason(headers or {}, sender=sender, subject=subject, bot_address=BOT, list_address=LIST)


@pytest.mark.parametrize(
    "headers, sender, subject, expected",
    [
        ({}, "", "help", "no-sender"),
        ({}, BOT, "help", "own-mail"),
        ({"x-loop": BOT}, "anna@example.org", "help", "x-loop"),
        ({"auto-submitted": "auto-replied"}, "anna@example.org", "help", "auto-submitted"),
        ({"auto-submitted": "auto-generated; owner-email=x@y"}, "anna@example.org", "help", "auto-submitted"),
        ({"precedence": "bulk"}, "anna@example.org", "help", "precedence"),
        ({"precedence": "Junk"}, "anna@example.org", "help", "precedence"),
        ({"precedence": "list"}, "anna@example.org", "help", "precedence"),
        ({"x-autoreply": "yes"}, "anna@example.org", "help", "autoreply-header"),
        ({"x-auto-response-suppress": "OOF, AutoReply"}, "anna@example.org", "help", "autoreply-header"),
        ({"return-path": "<>"}, "anna@example.org", "help", "null-return-path"),
        ({}, "MAILER-DAEMON@mx.example.org", "help", "robot-sender"),
        ({}, "postmaster@example.org", "help", "robot-sender"),
        ({}, "no-reply@example.org", "help", "robot-sender"),
        ({}, "wg-bounces@lists.example.org", "help", "robot-sender"),
        ({}, "anna@example.org", "Out of office: re: help", "out-of-office"),
        ({}, "anna@example.org", "Abwesenheitsnotiz", "out-of-office"),
        ({}, "anna@example.org", "Réponse automatique : help", "out-of-office"),
        ({}, LIST, "help", "list-traffic"),
        ({"list-id": "Working Group <wg.lists.example.org>"}, "anna@example.org", "help", "list-traffic"),
        ({"auto-submitted": "no"}, "anna@example.org", "help", None),
        ({"precedence": "first-class", "return-path": "<anna@example.org>"}, "anna@example.org", "Re: help", None),
    ],
)
def test_each_reason(headers: dict[str, str], sender: str, subject: str, expected: str | None):
    # Each documented reason is found on its own; ordinary mail gets None.
    assert reason(headers, sender, subject) == expected


def test_every_reason_is_documented():
    # The docstring lists every reason the predicate can give.
    doc = refusal_reason.__doc__ or ""
    for name in ("no-sender", "own-mail", "x-loop", "auto-submitted", "precedence", "autoreply-header",
                 "null-return-path", "robot-sender", "out-of-office", "list-traffic"):
        assert f'"{name}"' in doc


@pytest.mark.parametrize(
    "header, ok",
    [
        ("mx.example.org; dkim=pass header.d=example.net; dmarc=pass (p=reject) header.from=example.net", True),
        ("mx.example.org 1; dmarc=pass header.from=example.net", True),
        ("MX.EXAMPLE.ORG; dkim=pass (2048-bit key) header.d=mail.example.net header.i=@mail.example.net", True),
        ("mx.example.org; dmarc=fail header.from=example.net; dkim=fail header.d=example.net", False),
        ("mx.example.org; dkim=pass header.d=attacker.example", False),
        ("mx.example.org; dmarc=pass header.from=attacker.example", False),
        ("evil.example; dmarc=pass header.from=example.net", False),
        ("mx.example.org; spf=pass smtp.mailfrom=example.net", False),
        ("", False),
    ],
)
def test_authentication_results(header: str, ok: bool):
    # Only the trusted server's DMARC pass, or an aligned DKIM pass, proves the From address.
    assert authenticated(header, sender="mod@example.net", authserv_id="mx.example.org") is ok


def test_nothing_is_trusted_without_an_authserv_id():
    # With no authserv_id configured, even a perfect header proves nothing.
    assert not authenticated("mx; dmarc=pass header.from=example.net", sender="mod@example.net", authserv_id="")


def test_roster_and_moderators(tmp_path: Path):
    # The roster file is one address a line ('#' comments, "Name <addr>" allowed), re-read when it changes.
    roster = tmp_path / "roster.txt"
    roster.write_text("# members\nAnna@Example.org\nBob <bob@example.org>  # chair\n\nnot an address\n")
    config = from_dict({"members": {"roster": str(roster), "moderators": ["Mod@Example.net"]}})
    assert load_roster(roster) == {"anna@example.org", "bob@example.org"}
    assert is_member("anna@example.org", config) and is_member("mod@example.net", config)
    assert not is_member("eve@example.org", config)
    assert is_moderator("mod@example.net", config) and not is_moderator("anna@example.org", config)
    roster.write_text("eve@example.org\n")
    os.utime(roster, (1, 1))
    assert is_member("eve@example.org", config) and not is_member("anna@example.org", config)
    missing = from_dict({"members": {"roster": str(tmp_path / "missing.txt")}})
    assert not is_member("anna@example.org", missing)


def test_tokens_are_unpredictable():
    # Tokens come from `secrets`: long, URL-safe, never repeated.
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000 and all(len(t) >= 20 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
