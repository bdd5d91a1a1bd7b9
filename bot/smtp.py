"""Sending mail over SMTP: the outbox sender, a connection check and a one-off send. The only module that uses aiosmtplib."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr
from typing import TypeVar

import aiosmtplib

from bot.config import Config, ConfigError
from bot.store import AsyncStore, OutMail, Store, to_utc_text

log = logging.getLogger(__name__)

T = TypeVar("T")

# Due mail read from the store per query.
BATCH = 100
# With nothing queued, the store is asked again at least this often (another process may queue mail).
POLL_SECONDS = 60.0
# An unused connection is closed (QUIT) after this many seconds; the next mail opens a new one.
IDLE_CLOSE_SECONDS = 10.0


class SmtpError(Exception):
    """An SMTP server problem, said in one line that names the server (and never a password)."""


class _Refused(Exception):
    """The server answered a mail transaction with an error code (4xx: try again later, 5xx: never)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code


def _utcnow() -> datetime:
    return datetime.now(UTC)


def server_name(config: Config) -> str:
    return f"smtp {config.smtp.host}:{config.smtp.port}"


def smtp_password(config: Config) -> str:
    """The SMTP password (from the environment variable the config names), only when a username is set."""
    return config.secret("smtp", config.smtp.password_env) if config.smtp.username else ""


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait before try number `attempts + 1`: base, 2 base, 4 base, ... at most cap."""
    return float(min(cap, base * 2 ** min(attempts, 30)))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:300]


def _connect_error(config: Config, exc: BaseException) -> SmtpError:
    """An exception from connecting or logging in, as one line naming the server (and the user, never the password)."""
    where = server_name(config)
    s = config.smtp
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SmtpError(f"{where}: login as {s.username!r} refused: {exc.code} {_one_line(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError | TimeoutError | aiosmtplib.SMTPTimeoutError):
        return SmtpError(f"{where}: no answer within {s.timeout_seconds} s")
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return SmtpError(f"{where}: refused the connection: {exc.code} {_one_line(exc.message)}")
    text = _one_line(exc)
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ConnectionRefusedError) or isinstance(cause, ConnectionRefusedError) or "refused" in text.lower():
        return SmtpError(f"{where}: connection refused")
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        return SmtpError(f"{where}: TLS failed ({_one_line(cause or exc)}); check [smtp] security and port")
    if isinstance(exc, aiosmtplib.SMTPException):
        lowered = text.lower()
        if "starttls" in lowered:
            return SmtpError(f"{where}: does not offer STARTTLS (check [smtp] security and port)")
        if "auth" in lowered:
            return SmtpError(f"{where}: offers no login (AUTH) before TLS or at all; check [smtp] security and username")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return SmtpError(f"{where}: {exc.code} {_one_line(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return SmtpError(f"{where}: closed the connection ({text}); check [smtp] security and port")
    return SmtpError(f"{where}: cannot connect: {text or type(exc).__name__}")


async def connect(config: Config, password: str) -> aiosmtplib.SMTP:
    """An open, greeted (and, as configured, encrypted and logged-in) connection; SmtpError otherwise."""
    s = config.smtp
    client = aiosmtplib.SMTP(
        hostname=s.host,
        port=s.port,
        timeout=s.timeout_seconds,
        use_tls=s.security == "ssl",
        start_tls=s.security == "starttls",
        # The bot's own domain: looking up this host's FQDN can take seconds where DNS is slow.
        local_hostname=config.bot.address.rpartition("@")[2] or "localhost",
    )
    try:
        await client.connect()
        if s.username:
            await client.login(s.username, password)
    except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        client.close()
        raise _connect_error(config, exc) from None
    except BaseException:  # cancelled (stop while connecting): leave no socket behind
        client.close()
        raise
    return client


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say goodbye politely, but never wait long or fail for it."""
    try:
        if client.is_connected:
            await client.quit(timeout=1.0)
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


async def _nothing() -> None:
    return None


async def _transact(
    client: aiosmtplib.SMTP,
    sender: str,
    recipient: str,
    raw: bytes,
    before_data: Callable[[], Awaitable[None]] = _nothing,
) -> None:
    """One mail transaction (MAIL, RCPT, DATA); _Refused for an error answer, aiosmtplib's errors for the rest.

    `before_data` is awaited between RCPT and DATA: nothing is delivered before it returns."""
    try:
        await client.mail(sender)
        await client.rcpt(recipient)
        await before_data()
        await client.data(raw)
    except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
        # Make the connection usable for the next mail: 421 means the server is closing it anyway.
        if exc.code == 421 or not client.is_connected:
            client.close()
        else:
            try:
                await client.rset(timeout=5.0)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()
        raise _Refused(exc.code, _one_line(exc.message)) from None


