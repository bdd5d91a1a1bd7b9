"""The email command 'remind': personal reminders for list items, or of one's own."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, clip, command, item_arg
from bot.commands.when import offsets, take_moment

MAX_TEXT = 200
MAX_ACTIVE = 100


@command(
    "remind",
    args="me <id> | all [before 7d,1d]  or  remind me <when> <text>",
    summary="A personal reminder before an item (or all items), or at a time you choose.",
    examples=(
        "remind me 1",
        "remind me 1 before 7d,1d",
        "remind me all before 2d",
        "remind me in 3 days to check the agenda",
        "remind me on 14 Sept 9:00 to send WS2 feedback",
    ),
)
def remind(ctx: Context, args: list[str]) -> Reply:
    if args and args[0].lower() == "me":
        args = args[1:]
    if not args:
        raise CommandError("say what: 'remind me <id>', 'remind me all' or 'remind me in 3 days <text>'")
    if len(ctx.store.reminders_of(ctx.sender)) >= MAX_ACTIVE:
        raise CommandError(f"you have {MAX_ACTIVE} active reminders already; 'cancel' some first")
    first = args[0].lower().lstrip("#")
    rest = args[1:]
    if (first.isdigit() or first == "all") and (not rest or rest[0].lower() == "before"):
        if rest and len(rest) < 2:
            raise CommandError("'before' needs offsets, as in 'before 7d,1d'")
        chosen = offsets(" ".join(rest[1:])) if rest else None
        if first == "all":
            # No offsets given: None, which the scheduler reads as each item's usual ones ([reminders]).
            rid = ctx.store.add_reminder(ctx.sender, now=ctx.now, offsets=chosen)
            return Reply("commands/remind.txt", {"id": rid, "item": None, "offsets": chosen, "at": None, "text": None,
                                                 "usual": _usual(ctx)})
        item = item_arg(ctx, first)
        if item.status != "active" or item.end_utc <= ctx.now:
            raise CommandError(f"item {item.id} is {'cancelled' if item.status != 'active' else 'over'}")
        default = ctx.config.reminders.meeting_offsets if item.type == "meeting" else ctx.config.reminders.deadline_offsets
        offs = chosen or list(default)
        rid = ctx.store.add_reminder(ctx.sender, now=ctx.now, item_id=item.id, offsets=offs)
        return Reply("commands/remind.txt", {"id": rid, "item": item, "offsets": offs, "at": None, "text": None,
                                             "usual": None})
    at, used = take_moment(args, ctx.tz, ctx.now)
    words = args[used:]
    if words and words[0].lower() == "to":
        words = words[1:]
    text = " ".join(words).strip()
    if not text:
        raise CommandError("say what to remind you of, as in 'remind me in 3 days to check the agenda'")
    text = clip(text, MAX_TEXT)
    rid = ctx.store.add_reminder(ctx.sender, now=ctx.now, at=at, text=text)
    return Reply("commands/remind.txt", {"id": rid, "item": None, "offsets": None, "at": at, "text": text, "usual": None})


def _usual(ctx: Context) -> dict[str, tuple[str, ...]]:
    return {"deadline": ctx.config.reminders.deadline_offsets, "meeting": ctx.config.reminders.meeting_offsets}
