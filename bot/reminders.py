"""Reminders: what is due at `now` (pure), and the times people read in them."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Config
from bot.store import Item, Store

log = logging.getLogger(__name__)

_OFFSET = re.compile(r"^(\d{1,4})([dhm])$")


@lru_cache(maxsize=256)
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


_SLOTS: dict[tuple[str, str], tuple[datetime, datetime | None]] = {}


def last_slot(cron: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The latest time at or before `now` that the crontab `cron` names in zone `tz` (None within a year)."""
    cached = _SLOTS.get((cron, tz.key))
    if cached is not None and cached[0] <= now and (cached[1] is None or now < cached[1]):
        return cached[0]  # every tick asks; the answer only changes at the next slot
    found = _last_slot(cron, tz, now)
    if found is not None:
        following = _trigger(cron, tz.key).get_next_fire_time(found, found + timedelta(seconds=1))
        if len(_SLOTS) > 1000:
            _SLOTS.clear()
        _SLOTS[(cron, tz.key)] = (found, following.astimezone(UTC) if following else None)
    return found


def _last_slot(cron: str, tz: ZoneInfo, now: datetime) -> datetime | None:
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


# -- what is due ----------------------------------------------------------------------------------

LIST = "list"
# A reminder more than this after its time is marked late (and carries the time it is sent, not its slot).
LATE_AFTER = timedelta(minutes=30)
# How far ahead of an item a reminder can be: longer offsets are not looked for.
HORIZON = timedelta(days=33)


@dataclass(frozen=True)
class Reminder:
    key: str  # the idempotency key: one per item (and its date), offset and recipient
    recipient: str  # an address; the list's address for list reminders
    to_list: bool
    item: Item | None  # None: a member's note to themself
    offset: str  # "7d", "1h", "0d" (on the day of a timed deadline), "at" (a note)
    fire_at: datetime  # when it is meant to go out (UTC)
    tz: ZoneInfo  # the zone its day offsets count in and its times are shown in
    late: bool = False
    note: str = ""
    reminder_id: int | None = None
    passed_over: tuple[str, ...] = ()  # keys of earlier slots missed meanwhile (this one replaces them)
    why: str = ""


def reminder_key(item: Item, offset: str, recipient: str) -> str:
    # The item's start is in the key: after an edit moves the item, its reminders are new ones.
    return f"reminder:{item.id}:{item.start_utc:%Y%m%dT%H%MZ}:{offset}:{recipient.lower()}"


def note_key(reminder_id: int) -> str:
    return f"reminder:note:{reminder_id}"


def slots(item: Item, offsets: tuple[str, ...], *, tz: ZoneInfo, at: time) -> list[tuple[str, datetime]]:
    """(offset, UTC time) of each reminder about `item` for a reader in `tz`, earliest first.

    Day offsets before a deadline, or before an all-day meeting, go out at `at` local time on the day;
    other offsets are exact. A deadline with a time gets one more on its day ("0d"). Slots at or after
    the moment a reminder stops being useful are dropped; so are sub-day offsets of all-day meetings."""
    until = useful_until(item)
    out: dict[str, datetime] = {}
    day_based = item.type == "deadline" or item.all_day
    for text in offsets:
        try:
            delta = parse_offset(text)
        except ValueError:
            log.warning("reminder offset %r ignored: not like 7d, 12h or 30m", text)
            continue
        if day_based and text.endswith("d"):
            day = item_day(item, tz) - delta
            fire = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        elif item.all_day and item.type == "meeting":
            continue
        else:
            fire = until - delta
        out[text] = fire
    if item.type == "deadline" and not item.all_day:
        out.setdefault("0d", datetime.combine(item_day(item, tz), at, tzinfo=tz).astimezone(UTC))
    return sorted(((o, f) for o, f in out.items() if f < until), key=lambda p: (p[1], p[0]))


def _deadline_time(config: Config) -> time:
    return time.fromisoformat(config.reminders.deadline_time)


