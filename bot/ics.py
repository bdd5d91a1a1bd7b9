"""Calendars: items as RFC 5545 iCalendar (one stable UID per item, SEQUENCE bumped on each edit)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from bot.config import Config
from bot.store import Item, Store

log = logging.getLogger(__name__)

PRODID = "-//listbot//listbot calendar//EN"


def uid(item: Item, domain: str = "listbot.invalid") -> str:
    """The item's UID: the same for every version of the item, so clients update rather than duplicate."""
    return f"item-{item.id}@{domain}"


def _zone_for(item: Item, tz: ZoneInfo | None) -> ZoneInfo | None:
    """The zone a timed item is shown in: the list's zone when the item was announced in it, else UTC (None)."""
    if tz is None or tz.key == "UTC":
        return None
    try:
        written = datetime.fromisoformat(item.start)
    except ValueError:
        written = None
    local = item.start_utc.astimezone(tz)
    if written is not None and written.tzinfo is not None and written.utcoffset() != local.utcoffset():
        return None  # announced in another zone: UTC is exact, the list's zone would only be a guess
    return tz


def event(item: Item, *, now: datetime, tz: ZoneInfo | None = None, domain: str = "listbot.invalid") -> icalendar.Event:
    ev = icalendar.Event()
    ev.add("uid", uid(item, domain))
    ev.add("dtstamp", now.astimezone(UTC))
    ev.add("sequence", item.sequence)
    prefix = "Deadline: " if item.type == "deadline" else ""
    ev.add("summary", prefix + item.what)
    if item.all_day:
        first = date.fromisoformat(item.start[:10])
        last = date.fromisoformat(item.end[:10]) if item.end else first
        ev.add("dtstart", first)
        ev.add("dtend", max(last, first) + timedelta(days=1))
        ev.add("transp", "TRANSPARENT")
    else:
        zone = _zone_for(item, tz)
        start = item.start_utc.astimezone(zone) if zone else item.start_utc
        ev.add("dtstart", start)
        if item.end_utc > item.start_utc:
            ev.add("dtend", item.end_utc.astimezone(zone) if zone else item.end_utc)
        elif item.type == "meeting":
            ev.add("duration", timedelta(hours=1))  # a meeting with no end: shown as an hour
        if item.type == "deadline":
            ev.add("transp", "TRANSPARENT")
    if item.where:
        ev.add("location", item.where)
    notes = []
    if item.who:
        notes.append(f"For: {item.who}")
    if item.uncertain:
        notes.append("Not confirmed yet: read from a list post, may be wrong.")
    if notes:
        ev.add("description", "\n".join(notes))
    if item.status == "cancelled":
        ev.add("status", "CANCELLED")
    elif item.uncertain:
        ev.add("status", "TENTATIVE")
    else:
        ev.add("status", "CONFIRMED")
    ev.add("last-modified", item.updated_utc.astimezone(UTC))
    ev.add("created", item.created_utc.astimezone(UTC))
    return ev


def calendar(
    items: list[Item],
    *,
    now: datetime,
    tz: ZoneInfo | None = None,
    domain: str = "listbot.invalid",
    name: str = "listbot",
) -> bytes:
    """A VCALENDAR of `items` (cancelled ones as STATUS:CANCELLED); every TZID used is defined."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    for item in items:
        cal.add_component(event(item, now=now, tz=tz, domain=domain))
    if items:
        # VTIMEZONE rules only for the years the items span (a whole-era table makes each attachment 4 KB).
        first = min(i.start_utc for i in items).date().replace(month=1, day=1)
        last = max(i.end_utc for i in items).date().replace(month=12, day=31)
        cal.add_missing_timezones(first_date=first, last_date=last + timedelta(days=1))
    return cal.to_ical()


def calendar_for(config: Config, items: list[Item], *, now: datetime) -> bytes:
    """The calendar with the list's zone, domain and name from `config`."""
    return calendar(
        items, now=now, tz=config.tz, domain=config.bot.address.rpartition("@")[2] or "listbot.invalid",
        name=config.list.name,
    )


def cli_ics(args: argparse.Namespace, config: Config) -> int:
    """`listbot ics > feed.ics`: every item, cancelled ones included (so subscribed clients drop them)."""
    store = Store.open(config.resolve(config.store.path))
    try:
        items = store.items()
    finally:
        store.close()
    data = calendar_for(config, items, now=datetime.now(UTC))
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0
