"""The email command 'ics': calendar files for one item or for everything ahead."""

from __future__ import annotations

import logging

from bot.commands.base import CommandError, Context, Reply, command, item_arg
from bot.ics import calendar_for
from bot.store import Item

log = logging.getLogger(__name__)


def calendar_file(ctx: Context, items: list[Item], filename: str) -> tuple[tuple[str, str, bytes], ...]:
    """The items as one text/calendar attachment."""
    return ((filename, "text/calendar", calendar_for(ctx.config, items, now=ctx.now)),)


@command(
    "ics",
    args="<id> | all",
    summary="A calendar file (.ics) for one item, or for everything in the next year.",
    examples=("ics 1", "ics all"),
)
def ics(ctx: Context, args: list[str]) -> Reply:
    if not args:
        raise CommandError("say which item: 'ics <id>' or 'ics all'")
    if args[0].lower() == "all":
        items = ctx.store.upcoming(ctx.now, 366, limit=1000)
        name = "listbot-all.ics"
    else:
        item = item_arg(ctx, args[0])
        items = [item]
        name = f"item-{item.id}.ics"
    attachment = calendar_file(ctx, items, name) if items else ()
    return Reply("commands/ics.txt", {"items": items, "attached": bool(attachment), "filename": name}, attachment)