class _Audiences:
    """Who is reminded of an item, with which offsets, in which zone: resolved once per tick."""

    def __init__(self, subscriptions: list[dict[str, Any]], members: dict[str, dict[str, Any]], config: Config) -> None:
        self.config = config
        self.defaults = {"deadline": config.reminders.deadline_offsets, "meeting": config.reminders.meeting_offsets}
        self.zones: dict[str, ZoneInfo] = {}
        self.general: dict[str, list[tuple[str, ...] | None]] = {}
        self.by_item: dict[int, dict[str, list[tuple[str, ...] | None]]] = {}
        self._merged: dict[tuple[tuple[tuple[str, ...] | None, ...], str], tuple[str, ...]] = {}
        for sub in subscriptions:
            address = str(sub["address"]).lower()
            info = members.get(address)
            if info and info.get("stopped"):
                continue
            if address not in self.zones:
                self.zones[address] = zone(info.get("timezone") if info else None, config.list.timezone)
            spec = tuple(sub["offsets"]) if sub["offsets"] else None
            target = self.general if sub["item_id"] is None else self.by_item.setdefault(sub["item_id"], {})
            target.setdefault(address, []).append(spec)

    def _offsets(self, specs: tuple[tuple[str, ...] | None, ...], type: str) -> tuple[str, ...]:
        key = (specs, type)
        found = self._merged.get(key)
        if found is None:
            merged: list[str] = []
            for spec in specs:
                for offset in spec if spec is not None else self.defaults[type]:
                    if offset not in merged:
                        merged.append(offset)
            found = self._merged[key] = tuple(merged)
        return found

    def of(self, item: Item) -> list[tuple[str, bool, tuple[str, ...], ZoneInfo]]:
        """(recipient, to_list, offsets, zone) for one item."""
        config = self.config
        out: list[tuple[str, bool, tuple[str, ...], ZoneInfo]] = []
        if config.reminders.to_list and not item.uncertain:
            out.append((config.list.address, True, self.defaults[item.type], config.tz))
        own = self.by_item.get(item.id, {})
        for address, specs in own.items():
            out.append((address, False, self._offsets(tuple(specs + self.general.get(address, [])), item.type),
                        self.zones[address]))
        for address, specs in self.general.items():
            if address not in own:
                out.append((address, False, self._offsets(tuple(specs), item.type), self.zones[address]))
        return out


def due(
    items: list[Item],
    subscriptions: list[dict[str, Any]],
    members: dict[str, dict[str, Any]],
    dates_set: dict[int, datetime],
    *,
    config: Config,
    now: datetime,
    since: datetime | None = None,
) -> list[Reminder]:
    """The reminders due at `now`: per item and recipient, the latest slot that has come (pure).

    With `since` (the previous tick, less a margin), a latest slot from before it was dealt with then
    and is not returned again: the tick then only builds what is new.

    A slot is due when its time has come, the item is still ahead (active, before its deadline or start),
    and the item had its current date at that time (a slot that passed before an item was announced or
    moved is not "missed"). When several slots of one item have come for one recipient (after downtime),
    only the latest is sent; the earlier ones are passed over. Whether one was queued already is the
    outbox's business (its idempotency key); `late` marks a slot sent well after its time."""
    at = _deadline_time(config)
    late_after = max(LATE_AFTER, timedelta(seconds=2 * config.reminders.tick_seconds))
    audiences = _Audiences(subscriptions, members, config)
    # No slot can have come for an item further ahead than the longest offset (plus two days: day offsets
    # go out at a local time on an earlier day): most items are skipped without looking at recipients.
    every = [*config.reminders.deadline_offsets, *config.reminders.meeting_offsets]
    every += [o for sub in subscriptions for o in (sub["offsets"] or ())]
    widest = _reach(tuple(sorted(set(every))))
    out: list[Reminder] = []
    for item in items:
        until = useful_until(item)
        if item.status != "active" or until <= now or until - widest > now:
            continue
        known_since = dates_set.get(item.id, item.created_utc)
        for recipient, to_list, offsets, tz in audiences.of(item):
            if until - _reach(offsets) > now:
                continue
            came = [(o, f) for o, f in slots(item, offsets, tz=tz, at=at) if known_since <= f <= now]
            if not came or (since is not None and came[-1][1] < since):
                continue
            offset, fire = came[-1]
            out.append(
                Reminder(
                    key=reminder_key(item, offset, recipient),
                    recipient=recipient,
                    to_list=to_list,
                    item=item,
                    offset=offset,
                    fire_at=fire,
                    tz=tz,
                    late=now - fire > late_after,
                    passed_over=tuple(
                        reminder_key(item, o, recipient) for o, f in came[:-1] if since is None or f >= since
                    ),
                    why=_why(item, offset, to_list),
                )
            )
    return out


@lru_cache(maxsize=1024)
def _reach(offsets: tuple[str, ...]) -> timedelta:
    """How long before an item its earliest reminder with these offsets can be."""
    longest = timedelta(0)
    for text in offsets:
        try:
            longest = max(longest, parse_offset(text))
        except ValueError:
            continue
    return longest + timedelta(days=2)


def reach(offsets: set[str] | tuple[str, ...]) -> timedelta:
    """How far ahead of now an item can be and still have a reminder due (for the candidate query)."""
    return _reach(tuple(sorted(offsets)))


