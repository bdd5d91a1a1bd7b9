"""The date, time and zone grammar: vocabulary from rules/lang/*.toml compiled once into linear-time regexes."""

from __future__ import annotations

import calendar
import re
import string
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

# Named zones: (offset in minutes, IANA zone whose season the name implies, the name means summer time).
# A name used in the wrong season ("EST" in July) is read as the local time of that zone and flagged.
ZONES: dict[str, tuple[int, str | None, bool | None]] = {
    "UTC": (0, None, None), "GMT": (0, None, None), "UT": (0, None, None), "Z": (0, None, None),
    "AoE": (-720, None, None), "AOE": (-720, None, None),
    "CET": (60, "Europe/Paris", False), "CEST": (120, "Europe/Paris", True),
    "WET": (0, "Europe/Lisbon", False), "WEST": (60, "Europe/Lisbon", True),
    "EET": (120, "Europe/Athens", False), "EEST": (180, "Europe/Athens", True),
    "MEZ": (60, "Europe/Berlin", False), "MESZ": (120, "Europe/Berlin", True),  # German names of CET and CEST
    "BST": (60, "Europe/London", True),
    "EST": (-300, "America/New_York", False), "EDT": (-240, "America/New_York", True),
    "CST": (-360, "America/Chicago", False), "CDT": (-300, "America/Chicago", True),
    "MST": (-420, "America/Denver", False), "MDT": (-360, "America/Denver", True),
    "PST": (-480, "America/Los_Angeles", False), "PDT": (-420, "America/Los_Angeles", True),
    "ET": (0, "America/New_York", None), "CT": (0, "America/Chicago", None),
    "MT": (0, "America/Denver", None), "PT": (0, "America/Los_Angeles", None),
    "Eastern Time": (0, "America/New_York", None), "Pacific Time": (0, "America/Los_Angeles", None),
    "Central Time": (0, "America/Chicago", None), "Mountain Time": (0, "America/Denver", None),
    "Central European Time": (60, "Europe/Paris", False), "Central European Summer Time": (120, "Europe/Paris", True),
    "AEST": (600, "Australia/Sydney", False), "AEDT": (660, "Australia/Sydney", True),
    "NZST": (720, "Pacific/Auckland", False), "NZDT": (780, "Pacific/Auckland", True),
    "JST": (540, None, None), "KST": (540, None, None), "SGT": (480, None, None), "HKT": (480, None, None),
    "IST": (330, None, None),
    # zones without summer time, as listed in the IANA tables' abbreviations
    "EAT": (180, None, None), "WAT": (60, None, None), "CAT": (120, None, None), "SAST": (120, None, None),
    "MSK": (180, None, None), "GST": (240, None, None), "PKT": (300, None, None), "NPT": (345, None, None),
    "WIB": (420, None, None), "PHT": (480, None, None), "AWST": (480, None, None), "ACST": (570, None, None),
    "BRT": (-180, None, None), "HST": (-600, None, None),
    "AKST": (-540, "America/Anchorage", False), "AKDT": (-480, "America/Anchorage", True),
    "Eastern": (0, "America/New_York", None), "Pacific": (0, "America/Los_Angeles", None),
    "UK time": (0, "Europe/London", None), "London time": (0, "Europe/London", None),
    "Paris time": (0, "Europe/Paris", None), "heure de Paris": (0, "Europe/Paris", None),
    "Brussels time": (0, "Europe/Brussels", None), "Geneva time": (0, "Europe/Zurich", None),
    "Berlin time": (0, "Europe/Berlin", None), "New York time": (0, "America/New_York", None),
    "hora de Madrid": (0, "Europe/Madrid", None), "hora de México": (0, "America/Mexico_City", None),
    "hora de Buenos Aires": (0, "America/Argentina/Buenos_Aires", None), "hora de Bogotá": (0, "America/Bogota", None),
    "hora de Lima": (0, "America/Lima", None), "hora de Santiago": (0, "America/Santiago", None),
    "hora de Montevideo": (0, "America/Montevideo", None), "hora de Brasilia": (0, "America/Sao_Paulo", None),
    "horário de Brasília": (0, "America/Sao_Paulo", None), "horario de Brasilia": (0, "America/Sao_Paulo", None),
    "hora de Brasília": (0, "America/Sao_Paulo", None),
    "heure de Genève": (0, "Europe/Zurich", None), "heure de Bruxelles": (0, "Europe/Brussels", None),
    "heure de Montréal": (0, "America/Toronto", None), "heure du Québec": (0, "America/Toronto", None),
    "Tokyo time": (0, "Asia/Tokyo", None), "Singapore time": (0, "Asia/Singapore", None),
    "Nairobi time": (0, "Africa/Nairobi", None), "Sydney time": (0, "Australia/Sydney", None),
    "Washington DC time": (0, "America/New_York", None), "Amsterdam time": (0, "Europe/Amsterdam", None),
    # the city lists of Outlook's zone labels ("(UTC+01:00) Brussels, Copenhagen, Madrid, Paris")
    "Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna": (0, "Europe/Berlin", None),
    "Brussels, Copenhagen, Madrid, Paris": (0, "Europe/Paris", None),
    "Belgrade, Bratislava, Budapest, Ljubljana, Prague": (0, "Europe/Budapest", None),
    "Sarajevo, Skopje, Warsaw, Zagreb": (0, "Europe/Warsaw", None),
    "Dublin, Edinburgh, Lisbon, London": (0, "Europe/London", None),
    "Athens, Bucharest": (0, "Europe/Bucharest", None),
    "Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius": (0, "Europe/Helsinki", None),
    "Canberra, Melbourne, Sydney": (0, "Australia/Sydney", None), "Auckland, Wellington": (0, "Pacific/Auckland", None),
}
_DASH = r"(?:-|–|—|‐)"
# Capitalised words that start sentences but name nobody ("The BPF will publish", "Suggestion to invite").
_NOT_NAME = (
    r"(?!(?:The|This|That|These|Those|A|An|Our|Their|We|It|They|You|I|All|Each|Every|Some|Any|No|Next|Please|"
    r"Suggestion|Participants|Members|Everyone|Everybody|Someone|Somebody|Anyone|Nobody|He|She|Who|People|There|"
    r"Here|Then|Also|Thanks|Thank|Once|If|When|Finally|However)\b)"
)


