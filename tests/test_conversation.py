"""Conversations with the running daemon: mail APPENDed to a real Dovecot, replies caught by aiosmtpd.

Every command's registry examples, replies from Gmail and Outlook, the confirmation round trip, and the
abuse cases (loops, out-of-office, a flood, header injection) go through app.serve end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aioimaplib
import pytest
from conftest import imap_section
from dovecot import Dovecot
from smtp_receiver import Receiver

from bot.commands import REGISTRY
from bot.config import Config, from_dict
from bot.store import Store

pytestmark = pytest.mark.dovecot

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
BOT = "listbot@example.org"
MEMBER = "anna@example.org"
BOT2 = "bot2@example.com"
MOD = "mod@example.net"
AUTHSERV = "mx.example.org"
TRUSTED = f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=example.net; dmarc=pass header.from=example.net"


def make_config(dovecot: Dovecot, receiver: Receiver, tmp: Path, **members: Any) -> Config:
    roster = tmp / "roster.txt"
    roster.write_text(f"{MEMBER}\n{BOT2}\nbob@example.org\n")
    return from_dict({
        "list": {"address": "wg@lists.example.org", "id": "wg.lists.example.org", "timezone": "Europe/Berlin"},
        "bot": {"address": BOT},
        "embedded": {"enabled": False},
        "imap": imap_section(dovecot),
        "smtp": {"host": "127.0.0.1", "port": receiver.port, "security": "none", "password_env": "",
                 "timeout_seconds": 5},
        "store": {"path": str(tmp / "store.sqlite3")},
        "members": {"roster": str(roster), "moderators": [MOD], "authserv_id": AUTHSERV, **members},
        "reminders": {"tick_seconds": 3600},
    })


def seed(config: Config) -> None:
    """Item 1: an uncertain deadline; 2: a meeting; 3: a later deadline; a meeting report; reminder r1 of MOD."""
    store = Store.open(config.store.path)
    tz = config.tz
    try:
        store.add_message(message_id="<post1@example.org>", subject="CfC: charter", sender=MEMBER,
                          date=NOW - timedelta(days=3), now=NOW - timedelta(days=3))
        store.save_item(type="deadline", what="Comments on the charter", start="2026-09-20", end=None, tz=tz,
                        now=NOW, message_id="<post1@example.org>", text="Please comment by 20 September.",
                        approx=True)
        store.save_item(type="meeting", what="WS2 call", start="2026-09-14T15:00:00+02:00",
                        end="2026-09-14T16:00:00+02:00", tz=tz, now=NOW, message_id="<post1@example.org>",
                        text="WS2 call on 14 Sept, 15:00 CEST.")
        store.save_item(type="deadline", what="Final report", start="2027-03-01", end=None, tz=tz, now=NOW,
                        message_id="<post1@example.org>", text="Final report due 1 March 2027.")
        store.add_message(message_id="<report1@example.org>", subject="Minutes 2026-08-31", sender=MEMBER,
                          date=datetime(2026, 9, 1, 8, tzinfo=UTC), now=NOW, kind="meeting_report",
                          summary={"title": "WS2 minutes", "date": "2026-08-31",
                                   "sections": [{"heading": "Charter", "gist": "Agreed to comment"}],
                                   "decisions": ["Adopt draft 3"], "next_steps": ["Anna sends feedback"]})
        store.add_reminder(MOD, now=NOW, item_id=2, offsets=["1d"])
    finally:
        store.close()


class Talk:
    """Mail to the bot through Dovecot; its answers from the SMTP receiver."""

    def __init__(self, dovecot: Dovecot, receiver: Receiver) -> None:
        self.dovecot = dovecot
        self.receiver = receiver
        self.n = 0
        self.parsed: list[EmailMessage] = []

    def mail(self, body: str, *, subject: str = "", sender: str = MEMBER, headers: str = "",
             html: bool = False) -> tuple[str, bytes]:
        self.n += 1
        mid = f"<talk{self.n}.{time.monotonic_ns()}@example.org>"
        head = (f"From: Someone <{sender}>\nTo: {BOT}\nSubject: {subject}\nMessage-ID: {mid}\n"
                "Date: Tue, 01 Sep 2026 10:00:00 +0000\n")
        head += headers.strip() + "\n" if headers.strip() else ""
        head += f"Content-Type: text/{'html' if html else 'plain'}; charset=utf-8\n"
        return mid, head.replace("\n", "\r\n").encode() + b"\r\n" + body.replace("\n", "\r\n").encode()

    async def append(self, *raws: bytes) -> None:
        client = aioimaplib.IMAP4("127.0.0.1", self.dovecot.port, timeout=10)
        await client.wait_hello_from_server()
        await client.login(self.dovecot.user, self.dovecot.password)
        for raw in raws:
            response = await client.append(raw, mailbox="INBOX")
            assert response.result == "OK", response
        await client.logout()

    def replies_to(self, mid: str) -> list[EmailMessage]:
        # Each delivery is parsed once (parsing blocks the loop the daemon runs in).
        deliveries = list(self.receiver.deliveries)
        for d in deliveries[len(self.parsed):]:
            msg = email.message_from_bytes(d.data, policy=email.policy.default)
            self.parsed.append(msg)
        return [m for m in self.parsed if str(m.get("In-Reply-To", "")).strip() == mid]

    async def answers(self, *mids: str, timeout: float = 8.0) -> list[EmailMessage]:
        """The one reply to each mail, in order (fails when one does not come)."""
        deadline = time.monotonic() + timeout
        while not all(self.replies_to(m) for m in mids):
            if time.monotonic() > deadline:
                missing = [m for m in mids if not self.replies_to(m)]
                raise AssertionError(f"no reply to {len(missing)} of {len(mids)} mails, e.g. {missing[0]}")
            await asyncio.sleep(0.02)
        return [self.replies_to(m)[0] for m in mids]

    async def say(self, body: str, **kw: Any) -> EmailMessage:
        mid, raw = self.mail(body, **kw)
        await self.append(raw)
        return (await self.answers(mid))[0]

    async def no_answer(self, *raws: bytes) -> None:
        """These mails get no answer: a member's mail appended after them is answered, and they are not."""
        mids = [str(email.message_from_bytes(r)["Message-ID"]) for r in raws]
        sentinel, raw = self.mail("help", subject="sentinel", sender="bob@example.org")
        await self.append(*raws, raw)
        await self.answers(sentinel)  # processed in order: everything before it was handled
        await asyncio.sleep(0.2)  # and sent: the sender sends in queue order, but give it a moment
        assert [m for m in mids if self.replies_to(m)] == []


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@asynccontextmanager
async def conversation(config: Config, dovecot: Dovecot, receiver: Receiver) -> AsyncIterator[Talk]:
    from bot import app

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(app.serve(config, stop=stop, ready=ready, now_fn=lambda: NOW))
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task in done:
        task.result()
    assert ready.is_set(), "the daemon did not get ready"
    try:
        yield Talk(dovecot, receiver)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
