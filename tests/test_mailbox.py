"""The IMAP mailbox loop against a real Dovecot: catch-up, IDLE, reconnect, and aioimaplib's defects."""

from __future__ import annotations

import asyncio
import email
import logging
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aioimaplib
import pytest
from conftest import imap_section
from dovecot import Dovecot, dovecot_binary

from bot import mailbox
from bot.config import ImapSection, from_dict


class RecordingSink:
    """A sink that keeps what it is given in memory (the real one is the app's store pipeline)."""

    def __init__(self, fail: Callable[[bytes], bool] = lambda raw: False) -> None:
        self.pos: tuple[int, int] | None = None
        self.raws: dict[int, bytes] = {}
        self.order: list[int] = []
        self.syncs = 0
        self.unfetched: list[int] = []
        self.fail = fail

    async def position(self, mailbox_name: str) -> tuple[int, int] | None:
        return self.pos

    async def message(self, mailbox_name: str, uidvalidity: int, item: mailbox.Fetched) -> bool:
        self.order.append(item.uid)
        self.raws[item.uid] = item.raw
        self.pos = (uidvalidity, item.uid)
        return not self.fail(item.raw)

    async def unfetchable(self, mailbox_name: str, uidvalidity: int, uid: int, error: str) -> None:
        self.unfetched.append(uid)
        self.pos = (uidvalidity, uid)

    async def known(self, message_ids: list[str]) -> set[str]:
        return set()

    async def synced(self, mailbox_name: str, uidvalidity: int, last_uid: int) -> None:
        self.syncs += 1
        self.pos = (uidvalidity, last_uid)


def imap_config(server: Dovecot, **overrides: object) -> ImapSection:
    return from_dict({"imap": imap_section(server, **overrides)}).imap


def mail(n: int, subject: str = "") -> bytes:
    return (
        f"From: ana@example.org\r\nTo: wg@lists.example.org\r\nSubject: {subject or f'post {n}'}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


async def append(server: Dovecot, raw: bytes, folder: str = "INBOX") -> None:
    """APPEND over IMAP with a separate client, as a mail server delivering would."""
    client = aioimaplib.IMAP4("127.0.0.1", server.port, timeout=5)
    await client.wait_hello_from_server()
    await client.login(server.user, server.password)
    response = await client.append(raw, mailbox=folder)
    assert response.result == "OK", response
    await client.logout()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition the daemon makes true (polled; it is not the clock under test)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def start_watch(
    imap: ImapSection, sink: RecordingSink, **kwargs: object
) -> tuple[asyncio.Task[None], asyncio.Event, asyncio.Event]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        mailbox.watch(imap, password="secret", sink=sink, stop=stop, ready=ready, **kwargs)  # type: ignore[arg-type]
    )
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=10,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready.is_set(), "the mailbox loop did not reach IDLE"
    return task, stop, ready


async def stop_watch(task: asyncio.Task[None], stop: asyncio.Event) -> float:
    began = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5)
    return time.monotonic() - began


def test_uid_set_and_parsers() -> None:
    # UID sets are compact ranges; SEARCH/SELECT/FETCH lines are read as Dovecot writes them.
    assert mailbox.uid_set([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    assert mailbox.uid_set([4]) == "4"
    assert mailbox.parse_search([b"1 2 10", b"Search completed."]) == [1, 2, 10]
    assert mailbox.parse_search([b"Search completed."]) == []
    sel = mailbox.parse_select([b"3 EXISTS", b"OK [UIDVALIDITY 77] UIDs valid", b"OK [UIDNEXT 9] next", b"done"])
    assert sel == mailbox.Selected(77, 3, 9)
    lines = [b"1 FETCH (UID 4 BODY[] {3}", bytearray(b"abc"), b")", b"2 FETCH (FLAGS (\\Seen))",
             b"2 FETCH (BODY[] {2}", bytearray(b"xy"), b" UID 9)", b"Fetch completed."]
    assert mailbox.parse_fetch(lines) == [mailbox.Fetched(4, b"abc"), mailbox.Fetched(9, b"xy")]


def test_backoff_grows_is_capped_and_jittered() -> None:
    # Exponential backoff with jitter: each delay within [step/2, step], step doubling up to the cap.
    rand = random.Random(1)
    delays = [mailbox.backoff_delay(n, 1.0, 30.0, rand) for n in range(10)]
    for n, d in enumerate(delays):
        step = min(30.0, 2.0**n)
        assert step / 2 <= d <= step
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped but still spread out
    assert max(delays) <= 30.0


async def test_catch_up_of_1000_messages_in_bounded_fetches(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    # 1000 messages in the box (aioimaplib's parser dies on a FETCH response of that size): even with
    # fetch_batch = 999 configured, fetches stay small enough that the connection never breaks, and
    # every message arrives exactly once, in UID order.
    for n in range(1000):
        dovecot.deliver(mail(n))
    sink = RecordingSink()
    began = time.monotonic()
    task, stop, _ = await start_watch(imap_config(dovecot, fetch_batch=999), sink)
    elapsed = time.monotonic() - began
    assert sink.order == list(range(1, 1001))
    assert {email.message_from_bytes(r)["Message-ID"] for r in sink.raws.values()} == {
        f"<m{n}@example.org>" for n in range(1000)
    }
    assert sink.pos is not None and sink.pos[1] == 1000
    assert elapsed < 10
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "the connection broke"
    await stop_watch(task, stop)


async def test_fetch_that_kills_the_parser_is_retried_in_halves(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the size cap, a 999-message FETCH overflows aioimaplib's recursive parser and the
    # connection dies silently: the loop reconnects, halves the batch, and still delivers each
    # message exactly once.
    monkeypatch.setattr(mailbox, "MAX_FETCH", 5000)
    for n in range(1000):
        dovecot.deliver(mail(n))
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot, fetch_batch=999), sink)
    assert sink.order == list(range(1, 1001))
    assert any("reconnecting" in r.getMessage() for r in caplog.records), "the big FETCH did not fail"
    await stop_watch(task, stop)


async def test_unmatched_parenthesis_in_subject(dovecot: Dovecot) -> None:
    # A Subject with an unmatched "(" (which breaks aioimaplib's ENVELOPE parser) arrives whole.
    subject = "Re: (draft agenda for the :-( meeting"
    await append(dovecot, mail(1, subject))
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot), sink)
    await append(dovecot, mail(2, "second ((( one"))
    await eventually(lambda: len(sink.order) == 2)
    assert email.message_from_bytes(sink.raws[1])["Subject"] == subject
    assert email.message_from_bytes(sink.raws[2])["Subject"] == "second ((( one"
    await stop_watch(task, stop)


