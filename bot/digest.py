"""The weekly digest: what is ahead, what was reported, what is waiting; to the list and to members who asked."""

from __future__ import annotations

import argparse
import base64
import binascii
import email.header
import email.policy
import email.utils
import logging
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot import ics
from bot.config import Config
from bot.reminders import fmt_day, last_slot, when_text, zone
from bot.render import render
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


@dataclass(frozen=True)
class Snapshot:
    """What every digest of one moment and zone shares: computed once, rendered for each member."""

    now: datetime
    since: datetime
    tz: ZoneInfo
    items: tuple[Item, ...]  # the deadlines and meetings listed
    base: dict[str, Any]  # the template context without the reader's own parts
    pending: tuple[dict[str, Any], ...]  # items awaiting a moderator (shown to moderators only)
    has_news: bool  # anything besides the moderator section


def snapshot(store: Store, *, config: Config, now: datetime, since: datetime, tz: ZoneInfo | None = None) -> Snapshot:
    """Read what a digest at `now` says (reports posted in [since, now)), with times in `tz`."""
    tz = tz or config.tz
    ahead = store.upcoming(now, config.digest.days_ahead, include_uncertain=False)
    deadlines = [i for i in ahead if i.type == "deadline"]
    meetings = [i for i in ahead if i.type == "meeting"]
    reports = store.reports_since(since, now)
    calls = store.messages_of_kind(CALLS, since, now)
    base = {
        "list_name": config.list.name,
        "list_address": config.list.address,
        "bot_address": config.bot.address,
        "zone": tz.key,
        "today": fmt_day(now.astimezone(tz).date()),
        "since": fmt_day(since.astimezone(tz).date()),
        "days": config.digest.days_ahead,
        "deadlines": [_item_view(i, tz) for i in deadlines],
        "meetings": [_item_view(i, tz) for i in meetings],
        "reports": [_report_view(r, tz) for r in reports],
        "calls": [_call_view(c, tz) for c in calls],
    }
    pending = tuple(_item_view(i, tz) for i in store.uncertain_items(now))
    news = bool(deadlines or meetings or reports or calls)
    return Snapshot(now, since, tz, tuple(deadlines + meetings), base, pending, news)


def render_digest(
    snap: Snapshot, *, address: str | None = None, moderator: bool = False, unsubscribe: dict[str, str] | None = None
) -> Digest:
    """The digest of `snap` for one reader (`address` None: the list)."""
    pending = list(snap.pending) if moderator else []
    context = dict(snap.base)
    context.update(
        personal=address is not None,
        address=address or snap.base["list_address"],
        moderator=moderator,
        pending=pending,
        empty=not (snap.has_news or pending),
        unsubscribe_url=(unsubscribe or {}).get("_url", ""),
        unsubscribe_command=(unsubscribe or {}).get("_command", ""),
    )
    subject, text = render(TEXT, context)
    _, html = render(HTML, context)
    return Digest(subject, text, html, bool(context["empty"]), snap.items)


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
    snap = snapshot(store, config=config, now=now, since=since, tz=tz)
    moderator = address is not None and _is_moderator(address, config)
    return render_digest(snap, address=address, moderator=moderator, unsubscribe=unsubscribe)


# -- the mail -------------------------------------------------------------------------------------
# Digests are written as MIME directly: the email package's header registry costs milliseconds a
# message, more than rendering, and thousands of personal digests go out at once. The shape is fixed
# (text and HTML alternatives, an optional calendar), every header value is ours or encoded here, and
# the tests parse the result with email.policy.default.


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


@lru_cache(maxsize=8)  # the same calendar goes to every member of a zone: encoded once
def _b64(data: bytes) -> bytes:
    return b"\r\n".join(base64.encodebytes(data).splitlines()) + b"\r\n"


def _header(name: str, value: str) -> bytes:
    value = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    if value.isascii() and len(name) + len(value) < 996:
        return f"{name}: {value}\r\n".encode("ascii")
    encoded = email.header.Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode("ascii")


def digest_bytes(
    digest: Digest,
    *,
    config: Config,
    recipient: str,
    date: datetime,
    headers: dict[str, str],
    calendar: bytes | None,
) -> tuple[str, bytes]:
    """(Message-ID, the whole mail as CRLF bytes): text/plain + text/html alternatives, then the calendar."""
    domain = config.bot.address.rpartition("@")[2] or "listbot.invalid"
    message_id = email.utils.make_msgid(domain=domain)
    alt = f"=_alt_{secrets.token_hex(12)}"
    head = [
        _header("From", email.utils.formataddr((config.bot.name, config.bot.address), charset="utf-8")),
        _header("To", recipient),
        _header("Subject", digest.subject),
        _header("Date", email.utils.format_datetime(date.astimezone(UTC))),
        _header("Message-ID", message_id),
        _header("Auto-Submitted", "auto-generated"),
        _header("Precedence", "bulk"),
    ]
    head += [_header(k, v) for k, v in headers.items() if v and not k.startswith("_")]
    head.append(b"MIME-Version: 1.0\r\n")
    parts = [
        f"--{alt}\r\n".encode(),
        b"Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        _qp(digest.text),
        f"\r\n--{alt}\r\n".encode(),
        b"Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        _qp(digest.html),
        f"\r\n--{alt}--\r\n".encode(),
    ]
    if calendar is None:
        head.append(f"Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n".encode())
        return message_id, b"".join(head) + b"\r\n" + b"".join(parts)
    mixed = f"=_mix_{secrets.token_hex(12)}"
    head.append(f"Content-Type: multipart/mixed; boundary=\"{mixed}\"\r\n".encode())
    body = [
        f"--{mixed}\r\n".encode(),
        f"Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n".encode(),
        *parts,
        f"\r\n--{mixed}\r\n".encode(),
        b"Content-Type: text/calendar; charset=\"utf-8\"; method=PUBLISH\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=\"listbot.ics\"\r\n\r\n",
        _b64(calendar),
        f"\r\n--{mixed}--\r\n".encode(),
    ]
    return message_id, b"".join(head) + b"\r\n" + b"".join(body)


