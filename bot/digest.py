"""The weekly digest: what is ahead, what was reported, what is waiting; to the list and to members who asked."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot import ics
from bot.config import Config
from bot.outbox import queue_mail
from bot.reminders import fmt_day, last_slot, when_text, zone
from bot.render import build_mail, render
from bot.store import Item, Store, from_utc_text, to_utc_text

log = logging.getLogger(__name__)

TEXT = "digest/weekly.txt"
HTML = "digest/weekly.html"
CALLS = "call_for_contributions"
# The longest stretch of reports one digest covers (after a long pause the list is not flooded).
MAX_SPAN = timedelta(days=35)
LAST_LIST_DIGEST = "digest:last:list"


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str
    empty: bool
    items: tuple[Item, ...]  # the deadlines and meetings listed (the personal digest's calendar)


def _is_moderator(address: str, config: Config) -> bool:
    return address.lower() in {m.strip().lower() for m in config.members.moderators}


def _item_view(item: Item, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": item.id,
        "type": item.type,
        "what": item.what,
        "who": item.who or "",
        "where": item.where or "",
        "when": when_text(item, tz),
        "approx": item.approx,
        "uncertain": item.uncertain,
        "conflict": item.conflict or "",
    }


def _report_view(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    summary = row.get("summary") or {}
    sections = [
        {"heading": str(s.get("heading") or ""), "gist": str(s.get("gist") or "")}
        for s in summary.get("sections") or []
        if isinstance(s, dict)
    ]
    actions = []
    for a in row.get("action_items") or []:
        if isinstance(a, dict):
            actions.append({"who": str(a.get("who") or ""), "what": str(a.get("what") or ""), "due": str(a.get("due") or "")})
    links = [
        {"url": str(link.get("url") or ""), "label": str(link.get("label") or "")}
        for link in row.get("links") or []
        if isinstance(link, dict) and link.get("url")
    ]
    return {
        "number": row.get("id"),
        "title": str(summary.get("title") or row.get("subject") or "Meeting report"),
        "meeting_date": str(summary.get("date") or ""),
        "posted": fmt_day(row["date_utc"].astimezone(tz).date()),
        "sender": row.get("sender") or "",
        "sections": sections,
        "decisions": [str(d) for d in summary.get("decisions") or []],
        "next_steps": [str(d) for d in summary.get("next_steps") or []],
        "action_items": actions,
        "links": links,
    }


def _call_view(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    links = [
        {"url": str(link.get("url") or ""), "label": str(link.get("label") or "")}
        for link in row.get("links") or []
        if isinstance(link, dict) and link.get("url")
    ]
    return {
        "subject": row.get("subject") or "",
        "sender": row.get("sender") or "",
        "posted": fmt_day(row["date_utc"].astimezone(tz).date()),
        "links": links,
    }


def unsubscribe_links(store: Store, address: str, *, config: Config, now: datetime, what: str) -> dict[str, str]:
    """List-Unsubscribe (an RFC 8058 one-click https link and a mailto form) for personal mail.

    `what` is 'digest' (the personal digest) or 'all' (every personal mail: reminders too)."""
    token = store.unsubscribe_token(address, now=now, new_token=lambda: secrets.token_urlsafe(24))
    url = f"{config.http.public_url.rstrip('/')}/unsubscribe/{token}?what={what}"
    command = "digest off" if what == "digest" else "stop"
    mailto = f"mailto:{config.bot.address}?subject={quote(command)}"
    return {
        "List-Unsubscribe": f"<{url}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "_url": url,
        "_command": command,
    }


def build_digest(
    store: Store,
    *,
    config: Config,
    now: datetime,
    since: datetime,
    address: str | None = None,
    tz: ZoneInfo | None = None,
    unsubscribe: dict[str, str] | None = None,
) -> Digest:
    """Render the digest as of `now`, with reports posted in [since, now); `address` None: the list's."""
    tz = tz or config.tz
    moderator = address is not None and _is_moderator(address, config)
    ahead = store.upcoming(now, config.digest.days_ahead, include_uncertain=False)
    deadlines = [i for i in ahead if i.type == "deadline"]
    meetings = [i for i in ahead if i.type == "meeting"]
    reports = store.reports_since(since, now)
    calls = store.messages_of_kind(CALLS, since, now)
    pending = store.uncertain_items(now) if moderator else []
    context = {
        "list_name": config.list.name,
        "list_address": config.list.address,
        "bot_address": config.bot.address,
        "personal": address is not None,
        "address": address or config.list.address,
        "moderator": moderator,
        "zone": tz.key,
        "today": fmt_day(now.astimezone(tz).date()),
        "since": fmt_day(since.astimezone(tz).date()),
        "days": config.digest.days_ahead,
        "deadlines": [_item_view(i, tz) for i in deadlines],
        "meetings": [_item_view(i, tz) for i in meetings],
        "reports": [_report_view(r, tz) for r in reports],
        "calls": [_call_view(c, tz) for c in calls],
        "pending": [_item_view(i, tz) for i in pending],
        "unsubscribe_url": (unsubscribe or {}).get("_url", ""),
        "unsubscribe_command": (unsubscribe or {}).get("_command", ""),
    }
    empty = not (deadlines or meetings or reports or calls or pending)
    context["empty"] = empty
    subject, text = render(TEXT, context)
    _, html = render(HTML, context)
    return Digest(subject, text, html, empty, tuple(deadlines + meetings))