async def check_smtp(config: Config) -> None:
    """Connect, greet, STARTTLS / log in as configured, QUIT. ConfigError with one line on any failure."""
    try:
        client = await connect(config, smtp_password(config))
    except SmtpError as exc:
        raise ConfigError(str(exc)) from None
    await _quit(client)


async def send_one(config: Config, msg: EmailMessage) -> None:
    """Send one message now over a new connection (for `listbot send`); SmtpError with one line on failure."""
    sender = parseaddr(str(msg["From"] or ""))[1] or config.bot.address
    recipients = [a for a in (parseaddr(str(v))[1] for v in msg.get_all("To", [])) if a]
    if not recipients:
        raise SmtpError("the message has no To address")
    client = await connect(config, smtp_password(config))
    try:
        raw = msg.as_bytes(policy=SMTP_POLICY)
        for recipient in recipients:
            try:
                await _transact(client, sender, recipient, raw)
            except _Refused as exc:
                raise SmtpError(f"{server_name(config)}: mail to {recipient} refused: {exc}") from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                raise SmtpError(f"{server_name(config)}: sending to {recipient} failed: {_one_line(exc)}") from None
    finally:
        await _quit(client)


class Sender:
    """Drains the outbox over one reused SMTP connection.

    Each mail is marked sent in the store after its 250, and that mark is committed before the next
    mail's DATA, so that a crash re-sends at most the one mail in flight (with its stored Message-ID)."""

    def __init__(
        self,
        config: Config,
        astore: AsyncStore,
        now_fn: Callable[[], datetime] = _utcnow,
        *,
        batch: int = BATCH,
    ) -> None:
        self.config = config
        self.astore = astore
        self.now_fn = now_fn
        self.batch = batch
        self.server = server_name(config)
        self.password = smtp_password(config)  # a missing variable is a ConfigError at start
        self._wake = asyncio.Event()
        # The store write that marks the previous mail sent, still running while the next mail's MAIL and
        # RCPT go out; awaited before that mail's DATA, so at most one delivered mail is ever unmarked.
        self._marking: asyncio.Future[None] | None = None
        self._marking_id = ""  # the Message-ID being marked
        self._client: aiosmtplib.SMTP | None = None
        self._fresh = False  # the connection has not carried a mail yet
        self._last_used = 0.0
        self._connect_failures = 0
        self._last_connect_error = ""

    def wake(self) -> None:
        """Mail was queued: look at the outbox now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send due mail until `stop` is set; returns soon after it, once the mail in flight is finished."""
        s = self.config.smtp
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    sent_any = await self._drain_once(stop)
                except (ConfigError, asyncio.CancelledError):
                    raise
                except Exception as exc:  # the store failed, or a bug: say so, wait, go on
                    log.error("outbox sender: %s: %s (trying again in %.0f s)", type(exc).__name__, exc,
                              s.backoff_seconds)
                    log.debug("outbox sender traceback", exc_info=True)
                    self._marking = None
                    if self._client is not None:  # it may be mid-transaction: start afresh
                        self._client.close()
                        self._client = None
                    await self._wait(stop, s.backoff_seconds, wakeable=False)
                    continue
                if sent_any is None:  # could not connect: wait, then try again
                    delay = backoff_delay(self._connect_failures - 1, s.backoff_seconds, s.backoff_max_seconds)
                    await self._wait(stop, delay, wakeable=False)
                elif not sent_any:
                    await self._idle(stop)
        except asyncio.CancelledError:
            if self._client is not None:
                self._client.close()
                self._client = None
            raise
        finally:
            try:
                await self._settle()
            except Exception as exc:
                log.error("%s: its 'sent' mark was not stored (%s: %s); it may go out twice", self._marking_id,
                          type(exc).__name__, exc)
            if self._client is not None:
                client, self._client = self._client, None
                await _quit(client)

    async def _settle(self) -> None:
        """Wait until the previous mail's 'sent' mark is in the store."""
        marking, self._marking = self._marking, None
        if marking is not None:
            await marking

    async def _drain_once(self, stop: asyncio.Event) -> bool | None:
        """Send one batch of due mail: True if there was any, False if none was due, None if no connection."""
        await self._settle()
        now = self.now_fn()
        batch = await self.astore.run(Store.due_mail, now, self.batch)
        if not batch:
            return False
        for mail in batch:
            if stop.is_set():
                break
            if self._client is None and not await self._open(stop, mail):
                return None
            await self._send(mail, stop)
        return True

    async def _open(self, stop: asyncio.Event, head: OutMail) -> bool:
        """Connect (racing `stop`); on failure record why on the first waiting mail and fail expired mail."""
        try:
            client = await self._until_stop(connect(self.config, self.password), stop)
        except SmtpError as exc:
            self._connect_failures += 1
            error = str(exc)
            delay = backoff_delay(self._connect_failures - 1, self.config.smtp.backoff_seconds,
                                  self.config.smtp.backoff_max_seconds)
            # Log a new kind of failure loudly, a repeated one quietly: a server down for hours is one story.
            level = logging.ERROR if error != self._last_connect_error else logging.INFO
            log.log(level, "%s (mail waiting, first %s; trying again in %.0f s)", error, head.message_id, delay)
            self._last_connect_error = error
            await self.astore.run(Store.note_mail_error, head.id, error)
            expired = await self.astore.run(Store.fail_expired_mail, self.now_fn(), f"gave up: {error}")
            for mail in expired:
                log.error("%s to %s: gave up after trying until %s: %s", mail.message_id, mail.recipient,
                          to_utc_text(mail.give_up_utc), error)
            return False
        if client is None:  # stop was set while connecting
            return False
        if self._connect_failures:
            log.info("%s: connected again after %d failed tries", self.server, self._connect_failures)
        self._connect_failures = 0
        self._last_connect_error = ""
        self._client = client
        self._fresh = True
        self._last_used = time.monotonic()
        return True

    async def _send(self, mail: OutMail, stop: asyncio.Event) -> None:
        """Send one mail and record the outcome before returning."""
        client = self._client
        assert client is not None
        fresh = self._fresh
        self._fresh = False
        self._last_used = time.monotonic()
        try:
            await _transact(client, mail.sender, mail.recipient, mail.raw, before_data=self._settle)
        except _Refused as exc:
            if not client.is_connected:
                self._client = None
            if exc.code >= 500:
                await self._failed(mail, f"{self.server}: refused: {exc}")
            else:
                await self._retry(mail, f"{self.server}: {exc}")
            return
        except UnicodeEncodeError:
            await self._failed(mail, "address is not ASCII (SMTPUTF8 is not supported)")
            return
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            self._client = None
            error = f"{self.server}: {_one_line(exc) or type(exc).__name__}"
            if not fresh and not stop.is_set() and await self._reopen_for(mail, stop):
                return
            await self._retry(mail, error)
            return
        # Recorded before the next mail's DATA (see _marking): a crash re-sends at most the mail in flight.
        self._marking = asyncio.ensure_future(self.astore.run(Store.mark_sent, mail.id, self.now_fn()))
        self._marking_id = mail.message_id
        log.info("%s to %s: sent", mail.message_id, mail.recipient)

    async def _reopen_for(self, mail: OutMail, stop: asyncio.Event) -> bool:
        """A reused connection failed (servers drop idle ones): once, at once, on a new connection."""
        log.info("%s: connection lost (%s waits); reconnecting", self.server, mail.message_id)
        if not await self._open(stop, mail):
            return False
        await self._send(mail, stop)
        return True

    async def _retry(self, mail: OutMail, error: str) -> None:
        now = self.now_fn()
        s = self.config.smtp
        if now >= mail.give_up_utc:
            await self._failed(mail, f"gave up after {mail.attempts + 1} attempts: {error}")
            return
        delay = backoff_delay(mail.attempts, s.backoff_seconds, s.backoff_max_seconds)
        when = min(now + timedelta(seconds=delay), mail.give_up_utc)
        await self.astore.run(Store.mark_retry, mail.id, error, when)
        log.warning("%s to %s: temporary failure (attempt %d), trying again at %s: %s", mail.message_id,
                    mail.recipient, mail.attempts + 1, to_utc_text(when), error)

    async def _failed(self, mail: OutMail, error: str) -> None:
        await self.astore.run(Store.mark_failed, mail.id, error)
        log.error("%s to %s: not delivered, recorded as failed: %s", mail.message_id, mail.recipient, error)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Nothing is due: wait until something is (or wake()/stop); close the connection once unused."""
        now = self.now_fn()
        next_due = await self.astore.run(Store.next_send_after)
        timeout = POLL_SECONDS
        if next_due is not None:
            timeout = min(timeout, max(0.01, (next_due - now).total_seconds()))
        if self._client is not None:
            unused = time.monotonic() - self._last_used
            if unused >= IDLE_CLOSE_SECONDS:
                client, self._client = self._client, None
                await _quit(client)
            else:
                timeout = min(timeout, IDLE_CLOSE_SECONDS - unused + 0.01)
        await self._wait(stop, timeout, wakeable=True)

    async def _wait(self, stop: asyncio.Event, seconds: float, *, wakeable: bool) -> None:
        events = [stop.wait()] + ([self._wake.wait()] if wakeable else [])
        tasks = [asyncio.ensure_future(e) for e in events]
        try:
            await asyncio.wait(tasks, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    async def _until_stop(self, aw: Awaitable[T], stop: asyncio.Event) -> T | None:
        """`aw`'s result, or None (and `aw` cancelled) if stop is set first."""
        task = asyncio.ensure_future(aw)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return None
