"""The outbox sender over real SMTP (aiosmtpd on loopback): retries, failures, give-up, idempotency, crash safety."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from smtp_receiver import PASSWORD, USER, Receiver, start_receiver

from bot.config import Config, ConfigError, from_dict
from bot.outbox import queue_mail
from bot.smtp import Sender, backoff_delay, check_smtp, send_one
from bot.store import AsyncStore, OutMail, Store

ROOT = Path(__file__).resolve().parent.parent
SMTP_PASSWORD_ENV = "LISTBOT_TEST_SMTP_PASSWORD"


def smtp_config(tmp: Path, port: int, **smtp: Any) -> Config:
    section: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "security": "none", "timeout_seconds": 5,
        "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, "retry_hours": 1.0,
    }
    section.update(smtp)
    return from_dict({
        "bot": {"address": "listbot@example.org"},
        "embedded": {"enabled": False},
        "smtp": section,
        "store": {"path": str(tmp / "store.sqlite3")},
    })


def mail(n: int, to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "listbot@example.org"
    msg["To"] = to or f"r{n:03d}@example.org"
    msg["Subject"] = f"Reminder {n}"
    msg["Message-ID"] = f"<out{n}@example.org>"
    msg.set_content(f"Mail number {n}.\n")
    return msg


class Clock:
    """A clock the test moves: the sender asks it for `now`."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def astore(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    a = AsyncStore(Store.open(tmp_path / "store.sqlite3"))
    yield a
    await asyncio.to_thread(a.close)