def _enqueue(
    store: Store, raw: tuple[str, bytes], *, config: Config, recipient: str, key: str, now: datetime, send_after: datetime
) -> bool:
    """Queue a mail written by digest_bytes (as outbox.queue_mail does for EmailMessage objects)."""
    message_id, data = raw
    return store.enqueue(
        idem_key=key, kind="digest", recipient=recipient, sender=config.bot.address, message_id=message_id,
        raw=data, send_after=send_after, give_up=send_after + timedelta(hours=config.smtp.retry_hours), now=now,
    )


def _member_zone(store: Store, address: str, config: Config) -> ZoneInfo:
    info = store.members_info([address]).get(address.lower())
    return zone(info.get("timezone") if info else None, config.list.timezone)


def _previous(cron: str, tz: ZoneInfo, slot: datetime) -> datetime:
    before = last_slot(cron, tz, slot - timedelta(seconds=1))
    return before if before is not None else slot - timedelta(days=7)


def _personal(
    store: Store, snap: Snapshot, address: str, *, config: Config, now: datetime, date: datetime,
    calendar: bytes | None,
) -> tuple[Digest, tuple[str, bytes]]:
    unsub = unsubscribe_links(store, address, config=config, now=now, what="digest")
    digest = render_digest(snap, address=address, moderator=_is_moderator(address, config), unsubscribe=unsub)
    raw = digest_bytes(digest, config=config, recipient=address, date=date, headers=unsub, calendar=calendar)
    return digest, raw


def personal_digest(
    store: Store, address: str, *, config: Config, now: datetime, since: datetime | None = None
) -> tuple[Digest, EmailMessage]:
    """The personal digest of `address` at `now` (reports since `since`, default a week) and its mail."""
    tz = _member_zone(store, address, config)
    snap = snapshot(store, config=config, now=now, since=since or now - timedelta(days=7), tz=tz)
    calendar = ics.calendar_for(config, list(snap.items), now=now) if snap.items else None
    digest, (_, data) = _personal(store, snap, address, config=config, now=now, date=now, calendar=calendar)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return digest, msg


def queue_personal_digest(store: Store, address: str, *, config: Config, now: datetime) -> bool:
    """Queue `address`'s personal digest now (the `digest now` command); False if it was queued this minute.

    Asked for explicitly, it is sent even when there is nothing to say (it says so)."""
    tz = _member_zone(store, address, config)
    snap = snapshot(store, config=config, now=now, since=now - timedelta(days=7), tz=tz)
    calendar = ics.calendar_for(config, list(snap.items), now=now) if snap.items else None
    _, raw = _personal(store, snap, address, config=config, now=now, date=now, calendar=calendar)
    key = f"digest-now:{address.lower()}:{now.astimezone(UTC):%Y-%m-%dT%H:%M}"
    queued = _enqueue(store, raw, config=config, recipient=address.lower(), key=key, now=now, send_after=now)
    log.info("personal digest for %s %s", address, "queued" if queued else "already queued")
    return queued


def queue_scheduled_personal(
    store: Store, addresses: list[str], *, config: Config, tz: ZoneInfo, slot: datetime, now: datetime
) -> int:
    """The weekly personal digests of members in zone `tz` for its slot `slot` (08:00 there): how many
    were queued. One snapshot and one calendar for all of them; one key per member and slot."""
    keys = {a: f"digest:{a.lower()}:{slot:%Y-%m-%dT%H:%MZ}" for a in addresses}
    known = store.queued_keys(keys.values())
    todo = [a for a in addresses if keys[a] not in known]
    if not todo:
        return 0
    snap = snapshot(store, config=config, now=now, since=_previous(config.digest.cron, tz, slot), tz=tz)
    calendar = ics.calendar_for(config, list(snap.items), now=now) if snap.items else None
    late = now - slot > timedelta(minutes=30)
    send_after = now if late else slot
    count = 0
    for address in todo:
        try:
            digest, raw = _personal(store, snap, address, config=config, now=now, date=send_after, calendar=calendar)
            if digest.empty and config.digest.skip_empty:
                continue
            if _enqueue(store, raw, config=config, recipient=address.lower(), key=keys[address], now=now,
                        send_after=send_after):
                count += 1
        except Exception:  # one member's digest must not stop the others
            log.exception("personal digest for %s could not be queued", address)
    return count


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
        first_run = store.get_value(LAST_LIST_DIGEST + ":slot") is None
        store.set_value(LAST_LIST_DIGEST + ":slot", to_utc_text(slot))
        log.log(logging.INFO if first_run else logging.WARNING,
                "list digest for %s skipped: listbot was not running then (next one replaces it)", slot.isoformat())
        return "missed"
    digest = list_digest(store, config=config, now=now, slot=slot)
    with store.transaction():
        store.set_value(LAST_LIST_DIGEST + ":slot", to_utc_text(slot))
        if digest.empty and config.digest.skip_empty:
            log.info("list digest for %s: nothing to say, not sent", slot.isoformat())
            return "empty"
        late = now - slot > timedelta(minutes=30)
        send_after = now if late else slot
        raw = digest_bytes(digest, config=config, recipient=config.list.address, date=send_after, headers={},
                           calendar=None)
        _enqueue(store, raw, config=config, recipient=config.list.address, key=key, now=now, send_after=send_after)
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
