"""The HTTP endpoint on loopback: RFC 8058 one-click unsubscribe (a GET never unsubscribes) and the .ics feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot import web
from bot.config import Config, from_dict
from bot.store import AsyncStore, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return from_dict({"list": {"timezone": "Europe/Berlin"}, "store": {"path": str(tmp_path / "s.sqlite3")},
                      "http": {"port": 8025}})


@pytest.fixture
async def served(config: Config):
    store = Store.open(config.store.path)
    store.set_member("ann@example.org", now=T0, digest=True)
    store.add_reminder("ann@example.org", now=T0, offsets=["1d"])
    token = store.unsubscribe_token("ann@example.org", now=T0, new_token=lambda: "tok-ann-0123456789")
    store.save_item(type="meeting", what="Call", start="2026-03-20T15:00:00+01:00", end=None,
                    tz=ZoneInfo("Europe/Berlin"), now=T0, message_id="<a@x>", text="t")
    astore = AsyncStore(store)
    port, stop = await web.start(config, astore, now_fn=lambda: T0, port=0)
    try:
        yield port, token, store
    finally:
        await stop()
        await asyncio.to_thread(astore.close)


async def test_get_shows_a_button_and_never_unsubscribes(served):
    # A link checker's GET (or HEAD) gets a page with a POST form; the member stays subscribed.
    port, token, store = served
    status, headers, body = await request(port, f"GET /unsubscribe/{token}?what=digest HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'method="post"' in body and b"List-Unsubscribe" in body
    status, _, body = await request(port, f"HEAD /unsubscribe/{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 200 and body == b""
    assert store.member("ann@example.org")["digest"] == 1


async def test_one_click_post_unsubscribes_from_the_digest(served):
    # POST with List-Unsubscribe=One-Click turns the personal digest off, nothing else.
    port, token, store = served
    status, _, body = await request(port, post(f"/unsubscribe/{token}?what=digest", b"List-Unsubscribe=One-Click"))
    assert status == 200 and b"Unsubscribed" in body
    member = store.member("ann@example.org")
    assert (member["digest"], member["stopped"]) == (0, 0)
    assert len(store.reminders_of("ann@example.org")) == 1


async def test_one_click_post_for_all_stops_personal_mail(served):
    # what=all (the link in personal reminders) stops all personal mail and cancels the member's reminders.
    port, token, store = served
    status, _, _ = await request(port, post(f"/unsubscribe/{token}?what=all", b"List-Unsubscribe=One-Click"))
    assert status == 200
    assert store.member("ann@example.org")["stopped"] == 1
    assert store.reminders_of("ann@example.org") == []


async def test_bad_requests_are_refused(served):
    # Unknown tokens, a POST without the RFC 8058 body, other methods, unknown paths and junk get 4xx.
    port, token, store = served
    assert (await request(port, post("/unsubscribe/not-a-known-token", b"List-Unsubscribe=One-Click")))[0] == 404
    assert (await request(port, post(f"/unsubscribe/{token}", b"")))[0] == 400
    assert (await request(port, f"DELETE /unsubscribe/{token} HTTP/1.1\r\n\r\n".encode()))[0] == 405
    assert (await request(port, b"GET /nothing HTTP/1.1\r\n\r\n"))[0] == 404
    assert (await request(port, b"garbage\r\n\r\n"))[0] == 400
    assert (await request(port, post(f"/unsubscribe/{token}", b"x" * 9000)))[0] == 413
    assert store.member("ann@example.org")["digest"] == 1


async def test_the_feed_is_served(served):
    # GET /calendar.ics returns the whole calendar.
    port, _, _ = served
    status, headers, body = await request(port, b"GET /calendar.ics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and headers["content-type"].startswith("text/calendar")
    assert int(headers["content-length"]) == len(body)
    events = list(icalendar.Calendar.from_ical(body).walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in events] == ["Call"]