@dataclass(frozen=True)
class Grammar:
    """Everything the extractor matches, compiled from the vocabulary of every language file.

    Word regexes are case-sensitive and lower-case: run them on lower(text) (see `lower`); the zone regex
    is run on the text as written ("ET" is a zone, "et" is French for "and")."""

    months: dict[str, int]
    weekdays: dict[str, int]
    fuzzy: dict[str, int]
    capitalised_only: frozenset[str]
    iso: re.Pattern[str]
    dmy: re.Pattern[str]
    mdy: re.Pattern[str]
    fuzzy_re: re.Pattern[str]
    relative: re.Pattern[str]
    today_words: frozenset[str]
    prefilter: re.Pattern[str]  # month names
    month_tokens: frozenset[str]
    relative_tokens: frozenset[str]
    date_tokens: frozenset[str]  # month_tokens | relative_tokens
    month_day: re.Pattern[str] | None  # "Thursday the 15th": a day of the month with no month written
    month_day_tokens: frozenset[str]
    month_day_hint: re.Pattern[str] | None  # the part of month_day that holds no weekday: most text has "the", few "the 15th"
    range_join: re.Pattern[str]
    two_dates: re.Pattern[str]
    time_re: re.Pattern[str]
    time_join: re.Pattern[str]
    zone_re: re.Pattern[str]
    cues: dict[str, re.Pattern[str]]  # deadline, meeting, cancel, extension, history, hedge, decision, next_step, ...
    deadline_prep: re.Pattern[str]  # anchored at the end of the text before a date
    weak_deadline_prep: re.Pattern[str]  # the same, but only with a deadline cue in the sentence
    vague_prep: re.Pattern[str]  # "w/c": the date that follows names a week
    superseded_prep: re.Pattern[str]  # "not", "previously": the date that follows is replaced
    weekday_re: re.Pattern[str]  # a weekday name on its own
    weekday_before: re.Pattern[str]  # a weekday name right before a short numeric date ("Thu 3/16")
    not_deadline_prep: re.Pattern[str]
    moved_prep: re.Pattern[str]
    credential: re.Pattern[str]
    credential_ends: tuple[str, ...]  # the last word of each credential phrase, lower-case: one is in every match
    action: re.Pattern[str]
    action_hint: re.Pattern[str]  # what every match of `action` contains ("will send"): a unit without it has no action
    decision_words: tuple[str, ...]  # a word of each decision cue: a text with none of them has no decision cue
    date_intro: re.Pattern[str]  # "by", "on", "until", "le": right before a yearless numeric date ("by 16/10")


def _alt(words: Any) -> str:
    """Words as one alternation built as a trie: matching costs the length of a word, not the number of words."""
    trie: dict[str, Any] = {}
    for word in {" ".join(w.lower().split()) for w in words if w.strip()}:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [(r"\s+" if ch == " " else re.escape(ch)) + emit(node[ch]) for ch in sorted(k for k in node if k)]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:
            return "(?:" + body + ")?"
        return body

    return "(?:" + emit(trie) + ")" if trie else "(?!x)x"


def _phrases(words: Any) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + _alt(words) + r"(?!\w)")