def config(dovecot: Dovecot, smtp_receiver: Receiver, tmp_path: Path) -> Config:
    c = make_config(dovecot, smtp_receiver, tmp_path)
    seed(c)
    return c


def ordered_examples() -> list[tuple[str, str]]:
    """Every registry example, the ones that withdraw item 1 last (the others still need it)."""
    pairs = [(name, e) for name, cmd in sorted(REGISTRY.items()) for e in cmd.examples]
    return [p for p in pairs if p[0] != "reject"] + [p for p in pairs if p[0] == "reject"]


def sections(body: str) -> dict[str, str]:
    """The Results part of a reply, as {command line: its result text}."""
    results = body.split("- Results:\n", 1)[1].split("\n- ", 1)[0]
    out = {}
    for chunk in ("\n" + results).split("\n> ")[1:]:
        line, _, text = chunk.partition("\n")
        out[line] = text
    return out


async def test_every_registry_example_through_the_daemon(dovecot: Dovecot, smtp_receiver: Receiver, tmp_path: Path):
    # Every example of every command, one a line in a proven moderator's mail, is repeated in the one
    # reply with its own result and no error; the .ics examples attach calendars; a member's 'help'
    # lists every command with an example.
    config = make_config(dovecot, smtp_receiver, tmp_path)
    config = dataclasses.replace(config, bot=dataclasses.replace(config.bot, max_command_lines=60))
    seed(config)
    examples = ordered_examples()
    async with conversation(config, dovecot, smtp_receiver) as talk:
        reply = await talk.say("\n".join(e for _, e in examples), subject="trying it", sender=MOD, headers=TRUSTED)
        help_reply = await talk.say("help")
    body = text_of(reply)
    results = sections(body)
    assert list(results) == [e for _, e in examples]
    for example, text in results.items():
        for failure in ("Error:", "Refused:", "Not done yet"):
            assert failure not in text, (example, text)
    assert "- Unprocessed:" not in body and "- Ignored:" not in body
    assert reply["Subject"] == "Re: trying it" and reply["To"] == MOD
    assert reply["Auto-Submitted"] == "auto-replied" and reply["X-Loop"] == BOT
    names = [a.get_filename() for a in reply.iter_attachments()]
    assert names[:3] == ["item-1.ics", "listbot-all.ics", "meeting-2.ics"]
    help_text = text_of(help_reply)
    for cmd in REGISTRY.values():
        assert f"Example: {cmd.examples[0]}" in help_text
    # Nobody else got anything (the personal digest 'digest now' queued may still be in the outbox at stop).
    assert set(smtp_receiver.recipients()) == {MEMBER, MOD}


