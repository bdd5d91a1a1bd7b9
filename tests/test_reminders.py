"""Reminders: when each one is due, to whom, never twice, never about cancelled or past items; the tick and jobs."""

from __future__ import annotations

import argparse
import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import reminders as rem
from bot.config import Config, from_dict
from bot.jobs import add_jobs, reminder_tick
from bot.store import Item, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def make_config(tmp_path: Path, **sections: dict[str, object]) -> Config:
    raw: dict[str, dict[str, object]] = {
        "list": {"timezone": "Europe/Berlin", "address": "wg@lists.example.org", "name": "WG"},
        "bot": {"address": "listbot@example.org"},
        "store": {"path": str(tmp_path / "s.sqlite3")},
        "digest": {"to_list": False},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return from_dict(raw)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def store(config: Config):
    s = Store.open(config.store.path)
    yield s
    s.close()


def deadline(store: Store, what: str, start: str, *, now: datetime = T0, conflict: str | None = None) -> Item:
    item_id, _ = store.save_item(
        type="deadline", what=what, start=start, end=None, tz=BERLIN, now=now, message_id=f"<{what}@x>", text=what,
        conflict=conflict,
    )
    item = store.item(item_id)
    assert item is not None
    return item


def meeting(store: Store, what: str, start: str, end: str | None = None, *, now: datetime = T0) -> Item:
    item_id, _ = store.save_item(
        type="meeting", what=what, start=start, end=end, tz=BERLIN, now=now, message_id=f"<{what}@x>", text=what
    )
    item = store.item(item_id)
    assert item is not None
    return item


def outbox(store: Store) -> list[tuple[str, str, datetime, EmailMessage]]:
    rows = store.db.execute("SELECT idem_key, recipient, send_after_utc, raw FROM outbox ORDER BY send_after_utc, id")
    out = []
    for key, recipient, send_after, raw in rows:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append((key, recipient, datetime.fromisoformat(send_after), msg))
    return out


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return, attr-defined]


def run(store: Store, config: Config, start: datetime, end: datetime, step: timedelta = timedelta(minutes=15)) -> None:
    now = start
    while now <= end:
        reminder_tick(store, config=config, now=now)
        now += step


def test_offsets_are_parsed_and_bad_ones_refused():
    # "7d", "12h", "30m" are offsets; anything else is a ValueError.
    assert rem.parse_offset("7d") == timedelta(days=7)
    assert rem.parse_offset("12h") == timedelta(hours=12)
    assert rem.parse_offset("30m") == timedelta(minutes=30)
    for bad in ("7", "d", "1w", "-1d", "1.5h", ""):
        with pytest.raises(ValueError):
            rem.parse_offset(bad)


def test_deadline_slots_are_at_nine_local_and_a_timed_deadline_gets_one_on_the_day(store: Store):
    # An all-day deadline: 09:00 Berlin 7 and 1 days before; a timed one also 09:00 on the day (when before it).
    day = deadline(store, "Drafts due", "2026-03-20")
    slots = rem.slots(day, ("7d", "1d"), tz=BERLIN, at=rem.time(9, 0))
    assert slots == [
        ("7d", datetime(2026, 3, 13, 8, 0, tzinfo=UTC)),
        ("1d", datetime(2026, 3, 19, 8, 0, tzinfo=UTC)),
    ]
    timed = deadline(store, "Camera ready", "2026-03-20T17:00:00+01:00")
    slots = rem.slots(timed, ("7d", "1d", "12h"), tz=BERLIN, at=rem.time(9, 0))
    assert [o for o, _ in slots] == ["7d", "1d", "12h", "0d"]
    assert dict(slots)["12h"] == datetime(2026, 3, 20, 4, 0, tzinfo=UTC)
    assert dict(slots)["0d"] == datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
    early = deadline(store, "Early thing", "2026-03-21T08:00:00+01:00")
    assert "0d" not in dict(rem.slots(early, ("1d",), tz=BERLIN, at=rem.time(9, 0)))


def test_meeting_slots_are_exact_and_all_day_meetings_skip_hour_offsets(store: Store):
    # A timed meeting: exactly 1 day and 1 hour before; an all-day one: 09:00 the day before, no "1h".
    call = meeting(store, "Interim call", "2026-03-20T15:00:00+01:00")
    assert rem.slots(call, ("1d", "1h"), tz=BERLIN, at=rem.time(9, 0)) == [
        ("1d", datetime(2026, 3, 19, 14, 0, tzinfo=UTC)),
        ("1h", datetime(2026, 3, 20, 13, 0, tzinfo=UTC)),
    ]
    workshop = meeting(store, "Workshop", "2026-03-25")
    assert rem.slots(workshop, ("1d", "1h"), tz=BERLIN, at=rem.time(9, 0)) == [
        ("1d", datetime(2026, 3, 24, 8, 0, tzinfo=UTC))
    ]