def build_grammar(vocab: dict[str, Any]) -> Grammar:
    """Compile the merged vocabulary (see rules/lang/en.toml for the keys) into a Grammar."""
    w: dict[str, list[str]] = vocab["words"]
    months, weekdays, fuzzy = vocab["months"], vocab["weekdays"], vocab["fuzzy"]
    month = r"(?P<m>" + _alt(months) + r")\.?(?!\w)"
    wd = r"(?P<wd>" + _alt(weekdays) + r")\.?,?"
    suf = r"(?:" + _alt(w["ordinal_suffixes"]) + r")?" if w["ordinal_suffixes"] else ""
    conn = _alt(w["date_connectors"])
    rng = r"(?:\s{0,2}" + _DASH + r"\s{0,2}|\s{1,2}" + _alt(w["range_words"]) + r"\s{1,2}|\s{0,2}&\s{0,2})"
    # "April 6: register" is a date, "April 6:30" is not
    day = r"(?P<d>[0-3]?\d)" + suf + r"(?!\d|:\d)"
    day2 = r"(?P<d2>[0-3]?\d)" + suf + r"(?!\d|:\d)"
    year = r"(?:,?\s{0,2}(?:" + conn + r"\s{1,2})?(?P<y>(?:19|20)\d\d)(?!\d|:\d))?"
    dmy = (
        r"(?<![\w/:.])(?:" + wd + r"\s{1,3}(?:the\s{1,2})?)?" + day
        + r"(?:" + rng + r"(?:" + wd.replace("?P<wd>", "?P<wd2>") + r"\s{1,3})?" + day2 + r")?"
        + r"(?:\s{1,2}" + conn + r"\s{1,2}|\s{0,2}" + _DASH + r"\s{0,2}|\s{1,2})" + month + year
    )
    mdy = (
        r"(?<![\w/:.])(?:" + wd + r"\s{1,3})?" + month + r"\s{0,2}" + day
        + r"(?:" + rng + r"(?P<d2>[0-3]?\d)" + suf + r"(?!\d|:\d))?" + year
    )
    # "2026-03-12", and "2026-03-12T15:00Z" (its time is read by time_re)
    # and "2026/04/30" (year first: the order is certain; not inside a URL path)
    iso = r"(?<![\w/.:-])(?P<y>(?:19|20)\d\d)(?P<sep>[-/])(?P<m>0?[1-9]|1[0-2])(?P=sep)(?P<d>0?[1-9]|[12]\d|3[01])(?:(?![\w/:-])|(?=[tT]\d\d:\d\d))"
    fuzzy_re = (
        r"(?<!\w)(?P<f>" + _alt(fuzzy) + r")(?:\s{1,2}|\s?" + _DASH + r"\s?)(?:" + conn + r"\s{1,2})?" + month + year
    )
    relative = (
        r"(?<!\w)(?:(?P<rel>" + _alt(w["today"] + w["tomorrow"]) + r")|(?:" + _alt(w["this_weekday"])
        + r")\s{1,2}" + wd + r")(?!\w)"
    )
    # Every date expression holds a month name, a relative word or an ISO date: the anchors looked for first.
    prefilter = r"(?<!\w)(?P<mon>" + _alt(months) + r")(?!\w)"
    # "by the 15th,", "Thursday the 15th at 15:00": only before a stop or a time word ("the 2nd draft" is no date)
    month_day = (
        r"(?<!\w)(?:" + wd + r"\s{1,3})?(?:" + _alt(w["month_day_articles"]) + r")\s{1,2}(?P<d>[0-3]?\d)(?:"
        + _alt(w["ordinal_suffixes"]) + r")(?=\s{0,2}(?:[,.;:!?)]|$|(?:at|by|from)\s))"
    ) if w["month_day_articles"] and w["ordinal_suffixes"] else None
    month_day_hint = (
        r"(?:" + _alt(w["month_day_articles"]) + r")\s{1,2}[0-3]?\d(?:" + _alt(w["ordinal_suffixes"]) + r")"
    ) if month_day else None
    range_join = r"^(?:\s{0,2}" + _DASH + r"\s{0,2}|\s{1,2}" + _alt(w["range_words"]) + r"\s{1,2})$"
    hour = r"(?:[01]?\d|2[0-3])"
    # "1400 UTC", and "1400 to 1600 UTC" / "0930-1100 GMT": four digits are a time only with the zone after them
    time_re = (
        r"(?:(?<![\w:.,/])|(?<=\d\d[tT]))(?:(?P<h>" + hour + r")(?:(?P<sep>[:h.])(?P<mi>[0-5]\d)|(?P<hsuf>h)(?!\w))?(?:\s?(?P<ap>[ap])\.?\s?m\.?(?!\w))?"
        r"|(?P<hh>[01]\d|2[0-3])(?P<mm>[0-5]\d)(?=\s?(?:UTC|GMT|Z)\b|\s{0,2}(?:" + _DASH + r"|to|until|till|and)\s{0,2}(?:[01]\d|2[0-3])[0-5]\d\s?(?:UTC|GMT|Z)\b)"
        r"|(?P<word>noon|midnight|midday))(?![\d:])"
    )
    time_join = r"\s{0,2}(?:" + _DASH + r"|to|until|till|and|à|a|bis)\s{0,2}"
    names = sorted(ZONES, key=len, reverse=True)
    zone_re = (
        r"(?<![\w+\-])(?:(?P<base>UTC|GMT|UT)\s?(?P<sign>[+\-−–])\s?(?P<oh>1[0-4]|0?\d)(?::?(?P<om>[0-5]\d))?"
        r"|(?P<name>" + "|".join(re.escape(n) for n in names) + r"))(?![\w])"
    )
    cues = {
        key: _phrases(w[key])
        for key in (
            "deadline_cues", "meeting_cues", "cancel_cues", "extension_cues", "history_cues", "hedges", "start_cues",
            "publication_cues", "future_cues", "decision_cues", "next_step_cues", "action_headings", "postpone_cues",
            "new_date_cues", "weak_meeting_cues", "contribution_cues", "request_cues", "clock_change_cues",
        )
    }
    cues["deadline_cues"] = re.compile(
        r"(?<!\w)" + _alt(w["deadline_cues"]) + r"(?!\w)(?!\s{1,2}" + _alt(w["not_deadline_after"]) + r"(?!\w))"
    )
    cues["past_tense"] = _phrases(w["past_tense"])
    cues["window_cues"] = _phrases(w["window_cues"])
    # "call for papers", "call to order": not a call; but "a session for newcomers" is a session. A phrase
    # "CUE WORDS" excludes only that cue before those words; a single word (older vocabularies) follows any cue.
    not_after = []
    for phrase in w["not_meeting_after"]:
        cue, _, rest = phrase.strip().partition(" ")
        follow = r"\s{1,2}" + r"\s{1,2}".join(re.escape(x) for x in (rest or cue).split()) + r"(?!\w)"
        not_after.append((r"(?<=(?<!\w)" + re.escape(cue) + ")" if rest else "") + follow)
    cues["meeting_cues"] = re.compile(
        r"(?<!\w)" + _alt(w["meeting_cues"]) + r"(?!\w)" + (r"(?!" + "|".join(not_after) + ")" if not_after else "")
    )
    # Between a deadline word and its date: fillers, weekday names, clock times and zones, nothing else.
    filler = (
        r"(?:" + _alt(w["deadline_fillers"] + list(weekdays)) + r"|\d{1,2}(?:[:.h]\d\d)?|[a-z]{1,3}[sd]?t|utc[+\-]\d{1,2})"
    )
    words_between = r"(?:[\s,(]{1,3}" + filler + r"(?!\w)\)?){0,5}"
    intro = w["deadline_preps"] + w["weak_deadline_preps"] + w["not_deadline_preps"] + w["date_connectors"] + ["on"]
    month_tokens = frozenset(_tokens(" ".join(months)))
    relative_tokens = frozenset(_tokens(" ".join(list(weekdays) + w["today"] + w["tomorrow"])))
    return Grammar(
        months={k.lower(): v for k, v in months.items()},
        weekdays={k.lower(): v for k, v in weekdays.items()},
        fuzzy={k.lower(): v for k, v in fuzzy.items()},
        capitalised_only=frozenset(w["capitalised_only"]),
        iso=re.compile(iso),
        dmy=re.compile(dmy),
        mdy=re.compile(mdy),
        fuzzy_re=re.compile(fuzzy_re),
        relative=re.compile(relative),
        today_words=frozenset(w["today"]),
        prefilter=re.compile(prefilter),
        month_tokens=month_tokens,
        relative_tokens=relative_tokens,
        date_tokens=month_tokens | relative_tokens,
        month_day=re.compile(month_day) if month_day else None,
        month_day_tokens=frozenset(_tokens(" ".join(w["month_day_articles"]))),
        month_day_hint=re.compile(month_day_hint) if month_day_hint else None,
        range_join=re.compile(range_join),
        two_dates=re.compile(r"^\s{1,3}$"),
        time_re=re.compile(time_re, re.IGNORECASE),
        time_join=re.compile(time_join, re.IGNORECASE),
        zone_re=re.compile(zone_re),
        cues=cues,
        deadline_prep=re.compile(r"(?<!\w)" + _alt(w["deadline_preps"]) + r"\s?:?" + words_between + r"[\s,]{0,3}$"),
        weekday_re=re.compile(r"(?<!\w)(?P<wd>" + _alt(weekdays) + r")(?!\w)"),
        weekday_before=re.compile(r"(?<!\w)(?P<wd>" + _alt(weekdays) + r")\.?,?\s{1,2}$"),
        superseded_prep=re.compile(r"(?<!\w)" + _alt(w["superseded_preps"]) + r"\s{0,2}:?(?:on\s{1,2}|the\s{1,2})?[\s,]{0,3}$"),
        vague_prep=re.compile(r"(?<!\w)" + _alt(w["vague_preps"]) + r"\s{0,2}(?:the\s{1,2})?$"),
        weak_deadline_prep=re.compile(r"(?<!\w)" + _alt(w["weak_deadline_preps"]) + words_between + r"[\s,]{0,3}$"),
        not_deadline_prep=re.compile(r"(?<!\w)" + _alt(w["not_deadline_preps"]) + r"(?:\s{1,2}the)?\s{0,2}$"),
        moved_prep=re.compile(r"(?<!\w)" + _alt(w["extension_cues"]) + r"(?:\s{1,2}\w{1,10}){0,2}\s{0,2}$"),
        credential_ends=tuple(sorted({p.lower().split()[-1] for p in w["credential_words"] if p.strip()})),
        credential=re.compile(r"(?<!\w)(" + _alt(w["credential_words"]) + r")(\s{0,3}(?:is|:|=|-)?\s{0,3})([^\s,;)\]]+)", re.IGNORECASE),
        action=re.compile(
            r"(?:@(?P<at>[A-Z][\w'’-]+(?:\s(?:van|von|de|der|da|di|du|[A-Z][\w'’-]+)){0,3})"
            r"|(?<![\w@])" + _NOT_NAME + r"(?P<name>[A-Z][\w'’-]+(?:\s(?:van|von|de|der|da|di|du|[A-Z][\w'’-]+)){1,3})"
            r"|(?:^|(?<=[:–—-]))\s{0,2}" + _NOT_NAME + r"(?P<one>[A-Z][a-z]{1,20}))"
            r"\s{1,2}(?:(?:will|to|shall|should)\s{1,2})(?P<verb>" + _alt(w["action_verbs"]) + r")(?!\w)"
        ),
        decision_words=tuple(sorted({max(p.lower().split(), key=len) for p in w["decision_cues"] if p.strip()})),
        action_hint=re.compile(r"(?:will|to|shall|should)\s{1,2}" + _alt(w["action_verbs"]) + r"(?!\w)"),
        date_intro=re.compile(r"(?<!\w)" + _alt(intro) + r"\s{1,2}$"),
    )


