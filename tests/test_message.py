"""Reading a message: headers, dates, bodies, quotes and signatures, and bad mail that must never raise."""

import base64
import time
from datetime import UTC, datetime

import pytest

from bot import extract
from bot.message import html_to_text, read_message, split_body
from bot.rules import load_rules

RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def mail(headers: str, body: str | bytes) -> bytes:
    head = headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n"
    return head + (body if isinstance(body, bytes) else body.encode())


def test_headers_are_decoded():
    # RFC 2047 subjects and names are decoded; the Date header becomes an aware datetime.
    raw = mail(
        "From: =?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <Jose@Example.org>\n"
        "To: wg@lists.example.org, Other <other@example.org>\n"
        "Subject: =?utf-8?b?UmU6IMOcYmVyc2ljaHQ=?= and more\n"
        "Date: Wed, 04 Mar 2026 10:00:00 +0100\n"
        "Message-ID: <abc@example.org>\n"
        "Content-Type: text/plain; charset=utf-8",
        "Hello",
    )
    m = read_message(raw, received=RECEIVED)
    assert m.subject == "Re: Übersicht and more"
    assert m.sender == "jose@example.org" and m.sender_name == "José Pérez"
    assert m.to == ("wg@lists.example.org", "other@example.org")
    assert m.date == datetime(2026, 3, 4, 9, 0, tzinfo=UTC) and m.date.utcoffset() is not None
    assert m.date_from_header and m.message_id == "<abc@example.org>"


def test_no_date_uses_arrival_and_no_message_id_is_stable():
    # Without a Date header the arrival time is the reference; without a Message-ID a stable one is made.
    raw = mail("From: a@example.org\nSubject: hi", "text")
    first, second = read_message(raw, received=RECEIVED), read_message(raw, received=RECEIVED)
    assert first.date == RECEIVED and not first.date_from_header
    assert first.message_id == second.message_id and first.message_id.endswith("@listbot.invalid>")


def test_quoted_reply_and_signature_are_separated():
    # New text stays; the "On ... wrote:" block and the signature after "-- " are set apart.
    body = (
        "I agree, let's meet on 5 May.\n\n"
        "On Tue, 3 Mar 2026 at 10:00, Ana <ana@example.org> wrote:\n"
        "> Shall we meet on 4 May?\n"
        "> Ana\n"
    )
    text, own, quoted, signature = split_body(body)
    assert text == "I agree, let's meet on 5 May." and own == text
    assert "4 May" in quoted and "4 May" not in text
    text, _, _, signature = split_body("See you then.\n-- \nBen Okafor\nCoordinator\n")
    assert text == "See you then." and signature.startswith("Ben Okafor")


def test_outlook_reply_is_quoted():
    # An Outlook-style header block (From:/Sent:) starts the quoted part.
    body = "Thanks, noted.\n\nFrom: Ana <ana@example.org>\nSent: Tuesday, March 3, 2026 10:00 AM\nTo: wg\nSubject: x\n\nold text 4 May\n"
    text, _, quoted, _ = split_body(body)
    assert text == "Thanks, noted." and "old text" in quoted


def test_forwarded_part_is_text_but_not_own_text():
    # A forwarded announcement is read as part of the post, but is not what the sender wrote.
    body = "FYI below.\n\n---------- Forwarded message ---------\nFrom: x\nDeadline: 9 May\n"
    text, own, _, _ = split_body(body)
    assert "9 May" in text and own == "FYI below."


def test_html_only_mail():
    # An HTML-only mail is read as text, links kept, scripts and styles dropped.
    html = "<html><head><style>p{}</style></head><body><p>Meeting on <b>5 May</b></p><script>alert(1)</script><a href='https://x.example/a'>agenda</a></body></html>"
    raw = mail("From: a@example.org\nSubject: s\nContent-Type: text/html; charset=utf-8", html)
    m = read_message(raw, received=RECEIVED)
    assert m.html and "Meeting on 5 May" in m.text and "alert" not in m.text
    assert "https://x.example/a" in m.text
    assert html_to_text("<p>a &amp; b</p>") == "a & b"


def test_blank_plain_alternative_and_table_cells():
    # A blank text/plain alternative gives way to the HTML part; table cells are kept apart, not run together.
    html = "<table><tr><th>Step</th><th>Due</th></tr><tr><td>Abstracts</td><td>14 April 2026</td></tr></table>"
    raw = mail(
        'From: a@example.org\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="zz"',
        "--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n \r\n"
        f"--zz\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--zz--\r\n",
    )
    m = read_message(raw, received=RECEIVED)
    assert m.html and "Step | Due" in m.text and "Abstracts | 14 April 2026" in m.text
    assert [d.due for d in extract.analyze(m, load_rules()).deadlines] == ["2026-04-14"]


def test_body_cap_truncates_and_flags():
    # A body over the cap is cut to it and flagged.
    raw = mail("From: a@example.org\nSubject: s", "x" * 5000)
    m = read_message(raw, received=RECEIVED, max_body_bytes=1000)
    assert m.truncated and len(m.body) == 1000


def nested_base64() -> bytes:
    inner = base64.b64encode(b"Deadline: 12 March 2026\n").decode()
    return mail(
        'From: a@example.org\nSubject: nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"',
        '--o\r\nContent-Type: multipart/alternative; boundary="i"\r\n\r\n'
        "--i\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{inner}\r\n--i--\r\n--o--\r\n",
    )


