"""Reading deadlines, meetings, action items, links and a report summary out of a list post."""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.dates import (
    Grammar,
    RawDate,
    Resolved,
    TimeSpan,
    find_dates,
    find_times,
    find_zone,
    lower,
    resolve,
    zone_offset,
)
from bot.message import FORWARD_LINE, Message
from bot.rules import Rule, RuleSet, classify, scores

log = logging.getLogger(__name__)

# Bounds that keep analyze() linear and fast on hostile or huge posts: what lies beyond is not read.
MAX_TEXT = 200_000
MAX_LINE = 5_000
MAX_UNITS = 4_000
MAX_SENTENCES = 60  # per unit
MAX_DATES = 40  # per unit
MAX_DATES_TOTAL = 400  # per post: a real post has far fewer; a flood of dates is cut here, with a note
MAX_EXPLAIN = 300
CUE_REACH = 150  # a cue further than this from a date does not decide what the date is
WHAT_LEN = 140
TEXT_LEN = 300
INTRO_LEN = 200  # a line ending with a colon this short introduces what follows


@dataclass(frozen=True)
class Deadline:
    due: str
    what: str
    who: str | None
    approx: bool
    conflict: str | None
    past: bool
    text: str
    extended: bool = False  # the text says the deadline was extended/postponed/moved to this date


@dataclass(frozen=True)
class Meeting:
    start: str
    end: str | None
    what: str
    where: str | None
    approx: bool
    conflict: str | None
    past: bool
    text: str


@dataclass(frozen=True)
class ActionItem:
    who: str | None
    what: str
    due: str | None
    text: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Summary:
    title: str
    date: str
    sections: tuple[tuple[str, str], ...]  # (heading, one-line gist)
    decisions: tuple[str, ...]
    next_steps: tuple[str, ...]


@dataclass(frozen=True)
class Extraction:
    kind: str
    rules: tuple[str, ...]
    deadlines: tuple[Deadline, ...]
    meetings: tuple[Meeting, ...]
    action_items: tuple[ActionItem, ...]
    links: tuple[Link, ...]
    summary: Summary | None
    explain: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------------
# Text into units: wrapped lines joined, bullets, table rows and "Key: value" records kept apart.

_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]{1,2000}|www\.[^\s<>()\[\]\"'`]{1,2000}", re.IGNORECASE)
_MD_LINK = re.compile(r"\[([^\[\]\n]{0,300})\]\(([^()\s]{0,2000})\)")
_TAG = re.compile(r"<[^<>\n]{0,200}>")
_EMPH = re.compile(r"\*{1,3}|(?<!\w)_{1,3}|_{1,3}(?!\w)|`")
_WS = re.compile(r"\s+")
_BULLET = re.compile(r"^(?:[-*•·–▪◦+>]|\d{1,2}[.)]|[a-zA-Z][.)]|\(\w{1,3}\))\s+")
_HEADING = re.compile(r"^(?:#{1,6}\s*\S|(?:item|section|agenda item|annex)\s+[\w.]{1,6}\b)", re.IGNORECASE)
_KV = re.compile(r"^[A-Z][\w ./'-]{0,30}:\s+\S")
_HEADER_LINE = re.compile(
    r"^\*?(?:from|sent|date|to|cc|bcc|subject|de|envoyé|objet|enviado|asunto|para|von|gesendet|an|betreff)\*?\s?:",
    re.IGNORECASE,
)
_WROTE = re.compile(r"(?:wrote|a écrit|escribió|schrieb)\s?:\s*$", re.IGNORECASE)
# The space after a full stop: before a capital (group 1), or after a closing quote or bracket (group 2). Written from
# the stop rather than with a look-behind at each space, so that re's scan skips to the next '.', '!' or '?'.
_SENTENCE = re.compile(r"[.!?](?:(\s+)(?=[A-Z\"“#¿¡(])|[)\"”](\s+))")
_CLAUSE = re.compile(r";|\s(?:but|however|instead|pero|mais)\s", re.IGNORECASE)
_SUBJECT_TAGS = re.compile(r"^(?:\s*(?:\[[^\]]{0,60}\]|(?:re|fwd?|aw|tr|sv)\s*:))+\s*", re.IGNORECASE)
_SLOT = re.compile(r"^(?:[-*•·–]\s+)?\(?\d{1,2}(?:[:h.]\d\d)?\s?(?:[ap]\.?m\.?)?\s?(?:-|–|—|to)\s?\d{1,2}")
# "Session A: 13:00-14:30 UTC - topic", "Panel 2 - 09:00-10:00": a slot named before its hours (clock times only);
# "Time: 14:00-15:00" is a field of the meeting above it, no slot
_NAMED_SLOT = re.compile(
    r"^(?:[-*•·–]\s+)?(?!(?:Time|Times|Hours|When|Date|Heure|Heures|Horaire|Hora|Horario)\s?[:–—-])"
    r"[A-Z][\w'’-]{0,15}(?:\s[\w'’-]{1,6}){0,2}\s?(?::|[-–—])\s{1,3}"
    r"(?=\(?\d{1,2}[:h.]\d\d\s?(?:[ap]\.?m\.?)?\s?(?:-|–|—|to)\s?\d{1,2}[:h.]\d\d)"
)
# "All times are UTC", "All times below are Lusaka local time (CAT, UTC+2)"
_ALL_TIMES = re.compile(
    r"(?i:all times (?:below |above )?(?:are |shown |given )?(?:in )?|times (?:are )?in )"
    r"(?:[A-Z][a-z]{2,20} (?i:local time),? )?\(?([A-Z][A-Za-z]{1,3}(?:[+-]\d{1,2})?)\b"
)
_YEAR = re.compile(r"(?<![\d/.:-])((?:19|20)\d\d)(?![\d/:-])")
_DATE_FIELD = re.compile(r"(?:^|;\s)(?:date|when|fecha|cuándo|quand)\s?:\s*$")
_CONF_URL = re.compile(r"zoom\.|webex\.|meet\.|teams\.|jitsi|bigbluebutton|gotomeeting|whereby\.", re.IGNORECASE)
_LINK_PARAM = re.compile(r"([?&](?:pwd|password|passcode|pin|pass)=)[^&#\s]+", re.IGNORECASE)


@dataclass
class _Unit:
    text: str  # cleaned and on one line
    section: int  # index of the last Markdown or numbered heading: a deadline repeated under another one is another
    context: str  # an introducing "label:" line this unit belongs to
    group: int | None  # set for each bullet under a date heading: they are separate items
    title: bool
    urls: tuple[str, ...] = ()
    label: str = ""  # "Camera ready due:" when the unit is "label: value"
    low: str = ""  # lower(text), for the word regexes
    record: bool = False  # "Key: value; Key: value" lines joined
    topic: int = 0  # index in the headings of the summary (Markdown, numbered, or a short line set apart)
    spans: list[tuple[int, int]] | None = None  # its sentences, found once (see _unit_sentences)

    def __post_init__(self) -> None:
        self.low = lower(self.text)


def _clean(line: str) -> tuple[str, list[str]]:
    """A line without URLs, markup and emphasis (URLs returned apart), whitespace folded."""
    urls: list[str] = []
    # The substitutions are set up only for a line that needs them: most lines are plain prose.
    if "](" in line:

        def keep_label(m: re.Match[str]) -> str:
            if m.group(2).startswith(("http://", "https://")):
                urls.append(m.group(2))
            return m.group(1)

        line = _MD_LINK.sub(keep_label, line)
    if "http" in line or "www." in line:

        def drop_url(m: re.Match[str]) -> str:
            urls.append(m.group(0).rstrip(".,;:"))
            return " "

        line = _URL.sub(drop_url, line)
    if "<" in line:
        line = _TAG.sub(" ", line)
    if "*" in line or "_" in line or "`" in line:
        line = _EMPH.sub("", line)
    return " ".join(line.split()), urls


# A line that ends on one of these words goes on in the next line.
_RULE_LINE = re.compile(r"[-+=|: ]{3,}")
_OPEN_END = re.compile(
    r"(?i)(?<!\w)(?:by|on|until|till|before|at|of|the|and|or|to|for|in|from|with|a|an|le|la|les|el|los|de|du|des|au|"
    r"hasta|avant|jusqu'au|than)$"
)


