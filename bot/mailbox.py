"""The bot's mailbox over IMAP: catch up from the stored position, then IDLE. The only module using aioimaplib."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import logging
import random
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aioimaplib

from bot.config import ImapSection

log = logging.getLogger(__name__)


class _HideLogin(logging.Filter):
    """aioimaplib's debug log scrubs the password only as typed, not as quoted in LOGIN: drop that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return " LOGIN " not in record.getMessage()


logging.getLogger("aioimaplib.aioimaplib").addFilter(_HideLogin())

T = TypeVar("T")

# aioimaplib's FETCH parser recurses once per response line and is quadratic in the response size:
# whatever the config says, never ask for more than this many messages in one command.
MAX_FETCH = 200
# Before a message is given up as unfetchable (it kills the connection even when fetched alone).
FETCH_ATTEMPTS = 3

_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*\{(\d+)\}$")
_UID = re.compile(rb"\bUID (\d+)\b")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS$")


class MailboxError(Exception):
    """An IMAP failure, said in one line that names the server."""


class AuthError(MailboxError):
    """The server refused the username or password (retrying will not help)."""


class Stopped(Exception):
    """The stop event was set while waiting."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes


@dataclass(frozen=True)
class Selected:
    uidvalidity: int
    exists: int
    uidnext: int | None


class Sink(Protocol):
    """What the mailbox loop hands its messages to (the app: the store, the router, the sender)."""

    async def position(self, mailbox: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID processed), or None before the first sync."""

    async def message(self, mailbox: str, uidvalidity: int, item: Fetched) -> bool:
        """Process one message and record the position; False: it failed (recorded, to be quarantined)."""

    async def unfetchable(self, mailbox: str, uidvalidity: int, uid: int, error: str) -> None:
        """Record a message that cannot even be fetched, and move the position past it."""

    async def known(self, message_ids: list[str]) -> set[str]:
        """Those of `message_ids` processed before (read after a UIDVALIDITY change)."""

    async def synced(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        """A catch-up ended with everything up to `last_uid` processed."""


def server_name(imap: ImapSection) -> str:
    return f"IMAP server {imap.host}:{imap.port}"


def backoff_delay(attempt: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Exponential backoff with jitter, capped: half of the step fixed, half random ("equal jitter")."""
    step = min(cap, base * (2 ** min(attempt, 30)))
    r = rand or random
    return step / 2 + r.uniform(0, step / 2)


def uid_set(uids: list[int]) -> str:
    """A compact IMAP UID set: consecutive runs as ranges ("1:5,9,12:13")."""
    parts: list[str] = []
    start = prev = uids[0]
    for u in uids[1:]:
        if u == prev + 1:
            prev = u
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = u
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def parse_fetch(lines: list[Any]) -> list[Fetched]:
    """UID FETCH (UID BODY.PEEK[]) response lines -> messages; other untagged lines are skipped."""
    out: list[Fetched] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes | bytearray):
            head = bytes(line)
            m = _FETCH_HEAD.match(head)
            if m and i + 1 < len(lines) and isinstance(lines[i + 1], bytes | bytearray):
                raw = bytes(lines[i + 1])
                uid = _UID.search(head)
                tail = bytes(lines[i + 2]) if i + 2 < len(lines) else b""
                if uid is None:  # some servers put UID after the literal
                    uid = _UID.search(tail)
                if uid is not None:
                    out.append(Fetched(int(uid.group(1)), raw))
                i += 2
                continue
        i += 1
    out.sort(key=lambda f: f.uid)
    return out


def parse_search(lines: list[Any]) -> list[int]:
    uids: list[int] = []
    for line in lines[:-1]:
        text = bytes(line).decode("ascii", errors="replace").strip()
        if text.upper().startswith("SEARCH"):
            text = text[6:]
        words = text.split()
        if words and all(w.isdigit() for w in words):
            uids.extend(int(w) for w in words)
    return sorted(set(uids))


def parse_select(lines: list[Any]) -> Selected:
    uidvalidity = exists = 0
    uidnext: int | None = None
    for line in lines:
        b = bytes(line)
        if m := _UIDVALIDITY.search(b):
            uidvalidity = int(m.group(1))
        elif m := _UIDNEXT.search(b):
            uidnext = int(m.group(1))
        elif m := _EXISTS.match(b):
            exists = int(m.group(1))
    return Selected(uidvalidity, exists, uidnext)


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of a raw mail, read leniently from its header block ('' when there is none)."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[:65536])
        return str(headers.get("Message-ID", "") or "").strip()
    except Exception:
        return ""


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a discarded task's outcome so that nothing is logged as 'never retrieved'."""
    if not task.cancelled():
        task.exception()


class Connection:
    """One aioimaplib client. Every await is raced against connection loss and a timeout, because a
    lost connection is never reported to aioimaplib's pending commands (they would hang)."""

    def __init__(self, imap: ImapSection, password: str) -> None:
        self.imap = imap
        self.password = password
        self.server = server_name(imap)
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.client: aioimaplib.IMAP4 | None = None
        self._idle_task: asyncio.Future[Any] | None = None

    def _on_lost(self, exc: Exception | None) -> None:
        self.lost_reason = str(exc) if exc else "closed by the server"
        self.lost.set()

    async def _guard(self, aw: Awaitable[T], what: str, timeout: float | None = None) -> T:
        if self.lost.is_set():
            raise MailboxError(f"{self.server}: connection lost ({self.lost_reason}) before {what}")
        limit = self.imap.timeout_seconds if timeout is None else timeout
        task = asyncio.ensure_future(aw)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            lost.cancel()
            task.add_done_callback(_consume)
            raise
        lost.cancel()
        if task in done:
            if task.cancelled():  # cancelled by an earlier guard that gave up on it, not by our caller
                raise MailboxError(f"{self.server}: {what} abandoned after an earlier timeout")
            try:
                return task.result()
            except (MailboxError, Stopped):
                raise
            except OSError as exc:
                raise MailboxError(f"{self.server}: {_describe(exc)}") from None
            except (aioimaplib.AioImapException, TimeoutError) as exc:
                raise MailboxError(f"{self.server}: {what} failed: {exc or type(exc).__name__}") from None
        task.cancel()
        task.add_done_callback(_consume)
        if lost in done:
            raise MailboxError(f"{self.server}: connection lost during {what} ({self.lost_reason})")
        raise MailboxError(f"{self.server}: no answer to {what} within {limit:g} s")

    async def open(self) -> None:
        """Connect (TLS, STARTTLS or plain), read the greeting, log in."""
        imap = self.imap
        context = ssl.create_default_context() if imap.security in ("ssl", "starttls") else None
        try:
            self.client = aioimaplib.IMAP4(
                host=imap.host,
                port=imap.port,
                timeout=imap.timeout_seconds,
                conn_lost_cb=self._on_lost,
                ssl_context=context if imap.security == "ssl" else None,
            )
            await self._guard(self.client.wait_hello_from_server(), "the greeting")
        except MailboxError:
            raise
        except OSError as exc:
            raise MailboxError(f"{self.server}: {_describe(exc)}") from None
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise MailboxError(f"{self.server}: no greeting: {exc or type(exc).__name__}") from None
        if imap.security == "starttls":
            assert context is not None
            await self._starttls(context)
        try:
            response = await self._guard(self.client.login(imap.username, self.password), "LOGIN")
        except aioimaplib.AioImapException as exc:
            raise MailboxError(f"{self.server}: LOGIN failed: {exc}") from None
        if response.result != "OK":
            detail = _text(response.lines[-1:]) if response.lines else response.result
            raise AuthError(f"{self.server}: login as {imap.username!r} refused: {detail}")
        if not self.client.has_capability("IDLE"):
            # Capabilities after login can differ from those in the greeting.
            await self._guard(self.client.protocol.capability(), "CAPABILITY")

    async def _starttls(self, context: ssl.SSLContext) -> None:
        # aioimaplib has no STARTTLS helper: issue the command, then upgrade the transport in place.
        assert self.client is not None
        protocol = self.client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise MailboxError(f"{self.server}: does not offer STARTTLS (set [imap] security)")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._guard(protocol.execute(command), "STARTTLS")
        if response.result != "OK":
            raise MailboxError(f"{self.server}: STARTTLS refused: {_text(response.lines)}")
        loop = asyncio.get_running_loop()
        try:
            transport = await self._guard(
                loop.start_tls(protocol.transport, protocol, context, server_hostname=self.imap.host), "TLS handshake"
            )
        except OSError as exc:
            raise MailboxError(f"{self.server}: {_describe(exc)}") from None
        protocol.transport = transport
        await self._guard(protocol.capability(), "CAPABILITY")

    async def select(self, mailbox: str) -> Selected:
        assert self.client is not None
        response = await self._guard(self.client.select(_quote(mailbox)), f"SELECT {mailbox}")
        if response.result != "OK":
            raise MailboxError(f"{self.server}: cannot select mailbox {mailbox!r}: {_text(response.lines[-1:])}")
        selected = parse_select(response.lines)
        if not selected.uidvalidity:
            raise MailboxError(f"{self.server}: SELECT {mailbox} gave no UIDVALIDITY")
        return selected

    async def search_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid` ("n:*" also matches the highest UID when nothing is newer: filtered)."""
        assert self.client is not None
        response = await self._guard(self.client.uid_search(f"UID {last_uid + 1}:*", charset=None), "UID SEARCH")
        if response.result != "OK":
            raise MailboxError(f"{self.server}: UID SEARCH failed: {_text(response.lines[-1:])}")
        return [u for u in parse_search(response.lines) if u > last_uid]

    async def fetch(self, uids: list[int], part: str = "BODY.PEEK[]") -> list[Fetched]:
        """Whole messages by UID with BODY.PEEK[] (never ENVELOPE: aioimaplib misreads a '(' in a Subject)."""
        assert self.client is not None
        response = await self._guard(
            self.client.uid("fetch", uid_set(uids), f"(UID {part})"), f"UID FETCH of {len(uids)}"
        )
        if response.result != "OK":
            raise MailboxError(f"{self.server}: UID FETCH failed: {_text(response.lines[-1:])}")
        return parse_fetch(response.lines)

    async def mark_seen(self, uid: int) -> None:
        assert self.client is not None
        await self._guard(self.client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Seen)"), "UID STORE")

    async def move(self, uid: int, folder: str) -> bool:
        """Move one message to `folder` (created when missing); False when the server cannot."""
        assert self.client is not None
        await self._guard(self.client.create(_quote(folder)), f"CREATE {folder}")  # NO when it exists: fine
        if self.client.has_capability("MOVE"):
            response = await self._guard(self.client.uid("move", str(uid), _quote(folder)), "UID MOVE")
        else:
            # Without MOVE only a copy is safe: EXPUNGE could remove messages someone else marked deleted.
            response = await self._guard(self.client.uid("copy", str(uid), _quote(folder)), "UID COPY")
        return response.result == "OK"

    async def idle(self, seconds: float, stop: asyncio.Event) -> list[bytes]:
        """IDLE until the server pushes something, `seconds` pass, or stop is set; the push (may be empty).

        Raises Stopped when stop was set. A push is only a hint: the caller catches up from its position."""
        assert self.client is not None
        if not self.client.has_capability("IDLE"):
            await self._wait_stop(stop, seconds)
            return []
        queue = self.client.protocol.idle_queue
        while not queue.empty():  # leftovers of an earlier IDLE
            queue.get_nowait()
        # idle_start() can hang forever when the server closes the connection (aioimaplib #110).
        idle_task = await self._guard(self.client.idle_start(timeout=seconds + 30), "IDLE")
        self._idle_task = idle_task
        push: list[bytes] = []
        got = asyncio.ensure_future(queue.get())
        stopping = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({got, stopping, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (got, stopping, lost):
                t.cancel()
        if got in done and isinstance(got.result(), list):
            push = [bytes(x) for x in got.result()]
        if lost in done:
            raise MailboxError(f"{self.server}: connection lost during IDLE ({self.lost_reason})")
        self.client.idle_done()
        await self._guard(idle_task, "IDLE DONE")
        self._idle_task = None
        if stopping in done:
            raise Stopped
        return push

    async def _wait_stop(self, stop: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return
        raise Stopped

    async def close(self) -> None:
        """Log out when possible (briefly), then drop the connection and every task aioimaplib left behind."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if not self.lost.is_set() and client.protocol.state in (aioimaplib.AUTH, aioimaplib.SELECTED):
                if client.has_pending_idle():
                    client.idle_done()
                    if self._idle_task is not None and not self._idle_task.done():
                        await self._guard(self._idle_task, "IDLE DONE", timeout=1)
                await self._guard(client.logout(), "LOGOUT", timeout=1)
        except (MailboxError, aioimaplib.AioImapException, OSError, TimeoutError) as exc:
            log.debug("%s: logout: %s", self.server, exc)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being stopped
            log.debug("%s: logout: a command of this connection was cancelled", self.server)  # never kill the loop
        finally:
            transport = client.protocol.transport
            if transport is not None:
                transport.close()
            if client._idle_waiter is not None:
                client._idle_waiter.cancel()
            for task in (*client.tasks, *client.protocol.tasks, client._client_task, self._idle_task):
                if task is not None and not task.done():
                    task.cancel()
                    task.add_done_callback(_consume)
            if client.protocol.pending_sync_command is not None:
                client.protocol.pending_sync_command.close(b"", "NO")
            for cmd in client.protocol.pending_async_commands.values():
                if cmd is not None:
                    cmd.close(b"", "NO")


def _describe(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS failed: certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return f"cannot connect: {exc.strerror or exc}"


def _quote(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(lines: list[Any]) -> str:
    return " ".join(bytes(x).decode("utf-8", errors="replace") for x in lines if isinstance(x, bytes | bytearray))[
        :300
    ]


async def check_imap(imap: ImapSection, password: str) -> Selected:
    """Connect, log in and select the mailbox once; MailboxError (one line naming the server) when not."""
    conn = Connection(imap, password)
    try:
        await conn.open()
        return await conn.select(imap.mailbox)
    finally:
        await conn.close()


async def watch(
    imap: ImapSection,
    *,
    password: str,
    sink: Sink,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    fail_fast: bool = True,
    rand: random.Random | None = None,
) -> None:
    """The mailbox loop: connect, catch up from the stored position, IDLE, repeat; reconnect on any error.

    With `fail_fast`, a failure of the very first connection raises MailboxError (a wrong password or an
    unreachable server at start is a configuration problem); later failures back off and reconnect.
    A wrong password later is retried at the longest backoff. Returns when `stop` is set."""
    attempt = 0
    connected_once = False
    progress = _Progress(imap.fetch_batch)
    while not stop.is_set():
        conn = Connection(imap, password)
        try:
            await conn.open()
            selected = await conn.select(imap.mailbox)
            log.info("%s: %s selected (UIDVALIDITY %d, %d messages)", conn.server, imap.mailbox,
                     selected.uidvalidity, selected.exists)
            connected_once = True
            attempt = 0
            while not stop.is_set():
                await _catch_up(conn, imap, selected.uidvalidity, sink, stop, progress)
                if stop.is_set():
                    break
                if ready is not None and not ready.is_set():
                    ready.set()
                push = await conn.idle(imap.idle_seconds, stop)
                if push:
                    log.debug("%s: pushed %r", conn.server, push[:5])
        except Stopped:
            break
        except Exception as exc:
            if fail_fast and not connected_once:
                raise
            if isinstance(exc, AuthError):
                attempt = max(attempt, 30)  # the password will not fix itself soon: retry slowly
            delay = backoff_delay(attempt, imap.backoff_seconds, imap.backoff_max_seconds, rand)
            attempt += 1
            if isinstance(exc, MailboxError):
                log.warning("%s; reconnecting in %.1f s", exc, delay)
            else:  # not the server's fault (the store, a bug): say so, keep the daemon alive
                log.error("mailbox loop failed: %s: %s; starting again in %.1f s", type(exc).__name__, exc, delay)
                log.debug("mailbox loop traceback", exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
        finally:
            await conn.close()
    log.info("%s: mailbox loop stopped", server_name(imap))


class _Progress:
    """What the loop learned about fetching across reconnects: a batch that killed the connection is
    halved, and a single UID that kills it FETCH_ATTEMPTS times is given up (recorded, skipped)."""

    def __init__(self, batch: int) -> None:
        self.configured = max(1, min(batch, MAX_FETCH))
        self.batch = self.configured
        self.strikes: dict[int, int] = {}


async def _catch_up(
    conn: Connection, imap: ImapSection, uidvalidity: int, sink: Sink, stop: asyncio.Event, progress: _Progress
) -> None:
    """Process every message above the stored position, in UID order, in bounded batches."""
    position = await sink.position(imap.mailbox)
    last = 0
    rereading = False
    if position is not None:
        old_validity, old_last = position
        if old_validity == uidvalidity:
            last = old_last
        else:
            # The UIDs mean nothing now: read the mailbox again, and let Message-ID dedupe in the
            # store keep every message from being processed twice.
            log.warning("%s: UIDVALIDITY of %s changed from %d to %d: reading it again, known Message-IDs skipped",
                        conn.server, imap.mailbox, old_validity, uidvalidity)
            rereading = True
    uids = await conn.search_after(last)
    if uids:
        log.info("%s: %d new messages after UID %d", conn.server, len(uids), last)
    while uids:
        chunk = uids[: progress.batch]
        if len(chunk) == 1 and progress.strikes.get(chunk[0], 0) >= FETCH_ATTEMPTS:
            await sink.unfetchable(imap.mailbox, uidvalidity, chunk[0],
                                   f"{conn.server}: fetching UID {chunk[0]} broke the connection {FETCH_ATTEMPTS} times")
            progress.strikes.pop(chunk[0], None)
            last = chunk[0]
            uids = uids[1:]
            continue
        try:
            wanted = await _unknown(conn, chunk, sink) if rereading else chunk
            items = await _fetch_chunk(conn, imap, uidvalidity, wanted, sink) if wanted else []
        except MailboxError:
            if conn.lost.is_set():
                if len(chunk) == 1:
                    progress.strikes[chunk[0]] = progress.strikes.get(chunk[0], 0) + 1
                progress.batch = max(1, len(chunk) // 2)
            raise
        for item in items:
            ok = await sink.message(imap.mailbox, uidvalidity, item)
            if not ok and imap.quarantine:
                moved = await conn.move(item.uid, imap.quarantine)
                log.info("%s %s quarantine folder %s (%s UID %d)", message_id_of(item.raw) or "<no Message-ID>",
                         "moved to" if moved else "could not be moved to", imap.quarantine, conn.server, item.uid)
            elif ok and imap.mark_seen:
                await conn.mark_seen(item.uid)
            last = item.uid
            if stop.is_set():
                return
        last = max(last, chunk[-1])
        uids = uids[len(chunk) :]
    progress.batch = progress.configured
    await sink.synced(imap.mailbox, uidvalidity, last)


async def _unknown(conn: Connection, chunk: list[int], sink: Sink) -> list[int]:
    """The UIDs of `chunk` whose Message-ID was not processed before (headers only: cheap to ask)."""
    heads = await conn.fetch(chunk, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
    ids = {h.uid: message_id_of(h.raw) for h in heads}
    known = await sink.known([m for m in ids.values() if m])
    # A message without a Message-ID is known by a hash of its bytes only: fetch it whole.
    skipped = {uid for uid, m in ids.items() if m and m in known}
    if skipped:
        log.info("%s: %d messages known by Message-ID skipped", conn.server, len(skipped))
    return [u for u in chunk if u not in skipped]


async def _fetch_chunk(
    conn: Connection, imap: ImapSection, uidvalidity: int, chunk: list[int], sink: Sink
) -> list[Fetched]:
    """Fetch a chunk. A chunk that fails without losing the connection is fetched one by one, and a
    single message that cannot be fetched is recorded and skipped; a lost connection propagates."""
    try:
        return await conn.fetch(chunk)
    except MailboxError:
        if conn.lost.is_set() or len(chunk) == 1:
            raise
    out: list[Fetched] = []
    for uid in chunk:
        try:
            out.extend(await conn.fetch([uid]))
        except MailboxError as exc:
            if conn.lost.is_set():
                raise
            await sink.unfetchable(imap.mailbox, uidvalidity, uid, str(exc))
    return out