def test_each_reminder_is_queued_once_at_its_time_with_its_date(store: Store, config: Config):
    # Ticks every 15 minutes over two weeks queue the two list reminders once each, at 09:00 Berlin.
    deadline(store, "Drafts due", "2026-03-10")
    run(store, config, T0, T0 + timedelta(days=12))
    sent = outbox(store)
    assert [(r, t) for _, r, t, _ in sent] == [
        ("wg@lists.example.org", datetime(2026, 3, 3, 8, 0, tzinfo=UTC)),
        ("wg@lists.example.org", datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),
    ]
    assert sent[0][3]["Subject"] == "Reminder: Drafts due is due in 7 days"
    assert sent[1][3]["Subject"] == "Reminder: Drafts due is due tomorrow"
    assert sent[0][3]["Date"] == "Tue, 03 Mar 2026 08:00:00 +0000"
    # The same tick again (a second scheduler, a restart): nothing new.
    reminder_tick(store, config=config, now=datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    assert len(outbox(store)) == 2


def test_cancelled_items_are_never_reminded_and_uncertain_ones_not_to_the_list(store: Store, config: Config):
    # A cancelled meeting sends nothing; an item flagged uncertain goes only to a member who asked for it.
    call = meeting(store, "Interim call", "2026-03-05T15:00:00+01:00")
    store.update_item(call.id, {"status": "cancelled"}, tz=BERLIN, now=T0, actor="mod@example.org")
    unsure = deadline(store, "Unsure thing", "2026-03-06", conflict="two dates given")
    store.add_reminder("ann@example.org", now=T0, item_id=unsure.id, offsets=["1d"])
    run(store, config, T0, T0 + timedelta(days=6))
    sent = outbox(store)
    assert [(r, k.split(":")[3]) for k, r, _, _ in sent] == [("ann@example.org", "1d")]
    assert "(unconfirmed)" in sent[0][3]["Subject"]


def test_an_edit_moves_the_reminders_and_an_edit_after_a_slot_does_not_replay_it(store: Store, config: Config):
    # Extended from 10 to 20 March on 5 March: the 7d reminder for the 10th went out; for the 20th the
    # 7d (13 March) and 1d (19 March) go out; the 1d for the 10th never does.
    item = deadline(store, "Drafts due", "2026-03-10")
    run(store, config, T0, datetime(2026, 3, 5, 12, 0, tzinfo=UTC))
    store.update_item(item.id, {"start": "2026-03-20"}, tz=BERLIN, now=datetime(2026, 3, 5, 12, 0, tzinfo=UTC),
                      actor="reader")
    run(store, config, datetime(2026, 3, 5, 12, 0, tzinfo=UTC), datetime(2026, 3, 21, tzinfo=UTC))
    assert [(t, m["Subject"]) for _, _, t, m in outbox(store)] == [
        (datetime(2026, 3, 3, 8, 0, tzinfo=UTC), "Reminder: Drafts due is due in 7 days"),
        (datetime(2026, 3, 13, 8, 0, tzinfo=UTC), "Reminder: Drafts due is due in 7 days"),
        (datetime(2026, 3, 19, 8, 0, tzinfo=UTC), "Reminder: Drafts due is due tomorrow"),
    ]


def test_an_item_announced_after_a_slot_does_not_get_that_slot(store: Store, config: Config):
    # A deadline announced 3 days ahead gets its 1d reminder only (the 7d one was never "missed").
    now = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    deadline(store, "Late news", "2026-03-10", now=now)
    run(store, config, now, datetime(2026, 3, 11, tzinfo=UTC))
    assert [k.split(":")[3] for k, _, _, _ in outbox(store)] == ["1d"]


def test_downtime_sends_useful_missed_reminders_once_marked_late_and_skips_the_rest(
    store: Store, config: Config, caplog: pytest.LogCaptureFixture
):
    # Down from 2 to 4 March 12:00: the 1d list reminder of a deadline on the 4th (due 3 March 09:00) is
    # still useful and goes out late; the 1d and 1h of a meeting on 3 March are useless and skipped (logged);
    # a meeting on the 5th whose 1d slot has not come is unaffected.
    deadline(store, "Drafts due", "2026-03-04")
    meeting(store, "Early call", "2026-03-03T10:00:00+01:00")
    meeting(store, "Later call", "2026-03-05T15:00:00+01:00")
    reminder_tick(store, config=config, now=datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    assert outbox(store) == []
    back = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    with caplog.at_level("WARNING", logger="bot.jobs"):
        reminder_tick(store, config=config, now=back)
        reminder_tick(store, config=config, now=back + timedelta(minutes=1))
    sent = outbox(store)
    assert [(k.split(":")[1], k.split(":")[3], t) for k, _, t, _ in sent] == [("1", "1d", back)]
    assert sent[0][3]["Subject"] == "[late] Reminder: Drafts due is due today"
    assert "This reminder is late: it was due Tue 03 Mar 2026 09:00 CET" in body(sent[0][3])
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and ":2:" in skipped[0] and ":1h:" in skipped[0]


def test_after_downtime_only_the_latest_missed_slot_is_sent(store: Store, config: Config):
    # Down over both the 1d and the 1h slot of a meeting, back 20 minutes before it: one late "1h" mail.
    meeting(store, "Call", "2026-03-05T15:00:00+01:00")
    reminder_tick(store, config=config, now=datetime(2026, 3, 3, tzinfo=UTC))
    reminder_tick(store, config=config, now=datetime(2026, 3, 5, 13, 40, tzinfo=UTC))
    sent = outbox(store)
    assert [k.split(":")[3] for k, _, _, _ in sent] == ["1h"]
    assert sent[0][3]["Subject"] == "[late] Reminder: Call in 20 minutes"


def test_members_get_theirs_in_their_own_zone_with_a_calendar_and_one_click_unsubscribe(store: Store, config: Config):
    # A member in Kolkata who asked for all meetings and one in New York who asked for one deadline:
    # their own times, the meeting's .ics attached (not to the list), List-Unsubscribe with one-click POST.
    call = meeting(store, "Interim call", "2026-03-10T15:00:00+01:00", "2026-03-10T16:00:00+01:00")
    due = deadline(store, "Drafts due", "2026-03-12")
    store.set_member("ravi@example.org", now=T0, timezone="Asia/Kolkata")
    store.add_reminder("ravi@example.org", now=T0, offsets=["1h"])
    store.set_member("nia@example.org", now=T0, timezone="America/New_York")
    store.add_reminder("nia@example.org", now=T0, item_id=due.id, offsets=["1d"])
    run(store, config, T0, datetime(2026, 3, 13, tzinfo=UTC))
    sent = [(k, r, t, m) for k, r, t, m in outbox(store) if r != "wg@lists.example.org"]
    assert [(r, t) for _, r, t, _ in sent] == [
        ("ravi@example.org", datetime(2026, 3, 10, 13, 0, tzinfo=UTC)),
        ("nia@example.org", datetime(2026, 3, 11, 13, 0, tzinfo=UTC)),  # 09:00 in New York, the day before
        ("ravi@example.org", datetime(2026, 3, 12, 22, 0, tzinfo=UTC)),  # "1h" of an all-day deadline: before its end
    ]
    ravi_call = sent[0][3]
    text = body(ravi_call)
    assert "Starts:  Tue 10 Mar 2026 19:30 IST-20:30 (14:00 UTC), in 1 hour" in text
    for line in ("UTC                  Tue 10 Mar 2026 14:00 UTC", "Europe/Berlin        Tue 10 Mar 2026 15:00 CET",
                 "America/New_York     Tue 10 Mar 2026 10:00 EDT", "Africa/Nairobi       Tue 10 Mar 2026 17:00 EAT"):
        assert line in text
    assert [p.get_filename() for p in ravi_call.iter_attachments()] == ["meeting.ics"]
    assert "List-Unsubscribe=One-Click" == ravi_call["List-Unsubscribe-Post"]
    assert "/unsubscribe/" in ravi_call["List-Unsubscribe"] and "mailto:listbot@example.org" in ravi_call["List-Unsubscribe"]
    lists = [m for _, r, _, m in outbox(store) if r == "wg@lists.example.org"]
    assert lists and all(not list(m.iter_attachments()) and m["List-Unsubscribe"] is None for m in lists)
    assert call.id != due.id


def test_stopped_members_and_cancelled_reminder_rows_get_nothing(store: Store, config: Config):
    # A member who stopped all mail, and a reminder row cancelled by its owner, send nothing.
    config = make_config(Path(config.store.path).parent, reminders={"to_list": False})
    item = deadline(store, "Drafts due", "2026-03-06")
    store.set_member("gone@example.org", now=T0, stopped=True)
    store.add_reminder("gone@example.org", now=T0, item_id=item.id)
    rid = store.add_reminder("changed@example.org", now=T0, item_id=item.id)
    assert store.cancel_reminder("changed@example.org", rid)
    run(store, config, T0, datetime(2026, 3, 7, tzinfo=UTC))
    assert outbox(store) == []


def test_notes_to_oneself_are_sent_once_then_done(store: Store, config: Config):
    # "remind me at ... to ...": one mail at that time, the row marked done.
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    rid = store.add_reminder("ann@example.org", now=T0, at=at, text="Book the room")
    run(store, config, T0, datetime(2026, 3, 3, tzinfo=UTC))
    sent = outbox(store)
    assert [(r, t, m["Subject"]) for _, r, t, m in sent] == [("ann@example.org", at, "Reminder: Book the room")]
    assert store.reminders_of("ann@example.org") == []
    assert rid


def test_dst_change_times_agree_in_four_zones(store: Store, config: Config):
    # A meeting on 30 March (Berlin changed clocks on the 29th, New York on the 8th): the reminder, the
    # digest and the .ics give the same instant for members in four zones.
    import icalendar

    from bot.digest import personal_digest

    call = meeting(store, "Interim call", "2026-03-30T15:00:00+02:00")
    zones = {"b@example.org": "Europe/Berlin", "n@example.org": "America/New_York",
             "k@example.org": "Asia/Kolkata", "e@example.org": "Africa/Nairobi"}
    expected = {"Europe/Berlin": "15:00 CEST", "America/New_York": "09:00 EDT",
                "Asia/Kolkata": "18:30 IST", "Africa/Nairobi": "16:00 EAT"}
    for address, zone_name in zones.items():
        store.set_member(address, now=T0, timezone=zone_name, digest=True)
        store.add_reminder(address, now=T0, item_id=call.id, offsets=["1d"])
    now = datetime(2026, 3, 29, 13, 0, tzinfo=UTC)
    reminder_tick(store, config=config, now=now)
    mails = {r: m for _, r, _, m in outbox(store) if r in zones}
    assert set(mails) == set(zones)
    for address, zone_name in zones.items():
        local = expected[zone_name]
        assert f"Starts:  Mon 30 Mar 2026 {local} (13:00 UTC), tomorrow" in body(mails[address])
        digest, _ = personal_digest(store, address, config=config, now=now)
        assert f"Mon 30 Mar 2026 {local} (13:00 UTC)  Interim call" in digest.text
        for part in mails[address].iter_attachments():
            cal = icalendar.Calendar.from_ical(part.get_content())
            start = next(iter(cal.walk("VEVENT")))["DTSTART"].dt
            assert start == datetime(2026, 3, 30, 13, 0, tzinfo=UTC)
            assert f"{start.astimezone(ZoneInfo(zone_name)):%H:%M %Z}" == local


def test_preview_lists_every_reminder_in_a_window(store: Store, config: Config, capsys: pytest.CaptureFixture[str]):
    # `listbot reminders --from --to` prints each reminder in the window: when, to whom and why.
    from bot.reminders import cli_reminders

    deadline(store, "Drafts due", "2026-03-10")
    store.add_reminder("ann@example.org", now=T0, offsets=["2d"])
    args = argparse.Namespace(start=datetime(2026, 3, 2, tzinfo=UTC), end=datetime(2026, 3, 10, tzinfo=UTC))
    assert cli_reminders(args, config) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(": 3")
    assert out[1:] == [
        "  2026-03-03 08:00 UTC  to wg@lists.example.org  deadline #1 'Drafts due' (Tue 10 Mar 2026)"
        "  [7d before deadline #1, list reminder]",
        "  2026-03-08 08:00 UTC  to ann@example.org  deadline #1 'Drafts due' (Tue 10 Mar 2026)"
        "  [2d before deadline #1, asked for with 'remind me']",
        "  2026-03-09 08:00 UTC  to wg@lists.example.org  deadline #1 'Drafts due' (Tue 10 Mar 2026)"
        "  [1d before deadline #1, list reminder]",
    ]
    assert outbox(store) == []


async def test_add_jobs_sets_misfire_and_coalescing_deliberately(config: Config, store: Store):
    # The tick and the digest are added with large grace, coalescing and one instance; the tick runs against the store.
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.store import AsyncStore

    astore = AsyncStore(Store.open(config.store.path))
    woken: list[int] = []
    scheduler = AsyncIOScheduler(timezone=UTC)
    try:
        add_jobs(scheduler, config=config, astore=astore, wake_sender=lambda: woken.append(1), now_fn=lambda: T0)
        jobs = {j.id: j for j in scheduler.get_jobs()}
        assert set(jobs) == {"listbot-reminders", "listbot-digest"}
        tick, weekly = jobs["listbot-reminders"], jobs["listbot-digest"]
        assert tick.misfire_grace_time >= 3600 and tick.coalesce and tick.max_instances == 1
        assert weekly.misfire_grace_time >= 3600 and weekly.coalesce and weekly.max_instances == 1
        assert str(weekly.trigger.timezone) == "Europe/Berlin"
        await tick.func()
        assert store.get_value("reminders:last_tick") == "2026-03-01T12:00:00+00:00"
    finally:
        await __import__("asyncio").to_thread(astore.close)