def _units(text: str, g: Grammar) -> tuple[list[_Unit], list[str]]:
    """The text as units (a paragraph, a bullet, a table row, a record), and the section titles."""
    lines = text[:MAX_TEXT].split("\n")
    n = len(lines)
    header = [":" in x[:40] and bool(_HEADER_LINE.match(x.strip())) for x in lines]
    skip = [
        (header[i] and ((i > 0 and header[i - 1]) or (i + 1 < n and header[i + 1])))
        or (lines[i].rstrip().endswith(":") and bool(_WROTE.search(lines[i][-40:])))
        for i in range(n)
    ]
    units: list[_Unit] = []
    titles: list[str] = [""]
    cur: list[str] = []
    cur_kind = ""
    cur_urls: list[str] = []
    context = ""
    date_heading = ""
    heading_fresh = False
    group = 0
    sec = 0
    prev_raw = ""
    table_head = ""
    last_indent = -1  # the indentation of the line above, when it was not blank
    hung = False

    def flush() -> None:
        nonlocal cur, cur_kind, cur_urls
        if cur:
            joined = " ".join(cur)
            # A short line without a full stop at the top of the post is its title ("Virtual meeting 25 May").
            is_title = (
                cur_kind == "plain" and len(units) < 3 and len(joined.split()) <= 8 and not re.search(r"[.!?:]$", joined)
            )
            grp = None
            if date_heading and cur_kind in ("bullet", "plain"):
                joined = f"{date_heading} {joined}"
                grp = group
            units.append(
                _Unit(joined, sec, context, grp, is_title, tuple(cur_urls), record=cur_kind == "kv", topic=len(titles) - 1)
            )
        cur, cur_kind, cur_urls = [], "", []

    for i, raw in enumerate(lines[: MAX_UNITS * 4]):
        if len(units) >= MAX_UNITS:
            break
        if skip[i]:
            flush()
            last_indent = -1
            continue
        line = raw[:MAX_LINE]
        if "](" in line or "http" in line or "www." in line or "<" in line or "*" in line or "_" in line or "`" in line:
            s, urls = _clean(line)
        else:  # most lines are plain prose: nothing for _clean to take out
            s, urls = " ".join(line.split()), []
        if not s:
            if raw.strip():  # a line that was only a URL
                cur_urls.extend(urls)
                continue
            flush()
            prev_raw = ""
            last_indent = -1
            continue
        # Most lines go on a paragraph: a line that starts with a small letter (not "a) ", "b. ") cannot be a heading
        # (but "section 3", "item 4"), a bullet, a slot or a field; without ':' at its end or '|' it is no label, date
        # heading or table row. It joins the paragraph or item above as the end of this loop would.
        goes_on = (
            cur and (cur_kind == "plain" or cur_kind == "bullet")
            and "a" <= s[0] <= "z" and s[1:2] != "." and s[1:2] != ")" and (s[0] not in "ias" or _HEADING.match(s) is None)
            and not s.endswith(":") and "|" not in s
            and not prev_raw.rstrip(")\"”*").endswith((".", "!", "?")) and not (len(prev_raw) < 30 and prev_raw.endswith(","))
        )
        if goes_on and cur_kind == "plain":  # (only an item's lines hang: a paragraph's indentation is not looked at)
            heading_fresh = hung = False
            cur.append(s)
            cur_urls.extend(urls)
            prev_raw = s
            continue
        # "  Session A: 13:00-14:30 UTC - cooperation between" / "             CSIRTs and law enforcement": a line
        # indented deeper than the item above it (or as deep as a line that already hung from it) goes on with it.
        indent = len(raw) - len(raw.lstrip(" \t"))
        hung = bool(
            cur and cur_kind in ("bullet", "kv") and last_indent >= 0
            and (indent > last_indent + 1 or (hung and indent == last_indent))
            and not _item_start(s, True)
        )
        last_indent = indent
        if hung:
            cur.append(s)
            cur_urls.extend(urls)
            prev_raw = s
            continue
        if goes_on:
            heading_fresh = False
            cur.append(s)
            cur_urls.extend(urls)
            prev_raw = s
            continue
        strong = (
            bool(_HEADING.match(s)) and s.count(" | ") < 2  # "# | Task | Who | When" heads a table
            # "the comments so far are in" / "Annex II. The group will ...": a wrapped sentence, not a heading
            and not (cur and s[0] != "#" and _OPEN_END.search(prev_raw[-12:]) is not None)
        )
        soft = (
            not strong
            and len(s) <= 60
            and re.sub(r"^\d{1,2}\.\s+", "", s)[:1].isupper()
            and not re.search(r"[.!?:;,]$", s)
            and len(s.split()) <= 8
            and (not _BULLET.match(s) or re.match(r"\d{1,2}\.\s+[A-Z]", s) is not None)
            and "|" not in s
            and (
                ((i == 0 or not lines[i - 1].strip()) and (i + 1 >= n or not lines[i + 1].strip()))
                # "2. Background paper" over its paragraph
                or (
                    re.match(r"\d{1,2}\.\s+[A-Z]", s) is not None
                    and i + 1 < n
                    and bool(lines[i + 1].strip())
                    and not _BULLET.match(lines[i + 1].strip())
                )
            )
        )
        if strong or soft:
            flush()
            titles.append(s.lstrip("#").strip())
            sec += 1 if strong else 0
            context, date_heading = "", ""
            units.append(_Unit(s.lstrip("#").strip(), sec, "", None, True, tuple(urls), topic=len(titles) - 1))
            prev_raw = s
            continue
        # "25 September:" over its items. Only a line ending in ':' and an item line (below) are read for a date that
        # stands alone: most lines are neither, and the test reads the line for dates.
        is_date_heading = len(s) <= 40 and s.endswith(":") and _only_date(s, g)
        if is_date_heading:
            flush()
            date_heading = s
            heading_fresh = True
            group += 1
            prev_raw = s
            continue
        if (prev_raw.startswith("|") or prev_raw.count(" | ") >= 2) and _RULE_LINE.fullmatch(s):
            continue  # "----+--------" under a table's head row: the rows below it are still under that head
        if s.startswith("|") or s.count(" | ") >= 2:
            flush()
            cells = [c.strip() for c in s.strip("|").split("|")]
            row = " | ".join(c for c in cells if c)
            # an HTML table comes with a blank line between its rows: the row above that blank line still heads it
            above = prev_raw or (lines[i - 2].strip() if i >= 2 and not lines[i - 1].strip() else "")
            if not (above.startswith("|") or above.count(" | ") >= 2):
                table_head = row  # "| Item | Due |" says what the dates in the rows below it are
                units.append(_Unit(row, sec, context, None, False, tuple(urls), topic=len(titles) - 1))
            else:
                units.append(_Unit(row, sec, table_head, None, False, tuple(urls), topic=len(titles) - 1))
            prev_raw = s
            continue
        if (
            _item_start(s, cur_kind != "kv")
            and not (len(s) <= 40 and _only_date(s, g))
            # "...held on Sept 14th from" / "8:30am to 5pm EAT at the hotel", "...on Thursday 24 June 2021," /
            # "13:00-14:30 UTC.": a wrapped line, not an agenda slot
            and not (
                cur and cur_kind == "plain"
                and (_OPEN_END.search(prev_raw[-12:]) is not None or (prev_raw.endswith(",") and not _BULLET.match(s)))
            )
        ):
            flush()
            heading_fresh = False
            if date_heading:
                group += 1
            cur, cur_kind, cur_urls = [s], "bullet", list(urls)
            prev_raw = s
            continue
        # "...sign up below by" / "Monday 21 September COB, with your areas:": a wrapped sentence goes on; its
        # last line is no label even when it ends with a colon.
        if (
            s.endswith(":") and len(s) < 100
            and not (cur and cur_kind == "plain" and _OPEN_END.search(prev_raw[-12:]) is not None)
        ):
            flush()
            if not is_date_heading:
                context = s
                date_heading = ""
            # "Register here by April 6:" has its own date: a whole item, not the label of the line below it.
            cur, cur_kind, cur_urls = [s], "plain" if find_dates(s, g) else "label", list(urls)
            if cur_kind == "plain":
                flush()
            prev_raw = s
            continue
        if _KV.match(s) and not cur_kind == "bullet":
            if cur_kind != "kv":
                flush()
                cur_kind = "kv"
            cur.append(s if not cur else "; " + s)
            cur_urls.extend(urls)
            prev_raw = s
            continue
        if cur_kind == "label":
            # "Paper submission due:" then "July 31, 2023": one unit, the label says what the date is.
            label = cur[0]
            cur.append(s)
            cur_urls.extend(urls)
            flush()
            units[-1].label = label.rstrip(":")
            prev_raw = s
            continue
        joinable = (
            cur
            # a wrapped field goes on: "ACTION: Editors to publish the draft by" / "10 July." is one field
            and (cur_kind in ("plain", "bullet") or (
                cur_kind == "kv" and (s[:1].islower() or _OPEN_END.search(prev_raw[-12:]) is not None)
            ))
            and not prev_raw.rstrip(")\"”*").endswith((".", "!", "?"))
            and not (len(prev_raw) < 30 and prev_raw.endswith(","))  # "Dear all," is a line of its own
        )
        if not joinable:
            flush()
            cur_kind = "plain"
            # Under a date heading: the line right after it belongs to it; prose after its bullets ends it.
            if date_heading and not heading_fresh:
                date_heading = ""
            if len(s) >= 100:
                context = ""
        heading_fresh = False
        cur.append(s)
        cur_urls.extend(urls)
        prev_raw = s
    flush()
    return units, titles


def _item_start(s: str, named: bool) -> bool:
    """s starts a bullet or an agenda slot (with named: also a named slot). A line led by a letter is a bullet only as
    "a) " or "B. ", and a slot only when named and led by a capital: the patterns are tried only where they can hold."""
    c = s[0]
    if "a" <= c <= "z" or "A" <= c <= "Z":
        return bool(
            (s[1:2] in (".", ")") and _BULLET.match(s)) or (named and c <= "Z" and _NAMED_SLOT.match(s))
        )
    return bool(_BULLET.match(s) or _SLOT.match(s) or (named and _NAMED_SLOT.match(s)))


def _only_date(s: str, g: Grammar) -> bool:
    """The line is a date and nothing else ('25 September:', 'Monday, 3 May 2021')."""
    if len(s) > 40:
        return False
    found = find_dates(s, g)
    return len(found) == 1 and not re.sub(r"[\s:,.()\-–]", "", s[: found[0].start] + s[found[0].end :])


# ---------------------------------------------------------------------------------------------------------------
# Cues around one date


@dataclass(frozen=True)
class _Cue:
    kind: str
    start: int
    end: int
    word: str


def _cues(text: str, g: Grammar) -> list[_Cue]:
    out = []
    for kind, key in (("deadline", "deadline_cues"), ("meeting", "meeting_cues")):
        for m in g.cues[key].finditer(text):
            out.append(_Cue(kind, m.start(), m.end(), m.group(0)))
    return out


def _distance(c: _Cue, start: int, end: int) -> int:
    if c.end <= start:
        return start - c.end
    if c.start >= end:
        return c.start - end
    return 0


# A full stop after these does not end a sentence ("by 11:59 p.m. Eastern Time", "Sept. 20").
_ABBREVIATIONS = frozenset(
    "a.m. p.m. am. pm. i.e. e.g. etc. dr. mr. ms. mrs. prof. no. vs. approx. ca. st. hrs. min. jan. feb. mar. apr. "
    "jun. jul. aug. sep. sept. oct. nov. dec. mon. tue. wed. thu. fri. sat. sun. u.s. u.k. incl. ref. fig.".split()
)


def _unit_sentences(unit: _Unit) -> list[tuple[int, int]]:
    if unit.spans is None:
        unit.spans = _sentences(unit.text)
    return unit.spans


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    for m in _SENTENCE.finditer(text):
        start = m.start(1) if m.start(1) >= 0 else m.start(2)
        last = text[max(pos, start - 8) : start].rsplit(None, 1)
        if last and last[-1].lower() in _ABBREVIATIONS:
            continue
        spans.append((pos, start))
        pos = m.end()
        if len(spans) >= MAX_SENTENCES:
            return spans
    spans.append((pos, len(text)))
    return spans


def _mask(text: str, g: Grammar) -> str:
    """Credentials ('password: x', 'passcode 1234', '?pwd=') replaced by ****."""
    # Most text holds no credential word: an ASCII text (whose case the pattern folds as lower() does) is looked at
    # only when one of their last words is in it.
    low = text.lower()
    if not text.isascii() or any(word in low for word in g.credential_ends):
        text = g.credential.sub(lambda m: m.group(1) + (m.group(2) or " ") + "****", text)
    return _LINK_PARAM.sub(r"\1****", text) if "=" in text else text


def _short(text: str, limit: int) -> str:
    cut_raw = len(text) > limit * 8  # fold the spaces of the head only: a 1 MB "sentence" costs no more than a short one
    text = _WS.sub(" ", text[: limit * 8] if cut_raw else text).strip(" -–—:;,.|")
    if len(text) <= limit and not cut_raw:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + "…"