GMAIL_REPLY = """show 2

On Tue, 1 Sep 2026 at 12:00, listbot <listbot@example.org> wrote:
{quoted}
"""

OUTLOOK_REPLY = """help remind

________________________________
From: listbot <listbot@example.org>
Sent: Tuesday, September 1, 2026 12:00
To: Anna <anna@example.org>
Subject: Re: upcoming

{unquoted}
"""


async def test_gmail_and_outlook_replies_run_only_the_new_command(config: Config, dovecot: Dovecot,
                                                                   smtp_receiver: Receiver):
    # A reply with the command on top, quoting our previous answer (Gmail: '>' lines; Outlook: a header
    # block and the old text unquoted), runs the new command only, never the quoted ones.
    async with conversation(config, dovecot, smtp_receiver) as talk:
        first = await talk.say("upcoming\nreminders", subject="upcoming")
        old = text_of(first)
        quoted = "\n".join("> " + line for line in old.splitlines())
        headers = f"In-Reply-To: {first['Message-ID']}\nReferences: {first['Message-ID']}"
        gmail = await talk.say(GMAIL_REPLY.format(quoted=quoted), subject="Re: upcoming", headers=headers)
        outlook = await talk.say(OUTLOOK_REPLY.format(unquoted=old), subject="RE: upcoming", headers=headers)
        html = await talk.say("<div>next</div><div><br></div><div class=\"gmail_quote\">"
                              "<div>On Tue, 1 Sep 2026, listbot wrote:</div><blockquote>upcoming</blockquote></div>",
                              subject="Re: upcoming", headers=headers, html=True)
    g = text_of(gmail)
    assert "> show 2\n" in g and "> upcoming" not in g and "> reminders" not in g
    assert '"WS2 call on 14 Sept, 15:00 CEST."' in g
    o = text_of(outlook)
    assert "> help remind\n" in o and "> upcoming" not in o and "remind me on 14 Sept 9:00" in o
    h = text_of(html)
    assert "> next\n" in h and "> upcoming" not in h
    for reply in (gmail, outlook, html):
        assert str(reply["Subject"]).startswith("Re: ")


async def test_forged_moderator_then_token_round_trip(config: Config, dovecot: Dovecot, smtp_receiver: Receiver):
    # A moderator command with a forged From (no trusted DMARC pass) changes nothing and asks for a token;
    # the token, sent back by the moderator, runs it once; the same token again does nothing.
    async with conversation(config, dovecot, smtp_receiver) as talk:
        forged = await talk.say("cancel 2", sender=MOD,
                                headers="Authentication-Results: evil.example; dmarc=pass header.from=example.net")
        body = text_of(forged)
        assert "needs confirmation" in body
        store = Store.open(config.store.path)
        try:
            assert store.item(2).status == "active"  # type: ignore[union-attr]
        finally:
            store.close()
        token = body.split("\nconfirm ")[1].split()[0]
        quoted = "\n".join("> " + line for line in body.splitlines())
        confirmed = await talk.say(f"confirm {token}\n\n{quoted}", sender=MOD, subject="Re: cancel 2",
                                   headers=f"In-Reply-To: {forged['Message-ID']}")
        again = await talk.say(f"confirm {token}", sender=MOD)
    assert "Token accepted" in text_of(confirmed) and "Item [2] is cancelled" in text_of(confirmed)
    assert "used already" in text_of(again)
    store = Store.open(config.store.path)
    try:
        item = store.item(2)
        assert item is not None and item.status == "cancelled"
        assert [(c.actor, c.field, c.new) for c in store.history(2)][-1] == (MOD, "status", "cancelled")
    finally:
        store.close()