BAD_MAIL = {
    "truncated MIME": mail(
        'From: a@example.org\nSubject: cut\nContent-Type: multipart/mixed; boundary="zz"',
        "--zz\r\nContent-Type: text/plain\r\n\r\nDeadline 3 April and then the mail just sto",
    ),
    "unknown charset": mail("From: a@example.org\nSubject: s\nContent-Type: text/plain; charset=x-klingon", b"caf\xe9 by 3 May"),
    "binary junk": bytes(range(256)) * 400,
    "20 MB body": mail("From: a@example.org\nSubject: big", "deadline 3 May 2026. " * 1_000_000),
    "no Date": mail("From: a@example.org\nSubject: s", "Submit by 3 May."),
    "Date in 1970": mail("From: a@example.org\nDate: Thu, 01 Jan 1970 00:00:00 +0000\nSubject: s", "by 3 May"),
    "Date in 2100": mail("From: a@example.org\nDate: Fri, 31 Dec 2100 23:59:59 -1200\nSubject: s", "by 3 May"),
    "garbage Date": mail("From: a@example.org\nDate: yesterday-ish\nSubject: s", "by 3 May"),
    "HTML only": mail("From: a@example.org\nSubject: s\nContent-Type: text/html", "<p>Due <i>3 May</i><p" * 1000),
    "nested base64": nested_base64(),
    "1 MB line": mail("From: a@example.org\nSubject: s", "1" * 300_000 + " 12 May 12:00-" * 50_000 + "(" * 100_000),
    "empty": b"",
    "headers only": b"Subject: nothing",
    "bad encoded-word": mail("From: =?utf-8?b?!!!?= <a@example.org>\nSubject: =?bogus?q?x?=", "x"),
}


@pytest.mark.parametrize("name", list(BAD_MAIL))
def test_bad_mail_never_raises_and_is_quick(name: str):
    # Each kind of broken mail is read (and analysed) without an exception in well under a second.
    rules = load_rules()
    started = time.perf_counter()
    m = read_message(BAD_MAIL[name], received=RECEIVED)
    ex = extract.analyze(m, rules)
    extract.to_json(ex)
    assert time.perf_counter() - started < 1.0
    assert m.date.tzinfo is not None


def test_nested_base64_body_is_found():
    # The text/plain part inside nested multiparts with base64 encoding is decoded.
    m = read_message(nested_base64(), received=RECEIVED)
    assert "Deadline: 12 March 2026" in m.text


def test_raw_8bit_headers_and_bodies():
    # Unannounced UTF-8 in a header is read as UTF-8; undeclared Latin-1 bytes fall back to Latin-1.
    raw = "From: Zoé <z@example.org>\r\nSubject: Appel à contributions\r\n\r\nbody".encode()
    assert read_message(raw, received=RECEIVED).subject == "Appel à contributions"
    raw = b"From: z@example.org\r\nSubject: caf\xe9 cr\xe8me\r\n\r\nbody"
    assert read_message(raw, received=RECEIVED).subject == "café crème"


@pytest.mark.parametrize(
    "boundary, linesep, close",
    [("b1", "\n", "--"), ("a.b*c(d)+?[x] |^$\\", "\r\n", "--  "), ("==x==", "\r", ""), ("q", "\n", "-- \t")],
)
def test_multipart_boundaries_parse_as_with_a_compiled_pattern(boundary, linesep, close):
    # bot.message gives email.feedparser a boundary test without a regex per mail (Python < 3.13): the parse
    # tree must be the one the stdlib's own compiled pattern gives.
    import email
    import email.feedparser
    import re

    quoted = boundary.replace("\\", "\\\\")
    lines = [
        f'Content-Type: multipart/mixed; boundary="{quoted}"', "", "preamble", f"--{boundary}", f"--{boundary} \t",
        "Content-Type: text/plain", "", "one", f"--{boundary}x", f"-{boundary}", f"--{boundary}",
        "", "two", f"--{boundary}{close}", "epilogue", "",
    ]
    raw = linesep.join(lines).encode()

    def tree(msg):
        return [(p._headers, p.preamble, p.epilogue, [type(d) for d in p.defects], p.get_payload()) for p in msg.walk()
                if not p.is_multipart()] + [(msg.preamble, msg.epilogue, len(msg.get_payload()))]

    ours = email.feedparser.re
    try:
        email.feedparser.re = re
        expected = tree(email.message_from_bytes(raw))
    finally:
        email.feedparser.re = ours
    assert tree(email.message_from_bytes(raw)) == expected


def test_digest_parts_are_new_text_not_a_quoted_reply():
    # In a list digest each part opens with "Message: N" over "Date:/From:/To:" lines: that is new text to read,
    # while an Outlook reply header ("From:" over "Sent:") still starts the quoted part.
    body = (
        "Today's Topics:\n\n   1. Tutorial day (Organisers)\n\n"
        "----------------------------------------------------------------------\n\n"
        "Message: 1\nDate: Tue, 3 Mar 2026 10:00:00 +0000\nFrom: Organisers <org@example.org>\n"
        "To: list@example.org\nSubject: Tutorial day\n\n"
        "The tutorial day takes place on 14 April 2026.\n"
    )
    text, _own, quoted, _sig = split_body(body)
    assert "takes place on 14 April 2026" in text and not quoted
    text, _own, quoted, _sig = split_body("Fine by me.\n\nFrom: Ana <ana@example.org>\nSent: Monday\n\nold text\n")
    assert text == "Fine by me." and "old text" in quoted
