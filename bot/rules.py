"""Recognition rules: one TOML file per rule in rules/, validated at load; classify a post by the first rule that hits."""

# A rule file (rules/NAME.toml; NAME is the rule's name):
#
#   description = "Notes or minutes of a meeting that took place"    # required
#   kind = "meeting_report"        # required: one of KINDS
#   priority = 10                  # required integer: lower runs first; the first rule that hits decides
#   threshold = 3                  # the score at which the rule hits (default 1)
#   [subject]                      # where to look: [subject] and/or [body] (the new text of the post)
#   weight = 3                     # score per distinct phrase or pattern found (default 1)
#   max_hits = 3                   # count at most this many of them (default: all)
#   phrases = ["minutes", ...]     # words or phrases, case-insensitive, on word boundaries
#   patterns = ['(?i)\bsummary\b']  # regular expressions
#   [[body]]                       # instead of one [body] (or [subject]): several tables, each scored on its own
#                                  # (strong words in one, weaker ones that count once in another)
#   [veto]                         # a match here means the rule does not hit
#   subject = ['(?i)^re:']
#
# The vocabulary the extractor looks for (month and weekday names, fuzzy words, cue words for deadlines,
# meetings, cancellations, extensions, history...) is in rules/lang/LANG.toml, one file per language, all
# merged: adding a language is adding a file (see rules/lang/en.toml for the keys).

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.dates import Grammar, build_grammar
from bot.message import Message
from bot.paths import data_dir

log = logging.getLogger(__name__)

KINDS = ("meeting_report", "meeting_invitation", "call_for_contributions", "announcement", "other")
WHERE = ("subject", "body")
# Rules look at the start of the new text only: a cue deep in a 1 MB post decides nothing, and this bounds the time.
BODY_CHARS = 6_000

_RULE_KEYS = {"description", "kind", "priority", "threshold", "subject", "body", "veto"}
_CUE_KEYS = {"weight", "max_hits", "phrases", "patterns"}
_LANG_LIST_KEYS = (
    "capitalised_only", "ordinal_suffixes", "date_connectors", "range_words", "today", "tomorrow", "this_weekday",
    "deadline_preps", "weak_deadline_preps", "window_cues", "deadline_fillers", "vague_preps", "superseded_preps", "not_deadline_preps", "deadline_cues", "meeting_cues", "not_meeting_after", "not_deadline_after", "past_tense", "cancel_cues",
    "extension_cues", "start_cues", "publication_cues", "future_cues", "history_cues", "hedges", "decision_cues", "next_step_cues", "action_headings", "postpone_cues", "new_date_cues", "weak_meeting_cues", "credential_words", "action_verbs",
    "contribution_cues", "request_cues", "month_day_articles", "clock_change_cues",
)


class RuleError(Exception):
    """A rule or vocabulary file is not usable; the message names the file and the key."""


@dataclass(frozen=True)
class Cue:
    """Where a rule looks (subject or body) and what it looks for there."""

    where: str
    weight: float
    max_hits: int
    regexes: tuple[re.Pattern[str], ...]  # each counts once when it matches
    phrases: tuple[str, ...] = ()  # lower-case, single-spaced; each counts once when found on word boundaries
    lowered: tuple[re.Pattern[str] | None, ...] = ()  # per regex: its form for the lower-cased text, if it has one
    hints: tuple[tuple[str, ...], ...] = ()  # per lowered regex: words one of which its match must start with
    # the phrases grouped by their first word, with the letters and digits that word starts with ("" if none)
    by_first_word: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    phrase_words: dict[str, frozenset[str]] = field(default_factory=dict)  # per phrase: _words(phrase)


@dataclass(frozen=True)
class Rule:
    name: str  # the file stem
    description: str
    kind: str
    priority: int  # lower runs first; the first rule that hits decides the kind
    threshold: float
    cues: tuple[Cue, ...]
    vetoes: tuple[tuple[str, re.Pattern[str]], ...]  # (where, regex): a match means the rule does not hit
    path: str = ""
    vetoes_lowered: tuple[re.Pattern[str] | None, ...] = ()  # as Cue.lowered
    veto_hints: tuple[tuple[str, ...], ...] = ()  # per lowered veto: words one of which its match must start with
    reach: tuple[float, ...] = ()  # per cue: the most that cue and the ones after it can add to the score


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    grammar: Grammar = field(repr=False)
    languages: tuple[str, ...] = ()


def _fail(path: Path, key: str, why: str) -> RuleError:
    return RuleError(f"rules/{_rel(path)}: {key}: {why}")