_DANGLING = re.compile(
    r"(?:(?:^|\s)(?:on|at|by|until|till|from|to|before|in|the|of|for|and|or|between|le|la|el|del|de|du|au|à|a|las|hasta"
    r"|jusqu'à|jusqu'au|avant|d'ici|antes|au plus tard|a más tardar|no later than|not later than))+\s*$",
    re.IGNORECASE,
)


_NOT_A_FIELD = re.compile(
    r"(?i)(?:friendly |quick |final |gentle )?reminder|(?:please )?note|nb|n\.b\.|ps|p\.s\.|fyi|update|important|news"
    r"|upcoming|coming up|save the date|next|new|announcement|heads-up"
    r"|attention|heads up|recordatorio|rappel|nota|aviso|avis"
    r"|(?:for|to|as|in|on|if|when|we|our|please|dear|hi|hello|and|but|so|also|then|after|before)\s.*"
)


def _what(sentence: str, spans: list[tuple[int, int]], unit: _Unit, fallback: str, *, record: bool = True) -> str:
    """What an item is: its label, else its sentence without the date, the times and the words that led to them."""
    if unit.label:
        return unit.label
    if unit.record and record and spans:
        # In "Submission deadline: June 1; Notification: July 15" the field's key says what the date is.
        a = spans[0][0]
        start = sentence.rfind("; ", 0, a) + 1
        end = sentence.find("; ", a)
        field_text = sentence[start : end if end >= 0 else len(sentence)]
        after = sentence[spans[0][1] : end if end >= 0 else len(sentence)]
        if after.lstrip().startswith(":") and after.strip(" :"):
            return _short(after.strip(" :"), WHAT_LEN)  # "6 April: registration": the words after the date say it
        key = field_text.split(":", 1)[0].strip()
        # "Reminder: the call is on ...", "For those travelling: ...": words that head a line, not a field that
        # names the date.
        if key and ":" in field_text and not _NOT_A_FIELD.fullmatch(key):
            return fallback if re.fullmatch(r"(?i)date|when|time|fecha|quand", key) else _short(key, WHAT_LEN)
    parts = []
    pos = 0
    for a, b in sorted(spans):
        if a < pos:
            continue
        parts.append(_DANGLING.sub("", sentence[pos:a]))
        pos = b
    parts.append(sentence[pos:])
    text = " ".join(p.strip(" ,;") for p in parts if p.strip(" ,;"))
    text = _LEAD_MARK.sub("", text.strip())
    text = _EMPTY_BRACKETS.sub(" ", text)
    if text.count("(") != text.count(")"):  # a bracket left open or closed by the cut-out date or time
        text = _balance(text)
    if "(" in text:  # "(15:00 CET)": the time again in another zone
        text = _TIMES_AGAIN.sub(" ", text)
    text = _TRAILING_WORD.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    text = _short(text, WHAT_LEN)
    return text or fallback


_LEAD_MARK = re.compile(r"^(?:[-*•·–▪◦+]|\d{1,2}[.)]|[a-z][.)])\s+")
_EMPTY_BRACKETS = re.compile(
    r"\((?:\s*(?:deadline|due|by|on|until|before|from|at|le|el|au|hasta|avant)(?!\w))?\s*[,;:]?\s*\)"
)
_TIMES_AGAIN = re.compile(r"\(\s?\d{1,2}(?:[:.h]\d\d|\s?[ap]\.?m\.?)[^()]{0,100}\)")
_TRAILING_WORD = re.compile(
    r"\s(?:on|at|by|until|till|from|to|before|in|the|of|for|and|is|are|will be|will take place|,)(?=\s*(?:[,.;:)]|$))"
)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+(?=[,;.])")


# Where one clause of a sentence ends and the next begins ("register by 6 April, slides by 7 April").
_CLAUSE_BREAK = re.compile(
    r"\s?[;:]\s|,\s(?:(?:and|or|then|while|but|y|o|et|ou|mais|pero)\s)?|\s(?:and|or|then|while|whereas|y|et|ou)\s|\s[-–—]\s"
)


def _item_what(st: _State, unit: _Unit, lo: int, hi: int, prev_end: int, next_start: int,
               spans: list[tuple[int, int]]) -> str:
    """What one dated item in unit.text[lo:hi] is: with another date in the sentence, only its own clause speaks
    for it (the clause break nearest the other date); when that leaves nothing, the whole sentence does."""
    text = unit.text
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    w_lo, w_hi = lo, hi
    record = unit.record
    if record:
        # "Key dates: registration by 6 April, slides by 7 April": a key over several dates heads a list, it is no
        # field that names one date
        fs, fe = text.rfind("; ", lo, first), text.find("; ", last, hi)
        fs, fe = (lo if fs < 0 else fs + 2), (hi if fe < 0 else fe)
        record = not ((lo < prev_end and fs < prev_end) or (next_start < hi and next_start < fe))
    if not (unit.label or record):
        if prev_end > lo and prev_end <= first:
            breaks = list(_CLAUSE_BREAK.finditer(text, prev_end, first))
            w_lo = breaks[-1].end() if breaks else lo
        if next_start < hi and next_start >= last:
            breaks = list(_CLAUSE_BREAK.finditer(text, last, next_start))
            w_hi = breaks[-1].start() if breaks else hi
        # "register by 5 May; places are limited": a semicolon ends what the date is about
        semi = text.find("; ", last, w_hi)
        w_hi = semi if semi >= 0 else w_hi
        semi = text.rfind("; ", w_lo, first)
        if semi >= 0 and len(text[semi + 2 : first].split()) >= 2:  # not "...over 2 days; 15 and 16 November"
            w_lo = semi + 2
    if (w_lo, w_hi) != (lo, hi):
        inside = [(a - w_lo, b - w_lo) for a, b in spans if w_lo <= a and b <= w_hi]
        what = _what(text[w_lo:w_hi], inside, unit, "", record=record)
        if what:
            return what
    return _what(text[lo:hi], [(a - lo, b - lo) for a, b in spans], unit, st.subject_clean, record=record)


def _balance(text: str) -> str:
    """Drop the brackets that lost their partner."""
    out: list[str] = []
    opened: list[int] = []
    for ch in text:
        if ch == "(":
            opened.append(len(out))
        elif ch == ")":
            if not opened:
                continue
            opened.pop()
        out.append(ch)
    for pos in reversed(opened):
        del out[pos]
    return " ".join("".join(out).split())


def _who(sentence: str, g: Grammar) -> str | None:
    m = g.action.search(sentence)
    if not m:
        return None
    return (m["at"] or m["name"] or m["one"]).strip()


# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _State:
    msg: Message
    rules: RuleSet
    kind: str
    ref: date
    deadlines: list[tuple[tuple[Any, ...], Deadline]] = field(default_factory=list)
    meetings: list[Meeting] = field(default_factory=list)
    timed_days: set[str] = field(default_factory=set)
    explain: list[str] = field(default_factory=list)
    subject_clean: str = ""
    conf_url: str | None = None  # the post's one video-conference link, if it has exactly one
    slot_day: date | None = None  # the day of the meeting just read: agenda lines below it are its slots
    default_zone: re.Match[str] | None = None  # from "All times are UTC"
    local_zone: re.Match[str] | None = None  # from "09:00 local time (UTC+3)": what a later bare "local time" is
    subject_meeting: bool = False  # the subject names a meeting and no deadline ("Coordination call next week?")
    plain_days: set[tuple[int, int]] = field(default_factory=set)  # (month, day) written without a weekday
    cancelled_days: set[tuple[Any, ...]] = field(default_factory=set)  # days the subject says are cancelled
    slot_units: set[int] = field(default_factory=set)  # id() of the units read as agenda slots of a dated day
    list_end: int | None = None  # the end of the last date of the list the date being read belongs to
    intro: str = ""  # the line just before the unit being read, when it ends with a colon ("Proposed slots for a call:")
    in_forward: bool = False  # the unit being read is in a forwarded message
    forwarded: set[tuple[Any, ...]] = field(default_factory=set)  # the keys of deadlines read in a forwarded message


def analyze(msg: Message, rules: RuleSet, *, now: datetime | None = None) -> Extraction:
    """Classify the post and read what it announces. Never raises on any text; `now` is not needed (msg.date is)."""
    try:
        return _analyze(msg, rules)
    except Exception:  # a bug must not lose the post: log it, classify, extract nothing
        log.exception("%s: extraction failed", msg.message_id)
        try:
            kind, hits = classify(msg, rules)
        except Exception:
            kind, hits = "other", ()
        return Extraction(kind, hits, (), (), (), (), None, ("extraction failed: see the log",))


@dataclass(frozen=True)
class _Read:
    """What does not depend on the kind: a post read again as another kind reuses it (half the time of a pass)."""

    scored: list[tuple[Rule, bool, float]]
    units: list[_Unit]
    titles: list[str]
    found: list[list[RawDate]]  # the dates of each unit, up to MAX_DATES_TOTAL in all


def _read(msg: Message, rules: RuleSet) -> _Read:
    g = rules.grammar
    scored = scores(msg, rules)
    units, titles = _units(msg.text, g)
    found: list[list[RawDate]] = []
    total = 0
    for unit in units:
        if total >= MAX_DATES_TOTAL:
            break
        found.append(find_dates(unit.text, g, unit.low)[:MAX_DATES])
        total += len(found[-1])
    return _Read(scored, units, titles, found)