async def test_loops_out_of_office_and_list_traffic_get_no_answer(config: Config, dovecot: Dovecot,
                                                                  smtp_receiver: Receiver):
    # Two bots stop after one exchange; an out-of-office reply, an Auto-Submitted mail and a command
    # posted to the list are not answered.
    async with conversation(config, dovecot, smtp_receiver) as talk:
        ours = await talk.say("help", subject="help", sender=BOT2)
        quoted = "\n".join("> " + line for line in text_of(ours).splitlines())
        _, echo = talk.mail(f"Thank you for your message, we will get back to you.\n\n{quoted}",
                            subject=f"Re: {ours['Subject']}", sender=BOT2,
                            headers=f"In-Reply-To: {ours['Message-ID']}\nReferences: {ours['Message-ID']}")
        _, polite_bot = talk.mail(text_of(ours), subject=f"Re: {ours['Subject']}", sender=BOT2,
                                  headers=f"Auto-Submitted: auto-replied\nIn-Reply-To: {ours['Message-ID']}")
        _, ooo = talk.mail("I am out of the office until Monday.", subject="Out of Office: help", sender=MEMBER)
        _, to_list = talk.mail("upcoming", subject="upcoming", sender=MEMBER,
                               headers="List-Id: WG <wg.lists.example.org>\nCc: listbot@example.org")
        await talk.no_answer(echo, polite_bot, ooo, to_list)
    assert BOT2 in smtp_receiver.recipients() and smtp_receiver.recipients().count(BOT2) == 1
    assert "wg@lists.example.org" not in smtp_receiver.recipients()


FLOOD = 1000


async def test_a_thousand_commands_in_a_minute(config: Config, dovecot: Dovecot, smtp_receiver: Receiver):
    # 1,000 command mails from one member: rate_per_hour replies and one notice reach them, no more.
    limit = config.members.rate_per_hour
    async with conversation(config, dovecot, smtp_receiver) as talk:
        flood = [talk.mail("upcoming 7") for _ in range(FLOOD)]
        await talk.append(*(raw for _, raw in flood[: limit + 1]))
        await talk.answers(*(mid for mid, _ in flood[: limit + 1]), timeout=20)
        await talk.no_answer(*(raw for _, raw in flood[limit + 1 :]))
    to_member = [d for d in smtp_receiver.deliveries if MEMBER in d.rcpt_tos]
    assert len(to_member) == limit + 1
    last = email.message_from_bytes(to_member[-1].data, policy=email.policy.default)
    assert "not processed" in text_of(last)


async def test_header_injection_adds_no_recipient(config: Config, dovecot: Dovecot, smtp_receiver: Receiver):
    # A Subject carrying an encoded CR/LF and "Bcc: victim" gives a reply to the sender only, with no Bcc.
    async with conversation(config, dovecot, smtp_receiver) as talk:
        mid = "<inject@example.org>"
        raw = (f"From: {MEMBER}\r\nTo: {BOT}\r\nMessage-ID: {mid}\r\n"
               "Subject: =?utf-8?q?help=0D=0ABcc:_victim@example.org?=\r\n\r\nhelp\r\n").encode()
        await talk.append(raw)
        reply = (await talk.answers(mid))[0]
    assert reply["Bcc"] is None
    assert [d.rcpt_tos for d in smtp_receiver.deliveries] == [(MEMBER,)]
    assert "victim" not in str(reply["To"]) and "\n" not in str(reply["Subject"])
