"""A season replayed with an injected clock: exactly which reminders and digests go out, to whom, when."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, from_dict
from bot.ingest import ingest_post
from bot.jobs import reminder_tick
from bot.message import read_message
from bot.rules import load_rules
from bot.store import Store

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 2, 23, 0, 0, tzinfo=UTC)
END = datetime(2026, 4, 27, 0, 0, tzinfo=UTC)
DOWN = (datetime(2026, 4, 1, 18, 0, tzinfo=UTC), datetime(2026, 4, 3, 18, 0, tzinfo=UTC))
STEP = timedelta(minutes=15)


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# The season's list posts (written for this test), each read on its date by the real reader.
POSTS = [
    ("2026-02-23T10:00", "cfp", "Call for position papers: spring workshop", """Dear all,

We invite position papers for the spring workshop. Position papers are due 20 March 2026.
Please submit them at https://wg.example.org/papers

Best regards,
The chairs
"""),
    ("2026-03-02T14:00", "interim", "Interim meeting on 30 March", """Hello everyone,

The interim meeting will take place on Monday 30 March 2026, 15:00-16:00 CEST, online.

The chairs
"""),
    ("2026-03-10T09:30", "ext", "Deadline extended: position papers", """Dear all,

The deadline for position papers has been extended to 3 April 2026.

The chairs
"""),
    ("2026-03-12T11:00", "design", "Design team call on 15 April", """Hi all,

The design team call will be held on Wednesday 15 April 2026, 16:00-17:00 CEST.

Kim
"""),
    ("2026-03-12T11:05", "sync", "Editors sync on 2 April", """Hi editors,

The editors sync will take place on Thursday 2 April 2026, 19:00-19:30 CEST.

Kim
"""),
    ("2026-03-12T11:10", "review", "Review session on 4 April", """Hello,

The review session will take place on Saturday 4 April 2026, 10:00-12:00 CEST.

Kim
"""),
    ("2026-03-31T12:00", "minutes", "Minutes of the interim meeting, 30 March 2026", """Minutes of the interim meeting held on 30 March 2026

Charter
We agreed to narrow the scope of the charter.

Decisions
- The group adopts draft-03 as its working draft.

Action items
- Ann to update the draft.