@dataclass(frozen=True)
class RawDate:
    """A date expression as written, before the year is inferred."""

    start: int
    end: int
    text: str
    form: str  # date | fuzzy | relative
    year: int | None
    month: int
    day: int  # for fuzzy: the vocabulary value (15, 5, -1, or 0 = not pinned)
    weekday: int | None = None
    month2: int | None = None  # range end
    day2: int | None = None
    year2: int | None = None
    joined_by: str = ""  # the word joining a range ("until", "-")
    rel_days: int | None = None  # today = 0, tomorrow = 1
    conflict: str | None = None  # two dates written for one thing
    alone: bool = False  # a weekday with no date, read only after a deadline word ("by Friday")
    either_order: bool = False  # "Thu 9/2": month/day or day/month, the one its weekday fits (resolve picks)


_PUNCT = str.maketrans({c: " " for c in string.punctuation + "–—‐’‘“”«»¿¡…•·|"})
_ISO_HINT = re.compile(r"(?:19|20)\d\d[-/]\d")
_NUM_HINT = re.compile(r"[0-9][/.][0-9]")
_NUMERIC_SHORT = re.compile(r"(?<![\w/.:-])(?P<a>[0-3]?\d)/(?P<b>[0-3]?\d)(?![\w/:-]|[.,]\d)")
_NUMERIC = re.compile(r"(?<![\w/.:-])(?P<a>[0-3]?\d)([/.])(?P<b>[0-3]?\d)\2(?P<y>(?:19|20)\d\d)(?![\w/:-]|\.\d)")


def _tokens(low: str) -> set[str]:
    """The words of a lower-cased text, punctuation dropped: a set lookup is much cheaper than a regex pass."""
    return set(low.translate(_PUNCT).split())


