"""Reading a message: raw bytes -> one normalized, frozen record. Never raises on bad mail."""

from __future__ import annotations

import email
import email.feedparser
import email.header
import email.message
import email.parser
import email.utils
import hashlib
import html
import itertools
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

log = logging.getLogger(__name__)

# Headers kept for routing, loop guards and threading (lower-case names).
KEPT_HEADERS = (
    "in-reply-to",
    "references",
    "auto-submitted",
    "precedence",
    "return-path",
    "x-loop",
    "authentication-results",
    "list-id",
    "list-post",
    "reply-to",
    "sender",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
)


@dataclass(frozen=True)
class Message:
    message_id: str
    subject: str
    sender: str  # the From address, lower-case
    sender_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime  # aware; the reference date of every relative date in the text
    date_from_header: bool  # False: no usable Date header, `date` is when it arrived
    body: str  # the whole decoded text
    text: str  # new text: quoted replies and the signature removed (forwarded parts kept)
    own_text: str  # new text before any forwarded part (what the sender wrote themself)
    quoted: str
    signature: str
    html: bool  # the text came from an HTML part
    truncated: bool  # the body was larger than the cap and was cut
    headers: dict[str, str] = field(default_factory=dict)  # KEPT_HEADERS that are present
    defects: tuple[str, ...] = ()

    @property
    def list_id(self) -> str:
        value = self.headers.get("list-id", "")
        m = re.search(r"<([^<>]+)>", value)
        return (m.group(1) if m else value).strip().lower()


# Compiled here, not by re.sub(pattern, ...): each multipart mail compiles its boundary through re's cache,
# which would push these out and compile them again and again during an import.
_FOLD = re.compile(r"[\r\n]+[ \t]*")
_ANY_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")


def decode_header(value: object) -> str:
    """An RFC 2047 header as text, unfolded; undecodable parts replaced, never an exception."""
    if value is None:
        return ""
    text = ""
    if isinstance(value, str) and "=?" not in value:
        # No encoded word: email.header.decode_header would hand the string back unchanged.
        text = value
    else:
        text = _decode_words(value)
    if "\r" in text or "\n" in text:
        text = _FOLD.sub(" ", text)
    return text.replace("\x00", "").strip()


def _decode_words(value: object) -> str:
    text = ""
    try:
        # A Header object is what the parser makes of raw 8-bit bytes (often unannounced UTF-8).
        parts = email.header.decode_header(value if isinstance(value, email.header.Header) else str(value))
        out = []
        for chunk, charset in parts:
            if isinstance(chunk, bytes):
                out.append(_decode_bytes(chunk, charset))
            else:
                out.append(chunk)
        # decode_header drops the spaces between encoded and plain words; it keeps them in plain chunks
        text = "".join(out) if len(parts) > 1 else out[0] if out else ""
    except Exception:
        text = str(value)
    return text


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset (bad bytes replaced); undeclared or unknown: UTF-8 if valid, else Latin-1."""
    if charset and charset.lower() not in ("unknown-8bit", "x-unknown"):
        try:
            return data.decode(charset, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# One bare address, or a name of plain words and one address in <>: most From and To headers of list mail. For
# these, email.utils.getaddresses gives [(name or "", address)], after ~7 us in its character-by-character parser.
_PLAIN_ADDRESS = re.compile(
    r"(?:([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) <)?([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?(1)>)"
)


def _getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """email.utils.getaddresses(values), without its parser for one plain address (see _PLAIN_ADDRESS)."""
    if len(values) == 1:
        m = _PLAIN_ADDRESS.fullmatch(values[0])
        if m:
            return [(m.group(1) or "", m.group(2))]
    return email.utils.getaddresses(values)


def _addresses(values: list[str]) -> tuple[str, ...]:
    if not values:  # no such header
        return ()
    try:
        pairs = _getaddresses([decode_header(v) for v in values])
    except Exception:
        return ()
    return tuple(addr.strip().lower() for _, addr in pairs if "@" in addr)


def parse_date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime, or None when there is none or it cannot be read."""
    if not value:
        return None
    try:
        d = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:  # "-0000": the zone is unknown; RFC 5322 says treat it as UTC
        d = d.replace(tzinfo=UTC)
    return d


