"""The email command 'start': undo 'stop' (personal reminders and digests again)."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command


@command("start", summary="Undo 'stop': your reminders and digest are sent again.", examples=("start",))
def start(ctx: Context, args: list[str]) -> Reply:
    ctx.store.set_member(ctx.sender, now=ctx.now, stopped=False)
    return Reply("commands/stop.txt", {"stopped": False})
