"""The zero-setup default: loopback-only SMTP (aiosmtpd) and IMAP (pymap, in memory) servers inside the process."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import email
import email.utils
import logging
import mailbox as mbox_files
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.smtp import SMTP as SMTPServer
from pymap.backend.dict import Config as PymapConfig
from pymap.backend.dict import DictBackend, Login
from pymap.imap import IMAPService
from pymap.parsing.message import AppendMessage
from pymap.user import Passwords, UserMetadata

from bot.config import Config, ConfigError
from bot.message import decode_header

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
IMAP_USER = "listbot"
# The embedded IMAP password is made up at each start and handed to the bot through this variable.
PASSWORD_ENV = "LISTBOT_EMBEDDED_PASSWORD"


class _Deliver:
    """aiosmtpd handler: mail for the bot or the list (not from the bot) goes to the bot's INBOX; every other
    copy (what the bot sends, to members or to the list) goes to the outgoing mbox and is shown on stdout."""

    def __init__(self, config: Config, inbox: Any, outgoing: Path, out: TextIO) -> None:
        self.bot = config.bot.address.lower()
        self.list = config.list.address.lower()
        self.inbox = inbox
        self.outgoing = outgoing
        self.out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        mail_from = str(envelope.mail_from or "").lower()
        headers = email.message_from_bytes(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
        message_id = str(headers.get("Message-ID", "") or "").strip() or "<no Message-ID>"
        subject = decode_header(headers.get("Subject")) or "(no subject)"
        inbound = [r for r in envelope.rcpt_tos if r.lower() in (self.bot, self.list) and mail_from != self.bot]
        others = [r for r in envelope.rcpt_tos if r not in inbound]
        try:
            if inbound:
                await self.inbox.append(AppendMessage(raw, datetime.now(UTC), frozenset()), recent=True)
                log.info("%s from %s: delivered to the bot's INBOX", message_id, mail_from)
            for rcpt in others:
                await asyncio.to_thread(_append_mbox, self.outgoing, raw, mail_from, rcpt)
                print(f"-> to {rcpt}: {subject}", file=self.out, flush=True)
                log.info("%s to %s: written to %s", message_id, rcpt, self.outgoing)
        except Exception as exc:  # tell the sender to try again rather than lose the mail
            log.error("%s: embedded delivery failed: %s: %s", message_id, type(exc).__name__, exc)
            return "451 4.3.0 embedded delivery failed, try again later"
        return "250 OK"


def _append_mbox(path: Path, raw: bytes, mail_from: str, rcpt: str) -> None:
    message = mbox_files.mboxMessage(b"Delivered-To: " + rcpt.encode("utf-8", "replace") + b"\r\n" + raw)
    message.set_from(mail_from or "MAILER-DAEMON", time.gmtime())
    box = mbox_files.mbox(str(path), create=True)
    box.lock()
    try:
        box.add(message)
        box.flush()
    finally:
        box.unlock()
        box.close()


def _port_error(config: Config, key: str, port: int, exc: OSError) -> ConfigError:
    reason = "is in use" if exc.errno in (98, 48) else f"cannot be opened ({exc.strerror or exc})"
    return ConfigError(
        f"{config.source or '<defaults>'}: [embedded] {key}: port {port} on {HOST} {reason}; choose another port"
    )


async def _start_imap(config: Config, password: str) -> tuple[AsyncExitStack, Any]:
    """pymap's in-memory backend with one user, serving IMAP on the loopback; (its stop stack, the INBOX)."""
    port = config.embedded.imap_port
    args = argparse.Namespace(passlib_cfg=None, proxy_protocol=None, inherited_sockets=None, debug=False)
    pconfig = PymapConfig(
        args, host=HOST, port=port, tls_enabled=False, reject_dnsbl=False, invalid_user_sleep=0.0,
        demo_data=False, demo_user=IMAP_USER, demo_password=password,
    )
    login = Login(pconfig)
    hashed = await Passwords(pconfig).hash_password(password)
    await login.demo_user_identity.set(UserMetadata(pconfig, IMAP_USER, password=hashed))
    async with login.demo_user_identity.new_session() as session:
        inbox = await session.mailbox_set.get_mailbox("INBOX")
    stack = AsyncExitStack()
    try:
        await IMAPService(DictBackend(login, pconfig), pconfig).start(stack)
    except OSError as exc:
        await stack.aclose()
        raise _port_error(config, "imap_port", port, exc) from None
    return stack, inbox


