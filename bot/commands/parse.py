"""Finding command lines in a mail's Subject and new text (Mailman's CommandFinder, bounded)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands.base import REGISTRY, suggest

# "Re:", "Fwd:", "AW:", "SV:", "WG:", "TR:", "Antw:", "RE[2]:" and list tags like "[wg]", repeated.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|sv|vs|wg|tr|antw|odp|rif|r|ref|réf|ynt)\s*(?:\[\d+\])?\s*[:：]\s*|\[[^\]]{1,40}\]\s*)+",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(?:\[[^\]]{1,40}\]\s*)*(?:re|aw|sv|vs|antw|odp|rif|r|ynt)\s*(?:\[\d+\])?\s*[:：]",
                           re.IGNORECASE)
# Before the first command, at most this many lines that are not commands are looked at.
MAX_LEADING_NOISE = 5
# Lines of the rest of the mail shown under "Ignored".
SHOWN_IGNORED = 5
MAX_LINE = 500


@dataclass(frozen=True)
class Found:
    commands: tuple[tuple[str, tuple[str, ...]], ...]  # (line as written, words)
    unprocessed: tuple[tuple[str, str | None], ...]  # (line, the command it probably meant)
    ignored: tuple[str, ...]  # the first few lines that were not read
    ignored_more: int  # how many more lines were not read
    from_subject: bool


def strip_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject, count=1).strip()


def is_reply_subject(subject: str) -> bool:
    return bool(_REPLY_PREFIX.match(subject))


def _words(line: str) -> list[str]:
    line = line.strip().lstrip("*•-–· \t").strip()
    return line[:MAX_LINE].split()


def _is_command(words: list[str]) -> bool:
    return bool(words) and words[0].lower() in REGISTRY


def find_commands(
    subject: str, text: str, *, max_lines: int, read_subject: bool = True, leading_noise: int = MAX_LEADING_NOISE
) -> Found:
    """Commands, one a line, case-insensitive; stop at `end` or at the first non-command after a command.

    The Subject counts when it starts with a command (and, for a reply such as "Re: upcoming", only when
    the body has none: a reply to our answer must not run the old subject again). Work is bounded: a
    10,000-line body costs no more than its first lines. `leading_noise` is how many non-command lines
    may come before the first command (0 for a reply to the bot's own answer: only a command on top counts,
    so a pasted copy of our answer, which lists command names, runs nothing)."""
    commands: list[tuple[str, tuple[str, ...]]] = []
    unprocessed: list[tuple[str, str | None]] = []
    ignored: list[str] = []
    ignored_more = 0
    # Enough lines for the commands, the leading noise and the shown rest; the remainder is counted only.
    budget = max_lines + MAX_LEADING_NOISE + SHOWN_IGNORED + 50
    lines = text.split("\n", budget)
    rest = lines.pop() if len(lines) > budget else ""
    stopped = False
    noise = 0
    for raw in lines:
        line = raw.strip()
        if stopped:
            if line:
                if len(ignored) < SHOWN_IGNORED:
                    ignored.append(line[:MAX_LINE])
                else:
                    ignored_more += 1
            continue
        if not line:
            continue
        words = _words(line)
        if words and words[0].lower() == "end":
            stopped = True
            continue
        if _is_command(words):
            if len(commands) >= max_lines:
                stopped = True
                ignored.append(line[:MAX_LINE])
                continue
            commands.append((line[:MAX_LINE], tuple(words)))
            continue
        guess = suggest(words[0]) if words and len(words) <= 6 else None
        if commands and guess and len(unprocessed) < MAX_LEADING_NOISE:
            # A short line that looks like a mistyped command ("shwo 2"): say so rather than ignore it.
            unprocessed.append((line[:MAX_LINE], guess))
            continue
        if commands or noise >= leading_noise:
            stopped = True
            ignored.append(line[:MAX_LINE])
            continue
        noise += 1
        unprocessed.append((line[:MAX_LINE], guess))
    if rest:
        ignored_more += sum(1 for x in rest.split("\n") if x.strip())

    from_subject = False
    bare = strip_prefixes(subject)
    words = _words(bare)
    reply = is_reply_subject(subject)
    if read_subject and _is_command(words) and (not reply or not commands):
        if words[0].lower() != "end":
            commands.insert(0, (bare[:MAX_LINE], tuple(words)))
            from_subject = True
            del commands[max_lines:]
    elif read_subject and not commands and bare and not reply and words and words[0].lower() != "end":
        # Nothing in the body: the subject was probably meant as a command.
        unprocessed.insert(0, (bare[:MAX_LINE], suggest(words[0])))
    if from_subject:
        # The body's stray text is not a mistake when the command was in the Subject.
        unprocessed = [u for u in unprocessed if u[1] is not None]
    return Found(tuple(commands), tuple(unprocessed), tuple(ignored), ignored_more, from_subject)