def _analyze(msg: Message, rules: RuleSet, not_kinds: frozenset[str] = frozenset(), read: _Read | None = None
             ) -> Extraction:
    g = rules.grammar
    read = read or _read(msg, rules)
    scored = read.scored
    hits = tuple(rule.name for rule, hit, _ in scored if hit)
    kind = next((rule.kind for rule, hit, _ in scored if hit and rule.kind not in not_kinds), "other")
    st = _State(msg, rules, kind, msg.date.date(), subject_clean=_SUBJECT_TAGS.sub("", msg.subject).strip())
    for rule, hit, score in scored:
        if hit:
            st.explain.append(f"rule {rule.name} hit (score {score:g} >= {rule.threshold:g}): {rule.description}")
    if not_kinds:
        st.explain.append(f"not {', '.join(sorted(not_kinds))}: an invitation that names no due date")
    first = next((r.name for r, hit, _ in scored if hit and r.kind == kind), None)
    st.explain.append(f"kind: {kind}" + (f" (first hit: {first})" if first else " (no rule hit)"))
    units, titles = read.units, read.titles
    subject_low = lower(st.subject_clean)
    st.subject_meeting = bool(g.cues["meeting_cues"].search(subject_low)) and not g.cues["deadline_cues"].search(subject_low)
    head = msg.text[:MAX_TEXT]
    said = _ALL_TIMES.search(head) if ("times" in head or "Times" in head or "TIMES" in head) else None
    if said:
        st.default_zone = g.zone_re.match(said.group(1))
    conf = {u for unit in units for u in unit.urls if _CONF_URL.search(u)}
    st.conf_url = conf.pop() if len(conf) == 1 else None
    found = read.found
    # Days written without a weekday, here or in the subject: they outweigh a weekday that contradicts them.
    st.plain_days = {(r.month, r.day) for dates in found for r in dates if r.form == "date" and r.weekday is None}
    st.plain_days |= {(r.month, r.day) for r in find_dates(st.subject_clean, g)[:5] if r.form == "date"}
    # "Fwd: Editors' retreat 14-15 May cancelled": the days written next to the cancel word are off, also where the
    # body names them without one ("which affects the retreat we had booked for 14-15 May")
    for r in find_dates(st.subject_clean, g)[:5]:
        if r.form == "date" and g.cues["cancel_cues"].search(subject_low[max(0, r.start - 20) : r.end + 20]):
            st.cancelled_days.add((r.month, r.day, r.month2, r.day2))
    index = 0
    for index_u, (unit, dates) in enumerate(zip(units, found, strict=False)):
        if index >= MAX_DATES_TOTAL:
            st.explain.append(f"more than {MAX_DATES_TOTAL} dates: the rest of the post is not read")
            break
        # A table or list right under "Proposed slots for a 45-minute call:" that the units did not tie to it
        prev = units[index_u - 1].text if index_u and not unit.context else ""
        prev = _LAST_SENTENCE.split(prev[-INTRO_LEN - 1 :])[-1] if prev.endswith(":") else ""
        st.intro = prev if len(prev) <= INTRO_LEN else ""
        if FORWARD_LINE.match(unit.text):
            st.in_forward = True
        if not dates:
            if st.slot_day is not None and (_SLOT.match(unit.text) or _NAMED_SLOT.match(unit.text)):
                st.slot_units.add(id(unit))
                _slot(st, unit, st.slot_day)
            elif not unit.title and not unit.text.endswith(":"):
                # (a line ending in ':' introduces what follows: "Programme (times in UTC+2):" over the slots)
                st.slot_day = None
            continue
        st.slot_day = None
        sentences = _unit_sentences(unit)
        taken = len(st.meetings) + len(st.deadlines)
        runs = _date_lists(unit.low, dates)
        for i, raw in enumerate(dates):
            lo, hi = _sentence_of(sentences, raw, len(unit.text))
            run_first, run_last = runs[i]
            # "on 12 May, 26 May and 9 June, each at 14:00 UTC": the dates of a list share what is said around it
            prev_end = max(lo, dates[run_first - 1].end if run_first > 0 else lo)
            next_start = min(hi, dates[run_last + 1].start if run_last + 1 < len(dates) else hi)
            st.list_end = dates[run_last].end if run_last > i else None
            _take(st, unit, raw, lo, hi, prev_end, next_start, index)
            st.list_end = None
            index += 1
        if len(dates) == 1 and st.slot_day is None and len(unit.text) <= 80 and taken == len(st.meetings) + len(st.deadlines):
            # A dated heading with nothing else ("Day 2 - Tuesday 3 August (UTC+8)"): timed agenda lines under it are
            # slots on that day (_slot still wants a zone for each).
            res = resolve(dates[0], st.ref)
            if res is not None and res.last is None and not res.approx:
                st.slot_day = res.first
    _weekdays_in_ranges(st, units, g)
    # The subject is read only when the body gave nothing: "Reminder: comments due 5 May" over a short note.
    if kind in ("meeting_invitation", "call_for_contributions", "announcement") and not st.meetings and not st.deadlines:
        subject_unit = _Unit(_clean(st.subject_clean)[0], 0, "", None, False)
        for raw in find_dates(subject_unit.text, g)[:5]:
            _take(st, subject_unit, raw, 0, len(subject_unit.text), 0, len(subject_unit.text), index)
            index += 1
    if len(st.explain) > MAX_EXPLAIN:
        st.explain[MAX_EXPLAIN - 1 :] = [f"... and {len(st.explain) - MAX_EXPLAIN + 1} more lines"]
    deadlines = _subject_due_disagrees(st, _superseded_by_extension(st))
    meetings = tuple(m for m in st.meetings if not (m.start in st.timed_days and len(m.start) == 10 and not _multi_day(m)))
    if kind == "meeting_invitation":
        meetings = _subject_disagrees(st, meetings)
    if kind == "call_for_contributions" and not deadlines and "meeting_invitation" in {r.kind for r, hit, _ in scored if hit}:
        # An invitation whose agenda mentions a call ("call for volunteers", "call for change proposals") and names
        # no due date is an invitation.
        return _analyze(msg, rules, not_kinds | {kind}, read=read)
    if not hits:
        # No rule knew the wording, but a post that names a meeting or a due date ahead is no chatter ('other' is
        # "no dates"): what it names decides. A due date for comments, proposals, nominations... (in the subject, or
        # asked for in its sentence) makes a call, unless the post is about a call at a time and its subject asks for nothing;
        # a call at a time makes an invitation; events on days and other due dates are news. Replies are 'other' by
        # their own rule and stay so. Only the label changes: the items stay those read without a kind's own guesses
        # (the careful reading).
        ahead = [m for m in meetings if not m.past]
        due = [d for d in deadlines if not d.past and not d.approx]
        asks = g.cues["contribution_cues"]
        # "Two working sessions on the naming proposal": a subject that names a meeting names its topic, it asks for
        # nothing
        subject_asks = asks.search(subject_low) is not None and not g.cues["meeting_cues"].search(subject_low)
        # "This week's call CANCELLED": news of a cancellation, even when the post names the next call
        subject_cancels = g.cues["cancel_cues"].search(subject_low) is not None
        asking = g.cues["request_cues"]
        wanted = [d for d in due if subject_asks or (asks.search(low := lower(d.text)) and asking.search(low))]
        timed = any(len(m.start) > 10 for m in ahead)
        # "Present: ... / Regrets: ..." over decisions: notes of a call that took place, whatever comes next
        noted = next((score for rule, _, score in scored if rule.kind == "meeting_report"), 0.0) >= REPORT_CUES
        if noted:
            kind = "meeting_report"
        elif wanted and (subject_asks or not timed):
            kind = "call_for_contributions"  # a due date for what the list is asked to send
        elif timed and not subject_cancels:
            kind = "meeting_invitation"  # a call at a time
        elif ahead or due:
            kind = "announcement"  # events on days, due dates: news
        if kind != "other":
            named = {"meeting_invitation": "names a timed meeting ahead",
                     "call_for_contributions": "names a due date for contributions ahead",
                     "meeting_report": "reads as the notes of a meeting"}.get(kind, "names an event or a due date ahead")
            at = next((i for i, line in enumerate(st.explain) if line.startswith("kind: ")), 0)
            st.explain[at] = f"kind: {kind} (no rule hit, but the post {named})"
            st.kind = kind  # a report's action items are read below
    actions = _action_items(st, units, g)
    links = _links(msg.text, g)
    summary = _summary(st, units, titles, g) if kind == "meeting_report" else None
    return Extraction(kind, hits, deadlines, meetings, actions, links, summary, tuple(st.explain))


def _superseded_by_extension(st: _State) -> tuple[Deadline, ...]:
    """The deadlines, less those of a forwarded message that the sender's own extension moves later.

    "The deadline has been extended to 31 July" over a forwarded call that says "Deadline: 17 July": the old date
    would send a reminder for a deadline that no longer holds."""
    extended = [d.due for k, d in st.deadlines if d.extended and not d.past and k not in st.forwarded]
    if not extended:
        return tuple(d for _, d in st.deadlines)
    new = max(extended)
    out = []
    for k, d in st.deadlines:
        if k in st.forwarded and not d.extended and not d.approx and d.due < new:
            st.explain.append(f"deadline {d.due} (forwarded): not taken: the post extends a deadline to {new}")
            continue
        out.append(d)
    return tuple(out)


_LAST_SENTENCE = re.compile(r"(?<=[.!?])\s")
# "...; Deadline for agenda items: " right before a date: the key of a 'Key: date' field
_FIELD_KEY = re.compile(r"(?:^|[;.]\s)\s{0,2}([^;:.]{1,60}):\s{0,3}$")
_IS_NOW = re.compile(r"(?<!\w)(?:is|are|will)\s{1,2}now\s{1,2}(?:be\s{1,2})?(?:on\s{1,2}|the\s{1,2})?$")
_THAN = re.compile(r"(?<!\w)than\s{0,2}$")  # not Romance 'que': it also just introduces a clause
_FROM_END = re.compile(r"(?<!\w)(?:from|de|du|del|desde)\s{0,2}$")  # "postponed from 20 May": the old day
# "we must postpone the workshop that was scheduled for 9 June": in a postponement, the day it was planned for
_PLANNED_FOR = re.compile(
    r"(?<!\w)(?:planned|scheduled|foreseen|set|prevista|previsto|programada|programado|marcada|marcado|prévue|prévu)"
    r"\s{1,2}(?:for|on|para|pour|le)\s{1,2}(?:this\s{1,2}|next\s{1,2})?$"
)
_NEW_DATE_PREP = re.compile(r"(?<!\w)(?:to|until|till|à|au|al|hasta|a)\s{1,2}(?:the\s{1,2}|el\s{1,2}|le\s{1,2})?$")
_LAST_WEEKDAY = re.compile(r"(?:last|past|previous|dernier|pasado|del pasado)\s{1,2}$")


# A post no rule knows with this much of the report rule's evidence (two of its body phrases) is a report.
REPORT_CUES = 2
SENTENCE_REACH = 1_000  # a "sentence" is read this far on each side of its date: prose without full stops stays cheap


# Between two dates of a list: "12 May, 26 May and 9 June", "3 or 4 June"
_LIST_JOIN = re.compile(r"\s{0,2}(?:,\s{0,2}(?:and\s|or\s|et\s|ou\s|y\s|o\s)?|\s(?:and|or|et|ou|y|o|&)\s)\s{0,2}")


def _date_lists(low: str, dates: list[RawDate]) -> list[tuple[int, int]]:
    """Per date, (first, last) index of the list of plain days it belongs to (itself alone when in none)."""
    out = [(i, i) for i in range(len(dates))]
    i = 0
    while i < len(dates):
        j = i
        while (
            j + 1 < len(dates) and dates[j].form == dates[j + 1].form == "date"
            and dates[j].day2 is None and dates[j + 1].day2 is None
            and _LIST_JOIN.fullmatch(low, dates[j].end, dates[j + 1].start) is not None
        ):
            j += 1
        for k in range(i, j + 1):
            out[k] = (i, j)
        i = j + 1
    return out