Slides: https://wg.example.org/slides-interim.pdf
"""),
]


def ingest(store: Store, config: Config, when: str, key: str, subject: str, body: str) -> tuple[int, ...]:
    now = d(when)
    raw = (f"From: Chair <chair@example.org>\r\nTo: wg@lists.example.org\r\nSubject: {subject}\r\n"
           f"Date: {now:%a, %d %b %Y %H:%M:%S +0000}\r\nMessage-ID: <{key}@wg>\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()
    result = ingest_post(store, read_message(raw, received=now), config=config, rules=load_rules(), now=now)
    return tuple(item_id for item_id, _ in result.items)


# What arrives, on its date: the posts of a season, members' own commands, and a moderator's cancel.
def season_events(store: Store, config: Config) -> list[tuple[datetime, Callable[[], None]]]:
    ids: dict[str, tuple[int, ...]] = {}

    def poster(when: str, key: str, subject: str, body: str) -> Callable[[], None]:
        def arrive() -> None:
            ids[key] = ingest(store, config, when, key, subject, body)
        return arrive

    def members_sign_up() -> None:
        now = d("2026-02-24T08:00")
        (papers,) = ids["cfp"]
        store.set_member("ann@example.org", now=now, timezone="Europe/Berlin", digest=True)
        store.add_reminder("ann@example.org", now=now, item_id=papers)
        store.set_member("bo@example.org", now=now, timezone="America/New_York")
        store.add_reminder("bo@example.org", now=now, offsets=["1h"])  # every item, an hour before
        store.set_member("chitra@example.org", now=now, timezone="Asia/Kolkata", digest=True)
        store.set_member("dan@example.org", now=now, timezone="Africa/Nairobi")

    def dan_asks() -> None:
        (interim,) = ids["interim"]
        store.add_reminder("dan@example.org", now=d("2026-03-02T15:00"), item_id=interim, offsets=["1d"])

    def cancel() -> None:
        (design,) = ids["design"]
        store.update_item(design, {"status": "cancelled"}, tz=BERLIN, now=d("2026-04-08T09:00"),
                          actor="mod@example.org")

    events = [(d(when), poster(when, key, subject, body)) for when, key, subject, body in POSTS]
    events += [
        (d("2026-02-24T08:00"), members_sign_up),
        (d("2026-03-02T15:00"), dan_asks),
        (d("2026-04-08T09:00"), cancel),
    ]
    return sorted(events, key=lambda e: e[0])


def replay(store: Store, config: Config) -> int:
    """Tick every 15 minutes from START to END, events on their dates, the daemon down during DOWN."""
    events = season_events(store, config)
    now, ticks = START, 0
    while now < END:
        while events and events[0][0] <= now:
            events.pop(0)[1]()
        if not DOWN[0] <= now < DOWN[1]:
            reminder_tick(store, config=config, now=now)
            ticks += 1
        now += STEP
    assert not events
    return ticks


# (send time UTC, recipient, subject): every mail of the season.
EXPECTED = [
    ("2026-03-02 02:30", "chitra@example.org", "[WG] Weekly digest, Mon 02 Mar 2026"),  # 08:00 in Kolkata
    ("2026-03-02 07:00", "wg@lists.example.org", "[WG] Weekly digest, Mon 02 Mar 2026"),  # the call
    ("2026-03-02 07:00", "ann@example.org", "[WG] Weekly digest, Mon 02 Mar 2026"),
    ("2026-03-09 02:30", "chitra@example.org", "[WG] Weekly digest, Mon 09 Mar 2026"),
    ("2026-03-09 07:00", "wg@lists.example.org", "[WG] Weekly digest, Mon 09 Mar 2026"),
    ("2026-03-09 07:00", "ann@example.org", "[WG] Weekly digest, Mon 09 Mar 2026"),
    # The 7d reminder for 20 March would be 13 March: the deadline moved to 3 April on 10 March.
    ("2026-03-16 02:30", "chitra@example.org", "[WG] Weekly digest, Mon 16 Mar 2026"),
    ("2026-03-16 07:00", "wg@lists.example.org", "[WG] Weekly digest, Mon 16 Mar 2026"),
    ("2026-03-16 07:00", "ann@example.org", "[WG] Weekly digest, Mon 16 Mar 2026"),
    ("2026-03-23 02:30", "chitra@example.org", "[WG] Weekly digest, Mon 23 Mar 2026"),
    ("2026-03-23 07:00", "wg@lists.example.org", "[WG] Weekly digest, Mon 23 Mar 2026"),
    ("2026-03-23 07:00", "ann@example.org", "[WG] Weekly digest, Mon 23 Mar 2026"),
    ("2026-03-27 08:00", "wg@lists.example.org", "Reminder: Position papers are due is due in 7 days"),
    ("2026-03-27 08:00", "ann@example.org", "Reminder: Position papers are due is due in 7 days"),
    ("2026-03-29 13:00", "wg@lists.example.org", "Reminder: The interim meeting will take place online tomorrow"),
    ("2026-03-29 13:00", "dan@example.org", "Reminder: The interim meeting will take place online tomorrow"),
    # Berlin changed to summer time on the 29th: the digest is at 08:00 CEST = 06:00 UTC.
    ("2026-03-30 02:30", "chitra@example.org", "[WG] Weekly digest, Mon 30 Mar 2026"),
    ("2026-03-30 06:00", "wg@lists.example.org", "[WG] Weekly digest, Mon 30 Mar 2026"),
    ("2026-03-30 06:00", "ann@example.org", "[WG] Weekly digest, Mon 30 Mar 2026"),
    ("2026-03-30 12:00", "wg@lists.example.org", "Reminder: The interim meeting will take place online in 1 hour"),
    ("2026-03-30 12:00", "bo@example.org", "Reminder: The interim meeting will take place online in 1 hour"),
    # Editors sync (2 April 17:00 UTC): its 1d reminder was due 1 April 17:00, sent on time, before the daemon
    # stopped at 18:00; its 1h reminders fell in the downtime and the meeting was over at restart: skipped.
    ("2026-04-01 17:00", "wg@lists.example.org", "Reminder: The editors sync tomorrow"),
    # Restart 3 April 18:00: the 1d deadline reminder (2 April 09:00) is still useful, the deadline is today:
    # sent once, late. Review session (4 April 08:00 UTC): its 1d slot (3 April 08:00) was missed, still useful.
    ("2026-04-03 18:00", "wg@lists.example.org", "[late] Reminder: Position papers are due is due today"),
    ("2026-04-03 18:00", "ann@example.org", "[late] Reminder: Position papers are due is due today"),
    ("2026-04-03 18:00", "wg@lists.example.org", "[late] Reminder: The review session in 14 hours"),
    # bo asked for "1h" before every item: for the all-day deadline, an hour before its end (midnight CEST).
    ("2026-04-03 21:00", "bo@example.org", "Reminder: Position papers are due is due today"),
    ("2026-04-04 07:00", "wg@lists.example.org", "Reminder: The review session in 1 hour"),
    ("2026-04-04 07:00", "bo@example.org", "Reminder: The review session in 1 hour"),
    ("2026-04-06 02:30", "chitra@example.org", "[WG] Weekly digest, Mon 06 Apr 2026"),
    ("2026-04-06 06:00", "wg@lists.example.org", "[WG] Weekly digest, Mon 06 Apr 2026"),
    ("2026-04-06 06:00", "ann@example.org", "[WG] Weekly digest, Mon 06 Apr 2026"),
    # The design team call (15 April) was cancelled on 8 April: no reminder, gone from the digest.
]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return from_dict({
        "list": {"timezone": "Europe/Berlin", "name": "WG", "address": "wg@lists.example.org"},
        "bot": {"address": "listbot@example.org"},
        "store": {"path": str(tmp_path / "s.sqlite3")},
        "reminders": {"zones": ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Africa/Nairobi"]},
    })


def test_a_season_sends_exactly_the_expected_mail(config: Config, caplog: pytest.LogCaptureFixture):
    # Nine weeks of ticks: reminders at their minute, the extension moves them, the cancelled meeting sends
    # nothing, digests per zone (across the DST change), and two days of downtime: still-useful reminders
    # once and marked late, useless ones skipped and logged.
    store = Store.open(config.store.path)
    try:
        with caplog.at_level("WARNING", logger="bot.jobs"):
            ticks = replay(store, config)
        rows = store.db.execute("SELECT recipient, send_after_utc, raw, idem_key FROM outbox ORDER BY send_after_utc, id")
        sent = []
        keys = []
        for recipient, send_after, raw, key in rows:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            sent.append((f"{datetime.fromisoformat(send_after):%Y-%m-%d %H:%M}", recipient, str(msg["Subject"])))
            keys.append(key)
        assert ticks > 5000
        assert sorted(sent) == sorted(EXPECTED)
        assert len(keys) == len(set(keys))
        assert not [k for k in keys if k.startswith("reminder:3:")]  # the cancelled design team call
        skipped = sorted(r.getMessage().split()[1] for r in caplog.records if "skipped" in r.getMessage()
                         and r.getMessage().startswith("reminder "))
        sync_id = 4
        assert skipped == [
            f"reminder:{sync_id}:20260402T1700Z:1h:bo@example.org",
            f"reminder:{sync_id}:20260402T1700Z:1h:wg@lists.example.org",
        ]
        # The digest of 6 April shows the report of 31 March; the cancelled call is in no digest after 8 April.
        digest_6 = _text(store, "digest:list:2026-04-06T06:00Z")
        assert "* Minutes of the interim meeting, 30 March 2026 (2026-03-30), posted Tue 31 Mar 2026" in digest_6
        assert "    - Ann: update the draft" in digest_6
        assert "The design team call will be held" in digest_6
        # Times agree across zones: dan (Nairobi) and bo (New York) see the interim meeting in their own time.
        assert "Starts:  Mon 30 Mar 2026 16:00 EAT-17:00 (13:00 UTC), tomorrow" in _text(
            store, "reminder:2:20260330T1300Z:1d:dan@example.org")
        assert "Starts:  Mon 30 Mar 2026 09:00 EDT-10:00 (13:00 UTC), in 1 hour" in _text(
            store, "reminder:2:20260330T1300Z:1h:bo@example.org")
    finally:
        store.close()


def _text(store: Store, key: str) -> str:
    row = store.db.execute("SELECT raw FROM outbox WHERE idem_key = ?", (key,)).fetchone()
    assert row is not None, key
    msg = email.message_from_bytes(row[0], policy=email.policy.default)
    part = msg.get_body(("plain",))  # type: ignore[attr-defined]
    return str(part.get_content())
