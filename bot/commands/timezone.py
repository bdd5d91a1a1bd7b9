"""The email command 'timezone': the zone times are shown in for this member."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command
from bot.commands.when import zone


@command(
    "timezone",
    args="[<Area/City>]",
    summary="Show times in your zone (an IANA name such as Asia/Kolkata); without a name, show the current one.",
    examples=("timezone", "timezone Asia/Kolkata"),
)
def timezone(ctx: Context, args: list[str]) -> Reply:
    if not args:
        return Reply("commands/timezone.txt", {"zone": ctx.tz.key, "changed": False})
    tz = zone(args[0])
    ctx.store.set_member(ctx.sender, now=ctx.now, timezone=tz.key)
    return Reply("commands/timezone.txt", {"zone": tz.key, "changed": True})
