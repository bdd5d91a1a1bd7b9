"""Mail addressed to the bot: read the commands, answer once. (Stub until the command language lands.)"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.config import Config
from bot.message import Message
from bot.outbox import queue_mail
from bot.render import build_mail
from bot.store import Store

log = logging.getLogger(__name__)


def handle(store: Store, msg: Message, *, config: Config, now: datetime) -> None:
    """Answer one mail to the bot by queueing a reply in the outbox (runs on the store's thread)."""
    reply = build_mail(
        sender=config.bot.address,
        sender_name=config.bot.name,
        recipient=msg.sender,
        subject="Re: " + msg.subject,
        text="Commands are not available yet.\n",
        headers={"In-Reply-To": msg.message_id, "References": msg.message_id, "Auto-Submitted": "auto-replied"},
    )
    queue_mail(store, reply, config=config, idem_key=f"reply:{msg.message_id}", now=now, kind="reply")
    log.info("%s answered (stub)", msg.message_id)
