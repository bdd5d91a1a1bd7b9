"""The email command 'next': the next meeting, with an .ics attached."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command
from bot.commands.ics import calendar_file


@command("next", summary="The next meeting, with a calendar file attached.", examples=("next",))
def next_(ctx: Context, args: list[str]) -> Reply:
    items = ctx.store.upcoming(ctx.now, 366, type="meeting", limit=1)
    if not items:
        return Reply("commands/next.txt", {"item": None, "attached": False})
    attachment = calendar_file(ctx, items, f"meeting-{items[0].id}.ics")
    return Reply("commands/next.txt", {"item": items[0], "attached": bool(attachment)}, attachment)