async def test_push_while_idle_and_resume_from_position(dovecot: Dovecot) -> None:
    # A message appended while IDLE is processed; a new loop resumes after the stored position.
    await append(dovecot, mail(1))
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot), sink)
    assert sink.order == [1]
    await append(dovecot, mail(2))
    await eventually(lambda: sink.order == [1, 2], timeout=4)
    await stop_watch(task, stop)
    await append(dovecot, mail(3))
    task, stop, _ = await start_watch(imap_config(dovecot), sink)
    assert sink.order == [1, 2, 3]
    await stop_watch(task, stop)


async def test_server_killed_mid_idle_reconnects_exactly_once(dovecot: Dovecot) -> None:
    # Dovecot SIGKILLed during IDLE (aioimaplib never fails the pending IDLE): the loop notices,
    # backs off, reconnects when it is back, and processes the mail delivered meanwhile exactly once.
    await append(dovecot, mail(1))
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot), sink)
    await asyncio.sleep(0.1)  # let IDLE be entered on the server side
    dovecot.stop(kill=True)
    dovecot.deliver(mail(2))
    await asyncio.sleep(0.5)  # a few failed reconnects while the server is down
    assert not task.done()
    dovecot.start()
    await eventually(lambda: sink.order == [1, 2], timeout=5)
    await append(dovecot, mail(3))
    await eventually(lambda: sink.order == [1, 2, 3], timeout=5)
    assert len(sink.order) == len(set(sink.order))
    await stop_watch(task, stop)


def imap_sessions(server: Dovecot) -> list[int]:
    """The pids of the server's per-connection `imap` processes (they share the master's group)."""
    assert server.proc is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            name = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if name == "imap" and int(fields[2]) == server.proc.pid:  # fields: state, ppid, pgrp, ...
            pids.append(int(stat.parent.name))
    return pids


async def test_frozen_session_every_wait_times_out_then_catch_up(dovecot: Dovecot) -> None:
    # The bot's IMAP session stops answering (SIGSTOP: the socket stays open, nothing comes back, no
    # error). aioimaplib would wait forever (issue #110: it never fails a pending command); every wait of
    # the loop has a timeout, so it gives up on that session, reconnects (a new session answers), and
    # processes the mail delivered meanwhile, exactly once.
    await append(dovecot, mail(1))
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot, idle_seconds=1, timeout_seconds=1), sink)
    await asyncio.sleep(0.2)  # the appending client's session has ended
    frozen = imap_sessions(dovecot)
    assert len(frozen) == 1, frozen
    os.kill(frozen[0], signal.SIGSTOP)
    try:
        dovecot.deliver(mail(2))
        await eventually(lambda: sink.order == [1, 2], timeout=10)
        await append(dovecot, mail(3))
        await eventually(lambda: sink.order == [1, 2, 3], timeout=5)
        assert await stop_watch(task, stop) < 2.0
    finally:
        os.kill(frozen[0], signal.SIGKILL)


async def test_idle_reissued_and_stop_is_prompt(dovecot: Dovecot) -> None:
    # IDLE is ended and re-issued every idle_seconds even when nothing happens (servers drop long
    # IDLEs), each time followed by a catch-up; setting stop ends the loop at once, mid-IDLE.
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot, idle_seconds=1), sink)
    syncs = sink.syncs
    await eventually(lambda: sink.syncs >= syncs + 2, timeout=4)
    assert await stop_watch(task, stop) < 1.0


