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
_SPACES = re.compile(r"\s+")
_ANY_TAG = re.compile(r"<[^>]*>")
_LINE_EDGE = re.compile(r"[ \t]*\n[ \t]*")
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


def _addresses(values: list[str]) -> tuple[str, ...]:
    try:
        pairs = email.utils.getaddresses([decode_header(v) for v in values])
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
        if not self.skip:
            self.parts.append(_SPACES.sub(" ", data))


def html_to_text(markup: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is a last resort
        return html.unescape(_ANY_TAG.sub(" ", markup))
    text = "".join(parser.parts)
    text = _LINE_EDGE.sub("\n", text)
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
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i].rstrip("\r")
        stripped = line.strip()
        # Fast path: every marker below starts with one of these characters, or has a colon, or ends in "wrote".
        if not stripped or (
            stripped[0] not in _MARKER_START and ":" not in stripped and not stripped.endswith("wrote")
        ):
            new.append(line)
            i += 1
            continue
        if _FORWARD.match(line):
            in_forward = True
            if own_end is None:
                own_end = len(new)
            new.append(line)
            i += 1
            continue
        if stripped.startswith(">"):
            quoted.append(line)
            i += 1
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
            or (_WROTE_TAIL.search(stripped) and i + 1 < n and lines[i + 1].lstrip().startswith(">"))
        ):
            quoted.extend(lines[i:])
            break
        new.append(line)
        i += 1
    text = "\n".join(new).strip()
    own = "\n".join(new[:own_end] if own_end is not None else new).strip()
    return text, own, "\n".join(quoted).strip(), "\n".join(signature).strip()


def _looks_like_footer(lines: list[str]) -> bool:
    joined = " ".join(lines).lower()
    return any(w in joined for w in ("mailing list", "listinfo", "unsubscribe", "list info", "mailman"))


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")  # a line as FeedParser splits them, with its ending
# FeedParser's own tests for a header line and for the blank line that ends the headers (not in typeshed).
_HEADER_RE: re.Pattern[str] = email.feedparser.headerRE  # type: ignore[attr-defined]
_BLANK_RE: re.Pattern[str] = email.feedparser.NLCRE  # type: ignore[attr-defined]


def _parse(raw: bytes) -> email.message.Message:
    """email.message_from_bytes(raw) (compat32), without pushing a single-part body through the parser line by line.

    The header block is found the way FeedParser finds it and parsed by FeedParser; when the mail is neither
    multipart nor message/* and a blank line ends the block, the rest is its payload, exactly as FeedParser would
    join it. Anything else (no blank line, no body, multipart) goes through the whole parser."""
    text = raw.decode("ascii", "surrogateescape")
    pos = 0
    while True:
        m = _LINE.match(text, pos)
        if m is None:  # headers up to the end
            return email.message_from_bytes(raw)
        line = m.group()
        if not _HEADER_RE.match(line):
            if not _BLANK_RE.match(line):  # the body starts without a blank line: a defect, recorded by the parser
                return email.message_from_bytes(raw)
            break
        if pos and line.startswith("From "):  # a misplaced envelope line: the parser may hand it to the body
            return email.message_from_bytes(raw)
        pos = m.end()
    head = text[: m.end()]
    # A multipart or message/* type needs "multipart/" or "message/" in its Content-Type, which the parser lower-cases:
    # without them there is no need to parse the headers twice.
    low = head.lower()
    if "multipart/" in low or "message/" in low:
        return email.message_from_bytes(raw)
    msg = email.parser.Parser().parsestr(head, headersonly=True)
    if msg.get_content_maintype() in ("multipart", "message"):
        return email.message_from_bytes(raw)
    msg.set_payload(text[m.end() :])
    return msg


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
    body = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if len(body) > max_body_bytes:
        body = body[:max_body_bytes]
        truncated = True
    text, own, quoted, signature = split_body(body)

    date = parse_date(header("Date"))
    date_from_header = date is not None
    if date is None:
        date = received
    from_header = header("From")
    from_pairs = email.utils.getaddresses([from_header]) if from_header else []
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
