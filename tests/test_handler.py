"""The command handler end to end on a real SQLite store: one reply per mail, guards, proof, limits, injection."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.commands.base import REGISTRY, Command, Context, Reply
from bot.config import Config, from_dict
from bot.handler import handle
from bot.message import read_message
from bot.store import Store

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
MEMBER = "anna@example.org"
MOD = "mod@example.net"
AUTHSERV = "mx.example.org"
BOT = "listbot@example.org"
LIST = "wg@lists.example.org"


class Bot:
    """A store, a config, and a way to mail the bot and read what it queued."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.n = 0
        self.other: list[EmailMessage] = []

    def send(
        self,
        body: str = "",
        *,
        subject: str = "",
        sender: str = MEMBER,
        headers: str = "",
        now: datetime = NOW,
        raw: bytes | None = None,
        mid: str | None = None,
    ) -> list[EmailMessage]:
        """Mail the bot; returns the replies this mail added to the outbox (0 or 1)."""
        self.n += 1
        mid = mid or f"<m{self.n}@example.org>"
        if raw is None:
            head = f"From: Someone <{sender}>\nTo: {BOT}\nSubject: {subject}\nMessage-ID: {mid}\n"
            head += "Date: Tue, 01 Sep 2026 10:00:00 +0000\n" + (headers.strip() + "\n" if headers.strip() else "")
            head += "Content-Type: text/plain; charset=utf-8\n"
            raw = head.replace("\n", "\r\n").encode() + b"\r\n" + body.replace("\n", "\r\n").encode()
        before = self.count()
        msg = read_message(raw, received=now, max_body_bytes=self.config.bot.max_body_bytes)
        handle(self.store, msg, config=self.config, now=now)
        rows = self.store.db.execute("SELECT raw FROM outbox ORDER BY id").fetchall()[before:]
        mails = [email.message_from_bytes(bytes(r[0]), policy=email.policy.default) for r in rows]
        # Replies to this mail; anything else it caused (a personal digest) is kept in `other`.
        self.other = [m for m in mails if m["In-Reply-To"] != msg.message_id]
        return [m for m in mails if m["In-Reply-To"] == msg.message_id]

    def count(self) -> int:
        return int(self.store.db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def make_config(tmp_path: Path, **members: object) -> Config:
    roster = tmp_path / "roster.txt"
    roster.write_text(f"# the working group\n{MEMBER}\nBob <bob@example.org>\nbot2@example.com\n")
    return from_dict(
        {
            "bot": {"address": BOT},
            "list": {"address": LIST, "timezone": "Europe/Berlin"},
            "members": {"roster": str(roster), "moderators": [MOD], "authserv_id": AUTHSERV, **members},
        }
    )


def seed(store: Store, config: Config) -> None:
    """Item 1: an uncertain deadline; item 2: a meeting; item 3: a deadline far ahead; report 1 with a summary."""
    tz = config.tz
    store.add_message(message_id="<post1@example.org>", subject="CfC: charter", sender=MEMBER,
                      date=NOW - timedelta(days=3), now=NOW - timedelta(days=3))
    store.save_item(type="deadline", what="Comments on the charter", start="2026-09-20", end=None, tz=tz,
                    now=NOW, message_id="<post1@example.org>", text="Please comment by 20 September.", approx=True)
    store.save_item(type="meeting", what="WS2 call", start="2026-09-14T15:00:00+02:00",
                    end="2026-09-14T16:00:00+02:00", tz=tz, now=NOW, message_id="<post1@example.org>",
                    text="WS2 call on 14 Sept, 15:00 CEST.")
    store.save_item(type="deadline", what="Final report", start="2027-03-01", end=None, tz=tz, now=NOW,
                    message_id="<post1@example.org>", text="Final report due 1 March 2027.")
    store.add_message(message_id="<report1@example.org>", subject="Minutes 2026-08-31", sender=MEMBER,
                      date=datetime(2026, 9, 1, 8, tzinfo=UTC), now=NOW, kind="meeting_report",
                      summary={"title": "WS2 minutes", "date": "2026-08-31",
                               "sections": [{"heading": "Charter", "gist": "Agreed to comment"}],
                               "decisions": ["Adopt draft 3"], "next_steps": ["Anna sends feedback"]})


@pytest.fixture
def bot(tmp_path: Path):
    config = make_config(tmp_path)
    store = Store.open(tmp_path / "bot.sqlite3")
    seed(store, config)
    yield Bot(store, config)
    store.close()


def trusted(sender_domain: str = "example.net") -> str:
    return f"Authentication-Results: {AUTHSERV}; dkim=pass header.d={sender_domain}; dmarc=pass header.from={sender_domain}"


def test_one_threaded_reply_with_results_unprocessed_and_ignored(bot: Bot):
    # A mail with noise, a typo, two commands and a signature gets exactly one threaded reply, Mailman-style.
    replies = bot.send("Hi bot,\nupcomming\nupcoming 30\nDEADLINES 60\nThanks!\nAnna\n", subject="Re: question",
                       headers="References: <a@x>\nIn-Reply-To: <a@x>")
    assert len(replies) == 1
    r = replies[0]
    assert r["Subject"] == "Re: Re: question"
    assert r["In-Reply-To"] == "<m1@example.org>"
    assert r["References"] == "<a@x> <m1@example.org>"
    assert r["To"] == MEMBER
    assert r["Auto-Submitted"] == "auto-replied" and r["X-Loop"] == BOT
    body = text_of(r)
    assert "> upcoming 30" in body and "> DEADLINES 60" in body
    assert "[2] meeting: WS2 call" in body and "Mon 14 Sep 2026 15:00 CEST = 13:00 UTC" in body
    assert "(times in Europe/Berlin and UTC)" in body
    assert "did you mean 'upcoming'?" in body
    assert "- Ignored:\n    Thanks!\n    Anna" in body
    results = body.split("- Results:")[1].split("- Unprocessed:")[0]
    assert "WS2 call" not in results.split("> DEADLINES 60")[1]  # deadlines only


def test_reprocessed_mail_is_never_run_or_answered_twice(bot: Bot):
    # The same Message-ID handled again (a crash before the IMAP position was saved) adds nothing.
    assert len(bot.send("remind me 2", mid="<same@example.org>")) == 1
    assert bot.send("remind me 2", mid="<same@example.org>") == []
    assert len(bot.store.reminders_of(MEMBER)) == 1


def test_times_in_the_members_zone_and_utc(bot: Bot):
    # After 'timezone Asia/Kolkata' a meeting is shown in Kolkata time and in UTC.
    bot.send("timezone Asia/Kolkata")
    body = text_of(bot.send("next")[0])
    assert "Mon 14 Sep 2026 18:30 IST = 13:00 UTC" in body and "(times in Asia/Kolkata and UTC)" in body
    assert "unknown time zone" in text_of(bot.send("timezone Mars/Olympus")[0])
    assert bot.store.member(MEMBER)["timezone"] == "Asia/Kolkata"  # type: ignore[index]


def test_next_attaches_a_calendar(bot: Bot):
    # 'next' names the meeting and attaches its .ics.
    reply = bot.send("next")[0]
    attachments = list(reply.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["meeting-2.ics"]
    assert b"BEGIN:VEVENT" in attachments[0].get_content().encode()


def test_personal_reminders_and_cancel(bot: Bot):
    # Item, all-items and own reminders are recorded as the scheduler reads them; 'cancel r<id>' ends one.
    body = text_of(bot.send("remind me 1 before 3d,12h\nremind me all\nremind me in 3 days to check the agenda\n"
                            "remind me on 14 Sept 9:00 to send WS2 feedback\nreminders")[0])
    rows = bot.store.reminders_of(MEMBER)
    assert [(r["item_id"], r["offsets"]) for r in rows[:2]] == [(1, ["3d", "12h"]), (None, None)]
    assert rows[2]["at_utc"] == NOW + timedelta(days=3) and rows[2]["text"] == "check the agenda"
    assert rows[3]["at_utc"] == datetime(2026, 9, 14, 7, 0, tzinfo=UTC) and rows[3]["text"] == "send WS2 feedback"
    assert "r4  Mon 14 Sep 2026 09:00 CEST = 07:00 UTC:\n       send WS2 feedback" in body
    assert "r2  before every deadline and meeting, at the usual times" in body
    assert "Reminder r1 cancelled." in text_of(bot.send("cancel r1")[0])
    assert "no active reminder r1" in text_of(bot.send("cancel r1")[0])
    assert "only moderators cancel list items" in text_of(bot.send("cancel 2")[0])
    assert bot.store.item(2).status == "active"  # type: ignore[union-attr]


def test_bad_arguments_are_clear_and_change_nothing(bot: Bot):
    # Every mistake gets a one-line error with the command's usage; nothing is recorded.
    body = text_of(bot.send("remind me 99\nremind me yesterday to x\nupcoming lots\nshow\nremind me in 400 days to x")[0])
    assert body.count("Error:") == 5 and "there is no item 99" in body and "Usage: remind me" in body
    assert bot.store.reminders_of(MEMBER) == []


def test_digest_stop_start(bot: Bot):
    # digest on/off and stop/start are stored on the member; 'digest now' answers either way.
    bot.send("digest on")
    assert bot.store.member(MEMBER)["digest"] == 1  # type: ignore[index]
    bot.send("stop")
    assert bot.store.member(MEMBER)["stopped"] == 1  # type: ignore[index]
    bot.send("start\ndigest off")
    row = bot.store.member(MEMBER)
    assert row is not None and row["stopped"] == 0 and row["digest"] == 0
    assert "digest" in text_of(bot.send("digest now")[0]).lower()


def test_summary_and_show_audit_trail(bot: Bot):
    # 'summary' gives the latest report; 'show' gives the source sentence and the history.
    body = text_of(bot.send("summary\nsummary 2026-08-31\nshow 1")[0])
    assert body.count("Report 2: WS2 minutes") == 2 and "Decisions:\n  - Adopt draft 3" in body
    assert '"Please comment by 20 September."' in body and "CfC: charter" in body


# -- moderators and proof -----------------------------------------------------------------------------


def test_forged_moderator_command_is_not_run(bot: Bot):
    # A moderator's From without a trusted DMARC/DKIM pass changes nothing and asks for a token instead.
    forged_header = "Authentication-Results: evil.example; dmarc=pass header.from=example.net"
    before = bot.store.item(2)
    body = text_of(bot.send("cancel 2\nedit 2 what Hacked", sender=MOD, headers=forged_header)[0])
    assert bot.store.item(2) == before
    assert "needs confirmation" in body and "confirm " in body
    failing = f"Authentication-Results: {AUTHSERV}; dmarc=fail header.from=example.net"
    bot.send("cancel 2", sender=MOD, headers=failing)
    assert bot.store.item(2) == before


def test_non_moderator_is_refused(bot: Bot):
    # A member, even with a passing DMARC, cannot use moderator commands.
    body = text_of(bot.send("add deadline 2026-10-01 X", headers=trusted("example.org"))[0])
    assert "is for moderators only" in body
    assert len(bot.store.items()) == 3


def test_proven_moderator_changes_are_recorded(bot: Bot):
    # With a trusted DMARC pass, add/edit/confirm/reject/cancel act and each change is in 'show'.
    body = text_of(bot.send("add meeting 2026-09-21 14:00 UTC Plenary\nedit 1 date 2026-09-25\nconfirm 1\n"
                            "reject 3\ncancel 2\nshow 1\nstatus", sender=MOD, headers=trusted())[0])
    assert "Error" not in body and "Refused" not in body
    new = max(bot.store.items(), key=lambda i: i.id)
    assert new.what == "Plenary" and new.start_utc == datetime(2026, 9, 21, 14, 0, tzinfo=UTC)
    one = bot.store.item(1)
    assert one is not None and one.start == "2026-09-25" and not one.uncertain
    assert bot.store.item(3).status == "cancelled" and bot.store.item(2).status == "cancelled"  # type: ignore[union-attr]
    assert f"{MOD}: start 2026-09-20 -> 2026-09-25" in body
    assert f"{MOD}: uncertain 1 -> 0" in body


def test_token_works_once_and_expires(bot: Bot):
    # The confirmation token runs the pending commands once; a second use and an expired token do nothing.
    body = text_of(bot.send("edit 2 what Renamed call", sender=MOD)[0])
    token = body.split("\nconfirm ")[1].split()[0]
    assert bot.store.item(2).what == "WS2 call"  # type: ignore[union-attr]
    body = text_of(bot.send(f"confirm {token}", sender=MOD, now=NOW + timedelta(hours=1))[0])
    assert "Token accepted" in body and bot.store.item(2).what == "Renamed call"  # type: ignore[union-attr]
    again = text_of(bot.send(f"confirm {token}", sender=MOD, now=NOW + timedelta(hours=2))[0])
    assert "used already" in again
    assert len(bot.store.history(2)) == 2  # created + one change
    # Another sender cannot redeem someone's token.
    body = text_of(bot.send("cancel 2", sender=MOD)[0])
    token2 = body.split("\nconfirm ")[1].split()[0]
    bot.send(f"confirm {token2}", sender=MEMBER)
    assert bot.store.item(2).status == "active"  # type: ignore[union-attr]
    late = text_of(bot.send(f"confirm {token2}", sender=MOD, now=NOW + timedelta(hours=48, seconds=1))[0])
    assert "expired" in late and bot.store.item(2).status == "active"  # type: ignore[union-attr]


# -- who may use it, loops, limits -------------------------------------------------------------------


def test_nonmember_gets_one_short_refusal_a_day(tmp_path: Path, bot: Bot):
    # A stranger gets one refusal, then silence until a day has passed; with "never", nothing at all.
    first = bot.send("upcoming", sender="stranger@evil.example")
    assert len(first) == 1 and "not on its roster" in text_of(first[0])
    assert bot.send("upcoming", sender="stranger@evil.example", now=NOW + timedelta(hours=23)) == []
    assert len(bot.send("upcoming", sender="stranger@evil.example", now=NOW + timedelta(hours=25))) == 1
    quiet = Bot(bot.store, make_config(tmp_path, nonmember_reply="never"))
    assert quiet.send("help", sender="other@evil.example") == []


@pytest.mark.parametrize(
    "headers, sender, subject",
    [
        ("Auto-Submitted: auto-replied", MEMBER, "help"),
        ("Auto-Submitted: auto-generated", MEMBER, "help"),
        ("Precedence: bulk", MEMBER, "help"),
        ("Precedence: list", MEMBER, "help"),
        ("Return-Path: <>", MEMBER, "help"),
        ("", "MAILER-DAEMON@example.org", "help"),
        ("", "postmaster@example.org", "help"),
        ("", "noreply@example.org", "help"),
        ("", MEMBER, "Out of Office: help"),
        ("", MEMBER, "Automatische Antwort: help"),
        ("", BOT, "help"),
        (f"X-Loop: {BOT}", MEMBER, "help"),
        ("List-Id: <wg.lists.example.org>", MEMBER, "help"),
        ("", LIST, "help"),
    ],
)
def test_robots_and_list_traffic_get_no_answer(bot: Bot, headers: str, sender: str, subject: str):
    # Automatic mail, robots, our own mail and anything that came through the list are never answered.
    assert bot.send("help", subject=subject, sender=sender, headers=headers) == []


def test_two_bots_stop_after_one_exchange(bot: Bot):
    # Another bot (a member address, no Auto-Submitted) that answers our answer gets no second reply.
    first = bot.send("help", subject="help", sender="bot2@example.com")
    assert len(first) == 1
    ours = first[0]
    quoted = "\n".join("> " + line for line in text_of(ours).splitlines())
    echo = bot.send(f"Thank you for your message.\n{quoted}", subject="Re: " + str(ours["Subject"]),
                    sender="bot2@example.com", headers=f"In-Reply-To: {ours['Message-ID']}")
    assert echo == []
    # ... and a full copy of our answer pasted unquoted runs nothing either (its command lines start with '>').
    assert bot.send(text_of(ours), subject="Re: help", sender="bot2@example.com",
                    headers=f"In-Reply-To: {ours['Message-ID']}") == []


def test_rate_limit_one_notice_then_silence(bot: Bot):
    # 1,000 mails in a minute from one member: at most rate_per_hour replies plus one notice.
    limit = bot.config.members.rate_per_hour
    started = time.perf_counter()
    total = sum(len(bot.send("help", now=NOW + timedelta(seconds=i * 0.06))) for i in range(1000))
    assert total == limit + 1
    assert time.perf_counter() - started < 20
    assert bot.store.reply_count(NOW - timedelta(hours=1), address=MEMBER, kind="notice") == 1
    # An hour later the member is answered again.
    assert len(bot.send("help", now=NOW + timedelta(hours=1, minutes=2))) == 1


def test_global_cap(tmp_path: Path, bot: Bot):
    # Over the global cap nobody is answered, however many senders.
    capped = Bot(bot.store, make_config(tmp_path, global_rate_per_hour=3))
    answered = sum(len(capped.send("help", sender=s)) for s in (MEMBER, "bob@example.org", MOD, MEMBER, "bob@example.org"))
    assert answered == 3


def test_subject_injection_adds_no_header(bot: Bot):
    # An encoded CR/LF in the Subject cannot add a Bcc (or any) header to the reply.
    raw = (f"From: {MEMBER}\r\nTo: {BOT}\r\nMessage-ID: <inj@example.org>\r\n"
           "Subject: =?utf-8?q?help=0D=0ABcc:_victim@example.org?=\r\n\r\n").encode()
    reply = bot.send(raw=raw)[0]
    assert reply["Bcc"] is None and "victim" not in "".join(reply.keys()).lower()
    raw_reply = reply.as_bytes()
    assert b"\r\nBcc:" not in raw_reply and b"\nBcc:" not in raw_reply
    assert "\n" not in str(reply["Subject"])


def test_member_text_is_escaped_in_html(bot: Bot):
    # What a member wrote never becomes markup in the HTML part.
    reply = bot.send("<script>alert(1)</script>\nhelp <b>x</b>")[0]
    html = html_of(reply)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>x</b>" not in html


def test_huge_mail_is_answered_within_the_caps(bot: Bot):
    # A 10 MB mail with 10,000 command lines: one reply, at most max_command_lines results, quickly.
    body = "help\n" * 10_000 + "x" * 10_000_000
    started = time.perf_counter()
    reply = bot.send(body)[0]
    elapsed = time.perf_counter() - started
    text = text_of(reply)
    assert text.count("\n> help") == bot.config.bot.max_command_lines
    assert "more lines" in text
    assert elapsed < 5


def test_html_only_mail(bot: Bot):
    # A command in an HTML-only mail is read.
    raw = (f"From: {MEMBER}\r\nTo: {BOT}\r\nSubject: hi\r\nMessage-ID: <h@example.org>\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><div>upcoming 7</div><div>Anna</div></body></html>").encode()
    body = text_of(bot.send(raw=raw)[0])
    assert "> upcoming 7" in body and "No deadlines and meetings in the next 7 days." in body


def test_a_failing_command_changes_nothing_and_the_rest_stand(bot: Bot, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture):
    # A command that breaks half-way (a bug, a store error) is undone and reported; the mail's other
    # commands still run, and the log names the Message-ID.
    def boom(ctx: Context, args: list[str]) -> Reply:
        ctx.store.set_member(ctx.sender, now=ctx.now, timezone="Asia/Tokyo")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(REGISTRY, "boom", Command("boom", "", "Breaks.", ("boom",), False, boom))
    body = text_of(bot.send("digest on\nboom\ntimezone Asia/Kolkata")[0])
    assert "failed on our side and changed nothing" in body
    row = bot.store.member(MEMBER)
    assert row is not None and row["digest"] == 1 and row["timezone"] == "Asia/Kolkata"
    assert any("<m1@example.org>" in r.getMessage() and "boom" in r.getMessage() for r in caplog.records)


def test_a_typo_after_a_command_is_pointed_out(bot: Bot):
    # "shwo 2" on the second line is not silently ignored: it is Unprocessed, with a guess.
    body = text_of(bot.send("upcoming 7\nshwo 2\nnext\n")[0])
    assert "    shwo 2\n      (unknown command; did you mean 'show'?" in body and "> next" in body


def test_embedded_demo_without_roster_answers_anyone(tmp_path: Path):
    # With the loopback-only embedded servers and no roster, whoever writes is a member; otherwise nobody.
    from bot.config import from_dict
    from bot.members import is_member

    assert is_member("someone@example.org", from_dict({"embedded": {"enabled": True}}))
    assert not is_member("someone@example.org", from_dict({"embedded": {"enabled": False}}))
    roster = tmp_path / "roster.txt"
    roster.write_text("ana@example.org\n")
    with_roster = from_dict({"embedded": {"enabled": True}, "members": {"roster": str(roster)}})
    assert is_member("ana@example.org", with_roster) and not is_member("someone@example.org", with_roster)