def _sentence_of(sentences: list[tuple[int, int]], raw: RawDate, n: int) -> tuple[int, int]:
    lo, hi = next(((a, b) for a, b in sentences if a <= raw.start < b), (0, n))
    return max(lo, raw.start - SENTENCE_REACH), min(hi, raw.end + SENTENCE_REACH)


# The words that join two days into one event ("14-15 May", "14 and 15 May"), not a period or a move
_DAYS_JOINED = ("-", "&", "and", "y", "et", "e")


def _subject_day(st: _State) -> date | None:
    """The one plain date of the subject, unless the subject itself says a day changed ("Call on 12 March moved to
    Friday", "deadline extended to 30 May")."""
    g = st.rules.grammar
    subject_low = lower(st.subject_clean)
    if g.cues["postpone_cues"].search(subject_low) or g.cues["extension_cues"].search(subject_low):
        return None
    said = [r for r in find_dates(st.subject_clean, g)[:3] if r.form == "date" and r.day2 is None]
    res = resolve(said[0], st.ref) if len(said) == 1 else None
    return res.first if res is not None else None


def _subject_conflict(st: _State, said: date, text_day: str) -> str:
    """Why the subject's day and the text's disagree (the text, which says more, is taken), noted in the explanation."""
    why = f"the subject says {said.isoformat()} but the text says {text_day}; taking the text's"
    if len(st.explain) < MAX_EXPLAIN:
        st.explain.append(f"'{_short(st.subject_clean, 40)}': CONFLICT: {why}")
    return why


def _subject_disagrees(st: _State, meetings: tuple[Meeting, ...]) -> tuple[Meeting, ...]:
    """'Call on 12 March' over a body whose one meeting is on 13 March: two dates for one call, flagged."""
    ahead = [m for m in meetings if not m.past]
    if len(ahead) != 1 or ahead[0].conflict:
        return meetings
    said = _subject_day(st)
    body_day = date.fromisoformat(ahead[0].start[:10])
    if said is None or said == body_day or abs((said - body_day).days) > 3:
        return meetings
    why = _subject_conflict(st, said, body_day.isoformat())
    return tuple(replace(m, conflict=why) if m is ahead[0] else m for m in meetings)


def _subject_due_disagrees(st: _State, deadlines: tuple[Deadline, ...]) -> tuple[Deadline, ...]:
    """'feedback due 12 June' in the subject over a body whose due date is Monday 15 June: two dates for one due date,
    flagged."""
    if not st.rules.grammar.cues["deadline_cues"].search(lower(st.subject_clean)):
        return deadlines
    said = _subject_day(st)
    if said is None:
        return deadlines
    ahead = [d for d in deadlines if not d.past and not d.approx]
    if any(d.due == said.isoformat() for d in ahead):
        return deadlines
    near = [d for d in ahead if abs((date.fromisoformat(d.due) - said).days) <= 3]
    if len(near) != 1 or near[0].conflict:
        return deadlines
    why = _subject_conflict(st, said, near[0].due)
    return tuple(replace(d, conflict=why) if d is near[0] else d for d in deadlines)


def _weekdays_in_ranges(st: _State, units: list[_Unit], g: Grammar) -> None:
    """'Our session is on Wednesday at 15:00 UTC' inside a dated meeting week: that Wednesday, if it is a meeting."""
    ranges = []
    for m in st.meetings:
        if m.end and len(m.start) == 10 and len(m.end) == 10:
            first, last = date.fromisoformat(m.start), date.fromisoformat(m.end)
            if 0 < (last - first).days <= 6:
                ranges.append((first, last))
    if not ranges:
        return
    for unit in units[:MAX_DATES_TOTAL]:
        if id(unit) in st.slot_units:
            continue  # a slot's day is its heading's ("Thursday 12:00 in Wellington" is that day elsewhere)
        found = None
        for w in g.weekday_re.finditer(unit.low):
            if len(w["wd"]) < 5:  # "Sun", "Wed": too often something else
                continue
            if _LAST_WEEKDAY.search(unit.low, max(0, w.start() - 15), w.start()):
                continue  # "last Thursday's call": a day gone by, not one of the event's days
            if found is None:
                found = find_dates(unit.text, g, unit.low)
            if any(d.start <= w.start() < d.end for d in found):
                continue
            wd = g.weekdays[w["wd"]]
            days = {f + timedelta(days=k) for f, last in ranges for k in range((last - f).days + 1)}
            hits = [d for d in days if d.weekday() == wd]
            if len(hits) != 1:
                continue
            day = hits[0]
            raw = RawDate(w.start(), w.end(), unit.text[w.start() : w.end()], "date", day.year, day.month, day.day, wd)
            sentences = _unit_sentences(unit)
            lo, hi = _sentence_of(sentences, raw, len(unit.text))
            nxt = [d.start for d in found if d.start >= raw.end]
            prv = [d.end for d in found if d.end <= raw.start]
            _take(st, unit, raw, lo, hi, max([lo, *prv]), min([hi, *nxt]), 0, meeting_only=True)


def _zoned_time_after(st: _State, text: str, pos: int, end: int, *, span: bool = False) -> bool:
    """A clock time (with span: a range of hours) right after a date, with a zone written or given for the post."""
    g = st.rules.grammar
    times = find_times(text, g, pos, end)
    if not times or (span and times[0].h2 is None):
        return False
    return find_zone(text, g, times[0].end, limit=12) is not None or st.default_zone is not None


# "slides will be posted after the workshop on 5 May": the meeting word after these is when, not what, is published
_ANCHOR_PREP = re.compile(
    r"(?<!\w)(?:after|before|during|following|ahead of|at|in|at the end of|après|avant|pendant|después de|antes de|"
    r"durante|depois de)\s{1,2}(?:\w{1,12}\s{1,2}){0,2}$"
)


def _published_document(g: Grammar, cues: list[_Cue], seg: str, rs: int, re_: int) -> _Cue | None:
    """A publication word ('publish', 'be posted') before the date in its clause, when the nearest cue, a meeting word,
    stands between the two as its object: the date is when something is published, not when anyone meets."""
    c_lo, _ = _clause(seg, rs, re_)
    near = cues[0]
    for c in cues:
        if c.kind == "deadline" and c_lo <= c.start and c.end <= rs and g.cues["publication_cues"].fullmatch(c.word):
            if c.end <= near.start and near.end <= rs and not _ANCHOR_PREP.search(seg, c.end, near.start):
                return c
    return None


_POSSESSIVE = re.compile(r"['’]s\s{1,2}(?!deadline)")  # "today's comments", but "today's deadline" is due today
_CLOCK_GAP = re.compile(r"[^\d.;!?]{0,15}")  # between a clock change and its day: "on", "this year on", no other date


def _clock_change(g: Grammar, before: str, after: str) -> bool:
    """'daylight saving time starts on March 13', 'on 27 March the clocks go forward': the date only says when clocks
    change (a reason to check the time of a call), it is neither a meeting nor a due date."""
    ends = [m.end() for m in g.cues["clock_change_cues"].finditer(before)]
    if ends and _CLOCK_GAP.fullmatch(before, ends[-1]):  # the last one before the date, with little in between
        return True
    cue = g.cues["clock_change_cues"].search(after)
    return cue is not None and _CLOCK_GAP.fullmatch(after, 0, cue.start()) is not None


