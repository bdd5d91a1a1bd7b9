"""The email command 'cancel': a member cancels a reminder (r<id>); a moderator cancels an item (<id>)."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, clip, command, item_arg, require_proof


@command(
    "cancel",
    args="r<reminder id>  (moderators: cancel <item id>)",
    summary="Cancel one of your reminders; moderators cancel a list item the same way by its id.",
    examples=("cancel r1",),
)
def cancel(ctx: Context, args: list[str]) -> Reply:
    if not args:
        raise CommandError("say what: 'cancel r<reminder id>' (see 'reminders')")
    arg = args[0].lower()
    if arg.startswith("r") and arg[1:].isdigit():
        rid = int(arg[1:])
        if not ctx.store.cancel_reminder(ctx.sender, rid):
            raise CommandError(f"you have no active reminder r{rid} (see 'reminders')")
        return Reply("commands/cancel.txt", {"reminder": rid, "item": None})
    if not arg.lstrip("#").isdigit():
        raise CommandError(f"{clip(args[0])!r} is not a reminder id like r3 or an item id like 12")
    if not ctx.moderator:
        raise CommandError(
            f"only moderators cancel list items; to cancel your reminder, write 'cancel r{arg.lstrip('#')}'"
        )
    item = item_arg(ctx, arg)
    if item.status == "cancelled":
        raise CommandError(f"item {item.id} is cancelled already")
    require_proof(ctx)
    item = ctx.store.update_item(
        item.id, {"status": "cancelled"}, tz=ctx.config.tz, now=ctx.now, actor=ctx.sender,
        note=f"cancel, by mail {ctx.message.message_id}",
    )
    return Reply("commands/cancel.txt", {"reminder": None, "item": item})
