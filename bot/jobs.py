"""Scheduled work: the reminders tick (reminders, personal digests) and the weekly list digest.

The store is the schedule: each run asks it what is due at `now` and queues mail with an idempotency
key, so a restart loses nothing, runs twice send nothing twice, and an edit or a cancel counts at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from bot import digest as digest_mod
from bot import ics, mailman
from bot import reminders as rem
from bot.config import Config
from bot.outbox import queue_mail
from bot.render import build_mail, render
from bot.store import AsyncStore, Item, Store, from_utc_text, to_utc_text

log = logging.getLogger(__name__)

LAST_TICK = "reminders:last_tick"
# A digest (list or personal) more than this after its slot is not sent any more: next week's replaces it.
DIGEST_GRACE = timedelta(hours=6)


def _relative(sent: datetime, item: Item, tz: ZoneInfo) -> str:
    """'today', 'tomorrow', 'in 7 days', 'in 1 hour', as seen at `sent` by a reader in `tz`."""
    target = item.start_utc
    if item.type == "meeting" and not item.all_day:
        left = target - sent
        if left < timedelta(hours=20):
            minutes = max(0, round(left.total_seconds() / 60))
            if minutes < 90:
                return f"in {minutes} minutes" if minutes != 60 else "in 1 hour"
            hours = round(minutes / 60)
            return f"in {hours} hours"
    days = (rem.item_day(item, tz) - sent.astimezone(tz).date()).days
    if days <= 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return f"in {days} days"


def reminder_mail(store: Store, r: rem.Reminder, *, config: Config, now: datetime) -> EmailMessage:
    """The mail for one due reminder (list-wide: no calendar, no unsubscribe; personal: both)."""
    sent = now if r.late else r.fire_at
    context: dict[str, Any] = {
        "list_name": config.list.name,
        "bot_address": config.bot.address,
        "personal": not r.to_list,
        "late": r.late,
        "planned": rem.fmt_local(r.fire_at, r.tz),
        "zone": r.tz.key,
        "note": r.note,
        "unsubscribe_url": "",
        "unsubscribe_command": "",
    }
    headers = {"Auto-Submitted": "auto-generated"}
    if not r.to_list:
        unsub = digest_mod.unsubscribe_links(store, r.recipient, config=config, now=now, what="all")
        context["unsubscribe_url"] = unsub["_url"]
        context["unsubscribe_command"] = unsub["_command"]
        headers.update({k: v for k, v in unsub.items() if not k.startswith("_")})
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    if r.item is None:
        template = "reminders/note.txt"
    else:
        item = r.item
        template = f"reminders/{item.type}.txt"
        context["item"] = {
            "id": item.id,
            "what": item.what,
            "who": item.who or "",
            "where": item.where or "",
            "when": rem.when_text(item, r.tz),
            "all_day": item.all_day,
            "approx": item.approx,
            "uncertain": item.uncertain,
            "conflict": item.conflict or "",
        }
        context["relative"] = _relative(sent, item, r.tz)
        own = None if r.to_list else r.tz
        context["zones"] = [] if item.all_day else rem.zone_lines(item, config.reminders.zones, own)
        if item.type == "meeting" and not r.to_list:
            attachments = (("meeting.ics", "text/calendar", ics.calendar_for(config, [item], now=now)),)
    subject, text = render(template, context)
    return build_mail(
        sender=config.bot.address,
        sender_name=config.bot.name,
        recipient=r.recipient,
        subject=subject,
        text=text,
        headers=headers,
        domain=config.bot.address.rpartition("@")[2] or "listbot.invalid",
        attachments=attachments,
    )


def reminder_tick(store: Store, *, config: Config, now: datetime) -> int:
    """One tick (on the store's thread): queue the reminders and personal digests due at `now`.

    Returns how many mails were queued. Also catches up the list digest after a restart (within
    DIGEST_GRACE) and logs the reminders that downtime made useless."""
    queued = _queue_reminders(store, config=config, now=now)
    queued += queue_personal_digests(store, config=config, now=now)
    if digest_mod.queue_list_digest(store, config=config, now=now, grace=DIGEST_GRACE) == "queued":
        queued += 1
    store.set_value(LAST_TICK, to_utc_text(now))
    return queued


def _queue_reminders(store: Store, *, config: Config, now: datetime) -> int:
    every = {*config.reminders.deadline_offsets, *config.reminders.meeting_offsets, *store.reminder_offsets()}
    items = store.reminder_candidates(now, min(rem.reach(every), rem.HORIZON))
    ids = [i.id for i in items]
    subs = store.item_subscriptions(ids)
    notes = store.notes_between(None, now + timedelta(seconds=1))
    members = store.members_info([s["address"] for s in subs] + [n["address"] for n in notes])
    dates = store.dates_set(ids)
    last = store.get_value(LAST_TICK)
    # Slots that came before the previous tick were queued (or passed over) by it; an hour's margin
    # covers a tick that was cut short. After downtime `last` is old, so missed slots are found.
    since = from_utc_text(last) - timedelta(hours=1) if last else None
    found = rem.due(items, subs, members, dates, config=config, now=now, since=since)
    found += rem.due_notes(notes, members, config=config, now=now)
    keys = [r.key for r in found] + [k for r in found for k in r.passed_over]
    known = store.queued_keys(keys)
    count = 0
    for r in found:
        if r.key in known:
            continue
        for key in r.passed_over:
            if key not in known:
                log.info("reminder %s passed over: missed while listbot was down, %s replaces it", key, r.offset)
        try:
            msg = reminder_mail(store, r, config=config, now=now)
            with store.transaction():
                send_after = now if r.late else r.fire_at
                if queue_mail(store, msg, config=config, idem_key=r.key, now=now, send_after=send_after, kind="reminder"):
                    count += 1
                    log.info(
                        "reminder %s queued for %s%s", r.key, r.fire_at.isoformat(),
                        f" (late by {now - r.fire_at})" if r.late else "",
                    )
                if r.reminder_id is not None:
                    store.finish_reminder(r.reminder_id)
        except Exception:  # one bad reminder must not stop the others
            log.exception("reminder %s could not be queued", r.key)
    _log_missed(store, config=config, now=now)
    return count


def _log_missed(store: Store, *, config: Config, now: datetime) -> None:
    """Reminders whose item passed while listbot was not running: never sent (useless now), said in the log."""
    last = store.get_value(LAST_TICK)
    if last is None:
        return
    since = from_utc_text(last)
    if since >= now:
        return
    items = [i for i in store.items_passed_between(since, now) if since <= rem.useful_until(i) <= now]
    if not items:
        return
    ids = [i.id for i in items]
    subs = store.item_subscriptions(ids)
    members = store.members_info(s["address"] for s in subs)
    found = rem.missed(items, subs, members, store.dates_set(ids), config=config)
    found = [r for r in found if since <= r.fire_at]
    known = store.queued_keys(r.key for r in found)
    for r in found:
        if r.key not in known:
            log.warning(
                "reminder %s skipped: it was due %s while listbot was not running, and #%d is past now",
                r.key, r.fire_at.isoformat(), r.item.id if r.item else 0,
            )


def queue_personal_digests(store: Store, *, config: Config, now: datetime) -> int:
    """Personal digests at the digest's cron time in each member's own zone (default Monday 08:00).

    One per member and slot (the idempotency key); a zone's slot is done once all its members are
    handled, so a tick after that costs one lookup per zone."""
    members = store.digest_members()
    if not members:
        return 0
    by_zone: dict[str, list[str]] = {}
    for m in members:
        tz = rem.zone(m["timezone"], config.list.timezone)
        by_zone.setdefault(tz.key, []).append(m["address"])
    count = 0
    for zone_name, addresses in sorted(by_zone.items()):
        tz = rem.zone(zone_name)
        slot = rem.last_slot(config.digest.cron, tz, now)
        if slot is None or now - slot > DIGEST_GRACE:
            continue
        marker = f"digest:zone:{zone_name}:{slot:%Y-%m-%dT%H:%MZ}"
        if store.get_value(marker):
            continue
        try:
            with store.transaction():
                count += digest_mod.queue_scheduled_personal(store, addresses, config=config, tz=tz, slot=slot,
                                                             now=now)
        except Exception:
            log.exception("personal digests for %s could not be queued", zone_name)
            continue
        store.set_value(marker, to_utc_text(now))
        log.info("personal digests for %s (%s): slot %s done", zone_name, len(addresses), slot.isoformat())
    return count


def digest_job(store: Store, *, config: Config, now: datetime) -> str:
    """The cron-timed list digest (also caught up by the tick after a restart; the key makes it once)."""
    return digest_mod.queue_list_digest(store, config=config, now=now, grace=DIGEST_GRACE)


def add_jobs(
    scheduler: Any,
    *,
    config: Config,
    astore: AsyncStore,
    wake_sender: Callable[[], None],
    now_fn: Callable[[], datetime],
    mailman_password: str = "",
) -> None:
    """Add the tick and the digest (and, with [members] mailman_url, the Mailman roster refresh, first
    at once) to an APScheduler 3 AsyncIOScheduler.

    Misfires are deliberate: APScheduler 3 drops a run more than misfire_grace_time late (default one
    second) without a word. The tick is idempotent and asks the store, so a late run is always wanted
    (grace: a day) and runs that piled up are one (coalesce). The digest gets hours of grace; after a
    restart the tick catches up a digest whose cron time passed while listbot was down."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    async def tick() -> None:
        try:
            n = await astore.run(reminder_tick, config=config, now=now_fn())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reminders tick failed; the next tick tries again")
            return
        if n:
            wake_sender()

    async def weekly() -> None:
        try:
            result = await astore.run(digest_job, config=config, now=now_fn())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("weekly digest failed; the tick tries again within %s", DIGEST_GRACE)
            return
        log.info("weekly digest: %s", result)
        if result == "queued":
            wake_sender()

    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=config.reminders.tick_seconds, timezone=UTC),
        id="listbot-reminders",
        name="reminders and personal digests",
        misfire_grace_time=24 * 3600,
        coalesce=True,
        max_instances=1,
        next_run_time=now_fn(),
        replace_existing=True,
    )
    scheduler.add_job(
        weekly,
        CronTrigger.from_crontab(config.digest.cron, timezone=config.tz),
        id="listbot-digest",
        name="weekly list digest",
        misfire_grace_time=int(DIGEST_GRACE.total_seconds()),
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    if not config.members.mailman_url:
        return

    async def roster() -> None:
        try:
            await mailman.refresh(astore, config, password=mailman_password, now=now_fn())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Mailman roster refresh failed; the last roster read is kept, the next refresh tries again")

    scheduler.add_job(
        roster,
        IntervalTrigger(seconds=config.members.mailman_refresh_seconds, timezone=UTC),
        id="listbot-mailman",
        name="Mailman roster",
        misfire_grace_time=config.members.mailman_refresh_seconds,
        coalesce=True,
        max_instances=1,
        next_run_time=now_fn(),
        replace_existing=True,
    )