def _mail(digest: Digest, *, config: Config, recipient: str, headers: dict[str, str], calendar: bytes | None) -> EmailMessage:
    attachments = (("listbot.ics", "text/calendar", calendar),) if calendar else ()
    return build_mail(
        sender=config.bot.address,
        sender_name=config.bot.name,
        recipient=recipient,
        subject=digest.subject,
        text=digest.text,
        html=digest.html,
        headers={"Auto-Submitted": "auto-generated", "Precedence": "bulk", **headers},
        domain=config.bot.address.rpartition("@")[2] or "listbot.invalid",
        attachments=attachments,
    )


def _member_zone(store: Store, address: str, config: Config) -> ZoneInfo:
    info = store.members_info([address]).get(address.lower())
    return zone(info.get("timezone") if info else None, config.list.timezone)


def _previous(cron: str, tz: ZoneInfo, slot: datetime) -> datetime:
    before = last_slot(cron, tz, slot - timedelta(seconds=1))
    return before if before is not None else slot - timedelta(days=7)


def personal_digest(
    store: Store, address: str, *, config: Config, now: datetime, since: datetime | None = None
) -> tuple[Digest, EmailMessage]:
    """The personal digest of `address` at `now` (reports since their previous digest slot), as a mail."""
    tz = _member_zone(store, address, config)
    if since is None:  # asked for (`digest now`, a preview): the last week
        since = now - timedelta(days=7)
    unsub = unsubscribe_links(store, address, config=config, now=now, what="digest")
    digest = build_digest(store, config=config, now=now, since=since, address=address, tz=tz, unsubscribe=unsub)
    headers = {k: v for k, v in unsub.items() if not k.startswith("_")}
    calendar = ics.calendar_for(config, list(digest.items), now=now) if digest.items else None
    return digest, _mail(digest, config=config, recipient=address, headers=headers, calendar=calendar)


def queue_personal_digest(store: Store, address: str, *, config: Config, now: datetime) -> bool:
    """Queue `address`'s personal digest now (the `digest now` command); False if it was queued this minute.

    Asked for explicitly, it is sent even when there is nothing to say (it says so)."""
    _, msg = personal_digest(store, address, config=config, now=now)
    key = f"digest-now:{address.lower()}:{now.astimezone(UTC):%Y-%m-%dT%H:%M}"
    queued = queue_mail(store, msg, config=config, idem_key=key, now=now, kind="digest")
    log.info("personal digest for %s %s", address, "queued" if queued else "already queued")
    return queued