def _rel(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name == "lang" else path.name


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"rules/{_rel(path)}: bad TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"rules/{_rel(path)}: cannot be read: {exc}") from None


def _strings(path: Path, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, "must be a list of strings")
    return list(value)


def _number(path: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, key, "must be a number")
    return float(value)


def _compile(path: Path, key: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _fail(path, key, f"bad regex {pattern!r}: {exc}") from None


_UPPER_LITERAL = re.compile(r"(?<!\\)[A-Z]")


_SPECIAL = frozenset("\\[](){}?*+|.^$")


def _top_level(p: str) -> list[str] | None:
    """p split at its top-level '|' (escapes and [classes] skipped), or None when a bracket is left open."""
    parts, depth, i, cur = [], 0, 0, 0
    while i < len(p):
        ch = p[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = p.find("]", i + 2)
            if j < 0:
                return None
            i = j + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(p[cur:i])
            cur = i + 1
        i += 1
    return [*parts, p[cur:]] if depth == 0 else None


def _hints(regex: re.Pattern[str] | None) -> tuple[str, ...]:
    """The literal words one of which every match starts with ('calls? for ...' -> 'call'; '(?:seeking|we need) ...'
    -> 'seeking', 'we need'), or () when the pattern does not say."""
    if regex is None:
        return ()
    p = regex.pattern.removeprefix("\\b")
    if _top_level(p) != [p]:
        return ()  # 'a|b' at the top level
    alts = [p]
    if (p.startswith("(") and not p.startswith("(?")) or p.startswith("(?:"):
        inner = p[3:] if p.startswith("(?:") else p[1:]
        depth, i = 0, 0
        while i < len(inner):  # the group's closing bracket
            if inner[i] == "\\":
                i += 2
                continue
            depth += (inner[i] == "(") - (inner[i] == ")")
            if depth < 0:
                break
            i += 1
        if inner[i + 1 : i + 2] in ("?", "*", "{"):
            return ()  # '(?:a|b)?c': a match need not start with a or b
        found = _top_level(inner[:i])
        if found is None:
            return ()
        alts = found
    out = []
    for alt in alts:
        n = 0
        while n < len(alt) and alt[n] not in _SPECIAL:
            n += 1
        word = alt[: n - 1] if n < len(alt) and alt[n] in "?*{" else alt[:n]
        if len(word) < 3:
            return ()
        out.append(word)
    return tuple(out)


def _lowered(regex: re.Pattern[str]) -> re.Pattern[str] | None:
    """A '(?i)' pattern without upper-case letters of its own, as a case-sensitive pattern for the lower-cased text:
    the same matches (spaces folded), several times faster than a case-insensitive search."""
    if not regex.pattern.startswith("(?i)") or _UPPER_LITERAL.search(regex.pattern[4:]):
        return None
    try:
        return re.compile(regex.pattern[4:])
    except re.error:
        return None


def _cue(path: Path, where: str, name: str, table: dict[str, Any]) -> Cue:
    for key in table:
        if key not in _CUE_KEYS:
            raise _fail(path, f"{name}.{key}", f"unknown key (expected one of {', '.join(sorted(_CUE_KEYS))})")
    weight = _number(path, f"{name}.weight", table.get("weight", 1))
    max_hits = table.get("max_hits", 1_000)
    if isinstance(max_hits, bool) or not isinstance(max_hits, int) or max_hits < 1:
        raise _fail(path, f"{name}.max_hits", "must be a positive integer")
    regexes = [_compile(path, f"{name}.patterns", p) for p in _strings(path, f"{name}.patterns", table.get("patterns", []))]
    # Each phrase counts on its own, so that weights add up per distinct phrase.
    phrases = tuple(
        " ".join(p.lower().split()) for p in _strings(path, f"{name}.phrases", table.get("phrases", [])) if p.strip()
    )
    if not regexes and not phrases:
        raise _fail(path, name, "needs phrases or patterns")
    lowered = tuple(_lowered(r) for r in regexes)
    groups: dict[str, list[str]] = {}
    for phrase in phrases:
        groups.setdefault(phrase.split(" ", 1)[0], []).append(phrase)
    return Cue(where, weight, max_hits, tuple(regexes), phrases, lowered, tuple(_hints(low) for low in lowered),
               tuple((first, _lead(first), tuple(group)) for first, group in groups.items()),
               {phrase: _words(phrase) for phrase in phrases})


_ALNUM_RUN = re.compile(r"[^\W_]+")  # letters and digits: exactly the characters str.isalnum() accepts
# ASCII characters other than letters and digits, as spaces: the words of a text in one C pass.
_NOT_ALNUM = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def _lead(word: str) -> str:
    """The letters and digits `word` starts with ('agenda:' -> 'agenda'), or ''."""
    m = _ALNUM_RUN.match(word)
    return m.group(0) if m else ""


def _words(text: str) -> frozenset[str]:
    """Every run of letters and digits in `text` (and a few longer strings, harmless here)."""
    if text.isascii():
        return frozenset(text.translate(_NOT_ALNUM).split())
    words = set(text.translate(_NOT_ALNUM).split())
    for w in [w for w in words if not w.isalnum()]:  # "“call": a non-ASCII mark left on a word
        words.update(_ALNUM_RUN.findall(w))
    return frozenset(words)


def _rule(path: Path) -> Rule:
    data = _read_toml(path)
    for key in data:
        if key not in _RULE_KEYS:
            raise _fail(path, key, f"unknown key (expected one of {', '.join(sorted(_RULE_KEYS))})")
    for key in ("description", "kind", "priority"):
        if key not in data:
            raise _fail(path, key, "missing")
    if not isinstance(data["description"], str) or not data["description"].strip():
        raise _fail(path, "description", "must be a non-empty string")
    if data["kind"] not in KINDS:
        raise _fail(path, "kind", f"unknown kind {data['kind']!r} (expected one of {', '.join(KINDS)})")
    if isinstance(data["priority"], bool) or not isinstance(data["priority"], int):
        raise _fail(path, "priority", "must be an integer")
    threshold = _number(path, "threshold", data.get("threshold", 1))
    cues: list[Cue] = []
    for where in WHERE:
        if where not in data:
            continue
        # [body] is one table of cues; [[body]] several, each with its own weight and max_hits.
        tables = data[where] if isinstance(data[where], list) else [data[where]]
        for n, table in enumerate(tables):
            name = where if len(tables) == 1 and not isinstance(data[where], list) else f"{where}[{n}]"
            if not isinstance(table, dict):
                raise _fail(path, name, "must be a table")
            cues.append(_cue(path, where, name, table))
    if not cues:
        raise _fail(path, "subject", "a rule must look somewhere: give [subject] or [body]")
    vetoes: list[tuple[str, re.Pattern[str]]] = []
    veto = data.get("veto", {})
    if not isinstance(veto, dict):
        raise _fail(path, "veto", "must be a table")
    for where, patterns in veto.items():
        if where not in WHERE:
            raise _fail(path, f"veto.{where}", f"unknown place (expected one of {', '.join(WHERE)})")
        for p in _strings(path, f"veto.{where}", patterns):
            vetoes.append((where, _compile(path, f"veto.{where}", p)))
    vetoes_lowered = tuple(_lowered(r) for _, r in vetoes)
    return Rule(
        name=path.stem,
        description=data["description"].strip(),
        kind=data["kind"],
        priority=data["priority"],
        threshold=threshold,
        cues=tuple(cues),
        vetoes=tuple(vetoes),
        path=str(path),
        vetoes_lowered=vetoes_lowered,
        veto_hints=tuple(_hints(low) for low in vetoes_lowered),
        reach=tuple(
            sum(c.weight * min(c.max_hits, len(c.phrases) + len(c.regexes)) for c in cues[i:]) for i in range(len(cues))
        ),
    )


def _language(path: Path) -> dict[str, Any]:
    data = _read_toml(path)
    allowed = {"language", "months", "weekdays", "fuzzy", "words"}
    for key in data:
        if key not in allowed:
            raise _fail(path, key, f"unknown key (expected one of {', '.join(sorted(allowed))})")
    for key in ("months", "weekdays", "fuzzy"):
        table = data.get(key, {})
        if not isinstance(table, dict):
            raise _fail(path, key, "must be a table of name = number")
        low, high = {"months": (1, 12), "weekdays": (0, 6), "fuzzy": (-1, 28)}[key]
        for name, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise _fail(path, f"{key}.{name}", f"must be an integer from {low} to {high}")
    words = data.get("words", {})
    if not isinstance(words, dict):
        raise _fail(path, "words", "must be a table")
    for key, value in words.items():
        if key not in _LANG_LIST_KEYS:
            raise _fail(path, f"words.{key}", "unknown key")
        _strings(path, f"words.{key}", value)
    return data


def load_rules(folder: Path | None = None) -> RuleSet:
    """All rules in `folder` (default: the packaged rules/) and the vocabularies in folder/lang/, checked and compiled.

    Load once and reuse: every regex is compiled here, none per message."""
    folder = Path(folder) if folder is not None else data_dir("rules")
    if not folder.is_dir():
        raise RuleError(f"{folder}: rules folder not found")
    rules = [_rule(p) for p in sorted(folder.glob("*.toml"))]
    rules.sort(key=lambda r: (r.priority, r.name))
    vocab: dict[str, Any] = {"months": {}, "weekdays": {}, "fuzzy": {}, "words": {k: [] for k in _LANG_LIST_KEYS}}
    languages: list[str] = []
    lang_dir = folder / "lang"
    lang_files = sorted(lang_dir.glob("*.toml")) if lang_dir.is_dir() else []
    for path in lang_files:
        data = _language(path)
        languages.append(path.stem)
        for key in ("months", "weekdays", "fuzzy"):
            for name, value in data.get(key, {}).items():
                vocab[key][name.lower()] = value
        for key, value in data.get("words", {}).items():
            vocab["words"][key].extend(v.lower() for v in value)
    if not vocab["months"]:
        raise RuleError(f"rules/lang: months: no language file gives month names (looked in {lang_dir})")
    try:
        grammar = build_grammar(vocab)
    except (re.error, ValueError) as exc:
        raise RuleError(f"rules/lang: cannot build the date grammar: {exc}") from None
    log.debug("loaded %d rules and languages %s from %s", len(rules), ", ".join(languages), folder)
    return RuleSet(rules=tuple(rules), grammar=grammar, languages=tuple(languages))


def _has_phrase(text: str, phrase: str) -> bool:
    """`phrase` in `text` (both lower-case, single-spaced) on word boundaries; str.find keeps this fast."""
    start = text.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        if (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return True
        start = text.find(phrase, start + 1)
    return False


def _match_at(regex: re.Pattern[str], text: str, words: tuple[str, ...]) -> bool:
    """regex.search(text) is not None, for a regex whose every match starts with one of `words` (see _hints)."""
    for word in words:
        at = text.find(word)
        while at >= 0:
            if regex.match(text, at):  # (a look-behind or \b at its start still sees the text before `at`)
                return True
            at = text.find(word, at + 1)
    return False


@dataclass(frozen=True)
class Places:
    """What rules look at, prepared once per message."""

    subject: str
    body: str
    subject_lower: str
    body_lower: str
    subject_words: frozenset[str]  # _words(subject_lower)
    body_words: frozenset[str]


def places(msg: Message) -> Places:
    body = msg.text[:BODY_CHARS]
    subject = msg.subject[:1_000]
    subject_lower, body_lower = " ".join(subject.lower().split()), " ".join(body.lower().split())
    return Places(subject, body, subject_lower, body_lower, _words(subject_lower), _words(body_lower))


def rule_hits(msg: Message | Places, rule: Rule) -> tuple[bool, float]:
    """(hit, score) of one rule on one message."""
    p = msg if isinstance(msg, Places) else places(msg)
    raw = {"subject": p.subject, "body": p.body}
    lower = {"subject": p.subject_lower, "body": p.body_lower}
    words = {"subject": p.subject_words, "body": p.body_words}
    score = 0.0
    for cue, reach in zip(rule.cues, rule.reach, strict=True):
        if score + reach < rule.threshold:
            break  # the rest cannot make the rule hit: not worth looking
        hits = 0
        text, in_text = lower[cue.where], words[cue.where]
        for first, lead, group in cue.by_first_word:
            if hits >= cue.max_hits:
                break
            # One look for all the phrases that start with this word: a phrase found on word boundaries starts with
            # a whole run of letters and digits of the text, and a set lookup costs less than a pass over the text.
            if (lead not in in_text) if lead else (first not in text):
                continue
            for phrase in group:
                # A phrase found on word boundaries has each of its words among the text's: set lookups first
                if cue.phrase_words[phrase] <= in_text and _has_phrase(text, phrase):
                    hits += 1
        for regex, low, hint in zip(cue.regexes, cue.lowered, cue.hints, strict=True):
            if hits >= cue.max_hits:
                break
            if low is None:
                hits += 1 if regex.search(raw[cue.where]) else 0
            elif hint:  # tried only where one of its first words is: str.find is much cheaper than a regex pass
                hits += 1 if _match_at(low, lower[cue.where], hint) else 0
            else:
                hits += 1 if low.search(lower[cue.where]) else 0
        score += cue.weight * min(hits, cue.max_hits)
    if score < rule.threshold:
        return False, score
    # Vetoes are looked at only for a rule that would hit: most rules do not, and a veto costs a regex pass.
    for (where, regex), low, hint in zip(rule.vetoes, rule.vetoes_lowered, rule.veto_hints, strict=True):
        if low is None:
            vetoed = regex.search(raw[where]) is not None
        else:
            vetoed = _match_at(low, lower[where], hint) if hint else low.search(lower[where]) is not None
        if vetoed:
            return False, 0.0
    return True, score


def scores(msg: Message, rules: RuleSet) -> list[tuple[Rule, bool, float]]:
    """Every rule in order with (hit, score)."""
    p = places(msg)
    return [(rule, *rule_hits(p, rule)) for rule in rules.rules]


def classify(msg: Message, rules: RuleSet) -> tuple[str, tuple[str, ...]]:
    """(kind, names of every rule that hit): the first hit in priority order decides; no hit is 'other'."""
    hits = [rule for rule, hit, _ in scores(msg, rules) if hit]
    kind = hits[0].kind if hits else "other"
    return kind, tuple(r.name for r in hits)
