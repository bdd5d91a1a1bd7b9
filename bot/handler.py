"""Mail addressed to the bot: guard, read the commands, run them, answer once through the outbox."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import commands as _commands  # noqa: F401 - registers every command
from bot import mailman
from bot.commands.base import Context, Result, execute
from bot.commands.parse import MAX_LEADING_NOISE, find_commands
from bot.config import Config
from bot.guards import over_limit, refusal_reason
from bot.members import TOKEN_HOURS, authenticated, is_member, is_moderator, new_token, token_expiry
from bot.message import Message
from bot.outbox import queue_mail
from bot.render import build_mail, render
from bot.store import Store

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_ATTACHMENTS = 5


def handle(store: Store, msg: Message, *, config: Config, now: datetime) -> None:
    """Answer one mail to the bot by queueing at most one reply in the outbox (runs on the store's thread).

    Everything a mail changes, its reply and its place in the rate log are written in one transaction,
    and a Message-ID seen before is skipped: a re-processed mail is never run or answered twice."""
    mid = msg.message_id
    done_key = f"handled:{mid}"
    if store.get_value(done_key) is not None or store.has_outgoing(_idem(mid)):
        log.info("%s handled before: skipped", mid)
        return
    in_tx = store.db.in_transaction
    with contextlib.nullcontext() if in_tx else store.transaction():
        store.set_value(done_key, now.isoformat(timespec="seconds"))
        outcome = _answer(store, msg, config=config, now=now)
        store.set_value(done_key, outcome)
    log.info("%s from %s: %s", mid, msg.sender or "<none>", outcome)


def _idem(message_id: str) -> str:
    return f"reply:{message_id}"


def _answer(store: Store, msg: Message, *, config: Config, now: datetime) -> str:
    """Decide and queue; returns what happened (for the log)."""
    reason = refusal_reason(
        msg.headers, sender=msg.sender, subject=msg.subject, bot_address=config.bot.address,
        list_address=config.list.address,
    )
    if reason:
        return f"not answered ({reason})"
    sender = msg.sender
    if over_limit(store.reply_count(now - HOUR), config.members.global_rate_per_hour):
        log.warning("%s not answered: global reply cap of %d an hour reached", msg.message_id,
                    config.members.global_rate_per_hour)
        return "not answered (global cap)"
    base = {"original_subject": msg.subject, "bot_name": config.bot.name, "list_name": config.list.name,
            "sender": sender}

    if not is_member(sender, config, mailman.members(store, config)):
        if config.members.nonmember_reply == "never":
            return "not answered (non-member)"
        if store.reply_count(now - DAY, address=sender, kind="refusal"):
            return "not answered (non-member, refused today already)"
        _send(store, msg, config, now, "replies/nonmember.txt", base, kind="refusal")
        return "refused (non-member)"

    limit = config.members.rate_per_hour
    if over_limit(store.reply_count(now - HOUR, address=sender, kind="reply"), limit):
        if store.reply_count(now - HOUR, address=sender, kind="notice"):
            return "not answered (rate limit, notice sent already)"
        _send(store, msg, config, now, "replies/rate_limited.txt", {**base, "limit": limit}, kind="notice")
        return "rate limit notice"

    # A reply to one of our own answers: its Subject is ours ("Re: upcoming") and must not run again,
    # and with no new command in it there is nothing to say (this is what ends a bot-to-bot exchange).
    referenced = re.findall(r"<[^<>\s]+>", msg.headers.get("in-reply-to", "") + " " + msg.headers.get("references", ""))
    to_us = bool(store.sent_message_ids(referenced[-20:]))
    found = find_commands(
        msg.subject, msg.own_text, max_lines=config.bot.max_command_lines, read_subject=not to_us,
        leading_noise=0 if to_us else MAX_LEADING_NOISE,
    )
    if not found.commands and to_us:
        return "not answered (reply to our answer without commands)"

    moderator = is_moderator(sender, config)
    ctx = Context(
        store=store,
        config=config,
        now=now,
        sender=sender,
        member=True,
        moderator=moderator,
        proven=moderator and authenticated(
            msg.headers.get("authentication-results", ""), sender=sender, authserv_id=config.members.authserv_id
        ),
        tz=_member_zone(store, sender, config),
        message=msg,
    )
    results: list[Result] = [execute(ctx, line, list(words)) for line, words in found.commands]
    pending = [r.line for r in results if r.status == "pending"]
    token = None
    if pending:
        token = new_token()
        store.add_token(token, sender, json.dumps({"lines": pending, "message_id": msg.message_id}),
                        expires=token_expiry(now))
        log.info("%s %d moderator commands wait for a confirmation token", msg.message_id, len(pending))
    attachments = tuple(a for r in results for a in r.attachments)[:MAX_ATTACHMENTS]
    data = {
        **base,
        "results": results,
        "unprocessed": list(found.unprocessed),
        "ignored": list(found.ignored),
        "ignored_more": found.ignored_more,
        "token": token,
        "token_hours": TOKEN_HOURS,
        "truncated": msg.truncated,
    }
    _send(store, msg, config, now, "replies/results.txt", data, kind="reply", html="replies/results.html",
          attachments=attachments)
    statuses = ",".join(f"{w[0].lower()}:{r.status}" for (_, w), r in zip(found.commands, results, strict=True))
    return f"answered [{statuses}]"


def _member_zone(store: Store, sender: str, config: Config) -> ZoneInfo:
    row = store.member(sender)
    if row and row.get("timezone"):
        try:
            return ZoneInfo(row["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("member %s has an unknown time zone %r: using the list's", sender, row["timezone"])
    return config.tz


def _send(
    store: Store,
    msg: Message,
    config: Config,
    now: datetime,
    template: str,
    data: dict[str, Any],
    *,
    kind: str,
    html: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> None:
    """Render, thread and queue the one reply, and log it for the rate limits."""
    subject, text = render(template, data)
    html_body = render(html, data)[1] if html else None
    references = " ".join([*re.findall(r"<[^<>\s]+>", msg.headers.get("references", ""))[-10:], msg.message_id])
    reply = build_mail(
        sender=config.bot.address,
        sender_name=config.bot.name,
        recipient=msg.sender,
        subject=subject,
        text=text,
        html=html_body,
        headers={
            "In-Reply-To": msg.message_id,
            "References": references,
            # RFC 3834: an automatic answer; X-Loop marks mail that went through us.
            "Auto-Submitted": "auto-replied",
            "X-Loop": config.bot.address,
            # Exchange and others: please no out-of-office answer to this.
            "X-Auto-Response-Suppress": "All",
        },
        domain=config.bot.address.rpartition("@")[2] or "listbot.invalid",
        attachments=attachments,
    )
    queue_mail(store, reply, config=config, idem_key=_idem(msg.message_id), now=now, kind=kind)
    store.record_reply(msg.sender, now=now, kind=kind)
