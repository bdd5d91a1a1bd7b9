"""The command language: the registry, the context a command runs in, and running one command line."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.message import Message
from bot.render import render
from bot.store import Item, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """Everything a command may look at; `now` is the one clock reading for the whole mail."""

    store: Store
    config: Config
    now: datetime
    sender: str
    member: bool
    moderator: bool
    proven: bool  # the moderator's mail is authenticated (DMARC/DKIM pass, or a redeemed token)
    tz: ZoneInfo  # the member's zone (the list's when they set none)
    message: Message


@dataclass(frozen=True)
class Reply:
    """What a command answers: a template under templates/commands/ and its data, plus attachments."""

    template: str
    data: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[tuple[str, str, bytes], ...] = ()


class CommandError(Exception):
    """A mistake the member made (bad argument, unknown id): said in one line, nothing changed."""


class NeedsProof(Exception):
    """A moderator command whose sender is not proven yet: it is kept for a confirmation round trip."""


Handler = Callable[[Context, list[str]], Reply]


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    summary: str
    examples: tuple[str, ...]
    moderator: bool
    fn: Handler


REGISTRY: dict[str, Command] = {}


def command(
    name: str, *, args: str = "", summary: str, examples: tuple[str, ...], moderator: bool = False
) -> Callable[[Handler], Handler]:
    """Register a command; its examples are both help text and test input."""

    def register(fn: Handler) -> Handler:
        if name in REGISTRY:
            raise RuntimeError(f"command {name!r} registered twice")
        REGISTRY[name] = Command(name, args, summary, tuple(examples), moderator, fn)
        return fn

    return register


@dataclass(frozen=True)
class Result:
    """One command line and what came of it, rendered to text."""

    line: str
    text: str
    status: str  # ok | error | refused | pending | failed
    attachments: tuple[tuple[str, str, bytes], ...] = ()


def suggest(word: str) -> str | None:
    """The command a mistyped word most likely meant ("did you mean ..."), or None."""
    match = difflib.get_close_matches(word.lower(), list(REGISTRY), n=1, cutoff=0.75)
    return match[0] if match else None


def execute(ctx: Context, line: str, words: list[str]) -> Result:
    """Run one command line (its first word is a registered command) and render its result."""
    cmd = REGISTRY[words[0].lower()]
    args = words[1:]
    if cmd.moderator and not ctx.moderator:
        return Result(line, _text("commands/refused.txt", {"command": cmd, "ctx": ctx}), "refused")
    try:
        # A command that fails changes nothing: its writes are undone, the mail's other commands stand.
        with ctx.store.savepoint():
            reply = cmd.fn(ctx, args)
    except NeedsProof:
        return Result(line, _text("commands/pending.txt", {"command": cmd}), "pending")
    except CommandError as exc:
        return Result(line, _text("commands/error.txt", {"error": str(exc), "command": cmd}), "error")
    except Exception:  # a bug or a store failure: said to the member, logged with the mail, nothing changed
        log.exception("%s command %r failed", ctx.message.message_id, clip(line))
        return Result(line, _text("commands/failed.txt", {"command": cmd}), "failed")
    return Result(line, _text(reply.template, {**reply.data, "ctx": ctx}), "ok", reply.attachments)


def _text(template: str, data: dict[str, Any]) -> str:
    ctx = data.get("ctx")
    show = Show(ctx.tz if isinstance(ctx, Context) else ZoneInfo("UTC"))
    _, body = render(template, {**data, "show": show})
    return body.rstrip("\n")


def proven(ctx: Context) -> Context:
    return replace(ctx, proven=True)


def require_proof(ctx: Context) -> None:
    """Raise NeedsProof unless the moderator's mail is authenticated: call before any change."""
    if not ctx.proven:
        raise NeedsProof()


def int_arg(value: str, what: str = "id") -> int:
    text = value.lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise CommandError(f"{what} must be a number, not {clip(value)!r}")
    return int(text)


def item_arg(ctx: Context, value: str) -> Item:
    item_id = int_arg(value, "item id")
    item = ctx.store.item(item_id)
    if item is None:
        raise CommandError(f"there is no item {item_id} (see 'upcoming' for ids)")
    return item


def clip(text: str, n: int = 60) -> str:
    """Member text shown back in a reply: one line, bounded."""
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 3] + "..."


class Show:
    """Times for templates: in the member's zone and in UTC (templates call these; commands pass values)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.is_utc = tz.key in ("UTC", "Etc/UTC")

    def at(self, when: datetime) -> str:
        utc = when.astimezone(UTC)
        if self.is_utc:
            return f"{utc:%a %d %b %Y %H:%M} UTC"
        local = utc.astimezone(self.tz)
        same_day = local.date() == utc.date()
        utc_text = f"{utc:%H:%M}" if same_day else f"{utc:%a %d %b %H:%M}"
        # The zone's name is said once per reply (see the templates); lines stay under 78 characters.
        return f"{local:%a %d %b %Y %H:%M} {local.tzname()} = {utc_text} UTC"

    def day(self, value: str | date) -> str:
        d = value if isinstance(value, date) else date.fromisoformat(value[:10])
        return f"{d:%a %d %b %Y}"

    def item(self, item: Item) -> str:
        """When an item is: a whole day (list time) or a moment/range in the member's zone and UTC."""
        if item.all_day:
            text = self.day(item.start)
            if item.end and item.end[:10] != item.start[:10]:
                text += " to " + self.day(item.end)
            return text + " (all day)"
        text = self.at(item.start_utc)
        if item.end_utc > item.start_utc:
            end_local = item.end_utc.astimezone(self.tz)
            text += f", until {end_local:%H:%M} {end_local.tzname()}"
        return text
