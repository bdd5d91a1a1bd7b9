"""The date, time and zone grammar (bot/dates.py) on phrases written for these tests."""

from datetime import date

import pytest

from bot.dates import find_dates, find_times, find_zone, lower, resolve, zone_offset
from bot.rules import load_rules

G = load_rules().grammar


def days(text: str, ref: date, *, lean_past: bool = False) -> list[tuple[str, str | None, bool, str | None]]:
    out = []
    for raw in find_dates(text, G):
        res = resolve(raw, ref, lean_past=lean_past)
        if res is not None:
            out.append((res.first.isoformat(), res.last.isoformat() if res.last else None, res.approx, res.conflict))
    return out


@pytest.mark.parametrize(
    ("text", "ref", "first", "last"),
    [
        ("comments until Monday 14 September", date(2020, 9, 10), "2020-09-14", None),
        ("on 8th of March", date(2021, 2, 1), "2021-03-08", None),
        ("by March 8th, 2022", date(2021, 2, 1), "2022-03-08", None),
        ("due Oct. 3", date(2021, 2, 1), "2021-10-03", None),
        ("on 2021-06-30", date(2021, 2, 1), "2021-06-30", None),
        ("from 9 to 17 November", date(2020, 9, 10), "2020-11-09", "2020-11-17"),
        ("between 2 and 6 November", date(2020, 9, 10), "2020-11-02", "2020-11-06"),
        ("on 27-30 September 2011", date(2011, 4, 1), "2011-09-27", "2011-09-30"),
        ("September 27-30", date(2011, 4, 1), "2011-09-27", "2011-09-30"),
        ("on 15 and 16 November 2021", date(2021, 10, 1), "2021-11-15", "2021-11-16"),
        ("from 30 September to 2 October", date(2021, 9, 1), "2021-09-30", "2021-10-02"),
        ("28 December - 3 January", date(2021, 12, 1), "2021-12-28", "2022-01-03"),
        ("el 13 de febrero del 2017", date(2017, 1, 20), "2017-02-13", None),
        ("le 5 mars 2024", date(2024, 1, 2), "2024-03-05", None),
        ("du 9 au 12 avril", date(2024, 1, 2), "2024-04-09", "2024-04-12"),
    ],
)
def test_formats(text, ref, first, last):
    # Each written form is one date (or one range) on the right days.
    assert [(d[0], d[1]) for d in days(text, ref)] == [(first, last)]


def test_year_is_inferred_across_the_year_end():
    # Written in December, "5 January" is next year; written in January, "20 December" just passed is history.
    assert days("by 5 January", date(2023, 12, 20))[0][0] == "2024-01-05"
    assert days("on 20 December", date(2024, 1, 10))[0][0] == "2023-12-20"
    # A day a few days back is the past, not next year.
    assert days("the Sept 20 deadline", date(2019, 9, 25))[0][0] == "2019-09-20"
    # Far ahead in the same year stays in this year.
    assert days("on 1 November", date(2019, 3, 1))[0][0] == "2019-11-01"


def test_weekday_that_does_not_match_is_a_conflict():
    # Nov 28 2019 is a Thursday: flagged, and the written weekday (Wednesday 27) is taken.
    (first, _, _, conflict) = days("Wednesday Nov 28", date(2019, 9, 25))[0]
    assert first == "2019-11-27" and conflict and "Thursday" in conflict
    # A matching weekday is no conflict, and it can pick the year.
    assert days("Monday 14 September", date(2020, 9, 10))[0][3] is None


def test_fuzzy_dates_are_approx():
    # mid-June -> 15th, end of June -> last day, early November -> 5th; "late August" pins nothing.
    ref = date(2019, 5, 21)
    assert days("by mid-June", ref) == [("2019-06-15", None, True, None)]
    assert days("until the end of June", ref)[0][:3] == ("2019-06-30", None, True)
    assert days("in early November", ref)[0][:3] == ("2019-11-05", None, True)
    assert days("late August", ref) == []
    # A period of two fuzzy ends is no date at all.
    assert days("mid-July – late August", ref) == []


def test_relative_days():
    # today, tomorrow and "this coming Thursday" pin a day; "next week" does not.
    ref = date(2024, 5, 6)  # a Monday
    assert days("today", ref)[0][0] == "2024-05-06"
    assert days("tomorrow", ref)[0][0] == "2024-05-07"
    assert days("this coming Thursday", ref)[0][0] == "2024-05-09"
    assert days("next week", ref) == []


def test_two_dates_for_one_thing():
    # An old and a new date side by side (a lost strike-through): the later one, flagged.
    (first, _, _, conflict) = days("July 24, 2023 July 31, 2023", date(2023, 7, 25))[0]
    assert first == "2023-07-31" and conflict


def test_numeric_dates_only_when_the_order_is_certain():
    # 15/03/2021 is 15 March (no month 15); 05/03/2021 could be May or March and is not read.
    assert days("hasta el 15/03/2021", date(2021, 3, 1))[0][0] == "2021-03-15"
    assert days("due 03/15/2021", date(2021, 3, 1))[0][0] == "2021-03-15"
    assert days("el 05/03/2021", date(2021, 3, 1)) == []
    assert days("am 05.03.2021", date(2021, 3, 1))[0][0] == "2021-03-05"


