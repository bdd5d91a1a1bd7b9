"""Reading a list post into the store: message -> classification and extraction -> items with provenance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot import extract
from bot.config import Config
from bot.message import Message
from bot.rules import RuleSet
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ingested:
    message_id: str
    new: bool  # False: the Message-ID was known, nothing changed
    kind: str | None
    items: tuple[tuple[int, str], ...]  # (item id, 'new' | 'source' | 'extended')


def ingest_post(
    store: Store,
    msg: Message,
    *,
    config: Config,
    rules: RuleSet,
    now: datetime,
    source: str = "",
    analysis: extract.Extraction | None = None,
) -> Ingested:
    """Store one list post and what it announces, in one transaction; a known Message-ID adds nothing."""
    if store.has_message(msg.message_id):
        return Ingested(msg.message_id, False, None, ())
    ex = analysis if analysis is not None else extract.analyze(msg, rules)
    data = extract.to_json(ex)
    tz = config.tz
    saved: list[tuple[int, str]] = []
    with store.transaction():
        if not store.add_message(
            message_id=msg.message_id,
            subject=msg.subject,
            sender=msg.sender,
            date=msg.date,
            now=now,
            kind=ex.kind,
            rules=ex.rules,
            summary=data["summary"][0] if data["summary"] else None,
            links=data["links"],
            action_items=data["action_items"],
            route="list",
            truncated=msg.truncated,
            source=source,
        ):
            return Ingested(msg.message_id, False, None, ())
        for d in ex.deadlines:
            saved.append(
                store.save_item(
                    type="deadline", what=d.what, who=d.who, start=d.due, end=None, tz=tz, now=now,
                    message_id=msg.message_id, text=d.text, approx=d.approx, conflict=d.conflict,
                    extended=d.extended,
                )
            )
        for m in ex.meetings:
            saved.append(
                store.save_item(
                    type="meeting", what=m.what, start=m.start, end=m.end, where=m.where, tz=tz, now=now,
                    message_id=msg.message_id, text=m.text, approx=m.approx, conflict=m.conflict,
                )
            )
    log.info("%s stored as %s with %d items", msg.message_id, ex.kind, len(saved))
    return Ingested(msg.message_id, True, ex.kind, tuple(saved))


def record_failure(store: Store, msg_id: str, error: str, *, now: datetime, date: datetime, source: str = "") -> None:
    """A message whose processing failed: recorded with its error (so it is not retried forever), then skipped."""
    store.add_message(
        message_id=msg_id, subject="", sender="", date=date, now=now, route="failed", error=error[:2000], source=source
    )
