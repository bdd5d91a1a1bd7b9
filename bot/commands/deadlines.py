"""The email command 'deadlines': deadlines ahead, with their ids."""

from __future__ import annotations

from bot.commands.base import Context, Reply, command
from bot.commands.upcoming import days_arg, listing


@command(
    "deadlines",
    args="[days]",
    summary="Deadlines due in the next N days (default 30), with item ids.",
    examples=("deadlines", "deadlines 14"),
)
def deadlines(ctx: Context, args: list[str]) -> Reply:
    return listing(ctx, days_arg(args), "deadline")
