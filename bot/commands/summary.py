"""The email command 'summary': the summary of a meeting report."""

from __future__ import annotations

from bot.commands.base import CommandError, Context, Reply, clip, command, int_arg
from bot.commands.when import take_date


@command(
    "summary",
    args="[latest | <report number> | <date>]",
    summary="The summary of a meeting report: the latest, by its number, or the one posted on a date.",
    examples=("summary", "summary latest", "summary 2026-03-02"),
)
def summary(ctx: Context, args: list[str]) -> Reply:
    if not args or args[0].lower() == "latest":
        report = ctx.store.latest_report()
        asked = "latest"
    elif args[0].lstrip("#").isdigit():
        report = ctx.store.report(int_arg(args[0], "report number"))
        asked = f"number {args[0].lstrip('#')}"
    else:
        day = take_date(args, ctx.now.astimezone(ctx.tz).date())
        if not day:
            raise CommandError(f"{clip(' '.join(args))!r} is not 'latest', a report number or a date")
        report = ctx.store.report_near(day[0], ctx.tz)
        asked = f"on or after {day[0].isoformat()}"
    return Reply("commands/summary.txt", {"report": report, "asked": asked})
