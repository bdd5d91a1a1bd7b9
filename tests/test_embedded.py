"""The embedded default: loopback SMTP + IMAP inside the process, `listbot send`, the outgoing mbox, `listbot run`."""

from __future__ import annotations

import argparse
import asyncio
import io
import mailbox
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aioimaplib
import pytest
from dovecot import free_port

from bot.config import Config, ConfigError, from_dict
from bot.embedded import PASSWORD_ENV, banner, cli_send, start_embedded
from bot.outbox import queue_mail
from bot.smtp import Sender
from bot.store import AsyncStore, Store

ROOT = Path(__file__).resolve().parent.parent


def embedded_config(tmp: Path, **embedded: Any) -> Config:
    section: dict[str, Any] = {"smtp_port": free_port(), "imap_port": free_port(), "outgoing": str(tmp / "out.mbox")}
    section.update(embedded)
    return from_dict({
        "bot": {"address": "listbot@example.org"},
        "list": {"address": "wg@lists.example.org"},
        "embedded": section,
        "store": {"path": str(tmp / "store.sqlite3")},
    })


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[Config, Config, io.StringIO]]:
    """(the config asked for, the config start_embedded returned, what it printed)."""
    config = embedded_config(tmp_path)
    out = io.StringIO()
    served, stop = await start_embedded(config, out=out)
    try:
        yield config, served, out
    finally:
        await stop()


def send_args(**kw: Any) -> argparse.Namespace:
    values = {"to": None, "sender": "member@example.org", "subject": "help", "body": ""}
    values.update(kw)
    return argparse.Namespace(**values)


async def inbox_messages(served: Config) -> list[bytes]:
    """Every message in the bot's INBOX, read with an IMAP client as the bot would."""
    client = aioimaplib.IMAP4(host=served.imap.host, port=served.imap.port, timeout=5)
    await client.wait_hello_from_server()
    response = await client.login(served.imap.username, os.environ[served.imap.password_env])
    assert response.result == "OK"
    await client.select("INBOX")
    response = await client.uid("fetch", "1:*", "(BODY.PEEK[])")
    await client.logout()
    return [bytes(line) for line in response.lines if isinstance(line, bytearray)]


async def test_send_help_lands_in_the_bots_inbox(embedded: tuple[Config, Config, io.StringIO]):
    # `listbot send help` with the embedded default reaches the bot's IMAP INBOX (pymap), is not written to the
    # outgoing mbox, and prints no '->' notice; the returned config points [imap]/[smtp] at the loopback.
    config, served, out = embedded
    assert (served.imap.host, served.imap.port, served.imap.security) == ("127.0.0.1", config.embedded.imap_port, "none")
    assert (served.smtp.host, served.smtp.port, served.smtp.username) == ("127.0.0.1", config.embedded.smtp_port, "")
    assert served.imap.password_env == PASSWORD_ENV and os.environ[PASSWORD_ENV] not in banner(served)
    assert await asyncio.to_thread(cli_send, send_args(body="please"), config) == 0
    (raw,) = await inbox_messages(served)
    assert b"Subject: help" in raw and b"To: listbot@example.org" in raw and b"please" in raw
    assert out.getvalue() == "" and not Path(config.embedded.outgoing).exists()


async def test_mail_the_bot_sends_lands_in_the_outgoing_mbox(tmp_path: Path, embedded: tuple[Config, Config, io.StringIO]):
    # Mail the bot sends (a reply to a member, a reminder to the list) goes through the outbox and the Sender to
    # the embedded SMTP server, lands in the outgoing mbox, one notice line each, and not in the bot's INBOX.
    config, served, out = embedded
    astore = AsyncStore(Store.open(tmp_path / "store.sqlite3"))
    now = datetime.now(UTC)
    for n, to in enumerate(("alice@example.org", "wg@lists.example.org")):
        msg = EmailMessage()
        msg["From"] = served.bot.address
        msg["To"] = to
        msg["Subject"] = f"Re: help {n}"
        msg.set_content("Commands: help, upcoming, remind me.\n")
        await astore.run(queue_mail, msg, config=served, idem_key=f"reply:{n}", now=now)
    stop = asyncio.Event()
    task = asyncio.create_task(Sender(served, astore).run(stop))
    try:
        deadline = time.monotonic() + 10
        while (await astore.run(Store.outbox_counts)).get("sent", 0) < 2:
            assert time.monotonic() < deadline, await astore.run(Store.failed_mail)
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.to_thread(astore.close)
    assert out.getvalue().splitlines() == ["-> to alice@example.org: Re: help 0", "-> to wg@lists.example.org: Re: help 1"]
    box = mailbox.mbox(config.embedded.outgoing)
    try:
        got = [(m["Delivered-To"], m["Subject"]) for m in box]
    finally:
        box.close()
    assert got == [("alice@example.org", "Re: help 0"), ("wg@lists.example.org", "Re: help 1")]
    assert await inbox_messages(served) == []


@pytest.mark.parametrize("key", ["smtp_port", "imap_port"])
async def test_a_taken_port_is_one_line_naming_the_key(tmp_path: Path, key: str):
    # A port that something else listens on: one ConfigError naming [embedded] <key> and the port; nothing stays open.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = embedded_config(tmp_path, **{key: port})
        with pytest.raises(ConfigError) as info:
            await start_embedded(config)
    assert f"[embedded] {key}: port {port} on 127.0.0.1 is in use" in str(info.value)
    # The other server was closed again: starting with the same config but a free port works.
    _served, stop = await start_embedded(embedded_config(tmp_path, **{
        "smtp_port": config.embedded.smtp_port if key == "imap_port" else free_port(),
        "imap_port": config.embedded.imap_port if key == "smtp_port" else free_port(),
    }))
    await stop()


def test_send_without_a_server_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # `listbot send` with nothing listening: exit 2 and one line naming the server, with a hint to start the bot.
    config = embedded_config(tmp_path)
    assert cli_send(send_args(), config) == 2
    err = capsys.readouterr().err
    assert err == (f"listbot: smtp 127.0.0.1:{config.embedded.smtp_port}: connection refused"
                   " (is `listbot run` running?)\n")


@pytest.mark.slow
def test_listbot_run_zero_setup_whole_loop(tmp_path: Path):
    # `listbot run` with only the embedded defaults: it prints the banner, `listbot send help` reaches the bot,
    # and the bot's reply is shown as '-> to member@example.org' and written to the outgoing mbox; SIGTERM ends it.
    smtp_port, imap_port = free_port(), free_port()
    config_path = tmp_path / "listbot.toml"
    config_path.write_text(f'[embedded]\nsmtp_port = {smtp_port}\nimap_port = {imap_port}\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config_path)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    seen = ""
    sent = False
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while "-> to member@example.org" not in seen:
                assert time.monotonic() < deadline, seen
                assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")[-2000:]
                if sel.select(timeout=0.1):
                    seen += os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
                if not sent and "listbot send" in seen:
                    done = subprocess.run([sys.executable, "-m", "bot", "send", "--config", str(config_path), "help"],
                                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20)
                    assert done.returncode == 0, done.stderr
                    sent = True
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert f"127.0.0.1:{smtp_port}" in seen and f"127.0.0.1:{imap_port}" in seen
    box = mailbox.mbox(str(tmp_path / "listbot-outgoing.mbox"))
    try:
        assert [m["Delivered-To"] for m in box] == ["member@example.org"]
    finally:
        box.close()
