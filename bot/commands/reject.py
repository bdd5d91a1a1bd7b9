"""The moderator command 'reject': an item the reader got wrong is withdrawn."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, command, item_arg, require_proof


@command(
    "reject",
    args="<id>",
    summary="Withdraw an item the reader flagged uncertain (it was not a real deadline or meeting).",
    examples=("reject 1",),
    moderator=True,
)
def reject(ctx: Context, args: list[str]) -> Reply:
    if not args:
        raise CommandError("say 'reject <item id>'")
    item = item_arg(ctx, args[0])
    if item.status == "cancelled":
        raise CommandError(f"item {item.id} is cancelled already")
    require_proof(ctx)
    item = ctx.store.update_item(
        item.id, {"status": "cancelled", "uncertain": False}, tz=ctx.config.tz, now=ctx.now, actor=ctx.sender,
        note=f"rejected, by mail {ctx.message.message_id}",
    )
    return Reply("commands/changed.txt", {"item": item, "action": "rejected"})
