"""Reminders: what is due at `now` (pure), and the times people read in them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.store import Item

_OFFSET = re.compile(r"^(\d{1,4})([dhm])$")


def parse_offset(text: str) -> timedelta:
    """'7d', '12h', '30m' -> timedelta; ValueError otherwise (config checks the same pattern at load)."""
    m = _OFFSET.match(text.strip())
    if not m:
        raise ValueError(f"not an offset like 7d, 12h or 30m: {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


@lru_cache(maxsize=512)
def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """A member's zone by name; an unknown or empty name is the default (the list's zone)."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def item_day(item: Item, tz: ZoneInfo) -> date:
    """The calendar day of an item: as written for all-day items, else the start's day in `tz`."""
    if item.all_day:
        return date.fromisoformat(item.start[:10])
    return item.start_utc.astimezone(tz).date()


def useful_until(item: Item) -> datetime:
    """Until when a reminder about `item` helps: a deadline's end of day or its time; a meeting's start."""
    if item.type == "deadline" and item.all_day:
        return item.end_utc
    return item.start_utc


def fmt_local(moment: datetime, tz: ZoneInfo) -> str:
    """'Mon 30 Mar 2026 17:00 CEST'."""
    local = moment.astimezone(tz)
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()}"


def fmt_day(d: date) -> str:
    return f"{d:%a %d %b %Y}"


def when_text(item: Item, tz: ZoneInfo) -> str:
    """When an item is, for a reader in `tz` (UTC added for timed items)."""
    if item.all_day:
        first = date.fromisoformat(item.start[:10])
        text = fmt_day(first)
        if item.end and item.end[:10] != item.start[:10]:
            text += " to " + fmt_day(date.fromisoformat(item.end[:10]))
        return text
    text = fmt_local(item.start_utc, tz)
    if item.end_utc > item.start_utc:
        text += f"-{item.end_utc.astimezone(tz):%H:%M}"
    if tz.key != "UTC":
        text += f" ({item.start_utc:%H:%M} UTC)"
    return text


def zone_lines(item: Item, zones: tuple[str, ...], own: ZoneInfo | None = None) -> list[tuple[str, str]]:
    """(zone name, local time) for a timed item: UTC, each configured zone, and the reader's own (first)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    names = ([own.key] if own is not None else []) + ["UTC", *zones]
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        out.append((name, fmt_local(item.start_utc, zone(name))))
    return out


def last_slot(cron: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The latest time at or before `now` that the crontab `cron` names in zone `tz` (None within a year)."""
    trigger = _trigger(cron, tz.key)
    for back in (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367)):
        found = None
        moment = trigger.get_next_fire_time(None, now - back)
        steps = 0
        while moment is not None and moment <= now and steps < 400:
            found = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
            steps += 1
        if found is not None:
            return found.astimezone(UTC)
    return None


@lru_cache(maxsize=256)
def _trigger(cron: str, tz_name: str) -> Any:
    # The crontab grammar is APScheduler's, as in the daemon's digest job.
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(tz_name))