class _HTMLText(HTMLParser):
    """HTML to plain text: block tags become line breaks, links keep their URL, scripts are dropped."""

    BLOCK = frozenset(
        "p div br li tr h1 h2 h3 h4 h5 h6 ul ol table blockquote pre hr section article header footer".split()
    )
    SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.href: list[str | None] = []
        self.cells = 0  # cells opened in the current table row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            # "<td>Deadline</td><td>20 May</td>": cells kept apart ("Deadline | 20 May"), never run together
            if self.cells:
                self.parts.append(" | ")
            self.cells += 1
        elif tag == "tr":
            self.cells = 0
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")
        if tag == "a":
            self.href.append(dict(attrs).get("href"))
        if tag == "blockquote":
            self.parts.append("\n> ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")
        if tag == "a" and self.href:
            href = self.href.pop()
            if href and href.startswith(("http://", "https://")):
                self.parts.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        # Each run of white space as one space, what re.sub(r"\s+", " ", data) does; by str.split, which sees the same
        # white space as \s: the regex also replaced every single space between two words, and took a third of
        # html_to_text.
        words = " ".join(data.split())
        if not words:
            self.parts.append(" " if data else "")
            return
        if data[0].isspace():
            words = " " + words
        if data[-1].isspace():
            words += " "
        self.parts.append(words)