def _take(st: _State, unit: _Unit, raw: RawDate, lo: int, hi: int, prev_end: int, next_start: int, index: int,
          *, meeting_only: bool = False) -> None:
    """Decide what one date is (deadline, meeting, or nothing) and record it with the reason."""
    g = st.rules.grammar
    text, low = unit.text, unit.low
    sentence, sentence_low = text[lo:hi], low[lo:hi]
    seg = low[prev_end:next_start]
    rs, re_ = raw.start - prev_end, raw.end - prev_end  # the date inside seg
    quote = f"'{raw.text.strip()}'"
    history = bool(g.cues["history_cues"].search(seg))
    years = {int(y) for y in _YEAR.findall(text[lo:hi])} if raw.year is None else set()
    res = resolve(raw, st.ref, lean_past=history or bool(g.cues["past_tense"].search(low[lo:hi])), years=years)
    if res is None:
        st.explain.append(f"{quote}: no calendar day (a period, a fuzzy word that pins nothing, or no such date)")
        return
    if res.conflict and raw.weekday is not None and raw.day2 is None and (raw.month, raw.day) in st.plain_days:
        # "Monday 27 February" (a Tuesday) under the subject "Call on 27 February": the date written twice wins.
        alt = resolve(replace(raw, weekday=None), st.ref, lean_past=bool(g.cues["past_tense"].search(low[lo:hi])), years=years)
        if alt is not None and alt.conflict is None:
            res = replace(alt, conflict=(
                f"the text says {calendar.day_name[raw.weekday]} but {alt.first.isoformat()} is a "
                f"{calendar.day_name[alt.first.weekday()]}; the date is written again without the weekday, so taking "
                f"{alt.first.isoformat()}"
            ))
    before = low[max(prev_end, raw.start - 60) : raw.start]
    if g.vague_prep.search(before):
        st.explain.append(f"{quote}: not taken: it names a week, not a day")
        return
    if _THAN.search(before) and not g.deadline_prep.search(before):
        # "(an hour later in UTC than tomorrow)": a day named to compare with, not another event ("no later than"
        # is a deadline word and is read as one)
        st.explain.append(f"{quote}: not taken: a day named in a comparison")
        return
    if _clock_change(g, before, low[raw.end : min(next_start, raw.end + 30)]):
        st.explain.append(f"{quote}: not taken: the day the clocks change, a fact about time zones")
        return
    if g.superseded_prep.search(before) or (res.last is None and g.moved_prep.search(before) and _FROM_END.search(before)):
        # "not 17 March", "extended from 5 May" (without its "to ..."): the old date
        st.explain.append(f"{quote}: not taken: an old or wrong date that the text replaces")
        return
    strong = g.deadline_prep.search(before) is not None
    if strong and g.moved_prep.search(before) and g.cues["meeting_cues"].search(sentence_low) and not g.cues[
        "deadline_cues"
    ].search(sentence_low):
        strong = False  # "the call has been postponed to 12 May": a meeting that moved, not a deadline
    if not strong and g.weak_deadline_prep.search(before):
        strong = bool(
            g.cues["deadline_cues"].search(sentence_low) or g.cues["window_cues"].search(sentence_low)
            # "please add your topics to the agenda before the 16th": a request for something sent in, with a limit
            or (g.cues["request_cues"].search(sentence_low) and g.cues["contribution_cues"].search(sentence_low))
        )
    not_deadline = g.not_deadline_prep.search(before) is not None
    cues = [c for c in _cues(seg, g) if _distance(c, rs, re_) <= CUE_REACH]
    cues.sort(key=lambda c: (_distance(c, rs, re_), c.kind != "deadline"))
    ctx = " ".join(x for x in (unit.context, unit.label, st.intro) if x)
    ctx_cues = _cues(lower(ctx), g) if ctx else []
    if strong:
        prep = g.deadline_prep.search(before) or g.weak_deadline_prep.search(before)
        what_kind, why = "deadline", f"'{prep.group(0).strip() if prep else ''}' before it"
    elif unit.group is not None and ctx_cues:
        # A list under a date heading, introduced as "The following deadlines were set:": the intro says what they are.
        what_kind, why = ctx_cues[-1].kind, f"listed under '{_short(ctx, 60)}'"
    elif cues and (field_key := _FIELD_KEY.search(before)) and (
        key_cue := next(
            (c for c in _cues(field_key.group(1), g) if c.kind == "deadline" and g.deadline_prep.search(c.word)), None
        )
    ):
        # "Deadline for agenda items: Friday 8 May": a field whose key says 'deadline' or 'due' is a due date, whatever
        # meeting word the key also holds
        what_kind, why = "deadline", f"the field '{_short(field_key.group(1), 40)}' names '{key_cue.word}'"
    elif cues and (field_key := _FIELD_KEY.search(before)) and g.cues["contribution_cues"].search(
        field_key.group(1)
    ) and not g.cues["meeting_cues"].search(field_key.group(1)):
        # "Short papers (four pages): 7 September; Conference (hybrid): 21-23 October": a field whose key names what
        # is sent in is its due date, whatever event the next field names
        what_kind, why = "deadline", f"the field '{_short(field_key.group(1), 40)}' names what is sent in"
    elif cues and g.cues["publication_cues"].fullmatch(cues[0].word) and (
        event := next((c for c in cues if c.kind == "meeting"), None)
    ) and _zoned_time_after(st, text, raw.end, min(next_start, raw.end + 25)):
        # "we will hold an online launch on 18 January at noon ET": a launch held at a time with a zone is an event
        what_kind, why = "meeting", f"a '{cues[0].word}' at a zoned time, with '{event.word}'"
    elif cues and cues[0].kind == "deadline" and raw.form != "fuzzy" and (
        event := next((c for c in cues if c.kind == "meeting"), None)
    ) and _zoned_time_after(st, text, raw.end, min(next_start, raw.end + 25), span=True):
        # "an open call to go through the proposals received on 9 June, 13:00-14:30 UTC": a due date has one hour at most,
        # a span of hours with a zone is when people meet
        what_kind, why = "meeting", f"a span of hours with a zone, with '{event.word}'"
    elif cues and st.kind == "meeting_invitation" and raw.form != "fuzzy" and _DATE_FIELD.search(
        low[max(prev_end, raw.start - 12) : raw.start]
    ):
        # "Date : mardi 16 juin ; Horaire : ... ; Lieu : (le lien sera envoyé ...)": in an invitation the 'Date:' field
        # is the meeting's day, whatever word another field holds
        what_kind, why = "meeting", "a 'Date:' field in an invitation"
    elif cues and cues[0].kind == "meeting" and (
        pub := _published_document(g, cues, seg, rs, re_)
    ) and not find_times(text, g, raw.end, min(next_start, raw.end + 25)):
        # "we will publish the final agenda on Wednesday 3 June": the meeting word names what is published
        what_kind, why = "deadline", f"'{pub.word}' before it in its clause ('{cues[0].word}' is not what happens that day)"
    elif cues:
        what_kind, why = cues[0].kind, f"nearest cue '{cues[0].word}'"
    else:
        if ctx_cues:
            what_kind, why = ctx_cues[-1].kind, f"introduced by '{_short(ctx, 60)}'"
        elif (
            raw.form != "fuzzy" and _zoned_time_after(st, text, raw.end, min(next_start, raw.end + 25), span=True)
            and not g.cues["window_cues"].search(sentence_low)  # "the desk is open on 5 May from 9:00 to 17:00 CET"
        ):
            # "on Thursday, March 12 from 9:00 to 10:30 a.m. EDT": a span of hours with a zone is a meeting
            what_kind, why = "meeting", "no cue; a span of hours with a zone"
        elif st.kind == "call_for_contributions" and raw.form == "date":
            what_kind, why = "deadline", "no cue; in a call for contributions a date that is no event is the due date"
        elif st.kind == "meeting_invitation" and raw.form != "fuzzy" and (
            _DATE_FIELD.search(low[max(prev_end, raw.start - 12) : raw.start]) or find_times(text, g, raw.end, min(next_start, raw.end + 25))
        ):
            what_kind, why = "meeting", "no cue; in an invitation a 'Date:' field or a dated time is the meeting"
        elif raw.form != "fuzzy" and g.moved_prep.search(before) and g.cues["meeting_cues"].search(sentence_low):
            what_kind, why = "meeting", "no cue near it, but the meeting of its sentence moved to it"
        elif raw.form != "fuzzy" and _IS_NOW.search(before) and (sentence_cues := _cues(sentence_low, g)):
            # "The deadline, extended from 5 May, is now 12 May": the sentence's subject speaks for the new date
            what_kind, why = sentence_cues[0].kind, f"'{_short(before, 20)}' with '{sentence_cues[0].word}' in the sentence"
        elif raw.form != "fuzzy" and g.cues["weak_meeting_cues"].search(seg) and (
            res.last is None or (res.last - res.first).days <= 14  # "the pilot runs from May to August": a period
        ):
            # "the IGF in Kyoto runs from 8 to 12 October": words that make an event only when nothing else is near
            what_kind, why = "meeting", f"no cue but '{g.cues['weak_meeting_cues'].search(seg).group(0)}'"  # type: ignore[union-attr]
        elif raw.form != "fuzzy" and st.subject_meeting and _zoned_time_after(st, text, raw.end, min(next_start, raw.end + 25)):
            # "How about Wednesday 23 January at 16:00 CET?" under "Re: Coordination call next week?"
            what_kind, why = "meeting", "no cue; a date with a zoned time in a thread about a meeting"
        else:
            st.explain.append(f"{quote}: not taken: no deadline or meeting cue near it")
            return
    clause_lo, clause_hi = _clause(seg, rs, re_)
    clause = seg[clause_lo:clause_hi]
    past_day = res.first <= st.ref
    if history and past_day:
        st.explain.append(f"{quote}: not taken: history ('{g.cues['history_cues'].search(seg).group(0)}')")  # type: ignore[union-attr]
        return
    text_out = _mask(_short(sentence, TEXT_LEN), g)
    if meeting_only and what_kind != "meeting":
        st.explain.append(f"{quote}: not taken: a weekday inside a meeting's days, but not a meeting")
        return
    if what_kind == "deadline":
        if not_deadline and not strong and res.last is None:
            st.explain.append(f"{quote}: not taken: it starts or bounds something ('{before.strip()[-20:]}')")
            return
        opens = g.cues["start_cues"].search(clause)
        if opens and not strong:
            st.explain.append(f"{quote}: not taken: something opens that day ('{opens.group(0)}'), nothing is due")
            return
        if past_day and not strong and g.cues["publication_cues"].search(clause):
            only = [c for c in cues if c.kind == "deadline"]
            if all(g.cues["publication_cues"].fullmatch(c.word) for c in only):
                st.explain.append(f"{quote}: not taken: a publication on the day of the post is the post itself")
                return
        if raw.form == "relative" and _POSSESSIVE.match(low, raw.end):
            # "the chairs will merge today's feedback": what was said today, nothing falls due
            st.explain.append(f"{quote}: not taken: '{raw.text.strip()}'s ...' names what belongs to the day, nothing is due")
            return
        if res.approx and g.cues["hedges"].search(sentence_low):
            st.explain.append(f"{quote}: not taken: a fuzzy date in a forecast ('{g.cues['hedges'].search(sentence_low).group(0)}')")  # type: ignore[union-attr]
            return
        due_day = res.first
        if res.last is not None:
            # "comments may be sent from 1 June to 31 August": the window closes on its last day; but a dash
            # range in a timeline ("evaluation | 16 April - 10 May") is a period of work, not a due date.
            if raw.joined_by in _DAYS_JOINED:
                st.explain.append(f"{quote}: not taken: a period, not a due date")
                return
            due_day = res.last
        extended = bool(g.cues["extension_cues"].search(clause) or g.moved_prep.search(before))
        what = _item_what(st, unit, lo, hi, prev_end, next_start, [(raw.start, raw.end)])
        item = Deadline(
            due=due_day.isoformat(), what=_mask(what, g), who=_who(sentence, g), approx=res.approx,
            conflict=res.conflict, past=due_day < st.ref, text=text_out, extended=extended,
        )
        key: tuple[Any, ...] = (item.due, "approx") if item.approx else (item.due, unit.section, unit.group)
        for n, (k, old) in enumerate(st.deadlines):
            if k == key:
                if (item.conflict and not old.conflict) or (item.extended and not old.extended):
                    st.deadlines[n] = (k, _merge_deadline(old, item))
                st.explain.append(f"{quote}: deadline {item.due} again ({why}): merged with the one above")
                return
        st.deadlines.append((key, item))
        if st.in_forward:
            st.forwarded.add(key)
        flags = "".join(f" [{f}]" for f, on in (("approx", item.approx), ("past", item.past), ("extended", extended)) if on)
        st.explain.append(f"{quote}: deadline {item.due}{flags} ({why})" + (f"; CONFLICT: {item.conflict}" if item.conflict else ""))
        return
    # a meeting
    if raw.form == "fuzzy":
        st.explain.append(f"{quote}: not taken: a meeting needs a calendar day")
        return
    if g.cues["cancel_cues"].search(clause) and not g.moved_prep.search(before):
        st.explain.append(f"{quote}: not taken: cancelled ('{g.cues['cancel_cues'].search(clause).group(0)}')")  # type: ignore[union-attr]
        return
    if (raw.month, raw.day, raw.month2, raw.day2) in st.cancelled_days and not g.cues["new_date_cues"].search(clause) and not (
        find_times(text, g, raw.end, min(next_start, raw.end + 25))
    ):
        st.explain.append(f"{quote}: not taken: the subject says it is cancelled")
        return
    postponed = g.cues["postpone_cues"].search(clause)
    if postponed is not None:
        # about this date only when it follows the date ("the 8 May call has been postponed") or stands just before
        # it ("moving our call from ..."), not "The forum, postponed from last year, will meet on 5 May"
        at = clause_lo + postponed.start()
        if at < rs and rs - (clause_lo + postponed.end()) > 30 and not _PLANNED_FOR.search(before):
            postponed = None
    if postponed and res.last is not None and raw.joined_by not in _DAYS_JOINED:
        # "moved from 20 October to 27 October": not a two-day event, the meeting is on the second day.
        st.explain.append(f"{quote}: moved ('{postponed.group(0)}'): the meeting is on {res.last}")
        res = Resolved(res.last, None, res.approx, res.past_year, res.conflict)
    elif postponed and not (
        (g.moved_prep.search(before) and not _FROM_END.search(before))
        or _NEW_DATE_PREP.search(before)
        or g.cues["new_date_cues"].search(clause)
    ):
        # "the call scheduled for 8 September has been postponed": that day is off; "now on 15 September" is not.
        st.explain.append(f"{quote}: not taken: the old date of a postponed meeting ('{postponed.group(0)}')")
        return
    if st.kind == "meeting_report" and (past_day or (unit.title and not g.cues["future_cues"].search(unit.low))):
        st.explain.append(f"{quote}: not taken: the meeting this report is about (or history)")
        return
    head = unit.context if " | " in unit.context and " | " in text else ""  # a table row: its head may name the zone
    start, end, conflict, tspan = _when(st, text, raw, res, lo, hi, prev_end, next_start, head)
    conflict = res.conflict or conflict
    spans = [(raw.start, raw.end)] + ([tspan] if tspan else [])
    what = _item_what(st, unit, lo, hi, prev_end, next_start, spans)
    where = next((u for u in unit.urls if _CONF_URL.search(u)), None)
    where = where or (unit.urls[0] if len(unit.urls) == 1 else None)
    if where is None and st.conf_url and len(start) > 10 and res.last is None:
        where = st.conf_url  # a timed call, and the post has one video-conference link: that is where
    past = (datetime.fromisoformat(start) < st.msg.date) if len(start) > 10 else res.first < st.ref
    meeting = Meeting(start=start, end=end, what=_mask(what, g), where=_LINK_PARAM.sub(r"\1****", where) if where else None,
                      approx=False, conflict=conflict, past=past, text=text_out)
    for n, prior in enumerate(st.meetings):
        if _same_meeting(prior, meeting):
            if len(prior.start) == 10 and len(meeting.start) > 10:
                st.meetings[n] = meeting
            elif meeting.conflict and not prior.conflict:
                st.meetings[n] = Meeting(prior.start, prior.end, prior.what, prior.where, prior.approx, meeting.conflict,
                                         prior.past, prior.text)
            st.explain.append(f"{quote}: meeting {meeting.start} again ({why}): merged with the one above")
            return
    if len(start) > 10:
        st.timed_days.add(res.first.isoformat())
    st.meetings.append(meeting)
    if res.last is None:
        st.slot_day = res.first
    st.explain.append(f"{quote}: meeting {start}{' - ' + end if end else ''} ({why})" + (f"; CONFLICT: {conflict}" if conflict else ""))


