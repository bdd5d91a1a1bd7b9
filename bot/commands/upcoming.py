"""The email command 'upcoming': deadlines and meetings ahead, with their ids."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, clip, command

# At most this many items are listed in one reply (the rest are counted).
LIST_CAP = 50


def days_arg(args: list[str], default: int = 30) -> int:
    if not args:
        return default
    text = args[0].lower().removesuffix("d").removesuffix("days").removesuffix("day")
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise CommandError(f"days must be a number from 1 to 366, not {clip(args[0])!r}")
    return int(text)


def listing(ctx: Context, days: int, type: str | None) -> Reply:
    items = ctx.store.upcoming(ctx.now, days, type=type, limit=LIST_CAP + 1)
    more = 0
    if len(items) > LIST_CAP:
        items = items[:LIST_CAP]
        more = ctx.store.upcoming_count(ctx.now, days, type=type) - LIST_CAP
    return Reply("commands/upcoming.txt", {"items": items, "days": days, "type": type, "more": more})


@command(
    "upcoming",
    args="[days]",
    summary="Deadlines and meetings in the next N days (default 30), with item ids.",
    examples=("upcoming", "upcoming 7"),
)
def upcoming(ctx: Context, args: list[str]) -> Reply:
    return listing(ctx, days_arg(args), None)