def due_notes(notes: list[dict[str, Any]], members: dict[str, dict[str, Any]], *, config: Config, now: datetime) -> list[Reminder]:
    """Members' notes to themselves whose time has come (never useless: a late one is sent, marked late)."""
    late_after = max(LATE_AFTER, timedelta(seconds=2 * config.reminders.tick_seconds))
    out = []
    for note in notes:
        address = str(note["address"]).lower()
        info = members.get(address)
        if info and info.get("stopped"):
            continue
        tz = zone(info.get("timezone") if info else None, config.list.timezone)
        out.append(
            Reminder(
                key=note_key(note["id"]),
                recipient=address,
                to_list=False,
                item=None,
                offset="at",
                fire_at=note["at_utc"],
                tz=tz,
                late=now - note["at_utc"] > late_after,
                note=note["text"],
                reminder_id=note["id"],
                why="asked for with 'remind me'",
            )
        )
    return out


def _why(item: Item, offset: str, to_list: bool) -> str:
    what = "deadline" if item.type == "deadline" else "meeting"
    when = "on the day" if offset == "0d" else f"{offset} before"
    audience = "list reminder" if to_list else "asked for with 'remind me'"
    return f"{when} {what} #{item.id}, {audience}"


def missed(
    items: list[Item],
    subscriptions: list[dict[str, Any]],
    members: dict[str, dict[str, Any]],
    dates_set: dict[int, datetime],
    *,
    config: Config,
) -> list[Reminder]:
    """For items that are over now: each recipient's last slot (if it was never queued, it was missed)."""
    at = _deadline_time(config)
    audiences = _Audiences(subscriptions, members, config)
    out = []
    for item in items:
        known_since = dates_set.get(item.id, item.created_utc)
        for recipient, to_list, offsets, tz in audiences.of(item):
            came = [(o, f) for o, f in slots(item, offsets, tz=tz, at=at) if known_since <= f]
            if came:
                offset, fire = came[-1]
                out.append(
                    Reminder(
                        key=reminder_key(item, offset, recipient), recipient=recipient, to_list=to_list, item=item,
                        offset=offset, fire_at=fire, tz=tz, why=_why(item, offset, to_list),
                    )
                )
    return out


def between(
    items: list[Item],
    subscriptions: list[dict[str, Any]],
    members: dict[str, dict[str, Any]],
    dates_set: dict[int, datetime],
    *,
    config: Config,
    start: datetime,
    end: datetime,
) -> list[Reminder]:
    """Every reminder scheduled in [start, end), as things stand (the preview): sorted by time."""
    at = _deadline_time(config)
    audiences = _Audiences(subscriptions, members, config)
    out = []
    for item in items:
        if item.status != "active":
            continue
        known_since = dates_set.get(item.id, item.created_utc)
        for recipient, to_list, offsets, tz in audiences.of(item):
            for offset, fire in slots(item, offsets, tz=tz, at=at):
                if start <= fire < end and fire >= known_since:
                    out.append(
                        Reminder(
                            key=reminder_key(item, offset, recipient), recipient=recipient, to_list=to_list,
                            item=item, offset=offset, fire_at=fire, tz=tz, why=_why(item, offset, to_list),
                        )
                    )
    out.sort(key=lambda r: (r.fire_at, r.recipient, r.key))
    return out


def cli_reminders(args: argparse.Namespace, config: Config) -> int:
    """`listbot reminders --from ISO --to ISO`: every reminder that would be sent in the window, to whom, why."""
    start: datetime = args.start
    end: datetime = args.end
    if end <= start:
        print("listbot: --to must be after --from", file=sys.stderr)
        return 2
    store = Store.open(config.resolve(config.store.path))
    try:
        items = store.reminder_candidates(start, (end - start) + HORIZON)
        subs = store.item_subscriptions([i.id for i in items])
        notes = store.notes_between(start, end)
        members = store.members_info([s["address"] for s in subs] + [n["address"] for n in notes])
        dates = store.dates_set([i.id for i in items])
    finally:
        store.close()
    found = between(items, subs, members, dates, config=config, start=start, end=end)
    found += [
        Reminder(
            key=note_key(n["id"]), recipient=n["address"], to_list=False, item=None, offset="at",
            fire_at=n["at_utc"], tz=zone(None, config.list.timezone), note=n["text"], why="note asked for with 'remind me'",
        )
        for n in notes
    ]
    found.sort(key=lambda r: (r.fire_at, r.recipient, r.key))
    print(f"Reminders from {start.astimezone(UTC):%Y-%m-%d %H:%M} to {end.astimezone(UTC):%Y-%m-%d %H:%M} UTC: {len(found)}")
    for r in found:
        what = f"{r.item.type} #{r.item.id} {r.item.what!r} ({when_text(r.item, r.tz)})" if r.item else repr(r.note)
        print(f"  {r.fire_at:%Y-%m-%d %H:%M} UTC  to {r.recipient}  {what}  [{r.why}]")
    return 0