# An agenda line that is a pause, not a session: "Break", "Coffee break", "Lunch", "Pause café".
_BREAK = re.compile(r"(?i)(?:coffee |tea |health |comfort |lunch |short )?(?:break|lunch|pause(?: café| déjeuner)?|receso|descanso|almuerzo)\W*$")


def _slot(st: _State, unit: _Unit, day: date) -> None:
    """An agenda line '09:00-09:30 UTC Welcome' under a dated meeting: one meeting for that slot."""
    g = st.rules.grammar
    named = _NAMED_SLOT.match(unit.text)
    at = named.end() if named else 0
    times = find_times(unit.text, g, at, min(len(unit.text), at + 40))
    if not times or times[0].start > at + 3:
        return
    span = times[0]
    h2, m2 = span.h2, span.m2
    found = find_zone(unit.text, g, span.end, limit=12)
    if h2 is None or m2 is None or (found is None and st.default_zone is None):
        return
    zone = found[1] if found is not None else st.default_zone
    assert zone is not None
    rest = unit.text[span.end + (found[1].end() if found is not None else 0) :]
    if rest[:1] == ")":  # "09:00-10:30 (UTC+2) Closed session": the zone's closing bracket
        rest = rest[1:]
    if "(" in rest[:3]:  # "(09:00 EDT / 15:00 CEST)": the hours again in other zones
        rest = _TIMES_AGAIN.sub(" ", rest, count=1)
    what = _short(rest, WHAT_LEN)
    if named:  # "Session A: cooperation between CSIRTs and law enforcement"
        name = _short(_LEAD_MARK.sub("", unit.text[: named.end()]), 40)
        what = f"{name}: {what}" if what else name
    what = what or st.subject_clean
    if _BREAK.match(what):
        st.explain.append(f"'{_short(unit.text, 40)}': not taken: a break in the agenda")
        return
    tz, conflict = zone_offset(zone, day, span.h1, span.m1)
    start = datetime.combine(day, time(span.h1, span.m1), tzinfo=tz)
    end = datetime.combine(day, time(h2, m2), tzinfo=tz)
    if end <= start:
        end += timedelta(days=1)
    meeting = Meeting(start.isoformat(), end.isoformat(), _mask(what, g), st.conf_url, False, conflict,
                      start < st.msg.date, _mask(_short(unit.text, TEXT_LEN), g))
    if any(len(m.start) > 10 and _same_meeting(m, meeting) for m in st.meetings):
        return
    st.meetings.append(meeting)
    st.timed_days.add(day.isoformat())
    st.explain.append(f"'{_short(unit.text, 40)}': meeting {meeting.start} (an agenda slot of the meeting on {day})")


def _merge_deadline(old: Deadline, new: Deadline) -> Deadline:
    return Deadline(old.due, old.what, old.who or new.who, old.approx, old.conflict or new.conflict, old.past,
                    old.text, old.extended or new.extended)


def _multi_day(m: Meeting) -> bool:
    return len(m.start) == 10 and m.end is not None and m.end[:10] != m.start


def _same_meeting(a: Meeting, b: Meeting) -> bool:
    if _multi_day(a) or _multi_day(b):
        # a conference over days and a timed session on its first day are two items
        return (a.start, a.end) == (b.start, b.end)
    if len(a.start) > 10 and len(b.start) > 10:
        return datetime.fromisoformat(a.start) == datetime.fromisoformat(b.start)
    return a.start[:10] == b.start[:10] and (len(a.start) == 10 or len(b.start) == 10)


def _clause(seg: str, rs: int, re_: int) -> tuple[int, int]:
    lo, hi = 0, len(seg)
    for m in _CLAUSE.finditer(seg):
        if m.end() <= rs:
            lo = m.end()
        elif m.start() >= re_:
            hi = m.start()
            break
    return lo, hi


_SAME_TIME = re.compile(r"[\s,;(]{0,3}(?:at\s)?(?:the\s)?(same time|même heure|misma hora|mesmo horário)\b", re.IGNORECASE)
_LOCAL_TIME = re.compile(r"\s{0,2}(?:local time|heure locale|hora local)\b", re.IGNORECASE)


def _when(st: _State, text: str, raw: RawDate, res: Resolved, lo: int, hi: int, prev_end: int, next_start: int,
          head: str = "") -> tuple[str, str | None, str | None, tuple[int, int] | None]:
    """(start, end, zone conflict, span of time and zone) of a meeting: with time and offset when both are written."""
    g = st.rules.grammar
    first, last = res.first, res.last
    times = find_times(text, g, max(lo, prev_end), min(hi, next_start))
    after = [t for t in times if t.start >= raw.end and t.start - raw.end <= 40]
    if not after and st.list_end is not None:  # the time after the last date of a list is each date's
        after = [t for t in times if t.start >= st.list_end and t.start - st.list_end <= 40]
    before = [t for t in times if t.end <= raw.start and raw.start - t.end <= 40]
    span: TimeSpan | None = after[0] if after else (before[-1] if before else None)
    date_end = last.isoformat() if last else None
    if span is None:
        same = _SAME_TIME.match(text, raw.end)
        prior = next((m for m in reversed(st.meetings) if len(m.start) > 10 and m.end and len(m.end) > 10), None)
        if same and prior is not None and last is None:
            # "The call after that is on Wednesday 18 November, same time": the hours of the meeting named before
            p_start, p_end = datetime.fromisoformat(prior.start), datetime.fromisoformat(prior.end)  # type: ignore[arg-type]
            start = datetime.combine(first, p_start.timetz())
            st.explain.append(f"'{raw.text.strip()}': '{same.group(1)}': the hours of the meeting on {p_start.date()}")
            return start.isoformat(), (start + (p_end - p_start)).isoformat(), None, None
        return first.isoformat(), date_end, None, None
    found = find_zone(text, g, span.end)
    zone_end = span.end
    local = _LOCAL_TIME.match(text, span.end)
    if found is not None:
        zm = found[1]
        zone_end = span.end + zm.end()
        if local:
            st.local_zone = zm
    elif local and st.local_zone is not None:
        zm = st.local_zone  # "14:00-17:00 local time" after "09:00-12:00 local time (UTC+3)" in the same post
    elif st.default_zone is not None:
        zm = st.default_zone  # "All times are UTC"
    elif head and (in_head := g.zone_re.search(head)) is not None:
        zm = in_head  # a table row under "Date | Time (UTC) | Topic"
    else:
        st.explain.append(f"'{raw.text.strip()}': a time without a zone: the day only")
        return first.isoformat(), date_end, None, (span.start, span.end)
    tz, conflict = zone_offset(zm, first, span.h1, span.m1)
    start = datetime.combine(first, time(span.h1, span.m1), tzinfo=tz)
    end: datetime | None = None
    if span.h2 is not None and span.m2 is not None:
        end_day = last or first
        end = datetime.combine(end_day, time(span.h2, span.m2), tzinfo=tz)
        if end <= start:
            end += timedelta(days=1)  # a slot ending after midnight
    elif last is None and (minutes := _duration(text, lo, min(len(text), hi + DURATION_REACH))):
        end = start + timedelta(minutes=minutes)  # "(90 minutes)", "the call will last one hour"
    return start.isoformat(), end.isoformat() if end else date_end, conflict, (span.start, zone_end)