def lower(text: str) -> str:
    """text.lower() with the same length, so that offsets found in it hold for the text."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low


def find_dates(text: str, g: Grammar, low: str | None = None) -> list[RawDate]:
    """Every date expression in `text` (non-overlapping, in order), with cross-month ranges joined.

    `low` is lower(text) when the caller has it already."""
    orig = text
    text = low if low is not None else lower(text)
    found: list[RawDate] = []
    words = text.translate(_PUNCT).split()  # as _tokens, without making a set: most text names no month or day
    if g.date_tokens.isdisjoint(words):
        relative = has_month = False
    else:
        relative = not g.relative_tokens.isdisjoint(words)
        has_month = not g.month_tokens.isdisjoint(words)
    # "the" is in most text, "the 15th" in little: the day is looked for only where the article is
    month_day = (
        g.month_day_hint is not None and g.month_day_hint.search(text) is not None and not g.month_day_tokens.isdisjoint(words)
    )
    # Both need a year of four digits: most units hold a full stop or a dash, few a "19" or "20"
    year = "20" in text or "19" in text
    iso = year and ("-" in text or "/" in text) and _ISO_HINT.search(text) is not None
    numeric = year and ("/" in text or "." in text) and _NUM_HINT.search(text) is not None and _NUMERIC.search(text) is not None
    short = "/" in text and _NUMERIC_SHORT.search(text) is not None
    if not (has_month or relative or iso or numeric or short or month_day):
        return []
    if short:
        for m in _NUMERIC_SHORT.finditer(text):
            # "by 16/10", "on 23/10": a day over 12 proves the order; "24/7 support" or "3/4 of us" stay numbers,
            # because a date without a year is taken only right after a word that introduces one.
            a, b = int(m["a"]), int(m["b"])
            # "Thu 3/16": a weekday name introduces a date as well as a word does, and is part of it
            named = g.weekday_before.search(text, max(0, m.start() - 14), m.start())
            if named is None and not g.date_intro.search(text, max(0, m.start() - 20), m.start()):
                continue
            start = named.start() if named else m.start()
            weekday = _weekday(g, named["wd"]) if named else None
            if 12 < a <= 31 and 1 <= b <= 12:
                found.append(RawDate(start, m.end(), orig[start : m.end()], "date", None, b, a, weekday))
            elif 12 < b <= 31 and 1 <= a <= 12:
                found.append(RawDate(start, m.end(), orig[start : m.end()], "date", None, a, b, weekday))
            elif weekday is not None and 1 <= a <= 12 and 1 <= b <= 12:
                # "Thursday 9/2": no day over 12, but only one order falls on a Thursday
                found.append(RawDate(start, m.end(), orig[start : m.end()], "date", None, a, b, weekday, either_order=True))
    months = [(a.start(), a.end()) for a in g.prefilter.finditer(text)] if has_month else []
    if numeric:
        for m in _NUMERIC.finditer(text):
            a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
            # 05/03/2021 could be 5 March or May 3: only an order that a day over 12 proves is taken.
            # Dots are day.month.year wherever they are written (12.03.2019).
            if (12 < a <= 31 or (m.group(2) == "." and 1 <= a <= 12)) and 1 <= b <= 12:
                found.append(RawDate(m.start(), m.end(), m.group(0), "date", y, b, a))
            elif 12 < b <= 31 and 1 <= a <= 12:
                found.append(RawDate(m.start(), m.end(), m.group(0), "date", y, a, b))
    if iso:
        for m in g.iso.finditer(text):
            found.append(RawDate(m.start(), m.end(), orig[m.start() : m.end()], "date", int(m["y"]), int(m["m"]), int(m["d"])))
    for pattern in (g.dmy, g.mdy):
        for m in _around(pattern, text, months):
            raw_month = m["m"]
            if raw_month in g.capitalised_only and not orig[m.start("m")].isupper():
                continue
            d = int(m["d"])
            d2 = int(m["d2"]) if m["d2"] else None
            start, wd = m.start(), m["wd"]
            if d2 is not None and "wd2" in pattern.groupindex and m["wd2"] and not wd:
                # "Day 2 - Tuesday 3 August": a weekday on the second day only is no range; the date is the second
                start, d, d2, wd = m.start("wd2"), d2, None, m["wd2"]
            if not 1 <= d <= 31 or (d2 is not None and not d < d2 <= 31):
                continue
            found.append(
                RawDate(
                    start, m.end(), orig[start : m.end()], "date", int(m["y"]) if m["y"] else None,
                    g.months[_norm(raw_month)], d, _weekday(g, wd), day2=d2,
                    month2=g.months[_norm(raw_month)] if d2 else None, joined_by="-" if d2 else "",
                )
            )
    for m in _around(g.fuzzy_re, text, months):
        raw_month = m["m"]
        if raw_month in g.capitalised_only and not orig[m.start("m")].isupper():
            continue
        found.append(
            RawDate(m.start(), m.end(), orig[m.start() : m.end()], "fuzzy", int(m["y"]) if m["y"] else None,
                    g.months[_norm(raw_month)], g.fuzzy[_norm(m["f"])])
        )
    for m in g.relative.finditer(text) if relative else ():
        if m["rel"]:
            word = _norm(m["rel"])
            rel = 0 if word in g.today_words else 1
            found.append(RawDate(m.start(), m.end(), orig[m.start() : m.end()], "relative", None, 0, 0, rel_days=rel))
        else:
            found.append(
                RawDate(m.start(), m.end(), orig[m.start() : m.end()], "relative", None, 0, 0, _weekday(g, m["wd"]))
            )
    for m in g.weekday_re.finditer(text) if relative else ():
        # "by COB Friday", "due Monday noon": a weekday alone right after a deadline word is the next such
        # day (a weekday anywhere else is no date: "on Fridays", "Monday's call" are not pinned)
        wd = m["wd"]
        if len(wd) < 3 or (wd in g.capitalised_only and not orig[m.start()].isupper()) or text.startswith("'s", m.end()):
            continue
        lo = max(0, m.start() - 40)
        # (only a strong deadline word: "before Wednesday" often means before that day's meeting, not a due day)
        if g.deadline_prep.search(text, lo, m.start()):
            found.append(RawDate(m.start(), m.end(), orig[m.start() : m.end()], "relative", None, 0, 0, _weekday(g, wd),
                                 alone=True))
    for m in g.month_day.finditer(text) if month_day and g.month_day is not None else ():
        if 1 <= int(m["d"]) <= 31:
            found.append(RawDate(m.start(), m.end(), orig[m.start() : m.end()], "relative", None, 0, int(m["d"]),
                                 _weekday(g, m["wd"])))
    # Longest first at each place, then drop anything overlapping an earlier pick.
    found.sort(key=lambda r: (r.start, -(r.end - r.start)))
    picked: list[RawDate] = []
    for r in found:
        if picked and r.start < picked[-1].end:
            if picked[-1].form == "relative" and r.form == "date" and r.end > picked[-1].end:
                picked[-1] = _apposed(picked[-1], r, orig)  # "this Thursday, 12 March"
            continue
        if picked and {r.form, picked[-1].form} == {"relative", "date"} and _APPOSED.fullmatch(text, picked[-1].end, r.start):
            picked[-1] = _apposed(picked[-1], r, orig)  # "tomorrow, Tuesday 10 March", "on 10 March (tomorrow)"
            continue
        picked.append(r)
    for n, r in enumerate(picked):
        # "2016-07-08 (Friday)", "12/03/2026, Thursday": the weekday written after a date is part of it
        if r.form == "date" and r.weekday is None and r.day2 is None:
            gap = _WEEKDAY_GAP.match(text, r.end)
            w = g.weekday_re.match(text, gap.end()) if gap else None
            # only where the weekday closes the date: "(Friday)", ", Friday." -- not "5 May, Monday's call"
            closes = w is not None and (
                text[w.end() : w.end() + 1] == ")" if gap and "(" in gap.group(0)
                else _WEEKDAY_END.match(text, w.end()) is not None
            )
            if w is not None and closes and len(w["wd"]) >= 3 and (n + 1 == len(picked) or picked[n + 1].start >= w.end()):
                end = w.end() + (1 if gap and "(" in gap.group(0) and text[w.end() : w.end() + 1] == ")" else 0)
                picked[n] = replace(r, end=end, text=orig[r.start : end], weekday=_weekday(g, w["wd"]))
    return _join(text, orig, picked, g)


_WEEKDAY_GAP = re.compile(r"\s{0,2}[,(]\s{0,2}")
_WEEKDAY_END = re.compile(r"\s{0,2}(?:[.,;:]|$|(?:at|from|à|a las|de)\s)")


_APPOSED = re.compile(r"[\s,(]{0,4}")


def _apposed(a: RawDate, b: RawDate, orig: str) -> RawDate:
    """A relative day and a calendar date written side by side for one day: the date, keeping what the relative
    word says so that resolve() can flag the two when they disagree."""
    rel, cal = (a, b) if a.form == "relative" else (b, a)
    return RawDate(
        a.start, b.end, orig[a.start : b.end], "date", cal.year, cal.month, cal.day,
        cal.weekday if cal.weekday is not None else rel.weekday, cal.month2, cal.day2, cal.year2, cal.joined_by,
        rel.rel_days, cal.conflict,
    )


def _around(pattern: re.Pattern[str], text: str, anchors: list[tuple[int, int]]) -> list[re.Match[str]]:
    """Matches of `pattern` that contain one of the anchors (month names), searched only near them."""
    out: list[re.Match[str]] = []
    last_end = -1
    for a, b in anchors:
        if b <= last_end:
            continue
        pos = max(0, a - 48, last_end)
        while True:
            m = pattern.search(text, pos, min(len(text), b + 40))
            if m is None or m.start() > a:
                break
            if m.end() >= b:
                out.append(m)
                last_end = m.end()
                break
            pos = m.start() + 1
    return out


def _join(text: str, orig: str, dates: list[RawDate], g: Grammar) -> list[RawDate]:
    """'30 September - 2 October' is one range; 'July 24, 2023 July 31, 2023' is one date written twice."""
    out: list[RawDate] = []
    i = 0
    while i < len(dates):
        a = dates[i]
        b = dates[i + 1] if i + 1 < len(dates) else None
        if b is not None and a.form == b.form and a.day2 is None and b.day2 is None and a.form != "relative":
            between = text[a.end : b.start]
            jm = g.range_join.match(between)
            if jm and (between.strip().lower() not in ("and", "y", "et", "e") or _before_is_between(text, a.start)):
                out.append(
                    RawDate(a.start, b.end, orig[a.start : b.end], a.form, a.year or b.year, a.month, a.day, a.weekday,
                            b.month, b.day, b.year, between.strip().lower() or "-")
                )
                i += 2
                continue
            if a.form == "date" and g.two_dates.match(between) and a.year and b.year:
                later = b if (b.year, b.month, b.day) >= (a.year, a.month, a.day) else a
                why = f"two dates for one item: '{a.text.strip()}' and '{b.text.strip()}'; taking the later"
                out.append(
                    RawDate(a.start, b.end, orig[a.start : b.end], "date", later.year, later.month, later.day,
                            later.weekday, conflict=why)
                )
                i += 2
                continue
        out.append(a)
        i += 1
    return out


def _before_is_between(text: str, pos: int) -> bool:
    return bool(re.search(r"(?:between|entre|from|du)\s{1,2}(?:the\s)?$", text[max(0, pos - 12) : pos]))


def _norm(word: str) -> str:
    return re.sub(r"\s+", " ", word.strip().rstrip(".,").lower())


def _weekday(g: Grammar, word: str | None) -> int | None:
    return g.weekdays.get(_norm(word)) if word else None


@dataclass(frozen=True)
class Resolved:
    """A date expression pinned to calendar days."""

    first: date
    last: date | None
    approx: bool
    past_year: bool  # the year was inferred as the past one
    conflict: str | None


def _safe(y: int, m: int, d: int) -> date | None:
    if d == -1:
        d = calendar.monthrange(y, m)[1]
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _infer_year(m: int, d: int, ref: date, lean_past: bool, years: set[int] | frozenset[int] = frozenset()) -> int | None:
    """The next such day on or after the reference, unless the same day in the recent past is far more plausible."""
    this = _safe(ref.year, m, d)
    if this is None:
        this = _safe(ref.year + 1, m, d)
        if this is None:
            return None
    future: date | None
    past: date | None
    if this >= ref:
        future, past = this, _safe(ref.year - 1, m, d)
    else:
        future, past = _safe(ref.year + 1, m, d), this
    if future is None:
        return past.year if past else None
    if past is None:
        return future.year
    f, p = (future - ref).days, (ref - past).days
    # "IGF 2021 ... 6-10 December": the coming year written in the same sentence keeps the day ahead. (Only
    # ahead: "workshops at the 2011 and 2012 IGFs ... by 22 March" speaks of other years.)
    if future.year in years and past.year not in years:
        return future.year
    # The next such day, unless: a day a few days back is history ("by the Sept 20 deadline" written on
    # 25 September), so is a day up to six weeks back rather than most of a year ahead, and past tense
    # around the date ("took place on 5 December") makes the nearer past day win.
    if p <= 7 or (p <= 45 and f >= 300) or (lean_past and p < f):
        return past.year
    return future.year


def resolve(r: RawDate, ref: date, *, lean_past: bool = False, years: set[int] | frozenset[int] = frozenset()) -> Resolved | None:
    """Pin the expression to days; None when it names no calendar day (a fuzzy 'late August', an impossible date)."""
    if r.either_order:
        fits = []
        for month, mday in ((r.month, r.day), (r.day, r.month)):
            res = resolve(replace(r, month=month, day=mday, either_order=False), ref, lean_past=lean_past, years=years)
            if res is not None and res.conflict is None:
                fits.append(res)
        return fits[0] if len(fits) == 1 else None  # both orders fit the weekday (or neither): nothing says which
    if r.form == "relative":
        if r.rel_days is not None:
            return Resolved(ref + timedelta(days=r.rel_days), None, False, False, None)
        if r.day:  # "the 15th": the next such day of a month, on or after the post
            y, m = ref.year, ref.month
            while (day := _safe(y, m, r.day)) is None or day < ref:
                y, m = (y + 1, 1) if m == 12 else (y, m + 1)
            wrong = r.weekday is not None and day.weekday() != r.weekday
            return Resolved(day, None, False, False, (
                f"the text says {calendar.day_name[r.weekday]} for day {r.day} of the month, but {day.isoformat()} is a "  # type: ignore[index]
                f"{calendar.day_name[day.weekday()]}"
            ) if wrong else None)
        if r.weekday is None:
            return None
        if r.alone and (r.weekday == ref.weekday() or lean_past):
            # "by Monday" written on a Monday: today or a week later, nothing says which; "the editors sent it by
            # Friday": a day gone by, which a weekday alone cannot say
            return None
        return Resolved(ref + timedelta(days=(r.weekday - ref.weekday()) % 7), None, False, False, None)
    if r.form == "fuzzy" and r.day == 0:
        return None
    year = r.year or _infer_year(r.month, 28 if r.day == -1 else r.day, ref, lean_past, years)
    if year is None:
        return None
    first = _safe(year, r.month, r.day)
    if first is None:
        return None
    if r.year is None and r.weekday is not None and first.weekday() != r.weekday:
        # The written weekday picks between this year's and the neighbouring year's day, when one fits.
        for other in (year + 1, year - 1):
            alt = _safe(other, r.month, r.day)
            if alt is not None and alt.weekday() == r.weekday and -92 <= (alt - ref).days <= 366:
                year, first = other, alt
                break
    conflict = r.conflict
    if r.rel_days is not None and first != ref + timedelta(days=r.rel_days):
        # "tomorrow, 12 March" written on 10 March: the calendar date is the one to keep, flagged.
        conflict = (
            f"the text says {'today' if r.rel_days == 0 else 'tomorrow'} ({(ref + timedelta(days=r.rel_days)).isoformat()}) "
            f"but also {first.isoformat()}; taking {first.isoformat()}"
        )
    if r.weekday is not None and first.weekday() != r.weekday:
        wanted = r.weekday
        shift = (wanted - first.weekday() + 3) % 7 - 3  # nearest day with the written weekday, -3..+3
        written = first
        first = first + timedelta(days=shift)
        conflict = (
            f"the text says {calendar.day_name[wanted]} but {written.isoformat()} is a "
            f"{calendar.day_name[written.weekday()]}; taking {calendar.day_name[wanted]} {first.isoformat()}"
        )
    last = None
    if r.day2 is not None and r.month2 is not None:
        y2 = r.year2 or year
        if (r.month2, r.day2) < (r.month, r.day) and not r.year2:
            y2 = year + 1
        last = _safe(y2, r.month2, r.day2)
        if last is None or last < first:
            return None
    return Resolved(first, last, r.form == "fuzzy", r.year is None and first < ref, conflict)


@dataclass(frozen=True)
class TimeSpan:
    start: int
    end: int
    h1: int
    m1: int
    h2: int | None
    m2: int | None


def _clock(m: re.Match[str]) -> tuple[int, int, str | None, bool] | None:
    """(hour, minute, am/pm, explicit) of one time token; explicit: it is a time on its own (not a bare number)."""
    if m["word"]:
        word = m["word"].lower()
        return (0, 0, None, True) if word == "midnight" else (12, 0, None, True)
    if m["hh"]:
        return int(m["hh"]), int(m["mm"]), None, True
    h = int(m["h"])
    mi = int(m["mi"]) if m["mi"] else 0
    ap = m["ap"].lower() if m["ap"] else None
    explicit = bool(m["ap"]) or m["sep"] in (":", "h", ".") or bool(m["hsuf"])
    if ap and not 1 <= h <= 12:
        return None
    return h, mi, ap, explicit


def _to24(h: int, ap: str | None) -> int:
    if ap == "p" and h < 12:
        return h + 12
    if ap == "a" and h == 12:
        return 0
    return h


def find_times(text: str, g: Grammar, lo: int, hi: int) -> list[TimeSpan]:
    """Clock times and time ranges ('15:00', '3-6pm', 'from 12:50 to 14:20', '2000UTC') in text[lo:hi]."""
    out: list[TimeSpan] = []
    pos = lo
    while pos < hi:
        m = g.time_re.search(text, pos, hi)
        if not m:
            break
        c1 = _clock(m)
        pos = m.end()
        if c1 is None:
            continue
        j = g.time_join.match(text, m.end(), hi)
        m2 = g.time_re.match(text, j.end(), hi) if j else None
        c2 = _clock(m2) if m2 else None
        if m2 is not None and c2 is not None and c2[3]:
            h1, mi1, ap1, _ = c1
            h2, mi2, ap2, _ = c2
            if ap1 is None and ap2 is not None and h1 <= 12:
                h1_24 = _to24(h1, ap2)
                if h1_24 * 60 + mi1 > _to24(h2, ap2) * 60 + mi2:
                    h1_24 = _to24(h1, "a" if ap2 == "p" else "p")
            else:
                h1_24 = _to24(h1, ap1)
            if c1[3] or ap2 is not None:
                out.append(TimeSpan(m.start(), m2.end(), h1_24, mi1, _to24(h2, ap2), mi2))
                pos = m2.end()
                continue
        if c1[3]:
            out.append(TimeSpan(m.start(), m.end(), _to24(c1[0], c1[2]), c1[1], None, None))
    return out


# An ISO 8601 offset written right after a time: the same groups as zone_re's "UTC+1" form.
_ISO_OFFSET = re.compile(r"(?P<base>)(?P<sign>[+\-])(?P<oh>[01]\d):?(?P<om>[0-5]\d)(?!\d)")


def find_zone(text: str, g: Grammar, pos: int, limit: int = 45) -> tuple[str, re.Match[str]] | None:
    """The first zone written within `limit` characters after pos (no other clock time in between)."""
    window = text[pos : pos + limit]
    if window[:1] in "+-" and (iso := _ISO_OFFSET.match(window)):  # "2026-03-12T15:00+01:00"
        return window[: iso.end()], iso
    m = g.zone_re.search(window)
    if not m:
        return None
    if g.time_re.search(window, 0, m.start()) and re.search(r"\d[:h]\d\d", window[: m.start()]):
        return None
    if m["name"] == "Z" and m.start() != 0:
        return None
    if m["name"]:
        # "CST, UTC-6", "EST (GMT-5)": the offset written next to a name is what the author means (Mexico City kept
        # "CST" when it dropped summer time; a name's season is only a guess), so it wins over the name.
        wide = text[pos : pos + m.end() + 16]  # offsets stay relative to pos, as the callers expect
        spelled = _SPELLED_OFFSET.match(wide, m.end())
        if spelled:
            off = g.zone_re.match(wide, spelled.start("z"), spelled.end("z"))
            if off is not None and off["sign"]:
                return wide[m.start() : off.end()], off
    elif m["sign"] and (label := _LABELLED_OFFSET.match(window, m.end())):
        # "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris" (Outlook): the label shows the zone's standard offset all
        # year, so in summer the named place's own time is the one meant.
        wide = text[pos : pos + label.end() + 60]  # offsets stay relative to pos, as the callers expect
        place = g.zone_re.match(wide, label.end())
        if place is not None and place["name"] and _is_standard(m, place["name"]):
            return wide[m.start() : place.end()], place
    return window[m.start() : m.end()], m


_LABELLED_OFFSET = re.compile(r"\)\s{0,2}")


def _is_standard(offset: re.Match[str], name: str) -> bool:
    """The written offset is the named place's winter (standard) offset."""
    iana = ZONES[name][1]
    if iana is None:
        return False
    sign = -1 if offset["sign"] in "-−–" else 1
    written = timedelta(minutes=sign * (int(offset["oh"]) * 60 + int(offset["om"] or 0)))
    zone = ZoneInfo(iana)
    return written == min(datetime(2025, 1, 15, tzinfo=zone).utcoffset() or timedelta(0),
                          datetime(2025, 7, 15, tzinfo=zone).utcoffset() or timedelta(0))


