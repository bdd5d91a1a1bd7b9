"""The email command 'help': generated from the registry, never written by hand."""

from __future__ import annotations

from bot.commands.base import REGISTRY, CommandError, Context, Reply, clip, command, suggest


@command("help", args="[command]", summary="List the commands, or explain one.", examples=("help", "help remind"))
def help_(ctx: Context, args: list[str]) -> Reply:
    if args:
        name = args[0].lower()
        if name not in REGISTRY:
            guess = suggest(name)
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise CommandError(f"there is no command {clip(name)!r}{hint}")
        return Reply("commands/help_one.txt", {"command": REGISTRY[name]})
    commands = sorted(REGISTRY.values(), key=lambda c: c.name)
    return Reply(
        "commands/help.txt",
        {
            "members": [c for c in commands if not c.moderator],
            "moderators": [c for c in commands if c.moderator],
        },
    )
