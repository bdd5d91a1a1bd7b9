"""Dates and times as members type them in commands ("on 14 Sept 9:00", "in 3 days", "2026-09-14 15:00")."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.commands.base import CommandError, clip

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_OFFSET = re.compile(r"^(\d{1,3})\s*([mhdw])$")
DEFAULT_TIME = time(9, 0)


def month(word: str) -> int | None:
    w = word.lower().rstrip(".,")
    if len(w) < 3:
        return None
    m = _MONTHS.get(w[:3])
    full = "january february march april may june july august september october november december".split()
    if m and full[m - 1].startswith(w):
        return m
    return None


def offsets(text: str) -> list[str]:
    """'7d,1d' -> ['7d', '1d']: days, hours, minutes or weeks before, at most 5, each at most 365 days."""
    parts = [p.strip().lower() for p in re.split(r"[,\s]+", text) if p.strip()]
    if not parts or len(parts) > 5:
        raise CommandError(f"offsets must be 1 to 5 values like 7d,1d or 2h, not {clip(text)!r}")
    out = []
    for p in parts:
        m = _OFFSET.match(p)
        if not m or int(m.group(1)) * _UNITS[m.group(2)] > 365 * 86400 or int(m.group(1)) == 0:
            raise CommandError(f"{clip(p)!r} is not an offset like 7d, 12h, 30m or 2w")
        out.append(p)
    return sorted(set(out), key=lambda o: -int(o[:-1]) * _UNITS[o[-1]])


def take_date(words: list[str], today: date) -> tuple[date, int] | None:
    """A date at the start of `words`: 2026-09-14, 14 Sept [2026], Sept 14[,] [2026], 14.9.[2026], today,
    tomorrow, or a weekday (the next one). Returns (date, words used) or None."""
    if not words:
        return None
    w0 = words[0].lower().rstrip(",")
    if w0 == "today":
        return today, 1
    if w0 == "tomorrow":
        return today + timedelta(days=1), 1
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    for i, name in enumerate(days):
        if len(w0) >= 3 and name.startswith(w0):
            ahead = (i - today.weekday()) % 7 or 7
            return today + timedelta(days=ahead), 1
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:t.*)?", w0)
    if m:
        return _date(int(m.group(1)), int(m.group(2)), int(m.group(3)), words[0]), 1
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})?", w0)
    if m:
        year = int(m.group(3)) if m.group(3) else None
        return _guess_year(today, int(m.group(2)), int(m.group(1)), year, words[0]), 1
    day_first = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", w0)
    if day_first and len(words) > 1 and month(words[1]):
        year, used = _year(words[2:])
        return _guess_year(today, month(words[1]) or 0, int(day_first.group(1)), year, " ".join(words[:2])), 2 + used
    if month(w0) and len(words) > 1:
        d = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?,?", words[1].lower())
        if d:
            year, used = _year(words[2:])
            return _guess_year(today, month(w0) or 0, int(d.group(1)), year, " ".join(words[:2])), 2 + used
    return None


def _year(words: list[str]) -> tuple[int | None, int]:
    if words and re.fullmatch(r"\d{4},?", words[0]):
        return int(words[0].rstrip(",")), 1
    return None, 0


def _date(y: int, m: int, d: int, text: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise CommandError(f"{clip(text)!r} is not a date") from None


def _guess_year(today: date, m: int, d: int, year: int | None, text: str) -> date:
    if year is not None:
        return _date(year, m, d, text)
    candidate = _date(today.year, m, d, text) if not (m == 2 and d == 29) else None
    if candidate is None or candidate < today - timedelta(days=30):
        return _date(today.year + 1, m, d, text)
    return candidate


def take_time(words: list[str]) -> tuple[time, int] | None:
    """A time at the start of `words`: 9:00, 09:00, 9am, 9:30 pm, 21h, optionally after 'at'."""
    if not words:
        return None
    used = 0
    if words[0].lower() == "at" and len(words) > 1:
        used = 1
        words = words[1:]
    w = words[0].lower()
    ampm = None
    if len(words) > 1 and words[1].lower() in ("am", "pm", "a.m.", "p.m."):
        ampm = words[1].lower()[0]
        used += 1
    m = re.fullmatch(r"(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|h)?", w)
    if not m or (m.group(2) is None and m.group(3) is None and ampm is None):
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    suffix = ampm or (m.group(3) or "")[:1]
    if suffix in ("a", "p"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "p" else 0)
    if hour > 23 or minute > 59:
        raise CommandError(f"{clip(w)!r} is not a time of day")
    return time(hour, minute), used + 1


def zone(name: str) -> ZoneInfo:
    """An IANA zone (Area/City or UTC), checked; anything else is a clear error."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}", name) or len(name) > 40:
        raise CommandError(f"{clip(name)!r} is not a time zone name; use one like Europe/Berlin or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CommandError(f"unknown time zone {clip(name)!r}; use an IANA name like Europe/Berlin") from None


def take_moment(words: list[str], tz: ZoneInfo, now: datetime) -> tuple[datetime, int]:
    """When a personal reminder is due: 'in 3 days', 'on 14 Sept 9:00', 'tomorrow at 10', 'at 15:00'."""
    local_now = now.astimezone(tz)
    i = 0
    if words and words[0].lower() == "in" and len(words) > 1:
        m = re.fullmatch(r"(\d{1,4})([a-z]*)", words[1].lower())
        if m and m.group(2):
            unit_word, used = m.group(2), 2
        elif m and len(words) > 2:
            unit_word, used = words[2].lower(), 3
        else:
            raise CommandError("'in' needs a number and a unit, as in 'in 3 days'")
        amount = int(m.group(1))
        unit = _unit(unit_word)
        if unit is None:
            raise CommandError(f"{clip(unit_word)!r} is not minutes, hours, days or weeks")
        if amount * unit > 366 * 86400 or amount == 0:
            raise CommandError("a reminder can be at most a year ahead")
        return now + timedelta(seconds=amount * unit), used
    if words and words[0].lower() == "on":
        i = 1
    day = take_date(words[i:], local_now.date())
    at: tuple[time, int] | None
    if day:
        i += day[1]
        at = take_time(words[i:])
        if at:
            i += at[1]
    else:
        at = take_time(words[i:])
        if not at:
            raise CommandError(
                "say when: 'in 3 days', 'on 14 Sept 9:00', 'tomorrow at 10:00' or 'at 15:00'"
            )
        i += at[1]
        nxt = take_date(words[i:], local_now.date())
        if nxt:
            i += nxt[1]
            day = nxt
    when_day = day[0] if day else local_now.date()
    when_time = at[0] if at else DEFAULT_TIME
    moment = datetime.combine(when_day, when_time, tzinfo=tz)
    if not day and moment <= local_now:
        moment += timedelta(days=1)
    if moment <= now:
        raise CommandError(f"{moment:%d %b %Y %H:%M} is in the past")
    if moment > now + timedelta(days=366):
        raise CommandError("a reminder can be at most a year ahead")
    return moment, i


def _unit(word: str) -> int | None:
    w = word.lower().rstrip(".,")
    for names, seconds in (
        (("m", "min", "mins", "minute", "minutes"), 60),
        (("h", "hr", "hrs", "hour", "hours"), 3600),
        (("d", "day", "days"), 86400),
        (("w", "wk", "week", "weeks"), 7 * 86400),
    ):
        if w in names:
            return seconds
    return None


def take_datetime(words: list[str], tz: ZoneInfo, today: date) -> tuple[datetime, int]:
    """A meeting time: '2026-09-14 15:00 [UTC|Area/City]', '2026-09-14T15:00', '14 Sept 15:00'."""
    if words and re.fullmatch(r"\d{4}-\d{2}-\d{2}t\d{1,2}:\d{2}([+-]\d{2}:?\d{2}|z)?", words[0].lower()):
        try:
            dt = datetime.fromisoformat(words[0].upper().replace("Z", "+00:00"))
        except ValueError:
            raise CommandError(f"{clip(words[0])!r} is not a date and time") from None
        used = 1
        if dt.tzinfo is None:
            dt, extra = _zoned(dt, words[1:], tz)
            used += extra
        return dt, used
    day = take_date(words, today)
    if not day:
        raise CommandError("start with a date and a time, as in 2026-09-14 15:00 or 14 Sept 15:00")
    at = take_time(words[day[1]:])
    if not at:
        raise CommandError("a meeting needs a time of day after the date, as in 2026-09-14 15:00")
    used = day[1] + at[1]
    dt, extra = _zoned(datetime.combine(day[0], at[0]), words[used:], tz)
    return dt, used + extra


def _zoned(naive: datetime, words: list[str], tz: ZoneInfo) -> tuple[datetime, int]:
    if words and (words[0].upper() in ("UTC", "GMT", "Z") or "/" in words[0]):
        try:
            return naive.replace(tzinfo=zone("UTC" if words[0].upper() in ("GMT", "Z") else words[0])), 1
        except CommandError:
            if "/" in words[0]:
                raise
    return naive.replace(tzinfo=tz), 0