def queue_scheduled_personal(
    store: Store, address: str, *, config: Config, slot: datetime, now: datetime
) -> str:
    """The weekly personal digest for the slot `slot` (08:00 in their zone): 'queued' | 'known' | 'empty'."""
    key = f"digest:{address.lower()}:{slot:%Y-%m-%dT%H:%MZ}"
    if store.has_outgoing(key):
        return "known"
    tz = _member_zone(store, address, config)
    digest, msg = personal_digest(store, address, config=config, now=now, since=_previous(config.digest.cron, tz, slot))
    if digest.empty and config.digest.skip_empty:
        return "empty"
    late = now - slot > timedelta(minutes=30)
    queue_mail(store, msg, config=config, idem_key=key, now=now, send_after=now if late else slot, kind="digest")
    return "queued"


def list_digest(store: Store, *, config: Config, now: datetime, slot: datetime) -> Digest:
    last = store.get_value(LAST_LIST_DIGEST)
    since = from_utc_text(last) if last else _previous(config.digest.cron, config.tz, slot)
    since = max(since, slot - MAX_SPAN)
    return build_digest(store, config=config, now=now, since=since)


def queue_list_digest(store: Store, *, config: Config, now: datetime, grace: timedelta = timedelta(hours=6)) -> str:
    """The list digest for the latest cron slot at or before `now`, unless that is more than `grace` ago:
    'queued' | 'known' | 'empty' | 'off' | 'missed'."""
    if not config.digest.to_list:
        return "off"
    slot = last_slot(config.digest.cron, config.tz, now)
    if slot is None:
        return "off"
    key = f"digest:list:{slot:%Y-%m-%dT%H:%MZ}"
    if store.get_value(LAST_LIST_DIGEST + ":slot") == to_utc_text(slot) or store.has_outgoing(key):
        return "known"
    if now - slot > grace:
        store.set_value(LAST_LIST_DIGEST + ":slot", to_utc_text(slot))
        log.warning("list digest for %s skipped: listbot was not running then (next one replaces it)", slot.isoformat())
        return "missed"
    digest = list_digest(store, config=config, now=now, slot=slot)
    with store.transaction():
        store.set_value(LAST_LIST_DIGEST + ":slot", to_utc_text(slot))
        if digest.empty and config.digest.skip_empty:
            log.info("list digest for %s: nothing to say, not sent", slot.isoformat())
            return "empty"
        msg = _mail(digest, config=config, recipient=config.list.address, headers={}, calendar=None)
        late = now - slot > timedelta(minutes=30)
        queue_mail(store, msg, config=config, idem_key=key, now=now, send_after=now if late else slot, kind="digest")
        store.set_value(LAST_LIST_DIGEST, to_utc_text(now))
    log.info("list digest for %s queued%s", slot.isoformat(), " (late)" if late else "")
    return "queued"


def cli_digest(args: argparse.Namespace, config: Config) -> int:
    """`listbot digest --preview [--as ADDRESS] [--now ISO]`: print the digest that would go out; send nothing."""
    now: datetime = args.now or datetime.now(UTC)
    store = Store.open(config.resolve(config.store.path))
    try:
        # Nothing is written: the token a personal preview would make is rolled back with the rest.
        store.db.execute("BEGIN")
        try:
            if args.as_address:
                digest, msg = personal_digest(store, args.as_address, config=config, now=now)
                headers = {k: str(msg[k]) for k in ("To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post")}
            else:
                slot = last_slot(config.digest.cron, config.tz, now) or now
                digest = list_digest(store, config=config, now=now, slot=slot)
                headers = {"To": config.list.address, "Subject": digest.subject}
        finally:
            store.db.execute("ROLLBACK")
    finally:
        store.close()
    for name, value in headers.items():
        print(f"{name}: {value}")
    if digest.empty:
        note = "not sent: nothing to say" if config.digest.skip_empty and not args.as_address else "nothing to say"
        print(f"X-Preview: {note}")
    print()
    sys.stdout.write(digest.text)
    return 0