# Right after a zone name: the same zone as an offset ("CST, UTC-6", "PST (UTC-8)", "CET / GMT+1").
_SPELLED_OFFSET = re.compile(r"\s{0,2}[,/(]?\s{0,2}(?P<z>(?:UTC|GMT)\s?[+\-−–]\s?\d{1,2}(?::?[0-5]\d)?)(?![\d:])")


def zone_offset(m: re.Match[str], day: date, h: int, mi: int) -> tuple[timezone, str | None]:
    """The UTC offset a zone means on that day, and why it contradicts the season if it does."""
    if m["sign"]:
        sign = -1 if m["sign"] in "-−–" else 1
        minutes = int(m["oh"]) * 60 + int(m["om"] or 0)
        return timezone(timedelta(minutes=sign * minutes)), None
    name = m["name"]
    fixed, iana, summer = ZONES[name]
    if iana is None:
        return timezone(timedelta(minutes=fixed)), None
    local = datetime.combine(day, time(h % 24, mi), tzinfo=ZoneInfo(iana))
    offset = local.utcoffset() or timedelta(0)
    is_summer = bool(local.dst())
    if summer is None or summer == is_summer:
        return timezone(offset), None
    season = "summer" if is_summer else "winter"
    return timezone(offset), (
        f"{name} is {'summer' if summer else 'winter'} time, but {iana} is on {season} time on {day.isoformat()}; "
        f"read as local time (UTC{_fmt(offset)})"
    )


def _fmt(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