class Running:
    """A Sender task and the way to stop it (and to see it stop promptly)."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(sender.run(self.stop))

    async def close(self) -> float:
        began = time.monotonic()
        self.stop.set()
        await asyncio.wait_for(self.task, 5)
        return time.monotonic() - began


async def rows(astore: AsyncStore) -> list[OutMail]:
    def all_rows(store: Store) -> list[OutMail]:
        from bot.store import _outmail

        return [_outmail(r) for r in store.db.execute("SELECT * FROM outbox ORDER BY id")]

    return await astore.run(all_rows)


async def until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait (polling a real server's or store's state) until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def status_is(astore: AsyncStore, status: str, n: int = 1) -> bool:
    return sum(r.status == status for r in await rows(astore)) >= n


async def test_421_then_451_then_250_is_delivered_once(tmp_path: Path, smtp_receiver: Receiver, astore: AsyncStore):
    # A server that answers 421 (and closes), then 451, then 250: exactly one delivery, three attempts recorded.
    smtp_receiver.script = ["421 4.3.2 Service shutting down", "451 4.3.0 Try again later"]
    config = smtp_config(tmp_path, smtp_receiver.port)
    now = datetime.now(UTC)
    assert await astore.run(queue_mail, mail(1), config=config, idem_key="k1", now=now)
    running = Running(Sender(config, astore))
    try:
        await until(lambda: status_is(astore, "sent"))
    finally:
        took = await running.close()
    assert [d.message_id for d in smtp_receiver.deliveries] == ["<out1@example.org>"]
    assert [a.split()[0] for a, _ in smtp_receiver.refusals] == ["421", "451"]
    (row,) = await rows(astore)
    assert row.status == "sent" and row.attempts == 3 and row.last_error is None
    assert took < 1.0


async def test_550_is_recorded_and_not_retried(tmp_path: Path, smtp_receiver: Receiver, astore: AsyncStore,
                                               caplog: pytest.LogCaptureFixture):
    # A permanent refusal (550) marks the mail failed with the server's answer, logs it at ERROR, shows it in
    # `listbot status`, and is never tried again; the next mail still goes out over the same connection.
    smtp_receiver.script = ["550 5.1.1 No such user here"]
    config = smtp_config(tmp_path, smtp_receiver.port)
    now = datetime.now(UTC)
    await astore.run(queue_mail, mail(1), config=config, idem_key="k1", now=now)
    running = Running(Sender(config, astore))
    try:
        await until(lambda: status_is(astore, "failed"))
        await astore.run(queue_mail, mail(2), config=config, idem_key="k2", now=now)
        running.sender.wake()
        await until(lambda: status_is(astore, "sent"))
    finally:
        await running.close()
    failed, sent = await rows(astore)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.last_error is not None and "550 5.1.1 No such user here" in failed.last_error
    assert sent.status == "sent"
    assert len(smtp_receiver.refusals) == 1 and [d.message_id for d in smtp_receiver.deliveries] == ["<out2@example.org>"]
    assert smtp_receiver.connections == 1
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "<out1@example.org>" in errors[0].getMessage()
    # ... and `listbot status` shows it.
    from bot.app import status_lines

    lines = await astore.run(status_lines, now=datetime.now(UTC))
    assert "outbox: 0 queued, 1 sent, 1 failed" in lines
    assert any(line.strip().startswith("failed mail to r001@example.org <out1@example.org>") and "550" in line
               for line in lines)


async def test_retries_stop_at_give_up(tmp_path: Path, smtp_receiver: Receiver, astore: AsyncStore):
    # Always 451: the mail is retried with backoff, and once its give-up time (retry_hours) has passed the
    # next failure marks it failed ("gave up") instead of retrying. The clock is moved, never waited for.
    smtp_receiver.then = "451 4.7.1 Greylisted"
    config = smtp_config(tmp_path, smtp_receiver.port, backoff_seconds=600.0, backoff_max_seconds=3600.0,
                         retry_hours=1.0)
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    await astore.run(queue_mail, mail(1), config=config, idem_key="k1", now=clock.now)
    running = Running(Sender(config, astore, clock))
    try:
        await asyncio.to_thread(smtp_receiver.wait_for, refusals=1)
        await until(lambda: rows_match(astore, lambda r: r.attempts == 1))
        (row,) = await rows(astore)
        assert row.status == "queued" and row.send_after_utc == clock.now + timedelta(seconds=600)
        clock.now += timedelta(minutes=11)  # due again, before give-up
        running.sender.wake()
        await asyncio.to_thread(smtp_receiver.wait_for, refusals=2)
        await until(lambda: rows_match(astore, lambda r: r.attempts == 2))
        clock.now += timedelta(hours=2)  # past give-up
        running.sender.wake()
        await until(lambda: status_is(astore, "failed"))
    finally:
        await running.close()
    (row,) = await rows(astore)
    assert row.attempts == 3 and len(smtp_receiver.refusals) == 3 and not smtp_receiver.deliveries
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts")
    assert "451 4.7.1 Greylisted" in row.last_error


async def rows_match(astore: AsyncStore, pred: Callable[[OutMail], bool]) -> bool:
    return all(pred(r) for r in await rows(astore))


async def test_same_idempotency_key_twice_is_one_mail(tmp_path: Path, smtp_receiver: Receiver, astore: AsyncStore):
    # Queueing the same reminder twice (same idempotency key) is a no-op: one row, one delivery.
    config = smtp_config(tmp_path, smtp_receiver.port)
    now = datetime.now(UTC)
    assert await astore.run(queue_mail, mail(1), config=config, idem_key="reminder:7:1d", now=now) is True
    assert await astore.run(queue_mail, mail(1), config=config, idem_key="reminder:7:1d", now=now) is False
    running = Running(Sender(config, astore))
    try:
        await until(lambda: status_is(astore, "sent"))
        running.sender.wake()
        await asyncio.sleep(0.1)  # a second pass over the outbox finds nothing more to send
    finally:
        await running.close()
    assert len(await rows(astore)) == 1 and len(smtp_receiver.deliveries) == 1


async def test_many_mails_share_one_connection(tmp_path: Path, smtp_receiver: Receiver, astore: AsyncStore):
    # 250 mails (more than one batch of 100) go out over a single SMTP connection, in queue order.
    config = smtp_config(tmp_path, smtp_receiver.port)
    now = datetime.now(UTC)
    for n in range(250):
        await astore.run(queue_mail, mail(n), config=config, idem_key=f"k{n}", now=now)
    running = Running(Sender(config, astore))
    try:
        await until(lambda: status_is(astore, "sent", 250))
    finally:
        await running.close()
    assert smtp_receiver.connections == 1
    assert smtp_receiver.recipients() == [f"r{n:03d}@example.org" for n in range(250)]


async def test_a_dropped_idle_connection_is_reopened_without_a_retry(tmp_path: Path, astore: AsyncStore):
    # The server goes away between two mails (as servers drop idle connections): the next mail notices on
    # its reused connection, reconnects at once and is delivered on the first counted attempt.
    receiver = Receiver()
    controller = start_receiver(receiver)
    config = smtp_config(tmp_path, receiver.port, backoff_seconds=60.0)
    now = datetime.now(UTC)
    await astore.run(queue_mail, mail(1), config=config, idem_key="k1", now=now)
    running = Running(Sender(config, astore))
    try:
        await until(lambda: status_is(astore, "sent", 1))
        controller.stop()  # closes the sender's connection with it
        controller = Controller(receiver, hostname="127.0.0.1", port=receiver.port, ready_timeout=5.0)
        controller.start()
        await astore.run(queue_mail, mail(2), config=config, idem_key="k2", now=now)
        running.sender.wake()
        await until(lambda: status_is(astore, "sent", 2))
    finally:
        await running.close()
        controller.stop()
    assert [r.attempts for r in await rows(astore)] == [1, 1]
    assert [d.message_id for d in receiver.deliveries] == ["<out1@example.org>", "<out2@example.org>"]
    assert receiver.connections == 2


async def test_server_down_keeps_mail_then_gives_up(tmp_path: Path, astore: AsyncStore):
    # Nothing listens: the mail stays queued with the reason recorded (no attempt counted), and is marked
    # failed once its give-up time has passed. Stop is prompt even while the sender backs off.
    from dovecot import free_port

    port = free_port()
    config = smtp_config(tmp_path, port, backoff_seconds=0.01, backoff_max_seconds=0.02)
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    await astore.run(queue_mail, mail(1), config=config, idem_key="k1", now=clock.now)
    running = Running(Sender(config, astore, clock))
    try:
        await until(lambda: rows_match(astore, lambda r: r.last_error is not None))
        (row,) = await rows(astore)
        assert row.status == "queued" and row.attempts == 0
        assert row.last_error == f"smtp 127.0.0.1:{port}: connection refused"
        clock.now += timedelta(hours=2)
        await until(lambda: status_is(astore, "failed"))
    finally:
        took = await running.close()
    (row,) = await rows(astore)
    assert row.last_error == f"gave up: smtp 127.0.0.1:{port}: connection refused"
    assert took < 1.0


async def test_check_smtp_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # check_smtp: a refused connection, a wrong password (naming server and user, never the password), and
    # STARTTLS asked of a server that lacks it are one-line ConfigErrors; the right password passes, and
    # send_one logs in and delivers.
    from dovecot import free_port

    port = free_port()
    with pytest.raises(ConfigError, match=rf"^smtp 127\.0\.0\.1:{port}: connection refused$"):
        await check_smtp(smtp_config(tmp_path, port))

    receiver = Receiver()
    controller = start_receiver(receiver, auth=True)
    try:
        monkeypatch.setenv(SMTP_PASSWORD_ENV, "wrong-pass-xyz")
        config = smtp_config(tmp_path, receiver.port, username=USER, password_env=SMTP_PASSWORD_ENV)
        with pytest.raises(ConfigError) as info:
            await check_smtp(config)
        line = str(info.value)
        assert line.startswith(f"smtp 127.0.0.1:{receiver.port}: login as '{USER}' refused: 535")
        assert "wrong-pass-xyz" not in line and "\n" not in line

        monkeypatch.delenv(SMTP_PASSWORD_ENV)
        with pytest.raises(ConfigError, match=r"\[smtp\] password_env"):
            await check_smtp(config)

        monkeypatch.setenv(SMTP_PASSWORD_ENV, PASSWORD)
        await check_smtp(config)
        await send_one(config, mail(5, to="someone@example.org"))
        assert [d.rcpt_tos for d in receiver.deliveries] == [("someone@example.org",)]

        with pytest.raises(ConfigError, match="does not offer STARTTLS"):
            await check_smtp(smtp_config(tmp_path, receiver.port, security="starttls"))
    finally:
        controller.stop()


def test_backoff_doubles_up_to_the_cap():
    # The retry delay: base, 2 base, 4 base, ... never above the cap (also for huge attempt counts).
    assert [backoff_delay(n, 30, 3600) for n in range(9)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_delay(10_000, 30, 3600) == 3600


# -- crash safety: the real daemon, SIGKILLed mid-drain --------------------------------------------


def _write_config(path: Path, data: dict[str, dict[str, Any]]) -> Path:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    path.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in t.items()) for s, t in data.items()))
    return path


def _start_daemon(config_path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    # `listbot run`; its log goes to a file: a pipe nobody reads would fill up and stall it.
    with open(cwd / "daemon.log", "ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config_path)], cwd=cwd,
                                env=env, stdout=subprocess.DEVNULL, stderr=log_file)


def _log_tail(cwd: Path) -> str:
    return (cwd / "daemon.log").read_text(errors="replace")[-3000:]


@pytest.mark.slow
def test_sigkill_mid_drain_then_restart_sends_each_mail_once(tmp_path: Path, dovecot: Any, smtp_receiver: Receiver):
    # 200 mails queued, a receiver taking 20 ms a mail, `listbot run` SIGKILLed mid-drain and restarted:
    # every recipient ends with exactly one copy, except at most one (the mail in flight at the kill)
    # with two copies carrying the same Message-ID.
    from conftest import IMAP_PASSWORD_ENV, imap_section

    smtp_receiver.delay = 0.02
    data = {
        "bot": {"address": "listbot@example.org"},
        "embedded": {"enabled": False},
        "imap": imap_section(dovecot),
        "smtp": {"host": "127.0.0.1", "port": smtp_receiver.port, "security": "none", "timeout_seconds": 5,
                 "backoff_seconds": 0.05, "backoff_max_seconds": 0.2},
        "store": {"path": str(tmp_path / "store.sqlite3")},
        "reminders": {"tick_seconds": 3600},
    }
    config_path = _write_config(tmp_path / "listbot.toml", data)
    config = from_dict(data)
    store = Store.open(tmp_path / "store.sqlite3")
    now = datetime.now(UTC)
    for n in range(200):
        queue_mail(store, mail(n), config=config, idem_key=f"crash:{n}", now=now)
    env = {**os.environ, IMAP_PASSWORD_ENV: dovecot.password, "PYTHONPATH": str(ROOT)}
    ours = {f"r{n:03d}@example.org" for n in range(200)}

    proc = _start_daemon(config_path, env, tmp_path)
    try:
        try:
            smtp_receiver.wait_for(deliveries=40, timeout=20)
        except AssertionError:
            proc.kill()
            proc.wait()
            raise AssertionError(_log_tail(tmp_path)) from None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        at_kill = len(smtp_receiver.deliveries)
        assert at_kill < 200, "the drain finished before the kill: make the receiver slower"
        proc = _start_daemon(config_path, env, tmp_path)
        deadline = time.monotonic() + 30
        while store.outbox_counts().get("queued", 0):
            assert proc.poll() is None, _log_tail(tmp_path)
            assert time.monotonic() < deadline, f"outbox not drained: {store.outbox_counts()}"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.close()
    assert proc.returncode == 0, _log_tail(tmp_path)
    assert "Traceback" not in (tmp_path / "daemon.log").read_text(errors="replace")
    copies = collections.Counter(r for r in smtp_receiver.recipients() if r in ours)
    assert set(copies) == ours
    twice = [r for r, c in copies.items() if c > 1]
    assert all(c <= 2 for c in copies.values()) and len(twice) <= 1, copies.most_common(3)
    for r in twice:
        ids = {d.message_id for d in smtp_receiver.deliveries if r in d.rcpt_tos}
        assert len(ids) == 1, ids
    assert store_counts(tmp_path) == {"sent": 200}


def store_counts(tmp: Path) -> dict[str, int]:
    s = Store.open(tmp / "store.sqlite3")
    try:
        return s.outbox_counts()
    finally:
        s.close()
