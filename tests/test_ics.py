"""Calendars: every .ics parses and validates; stable UIDs, SEQUENCE on edits, cancelled items, zones, the CLI."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.config import Config, from_dict
from bot.ics import calendar, calendar_for, cli_ics
from bot.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return from_dict({"list": {"timezone": "Europe/Berlin", "name": "WG"}, "bot": {"address": "bot@wg.example.org"},
                      "store": {"path": str(tmp_path / "s.sqlite3")}})


@pytest.fixture
def store(config: Config):
    s = Store.open(config.store.path)
    yield s
    s.close()


def validate(data: bytes) -> list[icalendar.Event]:
    """Parse `data` and check what every consumer needs: VERSION/PRODID, and per event UID, DTSTAMP,
    DTSTART; every TZID used is defined by a VTIMEZONE."""
    cal = icalendar.Calendar.from_ical(data)
    assert cal["VERSION"] == "2.0" and cal["PRODID"]
    defined = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    events = list(cal.walk("VEVENT"))
    for ev in events:
        for prop in ("UID", "DTSTAMP", "DTSTART"):
            assert prop in ev, f"{prop} missing in {ev}"
        for prop in ("DTSTART", "DTEND"):
            if prop in ev and "TZID" in ev[prop].params:
                assert ev[prop].params["TZID"] in defined
    return events


def test_items_as_events_with_zones_and_all_day_deadlines(store: Store, config: Config):
    # An all-day deadline, a timed deadline, and a meeting in the list's zone parse and validate.
    store.save_item(type="deadline", what="Drafts", start="2026-03-10", end=None, tz=BERLIN, now=T0,
                    message_id="<a@x>", text="t")
    store.save_item(type="deadline", what="Camera ready", start="2026-03-12T17:00:00+01:00", end=None, tz=BERLIN,
                    now=T0, message_id="<b@x>", text="t")
    store.save_item(type="meeting", what="Interim call", start="2026-03-30T15:00:00+02:00",
                    end="2026-03-30T16:30:00+02:00", tz=BERLIN, now=T0, message_id="<c@x>", text="t", where="Zoom")
    events = validate(calendar_for(config, store.items(), now=T0))
    by_summary = {str(e["SUMMARY"]): e for e in events}
    assert by_summary["Deadline: Drafts"]["DTSTART"].dt == date(2026, 3, 10)
    assert by_summary["Deadline: Drafts"]["DTEND"].dt == date(2026, 3, 11)
    assert by_summary["Deadline: Camera ready"]["DTSTART"].dt == datetime(2026, 3, 12, 16, 0, tzinfo=UTC)
    call = by_summary["Interim call"]
    assert call["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert call["DTSTART"].dt == datetime(2026, 3, 30, 13, 0, tzinfo=UTC)
    assert call["DTEND"].dt == datetime(2026, 3, 30, 14, 30, tzinfo=UTC)
    assert str(call["LOCATION"]) == "Zoom"
    assert {str(e["UID"]) for e in events} == {f"item-{i}@wg.example.org" for i in (1, 2, 3)}


def test_uid_is_stable_sequence_grows_and_cancelled_is_published(store: Store, config: Config):
    # Each edit bumps SEQUENCE under the same UID; a cancelled item stays in the feed as STATUS:CANCELLED.
    item_id, _ = store.save_item(type="meeting", what="Call", start="2026-03-20T15:00:00+01:00", end=None, tz=BERLIN,
                                 now=T0, message_id="<a@x>", text="t")
    first = validate(calendar_for(config, store.items(), now=T0))[0]
    store.update_item(item_id, {"start": "2026-03-21T15:00:00+01:00"}, tz=BERLIN, now=T0, actor="m")
    second = validate(calendar_for(config, store.items(), now=T0))[0]
    store.update_item(item_id, {"status": "cancelled"}, tz=BERLIN, now=T0, actor="m")
    third = validate(calendar_for(config, store.items(), now=T0))[0]
    assert str(first["UID"]) == str(second["UID"]) == str(third["UID"])
    assert (first["SEQUENCE"], second["SEQUENCE"], third["SEQUENCE"]) == (0, 1, 2)
    assert (str(first["STATUS"]), str(third["STATUS"])) == ("CONFIRMED", "CANCELLED")
    assert second["DTSTART"].dt == datetime(2026, 3, 21, 14, 0, tzinfo=UTC)


def test_items_in_another_zone_or_in_utc_lists(store: Store):
    # With a UTC list (no tz given) times are written in UTC and no VTIMEZONE is needed; an uncertain item is TENTATIVE.
    store.save_item(type="meeting", what="Call", start="2026-07-01T09:00:00-04:00", end=None, tz=BERLIN, now=T0,
                    message_id="<a@x>", text="t", conflict="two times")
    data = calendar(store.items(), now=T0)
    (ev,) = validate(data)
    assert ev["DTSTART"].dt == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    assert "TZID" not in ev["DTSTART"].params and b"VTIMEZONE" not in data
    assert str(ev["STATUS"]) == "TENTATIVE"
    # The list's zone is Berlin but the meeting was announced at -04:00: written in UTC, exact.
    (ev,) = validate(calendar(store.items(), now=T0, tz=BERLIN))
    assert "TZID" not in ev["DTSTART"].params


def test_member_text_cannot_break_the_calendar(store: Store):
    # Newlines, semicolons and commas in a description are escaped, never new properties.
    store.save_item(type="deadline", what="Drafts;\r\nATTENDEE:mailto:x@evil.example, now", start="2026-03-10",
                    end=None, tz=BERLIN, now=T0, message_id="<a@x>", text="t")
    data = calendar(store.items(), now=T0)
    (ev,) = validate(data)
    assert b"\r\nATTENDEE" not in data
    assert "ATTENDEE" not in ev


def test_cli_writes_the_whole_feed(store: Store, config: Config, capsysbinary: pytest.CaptureFixture[bytes]):
    # `listbot ics > feed.ics`: all items, the cancelled ones included, as one valid calendar.
    store.save_item(type="deadline", what="Drafts", start="2026-03-10", end=None, tz=BERLIN, now=T0,
                    message_id="<a@x>", text="t")
    gone, _ = store.save_item(type="meeting", what="Call", start="2026-03-20T15:00:00+01:00", end=None, tz=BERLIN,
                              now=T0, message_id="<b@x>", text="t")
    store.update_item(gone, {"status": "cancelled"}, tz=BERLIN, now=T0, actor="m")
    assert cli_ics(argparse.Namespace(), config) == 0
    events = validate(capsysbinary.readouterr().out)
    assert sorted(str(e["STATUS"]) for e in events) == ["CANCELLED", "CONFIRMED"]
