"""The small HTTP endpoint: RFC 8058 one-click unsubscribe (POST only) and the .ics feed (GET).

A minimal HTTP/1.1 server on asyncio streams: one request per connection, bounded reads, no framework."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from bot import ics
from bot.config import Config
from bot.store import AsyncStore, Store

log = logging.getLogger(__name__)

MAX_HEAD = 8192
MAX_BODY = 8192
READ_SECONDS = 10.0
_TOKEN = re.compile(r"^/unsubscribe/([A-Za-z0-9_-]{8,100})$")
FEEDS = ("/calendar.ics", "/feed.ics")


class _Bad(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Content Too Large", 500: "Internal Server Error"}


def _page(title: str, body_html: str) -> bytes:
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head><body style=\"font-family: sans-serif\">"
        f"<h1>{html.escape(title)}</h1>{body_html}</body></html>\n"
    ).encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
    except asyncio.LimitOverrunError:
        raise _Bad(400, "request head too large") from None
    except asyncio.IncompleteReadError:
        raise _Bad(400, "incomplete request") from None
    except TimeoutError:
        raise _Bad(408, "too slow") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Bad(400, "not an HTTP/1.x request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _Bad(400, "bad header line")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if "transfer-encoding" in headers:
        raise _Bad(400, "chunked bodies are not accepted")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise _Bad(400, "bad Content-Length")
    length = int(length_text)
    if length > MAX_BODY:
        raise _Bad(413, "body too large")
    if length:
        try:
            body = await asyncio.wait_for(reader.readexactly(length), READ_SECONDS)
        except (asyncio.IncompleteReadError, TimeoutError):
            raise _Bad(400, "incomplete body") from None
    return method, target, headers, body


class Endpoint:
    """The request handler; `handle(method, target, headers, body) -> (status, content type, body)`."""

    def __init__(self, config: Config, astore: AsyncStore, *, now_fn: Callable[[], datetime]) -> None:
        self.config = config
        self.astore = astore
        self.now_fn = now_fn

    async def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        if url.path in FEEDS:
            if method not in ("GET", "HEAD"):
                return 405, "text/plain; charset=utf-8", b"GET only\n"
            items = await self.astore.run(Store.items)
            return 200, "text/calendar; charset=utf-8", ics.calendar_for(self.config, items, now=self.now_fn())
        m = _TOKEN.match(url.path)
        if m is None:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        token = m.group(1)
        what = "all" if query.get("what", ["digest"])[0] == "all" else "digest"
        stream = "all personal mail from listbot (reminders and digest)" if what == "all" else "the personal digest"
        known = await self.astore.run(Store.has_unsubscribe_token, token)
        if not known:
            return 404, "text/html; charset=utf-8", _page("Unknown link", "<p>This unsubscribe link is not known.</p>")
        if method in ("GET", "HEAD"):
            # RFC 8058: a GET (a link checker, a mail scanner) never unsubscribes; it shows one button.
            action = html.escape(f"/unsubscribe/{token}?what={what}")
            form = (
                f"<p>Stop {html.escape(stream)}?</p>"
                f"<form method=\"post\" action=\"{action}\">"
                "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                "<button type=\"submit\">Unsubscribe</button></form>"
            )
            return 200, "text/html; charset=utf-8", _page("Unsubscribe", form)
        if method != "POST":
            return 405, "text/plain; charset=utf-8", b"GET or POST\n"
        form_values = parse_qs(body.decode("utf-8", "replace"))
        if form_values.get("List-Unsubscribe") != ["One-Click"]:
            return 400, "text/plain; charset=utf-8", b"expected List-Unsubscribe=One-Click (RFC 8058)\n"
        address = await self.astore.run(Store.unsubscribe_by_token, token, what)
        if address is None:
            return 404, "text/html; charset=utf-8", _page("Unknown link", "<p>This unsubscribe link is not known.</p>")
        log.info("one-click unsubscribe (%s) for %s", what, address)
        return 200, "text/html; charset=utf-8", _page("Unsubscribed", f"<p>You will get no more of {html.escape(stream)}.</p>")

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = ""
        try:
            try:
                method, target, headers, body = await _read_request(reader)
                status, ctype, payload = await self.handle(method, target, headers, body)
            except _Bad as exc:
                status, ctype, payload = exc.status, "text/plain; charset=utf-8", (exc.reason + "\n").encode()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("HTTP request failed")
                status, ctype, payload = 500, "text/plain; charset=utf-8", b"internal error\n"
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else payload))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


async def start(
    config: Config, astore: AsyncStore, *, now_fn: Callable[[], datetime], port: int | None = None
) -> tuple[int, Callable[[], Awaitable[None]]]:
    """Start serving on [http] host/port (or `port`); returns (the bound port, its stop)."""
    endpoint = Endpoint(config, astore, now_fn=now_fn)
    server = await asyncio.start_server(
        endpoint.serve_connection, config.http.host, config.http.port if port is None else port, limit=MAX_HEAD
    )
    bound = server.sockets[0].getsockname()[1]
    log.info("HTTP endpoint on %s:%d (unsubscribe, %s)", config.http.host, bound, FEEDS[0])

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return bound, stop