async def test_failed_message_is_quarantined_and_the_next_goes_on(dovecot: Dovecot) -> None:
    # A message the sink rejects is moved to the quarantine folder; the next one is processed.
    await append(dovecot, mail(1, "poison"))
    await append(dovecot, mail(2))
    sink = RecordingSink(fail=lambda raw: b"Subject: poison" in raw)
    task, stop, _ = await start_watch(imap_config(dovecot, quarantine="Quarantine"), sink)
    assert sink.order == [1, 2]
    await stop_watch(task, stop)
    moved = list((dovecot.maildir / ".Quarantine" / "cur").iterdir()) + list(
        (dovecot.maildir / ".Quarantine" / "new").iterdir()
    )
    assert len(moved) == 1 and b"Subject: poison" in moved[0].read_bytes()
    inbox = list((dovecot.maildir / "cur").iterdir()) + list((dovecot.maildir / "new").iterdir())
    assert len(inbox) == 1 and b"Subject: post 2" in inbox[0].read_bytes()


async def test_nothing_marked_seen_unless_configured(dovecot: Dovecot) -> None:
    # By default the bot changes no flags; with mark_seen it sets \Seen on what it processed.
    await append(dovecot, mail(1))
    sink = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot), sink)
    await stop_watch(task, stop)
    assert not any(p.name.split(":2,")[-1].count("S") for p in (dovecot.maildir / "cur").iterdir())
    sink2 = RecordingSink()
    task, stop, _ = await start_watch(imap_config(dovecot, mark_seen=True), sink2)
    await stop_watch(task, stop)
    assert [p.name.split(":2,")[-1] for p in (dovecot.maildir / "cur").iterdir()] == ["S"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"port": 1}, "IMAP server 127.0.0.1:1: cannot connect"),
        ({"username": "nobody-here", "password_env": "LISTBOT_WRONG"}, "refused"),
        ({"mailbox": "Missing"}, "cannot select mailbox 'Missing'"),
    ],
)
async def test_first_connection_failure_is_one_line(
    dovecot: Dovecot, overrides: dict[str, object], expected: str
) -> None:
    # A bad server, password or mailbox at start is one MailboxError line naming the server.
    imap = imap_config(dovecot, **overrides)
    password = "wrong" if "password_env" in overrides else "secret"
    with pytest.raises(mailbox.MailboxError) as info:
        await asyncio.wait_for(
            mailbox.watch(imap, password=password, sink=RecordingSink(), stop=asyncio.Event()), 5
        )
    text = str(info.value)
    assert expected in text and "\n" not in text
    assert "IMAP server 127.0.0.1:" in text
    assert "secret" not in text and "wrong" not in text


@pytest.fixture
def tls_dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """A Dovecot with STARTTLS on `port` and implicit TLS on `tls_port` (self-signed, trusted via SSL_CERT_FILE)."""
    if dovecot_binary() is None or shutil.which("openssl") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("dovecot and openssl are needed for the TLS tests")
        pytest.skip("dovecot or openssl is not installed")
    server = Dovecot(tls=True)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


async def test_ssl_and_starttls(tls_dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    # security "ssl" (implicit TLS) and "starttls" both log in and read the mailbox, with the
    # certificate verified; an untrusted certificate is one line naming the server.
    await append(tls_dovecot, mail(1))
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_dovecot.cert))
    for security, port in (("ssl", tls_dovecot.tls_port), ("starttls", tls_dovecot.port)):
        imap = imap_config(tls_dovecot, security=security, port=port)
        selected = await mailbox.check_imap(imap, "secret")
        assert selected.exists == 1, security
        sink = RecordingSink()
        task, stop, _ = await start_watch(imap, sink)
        assert sink.order == [1], security
        await stop_watch(task, stop)
    monkeypatch.delenv("SSL_CERT_FILE")
    for security, port in (("ssl", tls_dovecot.tls_port), ("starttls", tls_dovecot.port)):
        with pytest.raises(mailbox.MailboxError) as info:
            await mailbox.check_imap(imap_config(tls_dovecot, security=security, port=port), "secret")
        assert f"IMAP server 127.0.0.1:{port}: TLS failed" in str(info.value), str(info.value)
    with pytest.raises(mailbox.MailboxError) as info:
        await mailbox.check_imap(imap_config(tls_dovecot, security="ssl", port=tls_dovecot.port), "secret")
    assert f"IMAP server 127.0.0.1:{tls_dovecot.port}" in str(info.value)


async def test_password_never_logged(dovecot: Dovecot, caplog: pytest.LogCaptureFixture) -> None:
    # Even at DEBUG (where aioimaplib logs every line it sends) no log line carries the password,
    # whether the login works or not. (The aioimaplib logger is set by name: an in-process
    # `listbot` run in another test may have left it at WARNING.)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="aioimaplib")
    await mailbox.check_imap(imap_config(dovecot), "secret")
    with pytest.raises(mailbox.MailboxError):
        await mailbox.check_imap(imap_config(dovecot), 'wr"ong\\pw')
    messages = [r.getMessage() for r in caplog.records]
    assert any("SELECT" in m for m in messages)  # the debug log was on
    assert not [m for m in messages if "secret" in m or ("wr" in m and "ong" in m)]
