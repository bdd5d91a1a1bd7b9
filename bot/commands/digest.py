"""The email command 'digest': a personal weekly digest on or off, or one now."""

from __future__ import annotations

import logging

from bot.commands.base import CommandError, Context, Reply, clip, command
from bot.digest import queue_personal_digest

log = logging.getLogger(__name__)


@command(
    "digest",
    args="on | off | now",
    summary="Your own weekly digest (08:00 in your time zone on digest day): on, off, or one right now.",
    examples=("digest on", "digest off", "digest now"),
)
def digest(ctx: Context, args: list[str]) -> Reply:
    choice = args[0].lower() if args else ""
    if choice == "on":
        ctx.store.set_member(ctx.sender, now=ctx.now, digest=True, stopped=False)
        return Reply("commands/digest.txt", {"choice": "on", "queued": False})
    if choice == "off":
        ctx.store.set_member(ctx.sender, now=ctx.now, digest=False)
        return Reply("commands/digest.txt", {"choice": "off", "queued": False})
    if choice == "now":
        queued = bool(queue_personal_digest(ctx.store, ctx.sender, config=ctx.config, now=ctx.now))
        return Reply("commands/digest.txt", {"choice": "now", "queued": queued})
    raise CommandError(f"say 'digest on', 'digest off' or 'digest now', not {clip(' '.join(args) or 'digest')!r}")
