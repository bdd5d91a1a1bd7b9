"""The moderator command 'edit': correct one field of an item."""

from __future__ import annotations

from typing import Any

from bot.commands.base import CommandError, Context, Reply, clip, command, item_arg, require_proof
from bot.commands.when import take_date, take_datetime

FIELDS = ("what", "who", "where", "date", "start", "end")


@command(
    "edit",
    args="<id> what|who|where|date|end <value>",
    summary="Correct an item: its description, who, where, date (or date and time), or end ('none' clears).",
    examples=("edit 1 what Comments on the revised charter", "edit 1 date 2026-10-02", "edit 1 where Room 4"),
    moderator=True,
)
def edit(ctx: Context, args: list[str]) -> Reply:
    if len(args) < 3:
        raise CommandError("say 'edit <id> <field> <value>', field one of: " + ", ".join(FIELDS))
    item = item_arg(ctx, args[0])
    field = args[1].lower()
    value_words = args[2:]
    if field not in FIELDS:
        raise CommandError(f"{clip(field)!r} is not a field; use one of: {', '.join(FIELDS)}")
    changes: dict[str, Any] = {}
    today = ctx.now.astimezone(ctx.tz).date()
    if field in ("date", "start", "end"):
        key = "end" if field == "end" else "start"
        if key == "end" and value_words[0].lower() == "none":
            changes["end"] = None
        elif item.type == "deadline" or item.all_day:
            found = take_date(value_words, today)
            if not found or found[1] != len(value_words):
                raise CommandError(f"{clip(' '.join(value_words))!r} is not a date like 2026-10-02")
            changes[key] = found[0].isoformat()
        else:
            moment, used = take_datetime(value_words, ctx.tz, today)
            if used != len(value_words):
                raise CommandError(f"{clip(' '.join(value_words))!r} is not a date and time like 2026-10-02 15:00")
            changes[key] = moment.isoformat(timespec="minutes")
        new_start = changes.get("start", item.start)
        new_end = changes.get("end", item.end)
        if new_end and new_end < new_start:
            raise CommandError("the end would be before the start")
    else:
        text = clip(" ".join(value_words), 300)
        changes[field] = None if field in ("who", "where") and text.lower() == "none" else text
    require_proof(ctx)
    item = ctx.store.update_item(
        item.id, changes, tz=ctx.config.tz, now=ctx.now, actor=ctx.sender, note=f"edit, by mail {ctx.message.message_id}"
    )
    return Reply("commands/changed.txt", {"item": item, "action": "changed"})
