"""The moderator command 'status': what needs a moderator, and how the outbox is doing."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command


@command(
    "status",
    summary="Items flagged uncertain, mail waiting or failed, members' settings.",
    examples=("status",),
    moderator=True,
)
def status(ctx: Context, args: list[str]) -> Reply:
    return Reply(
        "commands/status.txt",
        {
            "uncertain": ctx.store.uncertain_items(ctx.now)[:50],
            "outbox": ctx.store.outbox_counts(),
            "failed": ctx.store.failed_mail(5),
            "members": ctx.store.member_counts(),
        },
    )