async def start_embedded(
    config: Config, *, out: TextIO | None = None
) -> tuple[Config, Callable[[], Awaitable[None]]]:
    """Start both servers inside the running loop; (a config that points [imap] and [smtp] at them, their stop).

    `out` receives the one-line notices of outgoing mail (default: stdout)."""
    password = secrets.token_urlsafe(18)
    imap_stack, inbox = await _start_imap(config, password)
    outgoing = config.resolve(config.embedded.outgoing)
    handler = _Deliver(config, inbox, outgoing, out or sys.stdout)
    loop = asyncio.get_running_loop()
    port = config.embedded.smtp_port
    try:
        outgoing.parent.mkdir(parents=True, exist_ok=True)
        smtp_server = await loop.create_server(
            lambda: SMTPServer(handler, hostname="listbot.embedded", ident="listbot embedded SMTP"),
            host=HOST, port=port,
        )
    except OSError as exc:
        await imap_stack.aclose()
        raise _port_error(config, "smtp_port", port, exc) from None
    os.environ[PASSWORD_ENV] = password
    embedded = dataclasses.replace(
        config,
        imap=dataclasses.replace(config.imap, host=HOST, port=config.embedded.imap_port, username=IMAP_USER,
                                 password_env=PASSWORD_ENV, security="none", mailbox="INBOX"),
        smtp=dataclasses.replace(config.smtp, host=HOST, port=port, username="", security="none"),
    )
    log.info("embedded servers: SMTP %s:%d, IMAP %s:%d; outgoing mail to %s", HOST, port, HOST,
             config.embedded.imap_port, outgoing)

    async def stop() -> None:
        smtp_server.close()
        try:
            await asyncio.wait_for(smtp_server.wait_closed(), 2)
        except TimeoutError:
            pass
        await imap_stack.aclose()

    return embedded, stop


def banner(config: Config) -> str:
    """What `listbot run` prints at start with the embedded servers: where they are and how to try the bot."""
    e = config.embedded
    flag = f" --config {config.source}" if config.source and not config.source.startswith("<") else ""
    return "\n".join([
        "listbot is running with its embedded mail servers (127.0.0.1 only; no mail leaves this machine).",
        f"  SMTP in:   {HOST}:{e.smtp_port}   (mail to the bot or the list goes here; no login)",
        f"  IMAP:      {HOST}:{e.imap_port}   (the bot's mailbox, user {IMAP_USER})",
        f"  the bot:   {config.bot.address}",
        f"  the list:  {config.list.address}",
        f"  outgoing:  {config.resolve(e.outgoing)}  (an mbox; each mail is also shown below as '-> to ...')",
        "Try it from another terminal:",
        f"  listbot send{flag} help",
        f"  listbot send{flag} --to {config.list.address} --subject 'CFP' 'Papers are due 15 March 2027.'",
        "Stop with Ctrl-C.",
    ])


def _send_config(config: Config) -> Config:
    """Where `listbot send` delivers: the embedded SMTP port when embedded, else the configured server."""
    if not config.embedded.enabled:
        return config
    return dataclasses.replace(
        config, smtp=dataclasses.replace(config.smtp, host=HOST, port=config.embedded.smtp_port, username="",
                                         security="none")
    )


def cli_send(args: argparse.Namespace, config: Config) -> int:
    """`listbot send [--to A] [--from A] [--subject S] [BODY]`: one mail through the configured SMTP server."""
    from bot.smtp import SmtpError, send_one

    to = args.to or config.bot.address
    msg = EmailMessage()
    msg["From"] = args.sender
    msg["To"] = to
    msg["Subject"] = args.subject
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.utils.make_msgid(domain=args.sender.rpartition("@")[2] or "localhost")
    msg.set_content(args.body or "")
    target = _send_config(config)
    try:
        asyncio.run(send_one(target, msg))
    except SmtpError as exc:
        hint = " (is `listbot run` running?)" if config.embedded.enabled and "refused" in str(exc) else ""
        print(f"listbot: {exc}{hint}", file=sys.stderr)
        return 2
    print(f"sent {args.subject!r} from {args.sender} to {to} via {target.smtp.host}:{target.smtp.port} "
          f"{msg['Message-ID']}")
    return 0
