"""The daemon end to end: a real Dovecot, an aiosmtpd receiver, a SQLite store; routing; run/status/check-config."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import IMAP_PASSWORD_ENV, imap_section
from dovecot import Dovecot, free_port
from test_mailbox import append, eventually

from bot import app, cli, router
from bot.config import Config, from_dict
from bot.message import read_message
from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent
MEMBER = "ana@example.org"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Receiver:
    """An aiosmtpd server on loopback that keeps every mail it is given."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def replies_to(self, message_id: str) -> list[email.message.Message]:
        with self.lock:
            parsed = [email.message_from_bytes(raw) for _, _, raw in self.mails]
        return [m for m in parsed if (m["In-Reply-To"] or "").strip() == message_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.controller.start()
    try:
        yield r
    finally:
        r.controller.stop()


def make_config(dovecot: Dovecot, receiver: Receiver, tmp: Path, **imap: object) -> dict[str, Any]:
    roster = tmp / "roster.txt"
    roster.write_text(f"{MEMBER}\n")
    return {
        "list": {"address": "wg@lists.example.org", "id": "wg.lists.example.org", "timezone": "Europe/Berlin"},
        "bot": {"address": "listbot@example.org"},
        "embedded": {"enabled": False},
        "imap": imap_section(dovecot, **imap),
        "smtp": {"host": "127.0.0.1", "port": receiver.port, "security": "none", "password_env": "",
                 "timeout_seconds": 5},
        "store": {"path": str(tmp / "store.sqlite3")},
        "members": {"roster": str(roster)},
        "reminders": {"tick_seconds": 3600},
    }


@pytest.fixture
def config(dovecot: Dovecot, receiver: Receiver, tmp_path: Path) -> Config:
    return from_dict(make_config(dovecot, receiver, tmp_path))


def post(n: int, subject: str = "", sender: str = "bo@example.org") -> bytes:
    return (
        f"From: Bo <{sender}>\r\nTo: wg@lists.example.org\r\nList-Id: WG <wg.lists.example.org>\r\n"
        f"Subject: {subject or f'[WG] Comments on the outline {n}'}\r\nDate: Tue, 10 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <post{n}@example.org>\r\n\r\n"
        f"Please send your comments on draft {n} by Friday 20 March 2026.\r\n"
    ).encode()


def to_bot(n: int, body: str = "help") -> bytes:
    return (
        f"From: Ana <{MEMBER}>\r\nTo: listbot@example.org\r\nSubject: help\r\n"
        f"Date: Tue, 10 Mar 2026 10:00:00 +0100\r\nMessage-ID: <cmd{n}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


def stored(config: Config, message_id: str) -> dict[str, Any] | None:
    store = Store.open(config.store.path)
    try:
        return store.message(message_id)
    finally:
        store.close()


@asynccontextmanager
async def running(config: Config, **kwargs: Any) -> AsyncIterator[asyncio.Task[None]]:
    """serve() in this event loop until the block ends; entered once the mailbox is caught up and IDLE."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(app.serve(config, stop=stop, ready=ready, now_fn=lambda: NOW, **kwargs))
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task in done:
        task.result()
    assert ready.is_set(), "the daemon did not get ready"
    try:
        yield task
    finally:
        stop.set()
        began = time.monotonic()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - began < 5


def test_route_policy(config: Config) -> None:
    # List posts (List-Id or To/Cc the list), mail to the bot, the bot's own mail, and the rest.
    def route_of(raw: str) -> str:
        return router.route(read_message(raw.encode(), received=NOW), config).to

    assert route_of("From: a@x.org\nTo: wg@lists.example.org\n\nx") == router.LIST
    assert route_of("From: a@x.org\nTo: someone@x.org\nList-Id: WG <wg.lists.example.org>\n\nx") == router.LIST
    assert route_of("From: a@x.org\nTo: b@x.org\nCc: WG@Lists.Example.org\n\nx") == router.LIST
    assert route_of("From: a@x.org\nTo: wg@lists.example.org, listbot@example.org\n\nx") == router.LIST
    assert route_of("From: a@x.org\nTo: ListBot@example.org\n\nhelp") == router.BOT
    assert route_of("From: listbot@example.org\nTo: wg@lists.example.org\n\nReminder") == router.SELF
    assert route_of("From: a@x.org\nTo: b@x.org\nList-Id: <other.example.org>\n\nx") == router.IGNORE


async def test_post_stored_and_mail_to_bot_answered(config: Config, dovecot: Dovecot, receiver: Receiver) -> None:
    # A list post appended to the mailbox is stored with its deadline; a mail to the bot gets one reply
    # at the SMTP receiver; an unrelated mail and the bot's own mail are neither stored nor answered.
    async with running(config):
        await append(dovecot, post(1))
        await append(dovecot, to_bot(1))
        await append(dovecot, b"From: x@y.org\r\nTo: z@y.org\r\nSubject: hi\r\nMessage-ID: <other@y.org>\r\n\r\nhi\r\n")
        await append(dovecot, b"From: listbot@example.org\r\nTo: wg@lists.example.org\r\n"
                              b"Message-ID: <self@example.org>\r\nSubject: Reminder\r\n\r\nx\r\n")
        await eventually(lambda: stored(config, "<post1@example.org>") is not None, timeout=5)
        await eventually(lambda: len(receiver.replies_to("<cmd1@example.org>")) == 1, timeout=5)
        await asyncio.sleep(0.3)  # time for a wrong second reply or a stored ignored mail to show up
    row = stored(config, "<post1@example.org>")
    assert row is not None and row["route"] == "list" and row["error"] is None
    store = Store.open(config.store.path)
    try:
        assert [i.start for i in store.items()] == ["2026-03-20"]
        assert store.mailbox_position("INBOX") is not None
        assert store.mailbox_position("INBOX")[1] == 4  # type: ignore[index]
    finally:
        store.close()
    assert stored(config, "<other@y.org>") is None and stored(config, "<self@example.org>") is None
    assert len(receiver.replies_to("<cmd1@example.org>")) == 1
    reply = receiver.replies_to("<cmd1@example.org>")[0]
    assert reply["To"] and MEMBER in reply["To"]
    assert len(receiver.mails) == 1


async def test_dovecot_restart_mid_idle_processes_once(config: Config, dovecot: Dovecot, receiver: Receiver) -> None:
    # Dovecot stopped while the daemon IDLEs and started again: the daemon reconnects, and a post and a
    # command delivered while it was down are each processed exactly once.
    async with running(config):
        await append(dovecot, post(1))
        await eventually(lambda: stored(config, "<post1@example.org>") is not None)
        dovecot.stop()
        dovecot.deliver(post(2))
        dovecot.deliver(to_bot(2))
        await asyncio.sleep(0.3)  # reconnect attempts fail while it is down
        dovecot.start()
        await eventually(lambda: stored(config, "<post2@example.org>") is not None, timeout=5)
        await eventually(lambda: len(receiver.replies_to("<cmd2@example.org>")) == 1, timeout=5)
        await append(dovecot, post(3))
        await eventually(lambda: stored(config, "<post3@example.org>") is not None, timeout=5)
    assert len(receiver.replies_to("<cmd2@example.org>")) == 1
    store = Store.open(config.store.path)
    try:
        rows = store.db.execute("SELECT message_id FROM messages ORDER BY id").fetchall()
        assert [r[0] for r in rows] == ["<post1@example.org>", "<post2@example.org>", "<cmd2@example.org>",
                                        "<post3@example.org>"]
    finally:
        store.close()


async def test_poison_message_recorded_quarantined_and_skipped(
    dovecot: Dovecot, receiver: Receiver, tmp_path: Path
) -> None:
    # A message whose processing raises is recorded with its error, moved to the quarantine folder,
    # and never tried again; the messages after it are processed.
    config = from_dict(make_config(dovecot, receiver, tmp_path, quarantine="Quarantine"))
    calls: list[str] = []

    def process(store: Store, raw: bytes, **kw: Any) -> router.Outcome:
        calls.append(email.message_from_bytes(raw)["Message-ID"])
        if b"POISON" in raw:
            raise ValueError("cannot digest this")
        return router.process(store, raw, **kw)

    await append(dovecot, post(1, subject="POISON pill"))
    await append(dovecot, post(2))
    async with running(config, process=process):
        await append(dovecot, to_bot(3))
        await eventually(lambda: len(receiver.replies_to("<cmd3@example.org>")) == 1)
    assert calls == ["<post1@example.org>", "<post2@example.org>", "<cmd3@example.org>"]
    failed = stored(config, "<post1@example.org>")
    assert failed is not None and failed["error"] == "ValueError: cannot digest this"
    assert stored(config, "<post2@example.org>") is not None
    quarantined = [p for sub in ("cur", "new") for p in (dovecot.maildir / ".Quarantine" / sub).iterdir()]
    assert len(quarantined) == 1 and b"POISON" in quarantined[0].read_bytes()
    async with running(config, process=process):
        pass
    assert len(calls) == 3  # nothing is processed again after a restart


def change_uidvalidity(dovecot: Dovecot) -> None:
    """What a server does when it rebuilds its UID list: new UIDVALIDITY (Dovecot's indexes dropped too)."""
    uidlist = dovecot.maildir / "dovecot-uidlist"
    header, _, rest = uidlist.read_text().partition("\n")
    fields = [f"V{int(f[1:]) + 1000}" if f.startswith("V") else f for f in header.split()]
    uidlist.write_text(" ".join(fields) + "\n" + rest)
    for index in dovecot.maildir.glob("dovecot.index*"):
        index.unlink()


async def test_uidvalidity_change_dedupes_by_message_id(
    config: Config, dovecot: Dovecot, receiver: Receiver
) -> None:
    # The server's UIDVALIDITY changes (its UID list is rebuilt): the daemon reads the box again but
    # processes no message twice (no second reply, no second row, not even read again); a new message
    # is processed once.
    await append(dovecot, post(1))
    await append(dovecot, to_bot(1))
    async with running(config):
        await eventually(lambda: len(receiver.replies_to("<cmd1@example.org>")) == 1)
    store = Store.open(config.store.path)
    before = store.mailbox_position("INBOX")
    store.close()
    dovecot.stop()
    change_uidvalidity(dovecot)
    dovecot.start()
    dovecot.deliver(post(2))
    calls: list[str] = []

    def counting(store: Store, raw: bytes, **kw: Any) -> router.Outcome:
        calls.append(email.message_from_bytes(raw)["Message-ID"])
        return router.process(store, raw, **kw)

    async with running(config, process=counting):
        await eventually(lambda: stored(config, "<post2@example.org>") is not None)
    # Known Message-IDs are recognised from their headers alone: only the new mail is fetched and read.
    assert calls == ["<post2@example.org>"]
    store = Store.open(config.store.path)
    try:
        after = store.mailbox_position("INBOX")
        assert before is not None and after is not None and after[0] != before[0]
        rows = [r[0] for r in store.db.execute("SELECT message_id FROM messages ORDER BY id")]
        assert rows == ["<post1@example.org>", "<cmd1@example.org>", "<post2@example.org>"]
    finally:
        store.close()
    assert len(receiver.replies_to("<cmd1@example.org>")) == 1


def write_config(path: Path, data: dict[str, Any]) -> Path:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {value(v)}" for k, v in table.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sigterm_stops_quickly_and_status_reports(
    dovecot: Dovecot, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `listbot run` as a process: it processes a post, stops within 5 s of SIGTERM with exit 0 and no
    # traceback; `listbot status` then shows the sync, the mailbox position and the outbox.
    data = make_config(dovecot, receiver, tmp_path)
    path = write_config(tmp_path / "listbot.toml", data)
    dovecot.deliver(post(1))
    dovecot.deliver(to_bot(1))
    env = {**os.environ, IMAP_PASSWORD_ENV: dovecot.password, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(path)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not receiver.replies_to("<cmd1@example.org>"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no reply from the daemon"
            time.sleep(0.05)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert took < 5
    assert b"Traceback" not in err and dovecot.password.encode() not in err
    assert b"<post1@example.org>" in err  # log lines name the Message-ID
    assert cli.main(["status", "--config", str(path)]) == 0
    out_status = capsys.readouterr().out
    assert "daemon: stopped at" in out_status
    assert "mailbox INBOX: last sync" in out_status and "last UID 2" in out_status
    assert "outbox: 0 queued, 1 sent, 0 failed" in out_status
    assert "next job " in out_status and "(planned when it last ran)" in out_status


def test_run_and_check_config_errors_are_one_line(
    dovecot: Dovecot, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # check-config tries both servers; a wrong password, an unreachable server or a missing secret
    # is one line on stderr naming the server or key, exit 2, never a traceback.
    data = make_config(dovecot, receiver, tmp_path)
    good = write_config(tmp_path / "good.toml", data)
    assert cli.main(["check-config", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"IMAP server 127.0.0.1:{dovecot.port}: logged in" in out and f"{receiver.port}" in out

    cases: list[tuple[Callable[[], None], dict[str, Any], str]] = [
        (lambda: monkeypatch.setenv(IMAP_PASSWORD_ENV, "wrong"), {}, f"IMAP server 127.0.0.1:{dovecot.port}"),
        (lambda: None, {"imap": {**data["imap"], "port": 1}}, "IMAP server 127.0.0.1:1"),
        (lambda: monkeypatch.delenv(IMAP_PASSWORD_ENV), {}, "[imap] password_env"),
        (lambda: None, {"smtp": {**data["smtp"], "port": 1}}, "127.0.0.1:1"),
    ]
    for n, (prepare, change, expected) in enumerate(cases):
        monkeypatch.setenv(IMAP_PASSWORD_ENV, dovecot.password)
        prepare()
        path = write_config(tmp_path / f"bad{n}.toml", {**data, **change})
        for argv in (["check-config", str(path)], ["run", "--config", str(path)]):
            if argv[0] == "run" and "smtp" in change:
                continue  # the daemon starts with SMTP down: mail waits in the outbox
            assert cli.main(argv) == 2, (argv, expected)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and expected in err[0], (argv, err)
            assert "Traceback" not in err[0] and "wrong" not in err[0]


async def test_daemon_serves_the_calendar_feed_and_names_a_taken_http_port(
    dovecot: Dovecot, receiver: Receiver, tmp_path: Path
):
    # With [http] port set, the running daemon serves the .ics feed; a port already taken is one ConfigError line.
    port = free_port()
    config = from_dict({**make_config(dovecot, receiver, tmp_path), "http": {"port": port}})
    async with running(config):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /calendar.ics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"BEGIN:VCALENDAR" in answer
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        with pytest.raises(app.ConfigError, match=r"\[http\] port"):
            await asyncio.wait_for(app.serve(config, stop=asyncio.Event(), now_fn=lambda: NOW), 10)
    finally:
        blocker.close()
        await blocker.wait_closed()