DURATION_REACH = 200  # a duration may be said in the sentence after the meeting's
# "(90 minutes)", "will last one hour", "is scheduled for 60 minutes", "durera une heure", "durará una hora y media"
_DURATION = re.compile(
    r"(?i)(?:(?P<paren>\(\s?)|(?<!\w)(?:last|lasts|will last|run for|runs for|will run for|scheduled for|durera|dure|durará"
    r"|dura)\s(?:about\s|approximately\s|around\s|environ\s|aproximadamente\s)?)"
    r"(?P<n>\d{1,3}|an|one|two|three|une|deux|trois|una|dos|tres)\s?(?P<u>hours?|hrs?|minutes|mins?|heures?|horas?|minutos)"
    r"(?P<half>\s(?:and a half|et demie|y media))?(?!\w)"
)
_NUMBER_WORDS = {"an": 1, "one": 1, "une": 1, "una": 1, "two": 2, "deux": 2, "dos": 2, "three": 3, "trois": 3, "tres": 3}


def _duration(text: str, lo: int, hi: int) -> int | None:
    """Minutes of the one duration said near a meeting (said with a verb rather than in brackets, which agenda items
    use too), from a quarter of an hour to eight hours; None when none or several are said."""
    said: list[tuple[bool, int]] = []
    for m in _DURATION.finditer(text, lo, hi):
        n = int(m["n"]) if m["n"].isdigit() else _NUMBER_WORDS[m["n"].lower()]
        minutes = n * (1 if m["u"].lower().startswith("min") else 60) + (30 if m["half"] else 0)
        said.append((m["paren"] is None, minutes))
        if len(said) > 6:
            return None
    verbs = [x for verb, x in said if verb]
    pool = verbs or [x for _, x in said]
    return pool[0] if len(pool) == 1 and 15 <= pool[0] <= 480 else None


# ---------------------------------------------------------------------------------------------------------------
# Action items, links, summary


_ACTION_PREFIX = re.compile(r"(?i)\s*(?:action(?: item)?s?|ai|todo)\s*[:\-–]\s*")
_ACTION_HINT = re.compile(r"(?i)(?:action(?: item)?s?|ai|todo)\s*[:\-–]")  # what every _ACTION_PREFIX match contains
# "Tom: book the room", "(Tom)" or "- Tom" after the task: who owns an action listed under "Action items:".
_OWNER_FIRST = re.compile(r"^(?!(?:Note|Notes|Deadline|Due|Done|Status|Update|Owner|When|What|Action|Task)\b)([A-Z][\w'’-]{1,30}(?:\s[A-Z][\w'’-]{1,30}){0,2})\s?[:–—]\s+")
_OWNER_LAST = re.compile(r"\s(?:\(|[–—-]\s)([A-Z][\w'’-]{1,30}(?:(?:\s|,\s?|\s&\s|\sand\s)[A-Z][\w'’-]{1,30}){0,3}|all)\)?\.?$")


def _action_items(st: _State, units: list[_Unit], g: Grammar) -> tuple[ActionItem, ...]:
    items: list[ActionItem] = []
    seen: set[str] = set()
    for _, d in st.deadlines:
        if d.who:
            what = re.sub(r"^@?" + re.escape(d.who) + r"\s+(?:will|to|shall|should)\s+", "", d.what)
            items.append(ActionItem(d.who, what.strip() or d.what, d.due, d.text))
            seen.add(d.text)
    if st.kind != "meeting_report":
        return tuple(items)
    headings = g.cues["action_headings"]
    for unit in units[:MAX_UNITS]:
        if len(items) >= 30:
            break
        # A bullet under "Action items:" is one action, whatever its wording.
        listed = (
            bool(unit.context) and unit.text != unit.context and _BULLET.match(unit.text) is not None
            and headings.fullmatch(lower(unit.context).strip(" :-*#")) is not None
        )
        # Sentences are split at whitespace, so what a sentence matches the whole unit contains: most units have
        # neither "Name will <verb>" nor "Action:", and their sentences need not be read.
        hints = [] if listed else [h.start() for h in g.action_hint.finditer(unit.text)]
        prefixed = ("-" in unit.text or ":" in unit.text or "–" in unit.text) and _ACTION_HINT.search(unit.text) is not None
        if not listed and not hints and not prefixed:
            continue
        for a, b in [(0, len(unit.text))] if listed else _unit_sentences(unit):
            # ("will send" never spans two sentences: only one that holds a hint can match; no sentence of a unit
            # without "Action:" starts with it)
            hinted = listed or any(a <= h < b for h in hints)
            if not hinted and not prefixed:
                continue
            sentence = unit.text[a:b]
            m = g.action.search(sentence) if hinted else None
            explicit = _ACTION_PREFIX.match(sentence) if prefixed else None
            if not (m or explicit or listed):
                continue
            text = _mask(_short(sentence, TEXT_LEN), g)
            if text in seen:
                continue
            who: str | None = None
            if m:
                who, what = (m["at"] or m["name"] or m["one"]).strip(), sentence[m.start("verb") :]
            elif explicit:
                what = sentence[explicit.end() :]
            else:
                what = _BULLET.sub("", sentence)
                first = _OWNER_FIRST.match(what)
                last = None if first else _OWNER_LAST.search(what)
                if first:
                    who, what = first.group(1), what[first.end() :]
                elif last:
                    who, what = last.group(1), what[: last.start()]
            what = _mask(_short(what, WHAT_LEN), g)
            if not re.search(r"\w", what):  # "Action items:" over its list is no action itself
                continue
            seen.add(text)
            due = None
            for raw in find_dates(sentence, g)[:3]:
                res = resolve(raw, st.ref)
                if res is not None:
                    due = res.first.isoformat()
                    break
            items.append(ActionItem(who, what, due, text))
    return tuple(items)


def _links(text: str, g: Grammar) -> tuple[Link, ...]:
    out: list[Link] = []
    seen: set[str] = set()
    text = text[:MAX_TEXT]
    pos = 0
    while len(out) < 40:
        # the next line that holds "http" or "www." (most lines hold neither)
        found = [at for at in (text.find("http", pos), text.find("www.", pos)) if at >= 0]
        if not found:
            break
        start = text.rfind("\n", 0, min(found)) + 1
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end][:MAX_LINE]
        pos = end + 1
        for m in _MD_LINK.finditer(line):
            url = m.group(2)
            if url.startswith(("http://", "https://")) and url not in seen:
                seen.add(url)
                out.append(Link(_mask(_short(_clean(m.group(1))[0], 80), g) or url, _LINK_PARAM.sub(r"\1****", url)))
        rest = _MD_LINK.sub(" ", line)
        for m in _URL.finditer(rest):
            url = m.group(0).rstrip(".,;:>")
            if url in seen:
                continue
            seen.add(url)
            label = _clean(rest[: m.start()])[0]
            label = re.sub(r"[<(\[]\s*$", "", label).strip(" :-–—(|")
            quoted = re.findall(r"[\"“]([^\"“”]{3,120})[\"”]", label)
            if quoted:
                label = quoted[-1]
            label = re.split(r"[.;:!?]\s|:$", label)[-1].strip() if len(label) > 60 else label
            label = " ".join(label.split()[-10:])
            if not label:
                label = re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/")[0]
            out.append(Link(_mask(_short(label, 80), g), _LINK_PARAM.sub(r"\1****", url)))
    return tuple(out)


def _summary(st: _State, units: list[_Unit], titles: list[str], g: Grammar) -> Summary:
    msg = st.msg
    title = _short(_clean(st.subject_clean)[0], 200) or "(no subject)"
    day = msg.date.date().isoformat()
    for raw in find_dates(st.subject_clean, g)[:3]:
        res = resolve(raw, st.ref, lean_past=True)
        if res is not None:
            day = res.first.isoformat()
            break
    sections: list[tuple[str, str]] = []
    decisions: list[str] = []
    next_steps: list[str] = []
    by_section: dict[int, list[_Unit]] = {}
    for u in units:
        by_section.setdefault(u.topic, []).append(u)
    for idx, heading in enumerate(titles):
        body = [u for u in by_section.get(idx, []) if not u.title and len(u.text) > 20]
        if idx == 0 and not heading:
            if len(titles) > 1 or not body:
                continue
            heading = "Summary"
        if not body:
            continue
        first = re.sub(r"^(?:[-*•·–]\s+)?(?:\d{1,2}[.)]\s+)?", "", body[0].text)
        a, b = _sentences(first)[0]
        sections.append((_mask(_short(heading, 100), g), _mask(_short(first[a:b], 160), g)))
        if g.cues["next_step_cues"].search(lower(heading)):
            for u in body[:10]:
                next_steps.append(_mask(_short(u.text, 200), g))
        if len(sections) >= 15:
            break
    decided = g.cues["decision_cues"]
    # Every cue holds one of these words: a post (its units joined) without any of them has no decision to read.
    joined = "\n".join(u.low for u in units[:MAX_UNITS])
    for u in units[:MAX_UNITS] if any(word in joined for word in g.decision_words) else ():
        if len(decisions) >= 10:
            break
        if decided.search(u.low) is None:  # no sentence of it has a cue (they are split at whitespace)
            continue
        for a, b in _unit_sentences(u):
            s = u.text[a:b]
            if decided.search(u.low[a:b]):
                decisions.append(_mask(_short(s, 200), g))
                if len(decisions) >= 10:
                    break
    for u in units[:MAX_UNITS]:
        # bullets under a "Next steps:" line
        if len(next_steps) < 10 and u.context and g.cues["next_step_cues"].search(lower(u.context)) and u.text != u.context:
            next_steps.append(_mask(_short(re.sub(r"^[-*•·–]\s+", "", u.text), 200), g))
    if not next_steps:
        next_steps = [f"{d.due}: {d.what}" for _, d in st.deadlines if not d.past][:10]
    return Summary(title, day, tuple(sections), tuple(decisions), tuple(next_steps))


# ---------------------------------------------------------------------------------------------------------------


def to_json(ex: Extraction) -> dict[str, Any]:
    """The stable JSON shape of `listbot parse --json` (kind, rules, deadlines, meetings, action_items, links, summary)."""
    return {
        "kind": ex.kind,
        "rules": list(ex.rules),
        "deadlines": [
            {"due": d.due, "what": d.what, "who": d.who, "approx": d.approx, "conflict": d.conflict, "past": d.past,
             "text": d.text}
            for d in ex.deadlines
        ],
        "meetings": [
            {"start": m.start, "end": m.end, "what": m.what, "where": m.where, "approx": m.approx,
             "conflict": m.conflict, "past": m.past, "text": m.text}
            for m in ex.meetings
        ],
        "action_items": [{"who": a.who, "what": a.what, "due": a.due, "text": a.text} for a in ex.action_items],
        "links": [{"label": link.label, "url": link.url} for link in ex.links],
        "summary": [] if ex.summary is None else [
            {
                "title": ex.summary.title,
                "date": ex.summary.date,
                "sections": [{"heading": h, "gist": gist} for h, gist in ex.summary.sections],
                "decisions": list(ex.summary.decisions),
                "next_steps": list(ex.summary.next_steps),
            }
        ],
    }
