"""The email command 'show': one item with its sources and its history (the audit trail)."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, command, item_arg


@command(
    "show",
    args="<id>",
    summary="One item with the posts and sentences it was read from, and every change made to it.",
    examples=("show 1",),
)
def show(ctx: Context, args: list[str]) -> Reply:
    if not args:
        raise CommandError("say which item: 'show <id>' (ids are in 'upcoming')")
    item = item_arg(ctx, args[0])
    return Reply(
        "commands/show.txt",
        {"item": item, "sources": ctx.store.sources(item.id), "history": ctx.store.history(item.id)},
    )