def test_lower_case_may_is_not_a_month():
    # "may" the verb is not May; "May" the month is.
    assert days("you may 5 times", date(2024, 1, 1)) == []
    assert days("on 5 May", date(2024, 1, 1))[0][0] == "2024-05-05"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15:00-16:30", (15, 0, 16, 30)),
        ("from 12:50 to 14:20", (12, 50, 14, 20)),
        ("3-6pm", (15, 0, 18, 0)),
        ("10am-2pm", (10, 0, 14, 0)),
        ("11:59 PM", (23, 59, None, None)),
        ("2000UTC", (20, 0, None, None)),
        ("between 0930 and 1100 GMT", (9, 30, 11, 0)),
        ("0815-0945 UTC", (8, 15, 9, 45)),
        ("from 2200 to 2330 Z", (22, 0, 23, 30)),
        ("noon", (12, 0, None, None)),
        ("de 14h à 16h", (14, 0, 16, 0)),
    ],
)
def test_times(text, expected):
    # Clock times and ranges, am/pm carried from the end of a range to its start.
    spans = find_times(text, G, 0, len(text))
    assert [(t.h1, t.m1, t.h2, t.m2) for t in spans] == [expected]


def test_bare_numbers_are_not_times():
    # "2 and 6", "phone 617.761" and "UTC-12" hold no clock time.
    for text in ("between 2 and 6", "phone 617.761.6200", "UTC-12"):
        assert find_times(text, G, 0, len(text)) == []


@pytest.mark.parametrize(
    ("text", "day", "offset", "conflict"),
    [
        (" UTC", date(2020, 11, 17), "+00:00", False),
        (" local time (UTC+1)", date(2019, 11, 27), "+01:00", False),
        (" (Paris, GMT+02:00)", date(2014, 7, 21), "+02:00", False),
        (" AoE", date(2023, 7, 31), "-12:00", False),
        (" CET", date(2021, 11, 15), "+01:00", False),
        (" CEST", date(2021, 7, 15), "+02:00", False),
        (" EDT", date(2023, 10, 31), "-04:00", False),
        (" ET", date(2024, 1, 10), "-05:00", False),
        (" EST", date(2024, 7, 10), "-04:00", True),  # EST in July: New York is on EDT
        (" CET", date(2024, 7, 10), "+02:00", True),
        # a name with its offset written next to it: the offset is meant (Mexico City kept "CST" all year)
        (" Guadalajara time (CST, UTC-6)", date(2024, 8, 6), "-06:00", False),
        (" PST (GMT-8)", date(2024, 11, 6), "-08:00", False),
        (" CET / UTC+01:00", date(2024, 7, 10), "+01:00", False),
        # Outlook's zone labels show the standard offset all year: the place's own time is meant
        (" (UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", date(2026, 6, 10), "+02:00", False),
        (" (UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", date(2026, 1, 10), "+01:00", False),
        (" (UTC-05:00) Eastern Time (US & Canada)", date(2026, 7, 1), "-04:00", False),
        (" (UTC+03:00) Eastern Time (US & Canada)", date(2026, 7, 1), "+03:00", False),  # not its offset: as written
    ],
)
def test_zones(text, day, offset, conflict):
    # A zone gives the offset it means on that day; a name in the wrong season is flagged.
    found = find_zone(text, G, 0)
    assert found is not None
    tz, why = zone_offset(found[1], day, 15, 0)
    from datetime import datetime, time

    assert datetime.combine(day, time(15), tzinfo=tz).isoformat()[-6:] == offset
    assert bool(why) is conflict


def test_lower_keeps_offsets():
    # Lower-casing must not move offsets (some characters lower-case to two).
    text = "İstanbul 5 May"
    assert len(lower(text)) == len(text)
    assert find_dates(text, G)[0].text == "5 May"


@pytest.mark.parametrize(
    ("text", "ref", "want"),
    [
        # a colon after the day ends the date; a colon and minutes make a time
        ("Slides by June 3: upload them here", date(2026, 5, 1), [("2026-06-03", None, False, None)]),
        ("June 3:30 pm", date(2026, 5, 1), []),
        # a relative day and the date beside it are one date
        ("tomorrow, Friday 8 May, at noon", date(2026, 5, 7), [("2026-05-08", None, False, None)]),
        ("this Friday (8 May)", date(2026, 5, 4), [("2026-05-08", None, False, None)]),
    ],
)
def test_dates_next_to_colons_and_relative_words(text, ref, want):
    # Written side by side, "tomorrow" and its date are one day; "June 3:" is a date.
    assert days(text, ref) == want