def html_to_text(markup: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is a last resort
        return html.unescape(_ANY_TAG.sub(" ", markup))
    # Spaces and tabs dropped around every line break (what re.sub(r"[ \t]*\n[ \t]*", "\n", text) did: that pattern
    # starts with no fixed character, so re tried it at every position, 150 us on a 10 KB post). Stripping the
    # first line's start and the last line's end as well changes nothing: strip() below drops them anyway.
    text = "\n".join([line.strip(" \t") for line in "".join(parser.parts).split("\n")])
    return _BLANK_LINES.sub("\n\n", text).strip()


def _part_text(part: email.message.Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    if not isinstance(payload, bytes):
        return str(payload)
    try:
        charset = part.get_content_charset() or "utf-8"
    except Exception:
        charset = "utf-8"
    return _decode_bytes(payload, charset)


def _body(msg: email.message.Message) -> tuple[str, bool]:
    """The text of the first text/plain part (unless it is blank), else the first text/html part as text."""
    plain = html_part = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = str(part.get("Content-Disposition", "")).lower()
        if disposition.startswith("attachment"):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html_part is None:
            html_part = part
        if plain is not None and html_part is not None:
            break
    if plain is not None:
        text = _part_text(plain)
        if text.strip() or html_part is None:
            return text, False
        # an empty text/plain alternative (some clients send one): the HTML part says what the mail says
    if html_part is not None:
        return html_to_text(_part_text(html_part)), True
    if not msg.is_multipart() and msg.get_content_maintype() == "text":
        return _part_text(msg), False
    return "", False


# Lines that start a quoted reply block (everything from there on is old text).
_REPLY_HEADER = re.compile(
    r"^(?:On\b.{0,200}\bwrote:?|Am\b.{0,200}\bschrieb.{0,80}:|Le\b.{0,200}\ba écrit\s*:|El\b.{0,200}\bescribió:"
    r"|-{2,}\s*Original Message\s*-{2,}|-{2,}\s*Ursprüngliche Nachricht\s*-{2,}|_{10,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\*?(From|De|Von|Van):\*?\s.+$")
_OUTLOOK_NEXT = re.compile(r"^\*?(Sent|Date|Envoyé|Gesendet|Enviado|To|Subject|Objet|Betreff):\*?\s")
_FORWARD = re.compile(
    r"^\s*(-{2,}\s*Forwarded message\s*-{2,}|-{2,}\s*Message transféré\s*-{2,}|Begin forwarded message:"
    r"|-{2,}\s*Weitergeleitete Nachricht\s*-{2,})",
    re.IGNORECASE,
)
FORWARD_LINE = _FORWARD  # the line that opens a forwarded message (the extractor tells what was forwarded)
# "Message: 2" over "Date:/From:/Subject:" lines: a part of a list digest, new text, not a quoted reply
_DIGEST_PART = re.compile(r"^Message:\s?\d{1,4}\s*$")
_SIG = re.compile(r"^(-- ?|--)$")
_LIST_FOOTER = re.compile(r"^_{20,}\s*$")
_WROTE_TAIL = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
_MARKER_START = frozenset(">-_*B")


def split_body(body: str) -> tuple[str, str, str, str]:
    """(new text, own text before any forwarded part, quoted text, signature) of a plain-text body."""
    lines = body.split("\n")
    new: list[str] = []
    quoted: list[str] = []
    signature: list[str] = []
    own_end: int | None = None
    in_forward = False
    n = len(lines)
    has_cr = "\r" in body  # else rstrip("\r") of every line is work for nothing
    for i, line in enumerate(lines):
        if has_cr:
            line = line.rstrip("\r")
        stripped = line.strip()
        # Fast path: every marker below starts with one of these characters, or has a colon, or ends in "wrote".
        if not stripped or (
            stripped[0] not in _MARKER_START and ":" not in stripped and not stripped.endswith("wrote")
        ):
            new.append(line)
            continue
        if _FORWARD.match(line):
            in_forward = True
            if own_end is None:
                own_end = len(new)
            new.append(line)
            continue
        if stripped.startswith(">"):
            quoted.append(line)
            continue
        if not in_forward and _SIG.match(line):
            signature = lines[i + 1 :]
            break
        if not in_forward and _LIST_FOOTER.match(stripped) and _looks_like_footer(lines[i + 1 : i + 8]):
            signature = lines[i:]
            break
        if not in_forward and (
            _REPLY_HEADER.match(stripped)
            or (
                _OUTLOOK_FROM.match(stripped) and i + 1 < n and _OUTLOOK_NEXT.match(lines[i + 1].strip())
                and not any(_DIGEST_PART.match(x) for x in lines[max(0, i - 3) : i])
            )
            # _WROTE_TAIL ends in ':' and stripped has no trailing space: the endswith test spares most lines its scan
            or (stripped.endswith(":") and _WROTE_TAIL.search(stripped) and i + 1 < n
                and lines[i + 1].lstrip().startswith(">"))
        ):
            quoted.extend(lines[i:])
            break
        new.append(line)
    text = "\n".join(new).strip()
    own = "\n".join(new[:own_end] if own_end is not None else new).strip()
    return text, own, "\n".join(quoted).strip(), "\n".join(signature).strip()


def _looks_like_footer(lines: list[str]) -> bool:
    joined = " ".join(lines).lower()
    return any(w in joined for w in ("mailing list", "listinfo", "unsubscribe", "list info", "mailman"))


# Multipart boundaries without a regex compiled for each. Before Python 3.13, email.feedparser compiles
#     '(?P<sep>' + re.escape('--' + boundary) + r')(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$'
# for every multipart it reads: ~100 us a mail (its boundary is new, so re's cache never has it), a third of the
# parse of a multipart post. It only calls .match(line) on that pattern, and .group('end') and .group('linesep') on
# the match. A literal, then a fixed tail: "the line starts with the separator, and the tail matches from there" is
# the same test, and it is what Python 3.13's feedparser does itself (its boundaryendRE, the same tail). So, on the
# older versions, feedparser's `re` is this stand-in: every other pattern goes to re.compile unchanged.
_BOUNDARY_HEAD = "(?P<sep>"
_BOUNDARY_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_BOUNDARY_END = re.compile(_BOUNDARY_TAIL[1:])
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)  # re.escape's output back to the text (it puts a backslash before a character)


class _BoundaryLine:
    """A stand-in for feedparser's compiled boundary pattern (see above)."""

    def __init__(self, separator: str) -> None:
        self.separator = separator
        self.size = len(separator)

    def match(self, line: str) -> re.Match[str] | None:
        return _BOUNDARY_END.match(line, self.size) if line.startswith(self.separator) else None


class _FeedParserRe:
    """The `re` that email.feedparser sees: once imported, it calls only re.compile and re.escape."""

    escape = staticmethod(re.escape)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> re.Pattern[str] | _BoundaryLine:
        if flags == 0 and pattern.startswith(_BOUNDARY_HEAD) and pattern.endswith(_BOUNDARY_TAIL):
            escaped = pattern[len(_BOUNDARY_HEAD) : -len(_BOUNDARY_TAIL)]
            separator = _UNESCAPE.sub(r"\1", escaped)
            if re.escape(separator) == escaped:  # a whole escaped literal, nothing else
                return _BoundaryLine(separator)
        return re.compile(pattern, flags)


if not hasattr(email.feedparser, "boundaryendRE"):  # Python 3.13 matches boundaries this way already
    email.feedparser.re = _FeedParserRe  # type: ignore[attr-defined]


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")  # a line as FeedParser splits them, with its ending
# FeedParser's own tests for a header line and for the blank line that ends the headers (not in typeshed).
_HEADER_RE: re.Pattern[str] = email.feedparser.headerRE  # type: ignore[attr-defined]
_BLANK_RE: re.Pattern[str] = email.feedparser.NLCRE  # type: ignore[attr-defined]


def _head_end(text: str) -> int | None:
    """Where the header block of text ends (after its blank line), found the way FeedParser finds it; None when only
    the whole parser can tell what the mail is (headers up to the end, a body line right after the headers, which
    is a defect, or a misplaced envelope line, which the parser may hand to the body)."""
    pos = 0
    while True:
        m = _LINE.match(text, pos)
        if m is None:
            return None
        line = m.group()
        if not _HEADER_RE.match(line):
            return m.end() if _BLANK_RE.match(line) else None
        if pos and line.startswith("From "):
            return None
        pos = m.end()


def _read_head(head: str) -> email.message.Message:
    """A header block (header lines, then the blank line that ends them, as _head_end finds it) read as FeedParser
    reads it (compat32), with no payload yet.

    The common block (an envelope line first or none, "Name: value" lines and their continuations) is read here as
    FeedParser's _parse_headers does, without the parser's line-by-line machinery (~15 us a block); a block that
    makes the parser note a defect (a first line that continues nothing, a line that starts with ':') goes to it."""
    msg = email.message.Message()
    lines = _LINE.findall(head)[:-1]  # without the blank line
    value: list[str] = []  # the lines of the header being read
    for lineno, line in enumerate(lines):
        if line[0] in " \t":
            if not value:
                return email.parser.Parser().parsestr(head, headersonly=True)
            value.append(line)
            continue
        if value:
            msg.set_raw(*msg.policy.header_source_parse(value))
            value = []
        if line.startswith("From ") and lineno == 0:  # the envelope line (_head_end lets no later one through)
            msg.set_unixfrom(line.rstrip("\r\n"))
            continue
        if line.find(":") <= 0:
            return email.parser.Parser().parsestr(head, headersonly=True)
        value = [line]
    if value:
        msg.set_raw(*msg.policy.header_source_parse(value))
    return msg


def _single_part(text: str, end: int) -> email.message.Message | None:
    """text (headers ending at `end`) as FeedParser would read it, when it is neither multipart nor message/*."""
    head = text[:end]
    # A multipart or message/* type needs "multipart/" or "message/" in its Content-Type, which the parser lower-cases:
    # without them there is no need to parse the headers twice.
    low = head.lower()
    if "multipart/" in low or "message/" in low:
        return None
    msg = _read_head(head)
    if msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(text[end:])
    return msg


def _multipart(text: str, end: int) -> email.message.Message | None:
    """A plain multipart (headers ending at `end`) as FeedParser would read it: preamble, boundary, parts that are
    neither multipart nor message/*, a closing boundary, epilogue. None for anything else (nested multiparts,
    digests, CR line ends, a missing or doubled boundary line, parts the single-part path does not take...)."""
    if "\r" in text:  # then lines end at "\n" only, as the searches below assume
        return None
    msg = _read_head(text[:end])
    boundary = msg.get_boundary()
    if (
        boundary is None
        or msg.get_content_maintype() != "multipart"
        or msg.get_content_type() == "multipart/digest"  # its parts default to message/rfc822
        or str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary")  # a defect
    ):
        return None
    body = text[end:]
    separator = "--" + boundary
    # The boundary lines (start, end, closing?), up to the first closing one: FeedParser's test of each line, run
    # only on the lines that start with the separator.
    lines: list[tuple[int, int, bool]] = []
    at = 0 if body.startswith(separator) else body.find("\n" + separator) + 1 or -1
    while at >= 0:
        line_end = body.find("\n", at) + 1 or len(body)
        m = _BOUNDARY_END.match(body, at + len(separator), line_end)  # on the line alone, as the parser sees it
        if m:
            lines.append((at, line_end, bool(m.group("end"))))
            if m.group("end"):
                break
        at = body.find("\n" + separator, at) + 1 or -1
    if len(lines) < 2 or not lines[-1][2]:  # no part, or no closing boundary: the parser notes a defect
        return None
    parts: list[email.message.Message | str] = []
    for (_, part_start, _), (part_end, _, _) in itertools.pairwise(lines):
        if part_end == part_start:  # boundary lines one after the other: the parser skips them
            return None
        part = body[part_start:part_end]
        head_end = _head_end(part)
        sub = _single_part(part, head_end) if head_end is not None else None
        if sub is None:
            return None
        # The line break before a boundary line belongs to the boundary (RFC 2046). (Not from get_payload(),
        # which decodes undecodable bytes with replacement characters.)
        payload = part[head_end:]
        if payload.endswith("\n"):
            sub.set_payload(payload[:-1])
        parts.append(sub)
    msg.set_payload(parts)
    first = lines[0][0]
    if first:
        msg.preamble = body[: first - 1]  # without the line break before the first boundary
    msg.epilogue = body[lines[-1][1] :]
    return msg


def _parse(raw: bytes) -> email.message.Message:
    """email.message_from_bytes(raw) (compat32), without pushing a body through the parser line by line.

    The header block is found and read the way FeedParser finds and reads it (_read_head); when the mail is neither
    multipart nor message/* and a blank line ends the block, the rest is its payload, exactly as FeedParser would
    join it; a plain multipart is cut at its boundary lines and each part read the same way. Anything else (no
    blank line, no body, nested multiparts, message/*) goes through the whole parser."""
    text = raw.decode("ascii", "surrogateescape")
    end = _head_end(text)
    msg = None
    if end is not None:
        msg = _single_part(text, end)
        if msg is None and "multipart/" in text[:end].lower():
            msg = _multipart(text, end)
    return msg if msg is not None else email.message_from_bytes(raw)


def read_message(raw: bytes, *, received: datetime, max_body_bytes: int = 1_000_000) -> Message:
    """Bytes -> Message. `received` (aware) stands in for a missing or unreadable Date header."""
    defects: list[str] = []
    truncated = False
    # Parse at most a few times the body cap: a 20 MB mail is read in bounded time.
    raw_cap = max(4 * max_body_bytes, 256 * 1024)
    if len(raw) > raw_cap:
        raw = raw[:raw_cap]
        truncated = True
        defects.append(f"message larger than {raw_cap} bytes: cut")
    try:
        msg = _parse(raw)
    except Exception as exc:  # the compat32 parser almost never raises; be sure
        defects.append(f"unparseable: {exc}")
        msg = email.message_from_string(raw.decode("utf-8", errors="replace"))
    defects.extend(type(d).__name__ for d in getattr(msg, "defects", ())[:10])

    def header(name: str) -> str:
        try:
            return decode_header(msg.get(name))
        except Exception:
            return ""

    def all_headers(name: str) -> list[str]:
        try:
            return [str(v) for v in msg.get_all(name, [])]
        except Exception:
            return []

    try:
        body, is_html = _body(msg)
    except Exception as exc:
        defects.append(f"body unreadable: {exc}")
        body, is_html = "", False
    # Tested first: most bodies hold neither, and str.replace takes ~3 us on a 10 KB body even when it finds nothing.
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in body:
        body = body.replace("\x00", "")
    if len(body) > max_body_bytes:
        body = body[:max_body_bytes]
        truncated = True
    text, own, quoted, signature = split_body(body)

    date = parse_date(header("Date"))
    date_from_header = date is not None
    if date is None:
        date = received
    from_header = header("From")
    from_pairs = _getaddresses([from_header]) if from_header else []
    sender_name, sender = from_pairs[0] if from_pairs else ("", "")
    message_id = header("Message-ID").strip()
    # msg.get() lower-cases every header name on each call: the names present, once (for KEPT_HEADERS).
    present = {str(k).lower() for k in msg.keys()}
    if not message_id:
        # No Message-ID: a stable stand-in, so that importing the same file twice adds nothing.
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:32]}@listbot.invalid>"
    return Message(
        message_id=message_id,
        subject=header("Subject"),
        sender=sender.strip().lower(),
        sender_name=sender_name.strip(),
        to=_addresses(all_headers("To")),
        cc=_addresses(all_headers("Cc")),
        date=date,
        date_from_header=date_from_header,
        body=body,
        text=text,
        own_text=own,
        quoted=quoted,
        signature=signature,
        html=is_html,
        truncated=truncated,
        headers={h: header(h) for h in KEPT_HEADERS if h in present},
        defects=tuple(defects),
    )
