"""Routing one incoming mail: a list post, a mail to the bot, the bot's own mail, or something to ignore."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot import handler
from bot.config import Config
from bot.ingest import ingest_post
from bot.message import Message, read_message
from bot.rules import RuleSet
from bot.store import Store

log = logging.getLogger(__name__)

LIST = "list"
BOT = "bot"
SELF = "self"
IGNORE = "ignore"
KNOWN = "known"


@dataclass(frozen=True)
class Route:
    to: str  # LIST | BOT | SELF | IGNORE
    why: str


@dataclass(frozen=True)
class Outcome:
    message_id: str
    route: str  # a Route.to, or KNOWN: the Message-ID was processed before and nothing was done
    queued_mail: bool  # the outbox may hold something new: wake the sender


def route(msg: Message, config: Config) -> Route:
    """Where a mail goes. Policy, in order:

    - from the bot's own address: ignored (our replies and reminders coming back must never loop);
    - a List-Id equal to [list] id, or the list's address in To/Cc: a list post (a post cc'd to the
      bot is still a post: commands are never read out of list traffic);
    - the bot's address in To/Cc: a mail to the bot (the command handler decides whether to answer);
    - anything else: ignored.
    """
    bot_address = config.bot.address.lower()
    list_address = config.list.address.lower()
    if msg.sender == bot_address:
        return Route(SELF, "sent by the bot itself")
    list_id = config.list.id.strip().strip("<>").lower()
    if list_id and msg.list_id == list_id:
        return Route(LIST, f"List-Id {list_id}")
    recipients = (*msg.to, *msg.cc)
    if list_address in recipients:
        return Route(LIST, f"addressed to {list_address}")
    if bot_address in recipients:
        return Route(BOT, f"addressed to {bot_address}")
    return Route(IGNORE, "neither a list post nor addressed to the bot")


def process(
    store: Store, raw: bytes, *, config: Config, rules: RuleSet, now: datetime, source: str = ""
) -> Outcome:
    """Read, route and act on one raw mail (runs on the store's thread). Raises when processing fails.

    Idempotent by Message-ID: a mail seen before (after a UIDVALIDITY change, or a crash between
    processing and recording the mailbox position) is not processed again."""
    msg = read_message(raw, received=now, max_body_bytes=config.bot.max_body_bytes)
    if store.has_message(msg.message_id):
        log.info("%s already processed: skipped (%s)", msg.message_id, source)
        return Outcome(msg.message_id, KNOWN, False)
    r = route(msg, config)
    if r.to == LIST:
        result = ingest_post(store, msg, config=config, rules=rules, now=now, source=source)
        log.info("%s list post (%s): %s", msg.message_id, r.why, "stored" if result.new else "known already")
        return Outcome(msg.message_id, LIST, False)
    if r.to == BOT:
        log.info("%s mail to the bot from %s", msg.message_id, msg.sender)
        handler.handle(store, msg, config=config, now=now)
        # Recorded after answering: the reply's idempotency key covers a crash in between.
        store.add_message(
            message_id=msg.message_id, subject=msg.subject, sender=msg.sender, date=msg.date, now=now,
            route="bot", truncated=msg.truncated, source=source,
        )
        return Outcome(msg.message_id, BOT, True)
    log.info("%s ignored: %s (from %s)", msg.message_id, r.why, msg.sender or "<no sender>")
    return Outcome(msg.message_id, r.to, False)