def test_relative_word_that_disagrees_with_its_date_is_flagged():
    # "today (9 May)" written on 7 May: the calendar date is kept and the contradiction said.
    ((day, _, _, conflict),) = days("the call is today (9 May)", date(2026, 5, 7))
    assert day == "2026-05-09" and conflict and "today" in conflict


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("please vote by 19/6 at the latest", [("2026-06-19", None, False, None)]),
        ("the review is on 6/19", [("2026-06-19", None, False, None)]),
        ("we offer 24/7 support", []),  # no word that introduces a date before it
        ("by 4/6", []),  # April 6 or 4 June: nothing proves the order
    ],
)
def test_yearless_numeric_dates(text, want):
    # "by 19/6": a yearless day/month after a word that introduces a date, when a day over 12 proves the order.
    assert days(text, date(2026, 6, 1)) == want


def test_weekday_written_after_a_date():
    # "2026-07-10 (Friday)" carries its weekday: it agrees here, and a wrong one is flagged.
    assert days("due 2026-07-10 (Friday) at noon", date(2026, 6, 1)) == [("2026-07-10", None, False, None)]
    ((_, _, _, conflict),) = days("due 2026-07-10 (Monday)", date(2026, 6, 1))
    assert conflict and "Monday" in conflict


def test_east_africa_time():
    # "EAT" is UTC+3 all year.
    g = G
    m = find_zone("from 8:30am to 5pm EAT at the hotel", g, 17)
    assert m is not None and zone_offset(m[1], date(2026, 9, 14), 8, 30)[0].utcoffset(None).total_seconds() == 3 * 3600


def test_iso_datetime_with_zone_or_offset():
    # "2026-03-12T15:00Z" and "...T15:00+01:00": the date, the time and the zone are all read.
    for text, offset in (("at 2026-03-12T15:00Z sharp", 0), ("at 2026-03-12T15:00+01:00 sharp", 3600)):
        (raw,) = find_dates(text, G)
        assert (raw.year, raw.month, raw.day) == (2026, 3, 12)
        span = find_times(text, G, raw.end, len(text))[0]
        assert (span.h1, span.m1) == (15, 0)
        zone = find_zone(text, G, span.end)
        assert zone is not None and zone_offset(zone[1], date(2026, 3, 12), 15, 0)[0].utcoffset(None).total_seconds() == offset


def test_weekday_after_a_date_only_when_it_closes_it():
    # "5 May, Monday's call" names another day's call: the date keeps no weekday (and no false conflict).
    assert days("comments by 5 May, Monday's call will decide", date(2026, 4, 1)) == [("2026-05-05", None, False, None)]


@pytest.mark.parametrize(
    ("text", "hours"),
    [("at 10:00 (hora de Bogotá)", -5), ("at 10:00 Tokyo time", 9), ("à 10:00 heure de Genève", 1)],
)
def test_city_times(text, hours):
    # A city's time is its zone's offset on that day.
    m = find_zone(text, G, 8)
    assert m is not None and zone_offset(m[1], date(2026, 3, 17), 10, 0)[0].utcoffset(None).total_seconds() == hours * 3600


def test_day_of_the_month_without_a_month():
    # "by the 21st," is the next 21st on or after the post; a wrong weekday is flagged; "the 2nd draft" is no date.
    ref = date(2031, 5, 9)  # a Friday
    assert days("send them by the 21st, please", ref) == [("2031-05-21", None, False, None)]
    assert days("on the 3rd.", ref)[0][0] == "2031-06-03"
    assert days("Friday the 23rd at noon", ref) == [("2031-05-23", None, False, None)]
    got = days("Thursday the 23rd at noon", ref)
    assert got[0][0] == "2031-05-23" and got[0][3] is not None
    assert days("the 2nd draft is out", ref) == []
    assert days("the 31st.", date(2031, 6, 5))[0][0] == "2031-07-31"


def test_year_first_dates_with_slashes():
    # "2031/09/05" is read like "2031-09-05"; one inside a URL path or with mixed separators is not.
    ref = date(2031, 8, 1)
    assert days("abstracts by 2031/09/05.", ref) == [("2031-09-05", None, False, None)]
    assert days("see https://example.org/news/2031/09/05/item", ref) == []
    assert days("on 2031/09-05", ref) == []


def test_weekday_introduces_a_short_numeric_date():
    # "Wed 5/20": a weekday name before month/day stands for an introducing word and gives the date its weekday;
    # an order that no day over 12 proves stays unread.
    g = load_rules().grammar
    (r,) = find_dates("the review call is Wed 5/20 at 9am Pacific", g)
    assert (r.month, r.day, r.weekday, r.text) == (5, 20, 2, "Wed 5/20")
    assert find_dates("the review call is on 5/6 at 9am Pacific", g) == []


def test_weekday_picks_the_order_of_an_ambiguous_short_date():
    # "Tue 3/10" written in 2026: 10 March is a Tuesday, 3 October a Saturday, so the weekday settles the order;
    # when both orders (or neither) fall on the weekday, no day is taken.
    g = load_rules().grammar
    (r,) = find_dates("the review call is Tue 3/10 at 9am Pacific", g)
    res = resolve(r, date(2026, 2, 20))
    assert res is not None and res.first == date(2026, 3, 10) and res.conflict is None
    (r,) = find_dates("the review call is Sun 3/10 at 9am Pacific", g)
    assert resolve(r, date(2026, 2, 20)) is None
