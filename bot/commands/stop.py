"""The email command 'stop': no more personal mail of any kind (reminders, digests)."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command


@command(
    "stop",
    summary="No more personal mail from the bot (reminders, digests); commands are still answered.",
    examples=("stop",),
)
def stop(ctx: Context, args: list[str]) -> Reply:
    ctx.store.set_member(ctx.sender, now=ctx.now, stopped=True)
    return Reply("commands/stop.txt", {"stopped": True})
