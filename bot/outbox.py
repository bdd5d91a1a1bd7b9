"""Queueing outgoing mail: every mail is written to the store's outbox before anything is sent."""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP

from bot.config import Config
from bot.store import Store


def queue_mail(
    store: Store,
    msg: EmailMessage,
    *,
    config: Config,
    idem_key: str,
    now: datetime,
    send_after: datetime | None = None,
    kind: str = "",
) -> bool:
    """Write `msg` to the outbox; False when `idem_key` was queued before (a no-op, never a second mail).

    The Date header is set to `now` here, so that a mail rendered in a test or a replay carries its own time."""
    if msg["Message-ID"] is None:
        msg["Message-ID"] = email.utils.make_msgid(domain=config.bot.address.rpartition("@")[2])
    del msg["Date"]
    msg["Date"] = email.utils.format_datetime(send_after or now)
    recipient = email.utils.parseaddr(str(msg["To"]))[1]
    return store.enqueue(
        idem_key=idem_key,
        kind=kind,
        recipient=recipient,
        sender=config.bot.address,
        message_id=str(msg["Message-ID"]),
        raw=msg.as_bytes(policy=SMTP),
        send_after=send_after or now,
        give_up=(send_after or now) + timedelta(hours=config.smtp.retry_hours),
        now=now,
    )
