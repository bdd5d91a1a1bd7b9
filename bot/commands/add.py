"""The moderator command 'add': a deadline or meeting the reader missed."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, clip, command, require_proof
from bot.commands.when import take_date, take_datetime

MAX_WHAT = 300


@command(
    "add",
    args="deadline <date> <what>  |  add meeting <date> <time> [zone] <what>",
    summary="Add a deadline (a whole day in the list's zone) or a meeting (a time, in your zone unless given).",
    examples=("add deadline 2026-09-30 Comments on the charter", "add meeting 2026-09-14 15:00 UTC WS2 call"),
    moderator=True,
)
def add(ctx: Context, args: list[str]) -> Reply:
    kind = args[0].lower() if args else ""
    if kind not in ("deadline", "meeting"):
        raise CommandError("say 'add deadline <date> <what>' or 'add meeting <date> <time> <what>'")
    today = ctx.now.astimezone(ctx.tz).date()
    if kind == "deadline":
        found = take_date(args[1:], today)
        if not found:
            raise CommandError("a deadline needs a date, as in 'add deadline 2026-09-30 <what>'")
        start, used = found[0].isoformat(), found[1]
    else:
        moment, used = take_datetime(args[1:], ctx.tz, today)
        start = moment.isoformat(timespec="minutes")
    what = " ".join(args[1 + used :]).strip()
    if not what:
        raise CommandError(f"say what the {kind} is, after the date")
    require_proof(ctx)
    item_id = ctx.store.add_manual_item(
        type=kind, what=clip(what, MAX_WHAT), start=start, end=None, tz=ctx.config.tz, now=ctx.now, actor=ctx.sender
    )
    item = ctx.store.item(item_id)
    return Reply("commands/changed.txt", {"item": item, "action": "added"})
