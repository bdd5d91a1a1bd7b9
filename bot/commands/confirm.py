"""The command 'confirm': a moderator confirms a flagged item, or anyone's pending commands by token."""

from __future__ import annotations

import json
import logging

from bot.commands.base import (
    REGISTRY,
    CommandError,
    Context,
    Reply,
    command,
    execute,
    item_arg,
    proven,
    require_proof,
)

log = logging.getLogger(__name__)


@command(
    "confirm",
    args="<id>  |  confirm <token>",
    summary="Confirm an item the reader flagged uncertain; or, with a token we mailed you, run your pending commands.",
    examples=("confirm 1",),
    moderator=True,
)
def confirm(ctx: Context, args: list[str]) -> Reply:
    if not args:
        raise CommandError("say 'confirm <item id>' or 'confirm <token>'")
    if args[0].lstrip("#").isdigit():
        item = item_arg(ctx, args[0])
        if not item.uncertain:
            raise CommandError(f"item {item.id} is not flagged uncertain")
        require_proof(ctx)
        item = ctx.store.update_item(
            item.id, {"uncertain": False}, tz=ctx.config.tz, now=ctx.now, actor=ctx.sender,
            note=f"confirmed, by mail {ctx.message.message_id}",
        )
        return Reply("commands/changed.txt", {"item": item, "action": "confirmed"})
    return redeem(ctx, args[0])


def redeem(ctx: Context, token: str) -> Reply:
    """A confirmation round trip: the token came only to the moderator's own address, so this mail is theirs."""
    state, payload = ctx.store.use_token(token.strip(), ctx.sender, now=ctx.now)
    if state != "ok" or payload is None:
        log.info("%s token refused: %s", ctx.message.message_id, state)
        reasons = {
            "unknown": "that confirmation token is not known (check you copied all of it)",
            "other-sender": "that confirmation token is not known (check you copied all of it)",
            "used": "that confirmation token was used already; nothing was run again",
            "expired": "that confirmation token has expired (tokens last 48 hours); please send the commands again",
        }
        raise CommandError(reasons[state])
    data = json.loads(payload)
    sure = proven(ctx)
    results = []
    for line in data.get("lines", []):
        words = line.split()
        if words and words[0].lower() in REGISTRY:
            results.append(execute(sure, line, words))
    log.info("%s token redeemed for %d commands of %s", ctx.message.message_id, len(results), data.get("message_id"))
    return Reply("commands/confirmed.txt", {"results": results, "original": data.get("message_id", "")})
