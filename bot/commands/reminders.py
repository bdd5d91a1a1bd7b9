"""The email command 'reminders': the sender's own active reminders."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command


@command("reminders", summary="List your personal reminders, with the ids 'cancel' takes.", examples=("reminders",))
def reminders(ctx: Context, args: list[str]) -> Reply:
    rows = ctx.store.reminders_of(ctx.sender)
    items = {r["item_id"]: ctx.store.item(r["item_id"]) for r in rows if r["item_id"]}
    return Reply("commands/reminders.txt", {"reminders": rows, "items": items})
